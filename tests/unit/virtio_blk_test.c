/*
 * virtio_blk_test.c - play a virtio-blk driver through the modern PCI
 * transport (BAR 0's MMIO handler, a real guest_mem, no KVM) against a
 * temporary 1 MiB image, once with the io_uring backend and once with
 * YUN_BLK_NO_URING=1: config space, whole-disk write/read-back with
 * checksums, FLUSH, GET_ID, DISCARD (zeros and fewer blocks on the host),
 * WRITE_ZEROES, read-only refusals, requests past the end (also sectors
 * near UINT64_MAX), malformed chains, O_DIRECT with unaligned buffers,
 * reset with requests in flight, and the start-up errors; the control API's
 * run-time operations: the backing file replaced with a request in flight
 * (held there by a userfaultfd on its guest buffer), bad replacement paths,
 * and rate limits changed while requests wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/pci.h"

#define QSZ       256
#define DESC      0x10000ULL
#define AVAIL     0x14000ULL
#define USED      0x15000ULL
#define HDRS      0x20000ULL /* 16-byte headers, 64 apart */
#define STATUSES  0x28000ULL /* status bytes, 64 apart */
#define DATA      0x200000ULL
#define DATA2     0x400000ULL
#define DISK      (1u << 20)
#define SECTORS   (DISK / 512)

static struct guest_mem gm;
static struct virtio_pci vp;
static struct blk blk;
static char dir[] = "/tmp/yun-blk-test-XXXXXX";
static char image[64];
static uint16_t next_desc, nposted;
static const char *backend;

/* ---- the driver ------------------------------------------------------------ */

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

static uint8_t dev_status(void)
{
	return (uint8_t)rd(VIRTIO_PCI_COMMON_STATUS, 1);
}

static uint64_t offered(void)
{
	wr(VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	uint64_t lo = rd(VIRTIO_PCI_COMMON_DF, 4);
	wr(VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	return lo | rd(VIRTIO_PCI_COMMON_DF, 4) << 32;
}

/* Reset, negotiate everything offered, set up queue 0, DRIVER_OK. */
static void driver_init(void)
{
	uint64_t f = offered();
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)f, 4);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)(f >> 32), 4);
	s |= VIRTIO_STATUS_FEATURES_OK;
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	CHECK(dev_status() & VIRTIO_STATUS_FEATURES_OK);
	gm_zero(&gm, DESC, 0x8000);
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	wr(VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
	wr(VIRTIO_PCI_COMMON_Q_DESC, DESC, 8);
	wr(VIRTIO_PCI_COMMON_Q_AVAIL, AVAIL, 8);
	wr(VIRTIO_PCI_COMMON_Q_USED, USED, 8);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	wr(VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_DRIVER_OK, 1);
	CHECK_EQ(dev_status() & VIRTIO_STATUS_NEEDS_RESET, 0);
	next_desc = 0;
	nposted = 0;
}

static void start_params(const struct blk_params *p)
{
	struct virtio_pci_host host = { .gm = &gm };
	struct yun_err err;

	CHECK_EQ(blk_open(&blk, p, &err), 0);
	CHECK_EQ(blk_uses_uring(&blk), !strcmp(backend, "io_uring"));
	CHECK_EQ(virtio_pci_init(&vp, blk_device_ops(&blk), &blk, &host, &err), 0);
	driver_init();
}

static void start(const char *path, const char *id, bool ro, bool direct)
{
	struct blk_params p = { path, id, ro, direct, 0, 0, false };

	start_params(&p);
}

