/*
 * blk_fuzz.c - random queue memory against virtio-blk's request parser and
 * synchronous backend: nothing may crash, touch memory outside guest RAM
 * (ASan) or the image outside its size, or loop.
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/blk.c src/vmm/virtio/throttle.c src/vmm/ratelimit.c src/lib/err.c src/lib/log.c
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c
 * FUZZ_LIBS: -luring -ljansson -lz
 *
 * Three small disks on temporary images (in /dev/shm when there is one, so
 * FLUSH costs nothing), opened with YUN_BLK_NO_URING=1 so every request
 * completes inside queue_notify and a run depends on its input alone: a
 * writable one, a read-only one, and a writable one with bw= and iops=
 * limits (its timer path is driven by hand). The images are 64 KiB, so
 * guest-chosen sectors are mostly out of range and the rest are cheap.
 *
 * Input: byte 0 queue size (2^(n % 9)), byte 1 flags (EVENT_IDX, INDIRECT,
 * which disk, and the FLUSH / DISCARD / WRITE_ZEROES features the "driver"
 * accepted), then bytes copied over the avail ring, the descriptor table
 * and the RAM after it (headers, data buffers, status bytes, indirect
 * tables).
 *
 * Built with -DFUZZ_WRITE_SEEDS this file is instead a program writing a
 * seed corpus of well-formed requests of every type (FUZZ_WRITE_SEEDS
 * below), so the fuzzer starts past the descriptor checks.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/virtio/blk.h"

#define RAM   (16ULL << 20)
#define AVAIL 0x1000ULL /* first, so short inputs reach the avail index */
#define DESC  0x1400ULL
#define USED  0x6000ULL
#define DATA  0x8000ULL
#define IMAGE (64 << 10)

static struct guest_mem gm;
static struct blk disks[3];
static char paths[3][64];

