/* volume.c - see volume.h. */
#include "volume.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/log.h"
#include "../compute/ctdrv.h"
#include "../core/notify.h"
#include "../core/fs.h"
#include "../core/proc.h"
#include "../yund.h"
#include "loopmnt.h"
#include "volfile.h"

#define GIB	       (1ULL << 30)
#define MKFS_TIMEOUT_S 600

/* ---- paths ---- */

void vol_file_path(const struct yund *y, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/volumes/%s.img", y->cfg->root, id);
}

void vol_snapshot_path(const struct yund *y, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/snapshots/%s.img", y->cfg->root, id);
}

/* <root>/<dir>/.tmp-<id>.img: where a file is made before it is renamed into place. */
static void tmp_path(const struct yund *y, const char *dir, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/%s/.tmp-%s.img", y->cfg->root, dir, id);
}

static void mount_dir(const struct yund *y, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/volumes/%s", y->cfg->run, id);
}

static void holder_path(const struct yund *y, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/volumes/%s.holder", y->cfg->run, id);
}

/* ---- rendering and events ---- */

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

json_t *vol_render(const struct st_volume *v)
{
	bool in_use = v->instance_id[0] && !strcmp(v->state, "available");

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:b, s:o, s:o, s:o, "
			 "s:o}",
			 "id", v->m.id, "name", v->m.name, "project", v->m.project, "created_at",
			 v->m.created_at, "updated_at", v->m.updated_at, "size_gib",
			 (json_int_t)v->size_gib, "state", in_use ? "in-use" : v->state, "desired",
			 v->desired, "attached_to", str_or_null(v->instance_id), "mount_path",
			 str_or_null(v->mount_path), "readonly", v->readonly, "source_snapshot",
			 str_or_null(v->source_snapshot), "path", str_or_null(v->path), "method",
			 str_or_null(v->method), "failure", str_or_null(v->failure));
}

json_t *vol_render_snapshot(const struct st_snapshot *sn)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o}", "id",
			 sn->m.id, "name", sn->m.name, "project", sn->m.project, "created_at",
			 sn->m.created_at, "updated_at", sn->m.updated_at, "volume", sn->volume_id,
			 "size_gib", (json_int_t)sn->size_gib, "state", sn->state, "desired",
			 sn->desired, "path", str_or_null(sn->path), "method",
			 str_or_null(sn->method), "failure", str_or_null(sn->failure));
}

void vol_notify(struct yund *y, const char *what, const struct st_volume *v)
{
	notify_object(y, "volume", what, vol_render(v));
}

void vol_notify_snapshot(struct yund *y, const char *what, const struct st_snapshot *sn)
{
	notify_object(y, "snapshot", what, vol_render_snapshot(sn));
}

/* ---- attachments ---- */

int vol_attachments(struct store *s, const char *instance_id, struct vol_attachment **out,
		    size_t *n, struct yun_err *err)
{
	struct st_volume *v;
	struct vol_attachment *a;
	size_t nv, k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = s->ops->volume_list(s, &v, &nv, err);
	if (rc)
		return rc;
	a = calloc(nv ? nv : 1, sizeof(*a));
	if (!a) {
		free(v);
		return yun_err_set(err, ENOMEM, "instance %s: volumes: out of memory", instance_id);
	}
	for (size_t i = 0; i < nv; i++) {
		if (strcmp(v[i].instance_id, instance_id))
			continue;
		snprintf(a[k].id, sizeof(a[k].id), "%s", v[i].m.id);
		snprintf(a[k].name, sizeof(a[k].name), "%s", v[i].m.name);
		snprintf(a[k].path, sizeof(a[k].path), "%s", v[i].path);
		snprintf(a[k].mount_path, sizeof(a[k].mount_path), "%s", v[i].mount_path);
		a[k].readonly = v[i].readonly;
		a[k].ready = !strcmp(v[i].state, "available") && v[i].path[0];
		k++;
	}
	free(v);
	*out = a;
	*n = k;
	return 0;
}

/* ---- host mounts ---- */

