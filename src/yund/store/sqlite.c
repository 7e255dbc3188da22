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
#include <stddef.h>
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
    /*
     * 2: volumes and snapshots as the volume service uses them (both
     * tables were still empty: the first slice refused volumes). A
     * volume's source snapshot may be deleted (SET NULL: a clone is a
     * copy); a snapshot keeps its volume (RESTRICT).
     */
    "DROP TABLE IF EXISTS snapshots;"
    "DROP TABLE IF EXISTS volumes;"
    "CREATE TABLE volumes ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  size_gib INTEGER NOT NULL CHECK (size_gib > 0),"
    "  desired TEXT NOT NULL CHECK (desired IN ('available', 'deleted')),"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'available', 'deleting', 'failed')),"
    "  instance_id TEXT REFERENCES instances(id) ON DELETE RESTRICT,"
    "  mount_path TEXT NOT NULL DEFAULT '', readonly INTEGER NOT NULL DEFAULT 0,"
    "  source_snapshot TEXT REFERENCES snapshots(id) ON DELETE SET NULL,"
    "  path TEXT NOT NULL DEFAULT '', method TEXT NOT NULL DEFAULT '',"
    "  failure TEXT NOT NULL DEFAULT '',"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE INDEX volumes_instance ON volumes(instance_id);"
    "CREATE INDEX volumes_source ON volumes(source_snapshot);"
    "CREATE TABLE snapshots ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  volume_id TEXT NOT NULL REFERENCES volumes(id) ON DELETE RESTRICT,"
    "  size_gib INTEGER NOT NULL CHECK (size_gib > 0),"
    "  desired TEXT NOT NULL CHECK (desired IN ('available', 'deleted')),"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'available', 'deleting', 'failed')),"
    "  path TEXT NOT NULL DEFAULT '', method TEXT NOT NULL DEFAULT '',"
    "  failure TEXT NOT NULL DEFAULT '',"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (project, name));"
    "CREATE INDEX snapshots_volume ON snapshots(volume_id);",
    /* 3: the SSH public keys of an instance (JSON array text; NULL: none). */
    "ALTER TABLE instances ADD COLUMN ssh_keys TEXT;",
    /*
     * 4: paused microVMs (desired and state 'paused'). SQLite cannot change
     * a CHECK in place: the table is made anew and copied, with foreign
     * keys off while migrating (store_sqlite_open) and checked before the
     * commit (migrate).
     */
    "CREATE TABLE instances_new ("
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
    "  desired TEXT NOT NULL CHECK (desired IN ('running', 'paused', 'stopped', 'deleted')),"
    "  intent_gen INTEGER NOT NULL DEFAULT 0, reboot_gen INTEGER NOT NULL DEFAULT 0,"
    "  stop_timeout INTEGER NOT NULL DEFAULT 10,"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'starting', 'running', 'paused',"
    "    'stopping', 'stopped', 'deleting', 'failed')),"
    "  pid INTEGER NOT NULL DEFAULT 0, exit_status INTEGER,"
    "  failure TEXT NOT NULL DEFAULT '', restart_count INTEGER NOT NULL DEFAULT 0,"
    "  reboot_done INTEGER NOT NULL DEFAULT 0,"
    "  ip TEXT NOT NULL DEFAULT '', mac TEXT NOT NULL DEFAULT '',"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, ssh_keys TEXT,"
    "  UNIQUE (project, name));"
    "INSERT INTO instances_new ("
    "  id, name, project, type, image_id, flavor_id, network_id, host_id, vcpus, memory_mib, "
    "  disk_gib, user_data, command, env, restart_policy, desired, intent_gen, reboot_gen, "
    "  stop_timeout, state, pid, exit_status, failure, restart_count, reboot_done, ip, mac, "
    "  created_at, updated_at, ssh_keys) SELECT "
    "  id, name, project, type, image_id, flavor_id, network_id, host_id, vcpus, memory_mib, "
    "  disk_gib, user_data, command, env, restart_policy, desired, intent_gen, reboot_gen, "
    "  stop_timeout, state, pid, exit_status, failure, restart_count, reboot_done, ip, mac, "
    "  created_at, updated_at, ssh_keys FROM instances;"
    "DROP TABLE instances;"
    "ALTER TABLE instances_new RENAME TO instances;"
    "CREATE INDEX instances_image ON instances(image_id);"
    "CREATE INDEX instances_flavor ON instances(flavor_id);"
    "CREATE INDEX instances_network ON instances(network_id);"
    "CREATE INDEX instances_host ON instances(host_id);",
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

/*
 * Prepare and bind: fmt letters s (char *, "" stays ""), n (char *, "" ->
 * NULL), i (int64), d (double).
 */
static sqlite3_stmt *prepv(struct sq *q, struct yun_err *err, const char *sql, const char *fmt,
			   va_list ap)
{
	sqlite3_stmt *st = NULL;
	int i = 1;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_err(q, err, "prepare");
		return NULL;
	}
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
	return st;
}

static sqlite3_stmt *prep(struct sq *q, struct yun_err *err, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, fmt);
	st = prepv(q, err, sql, fmt, ap);
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

/* Step a statement that returns no rows, finalize it; maps constraint failures. */
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

/*
 * One statement inside an open transaction: the number of rows it
 * changed, or a negative errno. `what` names the object for messages.
 */
