/* render.c - see render.h. */
#include "render.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>

#include "../compute/host.h"
#include "fs.h"

static json_t *meta(const struct st_meta *m)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", m->id, "name", m->name, "project",
			 m->project, "created_at", m->created_at, "updated_at", m->updated_at);
}

/* A string, or null when empty. */
static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* JSON text stored in the database, or `dflt` (stolen) when absent/bad. */
static json_t *stored_json(const char *text, json_t *dflt)
{
	json_t *v = text ? json_loads(text, 0, NULL) : NULL;

	if (v) {
		json_decref(dflt);
		return v;
	}
	return dflt;
}

json_t *render_host(const struct st_host *h, const struct st_alloc *a)
{
	json_t *o = meta(&h->m);
	struct host_usage u;
	struct st_capacity cap;

	if (!o)
		return NULL;
	host_capacity(h, &cap);
	host_usage(&u);
	json_object_update_new(
	    o,
	    json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:{s:I, s:I, s:I}, "
		      "s:{s:I, s:I, s:I, s:I}, s:{s:f, s:I, s:I}}",
		      "hostname", h->hostname, "state", h->state, "vcpus", (json_int_t)h->vcpus,
		      "memory_mib", (json_int_t)h->memory_mib, "disk_gib", (json_int_t)h->disk_gib,
		      "cpu_overcommit", h->cpu_overcommit, "memory_overcommit",
		      h->memory_overcommit, "capacity", "vcpus", (json_int_t)cap.vcpus,
		      "memory_mib", (json_int_t)cap.memory_mib, "disk_gib", (json_int_t)h->disk_gib,
		      "allocated", "vcpus", (json_int_t)a->vcpus, "memory_mib",
		      (json_int_t)a->memory_mib, "disk_gib", (json_int_t)a->disk_gib, "instances",
		      (json_int_t)a->instances, "utilisation", "load1", u.load1, "memory_used_mib",
		      (json_int_t)u.memory_used_mib, "disk_used_gib", (json_int_t)u.disk_used_gib));
	return o;
}

json_t *render_flavor(const struct st_flavor *f)
{
	json_t *o = meta(&f->m);

	if (o)
		json_object_update_new(
		    o, json_pack("{s:I, s:I, s:I}", "vcpus", (json_int_t)f->vcpus, "memory_mib",
				 (json_int_t)f->memory_mib, "disk_gib", (json_int_t)f->disk_gib));
	return o;
}

/* A microVM image's files (image/image.h), null until it is available. */
static void render_microvm_files(json_t *o, const char *dir)
{
	static const char *const keys[] = {"kernel", "initrd", "rootfs"};
	static const char *const files[] = {"kernel", "initrd", "rootfs.ext4"};
	char path[PATH_MAX + 16];

	for (size_t i = 0; i < 3; i++) {
		bool have = dir[0] && fs_path(path, sizeof(path), "%s/%s", dir, files[i]) == 0 &&
			    (i != 1 || fs_exists(path));

		json_object_set_new(o, keys[i], have ? json_string(path) : json_null());
	}
}

json_t *render_image(const struct st_image *img)
{
	json_t *o = meta(&img->m);

	if (o)
		json_object_update_new(
		    o, json_pack("{s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:o, s:o}", "type", img->type,
				 "state", img->state, "source", img->source, "path",
				 str_or_null(img->path), "size", (json_int_t)img->size, "os",
				 str_or_null(img->os), "version", str_or_null(img->version),
				 "command", stored_json(img->command, json_array()), "failure",
				 str_or_null(img->failure)));
	if (o && !strcmp(img->type, "microvm"))
		render_microvm_files(o, img->path);
	return o;
}

json_t *render_network(const struct st_network *n)
{
	json_t *o = meta(&n->m);

	if (o)
		json_object_update_new(o, json_pack("{s:s, s:o, s:o, s:s, s:s}", "cidr", n->cidr,
						    "gateway", str_or_null(n->gateway), "bridge",
						    str_or_null(n->bridge), "desired", n->desired,
						    "state", n->state));
	return o;
}

json_t *render_instance(const struct st_instance *in)
{
	json_t *o = meta(&in->m);

	if (!o)
		return NULL;
	json_object_update_new(
	    o,
	    json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:o, s:o, s:o, s:[], s:o, s:o, s:o, s:o, "
		      "s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I}",
		      "type", in->type, "image", in->image_id, "flavor", str_or_null(in->flavor_id),
		      "vcpus", (json_int_t)in->vcpus, "memory_mib", (json_int_t)in->memory_mib,
		      "disk_gib", (json_int_t)in->disk_gib, "network", str_or_null(in->network_id),
		      "ip", str_or_null(in->ip), "mac", str_or_null(in->mac), "volumes",
		      "user_data", in->user_data ? json_string(in->user_data) : json_null(),
		      "command", stored_json(in->command, json_null()), "env",
		      stored_json(in->env, json_array()), "ssh_keys",
		      stored_json(in->ssh_keys, json_array()), "restart_policy", in->restart_policy,
		      "host", in->host_id, "desired", in->desired, "state", in->state, "pid",
		      in->pid > 0 ? json_integer(in->pid) : json_null(), "exit_status",
		      in->has_exit ? json_integer(in->exit_status) : json_null(), "failure",
		      str_or_null(in->failure), "restart_count", (json_int_t)in->restart_count));
	return o;
}

json_t *render_list(json_t *items)
{
	return items ? json_pack("{s:o}", "items", items) : NULL;
}
