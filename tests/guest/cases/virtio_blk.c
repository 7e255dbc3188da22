/*
 * virtio_blk.c - case "virtio-blk": a raw disk over virtio-pci.
 *
 * Read-write disk (default): the capacity comes from the device config;
 * a pattern (a function of yt.seed, the sector and the word, recomputed by
 * the harness on the image file) is written to sectors 0-1, the middle
 * sector and the last sector, read back and compared; FLUSH must succeed
 * when offered; GET_ID is printed; requests past the end must fail with
 * VIRTIO_BLK_S_IOERR. With "yt.blk=ro" the device must offer
 * VIRTIO_BLK_F_RO, sectors 0-1 (prepared by the harness) must read back as
 * the pattern, and a write must be refused with VIRTIO_BLK_S_IOERR.
 * Requests alternate between direct and indirect descriptors and between
 * interrupt and polled completion.
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/lib.h"
#include "../kernel/trap.h"
#include "../kernel/virtio_pci.h"

#define VIRTIO_BLK_F_RO	      5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

#define VIRTIO_BLK_T_IN	    0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define SECTOR	    512
#define MAX_SECTORS 2
#define ID_BYTES    20

struct blk_hdr {
	u32 type, reserved;
	u64 sector;
};

static struct virtio_dev vd;
static struct blk_hdr *hdr;
static u8 *status;
static u8 *data;
static u64 seed;
static u32 nreq;

/* The harness computes the same (tests/guest/run_cases.py, blk_pattern). */
static u64 pattern(u64 sector, u32 word)
{
	u64 x = seed ^ (sector * 0x9e3779b97f4a7c15ULL) ^ ((u64)word * 0xbf58476d1ce4e5b9ULL);

	x ^= x >> 29;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 32);
}

static void fill(u64 sector, u32 count)
{
	u64 *w = (u64 *)data;

	for (u32 s = 0; s < count; s++)
		for (u32 i = 0; i < SECTOR / 8; i++)
			w[s * SECTOR / 8 + i] = pattern(sector + s, i);
}

static void check(u64 sector, u32 count)
{
	const u64 *w = (const u64 *)data;

	for (u32 s = 0; s < count; s++)
		for (u32 i = 0; i < SECTOR / 8; i++)
			if (w[s * SECTOR / 8 + i] != pattern(sector + s, i))
				yt_fail("sector %lu word %u reads 0x%lx, wrote 0x%lx",
					(unsigned long)(sector + s), i,
					(unsigned long)w[s * SECTOR / 8 + i],
					(unsigned long)pattern(sector + s, i));
}

/* One request; returns the device's status byte (transport errors FAIL). */
static u8 blk_req(u32 type, u64 sector, u32 len, bool data_in)
{
	struct vq_buf b[3];
	u32 n = 0;
	const char *why;
	bool indirect = nreq & 1;
	enum vq_mode mode = (nreq >> 1) & 1 ? VQ_POLL : VQ_IRQ;

	nreq++;
	hdr->type = type;
	hdr->reserved = 0;
	hdr->sector = sector;
	*status = 0xff;
	b[n++] = (struct vq_buf){.addr = hdr, .len = sizeof(*hdr), .write = false};
	if (len)
		b[n++] = (struct vq_buf){.addr = data, .len = len, .write = data_in};
	b[n++] = (struct vq_buf){.addr = status, .len = 1, .write = true};
	long used = vq_request(&vd, 0, b, n, indirect, mode, 5000, &why);
	if (used < 0)
		yt_fail("request type %u sector %lu: %s (device status 0x%x)", type,
			(unsigned long)sector, why, virtio_status(&vd));
	if (*status == 0xff)
		yt_fail("request type %u sector %lu: device left no status byte", type,
			(unsigned long)sector);
	return *status;
}

static void write_read(u64 sector, u32 count)
{
	u8 st;

	fill(sector, count);
	st = blk_req(VIRTIO_BLK_T_OUT, sector, count * SECTOR, false);
	if (st != VIRTIO_BLK_S_OK)
		yt_fail("write of %u sectors at %lu: status %u", count, (unsigned long)sector, st);
	memset(data, 0, count * SECTOR);
	st = blk_req(VIRTIO_BLK_T_IN, sector, count * SECTOR, true);
	if (st != VIRTIO_BLK_S_OK)
		yt_fail("read of %u sectors at %lu: status %u", count, (unsigned long)sector, st);
	check(sector, count);
	yt_printf("YT BLK_RW sector=%lu count=%u ok\n", (unsigned long)sector, count);
}

