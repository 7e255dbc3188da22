/*
 * virtio_pci.h - a small virtio 1.x driver core: the modern PCI transport
 * (common/notify/ISR/device-config capabilities), feature negotiation,
 * split virtqueues and MSI-X. Requests are synchronous (submit, wait for the
 * used entry), completed either by an MSI-X interrupt or by polling.
 */
#ifndef YT_VIRTIO_PCI_H
#define YT_VIRTIO_PCI_H

#include "io.h"
#include "pci.h"

#define VIRTIO_VENDOR 0x1af4

/* Device types (modern device id = 0x1040 + type; transitional ids in parentheses). */
#define VIRTIO_ID_NET	1 /* 0x1000 */
#define VIRTIO_ID_BLOCK 2 /* 0x1001 */
#define VIRTIO_ID_RNG	4 /* 0x1005 */
#define VIRTIO_ID_BALLOON 5 /* 0x1002 */
#define VIRTIO_ID_VSOCK	19 /* modern only */

/* Feature bits */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VQ_MAX		    3
#define VQ_SIZE_MAX	    16
#define VIRTIO_MSIX_VECTORS (VQ_MAX + 1)

/* How a request's completion is awaited. */
enum vq_mode { VQ_POLL, VQ_IRQ };

struct vring_desc {
	u64 addr;
	u32 len;
	u16 flags, next;
};

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4

struct virtq {
	u16 index, size;
	struct vring_desc *desc;
	volatile u16 *avail; /* flags, idx, ring[size], used_event */
	volatile u16 *used;  /* flags, idx, {u32 id, u32 len}[size], avail_event */
	u16 free_head, num_free; /* descriptors not in flight, chained by .next */
	u16 avail_idx, last_used, kicked_idx;
	u64 notify_addr;
	u16 msix_entry;		     /* 0xffff: none */
	u8 vector;		     /* IDT vector of its MSI-X entry */
	struct vring_desc *indirect; /* one indirect table (VQ_SIZE_MAX entries) */
	u32 notifies, notifies_skipped;
};

struct virtio_dev {
	struct pci_dev *pci;
	u16 type;
	u64 common, notify, isr, device; /* mapped addresses of the capabilities */
	u32 notify_mult;
	u32 device_len;
	u64 features; /* negotiated */
	u8 msix_cap;
	u16 msix_size;
	u64 msix_table;
	bool msix;
	u16 nqueues;
	struct virtq vq[VQ_MAX];
};

/* One buffer of a request: out (device reads) or in (device writes). */
struct vq_buf {
	void *addr;
	u32 len;
	bool write; /* device-writable */
};

/* Interrupts per IDT vector of the virtio MSI-X entries (vector - VEC_VIRTIO). */
extern volatile u32 virtio_irqs[VIRTIO_MSIX_VECTORS];

/*
 * Find the first virtio device of `type`, map its capabilities, reset it and
 * negotiate: VERSION_1 is required; `optional` bits are taken if offered.
 * With `use_msix`, MSI-X is enabled (entry 0 for config changes). Ends with
 * FEATURES_OK set and checked. False with a reason in *why.
 */
bool virtio_open(struct virtio_dev *vd, u16 type, u64 optional, bool use_msix, const char **why);

u64 virtio_device_features(struct virtio_dev *vd);

/* Set up queue `idx` (size min(device max, VQ_SIZE_MAX)), MSI-X entry idx + 1. */
bool virtio_setup_queue(struct virtio_dev *vd, u16 idx, const char **why);

void virtio_driver_ok(struct virtio_dev *vd);
u8 virtio_status(struct virtio_dev *vd);
void virtio_reset(struct virtio_dev *vd);

/* Device configuration space reads (with the generation counter re-check for 64 bits). */
u8 virtio_cfg8(struct virtio_dev *vd, u32 off);
u32 virtio_cfg32(struct virtio_dev *vd, u32 off);
u64 virtio_cfg64(struct virtio_dev *vd, u32 off);

/*
 * Submit one request (buffers in order: all out ones first) and wait up to
 * `ms` for it; `indirect` puts the chain in an indirect table. Returns the
 * used length, or -1 on a timeout / bad used entry (reason in *why).
 */
long vq_request(struct virtio_dev *vd, u16 q, const struct vq_buf *bufs, u32 n, bool indirect,
		enum vq_mode mode, u64 ms, const char **why);

/*
 * The asynchronous half, for queues that keep several buffers in flight
 * (net rx, vsock rx): vq_add() publishes a chain without waiting (returns
 * its head, or -1 if the ring is full); vq_kick() notifies the device
 * (honouring EVENT_IDX / NO_NOTIFY); vq_pop() takes the next used entry if
 * there is one and frees its descriptors; vq_irq_enable() asks for (or
 * suppresses) an interrupt on the next used entry. Indirect chains share one
 * table per queue: at most one may be in flight.
 */
int vq_add(struct virtio_dev *vd, u16 q, const struct vq_buf *bufs, u32 n, bool indirect);
void vq_kick(struct virtio_dev *vd, u16 q);
bool vq_pop(struct virtio_dev *vd, u16 q, u16 *id, u32 *len);
void vq_irq_enable(struct virtio_dev *vd, u16 q, bool on);
bool vq_has_used(struct virtio_dev *vd, u16 q);

/* Write the device configuration space. */
void virtio_cfg_write32(struct virtio_dev *vd, u32 off, u32 v);

/* Zeroed, page-aligned guest memory from a small pool (never freed). */
void *virtio_alloc(u32 bytes);

#endif
