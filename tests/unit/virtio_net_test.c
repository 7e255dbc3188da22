/*
 * virtio_net_test.c - play a virtio-net driver against the modern PCI
 * transport and the TAP-backed device model, with a real TAP (made here,
 * named after the test's pid, deleted at the end) and an AF_PACKET socket
 * on it as the far end: frames the "guest" sends arrive on the socket
 * byte for byte, frames sent on the socket land in the guest's rx buffers
 * behind a valid virtio_net_hdr. Needs root (CAP_NET_ADMIN); skipped
 * without it. Nothing gets an address or a route: frames stay on the TAP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "vmm/layout.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/pci.h"

#define QSZ       16
#define RX_DESC   0x10000ULL
#define RX_AVAIL  0x11000ULL
#define RX_USED   0x12000ULL
#define TX_DESC   0x14000ULL
#define TX_AVAIL  0x15000ULL
#define TX_USED   0x16000ULL
#define RX_BUF    0x100000ULL /* rx buffer i at RX_BUF + i * RX_STRIDE */
#define RX_STRIDE 0x10000ULL
#define TX_BUF    0x400000ULL
#define ETHERTYPE_TEST 0x88B5 /* IEEE "local experimental": no host stack takes it */

#define BIT(n) (1ULL << (n))
#define BASE_FEATURES (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS))

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t peer_mac[6] = { 0x02, 0x59, 0x54, 0x00, 0x00, 0x01 };

static struct guest_mem gm;
static struct virtio_pci vp;
static struct net net;
static struct iothread io;
static bool with_iothread;
static char tap_name[IFNAMSIZ];
static int pkt_fd = -1;
static uint16_t tx_next, rx_next; /* next descriptor / avail slot the driver uses */

/* ---- the TAP and the socket on it ------------------------------------------- */

static int tap_persist(const char *name, int on)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), rc = -1;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETPERSIST, on) == 0)
		rc = 0;
	close(fd);
	return rc;
}

static bool iface_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

static int iface_flags(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	rc = ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ? -1 : ifr.ifr_flags;
	close(s);
	return rc;
}

/* A persistent TAP, no IPv6 (no router solicitations in our rx buffers), up. */
static int make_tap(const char *name)
{
	char path[128];
	struct ifreq ifr = { 0 };
	int s, fd;

	if (tap_persist(name, 1) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			fprintf(stderr, "note: could not disable IPv6 on %s\n", name);
		close(fd);
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = IFF_UP;
	if (s < 0 || ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	close(s);
	return 0;
}

static int packet_socket(const char *name)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int one = 1, fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));

	if (fd < 0)
		return -1;
	sll.sll_ifindex = (int)if_nametoindex(name);
	if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Next frame on the TAP that the device sent (not our own); its length, or -1 after 1 s. */
static ssize_t peer_recv(uint8_t *buf, size_t size, uint32_t *status)
{
	for (;;) {
		struct pollfd p = { pkt_fd, POLLIN, 0 };
		char cbuf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
		struct sockaddr_ll from;
		struct iovec iov = { buf, size };
		struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
				    .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		ssize_t n;

		if (poll(&p, 1, 1000) <= 0)
			return -1;
		n = recvmsg(pkt_fd, &m, MSG_TRUNC);
		if (n < 0)
			return -1;
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		*status = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
				*status = ((struct tpacket_auxdata *)CMSG_DATA(c))->tp_status;
		return n;
	}
}

/* Forget what earlier tests left on the socket. */
static void peer_drain(void)
{
	uint8_t b[64];

	while (recv(pkt_fd, b, sizeof(b), MSG_DONTWAIT | MSG_TRUNC) >= 0)
		;
}

static void peer_send(const uint8_t *frame, size_t len)
{
	CHECK_EQ(send(pkt_fd, frame, len, 0), len);
}

/* A test frame: to `dst`, ethertype 0x88B5, payload bytes from `seed`. */
static size_t test_frame(uint8_t *f, size_t len, const uint8_t *dst, const uint8_t *src,
			 unsigned seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETHERTYPE_TEST >> 8;
	f[13] = ETHERTYPE_TEST & 0xff;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed * 31 + i * 7);
	return len;
}

/* ---- the driver ------------------------------------------------------------------- */

static uint64_t rd(uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	virtio_pci_bar_io(&vp, off, (uint8_t *)&v, len, false);
	return v;
}

static void wr(uint64_t off, uint64_t v, uint32_t len)
{
	virtio_pci_bar_io(&vp, off, (uint8_t *)&v, len, true);
}

static uint8_t status(void)
{
	return (uint8_t)rd(VIRTIO_PCI_COMMON_STATUS, 1);
}

static void setup_queue(unsigned q, uint64_t desc, uint64_t avail, uint64_t used)
{
	gm_zero(&gm, desc, 0x3000);
	wr(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
	wr(VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
	wr(VIRTIO_PCI_COMMON_Q_DESC, desc, 8);
	wr(VIRTIO_PCI_COMMON_Q_AVAIL, avail, 8);
	wr(VIRTIO_PCI_COMMON_Q_USED, used, 8);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

/* Reset, negotiate `features`, set both queues up, DRIVER_OK. Returns the status. */
static uint8_t driver_start(uint64_t features)
{
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)features, 4);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)(features >> 32), 4);
	s |= VIRTIO_STATUS_FEATURES_OK;
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	setup_queue(NET_RXQ, RX_DESC, RX_AVAIL, RX_USED);
	setup_queue(NET_TXQ, TX_DESC, TX_AVAIL, TX_USED);
	wr(VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_DRIVER_OK, 1);
	tx_next = rx_next = 0;
	return status();
}

