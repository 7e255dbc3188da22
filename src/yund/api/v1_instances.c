/*
 * v1_instances.c - /v1/instances: create (with admission), show, list,
 * start/stop/reboot/pause/resume/delete (intent only), logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../compute/host.h"
#include "../compute/instance.h"
#include "../compute/reconcile.h"
#include "../core/notify.h"
#include "../core/render.h"
#include "../core/sshkey.h"
#include "../store/store.h"
#include "../volume/volume.h"
#include "../yund.h"
#include "body.h"
#include "ranges.h"
#include "v1.h"

void v1_instances_list(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_instance *v;
	size_t n;
	json_t *items;

	if (s->ops->instance_list(s, &v, &n, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	items = json_array();
	for (size_t i = 0; i < n && items; i++)
		json_array_append_new(items, render_instance(&v[i]));
	st_instances_free(v, n);
	api_reply_json(rep, 200, render_list(items));
}

void v1_instance_get(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_instance in;

	if (s->ops->instance_get(s, req->params[0], &in, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	api_reply_json(rep, 200, render_instance(&in));
	st_instance_clear(&in);
}

/* ---- create ---- */

static const struct body_field create_fields[] = {
    {"name", BODY_STRING, false, 0, 0, 0},
    {"type", BODY_STRING, false, 0, 16, 0},
    {"image", BODY_STRING, true, 1, 255, 0},
    {"flavor", BODY_STRING, false, 1, 255, 0},
    {"vcpus", BODY_INT, false, LIM_VCPUS_MIN, LIM_VCPUS_MAX, 0},
    {"memory_mib", BODY_INT, false, LIM_MEMORY_MIN, LIM_MEMORY_MAX, 0},
    {"disk_gib", BODY_INT, false, LIM_DISK_MIN, LIM_DISK_MAX, 0},
    {"network", BODY_STRING, false, 1, 255, 0},
    {"volumes", BODY_STRING_LIST, false, 0, LIM_INSTANCE_VOLUMES, 320},
    {"user_data", BODY_STRING, false, 0, LIM_USER_DATA_MAX, 0},
    {"command", BODY_STRING_LIST, false, 1, LIM_ARGS_MAX, LIM_ARG_LEN_MAX},
    {"env", BODY_STRING_LIST, false, 0, LIM_ARGS_MAX, LIM_ARG_LEN_MAX},
    {"restart_policy", BODY_STRING, false, 0, 16, 0},
    {"ssh_keys", BODY_STRING_LIST, false, 0, SSHKEY_MAX, SSHKEY_LEN_MAX},
};

