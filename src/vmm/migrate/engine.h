/*
 * engine.h - live migration by pre-copy: the source and destination
 * algorithms, over the authenticated stream of wire.h, talking to the VM
 * only through the ops below (so they are proven with a fake VM in tests
 * and wired to yun-vmm's KVM VM by whoever owns it).
 *
 * Source
 *   round 0   send every page of guest RAM (an all-zero page is sent as a
 *             marker, not 4 KiB of zeroes) with dirty tracking already on
 *   round n   fetch the pages dirtied since the last fetch and send them;
 *             every round ends with SYNC / SYNC_OK, so nothing is left in
 *             socket buffers when the guest pauses (it would count as
 *             downtime) and the bandwidth measured per round is what the
 *             destination really absorbed
 *   converge  when dirty bytes / bandwidth + the handover's two round trips
 *             <= 3/4 of downtime_ms (headroom for a bandwidth dip), or at
 *             max_rounds (forced), go to stop-and-copy. When the dirty
 *             set stops shrinking (fails to fall by 10% in a round), the
 *             guest's vCPUs are throttled through ops->throttle (auto-
 *             converge): throttle_start %, then +throttle_step % per round
 *             up to throttle_max %
 *   stop-copy pause, fetch the last dirty pages, send them, send the device
 *             and vCPU state (ops->save_state, a stream.h section payload),
 *             then the handover below. Downtime is measured from pause to the
 *             destination's RUNNING.
 *
 * Messages (frame types; payloads little endian):
 *   S->D SETUP     u32 version, u32 page size, u32 nr regions,
 *                  nr x (u64 gpa, u64 size), u32 info length, info bytes
 *   D->S SETUP_OK  (destination's RAM is ready: ops->prepare succeeded)
 *   S->D PAGES     u32 count, u32 round, then count times: u64 (gpa |
 *                  MIGRATE_PAGE_ZERO), followed by 4 KiB of data unless the
 *                  zero bit is set
 *   S->D SYNC      u32 round: the round is complete
 *   D->S SYNC_OK   u32 round: everything before SYNC has been written to RAM
 *   S->D STATE     a chunk of the state payload (in order)
 *   S->D COMMIT    u64 state length, u64 descriptors sent, u32 rounds
 *   D->S READY     everything received and loaded; the guest is NOT running
 *   S->D GO        the destination may run the guest
 *   D->S RUNNING   the guest runs on the destination
 *   D->S NOT_STARTED u32 errno, message: GO came but ops->start failed; the
 *                  destination has aborted and will never run this guest
 *   either ERROR   u32 errno, message: the sender gives up (and says why)
 *
 * Handover (no guest lost or duplicated):
 *
 *   source                                     destination
 *   RUNNING --rounds--> PAUSED --COMMIT-->      RECEIVING --load_state--> READY
 *   PAUSED  <--READY--                          (guest loaded, not running)
 *   PAUSED  --GO-->  GO_SENT                    READY --GO--> start --> RUNNING
 *   GO_SENT <--RUNNING-- : DONE (source exits)
 *
 *   - Any failure before GO is fully handed to the kernel (connect, the
 *     handshake, a send or receive, a timeout, the destination's ERROR, a
 *     bad reply, save_state): the source stops dirty tracking, removes any
 *     throttle, resumes the guest if it paused it, tells the destination
 *     ERROR (best effort) and reports MIGRATE_FAILED: it runs as before.
 *     A GO frame that was not completely sent cannot authenticate at the
 *     destination, so it counts as not sent.
 *   - The destination runs the guest only after a GO frame that
 *     authenticates, and only after READY. Any failure before that (bad
 *     frame, page outside RAM, short state, load_state error, EOF, timeout):
 *     ops->abort, ERROR to the source (best effort), non-zero return.
 *   - After GO the source never resumes on its own: RUNNING -> MIGRATE_DONE;
 *     NOT_STARTED -> the destination aborted, so resume (MIGRATE_FAILED);
 *     anything else (timeout, EOF, garbage) -> MIGRATE_UNKNOWN: the source
 *     stays paused and the error says why. Whoever runs the migration must
 *     then find out whether the destination runs the guest (it does if it
 *     got GO) before resuming or killing the source.
 *   - If the destination cannot deliver RUNNING after starting, it keeps
 *     running (the source is paused or gone) and reports it in its stats.
 *
 * The engine runs on the caller's thread; ops are called from that thread
 * while the vCPUs keep running (until pause).
 */
