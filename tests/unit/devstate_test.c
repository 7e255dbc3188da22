/*
 * devstate_test.c - the device half of a snapshot (src/vmm/snapshot/
 * devices.c) on two harness-built VMs: every device a VM has (COM1, RTC,
 * i8042, PM, the PCI bus, virtio rng, blk, balloon, net and vsock on
 * their transports), no KVM, the guest driver played through the PCI bus
 * (configuration space and BAR 0 via the MMIO window).
 *
 * VM A is driven into a state worth saving (drivers up, MSI-X programmed,
 * a BAR moved, requests done, an INTx line high, a disk write and flush in
 * flight, rx chains held, a balloon stats buffer held, chains posted and
 * not kicked) and saved; VM B is built from the same configuration with a
 * copy of A's RAM and loads the state. Then B must have what A had outside
 * itself (MSI-X routes, the notify ioeventfd where BAR 0 went, raised
 * lines), read the same registers, save byte-identical state, and serve the
 * next request on every queue exactly as A does (same used ring entries).
 * A third VM C gets corrupted states: every validated field out of range
 * and every section cut at every byte is an error naming section and
 * field. The VMs are tests/unit/vm_rig.h's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "lib/log.h"
#include "vm_rig.h"
#include "vmm/snapshot/devices.h"

static char dir[] = "/tmp/yun-devstate-test-XXXXXX";
static struct rig *A, *B, *C;
static uint8_t *P;       /* A's saved device state */
static size_t P_len;

/* A disk request: header, one data buffer (none when len is 0), status. */
static void post_blk(struct rig *g, unsigned slot, uint32_t type, uint64_t sector, uint32_t len)
{
	uint64_t *h = ram(g, BUF(DEV_BLK, 1, slot), 16);
	struct seg s[3];
	unsigned k = 0;

	h[0] = type;
	h[1] = sector;
	*(uint8_t *)ram(g, BUF(DEV_BLK, 1, slot) + 64, 1) = 0xEE;
	s[k++] = (struct seg){ BUF(DEV_BLK, 1, slot), 16, false };
	if (len)
		s[k++] = (struct seg){ BUF(DEV_BLK, 0, slot), len, type == VIRTIO_BLK_T_IN };
	s[k++] = (struct seg){ BUF(DEV_BLK, 1, slot) + 64, 1, true };
	post(g, DEV_BLK, 0, s, k);
}

/* Run the disk's completions until queue 0's used index reaches `want`. */
static void blk_wait(struct rig *g, uint16_t want)
{
	for (int spins = 0; used_idx(g, DEV_BLK, 0) != want && spins < 1000; spins++) {
		struct pollfd p = { .fd = blk_event_fd(&g->vm.disk[0]), .events = POLLIN };

		if (p.fd >= 0)
			poll(&p, 1, 10);
		virtio_pci_run(vp_of(g, DEV_BLK), 0, blk_complete);
	}
	CHECK_EQ(used_idx(g, DEV_BLK, 0), want);
}

/* A frame from the TAP's side: vnet header (zero) then len - 12 bytes. */
static void tap_send(struct rig *g, uint8_t fill, size_t len)
{
	uint8_t f[256] = { 0 };

	memset(f + NET_HDR_LEN, fill, len - NET_HDR_LEN);
	CHECK_EQ(send(g->peer, f, len, 0), len);
	virtio_pci_run(vp_of(g, DEV_NET), NET_RXQ, net_tap_ready);
}

/* Registers of the legacy devices a guest can read, in one fixed order (reads have effects). */
static void legacy_regs(struct rig *g, uint8_t *out, size_t *n)
{
	uint8_t v;

	*n = 0;
	for (unsigned r = 1; r < SERIAL_NR_PORTS; r++) {
		serial_io(&g->vm.serial, r, &v, 1, false);
		out[(*n)++] = v;
	}
	for (unsigned r = 0; r < RTC_CMOS_SIZE; r++) {
		uint8_t idx = (uint8_t)r;

		if (r == 0x0A)
			continue; /* UIP depends on when you look */
		rtc_io(&g->vm.rtc, 0, &idx, 1, true);
		rtc_io(&g->vm.rtc, 1, &v, 1, false);
		out[(*n)++] = v;
	}
	i8042_cmd_io(&g->vm.i8042, 0, &v, 1, false);
	out[(*n)++] = v;
	serial_io(&g->vm.serial, 0, &v, 1, false);
	out[(*n)++] = v;
	i8042_data_io(&g->vm.i8042, 0, &v, 1, false);
	out[(*n)++] = v;
}

