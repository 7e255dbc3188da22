/*
 * table.h - how yun shows things to a person: aligned tables, sizes, ages.
 *
 * Pure formatting, no I/O besides the FILE the caller passes, so every
 * rule here is unit-tested (tests/unit/cli_table_test.c):
 *   - a table's columns are as wide as their widest cell (header included),
 *     separated by two spaces, left-aligned unless the column is marked
 *     right-aligned, with no trailing blanks on any line;
 *   - a column may have a maximum width: longer cells end in "..." so the
 *     table stays readable with long paths or commands;
 *   - widths count characters, not bytes (UTF-8 continuation bytes are
 *     not counted), so a non-ASCII name does not shift the columns.
 */
#ifndef YUN_CLI_TABLE_H
#define YUN_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define TBL_MAX_COLS 16

struct table {
	size_t ncols;
	const char *headers[TBL_MAX_COLS];
	size_t max_width[TBL_MAX_COLS]; /* 0: unlimited */
	bool right[TBL_MAX_COLS];	/* right-aligned (numbers) */
	char **cells;			/* nrows * ncols owned copies */
	size_t nrows;
	size_t cap;
};

/* A table with the given headers (a NULL-terminated list, at most
 * TBL_MAX_COLS). The header strings are not copied. */
void tbl_init(struct table *t, const char *const *headers);
void tbl_free(struct table *t);

/* Column options, by index. */
void tbl_set_max_width(struct table *t, size_t col, size_t width);
void tbl_set_right(struct table *t, size_t col, bool right);

/* Append a row of t->ncols cells (NULL shows as "-"). Returns 0 or -ENOMEM. */
int tbl_add_row(struct table *t, const char *const *cells);

/* Print the header line and every row. */
void tbl_print(const struct table *t, FILE *out);

/* Characters (not bytes) in a UTF-8 string. */
size_t tbl_width(const char *s);

/*
 * Copy s into buf (size n) cut to at most max characters: a longer string
 * keeps its first max-3 characters followed by "..." (max < 4: just the
 * first max characters). Never splits a UTF-8 sequence. Returns buf.
 */
char *tbl_truncate(const char *s, size_t max, char *buf, size_t n);

/*
 * A size in bytes as a person reads it, binary units: "0", "999B", "1K",
 * "512M", "1.5G", "2G", "10G", "3T". One decimal below 10 when it is not
 * whole (rounded down to the tenth: 2047M -> "1.9G" not "2G", so a size
 * never looks bigger than it is), whole numbers from 10 up. buf of at
 * least 16 bytes. Returns buf.
 */
char *tbl_size(uint64_t bytes, char *buf, size_t n);

/* The same for a count of MiB (memory_mib) and GiB (disk_gib). */
char *tbl_size_mib(uint64_t mib, char *buf, size_t n);
char *tbl_size_gib(uint64_t gib, char *buf, size_t n);

/*
 * An age in seconds, one unit: "0s".."59s", "1m".."59m", "1h".."23h", then
 * days "1d".. (negative ages, from clock skew, are "0s"). Returns buf.
 */
char *tbl_age(int64_t seconds, char *buf, size_t n);

/*
 * Parse an RFC 3339 timestamp as yund writes them ("2026-11-22T07:00:00Z",
 * also with fractional seconds or a +HH:MM/-HH:MM offset). 0 or -EINVAL.
 */
int tbl_parse_time(const char *s, time_t *out);

/* The age of an RFC 3339 timestamp at `now`, as tbl_age; "-" when the
 * timestamp is missing or malformed. */
char *tbl_age_since(const char *rfc3339, time_t now, char *buf, size_t n);

#endif
