/* blk.c - virtio-blk over a raw image, io_uring or synchronous backend; see blk.h. */
#include "blk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../lib/log.h"
#include "pci.h"

/* blk_prepare()'s answer when the request needs the backend. */
#define BLK_PENDING 0x100

#define FALLOC_PUNCH (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
#define FALLOC_ZERO  (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)

struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

struct blk_seg { /* virtio_blk_discard_write_zeroes */
	uint64_t sector;
	uint32_t num_sectors, flags;
};

struct blk_uring {
	struct io_uring ring;
	int event_fd;
	unsigned queued;      /* SQEs prepared, not yet submitted */
};

/* One request between its pop and its push. */
struct blk_io {
	uint16_t head;
	uint32_t type;
	uint8_t *status;      /* the chain's last writable byte */
	uint32_t written;     /* bytes written into the chain on success, status included */
	uint64_t offset, len; /* bytes on the disk */
	int fl_mode;          /* fallocate mode for DISCARD / WRITE_ZEROES */
	uint64_t done;        /* bytes transferred so far */
	unsigned nr_iov;
	struct iovec iov[BLK_SEG_MAX];
};

/* ---- iovec streams --------------------------------------------------------- */

/* Copy len bytes from byte `skip` of the stream into dst; returns bytes copied. */
static uint64_t iov_to_buf(const struct iovec *iov, unsigned n, uint64_t skip, void *dst,
			   uint64_t len)
{
	uint8_t *d = dst;
	uint64_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len - done)
			l = len - done;
		memcpy(d + done, (uint8_t *)iov[i].iov_base + skip, l);
		done += l;
		skip = 0;
	}
	return done;
}

/* Copy len bytes from src into the stream at byte `skip`; returns bytes copied. */
static uint64_t buf_to_iov(const struct iovec *iov, unsigned n, uint64_t skip, const void *src,
			   uint64_t len)
{
	const uint8_t *s = src;
	uint64_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len - done)
			l = len - done;
		memcpy((uint8_t *)iov[i].iov_base + skip, s + done, l);
		done += l;
		skip = 0;
	}
	return done;
}

/* Views of bytes [skip, skip + len) of the stream; -1 if that needs more than max buffers. */
static int iov_slice(const struct iovec *iov, unsigned n, uint64_t skip, uint64_t len,
		     struct iovec *out, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		uint64_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		if (k == max)
			return -1;
		out[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, l };
		len -= l;
		skip = 0;
	}
	return (int)k;
}

/* ---- configuration space ------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void blk_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct blk *blk = opaque;
	uint8_t c[BLK_CONFIG_SIZE] = { 0 };
	uint64_t capacity = blk->size / BLK_SECTOR;
	uint32_t align = blk->blk_size / BLK_SECTOR;

	memcpy(c + BLK_CFG_CAPACITY, &capacity, 8);
	put32(c + BLK_CFG_SIZE_MAX, BLK_SIZE_MAX);
	put32(c + BLK_CFG_SEG_MAX, BLK_SEG_MAX);
	put32(c + BLK_CFG_BLK_SIZE, blk->blk_size);
	put32(c + BLK_CFG_MAX_DISCARD_SECTORS, BLK_MAX_DISCARD);
	put32(c + BLK_CFG_MAX_DISCARD_SEG, 1);
	put32(c + BLK_CFG_DISCARD_ALIGNMENT, align);
	put32(c + BLK_CFG_MAX_WZ_SECTORS, BLK_MAX_DISCARD);
	put32(c + BLK_CFG_MAX_WZ_SEG, 1);
	c[BLK_CFG_WZ_MAY_UNMAP] = 1;
	memcpy(data, c + off, len); /* the transport checked off + len <= BLK_CONFIG_SIZE */
}

/* ---- parsing a request ------------------------------------------------------ */

static bool in_range(const struct blk *blk, uint64_t sector, uint64_t count)
{
	uint64_t capacity = blk->size / BLK_SECTOR;

	return sector <= capacity && count <= capacity - sector;
}

static bool negotiated(const struct blk *blk, unsigned bit)
{
	return blk->features & (1ULL << bit);
}

static int prepare_rw(struct blk *blk, const struct vq_req *req, struct blk_io *io,
		      uint64_t sector)
{
	const struct iovec *rd = req->iov, *wr = req->iov + req->nr_read;
	bool write = io->type == VIRTIO_BLK_T_OUT;
	uint64_t len;
	int n;

	if (write) {
		if (blk->readonly || req->write_len != 1)
			return VIRTIO_BLK_S_IOERR;
		len = req->read_len - sizeof(struct blk_hdr);
		n = iov_slice(rd, req->nr_read, sizeof(struct blk_hdr), len, io->iov, BLK_SEG_MAX);
	} else {
		if (req->read_len != sizeof(struct blk_hdr))
			return VIRTIO_BLK_S_IOERR;
		len = req->write_len - 1;
		n = iov_slice(wr, req->nr_write, 0, len, io->iov, BLK_SEG_MAX);
	}
	if (n < 0 || len % BLK_SECTOR || !in_range(blk, sector, len / BLK_SECTOR))
		return VIRTIO_BLK_S_IOERR;
	/* With O_DIRECT the file system wants whole logical blocks. */
	if ((sector * BLK_SECTOR) % blk->blk_size || len % blk->blk_size)
		return VIRTIO_BLK_S_IOERR;
	io->nr_iov = (unsigned)n;
	io->offset = sector * BLK_SECTOR;
	io->len = len;
	io->written = write ? 1 : (uint32_t)len + 1;
	return len ? BLK_PENDING : VIRTIO_BLK_S_OK;
}

