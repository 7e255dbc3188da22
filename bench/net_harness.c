/*
 * net_harness.c - virtio-net throughput in-process, on one thread: this
 * program plays the guest driver (split queues in a real guest_mem, notify
 * writes through the PCI transport, no KVM) against src/vmm/virtio/net.c on
 * a TAP it creates, and runs two anchors in the same run, each moving the
 * same frames the same way without any device model in between:
 *   anchor-veth  a host-only veth pair driven with AF_PACKET sockets
 *   anchor-tap   a second TAP (IFF_VNET_HDR, 12-byte header) written and
 *                read directly with writev()/read(): the kernel's share of
 *                the device's own path, so device / anchor-tap is what the
 *                device model costs on top
 *
 *   net_harness [SECONDS]      (default 2 per measurement; needs root)
 *
 * Measurements (each prints one JSON object per line):
 *   tx-1514   guest tx of 1514-byte frames -> TAP, vs sendmsg() of the same
 *             frames on a veth
 *   tx-tso64k guest tx of 64 KiB TCP/IPv4 TSO frames (HOST_TSO4, NEEDS_CSUM)
 *             -> TAP, vs sendmsg() with PACKET_VNET_HDR of the same on a veth
 *   rx-1514   frames sent on the TAP by an AF_PACKET socket -> the device ->
 *             the guest's rx buffers, vs the same frames sent on one veth
 *             end and received by an AF_PACKET socket on the other
 * Frames go to a MAC no host interface has, carry no addresses the host
 * stack wants, and die at the far device: nothing is routed anywhere.
 * Fields: frames, bytes, seconds, pps, gbit_s (frame bytes, no vnet
 * header), cpu_s (this process, user + system), and ratio = device / anchor
 * for pps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmm/virtio/net.h"
#include "vmm/virtio/pci.h"

#define QSZ      256
#define RX_DESC  0x10000ULL
#define RX_AVAIL 0x14000ULL
#define RX_USED  0x15000ULL
#define TX_DESC  0x20000ULL
#define TX_AVAIL 0x24000ULL
#define TX_USED  0x25000ULL
#define RX_BUF   0x100000ULL /* QSZ x 2 KiB */
#define TX_BUF   0x400000ULL /* one buffer for every tx descriptor: header + frame */
#define BATCH    128         /* rx frames in flight (the TAP's queue holds 500) */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t far_mac[6] = { 0x02, 0x59, 0x54, 0x00, 0x00, 0x02 };

static struct guest_mem gm;
static struct virtio_pci vp;
static struct net net, raw; /* raw: the second TAP, used without a device */
static char tap[IFNAMSIZ], tap2[IFNAMSIZ], veth0[IFNAMSIZ], veth1[IFNAMSIZ];
static double seconds = 2;

struct result {
	uint64_t frames, bytes;
	double secs, cpu;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void print(const char *test, const char *who, const struct result *r, double ratio)
{
	printf("{\"test\": \"%s\", \"path\": \"%s\", \"frames\": %llu, \"bytes\": %llu, "
	       "\"seconds\": %.3f, \"pps\": %.0f, \"gbit_s\": %.2f, \"cpu_s\": %.3f",
	       test, who, (unsigned long long)r->frames, (unsigned long long)r->bytes, r->secs,
	       r->frames / r->secs, r->bytes * 8 / r->secs / 1e9, r->cpu);
	if (ratio > 0)
		printf(", \"ratio\": %.3f", ratio);
	printf("}\n");
	fflush(stdout);
}

/* ---- host set-up ------------------------------------------------------------- */

static void sysctl_no_ipv6(const char *ifname)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			fprintf(stderr, "note: IPv6 stays on for %s\n", ifname);
		close(fd);
	}
}

static int run(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fprintf(stderr, "net_harness: \"%s\" failed (%d)\n", cmd, rc);
	return rc;
}

static int packet_socket(const char *ifname, int vnet_hdr)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)), big = 8 << 20;

	if (fd < 0)
		return -1;
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if ((vnet_hdr && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &vnet_hdr, sizeof(int)) < 0) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	return fd;
}

/* Ethernet + IPv4 + TCP, payload bytes after; returns the frame length. */
static size_t tcp_frame(uint8_t *f, const uint8_t *dst, size_t payload)
{
	size_t tot = 40 + payload;
	uint8_t *ip = f + 14;

	memcpy(f, dst, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 40);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, (uint8_t[]){ 10, 0, 2, 15, 10, 0, 2, 2 }, 8);
	ip[20] = 0x13;
	ip[21] = 0x88;
	ip[22] = 0x13;
	ip[23] = 0x89;
	ip[32] = 5 << 4;
	ip[33] = 0x10;
	for (size_t i = 0; i < payload; i++)
		ip[40 + i] = (uint8_t)i;
	return 14 + tot;
}

