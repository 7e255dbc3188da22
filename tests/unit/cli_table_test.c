/*
 * cli_table_test.c - src/cli/table.c: how `yun` lays out tables, sizes and
 * ages (aligned columns without trailing blanks, "-" for missing cells,
 * truncation with "...", binary sizes that never look bigger than they
 * are, one-unit ages, RFC 3339 timestamps).
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "cli/table.h"

#define CHECK_STR(got, want)                                                                       \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if (strcmp(g_, w_)) {                                                              \
			fprintf(stderr, "%s:%d: CHECK_STR failed: %s: \"%s\" != \"%s\"\n",         \
				__FILE__, __LINE__, #got, g_, w_);                                 \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

static void test_sizes(void)
{
	char b[16];

	CHECK_STR(tbl_size(0, b, sizeof(b)), "0");
	CHECK_STR(tbl_size(999, b, sizeof(b)), "999B");
	CHECK_STR(tbl_size(1023, b, sizeof(b)), "1023B");
	CHECK_STR(tbl_size(1024, b, sizeof(b)), "1K");
	CHECK_STR(tbl_size(1536, b, sizeof(b)), "1.5K");
	CHECK_STR(tbl_size(512ull << 20, b, sizeof(b)), "512M");
	CHECK_STR(tbl_size(1ull << 30, b, sizeof(b)), "1G");
	CHECK_STR(tbl_size(1536ull << 20, b, sizeof(b)), "1.5G");
	/* Rounded down: 2047 MiB is not shown as 2G. */
	CHECK_STR(tbl_size(2047ull << 20, b, sizeof(b)), "1.9G");
	CHECK_STR(tbl_size((1ull << 30) + 1, b, sizeof(b)), "1G");
	/* From 10 up, whole numbers only. */
	CHECK_STR(tbl_size((10ull << 30) + (512ull << 20), b, sizeof(b)), "10G");
	CHECK_STR(tbl_size(3ull << 40, b, sizeof(b)), "3T");
	CHECK_STR(tbl_size(UINT64_MAX, b, sizeof(b)), "15E");
	CHECK_STR(tbl_size_mib(512, b, sizeof(b)), "512M");
	CHECK_STR(tbl_size_mib(2048, b, sizeof(b)), "2G");
	CHECK_STR(tbl_size_mib(0, b, sizeof(b)), "0");
	CHECK_STR(tbl_size_gib(20, b, sizeof(b)), "20G");
	CHECK_STR(tbl_size_gib(1024, b, sizeof(b)), "1T");
	/* Saturates instead of wrapping around. */
	CHECK_STR(tbl_size_gib(UINT64_MAX, b, sizeof(b)), "15E");
}

static void test_ages(void)
{
	char b[16];

	CHECK_STR(tbl_age(-5, b, sizeof(b)), "0s");
	CHECK_STR(tbl_age(0, b, sizeof(b)), "0s");
	CHECK_STR(tbl_age(3, b, sizeof(b)), "3s");
	CHECK_STR(tbl_age(59, b, sizeof(b)), "59s");
	CHECK_STR(tbl_age(60, b, sizeof(b)), "1m");
	CHECK_STR(tbl_age(300, b, sizeof(b)), "5m");
	CHECK_STR(tbl_age(3599, b, sizeof(b)), "59m");
	CHECK_STR(tbl_age(3600, b, sizeof(b)), "1h");
	CHECK_STR(tbl_age(7200, b, sizeof(b)), "2h");
	CHECK_STR(tbl_age(86399, b, sizeof(b)), "23h");
	CHECK_STR(tbl_age(86400, b, sizeof(b)), "1d");
	CHECK_STR(tbl_age(30 * 86400 + 5, b, sizeof(b)), "30d");
}

static void test_times(void)
{
	time_t t, base;
	char b[16];

	CHECK_EQ(tbl_parse_time("2026-11-22T07:00:00Z", &base), 0);
	CHECK_EQ(base, 1795330800);
	CHECK_EQ(tbl_parse_time("2026-11-22T07:00:00.123456Z", &t), 0);
	CHECK_EQ(t, base);
	CHECK_EQ(tbl_parse_time("2026-11-22T09:00:00+02:00", &t), 0);
	CHECK_EQ(t, base);
	CHECK_EQ(tbl_parse_time("2026-11-22T06:30:00-00:30", &t), 0);
	CHECK_EQ(t, base);
	CHECK_EQ(tbl_parse_time("2026-11-22t07:00:00z", &t), 0);
	CHECK_EQ(t, base);
	CHECK_EQ(tbl_parse_time("2026-11-22", &t), -EINVAL);
	CHECK_EQ(tbl_parse_time("2026-11-22T07:00:00", &t), -EINVAL);
	CHECK_EQ(tbl_parse_time("2026-13-01T00:00:00Z", &t), -EINVAL);
	CHECK_EQ(tbl_parse_time("2026-11-22T24:00:00Z", &t), -EINVAL);
	CHECK_EQ(tbl_parse_time("2026-11-22T07:00:00Zjunk", &t), -EINVAL);
	CHECK_EQ(tbl_parse_time("2026-11-22T07:00:00.Z", &t), -EINVAL);
	CHECK_EQ(tbl_parse_time("", &t), -EINVAL);
	CHECK_EQ(tbl_parse_time(NULL, &t), -EINVAL);

	CHECK_STR(tbl_age_since("2026-11-22T07:00:00Z", base + 3, b, sizeof(b)), "3s");
	CHECK_STR(tbl_age_since("2026-11-22T07:00:00Z", base + 7300, b, sizeof(b)), "2h");
	/* A clock behind the server's: not a negative age. */
	CHECK_STR(tbl_age_since("2026-11-22T07:00:00Z", base - 10, b, sizeof(b)), "0s");
	CHECK_STR(tbl_age_since("yesterday", base, b, sizeof(b)), "-");
	CHECK_STR(tbl_age_since(NULL, base, b, sizeof(b)), "-");
}