#ifndef YUN_VMM_MIGRATE_ENGINE_H
#define YUN_VMM_MIGRATE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../snapshot/stream.h"
#include "wire.h"

#define MIGRATE_PAGE_SIZE    4096u
#define MIGRATE_PAGE_ZERO    1u          /* descriptor flag: the page is all zero */
#define MIGRATE_MAX_REGIONS  8
#define MIGRATE_MAX_INFO     (64u << 10) /* SETUP's opaque info bytes */
#define MIGRATE_STATS_ROUNDS 64          /* max_rounds is capped below this */

enum migrate_msg {
	MIGRATE_MSG_SETUP = 1,
	MIGRATE_MSG_SETUP_OK,
	MIGRATE_MSG_PAGES,
	MIGRATE_MSG_STATE,
	MIGRATE_MSG_COMMIT,
	MIGRATE_MSG_READY,
	MIGRATE_MSG_GO,
	MIGRATE_MSG_RUNNING,
	MIGRATE_MSG_NOT_STARTED,
	MIGRATE_MSG_ERROR,
	MIGRATE_MSG_SYNC,
	MIGRATE_MSG_SYNC_OK,
};

/* One contiguous range of guest RAM. size and gpa are multiples of 4 KiB. */
struct migrate_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;   /* source: where to read it; destination: filled by prepare */
	/*
	 * Source: host is private anonymous memory (not gm_init_file's), so a
	 * page never touched (neither present nor swapped in
	 * /proc/self/pagemap) is zero and round 0 sends its marker without
	 * reading it. Leave false when unsure: every page is then read.
	 */
	bool anonymous;
};

/*
 * What the source engine needs from the VM. Every function gets the ctx of
 * struct migrate_source_vm. int functions return 0 or a negative errno with
 * err filled.
 */
struct migrate_source_ops {
	/* Start recording written pages (KVM dirty log and the VMM's own writes). */
	int (*dirty_start)(void *ctx, struct yun_err *err);
	/*
	 * OR into bitmap (bit i: page gpa + i * 4096 of region `region`, 64-bit
	 * words, least significant bit first, as KVM_GET_DIRTY_LOG) the pages
	 * written since dirty_start or the previous fetch of that region, and
	 * forget them. Must include pages written by device models, not only
	 * by vCPUs.
	 */
	int (*dirty_fetch)(void *ctx, int region, uint64_t *bitmap, struct yun_err *err);
	void (*dirty_stop)(void *ctx);
	/*
	 * Stop every vCPU and device that writes guest RAM (in-flight device
	 * I/O into guest RAM completed and marked); resume undoes it. A pause
	 * that fails must leave the VM running: the engine does not resume it.
	 */
	int (*pause)(void *ctx, struct yun_err *err);
	int (*resume)(void *ctx, struct yun_err *err);
	/* The paused VM's device and vCPU state as stream.h sections. */
	int (*save_state)(void *ctx, struct snap_writer *w, struct yun_err *err);
	/* Optional (NULL: no auto-converge): hold vCPUs back `percent` % of the time; 0 = off. */
	void (*throttle)(void *ctx, unsigned percent);
};

struct migrate_source_vm {
	const struct migrate_source_ops *ops;
	void *ctx;
	struct migrate_region region[MIGRATE_MAX_REGIONS];
	int nr_regions;
	const void *info;      /* optional bytes for the destination's prepare (e.g. config) */
	size_t info_len;       /* at most MIGRATE_MAX_INFO */
};

