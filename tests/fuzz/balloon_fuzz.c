/*
 * balloon_fuzz.c - random queue memory against virtio-balloon's inflate,
 * deflate and statistics queues and its configuration space: nothing may
 * crash, madvise or touch memory outside guest RAM (ASan; madvise on a
 * host address outside the mapping would also show as a fault), or loop.
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/balloon.c src/lib/err.c src/lib/log.c
 *
 * Input: byte 0 queue size (2^(n % 9)), byte 1 flags (EVENT_IDX, INDIRECT,
 * which queue, MUST_TELL_HOST accepted, the host asking for statistics),
 * bytes 2..9 a configuration-space write (offset, length, value), then
 * bytes copied over the avail ring, the descriptor table and the RAM after
 * it (PFN arrays: guest PFNs land in RAM, past it, or in huge numbers).
 *
 * Built with -DFUZZ_WRITE_SEEDS this file is instead a program writing a
 * seed corpus of well-formed inflate, deflate and statistics requests.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/virtio/balloon.h"

#define RAM   (16ULL << 20)
#define AVAIL 0x1000ULL /* first, so short inputs reach the avail index */
#define DESC  0x1400ULL
#define USED  0x6000ULL
#define DATA  0x8000ULL
#define HDR   10 /* input bytes before the RAM image */

static struct guest_mem gm;
static struct balloon balloon;

static void no_config_changed(void *ctx)
{
	(void)ctx;
}

static void no_kick(void *ctx, unsigned q)
{
	(void)ctx;
	(void)q;
}

static void setup(void)
{
	struct balloon_config bc = { .target_pages = 1024 };
	struct balloon_host bh = { no_config_changed, no_kick, NULL };
	struct yun_err err;

	if (gm_init(&gm, RAM, &err) || balloon_init(&balloon, &gm, &bc, &bh, &err))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t cfg[8];
	uint32_t off, len;
	unsigned q;
	struct vq vq;
	uint16_t qsize;

	if (!gm.map)
		setup();
	if (size < HDR)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
	q = (data[1] >> 2 & 3) % balloon_ops.num_queues;
	balloon_ops.reset(&balloon);
	balloon_ops.activate(&balloon, data[1] & 16 ? 1ULL << VIRTIO_BALLOON_F_MUST_TELL_HOST : 0);

	/* A config write as the transport passes it: in bounds, 1..8 bytes. */
	off = data[2] % BALLOON_CONFIG_SIZE;
	len = 1 + data[3] % 8;
	if (len > BALLOON_CONFIG_SIZE - off)
		len = BALLOON_CONFIG_SIZE - off;
	memcpy(cfg, data + 2, 8);
	balloon_ops.config_write(&balloon, off, cfg, len);
	balloon_ops.config_read(&balloon, off, cfg, len);

	/* Inflating pages the rings live in is the guest's business: they read as zeroes. */
	memset(gm.map, 0, DATA + 0x10000);
	memcpy(gm.map + AVAIL, data + HDR,
	       size - HDR < DATA + 0x10000 - AVAIL ? size - HDR : DATA + 0x10000 - AVAIL);
	if (vq_init(&vq, &gm, qsize, DESC, AVAIL, USED, data[1] & 1, data[1] & 2))
		abort();
	if (data[1] & 32)
		balloon_request_stats(&balloon);
	if (balloon_ops.queue_notify(&balloon, q, &vq) == 0 && q == BALLOON_STATSQ) {
		/* The host asks again: the held buffer goes back. */
		balloon_request_stats(&balloon);
		balloon_ops.queue_notify(&balloon, q, &vq);
	}
	vq_should_notify(&vq);
	return 0;
}

#ifdef FUZZ_WRITE_SEEDS
/* Seeds: queue size 16, a few well-formed chains in the input's first 0x1000 bytes of RAM. */
#define SEED_MEM 0x1000
static uint8_t seed[HDR + SEED_MEM];
static unsigned nr_desc, nr_chain;

static void *at(uint64_t gpa)
{
	return seed + HDR + (gpa - AVAIL);
}

/* A chain of n buffers (gpa, len, device-writable); `indirect` puts it in a table at 0x1E00. */
static void chain(const uint64_t (*b)[3], unsigned n, bool indirect)
{
	uint16_t *avail = at(AVAIL);
	uint16_t head = (uint16_t)nr_desc;

	for (unsigned i = 0; i < n; i++) {
		struct vring_desc d = { b[i][0], (uint32_t)b[i][1],
					(uint16_t)((b[i][2] ? VRING_DESC_F_WRITE : 0) |
						   (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
					(uint16_t)(indirect ? i + 1 : nr_desc + 1) };

		memcpy(indirect ? at(0x1E00 + 16 * i) : at(DESC + 16 * nr_desc++), &d, sizeof(d));
	}
	if (indirect) {
		struct vring_desc d = { 0x1E00, 16 * n, VRING_DESC_F_INDIRECT, 0 };

		memcpy(at(DESC + 16 * nr_desc++), &d, sizeof(d));
	}
	avail[2 + nr_chain] = head;
	avail[1] = (uint16_t)++nr_chain;
}

static void write_seed(const char *dir, const char *name, const uint8_t *hdr)
{
	char path[512];
	int fd;

	memcpy(seed, hdr, HDR);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, seed, sizeof(seed)) != (ssize_t)sizeof(seed) || close(fd))
		abort();
	memset(seed, 0, sizeof(seed));
	nr_desc = nr_chain = 0;
}

int main(int argc, char **argv)
{
	/* Queue size 16; flags: queue in bits 2-3, MUST_TELL_HOST 16, stats wanted 32. */
	static const uint8_t inflate[HDR] = { 4, 0, 4, 4, 0, 4, 0, 0 };
	static const uint8_t deflate[HDR] = { 4, 4 | 16, 4, 4, 0, 0, 0, 0 };
	static const uint8_t stats[HDR] = { 4, 8 | 32, 0, 4, 0, 1, 0, 0 };
	const uint64_t pfns[][3] = { { 0x1800, 16, 0 } };
	const uint64_t split[][3] = { { 0x1800, 6, 0 }, { 0x1806, 10, 0 } };
	const uint64_t report[][3] = { { 0x1900, 30, 0 } };
	uint32_t pfn[4] = { 0x800, 0x801, 0x802, 0x900 };
	uint8_t st[30] = { 0 };

	if (argc != 2)
		return 2;
	for (unsigned i = 0; i < 3; i++) {
		st[10 * i] = (uint8_t)(i + 4); /* MEMFREE, MEMTOT, AVAIL */
		st[10 * i + 4] = 0x10;
	}
	memcpy(at(0x1800), pfn, sizeof(pfn));
	chain(pfns, 1, false);
	chain(split, 2, true);
	write_seed(argv[1], "inflate", inflate);
	memcpy(at(0x1800), pfn, sizeof(pfn));
	chain(pfns, 1, false);
	write_seed(argv[1], "deflate", deflate);
	memcpy(at(0x1900), st, sizeof(st));
	chain(report, 1, false);
	write_seed(argv[1], "stats", stats);
	return 0;
}
#endif