static void stop(void)
{
	virtio_pci_destroy(&vp);
	blk_close(&blk);
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static struct vring_used *used(void)
{
	return gm_ptr(&gm, USED, vq_used_bytes(QSZ));
}

/* Put a chain in the avail ring (no kick). */
static void post(const struct seg *s, unsigned n)
{
	struct vring_desc *t = gm_ptr(&gm, DESC, 16 * QSZ);
	struct vring_avail *a = gm_ptr(&gm, AVAIL, vq_avail_bytes(QSZ));
	uint16_t head = next_desc % QSZ;

	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (next_desc++) % QSZ;

		t[d] = (struct vring_desc){ s[i].gpa, s[i].len,
					    (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
						       (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
					    (uint16_t)(next_desc % QSZ) };
	}
	a->ring[a->idx % QSZ] = head;
	__atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
	nposted++;
}

/* Kick and wait until every posted chain is used; false if the device gave up (NEEDS_RESET). */
static bool kick_and_wait(void)
{
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	for (int spins = 0; used()->idx != nposted; spins++) {
		struct pollfd p = { .fd = blk_event_fd(&blk), .events = POLLIN };

		if (dev_status() & VIRTIO_STATUS_NEEDS_RESET)
			return false;
		if (p.fd < 0 || spins > 1000) {
			CHECK(!"request never completed");
			return false;
		}
		poll(&p, 1, 100);
		virtio_pci_run(&vp, 0, blk_complete);
	}
	return true;
}

static uint8_t *status_of(unsigned i)
{
	return gm_ptr(&gm, STATUSES + 64 * i, 1);
}

/* Post request i (not kicked): header, data in nseg equal buffers, status. */
static void post_rq(unsigned i, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
		    unsigned nseg)
{
	struct seg s[40];
	unsigned n = 0;
	uint64_t *h = gm_ptr(&gm, HDRS + 64 * i, 16);
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;

	h[0] = type;
	h[1] = sector;
	*status_of(i) = 0xEE;
	s[n++] = (struct seg){ HDRS + 64 * i, 16, false };
	for (unsigned k = 0; len && k < nseg; k++)
		s[n++] = (struct seg){ data + (uint64_t)k * (len / nseg), len / nseg, in };
	s[n++] = (struct seg){ STATUSES + 64 * i, 1, true };
	post(s, n);
}

/* One request, waited for; returns its status byte (0xFF when the device needs a reset). */
static uint8_t rq(uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
	post_rq(0, type, sector, data, len, len ? 1 : 0);
	return kick_and_wait() ? *status_of(0) : 0xFF;
}

static uint8_t rq_seg(uint32_t type, uint64_t sector, uint32_t nsect, uint32_t flags)
{
	uint32_t *s = gm_ptr(&gm, DATA2, 16);

	memcpy(s, &sector, 8);
	s[2] = nsect;
	s[3] = flags;
	post_rq(0, type, 0, DATA2, 16, 1);
	/* The segment is device-readable: post_rq made it readable since type is not IN. */
	return kick_and_wait() ? *status_of(0) : 0xFF;
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (seed + 1);

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static void make_image(const char *path, off_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, size), 0);
	close(fd);
}

static void read_image(uint8_t *buf)
{
	int fd = open(image, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, buf, DISK, 0), DISK);
	close(fd);
}

static long long image_blocks(void)
{
	struct stat st;

	CHECK_EQ(stat(image, &st), 0);
	return (long long)st.st_blocks;
}

/* ---- the tests ------------------------------------------------------------- */

static void test_config(void)
{
	uint64_t f;

	make_image(image, DISK);
	start(image, "unit-disk", false, false);
	f = offered();
	CHECK(f & (1ULL << VIRTIO_BLK_F_FLUSH));
	CHECK(f & (1ULL << VIRTIO_BLK_F_DISCARD));
	CHECK(f & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(f & (1ULL << VIRTIO_BLK_F_SEG_MAX));
	CHECK(f & (1ULL << VIRTIO_BLK_F_BLK_SIZE));
	CHECK(!(f & (1ULL << VIRTIO_BLK_F_RO)));
	CHECK_EQ(pci_cfg_get16(&vp.pci, PCI_DEVICE_ID), 0x1042);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_CAPACITY, 8), SECTORS);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_CAPACITY + 4, 4), 0);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_SEG_MAX, 4), BLK_SEG_MAX);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_SIZE_MAX, 4), BLK_SIZE_MAX);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_BLK_SIZE, 4), 512);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_MAX_DISCARD_SEG, 4), 1);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_WZ_MAY_UNMAP, 1), 1);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CONFIG_SIZE, 4), 0); /* past the end: nothing */
	stop();
}