static void run_tap(void *arg)
{
	virtio_pci_run(arg, NET_RXQ, net_tap_ready);
}

/* Device up on TAP tap_name (attached), optionally with a real I/O thread watching it. */
static void device_start(bool iothread)
{
	struct virtio_pci_host host = { .gm = &gm };
	struct yun_err err;

	with_iothread = iothread;
	peer_drain();
	CHECK_EQ(net_open(&net, tap_name, guest_mac, &err), 0);
	CHECK(!net.created);
	if (iothread) {
		CHECK_EQ(iothread_init(&io, &err), 0);
		host.iothread = &io;
	}
	CHECK_EQ(virtio_pci_init(&vp, &net_ops, &net, &host, &err), 0);
	if (iothread) {
		CHECK_EQ(net_watch(&net, &io, run_tap, &vp, &err), 0);
		CHECK_EQ(iothread_start(&io, "test-io", &err), 0);
	}
}

static void device_stop(void)
{
	if (with_iothread)
		iothread_destroy(&io);
	virtio_pci_destroy(&vp);
	net_close(&net);
}

static struct vring_used *used_ring(uint64_t gpa)
{
	return gm_ptr(&gm, gpa, 6 + 8 * QSZ);
}

static uint16_t used_idx(uint64_t gpa)
{
	return __atomic_load_n(&used_ring(gpa)->idx, __ATOMIC_ACQUIRE);
}

/* With an I/O thread the device runs asynchronously: wait for the used index. */
static bool wait_used(uint64_t gpa, uint16_t want)
{
	for (int i = 0; i < 2000 && used_idx(gpa) != want; i++)
		usleep(1000);
	return used_idx(gpa) == want;
}

/* Put a chain of n buffers (gpa, len, writable) on a queue; kick unless told not to. */
struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static void add_chain(unsigned q, const struct buf *b, unsigned n, bool kick)
{
	uint64_t dgpa = q == NET_RXQ ? RX_DESC : TX_DESC, agpa = q == NET_RXQ ? RX_AVAIL : TX_AVAIL;
	struct vring_desc *t = gm_ptr(&gm, dgpa, 16 * QSZ);
	struct vring_avail *a = gm_ptr(&gm, agpa, 6 + 2 * QSZ);
	uint16_t *next = q == NET_RXQ ? &rx_next : &tx_next;
	uint16_t head = *next % QSZ;

	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (*next)++ % QSZ;

		t[d] = (struct vring_desc){ b[i].gpa, b[i].len,
					    (uint16_t)((b[i].write ? VRING_DESC_F_WRITE : 0) |
						       (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
					    (uint16_t)(*next % QSZ) };
	}
	a->ring[a->idx % QSZ] = head;
	__atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
	if (kick)
		wr(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, q, 2);
}

static void rx_post(unsigned slot, uint32_t len, bool kick)
{
	struct buf b = { RX_BUF + slot * RX_STRIDE, len, true };

	add_chain(NET_RXQ, &b, 1, kick);
}

/* The TAP has what we sent on the socket: let the device read it (no I/O thread). */
static void tap_ready(void)
{
	struct pollfd p = { net.tap_fd, POLLIN, 0 };

	poll(&p, 1, 1000);
	virtio_pci_run(&vp, NET_RXQ, net_tap_ready);
}

/* Transmit hdr + frame, the header in its own buffer when `split`. */
static void tx_send(const struct virtio_net_hdr *h, const uint8_t *frame, uint32_t len, bool split)
{
	uint8_t *p = gm_ptr(&gm, TX_BUF, NET_HDR_LEN + len);

	memcpy(p, h, NET_HDR_LEN);
	memcpy(p + NET_HDR_LEN, frame, len);
	if (split) {
		struct buf b[2] = { { TX_BUF, NET_HDR_LEN, false },
				    { TX_BUF + NET_HDR_LEN, len, false } };
		add_chain(NET_TXQ, b, 2, true);
	} else {
		struct buf b = { TX_BUF, NET_HDR_LEN + len, false };
		add_chain(NET_TXQ, &b, 1, true);
	}
}

static bool watching(void)
{
	bool w;

	pthread_mutex_lock(&vp.lock);
	w = net.watching;
	pthread_mutex_unlock(&vp.lock);
	return w;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_names_and_macs(void)
{
	uint8_t m[6];

	CHECK_EQ(net_parse_mac("52:54:00:12:34:56", m), 0);
	CHECK(!memcmp(m, guest_mac, 6));
	CHECK_EQ(net_parse_mac("02:AB:cd:EF:00:01", m), 0);
	CHECK_EQ(net_parse_mac("01:00:5e:00:00:01", m), -EINVAL); /* multicast */
	CHECK_EQ(net_parse_mac("00:00:00:00:00:00", m), -EINVAL);
	CHECK_EQ(net_parse_mac("52:54:00:12:34", m), -EINVAL);
	CHECK_EQ(net_parse_mac("52:54:00:12:34:56:78", m), -EINVAL);
	CHECK_EQ(net_parse_mac("52-54-00-12-34-56", m), -EINVAL);
	CHECK_EQ(net_parse_mac("52:54:00:12:34:5g", m), -EINVAL);
	CHECK_EQ(net_parse_mac("", m), -EINVAL);
	CHECK(net_tap_name_ok("ytap0"));
	CHECK(net_tap_name_ok("123456789012345"));
	CHECK(!net_tap_name_ok("1234567890123456"));
	CHECK(!net_tap_name_ok(""));
	CHECK(!net_tap_name_ok("tap%d"));
	CHECK(!net_tap_name_ok("a/b"));
	CHECK(!net_tap_name_ok("a b"));
	CHECK(!net_tap_name_ok(".."));
}

static void test_identity_and_config(void)
{
	uint8_t cfg[NET_CONFIG_SIZE];
	uint64_t df;

	device_start(false);
	CHECK_EQ(pci_cfg_get16(&vp.pci, PCI_DEVICE_ID), 0x1041);
	CHECK_EQ(pci_cfg_get32(&vp.pci, PCI_REVISION_ID) >> 8, 0x020000);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_NUMQ, 2), 2);
	wr(VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	df = rd(VIRTIO_PCI_COMMON_DF, 4);
	for (unsigned b = 0; b < 17; b++)
		if (b == VIRTIO_NET_F_CSUM || b == VIRTIO_NET_F_GUEST_CSUM || b == VIRTIO_NET_F_MAC ||
		    b == VIRTIO_NET_F_GUEST_TSO4 || b == VIRTIO_NET_F_HOST_TSO4 ||
		    b == VIRTIO_NET_F_MRG_RXBUF || b == VIRTIO_NET_F_STATUS)
			CHECK(df & BIT(b));
	CHECK(!(df & BIT(17))); /* no control queue */
	for (unsigned i = 0; i < NET_CONFIG_SIZE; i++)
		cfg[i] = (uint8_t)rd(VIRTIO_PCI_DEVICE_OFF + i, 1);
	CHECK(!memcmp(cfg, guest_mac, 6));
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + NET_CFG_STATUS, 2), VIRTIO_NET_S_LINK_UP);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + NET_CFG_MAX_VQ, 2), 1);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + NET_CONFIG_SIZE, 1), 0); /* past the end */
	/* Writes to the MAC do nothing in a modern device. */
	wr(VIRTIO_PCI_DEVICE_OFF, 0xff, 1);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 1), guest_mac[0]);
	CHECK(!(driver_start(BASE_FEATURES) & VIRTIO_STATUS_NEEDS_RESET));
	device_stop();
}