struct migrate_dest_ops {
	/*
	 * The source's RAM layout (host pointers NULL) and info bytes: check
	 * they fit this VM and fill region[i].host with where each region's
	 * bytes go (size bytes, writable; zero-filled or not, every page is
	 * written).
	 */
	int (*prepare)(void *ctx, struct migrate_region *region, int nr_regions,
		       const uint8_t *info, size_t info_len, struct yun_err *err);
	/* The state payload save_state produced. The guest must not run yet. */
	int (*load_state)(void *ctx, const uint8_t *state, size_t len, struct yun_err *err);
	/* Run the guest (only ever called after GO). */
	int (*start)(void *ctx, struct yun_err *err);
	/* Give up: never run this guest. Called at most once, after any step, instead of start. */
	void (*abort)(void *ctx);
};

struct migrate_dest_vm {
	const struct migrate_dest_ops *ops;
	void *ctx;
	/*
	 * prepare() returns RAM that reads as zero (fresh anonymous memory): a
	 * zero marker for a page not yet written is then skipped instead of
	 * checked, which would fault in every page of an idle guest.
	 */
	bool ram_zeroed;
};

struct migrate_params {
	const char *token;         /* the per-migration secret, both ends */
	unsigned downtime_ms;      /* 0: 50 */
	unsigned max_rounds;       /* dirty rounds after round 0 before forcing; 0: 30 */
	unsigned timeout_ms;       /* every network wait; 0: WIRE_TIMEOUT_MS */
	unsigned accept_ms;        /* destination: wait for an authenticated source; 0: 60000 */
	unsigned throttle_start;   /* 0: 20 (%) */
	unsigned throttle_step;    /* 0: 10 */
	unsigned throttle_max;     /* 0: 90 */
};

enum migrate_outcome {
	MIGRATE_FAILED = 0,  /* the guest is still here, running as before (see source_running) */
	MIGRATE_DONE,        /* the destination runs the guest: the source must exit */
	MIGRATE_UNKNOWN,     /* GO was sent, no answer: paused here, maybe running there */
};

struct migrate_stats {
	enum migrate_outcome outcome;
	bool source_running;       /* source: the guest runs here after the call */
	unsigned rounds;           /* rounds sent, round 0 and the stop-and-copy included */
	uint64_t round_pages[MIGRATE_STATS_ROUNDS]; /* pages per round; last: stop-and-copy */
	uint64_t pages;            /* page descriptors sent/received */
	uint64_t zero_pages;       /* of which zero markers */
	uint64_t bytes;            /* on the wire, both directions */
	uint64_t state_bytes;
	uint64_t final_pages;      /* sent while paused */
	double bandwidth_mib_s;    /* the estimate the last decision used */
	double total_ms;
	double downtime_ms;        /* pause -> RUNNING received */
	unsigned throttle;         /* highest throttle applied, % */
	bool forced;               /* stop-and-copy forced by max_rounds */
	unsigned rejected;         /* destination: connections refused at the handshake */
	bool running_unsent;       /* destination: runs, but RUNNING could not be sent */
};

/* Destination: bind the listener (call before reporting ready). Returns its fd. */
int migrate_listen(const char *addr, struct yun_err *err);

/*
 * Destination: accept one authenticated source on lfd (strangers are
 * dropped, up to accept_ms), receive the VM and hand over. 0 when the guest
 * runs here; otherwise ops->abort was called and err says why (exit non-zero).
 */
int migrate_dest(int lfd, const struct migrate_dest_vm *vm, const struct migrate_params *p,
		 struct migrate_stats *st, struct yun_err *err);

/*
 * Source: connect to addr, authenticate, migrate. 0 with MIGRATE_DONE; else
 * negative with st->outcome MIGRATE_FAILED or MIGRATE_UNKNOWN (see above).
 */
int migrate_source(const char *addr, const struct migrate_source_vm *vm,
		   const struct migrate_params *p, struct migrate_stats *st, struct yun_err *err);

/* The same on an authenticated session (tests, fuzzing). Both close nothing. */
int migrate_source_session(struct wire *w, const struct migrate_source_vm *vm,
			   const struct migrate_params *p, struct migrate_stats *st,
			   struct yun_err *err);
int migrate_dest_session(struct wire *w, const struct migrate_dest_vm *vm,
			 const struct migrate_params *p, struct migrate_stats *st,
			 struct yun_err *err);

const char *migrate_outcome_name(enum migrate_outcome o);

#endif