static int run(struct sq *q, struct yun_err *err, const char *what, const char *sql,
	       const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	st = prepv(q, err, sql, fmt, ap);
	va_end(ap);
	if (!st)
		return -EIO;
	rc = step_done(q, st, err, what);
	return rc ? rc : sqlite3_changes(q->db);
}

/*
 * One statement as a transaction of its own. With must_change, a
 * statement that changed no row is "<what>: not found".
 */
static int write1(struct sq *q, struct yun_err *err, const char *what, bool must_change,
		  const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc = begin(q, err);

	if (rc)
		return rc;
	va_start(ap, fmt);
	st = prepv(q, err, sql, fmt, ap);
	va_end(ap);
	rc = st ? step_done(q, st, err, what) : -EIO;
	if (!rc && must_change && sqlite3_changes(q->db) == 0)
		rc = yun_err_set(err, ENOENT, "%s: not found", what);
	return finish(q, rc, err);
}

static void now(char *buf)
{
	obj_now(buf);
}

/* ---- kinds: what get, list and delete need to know of a table ---- */

struct kind {
	const char *name;  /* in messages: "flavor web-1: not found" */
	const char *table; /* its table */
	const char *cols;  /* the columns row() decodes, in order */
	const char *order; /* ORDER BY of lists */
	size_t size;	   /* of one record */
	void (*row)(sqlite3_stmt *st, void *out);
	void (*clear)(void *rec); /* frees a record's heap parts; NULL: none */
	/* Kinds the loop removes: where the record keeps desired and state (char[16]). */
	size_t desired_off, state_off;
};

/* "SELECT <cols> FROM <table><tail>" into buf. */
static int select_sql(const struct kind *k, const char *tail, char *buf, size_t len,
		      struct yun_err *err)
{
	int n = snprintf(buf, len, "SELECT %s FROM %s%s", k->cols, k->table, tail);

	if (n < 0 || (size_t)n >= len)
		return yun_err_set(err, ENAMETOOLONG, "database: %s query too long", k->name);
	return 0;
}

/* Fetch the row `ref` (id or name) into out; the caller holds the lock. */
static int get_locked(struct sq *q, const struct kind *k, const char *ref, void *out,
		      struct yun_err *err)
{
	char sql[1024];
	sqlite3_stmt *st;
	int r, rc = 0;

	memset(out, 0, k->size); /* clearable whatever happens */
	if (select_sql(k, BY_REF, sql, sizeof(sql), err) < 0)
		return -err->code;
	st = prep(q, err, sql, "s", ref);
	if (!st)
		return -EIO;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		k->row(st, out);
	else if (r == SQLITE_DONE)
		rc = yun_err_set(err, ENOENT, "%s %s: not found", k->name, ref);
	else
		rc = db_err(q, err, k->name);
	sqlite3_finalize(st);
	return rc;
}

static int get(struct store *s, const struct kind *k, const char *ref, void *out,
	       struct yun_err *err)
{
	struct sq *q = SQ(s);
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = get_locked(q, k, ref, out, err);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static void free_records(const struct kind *k, void *v, size_t n)
{
	for (size_t i = 0; k->clear && i < n; i++)
		k->clear((char *)v + i * k->size);
	free(v);
}

/* Every row of the kind, or an error and nothing: never a partial list. */
static int list(struct store *s, const struct kind *k, void **out, size_t *n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char sql[1024];
	sqlite3_stmt *st = NULL;
	size_t cnt = 0, cap = 0;
	void *v = NULL;
	int r, rc;

	*out = NULL;
	*n = 0;
	rc = select_sql(k, k->order, sql, sizeof(sql), err);
	if (rc)
		return rc;
	pthread_mutex_lock(&q->lock);
	st = prep(q, err, sql, "");
	if (!st)
		rc = -EIO;
	while (st && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *nv = realloc(v, ncap * k->size);

			if (!nv) {
				rc = yun_err_set(err, ENOMEM, "%s list: out of memory", k->name);
				break;
			}
			v = nv;
			cap = ncap;
		}
		k->row(st, (char *)v + cnt * k->size);
		cnt++;
	}
	if (st && !rc && r != SQLITE_DONE)
		rc = db_err(q, err, k->name);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->lock);
	if (rc) {
		free_records(k, v, cnt);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* DELETE the row `id` (inside a transaction). */
static int delete_locked(struct sq *q, const struct kind *k, const char *id, const char *what,
			 struct yun_err *err)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", k->table);
	return run(q, err, what, sql, "s", id) < 0 ? -err->code : 0;
}

static int delete_id(struct store *s, const struct kind *k, const char *id, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "%s %s", k->name, id);
	rc = delete_locked(q, k, id, what, err);
	return finish(q, rc, err);
}

/*
 * -EBUSY naming the first row of `user` whose column `col` is `id` and
 * that matches `extra` (SQL, may be ""): "<what>: <verb> <kind> <name>".
 */
static int used_by(struct sq *q, const struct kind *user, const char *col, const char *extra,
		   const char *id, const char *what, const char *verb, struct yun_err *err)
{
	char sql[256], name[OBJ_NAME_MAX] = "";
	sqlite3_stmt *st;
	int64_t count = 0;

	snprintf(sql, sizeof(sql), "SELECT MIN(name), COUNT(*) FROM %s WHERE %s = ?%s", user->table,
		 col, extra);
	st = prep(q, err, sql, "s", id);
	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		count = sqlite3_column_int64(st, 1);
		col_text(st, 0, name, sizeof(name));
	}
	sqlite3_finalize(st);
	if (count == 1)
		return yun_err_set(err, EBUSY, "%s: %s %s %s", what, verb, user->name, name);
	if (count > 1)
		return yun_err_set(err, EBUSY, "%s: %s %s %s and %" PRId64 " more", what, verb,
				   user->name, name, count - 1);
	return 0;
}

