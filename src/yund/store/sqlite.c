/*
 * sqlite.c - the store on SQLite (see sqlite.h, store.h).
 *
 * One table per kind with real columns and foreign keys (instances ->
 * images, flavors, networks, hosts; volumes -> instances; snapshots ->
 * volumes), ON DELETE RESTRICT, so the database itself refuses to drop an
 * object something still points at. Every operation is one transaction
 * (BEGIN IMMEDIATE: the write lock first, so read-check-write sequences
 * cannot interleave).
 */
#include "sqlite.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

struct sq {
	struct store base;
	sqlite3 *db;
	pthread_mutex_t lock;
};

static struct sq *SQ(struct store *s)
{
	return (struct sq *)s;
}

/* ---- schema ---- */

/*
 * Migrations, applied in order; schema_version holds how many ran. Never
 * edit one that shipped: add the next.
 */
static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE projects ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);"
    "INSERT INTO projects VALUES ('p-000000000000', 'default', "
    "  strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));"
    "CREATE TABLE hosts ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  hostname TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('up', 'down')),"
    "  vcpus INTEGER NOT NULL, memory_mib INTEGER NOT NULL, disk_gib INTEGER NOT NULL,"
    "  cpu_overcommit REAL NOT NULL, memory_overcommit REAL NOT NULL,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE TABLE flavors ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  vcpus INTEGER NOT NULL CHECK (vcpus > 0),"
    "  memory_mib INTEGER NOT NULL CHECK (memory_mib > 0),"
    "  disk_gib INTEGER NOT NULL CHECK (disk_gib >= 0),"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE TABLE images ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  type TEXT NOT NULL CHECK (type IN ('container', 'microvm')),"
    "  state TEXT NOT NULL CHECK (state IN ('building', 'available', 'failed')),"
    "  source TEXT NOT NULL, path TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL DEFAULT 0,"
    "  os TEXT NOT NULL DEFAULT '', version TEXT NOT NULL DEFAULT '', command TEXT,"
    "  failure TEXT NOT NULL DEFAULT '',"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE TABLE networks ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  cidr TEXT NOT NULL, gateway TEXT NOT NULL DEFAULT '', bridge TEXT NOT NULL DEFAULT '',"
    "  desired TEXT NOT NULL CHECK (desired IN ('active', 'deleted')),"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'active', 'deleting', 'failed')),"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE TABLE instances ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  type TEXT NOT NULL CHECK (type IN ('container', 'microvm')),"
    "  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE RESTRICT,"
    "  flavor_id TEXT REFERENCES flavors(id) ON DELETE RESTRICT,"
    "  network_id TEXT REFERENCES networks(id) ON DELETE RESTRICT,"
    "  host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE RESTRICT,"
    "  vcpus INTEGER NOT NULL CHECK (vcpus > 0),"
    "  memory_mib INTEGER NOT NULL CHECK (memory_mib > 0),"
    "  disk_gib INTEGER NOT NULL CHECK (disk_gib >= 0),"
    "  user_data TEXT, command TEXT, env TEXT,"
    "  restart_policy TEXT NOT NULL CHECK (restart_policy IN ('no', 'on-failure', 'always')),"
    "  desired TEXT NOT NULL CHECK (desired IN ('running', 'stopped', 'deleted')),"
    "  intent_gen INTEGER NOT NULL DEFAULT 0, reboot_gen INTEGER NOT NULL DEFAULT 0,"
    "  stop_timeout INTEGER NOT NULL DEFAULT 10,"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'starting', 'running', 'stopping',"
    "    'stopped', 'deleting', 'failed')),"
    "  pid INTEGER NOT NULL DEFAULT 0, exit_status INTEGER,"
    "  failure TEXT NOT NULL DEFAULT '', restart_count INTEGER NOT NULL DEFAULT 0,"
    "  reboot_done INTEGER NOT NULL DEFAULT 0,"
    "  ip TEXT NOT NULL DEFAULT '', mac TEXT NOT NULL DEFAULT '',"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE INDEX instances_image ON instances(image_id);"
    "CREATE INDEX instances_flavor ON instances(flavor_id);"
    "CREATE INDEX instances_network ON instances(network_id);"
    "CREATE INDEX instances_host ON instances(host_id);"
    "CREATE TABLE volumes ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  size_gib INTEGER NOT NULL CHECK (size_gib > 0), path TEXT NOT NULL DEFAULT '',"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'available', 'in-use', 'deleting')),"
    "  instance_id TEXT REFERENCES instances(id) ON DELETE RESTRICT,"
    "  source_snapshot TEXT REFERENCES snapshots(id) ON DELETE SET NULL,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE INDEX volumes_instance ON volumes(instance_id);"
    "CREATE TABLE snapshots ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  volume_id TEXT NOT NULL REFERENCES volumes(id) ON DELETE RESTRICT,"
    "  path TEXT NOT NULL DEFAULT '', state TEXT NOT NULL CHECK (state IN ('available')),"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE INDEX snapshots_volume ON snapshots(volume_id);",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- helpers ---- */

