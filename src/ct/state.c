/* state.c - see state.h. */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define STATE_FILE_MAX (1 << 20)

const char *ct_state_root(void)
{
	const char *r = getenv("YUN_CT_ROOT");

	return r && *r ? r : CT_STATE_ROOT_DEFAULT;
}

int ct_state_path(const char *id, const char *name, char *buf, size_t len, struct yun_err *err)
{
	int n;

	if (name)
		n = snprintf(buf, len, "%s/%s/%s", ct_state_root(), id, name);
	else
		n = snprintf(buf, len, "%s/%s", ct_state_root(), id);
	if (n < 0 || (size_t)n >= len)
		return yun_err_set(err, ENAMETOOLONG, "container %s: state path too long under %s",
				   id, ct_state_root());
	return 0;
}

const char *ct_status_name(enum ct_status s)
{
	switch (s) {
	case CT_STATUS_CREATING:
		return "creating";
	case CT_STATUS_CREATED:
		return "created";
	case CT_STATUS_RUNNING:
		return "running";
	case CT_STATUS_STOPPING:
		return "stopping";
	case CT_STATUS_EXITED:
		return "exited";
	}
	return "unknown";
}

static int status_from_name(const char *s, enum ct_status *out)
{
	for (int i = CT_STATUS_CREATING; i <= CT_STATUS_EXITED; i++) {
		if (!strcmp(s, ct_status_name(i))) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

void ct_state_new_id(char *buf, size_t len)
{
	unsigned char r[6];

	if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
		/* Never fails for 6 bytes once the pool is ready; fall back anyway. */
		unsigned long v = (unsigned long)getpid() * 2654435761u ^ (unsigned long)time(NULL);

		memcpy(r, &v, sizeof(r));
	}
	snprintf(buf, len, "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
}

static int ensure_root(struct yun_err *err)
{
	const char *root = ct_state_root();
	struct stat st;

	/*
	 * 0711: a container's first process, already root of its own user
	 * namespace (an unprivileged host uid), must reach its layers below;
	 * nobody else can list the root, and the files that matter are 0600.
	 */
	if (mkdir(root, 0711) < 0 && errno != EEXIST)
		return yun_err_errno(err, errno, "state root %s", root);
	if (stat(root, &st) < 0)
		return yun_err_errno(err, errno, "state root %s", root);
	if (!S_ISDIR(st.st_mode))
		return yun_err_set(err, ENOTDIR, "state root %s: not a directory", root);
	return 0;
}

static json_t *state_json(const struct ct_state *st)
{
	char created[32];
	struct tm tm;
	json_t *o;

	gmtime_r(&st->created, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s, s:s, s:i, s:i, s:s}", "id", st->id, "status",
		      ct_status_name(st->status), "pid", (int)st->pid, "supervisor_pid",
		      (int)st->supervisor_pid, "created", created);
	if (!o)
		return NULL;
	if (st->status == CT_STATUS_EXITED) {
		json_object_set_new(o, "exit_status", json_integer(st->exit_status));
		json_object_set_new(o, "exit_reason", json_string(st->exit_reason));
	}
	if (st->userns_base)
		json_object_set_new(o, "userns_base", json_integer(st->userns_base));
	if (st->config)
		json_object_set(o, "config", st->config);
	return o;
}

int ct_state_write(const struct ct_state *st, struct yun_err *err)
{
	char path[4096], tmp[4096];
	json_t *o = state_json(st);
	char *text;
	size_t len;
	ssize_t n;
	int fd, rc;

	if (!o)
		return yun_err_set(err, ENOMEM, "container %s: out of memory", st->id);
	text = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return yun_err_set(err, ENOMEM, "container %s: out of memory", st->id);
	rc = ct_state_path(st->id, "state.json", path, sizeof(path), err);
	if (!rc)
		rc = ct_state_path(st->id, ".state.json.tmp", tmp, sizeof(tmp), err);
	if (rc)
		goto out;
	/* 0600 from the start; the rename makes the new state visible at once. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = yun_err_errno(err, errno, "container %s: cannot write %s", st->id, tmp);
		goto out;
	}
	len = strlen(text);
	n = write(fd, text, len);
	if (n != (ssize_t)len) {
		rc = yun_err_errno(err, n < 0 ? errno : EIO, "container %s: cannot write %s",
				   st->id, tmp);
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		rc = yun_err_errno(err, errno, "container %s: cannot write %s", st->id, tmp);
		goto out;
	}
	if (rename(tmp, path) < 0)
		rc = yun_err_errno(err, errno, "container %s: rename %s", st->id, tmp);
out:
	free(text);
	return rc;
}

int ct_state_read(const char *id, struct ct_state *st, struct yun_err *err)
{
	char path[4096];
	json_error_t jerr;
	json_t *o, *v;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = ct_state_path(id, "state.json", path, sizeof(path), err);
	if (rc)
		return rc;
	o = json_load_file(path, 0, &jerr);
	if (!o) {
		if (access(path, F_OK) < 0 && errno == ENOENT)
			return yun_err_set(err, ENOENT, "container %s: no such container", id);
		return yun_err_set(err, EINVAL, "container %s: %s: %s", id, path, jerr.text);
	}
	snprintf(st->id, sizeof(st->id), "%s", id);
	v = json_object_get(o, "status");
	if (!json_is_string(v) || status_from_name(json_string_value(v), &st->status) < 0) {
		json_decref(o);
		return yun_err_set(err, EINVAL, "container %s: %s: bad \"status\"", id, path);
	}
	st->pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
	st->supervisor_pid = (pid_t)json_integer_value(json_object_get(o, "supervisor_pid"));
	st->exit_status = (int)json_integer_value(json_object_get(o, "exit_status"));
	st->userns_base = (uint32_t)json_integer_value(json_object_get(o, "userns_base"));
	v = json_object_get(o, "exit_reason");
	if (json_is_string(v))
		snprintf(st->exit_reason, sizeof(st->exit_reason), "%s", json_string_value(v));
	v = json_object_get(o, "created");
	if (json_is_string(v)) {
		struct tm tm = {0};

		if (strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%SZ", &tm))
			st->created = timegm(&tm);
	}
	v = json_object_get(o, "config");
	if (v)
		st->config = json_incref(v);
	json_decref(o);
	return 0;
}

void ct_state_release(struct ct_state *st)
{
	json_decref(st->config);
	st->config = NULL;
}

int ct_state_list(char ***ids_out, size_t *n_out, struct yun_err *err)
{
	const char *root = ct_state_root();
	struct dirent **ents;
	char **ids;
	size_t n = 0;
	int count;

	*ids_out = NULL;
	*n_out = 0;
	count = scandir(root, &ents, NULL, alphasort);
	if (count < 0)
		return errno == ENOENT ? 0 : yun_err_errno(err, errno, "state root %s", root);
	ids = calloc(count + 1, sizeof(char *));
	for (int i = 0; i < count; i++) {
		if (ids && ents[i]->d_type == DT_DIR && ct_parse_id(ents[i]->d_name, NULL) == 0)
			ids[n++] = strdup(ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	if (!ids)
		return yun_err_set(err, ENOMEM, "out of memory");
	*ids_out = ids;
	*n_out = n;
	return 0;
}

void ct_state_free_ids(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* The first --userns auto slot no other container holds. */
static int pick_userns_slot(uint32_t *base, struct yun_err *err)
{
	bool *used = calloc(CT_USERNS_SLOTS, sizeof(bool));
	char **ids;
	size_t n;
	int rc;

	if (!used)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = ct_state_list(&ids, &n, err);
	if (rc) {
		free(used);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		struct ct_state other;

		if (ct_state_read(ids[i], &other, NULL) < 0)
			continue;
		if (other.userns_base >= CT_USERNS_BASE &&
		    (other.userns_base - CT_USERNS_BASE) / CT_USERNS_SIZE < CT_USERNS_SLOTS)
			used[(other.userns_base - CT_USERNS_BASE) / CT_USERNS_SIZE] = true;
		ct_state_release(&other);
	}
	ct_state_free_ids(ids, n);
	rc = yun_err_set(err, ENOSPC, "userns auto: all %u id ranges are in use", CT_USERNS_SLOTS);
	for (uint32_t k = 0; k < CT_USERNS_SLOTS; k++) {
		if (!used[k]) {
			*base = CT_USERNS_BASE + k * CT_USERNS_SIZE;
			rc = 0;
			break;
		}
	}
	free(used);
	return rc;
}

int ct_state_create(struct ct_state *st, bool want_userns, struct yun_err *err)
{
	char path[4096], lock[4096];
	int lockfd = -1, rc;

	rc = ensure_root(err);
	if (rc)
		return rc;
	rc = ct_state_path(st->id, NULL, path, sizeof(path), err);
	if (rc)
		return rc;
	/* Room for "/sock" within sun_path. */
	if (strlen(path) + 6 > 108)
		return yun_err_set(err, ENAMETOOLONG,
				   "container %s: state dir %s is too long for a Unix socket path",
				   st->id, path);
	snprintf(lock, sizeof(lock), "%s/.lock", ct_state_root());
	/* The lock orders id creation and userns slot choice between concurrent runs. */
	lockfd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (lockfd < 0)
		return yun_err_errno(err, errno, "lock %s", lock);
	if (flock(lockfd, LOCK_EX) < 0) {
		rc = yun_err_errno(err, errno, "lock %s", lock);
		goto out;
	}
	if (mkdir(path, 0711) < 0) {
		if (errno == EEXIST)
			rc = yun_err_set(err, EEXIST, "container %s: already exists", st->id);
		else
			rc = yun_err_errno(err, errno, "container %s: mkdir %s", st->id, path);
		goto out;
	}
	if (want_userns) {
		rc = pick_userns_slot(&st->userns_base, err);
		if (rc)
			goto undo;
	}
	st->status = CT_STATUS_CREATING;
	rc = ct_state_write(st, err);
	if (rc)
		goto undo;
	goto out;
undo:
	ct_state_remove(st->id, NULL);
out:
	close(lockfd);
	return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int ct_state_remove(const char *id, struct yun_err *err)
{
	/* What a container's directory normally holds (state.h; work/work is overlayfs's). */
	static const char *const files[] = {"state.json", ".state.json.tmp", "sock",
					    "supervisor.log"};
	static const char *const dirs[] = {"rootfs", "lower", "upper", "work/work", "work"};
	char path[4096];
	int rc, dirfd;

	rc = ct_state_path(id, NULL, path, sizeof(path), err);
	if (rc)
		return rc;
	/*
	 * Each name may be missing; whether they were all that was there, the
	 * final rmdir says (and the walk below takes what it leaves).
	 */
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dirfd >= 0) {
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
			unlinkat(dirfd, files[i], 0);
		for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
			unlinkat(dirfd, dirs[i], AT_REMOVEDIR);
		close(dirfd);
		if (rmdir(path) == 0)
			return 0;
	}
	if (errno == ENOENT)
		return 0;
	/* More than that (an upper layer with files in it): walk the lot. */
	if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return yun_err_errno(err, errno, "container %s: remove %s", id, path);
	return 0;
}