static bool env_item_ok(const char *s)
{
	const char *p = s;

	if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_'))
		return false;
	for (p++; *p && *p != '='; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return *p == '=';
}

/* The checks that need no store: types, names, lists. */
static int check_create_body(json_t *b, struct yun_err *err)
{
	const char *type = yun_json_str_or(b, "type", "container");
	const char *rp = yun_json_str_or(b, "restart_policy", "no");
	json_t *v;
	size_t i;

	if (strcmp(type, "container") && strcmp(type, "microvm"))
		return yun_err_set(err, ERANGE,
				   "field type: \"%.16s\": must be container or "
				   "microvm",
				   type);
	if (yun_json_has(b, "name") && obj_check_name("instance", yun_json_str_or(b, "name", ""), err) < 0)
		return -err->code;
	if (strcmp(rp, "no") && strcmp(rp, "on-failure") && strcmp(rp, "always"))
		return yun_err_set(err, ERANGE,
				   "field restart_policy: \"%.16s\": must be no, "
				   "on-failure or always",
				   rp);
	v = json_object_get(b, "command");
	if (v && json_string_length(json_array_get(v, 0)) == 0)
		return yun_err_set(err, ERANGE, "field command[0]: must not be empty");
	json_array_foreach(json_object_get(b, "env"), i, v)
	{
		if (!env_item_ok(json_string_value(v)))
			return yun_err_set(err, ERANGE,
					   "field env[%zu]: \"%.40s\": must be "
					   "NAME=VALUE",
					   i, json_string_value(v));
	}
	if (!strcmp(type, "microvm") && (yun_json_has(b, "command") || yun_json_has(b, "env")))
		return yun_err_set(err, EINVAL,
				   "fields command and env: containers only (a microVM runs its "
				   "image's kernel and init; use user_data)");
	json_array_foreach(json_object_get(b, "ssh_keys"), i, v)
	{
		char why[256];

		if (!sshkey_valid(json_string_value(v), why, sizeof(why)))
			return yun_err_set(err, ERANGE, "field ssh_keys[%zu]: %s", i, why);
	}
	if (!strcmp(type, "container") && json_array_size(json_object_get(b, "ssh_keys")))
		return yun_err_set(err, ERANGE,
				   "field ssh_keys: microVMs only (a container runs no sshd of "
				   "Yun's; use exec or console)");
	if (!strcmp(type, "microvm") && body_int(b, "vcpus", 1) > LIM_VM_VCPUS_MAX)
		return yun_err_set(err, ERANGE, "field vcpus: %lld: a microvm has 1..%d",
				   (long long)body_int(b, "vcpus", 1), LIM_VM_VCPUS_MAX);
	if (!strcmp(type, "microvm") && body_int(b, "memory_mib", 0) > LIM_VM_MEMORY_MAX)
		return yun_err_set(err, ERANGE, "field memory_mib: %lld: a microvm has %d..%d MiB",
				   (long long)body_int(b, "memory_mib", 0), LIM_MEMORY_MIN,
				   LIM_VM_MEMORY_MAX);
	if (yun_json_has(b, "flavor") &&
	    (yun_json_has(b, "vcpus") || yun_json_has(b, "memory_mib") || yun_json_has(b, "disk_gib")))
		return yun_err_set(err, EINVAL,
				   "fields flavor and vcpus/memory_mib/disk_gib: give "
				   "a flavor or explicit sizes, not both");
	if (yun_json_has(b, "vcpus") != yun_json_has(b, "memory_mib"))
		return yun_err_set(err, EINVAL, "field %s: required with %s",
				   yun_json_has(b, "vcpus") ? "memory_mib" : "vcpus",
				   yun_json_has(b, "vcpus") ? "vcpus" : "memory_mib");
	if (yun_json_has(b, "disk_gib") && !yun_json_has(b, "vcpus"))
		return yun_err_set(err, EINVAL, "field disk_gib: needs vcpus and memory_mib too");
	return 0;
}

static char *dump_opt(json_t *b, const char *key)
{
	json_t *v = json_object_get(b, key);

	return v ? json_dumps(v, JSON_COMPACT) : NULL;
}

void v1_instance_create(struct api_req *req, struct api_reply *rep)
{
	struct yund *y = req->y;
	struct store *s = y->store;
	struct yun_err err = {0};
	struct st_instance in = {0};
	struct st_image img = {0};
	struct st_flavor fl;
	struct st_network net;
	struct st_host host;
	struct st_capacity cap;
	struct st_attach vols[LIM_INSTANCE_VOLUMES];
	size_t n_vols = 0;
	json_t *b = NULL, *v;
	const char *ud;

	if (body_parse(req->body, req->body_len, false, &b, &err) < 0 ||
	    body_check(b, create_fields, sizeof(create_fields) / sizeof(create_fields[0]), &err) <
		0 ||
	    check_create_body(b, &err) < 0)
		goto fail;

	obj_new_id("i", in.m.id);
	snprintf(in.m.name, sizeof(in.m.name), "%s", yun_json_str_or(b, "name", in.m.id));
	snprintf(in.m.project, sizeof(in.m.project), OBJ_PROJECT_DEFAULT);
	obj_now(in.m.created_at);
	memcpy(in.m.updated_at, in.m.created_at, sizeof(in.m.updated_at));
	snprintf(in.type, sizeof(in.type), "%s", yun_json_str_or(b, "type", "container"));

	if (s->ops->image_get(s, yun_json_str_or(b, "image", ""), &img, &err) < 0)
		goto fail;
	if (!strcmp(img.state, "building")) {
		yun_err_set(&err, EBUSY, "image %s: is building (wait until it is available)",
			    img.m.name);
		goto fail;
	}
	if (strcmp(img.state, "available")) {
		yun_err_set(&err, EBUSY, "image %s: its build failed (%.200s)", img.m.name,
			    img.failure);
		goto fail;
	}
	if (strcmp(img.type, in.type)) {
		yun_err_set(&err, ERANGE, "image %s: is a %s image, not for %s instances",
			    img.m.name, img.type, in.type);
		goto fail;
	}
	memcpy(in.image_id, img.m.id, sizeof(in.image_id));

	if (yun_json_has(b, "vcpus")) {
		in.vcpus = body_int(b, "vcpus", 1);
		in.memory_mib = body_int(b, "memory_mib", 1024);
		in.disk_gib = body_int(b, "disk_gib", 0);
	} else {
		if (s->ops->flavor_get(s, yun_json_str_or(b, "flavor", INSTANCE_DEFAULT_FLAVOR), &fl,
				       &err) < 0)
			goto fail;
		memcpy(in.flavor_id, fl.m.id, sizeof(in.flavor_id));
		in.vcpus = fl.vcpus;
		in.memory_mib = fl.memory_mib;
		in.disk_gib = fl.disk_gib;
	}
	if (yun_json_has(b, "network")) {
		if (s->ops->network_get(s, yun_json_str_or(b, "network", ""), &net, &err) < 0)
			goto fail;
		if (!strcmp(net.desired, "deleted")) {
			yun_err_set(&err, EBUSY, "network %s: is being deleted", net.m.name);
			goto fail;
		}
		memcpy(in.network_id, net.m.id, sizeof(in.network_id));
	}
	if (s->ops->host_get(s, y->host_id, &host, &err) < 0)
		goto fail;
	host_capacity(&host, &cap);
	memcpy(in.host_id, host.m.id, sizeof(in.host_id));

	ud = yun_json_str_or(b, "user_data", NULL);
	in.user_data = ud ? strdup(ud) : NULL;
	in.command = dump_opt(b, "command");
	in.env = dump_opt(b, "env");
	if (json_array_size(json_object_get(b, "ssh_keys")))
		in.ssh_keys = dump_opt(b, "ssh_keys");
	if ((ud && !in.user_data) || (yun_json_has(b, "command") && !in.command) ||
	    (yun_json_has(b, "env") && !in.env) ||
	    (json_array_size(json_object_get(b, "ssh_keys")) && !in.ssh_keys)) {
		yun_err_set(&err, ENOMEM, "out of memory");
		goto fail;
	}
	/* Volumes: attached in the create's transaction (volume/volume.h). */
	json_array_foreach(json_object_get(b, "volumes"), n_vols, v)
	{
		if (vol_parse_attach(json_string_value(v), &vols[n_vols], &err) < 0)
			goto fail;
	}
	snprintf(in.restart_policy, sizeof(in.restart_policy), "%s",
		 yun_json_str_or(b, "restart_policy", "no"));
	snprintf(in.desired, sizeof(in.desired), "running");
	snprintf(in.state, sizeof(in.state), "creating");
	in.stop_timeout = INSTANCE_STOP_TIMEOUT;

	if (s->ops->instance_create_attached(s, &in, &cap, vols, n_vols, &err) < 0)
		goto fail;
	notify_instance(y, "created", &in);
	rec_kick(y->rec);
	api_reply_json(rep, 202, render_instance(&in));
	goto out;
fail:
	api_reply_err(rep, &err);
out:
	st_image_clear(&img);
	st_instance_clear(&in);
	json_decref(b);
}

/* ---- intent changes ---- */

enum action { ACT_START, ACT_STOP, ACT_REBOOT, ACT_PAUSE, ACT_RESUME, ACT_DELETE };

/* Pause and resume: a microVM that runs (or is paused). */
static int check_pausable(enum action act, const struct st_instance *in, struct yun_err *err)
{
	bool runs = !strcmp(in->desired, "running") || !strcmp(in->desired, "paused");

	if (strcmp(in->type, "microvm"))
		return yun_err_set(err, ERANGE,
				   "instance %s: pausing containers is not supported yet (this is "
				   "a %s instance; microVMs can be paused)",
				   in->m.name, in->type);
	if (!runs || (strcmp(in->state, "running") && strcmp(in->state, "paused")))
		return yun_err_set(err, EBUSY,
				   "instance %s: is not running (state %s%s); cannot %s it",
				   in->m.name, in->state, runs ? "" : "; start it",
				   act == ACT_PAUSE ? "pause" : "resume");
	return 0;
}

static int decide(enum action act, const struct st_instance *in, int64_t timeout,
		  struct st_intent *out, struct yun_err *err)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->desired, in->desired, sizeof(out->desired));
	out->reboot_gen = in->reboot_gen;
	out->stop_timeout = in->stop_timeout;
	if (act != ACT_DELETE && !strcmp(in->desired, "deleted"))
		return yun_err_set(err, EBUSY, "instance %s: is being deleted", in->m.name);
	switch (act) {
	case ACT_START:
		snprintf(out->desired, sizeof(out->desired), "running");
		break;
	case ACT_STOP:
		snprintf(out->desired, sizeof(out->desired), "stopped");
		if (timeout >= 0)
			out->stop_timeout = timeout;
		break;
	case ACT_REBOOT:
		if (strcmp(in->desired, "running") || strcmp(in->state, "running"))
			return yun_err_set(err, EBUSY, "instance %s: is not running (state %s%s)",
					   in->m.name, in->state,
					   strcmp(in->desired, "running") ? "; start it" : "");
		out->reboot_gen = in->reboot_gen + 1;
		break;
	case ACT_PAUSE:
	case ACT_RESUME:
		if (check_pausable(act, in, err) < 0)
			return -err->code;
		snprintf(out->desired, sizeof(out->desired),
			 act == ACT_PAUSE ? "paused" : "running");
		break;
	case ACT_DELETE:
		snprintf(out->desired, sizeof(out->desired), "deleted");
		snprintf(out->state, sizeof(out->state), "deleting");
		break;
	}
	return 0;
}