static int db_err(struct sq *q, struct yun_err *err, const char *what)
{
	return yun_err_set(err, EIO, "database: %s: %s", what, sqlite3_errmsg(q->db));
}

static int exec_sql(struct sq *q, const char *sql, struct yun_err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = yun_err_set(err, EIO, "database: %s", msg ? msg : "error");

		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

static int begin(struct sq *q, struct yun_err *err)
{
	pthread_mutex_lock(&q->lock);
	if (exec_sql(q, "BEGIN IMMEDIATE", err) < 0) {
		pthread_mutex_unlock(&q->lock);
		return -EIO;
	}
	return 0;
}

/* Commit when rc == 0, else roll back; returns rc (or the commit's error). */
static int finish(struct sq *q, int rc, struct yun_err *err)
{
	if (!rc)
		rc = exec_sql(q, "COMMIT", err);
	if (rc)
		exec_sql(q, "ROLLBACK", NULL);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* Prepare and bind: fmt letters s (char *, "" stays ""), n (char *, "" -> NULL), i (int64), d
 * (double). */
static sqlite3_stmt *prep(struct sq *q, struct yun_err *err, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int i = 1;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_err(q, err, "prepare");
		return NULL;
	}
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++, i++) {
		switch (*f) {
		case 's':
			sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
			break;
		case 'n': {
			const char *v = va_arg(ap, const char *);

			if (v && *v)
				sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
			else
				sqlite3_bind_null(st, i);
			break;
		}
		case 'i':
			sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		case 'd':
			sqlite3_bind_double(st, i, va_arg(ap, double));
			break;
		}
	}
	va_end(ap);
	return st;
}

static void col_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", t ? (const char *)t : "");
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? strdup((const char *)t) : NULL;
}

static void col_meta(sqlite3_stmt *st, struct st_meta *m)
{
	col_text(st, 0, m->id, sizeof(m->id));
	col_text(st, 1, m->name, sizeof(m->name));
	col_text(st, 2, m->project, sizeof(m->project));
	col_text(st, 3, m->created_at, sizeof(m->created_at));
	col_text(st, 4, m->updated_at, sizeof(m->updated_at));
}

#define META_COLS "id, name, project, created_at, updated_at"
#define BY_REF	  " WHERE id = ?1 OR (project = 'default' AND name = ?1)"

