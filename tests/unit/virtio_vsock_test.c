/*
 * virtio_vsock_test.c - play a virtio-vsock driver (guest CID 3) against
 * the modern PCI transport and the hybrid-vsock device model, with real
 * Unix sockets as the host ends: a host program connecting to the VM's
 * socket with "CONNECT <port>\n", a guest connecting to a host listener at
 * PATH_<port>, bytes both ways under credit control, and what a hostile
 * driver may send (wrong CIDs, lengths past the chain, unknown ops, data
 * beyond its credit) getting a RST or nothing, never a crash.
 *
 * No I/O thread: the test polls the device's epoll fd and runs vsock_ready
 * itself, as the VM's I/O thread would.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "vmm/virtio/pci.h"
#include "vmm/virtio/vsock.h"

#define QSZ      16
#define GUEST_CID 3
#define RX_DESC  0x10000ULL
#define TX_DESC  0x14000ULL
#define EV_DESC  0x18000ULL
#define RX_BUF   0x100000ULL /* rx buffer i at RX_BUF + i * RX_SIZE */
#define RX_SIZE  4096
#define TX_BUF   0x200000ULL
#define OP(x)    VIRTIO_VSOCK_OP_##x

static struct guest_mem gm;
static struct virtio_pci vp;
static struct vsock vs;
static char path[108], dir[64];
static uint16_t next_desc[3], avail_idx[3], used_seen;

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

static uint64_t qbase(unsigned q)
{
	return q == VSOCK_RXQ ? RX_DESC : q == VSOCK_TXQ ? TX_DESC : EV_DESC;
}

static struct vring_used *used_ring(unsigned q)
{
	return gm_ptr(&gm, qbase(q) + 0x2000, 6 + 8 * QSZ);
}

static void add_chain(unsigned q, uint64_t gpa, uint32_t len, bool write, bool kick)
{
	struct vring_desc *t = gm_ptr(&gm, qbase(q), 16 * QSZ);
	struct vring_avail *a = gm_ptr(&gm, qbase(q) + 0x1000, 6 + 2 * QSZ);
	uint16_t d = next_desc[q]++ % QSZ;

	t[d] = (struct vring_desc){ gpa, len, write ? VRING_DESC_F_WRITE : 0, 0 };
	a->ring[avail_idx[q]++ % QSZ] = d;
	__atomic_store_n(&a->idx, avail_idx[q], __ATOMIC_RELEASE);
	if (kick)
		wr(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, q, 2);
}

static uint8_t status(void)
{
	return (uint8_t)rd(VIRTIO_PCI_COMMON_STATUS, 1);
}