/* ---- the driver --------------------------------------------------------------- */

static void wr(uint64_t off, uint64_t v, uint32_t len)
{
	virtio_pci_bar_io(&vp, off, (uint8_t *)&v, len, true);
}

static void setup_queue(unsigned q, uint64_t desc, uint64_t avail, uint64_t used)
{
	gm_zero(&gm, desc, 0x6000);
	wr(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
	wr(VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
	wr(VIRTIO_PCI_COMMON_Q_DESC, desc, 8);
	wr(VIRTIO_PCI_COMMON_Q_AVAIL, avail, 8);
	wr(VIRTIO_PCI_COMMON_Q_USED, used, 8);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

static void driver_start(uint64_t features)
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
}

static uint16_t used_idx(uint64_t used)
{
	return __atomic_load_n(&((struct vring_used *)gm_ptr(&gm, used, 4))->idx, __ATOMIC_ACQUIRE);
}

/* Make all QSZ descriptors of a queue available (again), then kick it. */
static void post_all(unsigned q, uint64_t avail_gpa)
{
	struct vring_avail *a = gm_ptr(&gm, avail_gpa, 6 + 2 * QSZ);

	for (unsigned i = 0; i < QSZ; i++)
		a->ring[(uint16_t)(a->idx + i) % QSZ] = (uint16_t)i;
	__atomic_store_n(&a->idx, (uint16_t)(a->idx + QSZ), __ATOMIC_RELEASE);
	wr(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, q, 2);
}

/* ---- tx --------------------------------------------------------------------------- */

/*
 * QSZ tx buffers in guest memory, each header + frame. Every path sends
 * from these, so all pay the same cache misses (QSZ x 64 KiB is 16 MiB).
 */
static size_t tx_stride;

static uint8_t *tx_buf(unsigned i)
{
	return gm_ptr(&gm, TX_BUF + i * tx_stride, tx_stride);
}

static void tx_fill(const uint8_t *frame, size_t len, const struct virtio_net_hdr *h)
{
	tx_stride = (NET_HDR_LEN + len + 4095) & ~4095ULL;
	for (unsigned i = 0; i < QSZ; i++) {
		memcpy(tx_buf(i), h, NET_HDR_LEN);
		memcpy(tx_buf(i) + NET_HDR_LEN, frame, len);
	}
}

/* The guest sends QSZ frames per kick for `seconds`; every chain is header + frame in one buffer. */
static struct result device_tx(size_t len)
{
	struct vring_desc *t = gm_ptr(&gm, TX_DESC, 16 * QSZ);
	struct result r = { 0 };
	uint64_t before = net.stats.tx_frames, dropped = net.stats.tx_dropped;
	double t0, c0;

	for (unsigned i = 0; i < QSZ; i++)
		t[i] = (struct vring_desc){ TX_BUF + i * tx_stride, (uint32_t)(NET_HDR_LEN + len), 0, 0 };
	t0 = now();
	c0 = cpu_now();
	do
		post_all(NET_TXQ, TX_AVAIL);
	while (now() - t0 < seconds);
	r.secs = now() - t0;
	r.cpu = cpu_now() - c0;
	r.frames = net.stats.tx_frames - before;
	r.bytes = r.frames * len;
	if (net.stats.tx_dropped != dropped)
		fprintf(stderr, "net_harness: %llu tx frames dropped\n",
			(unsigned long long)(net.stats.tx_dropped - dropped));
	return r;
}

/* The anchor: the same frames sent on a veth with AF_PACKET, QSZ per sendmmsg(). */
static struct result veth_tx(size_t len, bool vnet_hdr)
{
	struct mmsghdr msg[QSZ];
	struct iovec iov[QSZ][2];
	struct result r = { 0 };
	int fd = packet_socket(veth0, vnet_hdr);
	double t0, c0;

	if (fd < 0) {
		perror("net_harness: veth socket");
		return r;
	}
	memset(msg, 0, sizeof(msg));
	for (unsigned i = 0; i < QSZ; i++) {
		unsigned n = 0;

		if (vnet_hdr)
			iov[i][n++] = (struct iovec){ tx_buf(i), 10 }; /* the legacy header */
		iov[i][n++] = (struct iovec){ tx_buf(i) + NET_HDR_LEN, len };
		msg[i].msg_hdr.msg_iov = iov[i];
		msg[i].msg_hdr.msg_iovlen = n;
	}
	t0 = now();
	c0 = cpu_now();
	do {
		int n = sendmmsg(fd, msg, QSZ, 0);

		if (n < 0) {
			if (errno == ENOBUFS || errno == EAGAIN)
				continue;
			perror("net_harness: sendmmsg");
			break;
		}
		r.frames += (unsigned)n;
	} while (now() - t0 < seconds);
	r.secs = now() - t0;
	r.cpu = cpu_now() - c0;
	r.bytes = r.frames * len;
	close(fd);
	return r;
}

/* The anchor on the TAP itself: writev() of header + frame straight to a TAP fd, QSZ at a time. */
static struct result tap_tx(size_t len)
{
	struct result r = { 0 };
	double t0 = now(), c0 = cpu_now();

	do {
		for (unsigned i = 0; i < QSZ; i++)
			if (write(raw.tap_fd, tx_buf(i), NET_HDR_LEN + len) > 0)
				r.frames++;
	} while (now() - t0 < seconds);
	r.secs = now() - t0;
	r.cpu = cpu_now() - c0;
	r.bytes = r.frames * len;
	return r;
}

/* ---- rx --------------------------------------------------------------------------- */

/* BATCH frames sent on the TAP, then delivered by the device into the guest's buffers. */
static struct result device_rx(const uint8_t *frame, size_t len)
{
	struct vring_desc *t = gm_ptr(&gm, RX_DESC, 16 * QSZ);
	int fd = packet_socket(tap, 0);
	struct result r = { 0 };
	uint64_t before = net.stats.rx_frames;
	uint16_t seen = used_idx(RX_USED), posted = 0;
	double t0, c0;

	if (fd < 0) {
		perror("net_harness: tap socket");
		return r;
	}
	for (unsigned i = 0; i < QSZ; i++)
		t[i] = (struct vring_desc){ RX_BUF + i * 2048ULL, 2048, VRING_DESC_F_WRITE, 0 };
	post_all(NET_RXQ, RX_AVAIL);
	t0 = now();
	c0 = cpu_now();
	do {
		for (unsigned i = 0; i < BATCH; i++)
			if (send(fd, frame, len, 0) < 0 && errno != ENOBUFS)
				perror("net_harness: send on the TAP");
		for (int tries = 0; (uint16_t)(used_idx(RX_USED) - seen) < BATCH && tries < 100;
		     tries++)
			virtio_pci_run(&vp, NET_RXQ, net_tap_ready);
		seen = used_idx(RX_USED);
		posted += BATCH;
		if ((uint16_t)(posted % QSZ) == 0)
			post_all(NET_RXQ, RX_AVAIL); /* all QSZ used: give them back */
	} while (now() - t0 < seconds);
	r.secs = now() - t0;
	r.cpu = cpu_now() - c0;
	r.frames = net.stats.rx_frames - before;
	r.bytes = r.frames * len;
	close(fd);
	return r;
}

/* The anchor: BATCH frames sent on one veth end, received by AF_PACKET on the other. */
static struct result veth_rx(const uint8_t *frame, size_t len)
{
	int tx = packet_socket(veth0, 0), rx = packet_socket(veth1, 0);
	static uint8_t buf[2048];
	struct result r = { 0 };
	double t0, c0;

	if (tx < 0 || rx < 0) {
		perror("net_harness: veth sockets");
		return r;
	}
	t0 = now();
	c0 = cpu_now();
	do {
		for (unsigned i = 0; i < BATCH; i++)
			if (send(tx, frame, len, 0) < 0 && errno != ENOBUFS)
				perror("net_harness: send on the veth");
		for (unsigned i = 0; i < BATCH; i++) {
			struct sockaddr_ll from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(rx, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
					     &fl);

			if (n < 0)
				break;
			if (from.sll_pkttype != PACKET_OUTGOING && (size_t)n == len)
				r.frames++;
		}
	} while (now() - t0 < seconds);
	r.secs = now() - t0;
	r.cpu = cpu_now() - c0;
	r.bytes = r.frames * len;
	close(tx);
	close(rx);
	return r;
}

/* The anchor on the TAP itself: BATCH frames sent on it, then read() from its fd. */
static struct result tap_rx(const uint8_t *frame, size_t len)
{
	int fd = packet_socket(tap2, 0);
	struct result r = { 0 };
	unsigned slot = 0;
	double t0, c0;

	if (fd < 0) {
		perror("net_harness: second TAP socket");
		return r;
	}
	t0 = now();
	c0 = cpu_now();
	do {
		for (unsigned i = 0; i < BATCH; i++)
			if (send(fd, frame, len, 0) < 0 && errno != ENOBUFS)
				perror("net_harness: send on the second TAP");
		for (unsigned i = 0; i < BATCH; i++) {
			/* Into the same QSZ x 2 KiB of guest memory the device fills. */
			void *buf = gm_ptr(&gm, RX_BUF + (slot++ % QSZ) * 2048ULL, 2048);
			ssize_t n = read(raw.tap_fd, buf, 2048);

			if (n < 0)
				break;
			if ((size_t)n == NET_HDR_LEN + len)
				r.frames++;
		}
	} while (now() - t0 < seconds);
	r.secs = now() - t0;
	r.cpu = cpu_now() - c0;
	r.bytes = r.frames * len;
	close(fd);
	return r;
}

static double pps(const struct result *r)
{
	return r->secs > 0 ? r->frames / r->secs : 0;
}

static void compare(const char *test, struct result dev, struct result veth, struct result tap)
{
	print(test, "anchor-veth", &veth, 0);
	print(test, "anchor-tap", &tap, 0);
	print(test, "virtio-net", &dev, pps(&veth) > 0 ? pps(&dev) / pps(&veth) : 0);
	printf("{\"test\": \"%s\", \"ratio_to_veth\": %.3f, \"ratio_to_tap\": %.3f}\n", test,
	       pps(&veth) > 0 ? pps(&dev) / pps(&veth) : 0, pps(&tap) > 0 ? pps(&dev) / pps(&tap) : 0);
}

int main(int argc, char **argv)
{
	static uint8_t frame[NET_MAX_FRAME];
	struct virtio_pci_host host = { .gm = &gm };
	struct virtio_net_hdr plain = { 0 }, tso = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = 54, .gso_size = 1448, .csum_start = 34, .csum_offset = 16,
	};
	struct yun_err err;
	char cmd[256];
	size_t len;
	int rc = 1;

	if (argc > 1)
		seconds = atof(argv[1]);
	if (geteuid() != 0) {
		fprintf(stderr, "net_harness: needs root (TAP and veth devices)\n");
		return 1;
	}
	snprintf(tap, sizeof(tap), "ytb%d", (int)getpid() % 100000);
	snprintf(tap2, sizeof(tap2), "ytb%dr", (int)getpid() % 100000);
	snprintf(veth0, sizeof(veth0), "ybv%da", (int)getpid() % 100000);
	snprintf(veth1, sizeof(veth1), "ybv%db", (int)getpid() % 100000);
	if (gm_init(&gm, 64ULL << 20, &err) || net_open(&net, tap, guest_mac, &err) ||
	    virtio_pci_init(&vp, &net_ops, &net, &host, &err)) {
		fprintf(stderr, "net_harness: %s\n", err.msg);
		return 1;
	}
	sysctl_no_ipv6(tap);
	if (net_open(&raw, tap2, far_mac, &err)) {
		fprintf(stderr, "net_harness: %s\n", err.msg);
		goto out;
	}
	sysctl_no_ipv6(tap2);
	snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s", veth0, veth1);
	if (run(cmd))
		goto out;
	sysctl_no_ipv6(veth0);
	sysctl_no_ipv6(veth1);
	snprintf(cmd, sizeof(cmd), "ip link set %s up && ip link set %s up", veth0, veth1);
	if (run(cmd))
		goto out_veth;
	usleep(200 * 1000); /* carrier */

	driver_start((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_NET_F_MAC) |
		     (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_HOST_TSO4));
	len = tcp_frame(frame, far_mac, 1460);
	tx_fill(frame, len, &plain);
	compare("tx-1514", device_tx(len), veth_tx(len, false), tap_tx(len));
	len = tcp_frame(frame, far_mac, 65535 - 40);
	tx_fill(frame, len, &tso);
	compare("tx-tso64k", device_tx(len), veth_tx(len, true), tap_tx(len));
	len = tcp_frame(frame, far_mac, 1460);
	compare("rx-1514", device_rx(frame, len), veth_rx(frame, len), tap_rx(frame, len));
	rc = 0;
out_veth:
	snprintf(cmd, sizeof(cmd), "ip link del %s", veth0);
	run(cmd);
out:
	virtio_pci_destroy(&vp);
	net_close(&net);
	net_close(&raw);
	gm_free(&gm);
	return rc;
}