/* Run a statement that returns no rows; maps constraint failures. */
static int step_done(struct sq *q, sqlite3_stmt *st, struct yun_err *err, const char *what)
{
	int r = sqlite3_step(st);
	int ext = sqlite3_extended_errcode(q->db);
	int rc = 0;

	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
			rc = yun_err_set(err, EEXIST, "%s: name already taken", what);
		else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
			rc = yun_err_set(err, EBUSY,
					 "%s: refers to or is referred to by another "
					 "object",
					 what);
		else
			rc = db_err(q, err, what);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Grow a list by one element. */
static void *grow(void *v, size_t n, size_t size)
{
	return realloc(v, (n + 1) * size);
}

static void now(char *buf)
{
	obj_now(buf);
}

/* ---- meta ---- */

static int meta_get(struct store *s, const char *key, char *buf, size_t len, struct yun_err *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st;
	int rc = -ENOENT;

	pthread_mutex_lock(&q->lock);
	st = prep(q, err, "SELECT value FROM meta WHERE key = ?", "s", key);
	if (!st) {
		pthread_mutex_unlock(&q->lock);
		return -EIO;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		col_text(st, 0, buf, len);
		rc = 0;
	} else {
		yun_err_set(err, ENOENT, "setting %s: not set", key);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static int meta_set(struct store *s, const char *key, const char *value, struct yun_err *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	st = prep(q, err, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", "ss", key,
		  value);
	rc = st ? step_done(q, st, err, key) : -EIO;
	return finish(q, rc, err);
}

/* ---- hosts ---- */

#define HOST_COLS                                                                                  \
	META_COLS ", hostname, state, vcpus, memory_mib, disk_gib, cpu_overcommit, "               \
		  "memory_overcommit"

static void host_row(sqlite3_stmt *st, struct st_host *h)
{
	memset(h, 0, sizeof(*h));
	col_meta(st, &h->m);
	col_text(st, 5, h->hostname, sizeof(h->hostname));
	col_text(st, 6, h->state, sizeof(h->state));
	h->vcpus = sqlite3_column_int64(st, 7);
	h->memory_mib = sqlite3_column_int64(st, 8);
	h->disk_gib = sqlite3_column_int64(st, 9);
	h->cpu_overcommit = sqlite3_column_double(st, 10);
	h->memory_overcommit = sqlite3_column_double(st, 11);
}

static int host_put(struct store *s, const struct st_host *h, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	now(t);
	st = prep(q, err,
		  "INSERT INTO hosts (" HOST_COLS ") VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, "
		  "?9, ?10, ?11) ON CONFLICT (id) DO UPDATE SET name = ?2, hostname = ?5, "
		  "state = ?6, vcpus = ?7, memory_mib = ?8, disk_gib = ?9, cpu_overcommit = ?10, "
		  "memory_overcommit = ?11, updated_at = ?4",
		  "ssssssiiidd", h->m.id, h->m.name, h->m.project, t, h->hostname, h->state,
		  h->vcpus, h->memory_mib, h->disk_gib, h->cpu_overcommit, h->memory_overcommit);
	rc = st ? step_done(q, st, err, "host") : -EIO;
	return finish(q, rc, err);
}

static int host_get(struct store *s, const char *ref, struct st_host *out, struct yun_err *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	st = prep(q, err, "SELECT " HOST_COLS " FROM hosts" BY_REF, "s", ref);
	if (!st)
		rc = -EIO;
	else if (sqlite3_step(st) == SQLITE_ROW)
		host_row(st, out);
	else
		rc = yun_err_set(err, ENOENT, "host %s: not found", ref);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static int host_list(struct store *s, struct st_host **out, size_t *n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_host *v = NULL, *nv;
	sqlite3_stmt *st;
	size_t k = 0;

	pthread_mutex_lock(&q->lock);
	st = prep(q, err, "SELECT " HOST_COLS " FROM hosts ORDER BY created_at, id", "");
	if (!st) {
		pthread_mutex_unlock(&q->lock);
		return -EIO;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!(nv = grow(v, k, sizeof(*v))))
			break;
		v = nv;
		host_row(st, &v[k++]);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	*out = v;
	*n = k;
	return 0;
}

static int alloc_of(struct sq *q, const char *host_id, struct st_alloc *a, struct yun_err *err)
{
	sqlite3_stmt *st = prep(q, err,
				"SELECT COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mib), 0), "
				"COALESCE(SUM(disk_gib), 0), COUNT(*) FROM instances WHERE "
				"host_id = ?",
				"s", host_id);

	memset(a, 0, sizeof(*a));
	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		a->vcpus = sqlite3_column_int64(st, 0);
		a->memory_mib = sqlite3_column_int64(st, 1);
		a->disk_gib = sqlite3_column_int64(st, 2);
		a->instances = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	return 0;
}

static int host_allocated(struct store *s, const char *host_id, struct st_alloc *out,
			  struct yun_err *err)
{
	struct sq *q = SQ(s);
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = alloc_of(q, host_id, out, err);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* ---- flavors ---- */

#define FLAVOR_COLS META_COLS ", vcpus, memory_mib, disk_gib"

static void flavor_row(sqlite3_stmt *st, struct st_flavor *f)
{
	memset(f, 0, sizeof(*f));
	col_meta(st, &f->m);
	f->vcpus = sqlite3_column_int64(st, 5);
	f->memory_mib = sqlite3_column_int64(st, 6);
	f->disk_gib = sqlite3_column_int64(st, 7);
}

static int flavor_create(struct store *s, const struct st_flavor *f, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "flavor %s", f->m.name);
	st = prep(q, err, "INSERT INTO flavors (" FLAVOR_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		  "sssssiii", f->m.id, f->m.name, f->m.project, f->m.created_at, f->m.updated_at,
		  f->vcpus, f->memory_mib, f->disk_gib);
	rc = st ? step_done(q, st, err, what) : -EIO;
	return finish(q, rc, err);
}

static int flavor_get_locked(struct sq *q, const char *ref, struct st_flavor *out,
			     struct yun_err *err)
{
	sqlite3_stmt *st = prep(q, err, "SELECT " FLAVOR_COLS " FROM flavors" BY_REF, "s", ref);
	int rc = 0;

	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		flavor_row(st, out);
	else
		rc = yun_err_set(err, ENOENT, "flavor %s: not found", ref);
	sqlite3_finalize(st);
	return rc;
}

static int flavor_get(struct store *s, const char *ref, struct st_flavor *out, struct yun_err *err)
{
	struct sq *q = SQ(s);
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = flavor_get_locked(q, ref, out, err);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static int flavor_list(struct store *s, struct st_flavor **out, size_t *n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_flavor *v = NULL, *nv;
	sqlite3_stmt *st;
	size_t k = 0;

	pthread_mutex_lock(&q->lock);
	st = prep(q, err, "SELECT " FLAVOR_COLS " FROM flavors ORDER BY vcpus, memory_mib, name",
		  "");
	if (!st) {
		pthread_mutex_unlock(&q->lock);
		return -EIO;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!(nv = grow(v, k, sizeof(*v))))
			break;
		v = nv;
		flavor_row(st, &v[k++]);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	*out = v;
	*n = k;
	return 0;
}

/* -EBUSY naming the first user of `id` in column `col` of instances. */
static int used_by_instance(struct sq *q, const char *col, const char *id, const char *what,
			    struct yun_err *err)
{
	char sql[160], name[OBJ_NAME_MAX] = "";
	sqlite3_stmt *st;
	int64_t count = 0;

	snprintf(sql, sizeof(sql), "SELECT MIN(name), COUNT(*) FROM instances WHERE %s = ?", col);
	st = prep(q, err, sql, "s", id);
	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		count = sqlite3_column_int64(st, 1);
		col_text(st, 0, name, sizeof(name));
	}
	sqlite3_finalize(st);
	if (count == 1)
		return yun_err_set(err, EBUSY, "%s: used by instance %s", what, name);
	if (count > 1)
		return yun_err_set(err, EBUSY, "%s: used by instance %s and %" PRId64 " more", what,
				   name, count - 1);
	return 0;
}

static int flavor_delete(struct store *s, const char *ref, struct st_flavor *out,
			 struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	rc = flavor_get_locked(q, ref, out, err);
	if (!rc) {
		snprintf(what, sizeof(what), "flavor %s", out->m.name);
		rc = used_by_instance(q, "flavor_id", out->m.id, what, err);
	}
	if (!rc) {
		st = prep(q, err, "DELETE FROM flavors WHERE id = ?", "s", out->m.id);
		rc = st ? step_done(q, st, err, what) : -EIO;
	}
	return finish(q, rc, err);
}

/* ---- images ---- */

#define IMAGE_COLS META_COLS ", type, state, source, path, size, os, version, command, failure"

static void image_row(sqlite3_stmt *st, struct st_image *img)
{
	memset(img, 0, sizeof(*img));
	col_meta(st, &img->m);
	col_text(st, 5, img->type, sizeof(img->type));
	col_text(st, 6, img->state, sizeof(img->state));
	col_text(st, 7, img->source, sizeof(img->source));
	col_text(st, 8, img->path, sizeof(img->path));
	img->size = sqlite3_column_int64(st, 9);
	col_text(st, 10, img->os, sizeof(img->os));
	col_text(st, 11, img->version, sizeof(img->version));
	img->command = col_dup(st, 12);
	col_text(st, 13, img->failure, sizeof(img->failure));
}

static int image_create(struct store *s, const struct st_image *img, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "image %s", img->m.name);
	st = prep(q, err,
		  "INSERT INTO images (" IMAGE_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
		  "?, ?, ?, ?)",
		  "sssssssssissns", img->m.id, img->m.name, img->m.project, img->m.created_at,
		  img->m.updated_at, img->type, img->state, img->source, img->path, img->size,
		  img->os, img->version, img->command, img->failure);
	rc = st ? step_done(q, st, err, what) : -EIO;
	return finish(q, rc, err);
}

static int image_get_locked(struct sq *q, const char *ref, struct st_image *out,
			    struct yun_err *err)
{
	sqlite3_stmt *st = prep(q, err, "SELECT " IMAGE_COLS " FROM images" BY_REF, "s", ref);
	int rc = 0;

	memset(out, 0, sizeof(*out)); /* clearable whatever happens */
	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		image_row(st, out);
	else
		rc = yun_err_set(err, ENOENT, "image %s: not found", ref);
	sqlite3_finalize(st);
	return rc;
}

static int image_get(struct store *s, const char *ref, struct st_image *out, struct yun_err *err)
{
	struct sq *q = SQ(s);
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = image_get_locked(q, ref, out, err);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static int image_list(struct store *s, struct st_image **out, size_t *n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_image *v = NULL, *nv;
	sqlite3_stmt *st;
	size_t k = 0;

	pthread_mutex_lock(&q->lock);
	st = prep(q, err, "SELECT " IMAGE_COLS " FROM images ORDER BY created_at, id", "");
	if (!st) {
		pthread_mutex_unlock(&q->lock);
		return -EIO;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!(nv = grow(v, k, sizeof(*v))))
			break;
		v = nv;
		image_row(st, &v[k++]);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	*out = v;
	*n = k;
	return 0;
}

static int image_update(struct store *s, const struct st_image *img, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX], what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	now(t);
	snprintf(what, sizeof(what), "image %s", img->m.name);
	st = prep(q, err,
		  "UPDATE images SET state = ?, path = ?, size = ?, os = ?, version = ?, "
		  "command = ?, failure = ?, updated_at = ? WHERE id = ?",
		  "ssissnsss", img->state, img->path, img->size, img->os, img->version,
		  img->command, img->failure, t, img->m.id);
	rc = st ? step_done(q, st, err, what) : -EIO;
	if (!rc && sqlite3_changes(q->db) == 0)
		rc = yun_err_set(err, ENOENT, "image %s: not found", img->m.id);
	return finish(q, rc, err);
}

static int image_delete(struct store *s, const char *ref, struct st_image *out, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	rc = image_get_locked(q, ref, out, err);
	if (!rc) {
		snprintf(what, sizeof(what), "image %s", out->m.name);
		if (!strcmp(out->state, "building"))
			rc = yun_err_set(err, EBUSY,
					 "%s: is building (wait until it is available "
					 "or failed)",
					 what);
	}
	if (!rc)
		rc = used_by_instance(q, "image_id", out->m.id, what, err);
	if (!rc) {
		st = prep(q, err, "DELETE FROM images WHERE id = ?", "s", out->m.id);
		rc = st ? step_done(q, st, err, what) : -EIO;
	}
	if (rc)
		st_image_clear(out);
	return finish(q, rc, err);
}

/* ---- networks ---- */

#define NETWORK_COLS META_COLS ", cidr, gateway, bridge, desired, state"

static void network_row(sqlite3_stmt *st, struct st_network *n)
{
	memset(n, 0, sizeof(*n));
	col_meta(st, &n->m);
	col_text(st, 5, n->cidr, sizeof(n->cidr));
	col_text(st, 6, n->gateway, sizeof(n->gateway));
	col_text(st, 7, n->bridge, sizeof(n->bridge));
	col_text(st, 8, n->desired, sizeof(n->desired));
	col_text(st, 9, n->state, sizeof(n->state));
}

static int network_create(struct store *s, const struct st_network *n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "network %s", n->m.name);
	st = prep(q, err,
		  "INSERT INTO networks (" NETWORK_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		  "ssssssssss", n->m.id, n->m.name, n->m.project, n->m.created_at, n->m.updated_at,
		  n->cidr, n->gateway, n->bridge, n->desired, n->state);
	rc = st ? step_done(q, st, err, what) : -EIO;
	return finish(q, rc, err);
}

static int network_get_locked(struct sq *q, const char *ref, struct st_network *out,
			      struct yun_err *err)
{
	sqlite3_stmt *st = prep(q, err, "SELECT " NETWORK_COLS " FROM networks" BY_REF, "s", ref);
	int rc = 0;

	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		network_row(st, out);
	else
		rc = yun_err_set(err, ENOENT, "network %s: not found", ref);
	sqlite3_finalize(st);
	return rc;
}

static int network_get(struct store *s, const char *ref, struct st_network *out,
		       struct yun_err *err)
{
	struct sq *q = SQ(s);
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = network_get_locked(q, ref, out, err);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static int network_list(struct store *s, struct st_network **out, size_t *n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_network *v = NULL, *nv;
	sqlite3_stmt *st;
	size_t k = 0;

	pthread_mutex_lock(&q->lock);
	st = prep(q, err, "SELECT " NETWORK_COLS " FROM networks ORDER BY created_at, id", "");
	if (!st) {
		pthread_mutex_unlock(&q->lock);
		return -EIO;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!(nv = grow(v, k, sizeof(*v))))
			break;
		v = nv;
		network_row(st, &v[k++]);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	*out = v;
	*n = k;
	return 0;
}

static int network_update(struct store *s, const struct st_network *n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX], what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	now(t);
	snprintf(what, sizeof(what), "network %s", n->m.name);
	st = prep(q, err,
		  "UPDATE networks SET gateway = ?, bridge = ?, desired = ?, state = ?, "
		  "updated_at = ? WHERE id = ?",
		  "ssssss", n->gateway, n->bridge, n->desired, n->state, t, n->m.id);
	rc = st ? step_done(q, st, err, what) : -EIO;
	if (!rc && sqlite3_changes(q->db) == 0)
		rc = yun_err_set(err, ENOENT, "network %s: not found", n->m.id);
	return finish(q, rc, err);
}

static int network_request_delete(struct store *s, const char *ref, struct st_network *out,
				  struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX], what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	rc = network_get_locked(q, ref, out, err);
	if (!rc) {
		snprintf(what, sizeof(what), "network %s", out->m.name);
		rc = used_by_instance(q, "network_id", out->m.id, what, err);
	}
	if (!rc) {
		now(t);
		st = prep(q, err,
			  "UPDATE networks SET desired = 'deleted', state = 'deleting', "
			  "updated_at = ? WHERE id = ?",
			  "ss", t, out->m.id);
		rc = st ? step_done(q, st, err, what) : -EIO;
	}
	if (!rc) {
		snprintf(out->desired, sizeof(out->desired), "deleted");
		snprintf(out->state, sizeof(out->state), "deleting");
		snprintf(out->m.updated_at, sizeof(out->m.updated_at), "%s", t);
	}
	return finish(q, rc, err);
}

static int network_delete(struct store *s, const char *id, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "network %s", id);
	st = prep(q, err, "DELETE FROM networks WHERE id = ?", "s", id);
	rc = st ? step_done(q, st, err, what) : -EIO;
	return finish(q, rc, err);
}

