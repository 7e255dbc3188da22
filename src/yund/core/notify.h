/*
 * notify.h - publish a committed change on the event bus, rendered as the
 * API shows the object. Call after the store operation returned 0; `what`
 * is "created", "state" or "deleted".
 */
#ifndef YUND_CORE_NOTIFY_H
#define YUND_CORE_NOTIFY_H

#include <jansson.h>

#include "../store/store.h"

struct yund;

void notify_flavor(struct yund *y, const char *what, const struct st_flavor *f);
void notify_image(struct yund *y, const char *what, const struct st_image *img);
void notify_network(struct yund *y, const char *what, const struct st_network *n);
void notify_instance(struct yund *y, const char *what, const struct st_instance *in);

/* Publish `obj` (stolen; NULL: nothing) as event "<kind>.<what>": for kinds rendered elsewhere. */
void notify_object(struct yund *y, const char *kind, const char *what, json_t *obj);

/* Re-read instance `id` and publish it (after a write that returned 0). */
void notify_instance_id(struct yund *y, const char *what, const char *id);

#endif