static void test_tx_frames_reach_the_tap(void)
{
	static uint8_t f[2000], got[70000];
	struct virtio_net_hdr h = { 0 };
	uint32_t st;
	unsigned lens[] = { 60, 1000, 1514, 14 };

	device_start(false);
	CHECK(!(driver_start(BASE_FEATURES) & VIRTIO_STATUS_NEEDS_RESET));
	for (unsigned i = 0; i < 4; i++) {
		test_frame(f, lens[i], peer_mac, guest_mac, i);
		tx_send(&h, f, lens[i], i & 1);
		CHECK_EQ(used_idx(TX_USED), i + 1);
		CHECK_EQ(peer_recv(got, sizeof(got), &st), lens[i]);
		CHECK(!memcmp(got, f, lens[i]));
		CHECK(!(st & TP_STATUS_CSUMNOTREADY));
	}
	CHECK_EQ(used_ring(TX_USED)->ring[0].len, 0);
	CHECK_EQ(net.stats.tx_frames, 4);
	CHECK_EQ(net.stats.tx_bytes, 60 + 1000 + 1514 + 14);
	CHECK_EQ(net.stats.tx_dropped, 0);
	device_stop();
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_tx_rate_limit(void)
{
	static uint8_t f[1000], got[2000];
	struct net_limits lim = { .tx_pps = 20 };
	struct virtio_net_hdr h = { 0 };
	struct yun_err err;
	uint32_t st;
	double t0, t;
	unsigned n = 0;

	device_start(false);
	CHECK_EQ(net_set_limits(&net, &lim, &err), 0);
	/* Both timers exist limited or not: limits may come at run time. */
	CHECK(net_timer_fd(&net, NET_RXQ) >= 0);
	CHECK(net_timer_fd(&net, NET_TXQ) >= 0);
	CHECK(!throttle_enabled(&net.throttle[NET_RXQ]));
	CHECK(!(driver_start(BASE_FEATURES) & VIRTIO_STATUS_NEEDS_RESET));
	test_frame(f, sizeof(f), peer_mac, guest_mac, 1);
	/* 15 frames, each kicked: the bucket (100 ms at 20/s) lets 2 through at once. */
	t0 = now_s();
	for (unsigned i = 0; i < 15; i++)
		tx_send(&h, f, sizeof(f), false);
	CHECK_EQ(used_idx(TX_USED), 2);
	while (used_idx(TX_USED) != 15 && now_s() - t0 < 5) {
		struct pollfd p = { net_timer_fd(&net, NET_TXQ), POLLIN, 0 };

		poll(&p, 1, 100);
		if (p.revents)
			virtio_pci_run(&vp, NET_TXQ, net_timer_fired);
	}
	t = now_s() - t0;
	fprintf(stderr, "   15 frames at tx_pps=20: %.3f s\n", t);
	CHECK_EQ(used_idx(TX_USED), 15);
	CHECK(t > 0.65 * 0.75 && t < 0.65 * 1.25); /* 13 frames at 20/s */
	while (n < 15 && peer_recv(got, sizeof(got), &st) == sizeof(f))
		n++;
	CHECK_EQ(n, 15);
	CHECK_EQ(net.stats.tx_frames, 15);
	CHECK(!(status() & VIRTIO_STATUS_NEEDS_RESET));
	device_stop();
}

static void tx_timer(void *arg)
{
	virtio_pci_run(arg, NET_TXQ, net_timer_fired);
}

static void rx_timer(void *arg)
{
	virtio_pci_run(arg, NET_RXQ, net_timer_fired);
}

/*
 * Transmit the frame already at TX_BUF again: with an I/O thread the device
 * may still be reading the buffer, so it is written once, not per frame.
 */
static void tx_resend(uint32_t len)
{
	struct buf b = { TX_BUF, NET_HDR_LEN + len, false };

	add_chain(NET_TXQ, &b, 1, true);
}

/* Wait until the tx used index reaches want; returns the seconds it took from t0. */
static double tx_wait(uint16_t want, double t0)
{
	while (used_idx(TX_USED) != want && now_s() - t0 < 5)
		usleep(1000);
	CHECK_EQ(used_idx(TX_USED), want);
	return now_s() - t0;
}

/*
 * Limits changed by another thread (the control API's) while the I/O
 * thread runs the device, wired as vm.c does it: both timer fds watched
 * from the start, unlimited; then tx frames/s set alone (partial: the rx
 * buckets and tx bytes keep theirs), and lifted while frames wait.
 */
static void test_limits_at_run_time(void)
{
	static uint8_t f[600], got[2000];
	struct net_limits_update u = { .tx = { .set_ops = true, .ops = { .rate = 20 } } };
	struct virtio_net_hdr h = { 0 };
	struct yun_err err;
	uint32_t st;
	uint16_t sent = 0;
	double t0, t;
	unsigned n = 0;

	with_iothread = true;
	peer_drain();
	CHECK_EQ(net_open(&net, tap_name, guest_mac, &err), 0);
	CHECK_EQ(iothread_init(&io, &err), 0);
	{
		struct virtio_pci_host host = { .gm = &gm, .iothread = &io };

		CHECK_EQ(virtio_pci_init(&vp, &net_ops, &net, &host, &err), 0);
	}
	CHECK_EQ(net_watch(&net, &io, run_tap, &vp, &err), 0);
	CHECK_EQ(iothread_watch(&io, net_timer_fd(&net, NET_TXQ), tx_timer, &vp, &err), 0);
	CHECK_EQ(iothread_watch(&io, net_timer_fd(&net, NET_RXQ), rx_timer, &vp, &err), 0);
	CHECK_EQ(iothread_start(&io, "test-io", &err), 0);
	CHECK(!(driver_start(BASE_FEATURES) & VIRTIO_STATUS_NEEDS_RESET));
	test_frame(f, sizeof(f), peer_mac, guest_mac, 3);
	memcpy(gm_ptr(&gm, TX_BUF, NET_HDR_LEN), &h, NET_HDR_LEN);
	memcpy(gm_ptr(&gm, TX_BUF + NET_HDR_LEN, sizeof(f)), f, sizeof(f));

	/* Unlimited: 15 frames go at once. */
	t0 = now_s();
	for (unsigned i = 0; i < 15; i++)
		tx_resend(sizeof(f));
	sent += 15;
	t = tx_wait(sent, t0);
	CHECK(t < 0.4); /* 20/s would take 0.65 s */

	/* tx 20 frames/s from this thread while the device runs: 13 of 15 frames at 20/s. */
	CHECK_EQ(virtio_pci_call(&vp, net_call_update_limits, &u, &err), 0);
	t0 = now_s();
	for (unsigned i = 0; i < 15; i++)
		tx_resend(sizeof(f));
	sent += 15;
	t = tx_wait(sent, t0);
	fprintf(stderr, "   15 frames after tx_pps=20 at run time: %.3f s\n", t);
	CHECK(t > 0.65 * 0.75 && t < 0.65 * 1.25);
	pthread_mutex_lock(&vp.lock);
	CHECK(!throttle_enabled(&net.throttle[NET_RXQ])); /* untouched by a tx-only update */
	CHECK(!net.throttle[NET_TXQ].rl.bytes.rate);
	pthread_mutex_unlock(&vp.lock);

	/* Frames beyond the budget wait for the timer; lifting the limit frees them at once. */
	for (unsigned i = 0; i < 15; i++)
		tx_resend(sizeof(f));
	sent += 15;
	usleep(20000);
	CHECK(used_idx(TX_USED) < sent);
	u.tx.ops.rate = 0;
	t0 = now_s();
	CHECK_EQ(virtio_pci_call(&vp, net_call_update_limits, &u, &err), 0);
	t = tx_wait(sent, t0);
	fprintf(stderr, "   waiting frames after the limit went: %.3f s\n", t);
	CHECK(t < 0.1);
	while (n < sent && peer_recv(got, sizeof(got), &st) == sizeof(f))
		n++;
	CHECK_EQ(n, sent);
	CHECK(!(status() & VIRTIO_STATUS_NEEDS_RESET));
	device_stop();
}

/* IPv4 + TCP/UDP frame to the peer: header fields only, the sums left to the test. */
static size_t ip_frame(uint8_t *f, uint8_t proto, size_t payload)
{
	size_t l4 = proto == 6 ? 20 : 8, tot = 20 + l4 + payload;
	uint8_t *ip = f + 14, *th = ip + 20;

	memcpy(f, peer_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 20 + l4);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, (uint8_t[]){ 10, 0, 2, 15, 10, 0, 2, 2 }, 8);
	th[0] = 0x13;
	th[1] = 0x88; /* port 5000 */
	th[2] = 0x13;
	th[3] = 0x89;
	if (proto == 6) {
		th[12] = 5 << 4;
		th[13] = 0x18; /* PSH ACK */
	} else {
		th[4] = (uint8_t)((8 + payload) >> 8);
		th[5] = (uint8_t)(8 + payload);
	}
	for (size_t i = 0; i < payload; i++)
		th[l4 + i] = (uint8_t)i;
	return 14 + tot;
}

