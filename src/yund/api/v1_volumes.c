/*
 * v1_volumes.c - /v1/volumes and /v1/snapshots: stored here; the volume
 * service (volume/volume.h) makes their files in the reconcile loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compute/reconcile.h"
#include "../core/render.h"
#include "../store/store.h"
#include "../volume/volfile.h"
#include "../volume/volume.h"
#include "../yund.h"
#include "body.h"
#include "ranges.h"
#include "v1.h"

#define GIB (1ULL << 30)

static void meta_new(struct st_meta *m, const char *prefix, const char *name)
{
	obj_new_id(prefix, m->id);
	snprintf(m->name, sizeof(m->name), "%s", name && *name ? name : m->id);
	snprintf(m->project, sizeof(m->project), OBJ_PROJECT_DEFAULT);
	obj_now(m->created_at);
	memcpy(m->updated_at, m->created_at, sizeof(m->updated_at));
}

/* Whether `gib` GiB fit in the free space of the file system holding <root>. */
static int check_free(struct yund *y, const char *what, int64_t gib, struct yun_err *err)
{
	uint64_t free_b;
	int rc = volfile_free_bytes(y->cfg->root, &free_b, err);

	if (rc)
		return rc;
	if ((uint64_t)gib * GIB > free_b)
		return yun_err_set(
		    err, ENOSPC, "%s: %lld GiB requested, %llu GiB free on the host's disk (%s)",
		    what, (long long)gib, (unsigned long long)(free_b / GIB), y->cfg->root);
	return 0;
}

static void reply_volume(struct api_reply *rep, unsigned status, const struct st_volume *v)
{
	api_reply_json(rep, status, vol_render(v));
}

/* Store volume v (a new one or a clone), tell the event stream and the loop, answer 202. */
static void create_volume(struct api_req *req, struct api_reply *rep, const struct st_volume *v)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};

	if (s->ops->volume_create(s, v, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	vol_notify(req->y, "created", v);
	rec_kick(req->y->rec);
	reply_volume(rep, 202, v);
}

static json_t *volume_item(const void *v, size_t i)
{
	return vol_render(&((const struct st_volume *)v)[i]);
}

static json_t *snapshot_item(const void *v, size_t i)
{
	return vol_render_snapshot(&((const struct st_snapshot *)v)[i]);
}

/* {"items": [item(v, 0), ... item(v, n - 1)]}; frees v. */
static void reply_items(struct api_reply *rep, void *v, size_t n,
			json_t *(*item)(const void *v, size_t i))
{
	json_t *items = json_array();

	for (size_t i = 0; i < n && items; i++)
		json_array_append_new(items, item(v, i));
	free(v);
	api_reply_json(rep, 200, render_list(items));
}

void v1_volumes_list(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_volume *v;
	size_t n;

	if (s->ops->volume_list(s, &v, &n, &err) < 0)
		api_reply_err(rep, &err);
	else
		reply_items(rep, v, n, volume_item);
}

void v1_volume_get(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_volume v;

	if (s->ops->volume_get(s, req->params[0], &v, &err) < 0)
		api_reply_err(rep, &err);
	else
		reply_volume(rep, 200, &v);
}

void v1_volume_create(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"name", BODY_STRING, true, 0, 0, 0},
	    {"size_gib", BODY_INT, true, LIM_VOLUME_MIN, LIM_VOLUME_MAX, 0},
	};
	struct yun_err err = {0};
	struct st_volume v = {0};
	char what[OBJ_NAME_MAX + 16];
	json_t *b = NULL;

	if (body_parse(req->body, req->body_len, false, &b, &err) < 0 ||
	    body_check(b, fields, sizeof(fields) / sizeof(fields[0]), &err) < 0 ||
	    obj_check_name("volume", yun_json_str_or(b, "name", ""), &err) < 0)
		goto fail;
	snprintf(what, sizeof(what), "volume %s", yun_json_str_or(b, "name", ""));
	v.size_gib = body_int(b, "size_gib", 0);
	if (check_free(req->y, what, v.size_gib, &err) < 0)
		goto fail;
	meta_new(&v.m, "vol", yun_json_str_or(b, "name", ""));
	snprintf(v.desired, sizeof(v.desired), "available");
	snprintf(v.state, sizeof(v.state), "creating");
	json_decref(b);
	create_volume(req, rep, &v);
	return;
fail:
	json_decref(b);
	api_reply_err(rep, &err);
}

