/*
 * yund_store_test.c - yund's store on SQLite (src/yund/store) as its
 * callers see it: lookups by id and name, lists, the checks deletes make,
 * compare-and-swap of the intent, volumes and snapshots (attach rules,
 * "in use" refusals, the loop never moving a deleting volume back); and
 * the volume files (src/yund/volume/volfile.c) and the API's check of a
 * mount path; migration 4 (paused instances) of a database made before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../../src/yund/core/sshkey.h"
#include "../../src/yund/store/sqlite.h"
#include "../../src/yund/volume/volfile.h"
#include "../../src/yund/volume/volume.h"
#include "check.h"

static char dir[] = "/tmp/yund-store-test.XXXXXX";
static char db[256];

static void meta(struct st_meta *m, const char *id, const char *name)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->project, sizeof(m->project), "default");
	obj_now(m->created_at);
	memcpy(m->updated_at, m->created_at, sizeof(m->updated_at));
}

static struct store *open_store(void)
{
	struct yun_err err = {0};
	struct store *s = NULL;

	CHECK(store_sqlite_open(db, &s, &err) == 0);
	return s;
}

/* A host, a flavor, an image and an instance "web" (i-000000000001). */
static void seed(struct store *s)
{
	struct yun_err err = {0};
	struct st_host h = {0};
	struct st_flavor f;
	struct st_image img = {0};
	struct st_instance in = {0};
	struct st_capacity cap = {.vcpus = 8, .memory_mib = 8192};

	meta(&h.m, "h-000000000001", "host");
	snprintf(h.hostname, sizeof(h.hostname), "test");
	snprintf(h.state, sizeof(h.state), "up");
	h.vcpus = 2;
	h.memory_mib = 2048;
	h.cpu_overcommit = h.memory_overcommit = 1;
	CHECK(s->ops->host_put(s, &h, &err) == 0);
	meta(&f.m, "fl-000000000001", "tiny");
	f.vcpus = 1;
	f.memory_mib = 64;
	f.disk_gib = 0;
	CHECK(s->ops->flavor_create(s, &f, &err) == 0);
	meta(&img.m, "img-000000000001", "busybox");
	snprintf(img.type, sizeof(img.type), "container");
	snprintf(img.state, sizeof(img.state), "available");
	snprintf(img.source, sizeof(img.source), "build:busybox");
	CHECK(s->ops->image_create(s, &img, &err) == 0);
	meta(&in.m, "i-000000000001", "web");
	snprintf(in.type, sizeof(in.type), "container");
	snprintf(in.image_id, sizeof(in.image_id), "%s", img.m.id);
	snprintf(in.flavor_id, sizeof(in.flavor_id), "%s", f.m.id);
	snprintf(in.host_id, sizeof(in.host_id), "%s", h.m.id);
	in.vcpus = 1;
	in.memory_mib = 64;
	snprintf(in.restart_policy, sizeof(in.restart_policy), "no");
	snprintf(in.desired, sizeof(in.desired), "running");
	snprintf(in.state, sizeof(in.state), "creating");
	in.stop_timeout = 10;
	in.ssh_keys = "[\"ssh-ed25519 AAAA k\"]";
	CHECK(s->ops->instance_create(s, &in, &cap, &err) == 0);
}

