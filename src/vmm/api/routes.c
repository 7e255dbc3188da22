/* routes.c - see routes.h. */
#include "routes.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../control.h"
#include "fields.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One request as the handlers see it. */
struct req {
	struct ctl *ctl;
	const char *method;
	const char *id;           /* the {drive_id} / {iface_id} part of the path, or NULL */
	const char *text;
	size_t len;
	json_t *body;             /* after need_body() */
	unsigned status;          /* an error's status when not 400/501 (0: those) */
	bool stop_after;          /* see struct api_reply */
};

/* 0: 204 (or 200 when *out is set); negative: the error in err. */
typedef int (*handler_fn)(struct req *q, json_t **out, struct yun_err *err);

static int need_body(struct req *q, const struct field *f, size_t n, struct yun_err *err)
{
	int rc = fields_parse(q->text, q->len, &q->body, err);

	return rc ? rc : fields_check(q->body, f, n, "", err);
}

/* ---- shared pieces ---------------------------------------------------------------- */

static const struct field bucket_fields[] = {
	{ "size", FIELD_COUNT, true },
	{ "one_time_burst", FIELD_COUNT, false },
	{ "refill_time", FIELD_COUNT, true },
};

static const struct field limiter_fields[] = {
	{ "bandwidth", FIELD_OBJECT, false },
	{ "ops", FIELD_OBJECT, false },
};

/*
 * body[name], a Firecracker RateLimiter, as the buckets it sets (ratelimit.h
 * converts them; a bucket that is absent is not set).
 */
static int limiter(json_t *body, const char *name, struct ratelimit_update *u,
		   struct yun_err *err)
{
	json_t *o = json_object_get(body, name);
	char p1[64], p2[80];
	int rc;

	*u = (struct ratelimit_update){ 0 };
	if (!o)
		return 0;
	/* Our checks first, for null fields and the messages every field gets. */
	snprintf(p1, sizeof(p1), "%s.", name);
	rc = fields_check(o, limiter_fields, N(limiter_fields), p1, err);
	for (size_t k = 0; !rc && k < N(limiter_fields); k++) {
		json_t *bucket = json_object_get(o, limiter_fields[k].name);

		snprintf(p2, sizeof(p2), "%s%s.", p1, limiter_fields[k].name);
		if (bucket)
			rc = fields_check(bucket, bucket_fields, N(bucket_fields), p2, err);
	}
	return rc ? rc : ratelimit_update_from_json(o, name, u, err);
}

/* The body's id field must name the same thing as the path. */
static int same_id(struct req *q, const char *field, struct yun_err *err)
{
	const char *b = yun_json_str_or(q->body, field, NULL);

	if (b && strcmp(b, q->id))
		return yun_err_set(err, EINVAL, "%s \"%.64s\" in the body differs from \"%.64s\" in "
				   "the path", field, b, q->id);
	return 0;
}

/* A string field that may only hold `only` (Firecracker options yun-vmm does not have). */
static int only_value(json_t *body, const char *name, const char *only, const char *alt,
		      struct yun_err *err)
{
	const char *v = yun_json_str_or(body, name, NULL);

	if (v && strcmp(v, only) && (!alt || strcmp(v, alt)))
		return yun_err_set(err, EINVAL, "%s \"%.64s\": not supported by yun-vmm (\"%s\"%s%s%s)",
				   name, v, only, alt ? " or \"" : "", alt ? alt : "",
				   alt ? "\"" : "");
	return 0;
}

static json_t *config_part(struct ctl *c, const char *key)
{
	json_t *all = ctl_describe(c), *part;

	if (!all)
		return NULL;
	part = json_incref(json_object_get(all, key));
	json_decref(all);
	return part;
}

/* ---- GET / ------------------------------------------------------------------------- */

static int get_root(struct req *q, json_t **out, struct yun_err *err)
{
	(void)err;
	*out = json_pack("{s:s, s:s, s:s, s:s}", "id", "anonymous-instance", "state",
			 ctl_state_name(ctl_state(q->ctl)), "vmm_version", CTL_VERSION, "app_name",
			 "yun-vmm");
	return 0;
}

/* ---- /machine-config --------------------------------------------------------------- */