/* Every sector written with random bytes (batches of 64 KiB requests in 16 buffers), read back. */
static void test_whole_disk(void)
{
	static uint8_t want[DISK], file[DISK];
	uint8_t *data = gm_ptr(&gm, DATA, DISK), *back = gm_ptr(&gm, DATA2, DISK);
	const uint32_t chunk = 64 * 1024;

	make_image(image, DISK);
	start(image, NULL, false, false);
	fill_random(want, DISK, 7);
	memcpy(data, want, DISK);
	for (uint32_t batch = 0; batch < DISK; batch += 8 * chunk) {
		for (unsigned i = 0; i < 8; i++)
			post_rq(i, VIRTIO_BLK_T_OUT, (batch + i * chunk) / 512, DATA + batch + i * chunk,
				chunk, 16);
		CHECK(kick_and_wait());
		for (unsigned i = 0; i < 8; i++)
			CHECK_EQ(*status_of(i), VIRTIO_BLK_S_OK);
	}
	CHECK_EQ(rq(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	memset(back, 0, DISK);
	for (uint32_t batch = 0; batch < DISK; batch += 8 * chunk) {
		for (unsigned i = 0; i < 8; i++)
			post_rq(i, VIRTIO_BLK_T_IN, (batch + i * chunk) / 512,
				DATA2 + batch + i * chunk, chunk, 16);
		CHECK(kick_and_wait());
		for (unsigned i = 0; i < 8; i++)
			CHECK_EQ(*status_of(i), VIRTIO_BLK_S_OK);
	}
	/* The used length of a read counts the data and the status byte. */
	CHECK_EQ(used()->ring[(nposted - 1) % QSZ].len, chunk + 1);
	read_image(file);
	CHECK_EQ(fnv(back, DISK), fnv(want, DISK));
	CHECK_EQ(fnv(file, DISK), fnv(want, DISK));
	CHECK_EQ(blk.writes, 16);
	CHECK_EQ(blk.reads, 16);
	stop();
}

static void test_get_id(void)
{
	char *id = gm_ptr(&gm, DATA, 32);

	make_image(image, DISK);
	start(image, "unit-disk", false, false);
	memset(id, 'x', 32);
	CHECK_EQ(rq(VIRTIO_BLK_T_GET_ID, 0, DATA, 20), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(id, "unit-disk\0\0\0\0\0\0\0\0\0\0\0xx", 22));
	CHECK_EQ(used()->ring[0].len, 21);
	stop();
	/* No id= given: the file's name. */
	start(image, NULL, false, false);
	memset(id, 'x', 32);
	CHECK_EQ(rq(VIRTIO_BLK_T_GET_ID, 0, DATA, 20), VIRTIO_BLK_S_OK);
	CHECK(!strcmp(id, "disk.img"));
	/* A 20-byte id fills the buffer with no NUL; a short buffer gets what fits. */
	stop();
	start(image, "abcdefghijklmnopqrst", false, false);
	memset(id, 'x', 32);
	CHECK_EQ(rq(VIRTIO_BLK_T_GET_ID, 0, DATA, 8), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(id, "abcdefghxx", 10));
	CHECK_EQ(rq(VIRTIO_BLK_T_GET_ID, 0, DATA, 20), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(id, "abcdefghijklmnopqrstxx", 22));
	stop();
}

static void test_discard_and_write_zeroes(void)
{
	uint8_t *data = gm_ptr(&gm, DATA, DISK), *back = gm_ptr(&gm, DATA2, DISK);
	static uint8_t file[DISK];
	long long before, after;

	make_image(image, DISK);
	start(image, NULL, false, false);
	memset(data, 0xA5, DISK);
	CHECK_EQ(rq(VIRTIO_BLK_T_OUT, 0, DATA, DISK), VIRTIO_BLK_S_OK);
	CHECK_EQ(rq(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	before = image_blocks();
	CHECK(before >= DISK / 512);

	/* DISCARD the second 256 KiB: zeros, and the host file gives the blocks back. */
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_DISCARD, 512, 512, 0), VIRTIO_BLK_S_OK);
	after = image_blocks();
	CHECK(after <= before - 256 * 1024 / 512);
	memset(back, 0xEE, DISK);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 0, DATA2, DISK), VIRTIO_BLK_S_OK);
	for (uint32_t i = 0; i < DISK; i++)
		if (back[i] != (i >= 256 * 1024 && i < 512 * 1024 ? 0 : 0xA5)) {
			CHECK(!"DISCARD range reads back wrong");
			break;
		}
	/* The unmap flag is not for DISCARD; unknown flags are unsupported. */
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
		 VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2), VIRTIO_BLK_S_UNSUPP);

	/* WRITE_ZEROES without unmap (ZERO_RANGE) on sectors 1..3, with unmap on 1024..1535. */
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_WRITE_ZEROES, 1, 3, 0), VIRTIO_BLK_S_OK);
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_WRITE_ZEROES, 1024, 512, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
		 VIRTIO_BLK_S_OK);
	CHECK(image_blocks() < after);
	read_image(file);
	for (uint32_t i = 0; i < DISK; i++) {
		bool zero = (i >= 512 && i < 2048) || (i >= 256 * 1024 && i < 768 * 1024);

		if (file[i] != (zero ? 0 : 0xA5)) {
			CHECK(!"WRITE_ZEROES range reads back wrong");
			break;
		}
	}
	/* Past the end, and near UINT64_MAX (sector * 512 would wrap). */
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_DISCARD, SECTORS - 1, 2, 0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_WRITE_ZEROES, UINT64_MAX - 1, 4, 0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_DISCARD, 1ULL << 55, 1, 0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_DISCARD, 0, 0, 0), VIRTIO_BLK_S_OK);
	CHECK_EQ(blk.discards, 2);
	CHECK_EQ(blk.write_zeroes, 2);
	stop();
}

