/*
 * virtq_fuzz.c - random queue memory and avail ring against vq_pop/vq_push
 * and virtio-rng: nothing may crash, and every buffer handed out must lie
 * inside guest RAM (ASan catches any host access outside the mapping).
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/rng.c src/lib/err.c
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c
 * FUZZ_LIBS: -lz
 *
 * Input: 2 bytes of flags/size, then bytes copied over the avail ring, the
 * descriptor table and the RAM after it (where indirect tables and
 * buffers may point).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/queue.h"
#include "vmm/virtio/rng.h"

#define RAM   (16ULL << 20)
#define AVAIL 0x1000ULL /* first, so short inputs reach the avail index */
#define DESC  0x1400ULL
#define USED  0x6000ULL
#define DATA  0x8000ULL

static struct guest_mem gm;
static struct vq_req req;
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
	qsize = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
	memset(gm.map, 0, DATA + 0x10000);
	memcpy(gm.map + AVAIL, data + 2,
	       size - 2 < DATA + 0x10000 - AVAIL ? size - 2 : DATA + 0x10000 - AVAIL);
	if (vq_init(&vq, &gm, qsize, DESC, AVAIL, USED, data[1] & 1, data[1] & 2))
		abort();
	if (data[1] & 4) {
		rng_init(&rng);
		rng_ops.queue_notify(&rng, 0, &vq);
		return 0;
	}
	for (int n = 0; n < 512; n++) {
		int rc = vq_pop(&vq, &req);

		if (rc <= 0)
			break;
		for (unsigned i = 0; i < req.nr_read + req.nr_write; i++) {
			uint8_t *p = req.iov[i].iov_base;

			if (p < gm.map || p + req.iov[i].iov_len > gm.map + gm.map_size)
				abort();
			/* Touch both ends: ASan would see an access outside RAM. */
			p[0] ^= 1;
			p[req.iov[i].iov_len - 1] ^= 1;
		}
		vq_push(&vq, req.head, (uint32_t)req.write_len);
		vq_should_notify(&vq);
	}
	return 0;
}
