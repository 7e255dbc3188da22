/*
 * net.h - virtio-net (virtio 1.2, 5.1) over a TAP device: queue 0 receives
 * (TAP -> guest), queue 1 transmits (guest -> TAP); one queue pair, no
 * control queue.
 *
 * The TAP is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte
 * vnet header (TUNSETVNETHDRSZ), the same struct virtio_net_hdr the driver
 * puts in front of every frame with VERSION_1, so frames pass between guest
 * buffers and the TAP without copies: writev() from the tx chain, readv()
 * into the rx chain. If the TAP does not exist the device creates it (and
 * brings it up, no address), and it disappears when the device closes it;
 * an existing TAP is attached to and left in place.
 *
 * Offloads: the device offers CSUM, HOST_TSO4/6 (the guest may hand over
 * checksum-partial and TSO frames; the kernel finishes them) and
 * GUEST_CSUM, GUEST_TSO4/6 (the TAP may hand such frames to the guest,
 * switched on with TUNSETOFFLOAD once the driver accepted them), plus MAC,
 * STATUS (link always up) and MRG_RXBUF (a frame may span several rx
 * chains; num_buffers says how many, and they reach the used ring at once).
 *
 * Receive: the TAP fd is watched on the I/O thread (net_watch); when it is
 * readable the VM runs net_tap_ready under the transport's device lock
 * (virtio_pci_run). Frames are read straight into the chains the driver
 * posted, with a spill buffer behind them: a frame larger than the posted
 * buffers lands partly there and is then either dropped (no MRG_RXBUF: the
 * buffer is too small, counted in rx_dropped) or copied on into further
 * chains, waiting for the driver to post them. When the guest has no room,
 * the TAP leaves the epoll set until the driver kicks the rx queue: no
 * busy loop and no frame dropped for lack of buffers (the kernel queues
 * them on the TAP, as for any slow reader).
 *
 * What the guest cannot do: an rx chain must be writable only and hold at
 * least the 12-byte header; a tx chain must be readable only, hold the
 * header and at most NET_MAX_FRAME bytes behind it. Breaking those is a
 * broken driver: -EINVAL, the transport sets DEVICE_NEEDS_RESET. A tx
 * header whose fields are wrong (unknown flags or GSO type, offloads not
 * negotiated, csum_start/offset or hdr_len outside the frame, GSO without
 * gso_size or NEEDS_CSUM) drops that frame (tx_dropped) and the device goes
 * on. The header is copied before it is checked and that copy is what the
 * TAP gets, so a guest rewriting it meanwhile changes nothing.
 *
 * Rate limits (net_set_limits; throttle.h): one limiter per direction,
 * bytes/s (frame bytes, vnet header not counted) and frames/s. Transmit
 * stops popping tx chains while its buckets are dry; receive stops reading
 * the TAP (the watch is paused, frames wait in the kernel's TAP queue,
 * which drops what overflows as a slow reader would). A frame's length is
 * charged once known, so a bucket can go into debt by one frame. Each
 * direction's timerfd (net_timer_fd) is watched on the I/O thread and
 * answered with virtio_pci_run(vp, q, net_timer_fired). The timerfds exist
 * from net_open on, limited or not, so limits changed at run time
 * (net_update_limits) find their timer already watched.
 */
#ifndef YUN_VMM_VIRTIO_NET_H
#define YUN_VMM_VIRTIO_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../../lib/err.h"
#include "../snapshot/stream.h"
#include "iothread.h"
#include "throttle.h"
#include "virtio.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

/* struct virtio_net_hdr (5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_TCPV6    4

struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;      /* little-endian, as every field with VERSION_1 */
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

/* struct virtio_net_config (5.1.4): mac, status, max_virtqueue_pairs. */
#define NET_CFG_MAC         0
#define NET_CFG_STATUS      6
#define NET_CFG_MAX_VQ      8
#define NET_CONFIG_SIZE     10
#define VIRTIO_NET_S_LINK_UP 1

#define NET_RXQ         0
#define NET_TXQ         1
#define NET_QUEUE_SIZE  256
#define NET_HDR_LEN     12                 /* sizeof(struct virtio_net_hdr) */
#define NET_MAX_FRAME   (64 * 1024 + 18)   /* 64 KiB behind Ethernet + VLAN headers */
#define NET_RX_BUDGET   64                 /* frames per run before the I/O thread moves on */
#define NET_RX_MAX_IOV  (2 * VQ_MAX_IOV)   /* buffers of the rx chains held at once */

struct net_stats {
	uint64_t tx_frames, tx_bytes, tx_dropped;
	uint64_t rx_frames, rx_bytes, rx_dropped;
};

/* An rx chain popped from the ring and not yet used: rx_iov[iov, iov + nr_iov). */
struct net_rx_chain {
	uint16_t head;
	unsigned iov, nr_iov;
	uint64_t cap;
};

struct net {
	char tap[IFNAMSIZ];
	uint8_t mac[6];
	int tap_fd;
	bool created;              /* the device made the TAP; it goes when tap_fd closes */
	bool tap_gone;             /* reading the TAP failed for good (deleted under us) */
	struct iothread *io;       /* where tap_fd is watched; NULL: a harness polls */
	bool watching;             /* tap_fd is in io's epoll set (false when io is NULL, too) */
	uint64_t features;         /* what the driver accepted (set on activate) */

