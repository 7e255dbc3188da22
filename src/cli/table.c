/*
 * table.c - see table.h.
 */
#include "table.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void tbl_init(struct table *t, const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	while (t->ncols < TBL_MAX_COLS && headers[t->ncols]) {
		t->headers[t->ncols] = headers[t->ncols];
		t->ncols++;
	}
}

void tbl_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

void tbl_set_max_width(struct table *t, size_t col, size_t width)
{
	if (col < t->ncols)
		t->max_width[col] = width;
}

void tbl_set_right(struct table *t, size_t col, bool right)
{
	if (col < t->ncols)
		t->right[col] = right;
}

int tbl_add_row(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));

		if (!c)
			return -ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * t->ncols;

	for (size_t i = 0; i < t->ncols; i++) {
		const char *v = cells[i] && *cells[i] ? cells[i] : "-";
		size_t max = t->max_width[i];

		if (max && tbl_width(v) > max) {
			size_t n = strlen(v) + 1;

			row[i] = malloc(n);
			if (row[i])
				tbl_truncate(v, max, row[i], n);
		} else {
			row[i] = strdup(v);
		}
		if (!row[i]) {
			while (i--)
				free(row[i]);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

size_t tbl_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

char *tbl_truncate(const char *s, size_t max, char *buf, size_t n)
{
	size_t keep = max, chars = 0, i = 0;
	bool cut = tbl_width(s) > max;

	if (!n)
		return buf;
	if (cut && max >= 4)
		keep = max - 3;
	/* Copy `keep` characters (whole UTF-8 sequences) that fit in buf. */
	while (s[i]) {
		size_t len = 1;

		while (s[i + len] && ((unsigned char)s[i + len] & 0xC0) == 0x80)
			len++;
		if (chars == keep || i + len >= n)
			break;
		i += len;
		chars++;
	}
	memcpy(buf, s, i);
	buf[i] = '\0';
	if (cut && max >= 4 && i + 3 < n)
		memcpy(buf + i, "...", 4);
	return buf;
}

static void pad(FILE *out, size_t n)
{
	while (n--)
		fputc(' ', out);
}

void tbl_print(const struct table *t, FILE *out)
{
	size_t width[TBL_MAX_COLS];

	for (size_t c = 0; c < t->ncols; c++) {
		width[c] = tbl_width(t->headers[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t w = tbl_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = r ? t->cells[(r - 1) * t->ncols + c] : t->headers[c];
			size_t gap = width[c] - tbl_width(v);
			bool last = c + 1 == t->ncols;

			if (c)
				fputs("  ", out);
			if (t->right[c])
				pad(out, gap);
			fputs(v, out);
			if (!t->right[c] && !last)
				pad(out, gap);
		}
		fputc('\n', out);
	}
}

char *tbl_size(uint64_t bytes, char *buf, size_t n)
{
	static const char units[] = "BKMGTPE";
	unsigned u = 0;
	uint64_t div = 1;

	while (u + 1 < sizeof(units) - 1 && bytes / div >= 1024) {
		div *= 1024;
		u++;
	}
	uint64_t whole = bytes / div;
	/* Tenths, rounded down: a size never looks bigger than it is. */
	uint64_t tenth = (bytes % div) * 10 / div;

	if (!bytes)
		snprintf(buf, n, "0");
	else if (u && whole < 10 && tenth)
		snprintf(buf, n, "%llu.%llu%c", (unsigned long long)whole,
			 (unsigned long long)tenth, units[u]);
	else
		snprintf(buf, n, "%llu%c", (unsigned long long)whole, units[u]);
	return buf;
}

char *tbl_size_mib(uint64_t mib, char *buf, size_t n)
{
	if (mib > UINT64_MAX >> 20)
		mib = UINT64_MAX >> 20;
	return tbl_size(mib << 20, buf, n);
}

char *tbl_size_gib(uint64_t gib, char *buf, size_t n)
{
	if (gib > UINT64_MAX >> 30)
		gib = UINT64_MAX >> 30;
	return tbl_size(gib << 30, buf, n);
}

char *tbl_age(int64_t s, char *buf, size_t n)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, n, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, n, "%lldm", (long long)(s / 60));
	else if (s < 86400)
		snprintf(buf, n, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, n, "%lldd", (long long)(s / 86400));
	return buf;
}

/* Exactly `digits` decimal digits at *p; advances *p. */
static int digits(const char **p, int count, int *out)
{
	int v = 0;

	for (int i = 0; i < count; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += count;
	*out = v;
	return 0;
}

int tbl_parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p = s;

	if (!s || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
		return -EINVAL;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
	    oh > 23 || om > 59)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);

	if (t == (time_t)-1)
		return -EINVAL;
	*out = t - (time_t)sign * (oh * 3600 + om * 60);
	return 0;
}

char *tbl_age_since(const char *rfc3339, time_t now, char *buf, size_t n)
{
	time_t t;

	if (tbl_parse_time(rfc3339, &t)) {
		snprintf(buf, n, "-");
		return buf;
	}
	return tbl_age((int64_t)(now - t), buf, n);
}