static const struct field machine_fields[] = {
	{ "vcpu_count", FIELD_COUNT, false },
	{ "mem_size_mib", FIELD_COUNT, false },
	{ "smt", FIELD_BOOL, false },
	{ "track_dirty_pages", FIELD_BOOL, false },
	{ "cpu_template", FIELD_STRING, false },
	{ "huge_pages", FIELD_STRING, false },
};

static int machine_config(struct req *q, json_t **out, struct yun_err *err)
{
	struct ctl_machine m = { 0 };
	json_t *b;
	int rc;

	if (!strcmp(q->method, "GET")) {
		*out = config_part(q->ctl, "machine-config");
		return 0;
	}
	rc = need_body(q, machine_fields, N(machine_fields), err);
	b = q->body;
	if (!rc)
		rc = only_value(b, "cpu_template", "None", NULL, err);
	if (!rc)
		rc = only_value(b, "huge_pages", "None", NULL, err);
	if (rc)
		return rc;
	m.has_vcpu_count = yun_json_has(b, "vcpu_count");
	m.vcpu_count = field_count(b, "vcpu_count", 0);
	m.has_mem_size_mib = yun_json_has(b, "mem_size_mib");
	m.mem_size_mib = field_count(b, "mem_size_mib", 0);
	m.has_smt = yun_json_has(b, "smt");
	m.smt = yun_json_bool_or(b, "smt", false);
	m.has_track_dirty_pages = yun_json_has(b, "track_dirty_pages");
	m.track_dirty_pages = yun_json_bool_or(b, "track_dirty_pages", false);
	return ctl_set_machine(q->ctl, &m, !strcmp(q->method, "PATCH"), err);
}

/* ---- /boot-source ------------------------------------------------------------------ */

static const struct field boot_fields[] = {
	{ "kernel_image_path", FIELD_STRING, true },
	{ "boot_args", FIELD_STRING, false },
	{ "initrd_path", FIELD_STRING, false },
};

static int boot_source(struct req *q, json_t **out, struct yun_err *err)
{
	int rc = need_body(q, boot_fields, N(boot_fields), err);

	(void)out;
	if (rc)
		return rc;
	return ctl_set_boot_source(q->ctl, yun_json_str_or(q->body, "kernel_image_path", ""),
				   yun_json_str_or(q->body, "boot_args", NULL),
				   yun_json_str_or(q->body, "initrd_path", NULL), err);
}

/* ---- /drives/{drive_id} ------------------------------------------------------------ */

static const struct field drive_fields[] = {
	{ "drive_id", FIELD_STRING, true },
	{ "path_on_host", FIELD_STRING, false },
	{ "is_root_device", FIELD_BOOL, true },
	{ "is_read_only", FIELD_BOOL, false },
	{ "partuuid", FIELD_STRING, false },
	{ "cache_type", FIELD_STRING, false },
	{ "io_engine", FIELD_STRING, false },
	{ "rate_limiter", FIELD_OBJECT, false },
	{ "socket", FIELD_STRING, false },
};

static const struct field drive_patch_fields[] = {
	{ "drive_id", FIELD_STRING, true },
	{ "path_on_host", FIELD_STRING, false },
	{ "rate_limiter", FIELD_OBJECT, false },
};

static int drives(struct req *q, json_t **out, struct yun_err *err)
{
	bool patch = !strcmp(q->method, "PATCH");
	struct ctl_drive d = { 0 };
	json_t *b;
	int rc;

	(void)out;
	rc = patch ? need_body(q, drive_patch_fields, N(drive_patch_fields), err)
		   : need_body(q, drive_fields, N(drive_fields), err);
	b = q->body;
	if (!rc)
		rc = same_id(q, "drive_id", err);
	if (!rc && yun_json_has(b, "socket"))
		rc = yun_err_set(err, EINVAL, "socket: vhost-user drives are not supported by "
				 "yun-vmm (use path_on_host)");
	if (!rc && yun_json_has(b, "partuuid"))
		rc = yun_err_set(err, EINVAL, "partuuid: not supported by yun-vmm (the root device "
				 "is the guest's first disk; put root= in boot_args)");
	if (!rc)
		rc = only_value(b, "cache_type", "Unsafe", "Writeback", err);
	if (!rc)
		rc = only_value(b, "io_engine", "Sync", "Async", err);
	if (!rc)
		rc = limiter(b, "rate_limiter", &d.limits, err);
	if (rc)
		return rc;
	d.drive_id = q->id;
	d.path_on_host = yun_json_str_or(b, "path_on_host", NULL);
	d.is_root_device = yun_json_bool_or(b, "is_root_device", false);
	d.is_read_only = yun_json_bool_or(b, "is_read_only", false);
	return patch ? ctl_patch_drive(q->ctl, &d, err) : ctl_put_drive(q->ctl, &d, err);
}

