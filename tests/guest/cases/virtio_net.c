/*
 * virtio_net.c - case "virtio-net": a network card over virtio-pci, with the
 * host end a TAP device the harness watches with an AF_PACKET socket.
 *
 * Guest -> host: "yt.ntx=N" UDP/IPv4 frames of known lengths and payloads
 * (tests/guest/run_cases.py, net_payload, computes the same), IP header and
 * UDP checksums computed here. When VIRTIO_NET_F_CSUM was negotiated the
 * last two frames leave the UDP checksum to the device (NEEDS_CSUM with the
 * pseudo-header sum in place): the host sees them as checksum-partial.
 * Host -> guest: after "YT NET READY" the harness injects "yt.nrx=M" frames
 * on the TAP; each is checked here (Ethernet address, IP header checksum,
 * UDP checksum, payload) and answered with a small echo frame carrying its
 * sequence number, length and a hash of its payload.
 *
 * Queue 0 (rx) keeps all its buffers posted and completes by MSI-X; queue 1
 * (tx) alternates interrupt and polled completion, direct and indirect
 * descriptors, one and two buffers per frame.
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/lib.h"
#include "../kernel/trap.h"
#include "../kernel/virtio_pci.h"

#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_STATUS	16

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2

#define RXQ 0
#define TXQ 1

#define HDR_LEN	 12 /* struct virtio_net_hdr with VERSION_1 (num_buffers included) */
#define ETH_LEN	 14
#define IP_LEN	 20
#define UDP_LEN	 8
#define L4_OFF	 (ETH_LEN + IP_LEN)
#define DATA_OFF (ETH_LEN + IP_LEN + UDP_LEN)
#define RX_BUF	 2048
#define MTU	 1500

#define GUEST_PORT 5000
#define HOST_PORT  5001
#define ECHO_PORT  5002

struct net_hdr {
	u8 flags, gso_type;
	u16 hdr_len, gso_size, csum_start, csum_offset, num_buffers;
} __attribute__((packed));

static const u8 host_mac[6] = {0x02, 0x59, 0x54, 0x00, 0x00, 0x01};
static const u8 guest_ip[4] = {10, 0, 2, 15}, host_ip[4] = {10, 0, 2, 2};
/* Payload lengths of the guest's frames, cycled (1472 fills a 1500 MTU). */
static const u16 tx_lens[] = {8, 18, 100, 512, 1000, 1472, 333, 64};

static struct virtio_dev vd;
static u8 mac[6];
static u8 *rx_bufs;
static u8 *tx_buf;
static u32 ntx_sent, offloaded;

static u16 be16(u16 v)
{
	return (u16)(v << 8 | v >> 8);
}

static u16 get_be16(const u8 *p)
{
	return (u16)(p[0] << 8 | p[1]);
}

static void put_be16(u8 *p, u16 v)
{
	p[0] = (u8)(v >> 8);
	p[1] = (u8)v;
}

/* RFC 1071 sum of 16-bit big-endian words, not folded or complemented. */
static u32 sum16(const u8 *p, u32 n, u32 sum)
{
	const u16 *w = (const u16 *)p;

	for (u32 i = 0; i < n / 2; i++)
		sum += be16(w[i]);
	if (n & 1)
		sum += (u32)p[n - 1] << 8;
	return sum;
}

static u16 fold(u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (u16)sum;
}

static u32 pseudo_sum(const u8 *ip, u16 udp_len)
{
	return sum16(ip + 12, 8, 17u + udp_len);
}

/* The payload byte i of frame `seq` (run_cases.py net_payload). */
static u8 payload_byte(u32 seq, u32 i, u32 salt)
{
	if (i < 4)
		return (u8)(seq >> (8 * i));
	return (u8)(seq * 37u + i * 13u + salt);
}

