/*
 * ratelimit_fuzz.c - libFuzzer target for Firecracker's rate-limiter JSON
 * as the control API hands it over (PATCH /drives/{id} "rate_limiter",
 * PATCH /network-interfaces/{id} "rx_rate_limiter"/"tx_rate_limiter"):
 * ratelimit_update_from_json. A refused body must leave the update empty
 * and say which field; an accepted one must give buckets the token bucket
 * then runs on (init, consume, wait) without overflow or a sanitizer
 * report. A crash or a broken invariant is a bug.
 *
 * FUZZ_SOURCES: src/vmm/ratelimit.c src/lib/err.c
 * FUZZ_LIBS: -ljansson
 *
 * Built with -DFUZZ_WRITE_SEEDS (and without -fsanitize=fuzzer) this file is
 * instead a program that writes a seed corpus into the directory given as
 * its argument.
 */
#include "vmm/ratelimit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* abort() is what libFuzzer reports as a crash. */
#define INVARIANT(cond)                                                                    \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "ratelimit_fuzz: invariant broken: %s\n", #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

#ifndef FUZZ_WRITE_SEEDS

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ratelimit_update u;
	struct yun_err err = { 0 };
	struct ratelimit rl;
	json_error_t je;
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
	int rc;

	if (!j)
		return 0;
	rc = ratelimit_update_from_json(j, "rx_rate_limiter", &u, &err);
	json_decref(j);
	if (rc) {
		INVARIANT(rc < 0 && err.code > 0);
		INVARIANT(!strncmp(err.msg, "rx_rate_limiter", 15));
		INVARIANT(!u.set_bytes && !u.set_ops);
		return 0;
	}
	INVARIANT(!u.bytes.rate || u.bytes.window_ms);
	INVARIANT(!u.ops.rate || u.ops.window_ms);
	ratelimit_init(&rl, NULL, NULL, 0);
	ratelimit_update(&rl, &u, 1);
	INVARIANT(!u.set_bytes || rl.bytes.rate == u.bytes.rate);
	for (uint64_t t = 0, n = 1; t < 5; t++, n *= 1000) {
		uint64_t now = t * 100000000ULL;

		if (!ratelimit_consume(&rl, n, 1, now))
			INVARIANT(ratelimit_wait_ns(&rl, n, 1, now) > 0);
	}
	return 0;
}

#else /* FUZZ_WRITE_SEEDS */

#include "seed_text.h"

static const char *const seeds[] = {
	"{\"bandwidth\": {\"size\": 1048576, \"refill_time\": 100}}",
	"{\"ops\": {\"size\": 100, \"refill_time\": 1000, \"one_time_burst\": 50}}",
	("{\"bandwidth\": {\"size\": 10, \"refill_time\": 1, \"one_time_burst\": 0}, "
	 "\"ops\": {\"size\": 1, \"refill_time\": 1000}}"),
	"{\"bandwidth\": {\"size\": 0, \"refill_time\": 0}}",
	"{}",
	"{\"ops\": {\"size\": 1, \"refill_time\": 86400001}}",
	"{\"bandwidth\": {\"size\": 9223372036854775807, \"refill_time\": 1}}",
	"{\"ops\": {\"size\": -1, \"refill_time\": 1}}",
};

int main(int argc, char **argv)
{
	return seed_text_main(argc, argv, seeds, sizeof(seeds) / sizeof(seeds[0]));
}

#endif /* FUZZ_WRITE_SEEDS */