static void test_width_and_truncation(void)
{
	char b[64];

	CHECK_EQ(tbl_width(""), 0);
	CHECK_EQ(tbl_width("abc"), 3);
	CHECK_EQ(tbl_width("h\xc3\xa9llo"), 5); /* héllo */
	CHECK_EQ(tbl_width("\xe4\xba\x91"), 1); /* 云 */
	CHECK_STR(tbl_truncate("abcdefghij", 8, b, sizeof(b)), "abcde...");
	CHECK_STR(tbl_truncate("abcdefgh", 8, b, sizeof(b)), "abcdefgh");
	CHECK_STR(tbl_truncate("abc", 8, b, sizeof(b)), "abc");
	/* Too narrow for the dots: just cut. */
	CHECK_STR(tbl_truncate("abcdef", 3, b, sizeof(b)), "abc");
	/* Never splits a UTF-8 sequence; counts characters. */
	CHECK_STR(tbl_truncate("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 6, b,
			       sizeof(b)),
		  "\xc3\xa9\xc3\xa9\xc3\xa9...");
	/* A small buffer bounds the copy. */
	CHECK_STR(tbl_truncate("abcdefghij", 20, b, 5), "abcd");
	CHECK_EQ(tbl_width(
		     tbl_truncate("/var/lib/yun/images/img-0123456789ab/rootfs", 24, b, sizeof(b))),
		 24);
}

/* The table as text. */
static char *render(struct table *t)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	tbl_print(t, f);
	fclose(f);
	return text;
}

static void test_table(void)
{
	static const char *const headers[] = {"NAME", "ID", "STATE", "IP", NULL};
	struct table t;
	char *out;

	tbl_init(&t, headers);
	CHECK_EQ(t.ncols, 4);
	CHECK_EQ(
	    tbl_add_row(&t, (const char *[]){"web-1", "i-0123456789ab", "running", "10.10.0.2"}),
	    0);
	CHECK_EQ(tbl_add_row(&t, (const char *[]){"db", "i-00000000000f", "stopped", NULL}), 0);
	out = render(&t);
	CHECK_STR(out, "NAME   ID              STATE    IP\n"
		       "web-1  i-0123456789ab  running  10.10.0.2\n"
		       "db     i-00000000000f  stopped  -\n");
	free(out);
	tbl_free(&t);

	/* Empty: the header alone. */
	tbl_init(&t, headers);
	out = render(&t);
	CHECK_STR(out, "NAME  ID  STATE  IP\n");
	free(out);
	tbl_free(&t);

	/* Right-aligned numbers, a capped column, no trailing blanks. */
	static const char *const h2[] = {"NAME", "SIZE", "SOURCE", NULL};
	tbl_init(&t, h2);
	tbl_set_right(&t, 1, true);
	tbl_set_max_width(&t, 2, 10);
	tbl_add_row(&t, (const char *[]){"busybox", "1.5M", "build:busybox"});
	tbl_add_row(&t, (const char *[]){"debian", "180M", "import:/srv/img"});
	tbl_add_row(&t, (const char *[]){"x", "12K", ""});
	out = render(&t);
	CHECK_STR(out, "NAME     SIZE  SOURCE\n"
		       "busybox  1.5M  build:b...\n"
		       "debian   180M  import:...\n"
		       "x         12K  -\n");
	free(out);
	tbl_free(&t);

	/* Non-ASCII cells keep the columns straight. */
	static const char *const h3[] = {"A", "B", NULL};
	tbl_init(&t, h3);
	tbl_add_row(&t, (const char *[]){"\xe4\xba\x91", "x"});
	tbl_add_row(&t, (const char *[]){"abc", "y"});
	out = render(&t);
	CHECK_STR(out, "A    B\n\xe4\xba\x91    x\nabc  y\n");
	free(out);
	tbl_free(&t);

	/* Many rows (the array grows). */
	tbl_init(&t, h3);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(tbl_add_row(&t, (const char *[]){"r", "v"}), 0);
	CHECK_EQ(t.nrows, 100);
	tbl_free(&t);
}

int main(void)
{
	RUN(test_sizes);
	RUN(test_ages);
	RUN(test_times);
	RUN(test_width_and_truncation);
	RUN(test_table);
	return CHECK_DONE();
}