/* A refusal check of a delete: 0, or -EBUSY naming what holds `rec`. */
typedef int (*delete_check)(struct sq *q, const void *rec, const char *what, struct yun_err *err);

/*
 * The API's delete of an object the loop removes: after check(), desired
 * = deleted and state = deleting in the row and in *out (whose first
 * member is its struct st_meta).
 */
static int request_delete(struct store *s, const struct kind *k, const char *ref, void *out,
			  delete_check check, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_meta *m = out;
	char t[OBJ_TIME_MAX], what[128], sql[160];
	int rc = begin(q, err);

	if (rc)
		return rc;
	rc = get_locked(q, k, ref, out, err);
	if (!rc) {
		snprintf(what, sizeof(what), "%s %s", k->name, m->name);
		rc = check(q, out, what, err);
	}
	if (!rc) {
		now(t);
		snprintf(sql, sizeof(sql),
			 "UPDATE %s SET desired = 'deleted', state = 'deleting', updated_at = ? "
			 "WHERE id = ?",
			 k->table);
		rc = run(q, err, what, sql, "ss", t, m->id);
		rc = rc < 0 ? rc : 0;
	}
	if (!rc) {
		snprintf((char *)out + k->desired_off, 16, "deleted");
		snprintf((char *)out + k->state_off, 16, "deleting");
		snprintf(m->updated_at, sizeof(m->updated_at), "%s", t);
	}
	return finish(q, rc, err);
}

/*
 * The loop's record of a file it made (volumes, snapshots): path,
 * method, failure, state; an object the API marked deleting stays so.
 */
static int set_file_observed(struct store *s, const struct kind *k, const char *id,
			     const char *path, const char *method, const char *failure,
			     const char *state, struct yun_err *err)
{
	char t[OBJ_TIME_MAX], what[128], sql[256];

	now(t);
	snprintf(what, sizeof(what), "%s %s", k->name, id);
	snprintf(sql, sizeof(sql),
		 "UPDATE %s SET path = ?, method = ?, failure = ?, updated_at = ?, "
		 "state = CASE WHEN desired = 'deleted' THEN 'deleting' ELSE ? END WHERE id = ?",
		 k->table);
	return write1(SQ(s), err, what, true, sql, "ssssss", path, method, failure, t, state, id);
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
	return write1(SQ(s), err, key, false,
		      "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", "ss", key, value);
}

/* ---- hosts ---- */

static void host_row(sqlite3_stmt *st, void *out)
{
	struct st_host *h = out;

	col_meta(st, &h->m);
	col_text(st, 5, h->hostname, sizeof(h->hostname));
	col_text(st, 6, h->state, sizeof(h->state));
	h->vcpus = sqlite3_column_int64(st, 7);
	h->memory_mib = sqlite3_column_int64(st, 8);
	h->disk_gib = sqlite3_column_int64(st, 9);
	h->cpu_overcommit = sqlite3_column_double(st, 10);
	h->memory_overcommit = sqlite3_column_double(st, 11);
}

static const struct kind host_kind = {
    .name = "host",
    .table = "hosts",
    .cols = META_COLS ", hostname, state, vcpus, memory_mib, disk_gib, cpu_overcommit, "
		      "memory_overcommit",
    .order = " ORDER BY created_at, id",
    .size = sizeof(struct st_host),
    .row = host_row,
};

static int host_put(struct store *s, const struct st_host *h, struct yun_err *err)
{
	char t[OBJ_TIME_MAX];

	now(t);
	return write1(SQ(s), err, "host", false,
		      "INSERT INTO hosts (id, name, project, created_at, updated_at, hostname, "
		      "state, vcpus, memory_mib, disk_gib, cpu_overcommit, memory_overcommit) "
		      "VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
		      "ON CONFLICT (id) DO UPDATE SET name = ?2, hostname = ?5, state = ?6, "
		      "vcpus = ?7, memory_mib = ?8, disk_gib = ?9, cpu_overcommit = ?10, "
		      "memory_overcommit = ?11, updated_at = ?4",
		      "ssssssiiidd", h->m.id, h->m.name, h->m.project, t, h->hostname, h->state,
		      h->vcpus, h->memory_mib, h->disk_gib, h->cpu_overcommit,
		      h->memory_overcommit);
}

static int host_get(struct store *s, const char *ref, struct st_host *out, struct yun_err *err)
{
	return get(s, &host_kind, ref, out, err);
}