/* The instance id in a holder file ("" when none). */
static void read_holder(const struct yund *y, const char *vol_id, char *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	buf[0] = '\0';
	holder_path(y, vol_id, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/*
 * Whether instance `inst_id` may still use a volume it claimed: it is
 * (being) started or runs, or its container still exists. Errors other
 * than "no such instance" count as in use (never take a volume on a doubt).
 */
static bool held(struct yund *y, const char *inst_id)
{
	static const char *const busy[] = {"creating", "starting", "running", "paused", "stopping"};
	struct st_instance in;
	struct ctdrv_obs ob;
	struct yun_err err = {0};
	bool active = false;
	int rc;

	if (!inst_id[0])
		return false;
	rc = y->store->ops->instance_get(y->store, inst_id, &in, &err);
	if (rc == -ENOENT)
		return false;
	if (rc)
		return true;
	for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
		active = active || !strcmp(in.state, busy[i]);
	st_instance_clear(&in);
	if (active)
		return true;
	ctdrv_observe(inst_id, &ob);
	return ob.phase != CTDRV_NONE;
}

/* Give up volume `id`'s claim (and host mount) unless its holder still uses it: -EBUSY then. */
static int release_mount(struct yund *y, const char *id, bool force_check, struct yun_err *err)
{
	char dir[PATH_MAX], hold[PATH_MAX], holder[OBJ_ID_MAX + 8];
	int rc;

	mount_dir(y, id, dir, sizeof(dir));
	holder_path(y, id, hold, sizeof(hold));
	read_holder(y, id, holder, sizeof(holder));
	if (force_check && held(y, holder))
		return yun_err_set(err, EBUSY, "volume %s: still in use by instance %s", id,
				   holder);
	rc = loopmnt_umount(dir, err);
	if (rc)
		return rc;
	if (rmdir(dir) < 0 && errno != ENOENT)
		return yun_err_errno(err, errno, "remove %s", dir);
	return volfile_remove(hold, err);
}

/*
 * Claim volume `a` for instance `inst_id` (the holder file), mounted on
 * `dir` for a container or not mounted at all for a microVM (which opens
 * the file itself); -EAGAIN while another instance still uses it.
 */
static int claim(struct yund *y, const char *inst_id, const struct vol_attachment *a,
		 const char *dir, bool mount, struct yun_err *err)
{
	char hold[PATH_MAX], holder[OBJ_ID_MAX + 8];
	int rc;

	holder_path(y, a->id, hold, sizeof(hold));
	read_holder(y, a->id, holder, sizeof(holder));
	if (holder[0] && strcmp(holder, inst_id) && held(y, holder))
		return yun_err_set(err, EAGAIN,
				   "volume %s: still in use by instance %s (detached; free once "
				   "it stops)",
				   a->name, holder);
	rc = fs_mkdirs(dir, 0700, err);
	/* The holder first: a mount is never there without one saying whose. */
	if (!rc && strcmp(holder, inst_id))
		rc = fs_write_atomic(hold, inst_id, strlen(inst_id), 0600, err);
	if (rc)
		return rc;
	if (mount && !loopmnt_is_mounted(dir))
		return loopmnt_mount(a->path, dir, err);
	if (!mount)
		return loopmnt_umount(dir, err);
	return 0;
}

int vol_vm_claim(struct yund *y, const char *instance_id, struct yun_err *err)
{
	struct vol_attachment *a;
	size_t n;
	int rc = vol_attachments(y->store, instance_id, &a, &n, err);

	for (size_t i = 0; !rc && i < n; i++) {
		char dir[PATH_MAX];

		mount_dir(y, a[i].id, dir, sizeof(dir));
		if (!a[i].ready)
			rc = yun_err_set(err, EAGAIN, "volume %s: not made yet", a[i].name);
		else
			rc = claim(y, instance_id, &a[i], dir, false, err);
	}
	free(a);
	return rc;
}

int vol_ct_mounts(struct yund *y, const char *instance_id, char **json, struct yun_err *err)
{
	struct vol_attachment *a;
	json_t *list = NULL;
	size_t n;
	int rc;

	*json = NULL;
	rc = vol_attachments(y->store, instance_id, &a, &n, err);
	if (rc || !n) {
		free(a);
		return rc;
	}
	list = json_array();
	for (size_t i = 0; !rc && i < n; i++) {
		char dir[PATH_MAX];

		if (!a[i].ready) {
			rc = yun_err_set(err, EAGAIN, "volume %s: not made yet", a[i].name);
			break;
		}
		mount_dir(y, a[i].id, dir, sizeof(dir));
		rc = claim(y, instance_id, &a[i], dir, true, err);
		if (!rc && json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "source", dir,
								 "destination", a[i].mount_path,
								 "readonly", a[i].readonly)))
			rc = yun_err_set(err, ENOMEM, "out of memory");
	}
	if (!rc && !(*json = json_dumps(list, JSON_COMPACT)))
		rc = yun_err_set(err, ENOMEM, "out of memory");
	json_decref(list);
	free(a);
	return rc;
}