static void test_tx_offloads(void)
{
	static uint8_t f[NET_MAX_FRAME], got[70000];
	struct virtio_net_hdr h = { 0 };
	uint32_t st;
	size_t len;

	device_start(false);
	CHECK(!(driver_start(BASE_FEATURES | BIT(VIRTIO_NET_F_CSUM) |
			     BIT(VIRTIO_NET_F_HOST_TSO4)) & VIRTIO_STATUS_NEEDS_RESET));
	/* Checksum-partial UDP: the TAP gets it as CHECKSUM_PARTIAL. */
	len = ip_frame(f, 17, 100);
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = 34;
	h.csum_offset = 6;
	tx_send(&h, f, (uint32_t)len, false);
	CHECK_EQ(peer_recv(got, sizeof(got), &st), len);
	CHECK(st & TP_STATUS_CSUMNOTREADY);
	CHECK(!memcmp(got, f, len));
	/* A 20000-byte TCP segment for the kernel to cut into 1448-byte ones. */
	len = ip_frame(f, 6, 20000);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.gso_size = 1448;
	h.hdr_len = 54;
	h.csum_offset = 16;
	tx_send(&h, f, (uint32_t)len, true);
	CHECK_EQ(used_idx(TX_USED), 2);
	CHECK_EQ(peer_recv(got, sizeof(got), &st), len);
	CHECK(!memcmp(got + 54, f + 54, len - 54));
	CHECK_EQ(net.stats.tx_frames, 2);
	CHECK_EQ(net.stats.tx_dropped, 0);
	device_stop();
}