static int host_list(struct store *s, struct st_host **out, size_t *n, struct yun_err *err)
{
	return list(s, &host_kind, (void **)out, n, err);
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

static void flavor_row(sqlite3_stmt *st, void *out)
{
	struct st_flavor *f = out;

	col_meta(st, &f->m);
	f->vcpus = sqlite3_column_int64(st, 5);
	f->memory_mib = sqlite3_column_int64(st, 6);
	f->disk_gib = sqlite3_column_int64(st, 7);
}

static const struct kind flavor_kind = {
    .name = "flavor",
    .table = "flavors",
    .cols = META_COLS ", vcpus, memory_mib, disk_gib",
    .order = " ORDER BY vcpus, memory_mib, name",
    .size = sizeof(struct st_flavor),
    .row = flavor_row,
};

static void instance_row(sqlite3_stmt *st, void *out);
static void instance_clear(void *rec);

static const struct kind instance_kind = {
    .name = "instance",
    .table = "instances",
    .cols = META_COLS ", type, image_id, flavor_id, network_id, host_id, vcpus, memory_mib, "
		      "disk_gib, user_data, command, env, restart_policy, desired, intent_gen, "
		      "reboot_gen, stop_timeout, state, pid, exit_status, failure, restart_count, "
		      "reboot_done, ip, mac, ssh_keys",
    .order = " ORDER BY created_at, id",
    .size = sizeof(struct st_instance),
    .row = instance_row,
    .clear = instance_clear,
};

static int flavor_create(struct store *s, const struct st_flavor *f, struct yun_err *err)
{
	char what[128];

	snprintf(what, sizeof(what), "flavor %s", f->m.name);
	return write1(SQ(s), err, what, false,
		      "INSERT INTO flavors (id, name, project, created_at, updated_at, vcpus, "
		      "memory_mib, disk_gib) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		      "sssssiii", f->m.id, f->m.name, f->m.project, f->m.created_at,
		      f->m.updated_at, f->vcpus, f->memory_mib, f->disk_gib);
}

static int flavor_get(struct store *s, const char *ref, struct st_flavor *out, struct yun_err *err)
{
	return get(s, &flavor_kind, ref, out, err);
}

static int flavor_list(struct store *s, struct st_flavor **out, size_t *n, struct yun_err *err)
{
	return list(s, &flavor_kind, (void **)out, n, err);
}

static int flavor_delete(struct store *s, const char *ref, struct st_flavor *out,
			 struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	rc = get_locked(q, &flavor_kind, ref, out, err);
	if (!rc) {
		snprintf(what, sizeof(what), "flavor %s", out->m.name);
		rc = used_by(q, &instance_kind, "flavor_id", "", out->m.id, what, "used by", err);
	}
	if (!rc)
		rc = delete_locked(q, &flavor_kind, out->m.id, what, err);
	return finish(q, rc, err);
}

/* ---- images ---- */

static void image_row(sqlite3_stmt *st, void *out)
{
	struct st_image *img = out;

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

static void image_clear(void *rec)
{
	st_image_clear(rec);
}

static const struct kind image_kind = {
    .name = "image",
    .table = "images",
    .cols = META_COLS ", type, state, source, path, size, os, version, command, failure",
    .order = " ORDER BY created_at, id",
    .size = sizeof(struct st_image),
    .row = image_row,
    .clear = image_clear,
};

static int image_create(struct store *s, const struct st_image *img, struct yun_err *err)
{
	char what[128];

	snprintf(what, sizeof(what), "image %s", img->m.name);
	return write1(
	    SQ(s), err, what, false,
	    "INSERT INTO images (" META_COLS ", type, state, source, path, size, os, "
	    "version, command, failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    "sssssssssissns", img->m.id, img->m.name, img->m.project, img->m.created_at,
	    img->m.updated_at, img->type, img->state, img->source, img->path, img->size, img->os,
	    img->version, img->command, img->failure);
}

static int image_get(struct store *s, const char *ref, struct st_image *out, struct yun_err *err)
{
	return get(s, &image_kind, ref, out, err);
}

static int image_list(struct store *s, struct st_image **out, size_t *n, struct yun_err *err)
{
	return list(s, &image_kind, (void **)out, n, err);
}

static int image_update(struct store *s, const struct st_image *img, struct yun_err *err)
{
	char t[OBJ_TIME_MAX], what[128];

	now(t);
	snprintf(what, sizeof(what), "image %s", img->m.id);
	return write1(SQ(s), err, what, true,
		      "UPDATE images SET state = ?, path = ?, size = ?, os = ?, version = ?, "
		      "command = ?, failure = ?, updated_at = ? WHERE id = ?",
		      "ssissnsss", img->state, img->path, img->size, img->os, img->version,
		      img->command, img->failure, t, img->m.id);
}

static int image_delete(struct store *s, const char *ref, struct st_image *out, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	rc = get_locked(q, &image_kind, ref, out, err);
	if (!rc) {
		snprintf(what, sizeof(what), "image %s", out->m.name);
		if (!strcmp(out->state, "building"))
			rc = yun_err_set(err, EBUSY,
					 "%s: is building (wait until it is available "
					 "or failed)",
					 what);
	}
	if (!rc)
		rc = used_by(q, &instance_kind, "image_id", "", out->m.id, what, "used by", err);
	if (!rc)
		rc = delete_locked(q, &image_kind, out->m.id, what, err);
	if (rc)
		st_image_clear(out);
	return finish(q, rc, err);
}

/* ---- networks ---- */

static void network_row(sqlite3_stmt *st, void *out)
{
	struct st_network *n = out;

	col_meta(st, &n->m);
	col_text(st, 5, n->cidr, sizeof(n->cidr));
	col_text(st, 6, n->gateway, sizeof(n->gateway));
	col_text(st, 7, n->bridge, sizeof(n->bridge));
	col_text(st, 8, n->desired, sizeof(n->desired));
	col_text(st, 9, n->state, sizeof(n->state));
}

static const struct kind network_kind = {
    .name = "network",
    .table = "networks",
    .cols = META_COLS ", cidr, gateway, bridge, desired, state",
    .order = " ORDER BY created_at, id",
    .size = sizeof(struct st_network),
    .row = network_row,
    .desired_off = offsetof(struct st_network, desired),
    .state_off = offsetof(struct st_network, state),
};

static int network_create(struct store *s, const struct st_network *n, struct yun_err *err)
{
	char what[128];

	snprintf(what, sizeof(what), "network %s", n->m.name);
	return write1(SQ(s), err, what, false,
		      "INSERT INTO networks (" META_COLS ", cidr, gateway, bridge, desired, state) "
		      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		      "ssssssssss", n->m.id, n->m.name, n->m.project, n->m.created_at,
		      n->m.updated_at, n->cidr, n->gateway, n->bridge, n->desired, n->state);
}

static int network_get(struct store *s, const char *ref, struct st_network *out,
		       struct yun_err *err)
{
	return get(s, &network_kind, ref, out, err);
}

static int network_list(struct store *s, struct st_network **out, size_t *n, struct yun_err *err)
{
	return list(s, &network_kind, (void **)out, n, err);
}

static int network_update(struct store *s, const struct st_network *n, struct yun_err *err)
{
	char t[OBJ_TIME_MAX], what[128];

	now(t);
	snprintf(what, sizeof(what), "network %s", n->m.id);
	return write1(SQ(s), err, what, true,
		      "UPDATE networks SET gateway = ?, bridge = ?, desired = ?, state = ?, "
		      "updated_at = ? WHERE id = ?",
		      "ssssss", n->gateway, n->bridge, n->desired, n->state, t, n->m.id);
}

static int network_unused(struct sq *q, const void *rec, const char *what, struct yun_err *err)
{
	const struct st_network *n = rec;

	return used_by(q, &instance_kind, "network_id", "", n->m.id, what, "used by", err);
}

static int network_request_delete(struct store *s, const char *ref, struct st_network *out,
				  struct yun_err *err)
{
	return request_delete(s, &network_kind, ref, out, network_unused, err);
}

static int network_delete(struct store *s, const char *id, struct yun_err *err)
{
	return delete_id(s, &network_kind, id, err);
}

/* ---- instances ---- */

static void instance_row(sqlite3_stmt *st, void *out)
{
	struct st_instance *in = out;

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
	in->ssh_keys = col_dup(st, 29);
}

static void instance_clear(void *rec)
{
	st_instance_clear(rec);
}

static int attach_locked(struct sq *q, const char *ref, const struct st_instance *in,
			 const char *mount_path, bool readonly, struct st_volume *out,
			 struct yun_err *err);

static int instance_create_attached(struct store *s, const struct st_instance *in,
				    const struct st_capacity *cap, const struct st_attach *v,
				    size_t n, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_alloc a;
	char what[128];
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
		rc = run(
		    q, err, what,
		    "INSERT INTO instances (" META_COLS ", type, image_id, flavor_id, "
		    "network_id, host_id, vcpus, memory_mib, disk_gib, user_data, command, env, "
		    "restart_policy, desired, intent_gen, reboot_gen, stop_timeout, state, pid, "
		    "exit_status, failure, restart_count, reboot_done, ip, mac, ssh_keys) VALUES "
		    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, "
		    "?, ?, ?, ?, ?, ?)",
		    "sssssssnnsiiinnnssiiisisiissn", in->m.id, in->m.name, in->m.project,
		    in->m.created_at, in->m.updated_at, in->type, in->image_id, in->flavor_id,
		    in->network_id, in->host_id, in->vcpus, in->memory_mib, in->disk_gib,
		    in->user_data, in->command, in->env, in->restart_policy, in->desired,
		    in->intent_gen, in->reboot_gen, in->stop_timeout, in->state, in->pid,
		    in->failure, in->restart_count, in->reboot_done, in->ip, in->mac, in->ssh_keys);
		rc = rc < 0 ? rc : 0;
		if (rc == -EBUSY)
			rc = yun_err_set(err, ENOENT,
					 "%s: its image, flavor, network or host no "
					 "longer exists",
					 what);
	}
	for (size_t k = 0; !rc && k < n; k++) {
		struct st_volume vol;

		rc = attach_locked(q, v[k].ref, in, v[k].mount_path, v[k].readonly, &vol, err);
	}
	return finish(q, rc, err);
}

static int instance_create(struct store *s, const struct st_instance *in,
			   const struct st_capacity *cap, struct yun_err *err)
{
	return instance_create_attached(s, in, cap, NULL, 0, err);
}

static int instance_get(struct store *s, const char *ref, struct st_instance *out,
			struct yun_err *err)
{
	return get(s, &instance_kind, ref, out, err);
}

static int instance_list(struct store *s, struct st_instance **out, size_t *n, struct yun_err *err)
{
	return list(s, &instance_kind, (void **)out, n, err);
}

/* "changed meanwhile" when instance `id` exists, else "not found". */
static int lost_cas(struct sq *q, const char *id, const char *what, struct yun_err *err)
{
	sqlite3_stmt *st = prep(q, err, "SELECT 1 FROM instances WHERE id = ?", "s", id);
	int rc;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		rc = yun_err_set(err, EAGAIN, "%s: changed meanwhile", what);
	else
		rc = yun_err_set(err, ENOENT, "%s: not found", what);
	sqlite3_finalize(st);
	return rc;
}

static int instance_set_intent(struct store *s, const char *id, int64_t expect_gen,
			       const struct st_intent *in, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX], what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	now(t);
	snprintf(what, sizeof(what), "instance %s", id);
	/* Compare-and-swap on intent_gen: a lost race changes nothing. */
	rc = run(q, err, what,
		 "UPDATE instances SET desired = ?1, reboot_gen = ?2, stop_timeout = ?3, "
		 "state = CASE WHEN ?4 = '' THEN state ELSE ?4 END, "
		 "intent_gen = intent_gen + 1, updated_at = ?5 WHERE id = ?6 AND intent_gen = ?7",
		 "siisssi", in->desired, in->reboot_gen, in->stop_timeout, in->state, t, id,
		 expect_gen);
	if (rc == 0)
		rc = lost_cas(q, id, what, err);
	return finish(q, rc < 0 ? rc : 0, err);
}