/* Reset, negotiate, three queues, DRIVER_OK, every rx buffer posted. */
static void driver_start(void)
{
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, 1u << VIRTIO_VSOCK_F_STREAM, 4);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(VIRTIO_PCI_COMMON_GF, 1, 4); /* VERSION_1 */
	s |= VIRTIO_STATUS_FEATURES_OK;
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	for (unsigned q = 0; q < 3; q++) {
		gm_zero(&gm, qbase(q), 0x3000);
		wr(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		wr(VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
		wr(VIRTIO_PCI_COMMON_Q_DESC, qbase(q), 8);
		wr(VIRTIO_PCI_COMMON_Q_AVAIL, qbase(q) + 0x1000, 8);
		wr(VIRTIO_PCI_COMMON_Q_USED, qbase(q) + 0x2000, 8);
		wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
		next_desc[q] = avail_idx[q] = 0;
	}
	used_seen = 0;
	wr(VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_DRIVER_OK, 1);
	for (unsigned i = 0; i < QSZ; i++)
		add_chain(VSOCK_RXQ, RX_BUF + i * RX_SIZE, RX_SIZE, true, i + 1 == QSZ);
}

static void device_start(void)
{
	struct virtio_pci_host host = { .gm = &gm };
	struct yun_err err;

	CHECK_EQ(vsock_open(&vs, GUEST_CID, path, &err), 0);
	CHECK_EQ(virtio_pci_init(&vp, &vsock_ops, &vs, &host, &err), 0);
	driver_start();
	CHECK_EQ(status() & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static void device_stop(void)
{
	virtio_pci_destroy(&vp);
	vsock_close(&vs);
}

/* What the I/O thread does: wait up to ms for the device's fds and run it. */
static void pump(int ms)
{
	struct pollfd p = { vsock_event_fd(&vs), POLLIN, 0 };

	poll(&p, 1, ms);
	virtio_pci_run(&vp, VSOCK_RXQ, vsock_ready);
}

/* The next packet the device gave the guest (data into `data`); false after ~1 s. */
static bool guest_recv(struct virtio_vsock_hdr *h, void *data, size_t size)
{
	for (int i = 0; i < 20; i++) {
		struct vring_used *u = used_ring(VSOCK_RXQ);

		if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != used_seen) {
			struct vring_used_elem e = u->ring[used_seen++ % QSZ];
			struct vring_desc *t = gm_ptr(&gm, RX_DESC, 16 * QSZ);
			uint8_t *buf = gm_ptr(&gm, t[e.id].addr, RX_SIZE);

			CHECK(e.len >= VSOCK_HDR_LEN && e.len <= RX_SIZE);
			memcpy(h, buf, VSOCK_HDR_LEN);
			CHECK_EQ(h->len, e.len - VSOCK_HDR_LEN);
			CHECK_EQ(h->src_cid, VSOCK_HOST_CID);
			CHECK_EQ(h->dst_cid, GUEST_CID);
			CHECK_EQ(h->type, VIRTIO_VSOCK_TYPE_STREAM);
			if (data)
				memcpy(data, buf + VSOCK_HDR_LEN, h->len < size ? h->len : size);
			add_chain(VSOCK_RXQ, t[e.id].addr, RX_SIZE, true, true); /* repost */
			return true;
		}
		pump(50);
	}
	return false;
}

/* Nothing more for the guest within ~0.3 s. */
static bool guest_quiet(void)
{
	for (int i = 0; i < 6; i++)
		pump(50);
	return __atomic_load_n(&used_ring(VSOCK_RXQ)->idx, __ATOMIC_ACQUIRE) == used_seen;
}

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint16_t op;
	uint32_t flags, buf_alloc, fwd_cnt;
	const void *data;
	uint32_t len;
	uint32_t hdr_len;      /* what the header's len says; 0: len */
	uint16_t type;         /* 0: STREAM */
};

static void guest_send(const struct pkt *p)
{
	struct virtio_vsock_hdr h = {
		.src_cid = p->src_cid ? p->src_cid : GUEST_CID,
		.dst_cid = p->dst_cid ? p->dst_cid : VSOCK_HOST_CID,
		.src_port = p->src_port,
		.dst_port = p->dst_port,
		.len = p->hdr_len ? p->hdr_len : p->len,
		.type = p->type ? p->type : VIRTIO_VSOCK_TYPE_STREAM,
		.op = p->op,
		.flags = p->flags,
		.buf_alloc = p->buf_alloc,
		.fwd_cnt = p->fwd_cnt,
	};
	uint8_t *b = gm_ptr(&gm, TX_BUF, VSOCK_HDR_LEN + p->len);
	uint16_t before = used_ring(VSOCK_TXQ)->idx;

	memcpy(b, &h, VSOCK_HDR_LEN);
	if (p->len)
		memcpy(b + VSOCK_HDR_LEN, p->data, p->len);
	add_chain(VSOCK_TXQ, TX_BUF, VSOCK_HDR_LEN + p->len, false, true);
	CHECK_EQ(used_ring(VSOCK_TXQ)->idx, (uint16_t)(before + 1));
}

static int unix_connect(const char *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int unix_listen(const char *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	unlink(p);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read exactly n bytes within ~1 s (pumping the device meanwhile); returns bytes read. */
static size_t host_read(int fd, void *buf, size_t n)
{
	size_t got = 0;

	for (int i = 0; i < 20 && got < n; i++) {
		ssize_t r = recv(fd, (char *)buf + got, n - got, MSG_DONTWAIT);

		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		pump(50);
	}
	return got;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_identity_and_config(void)
{
	device_start();
	CHECK_EQ(pci_cfg_get16(&vp.pci, PCI_DEVICE_ID), 0x1040 + VIRTIO_ID_VSOCK);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_NUMQ, 2), 3);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), GUEST_CID);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + 4, 4), 0);
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	device_stop();
	CHECK(stat(path, &st) < 0 && errno == ENOENT); /* removed at exit */
}

