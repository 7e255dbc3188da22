/* throttle.c - a rate limiter with a timerfd; see throttle.h. */
#include "throttle.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/log.h"

uint64_t throttle_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for this clock */
	return (uint64_t)ts.tv_sec * RATELIMIT_NS + (uint64_t)ts.tv_nsec;
}

int throttle_init(struct throttle *t, uint64_t bytes_rate, uint64_t ops_rate, const char *what,
		  struct yun_err *err)
{
	struct ratelimit_params bytes = { .rate = bytes_rate }, ops = { .rate = ops_rate };

	ratelimit_init(&t->rl, &bytes, &ops, throttle_now_ns());
	t->timer_fd = -1;
	t->waiting = false;
	t->stalls = 0;
	t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->timer_fd < 0)
		return yun_err_errno(err, errno, "%s: rate limiter timerfd", what);
	return 0;
}

void throttle_close(struct throttle *t)
{
	if (t->timer_fd >= 0)
		close(t->timer_fd);
	t->timer_fd = -1;
	t->waiting = false;
}

int throttle_fd(const struct throttle *t)
{
	return t->timer_fd;
}

static int arm(struct throttle *t, uint64_t ns)
{
	struct itimerspec its = { 0 };

	if (ns > 3600 * RATELIMIT_NS)
		ns = 3600 * RATELIMIT_NS; /* re-checked when it fires */
	its.it_value.tv_sec = (time_t)(ns / RATELIMIT_NS);
	its.it_value.tv_nsec = (long)(ns % RATELIMIT_NS);
	if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
		its.it_value.tv_nsec = 1; /* all zero would disarm */
	return timerfd_settime(t->timer_fd, 0, &its, NULL);
}

bool throttle_blocked(struct throttle *t)
{
	uint64_t wait;

	if (t->timer_fd < 0)
		return false;
	if (t->waiting)
		return true;
	if (!ratelimit_enabled(&t->rl))
		return false;
	/* One token of each kind: the request's real cost is charged once known. */
	wait = ratelimit_wait_ns(&t->rl, 1, 1, throttle_now_ns());
	if (!wait)
		return false;
	if (arm(t, wait) < 0) {
		/* Cannot happen with a valid timerfd; better unlimited than stuck. */
		yun_warn("rate limiter: timerfd_settime: %s", strerror(errno));
		return false;
	}
	t->waiting = true;
	t->stalls++;
	return true;
}

void throttle_charge(struct throttle *t, uint64_t bytes, uint64_t ops)
{
	if (t->timer_fd >= 0 && ratelimit_enabled(&t->rl))
		ratelimit_charge(&t->rl, bytes, ops, throttle_now_ns());
}

void throttle_fired(struct throttle *t)
{
	uint64_t n;

	if (t->timer_fd >= 0 && read(t->timer_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		yun_debug("rate limiter: timerfd read: %s", strerror(errno));
	t->waiting = false;
}

void throttle_cancel(struct throttle *t)
{
	struct itimerspec off = { 0 };

	if (t->timer_fd >= 0 && t->waiting && timerfd_settime(t->timer_fd, 0, &off, NULL) < 0)
		yun_debug("rate limiter: timerfd disarm: %s", strerror(errno));
	throttle_fired(t); /* and drop an expiry that came meanwhile */
}

/* ---- run-time changes ---------------------------------------------------------- */

bool throttle_enabled(const struct throttle *t)
{
	return ratelimit_enabled(&t->rl);
}

void throttle_update(struct throttle *t, const struct ratelimit_update *u)
{
	ratelimit_update(&t->rl, u, throttle_now_ns());
	/* A stalled queue re-checks now, on the I/O thread, through its timer. */
	if (t->waiting && t->timer_fd >= 0 && arm(t, 0) < 0)
		yun_warn("rate limiter: timerfd_settime: %s", strerror(errno));
}
