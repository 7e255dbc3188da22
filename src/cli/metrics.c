/*
 * metrics.c - see metrics.h.
 */
#include "metrics.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool name_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' || c == ':' ||
	       (!first && isdigit((unsigned char)c));
}

/* Skip a quoted label value at p (p at the opening quote); NULL if unterminated. */
static const char *skip_quoted(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

int prom_parse_line(const char *line, struct prom_sample *out)
{
	const char *p = line, *start;
	char *end;
	size_t n;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p || *p == '#')
		return 0;
	start = p;
	if (!name_char(*p, true))
		return -EINVAL;
	while (name_char(*p, false))
		p++;
	n = (size_t)(p - start);
	if (n >= sizeof(out->name))
		return -EINVAL;
	memcpy(out->name, start, n);
	out->name[n] = '\0';
	out->labels[0] = '\0';
	if (*p == '{') {
		start = ++p;
		while (*p && *p != '}') {
			if (*p == '"') {
				p = skip_quoted(p);
				if (!p)
					return -EINVAL;
			} else {
				p++;
			}
		}
		if (*p != '}')
			return -EINVAL;
		n = (size_t)(p - start);
		if (n >= sizeof(out->labels))
			return -EINVAL;
		memcpy(out->labels, start, n);
		out->labels[n] = '\0';
		p++;
	}
	if (*p != ' ' && *p != '\t')
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	/* strtod takes "NaN", "+Inf", "-Inf" as Prometheus writes them. */
	out->value = strtod(p, &end);
	if (end == p)
		return -EINVAL;
	p = end;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-' || isdigit((unsigned char)*p)) { /* a timestamp */
		strtoll(p, &end, 10);
		p = end;
	}
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	return *p ? -EINVAL : 1;
}

int prom_label(const char *labels, const char *key, char *out, size_t n)
{
	size_t klen = strlen(key);
	const char *p = labels;

	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *k = p;

		while (*p && *p != '=' && *p != ' ')
			p++;
		size_t len = (size_t)(p - k);

		while (*p == ' ')
			p++;
		if (*p != '=')
			return -EINVAL;
		p++;
		while (*p == ' ')
			p++;
		if (*p != '"')
			return -EINVAL;
		const char *v = p + 1, *after = skip_quoted(p);

		if (!after)
			return -EINVAL;
		if (len == klen && !strncmp(k, key, klen)) {
			size_t o = 0;

			for (const char *q = v; q < after - 1 && o + 1 < n; q++) {
				if (*q == '\\' && q + 1 < after - 1) {
					q++;
					out[o++] = *q == 'n' ? '\n' : *q;
				} else {
					out[o++] = *q;
				}
			}
			if (n)
				out[o] = '\0';
			return 0;
		}
		p = after;
	}
	return -ENOENT;
}
