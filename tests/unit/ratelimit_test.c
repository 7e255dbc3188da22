/*
 * ratelimit_test.c - the token buckets over simulated time: the configured
 * rate holds over long runs (with small and with over-sized requests),
 * the bucket starts full and refills, a one-time burst is spent once,
 * wait_ns says exactly when a request passes, both buckets must agree,
 * rate 0 is unlimited, and huge rates, requests and time jumps neither
 * overflow nor let anything through for free; run-time updates touch only
 * the bucket they name; Firecracker's token-bucket JSON converts to the
 * same bucket (size per refill_time) and bad fields are refused by name.
 */
#include <jansson.h>

#include "check.h"
#include "vmm/ratelimit.h"

#define MS 1000000ULL
#define S  1000000000ULL

/* Send `req`-byte requests as fast as allowed for `secs` seconds; returns bytes passed. */
static uint64_t run_bytes(struct ratelimit *rl, uint64_t req, uint64_t secs, uint64_t *now)
{
	uint64_t end = *now + secs * S, passed = 0;

	while (*now < end) {
		uint64_t w;

		if (ratelimit_consume(rl, req, 1, *now)) {
			passed += req;
			continue;
		}
		w = ratelimit_wait_ns(rl, req, 1, *now);
		CHECK(w > 0);
		if (!w)
			break;
		*now += w;
		/* wait_ns is exact: now it passes. */
		CHECK(ratelimit_consume(rl, req, 1, *now));
		passed += req;
	}
	return passed;
}

static void test_rate_holds(void)
{
	struct ratelimit_params bw = { .rate = 1 << 20 };
	struct ratelimit rl;
	uint64_t now = 5 * S, got;

	ratelimit_init(&rl, &bw, NULL, now);
	/* 100 s at 1 MiB/s in 4 KiB requests: 100 MiB plus the first bucket (100 ms). */
	got = run_bytes(&rl, 4096, 100, &now);
	CHECK(got >= 100ULL * (1 << 20));
	CHECK(got <= 100ULL * (1 << 20) + (1 << 20) / 10 + 2 * 4096);
}

static void test_ops_rate_holds(void)
{
	struct ratelimit_params ops = { .rate = 1000 };
	struct ratelimit rl;
	uint64_t now = 0, n = 0;

	ratelimit_init(&rl, NULL, &ops, now);
	for (; now < 10 * S; now += 10000) /* poll every 10 us for 10 s */
		while (ratelimit_consume(&rl, 1 << 20, 1, now))
			n++;
	CHECK(n >= 10000 && n <= 10000 + 100 + 1); /* rate * 10 s + one bucket */
}

static void test_oversized_requests(void)
{
	/* 1 MiB requests through a 100 KiB bucket: one passes when full, leaving debt. */
	struct ratelimit_params bw = { .rate = 1 << 20 };
	struct ratelimit rl;
	uint64_t now = 0, got;

	ratelimit_init(&rl, &bw, NULL, now);
	CHECK(ratelimit_consume(&rl, 1 << 20, 1, now));
	CHECK(!ratelimit_consume(&rl, 1, 1, now));
	/* The debt is 0.9 MiB: a full bucket again in 1 s. */
	CHECK_EQ(ratelimit_wait_ns(&rl, 1 << 20, 1, now), S);
	got = run_bytes(&rl, 1 << 20, 60, &now) + (1 << 20);
	CHECK(got >= 59ULL << 20 && got <= 61ULL << 20);
}

static void test_refill_and_wait(void)
{
	struct ratelimit_params bw = { .rate = 1000, .window_ms = 1000 }; /* size 1000 */
	struct ratelimit rl;

	ratelimit_init(&rl, &bw, NULL, 0);
	CHECK(ratelimit_consume(&rl, 1000, 0, 0)); /* starts full */
	CHECK(!ratelimit_consume(&rl, 1, 0, 0));
	CHECK_EQ(ratelimit_wait_ns(&rl, 1, 0, 0), MS);
	CHECK_EQ(ratelimit_wait_ns(&rl, 500, 0, 0), 500 * MS);
	CHECK(!ratelimit_consume(&rl, 1, 0, MS - 1));
	CHECK(ratelimit_consume(&rl, 1, 0, MS));
	/* Fractions of a token are not lost: 3 x 0.5 ms earn 1 token and a half. */
	CHECK(!ratelimit_consume(&rl, 1, 0, MS + MS / 2));
	CHECK(ratelimit_consume(&rl, 1, 0, 2 * MS));
	/* An idle bucket fills up to its size and no more. */
	CHECK(ratelimit_consume(&rl, 1000, 0, 3600 * S));
	CHECK(!ratelimit_consume(&rl, 1, 0, 3600 * S));
	/* Time going backwards earns nothing. */
	CHECK(!ratelimit_consume(&rl, 1, 0, 10 * S));
	CHECK(ratelimit_consume(&rl, 1, 0, 3600 * S + MS));
}