/* ---- /network-interfaces/{iface_id} ------------------------------------------------ */

static const struct field net_fields[] = {
	{ "iface_id", FIELD_STRING, true },
	{ "host_dev_name", FIELD_STRING, true },
	{ "guest_mac", FIELD_STRING, false },
	{ "rx_rate_limiter", FIELD_OBJECT, false },
	{ "tx_rate_limiter", FIELD_OBJECT, false },
};

static const struct field net_patch_fields[] = {
	{ "iface_id", FIELD_STRING, true },
	{ "rx_rate_limiter", FIELD_OBJECT, false },
	{ "tx_rate_limiter", FIELD_OBJECT, false },
};

static int network_interfaces(struct req *q, json_t **out, struct yun_err *err)
{
	bool patch = !strcmp(q->method, "PATCH");
	struct ctl_net n = { 0 };
	int rc;

	(void)out;
	rc = patch ? need_body(q, net_patch_fields, N(net_patch_fields), err)
		   : need_body(q, net_fields, N(net_fields), err);
	if (!rc)
		rc = same_id(q, "iface_id", err);
	if (!rc)
		rc = limiter(q->body, "rx_rate_limiter", &n.rx, err);
	if (!rc)
		rc = limiter(q->body, "tx_rate_limiter", &n.tx, err);
	if (rc)
		return rc;
	n.iface_id = q->id;
	n.host_dev_name = yun_json_str_or(q->body, "host_dev_name", NULL);
	n.guest_mac = yun_json_str_or(q->body, "guest_mac", NULL);
	return patch ? ctl_patch_net(q->ctl, &n, err) : ctl_put_net(q->ctl, &n, err);
}

/* ---- /vsock ------------------------------------------------------------------------ */

static const struct field vsock_fields[] = {
	{ "guest_cid", FIELD_COUNT, true },
	{ "uds_path", FIELD_STRING, true },
	{ "vsock_id", FIELD_STRING, false },
};

static int vsock(struct req *q, json_t **out, struct yun_err *err)
{
	int rc = need_body(q, vsock_fields, N(vsock_fields), err);

	(void)out;
	if (rc)
		return rc;
	return ctl_set_vsock(q->ctl, field_count(q->body, "guest_cid", 0),
			     yun_json_str_or(q->body, "uds_path", ""), err);
}

/* ---- /balloon ---------------------------------------------------------------------- */

static const struct field balloon_fields[] = {
	{ "amount_mib", FIELD_COUNT, true },
	{ "deflate_on_oom", FIELD_BOOL, true },
	{ "stats_polling_interval_s", FIELD_COUNT, false },
};

static const struct field balloon_patch_fields[] = {
	{ "amount_mib", FIELD_COUNT, true },
};

static const struct field balloon_stats_fields[] = {
	{ "stats_polling_interval_s", FIELD_COUNT, true },
};

static int balloon(struct req *q, json_t **out, struct yun_err *err)
{
	int rc;

	if (!strcmp(q->method, "GET")) {
		*out = config_part(q->ctl, "balloon");
		if (*out && json_is_null(*out)) {
			json_decref(*out);
			*out = NULL;
			return yun_err_set(err, ENOENT, "no balloon device (PUT /balloon before the "
					   "start)");
		}
		return 0;
	}
	if (!strcmp(q->method, "PATCH")) {
		rc = need_body(q, balloon_patch_fields, N(balloon_patch_fields), err);
		return rc ? rc : ctl_balloon_target(q->ctl, field_count(q->body, "amount_mib", 0),
						    err);
	}
	rc = need_body(q, balloon_fields, N(balloon_fields), err);
	if (rc)
		return rc;
	return ctl_set_balloon(q->ctl, field_count(q->body, "amount_mib", 0),
			       yun_json_bool_or(q->body, "deflate_on_oom", false),
			       field_count(q->body, "stats_polling_interval_s", 0), err);
}

