/*
 * virtio_vsock.c - case "virtio-vsock": stream sockets between the guest
 * and the host (CID 2) over virtio-vsock (virtio spec 1.2, 5.10).
 *
 * Guest -> host: connect to host port "yt.vport" (default 5001), send one
 * line ("ping <n> <pattern>\n"), read the host's answer line, which must be
 * "pong " followed by the ping line reversed, then SHUTDOWN.
 * Host -> guest: listen on port 1234 ("YT VSOCK LISTEN 1234"), accept the
 * host's connection request, read one line and echo it back, then wait for
 * the host to close. Packets the guest does not expect get a RST; credit
 * requests get a credit update.
 *
 * Queues: rx (0) keeps single-buffer packets posted and completes by MSI-X,
 * tx (1) is polled, event (2) holds a few event buffers (a transport reset
 * ends the case with FAIL).
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/lib.h"
#include "../kernel/trap.h"
#include "../kernel/virtio_pci.h"

#define VIRTIO_VSOCK_F_STREAM 0

#define RXQ 0
#define TXQ 1
#define EVQ 2

#define OP_REQUEST	  1
#define OP_RESPONSE	  2
#define OP_RST		  3
#define OP_SHUTDOWN	  4
#define OP_RW		  5
#define OP_CREDIT_UPDATE  6
#define OP_CREDIT_REQUEST 7
#define TYPE_STREAM	  1

#define HOST_CID    2
#define LISTEN_PORT 1234
#define LOCAL_PORT  49152
#define RX_BUF	    2048
#define HDR_LEN	    44
#define BUF_ALLOC   (64 * 1024)
#define LINE_MAX    512

struct vsock_hdr {
	u64 src_cid, dst_cid;
	u32 src_port, dst_port, len;
	u16 type, op;
	u32 flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct pkt {
	struct vsock_hdr h;
	u8 data[RX_BUF - HDR_LEN];
};

static struct virtio_dev vd;
static u64 cid;
static u8 *rx_bufs, *ev_bufs, *tx_buf;
static struct pkt in;
static u32 fwd_cnt; /* bytes consumed on the current connection */

static void rx_post(u8 *buf)
{
	struct vq_buf b = {.addr = buf, .len = RX_BUF, .write = true};

	if (vq_add(&vd, RXQ, &b, 1, false) < 0)
		yt_fail("vsock: rx ring full");
}

static void send_pkt(u32 src_port, u32 dst_port, u16 op, u32 flags, const void *data, u32 len)
{
	struct vsock_hdr *h = (struct vsock_hdr *)tx_buf;
	const char *why;

	memset(h, 0, HDR_LEN);
	h->src_cid = cid;
	h->dst_cid = HOST_CID;
	h->src_port = src_port;
	h->dst_port = dst_port;
	h->len = len;
	h->type = TYPE_STREAM;
	h->op = op;
	h->flags = flags;
	h->buf_alloc = BUF_ALLOC;
	h->fwd_cnt = fwd_cnt;
	if (len)
		memcpy(tx_buf + HDR_LEN, data, len);
	struct vq_buf b = {.addr = tx_buf, .len = HDR_LEN + len};
	if (vq_request(&vd, TXQ, &b, 1, false, VQ_POLL, 3000, &why) < 0)
		yt_fail("vsock: tx of op %u (%u bytes): %s (status 0x%x)", op, len, why,
			virtio_status(&vd));
}

static bool rx_ready(void *arg)
{
	(void)arg;
	return vq_has_used(&vd, RXQ) || vq_has_used(&vd, EVQ);
}

/* The next packet into `in`; false on a timeout. */
static bool recv_pkt(u64 ms)
{
	u16 id;
	u32 len;

	for (;;) {
		if (vq_pop(&vd, EVQ, &id, &len))
			yt_fail("vsock: event %u from the device (transport reset)",
				*(u32 *)(uintptr_t)vd.vq[EVQ].desc[id].addr);
		if (vq_pop(&vd, RXQ, &id, &len))
			break;
		vq_irq_enable(&vd, RXQ, true);
		if (!wait_until(rx_ready, NULL, ms))
			return false;
	}
	u8 *buf = (u8 *)(uintptr_t)vd.vq[RXQ].desc[id].addr;
	if (len < HDR_LEN || len > RX_BUF)
		yt_fail("vsock: rx packet of %u bytes", len);
	memcpy(&in, buf, len);
	if (in.h.len > len - HDR_LEN)
		yt_fail("vsock: header says %u data bytes, packet has %u", in.h.len, len - HDR_LEN);
	rx_post(buf);
	vq_kick(&vd, RXQ);
	if (in.h.dst_cid != cid || in.h.src_cid != HOST_CID || in.h.type != TYPE_STREAM)
		yt_fail("vsock: packet %lu:%u -> %lu:%u type %u", (unsigned long)in.h.src_cid,
			in.h.src_port, (unsigned long)in.h.dst_cid, in.h.dst_port, in.h.type);
	return true;
}

/*
 * Wait for a packet on connection (local, peer) with operation `op`; credit
 * requests are answered on the way, a RST fails the case, a packet for
 * another connection gets a RST.
 */
static void expect(u32 local, u32 peer, u16 op, const char *what)
{
	for (;;) {
		if (!recv_pkt(10000))
			yt_fail("vsock: no %s in 10 s", what);
		if (in.h.dst_port != local || (peer && in.h.src_port != peer)) {
			if (in.h.op != OP_RST)
				send_pkt(in.h.dst_port, in.h.src_port, OP_RST, 0, NULL, 0);
			continue;
		}
		if (in.h.op == op)
			return;
		if (in.h.op == OP_CREDIT_REQUEST) {
			send_pkt(local, in.h.src_port, OP_CREDIT_UPDATE, 0, NULL, 0);
			continue;
		}
		if (in.h.op == OP_CREDIT_UPDATE)
			continue;
		yt_fail("vsock: got op %u while waiting for %s", in.h.op, what);
	}
}

