/*
 * blk.h - virtio-blk (virtio 1.2, 5.2) over a raw image file or a block
 * device: one request queue; IN, OUT, FLUSH, GET_ID, DISCARD and
 * WRITE_ZEROES; status VIRTIO_BLK_S_OK / IOERR / UNSUPP.
 *
 * Backend: an io_uring (liburing) per disk. Requests are submitted from
 * queue_notify on the I/O thread; the ring signals an eventfd
 * (blk_event_fd) which the VM watches on the same I/O thread and answers
 * with virtio_pci_run(vp, 0, blk_complete): that pushes the used ring under
 * the device lock. When io_uring is unavailable, or YUN_BLK_NO_URING=1 is
 * in the environment, every request runs synchronously with
 * preadv/pwritev/fdatasync/fallocate inside queue_notify and
 * blk_event_fd() is -1.
 *
 * What the guest cannot do: every request is parsed from the chain as a
 * byte stream (virtio 1.x has no fixed framing): the 16-byte header from
 * the readable buffers, the status from the last writable byte. A chain
 * with no room for either is a broken driver: queue_notify returns -EINVAL
 * and the transport sets DEVICE_NEEDS_RESET (as QEMU does). Anything else
 * wrong (data in the wrong direction, a length that is not whole sectors,
 * sector + length past the end, computed without overflow, writes to a
 * read-only disk, too many segments) gets VIRTIO_BLK_S_IOERR and the device
 * goes on. Unknown request types get VIRTIO_BLK_S_UNSUPP.
 *
 * The image is opened O_CLOEXEC (O_DIRECT with direct=on) and locked with
 * an OFD lock, shared for a read-only disk and exclusive otherwise, so two
 * VMMs never write one image. With direct=on, requests whose guest buffers
 * are not aligned as the file system wants go through an aligned bounce
 * buffer, synchronously, at most BLK_BOUNCE_MAX bytes at a time.
 *
 * FLUSH is fdatasync(2): once the driver sees VIRTIO_BLK_S_OK, every write
 * it had seen completed is on stable storage. A driver that does not
 * negotiate VIRTIO_BLK_F_FLUSH gets a write-through disk (RWF_DSYNC).
 *
 * Rate limits (bw= bytes/s, iops= requests/s; see ratelimit.h): every
 * request costs one op and, for IN/OUT, its data bytes. Its cost is known
 * once it is popped, so the device pops while both buckets are out of
 * debt and charges what it took; when a bucket runs dry it stops popping
 * and arms a timerfd (throttle.h; blk_timer_fd, watched on the I/O thread, answered
 * with virtio_pci_run(vp, 0, blk_timer_fired)) for the time the bucket
 * needs. Kicks meanwhile change nothing: no busy loop, and the guest sees
 * a slow disk, not errors.
 */
#ifndef YUN_VMM_VIRTIO_BLK_H
#define YUN_VMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../snapshot/stream.h"
#include "throttle.h"
#include "virtio.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1

/* struct virtio_blk_config offsets (5.2.4) this device fills. */
#define BLK_CFG_CAPACITY             0
#define BLK_CFG_SIZE_MAX             8
#define BLK_CFG_SEG_MAX              12
#define BLK_CFG_BLK_SIZE             20
#define BLK_CFG_MAX_DISCARD_SECTORS  36
#define BLK_CFG_MAX_DISCARD_SEG      40
#define BLK_CFG_DISCARD_ALIGNMENT    44
#define BLK_CFG_MAX_WZ_SECTORS       48
#define BLK_CFG_MAX_WZ_SEG           52
#define BLK_CFG_WZ_MAY_UNMAP         56
#define BLK_CONFIG_SIZE              60

#define BLK_SECTOR          512
#define BLK_QUEUE_SIZE      256
#define BLK_SEG_MAX         (BLK_QUEUE_SIZE - 2)  /* data buffers in one request */
#define BLK_SIZE_MAX        (1u << 20)            /* bytes in one data buffer */
#define BLK_ID_BYTES        20
#define BLK_MAX_DISCARD     (1u << 22)            /* sectors (2 GiB) in one DISCARD/WRITE_ZEROES */
#define BLK_BOUNCE_MAX      (1u << 20)            /* bounce buffer for unaligned direct I/O */

/* A disk as the configuration gives it. */
struct blk_params {
	const char *path;
	const char *id;      /* NULL: the file's name (after the last '/'), cut to 20 bytes */
	bool readonly;       /* open O_RDONLY, offer VIRTIO_BLK_F_RO, shared lock */
	bool direct;         /* O_DIRECT: bypass the host page cache */
	uint64_t bw;         /* bytes per second, 0: unlimited */
	uint64_t iops;       /* requests per second, 0: unlimited */
	bool defer_lock;     /* open without locking; blk_lock later (migration destination) */
};

struct blk_io;
struct blk_uring;

struct blk {
	char *path;
	char id[BLK_ID_BYTES];       /* NUL-padded, not NUL-terminated when 20 long */
	int fd;
	bool readonly, direct;
	uint64_t size;               /* bytes, a multiple of BLK_SECTOR */
	uint32_t blk_size;           /* logical block size offered to the guest */
	uint32_t mem_align;          /* O_DIRECT buffer alignment (1 without direct) */
	uint64_t features;           /* negotiated, from activate() */

	struct blk_uring *uring;     /* NULL: synchronous backend */
	struct blk_io *io;           /* BLK_QUEUE_SIZE request slots */
	uint16_t free[BLK_QUEUE_SIZE];
	unsigned nr_free;
	unsigned inflight;           /* submitted to the ring, not yet completed */
	void *bounce;                /* BLK_BOUNCE_MAX, aligned; on first use */
	void *zeroes;                /* BLK_BOUNCE_MAX of zeroes, aligned; on first use */
	struct vq_req req;           /* scratch for the chain being parsed */