static void act(struct api_req *req, struct api_reply *rep, enum action a, int64_t timeout)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_instance in = {0}, cur = {0};
	struct st_intent it;
	char id[OBJ_ID_MAX];
	int rc = -EAGAIN;

	/* Compare-and-swap on the intent generation: a concurrent change retries. */
	for (int tries = 0; rc == -EAGAIN && tries < 10; tries++) {
		st_instance_clear(&in);
		rc = s->ops->instance_get(s, req->params[0], &in, &err);
		if (rc < 0)
			break;
		rc = decide(a, &in, timeout, &it, &err);
		if (!rc)
			rc = s->ops->instance_set_intent(s, in.m.id, in.intent_gen, &it, &err);
	}
	memcpy(id, in.m.id, sizeof(id));
	if (rc < 0) {
		st_instance_clear(&in);
		api_reply_err(rep, &err);
		return;
	}
	/*
	 * Show the instance as it is now. A delete of a stopped instance may be
	 * finished by the loop before this re-read: then the answer is the row
	 * as the change left it (the delete was accepted, the 202 is true).
	 */
	rc = s->ops->instance_get(s, id, &cur, &err);
	if (rc == -ENOENT && a == ACT_DELETE) {
		snprintf(in.desired, sizeof(in.desired), "%s", it.desired);
		if (it.state[0])
			snprintf(in.state, sizeof(in.state), "%s", it.state);
	} else if (rc < 0) {
		st_instance_clear(&in);
		api_reply_err(rep, &err);
		return;
	} else {
		st_instance_clear(&in);
		in = cur;
	}
	notify_instance(req->y, "state", &in);
	rec_kick(req->y->rec);
	api_reply_json(rep, 202, render_instance(&in));
	st_instance_clear(&in);
}