	/* Transmit. */
	struct vq_req tx_req;
	struct iovec tx_iov[VQ_MAX_IOV + 1];
	uint8_t *tx_linear;        /* for a chain of more buffers than writev() takes */

	/* Receive: chains held for the next frame, and a frame waiting for more. */
	struct vq_req rx_req;
	struct net_rx_chain rx_chain[NET_QUEUE_SIZE];
	unsigned rx_nr_chain;
	struct iovec rx_iov[NET_RX_MAX_IOV + 1]; /* + 1: the spill buffer behind them */
	unsigned rx_nr_iov;
	uint64_t rx_cap;           /* bytes the held chains can take */
	uint8_t *rx_spill;         /* NET_HDR_LEN + NET_MAX_FRAME bytes */
	uint32_t rx_frame_len;     /* frame in progress (MRG_RXBUF, waiting for buffers), else 0 */
	uint32_t rx_spill_off, rx_spill_len; /* its bytes still in rx_spill */
	unsigned rx_cur_iov;       /* where they go next: rx_iov[rx_cur_iov] + rx_cur_off */
	uint64_t rx_cur_off;

	struct throttle throttle[2]; /* by queue: [NET_RXQ], [NET_TXQ] */
	struct net_stats stats;
};

/* Rate limits per direction; 0: unlimited. */
struct net_limits {
	uint64_t rx_bw, rx_pps;    /* TAP -> guest: bytes/s, frames/s */
	uint64_t tx_bw, tx_pps;    /* guest -> TAP */
};

extern const struct virtio_device_ops net_ops;

/*
 * Open (or create) TAP `tap` for a device with MAC `mac` (NULL: a random
 * locally administered one). Errors name the TAP: "tap yt0: in use by
 * another process".
 */
int net_open(struct net *net, const char *tap, const uint8_t *mac, struct yun_err *err);

/*
 * Limit the card's traffic: all four rates at once. After net_open, before
 * the device runs, or at run time under the device lock (as below).
 */
int net_set_limits(struct net *net, const struct net_limits *limits, struct yun_err *err);

/*
 * Firecracker's PATCH /network-interfaces/{id}: change some buckets while
 * the guest runs; the others keep their state. A bucket set starts full
 * (Firecracker does the same), with rate 0 it is unlimited; a queue stalled
 * on a bucket re-checks at once (throttle_update). Build each direction
 * with ratelimit_update_from_json(rx_rate_limiter / tx_rate_limiter); an
 * absent limiter is an all-false update.
 *
 * Locking: the device lock must be held: from another thread call
 *   virtio_pci_call(vp, net_call_update_limits, &update, err)
 * (net_call_update_limits is net_update_limits with virtio_pci_call's
 * signature). Before the device runs, a direct call is fine.
 */
struct net_limits_update {
	struct ratelimit_update rx, tx;
};
int net_update_limits(struct net *net, const struct net_limits_update *u, struct yun_err *err);
int net_call_update_limits(void *net, void *update, struct yun_err *err);

/* Queue q's rate-limit timerfd (made at open, limits or not: they may come at run time). */
int net_timer_fd(const struct net *net, unsigned q);

/* Queue q's rate-limit timer fired: go on (a virtio_pci_run_fn). */
int net_timer_fired(void *dev, unsigned q, struct vq *vq);

/* Close the TAP (a TAP the device created disappears with it). */
void net_close(struct net *net);

/*
 * Watch the TAP on `io`: fn(arg) runs on the I/O thread while it is
 * readable and should call virtio_pci_run(vp, NET_RXQ, net_tap_ready).
 * The watch starts paused; the rx queue switches it on once the driver
 * has posted buffers. Call before iothread_start().
 */
int net_watch(struct net *net, struct iothread *io, iothread_fn fn, void *arg,
	      struct yun_err *err);

/* The TAP has frames: deliver what the rx buffers take (a virtio_pci_run_fn). */
int net_tap_ready(void *dev, unsigned q, struct vq *vq);

/* ---- snapshot ------------------------------------------------------------- */

/*
 * Before a save (a virtio_pci_run_fn on NET_RXQ): give the rx chains the
 * device holds back to the ring (vq_unpop), so the saved ring positions
 * need no record of them; a merged frame still waiting for buffers is
 * dropped (rx_dropped), as a frame lost on the wire. The device goes on
 * as before if the VM resumes.
 *
 * Snapshot (NET_SNAP_VERSION): the MAC the guest's driver read (loaded
 * back, so a card configured without one keeps its address) and the
 * statistics. -EBUSY from net_save while chains are held. Offloads come
 * back with the transport's activate(), the TAP's polling with the
 * resume kick of the rx queue; rate-limit buckets start full.
 */
int net_unhold(void *dev, unsigned q, struct vq *vq);
#define NET_SNAP_VERSION 1
int net_save(const struct net *net, struct snap_writer *w);
int net_load(struct net *net, struct snap_reader *r);

/* "52:54:00:12:34:56" -> 6 bytes; -EINVAL unless six hex pairs and a unicast address. */
int net_parse_mac(const char *s, uint8_t mac[6]);

/* Can `name` be a network interface name (1..15 bytes, no '/', ':', '%' or space)? */
bool net_tap_name_ok(const char *name);

#endif
