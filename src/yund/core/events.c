/* events.c - see events.h. */
#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct events {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct ev_event ring[EV_KEEP];
	uint64_t last; /* id of the newest event; ring[id % EV_KEEP] */
	bool closed;
};

struct events *ev_new(void)
{
	struct events *ev = calloc(1, sizeof(*ev));
	pthread_condattr_t ca;

	if (!ev)
		return NULL;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->cond, &ca);
	pthread_condattr_destroy(&ca);
	return ev;
}

void ev_close(struct events *ev)
{
	pthread_mutex_lock(&ev->lock);
	ev->closed = true;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

void ev_free(struct events *ev)
{
	if (!ev)
		return;
	for (size_t i = 0; i < EV_KEEP; i++)
		free(ev->ring[i].data);
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

void ev_publish(struct events *ev, const char *type, json_t *obj)
{
	char *data = json_dumps(obj, JSON_COMPACT);
	struct ev_event *slot;

	if (!data)
		return;
	pthread_mutex_lock(&ev->lock);
	ev->last++;
	slot = &ev->ring[ev->last % EV_KEEP];
	free(slot->data);
	slot->id = ev->last;
	strncpy(slot->type, type, sizeof(slot->type) - 1);
	slot->type[sizeof(slot->type) - 1] = '\0';
	slot->data = data;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

uint64_t ev_last_id(struct events *ev)
{
	uint64_t id;

	pthread_mutex_lock(&ev->lock);
	id = ev->last;
	pthread_mutex_unlock(&ev->lock);
	return id;
}

enum ev_wait_result ev_next(struct events *ev, uint64_t after, int timeout_ms, struct ev_event *out)
{
	struct timespec deadline;
	enum ev_wait_result res = EV_TIMEOUT;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ev->lock);
	for (;;) {
		if (ev->closed) {
			res = EV_CLOSED;
			break;
		}
		/* An id from before a restart (or the future) means "from now on". */
		if (after > ev->last)
			after = ev->last;
		if (ev->last > after) {
			uint64_t want = after + 1;
			struct ev_event *e;

			if (ev->last - want >= EV_KEEP)
				want = ev->last - EV_KEEP + 1;
			e = &ev->ring[want % EV_KEEP];
			out->id = e->id;
			memcpy(out->type, e->type, sizeof(out->type));
			out->data = strdup(e->data);
			res = out->data ? EV_GOT : EV_TIMEOUT;
			break;
		}
		if (pthread_cond_timedwait(&ev->cond, &ev->lock, &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&ev->lock);
	return res;
}