static void test_read_only(void)
{
	static uint8_t orig[DISK], file[DISK];
	uint8_t *data = gm_ptr(&gm, DATA, DISK);
	int fd;

	make_image(image, DISK);
	fill_random(orig, DISK, 3);
	fd = open(image, O_WRONLY | O_CLOEXEC);
	CHECK_EQ(pwrite(fd, orig, DISK, 0), DISK);
	close(fd);
	start(image, NULL, true, false);
	CHECK(offered() & (1ULL << VIRTIO_BLK_F_RO));
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 8, DATA, 4096), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(data, orig + 4096, 4096));
	memset(data, 0, 4096);
	CHECK_EQ(rq(VIRTIO_BLK_T_OUT, 0, DATA, 4096), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq_seg(VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	read_image(file);
	CHECK(!memcmp(file, orig, DISK));
	stop();
}

static void test_out_of_range(void)
{
	start(image, NULL, false, false);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, SECTORS, DATA, 512), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(VIRTIO_BLK_T_OUT, SECTORS - 1, DATA, 1024), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, SECTORS + 1, DATA, 0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, UINT64_MAX, DATA, 512), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(VIRTIO_BLK_T_OUT, UINT64_MAX - 1, DATA, 1024), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 1ULL << 55, DATA, 512), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 0, DATA, 100), VIRTIO_BLK_S_IOERR); /* not whole sectors */
	CHECK_EQ(rq(99, 0, DATA, 512), VIRTIO_BLK_S_UNSUPP);
	/* The device keeps working. */
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, SECTORS - 1, DATA, 512), VIRTIO_BLK_S_OK);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 0, DATA, 0), VIRTIO_BLK_S_OK);
	CHECK_EQ(dev_status() & VIRTIO_STATUS_NEEDS_RESET, 0);
	stop();
}

static void test_malformed_chains(void)
{
	start(image, NULL, false, false);
	uint64_t *h = gm_ptr(&gm, HDRS, 16);

	h[0] = VIRTIO_BLK_T_IN;
	h[1] = 0;
	/* A header split over two descriptors is fine (no framing in virtio 1.x). */
	post((struct seg[]){ { HDRS, 10, false }, { HDRS + 10, 6, false }, { DATA, 512, true },
			     { STATUSES, 1, true } }, 4);
	CHECK(kick_and_wait());
	CHECK_EQ(*status_of(0), VIRTIO_BLK_S_OK);
	/* Oversized header (32 readable bytes on a read): IOERR. */
	post((struct seg[]){ { HDRS, 32, false }, { DATA, 512, true }, { STATUSES, 1, true } }, 3);
	CHECK(kick_and_wait());
	CHECK_EQ(*status_of(0), VIRTIO_BLK_S_IOERR);
	/* Oversized status (2 bytes): the data is then 513 bytes, not whole sectors. */
	post((struct seg[]){ { HDRS, 16, false }, { DATA, 512, true }, { STATUSES, 2, true } }, 3);
	CHECK(kick_and_wait());
	CHECK_EQ(*(uint8_t *)gm_ptr(&gm, STATUSES + 1, 1), VIRTIO_BLK_S_IOERR);
	/* A write whose data is device-writable: IOERR. */
	h[0] = VIRTIO_BLK_T_OUT;
	post((struct seg[]){ { HDRS, 16, false }, { DATA, 512, true }, { STATUSES, 1, true } }, 3);
	CHECK(kick_and_wait());
	CHECK_EQ(*status_of(0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(dev_status() & VIRTIO_STATUS_NEEDS_RESET, 0);

	/* Short header: no request to answer; the device needs a reset, nothing crashes. */
	post((struct seg[]){ { HDRS, 8, false }, { STATUSES, 1, true } }, 2);
	CHECK(!kick_and_wait());
	CHECK(dev_status() & VIRTIO_STATUS_NEEDS_RESET);
	driver_init();
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 0, DATA, 512), VIRTIO_BLK_S_OK);
	/* No status byte at all. */
	post((struct seg[]){ { HDRS, 16, false }, { DATA, 512, false } }, 2);
	CHECK(!kick_and_wait());
	CHECK(dev_status() & VIRTIO_STATUS_NEEDS_RESET);
	driver_init();
	CHECK_EQ(rq(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	stop();
}

/* O_DIRECT: aligned buffers go straight through, unaligned ones through the bounce buffer. */
static void test_direct(void)
{
	uint8_t *data = gm_ptr(&gm, DATA, DISK), *back = gm_ptr(&gm, DATA2, DISK);
	static uint8_t file[DISK];

	make_image(image, DISK);
	start(image, NULL, false, true);
	fill_random(data, DISK, 11);
	CHECK_EQ(rq(VIRTIO_BLK_T_OUT, 0, DATA, 64 * 1024), VIRTIO_BLK_S_OK);
	CHECK_EQ(blk.bounced, 0);
	/* 3 bytes off alignment: bounced. */
	uint8_t *src2 = data + 256 * 1024 + 3;
	CHECK_EQ(rq(VIRTIO_BLK_T_OUT, 128, DATA + 256 * 1024 + 3, 64 * 1024), VIRTIO_BLK_S_OK);
	CHECK_EQ(blk.bounced, 1);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 0, DATA2 + 1, 128 * 1024), VIRTIO_BLK_S_OK);
	CHECK_EQ(blk.bounced, 2);
	CHECK(!memcmp(back + 1, data, 64 * 1024));
	CHECK(!memcmp(back + 1 + 64 * 1024, src2, 64 * 1024));
	CHECK_EQ(rq(VIRTIO_BLK_T_FLUSH, 0, 0, 0), VIRTIO_BLK_S_OK);
	read_image(file);
	CHECK(!memcmp(file, data, 64 * 1024));
	CHECK(!memcmp(file + 64 * 1024, src2, 64 * 1024));
	stop();
}