static void legacy_drive(struct rig *g)
{
	static const uint8_t ser[][2] = { { 3, 0x80 }, { 0, 3 }, { 1, 0 }, { 3, 0x03 },
					  { 2, 0xC7 }, { 1, 0x01 }, { 4, 0x0B }, { 7, 0x5A } };
	static const uint8_t cmos[][2] = { { 0x40, 0x77 }, { 0x0B, 0x82 }, { 0x00, 0x30 },
					   { 0x02, 0x15 }, { 0x04, 0x09 } };
	uint8_t v;

	for (unsigned i = 0; i < sizeof(ser) / sizeof(ser[0]); i++) {
		v = ser[i][1];
		serial_io(&g->vm.serial, ser[i][0], &v, 1, true);
	}
	CHECK_EQ(serial_rx_push(&g->vm.serial, (const uint8_t *)"hi!", 3), 3);
	serial_io(&g->vm.serial, 0, &v, 1, false);
	CHECK_EQ(v, 'h');
	for (unsigned i = 0; i < sizeof(cmos) / sizeof(cmos[0]); i++) {
		rtc_io(&g->vm.rtc, 0, (uint8_t *)&cmos[i][0], 1, true);
		v = cmos[i][1];
		rtc_io(&g->vm.rtc, 1, &v, 1, true);
	}
	v = 0xF2; /* identify: ACK AB 83 */
	i8042_data_io(&g->vm.i8042, 0, &v, 1, true);
	v = 0x20; /* read the command byte */
	i8042_cmd_io(&g->vm.i8042, 0, &v, 1, true);
	i8042_data_io(&g->vm.i8042, 0, &v, 1, false);
	CHECK_EQ(v, 0xFA);
	v = 0xD1; /* write output port: waits for its byte */
	i8042_cmd_io(&g->vm.i8042, 0, &v, 1, true);
}

/* Move rng's BAR 0 (decoding off while it moves, as Linux sizes and places BARs). */
static void move_bar(struct rig *g, uint64_t to)
{
	uint16_t cmd;
	uint32_t b = (uint32_t)to;

	cfg_rw(g, DEV_RNG, PCI_COMMAND, &cmd, 2, false);
	cmd &= ~PCI_COMMAND_MEMORY;
	cfg_rw(g, DEV_RNG, PCI_COMMAND, &cmd, 2, true);
	cfg_rw(g, DEV_RNG, PCI_BAR0, &b, 4, true);
	cmd |= PCI_COMMAND_MEMORY;
	cfg_rw(g, DEV_RNG, PCI_COMMAND, &cmd, 2, true);
}