static void test_host_connects(void)
{
	struct virtio_vsock_hdr h;
	char buf[256], want[32];
	uint32_t hport;
	int fd;

	device_start();
	fd = unix_connect(path);
	CHECK(fd >= 0);
	CHECK_EQ(send(fd, "CONNECT 1234\n", 13, 0), 13);
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(REQUEST));
	CHECK_EQ(h.dst_port, 1234);
	CHECK(h.src_port >= VSOCK_HOST_PORT_BASE);
	CHECK_EQ(h.buf_alloc, VSOCK_CONN_BUF);
	hport = h.src_port;

	guest_send(&(struct pkt){ .src_port = 1234, .dst_port = hport, .op = OP(RESPONSE),
				  .buf_alloc = 65536 });
	snprintf(want, sizeof(want), "OK %u\n", hport);
	CHECK_EQ(host_read(fd, buf, strlen(want)), strlen(want));
	CHECK(!memcmp(buf, want, strlen(want)));

	/* host -> guest */
	CHECK_EQ(send(fd, "hello guest\n", 12, 0), 12);
	CHECK(guest_recv(&h, buf, sizeof(buf)));
	CHECK_EQ(h.op, OP(RW));
	CHECK_EQ(h.len, 12);
	CHECK(!memcmp(buf, "hello guest\n", 12));

	/* guest -> host */
	guest_send(&(struct pkt){ .src_port = 1234, .dst_port = hport, .op = OP(RW),
				  .buf_alloc = 65536, .fwd_cnt = 12, .data = "hi host", .len = 7 });
	CHECK_EQ(host_read(fd, buf, 7), 7);
	CHECK(!memcmp(buf, "hi host", 7));

	/* A credit request is answered with our fwd_cnt. */
	guest_send(&(struct pkt){ .src_port = 1234, .dst_port = hport, .op = OP(CREDIT_REQUEST),
				  .buf_alloc = 65536, .fwd_cnt = 12 });
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(CREDIT_UPDATE));
	CHECK_EQ(h.fwd_cnt, 7);

	/* The host closes: SHUTDOWN to the guest, whose RST ends it. */
	close(fd);
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(SHUTDOWN));
	CHECK(h.flags & VIRTIO_VSOCK_SHUTDOWN_SEND);
	guest_send(&(struct pkt){ .src_port = 1234, .dst_port = hport, .op = OP(RST) });
	CHECK(guest_quiet());
	CHECK_EQ(vs.conn[0].state, VSOCK_FREE);

	/* The guest refuses: the client is closed without an OK. */
	fd = unix_connect(path);
	CHECK_EQ(send(fd, "CONNECT 99\n", 11, 0), 11);
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(REQUEST));
	guest_send(&(struct pkt){ .src_port = 99, .dst_port = h.src_port, .op = OP(RST) });
	CHECK_EQ(host_read(fd, buf, 1), 0);
	close(fd);

	/* A bad line closes the client; nothing reaches the guest. */
	fd = unix_connect(path);
	CHECK_EQ(send(fd, "HELLO\n", 6, 0), 6);
	CHECK_EQ(host_read(fd, buf, 1), 0);
	CHECK(guest_quiet());
	close(fd);
	device_stop();
}

