/* v1_hosts.c - GET /v1/hosts[/{ref}]: this host's capacity and allocation. */
#include <stdlib.h>

#include "../core/render.h"
#include "../store/store.h"
#include "../yund.h"
#include "v1.h"

static json_t *host_json(struct store *s, const struct st_host *h)
{
	struct st_alloc a = {0};

	s->ops->host_allocated(s, h->m.id, &a, NULL);
	return render_host(h, &a);
}

void v1_hosts_list(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_host *v;
	size_t n;
	json_t *items;

	if (s->ops->host_list(s, &v, &n, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	items = json_array();
	for (size_t i = 0; i < n && items; i++)
		json_array_append_new(items, host_json(s, &v[i]));
	free(v);
	api_reply_json(rep, 200, render_list(items));
}

void v1_host_get(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_host h;

	if (s->ops->host_get(s, req->params[0], &h, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	api_reply_json(rep, 200, host_json(s, &h));
}