static void test_burst(void)
{
	struct ratelimit_params bw = { .rate = 1000, .burst = 5000, .window_ms = 1000 };
	struct ratelimit rl;

	ratelimit_init(&rl, &bw, NULL, 0);
	CHECK(ratelimit_consume(&rl, 5000, 0, 0));  /* the burst */
	CHECK(ratelimit_consume(&rl, 1000, 0, 0));  /* the bucket */
	CHECK(!ratelimit_consume(&rl, 1, 0, 0));
	/* Spent for good: a second later only the bucket's 1000 are there. */
	CHECK(ratelimit_consume(&rl, 1000, 0, S));
	CHECK(!ratelimit_consume(&rl, 1, 0, S));
	/* Burst and bucket add up for one request. */
	ratelimit_init(&rl, &bw, NULL, 0);
	CHECK(ratelimit_consume(&rl, 5500, 0, 0));
	CHECK(ratelimit_consume(&rl, 500, 0, 0));
	CHECK(!ratelimit_consume(&rl, 1, 0, 0));
}

static void test_both_buckets(void)
{
	struct ratelimit_params bw = { .rate = 1000, .window_ms = 1000 };
	struct ratelimit_params ops = { .rate = 2, .window_ms = 1000 };
	struct ratelimit rl;

	ratelimit_init(&rl, &bw, &ops, 0);
	CHECK(ratelimit_enabled(&rl));
	CHECK(ratelimit_consume(&rl, 100, 1, 0));
	CHECK(ratelimit_consume(&rl, 100, 1, 0));
	/* Out of ops: refused, and the bytes are not charged either. */
	CHECK(!ratelimit_consume(&rl, 100, 1, 0));
	CHECK_EQ(ratelimit_wait_ns(&rl, 100, 1, 0), S / 2);
	CHECK(ratelimit_consume(&rl, 800, 1, S / 2));
	/* Both short: 200 bytes left (600 in 400 ms), no op left (one in 500 ms). */
	CHECK_EQ(ratelimit_wait_ns(&rl, 600, 0, S / 2), 400 * MS);
	CHECK_EQ(ratelimit_wait_ns(&rl, 600, 1, S / 2), 500 * MS);
	/* charge() takes whatever is asked, into debt. */
	ratelimit_charge(&rl, 1500, 1, S / 2);
	CHECK_EQ(ratelimit_wait_ns(&rl, 1, 0, S / 2), 1301 * MS); /* from -1300 to 1 */
}

static void test_slow_ops(void)
{
	/* 5 ops/s: the 100 ms bucket would hold half an op; it holds one. */
	struct ratelimit_params ops = { .rate = 5 };
	struct ratelimit rl;

	ratelimit_init(&rl, NULL, &ops, 0);
	CHECK(ratelimit_consume(&rl, 0, 1, 0));
	CHECK(!ratelimit_consume(&rl, 0, 1, 0));
	CHECK_EQ(ratelimit_wait_ns(&rl, 0, 1, 0), 200 * MS);
}

static void test_unlimited(void)
{
	struct ratelimit_params none = { 0 };
	struct ratelimit rl;

	ratelimit_init(&rl, &none, NULL, 0);
	CHECK(!ratelimit_enabled(&rl));
	for (int i = 0; i < 1000; i++)
		CHECK(ratelimit_consume(&rl, UINT64_MAX, UINT64_MAX, 0));
	ratelimit_charge(&rl, UINT64_MAX, UINT64_MAX, 0);
	CHECK_EQ(ratelimit_wait_ns(&rl, UINT64_MAX, UINT64_MAX, 0), 0);
}