static void test_tx_bad_headers_dropped(void)
{
	static uint8_t f[2000], got[2000];
	struct virtio_net_hdr bad[] = {
		{ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 }, /* no CSUM */
		{ .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1000 },  /* no HOST_TSO4 */
		{ .gso_type = 3 },                                           /* UDP: not offered */
		{ .flags = 0x80 },                                           /* unknown flag */
		{ .flags = VIRTIO_NET_HDR_F_DATA_VALID },                    /* rx only */
	};
	struct virtio_net_hdr ok = { 0 };
	uint32_t st;
	unsigned n = sizeof(bad) / sizeof(bad[0]);

	device_start(false);
	driver_start(BASE_FEATURES);
	test_frame(f, 100, peer_mac, guest_mac, 9);
	for (unsigned i = 0; i < n; i++)
		tx_send(&bad[i], f, 100, false);
	CHECK_EQ(used_idx(TX_USED), n);      /* each chain given back... */
	CHECK_EQ(net.stats.tx_dropped, n);   /* ...and its frame dropped */
	CHECK(!(status() & VIRTIO_STATUS_NEEDS_RESET));
	tx_send(&ok, f, 100, false);
	CHECK_EQ(peer_recv(got, sizeof(got), &st), 100); /* the device goes on */
	CHECK(!memcmp(got, f, 100));

	/* With CSUM: csum_start/offset must lie in the frame. */
	driver_start(BASE_FEATURES | BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4));
	ok = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 90,
				      .csum_offset = 9 };
	tx_send(&ok, f, 100, false);
	ok = (struct virtio_net_hdr){ .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 0 };
	tx_send(&ok, f, 100, false); /* GSO without gso_size or NEEDS_CSUM */
	CHECK_EQ(net.stats.tx_dropped, n + 2);
	CHECK(!(status() & VIRTIO_STATUS_NEEDS_RESET));
	device_stop();
}

