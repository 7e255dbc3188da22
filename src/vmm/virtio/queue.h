/*
 * queue.h - split virtqueues (virtio 1.2, 2.7) in guest memory, read and
 * written only through gm_ptr(), with every guest-controlled value checked.
 *
 * A device model pops a request (a descriptor chain turned into host iovecs:
 * the device-readable buffers first, then the device-writable ones), does
 * the work, and pushes the head back with the number of bytes it wrote.
 * Whether the driver wants an interrupt afterwards is vq_should_notify()'s
 * answer (VIRTIO_F_EVENT_IDX or the NO_INTERRUPT flag).
 *
 * What the guest cannot do to us: every descriptor, indirect table and ring
 * must lie wholly inside one guest RAM region (so nothing straddles the PCI
 * hole or leaves RAM); a chain has at most `size` descriptors (or the
 * indirect table's entry count), which also ends loops; no indirect table
 * inside an indirect table; device-writable buffers never precede readable
 * ones; the total length is bounded by VQ_MAX_REQ_BYTES. A chain that breaks
 * a rule makes vq_pop() return -EINVAL (or -EFAULT for a bad address); the
 * transport then marks the device DEVICE_NEEDS_RESET. Descriptors are copied
 * before they are checked, so a guest rewriting them concurrently cannot
 * slip a value past the check.
 *
 * Thread model: one thread at a time drives a queue (the device's I/O
 * thread, or a unit-test harness); the transport serialises it with resets.
 */
#ifndef YUN_VMM_VIRTIO_QUEUE_H
#define YUN_VMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../memory.h"

#define VQ_MAX_SIZE       1024       /* largest queue the transport offers */
#define VQ_MAX_IOV        1024       /* buffers in one request (indirect included) */
#define VQ_MAX_INDIRECT   1024       /* entries in one indirect table */
#define VQ_MAX_REQ_BYTES  (1ULL << 32) /* sum of a request's buffer lengths */

/* Descriptor flags (2.7.5). */
#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4

#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY     1

/* Feature bits the queue code implements (the transport offers them). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX     29

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then used_event */
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* size entries, then avail_event */
};

struct vq {
	const struct guest_mem *gm;
	uint16_t size;           /* power of two, 1..VQ_MAX_SIZE */
	bool event_idx;          /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;           /* VIRTIO_F_INDIRECT_DESC negotiated */
	struct vring_desc *desc; /* host views, checked by vq_init() */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;     /* next avail ring slot to consume */
	uint16_t used_idx;       /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx when vq_should_notify() last ran */
};

/* One request: host views of the chain's buffers, readable ones first. */
struct vq_req {
	uint16_t head;           /* what vq_push() gives back */
	unsigned nr_read;        /* iov[0 .. nr_read): device-readable */
	unsigned nr_write;       /* iov[nr_read .. nr_read + nr_write): device-writable */
	uint64_t read_len, write_len;
	struct iovec iov[VQ_MAX_IOV];
};

/* Byte sizes of the three areas for a queue of `size` entries (2.7). */
uint64_t vq_desc_bytes(uint16_t size);
uint64_t vq_avail_bytes(uint16_t size);
uint64_t vq_used_bytes(uint16_t size);

/*
 * Check the queue geometry (size a power of two up to VQ_MAX_SIZE, areas
 * aligned and wholly in guest RAM) and start with empty rings as the driver
 * sees them. -EINVAL for a bad size or alignment, -EFAULT for an area
 * outside RAM.
 */
int vq_init(struct vq *vq, const struct guest_mem *gm, uint16_t size, uint64_t desc_gpa,
	    uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect);

/*
 * Take the next available chain. Returns 1 with *req filled, 0 when the
 * driver has made nothing available, -EINVAL for a chain (or avail index)
 * breaking a rule above and -EFAULT for a buffer outside guest RAM; after
 * an error the queue is unusable until the device is reset.
 */
int vq_pop(struct vq *vq, struct vq_req *req);

/* Return a chain to the driver with `written` bytes written into it. */
void vq_push(struct vq *vq, uint16_t head, uint32_t written);

/*
 * Return n chains at once: the driver sees the used index move only after
 * all n entries are written (virtio-net's merged receive buffers, which the
 * driver reads as one packet).
 */
void vq_push_n(struct vq *vq, const struct vring_used_elem *elems, unsigned n);

/*
 * After one or more vq_push(): does the driver want an interrupt?
 * (used_event with EVENT_IDX, else the avail ring's NO_INTERRUPT flag.)
 */
bool vq_should_notify(struct vq *vq);

/* Does the ring hold chains we have not popped yet? */
bool vq_has_avail(const struct vq *vq);

/* Copy a request's writable buffers from `src` (at most write_len bytes); returns bytes copied. */
uint64_t vq_req_write(const struct vq_req *req, const void *src, uint64_t len);

/*
 * Copy between a flat buffer and an iovec list, starting `off` bytes into
 * the list; returns the bytes copied (less than len when the list ends).
 */
size_t vq_iov_get(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len);
size_t vq_iov_put(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len);

/*
 * A device wrote the first len bytes of the buffers iov[0..n) after it got
 * them (a held receive chain filled later): mark those pages for the dirty
 * tracker (memory.h gm_track_mark_host), which saw them only when vq_pop
 * mapped them. Call before vq_push()ing the chain.
 */
void vq_iov_written(const struct vq *vq, const struct iovec *iov, unsigned n, uint64_t len);

/* ---- snapshot ------------------------------------------------------------- */

/* The device's private ring positions: everything else about a queue is in guest memory. */
struct vq_indices {
	uint16_t last_avail, used_idx, signalled_used;
};

void vq_indices(const struct vq *vq, struct vq_indices *ix);

/*
 * vq_init() for a queue that was already running (a restored snapshot):
 * the same geometry checks, then the saved positions, and guest memory is
 * not written (the rings there are the driver's, restored with RAM).
 * -ERANGE when the positions contradict each other (more chains in use
 * than the ring holds).
 */
int vq_restore(struct vq *vq, const struct guest_mem *gm, uint16_t size, uint64_t desc_gpa,
	       uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect,
	       const struct vq_indices *ix);

/*
 * Give back the last n chains popped and never pushed: the next vq_pop()
 * returns them again (a device that holds buffers it has not filled gives
 * them back before its state is saved).
 */
void vq_unpop(struct vq *vq, uint16_t n);

#endif