static int balloon_statistics(struct req *q, json_t **out, struct yun_err *err)
{
	int rc;

	if (!strcmp(q->method, "GET"))
		return ctl_balloon_stats(q->ctl, out, err);
	rc = need_body(q, balloon_stats_fields, N(balloon_stats_fields), err);
	return rc ? rc : ctl_balloon_stats_interval(
				 q->ctl, field_count(q->body, "stats_polling_interval_s", 0), err);
}

/* ---- /actions ---------------------------------------------------------------------- */

static const struct field action_fields[] = {
	{ "action_type", FIELD_STRING, true },
	{ "timeout_ms", FIELD_COUNT, false }, /* Yun: with Shutdown */
};

#define SHUTDOWN_DEFAULT_MS 30000

static int actions(struct req *q, json_t **out, struct yun_err *err)
{
	const char *type;
	int rc = need_body(q, action_fields, N(action_fields), err);

	(void)out;
	if (rc)
		return rc;
	type = yun_json_str_or(q->body, "action_type", "");
	if (yun_json_has(q->body, "timeout_ms") && strcmp(type, "Shutdown"))
		return yun_err_set(err, EINVAL, "timeout_ms: only with action_type Shutdown");
	if (!strcmp(type, "InstanceStart"))
		return ctl_start(q->ctl, err);
	if (!strcmp(type, "SendCtrlAltDel"))
		return ctl_send_ctrl_alt_del(q->ctl, err);
	if (!strcmp(type, "FlushMetrics"))
		return ctl_flush_metrics(q->ctl, err);
	if (!strcmp(type, "Shutdown"))
		return ctl_shutdown(q->ctl, field_count(q->body, "timeout_ms", SHUTDOWN_DEFAULT_MS),
				    err);
	return yun_err_set(err, EINVAL, "action_type \"%.64s\": unknown (InstanceStart, "
			   "SendCtrlAltDel, FlushMetrics, Shutdown)", type);
}

/* ---- /vm, /vm/config --------------------------------------------------------------- */

static const struct field vm_fields[] = {
	{ "state", FIELD_STRING, true },
};