static void test_guest_connects(void)
{
	struct virtio_vsock_hdr h;
	char lpath[128], buf[256];
	int lfd, fd;

	device_start();
	snprintf(lpath, sizeof(lpath), "%s_5001", path);
	lfd = unix_listen(lpath);
	CHECK(lfd >= 0);
	guest_send(&(struct pkt){ .src_port = 49152, .dst_port = 5001, .op = OP(REQUEST),
				  .buf_alloc = 65536 });
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(RESPONSE));
	CHECK_EQ(h.src_port, 5001);
	CHECK_EQ(h.dst_port, 49152);
	fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);

	guest_send(&(struct pkt){ .src_port = 49152, .dst_port = 5001, .op = OP(RW),
				  .buf_alloc = 65536, .data = "ping abc\n", .len = 9 });
	CHECK_EQ(host_read(fd, buf, 9), 9);
	CHECK(!memcmp(buf, "ping abc\n", 9));
	CHECK_EQ(send(fd, "pong cba\n", 9, 0), 9);
	CHECK(guest_recv(&h, buf, sizeof(buf)));
	CHECK_EQ(h.op, OP(RW));
	CHECK_EQ(h.len, 9);
	CHECK(!memcmp(buf, "pong cba\n", 9));

	/* Full shutdown from the guest: RST back, and the host end sees EOF. */
	guest_send(&(struct pkt){ .src_port = 49152, .dst_port = 5001, .op = OP(SHUTDOWN),
				  .flags = 3, .buf_alloc = 65536, .fwd_cnt = 9 });
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(RST));
	CHECK_EQ(host_read(fd, buf, 1), 0);
	close(fd);

	/* No listener on that port: RST. */
	guest_send(&(struct pkt){ .src_port = 49153, .dst_port = 5999, .op = OP(REQUEST),
				  .buf_alloc = 65536 });
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(RST));
	CHECK_EQ(h.dst_port, 49153);
	close(lfd);
	unlink(lpath);
	device_stop();
}

static void test_credit(void)
{
	struct virtio_vsock_hdr h;
	char lpath[128], buf[256], big[200];
	uint32_t got = 0;
	int lfd, fd;

	device_start();
	snprintf(lpath, sizeof(lpath), "%s_7", path);
	lfd = unix_listen(lpath);
	/* The guest has room for 10 bytes only. */
	guest_send(&(struct pkt){ .src_port = 40, .dst_port = 7, .op = OP(REQUEST),
				  .buf_alloc = 10 });
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(RESPONSE));
	fd = accept(lfd, NULL, NULL);
	memset(big, 'x', sizeof(big));
	CHECK_EQ(send(fd, big, 100, 0), 100);
	CHECK(guest_recv(&h, buf, sizeof(buf)));
	CHECK_EQ(h.op, OP(RW));
	CHECK_EQ(h.len, 10);
	got += h.len;
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(CREDIT_REQUEST));
	CHECK(guest_quiet()); /* and nothing more until the guest makes room */
	guest_send(&(struct pkt){ .src_port = 40, .dst_port = 7, .op = OP(CREDIT_UPDATE),
				  .buf_alloc = 1000, .fwd_cnt = 10 });
	while (got < 100 && guest_recv(&h, NULL, 0))
		if (h.op == OP(RW))
			got += h.len;
	CHECK_EQ(got, 100);

	/* The guest sends more than our buf_alloc while the host reads nothing: RST. */
	{
		static uint8_t chunk[VSOCK_MAX_PKT];
		bool rst = false;

		memset(chunk, 'y', sizeof(chunk));
		for (int i = 0; i < 64 && !rst; i++) {
			guest_send(&(struct pkt){ .src_port = 40, .dst_port = 7, .op = OP(RW),
						  .buf_alloc = 1000, .fwd_cnt = 100,
						  .data = chunk, .len = sizeof(chunk) });
			pump(0);
			while (!rst && __atomic_load_n(&used_ring(VSOCK_RXQ)->idx,
						       __ATOMIC_ACQUIRE) != used_seen &&
			       guest_recv(&h, NULL, 0))
				rst = h.op == OP(RST);
		}
		CHECK(rst);
	}
	close(fd);
	close(lfd);
	unlink(lpath);
	device_stop();
}