/* ---- instances ---- */

#define INSTANCE_COLS                                                                              \
	META_COLS ", type, image_id, flavor_id, network_id, host_id, vcpus, memory_mib, "          \
		  "disk_gib, user_data, command, env, restart_policy, desired, intent_gen, "       \
		  "reboot_gen, stop_timeout, state, pid, exit_status, failure, restart_count, "    \
		  "reboot_done, ip, mac"

static void instance_row(sqlite3_stmt *st, struct st_instance *in)
{
	memset(in, 0, sizeof(*in));
	col_meta(st, &in->m);
	col_text(st, 5, in->type, sizeof(in->type));
	col_text(st, 6, in->image_id, sizeof(in->image_id));
	col_text(st, 7, in->flavor_id, sizeof(in->flavor_id));
	col_text(st, 8, in->network_id, sizeof(in->network_id));
	col_text(st, 9, in->host_id, sizeof(in->host_id));
	in->vcpus = sqlite3_column_int64(st, 10);
	in->memory_mib = sqlite3_column_int64(st, 11);
	in->disk_gib = sqlite3_column_int64(st, 12);
	in->user_data = col_dup(st, 13);
	in->command = col_dup(st, 14);
	in->env = col_dup(st, 15);
	col_text(st, 16, in->restart_policy, sizeof(in->restart_policy));
	col_text(st, 17, in->desired, sizeof(in->desired));
	in->intent_gen = sqlite3_column_int64(st, 18);
	in->reboot_gen = sqlite3_column_int64(st, 19);
	in->stop_timeout = sqlite3_column_int64(st, 20);
	col_text(st, 21, in->state, sizeof(in->state));
	in->pid = sqlite3_column_int64(st, 22);
	in->has_exit = sqlite3_column_type(st, 23) != SQLITE_NULL;
	in->exit_status = sqlite3_column_int64(st, 23);
	col_text(st, 24, in->failure, sizeof(in->failure));
	in->restart_count = sqlite3_column_int64(st, 25);
	in->reboot_done = sqlite3_column_int64(st, 26);
	col_text(st, 27, in->ip, sizeof(in->ip));
	col_text(st, 28, in->mac, sizeof(in->mac));
}

