/*
 * vsock.h - virtio-vsock (virtio 1.2, 5.10) with Firecracker's "hybrid"
 * host side: stream sockets between the guest (CID guest_cid) and the host
 * (CID 2), the host end of each being a Unix stream socket.
 *
 *   host -> guest: a host program connects to the Unix socket PATH and
 *     writes "CONNECT <port>\n"; the device sends the guest a REQUEST to
 *     that port from a host port of its own (>= 2^30). When the guest
 *     answers RESPONSE the program reads "OK <host port>\n" and the socket
 *     is the stream; a RST (or no answer in VSOCK_TIMEOUT_MS) closes it.
 *   guest -> host: a guest REQUEST to host port P connects to the Unix
 *     socket "PATH_P" (which some host program listens on); RESPONSE if
 *     that works, RST if not.
 *
 * Then bytes flow both ways (RW packets), under the protocol's credit
 * control: the device never sends the guest more than the free space the
 * guest advertised (buf_alloc - (tx_cnt - fwd_cnt)), and holds up to
 * VSOCK_CONN_BUF bytes per connection of what the guest sent and the Unix
 * socket could not take yet; that is the buf_alloc it advertises, and a
 * CREDIT_UPDATE goes out whenever a quarter of it was passed on since the
 * guest last heard. EOF on a Unix socket becomes SHUTDOWN(SEND); a guest
 * SHUTDOWN(SEND) becomes shutdown(SHUT_WR) once the held bytes are out;
 * SHUTDOWN of both directions is answered with RST and the connection goes.
 *
 * Queues: rx (0) carries every packet to the guest, control and data, one
 * per chain; tx (1) the guest's packets; event (2) carries one thing, the
 * TRANSPORT_RESET a restored device sends (see vsock_load).
 *
 * Thread model: every host fd (the listening socket, the connections, a
 * wake-up eventfd and a timer) sits in the device's own epoll set, and
 * that one fd is watched on the VM's I/O thread (vsock_watch), whose
 * handler runs vsock_ready under the transport's device lock. Work the tx
 * queue makes for the rx queue (a RESPONSE, a RST) wakes that handler
 * through the eventfd. When the guest has no rx buffers, ready sockets
 * leave the epoll set until the driver posts some: no busy loop.
 *
 * What the guest cannot do: every packet's src_cid must be its own and
 * dst_cid the host's (else dropped), type STREAM and len within the chain
 * and VSOCK_MAX_PKT (else RST); an unknown op, a packet for no connection,
 * data beyond the credit we gave, all get a RST. At most VSOCK_MAX_CONNS
 * connections exist (a REQUEST beyond that gets a RST) and RSTs for stray
 * packets wait in a bounded ring (dropped when it is full). A tx chain
 * with writable buffers or shorter than a header, or an rx chain with
 * readable buffers or shorter than a header, is a broken driver: -EINVAL,
 * the transport sets DEVICE_NEEDS_RESET.
 */
#ifndef YUN_VMM_VIRTIO_VSOCK_H
#define YUN_VMM_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "../../lib/err.h"
#include "../snapshot/stream.h"
#include "iothread.h"
#include "virtio.h"

#define VIRTIO_VSOCK_F_STREAM 0

#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
#define VSOCK_QUEUE_SIZE 256

#define VSOCK_HOST_CID 2
#define VSOCK_CONFIG_SIZE 8           /* le64 guest_cid */

/* struct virtio_vsock_hdr (5.10.6), all little-endian. */
struct virtio_vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

#define VSOCK_HDR_LEN 44

#define VIRTIO_VSOCK_TYPE_STREAM 1

#define VIRTIO_VSOCK_OP_REQUEST        1
#define VIRTIO_VSOCK_OP_RESPONSE       2
#define VIRTIO_VSOCK_OP_RST            3
#define VIRTIO_VSOCK_OP_SHUTDOWN       4
#define VIRTIO_VSOCK_OP_RW             5
#define VIRTIO_VSOCK_OP_CREDIT_UPDATE  6
#define VIRTIO_VSOCK_OP_CREDIT_REQUEST 7

#define VIRTIO_VSOCK_SHUTDOWN_RCV  1  /* the sender will receive nothing more */
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2  /* the sender will send nothing more */

#define VSOCK_MAX_PKT     (64 * 1024) /* data bytes in one packet, either way */
#define VSOCK_CONN_BUF    (64 * 1024) /* our buf_alloc: guest bytes held per connection */
#define VSOCK_MAX_CONNS   64
#define VSOCK_MAX_STRAY   64          /* RSTs for packets of no connection, waiting */
#define VSOCK_RX_BUDGET   256         /* packets per run before the I/O thread moves on */
#define VSOCK_TIMEOUT_MS  2000        /* for a CONNECT line, and for the guest's answer */
#define VSOCK_HOST_PORT_BASE (1u << 30) /* host ports of host-initiated connections */
#define VSOCK_LINE_MAX    32          /* "CONNECT 4294967295\n" fits */

/* "PATH_4294967295" must fit a sockaddr_un. */
#define VSOCK_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 12)