/* A reset with requests in flight waits for them; nothing is pushed afterwards. */
static void test_reset_in_flight(void)
{
	make_image(image, DISK);
	start(image, NULL, false, false);
	for (unsigned i = 0; i < 8; i++)
		post_rq(i, VIRTIO_BLK_T_IN, i * 128, DATA + i * 65536, 65536, 4);
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ(blk.inflight, 0);
	CHECK_EQ(blk.nr_free, BLK_QUEUE_SIZE);
	virtio_pci_run(&vp, 0, blk_complete); /* a late eventfd wakeup: nothing to do */
	driver_init();
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 0, DATA, 512), VIRTIO_BLK_S_OK);
	stop();
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Play the I/O thread until every posted chain is used; returns the seconds it took. */
static double drain(double t0)
{
	while (used()->idx != nposted && now_s() - t0 < 10) {
		struct pollfd p[2] = { { blk_event_fd(&blk), POLLIN, 0 },
				       { blk_timer_fd(&blk), POLLIN, 0 } };

		poll(p, 2, 100);
		if (p[0].revents)
			virtio_pci_run(&vp, 0, blk_complete);
		if (p[1].revents)
			virtio_pci_run(&vp, 0, blk_timer_fired);
	}
	CHECK_EQ(used()->idx, nposted);
	return now_s() - t0;
}

/*
 * Post n reads of `len` bytes at once, kick once, and play the I/O thread
 * (completions and the rate limiter's timer) until all are used; returns
 * the seconds it took.
 */
static double timed_reads(unsigned n, uint32_t len)
{
	double t0 = now_s();

	for (unsigned i = 0; i < n; i++)
		post_rq(i, VIRTIO_BLK_T_IN, (uint64_t)i * len / 512 % SECTORS,
			DATA + (uint64_t)i * len % (1u << 20), len, 1);
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	drain(t0);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(*status_of(i), VIRTIO_BLK_S_OK);
	CHECK_EQ(dev_status() & VIRTIO_STATUS_NEEDS_RESET, 0);
	return now_s() - t0;
}

static void test_rate_limits(void)
{
	struct blk_params p = { image, NULL, false, false, 1 << 20, 0, false };
	double t;

	make_image(image, DISK);
	/* Unlimited: 1 MiB of reads is a page-cache copy. */
	start(image, NULL, false, false);
	CHECK(blk_timer_fd(&blk) >= 0); /* made anyway: limits may come at run time */
	CHECK(!throttle_enabled(&blk.throttle));
	t = timed_reads(16, 65536);
	CHECK(t < 0.2);
	stop();

	/* bw=1 MiB/s: the same reads take about a second (the bucket starts with 100 ms). */
	start_params(&p);
	CHECK(blk_timer_fd(&blk) >= 0);
	t = timed_reads(16, 65536);
	fprintf(stderr, "   1 MiB at bw=1048576: %.3f s\n", t);
	CHECK(t > 0.75 && t < 1.25);
	CHECK(blk.throttle.stalls > 0);
	CHECK_EQ(blk.bytes_read, 1 << 20);
	stop();

	/* iops=50: 30 small reads, 5 at once from the bucket, 25 more at 50/s: 0.5 s. */
	p.bw = 0;
	p.iops = 50;
	start_params(&p);
	t = timed_reads(30, 4096);
	fprintf(stderr, "   30 requests at iops=50: %.3f s\n", t);
	CHECK(t > 0.375 && t < 0.625);
	/* A reset in the middle of a wait disarms the timer; the device works after it. */
	for (unsigned i = 0; i < 20; i++)
		post_rq(i, VIRTIO_BLK_T_IN, i, DATA, 512, 1);
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	CHECK(blk.throttle.waiting);
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK(!blk.throttle.waiting);
	driver_init();
	t = timed_reads(2, 512);
	CHECK(t < 0.2);
	stop();
}

static void expect_open_error(const char *path, bool ro, const char *want)
{
	struct blk_params p = { path, NULL, ro, false, 0, 0, false };
	struct blk b;
	struct yun_err err = { 0 };

	CHECK(blk_open(&b, &p, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, path);
	CHECK_STR_CONTAINS(err.msg, want);
}

static void test_open_errors(void)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/missing.img", dir);
	expect_open_error(path, false, "no such file");
	expect_open_error(dir, true, "is a directory");
	snprintf(path, sizeof(path), "%s/odd.img", dir);
	make_image(path, 1000);
	expect_open_error(path, false, "size 1000 is not a multiple of 512");
	unlink(path);

	/* Locks: one writer excludes everyone; readers share. */
	make_image(image, DISK);
	start(image, NULL, false, false);
	expect_open_error(image, false, "locked by another process");
	expect_open_error(image, true, "locked by another process");
	stop();
	{
		struct blk_params p = { image, NULL, true, false, 0, 0, false };
		struct blk a, b;
		struct yun_err err;

		CHECK_EQ(blk_open(&a, &p, &err), 0);
		CHECK_EQ(blk_open(&b, &p, &err), 0);
		expect_open_error(image, false, "locked by another process");
		blk_close(&a);
		blk_close(&b);
	}
}

