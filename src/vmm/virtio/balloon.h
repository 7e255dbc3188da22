/*
 * balloon.h - virtio-balloon (virtio 1.2, 5.5): the host asks for guest
 * memory back by setting a target (config num_pages, in 4 KiB pages), the
 * guest driver hands pages over on the inflate queue and takes them back on
 * the deflate queue, and reports its memory statistics on the stats queue.
 *
 * Queues carry arrays of 32-bit page frame numbers. Every PFN is checked to
 * name a whole page of guest RAM (gm_ptr) before anything is done with it;
 * one that does not (outside RAM, in the PCI hole) is skipped and counted
 * (bad_pfns). A request is acted on for its first BALLOON_MAX_PFNS PFNs,
 * the rest are counted (excess_pfns) and ignored, so a huge chain costs no
 * more than a normal one; either way the request completes. Only a length
 * that is not a whole number of PFNs breaks the queue: the model returns
 * an error and the transport sets DEVICE_NEEDS_RESET.
 *
 *   inflate: the page goes back to the host with madvise(MADV_DONTNEED) on
 *            the guest RAM mapping, so the VMM's RSS falls; the guest reads
 *            zeros if it touches the page again.
 *   deflate: nothing to do for memory, the page faults back in when the
 *            guest touches it; with VIRTIO_BALLOON_F_MUST_TELL_HOST the
 *            model populates the pages now (MADV_POPULATE_WRITE), so an
 *            over-committed host fails here rather than in a vCPU's fault.
 *   stats:   the driver posts one buffer of (tag, value) pairs; the model
 *            keeps the latest figures (balloon_get_stats) and holds the
 *            buffer until the host asks for fresh ones
 *            (balloon_request_stats), which hands it back to the driver.
 *
 * The host side (a control API, or the deflate_after_ms stop-gap below)
 * calls balloon_set_target(), which raises the configuration-change
 * interrupt through struct balloon_host. Those host-side calls take the
 * transport's lock, so they must not be made from inside a model callback.
 */
#ifndef YUN_VMM_VIRTIO_BALLOON_H
#define YUN_VMM_VIRTIO_BALLOON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../snapshot/stream.h"
#include "virtio.h"

/* Feature bits (5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1

#define BALLOON_INFLATEQ 0
#define BALLOON_DEFLATEQ 1
#define BALLOON_STATSQ   2

#define BALLOON_PAGE_SHIFT  12
#define BALLOON_PAGE_SIZE   (1u << BALLOON_PAGE_SHIFT)
#define BALLOON_QUEUE_SIZE  128
#define BALLOON_CONFIG_SIZE 8 /* le32 num_pages, le32 actual */
#define BALLOON_MAX_PFNS    1024 /* PFNs acted on per request (why: balloon.c) */

/* Statistics tags (5.5.6.3). */
enum balloon_stat_tag {
	BALLOON_S_SWAP_IN = 0,
	BALLOON_S_SWAP_OUT = 1,
	BALLOON_S_MAJFLT = 2,
	BALLOON_S_MINFLT = 3,
	BALLOON_S_MEMFREE = 4,
	BALLOON_S_MEMTOT = 5,
	BALLOON_S_AVAIL = 6,
	BALLOON_S_CACHES = 7,
	BALLOON_S_HTLB_PGALLOC = 8,
	BALLOON_S_HTLB_PGFAIL = 9,
	BALLOON_S_NR
};

/* The guest's last statistics report. */
struct balloon_stats {
	uint64_t val[BALLOON_S_NR]; /* indexed by tag; bytes for MEMFREE/MEMTOT/AVAIL/CACHES */
	uint32_t present;           /* bit (1 << tag): the tag was in the last report */
	uint64_t reports;           /* reports received since the device was created */
};

/* What the wiring (vm.c, or a test harness) gives the model. */
struct balloon_host {
	/* Raise the configuration-change interrupt (virtio_pci_config_changed). */
	void (*config_changed)(void *ctx);
	/* Run queue q's handler now, serialised with the driver's kicks (virtio_pci_kick). */
	void (*kick)(void *ctx, unsigned q);
	void *ctx;
};