/* Every device into a state worth saving. */
static void drive(struct rig *g)
{
	uint32_t *pfn, latch = 0x80000800u;
	uint16_t *stats;

	legacy_drive(g);
	pci_conf1_io(&g->vm.pci, 0, (uint8_t *)&latch, 4, true);
	move_bar(g, LAYOUT_PCI_MMIO32 + 0x1000000);

	/* rng on INTx: a request done, the line left high (ISR not read). */
	driver_init(g, DEV_RNG, 1, false);
	post1(g, DEV_RNG, 0, BUF(DEV_RNG, 0, 0), 64, true);
	kick(g, DEV_RNG, 0);
	CHECK_EQ(used_idx(g, DEV_RNG, 0), 1);
	CHECK_EQ(g->level[PCI_INTX_GSI_BASE + DEV_RNG], 1);

	/* Disk: a read done, then a write and a flush submitted, then a read posted unkicked. */
	driver_init(g, DEV_BLK, 1, true);
	memset(ram(g, BUF(DEV_BLK, 0, 1), 4096), 0xAB, 4096);
	post_blk(g, 0, VIRTIO_BLK_T_IN, 0, 512);
	kick(g, DEV_BLK, 0);
	blk_wait(g, 1);
	post_blk(g, 1, VIRTIO_BLK_T_OUT, 8, 4096);
	post_blk(g, 2, VIRTIO_BLK_T_FLUSH, 0, 0);
	kick(g, DEV_BLK, 0);

	/* Balloon: 4 pages inflated, actual 4, a stats buffer held. */
	driver_init(g, DEV_BAL, 3, true);
	pfn = ram(g, BUF(DEV_BAL, 0, 0), 16);
	for (unsigned i = 0; i < 4; i++)
		pfn[i] = (uint32_t)(BUF(DEV_BAL, 2, i) >> 12);
	post1(g, DEV_BAL, BALLOON_INFLATEQ, BUF(DEV_BAL, 0, 0), 16, false);
	kick(g, DEV_BAL, BALLOON_INFLATEQ);
	CHECK_EQ(used_idx(g, DEV_BAL, BALLOON_INFLATEQ), 1);
	wr(g, DEV_BAL, VIRTIO_PCI_DEVICE_OFF + 4, 4, 4);
	stats = ram(g, BUF(DEV_BAL, 1, 0), 20);
	stats[0] = BALLOON_S_MEMFREE;
	memcpy(&stats[1], &(uint64_t){ 12345678 }, 8);
	stats[5] = BALLOON_S_MEMTOT;
	memcpy(&stats[6], &(uint64_t){ 87654321 }, 8);
	post1(g, DEV_BAL, BALLOON_STATSQ, BUF(DEV_BAL, 1, 0), 20, false);
	kick(g, DEV_BAL, BALLOON_STATSQ);
	CHECK_EQ(used_idx(g, DEV_BAL, BALLOON_STATSQ), 0);

	/* Net: 4 rx buffers (all held: the driver takes TSO), a frame in, one frame out. */
	driver_init(g, DEV_NET, 2, true);
	for (unsigned i = 0; i < 4; i++)
		post1(g, DEV_NET, NET_RXQ, BUF(DEV_NET, 0, i), 2048, true);
	kick(g, DEV_NET, NET_RXQ);
	tap_send(g, 0x11, 100);
	CHECK_EQ(used_idx(g, DEV_NET, NET_RXQ), 1);
	CHECK_EQ(g->vm.net[0].rx_nr_chain, 3);
	memset(ram(g, BUF(DEV_NET, 1, 0), 80), 0, 80);
	post1(g, DEV_NET, NET_TXQ, BUF(DEV_NET, 1, 0), 80, false);
	kick(g, DEV_NET, NET_TXQ);
	CHECK_EQ(used_idx(g, DEV_NET, NET_TXQ), 1);
	CHECK_EQ(recv(g->peer, (uint8_t[128]){ 0 }, 128, MSG_DONTWAIT), 80);

	/* vsock: rx buffers and an event buffer posted. */
	driver_init(g, DEV_VS, 3, true);
	for (unsigned i = 0; i < 2; i++)
		post1(g, DEV_VS, VSOCK_RXQ, BUF(DEV_VS, 0, i), 4096, true);
	post1(g, DEV_VS, VSOCK_EVQ, BUF(DEV_VS, 2, 0), 4, true);
	kick(g, DEV_VS, VSOCK_RXQ);
	kick(g, DEV_VS, VSOCK_EVQ);
}

/* ---- the round trip ------------------------------------------------------------ */

static int save(struct rig *g, uint8_t **p, size_t *len)
{
	struct snap_writer w;
	struct yun_err err;
	int rc;

	snap_writer_init(&w);
	rc = vm_devices_save(&g->vm, &w, &err);
	if (rc)
		fprintf(stderr, "save: %s\n", err.msg);
	*p = w.buf;
	*len = w.len;
	return rc;
}

static int load(struct rig *g, const uint8_t *p, size_t len, struct yun_err *err)
{
	struct snap_reader r;

	snap_reader_init(&r, p, len, "state");
	return vm_devices_load(&g->vm, &r, err);
}