static void test_tx_bad_chains_need_reset(void)
{
	static uint8_t f[2000];
	struct virtio_net_hdr h = { 0 };

	device_start(false);
	/* Shorter than the header. */
	driver_start(BASE_FEATURES);
	add_chain(NET_TXQ, &(struct buf){ TX_BUF, 5, false }, 1, true);
	CHECK(status() & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ(used_idx(TX_USED), 0);
	/* Longer than 64 KiB + headers. */
	driver_start(BASE_FEATURES);
	CHECK(!(status() & VIRTIO_STATUS_NEEDS_RESET));
	add_chain(NET_TXQ, &(struct buf){ TX_BUF, NET_HDR_LEN + NET_MAX_FRAME + 1, false }, 1, true);
	CHECK(status() & VIRTIO_STATUS_NEEDS_RESET);
	/* A device-writable buffer in a tx chain. */
	driver_start(BASE_FEATURES);
	add_chain(NET_TXQ, (struct buf[]){ { TX_BUF, 100, false }, { TX_BUF + 100, 100, true } },
		  2, true);
	CHECK(status() & VIRTIO_STATUS_NEEDS_RESET);
	/* Outside guest RAM. */
	driver_start(BASE_FEATURES);
	add_chain(NET_TXQ, &(struct buf){ LAYOUT_PCI_MMIO32, 100, false }, 1, true);
	CHECK(status() & VIRTIO_STATUS_NEEDS_RESET);
	/* After a reset it works again. */
	driver_start(BASE_FEATURES);
	test_frame(f, 64, peer_mac, guest_mac, 1);
	tx_send(&h, f, 64, false);
	CHECK_EQ(used_idx(TX_USED), 1);
	CHECK_EQ(net.stats.tx_frames, 1);
	CHECK(!(status() & VIRTIO_STATUS_NEEDS_RESET));
	device_stop();
}

/* Check rx used entry `i`: one buffer (slot) holding hdr + frame. */
static void check_rx(unsigned i, unsigned slot, const uint8_t *frame, size_t len)
{
	struct vring_used *u = used_ring(RX_USED);
	const uint8_t *b = gm_ptr(&gm, RX_BUF + slot * RX_STRIDE, NET_HDR_LEN + len);
	struct virtio_net_hdr h;

	CHECK_EQ(u->ring[i % QSZ].id, slot);
	CHECK_EQ(u->ring[i % QSZ].len, NET_HDR_LEN + len);
	memcpy(&h, b, sizeof(h));
	CHECK_EQ(h.num_buffers, 1);
	CHECK_EQ(h.gso_type, 0);
	CHECK(!(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM));
	CHECK(!memcmp(b + NET_HDR_LEN, frame, len));
}

static void test_rx_frames_reach_the_guest(void)
{
	static uint8_t f[4][1600];
	unsigned lens[] = { 60, 333, 1514, 64 };

	device_start(false);
	CHECK(!(driver_start(BASE_FEATURES) & VIRTIO_STATUS_NEEDS_RESET));
	for (unsigned i = 0; i < 8; i++) {
		uint8_t *stale = gm_ptr(&gm, RX_BUF + i * RX_STRIDE, NET_HDR_LEN);

		memset(stale, 0xee, NET_HDR_LEN); /* the device must write all of the header */
		rx_post(i, 2048, i == 7);
	}
	for (unsigned i = 0; i < 4; i++)
		peer_send(f[i], test_frame(f[i], lens[i], guest_mac, peer_mac, 40 + i));
	for (int t = 0; t < 100 && used_idx(RX_USED) < 4; t++)
		tap_ready();
	CHECK_EQ(used_idx(RX_USED), 4);
	for (unsigned i = 0; i < 4; i++)
		check_rx(i, i, f[i], lens[i]);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(((uint8_t *)gm_ptr(&gm, RX_BUF + i * RX_STRIDE, 1))[0], 0); /* flags */
	CHECK_EQ(net.stats.rx_frames, 4);
	CHECK_EQ(net.stats.rx_dropped, 0);

	/* A frame bigger than the (non-merged) buffer is dropped; the buffer stays for the next. */
	driver_start(BASE_FEATURES | BIT(VIRTIO_NET_F_GUEST_CSUM));
	rx_post(0, 200, true);
	peer_send(f[0], test_frame(f[0], 1000, guest_mac, peer_mac, 1));
	tap_ready();
	CHECK_EQ(used_idx(RX_USED), 0);
	CHECK_EQ(net.stats.rx_dropped, 1);
	peer_send(f[1], test_frame(f[1], 100, guest_mac, peer_mac, 2));
	tap_ready();
	CHECK_EQ(used_idx(RX_USED), 1);
	check_rx(0, 0, f[1], 100);
	device_stop();
}

static void test_rx_rate_limit(void)
{
	static uint8_t f[10][200];
	struct net_limits lim = { .rx_pps = 20 };
	struct yun_err err;
	double t0, t;

	device_start(false);
	CHECK_EQ(net_set_limits(&net, &lim, &err), 0);
	CHECK(net_timer_fd(&net, NET_TXQ) >= 0);
	CHECK(!throttle_enabled(&net.throttle[NET_TXQ]));
	CHECK(!(driver_start(BASE_FEATURES) & VIRTIO_STATUS_NEEDS_RESET));
	for (unsigned i = 0; i < 10; i++)
		rx_post(i, 2048, i == 9);
	for (unsigned i = 0; i < 10; i++)
		peer_send(f[i], test_frame(f[i], sizeof(f[i]), guest_mac, peer_mac, 60 + i));
	/* 10 frames waiting on the TAP: 2 from the bucket at once, 8 more at 20/s. */
	t0 = now_s();
	tap_ready();
	CHECK_EQ(used_idx(RX_USED), 2);
	while (used_idx(RX_USED) != 10 && now_s() - t0 < 5) {
		struct pollfd p = { net_timer_fd(&net, NET_RXQ), POLLIN, 0 };

		poll(&p, 1, 100);
		if (p.revents)
			virtio_pci_run(&vp, NET_RXQ, net_timer_fired);
	}
	t = now_s() - t0;
	fprintf(stderr, "   10 frames at rx_pps=20: %.3f s\n", t);
	CHECK_EQ(used_idx(RX_USED), 10);
	CHECK(t > 0.4 * 0.75 && t < 0.4 * 1.25);
	for (unsigned i = 0; i < 10; i++)
		check_rx(i, i, f[i], sizeof(f[i]));
	CHECK_EQ(net.stats.rx_dropped, 0);
	device_stop();
}

static void test_rx_merged_buffers(void)
{
	static uint8_t f[1600], all[4096];
	struct vring_used *u = used_ring(RX_USED);
	struct virtio_net_hdr h;
	size_t len = test_frame(f, 1400, guest_mac, peer_mac, 77), at = 0;

	device_start(false);
	CHECK(!(driver_start(BASE_FEATURES | BIT(VIRTIO_NET_F_MRG_RXBUF)) &
		VIRTIO_STATUS_NEEDS_RESET));
	/* One 512-byte buffer: the frame waits for more, the TAP is not read meanwhile. */
	rx_post(0, 512, true);
	peer_send(f, len);
	tap_ready();
	CHECK_EQ(used_idx(RX_USED), 0);
	CHECK_EQ(net.stats.rx_dropped, 0);
	/* Two more and a kick: the frame in three buffers, published at once. */
	rx_post(1, 512, false);
	rx_post(2, 512, true);
	CHECK_EQ(used_idx(RX_USED), 3);
	for (unsigned i = 0; i < 3; i++) {
		uint32_t l = u->ring[i].len;

		CHECK_EQ(u->ring[i].id, i);
		CHECK_EQ(l, i < 2 ? 512 : NET_HDR_LEN + len - 1024);
		memcpy(all + at, gm_ptr(&gm, RX_BUF + i * RX_STRIDE, l), l);
		at += l;
	}
	memcpy(&h, all, sizeof(h));
	CHECK_EQ(h.num_buffers, 3);
	CHECK_EQ(at, NET_HDR_LEN + len);
	CHECK(!memcmp(all + NET_HDR_LEN, f, len));
	/* Small frames take one buffer each, num_buffers 1. */
	for (unsigned i = 3; i < 9; i++)
		rx_post(i, 512, i == 8);
	peer_send(f, test_frame(f, 100, guest_mac, peer_mac, 5));
	tap_ready();
	CHECK_EQ(used_idx(RX_USED), 4);
	memcpy(&h, gm_ptr(&gm, RX_BUF + 3 * RX_STRIDE, sizeof(h)), sizeof(h));
	CHECK_EQ(h.num_buffers, 1);
	CHECK_EQ(u->ring[3].len, NET_HDR_LEN + 100);
	device_stop();
}

/* Send a TSO frame into the TAP (a socket with PACKET_VNET_HDR, as a host stack would). */
static void peer_send_gso(const uint8_t *frame, size_t len)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };
	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54,
				    .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
	struct iovec iov[2] = { { &h, 10 }, { (void *)frame, len } }; /* the 10-byte legacy header */
	struct msghdr m = { .msg_name = &sll, .msg_namelen = sizeof(sll), .msg_iov = iov,
			    .msg_iovlen = 2 };
	int one = 1, fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

	sll.sll_ifindex = (int)if_nametoindex(tap_name);
	CHECK(fd >= 0 && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) == 0);
	CHECK_EQ(sendmsg(fd, &m, 0), 10 + len);
	close(fd);
}