static void test_kinds(void)
{
	struct store *s = open_store();
	struct yun_err err = {0};
	struct st_flavor f, *fv;
	struct st_image img;
	struct st_instance in, *iv;
	struct st_intent intent = {.desired = "stopped", .stop_timeout = 5};
	size_t n;

	if (!s)
		return;
	seed(s);
	/* By id and by name; a miss names the kind and the reference. */
	CHECK(s->ops->flavor_get(s, "tiny", &f, &err) == 0);
	CHECK(!strcmp(f.m.id, "fl-000000000001") && f.memory_mib == 64);
	CHECK(s->ops->flavor_get(s, "fl-000000000001", &f, &err) == 0);
	CHECK(s->ops->flavor_get(s, "huge", &f, &err) == -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "flavor huge: not found");
	CHECK(s->ops->flavor_list(s, &fv, &n, &err) == 0);
	CHECK_EQ(n, 1);
	free(fv);
	CHECK(s->ops->image_get(s, "busybox", &img, &err) == 0);
	CHECK(!strcmp(img.state, "available"));
	st_image_clear(&img);
	/* In use: refused, naming the user. */
	CHECK(s->ops->flavor_delete(s, "tiny", &f, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "flavor tiny: used by instance web");
	CHECK(s->ops->image_delete(s, "busybox", &img, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "image busybox: used by instance web");
	/* Name taken. */
	meta(&f.m, "fl-000000000002", "tiny");
	CHECK(s->ops->flavor_create(s, &f, &err) == -EEXIST);
	CHECK_STR_CONTAINS(err.msg, "flavor tiny: name already taken");
	/* Compare-and-swap on intent_gen. */
	CHECK(s->ops->instance_get(s, "web", &in, &err) == 0);
	CHECK(in.ssh_keys && !strcmp(in.ssh_keys, "[\"ssh-ed25519 AAAA k\"]"));
	CHECK(s->ops->instance_set_intent(s, in.m.id, in.intent_gen, &intent, &err) == 0);
	CHECK(s->ops->instance_set_intent(s, in.m.id, in.intent_gen, &intent, &err) == -EAGAIN);
	CHECK(s->ops->instance_set_intent(s, "i-00000000dead", 0, &intent, &err) == -ENOENT);
	st_instance_clear(&in);
	CHECK(s->ops->instance_list(s, &iv, &n, &err) == 0);
	CHECK_EQ(n, 1);
	CHECK(!strcmp(iv[0].desired, "stopped") && iv[0].intent_gen == 1);
	st_instances_free(iv, n);
	/* Updates of a row that is not there. */
	meta(&img.m, "img-00000000dead", "gone");
	CHECK(s->ops->image_update(s, &img, &err) == -ENOENT);
	s->ops->close(s);
}

static void set_volume(struct st_volume *v, const char *id, const char *name)
{
	memset(v, 0, sizeof(*v));
	meta(&v->m, id, name);
	v->size_gib = 1;
	snprintf(v->desired, sizeof(v->desired), "available");
	snprintf(v->state, sizeof(v->state), "creating");
}

static void test_volumes(void)
{
	struct store *s = open_store();
	struct yun_err err = {0};
	struct st_volume v, w, *vv;
	struct st_snapshot sn, sv;
	size_t n;

	if (!s)
		return;
	set_volume(&v, "vol-000000000001", "data");
	CHECK(s->ops->volume_create(s, &v, &err) == 0);
	set_volume(&w, "vol-000000000002", "logs");
	CHECK(s->ops->volume_create(s, &w, &err) == 0);
	CHECK(s->ops->volume_create(s, &w, &err) == -EEXIST);

	/* Attach: one instance, one volume per path. */
	CHECK(s->ops->volume_attach(s, "data", "web", "/mnt/data", false, &v, &err) == 0);
	CHECK(!strcmp(v.instance_id, "i-000000000001") && !strcmp(v.mount_path, "/mnt/data"));
	CHECK(s->ops->volume_attach(s, "data", "web", "/mnt/x", false, &v, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "already attached to instance web");
	CHECK(s->ops->volume_attach(s, "logs", "web", "/mnt/data", true, &w, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "has volume data at /mnt/data");
	CHECK(s->ops->volume_attach(s, "logs", "nope", "/mnt/l", true, &w, &err) == -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "instance nope: not found");
	CHECK(s->ops->volume_request_delete(s, "data", &v, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "volume data: attached to instance web");

	/* Detach: from the instance it is attached to only. */
	CHECK(s->ops->volume_detach(s, "logs", NULL, &w, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "volume logs: is not attached");
	CHECK(s->ops->volume_detach(s, "data", "web", &v, &err) == 0);
	CHECK(!v.instance_id[0]);

	/* Snapshots keep their volume; a clone needs an available snapshot. */
	memset(&sn, 0, sizeof(sn));
	meta(&sn.m, "snap-000000000001", "s1");
	snprintf(sn.volume_id, sizeof(sn.volume_id), "data");
	snprintf(sn.desired, sizeof(sn.desired), "available");
	snprintf(sn.state, sizeof(sn.state), "creating");
	CHECK(s->ops->snapshot_create(s, &sn, &err) == 0);
	CHECK(s->ops->snapshot_get(s, "s1", &sv, &err) == 0);
	CHECK(!strcmp(sv.volume_id, "vol-000000000001") && sv.size_gib == 1);
	CHECK(s->ops->volume_request_delete(s, "data", &v, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "volume data: has snapshot s1");
	set_volume(&w, "vol-000000000003", "copy");
	snprintf(w.source_snapshot, sizeof(w.source_snapshot), "s1");
	CHECK(s->ops->volume_create(s, &w, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "snapshot s1 is creating");
	snprintf(sv.state, sizeof(sv.state), "available");
	CHECK(s->ops->snapshot_set_observed(s, &sv, &err) == 0);
	snprintf(w.source_snapshot, sizeof(w.source_snapshot), "%s", sv.m.id);
	CHECK(s->ops->volume_create(s, &w, &err) == 0);
	CHECK(s->ops->snapshot_request_delete(s, "s1", &sn, &err) == -EBUSY);
	CHECK_STR_CONTAINS(err.msg, "snapshot s1: being cloned into volume copy");
	snprintf(w.state, sizeof(w.state), "available");
	CHECK(s->ops->volume_set_observed(s, &w, &err) == 0);
	CHECK(s->ops->snapshot_request_delete(s, "s1", &sn, &err) == 0);
	CHECK(!strcmp(sn.state, "deleting"));
	/* The loop's late observation does not undo a delete. */
	snprintf(sv.state, sizeof(sv.state), "available");
	CHECK(s->ops->snapshot_set_observed(s, &sv, &err) == 0);
	CHECK(s->ops->snapshot_get(s, "s1", &sv, &err) == 0 && !strcmp(sv.state, "deleting"));
	CHECK(s->ops->snapshot_delete(s, sv.m.id, &err) == 0);
	CHECK(s->ops->volume_get(s, "copy", &w, &err) == 0 && !w.source_snapshot[0]);

	/* Deleting the instance detaches its volumes in the same transaction. */
	CHECK(s->ops->volume_attach(s, "copy", "web", "/srv", true, &w, &err) == 0);
	CHECK(s->ops->instance_delete(s, "i-000000000001", &err) == 0);
	CHECK(s->ops->volume_get(s, "copy", &w, &err) == 0 && !w.instance_id[0] && !w.readonly);

	CHECK(s->ops->volume_request_delete(s, "data", &v, &err) == 0);
	snprintf(v.state, sizeof(v.state), "available");
	CHECK(s->ops->volume_set_observed(s, &v, &err) == 0);
	CHECK(s->ops->volume_get(s, "data", &v, &err) == 0 && !strcmp(v.state, "deleting"));
	CHECK(s->ops->volume_attach(s, "data", "web", "/mnt/d", false, &v, &err) < 0);
	CHECK(s->ops->volume_delete(s, v.m.id, &err) == 0);

	/* Created with volumes: all attached in its transaction, or nothing made. */
	{
		struct st_instance in2, got;
		struct st_capacity cap = {.vcpus = 8, .memory_mib = 8192};
		struct st_attach at[2] = {{.ref = "logs"}, {.ref = "copy", .mount_path = "/c"}};

		CHECK(s->ops->instance_get(s, "i-000000000001", &got, &err) == -ENOENT);
		memset(&in2, 0, sizeof(in2));
		meta(&in2.m, "i-000000000002", "web2");
		snprintf(in2.type, sizeof(in2.type), "container");
		snprintf(in2.image_id, sizeof(in2.image_id), "img-000000000001");
		snprintf(in2.host_id, sizeof(in2.host_id), "h-000000000001");
		in2.vcpus = 1;
		in2.memory_mib = 64;
		snprintf(in2.restart_policy, sizeof(in2.restart_policy), "no");
		snprintf(in2.desired, sizeof(in2.desired), "running");
		snprintf(in2.state, sizeof(in2.state), "creating");
		snprintf(at[1].ref, sizeof(at[1].ref), "nope");
		CHECK(s->ops->instance_create_attached(s, &in2, &cap, at, 2, &err) == -ENOENT);
		CHECK_STR_CONTAINS(err.msg, "volume nope: not found");
		CHECK(s->ops->instance_get(s, "web2", &got, &err) == -ENOENT);
		CHECK(s->ops->volume_get(s, "logs", &w, &err) == 0 && !w.instance_id[0]);
		snprintf(at[1].ref, sizeof(at[1].ref), "copy");
		CHECK(s->ops->instance_create_attached(s, &in2, &cap, at, 2, &err) == 0);
		CHECK(s->ops->volume_get(s, "logs", &w, &err) == 0);
		CHECK(!strcmp(w.instance_id, "i-000000000002") &&
		      !strcmp(w.mount_path, "/mnt/logs"));
		CHECK(s->ops->volume_get(s, "copy", &w, &err) == 0 && !strcmp(w.mount_path, "/c"));
		CHECK(s->ops->instance_delete(s, "i-000000000002", &err) == 0);
	}
	CHECK(s->ops->volume_list(s, &vv, &n, &err) == 0);
	CHECK_EQ(n, 2);
	free(vv);
	s->ops->close(s);

	/* Reopened: migrations do not run twice, rows are there. */
	s = open_store();
	if (!s)
		return;
	CHECK(s->ops->volume_get(s, "logs", &w, &err) == 0);
	s->ops->close(s);
}

static void test_volfile(void)
{
	char a[300], b[300], c[300];
	struct yun_err err = {0};
	enum volfile_method how;
	struct stat sa, sb;
	char buf[16] = "", want[] = "hello volume";
	int fd;

	snprintf(a, sizeof(a), "%s/a.img", dir);
	snprintf(b, sizeof(b), "%s/.tmp-b.img", dir);
	snprintf(c, sizeof(c), "%s/b.img", dir);
	CHECK(volfile_create_sparse(a, 1ULL << 30, &err) == 0);
	CHECK(volfile_create_sparse(a, 1ULL << 30, &err) == -EEXIST);
	CHECK(stat(a, &sa) == 0 && sa.st_size == 1LL << 30 && sa.st_blocks == 0);
	fd = open(a, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, want, sizeof(want), 512 << 20) == (ssize_t)sizeof(want));
	close(fd);
	CHECK(volfile_clone(a, b, &how, &err) == 0);
	CHECK(how == VOLFILE_REFLINK || how == VOLFILE_COPY);
	CHECK(!strcmp(volfile_method_name(VOLFILE_COPY), "copy"));
	CHECK(volfile_commit(b, c, &err) == 0);
	CHECK(access(b, F_OK) < 0);
	CHECK(stat(c, &sb) == 0 && sb.st_size == sa.st_size);
	/* Holes stay holes: far less than the size is allocated. */
	CHECK(sb.st_blocks * 512 < (1 << 20));
	fd = open(c, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, sizeof(want), 512 << 20) == (ssize_t)sizeof(want));
	close(fd);
	CHECK(!memcmp(buf, want, sizeof(want)));
	CHECK(volfile_remove(c, &err) == 0);
	CHECK(volfile_remove(c, &err) == 0);
	CHECK(volfile_clone(c, b, &how, &err) == -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "b.img");
	unlink(a);
}

static void test_mount_path(void)
{
	struct yun_err err = {0};
	static const char *const good[] = {"/mnt/data", "/data", "/var/lib/app-1.2_x"};
	static const char *const bad[] = {"",	     "/",	"mnt/x",  "/mnt/../etc", "/mnt/./x",
					  "/mnt//x", "/mnt/x/", "/a b",	  "/proc",	 "/sys/fs",
					  "/dev/x",  "/x;y",	"/mnt/.."};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(vol_check_mount_path(good[i], &err) == 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(vol_check_mount_path(bad[i], &err) == -ERANGE);
		CHECK_STR_CONTAINS(err.msg, "field path");
	}
}

static void test_attach_spec(void)
{
	struct yun_err err = {0};
	struct st_attach a;

	CHECK(vol_parse_attach("data", &a, &err) == 0);
	CHECK(!strcmp(a.ref, "data") && !a.mount_path[0] && !a.readonly);
	CHECK(vol_parse_attach("data:/srv/d", &a, &err) == 0);
	CHECK(!strcmp(a.ref, "data") && !strcmp(a.mount_path, "/srv/d") && !a.readonly);
	CHECK(vol_parse_attach("vol-0123456789ab:/srv:ro", &a, &err) == 0);
	CHECK(!strcmp(a.ref, "vol-0123456789ab") && !strcmp(a.mount_path, "/srv") && a.readonly);
	CHECK(vol_parse_attach("data:ro", &a, &err) == 0 && a.readonly && !a.mount_path[0]);
	CHECK(vol_parse_attach("", &a, &err) == -ERANGE);
	CHECK(vol_parse_attach(":/srv", &a, &err) == -ERANGE);
	CHECK(vol_parse_attach("data:/srv:rx", &a, &err) == -ERANGE);
	CHECK_STR_CONTAINS(err.msg, "VOLUME[:PATH][:ro]");
	CHECK(vol_parse_attach("data:/../etc", &a, &err) == -ERANGE);
	CHECK_STR_CONTAINS(err.msg, "field path");
}

/* SSH public key lines (core/sshkey.c); the valid ones are ssh-keygen's. */
static void test_sshkey(void)
{
	static const char ed[] = "ssh-ed25519 "
				 "AAAAC3NzaC1lZDI1NTE5AAAAICBfNyxa7T9m6g+lmVXl1lEDV5R/8xBmBTa3mg2uX3S0";
	static const char ec521[] =
	    "ecdsa-sha2-nistp521 "
	    "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAEwOyvJ+MZM7e76PArt2nzkKM+huZwzxtb"
	    "R6E5o7GD2mxZbQrKEbc80iCF9j1VT8Y8LtoLF0NEwc3WFsxhbUTSCTwEsvlGXPvEgXb4pZCMZTQHH5HZ9PzmEkAX"
	    "uvnSE1FE/pHJ0d+pk+GQ6W5N1fRRCZhkWEkP8nsnsaCFcvre4DoSq7g==";
	char why[256], line[9000];

	CHECK(sshkey_valid(ed, why, sizeof(why)));
	snprintf(line, sizeof(line), "%s me@host with: \"odd\" #chars", ed);
	CHECK(sshkey_valid(line, why, sizeof(why)));
	snprintf(line, sizeof(line), "%s   ", ed);
	CHECK(sshkey_valid(line, why, sizeof(why)));
	CHECK(sshkey_valid(ec521, why, sizeof(why)));
	/* The padding of ec521 made wrong: one '=' too few, one too many. */
	snprintf(line, sizeof(line), "%.*s", (int)strlen(ec521) - 1, ec521);
	CHECK(!sshkey_valid(line, why, sizeof(why)));
	CHECK_STR_CONTAINS(why, "not valid base64");
	snprintf(line, sizeof(line), "%s=", ec521);
	CHECK(!sshkey_valid(line, why, sizeof(why)));
	snprintf(line, sizeof(line), "ssh-rsa %s", ed + 12);
	CHECK(!sshkey_valid(line, why, sizeof(why)));
	CHECK_STR_CONTAINS(why, "not a ssh-rsa key");
	snprintf(line, sizeof(line), "ssh-dss %s", ed + 12);
	CHECK(!sshkey_valid(line, why, sizeof(why)));
	CHECK_STR_CONTAINS(why, "key type \"ssh-dss\" is not one of");
	CHECK(!sshkey_valid("", why, sizeof(why)));
	CHECK(!sshkey_valid("ssh-ed25519", why, sizeof(why)));
	CHECK_STR_CONTAINS(why, "no base64");
	CHECK(!sshkey_valid("ssh-ed25519 ====", why, sizeof(why)));
	CHECK(!sshkey_valid("ssh-ed25519 AA=A", why, sizeof(why)));
	CHECK(!sshkey_valid("ssh-ed25519 aGk=", why, sizeof(why))); /* "hi" */
	snprintf(line, sizeof(line), "%s\tx", ed);
	CHECK(!sshkey_valid(line, why, sizeof(why)));
	CHECK_STR_CONTAINS(why, "control character 0x09");
	memset(line, 'A', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "ssh-rsa ", 8);
	CHECK(!sshkey_valid(line, why, sizeof(why)));
	CHECK_STR_CONTAINS(why, "at most 8192");
}

/* The instances table as schema version 3 had it (no 'paused' in the CHECKs). */
static const char v3_instances[] =
    "PRAGMA foreign_keys = OFF; BEGIN;"
    "CREATE TABLE old ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  type TEXT NOT NULL CHECK (type IN ('container', 'microvm')),"
    "  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE RESTRICT,"
    "  flavor_id TEXT REFERENCES flavors(id) ON DELETE RESTRICT,"
    "  network_id TEXT REFERENCES networks(id) ON DELETE RESTRICT,"
    "  host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE RESTRICT,"
    "  vcpus INTEGER NOT NULL, memory_mib INTEGER NOT NULL, disk_gib INTEGER NOT NULL,"
    "  user_data TEXT, command TEXT, env TEXT, restart_policy TEXT NOT NULL,"
    "  desired TEXT NOT NULL CHECK (desired IN ('running', 'stopped', 'deleted')),"
    "  intent_gen INTEGER NOT NULL DEFAULT 0, reboot_gen INTEGER NOT NULL DEFAULT 0,"
    "  stop_timeout INTEGER NOT NULL DEFAULT 10,"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'starting', 'running', 'stopping',"
    "    'stopped', 'deleting', 'failed')),"
    "  pid INTEGER NOT NULL DEFAULT 0, exit_status INTEGER,"
    "  failure TEXT NOT NULL DEFAULT '', restart_count INTEGER NOT NULL DEFAULT 0,"
    "  reboot_done INTEGER NOT NULL DEFAULT 0,"
    "  ip TEXT NOT NULL DEFAULT '', mac TEXT NOT NULL DEFAULT '',"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, ssh_keys TEXT,"
    "  UNIQUE (project, name));"
    "INSERT INTO old SELECT * FROM instances; DROP TABLE instances;"
    "ALTER TABLE old RENAME TO instances;"
    "DELETE FROM schema_version WHERE version > 3; COMMIT;";

/*
 * A database of schema version 3 with an instance and a volume attached to
 * it: migration 4 keeps both (and the reference), and 'paused' is then
 * accepted as desired and observed state.
 */
static void test_migrate_paused(void)
{
	struct yun_err err = {0};
	struct store *s;
	struct st_instance in;
	struct st_volume v = {0};
	struct st_intent intent = {.desired = "paused", .stop_timeout = 10};
	struct st_observed o;
	sqlite3 *raw;
	char *msg = NULL;

	unlink(db);
	s = open_store();
	if (!s)
		return;
	seed(s);
	meta(&v.m, "vol-000000000001", "data");
	v.size_gib = 1;
	snprintf(v.desired, sizeof(v.desired), "available");
	snprintf(v.state, sizeof(v.state), "available");
	CHECK(s->ops->volume_create(s, &v, &err) == 0);
	CHECK(s->ops->volume_attach(s, "data", "web", "/mnt/data", false, &v, &err) == 0);
	s->ops->close(s);
	CHECK(sqlite3_open(db, &raw) == SQLITE_OK);
	CHECK(sqlite3_exec(raw, v3_instances, NULL, NULL, &msg) == SQLITE_OK);
	if (msg)
		fprintf(stderr, "%s\n", msg);
	sqlite3_free(msg);
	sqlite3_close(raw);

	s = open_store();
	if (!s)
		return;
	CHECK(s->ops->instance_get(s, "web", &in, &err) == 0);
	CHECK(!strcmp(in.m.id, "i-000000000001") && in.ssh_keys &&
	      !strcmp(in.ssh_keys, "[\"ssh-ed25519 AAAA k\"]"));
	CHECK(s->ops->volume_get(s, "data", &v, &err) == 0 &&
	      !strcmp(v.instance_id, "i-000000000001"));
	CHECK(s->ops->instance_set_intent(s, in.m.id, in.intent_gen, &intent, &err) == 0);
	st_instance_observed(&in, &o);
	snprintf(o.state, sizeof(o.state), "paused");
	CHECK(s->ops->instance_set_observed(s, in.m.id, &o, NULL, 0, &err) == 0);
	st_instance_clear(&in);
	CHECK(s->ops->instance_get(s, "web", &in, &err) == 0);
	CHECK(!strcmp(in.desired, "paused") && !strcmp(in.state, "paused"));
	st_instance_clear(&in);
	CHECK(s->ops->instance_delete(s, "i-000000000001", &err) == 0);
	CHECK(s->ops->volume_get(s, "data", &v, &err) == 0 && !v.instance_id[0]);
	s->ops->close(s);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(db, sizeof(db), "%s/yund.db", dir);
	RUN(test_kinds);
	RUN(test_volumes);
	RUN(test_volfile);
	RUN(test_mount_path);
	RUN(test_attach_spec);
	RUN(test_sshkey);
	RUN(test_migrate_paused);
	unlink(db);
	snprintf(db, sizeof(db), "%s/yund.db-wal", dir);
	unlink(db);
	snprintf(db, sizeof(db), "%s/yund.db-shm", dir);
	unlink(db);
	rmdir(dir);
	return CHECK_DONE();
}
