/* rng.c - virtio-rng backed by getrandom(2); see rng.h. */
#include "rng.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

void rng_init(struct rng *rng)
{
	memset(rng, 0, sizeof(*rng));
}

/* Fill one buffer; getrandom returns at most 32 MiB - 1 per call and may be interrupted. */
static uint64_t fill(uint8_t *p, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break; /* cannot happen once the pool is initialised */
		}
		done += (uint64_t)n;
	}
	return done;
}

static int rng_queue_notify(void *opaque, unsigned q, struct vq *vq)
{
	struct rng *rng = opaque;
	struct vq_req *req = &rng->req;
	int rc;

	(void)q;
	while ((rc = vq_pop(vq, req)) > 0) {
		uint64_t left = RNG_MAX_PER_REQUEST, written = 0;

		/* Device-readable buffers mean nothing to an RNG: skip them. */
		for (unsigned i = req->nr_read; i < req->nr_read + req->nr_write && left; i++) {
			uint64_t n = req->iov[i].iov_len < left ? req->iov[i].iov_len : left;
			uint64_t got = fill(req->iov[i].iov_base, n);

			written += got;
			left -= got;
			if (got < n)
				break;
		}
		vq_push(vq, req->head, (uint32_t)written);
		rng->bytes += written;
		rng->requests++;
	}
	return rc;
}

const struct virtio_device_ops rng_ops = {
	.name = "virtio-rng",
	.device_type = VIRTIO_ID_RNG,
	.num_queues = 1,
	.queue_max_size = RNG_QUEUE_SIZE,
	.features = 0,
	.config_size = 0,
	.class_code = 0xFF0000, /* "unclassified device", as QEMU's virtio-rng-pci */
	.queue_notify = rng_queue_notify,
};

/* ---- snapshot ------------------------------------------------------------- */

void rng_save(const struct rng *rng, struct snap_writer *w)
{
	snap_put_u64(w, rng->bytes);
	snap_put_u64(w, rng->requests);
}

int rng_load(struct rng *rng, struct snap_reader *r)
{
	uint64_t bytes = snap_get_u64(r), requests = snap_get_u64(r);

	if (r->failed)
		return -EINVAL;
	rng->bytes = bytes;
	rng->requests = requests;
	return 0;
}