/* FNV-1a 32 over bytes. */
static u32 fnv32(const u8 *p, u32 n)
{
	u32 h = 0x811c9dc5u;

	for (u32 i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x01000193u;
	return h;
}

/*
 * Build an Ethernet + IPv4 + UDP frame to the host at f; returns its length.
 * With `partial` the UDP checksum is left to the device.
 */
static u32 build_udp(u8 *f, u16 sport, u16 dport, u16 id, u32 paylen, bool partial)
{
	u8 *ip = f + ETH_LEN, *udp = f + L4_OFF;
	u16 udp_len = (u16)(UDP_LEN + paylen);

	memcpy(f, host_mac, 6);
	memcpy(f + 6, mac, 6);
	put_be16(f + 12, 0x0800);
	memset(ip, 0, IP_LEN);
	ip[0] = 0x45;
	put_be16(ip + 2, (u16)(IP_LEN + udp_len));
	put_be16(ip + 4, id);
	put_be16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, guest_ip, 4);
	memcpy(ip + 16, host_ip, 4);
	put_be16(ip + 10, (u16)~fold(sum16(ip, IP_LEN, 0)));
	put_be16(udp, sport);
	put_be16(udp + 2, dport);
	put_be16(udp + 4, udp_len);
	put_be16(udp + 6, 0);
	if (partial) {
		/* The device folds in the rest from csum_start (virtio spec 5.1.6.2). */
		put_be16(udp + 6, fold(pseudo_sum(ip, udp_len)));
	} else {
		u16 c = (u16)~fold(sum16(udp, udp_len, pseudo_sum(ip, udp_len)));
		put_be16(udp + 6, c ? c : 0xffff);
	}
	return DATA_OFF + paylen;
}

static void tx_frame(u32 len, bool partial)
{
	struct net_hdr *h = (struct net_hdr *)tx_buf;
	const char *why;
	u32 k = ntx_sent++;
	struct vq_buf b[2];
	u32 n = 0;

	memset(h, 0, sizeof(*h));
	if (partial) {
		h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h->csum_start = L4_OFF;
		h->csum_offset = 6;
		offloaded++;
	}
	if (k & 2) { /* header and frame in two buffers */
		b[n++] = (struct vq_buf){.addr = tx_buf, .len = HDR_LEN};
		b[n++] = (struct vq_buf){.addr = tx_buf + HDR_LEN, .len = len};
	} else {
		b[n++] = (struct vq_buf){.addr = tx_buf, .len = HDR_LEN + len};
	}
	long used = vq_request(&vd, TXQ, b, n, k & 1, (k >> 2) & 1 ? VQ_POLL : VQ_IRQ, 3000, &why);
	if (used < 0)
		yt_fail("tx of frame %u (%u bytes): %s (status 0x%x)", k, len, why,
			virtio_status(&vd));
}

static void send_test_frames(u32 count)
{
	bool csum = vd.features & (1ULL << VIRTIO_NET_F_CSUM);

	for (u32 seq = 0; seq < count; seq++) {
		u32 paylen = tx_lens[seq % ARRAY_SIZE(tx_lens)];
		u8 *f = tx_buf + HDR_LEN;
		for (u32 i = 0; i < paylen; i++)
			f[DATA_OFF + i] = payload_byte(seq, i, 0);
		bool partial = csum && seq + 2 >= count;
		u32 len = build_udp(f, GUEST_PORT, HOST_PORT, (u16)seq, paylen, partial);
		tx_frame(len, partial);
		yt_printf("YT NET TX seq=%u len=%u csum=%s\n", seq, len,
			  partial ? "partial" : "full");
	}
}

static void rx_post(u16 slot)
{
	struct vq_buf b = {.addr = rx_bufs + (u32)slot * RX_BUF, .len = RX_BUF, .write = true};

	if (vq_add(&vd, RXQ, &b, 1, false) < 0)
		yt_fail("rx queue full while posting buffer %u", slot);
}

/*
 * Check one received frame; true if it is one of the harness's. Anything
 * else on the wire (the host's own chatter) is counted and ignored.
 */