void v1_volume_delete(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_volume v;

	if (s->ops->volume_request_delete(s, req->params[0], &v, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	vol_notify(req->y, "state", &v);
	rec_kick(req->y->rec);
	reply_volume(rep, 202, &v);
}

void v1_volume_attach(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"instance", BODY_STRING, true, 0, OBJ_NAME_MAX, 0},
	    {"path", BODY_STRING, false, 0, 4096, 0},
	    {"readonly", BODY_BOOL, false, 0, 0, 0},
	};
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_volume v;
	char path[VOL_MOUNT_PATH_MAX + 1];
	json_t *b = NULL;
	bool ro;

	if (body_parse(req->body, req->body_len, false, &b, &err) < 0 ||
	    body_check(b, fields, sizeof(fields) / sizeof(fields[0]), &err) < 0)
		goto fail;
	/* Without a path the store picks /mnt/<volume name>. */
	path[0] = '\0';
	if (yun_json_has(b, "path")) {
		if (vol_check_mount_path(yun_json_str_or(b, "path", ""), &err) < 0)
			goto fail;
		snprintf(path, sizeof(path), "%s", yun_json_str_or(b, "path", ""));
	}
	ro = json_is_true(json_object_get(b, "readonly"));
	if (s->ops->volume_attach(s, req->params[0], yun_json_str_or(b, "instance", ""), path, ro, &v,
				  &err) < 0)
		goto fail;
	json_decref(b);
	vol_notify(req->y, "state", &v);
	reply_volume(rep, 200, &v);
	return;
fail:
	json_decref(b);
	api_reply_err(rep, &err);
}

void v1_volume_detach(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"instance", BODY_STRING, false, 0, OBJ_NAME_MAX, 0},
	};
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_volume v;
	json_t *b = NULL;

	if (body_parse(req->body, req->body_len, true, &b, &err) < 0 ||
	    body_check(b, fields, sizeof(fields) / sizeof(fields[0]), &err) < 0 ||
	    s->ops->volume_detach(s, req->params[0], yun_json_str_or(b, "instance", NULL), &v, &err) < 0)
		goto fail;
	json_decref(b);
	vol_notify(req->y, "state", &v);
	rec_kick(req->y->rec); /* a mount no container needs may go */
	reply_volume(rep, 200, &v);
	return;
fail:
	json_decref(b);
	api_reply_err(rep, &err);
}

void v1_volume_snapshot(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"name", BODY_STRING, false, 0, 0, 0},
	};
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_snapshot sn = {0};
	struct st_volume v;
	json_t *b = NULL;

	if (body_parse(req->body, req->body_len, true, &b, &err) < 0 ||
	    body_check(b, fields, sizeof(fields) / sizeof(fields[0]), &err) < 0 ||
	    (yun_json_has(b, "name") &&
	     obj_check_name("snapshot", yun_json_str_or(b, "name", ""), &err) < 0))
		goto fail;
	if (s->ops->volume_get(s, req->params[0], &v, &err) < 0)
		goto fail;
	meta_new(&sn.m, "snap", yun_json_str_or(b, "name", NULL));
	snprintf(sn.volume_id, sizeof(sn.volume_id), "%s", v.m.id);
	sn.size_gib = v.size_gib;
	snprintf(sn.desired, sizeof(sn.desired), "available");
	snprintf(sn.state, sizeof(sn.state), "creating");
	json_decref(b);
	b = NULL;
	if (s->ops->snapshot_create(s, &sn, &err) < 0)
		goto fail;
	vol_notify_snapshot(req->y, "created", &sn);
	rec_kick(req->y->rec);
	api_reply_json(rep, 202, vol_render_snapshot(&sn));
	return;
fail:
	json_decref(b);
	api_reply_err(rep, &err);
}

void v1_snapshots_list(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_snapshot *v;
	size_t n;

	if (s->ops->snapshot_list(s, &v, &n, &err) < 0)
		api_reply_err(rep, &err);
	else
		reply_items(rep, v, n, snapshot_item);
}

void v1_snapshot_get(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_snapshot sn;

	if (s->ops->snapshot_get(s, req->params[0], &sn, &err) < 0)
		api_reply_err(rep, &err);
	else
		api_reply_json(rep, 200, vol_render_snapshot(&sn));
}

void v1_snapshot_delete(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_snapshot sn;

	if (s->ops->snapshot_request_delete(s, req->params[0], &sn, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	vol_notify_snapshot(req->y, "state", &sn);
	rec_kick(req->y->rec);
	api_reply_json(rep, 202, vol_render_snapshot(&sn));
}

void v1_snapshot_clone(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"name", BODY_STRING, true, 0, 0, 0},
	};
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_snapshot sn;
	struct st_volume v = {0};
	char what[OBJ_NAME_MAX + 16];
	json_t *b = NULL;

	if (body_parse(req->body, req->body_len, false, &b, &err) < 0 ||
	    body_check(b, fields, sizeof(fields) / sizeof(fields[0]), &err) < 0 ||
	    obj_check_name("volume", yun_json_str_or(b, "name", ""), &err) < 0)
		goto fail;
	if (s->ops->snapshot_get(s, req->params[0], &sn, &err) < 0)
		goto fail;
	snprintf(what, sizeof(what), "volume %s", yun_json_str_or(b, "name", ""));
	/* A copy may take all its size (a reflink takes nothing, but is not sure). */
	if (check_free(req->y, what, sn.size_gib, &err) < 0)
		goto fail;
	meta_new(&v.m, "vol", yun_json_str_or(b, "name", ""));
	v.size_gib = sn.size_gib;
	snprintf(v.source_snapshot, sizeof(v.source_snapshot), "%s", sn.m.id);
	snprintf(v.desired, sizeof(v.desired), "available");
	snprintf(v.state, sizeof(v.state), "creating");
	json_decref(b);
	create_volume(req, rep, &v);
	return;
fail:
	json_decref(b);
	api_reply_err(rep, &err);
}