static int instance_create(struct store *s, const struct st_instance *in,
			   const struct st_capacity *cap, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_alloc a;
	char what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "instance %s", in->m.name);
	rc = alloc_of(q, in->host_id, &a, err);
	if (!rc && a.vcpus + in->vcpus > cap->vcpus)
		rc = yun_err_set(
		    err, ENOSPC,
		    "%s: does not fit on host %s: %" PRId64 " vCPUs requested, %" PRId64
		    " of %" PRId64 " free (CPU over-commit %.2f)",
		    what, in->host_id, in->vcpus, cap->vcpus > a.vcpus ? cap->vcpus - a.vcpus : 0,
		    cap->vcpus, cap->cpu_overcommit);
	if (!rc && a.memory_mib + in->memory_mib > cap->memory_mib)
		rc =
		    yun_err_set(err, ENOSPC,
				"%s: does not fit on host %s: %" PRId64 " MiB of memory requested, "
				"%" PRId64 " of %" PRId64 " MiB free (memory over-commit %.2f)",
				what, in->host_id, in->memory_mib,
				cap->memory_mib > a.memory_mib ? cap->memory_mib - a.memory_mib : 0,
				cap->memory_mib, cap->memory_overcommit);
	if (!rc) {
		st = prep(q, err,
			  "INSERT INTO instances (" INSTANCE_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, "
			  "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
			  "sssssssnnsiiinnnssiiisisiiss", in->m.id, in->m.name, in->m.project,
			  in->m.created_at, in->m.updated_at, in->type, in->image_id, in->flavor_id,
			  in->network_id, in->host_id, in->vcpus, in->memory_mib, in->disk_gib,
			  in->user_data, in->command, in->env, in->restart_policy, in->desired,
			  in->intent_gen, in->reboot_gen, in->stop_timeout, in->state, in->pid,
			  in->failure, in->restart_count, in->reboot_done, in->ip, in->mac);
		rc = st ? step_done(q, st, err, what) : -EIO;
		if (rc == -EBUSY)
			rc = yun_err_set(err, ENOENT,
					 "%s: its image, flavor, network or host no "
					 "longer exists",
					 what);
	}
	return finish(q, rc, err);
}

