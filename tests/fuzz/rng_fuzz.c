/*
 * rng_fuzz.c - random queue memory against virtio-rng: nothing may crash,
 * write outside guest RAM (ASan) or past a buffer's end, or loop, and no
 * request gets more than RNG_MAX_PER_REQUEST bytes. (The used ring itself
 * proves nothing: a guest may point buffers at it and get it overwritten
 * with random bytes.)
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/rng.c src/lib/err.c
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