/* ---- making files ---- */

static const char *mkfs_binary(void)
{
	static const char *const candidates[] = {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"};

	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (access(candidates[i], X_OK) == 0)
			return candidates[i];
	return candidates[0];
}

/* mkfs.ext4 on `file`, waited for here (the loop thread owns its children). */
static int mkfs(struct yund *y, const char *id, const char *file, struct yun_err *err)
{
	char log[PATH_MAX], line[256], how[64];
	char *argv[] = {(char *)mkfs_binary(), "-q",	     "-F", "-m", "0", "-E",
			"nodiscard",	       (char *)file, NULL};
	struct proc_opts po = {.die_with_parent = true};
	struct timespec tick = {0, 10 * 1000 * 1000};
	time_t start = time(NULL);
	bool done = false;
	int status = 255, rc;
	pid_t pid;

	fs_path(log, sizeof(log), "%s/volumes/.tmp-%s.log", y->cfg->root, id);
	volfile_remove(log, NULL);
	po.out_path = log;
	rc = proc_spawn(argv, &po, &pid, err);
	if (rc)
		return rc;
	while (!done) {
		nanosleep(&tick, NULL);
		proc_reap();
		if (proc_poll(pid, &done, &status) < 0)
			break;
		if (!done && time(NULL) - start > MKFS_TIMEOUT_S) {
			kill(pid, SIGKILL);
			start = time(NULL) + 3600; /* once */
		}
	}
	if (status != 0) {
		fs_last_line(log, 0, line, sizeof(line));
		proc_describe(status, how, sizeof(how));
		rc = yun_err_set(err, EIO, "mkfs.ext4 %s: %s%s%s", file, how, line[0] ? ": " : "",
				 line);
	}
	volfile_remove(log, NULL);
	return rc;
}

static void set_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

/* Make volume v's file (from scratch, or as a copy of its snapshot). */
static int make_volume(struct yund *y, struct st_volume *v, struct yun_err *err)
{
	char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX];
	enum volfile_method how;
	int rc;

	fs_path(dir, sizeof(dir), "%s/volumes", y->cfg->root);
	vol_file_path(y, v->m.id, path, sizeof(path));
	tmp_path(y, "volumes", v->m.id, tmp, sizeof(tmp));
	rc = fs_mkdirs(dir, 0700, err);
	if (rc)
		return rc;
	if (fs_exists(path)) {
		/* Renamed into place before a crash: whole, just not recorded yet. */
		if (!v->method[0])
			set_str(v->method, sizeof(v->method),
				v->source_snapshot[0] ? "copy" : "mkfs");
	} else {
		rc = volfile_remove(tmp, err); /* a previous attempt's */
		if (rc)
			return rc;
		if (v->source_snapshot[0]) {
			struct st_snapshot sn;

			rc = y->store->ops->snapshot_get(y->store, v->source_snapshot, &sn, err);
			if (!rc)
				rc = volfile_clone(sn.path, tmp, &how, err);
			if (!rc)
				set_str(v->method, sizeof(v->method), volfile_method_name(how));
		} else {
			rc = volfile_create_sparse(tmp, (uint64_t)v->size_gib * GIB, err);
			if (!rc)
				rc = mkfs(y, v->m.id, tmp, err);
			if (!rc)
				set_str(v->method, sizeof(v->method), "mkfs");
		}
		if (!rc)
			rc = volfile_commit(tmp, path, err);
		if (rc) {
			volfile_remove(tmp, NULL);
			return rc;
		}
	}
	set_str(v->path, sizeof(v->path), path);
	set_str(v->state, sizeof(v->state), "available");
	v->failure[0] = '\0';
	return 0;
}