static void test_bad_packets(void)
{
	struct virtio_vsock_hdr h;
	char lpath[128];
	int lfd;

	device_start();
	/* Not from our CID, or not for the host: dropped silently. */
	guest_send(&(struct pkt){ .src_cid = 7, .src_port = 1, .dst_port = 2, .op = OP(REQUEST) });
	guest_send(&(struct pkt){ .dst_cid = 9, .src_port = 1, .dst_port = 2, .op = OP(REQUEST) });
	CHECK(guest_quiet());
	CHECK_EQ(vs.stats.dropped, 2);

	/* A len past the chain, a huge len, an unknown op or type, data for no connection: RST. */
	guest_send(&(struct pkt){ .src_port = 1, .dst_port = 2, .op = OP(RW), .data = "abc",
				  .len = 3, .hdr_len = 4000 });
	guest_send(&(struct pkt){ .src_port = 1, .dst_port = 2, .op = OP(RW), .hdr_len = 0xffffffff });
	guest_send(&(struct pkt){ .src_port = 1, .dst_port = 2, .op = 99 });
	guest_send(&(struct pkt){ .src_port = 1, .dst_port = 2, .op = OP(REQUEST), .type = 2 });
	guest_send(&(struct pkt){ .src_port = 1, .dst_port = 2, .op = OP(RW), .data = "x", .len = 1 });
	for (int i = 0; i < 5; i++) {
		CHECK(guest_recv(&h, NULL, 0));
		CHECK_EQ(h.op, OP(RST));
		CHECK_EQ(h.dst_port, 1);
		CHECK_EQ(h.src_port, 2);
	}
	/* A RST for nothing gets nothing (no RST storms). */
	guest_send(&(struct pkt){ .src_port = 1, .dst_port = 2, .op = OP(RST) });
	CHECK(guest_quiet());

	/* A duplicate REQUEST resets the connection it names. */
	snprintf(lpath, sizeof(lpath), "%s_8", path);
	lfd = unix_listen(lpath);
	guest_send(&(struct pkt){ .src_port = 5, .dst_port = 8, .op = OP(REQUEST), .buf_alloc = 99 });
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(RESPONSE));
	guest_send(&(struct pkt){ .src_port = 5, .dst_port = 8, .op = OP(REQUEST), .buf_alloc = 99 });
	CHECK(guest_recv(&h, NULL, 0));
	CHECK_EQ(h.op, OP(RST));

	/* More connections than the table holds: the extra ones get RST. */
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS + 4; i++)
		guest_send(&(struct pkt){ .src_port = 100 + i, .dst_port = 8, .op = OP(REQUEST),
					  .buf_alloc = 99 });
	{
		unsigned resp = 0, rst = 0;

		while (guest_recv(&h, NULL, 0))
			if (h.op == OP(RESPONSE))
				resp++;
			else if (h.op == OP(RST))
				rst++;
		CHECK_EQ(resp, VSOCK_MAX_CONNS);
		CHECK_EQ(rst, 4);
	}
	close(lfd);
	unlink(lpath);

	/* A tx chain with a writable buffer is a broken driver: NEEDS_RESET, and reset works. */
	add_chain(VSOCK_TXQ, TX_BUF, 64, true, true);
	CHECK(status() & VIRTIO_STATUS_NEEDS_RESET);
	driver_start();
	CHECK_EQ(status() & VIRTIO_STATUS_NEEDS_RESET, 0);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		CHECK_EQ(vs.conn[i].state, VSOCK_FREE);
	device_stop();
}

int main(void)
{
	struct yun_err err;

	snprintf(dir, sizeof(dir), "/tmp/yun-vsock-test-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	if (gm_init(&gm, 16ULL << 20, &err))
		return 1;
	RUN(test_identity_and_config);
	RUN(test_host_connects);
	RUN(test_guest_connects);
	RUN(test_credit);
	RUN(test_bad_packets);
	gm_free(&gm);
	rmdir(dir);
	return CHECK_DONE();
}
