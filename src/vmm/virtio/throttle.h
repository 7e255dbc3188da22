/*
 * throttle.h - a rate limiter (ratelimit.h) made into a device queue's
 * brake: the limiter plus the timerfd that wakes the queue when the
 * buckets have refilled.
 *
 * A device asks throttle_blocked() before it pops a request. While the
 * buckets are out of debt the answer is no, and the device charges the
 * request's cost once it knows it (throttle_charge). When a bucket is dry
 * the answer is yes: the timer is armed for the time the bucket needs and
 * every later call says yes until throttle_fired() (the timer fd became
 * readable, on the I/O thread) lets the device pop again. No busy loop:
 * the queue sleeps in epoll like any other fd.
 *
 * The timerfd is made at init even without limits, so the fd the VM
 * watches from the start also serves limits set later at run time
 * (throttle_update); unlimited, it is never armed and throttle_blocked()
 * is false without reading the clock. Used under the device's lock.
 */
#ifndef YUN_VMM_VIRTIO_THROTTLE_H
#define YUN_VMM_VIRTIO_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../ratelimit.h"

struct throttle {
	struct ratelimit rl;
	int timer_fd;       /* timerfd (CLOCK_MONOTONIC), -1 when unlimited */
	bool waiting;       /* armed: pop nothing until it fires */
	uint64_t stalls;    /* times a bucket ran dry (statistics) */
};

/* bytes_rate bytes/s and ops_rate ops/s (0: unlimited); `what` names the device in errors. */
int throttle_init(struct throttle *t, uint64_t bytes_rate, uint64_t ops_rate, const char *what,
		  struct yun_err *err);
void throttle_close(struct throttle *t);

/* The fd to watch (readable when the wait is over), -1 only before init. */
int throttle_fd(const struct throttle *t);

/* Must the device stop popping? Arms the timer when a bucket just ran dry. */
bool throttle_blocked(struct throttle *t);

/* A request of `bytes` bytes and `ops` operations went through. */
void throttle_charge(struct throttle *t, uint64_t bytes, uint64_t ops);

/* The timer fd is readable: consume the expiry, stop waiting. */
void throttle_fired(struct throttle *t);

/* Forget a wait in progress (device reset): disarm the timer. */
void throttle_cancel(struct throttle *t);

/*
 * Change the limits at run time (device lock held): the buckets u sets
 * start full, the others stay as they are. A queue waiting for the timer
 * is woken at once (the timer is re-armed to fire now), so the I/O thread
 * re-checks it against the new limits: lifting a limit frees a stalled
 * queue, and a new limit takes effect from the next request.
 */
void throttle_update(struct throttle *t, const struct ratelimit_update *u);

/* Is either bucket limited? */
bool throttle_enabled(const struct throttle *t);

/* CLOCK_MONOTONIC in nanoseconds: the clock the timers run on. */
uint64_t throttle_now_ns(void);

#endif