static int instance_set_observed(struct store *s, const char *id, const struct st_observed *o,
				 const struct st_intent *intent, int64_t expect_gen,
				 struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX], what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	now(t);
	snprintf(what, sizeof(what), "instance %s", id);
	if (intent) {
		rc = run(q, err, what,
			 "UPDATE instances SET desired = ?, reboot_gen = ?, stop_timeout = ?, "
			 "intent_gen = intent_gen + 1 WHERE id = ? AND intent_gen = ?",
			 "siisi", intent->desired, intent->reboot_gen, intent->stop_timeout, id,
			 expect_gen);
		if (rc == 0)
			rc = yun_err_set(err, EAGAIN, "%s: changed meanwhile", what);
	}
	if (rc >= 0) {
		rc = run(q, err, what,
			 "UPDATE instances SET state = ?, pid = ?, exit_status = CASE WHEN ? "
			 "THEN ? ELSE NULL END, failure = ?, restart_count = ?, reboot_done = ?, "
			 "ip = ?, mac = ?, updated_at = ? WHERE id = ?",
			 "siiisiissss", o->state, o->pid, (int64_t)o->has_exit, o->exit_status,
			 o->failure, o->restart_count, o->reboot_done, o->ip, o->mac, t, id);
		if (rc == 0)
			rc = yun_err_set(err, ENOENT, "%s: not found", what);
	}
	return finish(q, rc < 0 ? rc : 0, err);
}