/* ---- run-time operations (the control API) ------------------------------------ */

#define GATED 0x600000ULL /* one guest page whose first touch blocks (userfaultfd) */

/*
 * A guest page that blocks whoever touches it first until `delay_ms` after
 * the fault, then fills with `fill`: an io_uring request using it as its
 * buffer stays in flight (io-wq waits in the fault) for as long as the
 * test wants, deterministically.
 */
struct gate {
	int uffd;
	void *page;
	uint8_t fill;
	int delay_ms;
	bool faulted;
	pthread_t thread;
};

static void *gate_main(void *arg)
{
	struct gate *g = arg;
	struct pollfd p = { g->uffd, POLLIN, 0 };
	struct uffd_msg msg;
	struct uffdio_copy copy;
	static uint8_t src[4096] __attribute__((aligned(4096)));
	struct timespec d = { 0, (long)g->delay_ms * 1000000L };

	if (poll(&p, 1, 5000) != 1 || read(g->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT)
		return NULL;
	g->faulted = true;
	nanosleep(&d, NULL);
	memset(src, g->fill, sizeof(src));
	copy = (struct uffdio_copy){ (uint64_t)(uintptr_t)g->page, (uint64_t)(uintptr_t)src,
				     4096, 0, 0 };
	ioctl(g->uffd, UFFDIO_COPY, &copy);
	return NULL;
}

static bool gate_open(struct gate *g, uint8_t fill, int delay_ms)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;

	*g = (struct gate){ .fill = fill, .delay_ms = delay_ms };
	g->page = gm_ptr(&gm, GATED, 4096);
	g->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (g->uffd < 0 || ioctl(g->uffd, UFFDIO_API, &api) < 0) {
		if (g->uffd >= 0)
			close(g->uffd);
		return false;
	}
	madvise(g->page, 4096, MADV_DONTNEED);
	reg = (struct uffdio_register){ { (uint64_t)(uintptr_t)g->page, 4096 },
					UFFDIO_REGISTER_MODE_MISSING, 0 };
	if (ioctl(g->uffd, UFFDIO_REGISTER, &reg) < 0 ||
	    pthread_create(&g->thread, NULL, gate_main, g)) {
		close(g->uffd);
		return false;
	}
	return true;
}

static void gate_close(struct gate *g)
{
	struct uffdio_range r = { (uint64_t)(uintptr_t)g->page, 4096 };

	pthread_join(g->thread, NULL);
	ioctl(g->uffd, UFFDIO_UNREGISTER, &r);
	close(g->uffd);
}

static void write_image_byte(const char *path, off_t off, uint8_t v, size_t n)
{
	uint8_t buf[4096];
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	memset(buf, v, sizeof(buf));
	CHECK(fd >= 0 && n <= sizeof(buf));
	CHECK_EQ(pwrite(fd, buf, n, off), (ssize_t)n);
	close(fd);
}

/* Do bytes [off, off + n) of the file all equal v? */
static bool image_has(const char *path, off_t off, uint8_t v, size_t n)
{
	uint8_t buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && n <= sizeof(buf) && pread(fd, buf, n, off) == (ssize_t)n;

	for (size_t i = 0; ok && i < n; i++)
		ok = buf[i] == v;
	if (fd >= 0)
		close(fd);
	return ok;
}

static uint8_t isr_read(void)
{
	return (uint8_t)rd(VIRTIO_PCI_ISR_OFF, 1); /* read-to-clear */
}

static void expect_replace_error(const char *path, const char *want)
{
	struct yun_err err = { 0 };
	uint8_t gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1);
	uint64_t cap = rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_CAPACITY, 8);
	char *before = strdup(blk.path);

	CHECK(virtio_pci_call(&vp, blk_call_replace_backing, (void *)path, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "disk yt-disk0: ");
	CHECK_STR_CONTAINS(err.msg, path);
	CHECK_STR_CONTAINS(err.msg, want);
	/* Nothing changed: same file, same capacity, no configuration change. */
	CHECK(!strcmp(blk.path, before));
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_CFGGEN, 1), gen);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_CAPACITY, 8), cap);
	CHECK_EQ(isr_read() & VIRTIO_PCI_ISR_CONFIG, 0);
	free(before);
}

/*
 * A read-write disk offered a file on a read-only file system: `file` seen
 * through a read-only bind mount of its directory, in a mount namespace of
 * this process (root bypasses file modes, not a read-only mount).
 */
