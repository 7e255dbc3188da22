/*
 * virtio.h - what a virtio device model is, whatever transport carries it.
 *
 * A device model (rng.c now; blk, net, balloon, vsock next) is plain logic
 * over guest memory and queues. It fills a struct virtio_device_ops and the
 * transport (pci.c) does the rest: feature negotiation, status, queue setup,
 * notifications, interrupts, reset. The model never sees KVM, PCI or
 * eventfds:
 *
 *   - queue_notify(dev, q, vq) runs on the transport's I/O thread (or on
 *     the harness's thread in tests) when the driver kicked queue q. The
 *     model pops requests with vq_pop(), reads req->iov[0..nr_read) and
 *     writes req->iov[nr_read..), and vq_push()es the head with the bytes
 *     written. It returns 0, or a negative errno for a broken chain: the
 *     transport then puts the device in DEVICE_NEEDS_RESET. After it
 *     returns, the transport decides (vq_should_notify) whether to
 *     interrupt the driver. A model completing requests later (an io_uring
 *     backend) calls virtio_pci_queue_done() after its vq_push()es instead.
 *   - config_read/config_write access the device-specific configuration
 *     structure (offsets are relative to it, bounds already checked).
 *   - activate(dev, features) once the driver set DRIVER_OK, reset(dev)
 *     when the driver (or the VMM) resets the device.
 *
 * Calls into a model are serialised by the transport's device lock: never
 * two at once for one device.
 */
#ifndef YUN_VMM_VIRTIO_VIRTIO_H
#define YUN_VMM_VIRTIO_VIRTIO_H

#include <stdint.h>

#include "queue.h"

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED      128

/* Transport feature bits (6). */
#define VIRTIO_F_VERSION_1        32
#define VIRTIO_F_ACCESS_PLATFORM  33

/* Device types (5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK   19

#define VIRTIO_MAX_QUEUES 16

struct virtio_device_ops {
	const char *name;        /* "virtio-rng" */
	uint16_t device_type;    /* VIRTIO_ID_* */
	uint16_t num_queues;     /* 1..VIRTIO_MAX_QUEUES */
	uint16_t queue_max_size; /* power of two <= VQ_MAX_SIZE */
	uint64_t features;       /* device-specific bits offered; VERSION_1 etc. are added */
	uint32_t config_size;    /* bytes of device configuration, 0: none */
	uint32_t class_code;     /* PCI class (0xCCSSPP) for the transport */

	void (*config_read)(void *dev, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint32_t off, const uint8_t *data, uint32_t len);
	int (*queue_notify)(void *dev, unsigned q, struct vq *vq);
	void (*activate)(void *dev, uint64_t features);
	void (*reset)(void *dev);
};

#endif
