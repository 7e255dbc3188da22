/*
 * yund_metrics_test.c - the Prometheus text writer (src/yund/metrics/prom.c)
 * and the API histograms (apistats.c): escaping, value spelling, buckets
 * that add up.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yund/metrics/apistats.h"
#include "yund/metrics/prom.h"

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

/* Run fn into a memory stream; the text (caller frees). */
static char *capture(void (*fn)(FILE *f, void *arg), void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	fn(f, arg);
	fclose(f);
	return text;
}

static void write_escaped(FILE *f, void *arg)
{
	struct prom_label l[] = {{"name", "a\"b\\c\nd"}, {"skip", NULL}, {"x", ""}};

	(void)arg;
	prom_family(f, "m_total", "counter", "help with \\ and\nnewline");
	prom_sample(f, "m_total", l, 3, 42);
}

static void test_escaping(void)
{
	char *t = capture(write_escaped, NULL);

	CHECK(!strcmp(t, "# HELP m_total help with \\\\ and\\nnewline\n"
			 "# TYPE m_total counter\n"
			 "m_total{name=\"a\\\"b\\\\c\\nd\",x=\"\"} 42\n"));
	free(t);
}

static void write_values(FILE *f, void *arg)
{
	(void)arg;
	prom_sample(f, "a", NULL, 0, 0.25);
	prom_sample(f, "b", NULL, 0, INFINITY);
	prom_sample(f, "c", NULL, 0, -INFINITY);
	prom_sample(f, "d", NULL, 0, NAN);
	prom_sample(f, "e", NULL, 0, 25275924480.0);
	prom_sample(f, "f", NULL, 0, 1e300);
}

static void test_values(void)
{
	char *t = capture(write_values, NULL);

	CHECK(!strcmp(t,
		      "a 0.25\nb +Inf\nc -Inf\nd NaN\ne 25275924480\nf 1.0000000000000001e+300\n"));
	free(t);
}

static void write_stats(FILE *f, void *arg)
{
	(void)arg;
	apistats_write(f);
}

/* The value of the line starting with prefix, or NAN. */
static double line_value(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);

	return p ? strtod(p + strlen(prefix), NULL) : NAN;
}

static void test_histogram(void)
{
	char *t;

	apistats_reset();
	apistats_observe("/v1/x", "GET", 200, 0.0001);
	apistats_observe("/v1/x", "GET", 200, 0.003);
	apistats_observe("/v1/x", "GET", 204, 0.003);
	apistats_observe("/v1/x", "GET", 404, 0.2);
	apistats_observe("/v1/x", "GET", 200, 60);
	apistats_observe("/v1/x", "BREW", 200, 0.001);
	t = capture(write_stats, NULL);
	CHECK(line_value(
		  t, "yun_api_requests_total{route=\"/v1/x\",method=\"GET\",status=\"200\"} ") ==
	      3);
	CHECK(line_value(
		  t, "yun_api_requests_total{route=\"/v1/x\",method=\"GET\",status=\"204\"} ") ==
	      1);
	CHECK(line_value(
		  t, "yun_api_requests_total{route=\"/v1/x\",method=\"other\",status=\"200\"} ") ==
	      1);
	/* 2xx: 0.0001, 0.003, 0.003, 60 -> cumulative. */
	CHECK(line_value(
		  t, "_bucket{route=\"/v1/x\",method=\"GET\",code=\"2xx\",le=\"0.0005\"} ") == 1);
	CHECK(line_value(
		  t, "_bucket{route=\"/v1/x\",method=\"GET\",code=\"2xx\",le=\"0.0025\"} ") == 1);
	CHECK(line_value(t, "_bucket{route=\"/v1/x\",method=\"GET\",code=\"2xx\",le=\"0.005\"} ") ==
	      3);
	CHECK(line_value(t, "_bucket{route=\"/v1/x\",method=\"GET\",code=\"2xx\",le=\"10\"} ") ==
	      3);
	CHECK(line_value(t, "_bucket{route=\"/v1/x\",method=\"GET\",code=\"2xx\",le=\"+Inf\"} ") ==
	      4);
	CHECK(line_value(t, "_count{route=\"/v1/x\",method=\"GET\",code=\"2xx\"} ") == 4);
	CHECK(fabs(line_value(t, "_sum{route=\"/v1/x\",method=\"GET\",code=\"2xx\"} ") - 60.0061) <
	      1e-9);
	CHECK(line_value(t, "_bucket{route=\"/v1/x\",method=\"GET\",code=\"4xx\",le=\"0.1\"} ") ==
	      0);
	CHECK(line_value(t, "_bucket{route=\"/v1/x\",method=\"GET\",code=\"4xx\",le=\"0.25\"} ") ==
	      1);
	CHECK(strstr(t, "# TYPE yun_api_request_duration_seconds histogram\n") != NULL);
	free(t);
	apistats_reset();
}

int main(void)
{
	test_escaping();
	test_values();
	test_histogram();
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("yund_metrics: all checks passed\n");
	return 0;
}
