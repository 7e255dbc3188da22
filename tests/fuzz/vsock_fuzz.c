/*
 * vsock_fuzz.c - a hostile virtio-vsock driver and hostile host programs
 * against vsock.c through its device ops: nothing may crash, touch memory
 * outside guest RAM (ASan), leak or loop, whatever order packets, buffers
 * and host socket events come in.
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/vsock.c
 * FUZZ_SOURCES: src/vmm/virtio/iothread.c src/lib/err.c src/lib/log.c
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c
 * FUZZ_SOURCES: src/vmm/sandbox/seccomp.c
 * FUZZ_LIBS: -lz -lseccomp
 *
 * The device is real (vsock_open on a socket in a temporary directory,
 * with host listeners at PATH_1..PATH_3; ports 4 and 5 have none), the
 * driver is this file: it keeps its own descriptor bookkeeping for the rx,
 * tx and event queues and plays the transport's part (reset, vq_init,
 * activate; after a negative return the queues are dead until the next
 * reset, as DEVICE_NEEDS_RESET makes them).
 *
 * Input: byte 0 queue sizes (rx 2^(n & 7), tx 2^(n >> 4 & 7)), byte 1
 * features (EVENT_IDX, INDIRECT_DESC), then commands, one byte each plus
 * their operands (missing bytes read as 0):
 *   tx       a packet from the guest: header fields (ops 0..8, ports of
 *            live connections, listeners or anything, lengths around the
 *            chain's and VSOCK_MAX_PKT, credit values), the chain split
 *            over 1..4 descriptors, maybe indirect, truncated, with a
 *            writable buffer, or left unkicked
 *   rx       rx (or event) buffers: 1..8 chains of sizes around the header
 *   io       what the I/O thread does: vsock_ready
 *   client   a host program connects to PATH and writes a CONNECT line
 *            (valid, junk, bad port, unterminated or too long)
 *   peer     a host end writes, drains, shuts down or closes; or the
 *            device's ends get tiny send buffers (a host that stops reading)
 *   accept   the host listeners accept what the guest connected
 *   raw      bytes over a queue's rings (descriptors, avail, used)
 *   kick     a kick on rx or event queue without new buffers
 *   reset    the driver resets the device, or brings it back up
 *   time     every deadline passes (CONNECT line, the guest's RESPONSE)
 *   config   a configuration-space read
 *
 * Built with -DFUZZ_WRITE_SEEDS this file is instead a program writing a
 * seed corpus: both connection directions with data, shutdown and RST.
 */
#include <endian.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/virtio/vsock.h"

#define RAM        (64ULL << 20)
#define GUEST_CID  3
#define NR_Q       3
#define MAX_CHAIN  16                              /* descriptors one chain of ours uses */
#define RING(q)    (0x10000ULL + (q) * 0x4000ULL)  /* desc; avail +0x1000; used +0x2000 */
#define RING_BYTES 0x3000
#define INDIR(q, d) (0x40000ULL + ((q) * 256ULL + (d)) * 16 * MAX_CHAIN)
#define RXBUF(d)   (0x100000ULL + (d) * 0x1000ULL) /* big rx buffers overlap: fine */
#define TXBUF(d)   (0x400000ULL + (d) * 0x11000ULL) /* a header and 64 KiB + change each */
#define TX_ROOM    0x11000U
#define NR_HOST_FD 24
#define NR_LISTEN  3
#define MAX_CMDS   256

enum { CMD_TX, CMD_RX, CMD_IO, CMD_CLIENT, CMD_PEER, CMD_ACCEPT, CMD_RAW, CMD_KICK, CMD_RESET,
       CMD_TIME, CMD_CONFIG, NR_CMD };

struct input {
	const uint8_t *p;
	size_t n;
};

/* The driver's view of one queue. */
struct drvq {
	struct vq vq;
	uint16_t size;
	uint16_t avail_idx, used_seen;
	bool busy[256];              /* descriptor in a chain the device has */
	uint8_t chain_len[256];      /* by head: descriptors of the chain (0: indirect) */
	uint16_t chain[256][MAX_CHAIN];
};

