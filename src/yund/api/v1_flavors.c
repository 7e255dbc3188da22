/* v1_flavors.c - /v1/flavors: named instance sizes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/notify.h"
#include "../core/render.h"
#include "../store/store.h"
#include "../yund.h"
#include "body.h"
#include "ranges.h"
#include "v1.h"

void v1_flavors_list(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_flavor *v;
	size_t n;
	json_t *items;

	if (s->ops->flavor_list(s, &v, &n, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	items = json_array();
	for (size_t i = 0; i < n && items; i++)
		json_array_append_new(items, render_flavor(&v[i]));
	free(v);
	api_reply_json(rep, 200, render_list(items));
}

void v1_flavor_get(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_flavor f;

	if (s->ops->flavor_get(s, req->params[0], &f, &err) < 0)
		api_reply_err(rep, &err);
	else
		api_reply_json(rep, 200, render_flavor(&f));
}

void v1_flavor_create(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"name", BODY_STRING, true, 0, 0, 0},
	    {"vcpus", BODY_INT, true, LIM_VCPUS_MIN, LIM_VCPUS_MAX, 0},
	    {"memory_mib", BODY_INT, true, LIM_MEMORY_MIN, LIM_MEMORY_MAX, 0},
	    {"disk_gib", BODY_INT, false, LIM_DISK_MIN, LIM_DISK_MAX, 0},
	};
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_flavor f = {0};
	json_t *b = NULL;

	if (body_parse(req->body, req->body_len, false, &b, &err) < 0 ||
	    body_check(b, fields, sizeof(fields) / sizeof(fields[0]), &err) < 0 ||
	    obj_check_name("flavor", yun_json_str_or(b, "name", ""), &err) < 0) {
		api_reply_err(rep, &err);
		json_decref(b);
		return;
	}
	obj_new_id("fl", f.m.id);
	snprintf(f.m.name, sizeof(f.m.name), "%s", yun_json_str_or(b, "name", ""));
	snprintf(f.m.project, sizeof(f.m.project), OBJ_PROJECT_DEFAULT);
	obj_now(f.m.created_at);
	memcpy(f.m.updated_at, f.m.created_at, sizeof(f.m.updated_at));
	f.vcpus = body_int(b, "vcpus", 1);
	f.memory_mib = body_int(b, "memory_mib", 1024);
	f.disk_gib = body_int(b, "disk_gib", 0);
	json_decref(b);
	if (s->ops->flavor_create(s, &f, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	notify_flavor(req->y, "created", &f);
	api_reply_json(rep, 201, render_flavor(&f));
}

void v1_flavor_delete(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_flavor f;

	if (s->ops->flavor_delete(s, req->params[0], &f, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	notify_flavor(req->y, "deleted", &f);
	rep->status = 204;
}