/* GUEST_TSO4 + MRG_RXBUF: a 30 KB TCP frame from the host arrives whole, in 4 KiB buffers. */
static void test_rx_gso_merged(void)
{
	static uint8_t f[40000], all[40000];
	struct vring_used *u = used_ring(RX_USED);
	struct virtio_net_hdr h;
	size_t len, at = 0;
	unsigned k;

	device_start(false);
	CHECK(!(driver_start(BASE_FEATURES | BIT(VIRTIO_NET_F_MRG_RXBUF) |
			     BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_GUEST_TSO4)) &
		VIRTIO_STATUS_NEEDS_RESET));
	for (unsigned i = 0; i < QSZ; i++)
		rx_post(i, 4096, i == QSZ - 1);
	len = ip_frame(f, 6, 30000);
	memcpy(f, guest_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	peer_send_gso(f, len);
	tap_ready();
	CHECK_EQ(used_idx(RX_USED), (NET_HDR_LEN + len + 4095) / 4096);
	k = used_idx(RX_USED);
	for (unsigned i = 0; i < k && i < QSZ; i++) {
		CHECK_EQ(u->ring[i].id, i);
		memcpy(all + at, gm_ptr(&gm, RX_BUF + i * RX_STRIDE, u->ring[i].len), u->ring[i].len);
		at += u->ring[i].len;
	}
	CHECK_EQ(at, NET_HDR_LEN + len);
	memcpy(&h, all, sizeof(h));
	CHECK_EQ(h.num_buffers, k);
	CHECK_EQ(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	CHECK_EQ(h.gso_size, 1448);
	CHECK(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
	CHECK_EQ(h.csum_start, 34);
	CHECK_EQ(h.csum_offset, 16);
	CHECK(!memcmp(all + NET_HDR_LEN + 54, f + 54, len - 54));
	device_stop();
}

static void test_rx_bad_chain_needs_reset(void)
{
	device_start(false);
	driver_start(BASE_FEATURES);
	add_chain(NET_RXQ, &(struct buf){ RX_BUF, 2048, false }, 1, true); /* readable rx buffer */
	CHECK(status() & VIRTIO_STATUS_NEEDS_RESET);
	driver_start(BASE_FEATURES);
	add_chain(NET_RXQ, &(struct buf){ RX_BUF, 8, true }, 1, true); /* no room for the header */
	CHECK(status() & VIRTIO_STATUS_NEEDS_RESET);
	device_stop();
}

/* With the I/O thread: no buffers pauses the TAP (no spinning); a kick delivers the frame. */
static void test_rx_waits_for_buffers(void)
{
	static uint8_t f[3][1600];
	double cpu;

	device_start(true);
	CHECK(!watching()); /* nothing to do before DRIVER_OK */
	CHECK(!(driver_start(BASE_FEATURES) & VIRTIO_STATUS_NEEDS_RESET));
	peer_send(f[0], test_frame(f[0], 200, guest_mac, peer_mac, 100));
	cpu = cpu_seconds();
	usleep(300 * 1000);
	cpu = cpu_seconds() - cpu;
	CHECK_EQ(used_idx(RX_USED), 0);
	CHECK(!watching());
	CHECK(cpu < 0.1); /* nobody spins on the readable TAP */
	rx_post(0, 2048, false);
	rx_post(1, 2048, true);
	CHECK(wait_used(RX_USED, 1));
	check_rx(0, 0, f[0], 200);
	/* Buffers left: the TAP is polled again and the next frame comes on its own. */
	CHECK(watching());
	peer_send(f[1], test_frame(f[1], 900, guest_mac, peer_mac, 101));
	CHECK(wait_used(RX_USED, 2));
	check_rx(1, 1, f[1], 900);
	/* Out of buffers again, then a frame, then a reset: the device stays quiet. */
	peer_send(f[2], test_frame(f[2], 64, guest_mac, peer_mac, 102));
	usleep(50 * 1000);
	CHECK(!watching());
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK(!watching());
	cpu = cpu_seconds();
	usleep(200 * 1000);
	CHECK(cpu_seconds() - cpu < 0.1);
	/* The frame queued across the reset reaches the new driver. */
	driver_start(BASE_FEATURES);
	rx_post(0, 2048, true);
	CHECK(wait_used(RX_USED, 1));
	check_rx(0, 0, f[2], 64);
	/* tx through the I/O thread too. */
	struct virtio_net_hdr h = { 0 };
	uint8_t got[2000];
	uint32_t st;
	tx_send(&h, f[1], 900, false);
	CHECK_EQ(peer_recv(got, sizeof(got), &st), 900);
	CHECK(wait_used(TX_USED, 1));
	device_stop();
}

static void test_create_attach_refuse(void)
{
	char name[IFNAMSIZ];
	struct net a, b;
	struct yun_err err;

	snprintf(name, sizeof(name), "ytnc%d", (int)getpid() % 100000);
	CHECK(!iface_exists(name));
	/* A TAP that is not there is created (and up), and goes with the device. */
	CHECK_EQ(net_open(&a, name, NULL, &err), 0);
	CHECK(a.created);
	CHECK(iface_exists(name));
	CHECK(iface_flags(name) & IFF_UP);
	CHECK(!(a.mac[0] & 1) && (a.mac[0] & 2)); /* random, unicast, locally administered */
	/* One device per TAP: the second is refused with the TAP's name. */
	CHECK_EQ(net_open(&b, name, NULL, &err), -EBUSY);
	CHECK_STR_CONTAINS(err.msg, name);
	CHECK_STR_CONTAINS(err.msg, "in use");
	net_close(&a);
	CHECK(!iface_exists(name));
	/* Not a TAP. */
	CHECK_EQ(net_open(&b, "lo", NULL, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "tap lo: exists and is not");
	CHECK_EQ(net_open(&b, "tap%d", NULL, &err), -EINVAL);
	/* An existing TAP stays when the device closes. */
	net_open(&a, tap_name, NULL, &err);
	CHECK(!a.created);
	net_close(&a);
	CHECK(iface_exists(tap_name));
}

int main(void)
{
	struct yun_err err;

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
		fprintf(stderr, "SKIP: needs root and /dev/net/tun\n");
		return 77;
	}
	snprintf(tap_name, sizeof(tap_name), "ytnt%d", (int)getpid() % 100000);
	if (make_tap(tap_name) < 0 || (pkt_fd = packet_socket(tap_name)) < 0) {
		fprintf(stderr, "cannot set up TAP %s: %s\n", tap_name, strerror(errno));
		tap_persist(tap_name, 0);
		return 1;
	}
	if (gm_init(&gm, 64ULL << 20, &err))
		return 1;
	RUN(test_names_and_macs);
	RUN(test_identity_and_config);
	RUN(test_tx_frames_reach_the_tap);
	RUN(test_tx_rate_limit);
	RUN(test_limits_at_run_time);
	RUN(test_tx_offloads);
	RUN(test_tx_bad_headers_dropped);
	RUN(test_tx_bad_chains_need_reset);
	RUN(test_rx_frames_reach_the_guest);
	RUN(test_rx_rate_limit);
	RUN(test_rx_merged_buffers);
	RUN(test_rx_gso_merged);
	RUN(test_rx_bad_chain_needs_reset);
	RUN(test_rx_waits_for_buffers);
	RUN(test_create_attach_refuse);
	close(pkt_fd);
	tap_persist(tap_name, 0);
	CHECK(!iface_exists(tap_name));
	gm_free(&gm);
	return CHECK_DONE();
}