static bool rx_check(const u8 *buf, u32 used, u32 *seq_out, u32 *paylen_out)
{
	const struct net_hdr *h = (const struct net_hdr *)buf;
	const u8 *f = buf + HDR_LEN, *ip = f + ETH_LEN, *udp = f + L4_OFF;

	if (used < HDR_LEN + DATA_OFF + 4 || get_be16(f + 12) != 0x0800 || ip[9] != 17 ||
	    get_be16(udp + 2) != GUEST_PORT)
		return false;
	u32 len = used - HDR_LEN;
	if (memcmp(f, mac, 6))
		yt_fail("rx: frame for %02x:%02x:%02x:%02x:%02x:%02x, not our MAC", f[0], f[1],
			f[2], f[3], f[4], f[5]);
	if (ip[0] != 0x45 || (u32)get_be16(ip + 2) + ETH_LEN > len)
		yt_fail("rx: bad IPv4 header (0x%x, total length %u, frame %u)", ip[0],
			get_be16(ip + 2), len);
	if (fold(sum16(ip, IP_LEN, 0)) != 0xffff)
		yt_fail("rx: IP header checksum wrong");
	u16 udp_len = get_be16(udp + 4);
	if (udp_len < UDP_LEN || (u32)L4_OFF + udp_len > len)
		yt_fail("rx: UDP length %u in a %u-byte frame", udp_len, len);
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		/* Legal with GUEST_CSUM: only the pseudo-header sum is in place. */
		if (get_be16(udp + 6) != fold(pseudo_sum(ip, udp_len)))
			yt_fail("rx: NEEDS_CSUM frame without the pseudo-header sum");
	} else if (get_be16(udp + 6) && fold(sum16(udp, udp_len, pseudo_sum(ip, udp_len))) !=
						0xffff) {
		yt_fail("rx: UDP checksum wrong (field 0x%x)", get_be16(udp + 6));
	}
	u32 paylen = udp_len - UDP_LEN;
	const u8 *p = udp + UDP_LEN;
	u32 seq = p[0] | p[1] << 8 | p[2] << 16 | (u32)p[3] << 24;
	for (u32 i = 4; i < paylen; i++)
		if (p[i] != payload_byte(seq, i, 0x5a))
			yt_fail("rx: frame %u payload byte %u is 0x%x, want 0x%x", seq, i, p[i],
				payload_byte(seq, i, 0x5a));
	*seq_out = seq;
	*paylen_out = paylen;
	yt_printf("YT NET RX seq=%u len=%u flags=%u csum=ok\n", seq, len, h->flags);
	return true;
}

/* Answer frame `seq` with "seq, payload length, FNV-1a of the payload". */
static void echo(u32 seq, const u8 *payload, u32 paylen)
{
	u8 *f = tx_buf + HDR_LEN, *d = f + DATA_OFF;
	u32 v[3] = {seq, paylen, fnv32(payload, paylen)};

	for (u32 i = 0; i < 12; i++)
		d[i] = (u8)(v[i / 4] >> (8 * (i % 4)));
	tx_frame(build_udp(f, GUEST_PORT, ECHO_PORT, (u16)(0x8000 | seq), 12, false), false);
}

static bool rx_ready(void *arg)
{
	(void)arg;
	return vq_has_used(&vd, RXQ);
}