static int vm_state(struct req *q, json_t **out, struct yun_err *err)
{
	const char *state;
	int rc = need_body(q, vm_fields, N(vm_fields), err);

	(void)out;
	if (rc)
		return rc;
	state = yun_json_str_or(q->body, "state", "");
	if (!strcmp(state, "Paused"))
		rc = ctl_pause(q->ctl, err);
	else if (!strcmp(state, "Resumed"))
		rc = ctl_resume(q->ctl, err);
	else
		return yun_err_set(err, EINVAL, "state \"%.64s\": must be Paused or Resumed", state);
	if (rc) {
		/* Name the transition asked for: "state Resumed: the VM is not paused". */
		char msg[YUN_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		yun_err_set(err, err->code, "state %s: %s", state, msg);
	}
	return rc;
}

static int vm_config(struct req *q, json_t **out, struct yun_err *err)
{
	(void)err;
	*out = ctl_describe(q->ctl);
	return 0;
}

/* ---- /snapshot/create, /snapshot/load ---------------------------------------------- */

static const struct field snap_create_fields[] = {
	{ "snapshot_type", FIELD_STRING, false },
	{ "snapshot_path", FIELD_STRING, true },
	{ "mem_file_path", FIELD_STRING, true },
};

static const struct field snap_load_fields[] = {
	{ "snapshot_path", FIELD_STRING, true },
	{ "mem_backend", FIELD_OBJECT, false },
	{ "mem_file_path", FIELD_STRING, false },
	{ "enable_diff_snapshots", FIELD_BOOL, false },
	{ "resume_vm", FIELD_BOOL, false },
};

static const struct field mem_backend_fields[] = {
	{ "backend_path", FIELD_STRING, true },
	{ "backend_type", FIELD_STRING, true },
};

static int snapshot_create(struct req *q, json_t **out, struct yun_err *err)
{
	const char *type;
	int rc = need_body(q, snap_create_fields, N(snap_create_fields), err);

	(void)out;
	if (rc)
		return rc;
	type = yun_json_str_or(q->body, "snapshot_type", "Full");
	if (strcmp(type, "Full") && strcmp(type, "Diff"))
		return yun_err_set(err, EINVAL, "snapshot_type \"%.64s\": must be Full or Diff",
				   type);
	return ctl_snapshot_create(q->ctl, yun_json_str_or(q->body, "snapshot_path", ""),
				   yun_json_str_or(q->body, "mem_file_path", ""), !strcmp(type, "Diff"),
				   err);
}

static int snapshot_load(struct req *q, json_t **out, struct yun_err *err)
{
	json_t *backend;
	const char *mem;
	int rc = need_body(q, snap_load_fields, N(snap_load_fields), err);

	(void)out;
	if (rc)
		return rc;
	backend = json_object_get(q->body, "mem_backend");
	mem = yun_json_str_or(q->body, "mem_file_path", NULL);
	if (!!backend == !!mem)
		return yun_err_set(err, EINVAL, "mem_backend, mem_file_path: exactly one of them is "
				   "required");
	if (backend) {
		rc = fields_check(backend, mem_backend_fields, N(mem_backend_fields),
				  "mem_backend.", err);
		if (!rc && strcmp(yun_json_str_or(backend, "backend_type", ""), "File"))
			rc = yun_err_set(err, EINVAL, "mem_backend.backend_type \"%.64s\": yun-vmm "
					 "loads memory from a File only",
					 yun_json_str_or(backend, "backend_type", ""));
		if (rc)
			return rc;
		mem = yun_json_str_or(backend, "backend_path", "");
	}
	return ctl_snapshot_load(q->ctl, yun_json_str_or(q->body, "snapshot_path", ""), mem,
				 yun_json_bool_or(q->body, "enable_diff_snapshots", false),
				 yun_json_bool_or(q->body, "resume_vm", false), err);
}

/* ---- /metrics, /migrate ------------------------------------------------------------ */

static const struct field metrics_fields[] = {
	{ "metrics_path", FIELD_STRING, true },
};

static int metrics(struct req *q, json_t **out, struct yun_err *err)
{
	int rc;

	if (!strcmp(q->method, "GET"))
		return ctl_metrics(q->ctl, out, err);
	rc = need_body(q, metrics_fields, N(metrics_fields), err);
	return rc ? rc : ctl_set_metrics_path(q->ctl, yun_json_str_or(q->body, "metrics_path", ""), err);
}

static const struct field migrate_fields[] = {
	{ "destination", FIELD_STRING, true },
	{ "token", FIELD_STRING, true },
	{ "downtime_ms", FIELD_COUNT, false },
	{ "max_rounds", FIELD_COUNT, false },
	{ "timeout_ms", FIELD_COUNT, false },
};

/* A count field within [lo, hi] (0 = absent = the engine's default). */
static int count_in(json_t *body, const char *name, uint64_t lo, uint64_t hi, unsigned *out,
		    struct yun_err *err)
{
	uint64_t v = field_count(body, name, 0);

	if (yun_json_has(body, name) && (v < lo || v > hi))
		return yun_err_set(err, ERANGE, "%s %llu: must be %llu to %llu", name,
				   (unsigned long long)v, (unsigned long long)lo,
				   (unsigned long long)hi);
	*out = (unsigned)v;
	return 0;
}

static int migrate(struct req *q, json_t **out, struct yun_err *err)
{
	struct ctl_migrate_req m = { 0 };
	enum ctl_migrate_result result;
	json_t *stats = NULL;
	int rc = need_body(q, migrate_fields, N(migrate_fields), err);

	if (rc)
		return rc;
	m.destination = yun_json_str_or(q->body, "destination", "");
	m.token = yun_json_str_or(q->body, "token", "");
	if (!*m.destination || !strchr(m.destination, ':'))
		return yun_err_set(err, EINVAL, "destination \"%.64s\": must be HOST:PORT",
				   m.destination);
	if (strlen(m.token) < 16)
		return yun_err_set(err, EINVAL, "token: at least 16 characters (a per-migration "
				   "secret, e.g. 32 random bytes in hex)");
	rc = count_in(q->body, "downtime_ms", 1, 60000, &m.downtime_ms, err);
	if (!rc)
		rc = count_in(q->body, "max_rounds", 1, CTL_MIGRATE_MAX_ROUNDS, &m.max_rounds, err);
	if (!rc)
		rc = count_in(q->body, "timeout_ms", 100, 600000, &m.timeout_ms, err);
	if (!rc)
		rc = ctl_migrate(q->ctl, &m, &stats, &result, err);
	if (!rc) {
		*out = stats;
		q->stop_after = true;
		return 0;
	}
	json_decref(stats);
	if (result == CTL_MIGRATE_UNKNOWN)
		q->status = 500;
	return rc;
}

/* ---- the table ----------------------------------------------------------------------- */

struct route {
	const char *path;   /* a trailing "/{...}" matches one non-empty path segment */
	const char *method;
	handler_fn fn;
};

static const struct route routes[] = {
	{ "/", "GET", get_root },
	{ "/machine-config", "GET", machine_config },
	{ "/machine-config", "PUT", machine_config },
	{ "/machine-config", "PATCH", machine_config },
	{ "/boot-source", "PUT", boot_source },
	{ "/drives/{drive_id}", "PUT", drives },
	{ "/drives/{drive_id}", "PATCH", drives },
	{ "/network-interfaces/{iface_id}", "PUT", network_interfaces },
	{ "/network-interfaces/{iface_id}", "PATCH", network_interfaces },
	{ "/vsock", "PUT", vsock },
	{ "/balloon", "GET", balloon },
	{ "/balloon", "PUT", balloon },
	{ "/balloon", "PATCH", balloon },
	{ "/balloon/statistics", "GET", balloon_statistics },
	{ "/balloon/statistics", "PATCH", balloon_statistics },
	{ "/actions", "PUT", actions },
	{ "/vm", "PATCH", vm_state },
	{ "/vm/config", "GET", vm_config },
	{ "/snapshot/create", "PUT", snapshot_create },
	{ "/snapshot/load", "PUT", snapshot_load },
	{ "/metrics", "GET", metrics },
	{ "/metrics", "PUT", metrics },
	{ "/migrate", "PUT", migrate },
};

/*
 * {"fault_message": msg}. A message that echoes bytes that are not UTF-8
 * (a path, a file name) has them replaced by '?': JSON strings are UTF-8.
 */
static json_t *fault(char *msg)
{
	json_t *s = json_string(msg);

	if (!s) {
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		s = json_string(msg);
	}
	return json_pack("{s:o*}", "fault_message", s);
}

/* Does path match the pattern? *id gets the {..} segment (pointing into path). */
static bool match(const char *pattern, const char *path, const char **id)
{
	const char *brace = strchr(pattern, '{');
	size_t n;

	*id = NULL;
	if (!brace)
		return !strcmp(pattern, path);
	n = (size_t)(brace - pattern);
	if (strncmp(pattern, path, n) || !path[n] || strchr(path + n, '/'))
		return false;
	*id = path + n;
	return true;
}

void api_handle(struct ctl *ctl, const char *method, const char *path, const char *body,
		size_t body_len, struct api_reply *r)
{
	struct req q = { .ctl = ctl, .method = method, .text = body, .len = body_len };
	struct yun_err err = { 0 };
	const struct route *rt = NULL;
	json_t *out = NULL;
	bool path_known = false;
	int rc;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < N(routes); i++) {
		const char *id;

		if (!match(routes[i].path, path, &id))
			continue;
		path_known = true;
		snprintf(r->allow + strlen(r->allow), sizeof(r->allow) - strlen(r->allow), "%s%s",
			 r->allow[0] ? ", " : "", routes[i].method);
		if (!strcmp(routes[i].method, method)) {
			rt = &routes[i];
			q.id = id;
		}
	}
	if (!rt) {
		r->status = path_known ? 405 : 404;
		if (path_known)
			yun_err_set(&err, EINVAL, "%s %.200s: method not allowed (allowed: %s)",
				    method, path, r->allow);
		else
			yun_err_set(&err, ENOENT, "%s %.200s: no such resource", method, path);
		r->body = fault(err.msg);
		return;
	}
	r->allow[0] = '\0';
	rc = rt->fn(&q, &out, &err);
	json_decref(q.body);
	if (rc < 0) {
		char msg[YUN_ERR_MSG_MAX + 300];

		json_decref(out);
		snprintf(msg, sizeof(msg), "%s %.200s: %s", method, path, err.msg);
		r->status = q.status ? q.status : rc == -ENOSYS ? 501 : 400;
		r->body = fault(msg);
		return;
	}
	r->stop_after = q.stop_after;
	r->status = out ? 200 : 204;
	r->body = out;
}
