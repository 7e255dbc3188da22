/* ratelimit.c - token buckets; see ratelimit.h. */
#include "ratelimit.h"

typedef __int128 i128;
typedef unsigned __int128 u128;

/* Saturate to what a bucket can hold, debt included. */
static int64_t clamp64(i128 v)
{
	if (v > INT64_MAX)
		return INT64_MAX;
	if (v < -INT64_MAX)
		return -INT64_MAX;
	return (int64_t)v;
}

static void bucket_init(struct ratelimit_bucket *b, const struct ratelimit_params *p,
			uint64_t now_ns)
{
	u128 size;

	*b = (struct ratelimit_bucket){ .last_ns = now_ns };
	if (!p || !p->rate)
		return;
	size = (u128)p->rate * (p->window_ms ? p->window_ms : RATELIMIT_WINDOW_MS) / 1000;
	b->rate = p->rate;
	b->size = size ? clamp64((i128)size) : 1; /* a slow rate still lets one op through */
	b->tokens = b->size;
	b->burst = p->burst;
}

/* Add what the time since the last refill earned, up to the bucket's size. */
static void bucket_refill(struct ratelimit_bucket *b, uint64_t now_ns)
{
	u128 earned, whole;

	if (!b->rate || now_ns <= b->last_ns)
		return;
	earned = (u128)(now_ns - b->last_ns) * b->rate + b->frac; /* < 2^128: no overflow */
	b->last_ns = now_ns;
	whole = earned / RATELIMIT_NS;
	if (b->tokens >= b->size || whole >= (u128)((i128)b->size - b->tokens)) {
		b->tokens = b->size; /* a full bucket earns nothing more */
		b->frac = 0;
		return;
	}
	b->tokens += (int64_t)whole; /* stays below size */
	b->frac = (uint64_t)(earned % RATELIMIT_NS);
}

static bool bucket_can_take(const struct ratelimit_bucket *b, uint64_t n)
{
	u128 need;

	if (!b->rate || n <= b->burst)
		return true;
	need = n - b->burst;
	if (b->tokens >= 0 && need <= (u128)b->tokens)
		return true;
	/* More than the bucket holds: pass when it is full, leaving a debt. */
	return need > (u128)b->size && b->tokens >= b->size;
}

static void bucket_take(struct ratelimit_bucket *b, uint64_t n)
{
	uint64_t from_burst;

	if (!b->rate)
		return;
	from_burst = n < b->burst ? n : b->burst;
	b->burst -= from_burst;
	n -= from_burst;
	b->tokens = clamp64((i128)b->tokens - (i128)n);
}

static uint64_t bucket_wait_ns(const struct ratelimit_bucket *b, uint64_t n)
{
	u128 need, deficit, ns;

	if (bucket_can_take(b, n))
		return 0;
	need = n - b->burst;
	if (need > (u128)b->size)
		need = (u128)b->size; /* wait for a full bucket */
	deficit = (u128)((i128)need - b->tokens); /* > 0: tokens < need */
	/* Smallest t with t * rate + frac >= deficit * 1e9 (see bucket_refill). */
	ns = (deficit * RATELIMIT_NS - b->frac + b->rate - 1) / b->rate;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

void ratelimit_init(struct ratelimit *rl, const struct ratelimit_params *bytes,
		    const struct ratelimit_params *ops, uint64_t now_ns)
{
	bucket_init(&rl->bytes, bytes, now_ns);
	bucket_init(&rl->ops, ops, now_ns);
}

bool ratelimit_enabled(const struct ratelimit *rl)
{
	return rl->bytes.rate || rl->ops.rate;
}

bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns)
{
	bucket_refill(&rl->bytes, now_ns);
	bucket_refill(&rl->ops, now_ns);
	if (!bucket_can_take(&rl->bytes, bytes) || !bucket_can_take(&rl->ops, ops))
		return false;
	bucket_take(&rl->bytes, bytes);
	bucket_take(&rl->ops, ops);
	return true;
}

void ratelimit_charge(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns)
{
	bucket_refill(&rl->bytes, now_ns);
	bucket_refill(&rl->ops, now_ns);
	bucket_take(&rl->bytes, bytes);
	bucket_take(&rl->ops, ops);
}

uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns)
{
	uint64_t a, b;

	bucket_refill(&rl->bytes, now_ns);
	bucket_refill(&rl->ops, now_ns);
	a = bucket_wait_ns(&rl->bytes, bytes);
	b = bucket_wait_ns(&rl->ops, ops);
	return a > b ? a : b;
}