/* Read one '\n'-terminated line of stream data into line; returns its length. */
static u32 read_line(u32 local, u32 peer, char *line)
{
	u32 n = 0;

	for (;;) {
		expect(local, peer, OP_RW, "data");
		if (n + in.h.len > LINE_MAX)
			yt_fail("vsock: line longer than %u bytes", LINE_MAX);
		memcpy(line + n, in.data, in.h.len);
		n += in.h.len;
		fwd_cnt += in.h.len;
		if (n && line[n - 1] == '\n')
			return n;
	}
}

static void guest_to_host(u32 port)
{
	static char msg[LINE_MAX], reply[LINE_MAX], want[LINE_MAX];
	u32 n = (u32)yt_snprintf(msg, sizeof(msg), "ping %lu ", (unsigned long)cid);

	for (u32 i = 0; i < 64; i++)
		msg[n++] = (char)('a' + (i * 7) % 26);
	msg[n++] = '\n';

	fwd_cnt = 0;
	yt_printf("YT VSOCK CONNECTING %u\n", port);
	send_pkt(LOCAL_PORT, port, OP_REQUEST, 0, NULL, 0);
	expect(LOCAL_PORT, port, OP_RESPONSE, "RESPONSE to our REQUEST");
	if (in.h.buf_alloc < n)
		yt_fail("vsock: host buffer of %u bytes", in.h.buf_alloc);
	send_pkt(LOCAL_PORT, port, OP_RW, 0, msg, n);
	u32 got = read_line(LOCAL_PORT, port, reply);

	/* The host answers "pong " + the ping line reversed (without its '\n'). */
	u32 w = 0;
	memcpy(want, "pong ", 5);
	w = 5;
	for (u32 i = n - 1; i-- > 0;)
		want[w++] = msg[i];
	want[w++] = '\n';
	if (got != w || memcmp(reply, want, w))
		yt_fail("vsock: host answered %u bytes, not the reversed ping (%u bytes)", got, w);
	send_pkt(LOCAL_PORT, port, OP_SHUTDOWN, 3, NULL, 0);
	/* The peer answers a full shutdown with RST (5.10.6.6); tolerate its absence. */
	for (u32 tries = 0; tries < 4 && recv_pkt(2000);)
		if (in.h.op == OP_RST && in.h.dst_port == LOCAL_PORT)
			break;
		else
			tries++;
	yt_printf("YT VSOCK G2H ok sent=%u received=%u\n", n, got);
}

static void host_to_guest(void)
{
	static char line[LINE_MAX];

	fwd_cnt = 0;
	yt_printf("YT VSOCK LISTEN %u\n", LISTEN_PORT);
	expect(LISTEN_PORT, 0, OP_REQUEST, "connection REQUEST from the host");
	u32 peer = in.h.src_port;
	send_pkt(LISTEN_PORT, peer, OP_RESPONSE, 0, NULL, 0);
	u32 n = read_line(LISTEN_PORT, peer, line);
	send_pkt(LISTEN_PORT, peer, OP_RW, 0, line, n);
	yt_printf("YT VSOCK H2G ok port=%u bytes=%u\n", peer, n);
	/* The host closes: SHUTDOWN (answer RST) or RST. */
	for (;;) {
		if (!recv_pkt(10000))
			yt_fail("vsock: the host did not close its connection in 10 s");
		if (in.h.dst_port != LISTEN_PORT || in.h.src_port != peer)
			continue;
		if (in.h.op == OP_SHUTDOWN) {
			send_pkt(LISTEN_PORT, peer, OP_RST, 0, NULL, 0);
			break;
		}
		if (in.h.op == OP_RST)
			break;
	}
	yt_printf("YT VSOCK H2G closed\n");
}

void case_virtio_vsock(void)
{
	const char *why, *v;
	size_t len;
	u64 port = 5001;
	u64 optional = (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC) |
		       (1ULL << VIRTIO_VSOCK_F_STREAM);

	if ((v = cmdline_get("yt.vport", &len)) && !parse_u64(v, len, &port))
		yt_fail("bad yt.vport");
	if (!virtio_open(&vd, VIRTIO_ID_VSOCK, optional, true, &why))
		yt_fail("virtio-vsock: %s", why);
	for (u16 q = 0; q < 3; q++)
		if (!virtio_setup_queue(&vd, q, &why))
			yt_fail("virtio-vsock queue %u: %s", q, why);
	virtio_driver_ok(&vd);
	cid = virtio_cfg64(&vd, 0);
	yt_printf("YT VSOCK CID %lu\n", (unsigned long)cid);
	if (cid <= 2 || cid >= 0xffffffffULL)
		yt_fail("vsock: guest CID %lu is reserved", (unsigned long)cid);

	u16 n = vd.vq[RXQ].size;
	rx_bufs = virtio_alloc((u32)n * RX_BUF);
	ev_bufs = virtio_alloc(4096);
	tx_buf = virtio_alloc(RX_BUF);
	for (u16 i = 0; i < n; i++)
		rx_post(rx_bufs + (u32)i * RX_BUF);
	vq_irq_enable(&vd, RXQ, true);
	vq_kick(&vd, RXQ);
	for (u16 i = 0; i < 4 && i < vd.vq[EVQ].size; i++) {
		struct vq_buf b = {.addr = ev_bufs + 64u * i, .len = 8, .write = true};
		vq_add(&vd, EVQ, &b, 1, false);
	}
	vq_kick(&vd, EVQ);

	guest_to_host((u32)port);
	host_to_guest();
	yt_pass();
}