struct balloon_config {
	uint32_t target_pages;      /* initial num_pages */
	/*
	 * Stop-gap until the control API can call balloon_set_target(): when
	 * non-zero, the target drops to 0 (deflate everything) this many ms
	 * after the guest first reports `actual` reaching a non-zero target.
	 */
	uint32_t deflate_after_ms;
};

struct balloon {
	struct vq_req req;          /* scratch for the request being served */
	const struct guest_mem *gm;
	struct balloon_host host;
	uint32_t deflate_after_ms;
	int timer_fd;               /* timerfd for deflate_after_ms, -1 without */
	bool timer_armed;

	uint32_t num_pages;         /* the host's target (atomic: set from any thread) */
	uint32_t actual;            /* what the driver says it holds */
	bool must_tell_host;        /* negotiated */

	bool stats_held;            /* the driver's stats buffer is with us */
	uint16_t stats_head;
	bool stats_wanted;          /* balloon_request_stats() ran: hand the buffer back */

	pthread_mutex_t lock;       /* stats and counters below, read by other threads */
	struct balloon_stats stats;
	uint64_t inflated_pages, deflated_pages; /* totals since creation */
	uint64_t bad_pfns;          /* PFNs ignored: not guest RAM */
	uint64_t excess_pfns;       /* PFNs ignored: past BALLOON_MAX_PFNS in a request */
};

extern const struct virtio_device_ops balloon_ops;

int balloon_init(struct balloon *b, const struct guest_mem *gm, const struct balloon_config *cfg,
		 const struct balloon_host *host, struct yun_err *err);
void balloon_destroy(struct balloon *b);

/* Set the host's target (pages) and tell the driver. Any thread but a model callback. */
void balloon_set_target(struct balloon *b, uint32_t pages);

uint32_t balloon_target(struct balloon *b);
uint32_t balloon_actual(struct balloon *b);

/* Copy the last statistics report (for the metrics API). */
void balloon_get_stats(struct balloon *b, struct balloon_stats *out);

/* Ask the driver for fresh statistics: hand its buffer back (if we hold it). */
void balloon_request_stats(struct balloon *b);

/* The deflate_after_ms timer (watched on the I/O thread when timer_fd >= 0). */
void balloon_timer_fired(struct balloon *b);

/*
 * ---- The control API (Firecracker's /balloon) ----
 *
 * Locking: the target is an atomic and the statistics are under b->lock,
 * so these are safe from any thread while the guest runs, except from
 * inside a model callback (setting the target takes the transport's lock
 * to raise the configuration-change interrupt). The device has no stats
 * polling timer: statistics are the guest's last report, and
 * balloon_request_stats() asks for a fresh one (it arrives asynchronously),
 * so stats_polling_interval_s is always 0 here.
 */

/*
 * PATCH /balloon {"amount_mib": N}: the balloon's size, so the guest keeps
 * its memory minus N MiB. Errors: "balloon: amount_mib N is more than the
 * guest's M MiB of memory" (-ERANGE); nothing changes then.
 */
int balloon_set_amount_mib(struct balloon *b, uint64_t mib, struct yun_err *err);

/*
 * GET /balloon: {"amount_mib": the target, "deflate_on_oom": false (the
 * feature is not offered), "stats_polling_interval_s": 0}. A new
 * reference (json_decref), NULL without memory.
 */
struct json_t;
struct json_t *balloon_config_json(struct balloon *b);

/*
 * GET /balloon/statistics: {"target_pages", "actual_pages", "target_mib",
 * "actual_mib"} and each statistic of the guest's last report, by
 * Firecracker's names: swap_in, swap_out, major_faults, minor_faults,
 * free_memory, total_memory, available_memory, disk_caches,
 * hugetlb_allocations, hugetlb_failures (absent until reported; memory
 * figures in bytes, as the driver sends them). A new reference, NULL
 * without memory.
 */
struct json_t *balloon_statistics_json(struct balloon *b);

/*
 * Snapshot (BALLOON_SNAP_VERSION): target and actual (the saved target
 * wins over the configuration's), the stats buffer the device holds (its
 * head; the chain itself is in guest RAM), the last report, the counters
 * and what is left of the deflate timer. Ballooned pages need nothing:
 * they are whatever guest RAM holds.
 */
#define BALLOON_SNAP_VERSION 1
void balloon_save(struct balloon *b, struct snap_writer *w);
int balloon_load(struct balloon *b, struct snap_reader *r);

#endif
