/*
 * cli_stream_fuzz.c - libFuzzer target for what a yund (or anything at the
 * other end of `yun --url`) can make the CLI's parsers read: the
 * server-sent event stream of `yun events` (sse.h) and the Prometheus text
 * of `yun top` (metrics.h).
 *
 * The input's first byte picks the chunk size (1..256) the event stream is
 * fed in, as the network would cut it; the rest is the stream. The same
 * bytes, split into lines, are then read as metrics lines, and every
 * sample's labels are searched for the keys `yun top` looks for.
 * Invariants: an event's data has no NUL before its end and its type is
 * never empty; a sample's name is a metric name; feeding stops for good
 * once the callback stops it. A crash or a sanitizer report is a bug.
 *
 * FUZZ_SOURCES: src/cli/sse.c src/cli/metrics.c
 */
#include "cli/metrics.h"
#include "cli/sse.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* abort() is what libFuzzer reports as a crash. */
#define ASSERT(c)                                                                                  \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "invariant broken: %s\n", #c);                             \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static int seen;

static int on_event(const struct sse_event *ev, void *arg)
{
	(void)arg;
	ASSERT(ev->type[0]);
	ASSERT(ev->id);
	/* Touch every byte: a data pointer past its buffer shows up in ASan. */
	size_t n = strlen(ev->data);

	ASSERT(n <= SSE_MAX_LINE * 2);
	return ++seen >= 64; /* a reader that stops after a while */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sse_parser p;
	size_t chunk;
	int rc = 0;

	if (!size)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;

	seen = 0;
	sse_init(&p, on_event, NULL);
	for (size_t off = 0; off < size && rc == 0; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		rc = sse_feed(&p, (const char *)data + off, n);
	}
	if (rc == 1)
		ASSERT(sse_feed(&p, "data: x\n\n", 9) == 1);
	sse_free(&p);

	/* The same bytes as metrics text, one line at a time. */
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *line = text, *next; line; line = next) {
		struct prom_sample s;
		char v[64];

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (prom_parse_line(line, &s) == 1) {
			ASSERT(isalpha((unsigned char)s.name[0]) || s.name[0] == '_' ||
			       s.name[0] == ':');
			prom_label(s.labels, "id", v, sizeof(v));
			prom_label(s.labels, "instance", v, sizeof(v));
		}
	}
	free(text);
	return 0;
}