static int instance_get(struct store *s, const char *ref, struct st_instance *out,
			struct yun_err *err)
{
	struct sq *q = SQ(s);
	sqlite3_stmt *st;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	st = prep(q, err, "SELECT " INSTANCE_COLS " FROM instances" BY_REF, "s", ref);
	if (!st)
		rc = -EIO;
	else if (sqlite3_step(st) == SQLITE_ROW)
		instance_row(st, out);
	else
		rc = yun_err_set(err, ENOENT, "instance %s: not found", ref);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static int instance_list(struct store *s, struct st_instance **out, size_t *n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_instance *v = NULL, *nv;
	sqlite3_stmt *st;
	size_t k = 0;

	pthread_mutex_lock(&q->lock);
	st = prep(q, err, "SELECT " INSTANCE_COLS " FROM instances ORDER BY created_at, id", "");
	if (!st) {
		pthread_mutex_unlock(&q->lock);
		return -EIO;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!(nv = grow(v, k, sizeof(*v))))
			break;
		v = nv;
		instance_row(st, &v[k++]);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	*out = v;
	*n = k;
	return 0;
}

static int instance_set_intent(struct store *s, const char *id, int64_t expect_gen,
			       const struct st_intent *in, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX], what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	now(t);
	snprintf(what, sizeof(what), "instance %s", id);
	st = prep(q, err,
		  "UPDATE instances SET desired = ?1, reboot_gen = ?2, stop_timeout = ?3, "
		  "state = CASE WHEN ?4 = '' THEN state ELSE ?4 END, "
		  "intent_gen = intent_gen + 1, updated_at = ?5 WHERE id = ?6 AND intent_gen = ?7",
		  "siisssi", in->desired, in->reboot_gen, in->stop_timeout, in->state, t, id,
		  expect_gen);
	rc = st ? step_done(q, st, err, what) : -EIO;
	if (!rc && sqlite3_changes(q->db) == 0) {
		st = prep(q, err, "SELECT 1 FROM instances WHERE id = ?", "s", id);
		if (st && sqlite3_step(st) == SQLITE_ROW)
			rc = yun_err_set(err, EAGAIN, "%s: changed meanwhile", what);
		else
			rc = yun_err_set(err, ENOENT, "%s: not found", what);
		sqlite3_finalize(st);
	}
	return finish(q, rc, err);
}