static void test_huge_values(void)
{
	struct ratelimit_params max = { .rate = UINT64_MAX, .burst = UINT64_MAX,
					.window_ms = UINT32_MAX };
	struct ratelimit_params one = { .rate = 1 };
	struct ratelimit rl;

	/* The largest rate, window and burst: sizes saturate, nothing wraps. */
	ratelimit_init(&rl, &max, &max, UINT64_MAX - S);
	CHECK(ratelimit_consume(&rl, UINT64_MAX, UINT64_MAX, UINT64_MAX - S));
	CHECK(ratelimit_consume(&rl, UINT64_MAX, 1, UINT64_MAX));
	ratelimit_charge(&rl, UINT64_MAX, UINT64_MAX, UINT64_MAX);
	CHECK(ratelimit_wait_ns(&rl, UINT64_MAX, 1, UINT64_MAX) < 10 * S);

	/* 1 byte/s and a request of 2^64 - 1 bytes: it passes once, then a very long wait. */
	ratelimit_init(&rl, &one, NULL, 0);
	CHECK(ratelimit_consume(&rl, UINT64_MAX, 0, 0));
	CHECK(!ratelimit_consume(&rl, 1, 0, 0));
	CHECK_EQ(ratelimit_wait_ns(&rl, 1, 0, 0), UINT64_MAX); /* saturated, not wrapped */
	CHECK(!ratelimit_consume(&rl, 1, 0, UINT64_MAX - 1));
	ratelimit_charge(&rl, UINT64_MAX, 0, 0);
	CHECK(!ratelimit_consume(&rl, 1, 0, UINT64_MAX));

	/* A jump from 0 to the end of time at the largest rate. */
	ratelimit_init(&rl, &(struct ratelimit_params){ .rate = UINT64_MAX }, NULL, 0);
	ratelimit_charge(&rl, UINT64_MAX, 0, 0);
	ratelimit_charge(&rl, UINT64_MAX, 0, 0);
	CHECK(ratelimit_consume(&rl, 1, 0, UINT64_MAX));
}

static void test_update(void)
{
	struct ratelimit rl;
	struct ratelimit_update u = { .set_bytes = true, .bytes = { .rate = 1000 } };

	ratelimit_init(&rl, NULL, &(struct ratelimit_params){ .rate = 10 }, 0);
	CHECK(ratelimit_consume(&rl, 0, 1, 0)); /* ops bucket: 1 token, now spent */
	ratelimit_update(&rl, &u, 5 * MS);
	/* bytes limited now (full: 100), ops untouched (still empty). */
	CHECK_EQ(rl.bytes.rate, 1000);
	CHECK_EQ(rl.bytes.tokens, 100);
	CHECK_EQ(rl.ops.tokens, 0);
	CHECK(!ratelimit_consume(&rl, 1, 1, 5 * MS));
	CHECK(ratelimit_consume(&rl, 100, 0, 5 * MS));
	CHECK(!ratelimit_consume(&rl, 1, 0, 5 * MS));
	/* Lifted (rate 0): everything passes, the other bucket still counts. */
	u.bytes.rate = 0;
	ratelimit_update(&rl, &u, 6 * MS);
	CHECK(ratelimit_consume(&rl, 1 << 30, 0, 6 * MS));
	CHECK(ratelimit_enabled(&rl));
	u = (struct ratelimit_update){ .set_ops = true };
	ratelimit_update(&rl, &u, 6 * MS);
	CHECK(!ratelimit_enabled(&rl));
}