static void record_volume(struct yund *y, struct st_volume *v)
{
	struct yun_err err = {0};
	struct st_volume now;

	if (y->store->ops->volume_set_observed(y->store, v, &err) < 0) {
		yun_warn("%s", err.msg);
		return;
	}
	if (y->store->ops->volume_get(y->store, v->m.id, &now, &err) == 0)
		vol_notify(y, "state", &now);
}

static void volume_step(struct yund *y, struct st_volume *v, bool *busy)
{
	struct yun_err err = {0};
	char path[PATH_MAX], tmp[PATH_MAX];

	if (!strcmp(v->desired, "deleted")) {
		*busy = true;
		if (release_mount(y, v->m.id, true, &err) < 0) {
			if (err.code != EBUSY)
				yun_warn("%s", err.msg);
			return;
		}
		vol_file_path(y, v->m.id, path, sizeof(path));
		tmp_path(y, "volumes", v->m.id, tmp, sizeof(tmp));
		/* The file, then the row: a crash between removes nothing twice. */
		if (volfile_remove(tmp, &err) < 0 || volfile_remove(path, &err) < 0 ||
		    y->store->ops->volume_delete(y->store, v->m.id, &err) < 0) {
			yun_warn("volume %s: %s", v->m.name, err.msg);
			return;
		}
		set_str(v->state, sizeof(v->state), "deleted");
		vol_notify(y, "deleted", v);
		return;
	}
	if (strcmp(v->state, "creating"))
		return;
	*busy = true;
	if (make_volume(y, v, &err) < 0) {
		yun_warn("volume %s: %s", v->m.name, err.msg);
		set_str(v->state, sizeof(v->state), "failed");
		set_str(v->failure, sizeof(v->failure), err.msg);
	}
	record_volume(y, v);
}

/* Snapshot sn of its volume: wait while the volume is being made. */
static int make_snapshot(struct yund *y, struct st_snapshot *sn, bool *wait, struct yun_err *err)
{
	char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX], mnt[PATH_MAX];
	struct st_volume v;
	enum volfile_method how;
	int rc;

	*wait = false;
	rc = y->store->ops->volume_get(y->store, sn->volume_id, &v, err);
	if (rc)
		return rc;
	if (!strcmp(v.state, "creating")) {
		*wait = true;
		return 0;
	}
	if (strcmp(v.state, "available"))
		return yun_err_set(err, EIO, "volume %s is %s", v.m.name, v.state);
	fs_path(dir, sizeof(dir), "%s/snapshots", y->cfg->root);
	vol_snapshot_path(y, sn->m.id, path, sizeof(path));
	tmp_path(y, "snapshots", sn->m.id, tmp, sizeof(tmp));
	rc = fs_mkdirs(dir, 0700, err);
	if (rc)
		return rc;
	if (!fs_exists(path)) {
		rc = volfile_remove(tmp, err);
		if (rc)
			return rc;
		/* In use by a container: flush its file system to the file first. */
		mount_dir(y, v.m.id, mnt, sizeof(mnt));
		if (loopmnt_is_mounted(mnt)) {
			int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (fd >= 0) {
				syncfs(fd);
				close(fd);
			}
		}
		rc = volfile_clone(v.path, tmp, &how, err);
		if (!rc)
			rc = volfile_commit(tmp, path, err);
		if (rc) {
			volfile_remove(tmp, NULL);
			return rc;
		}
		set_str(sn->method, sizeof(sn->method), volfile_method_name(how));
	} else if (!sn->method[0]) {
		set_str(sn->method, sizeof(sn->method), "copy");
	}
	set_str(sn->path, sizeof(sn->path), path);
	set_str(sn->state, sizeof(sn->state), "available");
	sn->failure[0] = '\0';
	return 0;
}