/* Actions without parameters still refuse a body with fields in it. */
static bool no_fields(struct api_req *req, struct api_reply *rep)
{
	struct yun_err err = {0};
	json_t *b = NULL;
	int rc = body_parse(req->body, req->body_len, true, &b, &err);

	if (!rc)
		rc = body_check(b, NULL, 0, &err);
	json_decref(b);
	if (rc)
		api_reply_err(rep, &err);
	return rc == 0;
}

void v1_instance_start(struct api_req *req, struct api_reply *rep)
{
	if (no_fields(req, rep))
		act(req, rep, ACT_START, -1);
}

void v1_instance_stop(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"timeout", BODY_INT, false, 0, LIM_STOP_TIMEOUT, 0},
	};
	struct yun_err err = {0};
	json_t *b = NULL;
	int64_t timeout;

	if (body_parse(req->body, req->body_len, true, &b, &err) < 0 ||
	    body_check(b, fields, 1, &err) < 0) {
		json_decref(b);
		api_reply_err(rep, &err);
		return;
	}
	timeout = body_int(b, "timeout", -1);
	json_decref(b);
	act(req, rep, ACT_STOP, timeout);
}

void v1_instance_reboot(struct api_req *req, struct api_reply *rep)
{
	if (no_fields(req, rep))
		act(req, rep, ACT_REBOOT, -1);
}

