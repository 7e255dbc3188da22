/*
 * cli_metrics_test.c - src/cli/metrics.c: reading Prometheus text lines for
 * `yun top` (samples with and without labels, escapes in label values,
 * timestamps, NaN/Inf, comments; malformed lines refused).
 */
#include <errno.h>
#include <math.h>

#include "check.h"
#include "cli/metrics.h"

static void test_lines(void)
{
	struct prom_sample s;

	CHECK_EQ(prom_parse_line("", &s), 0);
	CHECK_EQ(prom_parse_line("   ", &s), 0);
	CHECK_EQ(prom_parse_line("# HELP yun_up 1 if up", &s), 0);
	CHECK_EQ(prom_parse_line("# TYPE yun_up gauge", &s), 0);

	CHECK_EQ(prom_parse_line("yun_up 1", &s), 1);
	CHECK(!strcmp(s.name, "yun_up"));
	CHECK(!strcmp(s.labels, ""));
	CHECK(s.value == 1.0);

	CHECK_EQ(prom_parse_line("yun_instance_cpu_seconds_total{id=\"i-0123456789ab\","
				 "name=\"web-1\"} 12.5 1700000000000",
				 &s),
		 1);
	CHECK(!strcmp(s.name, "yun_instance_cpu_seconds_total"));
	CHECK(!strcmp(s.labels, "id=\"i-0123456789ab\",name=\"web-1\""));
	CHECK(s.value == 12.5);

	/* A '}' inside a quoted value does not end the labels. */
	CHECK_EQ(prom_parse_line("m{path=\"/a}b\",x=\"q\\\"r\"} 3e3", &s), 1);
	CHECK(s.value == 3000.0);

	CHECK_EQ(prom_parse_line("m NaN", &s), 1);
	CHECK(isnan(s.value));
	CHECK_EQ(prom_parse_line("m +Inf", &s), 1);
	CHECK(isinf(s.value));
	CHECK_EQ(prom_parse_line("m{le=\"0.5\"} 4\r", &s), 1);

	CHECK_EQ(prom_parse_line("1m 3", &s), -EINVAL);
	CHECK_EQ(prom_parse_line("m", &s), -EINVAL);
	CHECK_EQ(prom_parse_line("m{a=\"b\" 3", &s), -EINVAL);
	CHECK_EQ(prom_parse_line("m{a=\"b} 3", &s), -EINVAL);
	CHECK_EQ(prom_parse_line("m x", &s), -EINVAL);
	CHECK_EQ(prom_parse_line("m 1 2 3", &s), -EINVAL);
	CHECK_EQ(prom_parse_line("m{} 1", &s), 1);
}

static void test_labels(void)
{
	char v[64];

	CHECK_EQ(prom_label("id=\"i-0123456789ab\",name=\"web-1\"", "id", v, sizeof(v)), 0);
	CHECK(!strcmp(v, "i-0123456789ab"));
	CHECK_EQ(prom_label("id=\"i-0123456789ab\",name=\"web-1\"", "name", v, sizeof(v)), 0);
	CHECK(!strcmp(v, "web-1"));
	/* "id" is not a prefix match of "instance_id". */
	CHECK_EQ(prom_label("instance_id=\"i-1\"", "id", v, sizeof(v)), -ENOENT);
	CHECK_EQ(prom_label("instance_id=\"i-1\"", "instance_id", v, sizeof(v)), 0);
	CHECK(!strcmp(v, "i-1"));
	CHECK_EQ(prom_label("a=\"x\\\"y\\\\z\\n\"", "a", v, sizeof(v)), 0);
	CHECK(!strcmp(v, "x\"y\\z\n"));
	CHECK_EQ(prom_label(" a = \"1\" , b=\"2\"", "b", v, sizeof(v)), 0);
	CHECK(!strcmp(v, "2"));
	CHECK_EQ(prom_label("", "a", v, sizeof(v)), -ENOENT);
	CHECK_EQ(prom_label("a=1", "a", v, sizeof(v)), -EINVAL);
	CHECK_EQ(prom_label("a=\"1", "a", v, sizeof(v)), -EINVAL);
	/* Cut to the buffer. */
	CHECK_EQ(prom_label("a=\"abcdef\"", "a", v, 4), 0);
	CHECK(!strcmp(v, "abc"));
}

int main(void)
{
	RUN(test_lines);
	RUN(test_labels);
	return CHECK_DONE();
}
