/*
 * virtio_blk.c - case "virtio-blk": a raw disk over virtio-pci.
 *
 * Read-write disk (default), in this order:
 *  1. capacity, size_max, seg_max and the DISCARD / WRITE_ZEROES limits
 *     from the device config (one "YT BLK_CONFIG" and one "YT BLK_DZ_CONFIG"
 *     line);
 *  2. the whole disk written with a pattern, a function of yt.seed, the
 *     sector and the word (the harness recomputes it: run_cases.py,
 *     blk_pattern_sector), in requests of 1 to 128 sectors whose data is
 *     split into 1 to 4 buffers at 8-byte (not sector) boundaries;
 *  3. FLUSH when offered;
 *  4. when offered: DISCARD of a 64 KiB range at a quarter of the disk
 *     (aligned to 4 KiB and to discard_sector_alignment, so the host can
 *     free whole blocks), WRITE_ZEROES of an unaligned range at the middle
 *     (odd start and length: nothing around it may change) and
 *     WRITE_ZEROES with the UNMAP flag over the last 64 sectors; each must
 *     succeed ("YT BLK_ZERO <kind> sector=S count=N status=0"). All three
 *     must read as zeroes later: the spec would let a discarded range keep
 *     its data, but both VMMs punch a hole in the raw file (QEMU with
 *     discard=unmap, as the harness runs it);
 *  5. refusals: a write across the end, a read past the end, DISCARD and
 *     WRITE_ZEROES across the end get VIRTIO_BLK_S_IOERR; DISCARD with the
 *     UNMAP flag and WRITE_ZEROES with an unknown flag get
 *     VIRTIO_BLK_S_UNSUPP (virtio 1.2, 5.2.6.2);
 *  6. the whole disk read back in requests of other sizes (the boundaries
 *     differ from step 2's) into a poisoned buffer and compared word by word
 *     with the pattern, the ranges of step 4 with zeroes; every word is
 *     folded into FNV-1a 64 (as cases/initrd.c: per little-endian word,
 *     then the byte length), printed in "YT BLK_READ" for the harness to
 *     recompute from the image file after the VM exits;
 *  7. GET_ID.
 * With "yt.blk=ro" the device must offer VIRTIO_BLK_F_RO; sectors 0-1
 * (prepared by the harness) must read back as the pattern, the whole disk
 * is read and its checksum printed the same way, and a write, a DISCARD
 * and a WRITE_ZEROES (the last two when offered) must be refused with
 * VIRTIO_BLK_S_IOERR.
 * Requests alternate between direct and indirect descriptors and between
 * interrupt and polled completion.
 *
 * Disk size: the harness's image is 2055 sectors (1 MiB + 7 sectors). Every
 * data word passes through CPL0 code, which KVM emulates on the PVM test
 * hosts (measured there: the write pass takes 0.4 s, the read-back pass
 * with its compare and checksum 0.9 s, a whole run 1.5 s under yun-vmm and
 * 1.5-2.3 s under QEMU). 1 MiB keeps a run short and still spans about 30
 * requests per pass and three separate zeroed ranges; the odd sector count
 * gives a short last request and catches a device that rounds its capacity
 * to pages.
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/lib.h"
#include "../kernel/trap.h"
#include "../kernel/virtio_pci.h"

#define VIRTIO_BLK_F_SIZE_MAX	  1
#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1

/* struct virtio_blk_config offsets (virtio 1.2, 5.2.4) */
#define CFG_CAPACITY		0
#define CFG_SIZE_MAX		8
#define CFG_SEG_MAX		12
#define CFG_BLK_SIZE		20
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG	40
#define CFG_DISCARD_ALIGNMENT	44
#define CFG_MAX_WZ_SECTORS	48
#define CFG_MAX_WZ_SEG		52
#define CFG_WZ_MAY_UNMAP	56

#define SECTOR	      512
#define SECTOR_WORDS  (SECTOR / 8)
#define MAX_SECTORS   128 /* per read/write request: 64 KiB */
#define MAX_DATA_BUFS 4
#define ID_BYTES      20
#define PATTERN_STEP  0xbf58476d1ce4e5b9ULL
#define POISON	      0xa5a5a5a5a5a5a5a5ULL
#define FNV_OFFSET    0xcbf29ce484222325ULL
#define FNV_PRIME     0x100000001b3ULL

struct blk_hdr {
	u32 type, reserved;
	u64 sector;
};

struct blk_seg { /* virtio_blk_discard_write_zeroes */
	u64 sector;
	u32 num_sectors, flags;
};