static struct guest_mem gm;
static struct vsock vs;
static struct drvq dq[NR_Q];
static uint16_t qsize[NR_Q];
static bool f_event_idx, f_indirect;
static bool live;                    /* DRIVER_OK and not broken */
static int host_fd[NR_HOST_FD];      /* accepted guest connections and our clients */
static int listen_fd[NR_LISTEN];
static char dir[64], path[128];

static uint8_t in8(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* Little-endian; one call per statement, as C leaves the order of operands open. */
static uint16_t in16(struct input *in)
{
	uint16_t lo = in8(in);

	return (uint16_t)(lo | in8(in) << 8);
}

static uint32_t in32(struct input *in)
{
	uint32_t lo = in16(in);

	return lo | (uint32_t)in16(in) << 16;
}

static uint64_t in64(struct input *in)
{
	uint64_t lo = in32(in);

	return lo | (uint64_t)in32(in) << 32;
}

/* ---- set-up, once per process ---------------------------------------------- */

static void cleanup_files(void)
{
	char p[160];

	vsock_close(&vs);
	for (unsigned i = 0; i < NR_LISTEN; i++) {
		snprintf(p, sizeof(p), "%s_%u", path, i + 1);
		unlink(p);
	}
	rmdir(dir);
}

static void setup(void)
{
	struct yun_err err;

	strcpy(dir, "/tmp/yun-vsock-fuzz-XXXXXX");
	if (gm_init(&gm, RAM, &err) || !mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	if (vsock_open(&vs, GUEST_CID, path, &err))
		abort();
	for (unsigned i = 0; i < NR_LISTEN; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", path, i + 1);
		listen_fd[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (listen_fd[i] < 0 || bind(listen_fd[i], (struct sockaddr *)&sa, sizeof(sa)) ||
		    listen(listen_fd[i], 8))
			abort();
	}
	for (unsigned i = 0; i < NR_HOST_FD; i++)
		host_fd[i] = -1;
	atexit(cleanup_files);
}

/* ---- the driver's queues ------------------------------------------------------ */

static void queue_init(unsigned q)
{
	struct drvq *d = &dq[q];

	memset(d, 0, sizeof(*d));
	d->size = qsize[q];
	memset(gm.map + RING(q), 0, RING_BYTES);
	if (vq_init(&d->vq, &gm, d->size, RING(q), RING(q) + 0x1000, RING(q) + 0x2000,
		    f_event_idx, f_indirect))
		abort();
}

/* What the transport does on a reset and DRIVER_OK. */
static void device_up(void)
{
	vsock_ops.reset(&vs);
	for (unsigned q = 0; q < NR_Q; q++)
		queue_init(q);
	vsock_ops.activate(&vs, 1ULL << VIRTIO_VSOCK_F_STREAM);
	live = true;
}

/* A negative return: DEVICE_NEEDS_RESET, nothing runs until the driver resets. */
static void check_rc(int rc)
{
	if (rc < 0)
		live = false;
}

/* Take back the chains the device used. */
static void harvest(unsigned q)
{
	struct drvq *d = &dq[q];
	uint16_t idx = __atomic_load_n(&d->vq.used->idx, __ATOMIC_ACQUIRE);

	for (; d->used_seen != idx; d->used_seen++) {
		uint32_t head = d->vq.used->ring[d->used_seen & (d->size - 1)].id;

		if (head >= d->size || !d->busy[head])
			continue; /* the guest scribbled over the used ring */
		d->busy[head] = false;
		for (unsigned i = 0; i < d->chain_len[head]; i++)
			d->busy[d->chain[head][i]] = false;
	}
}

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static uint16_t desc_flags(const struct buf *b, bool next)
{
	return (uint16_t)((b->write ? VRING_DESC_F_WRITE : 0) | (next ? VRING_DESC_F_NEXT : 0));
}

/*
 * Post a chain of n buffers on q (indirect: in a table); returns the head
 * or -1 when the ring has no room.
 */
static int post(unsigned q, const struct buf *b, unsigned n, bool indirect)
{
	struct drvq *d = &dq[q];
	uint16_t idx[MAX_CHAIN];
	unsigned need = indirect ? 1 : n, got = 0;

	harvest(q);
	for (unsigned i = 0; i < d->size && got < need; i++)
		if (!d->busy[i])
			idx[got++] = (uint16_t)i;
	if (got < need || !n)
		return -1;
	if (indirect) {
		struct vring_desc *t = gm_ptr(&gm, INDIR(q, idx[0]), 16 * MAX_CHAIN);

		for (unsigned i = 0; i < n; i++)
			t[i] = (struct vring_desc){ b[i].gpa, b[i].len, desc_flags(&b[i], i + 1 < n),
						    (uint16_t)(i + 1) };
		d->vq.desc[idx[0]] = (struct vring_desc){ INDIR(q, idx[0]), 16 * n,
							  VRING_DESC_F_INDIRECT, 0 };
		d->chain_len[idx[0]] = 0;
	} else {
		for (unsigned i = 0; i < n; i++) {
			d->vq.desc[idx[i]] = (struct vring_desc){ b[i].gpa, b[i].len,
								  desc_flags(&b[i], i + 1 < n),
								  i + 1 < n ? idx[i + 1] : 0 };
			d->chain[idx[0]][i] = idx[i];
		}
		d->chain_len[idx[0]] = (uint8_t)n;
	}
	for (unsigned i = 0; i < need; i++)
		d->busy[idx[i]] = true;
	d->vq.avail->ring[d->avail_idx & (d->size - 1)] = idx[0];
	d->avail_idx++;
	__atomic_store_n(&d->vq.avail->idx, d->avail_idx, __ATOMIC_RELEASE);
	return idx[0];
}

static void kick(unsigned q)
{
	if (!live)
		return;
	check_rc(vsock_ops.queue_notify(&vs, q, &dq[q].vq));
	vq_should_notify(&dq[q].vq);
}

/* ---- commands ------------------------------------------------------------------ */

/* A (local, peer) port pair: a live connection's, a listener's, the host range or anything. */
static void pick_ports(struct input *in, uint32_t *local, uint32_t *peer)
{
	uint8_t s = in8(in);

	switch (s & 3) {
	case 0:
		for (unsigned k = 0; k < VSOCK_MAX_CONNS; k++) {
			const struct vsock_conn *c = &vs.conn[((s >> 2) + k) % VSOCK_MAX_CONNS];

			if (c->state >= VSOCK_REQUEST_SENT) {
				*local = c->local_port;
				*peer = c->peer_port;
				return;
			}
		}
		/* fall through: none yet */
	case 1:
		*local = 1 + (s >> 2) % 5; /* 1..3 listen, 4 and 5 nobody */
		*peer = 1000 + (s >> 5);
		return;
	case 2:
		*local = in32(in);
		*peer = in32(in);
		return;
	default:
		*local = VSOCK_HOST_PORT_BASE + (s >> 2);
		*peer = in8(in);
		return;
	}
}

/* The tx_cnt of the connection (local, peer), so fwd_cnt can be close to right. */
static uint32_t conn_tx_cnt(uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (vs.conn[i].state >= VSOCK_REQUEST_SENT && vs.conn[i].local_port == local &&
		    vs.conn[i].peer_port == peer)
			return vs.conn[i].tx_cnt;
	return 0;
}

static void cmd_tx(struct input *in)
{
	uint8_t f = in8(in), l = in8(in), cr = in8(in);
	struct virtio_vsock_hdr h = { 0 };
	uint32_t local, peer, hlen, plen, total;
	struct buf b[MAX_CHAIN];
	unsigned n = 1 + (f & 3), nb = 0;
	uint64_t at, cut = 0;
	uint8_t *mem;
	int head;

	pick_ports(in, &local, &peer);
	switch (l & 7) {
	case 0: hlen = 0; break;
	case 1: hlen = in8(in); break;
	case 2: hlen = in16(in); break;
	case 3: hlen = VSOCK_MAX_PKT; break;
	case 4: hlen = VSOCK_MAX_PKT + 1; break;
	case 5: hlen = in32(in); break;
	case 6: hlen = VSOCK_CONN_BUF / 4 + in8(in); break;
	default: hlen = (uint32_t)in16(in) * 2; break;
	}
	plen = hlen;
	if (l & 8)
		plen = hlen ? hlen - 1 : 0;  /* the header claims more than the chain has */
	if (l & 16)
		plen += in8(in);             /* trailing bytes past len */
	if (plen > TX_ROOM - VSOCK_HDR_LEN)
		plen = TX_ROOM - VSOCK_HDR_LEN;
	h.src_cid = htole64(f & 32 ? in64(in) : GUEST_CID);
	h.dst_cid = htole64(f & 32 ? in64(in) : VSOCK_HOST_CID);
	h.src_port = htole32(peer);
	h.dst_port = htole32(local);
	h.len = htole32(hlen);
	h.type = htole16(l & 32 ? in16(in) : VIRTIO_VSOCK_TYPE_STREAM);
	h.op = htole16(in8(in) % 9);
	h.flags = htole32(l & 64 ? in32(in) : in8(in) & 3);
	h.buf_alloc = htole32(cr & 1 ? in32(in) : cr & 2 ? 0 : 256 * 1024);
	h.fwd_cnt = htole32(cr & 4 ? in32(in) : conn_tx_cnt(local, peer) - (cr & 8 ? in8(in) : 0));

	total = VSOCK_HDR_LEN + plen;
	if (f & 16)
		total = in8(in) % VSOCK_HDR_LEN; /* shorter than a header */
	/* The chain's memory: the header, then the payload (from the input or a pattern). */
	harvest(VSOCK_TXQ); /* so post() takes the head found here */
	head = -1;
	for (unsigned i = 0; i < dq[VSOCK_TXQ].size; i++)
		if (!dq[VSOCK_TXQ].busy[i]) {
			head = (int)i;
			break;
		}
	if (head < 0 || !live)
		return;
	at = TXBUF(head);
	mem = gm_ptr(&gm, at, TX_ROOM);
	memcpy(mem, &h, VSOCK_HDR_LEN);
	if (l & 128) {
		size_t k = in->n < plen ? in->n : plen;

		memcpy(mem + VSOCK_HDR_LEN, in->p, k);
		memset(mem + VSOCK_HDR_LEN + k, 0x5A, plen - k);
		in->p += k;
		in->n -= k;
	} else {
		memset(mem + VSOCK_HDR_LEN, 'a' + (f & 7), plen);
	}
	/* Split [0, total) at n - 1 points (zero-length pieces are legal). */
	for (unsigned i = 0; i < n; i++) {
		uint64_t end = i + 1 < n ? cut + in16(in) % (total - cut + 1) : total;

		b[nb++] = (struct buf){ at + cut, (uint32_t)(end - cut), false };
		cut = end;
	}
	if (f & 8)
		b[nb++] = (struct buf){ RXBUF(0), 64, true }; /* a tx chain may not have these */
	if (post(VSOCK_TXQ, b, nb, f & 4) < 0)
		return;
	if (!(f & 64))
		kick(VSOCK_TXQ);
}

static void cmd_rx(struct input *in)
{
	static const uint32_t sizes[] = { VSOCK_HDR_LEN, VSOCK_HDR_LEN + 1, 64, 300, 4096,
					  VSOCK_HDR_LEN + VSOCK_MAX_PKT, 0, 0 };
	uint8_t f = in8(in);
	unsigned q = f & 128 ? VSOCK_EVQ : VSOCK_RXQ;

	for (unsigned i = 0, count = 1 + (f & 7); i < count && live; i++) {
		uint8_t s = in8(in);
		uint32_t size = sizes[s & 7];
		struct buf b[2];
		unsigned n = 1;
		int head;

		if ((s & 7) == 6)
			size = in16(in);
		if ((s & 7) == 7)
			size = VSOCK_HDR_LEN - 1 - in8(in) % VSOCK_HDR_LEN; /* too short */
		/* Where it goes is decided once the head is known: post with a dummy, then fix. */
		b[0] = (struct buf){ 0, size, !((s & 0xC0) == 0xC0) }; /* rarely readable */
		if (s & 8 && size > 1) {
			uint32_t first = (uint32_t)in16(in) % size;

			b[1] = (struct buf){ 0, size - first, true };
			b[0].len = first;
			n = 2;
		}
		head = post(q, b, n, s & 16);
		if (head < 0)
			break;
		/* Point the buffers at the head's area. */
		if (s & 16) {
			struct vring_desc *t = gm_ptr(&gm, INDIR(q, head), 16 * MAX_CHAIN);

			t[0].addr = RXBUF(head);
			if (n == 2)
				t[1].addr = RXBUF(head) + b[0].len;
		} else {
			struct drvq *d = &dq[q];

			d->vq.desc[d->chain[head][0]].addr = RXBUF(head);
			if (n == 2)
				d->vq.desc[d->chain[head][1]].addr = RXBUF(head) + b[0].len;
		}
	}
	if (f & 8)
		kick(q);
}

static void cmd_io(void)
{
	int rc = vsock_ready(&vs, VSOCK_RXQ, live ? &dq[VSOCK_RXQ].vq : NULL);

	check_rc(rc);
	if (live)
		vq_should_notify(&dq[VSOCK_RXQ].vq);
}

static int host_slot(void)
{
	for (unsigned i = 0; i < NR_HOST_FD; i++)
		if (host_fd[i] < 0)
			return (int)i;
	return -1;
}

static void cmd_client(struct input *in)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t m = in8(in);
	char line[64];
	int slot = host_slot(), fd, len;

	if (slot < 0)
		return;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd); /* the backlog is full */
		return;
	}
	host_fd[slot] = fd;
	switch (m & 3) {
	case 0:
		len = snprintf(line, sizeof(line), "CONNECT %u\n",
			       m & 4 ? in32(in) : 1000u + (m >> 3));
		break;
	case 1:
		len = in8(in) % 48;
		for (int i = 0; i < len; i++)
			line[i] = (char)in8(in);
		break;
	case 2:
		len = snprintf(line, sizeof(line), "CONNECT %u", 1000u + (m >> 3)); /* no '\n' */
		if (m & 4) {
			len = 8 + in8(in) % 16; /* "CONNECT " and what the input says */
			for (int i = 8; i < len; i++)
				line[i] = (char)in8(in);
			line[len++] = '\n';
		}
		break;
	default:
		memset(line, 'A', 40);
		line[40] = '\n';
		len = 41;
		break;
	}
	if (send(fd, line, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return; /* nothing to do about it: the device sees what it sees */
}

/*
 * The host programs stop reading (or start again): shrink (or grow) the
 * send buffers of the device's own ends, so guest data has to wait in the
 * connection's buffer and trickle out.
 */
static void host_slow(bool slow)
{
	int size = slow ? 1 : 1 << 20; /* the kernel clamps both */

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (vs.conn[i].fd >= 0)
			setsockopt(vs.conn[i].fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static void cmd_peer(struct input *in)
{
	static uint8_t buf[VSOCK_MAX_PKT + 4096];
	uint8_t m = in8(in);
	int *fd = &host_fd[(m >> 3) % NR_HOST_FD];
	size_t len;

	if (*fd < 0)
		return;
	switch (m & 7) {
	case 0:
	case 1:
		len = m & 1 ? sizeof(buf) : in16(in) % 4096;
		memset(buf, m, len);
		if (send(*fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
		break;
	case 2:
	case 3:
		while (recv(*fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
		break;
	case 4:
		shutdown(*fd, SHUT_WR);
		break;
	case 5:
		shutdown(*fd, SHUT_RD);
		break;
	case 6:
		close(*fd);
		*fd = -1;
		break;
	default:
		host_slow(!(m & 64));
		break;
	}
}

static void cmd_accept(void)
{
	for (unsigned i = 0; i < NR_LISTEN; i++) {
		int fd, slot;

		for (;;) {
			fd = accept4(listen_fd[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				break;
			slot = host_slot();
			if (slot < 0) {
				close(fd);
				continue;
			}
			host_fd[slot] = fd;
		}
	}
}

static void cmd_raw(struct input *in)
{
	unsigned q = in8(in) % NR_Q;
	uint32_t off = in16(in) % RING_BYTES;
	size_t n = in8(in) % 33;

	if (n > RING_BYTES - off)
		n = RING_BYTES - off;
	if (n > in->n)
		n = in->n;
	memcpy(gm.map + RING(q) + off, in->p, n);
	in->p += n;
	in->n -= n;
}

static void cmd_reset(void)
{
	if (live) {
		vsock_ops.reset(&vs);
		live = false;
		return;
	}
	device_up();
}

/* Every deadline passes: the device's timer fires at the next vsock_ready. */
static void cmd_time(void)
{
	struct itimerspec its = { .it_value = { 0, 1 } };

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (vs.conn[i].deadline_ms)
			vs.conn[i].deadline_ms = 1;
	if (timerfd_settime(vs.timer_fd, 0, &its, NULL) == 0)
		vs.timer_armed = false; /* one shot now: let timer_update() re-arm it */
}

static void cmd_config(struct input *in)
{
	uint8_t data[VSOCK_CONFIG_SIZE];
	uint32_t off = in8(in) % VSOCK_CONFIG_SIZE;
	uint32_t len = 1 + in8(in) % (VSOCK_CONFIG_SIZE - off);

	vsock_ops.config_read(&vs, off, data, len); /* as the transport bounds it */
}

/* Everything from this input goes: the next one starts from the same state. */
static void teardown(void)
{
	struct pollfd p = { vsock_event_fd(&vs), POLLIN, 0 };

	for (unsigned i = 0; i < NR_HOST_FD; i++)
		if (host_fd[i] >= 0) {
			close(host_fd[i]);
			host_fd[i] = -1;
		}
	vsock_ops.reset(&vs);
	live = false;
	/* Clients the device never accepted: with no driver it refuses them. */
	for (int i = 0; i < 8 && poll(&p, 1, 0) > 0; i++)
		vsock_ready(&vs, VSOCK_RXQ, NULL);
	for (unsigned i = 0; i < NR_LISTEN; i++) {
		int fd;

		while ((fd = accept4(listen_fd[i], NULL, NULL, SOCK_CLOEXEC)) >= 0)
			close(fd);
	}
	vs.next_port = VSOCK_HOST_PORT_BASE;
	vs.rr = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	uint8_t sz, feat;

	if (!gm.map)
		setup();
	if (size < 2)
		return 0;
	sz = in8(&in);
	feat = in8(&in);
	qsize[VSOCK_RXQ] = (uint16_t)(1u << (sz & 7));
	qsize[VSOCK_TXQ] = (uint16_t)(1u << (sz >> 4 & 7));
	qsize[VSOCK_EVQ] = 4;
	f_event_idx = feat & 1;
	f_indirect = feat & 2;
	device_up();
	for (unsigned n = 0; n < MAX_CMDS && in.n; n++) {
		switch (in8(&in) % NR_CMD) {
		case CMD_TX: cmd_tx(&in); break;
		case CMD_RX: cmd_rx(&in); break;
		case CMD_IO: cmd_io(); break;
		case CMD_CLIENT: cmd_client(&in); break;
		case CMD_PEER: cmd_peer(&in); break;
		case CMD_ACCEPT: cmd_accept(); break;
		case CMD_RAW: cmd_raw(&in); break;
		case CMD_KICK: kick(in8(&in) & 1 ? VSOCK_EVQ : VSOCK_RXQ); break;
		case CMD_RESET: cmd_reset(); break;
		case CMD_TIME: cmd_time(); break;
		default: cmd_config(&in); break;
		}
	}
	teardown();
	return 0;
}

#ifdef FUZZ_WRITE_SEEDS
static uint8_t seed[4096];
static size_t seed_len;

static void put(const uint8_t *b, size_t n)
{
	memcpy(seed + seed_len, b, n);
	seed_len += n;
}

#define PUT(...) put((const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void write_seed(const char *dir_out, const char *name)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir_out, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, seed, seed_len) != (ssize_t)seed_len || close(fd))
		abort();
	seed_len = 0;
}

/*
 * A tx packet: flags (one piece, kicked), length mode 1 (one byte), credit
 * mode 0, ports (mode 1: listener 1 + s % 5 ... from s), len, op, flags.
 */
static void seed_tx(uint8_t ports, uint8_t op, uint8_t len, uint8_t flags)
{
	PUT(CMD_TX, 0, 1, 0, ports, len, op, flags);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	/* Guest -> host port 1: REQUEST, RESPONSE back, data both ways, SHUTDOWN, RST. */
	PUT(0x44, 0x03);                              /* rx 16, tx 16, EVENT_IDX + INDIRECT */
	PUT(CMD_RX, 8 | 7, 4, 4, 4, 4, 4, 4, 4, 4);   /* eight 4 KiB rx buffers, kicked */
	seed_tx(1, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
	PUT(CMD_ACCEPT, CMD_IO);
	seed_tx(0, VIRTIO_VSOCK_OP_RW, 100, 0);
	PUT(CMD_PEER, 0, 200, 0, CMD_IO);             /* the host end writes 200 bytes */
	PUT(CMD_PEER, 2, CMD_IO);
	seed_tx(0, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 0);
	PUT(CMD_IO);
	seed_tx(0, VIRTIO_VSOCK_OP_SHUTDOWN, 0, 3);
	PUT(CMD_IO, CMD_PEER, 6, CMD_IO);
	seed_tx(0, VIRTIO_VSOCK_OP_RST, 0, 0);
	write_seed(argv[1], "guest_connect");

	/* Host -> guest: CONNECT 1000, REQUEST to the guest, RESPONSE, data, EOF. */
	PUT(0x44, 0x00);
	PUT(CMD_RX, 8 | 7, 4, 4, 4, 4, 4, 4, 4, 4);
	PUT(CMD_CLIENT, 0, CMD_IO, CMD_IO);
	seed_tx(0, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
	PUT(CMD_IO, CMD_PEER, 2);                      /* the client reads "OK <port>" */
	PUT(CMD_PEER, 0, 0x10, 0x10, CMD_IO);
	seed_tx(0, VIRTIO_VSOCK_OP_RW, 50, 0);
	PUT(CMD_PEER, 4, CMD_IO, CMD_IO);             /* EOF: SHUTDOWN to the guest */
	PUT(CMD_PEER, 2);
	seed_tx(0, VIRTIO_VSOCK_OP_SHUTDOWN, 0, 2);
	PUT(CMD_IO, CMD_CONFIG, 0, 8, CMD_RESET, CMD_RESET, CMD_IO);
	write_seed(argv[1], "host_connect");

	/* A host end that stops reading: guest data waits in the device, then overruns. */
	PUT(0x44, 0x00);
	PUT(CMD_RX, 8 | 7, 4, 4, 4, 4, 4, 4, 4, 4);
	seed_tx(1, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
	PUT(CMD_ACCEPT, CMD_IO, CMD_PEER, 7);
	for (int i = 0; i < 4; i++)
		PUT(CMD_TX, 0, 3, 0, 0, VIRTIO_VSOCK_OP_RW, 0); /* 64 KiB each */
	PUT(CMD_IO, CMD_PEER, 2, CMD_IO, CMD_PEER, 2, CMD_IO);
	seed_tx(0, VIRTIO_VSOCK_OP_SHUTDOWN, 0, 1);
	PUT(CMD_IO, CMD_CLIENT, 2, CMD_IO, CMD_TIME, CMD_IO);
	write_seed(argv[1], "slow_host");

	/* Stray packets, a port nobody listens on, a bad op, an unknown CID. */
	PUT(0x44, 0x01);
	PUT(CMD_RX, 8 | 3, 0, 1, 2, 3);
	seed_tx(4 << 2 | 1, VIRTIO_VSOCK_OP_REQUEST, 0, 0); /* port 5: nobody */
	seed_tx(1, VIRTIO_VSOCK_OP_RW, 10, 0);
	seed_tx(1, 8, 0, 0);
	PUT(CMD_TX, 32, 0, 0, 1);                     /* CIDs from the input: */
	PUT(9, 0, 0, 0, 0, 0, 0, 0);                  /* src_cid 9, not the guest's */
	PUT(2, 0, 0, 0, 0, 0, 0, 0);
	PUT(VIRTIO_VSOCK_OP_REQUEST, 0);
	PUT(CMD_IO, CMD_IO);
	write_seed(argv[1], "stray");
	return 0;
}
#endif
