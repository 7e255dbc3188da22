/*
 * render.h - store records as the API and the events show them
 * (docs/api/yund.yaml).
 * Each returns a new object, NULL when out of memory.
 */
#ifndef YUND_CORE_RENDER_H
#define YUND_CORE_RENDER_H

#include <jansson.h>

#include "../store/store.h"

json_t *render_host(const struct st_host *h, const struct st_alloc *a);
json_t *render_flavor(const struct st_flavor *f);
json_t *render_image(const struct st_image *img);
json_t *render_network(const struct st_network *n);
json_t *render_instance(const struct st_instance *in);

/* {"items": [...]} around an array (stolen). */
json_t *render_list(json_t *items);

#endif
