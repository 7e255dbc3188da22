/* queue.c - split virtqueues; see queue.h for the rules a chain must keep. */
#include "queue.h"

#include <errno.h>
#include <string.h>

uint64_t vq_desc_bytes(uint16_t size)
{
	return 16ULL * size;
}

uint64_t vq_avail_bytes(uint16_t size)
{
	return 6 + 2ULL * size; /* flags, idx, ring[size], used_event */
}

uint64_t vq_used_bytes(uint16_t size)
{
	return 6 + 8ULL * size; /* flags, idx, ring[size], avail_event */
}

/*
 * The used ring is written through vq->used, which gm_ptr() gave (and
 * marked) when the queue was set up, long before any dirty tracking: each
 * write to it must be marked for the tracker (memory.h), after the write,
 * or a migration round or diff snapshot carries a stale used ring.
 */
static void used_written(struct vq *vq, const void *p, uint64_t len)
{
	gm_track_mark_host(vq->gm, p, len);
}

/* Check the geometry and point vq at the three areas; guest memory is not touched. */
static int vq_map(struct vq *vq, const struct guest_mem *gm, uint16_t size, uint64_t desc_gpa,
		  uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect)
{
	memset(vq, 0, sizeof(*vq));
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3))
		return -EINVAL;
	vq->desc = gm_ptr(gm, desc_gpa, vq_desc_bytes(size));
	vq->avail = gm_ptr(gm, avail_gpa, vq_avail_bytes(size));
	vq->used = gm_ptr(gm, used_gpa, vq_used_bytes(size));
	if (!vq->desc || !vq->avail || !vq->used) {
		memset(vq, 0, sizeof(*vq));
		return -EFAULT;
	}
	vq->gm = gm;
	vq->size = size;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	return 0;
}

int vq_init(struct vq *vq, const struct guest_mem *gm, uint16_t size, uint64_t desc_gpa,
	    uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect)
{
	int rc = vq_map(vq, gm, size, desc_gpa, avail_gpa, used_gpa, event_idx, indirect);

	if (rc)
		return rc;
	/* A fresh queue starts at index 0 on both rings (the used ring is ours). */
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	__atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&vq->used->idx, 0, __ATOMIC_RELEASE);
	used_written(vq, vq->used, 4);
	return 0;
}

static uint16_t *used_event(struct vq *vq)
{
	return &vq->avail->ring[vq->size];
}

static uint16_t *avail_event(struct vq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

bool vq_has_avail(const struct vq *vq)
{
	return vq->avail && __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail;
}

/* Append one descriptor's buffer to req, keeping the readable-then-writable order. */
static int req_add(struct vq *vq, struct vq_req *req, const struct vring_desc *d)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	unsigned n = req->nr_read + req->nr_write;
	void *p;

	if (!writable && req->nr_write)
		return -EINVAL; /* readable after writable */
	if (req->read_len + req->write_len + d->len > VQ_MAX_REQ_BYTES)
		return -EINVAL;
	if (d->len == 0)
		return 0; /* nothing to see; a zero-length buffer is legal */
	if (n == VQ_MAX_IOV)
		return -EINVAL;
	p = gm_ptr(vq->gm, d->addr, d->len);
	if (!p)
		return -EFAULT;
	req->iov[n] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	if (writable) {
		req->nr_write++;
		req->write_len += d->len;
	} else {
		req->nr_read++;
		req->read_len += d->len;
	}
	return 0;
}

/* Copy a descriptor out of the guest-shared table before looking at it. */
static void desc_load(struct vring_desc *dst, const struct vring_desc *table, uint16_t i)
{
	const struct vring_desc *s = &table[i];

	dst->addr = __atomic_load_n(&s->addr, __ATOMIC_RELAXED);
	dst->len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
	dst->flags = __atomic_load_n(&s->flags, __ATOMIC_RELAXED);
	dst->next = __atomic_load_n(&s->next, __ATOMIC_RELAXED);
}