static int instance_delete(struct store *s, const char *id, struct yun_err *err)
{
	struct sq *q = SQ(s);
	char t[OBJ_TIME_MAX], what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	now(t);
	snprintf(what, sizeof(what), "instance %s", id);
	/* Its volumes outlive it, detached (in the same transaction). */
	rc = run(q, err, what,
		 "UPDATE volumes SET instance_id = NULL, mount_path = '', readonly = 0, "
		 "updated_at = ? WHERE instance_id = ?",
		 "ss", t, id);
	if (rc >= 0)
		rc = delete_locked(q, &instance_kind, id, what, err);
	return finish(q, rc < 0 ? rc : 0, err);
}

/* ---- volumes ---- */

static void volume_row(sqlite3_stmt *st, void *out)
{
	struct st_volume *v = out;

	col_meta(st, &v->m);
	v->size_gib = sqlite3_column_int64(st, 5);
	col_text(st, 6, v->desired, sizeof(v->desired));
	col_text(st, 7, v->state, sizeof(v->state));
	col_text(st, 8, v->instance_id, sizeof(v->instance_id));
	col_text(st, 9, v->mount_path, sizeof(v->mount_path));
	v->readonly = sqlite3_column_int64(st, 10) != 0;
	col_text(st, 11, v->source_snapshot, sizeof(v->source_snapshot));
	col_text(st, 12, v->path, sizeof(v->path));
	col_text(st, 13, v->method, sizeof(v->method));
	col_text(st, 14, v->failure, sizeof(v->failure));
}

static const struct kind volume_kind = {
    .name = "volume",
    .table = "volumes",
    .cols = META_COLS ", size_gib, desired, state, instance_id, mount_path, readonly, "
		      "source_snapshot, path, method, failure",
    .order = " ORDER BY created_at, id",
    .size = sizeof(struct st_volume),
    .row = volume_row,
    .desired_off = offsetof(struct st_volume, desired),
    .state_off = offsetof(struct st_volume, state),
};

static void snapshot_row(sqlite3_stmt *st, void *out)
{
	struct st_snapshot *sn = out;

	col_meta(st, &sn->m);
	col_text(st, 5, sn->volume_id, sizeof(sn->volume_id));
	sn->size_gib = sqlite3_column_int64(st, 6);
	col_text(st, 7, sn->desired, sizeof(sn->desired));
	col_text(st, 8, sn->state, sizeof(sn->state));
	col_text(st, 9, sn->path, sizeof(sn->path));
	col_text(st, 10, sn->method, sizeof(sn->method));
	col_text(st, 11, sn->failure, sizeof(sn->failure));
}

static const struct kind snapshot_kind = {
    .name = "snapshot",
    .table = "snapshots",
    .cols = META_COLS ", volume_id, size_gib, desired, state, path, method, failure",
    .order = " ORDER BY created_at, id",
    .size = sizeof(struct st_snapshot),
    .row = snapshot_row,
    .desired_off = offsetof(struct st_snapshot, desired),
    .state_off = offsetof(struct st_snapshot, state),
};

