/* cgroup.c - see cgroup.h. */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static const char *const jcg_always[] = { "cpu", "memory" };

int jcg_parse_setting(const char *text, struct jcg_setting *out, struct yun_err *err)
{
	const char *eq = strchr(text, '=');
	size_t klen = eq ? (size_t)(eq - text) : 0;
	const char *dot;

	if (!eq || klen == 0 || klen >= sizeof(out->key))
		return yun_err_set(err, EINVAL, "--cgroup %s: want <controller>.<setting>=VALUE",
				   text);
	memcpy(out->key, text, klen);
	out->key[klen] = '\0';
	dot = strchr(out->key, '.');
	if (!dot || dot == out->key || !dot[1] || strspn(out->key, "abcdefghijklmnopqrstuvwxyz"
							   "0123456789_.") != klen)
		return yun_err_set(err, EINVAL, "--cgroup %s: setting \"%s\" is not "
				   "<controller>.<name> (a-z, 0-9, _ and .)", text, out->key);
	if (strlen(eq + 1) == 0 || strlen(eq + 1) >= sizeof(out->value))
		return yun_err_set(err, EINVAL, "--cgroup %s: value empty or longer than %zu bytes",
				   text, sizeof(out->value) - 1);
	for (const char *p = eq + 1; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return yun_err_set(err, EINVAL, "--cgroup %s: value has a '/' or a control "
					   "character", text);
	strcpy(out->value, eq + 1);
	return 0;
}

static int write_file(const char *path, const char *value, struct yun_err *err)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(value);
	ssize_t n;

	if (fd < 0)
		return yun_err_errno(err, errno, "cgroup %s", path);
	n = write(fd, value, len);
	if (n != (ssize_t)len) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		return yun_err_errno(err, e, "cgroup %s: write \"%s\"", path, value);
	}
	if (close(fd) < 0)
		return yun_err_errno(err, errno, "cgroup %s: write \"%s\"", path, value);
	return 0;
}

/* Controller of a setting: the part before the first dot. */
static void controller_of(const char *key, char *out, size_t size)
{
	size_t n = strcspn(key, ".");

	if (n >= size)
		n = size - 1;
	memcpy(out, key, n);
	out[n] = '\0';
}

static int add_dir(struct jail_cgroup *cg, const char *parent, const char *id,
		   struct yun_err *err)
{
	char path[PATH_MAX];

	if (cg->nr_dirs == JCG_MAX_DIRS)
		return yun_err_set(err, E2BIG, "cgroup: more than %d hierarchies", JCG_MAX_DIRS);
	/* The shared parent: made once, kept. */
	if (snprintf(path, sizeof(path), "%s/yun-vmm", parent) >= (int)sizeof(path))
		return yun_err_set(err, ENAMETOOLONG, "cgroup %s: path too long", parent);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return yun_err_errno(err, errno, "cgroup %s", path);
	if (snprintf(cg->dir[cg->nr_dirs], PATH_MAX, "%s/%s", path, id) >= PATH_MAX)
		return yun_err_set(err, ENAMETOOLONG, "cgroup %s: path too long", path);
	if (mkdir(cg->dir[cg->nr_dirs], 0755) < 0)
		return yun_err_errno(err, errno, "cgroup %s%s", cg->dir[cg->nr_dirs],
				     errno == EEXIST ? " (another jail with this id, or left over)"
						     : "");
	cg->nr_dirs++;
	return 0;
}

/* The directory (already made) that holds `key`'s file. */
static const char *dir_for(const struct jail_cgroup *cg, const char *root, const char *key)
{
	char ctl[64], want[PATH_MAX], real[PATH_MAX], dreal[PATH_MAX];

	if (cg->v2)
		return cg->dir[0];
	controller_of(key, ctl, sizeof(ctl));
	snprintf(want, sizeof(want), "%s/%s", root, ctl);
	if (!realpath(want, real))
		return NULL;
	for (unsigned i = 0; i < cg->nr_dirs; i++) {
		char parent[PATH_MAX];
		char *slash;

		snprintf(parent, sizeof(parent), "%s", cg->dir[i]);
		slash = strrchr(parent, '/'); /* drop /<id> */
		if (slash)
			*slash = '\0';
		slash = strrchr(parent, '/'); /* drop /yun-vmm */
		if (slash)
			*slash = '\0';
		if (realpath(parent, dreal) && !strcmp(dreal, real))
			return cg->dir[i];
	}
	return NULL;
}