/* A range step 4 zeroed: step 6 expects zeroes there. */
struct zero_range {
	u64 sector, count;
};

static struct virtio_dev vd;
static struct blk_hdr *hdr;
static struct blk_seg *seg;
static u8 *status;
static u64 *data; /* MAX_SECTORS, device-visible */
static u64 want[MAX_SECTORS * SECTOR_WORDS] __attribute__((aligned(4096), section(".noinit")));
static u64 seed;
static u32 nreq;
static u32 size_max = ~0u, seg_max = ~0u;
static struct zero_range zeroed[3];
static u32 nzeroed;

/* Request sizes in sectors, taken in turn; the read pass starts elsewhere. */
static const u32 run_sectors[] = {128, 1, 100, 8, 127, 64, 3, 128, 16, 77};

static u32 min_u32(u32 a, u32 b)
{
	return a < b ? a : b;
}

/*
 * Word i of a sector is base + i * PATTERN_STEP: one add per word keeps the
 * emulated instruction count low. The harness computes the same
 * (tests/guest/run_cases.py, blk_pattern_sector).
 */
static u64 sector_base(u64 sector)
{
	u64 x = seed ^ (sector * 0x9e3779b97f4a7c15ULL);

	x ^= x >> 29;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 32);
}

static void fill(u64 *w, u64 sector, u32 count)
{
	for (u32 s = 0; s < count; s++, w += SECTOR_WORDS) {
		u64 x = sector_base(sector + s);

		for (u32 i = 0; i < SECTOR_WORDS; i += 4) {
			w[i] = x;
			x += PATTERN_STEP;
			w[i + 1] = x;
			x += PATTERN_STEP;
			w[i + 2] = x;
			x += PATTERN_STEP;
			w[i + 3] = x;
			x += PATTERN_STEP;
		}
	}
}

/*
 * The string instructions run in KVM's emulator as one instruction each:
 * on PVM hosts rep stosq / repe cmpsq are about 3x faster per word than the
 * equivalent C loops.
 */
static void set_words(u64 *w, u64 v, u64 n)
{
	__asm__ volatile("rep stosq" : "+D"(w), "+c"(n) : "a"(v) : "memory");
}

/* Index of the first of n (> 0) words where a and b differ, or n. */
static u64 first_diff(const u64 *a, const u64 *b, u64 n)
{
	u64 left = n;
	bool differ;

	__asm__ volatile("repe cmpsq"
			 : "+S"(a), "+D"(b), "+c"(left), "=@ccnz"(differ)
			 :
			 : "memory");
	return differ ? n - left - 1 : n;
}

/* FNV-1a 64 over n words (a multiple of 4), continuing from h. */
static u64 fnv_words(u64 h, const u64 *w, u64 n)
{
	for (u64 i = 0; i < n; i += 4) {
		h = (h ^ w[i]) * FNV_PRIME;
		h = (h ^ w[i + 1]) * FNV_PRIME;
		h = (h ^ w[i + 2]) * FNV_PRIME;
		h = (h ^ w[i + 3]) * FNV_PRIME;
	}
	return h;
}

/* In w, the words of count sectors from `sector`: set to v where step 4 zeroed them. */
static void set_zeroed(u64 *w, u64 sector, u32 count, u64 v)
{
	for (u32 i = 0; i < nzeroed; i++) {
		u64 lo = zeroed[i].sector, hi = lo + zeroed[i].count;

		lo = lo > sector ? lo : sector;
		hi = hi < sector + count ? hi : sector + count;
		if (lo < hi)
			set_words(w + (lo - sector) * SECTOR_WORDS, v, (hi - lo) * SECTOR_WORDS);
	}
}

/* Compare count sectors read at `sector` with what step 6 expects there. */
static void check(u64 sector, u32 count)
{
	fill(want, sector, count);
	set_zeroed(want, sector, count, 0);
	u64 n = (u64)count * SECTOR_WORDS, i = first_diff(data, want, n);
	if (i < n)
		yt_fail("sector %lu word %lu reads 0x%lx, want 0x%lx",
			(unsigned long)(sector + i / SECTOR_WORDS),
			(unsigned long)(i % SECTOR_WORDS), (unsigned long)data[i],
			(unsigned long)want[i]);
}

