/*
 * sse.c - see sse.h.
 */
#include "sse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sse_init(struct sse_parser *p, sse_event_fn fn, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->fn = fn;
	p->arg = arg;
}

void sse_free(struct sse_parser *p)
{
	free(p->line);
	free(p->data);
	p->line = p->data = NULL;
	p->len = p->cap = p->dlen = p->dcap = 0;
}

static int grow(char **buf, size_t *cap, size_t need)
{
	if (need > SSE_MAX_LINE + 2)
		return -E2BIG;
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 256;

	while (n < need)
		n *= 2;
	char *b = realloc(*buf, n);

	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = n;
	return 0;
}

static void copy_field(char *dst, size_t n, const char *v, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static int dispatch(struct sse_parser *p)
{
	int rc = 0;

	if (p->has_data) {
		struct sse_event ev;

		/* Lines were joined with a trailing LF each: drop the last. */
		if (p->dlen && p->data[p->dlen - 1] == '\n')
			p->dlen--;
		p->data[p->dlen] = '\0';
		ev.id = p->id;
		ev.type = p->type[0] ? p->type : "message";
		ev.data = p->data;
		if (p->fn(&ev, p->arg)) {
			p->stopped = true;
			rc = 1;
		}
	}
	p->dlen = 0;
	p->has_data = false;
	p->type[0] = '\0';
	return rc;
}

/* One complete line (without its end) in p->line[0..len). */
static int line(struct sse_parser *p)
{
	const char *l = p->line, *v;
	size_t len = p->len, flen, vlen;

	if (!len)
		return dispatch(p);
	if (l[0] == ':')
		return 0;
	v = memchr(l, ':', len);
	flen = v ? (size_t)(v - l) : len;
	if (v) {
		v++;
		vlen = len - flen - 1;
		if (vlen && *v == ' ') {
			v++;
			vlen--;
		}
	} else {
		v = "";
		vlen = 0;
	}
	if (flen == 4 && !memcmp(l, "data", 4)) {
		int rc = grow(&p->data, &p->dcap, p->dlen + vlen + 2);

		if (rc)
			return rc;
		memcpy(p->data + p->dlen, v, vlen);
		p->dlen += vlen;
		p->data[p->dlen++] = '\n';
		p->has_data = true;
	} else if (flen == 5 && !memcmp(l, "event", 5)) {
		copy_field(p->type, sizeof(p->type), v, vlen);
	} else if (flen == 2 && !memcmp(l, "id", 2)) {
		if (!memchr(v, '\0', vlen))
			copy_field(p->id, sizeof(p->id), v, vlen);
	}
	/* "retry" and unknown fields: ignored. */
	return 0;
}

int sse_feed(struct sse_parser *p, const char *buf, size_t len)
{
	if (p->stopped)
		return 1;
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (p->after_cr) {
			p->after_cr = false;
			if (ch == '\n')
				continue;
		}
		if (ch == '\r' || ch == '\n') {
			int rc = line(p);

			p->len = 0;
			p->after_cr = ch == '\r';
			if (rc)
				return rc;
			continue;
		}
		int rc = grow(&p->line, &p->cap, p->len + 1);

		if (rc)
			return rc;
		p->line[p->len++] = ch;
	}
	return 0;
}
