/*
 * check.h - the unit tests' assertions. A failed CHECK prints the file,
 * line and expression and marks the test failed; main() returns the
 * verdict to meson's test runner.
 */
#ifndef YUN_TESTS_CHECK_H
#define YUN_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(expr)                                                                  \
	do {                                                                         \
		if (!(expr)) {                                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#expr);                                              \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

#define CHECK_EQ(a, b)                                                               \
	do {                                                                         \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                     \
		if (a_ != b_) {                                                      \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (0x%" PRIx64 \
					" != 0x%" PRIx64 ")\n",                      \
				__FILE__, __LINE__, #a, #b, a_, b_);                 \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                              \
	do {                                                                         \
		if (!strstr((hay), (needle))) {                                      \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, \
				__LINE__, (hay), (needle));                          \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

/* Run one test function, naming it on failure. */
#define RUN(fn)                                                                      \
	do {                                                                         \
		int before_ = check_failures;                                        \
		fn();                                                                \
		fprintf(stderr, "%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #fn); \
	} while (0)

#define CHECK_DONE() (check_failures ? 1 : 0)

#endif