/* One request; returns the device's status byte (transport errors FAIL). */
static u8 blk_req(u32 type, u64 sector, const struct vq_buf *payload, u32 npayload)
{
	struct vq_buf b[MAX_DATA_BUFS + 2];
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
	for (u32 i = 0; i < npayload; i++)
		b[n++] = payload[i];
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

/*
 * Read or write count sectors between `data` and the disk, the data split
 * into 1 to MAX_DATA_BUFS buffers (more when size_max asks for it) at
 * 8-byte boundaries that need not be sector boundaries.
 */
static u8 blk_rw(u32 type, u64 sector, u32 count)
{
	struct vq_buf b[MAX_DATA_BUFS];
	u32 len = count * SECTOR, nbuf = 1 + (nreq / 4) % MAX_DATA_BUFS; /* nreq % 4: see blk_req */

	while (nbuf < MAX_DATA_BUFS && len / nbuf >= size_max)
		nbuf++;
	nbuf = min_u32(nbuf, seg_max);
	for (u32 i = 0, start = 0; i < nbuf; i++) {
		u32 end = i + 1 == nbuf ? len : (u32)((u64)len * (i + 1) / nbuf) & ~7u;

		if (end - start > size_max)
			yt_fail("%u bytes in at most %u buffers of at most %u bytes (seg_max, "
				"size_max): this driver splits no further",
				len, nbuf, size_max);
		b[i] = (struct vq_buf){.addr = (u8 *)data + start,
				       .len = end - start,
				       .write = type == VIRTIO_BLK_T_IN};
		start = end;
	}
	return blk_req(type, sector, b, nbuf);
}

/* DISCARD or WRITE_ZEROES of one segment. */
static u8 blk_seg_req(u32 type, u64 sector, u32 count, u32 flags)
{
	struct vq_buf b = {.addr = seg, .len = sizeof(*seg), .write = false};

	seg->sector = sector;
	seg->num_sectors = count;
	seg->flags = flags;
	return blk_req(type, 0, &b, 1);
}

/* Write the pattern over sectors [0, cap). */
static void write_all(u64 cap)
{
	u32 n = 0, k = 0;

	for (u64 s = 0; s < cap; n++) {
		u32 count = run_sectors[k++ % ARRAY_SIZE(run_sectors)];

		if (count > cap - s)
			count = (u32)(cap - s);
		fill(data, s, count);
		u8 st = blk_rw(VIRTIO_BLK_T_OUT, s, count);
		if (st != VIRTIO_BLK_S_OK)
			yt_fail("write of %u sectors at %lu: status %u", count, (unsigned long)s,
				st);
		s += count;
	}
	yt_printf("YT BLK_WRITE sectors=%lu requests=%u\n", (unsigned long)cap, n);
}

/* Read sectors [0, cap) (checking them when `verify`); prints the checksum. */
static void read_all(u64 cap, bool verify)
{
	u64 h = FNV_OFFSET;
	u32 n = 0, k = 3;

	for (u64 s = 0; s < cap; n++) {
		u32 count = run_sectors[k++ % ARRAY_SIZE(run_sectors)];

		if (count > cap - s)
			count = (u32)(cap - s);
		/*
		 * A read that moves no data must not pass: the buffer holds the
		 * previous request's sectors, never equal to these, except where
		 * both are zeroes; those words are poisoned.
		 */
		set_zeroed(data, s, count, POISON);
		u8 st = blk_rw(VIRTIO_BLK_T_IN, s, count);
		if (st != VIRTIO_BLK_S_OK)
			yt_fail("read of %u sectors at %lu: status %u", count, (unsigned long)s,
				st);
		if (verify)
			check(s, count);
		h = fnv_words(h, data, (u64)count * SECTOR_WORDS);
		s += count;
	}
	h = (h ^ (cap * SECTOR)) * FNV_PRIME;
	yt_printf("YT BLK_READ sectors=%lu requests=%u verified=%d checksum=%016lx\n",
		  (unsigned long)cap, n, verify, (unsigned long)h);
}

static void zero_range(const char *kind, u32 type, u64 sector, u32 count, u32 flags)
{
	u8 st = blk_seg_req(type, sector, count, flags);

	yt_printf("YT BLK_ZERO %s sector=%lu count=%u status=%u\n", kind, (unsigned long)sector,
		  count, st);
	if (st != VIRTIO_BLK_S_OK)
		yt_fail("%s of %u sectors at %lu: status %u", kind, count, (unsigned long)sector,
			st);
	zeroed[nzeroed++] = (struct zero_range){sector, count};
}

/* Step 4; cap >= 1024 (checked by the caller). */
static void discard_and_zero(u64 cap, bool discard, bool wz)
{
	if (discard) {
		u32 max = virtio_cfg32(&vd, CFG_MAX_DISCARD_SECTORS);
		u32 align = virtio_cfg32(&vd, CFG_DISCARD_ALIGNMENT);
		u64 a = 8; /* 4 KiB: a whole block of the host's file system */

		while (align && a % align)
			a += 8;
		u32 count = (u32)(min_u32(128, max) / a * a);
		if (!count || virtio_cfg32(&vd, CFG_MAX_DISCARD_SEG) < 1)
			yt_fail("DISCARD offered with max_discard_sectors %u, alignment %u, "
				"max_discard_seg %u",
				max, align, virtio_cfg32(&vd, CFG_MAX_DISCARD_SEG));
		zero_range("discard", VIRTIO_BLK_T_DISCARD, cap / 4 / a * a, count, 0);
	}
	if (wz) {
		u32 max = virtio_cfg32(&vd, CFG_MAX_WZ_SECTORS);

		if (max < 1 || virtio_cfg32(&vd, CFG_MAX_WZ_SEG) < 1)
			yt_fail("WRITE_ZEROES offered with max_write_zeroes_sectors %u, "
				"max_write_zeroes_seg %u",
				max, virtio_cfg32(&vd, CFG_MAX_WZ_SEG));
		zero_range("write-zeroes", VIRTIO_BLK_T_WRITE_ZEROES, cap / 2 + 3, min_u32(61, max),
			   0);
		u32 count = min_u32(64, max);
		zero_range("write-zeroes-unmap", VIRTIO_BLK_T_WRITE_ZEROES, cap - count, count,
			   VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	}
}

static void expect_status(const char *what, const char *key, u8 st, u8 want_st)
{
	yt_printf("YT BLK_%s status=%u\n", key, st);
	if (st != want_st)
		yt_fail("%s got status %u, want %u", what, st, want_st);
}

/* Step 5. */
static void refusals(u64 cap, bool discard, bool wz)
{
	fill(data, cap - 1, 2);
	expect_status("a write across the end of the disk", "PAST_END write",
		      blk_rw(VIRTIO_BLK_T_OUT, cap - 1, 2), VIRTIO_BLK_S_IOERR);
	expect_status("a read past the end of the disk", "PAST_END read",
		      blk_rw(VIRTIO_BLK_T_IN, cap, 1), VIRTIO_BLK_S_IOERR);
	if (discard) {
		expect_status("a DISCARD across the end of the disk", "PAST_END discard",
			      blk_seg_req(VIRTIO_BLK_T_DISCARD, cap - 8, 16, 0),
			      VIRTIO_BLK_S_IOERR);
		expect_status(
		    "a DISCARD with the UNMAP flag", "DISCARD_UNMAP",
		    blk_seg_req(VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
		    VIRTIO_BLK_S_UNSUPP);
	}
	if (wz) {
		expect_status("a WRITE_ZEROES across the end of the disk", "PAST_END write-zeroes",
			      blk_seg_req(VIRTIO_BLK_T_WRITE_ZEROES, cap - 1, 2, 0),
			      VIRTIO_BLK_S_IOERR);
		expect_status("a WRITE_ZEROES with an unknown flag", "WRITE_ZEROES_FLAGS",
			      blk_seg_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2), VIRTIO_BLK_S_UNSUPP);
	}
}

static void get_id(void)
{
	char id[ID_BYTES + 1];
	u8 *b = (u8 *)data;
	struct vq_buf buf = {.addr = data, .len = ID_BYTES, .write = true};

	memset(data, 0, ID_BYTES);
	u8 st = blk_req(VIRTIO_BLK_T_GET_ID, 0, &buf, 1);
	if (st == VIRTIO_BLK_S_UNSUPP) {
		yt_printf("YT BLK_ID unsupported\n");
		return;
	}
	if (st != VIRTIO_BLK_S_OK)
		yt_fail("GET_ID: status %u", st);
	u32 n = 0;
	while (n < ID_BYTES && b[n]) {
		id[n] = (b[n] > 0x20 && b[n] < 0x7f) ? (char)b[n] : '?';
		n++;
	}
	id[n] = '\0';
	yt_printf("YT BLK_ID %s\n", id);
}

static void read_only(u64 cap, bool discard, bool wz)
{
	u8 st = blk_rw(VIRTIO_BLK_T_IN, 0, 2);
	if (st != VIRTIO_BLK_S_OK)
		yt_fail("read of sectors 0-1 on the read-only disk: status %u", st);
	check(0, 2);
	read_all(cap, false);
	fill(data, 0, 1);
	data[0] ^= ~0ULL; /* never the bytes already there */
	expect_status("a write to the read-only disk", "RO_WRITE", blk_rw(VIRTIO_BLK_T_OUT, 0, 1),
		      VIRTIO_BLK_S_IOERR);
	if (discard)
		expect_status("a DISCARD on the read-only disk", "RO_DISCARD",
			      blk_seg_req(VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	if (wz)
		expect_status("a WRITE_ZEROES on the read-only disk", "RO_WRITE_ZEROES",
			      blk_seg_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	get_id();
	yt_pass();
}

void case_virtio_blk(void)
{
	const char *why;
	size_t len;
	const char *v = cmdline_get("yt.seed", &len);
	bool want_ro = cmdline_is("yt.blk", "ro");
	u64 optional = (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC) |
		       (1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		       (1ULL << VIRTIO_BLK_F_RO) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		       (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_DISCARD) |
		       (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);

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
	seg = (struct blk_seg *)((u8 *)hdr + 64);
	status = (u8 *)hdr + 128;
	data = virtio_alloc(MAX_SECTORS * SECTOR);

	u64 f = vd.features;
	u64 cap = virtio_cfg64(&vd, CFG_CAPACITY);
	bool ro = f & (1ULL << VIRTIO_BLK_F_RO);
	bool flush = f & (1ULL << VIRTIO_BLK_F_FLUSH);
	bool discard = f & (1ULL << VIRTIO_BLK_F_DISCARD);
	bool wz = f & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	u32 bsize = (f & (1ULL << VIRTIO_BLK_F_BLK_SIZE)) ? virtio_cfg32(&vd, CFG_BLK_SIZE) : 0;
	if (f & (1ULL << VIRTIO_BLK_F_SIZE_MAX))
		size_max = virtio_cfg32(&vd, CFG_SIZE_MAX);
	if (f & (1ULL << VIRTIO_BLK_F_SEG_MAX))
		seg_max = virtio_cfg32(&vd, CFG_SEG_MAX);
	yt_printf("YT BLK_CONFIG capacity=%lu blk_size=%u ro=%d flush=%d discard=%d "
		  "write_zeroes=%d size_max=%u seg_max=%u\n",
		  (unsigned long)cap, bsize, ro, flush, discard, wz, size_max, seg_max);
	if (discard || wz)
		yt_printf("YT BLK_DZ_CONFIG max_discard_sectors=%u max_discard_seg=%u "
			  "discard_sector_alignment=%u max_write_zeroes_sectors=%u "
			  "max_write_zeroes_seg=%u write_zeroes_may_unmap=%u\n",
			  virtio_cfg32(&vd, CFG_MAX_DISCARD_SECTORS),
			  virtio_cfg32(&vd, CFG_MAX_DISCARD_SEG),
			  virtio_cfg32(&vd, CFG_DISCARD_ALIGNMENT),
			  virtio_cfg32(&vd, CFG_MAX_WZ_SECTORS), virtio_cfg32(&vd, CFG_MAX_WZ_SEG),
			  virtio_cfg8(&vd, CFG_WZ_MAY_UNMAP));
	if (cap < 1024)
		yt_fail("capacity %lu sectors: the test wants at least 1024", (unsigned long)cap);
	if (!seg_max || size_max < SECTOR)
		yt_fail("seg_max %u, size_max %u: cannot build requests", seg_max, size_max);
	if (ro != want_ro)
		yt_fail("VIRTIO_BLK_F_RO is %s, the disk was given %s",
			ro ? "offered" : "not offered", want_ro ? "read-only" : "read-write");
	if (want_ro)
		read_only(cap, discard, wz);

	write_all(cap);
	if (flush)
		expect_status("FLUSH", "FLUSH", blk_req(VIRTIO_BLK_T_FLUSH, 0, NULL, 0),
			      VIRTIO_BLK_S_OK);
	discard_and_zero(cap, discard, wz);
	refusals(cap, discard, wz);
	read_all(cap, true);
	get_id();
	struct virtq *q = &vd.vq[0];
	yt_printf("YT BLK_STATS requests=%u irqs=%u notifies=%u skipped=%u event_idx=%d "
		  "indirect=%d\n",
		  nreq, virtio_irqs[q->vector - VEC_VIRTIO], q->notifies, q->notifies_skipped,
		  !!(vd.features & (1ULL << VIRTIO_F_EVENT_IDX)),
		  !!(vd.features & (1ULL << VIRTIO_F_INDIRECT_DESC)));
	yt_pass();
}