/* Common configuration of every queue and the device configuration, as the driver reads them. */
static void virtio_regs(struct rig *g, unsigned n, unsigned nq, uint8_t *out, size_t *len)
{
	*len = 0;
	for (unsigned q = 0; q < nq; q++) {
		wr(g, n, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		for (unsigned off = 0; off < VIRTIO_PCI_COMMON_SIZE; off += 4) {
			uint32_t v = (uint32_t)rd(g, n, off, 4);

			memcpy(out + *len, &v, 4);
			*len += 4;
		}
	}
	for (unsigned off = 0; off < vp_of(g, n)->ops->config_size; off++)
		out[(*len)++] = (uint8_t)rd(g, n, VIRTIO_PCI_DEVICE_OFF + off, 1);
}

static const unsigned nqueues[NDEV] = { 1, 1, 3, 2, 3 };

static void test_round_trip(void)
{
	uint8_t ra[512], rb[512], *p2;
	size_t na, nb, len2;
	struct yun_err err;

	A = rig_build(dir, "a", NULL, 3);
	drive(A);
	if (!A->vm.disk[0].inflight)
		fprintf(stderr, "note: the disk's write and flush completed at submission\n");
	CHECK_EQ(save(A, &P, &P_len), 0);
	/* The save drained the disk through the normal path: both requests done, status OK. */
	CHECK_EQ(A->vm.disk[0].inflight, 0);
	CHECK_EQ(used_idx(A, DEV_BLK, 0), 3);
	CHECK_EQ(*(uint8_t *)ram(A, BUF(DEV_BLK, 1, 1) + 64, 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(*(uint8_t *)ram(A, BUF(DEV_BLK, 1, 2) + 64, 1), VIRTIO_BLK_S_OK);
	/* ... and net gave its held chains back. */
	CHECK_EQ(A->vm.net[0].rx_nr_chain, 0);
	/* A second save of the same paused VM says the same. */
	CHECK_EQ(save(A, &p2, &len2), 0);
	CHECK(len2 == P_len && !memcmp(p2, P, P_len));
	free(p2);
	/* A disk read posted, not kicked: a kick the restored VM never saw. */
	post_blk(A, 3, VIRTIO_BLK_T_IN, 8, 4096);

	/* B: same configuration, another CID (a clone), RAM as A's. */
	B = rig_build(dir, "b", A->image, 7);
	memcpy(B->vm.mem.map, A->vm.mem.map, RAM);
	memcpy(B->next_desc, A->next_desc, sizeof(A->next_desc));
	memcpy(B->avail_idx, A->avail_idx, sizeof(A->avail_idx));
	CHECK_EQ(load(B, P, P_len, &err), 0);

	/* What A had outside itself. */
	for (unsigned n = DEV_BLK; n < NDEV; n++)
		for (unsigned v = 0; v <= nqueues[n]; v++) {
			CHECK(B->dev[n].on[v]);
			CHECK_EQ(B->dev[n].addr[v], A->dev[n].addr[v]);
			CHECK_EQ(B->dev[n].data[v], A->dev[n].data[v]);
		}
	CHECK_EQ(bar0(B, DEV_RNG), LAYOUT_PCI_MMIO32 + 0x1000000);
	CHECK(ioev_bound(B, LAYOUT_PCI_MMIO32 + 0x1000000 + VIRTIO_PCI_NOTIFY_OFF));
	CHECK_EQ(B->nr_ioev, A->nr_ioev);
	CHECK_EQ(B->level[PCI_INTX_GSI_BASE + DEV_RNG], 1);
	CHECK_EQ(B->level[IRQ_COM1], 1);
	CHECK_EQ(B->vm.pci.conf1_addr, 0x80000800u);

	/* The same state, byte for byte. */
	CHECK_EQ(save(B, &p2, &len2), 0);
	CHECK(len2 == P_len && !memcmp(p2, P, P_len));
	free(p2);

	/* The registers a driver reads (vsock's config is the CID: B's own). */
	for (unsigned n = 0; n < NDEV; n++) {
		virtio_regs(A, n, nqueues[n], ra, &na);
		virtio_regs(B, n, nqueues[n], rb, &nb);
		if (n == DEV_VS) {
			CHECK_EQ(rb[na - 8], 7);
			CHECK_EQ(ra[na - 8], 3);
			na -= 8;
			nb -= 8;
		}
		CHECK(na == nb && !memcmp(ra, rb, na));
	}
	legacy_regs(A, ra, &na);
	legacy_regs(B, rb, &nb);
	CHECK(na == nb && !memcmp(ra, rb, na));
}

/* After the load, both VMs serve the next request on every queue alike. */
static void test_continue(void)
{
	struct rig *g[2] = { A, B };
	uint8_t frame[256];

	for (int i = 0; i < 2; i++) {
		struct rig *r = g[i];

		/* What the restored VM's I/O thread does first: the resume kicks. */
		for (unsigned n = 0; n < NDEV; n++)
			for (unsigned q = 0; q < nqueues[n]; q++)
				virtio_pci_kick(vp_of(r, n), q);
		post1(r, DEV_RNG, 0, BUF(DEV_RNG, 0, 1), 32, true);
		kick(r, DEV_RNG, 0);
		blk_wait(r, 4); /* the read posted before the load, served after it */
		CHECK(!memcmp(ram(r, BUF(DEV_BLK, 0, 3), 4096), ram(r, BUF(DEV_BLK, 0, 1), 4096), 4096));
		balloon_request_stats(&r->vm.balloon);
		tap_send(r, 0x22, 120);
		memset(ram(r, BUF(DEV_NET, 1, 1), 90), 0, 90);
		post1(r, DEV_NET, NET_TXQ, BUF(DEV_NET, 1, 1), 90, false);
		kick(r, DEV_NET, NET_TXQ);
		CHECK_EQ(recv(r->peer, frame, sizeof(frame), MSG_DONTWAIT), 90);
	}
	CHECK_EQ(used_idx(B, DEV_RNG, 0), 2);
	CHECK_EQ(used_idx(B, DEV_BAL, BALLOON_STATSQ), 1);
	CHECK_EQ(used_idx(B, DEV_NET, NET_RXQ), 2);
	for (unsigned n = 0; n < NDEV; n++)
		for (unsigned q = 0; q < nqueues[n]; q++) {
			if (n == DEV_VS && q == VSOCK_EVQ)
				continue;
			CHECK_EQ(used_idx(A, n, q), used_idx(B, n, q));
			CHECK(!memcmp(ram(A, USED(n, q), vq_used_bytes(QSZ)),
				      ram(B, USED(n, q), vq_used_bytes(QSZ)), vq_used_bytes(QSZ)));
		}
	CHECK(!memcmp(ram(A, BUF(DEV_NET, 0, 1), 2048), ram(B, BUF(DEV_NET, 0, 1), 2048), 2048));
	/* vsock: the restored guest hears TRANSPORT_RESET; the original does not. */
	CHECK_EQ(used_idx(A, DEV_VS, VSOCK_EVQ), 0);
	CHECK_EQ(used_idx(B, DEV_VS, VSOCK_EVQ), 1);
	CHECK_EQ(*(uint32_t *)ram(B, BUF(DEV_VS, 2, 0), 4), 0);
	CHECK_EQ(B->vm.balloon.stats.val[BALLOON_S_MEMTOT], 87654321);
	CHECK_EQ(balloon_actual(&B->vm.balloon), 4);
}

/* ---- refusals ------------------------------------------------------------------------ */

/* Offset of section `tag`'s body in P (its header 16 bytes before), and its length. */
static size_t section_at(const char *tag, size_t *len)
{
	char want[5];
	size_t off = 0;

	snprintf(want, sizeof(want), "%-4s", tag);
	while (off + 16 <= P_len) {
		uint64_t l;

		memcpy(&l, P + off + 8, 8);
		if (!memcmp(P + off, want, 4)) {
			*len = l;
			return off + 16;
		}
		off += 16 + l;
	}
	CHECK(!"no such section");
	*len = 0;
	return 0;
}

/* Load P with `n` bytes at byte `at` of section `tag` replaced; the error must say `msg`. */
static void refuse(const char *tag, long at, const void *bytes, size_t n, const char *msg)
{
	uint8_t *p = malloc(P_len);
	size_t len, body = section_at(tag, &len);
	struct yun_err err = { 0 };
	char where[16];

	memcpy(p, P, P_len);
	memcpy(p + body + at, bytes, n);
	CHECK(load(C, p, P_len, &err) < 0);
	snprintf(where, sizeof(where), "section %s", tag);
	CHECK_STR_CONTAINS(err.msg, where);
	CHECK_STR_CONTAINS(err.msg, msg);
	free(p);
}

#define U8(v)  (&(uint8_t){ v }), 1
#define U16(v) (&(uint16_t){ v }), 2
#define U32(v) (&(uint32_t){ v }), 4
#define U64(v) (&(uint64_t){ v }), 8

/* The transport section: config space, then these. */
#define T_DEV    4096
#define T_DRV    4104
#define T_CFGVEC 4120
#define T_STATUS 4124
#define T_ISR    4126
#define T_INTX   4127
#define T_NQ     4128
#define T_Q0     4130 /* size, vector, enabled, desc, avail, used, last_avail, used, signalled */
#define T_MSIX   (T_Q0 + 35)

static void test_refusals(void)
{
	C = rig_build(dir, "c", A->image, 9);
	refuse("DEVS", 1, U8(2), "the state has 2 disks, this VM has 1");
	refuse("DEVS", 4, U8(0), "the state has 0 vsock, this VM has 1");
	refuse("SER0", 0, U8(17), "RX FIFO holds 17 bytes");
	refuse("SER0", 4, U8(0x30), "IER 0x30 has reserved bits"); /* after 2 FIFO bytes */
	refuse("SER0", 7, U8(0x20), "MCR 0x20");
	refuse("SER0", 9, U8(0x00), "modem lines do not match");
	refuse("SER0", 13, U8(2), "boolean is 2");
	refuse("RTC0", 0, U8(0x80), "index register 0x80");
	refuse("RTC0", 129, U64(1ULL << 50), "clock offset");
	refuse("RTC0", 137, U32(1000), "frozen time field 0 is 1000");
	refuse("RTC0", 1 + 0x0C, U8(0x80), "registers A/C/D");
	refuse("KBC0", 33, U8(0x20), "pending controller command 0x20 takes no data");
	refuse("KBC0", 34, U8(0x12), "pending keyboard command 0x12");
	refuse("KBC0", 35, U8(7), "scancode set 7");
	refuse("KBC0", 38, U8(17), "output queue holds 17");
	refuse("PCI0", 4, U16(0x1234), "config byte 0x000");
	refuse("VPD0", 0x10, U32(0x10000000), "BAR0 at 0x10000000 is outside the PCI windows");
	refuse("VPD0", 0x2C, U16(0x1234), "read-only bits");
	refuse("VPD0", T_DEV, U64(1), "offered features 0x1");
	refuse("VPD0", T_DRV + 7, U8(0x80), "not a subset of the offered");
	refuse("VPD0", T_STATUS, U8(0x1F), "status 0x1f has unknown bits");
	refuse("VPD0", T_STATUS, U8(0x07), "DRIVER_OK without FEATURES_OK");
	refuse("VPD0", T_DRV + 4, U8(0), "FEATURES_OK without VERSION_1");
	refuse("VPD0", T_CFGVEC, U16(40), "config MSI-X vector 40");
	refuse("VPD0", T_ISR, U8(4), "ISR 0x04");
	refuse("VPD0", T_INTX, U8(1), "INTx asserted with ISR 0");
	refuse("VPD0", T_NQ, U16(2), "2 queues, this device has 1");
	refuse("VPD0", T_Q0, U16(3), "queue 0: size 3 is not a power of two up to 256");
	refuse("VPD0", T_Q0, U16(512), "queue 0: size 512");
	refuse("VPD0", T_Q0 + 2, U16(9), "queue 0: MSI-X vector 9");
	refuse("VPD0", T_Q0 + 5, U64(RAM - 16), "not all in guest RAM");
	refuse("VPD0", T_Q0 + 5, U64(RING(1, 0) + 8), "misaligned");
	refuse("VPD0", T_Q0 + 29, U16(40), "more than 16 apart");
	refuse("VPD0", T_MSIX, U16(3), "MSI-X: 3 vectors, this device has 2");
	refuse("VPD0", T_MSIX + 2 + 12, U32(2), "MSI-X vector 0: control 0x2 has reserved bits");
	refuse("VPD0", T_MSIX + 2 + 32, U64(4), "pending bits 0x4 beyond vector 1");
	refuse("VPRN", T_Q0 + 4, U8(0), "not enabled but has ring positions");
	refuse("BLK0", 0, U64(DISK * 2ULL), "capacity 2048 sectors, the state has 4096");
	refuse("BLK0", 8, U8(1), "writable, the state's disk was read-only");
	refuse("BLK0", 9, U32(4096), "block size 512");
	refuse("BAL0", 9, U16(500), "stats buffer head 500");
	refuse("BAL0", 13, U64(1ULL << 40), "deflate timer");
	refuse("BAL0", 21 + 80, U32(1u << 20), "stats present bits");
	refuse("NET0", 0, U8(1), "not a unicast address");
	refuse("VSK0", 0, U32(5), "next host port 5");
	refuse("VPN0", T_Q0 + 35, U16(3), "queue 1: size 3");
	refuse("VPVS", T_STATUS, U8(0xFF), "status 0xff");
	/* An unknown section version, and another section where one was expected. */
	refuse("SER0", -12, U32(2), "section SER0 has version 2; this yun-vmm reads 1 to 1");
	refuse("RTC0", -16, "XXXX", 4, "expected section RTC0, found \"XXXX\"");
}

/* Every section cut short at every byte (cheaper steps inside config spaces): an error naming it. */
static void test_truncation(void)
{
	uint8_t *p = malloc(P_len);
	size_t off = 0;
	unsigned cuts = 0;

	while (off + 16 <= P_len) {
		uint64_t len;
		char tag[5] = { 0 }, where[16];

		memcpy(tag, P + off, 4);
		for (int i = 3; i > 0 && tag[i] == ' '; i--)
			tag[i] = '\0';
		memcpy(&len, P + off + 8, 8);
		snprintf(where, sizeof(where), "section %s", tag);
		for (uint64_t cut = 0; cut < len; cut += (len > 4096 && cut < 4000) ? 61 : 1) {
			struct yun_err err = { 0 };
			uint64_t l = cut;

			/* The section's length says `cut`; the bytes behind it are the next sections'. */
			memcpy(p, P, off + 16 + cut);
			memcpy(p + off + 8, &l, 8);
			memcpy(p + off + 16 + cut, P + off + 16 + len, P_len - off - 16 - len);
			CHECK(load(C, p, P_len - (len - cut), &err) < 0);
			if (!strstr(err.msg, where)) {
				CHECK_STR_CONTAINS(err.msg, where);
				break;
			}
			cuts++;
		}
		off += 16 + len;
	}
	/* And the whole state cut anywhere (every byte up to the PCI bus, then in steps). */
	for (size_t len = 0; len < P_len; len += len < 4500 ? 1 : 97) {
		struct yun_err err = { 0 };
		uint8_t *q = malloc(len ? len : 1);

		memcpy(q, P, len);
		CHECK(load(C, q, len, &err) < 0);
		CHECK(err.msg[0]);
		free(q);
	}
	fprintf(stderr, "%u section cuts refused\n", cuts);
	free(p);
}

int main(void)
{
	yun_log_init("devstate_test", YUN_LOG_ERROR);
	if (!mkdtemp(dir))
		return 1;
	RUN(test_round_trip);
	RUN(test_continue);
	RUN(test_refusals);
	RUN(test_truncation);
	rig_destroy(A);
	rig_destroy(B);
	rig_destroy(C);
	free(P);
	rmdir(dir);
	return CHECK_DONE();
}