static void make_image(char *path)
{
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	int fd;

	snprintf(path, 64, "%s/yun-blk-fuzz-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, IMAGE) < 0)
		abort();
	close(fd);
}

static void setup(void)
{
	struct yun_err err;

	if (gm_init(&gm, RAM, &err))
		abort();
	setenv("YUN_BLK_NO_URING", "1", 1);
	for (unsigned i = 0; i < 3; i++) {
		struct blk_params p = { .path = paths[i], .readonly = i == 1 };

		make_image(paths[i]);
		if (i == 2) {
			p.bw = 1 << 20;
			p.iops = 10; /* a one-op bucket: the second request waits */
		}
		if (blk_open(&disks[i], &p, &err)) {
			fprintf(stderr, "blk_fuzz: %s\n", err.msg);
			abort();
		}
		unlink(paths[i]); /* the open disk keeps it; nothing is left behind */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t feat[] = {
		1ULL << VIRTIO_BLK_F_FLUSH, 1ULL << VIRTIO_BLK_F_DISCARD,
		1ULL << VIRTIO_BLK_F_WRITE_ZEROES,
	};
	const struct virtio_device_ops *ops;
	struct blk *blk;
	uint64_t features = 0;
	struct vq vq;
	uint16_t qsize;

	if (!gm.map)
		setup();
	if (size < 2)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
	blk = &disks[((data[1] >> 2) & 3) % 3];
	ops = blk_device_ops(blk);
	for (unsigned i = 0; i < 3; i++)
		if (data[1] & (16 << i))
			features |= feat[i];
	ops->reset(blk); /* what the transport does between drivers: forget any wait */
	ops->activate(blk, features);
	memset(gm.map, 0, DATA + 0x10000);
	memcpy(gm.map + AVAIL, data + 2,
	       size - 2 < DATA + 0x10000 - AVAIL ? size - 2 : DATA + 0x10000 - AVAIL);
	if (vq_init(&vq, &gm, qsize, DESC, AVAIL, USED, data[1] & 1, data[1] & 2))
		abort();
	if (ops->queue_notify(blk, 0, &vq) == 0) {
		/* A throttled disk goes on when its timer fires; a few rounds of that. */
		for (int i = 0; i < 4 && throttle_enabled(&blk->throttle); i++)
			if (blk_timer_fired(blk, 0, &vq) < 0)
				break;
	}
	vq_should_notify(&vq);
	blk_complete(blk, 0, &vq); /* nothing in flight with the synchronous backend */
	return 0;
}

#ifdef FUZZ_WRITE_SEEDS
/*
 * Seeds: queue size 16, all features, a few requests in the input's first
 * 0x1000 bytes of RAM (the avail ring at 0x1000, descriptors at 0x1400,
 * headers at 0x1800, discard segments at 0x1A00, status bytes at 0x1C00, an
 * indirect table at 0x1E00) with their data buffers further up in RAM.
 */
#define SEED_MEM 0x1000
static uint8_t seed[2 + SEED_MEM];
static unsigned nr_desc, nr_req;

static void *at(uint64_t gpa)
{
	return seed + 2 + (gpa - AVAIL);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = { addr, len, flags, next };

	memcpy(at(DESC + 16 * i), &d, sizeof(d));
}

/* One request: header, an optional data buffer, status; `indirect` puts the chain in a table. */
static void request(uint32_t type, uint64_t sector, uint32_t len, bool data_in, bool indirect)
{
	uint64_t hdr[2] = { type, sector }, seg[2] = { sector, 8 };
	uint64_t buf = type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES
			       ? 0x1A00 + 16 * nr_req
			       : 0x100000 + 0x1000ULL * nr_req;
	uint16_t head = (uint16_t)nr_desc, wr = VRING_DESC_F_WRITE, nx = VRING_DESC_F_NEXT;
	uint16_t *avail = at(AVAIL);

	memcpy(at(0x1800 + 16 * nr_req), hdr, sizeof(hdr));
	memcpy(at(0x1A00 + 16 * nr_req), seg, sizeof(seg));
	if (indirect) {
		struct vring_desc t[3] = {
			{ 0x1800 + 16 * nr_req, 16, nx, 1 },
			{ buf, len, (uint16_t)(nx | (data_in ? wr : 0)), 2 },
			{ 0x1C00 + nr_req, 1, wr, 0 },
		};
		memcpy(at(0x1E00), t, sizeof(t));
		desc(nr_desc++, 0x1E00, sizeof(t), VRING_DESC_F_INDIRECT, 0);
	} else {
		desc(nr_desc, 0x1800 + 16 * nr_req, 16, nx, (uint16_t)(nr_desc + 1));
		nr_desc++;
		if (len) {
			desc(nr_desc, buf, len, (uint16_t)(nx | (data_in ? wr : 0)),
			     (uint16_t)(nr_desc + 1));
			nr_desc++;
		}
		desc(nr_desc++, 0x1C00 + nr_req, 1, wr, 0);
	}
	avail[2 + nr_req] = head;
	avail[1] = (uint16_t)++nr_req;
}

static void write_seed(const char *dir, const char *name, uint8_t flags)
{
	char path[512];
	int fd;

	seed[0] = 4; /* 16 entries */
	seed[1] = flags;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, seed, sizeof(seed)) != (ssize_t)sizeof(seed) || close(fd))
		abort();
	memset(seed, 0, sizeof(seed));
	nr_desc = nr_req = 0;
}

int main(int argc, char **argv)
{
	const uint8_t all = 0x70 | 2; /* FLUSH, DISCARD, WRITE_ZEROES; INDIRECT */

	if (argc != 2)
		return 2;
	request(VIRTIO_BLK_T_IN, 0, 4096, true, false);
	write_seed(argv[1], "read", all);
	request(VIRTIO_BLK_T_OUT, 8, 4096, false, false);
	write_seed(argv[1], "write", all);
	request(VIRTIO_BLK_T_OUT, 8, 4096, false, false);
	write_seed(argv[1], "write-ro", all | 4);
	request(VIRTIO_BLK_T_FLUSH, 0, 0, false, false);
	request(VIRTIO_BLK_T_GET_ID, 0, 20, true, false);
	write_seed(argv[1], "flush-get-id", all);
	request(VIRTIO_BLK_T_DISCARD, 16, 16, false, false);
	request(VIRTIO_BLK_T_WRITE_ZEROES, 24, 16, false, false);
	write_seed(argv[1], "discard-write-zeroes", all);
	request(VIRTIO_BLK_T_IN, 0, 4096, true, true);
	write_seed(argv[1], "indirect-read", all);
	for (unsigned i = 0; i < 5; i++)
		request(VIRTIO_BLK_T_IN, 8 * i, 4096, true, false);
	write_seed(argv[1], "limited-reads", all | 8);
	return 0;
}
#endif
