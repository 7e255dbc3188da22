/*
 * ratelimit.h - token-bucket rate limiters for device I/O, after
 * Firecracker's rate_limiter: one bucket for bandwidth (bytes/s) and one
 * for operations (requests or frames per second), either or both.
 *
 * A bucket with rate R holds at most size = R * refill window tokens
 * (RATELIMIT_WINDOW_MS unless told otherwise; at least one token) and
 * refills continuously at R per second; it starts full. An optional
 * one-time burst is spent before the bucket and never refills (a guest
 * that boots from a disk gets it fast once). Rate 0 means unlimited.
 *
 * A request larger than the bucket could never pass a plain check, so one
 * passes when the bucket is full and leaves it in debt: the long-run rate
 * holds either way (Firecracker's "over-consumption").
 *
 * Time is the caller's, in nanoseconds (CLOCK_MONOTONIC in the devices, a
 * counter in tests): the module never reads a clock, allocates or sleeps,
 * so a test can replay hours of traffic in microseconds. All arithmetic is
 * done in 128 bits and saturates: huge rates, sizes or time jumps do not
 * overflow. Time going backwards counts as no time.
 *
 * Not thread-safe: each limiter belongs to one device and is used under
 * its lock.
 */
#ifndef YUN_VMM_RATELIMIT_H
#define YUN_VMM_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/err.h"

#define RATELIMIT_WINDOW_MS 100 /* refill window: the bucket holds 100 ms of traffic */
#define RATELIMIT_NS        1000000000ULL

struct ratelimit_bucket {
	uint64_t rate;       /* tokens per second; 0: unlimited */
	int64_t size;        /* capacity, >= 1 when limited */
	int64_t tokens;      /* may be negative: debt left by a request larger than the bucket */
	uint64_t burst;      /* one-time tokens left */
	uint64_t frac;       /* refill remainder, in token-nanoseconds (< RATELIMIT_NS) */
	uint64_t last_ns;    /* time of the last refill */
};

struct ratelimit {
	struct ratelimit_bucket bytes, ops;
};

/* What one bucket is configured with. */
struct ratelimit_params {
	uint64_t rate;       /* per second; 0: unlimited */
	uint64_t burst;      /* one-time extra tokens, 0: none */
	uint32_t window_ms;  /* refill window (bucket size = rate * window), 0: the default */
};

/* A run-time change to a limiter: each bucket set anew (full) or kept as it is. */
struct ratelimit_update {
	bool set_bytes, set_ops;
	struct ratelimit_params bytes, ops;
};

/* Set both buckets up (full) at time now_ns. */
void ratelimit_init(struct ratelimit *rl, const struct ratelimit_params *bytes,
		    const struct ratelimit_params *ops, uint64_t now_ns);

/* Is either bucket limited? (An unlimited limiter is never worth a timer.) */
bool ratelimit_enabled(const struct ratelimit *rl);

/*
 * Take `bytes` and `ops` tokens at time now_ns if both buckets have them
 * (or are full when asked for more than they hold): true, and both are
 * charged; false, and neither is.
 */
bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns);

/*
 * Charge a cost known only afterwards (a frame's length once it was read),
 * whatever the buckets hold: they may go into debt, which delays later
 * requests by as much.
 */
void ratelimit_charge(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns);

/*
 * How long from now_ns until ratelimit_consume(rl, bytes, ops, ...) would
 * succeed, if nothing else is consumed meanwhile; 0: it would now.
 */
uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns);

/* Apply u at now_ns: the buckets it sets start full, the others are untouched. */
void ratelimit_update(struct ratelimit *rl, const struct ratelimit_update *u, uint64_t now_ns);

/*
 * Firecracker's token bucket, as its API takes it ("bandwidth" or "ops" of
 * a rate limiter): `size` tokens (bytes or operations) refilled every
 * `refill_time` ms, plus an optional `one_time_burst`. Size or refill_time
 * 0 means no limit. Our bucket is the same shape: rate = size * 1000 /
 * refill_time per second (rounded up, so the bucket holds at least `size`),
 * window = refill_time, burst = one_time_burst. Errors name the field:
 * "<field>.refill_time: must be at most 86400000 ms (one day)",
 * "<field>: size 1 per refill_time 10000 ms is below 1 per second (the slowest rate)".
 */
int ratelimit_params_from_bucket(uint64_t size, uint64_t one_time_burst, uint64_t refill_time_ms,
				 const char *field, struct ratelimit_params *out,
				 struct yun_err *err);

/*
 * The same from the JSON: `limiter` is Firecracker's RateLimiter object
 * {"bandwidth": {"size", "refill_time", "one_time_burst"?}?, "ops": {...}?}
 * named `field` in errors ("rx_rate_limiter"); a bucket that is there is set
 * (u->set_bytes / set_ops), one that is not is kept (a PATCH changes only
 * what it names). Unknown keys, wrong types, negative or fractional numbers
 * are errors: "rx_rate_limiter.ops.size: must be a non-negative integer".
 * Pure: reads the object only.
 */
struct json_t;
int ratelimit_update_from_json(const struct json_t *limiter, const char *field,
			       struct ratelimit_update *u, struct yun_err *err);

#endif