static int create_v1(struct jail_cgroup *cg, const char *root, const char *id,
		     const struct jcg_setting *set, unsigned nr, struct yun_err *err)
{
	char ctls[JCG_MAX_DIRS][64], seen[JCG_MAX_DIRS][PATH_MAX];
	unsigned nctl = 0, nseen = 0;
	int rc = 0;

	for (unsigned i = 0; i < sizeof(jcg_always) / sizeof(jcg_always[0]); i++)
		snprintf(ctls[nctl++], sizeof(ctls[0]), "%s", jcg_always[i]);
	for (unsigned i = 0; i < nr; i++) {
		char c[64];
		bool dup = false;

		controller_of(set[i].key, c, sizeof(c));
		for (unsigned j = 0; j < nctl; j++)
			dup |= !strcmp(ctls[j], c);
		if (!dup && nctl == JCG_MAX_DIRS)
			return yun_err_set(err, E2BIG, "--cgroup: more than %d controllers",
					   JCG_MAX_DIRS);
		if (!dup)
			snprintf(ctls[nctl++], sizeof(ctls[0]), "%s", c);
	}
	for (unsigned i = 0; !rc && i < nctl; i++) {
		char path[PATH_MAX], real[PATH_MAX];
		struct statfs sf;
		bool dup = false;

		snprintf(path, sizeof(path), "%s/%s", root, ctls[i]);
		if (statfs(path, &sf) < 0 || !realpath(path, real))
			return yun_err_errno(err, errno, "cgroup controller %s: no v1 hierarchy at %s",
					     ctls[i], path);
		/* Co-mounted controllers (cpu,cpuacct) share one directory. */
		for (unsigned j = 0; j < nseen; j++)
			dup |= !strcmp(seen[j], real);
		if (dup)
			continue;
		snprintf(seen[nseen++], PATH_MAX, "%s", real);
		rc = add_dir(cg, path, id, err);
	}
	return rc;
}

static int create_v2(struct jail_cgroup *cg, const char *root, const char *id,
		     const struct jcg_setting *set, unsigned nr, struct yun_err *err)
{
	char ctl_line[256] = "", path[PATH_MAX];
	int rc;

	for (unsigned i = 0; i < sizeof(jcg_always) / sizeof(jcg_always[0]); i++)
		snprintf(ctl_line + strlen(ctl_line), sizeof(ctl_line) - strlen(ctl_line), "+%s ",
			 jcg_always[i]);
	for (unsigned i = 0; i < nr; i++) {
		char c[64], tok[68];

		controller_of(set[i].key, c, sizeof(c));
		snprintf(tok, sizeof(tok), "+%s ", c);
		/* cgroup.* files are the core's, not a controller's. */
		if (strcmp(c, "cgroup") && !strstr(ctl_line, tok))
			snprintf(ctl_line + strlen(ctl_line), sizeof(ctl_line) - strlen(ctl_line),
				 "%s", tok);
	}
	ctl_line[strlen(ctl_line) - 1] = '\0';
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	rc = write_file(path, ctl_line, err);
	if (!rc)
		rc = add_dir(cg, root, id, err);
	if (!rc) {
		snprintf(path, sizeof(path), "%s/yun-vmm/cgroup.subtree_control", root);
		rc = write_file(path, ctl_line, err);
	}
	return rc;
}

int jcg_create(struct jail_cgroup *cg, const char *root, const char *id,
	       const struct jcg_setting *set, unsigned nr, struct yun_err *err)
{
	struct statfs sf;
	int rc;

	memset(cg, 0, sizeof(*cg));
	if (statfs(root, &sf) < 0)
		return yun_err_errno(err, errno, "cgroup root %s", root);
	cg->v2 = sf.f_type == CGROUP2_SUPER_MAGIC;
	rc = cg->v2 ? create_v2(cg, root, id, set, nr, err) : create_v1(cg, root, id, set, nr, err);
	for (unsigned i = 0; !rc && i < nr; i++) {
		const char *dir = dir_for(cg, root, set[i].key);
		char path[PATH_MAX];

		if (!dir) {
			rc = yun_err_set(err, ENOENT, "--cgroup %s: no cgroup for its controller",
					 set[i].key);
			break;
		}
		if (snprintf(path, sizeof(path), "%s/%s", dir, set[i].key) >= (int)sizeof(path))
			rc = yun_err_set(err, ENAMETOOLONG, "cgroup %s: path too long", dir);
		else
			rc = write_file(path, set[i].value, err);
	}
	if (rc) {
		struct yun_err ignored;

		jcg_remove(cg, &ignored);
	}
	return rc;
}

int jcg_join(const struct jail_cgroup *cg, struct yun_err *err)
{
	for (unsigned i = 0; i < cg->nr_dirs; i++) {
		char path[PATH_MAX];
		int rc;

		snprintf(path, sizeof(path), "%s/cgroup.procs", cg->dir[i]);
		rc = write_file(path, "0", err); /* 0: the writing process */
		if (rc)
			return rc;
	}
	return 0;
}

int jcg_remove(struct jail_cgroup *cg, struct yun_err *err)
{
	int rc = 0;

	while (cg->nr_dirs) {
		const char *dir = cg->dir[cg->nr_dirs - 1];
		int tries = 0, r;

		/* A process that just exited may still count for a moment. */
		while ((r = rmdir(dir)) < 0 && errno == EBUSY && ++tries < 100)
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
		if (r < 0 && errno != ENOENT)
			rc = yun_err_errno(err, errno, "cgroup %s: cannot remove", dir);
		cg->nr_dirs--;
	}
	return rc;
}
