/*
 * events.h - the event bus behind GET /v1/events.
 *
 * Every committed state change is published as one event (type
 * "KIND.created|state|deleted", data = the object's JSON). The bus keeps
 * the last EV_KEEP events in a ring; readers (one thread per server-sent
 * events connection) wait for events after the last id they saw. Ids grow
 * by one per event and restart with the process.
 */
#ifndef YUND_CORE_EVENTS_H
#define YUND_CORE_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define EV_KEEP 1024

struct events;

struct ev_event {
	uint64_t id;
	char type[32];
	char *data; /* compact JSON, owned by the copy's holder */
};

struct events *ev_new(void);
/* Wake every reader for good (they get EV_CLOSED); then ev_free. */
void ev_close(struct events *ev);
void ev_free(struct events *ev);

/* Publish type + obj (the object is serialized, not kept). */
void ev_publish(struct events *ev, const char *type, json_t *obj);

/* The id of the newest event (0: none yet). */
uint64_t ev_last_id(struct events *ev);

enum ev_wait_result { EV_GOT, EV_TIMEOUT, EV_CLOSED };

/*
 * The oldest buffered event with id > after, waiting up to timeout_ms for
 * one. A reader that fell behind by more than EV_KEEP events skips to the
 * oldest kept. On EV_GOT *out is a copy: free out->data.
 */
enum ev_wait_result ev_next(struct events *ev, uint64_t after, int timeout_ms,
			    struct ev_event *out);

#endif