static int instance_set_observed(struct store *s, const char *id, const struct st_observed *o,
				 const struct st_intent *intent, int64_t expect_gen,
				 struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX], what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	now(t);
	snprintf(what, sizeof(what), "instance %s", id);
	if (intent) {
		st = prep(q, err,
			  "UPDATE instances SET desired = ?, reboot_gen = ?, stop_timeout = ?, "
			  "intent_gen = intent_gen + 1 WHERE id = ? AND intent_gen = ?",
			  "siisi", intent->desired, intent->reboot_gen, intent->stop_timeout, id,
			  expect_gen);
		rc = st ? step_done(q, st, err, what) : -EIO;
		if (!rc && sqlite3_changes(q->db) == 0)
			rc = yun_err_set(err, EAGAIN, "%s: changed meanwhile", what);
	}
	if (!rc) {
		st = prep(q, err,
			  "UPDATE instances SET state = ?, pid = ?, exit_status = CASE WHEN ? "
			  "THEN ? ELSE NULL END, failure = ?, restart_count = ?, reboot_done = ?, "
			  "ip = ?, mac = ?, updated_at = ? WHERE id = ?",
			  "siiisiissss", o->state, o->pid, (int64_t)o->has_exit, o->exit_status,
			  o->failure, o->restart_count, o->reboot_done, o->ip, o->mac, t, id);
		rc = st ? step_done(q, st, err, what) : -EIO;
		if (!rc && sqlite3_changes(q->db) == 0)
			rc = yun_err_set(err, ENOENT, "%s: not found", what);
	}
	return finish(q, rc, err);
}