static int volume_create(struct store *s, const struct st_volume *v, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_snapshot sn;
	char what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "volume %s", v->m.name);
	if (v->source_snapshot[0]) {
		rc = get_locked(q, &snapshot_kind, v->source_snapshot, &sn, err);
		if (!rc && strcmp(sn.state, "available"))
			rc = yun_err_set(err, EBUSY, "%s: snapshot %s is %s, not available", what,
					 sn.m.name, sn.state);
	}
	if (!rc) {
		rc = run(q, err, what,
			 "INSERT INTO volumes (" META_COLS ", size_gib, desired, state, "
			 "instance_id, mount_path, readonly, source_snapshot, path, method, "
			 "failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, '', 0, ?, ?, ?, ?)",
			 "sssssissnsss", v->m.id, v->m.name, v->m.project, v->m.created_at,
			 v->m.updated_at, v->size_gib, v->desired, v->state,
			 v->source_snapshot[0] ? sn.m.id : "", v->path, v->method, v->failure);
		rc = rc < 0 ? rc : 0;
	}
	return finish(q, rc, err);
}

static int volume_get(struct store *s, const char *ref, struct st_volume *out, struct yun_err *err)
{
	return get(s, &volume_kind, ref, out, err);
}

static int volume_list(struct store *s, struct st_volume **out, size_t *n, struct yun_err *err)
{
	return list(s, &volume_kind, (void **)out, n, err);
}

static int volume_set_observed(struct store *s, const struct st_volume *v, struct yun_err *err)
{
	return set_file_observed(s, &volume_kind, v->m.id, v->path, v->method, v->failure, v->state,
				 err);
}

/* Attach volume `ref` to instance `in` (a row already read in this transaction). */
static int attach_locked(struct sq *q, const char *ref, const struct st_instance *in,
			 const char *mount_path, bool readonly, struct st_volume *out,
			 struct yun_err *err)
{
	char t[OBJ_TIME_MAX], what[128], path[256], other[OBJ_NAME_MAX];
	sqlite3_stmt *st;
	int rc = get_locked(q, &volume_kind, ref, out, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "volume %s", out->m.name);
	if (mount_path && *mount_path)
		snprintf(path, sizeof(path), "%s", mount_path);
	else
		snprintf(path, sizeof(path), "/mnt/%s", out->m.name);
	if (!strcmp(out->instance_id, in->m.id))
		return yun_err_set(err, EBUSY, "%s: already attached to instance %s", what,
				   in->m.name);
	if (out->instance_id[0])
		return used_by(q, &instance_kind, "id", "", out->instance_id, what, "attached to",
			       err);
	if (!strcmp(out->desired, "deleted") || !strcmp(out->state, "failed"))
		return yun_err_set(err, EBUSY, "%s: is %s", what, out->state);
	if (!strcmp(in->desired, "deleted"))
		return yun_err_set(err, EBUSY, "%s: instance %s is being deleted", what,
				   in->m.name);
	/* One volume per mount path and instance. */
	st = prep(q, err, "SELECT name FROM volumes WHERE instance_id = ? AND mount_path = ?", "ss",
		  in->m.id, path);
	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		col_text(st, 0, other, sizeof(other));
		rc = yun_err_set(err, EBUSY, "%s: instance %s has volume %s at %s already", what,
				 in->m.name, other, path);
	}
	sqlite3_finalize(st);
	if (rc)
		return rc;
	now(t);
	rc = run(q, err, what,
		 "UPDATE volumes SET instance_id = ?, mount_path = ?, readonly = ?, "
		 "updated_at = ? WHERE id = ?",
		 "ssiss", in->m.id, path, (int64_t)readonly, t, out->m.id);
	if (rc < 0)
		return rc;
	snprintf(out->instance_id, sizeof(out->instance_id), "%s", in->m.id);
	snprintf(out->mount_path, sizeof(out->mount_path), "%s", path);
	out->readonly = readonly;
	snprintf(out->m.updated_at, sizeof(out->m.updated_at), "%s", t);
	return 0;
}

static int volume_attach(struct store *s, const char *ref, const char *inst_ref,
			 const char *mount_path, bool readonly, struct st_volume *out,
			 struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_instance in;
	int rc = begin(q, err);

	if (rc)
		return rc;
	memset(&in, 0, sizeof(in));
	/* The volume first: "volume x: not found" before the instance's. */
	rc = get_locked(q, &volume_kind, ref, out, err);
	if (!rc)
		rc = get_locked(q, &instance_kind, inst_ref, &in, err);
	if (!rc)
		rc = attach_locked(q, ref, &in, mount_path, readonly, out, err);
	st_instance_clear(&in);
	return finish(q, rc, err);
}

static int volume_detach(struct store *s, const char *ref, const char *inst_ref,
			 struct st_volume *out, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_instance in;
	char t[OBJ_TIME_MAX], what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	memset(&in, 0, sizeof(in));
	rc = get_locked(q, &volume_kind, ref, out, err);
	if (!rc) {
		snprintf(what, sizeof(what), "volume %s", out->m.name);
		if (!out->instance_id[0])
			rc = yun_err_set(err, EBUSY, "%s: is not attached", what);
	}
	if (!rc && inst_ref && *inst_ref) {
		rc = get_locked(q, &instance_kind, inst_ref, &in, err);
		if (!rc && strcmp(in.m.id, out->instance_id))
			rc = used_by(q, &instance_kind, "id", "", out->instance_id, what,
				     "is attached to", err);
	}
	if (!rc) {
		now(t);
		rc = run(q, err, what,
			 "UPDATE volumes SET instance_id = NULL, mount_path = '', readonly = 0, "
			 "updated_at = ? WHERE id = ?",
			 "ss", t, out->m.id);
		rc = rc < 0 ? rc : 0;
	}
	if (!rc) {
		out->instance_id[0] = '\0';
		out->mount_path[0] = '\0';
		out->readonly = false;
		snprintf(out->m.updated_at, sizeof(out->m.updated_at), "%s", t);
	}
	st_instance_clear(&in);
	return finish(q, rc, err);
}

