/*
 * seed_ring.h - for the virtqueue fuzz targets' seed writers (built with
 * -DFUZZ_WRITE_SEEDS): an input image whose first HDR bytes are the
 * target's header and whose rest is guest RAM from AVAIL on, with
 * well-formed descriptor chains in it. Include after defining HDR, AVAIL
 * and DESC (guest addresses of the avail ring and the descriptor table).
 *
 * chain() adds one chain (to an indirect table at 0x1E00 when asked) and
 * publishes it in the avail ring; write_seed() writes the image with the
 * given header to DIR/NAME and starts a new, empty one.
 */
#ifndef YUN_FUZZ_SEED_RING_H
#define YUN_FUZZ_SEED_RING_H

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

#endif
