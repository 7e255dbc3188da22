/* ratelimit.c - token buckets; see ratelimit.h. */
#include "ratelimit.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

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

void ratelimit_update(struct ratelimit *rl, const struct ratelimit_update *u, uint64_t now_ns)
{
	if (u->set_bytes)
		bucket_init(&rl->bytes, &u->bytes, now_ns);
	if (u->set_ops)
		bucket_init(&rl->ops, &u->ops, now_ns);
}

/* ---- Firecracker's token buckets ------------------------------------------------- */

#define BUCKET_MAX_REFILL_MS 86400000u /* one day */

int ratelimit_params_from_bucket(uint64_t size, uint64_t one_time_burst, uint64_t refill_time_ms,
				 const char *field, struct ratelimit_params *out,
				 struct yun_err *err)
{
	u128 rate;

	*out = (struct ratelimit_params){ 0 };
	if (refill_time_ms > BUCKET_MAX_REFILL_MS)
		return yun_err_set(err, ERANGE, "%s.refill_time: must be at most %u ms (one day)",
				   field, BUCKET_MAX_REFILL_MS);
	if (!size || !refill_time_ms)
		return 0; /* Firecracker: no bucket, no limit */
	if ((u128)size * 1000 < refill_time_ms)
		return yun_err_set(err, ERANGE,
				   "%s: size %llu per refill_time %llu ms is below 1 per second "
				   "(the slowest rate)",
				   field, (unsigned long long)size,
				   (unsigned long long)refill_time_ms);
	rate = ((u128)size * 1000 + refill_time_ms - 1) / refill_time_ms;
	if (rate > UINT64_MAX)
		return yun_err_set(err, ERANGE, "%s: size %llu per refill_time %llu ms is above "
				   "2^64-1 per second",
				   field, (unsigned long long)size,
				   (unsigned long long)refill_time_ms);
	out->rate = (uint64_t)rate;
	out->burst = one_time_burst;
	out->window_ms = (uint32_t)refill_time_ms;
	return 0;
}

/* A non-negative integer member `key` of obj (absent: *v = 0 unless required). */
static int json_count(const json_t *obj, const char *key, bool required, const char *field,
		      const char *bucket, uint64_t *v, struct yun_err *err)
{
	json_t *m = json_object_get(obj, key);

	*v = 0;
	if (!m) {
		if (required)
			return yun_err_set(err, EINVAL, "%s.%s.%s: missing", field, bucket, key);
		return 0;
	}
	if (!json_is_integer(m) || json_integer_value(m) < 0)
		return yun_err_set(err, EINVAL, "%s.%s.%s: must be a non-negative integer", field,
				   bucket, key);
	*v = (uint64_t)json_integer_value(m);
	return 0;
}

static int bucket_from_json(const json_t *b, const char *field, const char *bucket,
			    struct ratelimit_params *out, struct yun_err *err)
{
	uint64_t size, burst, refill;
	char name[128];
	const char *key;
	json_t *v;
	int rc;

	if (!json_is_object(b))
		return yun_err_set(err, EINVAL, "%s.%s: must be an object", field, bucket);
	json_object_foreach((json_t *)b, key, v) {
		if (strcmp(key, "size") && strcmp(key, "refill_time") &&
		    strcmp(key, "one_time_burst"))
			return yun_err_set(err, EINVAL, "%s.%s: unknown field \"%s\"", field, bucket,
					   key);
	}
	rc = json_count(b, "size", true, field, bucket, &size, err);
	if (!rc)
		rc = json_count(b, "refill_time", true, field, bucket, &refill, err);
	if (!rc)
		rc = json_count(b, "one_time_burst", false, field, bucket, &burst, err);
	if (rc)
		return rc;
	snprintf(name, sizeof(name), "%s.%s", field, bucket);
	return ratelimit_params_from_bucket(size, burst, refill, name, out, err);
}

int ratelimit_update_from_json(const struct json_t *limiter, const char *field,
			       struct ratelimit_update *u, struct yun_err *err)
{
	const json_t *obj = (const json_t *)limiter;
	json_t *bw, *ops, *v;
	const char *key;
	int rc = 0;

	*u = (struct ratelimit_update){ 0 };
	if (!json_is_object(obj))
		return yun_err_set(err, EINVAL, "%s: must be an object", field);
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "bandwidth") && strcmp(key, "ops"))
			return yun_err_set(err, EINVAL, "%s: unknown field \"%s\"", field, key);
	}
	bw = json_object_get(obj, "bandwidth");
	ops = json_object_get(obj, "ops");
	if (bw) {
		rc = bucket_from_json(bw, field, "bandwidth", &u->bytes, err);
		u->set_bytes = !rc;
	}
	if (!rc && ops) {
		rc = bucket_from_json(ops, field, "ops", &u->ops, err);
		u->set_ops = !rc;
	}
	if (rc)
		*u = (struct ratelimit_update){ 0 };
	return rc;
}