void v1_instance_pause(struct api_req *req, struct api_reply *rep)
{
	if (no_fields(req, rep))
		act(req, rep, ACT_PAUSE, -1);
}

void v1_instance_resume(struct api_req *req, struct api_reply *rep)
{
	if (no_fields(req, rep))
		act(req, rep, ACT_RESUME, -1);
}

void v1_instance_delete(struct api_req *req, struct api_reply *rep)
{
	if (no_fields(req, rep))
		act(req, rep, ACT_DELETE, -1);
}

/* ---- logs ---- */

/* Offset in buf[0..len) where the last `lines` lines start. */
static size_t tail_start(const char *buf, size_t len, long lines)
{
	size_t i = len;

	if (i && buf[i - 1] == '\n')
		i--; /* the final newline ends the last line */
	while (i > 0) {
		if (buf[i - 1] == '\n' && --lines == 0)
			return i;
		i--;
	}
	return 0;
}

void v1_instance_logs(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_instance in;
	const char *tail = api_query(req, "tail");
	char path[PATH_MAX];
	long lines = 0;
	struct stat st;
	uint64_t off;
	int fd;

	if (tail) {
		char *end;

		errno = 0;
		lines = strtol(tail, &end, 10);
		if (!*tail || *end || errno || lines < 1 || lines > LIM_LOG_TAIL_MAX) {
			api_reply_error(rep, 400,
					"query tail: \"%.20s\": must be a number of lines "
					"1..%d",
					tail, LIM_LOG_TAIL_MAX);
			return;
		}
	}
	if (s->ops->instance_get(s, req->params[0], &in, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	instance_log_path(req->y, in.m.id, path, sizeof(path));
	st_instance_clear(&in);
	rep->status = 200;
	rep->content_type = "text/plain; charset=utf-8";
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return; /* no output yet: an empty log */
	}
	off = (uint64_t)st.st_size > LIM_LOG_BYTES ? (uint64_t)st.st_size - LIM_LOG_BYTES : 0;
	if (!lines) {
		rep->fd = fd;
		rep->fd_off = off;
		rep->fd_len = (uint64_t)st.st_size - off;
		return;
	}
	rep->text = malloc((size_t)((uint64_t)st.st_size - off) + 1);
	if (rep->text) {
		ssize_t n = pread(fd, rep->text, (size_t)((uint64_t)st.st_size - off), (off_t)off);
		size_t start;

		if (n < 0)
			n = 0;
		start = tail_start(rep->text, (size_t)n, lines);
		memmove(rep->text, rep->text + start, (size_t)n - start);
		rep->text_len = (size_t)n - start;
	}
	close(fd);
}