static void expect_rofs_replace_error(const char *file)
{
	char ro[96], path[160];

	snprintf(ro, sizeof(ro), "%s/ro", dir);
	if (mkdir(ro, 0755) < 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(dir, ro, NULL, MS_BIND, NULL) < 0) {
		fprintf(stderr, "   (no read-only bind mount here: %s)\n", strerror(errno));
		rmdir(ro);
		return;
	}
	if (mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0) {
		snprintf(path, sizeof(path), "%s/%s", ro, strrchr(file, '/') + 1);
		expect_replace_error(path, "read-only file system (the disk is read-write)");
	}
	umount2(ro, MNT_DETACH);
	rmdir(ro);
}

static void test_replace_backing(void)
{
	char other[96], odd[96], missing[96];
	uint8_t *data = gm_ptr(&gm, DATA, 4096);
	struct yun_err err = { 0 };
	struct gate g;
	bool gated = false;
	uint8_t gen;
	double t0, t;

	snprintf(other, sizeof(other), "%s/other.img", dir);
	snprintf(odd, sizeof(odd), "%s/odd.img", dir);
	snprintf(missing, sizeof(missing), "%s/missing.img", dir);
	make_image(image, DISK);
	make_image(other, 2 * DISK);
	start(image, "yt-disk0", false, false);
	isr_read();
	gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1);

	/* A write of 0xA5 at sector 8, in flight while the backing is replaced. */
	if (blk_uses_uring(&blk) && gate_open(&g, 0xA5, 300)) {
		gated = true;
		post_rq(0, VIRTIO_BLK_T_OUT, 8, GATED, 4096, 1);
	} else {
		memset(data, 0xA5, 4096); /* the synchronous backend has nothing in flight */
		post_rq(0, VIRTIO_BLK_T_OUT, 8, DATA, 4096, 1);
	}
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	if (gated) {
		CHECK_EQ(blk.inflight, 1);
		CHECK_EQ(used()->idx, 0);
	}
	t0 = now_s();
	CHECK_EQ(virtio_pci_call(&vp, blk_call_replace_backing, other, &err), 0);
	t = now_s() - t0;
	if (gated) {
		gate_close(&g);
		CHECK(g.faulted);
		fprintf(stderr, "   replaced after the request in flight completed: %.3f s\n", t);
		CHECK(t > 0.2);
	}
	/* The request completed against the old file and reached the used ring. */
	CHECK_EQ(blk.inflight, 0);
	CHECK_EQ(used()->idx, 1);
	CHECK_EQ(*status_of(0), VIRTIO_BLK_S_OK);
	CHECK(image_has(image, 8 * 512, 0xA5, 4096));
	CHECK(image_has(other, 8 * 512, 0, 4096));
	/* The capacity changed: the driver sees it, with a new generation and interrupt. */
	CHECK(!strcmp(blk.path, other));
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_CAPACITY, 8), 2 * SECTORS);
	CHECK(rd(VIRTIO_PCI_COMMON_CFGGEN, 1) != gen);
	CHECK(isr_read() & VIRTIO_PCI_ISR_CONFIG);

	/* The next write lands in the new file only; so does a write past the old end. */
	memset(data, 0x5A, 4096);
	CHECK_EQ(rq(VIRTIO_BLK_T_OUT, 8, DATA, 4096), VIRTIO_BLK_S_OK);
	CHECK_EQ(rq(VIRTIO_BLK_T_OUT, SECTORS + 8, DATA, 4096), VIRTIO_BLK_S_OK);
	CHECK(image_has(other, 8 * 512, 0x5A, 4096));
	CHECK(image_has(other, (SECTORS + 8) * 512, 0x5A, 4096));
	CHECK(image_has(image, 8 * 512, 0xA5, 4096));

	/* Bad paths: an error naming the disk and the reason; the new file goes on serving. */
	expect_replace_error(missing, "no such file");
	expect_replace_error(dir, "is a directory");
	expect_replace_error("/dev/null", "not a regular file or block device");
	make_image(odd, 1000);
	expect_replace_error(odd, "size 1000 is not a multiple of 512");
	{
		struct blk_params p = { odd, NULL, false, false, 0, 0, false };
		struct blk holder;

		make_image(odd, DISK); /* locked read-write by another disk */
		CHECK_EQ(blk_open(&holder, &p, &err), 0);
		expect_replace_error(odd, "locked by another process");
		blk_close(&holder);
	}
	expect_rofs_replace_error(odd);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 8, DATA2, 4096), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(gm_ptr(&gm, DATA2, 4096), data, 4096));
	CHECK_EQ(dev_status() & VIRTIO_STATUS_NEEDS_RESET, 0);

	/* The same image again after the host grew it: the lock moves, the capacity follows. */
	CHECK_EQ(truncate(other, 3 * DISK), 0);
	gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1);
	CHECK_EQ(virtio_pci_call(&vp, blk_call_replace_backing, other, &err), 0);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF + BLK_CFG_CAPACITY, 8), 3 * SECTORS);
	CHECK(rd(VIRTIO_PCI_COMMON_CFGGEN, 1) != gen);
	CHECK(isr_read() & VIRTIO_PCI_ISR_CONFIG);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 8, DATA2, 4096), VIRTIO_BLK_S_OK);
	CHECK(!memcmp(gm_ptr(&gm, DATA2, 4096), data, 4096));
	expect_open_error(other, true, "locked by another process"); /* still ours, exclusively */

	/* A file of the same size: switched, but no configuration change. */
	make_image(odd, 3 * DISK);
	write_image_byte(odd, 8 * 512, 0x3C, 4096);
	gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1);
	CHECK_EQ(virtio_pci_call(&vp, blk_call_replace_backing, odd, &err), 0);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_CFGGEN, 1), gen);
	CHECK_EQ(isr_read() & VIRTIO_PCI_ISR_CONFIG, 0);
	CHECK_EQ(rq(VIRTIO_BLK_T_IN, 8, DATA2, 4096), VIRTIO_BLK_S_OK);
	CHECK_EQ(*(uint8_t *)gm_ptr(&gm, DATA2, 1), 0x3C);
	stop();

	/* A read-only disk re-opens read-only (a read-only file would do). */
	{
		struct blk_params p = { image, "yt-disk0", true, false, 0, 0, false };

		CHECK_EQ(chmod(other, 0444), 0);
		start_params(&p);
		CHECK_EQ(virtio_pci_call(&vp, blk_call_replace_backing, other, &err), 0);
		CHECK_EQ(rq(VIRTIO_BLK_T_IN, 8, DATA2, 4096), VIRTIO_BLK_S_OK);
		CHECK_EQ(*(uint8_t *)gm_ptr(&gm, DATA2, 1), 0x5A);
		stop();
		CHECK_EQ(chmod(other, 0644), 0);
	}
	unlink(other);
	unlink(odd);
}