static void get_id(void)
{
	char id[ID_BYTES + 1];

	memset(data, 0, ID_BYTES);
	u8 st = blk_req(VIRTIO_BLK_T_GET_ID, 0, ID_BYTES, true);
	if (st == VIRTIO_BLK_S_UNSUPP) {
		yt_printf("YT BLK_ID unsupported\n");
		return;
	}
	if (st != VIRTIO_BLK_S_OK)
		yt_fail("GET_ID: status %u", st);
	u32 n = 0;
	while (n < ID_BYTES && data[n]) {
		id[n] = (data[n] > 0x20 && data[n] < 0x7f) ? (char)data[n] : '?';
		n++;
	}
	id[n] = '\0';
	yt_printf("YT BLK_ID %s\n", id);
}

void case_virtio_blk(void)
{
	const char *why;
	size_t len;
	const char *v = cmdline_get("yt.seed", &len);
	bool want_ro = cmdline_is("yt.blk", "ro");
	u64 optional = (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC) |
		       (1ULL << VIRTIO_BLK_F_RO) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		       (1ULL << VIRTIO_BLK_F_FLUSH);

	if (!v || !parse_u64(v, len, &seed))
		yt_fail("no yt.seed=<number> on the command line");
	if (cmdline_is("yt.virtio", "min"))
		optional &= ~((1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC));
	if (!virtio_open(&vd, VIRTIO_ID_BLOCK, optional, true, &why))
		yt_fail("virtio-blk: %s", why);
	if (!virtio_setup_queue(&vd, 0, &why))
		yt_fail("virtio-blk queue 0: %s", why);
	virtio_driver_ok(&vd);

	hdr = virtio_alloc(4096);
	status = (u8 *)hdr + 64;
	data = virtio_alloc(MAX_SECTORS * SECTOR);

	u64 cap = virtio_cfg64(&vd, 0);
	bool ro = vd.features & (1ULL << VIRTIO_BLK_F_RO);
	bool flush = vd.features & (1ULL << VIRTIO_BLK_F_FLUSH);
	u32 bsize = (vd.features & (1ULL << VIRTIO_BLK_F_BLK_SIZE)) ? virtio_cfg32(&vd, 20) : 0;
	yt_printf("YT BLK_CONFIG capacity=%lu blk_size=%u ro=%d flush=%d\n", (unsigned long)cap,
		  bsize, ro, flush);
	if (cap < 8)
		yt_fail("capacity %lu sectors: the test wants at least 8", (unsigned long)cap);
	if (ro != want_ro)
		yt_fail("VIRTIO_BLK_F_RO is %s, the disk was given %s",
			ro ? "offered" : "not offered", want_ro ? "read-only" : "read-write");

	if (want_ro) {
		u8 st = blk_req(VIRTIO_BLK_T_IN, 0, 2 * SECTOR, true);
		if (st != VIRTIO_BLK_S_OK)
			yt_fail("read of sectors 0-1 on the read-only disk: status %u", st);
		check(0, 2);
		fill(0, 1);
		data[0] ^= 0xff; /* never the bytes already there */
		st = blk_req(VIRTIO_BLK_T_OUT, 0, SECTOR, false);
		yt_printf("YT BLK_RO_WRITE status=%u\n", st);
		if (st != VIRTIO_BLK_S_IOERR)
			yt_fail("a write to the read-only disk got status %u, want IOERR (1)", st);
		get_id();
		yt_pass();
	}

	write_read(0, 2);
	write_read(cap / 2, 1);
	write_read(cap - 1, 1);

	fill(cap - 1, 2);
	u8 st = blk_req(VIRTIO_BLK_T_OUT, cap - 1, 2 * SECTOR, false);
	yt_printf("YT BLK_PAST_END write status=%u\n", st);
	if (st != VIRTIO_BLK_S_IOERR)
		yt_fail("a write across the end of the disk got status %u, want IOERR (1)", st);
	st = blk_req(VIRTIO_BLK_T_IN, cap, SECTOR, true);
	yt_printf("YT BLK_PAST_END read status=%u\n", st);
	if (st != VIRTIO_BLK_S_IOERR)
		yt_fail("a read past the end of the disk got status %u, want IOERR (1)", st);

	if (flush) {
		st = blk_req(VIRTIO_BLK_T_FLUSH, 0, 0, false);
		yt_printf("YT BLK_FLUSH status=%u\n", st);
		if (st != VIRTIO_BLK_S_OK)
			yt_fail("FLUSH: status %u", st);
	}
	get_id();
	struct virtq *q = &vd.vq[0];
	yt_printf("YT BLK_STATS requests=%u irqs=%u notifies=%u skipped=%u event_idx=%d "
		  "indirect=%d\n",
		  nreq, virtio_irqs[q->vector - VEC_VIRTIO], q->notifies, q->notifies_skipped,
		  !!(vd.features & (1ULL << VIRTIO_F_EVENT_IDX)),
		  !!(vd.features & (1ULL << VIRTIO_F_INDIRECT_DESC)));
	yt_pass();
}