/* Neither attached nor snapshotted. */
static int volume_unused(struct sq *q, const void *rec, const char *what, struct yun_err *err)
{
	const struct st_volume *v = rec;
	int rc = 0;

	if (v->instance_id[0])
		rc = used_by(q, &instance_kind, "id", "", v->instance_id, what, "attached to", err);
	if (!rc)
		rc = used_by(q, &snapshot_kind, "volume_id", "", v->m.id, what, "has", err);
	return rc;
}

static int volume_request_delete(struct store *s, const char *ref, struct st_volume *out,
				 struct yun_err *err)
{
	return request_delete(s, &volume_kind, ref, out, volume_unused, err);
}

static int volume_delete(struct store *s, const char *id, struct yun_err *err)
{
	return delete_id(s, &volume_kind, id, err);
}

/* ---- snapshots ---- */

static int snapshot_create(struct store *s, const struct st_snapshot *sn, struct yun_err *err)
{
	struct sq *q = SQ(s);
	struct st_volume v;
	char what[128];
	int rc = begin(q, err);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "snapshot %s", sn->m.name);
	rc = get_locked(q, &volume_kind, sn->volume_id, &v, err);
	if (!rc && (!strcmp(v.desired, "deleted") || !strcmp(v.state, "failed")))
		rc = yun_err_set(err, EBUSY, "%s: volume %s is %s", what, v.m.name, v.state);
	if (!rc) {
		rc =
		    run(q, err, what,
			"INSERT INTO snapshots (" META_COLS ", volume_id, size_gib, desired, "
			"state, path, method, failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			"ssssssisssss", sn->m.id, sn->m.name, sn->m.project, sn->m.created_at,
			sn->m.updated_at, v.m.id, v.size_gib, sn->desired, sn->state, sn->path,
			sn->method, sn->failure);
		rc = rc < 0 ? rc : 0;
	}
	return finish(q, rc, err);
}

static int snapshot_get(struct store *s, const char *ref, struct st_snapshot *out,
			struct yun_err *err)
{
	return get(s, &snapshot_kind, ref, out, err);
}

static int snapshot_list(struct store *s, struct st_snapshot **out, size_t *n, struct yun_err *err)
{
	return list(s, &snapshot_kind, (void **)out, n, err);
}

static int snapshot_set_observed(struct store *s, const struct st_snapshot *sn, struct yun_err *err)
{
	return set_file_observed(s, &snapshot_kind, sn->m.id, sn->path, sn->method, sn->failure,
				 sn->state, err);
}

/* A clone still copying reads the file; a finished one is independent. */
static int snapshot_unused(struct sq *q, const void *rec, const char *what, struct yun_err *err)
{
	const struct st_snapshot *sn = rec;

	return used_by(q, &volume_kind, "source_snapshot", " AND state = 'creating'", sn->m.id,
		       what, "being cloned into", err);
}

static int snapshot_request_delete(struct store *s, const char *ref, struct st_snapshot *out,
				   struct yun_err *err)
{
	return request_delete(s, &snapshot_kind, ref, out, snapshot_unused, err);
}

static int snapshot_delete(struct store *s, const char *id, struct yun_err *err)
{
	/* ON DELETE SET NULL: its clones' source_snapshot goes in the same statement. */
	return delete_id(s, &snapshot_kind, id, err);
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
    .instance_create_attached = instance_create_attached,
    .instance_get = instance_get,
    .instance_list = instance_list,
    .instance_set_intent = instance_set_intent,
    .instance_set_observed = instance_set_observed,
    .instance_delete = instance_delete,
    .volume_create = volume_create,
    .volume_get = volume_get,
    .volume_list = volume_list,
    .volume_set_observed = volume_set_observed,
    .volume_attach = volume_attach,
    .volume_detach = volume_detach,
    .volume_request_delete = volume_request_delete,
    .volume_delete = volume_delete,
    .snapshot_create = snapshot_create,
    .snapshot_get = snapshot_get,
    .snapshot_list = snapshot_list,
    .snapshot_set_observed = snapshot_set_observed,
    .snapshot_request_delete = snapshot_request_delete,
    .snapshot_delete = snapshot_delete,
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

/*
 * Migrations run with foreign keys off (a table made anew is dropped and
 * renamed); this checks, before the commit, that every reference still holds.
 */
static int fk_check(struct sq *q, const char *path, struct yun_err *err)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(q->db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
		return db_err(q, err, "foreign_key_check");
	if (sqlite3_step(st) == SQLITE_ROW)
		rc =
		    yun_err_set(err, EPROTO, "database %s: migration broke a reference in table %s",
				path, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc;
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
	if (!rc)
		rc = fk_check(q, path, err);
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
		      "PRAGMA foreign_keys = OFF;",
		      err);
	if (!rc)
		rc = migrate(q, path, err);
	if (!rc) /* only outside a transaction does this take effect */
		rc = exec_sql(q, "PRAGMA foreign_keys = ON;", err);
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
