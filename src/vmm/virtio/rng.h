/*
 * rng.h - virtio-rng (virtio 1.2, 5.4): one request queue; the driver
 * posts device-writable buffers and the device fills them with bytes from
 * the host's getrandom(2). No configuration space, no feature bits.
 */
#ifndef YUN_VMM_VIRTIO_RNG_H
#define YUN_VMM_VIRTIO_RNG_H

#include <stdint.h>

#include "../snapshot/stream.h"
#include "virtio.h"

/* Bytes filled per request at most (Linux asks for 64; this bounds one request's cost). */
#define RNG_MAX_PER_REQUEST (64 * 1024)
#define RNG_QUEUE_SIZE      64

struct rng {
	struct vq_req req;  /* scratch for the request being served */
	uint64_t bytes;     /* served so far (statistics) */
	uint64_t requests;
};

extern const struct virtio_device_ops rng_ops;

void rng_init(struct rng *rng);

/* Snapshot (RNG_SNAP_VERSION): the statistics; requests complete as they are served. */
#define RNG_SNAP_VERSION 1
void rng_save(const struct rng *rng, struct snap_writer *w);
int rng_load(struct rng *rng, struct snap_reader *r);

#endif