	struct throttle throttle;    /* bw= and iops= */
	struct vq *vq;               /* the queue while live (set when it runs), else NULL */

	/* Statistics. */
	uint64_t reads, writes, flushes, discards, write_zeroes, errors, bounced;
	uint64_t bytes_read, bytes_written;
};

/* The model's ops for this disk (a read-only disk also offers VIRTIO_BLK_F_RO). */
const struct virtio_device_ops *blk_device_ops(const struct blk *blk);

/*
 * Open, check and lock the image; set up the backend. Errors name the disk:
 * "disk F: no such file", "disk F: locked by another process",
 * "disk F: size N is not a multiple of 512".
 */
int blk_open(struct blk *blk, const struct blk_params *p, struct yun_err *err);

/*
 * The image's lock (exclusive, shared when read-only) as blk_open takes it:
 * a live migration's source lets go while paused for the handover and
 * takes it back if it resumes; the destination (defer_lock) takes it
 * before its guest runs. "disk F: locked by another process" when held.
 */
int blk_lock(struct blk *blk, struct yun_err *err);
void blk_unlock(struct blk *blk);

/* Wait for requests in flight, then close everything. Idempotent. */
void blk_close(struct blk *blk);

/* The eventfd that becomes readable when requests complete; -1 for the synchronous backend. */
int blk_event_fd(const struct blk *blk);

/* Is the io_uring backend in use? */
bool blk_uses_uring(const struct blk *blk);

/*
 * The rate limiter's timerfd (readable when a throttled queue may go on):
 * made at open, limits or not, so limits set at run time use it.
 */
int blk_timer_fd(const struct blk *blk);

/* The rate-limit timer fired: go on popping (a virtio_pci_run_fn; vq NULL: only note it). */
int blk_timer_fired(void *blk, unsigned q, struct vq *vq);

/*
 * Reap completed requests and push them on vq (a virtio_pci_run_fn: call it
 * through virtio_pci_run when blk_event_fd() is readable). vq NULL: drop.
 */
int blk_complete(void *blk, unsigned q, struct vq *vq);

/*
 * ---- Run-time changes (the control API) ----
 *
 * Locking: each of these must run under the device lock, serialised with
 * the queue, completions and timers. From another thread (the API's) call
 * them through the transport, which also interrupts the driver as needed:
 *   virtio_pci_call(vp, blk_call_replace_backing, (void *)path, err)
 *   virtio_pci_call(vp, blk_call_update_limits, &update, err)
 * (the blk_call_* functions are the ones below with virtio_pci_call's
 * signature). Never from inside a model callback.
 */

/*
 * Firecracker's PATCH /drives/{id} with path_on_host: serve the disk from
 * `path` from now on. The new file is opened with the disk's options
 * (read-only or not, direct or not), checked and locked as at open; only
 * then are the requests in flight on the old file waited for and
 * completed (pushed to the guest: nothing is lost), the new file takes
 * over and the old one is closed. The same image again (grown or shrunk by
 * the host) is fine: its lock moves to the new fd. Returns
 * VIRTIO_PCI_CONFIG_CHANGED when the capacity changed (virtio_pci_call
 * then tells the driver), 0 when it did not, or a negative errno: a bad
 * path changes nothing, the old file stays in use, and the message names
 * the disk by its id and the reason: "disk yt-disk0: /x.img: no such
 * file", "...: is a directory", "...: permission denied (not readable and
 * writable)", "...: read-only file system (the disk is read-write)", "...:
 * locked by another process", "...: size N is not a multiple of 512".
 */
int blk_replace_backing(struct blk *blk, const char *path, struct yun_err *err);

/*
 * Change the rate limits: bw bytes/s and iops requests/s, 0 unlimited. The
 * buckets start full; a queue stalled on the old limits re-checks at once.
 */
int blk_set_limits(struct blk *blk, uint64_t bw, uint64_t iops, struct yun_err *err);

/*
 * The same with Firecracker's bucket shapes (size, refill_time,
 * one_time_burst; from ratelimit_update_from_json on the drive's
 * "rate_limiter"), changing only the buckets u sets.
 */
int blk_update_limits(struct blk *blk, const struct ratelimit_update *u, struct yun_err *err);

/* virtio_pci_call adapters: arg is the path (const char *) / a struct ratelimit_update *. */
int blk_call_replace_backing(void *blk, void *path, struct yun_err *err);
int blk_call_update_limits(void *blk, void *update, struct yun_err *err);

/* ---- snapshot ------------------------------------------------------------- */

/*
 * Wait for every request in flight and complete it through the normal
 * path (used ring, status byte, statistics): a virtio_pci_run_fn, so run
 * it with virtio_pci_run(vp, 0, blk_drain) on a thread that is not the I/O
 * thread's (which must be parked). Afterwards nothing is in flight and the
 * saved state needs no record of requests: chains the driver posted and
 * we did not pop are in its rings, served after the load's resume kick.
 */
int blk_drain(void *blk, unsigned q, struct vq *vq);

/*
 * Snapshot (BLK_SNAP_VERSION): the disk's geometry (checked on load: the
 * capacity, read-only flag and block size must match the restored VM's
 * disk) and its statistics. -EBUSY from blk_save while requests are in
 * flight: drain first. Rate-limit buckets start full after a load.
 */
#define BLK_SNAP_VERSION 1
int blk_save(const struct blk *blk, struct snap_writer *w);
int blk_load(struct blk *blk, struct snap_reader *r);

#endif
