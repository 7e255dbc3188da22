/* notify.c - see notify.h. */
#include "notify.h"

#include <stdio.h>

#include "../yund.h"
#include "events.h"
#include "render.h"

static void publish(struct yund *y, const char *kind, const char *what, json_t *obj)
{
	char type[32];

	if (!obj)
		return;
	snprintf(type, sizeof(type), "%s.%s", kind, what);
	ev_publish(y->events, type, obj);
	json_decref(obj);
}

void notify_object(struct yund *y, const char *kind, const char *what, json_t *obj)
{
	publish(y, kind, what, obj);
}

void notify_flavor(struct yund *y, const char *what, const struct st_flavor *f)
{
	publish(y, "flavor", what, render_flavor(f));
}

void notify_image(struct yund *y, const char *what, const struct st_image *img)
{
	publish(y, "image", what, render_image(img));
}

void notify_network(struct yund *y, const char *what, const struct st_network *n)
{
	publish(y, "network", what, render_network(n));
}

void notify_instance(struct yund *y, const char *what, const struct st_instance *in)
{
	publish(y, "instance", what, render_instance(in));
}

void notify_instance_id(struct yund *y, const char *what, const char *id)
{
	struct st_instance in;

	if (y->store->ops->instance_get(y->store, id, &in, NULL) == 0) {
		notify_instance(y, what, &in);
		st_instance_clear(&in);
	}
}