static int prepare_get_id(struct blk *blk, const struct vq_req *req, struct blk_io *io)
{
	const struct iovec *wr = req->iov + req->nr_read;
	uint64_t n = req->write_len - 1;

	if (n > BLK_ID_BYTES)
		n = BLK_ID_BYTES;
	buf_to_iov(wr, req->nr_write, 0, blk->id, n);
	io->written = (uint32_t)n + 1;
	return VIRTIO_BLK_S_OK;
}

static int prepare_discard(struct blk *blk, const struct vq_req *req, struct blk_io *io)
{
	bool discard = io->type == VIRTIO_BLK_T_DISCARD;
	uint64_t len = req->read_len - sizeof(struct blk_hdr);
	struct blk_seg seg;

	if (blk->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (!negotiated(blk, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
		return VIRTIO_BLK_S_UNSUPP;
	/* One segment (max_*_seg = 1), readable, and only the status writable. */
	if (len != sizeof(seg) || req->write_len != 1)
		return VIRTIO_BLK_S_IOERR;
	iov_to_buf(req->iov, req->nr_read, sizeof(struct blk_hdr), &seg, sizeof(seg));
	/* 5.2.6.2: unmap is meaningless for DISCARD; unknown flags are refused. */
	if (seg.flags & ~(discard ? 0u : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
		return VIRTIO_BLK_S_UNSUPP;
	if (seg.num_sectors > BLK_MAX_DISCARD || !in_range(blk, seg.sector, seg.num_sectors))
		return VIRTIO_BLK_S_IOERR;
	io->offset = seg.sector * BLK_SECTOR;
	io->len = (uint64_t)seg.num_sectors * BLK_SECTOR;
	io->fl_mode = discard || (seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ? FALLOC_PUNCH
										  : FALLOC_ZERO;
	return io->len ? BLK_PENDING : VIRTIO_BLK_S_OK;
}

/*
 * Turn a chain into io. Returns -EINVAL when the chain has no header or no
 * status byte (the device then needs a reset), a VIRTIO_BLK_S_* status to
 * complete with at once, or BLK_PENDING when the backend has work to do.
 */
static int blk_prepare(struct blk *blk, const struct vq_req *req, struct blk_io *io)
{
	const struct iovec *last;
	struct blk_hdr hdr;

	io->head = req->head;
	io->nr_iov = 0;
	io->done = 0;
	io->len = 0;
	io->written = 1;
	if (req->read_len < sizeof(hdr) || req->write_len < 1)
		return -EINVAL;
	last = &req->iov[req->nr_read + req->nr_write - 1]; /* never empty: vq_pop skips those */
	io->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	iov_to_buf(req->iov, req->nr_read, 0, &hdr, sizeof(hdr));
	io->type = hdr.type;
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return prepare_rw(blk, req, io, hdr.sector);
	case VIRTIO_BLK_T_FLUSH:
		return BLK_PENDING;
	case VIRTIO_BLK_T_GET_ID:
		return prepare_get_id(blk, req, io);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return prepare_discard(blk, req, io);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* ---- synchronous backend (also the fallback for odd cases) ------------------ */

static bool writethrough(const struct blk *blk)
{
	return !negotiated(blk, VIRTIO_BLK_F_FLUSH);
}

/* Transfer io's remaining bytes with preadv2/pwritev2. */
static uint8_t sync_rw(struct blk *blk, struct blk_io *io)
{
	bool write = io->type == VIRTIO_BLK_T_OUT;
	int flags = write && writethrough(blk) ? RWF_DSYNC : 0;
	struct iovec rest[BLK_SEG_MAX];

	while (io->done < io->len) {
		int n = iov_slice(io->iov, io->nr_iov, io->done, io->len - io->done, rest,
				  BLK_SEG_MAX);
		ssize_t r = write ? pwritev2(blk->fd, rest, n, (off_t)(io->offset + io->done), flags)
				  : preadv2(blk->fd, rest, n, (off_t)(io->offset + io->done), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			yun_debug("disk %s: %s at %llu: %s", blk->path, write ? "write" : "read",
				  (unsigned long long)(io->offset + io->done),
				  r < 0 ? strerror(errno) : "end of file");
			return VIRTIO_BLK_S_IOERR;
		}
		io->done += (uint64_t)r;
	}
	return VIRTIO_BLK_S_OK;
}

/* Full pread/pwrite of an aligned host buffer (the bounce and zero paths). */
static int full_io(struct blk *blk, bool write, void *buf, uint64_t len, uint64_t off, int flags)
{
	uint64_t done = 0;

	while (done < len) {
		struct iovec v = { (uint8_t *)buf + done, len - done };
		ssize_t r = write ? pwritev2(blk->fd, &v, 1, (off_t)(off + done), flags)
				  : preadv2(blk->fd, &v, 1, (off_t)(off + done), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (uint64_t)r;
	}
	return 0;
}

static void *aligned_buffer(void **slot, bool zero)
{
	if (!*slot) {
		if (posix_memalign(slot, 4096, BLK_BOUNCE_MAX))
			*slot = NULL;
		else if (zero)
			memset(*slot, 0, BLK_BOUNCE_MAX);
	}
	return *slot;
}

/* Direct I/O with guest buffers the file system will not take: through an aligned copy. */
static uint8_t sync_bounce(struct blk *blk, struct blk_io *io)
{
	bool write = io->type == VIRTIO_BLK_T_OUT;
	int flags = write && writethrough(blk) ? RWF_DSYNC : 0;
	uint8_t *b = aligned_buffer(&blk->bounce, false);

	if (!b)
		return VIRTIO_BLK_S_IOERR;
	blk->bounced++;
	for (uint64_t off = 0; off < io->len; off += BLK_BOUNCE_MAX) {
		uint64_t n = io->len - off < BLK_BOUNCE_MAX ? io->len - off : BLK_BOUNCE_MAX;

		if (write)
			iov_to_buf(io->iov, io->nr_iov, off, b, n);
		if (full_io(blk, write, b, n, io->offset + off, flags) < 0)
			return VIRTIO_BLK_S_IOERR;
		if (!write)
			buf_to_iov(io->iov, io->nr_iov, off, b, n);
	}
	return VIRTIO_BLK_S_OK;
}

/* WRITE_ZEROES where fallocate cannot: write them. */
static uint8_t write_zeroes_by_hand(struct blk *blk, struct blk_io *io)
{
	int flags = writethrough(blk) ? RWF_DSYNC : 0;
	uint8_t *z = aligned_buffer(&blk->zeroes, true);

	if (!z)
		return VIRTIO_BLK_S_IOERR;
	for (uint64_t off = 0; off < io->len; off += BLK_BOUNCE_MAX) {
		uint64_t n = io->len - off < BLK_BOUNCE_MAX ? io->len - off : BLK_BOUNCE_MAX;

		if (full_io(blk, true, z, n, io->offset + off, flags) < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* What fallocate's result (0 or -errno) means for DISCARD / WRITE_ZEROES. */
static uint8_t fallocate_done(struct blk *blk, struct blk_io *io, int res)
{
	if (res == 0)
		return VIRTIO_BLK_S_OK;
	if (io->type == VIRTIO_BLK_T_DISCARD)
		/* A discard is a hint: a file system that cannot punch holes ignores it. */
		return res == -EOPNOTSUPP ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	if (res == -EOPNOTSUPP || res == -EINVAL)
		return write_zeroes_by_hand(blk, io);
	return VIRTIO_BLK_S_IOERR;
}

static bool needs_bounce(const struct blk *blk, const struct blk_io *io)
{
	if (!blk->direct || (io->type != VIRTIO_BLK_T_IN && io->type != VIRTIO_BLK_T_OUT))
		return false;
	for (unsigned i = 0; i < io->nr_iov; i++)
		if (((uintptr_t)io->iov[i].iov_base | io->iov[i].iov_len) & (blk->mem_align - 1))
			return true;
	return false;
}

static uint8_t blk_sync(struct blk *blk, struct blk_io *io)
{
	switch (io->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return needs_bounce(blk, io) ? sync_bounce(blk, io) : sync_rw(blk, io);
	case VIRTIO_BLK_T_FLUSH:
		return fdatasync(blk->fd) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	default: /* DISCARD, WRITE_ZEROES */
		return fallocate_done(blk, io, fallocate(blk->fd, io->fl_mode, (off_t)io->offset,
							 (off_t)io->len) ? -errno : 0);
	}
}

/* ---- completion -------------------------------------------------------------- */

/* Give the request back to the driver (vq NULL: the queue is gone, just free the slot). */
static void blk_finish(struct blk *blk, struct vq *vq, unsigned slot, uint8_t st)
{
	struct blk_io *io = &blk->io[slot];

	if (vq) {
		/*
		 * A read (io_uring or not) and the status byte were written
		 * through pointers gm_ptr() gave when the request was taken:
		 * mark them again now that they are written (memory.h, dirty.h),
		 * or a migration round or diff snapshot in between would miss them.
		 */
		if (io->type == VIRTIO_BLK_T_IN && st == VIRTIO_BLK_S_OK)
			for (unsigned i = 0; i < io->nr_iov; i++)
				gm_track_mark_host(vq->gm, io->iov[i].iov_base, io->iov[i].iov_len);
		__atomic_store_n(io->status, st, __ATOMIC_RELAXED);
		gm_track_mark_host(vq->gm, io->status, 1);
		vq_push(vq, io->head, st == VIRTIO_BLK_S_OK ? io->written : 1);
	}
	if (st != VIRTIO_BLK_S_OK) {
		blk->errors++;
	} else if (io->type == VIRTIO_BLK_T_IN) {
		blk->reads++;
		blk->bytes_read += io->len;
	} else if (io->type == VIRTIO_BLK_T_OUT) {
		blk->writes++;
		blk->bytes_written += io->len;
	} else if (io->type == VIRTIO_BLK_T_FLUSH) {
		blk->flushes++;
	} else if (io->type == VIRTIO_BLK_T_DISCARD) {
		blk->discards++;
	} else if (io->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		blk->write_zeroes++;
	}
	blk->free[blk->nr_free++] = (uint16_t)slot;
}

/* A CQE for slot with result res. */
static void uring_finish(struct blk *blk, struct vq *vq, unsigned slot, int res)
{
	struct blk_io *io = &blk->io[slot];
	uint8_t st;

	if (!vq) {
		blk_finish(blk, NULL, slot, VIRTIO_BLK_S_IOERR);
		return;
	}
	switch (io->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (res < 0) {
			yun_debug("disk %s: io_uring %s at %llu: %s", blk->path,
				  io->type == VIRTIO_BLK_T_OUT ? "write" : "read",
				  (unsigned long long)io->offset, strerror(-res));
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		/* A short transfer: finish the rest here (0 more bytes is an error there). */
		io->done = (uint64_t)res;
		st = io->done >= io->len ? VIRTIO_BLK_S_OK : sync_rw(blk, io);
		break;
	case VIRTIO_BLK_T_FLUSH:
		st = res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	default:
		st = fallocate_done(blk, io, res);
		break;
	}
	blk_finish(blk, vq, slot, st);
}

/* Reap completions: all that are there, or (wait) until nothing is in flight. */
static void uring_reap(struct blk *blk, struct vq *vq, bool wait)
{
	struct io_uring *ring = &blk->uring->ring;

	while (blk->inflight) {
		struct io_uring_cqe *cqe;
		uint64_t slot;
		int res, rc;

		rc = wait ? io_uring_wait_cqe(ring, &cqe) : io_uring_peek_cqe(ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break; /* -EAGAIN: nothing completed yet */
		slot = io_uring_cqe_get_data64(cqe);
		res = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		blk->inflight--;
		if (slot < BLK_QUEUE_SIZE)
			uring_finish(blk, vq, (unsigned)slot, res);
	}
}

static void uring_submit(struct blk *blk)
{
	int rc;

	if (!blk->uring->queued)
		return;
	while ((rc = io_uring_submit(&blk->uring->ring)) == -EINTR)
		;
	if (rc < 0)
		yun_info("disk %s: io_uring_submit: %s", blk->path, strerror(-rc));
	else
		blk->uring->queued = 0;
}

/* Has the request in `slot` completed (its CQE is waiting to be reaped)? */
static bool uring_done(struct blk_uring *u, unsigned slot)
{
	struct io_uring_cqe *cqe;
	unsigned head;

	io_uring_for_each_cqe(&u->ring, head, cqe)
		if (io_uring_cqe_get_data64(cqe) == slot)
			return true;
	return false;
}

/* Queue io on the ring; false when no SQE is to be had (the caller does it synchronously). */
static bool uring_queue(struct blk *blk, unsigned slot)
{
	struct blk_io *io = &blk->io[slot];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&blk->uring->ring);

	if (!sqe) {
		uring_submit(blk);
		sqe = io_uring_get_sqe(&blk->uring->ring);
		if (!sqe)
			return false;
	}
	switch (io->type) {
	case VIRTIO_BLK_T_IN:
		/* One buffer (the common case): the plain op skips the iovec import. */
		if (io->nr_iov == 1)
			io_uring_prep_read(sqe, blk->fd, io->iov[0].iov_base,
					   (unsigned)io->iov[0].iov_len, io->offset);
		else
			io_uring_prep_readv(sqe, blk->fd, io->iov, io->nr_iov, io->offset);
		break;
	case VIRTIO_BLK_T_OUT:
		if (io->nr_iov == 1)
			io_uring_prep_write(sqe, blk->fd, io->iov[0].iov_base,
					    (unsigned)io->iov[0].iov_len, io->offset);
		else
			io_uring_prep_writev(sqe, blk->fd, io->iov, io->nr_iov, io->offset);
		if (writethrough(blk))
			sqe->rw_flags = RWF_DSYNC;
		break;
	case VIRTIO_BLK_T_FLUSH:
		io_uring_prep_fsync(sqe, blk->fd, IORING_FSYNC_DATASYNC);
		break;
	default:
		io_uring_prep_fallocate(sqe, blk->fd, io->fl_mode, io->offset, io->len);
		break;
	}
	io_uring_sqe_set_data64(sqe, slot);
	blk->uring->queued++;
	blk->inflight++;
	return true;
}

/* ---- the queue ------------------------------------------------------------------ */

static bool is_rw(const struct blk_io *io)
{
	return io->type == VIRTIO_BLK_T_IN || io->type == VIRTIO_BLK_T_OUT;
}

/*
 * Pop and start requests while request slots are free and the rate limiter
 * lets us; then submit what was queued.
 *
 * Requests go to the ring as they are popped and are submitted in bursts
 * that double: the first alone, then 2, 4, 8, ... One io_uring_enter for
 * everything the driver posted issues it under one block plug, so the disk
 * sees nothing until the last request is issued (about 4 us each here, so
 * 32 requests held the first back by over 100 us; docs/benchmarks.md). In
 * bursts the disk starts on the first at once, in log2(n) system calls
 * rather than n. Two exceptions: a request that continues the one before it
 * (same direction, next byte) is not split from it, because under one plug
 * the block layer merges them into one disk request; and when a burst
 * completed inside its submit (page-cache hits) there is no disk to keep
 * busy, and the rest goes in one batch.
 */
static int blk_run_queue(struct blk *blk, struct vq *vq)
{
	unsigned burst = 1, last = 0;  /* `last`: the slot queued last, ending at `end` */
	uint32_t last_type = UINT32_MAX;
	uint64_t end = UINT64_MAX;
	int rc = 0;

	blk->vq = vq; /* live: blk_replace_backing may complete requests on it */
	while (blk->nr_free) {
		unsigned slot;
		int st;

		if (throttle_blocked(&blk->throttle))
			break; /* blk_timer_fired goes on */
		rc = vq_pop(vq, &blk->req);
		if (rc <= 0)
			break;
		slot = blk->free[--blk->nr_free];
		st = blk_prepare(blk, &blk->req, &blk->io[slot]);
		if (st < 0) {
			blk->free[blk->nr_free++] = (uint16_t)slot;
			rc = st;
			break;
		}
		throttle_charge(&blk->throttle, st == BLK_PENDING && is_rw(&blk->io[slot]) ?
					blk->io[slot].len : 0, 1);
		if (st == BLK_PENDING) {
			struct blk_io *io = &blk->io[slot];

			if (blk->uring && !needs_bounce(blk, io)) {
				bool follows = is_rw(io) && io->type == last_type &&
					       io->offset == end;

				if (blk->uring->queued >= burst && !follows) {
					uring_submit(blk);
					burst = uring_done(blk->uring, last) ? UINT_MAX : 2 * burst;
				}
				if (uring_queue(blk, slot)) {
					last = slot;
					last_type = io->type;
					end = io->offset + io->len;
					continue;
				}
			}
			st = blk_sync(blk, io);
		}
		blk_finish(blk, vq, slot, (uint8_t)st);
	}
	if (blk->uring) {
		uring_submit(blk);
		/* Page-cache hits complete during the submit: push them now, not after a wakeup. */
		uring_reap(blk, vq, false);
	}
	if (rc < 0)
		yun_info("disk %s: broken request chain (%s)", blk->path, strerror(-rc));
	return rc < 0 ? rc : 0;
}

static int blk_queue_notify(void *opaque, unsigned q, struct vq *vq)
{
	(void)q;
	return blk_run_queue(opaque, vq);
}

int blk_complete(void *opaque, unsigned q, struct vq *vq)
{
	struct blk *blk = opaque;
	uint64_t n;

	(void)q;
	if (!vq)
		blk->vq = NULL; /* not live any more */
	if (!blk->uring)
		return 0;
	if (read(blk->uring->event_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		yun_debug("disk %s: completion eventfd: %s", blk->path, strerror(errno));
	uring_reap(blk, vq, false);
	/* Chains left in the ring while every slot was busy: their kick is long gone. */
	if (vq && blk->nr_free && vq_has_avail(vq))
		return blk_run_queue(blk, vq);
	return 0;
}

int blk_timer_fired(void *opaque, unsigned q, struct vq *vq)
{
	struct blk *blk = opaque;

	(void)q;
	throttle_fired(&blk->throttle);
	return vq ? blk_run_queue(blk, vq) : 0;
}

static void blk_activate(void *opaque, uint64_t features)
{
	struct blk *blk = opaque;

	blk->features = features;
}

/* Reset: the driver may reuse every buffer as soon as it reads status 0, so drain first. */
static void blk_reset(void *opaque)
{
	struct blk *blk = opaque;

	if (blk->uring)
		uring_reap(blk, NULL, true);
	throttle_cancel(&blk->throttle);
	blk->features = 0;
	blk->vq = NULL;
}

#define BLK_FEATURES                                                                      \
	((1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |               \
	 (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |                 \
	 (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES))

#define BLK_OPS(feat)                                                                     \
	{                                                                                 \
		.name = "virtio-blk", .device_type = VIRTIO_ID_BLOCK, .num_queues = 1,    \
		.queue_max_size = BLK_QUEUE_SIZE, .features = (feat),                     \
		.config_size = BLK_CONFIG_SIZE,                                           \
		.class_code = 0x010000, /* mass storage, SCSI: what QEMU reports */       \
		.config_read = blk_config_read, .queue_notify = blk_queue_notify,         \
		.activate = blk_activate, .reset = blk_reset,                             \
	}

static const struct virtio_device_ops blk_ops_rw = BLK_OPS(BLK_FEATURES);
static const struct virtio_device_ops blk_ops_ro =
	BLK_OPS(BLK_FEATURES | (1ULL << VIRTIO_BLK_F_RO));

const struct virtio_device_ops *blk_device_ops(const struct blk *blk)
{
	return blk->readonly ? &blk_ops_ro : &blk_ops_rw;
}

/* ---- open and close ------------------------------------------------------------- */

static int uring_open(struct blk *blk)
{
	struct blk_uring *u = calloc(1, sizeof(*u));
	int rc;

	if (!u)
		return -ENOMEM;
	rc = io_uring_queue_init(BLK_QUEUE_SIZE, &u->ring, 0);
	if (rc < 0) {
		free(u);
		return rc;
	}
	u->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rc = u->event_fd < 0 ? -errno : io_uring_register_eventfd(&u->ring, u->event_fd);
	if (rc < 0) {
		if (u->event_fd >= 0)
			close(u->event_fd);
		io_uring_queue_exit(&u->ring);
		free(u);
		return rc;
	}
	blk->uring = u;
	return 0;
}

/* NUL-padded, unterminated when 20 bytes long: what GET_ID hands the driver. */
static void set_id(struct blk *blk, const char *id)
{
	size_t n = strnlen(id, BLK_ID_BYTES);

	memset(blk->id, 0, sizeof(blk->id));
	memcpy(blk->id, id, n);
}

static void default_id(struct blk *blk, const char *path)
{
	const char *name = strrchr(path, '/');

	set_id(blk, name ? name + 1 : path);
}

/* O_DIRECT alignment of fd: what statx says, else a page (always enough). */
static void direct_alignment(int fd, uint32_t *blk_size, uint32_t *mem_align)
{
	struct statx stx;

	*mem_align = 4096;
	*blk_size = BLK_SECTOR;
#ifdef STATX_DIOALIGN
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		*mem_align = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 1;
		if (stx.stx_dio_offset_align > BLK_SECTOR)
			*blk_size = stx.stx_dio_offset_align;
		return;
	}
#endif
	(void)stx;
	*blk_size = 4096;
}

/* `what` names the disk: "disk /path", or "disk ID: /path" for a new backing file. */
static int open_error(const char *what, int e, bool direct, bool readonly, bool replacing,
		      struct yun_err *err)
{
	switch (e) {
	case ENOENT:
		return yun_err_set(err, e, "%s: no such file", what);
	case EISDIR:
		return yun_err_set(err, e, "%s: is a directory", what);
	case EROFS:
		return yun_err_set(err, e, "%s: read-only file system (%s)", what,
				   replacing ? "the disk is read-write" : "add readonly=on");
	case EACCES:
	case EPERM:
		return yun_err_set(err, e, "%s: permission denied (%s)", what,
				   readonly ? "not readable" : "not readable and writable");
	case EINVAL:
		if (direct)
			return yun_err_set(err, e,
					   "%s: direct=on: the file system does not do O_DIRECT",
					   what);
		break;
	}
	return yun_err_errno(err, e, "%s", what);
}

/* An image file opened as a disk wants it: its fd (locked) and size. */
struct backing {
	int fd;
	uint64_t size;
	dev_t dev;
	ino_t ino;
};

/*
 * Open, check and lock `path` for a disk (readonly / direct as given). A
 * lock held by `same_fd` on the same file (a disk re-opening its own image)
 * is not an error: *relock is set and the caller locks once same_fd lets go.
 */
static int backing_open(const char *path, bool readonly, bool direct, bool lock_it,
			const char *what, int same_fd, struct backing *b, bool *relock,
			struct yun_err *err)
{
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
	struct flock lock = { .l_type = readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	struct stat st, cur;
	int rc;

	*relock = false;
	b->fd = open(path, flags);
	if (b->fd < 0)
		return open_error(what, errno, direct, readonly, same_fd >= 0, err);
	if (fstat(b->fd, &st) < 0) {
		rc = yun_err_errno(err, errno, "%s: fstat", what);
		goto fail;
	}
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	if (S_ISDIR(st.st_mode)) {
		rc = open_error(what, EISDIR, false, readonly, false, err);
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		b->size = (uint64_t)st.st_size;
	} else if (!S_ISBLK(st.st_mode)) {
		rc = yun_err_set(err, EINVAL, "%s: not a regular file or block device", what);
		goto fail;
	} else if (ioctl(b->fd, BLKGETSIZE64, &b->size) < 0) {
		rc = yun_err_errno(err, errno, "%s: BLKGETSIZE64", what);
		goto fail;
	}
	if (b->size % BLK_SECTOR) {
		rc = yun_err_set(err, EINVAL, "%s: size %llu is not a multiple of %d", what,
				 (unsigned long long)b->size, BLK_SECTOR);
		goto fail;
	}
	/* An OFD lock belongs to this open file, so the VMM's threads all hold it. */
	if (lock_it && fcntl(b->fd, F_OFD_SETLK, &lock) < 0) {
		if ((errno == EAGAIN || errno == EACCES) && same_fd >= 0 &&
		    fstat(same_fd, &cur) == 0 && cur.st_dev == st.st_dev &&
		    cur.st_ino == st.st_ino) {
			*relock = true;
			return 0;
		}
		if (errno == EAGAIN || errno == EACCES)
			rc = yun_err_set(err, errno, "%s: locked by another process", what);
		else
			rc = yun_err_errno(err, errno, "%s: lock", what);
		goto fail;
	}
	return 0;
fail:
	close(b->fd);
	b->fd = -1;
	return rc;
}

int blk_open(struct blk *blk, const struct blk_params *p, struct yun_err *err)
{
	const char *no_uring = getenv("YUN_BLK_NO_URING");
	struct backing b;
	char what[PATH_MAX + 8];
	bool relock;
	int rc;

	memset(blk, 0, sizeof(*blk));
	blk->fd = -1;
	blk->throttle.timer_fd = -1;
	blk->readonly = p->readonly;
	blk->direct = p->direct;
	blk->blk_size = BLK_SECTOR;
	blk->mem_align = 1;
	blk->path = strdup(p->path);
	if (!blk->path)
		return yun_err_set(err, ENOMEM, "disk %s: out of memory", p->path);
	snprintf(what, sizeof(what), "disk %s", p->path);
	rc = backing_open(p->path, p->readonly, p->direct, !p->defer_lock, what, -1, &b, &relock,
			  err);
	if (rc)
		goto fail;
	blk->fd = b.fd;
	blk->size = b.size;
	if (p->direct)
		direct_alignment(blk->fd, &blk->blk_size, &blk->mem_align);
	if (p->id)
		set_id(blk, p->id);
	else
		default_id(blk, p->path);

	blk->io = calloc(BLK_QUEUE_SIZE, sizeof(*blk->io));
	if (!blk->io) {
		rc = yun_err_set(err, ENOMEM, "disk %s: out of memory", p->path);
		goto fail;
	}
	/* The timerfd is made limits or not: blk_set_limits may add some at run time. */
	rc = throttle_init(&blk->throttle, p->bw, p->iops, blk->path, err);
	if (rc)
		goto fail;
	if (p->bw || p->iops)
		yun_info("disk %s: rate limit %llu bytes/s, %llu requests/s (0: unlimited)",
			 p->path, (unsigned long long)p->bw, (unsigned long long)p->iops);
	for (unsigned i = 0; i < BLK_QUEUE_SIZE; i++)
		blk->free[i] = (uint16_t)(BLK_QUEUE_SIZE - 1 - i);
	blk->nr_free = BLK_QUEUE_SIZE;

	if (no_uring && !strcmp(no_uring, "1")) {
		yun_info("disk %s: YUN_BLK_NO_URING=1: preadv/pwritev backend", p->path);
	} else if ((rc = uring_open(blk)) < 0) {
		yun_info("disk %s: io_uring unavailable (%s): preadv/pwritev backend", p->path,
			 strerror(-rc));
	}
	yun_info("disk %s: %llu sectors%s%s, id \"%.20s\", %s backend", p->path,
		 (unsigned long long)(blk->size / BLK_SECTOR), p->readonly ? ", read-only" : "",
		 p->direct ? ", O_DIRECT" : "", blk->id, blk->uring ? "io_uring" : "synchronous");
	return 0;
fail:
	blk_close(blk);
	return rc;
}

int blk_event_fd(const struct blk *blk)
{
	return blk->uring ? blk->uring->event_fd : -1;
}

int blk_timer_fd(const struct blk *blk)
{
	return throttle_fd(&blk->throttle);
}

bool blk_uses_uring(const struct blk *blk)
{
	return blk->uring != NULL;
}

void blk_close(struct blk *blk)
{
	if (blk->uring) {
		uring_reap(blk, NULL, true);
		io_uring_queue_exit(&blk->uring->ring);
		close(blk->uring->event_fd);
		free(blk->uring);
		blk->uring = NULL;
	}
	throttle_close(&blk->throttle);
	if (blk->fd >= 0)
		close(blk->fd); /* also drops the OFD lock */
	blk->fd = -1;
	free(blk->io);
	free(blk->bounce);
	free(blk->zeroes);
	free(blk->path);
	blk->io = NULL;
	blk->bounce = blk->zeroes = NULL;
	blk->path = NULL;
}

/* ---- the image's lock, handed over by a live migration ------------------------- */

int blk_lock(struct blk *blk, struct yun_err *err)
{
	struct flock lock = { .l_type = blk->readonly ? F_RDLCK : F_WRLCK,
			      .l_whence = SEEK_SET };

	if (fcntl(blk->fd, F_OFD_SETLK, &lock) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return yun_err_set(err, errno, "disk %s: locked by another process", blk->path);
	return yun_err_errno(err, errno, "disk %s: lock", blk->path);
}

void blk_unlock(struct blk *blk)
{
	struct flock unlock = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (blk->fd >= 0)
		fcntl(blk->fd, F_OFD_SETLK, &unlock); /* cannot fail on our own open file */
}

/* ---- run-time changes (the control API; device lock held) ----------------------- */

int blk_replace_backing(struct blk *blk, const char *path, struct yun_err *err)
{
	char what[BLK_ID_BYTES + PATH_MAX + 16];
	struct flock lock = { .l_type = blk->readonly ? F_RDLCK : F_WRLCK,
			      .l_whence = SEEK_SET };
	struct flock unlock = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	uint32_t blk_size = blk->blk_size, mem_align = blk->mem_align;
	uint64_t old_size = blk->size;
	struct backing b;
	bool relock;
	char *copy;
	int rc;

	if (!path || !*path)
		return yun_err_set(err, EINVAL, "disk %.20s: empty path", blk->id);
	snprintf(what, sizeof(what), "disk %.20s: %s", blk->id, path);
	if (blk->fd < 0)
		return yun_err_set(err, EBADF, "%s: the disk is not open", what);
	copy = strdup(path);
	if (!copy)
		return yun_err_set(err, ENOMEM, "%s: out of memory", what);
	rc = backing_open(path, blk->readonly, blk->direct, true, what, blk->fd, &b, &relock, err);
	if (rc)
		goto fail;
	if (blk->direct)
		direct_alignment(b.fd, &blk_size, &mem_align);
	if (blk_size > blk->blk_size) {
		rc = yun_err_set(err, EINVAL, "%s: direct=on needs %u-byte blocks there, the guest "
				 "was given %u", what, blk_size, blk->blk_size);
		goto fail_fd;
	}

	/*
	 * Nothing lost: what is in flight completes against the old file first
	 * and is pushed now. Chains left waiting for a free slot are picked up
	 * by blk_complete, which the CQEs' eventfd still has coming.
	 */
	if (blk->uring) {
		uring_submit(blk);
		uring_reap(blk, blk->vq, true);
	}
	/* The same image again (grown by the host): take its lock over from the old fd. */
	if (relock && (fcntl(blk->fd, F_OFD_SETLK, &unlock) < 0 ||
		       fcntl(b.fd, F_OFD_SETLK, &lock) < 0)) {
		rc = yun_err_errno(err, errno, "%s: lock", what);
		if (fcntl(blk->fd, F_OFD_SETLK, &lock) < 0)
			yun_warn("disk %.20s: %s: could not lock it again: %s", blk->id, blk->path,
				 strerror(errno));
		goto fail_fd;
	}
	close(blk->fd); /* drops its lock */
	blk->fd = b.fd;
	blk->size = b.size;
	blk->mem_align = mem_align;
	free(blk->path);
	blk->path = copy;
	yun_info("disk %.20s: now %s, %llu sectors (was %llu)", blk->id, path,
		 (unsigned long long)(b.size / BLK_SECTOR),
		 (unsigned long long)(old_size / BLK_SECTOR));
	return b.size != old_size ? VIRTIO_PCI_CONFIG_CHANGED : 0;
fail_fd:
	close(b.fd);
fail:
	free(copy);
	return rc;
}

int blk_update_limits(struct blk *blk, const struct ratelimit_update *u, struct yun_err *err)
{
	if (blk->throttle.timer_fd < 0)
		return yun_err_set(err, EBADF, "disk %.20s: not open", blk->id);
	throttle_update(&blk->throttle, u);
	if (u->set_bytes)
		yun_info("disk %.20s: rate limit %llu bytes/s (0: unlimited)", blk->id,
			 (unsigned long long)u->bytes.rate);
	if (u->set_ops)
		yun_info("disk %.20s: rate limit %llu requests/s (0: unlimited)", blk->id,
			 (unsigned long long)u->ops.rate);
	return 0;
}

int blk_set_limits(struct blk *blk, uint64_t bw, uint64_t iops, struct yun_err *err)
{
	struct ratelimit_update u = { true, true, { .rate = bw }, { .rate = iops } };

	return blk_update_limits(blk, &u, err);
}

int blk_call_replace_backing(void *blk, void *path, struct yun_err *err)
{
	return blk_replace_backing(blk, path, err);
}

int blk_call_update_limits(void *blk, void *update, struct yun_err *err)
{
	return blk_update_limits(blk, update, err);
}

/* ---- snapshot ------------------------------------------------------------- */

#define BLK_NR_COUNTERS 9 /* the statistics in struct blk, in its order */

int blk_drain(void *opaque, unsigned q, struct vq *vq)
{
	struct blk *blk = opaque;

	(void)q;
	if (blk->uring) {
		uring_submit(blk); /* nothing may stay prepared and unsubmitted */
		uring_reap(blk, vq, true);
	}
	return 0;
}

int blk_save(const struct blk *blk, struct snap_writer *w)
{
	const uint64_t c[BLK_NR_COUNTERS] = {
		blk->reads, blk->writes, blk->flushes, blk->discards, blk->write_zeroes,
		blk->errors, blk->bounced, blk->bytes_read, blk->bytes_written,
	};

	if (blk->inflight)
		return -EBUSY;
	snap_put_u64(w, blk->size);
	snap_put_bool(w, blk->readonly);
	snap_put_u32(w, blk->blk_size);
	snap_put_u64s(w, c, BLK_NR_COUNTERS);
	return 0;
}

int blk_load(struct blk *blk, struct snap_reader *r)
{
	uint64_t size = snap_get_u64(r), c[BLK_NR_COUNTERS];
	bool readonly = snap_get_bool(r);
	uint32_t blk_size = snap_get_u32(r);

	snap_get_u64s(r, c, BLK_NR_COUNTERS);
	if (r->failed)
		return -EINVAL;
	if (size != blk->size)
		return snap_reader_fail(r, "disk %s: capacity %llu sectors, the state has %llu",
					blk->path, (unsigned long long)(blk->size / BLK_SECTOR),
					(unsigned long long)(size / BLK_SECTOR));
	if (readonly != blk->readonly)
		return snap_reader_fail(r, "disk %s: %s, the state's disk was %s", blk->path,
					blk->readonly ? "read-only" : "writable",
					readonly ? "read-only" : "writable");
	if (blk_size != blk->blk_size)
		return snap_reader_fail(r, "disk %s: block size %u, the state's disk had %u",
					blk->path, blk->blk_size, blk_size);
	blk->reads = c[0];
	blk->writes = c[1];
	blk->flushes = c[2];
	blk->discards = c[3];
	blk->write_zeroes = c[4];
	blk->errors = c[5];
	blk->bounced = c[6];
	blk->bytes_read = c[7];
	blk->bytes_written = c[8];
	return 0;
}
