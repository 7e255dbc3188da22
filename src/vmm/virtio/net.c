/* net.c - virtio-net over a TAP device; see net.h. */
#include "net.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/log.h"

#define ETH_HEADER   14
#define RX_FRAME_STD (NET_HDR_LEN + ETH_HEADER + 4 + 1500) /* a VLAN-tagged 1500-MTU frame */
#define SPILL_SIZE   (NET_HDR_LEN + NET_MAX_FRAME)
#define READV_MAX    1024 /* UIO_MAXIOV */

#define NET_FEATURES                                                                       \
	((1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |                 \
	 (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |                  \
	 (1ULL << VIRTIO_NET_F_GUEST_TSO6) | (1ULL << VIRTIO_NET_F_HOST_TSO4) |            \
	 (1ULL << VIRTIO_NET_F_HOST_TSO6) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |             \
	 (1ULL << VIRTIO_NET_F_STATUS))

static bool has(const struct net *net, unsigned bit)
{
	return net->features & (1ULL << bit);
}

/* ---- names and addresses ---------------------------------------------------- */

bool net_tap_name_ok(const char *name)
{
	size_t len = strlen(name);

	/* What the kernel's dev_valid_name() takes, minus '%' (a name template). */
	if (len == 0 || len >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p == '%' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];

	for (int i = 0; i < 6; i++) {
		int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);

		if (lo < 0 || s[2] != (i == 5 ? '\0' : ':'))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
		s += 3;
	}
	if (m[0] & 1)
		return -EINVAL; /* multicast/broadcast: not a card's address */
	if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

/* ---- scatter/gather helpers -------------------------------------------------- */

/* Copy len bytes at byte offset off of the buffers iov[0..n) into dst; returns bytes copied. */
/* ---- the TAP ------------------------------------------------------------------- */

static void tap_set_offload(struct net *net)
{
	unsigned off = 0;

	/* What the TAP may hand us is what the driver said it can take. */
	if (has(net, VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (has(net, VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (has(net, VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
	}
	if (ioctl(net->tap_fd, TUNSETOFFLOAD, off) < 0)
		yun_warn("tap %s: TUNSETOFFLOAD 0x%x: %s", net->tap, off, strerror(errno));
}

/* Start (true) or stop polling the TAP. Device lock held (or set-up time). */
static void tap_watch(struct net *net, bool on)
{
	int rc;

	if (!net->io || net->watching == on)
		return;
	rc = iothread_watch_enable(net->io, net->tap_fd, on);
	if (rc < 0)
		yun_warn("tap %s: %s polling: %s", net->tap, on ? "resuming" : "pausing",
			 strerror(-rc));
	else
		net->watching = on;
}

static int tap_up(const char *name, struct yun_err *err)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (s < 0)
		return yun_err_errno(err, errno, "tap %s: socket for bringing it up", name);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		rc = yun_err_errno(err, errno, "tap %s: SIOCGIFFLAGS", name);
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			rc = yun_err_errno(err, errno, "tap %s: bringing it up", name);
	}
	close(s);
	return rc;
}

/* Attach to TAP `name`, or create it; net->created says which. */
static int tap_open(struct net *net, const char *name, struct yun_err *err)
{
	struct ifreq ifr = { 0 };
	int hdr_len = NET_HDR_LEN;

	net->tap_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (net->tap_fd < 0)
		return yun_err_errno(err, errno, "tap %s: /dev/net/tun", name);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	/* IFF_TUN_EXCL: create or fail with EBUSY, so we know whether the TAP is ours. */
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL);
	if (ioctl(net->tap_fd, TUNSETIFF, &ifr) == 0) {
		net->created = true;
	} else if (errno == EBUSY) {
		ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
		if (ioctl(net->tap_fd, TUNSETIFF, &ifr) < 0) {
			if (errno == EBUSY)
				return yun_err_set(err, EBUSY, "tap %s: in use by another process",
						   name);
			if (errno == EINVAL)
				return yun_err_set(err, EINVAL,
						   "tap %s: exists and is not a single-queue TAP device",
						   name);
			return yun_err_errno(err, errno, "tap %s: attaching", name);
		}
	} else {
		if (errno == EPERM)
			return yun_err_set(err, EPERM,
					   "tap %s: not allowed to create it (needs CAP_NET_ADMIN)",
					   name);
		return yun_err_errno(err, errno, "tap %s: creating", name);
	}
	if (ioctl(net->tap_fd, TUNSETVNETHDRSZ, &hdr_len) < 0)
		return yun_err_errno(err, errno, "tap %s: TUNSETVNETHDRSZ %d", name, hdr_len);
	if (ioctl(net->tap_fd, TUNSETOFFLOAD, 0) < 0)
		return yun_err_errno(err, errno, "tap %s: TUNSETOFFLOAD", name);
	return net->created ? tap_up(name, err) : 0;
}

int net_open(struct net *net, const char *tap, const uint8_t *mac, struct yun_err *err)
{
	int rc;

	memset(net, 0, sizeof(*net));
	net->tap_fd = -1;
	net->throttle[NET_RXQ].timer_fd = net->throttle[NET_TXQ].timer_fd = -1;
	if (!net_tap_name_ok(tap))
		return yun_err_set(err, EINVAL, "tap \"%s\": not a network interface name "
				   "(1 to %d characters, no '/', ':', '%%' or spaces)", tap,
				   IFNAMSIZ - 1);
	snprintf(net->tap, sizeof(net->tap), "%s", tap);
	if (mac) {
		memcpy(net->mac, mac, 6);
	} else {
		if (getrandom(net->mac, 6, 0) != 6)
			return yun_err_errno(err, errno, "tap %s: random MAC", tap);
		net->mac[0] = (uint8_t)((net->mac[0] & ~1u) | 2u); /* unicast, locally administered */
	}
	net->tx_linear = malloc(SPILL_SIZE);
	net->rx_spill = malloc(SPILL_SIZE);
	if (!net->tx_linear || !net->rx_spill) {
		net_close(net);
		return yun_err_set(err, ENOMEM, "tap %s: out of memory", tap);
	}
	rc = tap_open(net, tap, err);
	/* Unlimited, but with their timerfds: limits may come at run time. */
	if (!rc)
		rc = throttle_init(&net->throttle[NET_RXQ], 0, 0, net->tap, err);
	if (!rc)
		rc = throttle_init(&net->throttle[NET_TXQ], 0, 0, net->tap, err);
	if (rc)
		net_close(net);
	return rc;
}

int net_set_limits(struct net *net, const struct net_limits *l, struct yun_err *err)
{
	struct net_limits_update u = {
		.rx = { true, true, { .rate = l->rx_bw }, { .rate = l->rx_pps } },
		.tx = { true, true, { .rate = l->tx_bw }, { .rate = l->tx_pps } },
	};

	return net_update_limits(net, &u, err);
}

int net_timer_fd(const struct net *net, unsigned q)
{
	return q < 2 ? throttle_fd(&net->throttle[q]) : -1;
}

void net_close(struct net *net)
{
	throttle_close(&net->throttle[NET_RXQ]);
	throttle_close(&net->throttle[NET_TXQ]);
	if (net->tap_fd >= 0)
		close(net->tap_fd);
	net->tap_fd = -1;
	free(net->tx_linear);
	free(net->rx_spill);
	net->tx_linear = net->rx_spill = NULL;
}

int net_watch(struct net *net, struct iothread *io, iothread_fn fn, void *arg,
	      struct yun_err *err)
{
	int rc = iothread_watch(io, net->tap_fd, fn, arg, err);

	if (rc)
		return rc;
	net->io = io;
	net->watching = true;
	tap_watch(net, false); /* until the driver posts rx buffers */
	return 0;
}

/* ---- configuration space and life cycle ---------------------------------------- */

static void net_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct net *net = dev;
	uint8_t cfg[NET_CONFIG_SIZE];
	uint16_t status = htole16(VIRTIO_NET_S_LINK_UP), pairs = htole16(1);

	memcpy(cfg + NET_CFG_MAC, net->mac, 6);
	memcpy(cfg + NET_CFG_STATUS, &status, 2);
	memcpy(cfg + NET_CFG_MAX_VQ, &pairs, 2);
	memcpy(data, cfg + off, len); /* the transport checked off + len */
}

/* Forget the rx chains held and any frame in progress (the ring is gone or reset). */
static void rx_forget(struct net *net)
{
	net->rx_nr_chain = net->rx_nr_iov = 0;
	net->rx_cap = 0;
	net->rx_frame_len = net->rx_spill_len = 0;
}

static void net_activate(void *dev, uint64_t features)
{
	struct net *net = dev;

	net->features = features;
	rx_forget(net);
	tap_set_offload(net);
}

static void net_reset(void *dev)
{
	struct net *net = dev;

	rx_forget(net);
	tap_watch(net, false);
	throttle_cancel(&net->throttle[NET_RXQ]);
	throttle_cancel(&net->throttle[NET_TXQ]);
	if (net->features) {
		net->features = 0;
		tap_set_offload(net);
	}
}

/* ---- transmit ---------------------------------------------------------------------- */

/* May this header go to the TAP with a frame of frame_len bytes? */
static bool tx_hdr_ok(const struct net *net, const struct virtio_net_hdr *h, uint32_t frame_len)
{
	uint32_t csum_start = le16toh(h->csum_start), csum_offset = le16toh(h->csum_offset);

	if (frame_len < ETH_HEADER || (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return false;
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (!has(net, VIRTIO_NET_F_CSUM) || csum_start + csum_offset + 2 > frame_len))
		return false;
	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!has(net, VIRTIO_NET_F_HOST_TSO4))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!has(net, VIRTIO_NET_F_HOST_TSO6))
			return false;
		break;
	default:
		return false; /* ECN, UFO, USO: not offered */
	}
	return (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && le16toh(h->gso_size) &&
	       le16toh(h->hdr_len) <= frame_len;
}

/* Send one chain's frame; -EINVAL for a chain no driver may post. */
static int tx_one(struct net *net, const struct vq_req *req)
{
	struct virtio_net_hdr hdr;
	uint32_t frame_len;
	unsigned n = 1;
	size_t skip = NET_HDR_LEN;
	ssize_t w;

	if (req->nr_write || req->read_len < NET_HDR_LEN ||
	    req->read_len > NET_HDR_LEN + NET_MAX_FRAME)
		return -EINVAL;
	frame_len = (uint32_t)(req->read_len - NET_HDR_LEN);
	vq_iov_get(req->iov, req->nr_read, 0, &hdr, NET_HDR_LEN);
	if (!tx_hdr_ok(net, &hdr, frame_len)) {
		net->stats.tx_dropped++;
		yun_debug("tap %s: tx frame of %u bytes dropped: bad header (flags 0x%x gso %u)",
			  net->tap, frame_len, hdr.flags, hdr.gso_type);
		return 0;
	}
	hdr.num_buffers = 0;
	net->tx_iov[0] = (struct iovec){ &hdr, NET_HDR_LEN };
	/* The frame: the chain's buffers after the header (our checked copy goes instead). */
	for (unsigned i = 0; i < req->nr_read; i++) {
		size_t l = req->iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		net->tx_iov[n++] = (struct iovec){ (uint8_t *)req->iov[i].iov_base + skip, l - skip };
		skip = 0;
	}
	if (n > READV_MAX) {
		vq_iov_get(req->iov, req->nr_read, NET_HDR_LEN, net->tx_linear, frame_len);
		net->tx_iov[1] = (struct iovec){ net->tx_linear, frame_len };
		n = 2;
	}
	do
		w = writev(net->tap_fd, net->tx_iov, (int)n);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		/* The TAP is down, its queue full, or the kernel disliked the frame. */
		net->stats.tx_dropped++;
		yun_debug("tap %s: tx frame of %u bytes: %s", net->tap, frame_len, strerror(errno));
		return 0;
	}
	net->stats.tx_frames++;
	net->stats.tx_bytes += frame_len;
	return 0;
}

static int tx_run(struct net *net, struct vq *vq)
{
	int rc = 0;

	/* Rate-limited and dry: net_timer_fired comes back. */
	while (!throttle_blocked(&net->throttle[NET_TXQ]) && (rc = vq_pop(vq, &net->tx_req)) > 0) {
		rc = tx_one(net, &net->tx_req);
		if (rc < 0) {
			yun_debug("tap %s: tx chain %u: %u readable bytes, %u writable buffers",
				  net->tap, net->tx_req.head, (unsigned)net->tx_req.read_len,
				  net->tx_req.nr_write);
			return rc;
		}
		vq_push(vq, net->tx_req.head, 0);
		throttle_charge(&net->throttle[NET_TXQ], net->tx_req.read_len - NET_HDR_LEN, 1);
	}
	return rc < 0 ? rc : 0;
}

/* ---- receive ------------------------------------------------------------------------- */

/* Pop one rx chain and hold it: 1, 0 when the ring is empty, -EINVAL for a bad chain. */
static int rx_hold(struct net *net, struct vq *vq)
{
	struct vq_req *req = &net->rx_req;
	struct net_rx_chain *c;
	int rc = vq_pop(vq, req);

	if (rc <= 0)
		return rc;
	if (req->nr_read || req->write_len < NET_HDR_LEN) {
		yun_debug("tap %s: rx chain %u: %u readable buffers, %llu writable bytes",
			  net->tap, req->head, req->nr_read, (unsigned long long)req->write_len);
		return -EINVAL;
	}
	c = &net->rx_chain[net->rx_nr_chain++];
	*c = (struct net_rx_chain){ req->head, net->rx_nr_iov, req->nr_write, req->write_len };
	memcpy(&net->rx_iov[net->rx_nr_iov], req->iov, req->nr_write * sizeof(req->iov[0]));
	net->rx_nr_iov += req->nr_write;
	net->rx_cap += req->write_len;
	return 1;
}

/* May we hold another chain? (Room in our arrays; the ring bounds the rest.) */
static bool rx_room(const struct net *net, const struct vq *vq)
{
	return net->rx_nr_chain < vq->size && net->rx_nr_chain < NET_QUEUE_SIZE &&
	       net->rx_nr_iov <= NET_RX_MAX_IOV - VQ_MAX_IOV;
}

/*
 * Hold chains for the next frame: one, or with MRG_RXBUF as many as a frame
 * of the largest size the TAP may send us needs (fewer if the ring runs out).
 */
static int rx_fill(struct net *net, struct vq *vq)
{
	uint64_t want = RX_FRAME_STD;
	int rc;

	if (!has(net, VIRTIO_NET_F_MRG_RXBUF)) {
		rc = net->rx_nr_chain ? 0 : rx_hold(net, vq);
		return rc < 0 ? rc : 0;
	}
	if (has(net, VIRTIO_NET_F_GUEST_TSO4) || has(net, VIRTIO_NET_F_GUEST_TSO6))
		want = SPILL_SIZE;
	while (net->rx_cap < want && rx_room(net, vq)) {
		rc = rx_hold(net, vq);
		if (rc <= 0)
			return rc;
	}
	return 0;
}

/* Copy the frame's bytes still in the spill buffer into the held buffers after the cursor. */
static void rx_place(struct net *net)
{
	while (net->rx_spill_len && net->rx_cur_iov < net->rx_nr_iov) {
		struct iovec *v = &net->rx_iov[net->rx_cur_iov];
		uint64_t room = v->iov_len - net->rx_cur_off;
		uint32_t c = room < net->rx_spill_len ? (uint32_t)room : net->rx_spill_len;

		memcpy((uint8_t *)v->iov_base + net->rx_cur_off, net->rx_spill + net->rx_spill_off, c);
		net->rx_spill_off += c;
		net->rx_spill_len -= c;
		net->rx_cur_off += c;
		if (net->rx_cur_off == v->iov_len) {
			net->rx_cur_iov++;
			net->rx_cur_off = 0;
		}
	}
}

/* Drop the first k held chains (used), keeping the rest in order. */
static void rx_release(struct net *net, unsigned k)
{
	unsigned first_iov = k < net->rx_nr_chain ? net->rx_chain[k].iov : net->rx_nr_iov;

	for (unsigned i = 0; i < k; i++)
		net->rx_cap -= net->rx_chain[i].cap;
	memmove(net->rx_chain, net->rx_chain + k, (net->rx_nr_chain - k) * sizeof(net->rx_chain[0]));
	net->rx_nr_chain -= k;
	memmove(net->rx_iov, net->rx_iov + first_iov,
		(net->rx_nr_iov - first_iov) * sizeof(net->rx_iov[0]));
	net->rx_nr_iov -= first_iov;
	for (unsigned i = 0; i < net->rx_nr_chain; i++)
		net->rx_chain[i].iov -= first_iov;
}

static void rx_drop(struct net *net, const char *why)
{
	net->stats.rx_dropped++;
	net->rx_frame_len = net->rx_spill_len = 0;
	yun_debug("tap %s: rx frame dropped: %s", net->tap, why);
}

/*
 * The frame (rx_frame_len bytes, header first) is wholly in the held
 * chains: fix up its header and give the chains it spans to the driver.
 */
static void rx_complete(struct net *net, struct vq *vq)
{
	const struct net_rx_chain *c0 = &net->rx_chain[0];
	struct vring_used_elem used[NET_QUEUE_SIZE];
	uint32_t left = net->rx_frame_len;
	struct virtio_net_hdr hdr;
	uint16_t num_buffers;
	unsigned k = 0;

	vq_iov_get(&net->rx_iov[c0->iov], c0->nr_iov, 0, &hdr, NET_HDR_LEN);
	/*
	 * The kernel only offloads what TUNSETOFFLOAD allowed, but frames queued
	 * before a reset changed that may still come: never give a driver what it
	 * did not accept. Without GUEST_CSUM, flags must be 0 (5.1.6.4.1).
	 */
	if (!has(net, VIRTIO_NET_F_GUEST_CSUM)) {
		if (hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM || hdr.gso_type) {
			rx_drop(net, "offloaded frame the driver cannot take");
			return;
		}
		hdr.flags = 0;
	}
	if ((hdr.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && !has(net, VIRTIO_NET_F_GUEST_TSO4)) ||
	    (hdr.gso_type == VIRTIO_NET_HDR_GSO_TCPV6 && !has(net, VIRTIO_NET_F_GUEST_TSO6)) ||
	    (hdr.gso_type & ~(VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_TCPV6))) {
		rx_drop(net, "GSO frame the driver cannot take");
		return;
	}
	while (left) {
		uint32_t n = net->rx_chain[k].cap < left ? (uint32_t)net->rx_chain[k].cap : left;

		used[k] = (struct vring_used_elem){ net->rx_chain[k].head, n };
		left -= n;
		k++;
	}
	num_buffers = htole16((uint16_t)k);
	vq_iov_put(&net->rx_iov[c0->iov], c0->nr_iov, 0, &hdr.flags, 1);
	vq_iov_put(&net->rx_iov[c0->iov], c0->nr_iov, offsetof(struct virtio_net_hdr, num_buffers),
		&num_buffers, 2);
	for (unsigned j = 0; j < k; j++) /* filled by readv() long after vq_pop() */
		vq_iov_written(vq, &net->rx_iov[net->rx_chain[j].iov], net->rx_chain[j].nr_iov,
			       used[j].len);
	vq_push_n(vq, used, k);
	net->stats.rx_frames++;
	net->stats.rx_bytes += net->rx_frame_len - NET_HDR_LEN;
	net->rx_frame_len = 0;
	rx_release(net, k);
}

/*
 * Go on with a merged frame waiting in the spill buffer: 1 when it is done
 * (delivered or dropped), 0 when the ring has no more buffers yet.
 */
static int rx_continue(struct net *net, struct vq *vq)
{
	for (;;) {
		int rc;

		rx_place(net);
		if (!net->rx_spill_len) {
			rx_complete(net, vq);
			return 1;
		}
		if (!rx_room(net, vq)) {
			/* The whole ring (or all we can hold) is smaller than the frame. */
			rx_drop(net, "larger than all the rx buffers posted");
			return 1;
		}
		rc = rx_hold(net, vq);
		if (rc <= 0)
			return rc;
	}
}

/*
 * Read one frame from the TAP into the held chains: 1 when a frame was
 * delivered or dropped, 0 when the TAP is empty (or gone), 2 when a merged
 * frame waits for more buffers.
 */
static int rx_read(struct net *net, struct vq *vq)
{
	unsigned nd = net->rx_nr_iov < READV_MAX - 1 ? net->rx_nr_iov : READV_MAX - 1;
	struct iovec saved = net->rx_iov[nd];
	uint64_t direct = 0;
	ssize_t n;
	int rc;

	for (unsigned i = 0; i < nd; i++)
		direct += net->rx_iov[i].iov_len;
	net->rx_iov[nd] = (struct iovec){ net->rx_spill, SPILL_SIZE };
	do
		n = readv(net->tap_fd, net->rx_iov, (int)nd + 1);
	while (n < 0 && errno == EINTR);
	net->rx_iov[nd] = saved;
	if (n < 0) {
		if (errno == EAGAIN)
			return 0;
		/* EBADFD, EIO: the TAP was deleted or its queue detached; nothing more will come. */
		yun_warn("tap %s: read: %s; the guest receives nothing more", net->tap,
			 strerror(errno));
		net->tap_gone = true;
		return 0;
	}
	/* Charged whether delivered or dropped: reading it was the work. */
	throttle_charge(&net->throttle[NET_RXQ], n > NET_HDR_LEN ? (uint64_t)n - NET_HDR_LEN : 0, 1);
	if ((uint64_t)n < NET_HDR_LEN + ETH_HEADER) {
		rx_drop(net, "shorter than an Ethernet header");
		return 1;
	}
	if ((uint64_t)n >= direct + SPILL_SIZE) {
		rx_drop(net, "larger than NET_MAX_FRAME");
		return 1;
	}
	net->rx_frame_len = (uint32_t)n;
	if ((uint64_t)n <= direct) {
		rx_complete(net, vq);
		return 1;
	}
	/* The rest is in the spill buffer: on into the held buffers readv() did not take. */
	net->rx_spill_off = 0;
	net->rx_spill_len = (uint32_t)((uint64_t)n - direct);
	net->rx_cur_iov = nd;
	net->rx_cur_off = 0;
	rx_place(net);
	if (net->rx_spill_len && !has(net, VIRTIO_NET_F_MRG_RXBUF)) {
		/* 5.1.6.3.1: the driver should post buffers big enough for any frame. */
		rx_drop(net, "larger than the rx buffer");
		return 1;
	}
	rc = rx_continue(net, vq);
	return rc < 0 ? rc : rc == 0 ? 2 : 1;
}

static int rx_run(struct net *net, struct vq *vq)
{
	int rc = 0;

	if (net->tap_gone) {
		tap_watch(net, false);
		return 0;
	}
	if (net->rx_frame_len) {
		rc = rx_continue(net, vq);
		if (rc <= 0) {
			tap_watch(net, false); /* no room yet; the driver's next rx kick brings it */
			return rc;
		}
	}
	for (unsigned i = 0; i < NET_RX_BUDGET; i++) {
		if (throttle_blocked(&net->throttle[NET_RXQ])) {
			tap_watch(net, false); /* until net_timer_fired */
			return 0;
		}
		rc = rx_fill(net, vq);
		if (rc < 0)
			break;
		if (!net->rx_nr_chain) {
			tap_watch(net, false); /* no buffers: wait for the driver's rx kick */
			return 0;
		}
		rc = rx_read(net, vq);
		if (rc <= 0 || rc == 2)
			break;
	}
	/*
	 * Poll the TAP when it is empty or after a full budget (level-triggered:
	 * the I/O thread comes back after the other devices). Not when it is
	 * gone, a frame waits for buffers, or the driver broke the ring.
	 */
	tap_watch(net, (rc == 0 || rc == 1) && !net->tap_gone);
	return rc < 0 ? rc : 0;
}

int net_tap_ready(void *dev, unsigned q, struct vq *vq)
{
	struct net *net = dev;

	(void)q;
	if (!vq) {
		/* Not live (reset, not DRIVER_OK, NEEDS_RESET): stop until the driver kicks rx. */
		tap_watch(net, false);
		return 0;
	}
	return rx_run(net, vq);
}

int net_timer_fired(void *dev, unsigned q, struct vq *vq)
{
	struct net *net = dev;

	if (q > NET_TXQ)
		return 0;
	throttle_fired(&net->throttle[q]);
	if (q == NET_TXQ)
		return vq ? tx_run(net, vq) : 0;
	return net_tap_ready(net, q, vq);
}

static int net_queue_notify(void *dev, unsigned q, struct vq *vq)
{
	struct net *net = dev;

	if (q == NET_TXQ)
		return tx_run(net, vq);
	return rx_run(net, vq);
}

const struct virtio_device_ops net_ops = {
	.name = "virtio-net",
	.device_type = VIRTIO_ID_NET,
	.num_queues = 2,
	.queue_max_size = NET_QUEUE_SIZE,
	.features = NET_FEATURES,
	.config_size = NET_CONFIG_SIZE,
	.class_code = 0x020000, /* network controller, Ethernet */
	.config_read = net_config_read,
	.queue_notify = net_queue_notify,
	.activate = net_activate,
	.reset = net_reset,
};

/* ---- run-time changes (the control API) ---------------------------------------- */

static void log_bucket(const struct net *net, const char *dir, const char *what,
		       bool set, const struct ratelimit_params *p)
{
	if (set)
		yun_info("tap %s: %s %s limit %llu/s (burst %llu, window %u ms; 0: unlimited)",
			 net->tap, dir, what, (unsigned long long)p->rate,
			 (unsigned long long)p->burst, p->window_ms ? p->window_ms
								    : RATELIMIT_WINDOW_MS);
}

int net_update_limits(struct net *net, const struct net_limits_update *u, struct yun_err *err)
{
	if (net->throttle[NET_RXQ].timer_fd < 0 || net->throttle[NET_TXQ].timer_fd < 0)
		return yun_err_set(err, EBADF, "tap %s: not open", net->tap);
	throttle_update(&net->throttle[NET_RXQ], &u->rx);
	throttle_update(&net->throttle[NET_TXQ], &u->tx);
	log_bucket(net, "rx", "bytes", u->rx.set_bytes, &u->rx.bytes);
	log_bucket(net, "rx", "frames", u->rx.set_ops, &u->rx.ops);
	log_bucket(net, "tx", "bytes", u->tx.set_bytes, &u->tx.bytes);
	log_bucket(net, "tx", "frames", u->tx.set_ops, &u->tx.ops);
	return 0;
}

int net_call_update_limits(void *net, void *update, struct yun_err *err)
{
	return net_update_limits(net, update, err);
}

/* ---- snapshot ------------------------------------------------------------- */

#define NET_NR_STATS 6
_Static_assert(sizeof(struct net_stats) == NET_NR_STATS * sizeof(uint64_t),
	       "struct net_stats is NET_NR_STATS counters");

int net_unhold(void *dev, unsigned q, struct vq *vq)
{
	struct net *net = dev;

	(void)q;
	if (net->rx_frame_len)
		rx_drop(net, "the VM's state was saved while the frame waited for buffers");
	if (vq && net->rx_nr_chain)
		vq_unpop(vq, (uint16_t)net->rx_nr_chain);
	rx_forget(net);
	/* The chains are the ring's again: the next frame on the TAP takes them. */
	if (vq)
		tap_watch(net, true);
	return 0;
}

int net_save(const struct net *net, struct snap_writer *w)
{
	uint64_t c[NET_NR_STATS];

	if (net->rx_nr_chain || net->rx_frame_len)
		return -EBUSY;

	memcpy(c, &net->stats, sizeof(c));
	snap_put_bytes(w, net->mac, sizeof(net->mac));
	snap_put_u64s(w, c, NET_NR_STATS);
	return 0;
}

int net_load(struct net *net, struct snap_reader *r)
{
	uint64_t c[NET_NR_STATS];
	uint8_t mac[6];

	snap_get_bytes(r, mac, sizeof(mac));
	snap_get_u64s(r, c, NET_NR_STATS);
	if (r->failed)
		return -EINVAL;
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return snap_reader_fail(r, "tap %s: MAC %02x:%02x:%02x:%02x:%02x:%02x is not a "
					"unicast address", net->tap, mac[0], mac[1], mac[2], mac[3],
					mac[4], mac[5]);
	memcpy(net->mac, mac, sizeof(mac)); /* the address the guest's driver read */
	memcpy(&net->stats, c, sizeof(c));
	return 0;
}
