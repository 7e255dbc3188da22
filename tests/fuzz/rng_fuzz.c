/*
 * rng_fuzz.c - random queue memory against virtio-rng: nothing may crash,
 * write outside guest RAM (ASan) or past a buffer's end, or loop, and no
 * request gets more than RNG_MAX_PER_REQUEST bytes. (The used ring itself
 * proves nothing: a guest may point buffers at it and get it overwritten
 * with random bytes.)
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/rng.c src/lib/err.c
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c
 * FUZZ_LIBS: -lz
 *
 * Input: byte 0 queue size (2^(n % 7), up to RNG_QUEUE_SIZE), byte 1 flags
 * (EVENT_IDX, INDIRECT, how many kicks), then bytes copied over the avail
 * ring, the descriptor table and the RAM after it.
 *
 * Built with -DFUZZ_WRITE_SEEDS this file is instead a program writing a
 * seed corpus of well-formed requests into the directory it is given.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/virtio/rng.h"

#define RAM   (16ULL << 20)
#define AVAIL 0x1000ULL /* first, so short inputs reach the avail index */
#define DESC  0x1400ULL
#define USED  0x6000ULL
#define DATA  0x8000ULL
#define HDR   2 /* input bytes before the RAM image */

static struct guest_mem gm;
static struct rng rng;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yun_err err;
	struct vq vq;
	uint16_t qsize;

	if (!gm.map && gm_init(&gm, RAM, &err))
		abort();
	if (size < 2)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 7)); /* 1..64 */
	memset(gm.map, 0, DATA + 0x10000);
	memcpy(gm.map + AVAIL, data + 2,
	       size - 2 < DATA + 0x10000 - AVAIL ? size - 2 : DATA + 0x10000 - AVAIL);
	if (vq_init(&vq, &gm, qsize, DESC, AVAIL, USED, data[1] & 1, data[1] & 2))
		abort();
	rng_init(&rng);
	/* Several kicks: the second and later find the ring as the first left it. */
	for (unsigned k = 0; k <= (data[1] >> 2 & 3); k++) {
		if (rng_ops.queue_notify(&rng, 0, &vq) < 0)
			break;
		vq_should_notify(&vq);
	}
	/* Each request gets at most RNG_MAX_PER_REQUEST bytes, whatever its buffers say. */
	if (rng.bytes > rng.requests * RNG_MAX_PER_REQUEST)
		abort();
	return 0;
}

#ifdef FUZZ_WRITE_SEEDS
#include "seed_ring.h"

int main(int argc, char **argv)
{
	static const uint8_t plain[HDR] = { 4, 0 }, indirect[HDR] = { 4, 2 | 4 };
	const uint64_t one[][3] = { { 0x100000, 64, 1 } };
	const uint64_t two[][3] = { { 0x100000, 16, 1 }, { 0x200000, 4096, 1 } };
	const uint64_t mixed[][3] = { { 0x1800, 8, 0 }, { 0x100000, 100000, 1 } };

	if (argc != 2)
		return 2;
	chain(one, 1, false);
	write_seed(argv[1], "one", plain);
	chain(one, 1, false);
	chain(two, 2, false);
	chain(mixed, 2, false);
	write_seed(argv[1], "three", plain);
	chain(two, 2, true);
	write_seed(argv[1], "indirect", indirect);
	return 0;
}
#endif