void case_virtio_net(void)
{
	const char *why, *v;
	size_t len;
	u64 ntx = 8, nrx = 8;
	u64 optional = (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC) |
		       (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
		       (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM);

	if ((v = cmdline_get("yt.ntx", &len)) && !parse_u64(v, len, &ntx))
		yt_fail("bad yt.ntx");
	if ((v = cmdline_get("yt.nrx", &len)) && !parse_u64(v, len, &nrx))
		yt_fail("bad yt.nrx");
	if (cmdline_is("yt.virtio", "min"))
		optional = 1ULL << VIRTIO_NET_F_MAC;
	if (!virtio_open(&vd, VIRTIO_ID_NET, optional, true, &why))
		yt_fail("virtio-net: %s", why);
	if (!(vd.features & (1ULL << VIRTIO_NET_F_MAC)))
		yt_fail("virtio-net: the device offers no MAC (VIRTIO_NET_F_MAC)");
	if (!virtio_setup_queue(&vd, RXQ, &why) || !virtio_setup_queue(&vd, TXQ, &why))
		yt_fail("virtio-net queues: %s", why);
	virtio_driver_ok(&vd);

	for (u32 i = 0; i < 6; i++)
		mac[i] = virtio_cfg8(&vd, i);
	u32 status = (vd.features & (1ULL << VIRTIO_NET_F_STATUS))
			 ? (u32)(virtio_cfg8(&vd, 6) | virtio_cfg8(&vd, 7) << 8)
			 : 1;
	yt_printf("YT NET MAC %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3],
		  mac[4], mac[5]);
	yt_printf("YT NET CONFIG status=%u csum=%d guest_csum=%d event_idx=%d indirect=%d\n",
		  status, !!(vd.features & (1ULL << VIRTIO_NET_F_CSUM)),
		  !!(vd.features & (1ULL << VIRTIO_NET_F_GUEST_CSUM)),
		  !!(vd.features & (1ULL << VIRTIO_F_EVENT_IDX)),
		  !!(vd.features & (1ULL << VIRTIO_F_INDIRECT_DESC)));

	u16 nbufs = vd.vq[RXQ].size;
	rx_bufs = virtio_alloc((u32)nbufs * RX_BUF);
	tx_buf = virtio_alloc(HDR_LEN + ETH_LEN + MTU);
	for (u16 i = 0; i < nbufs; i++)
		rx_post(i);
	vq_irq_enable(&vd, RXQ, true);
	vq_kick(&vd, RXQ);

	send_test_frames((u32)ntx);
	yt_printf("YT NET READY\n");

	u32 got = 0, other = 0, irqs0 = virtio_irqs[vd.vq[RXQ].vector - VEC_VIRTIO];
	u64 seen = 0; /* sequence numbers received (below 64) */
	while (got < nrx) {
		u16 id;
		u32 used, seq, paylen;
		if (!vq_pop(&vd, RXQ, &id, &used)) {
			vq_irq_enable(&vd, RXQ, true);
			if (!wait_until(rx_ready, NULL, 10000))
				yt_fail("rx: %u of %lu frames after 10 s (%u others)", got,
					(unsigned long)nrx, other);
			continue;
		}
		if (id >= nbufs || used > RX_BUF)
			yt_fail("rx: used entry id %u len %u", id, used);
		/* The buffer is descriptor `id`: buffers were posted one per descriptor. */
		u8 *buf = (u8 *)(uintptr_t)vd.vq[RXQ].desc[id].addr;
		if (rx_check(buf, used, &seq, &paylen)) {
			if (seq < 64 && (seen & (1ULL << seq)))
				yt_fail("rx: frame %u twice", seq);
			if (seq < 64)
				seen |= 1ULL << seq;
			got++;
			echo(seq, buf + HDR_LEN + DATA_OFF, paylen);
		} else {
			other++;
		}
		struct vq_buf b = {.addr = buf, .len = RX_BUF, .write = true};
		if (vq_add(&vd, RXQ, &b, 1, false) < 0)
			yt_fail("rx: cannot re-post a buffer");
		vq_kick(&vd, RXQ);
	}
	yt_printf("YT NET RX_DONE got=%u other=%u irqs=%u\n", got, other,
		  virtio_irqs[vd.vq[RXQ].vector - VEC_VIRTIO] - irqs0);
	yt_printf("YT NET STATS tx=%u offloaded=%u tx_notifies=%u tx_skipped=%u rx_notifies=%u "
		  "rx_skipped=%u\n",
		  ntx_sent, offloaded, vd.vq[TXQ].notifies, vd.vq[TXQ].notifies_skipped,
		  vd.vq[RXQ].notifies, vd.vq[RXQ].notifies_skipped);
	yt_pass();
}