static int instance_delete(struct store *s, const char *id, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	sqlite3_stmt *st;
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "instance %s", id);
	st = prep(q, err, "DELETE FROM instances WHERE id = ?", "s", id);
	rc = st ? step_done(q, st, err, what) : -EIO;
	return finish(q, rc, err);
}

/* ---- open / close ---- */

static void sq_close(struct store *s)
{
	struct sq *q = SQ(s);

	if (!q)
		return;
	sqlite3_close(q->db);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static const struct store_ops sqlite_ops = {
    .close = sq_close,
    .meta_get = meta_get,
    .meta_set = meta_set,
    .host_put = host_put,
    .host_get = host_get,
    .host_list = host_list,
    .host_allocated = host_allocated,
    .flavor_create = flavor_create,
    .flavor_get = flavor_get,
    .flavor_list = flavor_list,
    .flavor_delete = flavor_delete,
    .image_create = image_create,
    .image_get = image_get,
    .image_list = image_list,
    .image_update = image_update,
    .image_delete = image_delete,
    .network_create = network_create,
    .network_get = network_get,
    .network_list = network_list,
    .network_update = network_update,
    .network_request_delete = network_request_delete,
    .network_delete = network_delete,
    .instance_create = instance_create,
    .instance_get = instance_get,
    .instance_list = instance_list,
    .instance_set_intent = instance_set_intent,
    .instance_set_observed = instance_set_observed,
    .instance_delete = instance_delete,
};

static int schema_version(struct sq *q, int *v, struct yun_err *err)
{
	sqlite3_stmt *st;

	*v = 0;
	if (exec_sql(q, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
		     err) < 0)
		return -EIO;
	st = prep(q, err, "SELECT MAX(version) FROM schema_version", "");
	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int migrate(struct sq *q, const char *path, struct yun_err *err)
{
	int v, rc;

	if (begin(q, err) < 0)
		return -EIO;
	rc = schema_version(q, &v, err);
	if (!rc && v > N_MIGRATIONS)
		rc = yun_err_set(err, EPROTO,
				 "database %s: schema version %d is newer than this yund's (%d)",
				 path, v, N_MIGRATIONS);
	for (; !rc && v < N_MIGRATIONS; v++) {
		char sql[64];

		rc = exec_sql(q, migrations[v], err);
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d)", v + 1);
		if (!rc)
			rc = exec_sql(q, sql, err);
	}
	return finish(q, rc, err);
}

int store_sqlite_open(const char *path, struct store **out, struct yun_err *err)
{
	struct sq *q = calloc(1, sizeof(*q));
	int rc;

	if (!q)
		return yun_err_set(err, ENOMEM, "out of memory");
	q->base.ops = &sqlite_ops;
	pthread_mutex_init(&q->lock, NULL);
	if (sqlite3_open_v2(path, &q->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		rc = yun_err_set(err, EIO, "database %s: %s", path,
				 q->db ? sqlite3_errmsg(q->db) : "cannot open");
		sq_close(&q->base);
		return rc;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, 5000);
	/* WAL: readers never block the writer; FULL: see sqlite.h. */
	rc = exec_sql(q,
		      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
		      "PRAGMA foreign_keys = ON;",
		      err);
	if (!rc)
		rc = migrate(q, path, err);
	if (rc) {
		char msg[YUN_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		if (strncmp(msg, "database ", 9))
			yun_err_set(err, err->code, "database %s: %s", path, msg);
		sq_close(&q->base);
		return rc;
	}
	*out = &q->base;
	return 0;
}