static int walk_chain(struct vq *vq, struct vq_req *req, uint16_t head)
{
	const struct vring_desc *table = vq->desc;
	uint32_t table_size = vq->size, count = 0;
	bool in_indirect = false;
	uint16_t i = head;
	struct vring_desc d;
	int rc;

	for (;;) {
		if (i >= table_size)
			return -EINVAL;
		/* A chain visits each entry at most once: longer means a loop. */
		if (++count > table_size)
			return -EINVAL;
		desc_load(&d, table, i);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT))
				return -EINVAL;
			if (d.len == 0 || d.len % sizeof(struct vring_desc) ||
			    d.len / sizeof(struct vring_desc) > VQ_MAX_INDIRECT)
				return -EINVAL;
			if (d.addr & 15)
				return -EINVAL;
			table = gm_ptr(vq->gm, d.addr, d.len);
			if (!table)
				return -EFAULT;
			table_size = d.len / sizeof(struct vring_desc);
			in_indirect = true;
			count = 0;
			i = 0;
			continue;
		}
		rc = req_add(vq, req, &d);
		if (rc)
			return rc;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int vq_pop(struct vq *vq, struct vq_req *req)
{
	uint16_t avail_idx, head;
	int rc;

	if (!vq->avail)
		return 0;
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail)
		return 0;
	/* The driver cannot have more chains outstanding than the ring holds. */
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
		return -EINVAL;
	head = __atomic_load_n(&vq->avail->ring[vq->last_avail & (vq->size - 1)],
			       __ATOMIC_RELAXED);
	req->head = head;
	req->nr_read = req->nr_write = 0;
	req->read_len = req->write_len = 0;
	rc = walk_chain(vq, req, head);
	if (rc)
		return rc;
	vq->last_avail++;
	/* Ask for a kick when the driver adds past what we have consumed. */
	if (vq->event_idx) {
		__atomic_store_n(avail_event(vq), vq->last_avail, __ATOMIC_RELEASE);
		used_written(vq, avail_event(vq), 2);
	}
	return 1;
}

void vq_push(struct vq *vq, uint16_t head, uint32_t written)
{
	struct vring_used_elem *e = &vq->used->ring[vq->used_idx & (vq->size - 1)];

	__atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, written, __ATOMIC_RELAXED);
	vq->used_idx++;
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	used_written(vq, e, sizeof(*e));
	used_written(vq, &vq->used->idx, 2);
}

void vq_push_n(struct vq *vq, const struct vring_used_elem *elems, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct vring_used_elem *e = &vq->used->ring[(uint16_t)(vq->used_idx + i) &
							    (vq->size - 1)];

		__atomic_store_n(&e->id, elems[i].id, __ATOMIC_RELAXED);
		__atomic_store_n(&e->len, elems[i].len, __ATOMIC_RELAXED);
		used_written(vq, e, sizeof(*e));
	}
	vq->used_idx += (uint16_t)n;
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	used_written(vq, &vq->used->idx, 2);
}

bool vq_should_notify(struct vq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx, event;

	if (!vq->used)
		return false;
	vq->signalled_used = new;
	/* Our used->idx store must be visible before we read the driver's wish. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT) && new != old;
	event = __atomic_load_n(used_event(vq), __ATOMIC_RELAXED);
	/* vring_need_event(): did used_idx step past used_event since `old`? */
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

uint64_t vq_req_write(const struct vq_req *req, const void *src, uint64_t len)
{
	const uint8_t *s = src;
	uint64_t done = 0;

	for (unsigned i = req->nr_read; i < req->nr_read + req->nr_write && done < len; i++) {
		uint64_t n = req->iov[i].iov_len;

		if (n > len - done)
			n = len - done;
		memcpy(req->iov[i].iov_base, s + done, n);
		done += n;
	}
	return done;
}

size_t vq_iov_get(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	uint8_t *d = dst;
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len - done ? l - off : len - done;
		memcpy(d + done, (uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

size_t vq_iov_put(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len)
{
	const uint8_t *s = src;
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)iov[i].iov_base + off, s + done, c);
		done += c;
		off = 0;
	}
	return done;
}

/* ---- snapshot ------------------------------------------------------------- */

int vq_restore(struct vq *vq, const struct guest_mem *gm, uint16_t size, uint64_t desc_gpa,
	       uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect,
	       const struct vq_indices *ix)
{
	int rc = vq_map(vq, gm, size, desc_gpa, avail_gpa, used_gpa, event_idx, indirect);

	if (rc)
		return rc;
	/* The device cannot have used more chains than it took, nor hold more than the ring. */
	if ((uint16_t)(ix->last_avail - ix->used_idx) > size) {
		memset(vq, 0, sizeof(*vq));
		return -ERANGE;
	}
	vq->last_avail = ix->last_avail;
	vq->used_idx = ix->used_idx;
	vq->signalled_used = ix->signalled_used;
	return 0;
}

void vq_indices(const struct vq *vq, struct vq_indices *ix)
{
	ix->last_avail = vq->last_avail;
	ix->used_idx = vq->used_idx;
	ix->signalled_used = vq->signalled_used;
}

void vq_unpop(struct vq *vq, uint16_t n)
{
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

void vq_iov_written(const struct vq *vq, const struct iovec *iov, unsigned n, uint64_t len)
{
	for (unsigned i = 0; i < n && len; i++) {
		uint64_t l = iov[i].iov_len < len ? iov[i].iov_len : len;

		gm_track_mark_host(vq->gm, iov[i].iov_base, l);
		len -= l;
	}
}