/* Post n reads (not kicked). */
static void post_reads(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		post_rq(i, VIRTIO_BLK_T_IN, i, DATA + (uint64_t)i * 4096, 512, 1);
}

static void test_limits_at_run_time(void)
{
	struct ratelimit_update u = { .set_ops = true, .ops = { .rate = 50 } };
	struct yun_err err;
	double t;

	make_image(image, DISK);
	start(image, NULL, false, false);
	t = timed_reads(30, 4096);
	CHECK(t < 0.2);

	/* iops=50 while the device runs: the same 30 reads now take about 0.5 s. */
	CHECK_EQ(virtio_pci_call(&vp, blk_call_update_limits, &u, &err), 0);
	CHECK(throttle_enabled(&blk.throttle));
	t = timed_reads(30, 4096);
	fprintf(stderr, "   30 requests after iops=50 at run time: %.3f s\n", t);
	CHECK(t > 0.375 && t < 0.625);

	/* Requests beyond the budget wait for the timer... */
	post_reads(20);
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	CHECK(blk.throttle.waiting);
	CHECK(used()->idx < nposted);
	/* ...until the limit goes (0): the stalled queue goes on at once. */
	t = now_s();
	CHECK_EQ(blk_set_limits(&blk, 0, 0, &err), 0); /* single-threaded harness: no lock needed */
	CHECK(!throttle_enabled(&blk.throttle));
	t = drain(t);
	fprintf(stderr, "   20 stalled requests after the limit went: %.3f s\n", t);
	CHECK(t < 0.1);

	/* bw only (the ops bucket kept): 1 MiB at 4 MiB/s takes about 0.25 s - 0.1 s of bucket. */
	u = (struct ratelimit_update){ .set_bytes = true, .bytes = { .rate = 4 << 20 } };
	CHECK_EQ(virtio_pci_call(&vp, blk_call_update_limits, &u, &err), 0);
	t = timed_reads(16, 65536);
	fprintf(stderr, "   1 MiB at bw=4 MiB/s set at run time: %.3f s\n", t);
	CHECK(t > 0.1 && t < 0.3);
	CHECK(!blk.throttle.rl.ops.rate);
	stop();
}

static void run_all(void)
{
	fprintf(stderr, "-- %s backend\n", backend);
	RUN(test_config);
	RUN(test_whole_disk);
	RUN(test_get_id);
	RUN(test_discard_and_write_zeroes);
	RUN(test_read_only);
	RUN(test_out_of_range);
	RUN(test_malformed_chains);
	RUN(test_direct);
	RUN(test_reset_in_flight);
	RUN(test_rate_limits);
	RUN(test_open_errors);
	RUN(test_replace_backing);
	RUN(test_limits_at_run_time);
}

int main(void)
{
	struct yun_err err;

	if (gm_init(&gm, 64ULL << 20, &err) || !mkdtemp(dir))
		return 1;
	snprintf(image, sizeof(image), "%s/disk.img", dir);

	unsetenv("YUN_BLK_NO_URING");
	backend = "io_uring";
	run_all();
	setenv("YUN_BLK_NO_URING", "1", 1);
	backend = "synchronous";
	run_all();

	unlink(image);
	rmdir(dir);
	gm_free(&gm);
	return CHECK_DONE();
}
