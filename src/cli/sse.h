/*
 * sse.h - the framing of server-sent events (text/event-stream), as
 * GET /v1/events sends them:
 *
 *   id: 42
 *   event: instance.state
 *   data: {"id":"i-0123456789ab",...}
 *   <blank line>
 *
 * Bytes go in as they arrive, in chunks of any size; a complete event (at
 * the blank line) comes out through a callback. Follows the WHATWG rules:
 * lines end in LF, CRLF or CR; "field: value" loses one space after the
 * colon; several data lines are joined with LF; lines starting with ':'
 * are comments (keepalives); an event with no data is not dispatched; the
 * type defaults to "message"; the id persists from event to event. Pure:
 * no I/O (tests/unit/cli_sse_test.c).
 */
#ifndef YUN_CLI_SSE_H
#define YUN_CLI_SSE_H

#include <stdbool.h>
#include <stddef.h>

/* A line longer than this ends the stream with -E2BIG. */
#define SSE_MAX_LINE (4u << 20)

struct sse_event {
	const char *id;	  /* the last id seen, "" when none */
	const char *type; /* "message" unless the event named one */
	const char *data;
};

/* Returns non-zero to stop: sse_feed then returns 1 and ignores the rest. */
typedef int (*sse_event_fn)(const struct sse_event *ev, void *arg);

struct sse_parser {
	sse_event_fn fn;
	void *arg;
	char *line;
	size_t len, cap;
	char *data;
	size_t dlen, dcap;
	bool has_data;
	bool after_cr; /* the previous chunk ended in CR: skip a leading LF */
	bool stopped;
	char type[64];
	char id[128];
};

void sse_init(struct sse_parser *p, sse_event_fn fn, void *arg);
void sse_free(struct sse_parser *p);

/* 0, 1 when the callback stopped the stream, -ENOMEM or -E2BIG. */
int sse_feed(struct sse_parser *p, const char *buf, size_t len);

#endif