enum vsock_state {
	VSOCK_FREE,
	VSOCK_CLIENT_LINE,   /* host client accepted, reading its CONNECT line */
	VSOCK_REQUEST_SENT,  /* host-initiated: REQUEST to the guest, awaiting RESPONSE */
	VSOCK_CONNECTED,
	VSOCK_DYING,         /* socket closed; a RST to the guest is the last thing left */
};

struct vsock_conn {
	enum vsock_state state;
	int fd;                      /* the host end (Unix stream socket), -1 when closed */
	uint32_t events;             /* what fd is in the epoll set for, 0: not in it */
	uint32_t local_port;         /* host side */
	uint32_t peer_port;          /* guest side */
	unsigned pending;            /* control packets to send (VSOCK_PEND_*) */
	bool readable;               /* fd has data or EOF we have not read yet */
	bool host_eof;               /* the Unix peer sent everything it will */
	uint32_t guest_shut;         /* SHUTDOWN flags the guest sent */
	/* Host -> guest: the guest's credit. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool credit_asked;           /* CREDIT_REQUEST sent, no update since */
	/* Guest -> host: bytes passed on (fwd_cnt) and held for the socket. */
	uint32_t fwd_cnt, fwd_cnt_sent;
	uint8_t *buf;                /* VSOCK_CONN_BUF bytes, allocated when first needed */
	uint32_t buf_head, buf_len;
	uint64_t deadline_ms;        /* CLOCK_MONOTONIC, 0: none */
	char line[VSOCK_LINE_MAX];
	unsigned line_len;
};

struct vsock_stats {
	uint64_t tx_packets, rx_packets;   /* tx: from the guest; rx: to it */
	uint64_t tx_bytes, rx_bytes;       /* stream data */
	uint64_t dropped;                  /* guest packets ignored (bad cid) */
	uint64_t resets;                   /* RSTs sent to the guest */
};

struct vsock {
	uint64_t guest_cid;
	char path[VSOCK_PATH_MAX + 1];
	int listen_fd;
	bool bound;                  /* path is our socket file: unlink it at close */
	int epfd;                    /* the device's own epoll set */
	int wake_fd;                 /* eventfd: rx work waits (written from the tx path) */
	int timer_fd;                /* timerfd: ticks while some connection has a deadline */
	bool timer_armed;
	bool live;                   /* the driver set DRIVER_OK (activate .. reset) */
	bool reset_pending;          /* restored: TRANSPORT_RESET goes out on the event queue */
	uint32_t next_port;

	struct vsock_conn conn[VSOCK_MAX_CONNS];
	unsigned rr;                 /* where the next rx round starts (fairness) */
	struct { uint32_t local, peer; } stray[VSOCK_MAX_STRAY];
	unsigned stray_head, stray_len;

	struct vq_req req;           /* scratch for tx chains */
	struct vq_req rx_req;        /* an rx chain popped and not used yet */
	bool rx_held;
	struct iovec iov[VQ_MAX_IOV + 1];

	struct vsock_stats stats;
};

extern const struct virtio_device_ops vsock_ops;

/*
 * Listen on Unix socket `path` for a guest with CID `cid` (3 .. 2^32 - 2).
 * A stale socket file (nobody listening) is replaced; one in use is an
 * error: "vsock /run/v.sock: in use by another process".
 */
int vsock_open(struct vsock *vs, uint64_t cid, const char *path, struct yun_err *err);

/* Close every connection and the listening socket, and remove its file. */
void vsock_close(struct vsock *vs);

/*
 * Watch the device's fds on `io`: fn(arg) runs on the I/O thread while any
 * is ready and should call virtio_pci_run(vp, VSOCK_RXQ, vsock_ready).
 * Call before iothread_start().
 */
int vsock_watch(struct vsock *vs, struct iothread *io, iothread_fn fn, void *arg,
		struct yun_err *err);

/* The fd a harness without an I/O thread polls (readable: call vsock_ready). */
int vsock_event_fd(const struct vsock *vs);

/* Host sockets are ready or rx work waits: do it (a virtio_pci_run_fn on VSOCK_RXQ). */
int vsock_ready(void *dev, unsigned q, struct vq *vq);

/* ---- snapshot ------------------------------------------------------------- */

/*
 * Connections do not survive a snapshot: their host ends are sockets of
 * this process. Before a save (a virtio_pci_run_fn on VSOCK_RXQ) the rx
 * chain the device holds goes back to the ring. The section
 * (VSOCK_SNAP_VERSION) keeps the statistics and the next host port, never
 * the CID: a restored VM (perhaps a clone) has its configuration's.
 * vsock_load drops every connection and, when the driver was up, queues a
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, sent on the event queue at its next
 * kick (the transport's resume kick), so the guest resets its sockets and
 * reads the CID again.
 */
int vsock_unhold(void *dev, unsigned q, struct vq *vq);
#define VSOCK_SNAP_VERSION 1
void vsock_save(const struct vsock *vs, struct snap_writer *w);
int vsock_load(struct vsock *vs, struct snap_reader *r);

#endif