static void snapshot_step(struct yund *y, struct st_snapshot *sn, bool *busy)
{
	struct yun_err err = {0};
	struct st_snapshot now;
	char path[PATH_MAX], tmp[PATH_MAX];
	bool wait;

	if (!strcmp(sn->desired, "deleted")) {
		*busy = true;
		vol_snapshot_path(y, sn->m.id, path, sizeof(path));
		tmp_path(y, "snapshots", sn->m.id, tmp, sizeof(tmp));
		if (volfile_remove(tmp, &err) < 0 || volfile_remove(path, &err) < 0 ||
		    y->store->ops->snapshot_delete(y->store, sn->m.id, &err) < 0) {
			yun_warn("snapshot %s: %s", sn->m.name, err.msg);
			return;
		}
		set_str(sn->state, sizeof(sn->state), "deleted");
		vol_notify_snapshot(y, "deleted", sn);
		return;
	}
	if (strcmp(sn->state, "creating"))
		return;
	*busy = true;
	if (make_snapshot(y, sn, &wait, &err) < 0) {
		yun_warn("snapshot %s: %s", sn->m.name, err.msg);
		set_str(sn->state, sizeof(sn->state), "failed");
		set_str(sn->failure, sizeof(sn->failure), err.msg);
	} else if (wait) {
		return;
	}
	if (y->store->ops->snapshot_set_observed(y->store, sn, &err) < 0) {
		yun_warn("%s", err.msg);
		return;
	}
	if (y->store->ops->snapshot_get(y->store, sn->m.id, &now, &err) == 0)
		vol_notify_snapshot(y, "state", &now);
}

/* Host mounts of volumes no container uses any more. */
static void release_unused_mounts(struct yund *y)
{
	char path[PATH_MAX];
	struct yun_err err = {0};
	struct dirent *e;
	DIR *d;

	fs_path(path, sizeof(path), "%s/volumes", y->cfg->run);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !obj_looks_like_id(e->d_name))
			continue;
		if (release_mount(y, e->d_name, true, &err) < 0 && err.code != EBUSY)
			yun_warn("%s", err.msg);
	}
	closedir(d);
}

void vol_reconcile(struct yund *y, bool *busy)
{
	struct store *s = y->store;
	struct st_volume *v;
	struct st_snapshot *sn;
	struct yun_err err = {0};
	size_t n;

	/* Snapshots first: a clone waits for its snapshot, a snapshot for its volume. */
	if (s->ops->snapshot_list(s, &sn, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++)
			snapshot_step(y, &sn[i], busy);
		free(sn);
	} else {
		yun_warn("%s", err.msg);
	}
	if (s->ops->volume_list(s, &v, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++)
			volume_step(y, &v[i], busy);
		free(v);
	} else {
		yun_warn("%s", err.msg);
	}
	release_unused_mounts(y);
}

/* ---- sweep ---- */

/* The id in "<id>.img" or ".tmp-<id>.<ext>" ("" when neither). */
static void id_of_file(const char *name, char *id, size_t len)
{
	const char *p = strncmp(name, ".tmp-", 5) ? name : name + 5;
	const char *dot = strchr(p, '.');

	id[0] = '\0';
	if (dot && (size_t)(dot - p) < len) {
		memcpy(id, p, (size_t)(dot - p));
		id[dot - p] = '\0';
	}
	if (!obj_looks_like_id(id))
		id[0] = '\0';
}

static void sweep_dir(struct yund *y, const char *sub, bool snapshots)
{
	struct store *s = y->store;
	char dir[PATH_MAX], path[PATH_MAX + 300], id[OBJ_ID_MAX];
	struct yun_err err = {0};
	struct dirent *e;
	DIR *d;

	fs_path(dir, sizeof(dir), "%s/%s", y->cfg->root, sub);
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		int rc;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		id_of_file(e->d_name, id, sizeof(id));
		if (id[0]) {
			if (snapshots) {
				struct st_snapshot sn;

				rc = s->ops->snapshot_get(s, id, &sn, NULL);
			} else {
				struct st_volume v;

				rc = s->ops->volume_get(s, id, &v, NULL);
			}
			/* Only "not found" counts as absent; a database error keeps things. */
			if (rc != -ENOENT)
				continue;
		} else {
			continue; /* not ours by name: leave it alone */
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		yun_info("%s: belongs to no %s; removing it", path,
			 snapshots ? "snapshot" : "volume");
		if (volfile_remove(path, &err) < 0)
			yun_warn("%s", err.msg);
	}
	closedir(d);
}

void vol_sweep(struct yund *y)
{
	sweep_dir(y, "volumes", false);
	sweep_dir(y, "snapshots", true);
}
