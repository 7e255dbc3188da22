/*
 * balloon_fuzz.c - random queue memory against virtio-balloon's inflate,
 * deflate and statistics queues and its configuration space: nothing may
 * crash, madvise or touch memory outside guest RAM (ASan; madvise on a
 * host address outside the mapping would also show as a fault), or loop.
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/balloon.c src/lib/err.c src/lib/log.c
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c
 * FUZZ_LIBS: -ljansson -lz
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
#include "seed_ring.h"

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
