/*
 * v1_events.c - GET /v1/events: server-sent events from the event bus.
 * The connection's thread blocks in ev_next between events and writes a
 * keepalive comment every 15 s (which also notices a client gone).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/events.h"
#include "../yund.h"
#include "v1.h"

#define KEEPALIVE_MS 15000

struct sse {
	struct events *ev;
	uint64_t last; /* id of the last event sent */
	char *pending; /* formatted, not yet (fully) written */
	size_t len, off;
};

static void sse_free(void *ctx)
{
	struct sse *s = ctx;

	free(s->pending);
	free(s);
}

static int set_pending(struct sse *s, char *text)
{
	free(s->pending);
	s->pending = text;
	s->len = text ? strlen(text) : 0;
	s->off = 0;
	return text ? 0 : -ENOMEM;
}

static ssize_t sse_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = ctx;
	struct ev_event e;
	size_t n;

	(void)pos;
	while (!s->pending || s->off == s->len) {
		char *text = NULL;

		switch (ev_next(s->ev, s->last, KEEPALIVE_MS, &e)) {
		case EV_CLOSED:
			return API_STREAM_END;
		case EV_TIMEOUT:
			text = strdup(": keepalive\n\n");
			break;
		case EV_GOT:
			if (asprintf(&text, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", e.id,
				     e.type, e.data) < 0)
				text = NULL;
			s->last = e.id;
			free(e.data);
			break;
		}
		if (set_pending(s, text) < 0)
			return API_STREAM_ERROR;
	}
	n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(buf, s->pending + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

void v1_events(struct api_req *req, struct api_reply *rep)
{
	struct sse *s = calloc(1, sizeof(*s));
	const char *last = api_header(req, "Last-Event-ID");

	if (!s) {
		api_reply_error(rep, 500, "out of memory");
		return;
	}
	s->ev = req->y->events;
	s->last = ev_last_id(s->ev);
	if (last && *last) {
		char *end;
		unsigned long long v = strtoull(last, &end, 10);

		if (!*end)
			s->last = v;
	}
	/* The first bytes go out at once, so the client sees the headers. */
	if (set_pending(s, strdup("retry: 1000\n\n")) < 0) {
		sse_free(s);
		api_reply_error(rep, 500, "out of memory");
		return;
	}
	rep->status = 200;
	rep->content_type = "text/event-stream";
	rep->stream = sse_read;
	rep->stream_ctx = s;
	rep->stream_free = sse_free;
}