static void test_firecracker_bucket(void)
{
	struct ratelimit_params p;
	struct yun_err err = { 0 };
	struct ratelimit rl;

	/* 1 MiB per 100 ms: 10 MiB/s, a bucket of exactly 1 MiB, the burst on top. */
	CHECK_EQ(ratelimit_params_from_bucket(1 << 20, 4096, 100, "bw", &p, &err), 0);
	CHECK_EQ(p.rate, 10 << 20);
	CHECK_EQ(p.window_ms, 100);
	CHECK_EQ(p.burst, 4096);
	ratelimit_init(&rl, &p, NULL, 0);
	CHECK_EQ(rl.bytes.size, 1 << 20);
	/* 1000 ops per second in a one-second bucket. */
	CHECK_EQ(ratelimit_params_from_bucket(1000, 0, 1000, "ops", &p, &err), 0);
	CHECK_EQ(p.rate, 1000);
	ratelimit_init(&rl, NULL, &p, 0);
	CHECK_EQ(rl.ops.size, 1000);
	/* Rounding up: 1000 per 3 ms holds at least 1000. */
	CHECK_EQ(ratelimit_params_from_bucket(1000, 0, 3, "x", &p, &err), 0);
	CHECK_EQ(p.rate, 333334);
	ratelimit_init(&rl, &p, NULL, 0);
	CHECK(rl.bytes.size >= 1000);
	/* Size or refill_time 0: no limit (as Firecracker). */
	CHECK_EQ(ratelimit_params_from_bucket(0, 5, 100, "x", &p, &err), 0);
	CHECK_EQ(p.rate, 0);
	CHECK_EQ(ratelimit_params_from_bucket(100, 5, 0, "x", &p, &err), 0);
	CHECK_EQ(p.rate, 0);
	/* Out of range, named. */
	CHECK(ratelimit_params_from_bucket(1, 0, 10000, "rx_rate_limiter.ops", &p, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "rx_rate_limiter.ops: size 1 per refill_time 10000 ms");
	CHECK_STR_CONTAINS(err.msg, "below 1 per second");
	CHECK(ratelimit_params_from_bucket(1, 0, 86400001, "b", &p, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "b.refill_time: must be at most 86400000 ms");
	CHECK(ratelimit_params_from_bucket(UINT64_MAX / 2, 0, 1, "b", &p, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "above 2^64-1 per second");
}

/* Parse `text` as the limiter named "tx_rate_limiter"; returns the rc, err filled. */
static int from_json(const char *text, struct ratelimit_update *u, struct yun_err *err)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	int rc;

	CHECK(j != NULL);
	if (!j)
		return -1;
	rc = ratelimit_update_from_json(j, "tx_rate_limiter", u, err);
	json_decref(j);
	return rc;
}

static void expect_json_error(const char *text, const char *want)
{
	struct ratelimit_update u;
	struct yun_err err = { 0 };

	CHECK(from_json(text, &u, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, want);
	CHECK(!u.set_bytes && !u.set_ops);
}

static void test_firecracker_json(void)
{
	struct ratelimit_update u;
	struct yun_err err = { 0 };

	CHECK_EQ(from_json("{\"bandwidth\": {\"size\": 1048576, \"refill_time\": 100, "
			   "\"one_time_burst\": 8192}, "
			   "\"ops\": {\"size\": 50, \"refill_time\": 1000}}",
			   &u, &err), 0);
	CHECK(u.set_bytes && u.set_ops);
	CHECK_EQ(u.bytes.rate, 10 << 20);
	CHECK_EQ(u.bytes.burst, 8192);
	CHECK_EQ(u.ops.rate, 50);
	CHECK_EQ(u.ops.window_ms, 1000);
	/* A PATCH naming only ops keeps bandwidth; an empty limiter changes nothing. */
	CHECK_EQ(from_json("{\"ops\": {\"size\": 10, \"refill_time\": 100}}", &u, &err), 0);
	CHECK(!u.set_bytes && u.set_ops);
	CHECK_EQ(u.ops.rate, 100);
	CHECK_EQ(from_json("{}", &u, &err), 0);
	CHECK(!u.set_bytes && !u.set_ops);
	/* size 0: that bucket is set, unlimited. */
	CHECK_EQ(from_json("{\"bandwidth\": {\"size\": 0, \"refill_time\": 100}}", &u, &err), 0);
	CHECK(u.set_bytes && !u.bytes.rate);

	expect_json_error("[]", "tx_rate_limiter: must be an object");
	expect_json_error("{\"bandwith\": {}}", "tx_rate_limiter: unknown field \"bandwith\"");
	expect_json_error("{\"ops\": 5}", "tx_rate_limiter.ops: must be an object");
	expect_json_error("{\"ops\": {\"size\": 5}}", "tx_rate_limiter.ops.refill_time: missing");
	expect_json_error("{\"ops\": {\"refill_time\": 5}}", "tx_rate_limiter.ops.size: missing");
	expect_json_error("{\"bandwidth\": {\"size\": -1, \"refill_time\": 100}}",
			  "tx_rate_limiter.bandwidth.size: must be a non-negative integer");
	expect_json_error("{\"bandwidth\": {\"size\": 1.5, \"refill_time\": 100}}",
			  "tx_rate_limiter.bandwidth.size: must be a non-negative integer");
	expect_json_error("{\"bandwidth\": {\"size\": \"1M\", \"refill_time\": 100}}",
			  "tx_rate_limiter.bandwidth.size: must be a non-negative integer");
	expect_json_error("{\"bandwidth\": {\"size\": 1, \"refill_time\": 100, "
			  "\"one_time_burst\": -5}}",
			  "tx_rate_limiter.bandwidth.one_time_burst: must be a non-negative");
	expect_json_error("{\"bandwidth\": {\"size\": 1, \"refill_time\": 100, \"burst\": 5}}",
			  "tx_rate_limiter.bandwidth: unknown field \"burst\"");
	expect_json_error("{\"ops\": {\"size\": 1, \"refill_time\": 5000}}",
			  "tx_rate_limiter.ops: size 1 per refill_time 5000 ms is below 1 per");
	/* A good bucket beside a bad one: nothing is set. */
	expect_json_error("{\"bandwidth\": {\"size\": 1, \"refill_time\": 1}, \"ops\": {\"size\": "
			  "1, \"refill_time\": 99999999999}}",
			  "tx_rate_limiter.ops.refill_time: must be at most");
}

int main(void)
{
	RUN(test_rate_holds);
	RUN(test_ops_rate_holds);
	RUN(test_oversized_requests);
	RUN(test_refill_and_wait);
	RUN(test_burst);
	RUN(test_both_buckets);
	RUN(test_slow_ops);
	RUN(test_unlimited);
	RUN(test_huge_values);
	RUN(test_update);
	RUN(test_firecracker_bucket);
	RUN(test_firecracker_json);
	return CHECK_DONE();
}
