/*
 * cgroup.c - see cgroup.h.
 *
 * The host is a list of hierarchies (one per v1 mount that drives a known
 * controller, plus the v2 mount) and, per controller, the hierarchy that
 * drives it. A container's cgroup is the same list with each directory
 * replaced by <caller's cgroup>/yun/<name>. Limits are written to the
 * hierarchy that owns the controller, in the file syntax of its version.
 */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>


enum ctrl { C_CPU, C_CPUACCT, C_CPUSET, C_MEMORY, C_PIDS, C_BLKIO, C_FREEZER, C_DEVICES, C_COUNT };

/* v1 controller names, as in mount options and /proc/self/cgroup. */
static const char *const ctrl_v1_name[C_COUNT] = {
	"cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices",
};
/* The v2 controller that does the job; NULL when v2 has it in the core or in BPF. */
static const char *const ctrl_v2_name[C_COUNT] = {
	"cpu", "cpu", "cpuset", "memory", "pids", "io", NULL, NULL,
};

#define MAX_HIER       16
#define CPU_PERIOD_US  100000
#define MIB            (1024ull * 1024)
#define PID_MAX_LIMIT  4194304ull /* the kernel's ceiling for pid_max */
#define MAX_CPUS       1024
#define SMALL_FILE_MAX (64 * 1024)
#define KILL_WAIT_MS   5000
#define RMDIR_WAIT_MS  1000

struct hier {
	char *mount;    /* mount point */
	char *base;     /* the caller's cgroup: mount + path from /proc/self/cgroup */
	unsigned ctrls; /* 1 << enum ctrl for each controller this hierarchy drives */
	bool v2;
};

struct cgroup_host {
	enum cgroup_layout layout;
	struct hier hier[MAX_HIER];
	int nhier;
	int where[C_COUNT]; /* index into hier, -1 when the host lacks it */
	int v2;             /* index of the v2 hierarchy, -1 when none */
	unsigned ncpus;
	uint64_t mem_bytes;
	int (*mkdir_fn)(const char *path);
	int (*rmdir_fn)(const char *path);
};

struct cg_dir {
	char *path;
	char *home; /* the caller's cgroup in this hierarchy (cgroup_leave_self) */
	bool v2;
};

struct cgroup {
	char *name;
	struct cg_dir dir[MAX_HIER];
	int ndirs;
	int where[C_COUNT]; /* index into dir, -1 when absent */
	int v2;
	int (*rmdir_fn)(const char *path);
};

/* ---- small helpers ---- */

static int sys_mkdir(const char *path)
{
	return mkdir(path, 0755);
}

static int sys_rmdir(const char *path)
{
	return rmdir(path);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *path_join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static bool file_exists(const char *dir, const char *file)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

/* Read a small control file into buf (NUL-terminated). Returns 0 or -errno. */
static int read_file(const char *dir, const char *file, char *buf, size_t size)
{
	char path[4096];
	size_t got = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got + 1 < size) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return (int)n;
		}
		if (n == 0)
			break;
		got += n;
	}
	buf[got] = '\0';
	close(fd);
	return 0;
}

/* Strip trailing whitespace in place. */
static char *chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Write one value to a control file. Returns 0 or -errno. */
static int write_file(const char *dir, const char *file, const char *value)
{
	char path[4096];
	size_t len = strlen(value);
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	/* O_TRUNC is ignored by cgroupfs and keeps fake trees honest. */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do {
		n = write(fd, value, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n != len)
		rc = -EIO;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

static int write_cg(const char *dir, const char *file, const char *value, struct yun_err *err)
{
	int rc = write_file(dir, file, value);

	if (rc < 0)
		return yun_err_errno(err, -rc, "cgroup %s: writing \"%s\" to %s", dir, value, file);
	return 0;
}

static int write_cg_u64(const char *dir, const char *file, uint64_t v, struct yun_err *err)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return write_cg(dir, file, buf, err);
}

/* Value of "key N" in a flat-keyed file (memory.events, cpu.stat, ...). */
static bool keyed_value(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ' ') {
			*out = strtoull(p + klen + 1, NULL, 10);
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

static bool read_u64(const char *dir, const char *file, uint64_t *out)
{
	char buf[64], *end;

	if (read_file(dir, file, buf, sizeof(buf)) < 0)
		return false;
	errno = 0;
	*out = strtoull(buf, &end, 10);
	return end != buf && !errno;
}

static int ctrl_by_v1_name(const char *name, size_t len)
{
	for (int c = 0; c < C_COUNT; c++)
		if (strlen(ctrl_v1_name[c]) == len && !strncmp(ctrl_v1_name[c], name, len))
			return c;
	return -1;
}

/* Bits of the known controllers in a comma-separated list ("rw,cpu,cpuacct"). */
static unsigned ctrl_bits(const char *list)
{
	unsigned bits = 0;
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");
		int c = ctrl_by_v1_name(p, len);

		if (c >= 0)
			bits |= 1u << c;
		p += len;
		if (*p == ',')
			p++;
	}
	return bits;
}

static void ctrl_list(unsigned bits, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int c = 0; c < C_COUNT; c++)
		if (bits & (1u << c))
			n += snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? "," : "",
				      ctrl_v1_name[c]);
}

/* True when word appears in a space-separated list. */
static bool has_word(const char *list, const char *word)
{
	size_t wlen = strlen(word);
	const char *p = list;

	while ((p = strstr(p, word))) {
		bool start = p == list || p[-1] == ' ' || p[-1] == '\n';
		bool end = p[wlen] == '\0' || p[wlen] == ' ' || p[wlen] == '\n';

		if (start && end)
			return true;
		p += wlen;
	}
	return false;
}

/* ---- CPU lists ("0-3,5") ---- */

struct cpu_set_bits {
	uint64_t w[MAX_CPUS / 64];
};

static bool cpu_in(const struct cpu_set_bits *set, unsigned cpu)
{
	return set->w[cpu / 64] >> (cpu % 64) & 1;
}

static int cpulist_parse(const char *s, struct cpu_set_bits *set)
{
	memset(set, 0, sizeof(*set));
	while (*s && *s != '\n') {
		char *end;
		unsigned long a, b;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		a = strtoul(s, &end, 10);
		b = a;
		if (*end == '-') {
			s = end + 1;
			if (*s < '0' || *s > '9')
				return -EINVAL;
			b = strtoul(s, &end, 10);
		}
		if (a > b || b >= MAX_CPUS)
			return -EINVAL;
		for (unsigned long i = a; i <= b; i++)
			set->w[i / 64] |= 1ull << (i % 64);
		s = end;
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -EINVAL;
	}
	return 0;
}

/* ---- probe ---- */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

static bool under_root(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/')
		return true;
	return !strncmp(path, root, n) && (path[n] == '\0' || path[n] == '/');
}

/* The caller's path in a hierarchy, from /proc/self/cgroup ("" when absent). */
static const char *self_path(char *self, bool v2, unsigned ctrls, char *out, size_t size)
{
	char *line, *save = NULL;
	char *copy = strdup(self);

	out[0] = '\0';
	if (!copy)
		return out;
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2;

		if (!c1)
			continue;
		c2 = strchr(c1 + 1, ':');
		if (!c2)
			continue;
		*c2 = '\0';
		if (v2 ? (c1[1] == '\0' && !strncmp(line, "0:", 2))
		       : (c1[1] != '\0' && (ctrl_bits(c1 + 1) & ctrls))) {
			snprintf(out, size, "%s", c2 + 1);
			break;
		}
	}
	free(copy);
	return out;
}

static int add_hier(struct cgroup_host *h, const char *mount, const char *mroot, bool v2,
		    unsigned ctrls, char *self, struct yun_err *err)
{
	char path[4096], *rel;
	struct hier *hi;
	size_t rlen = strlen(mroot);
	char names[128];

	if (h->nhier == MAX_HIER)
		return yun_err_set(err, E2BIG, "cgroup: more than %d hierarchies", MAX_HIER);
	self_path(self, v2, ctrls, path, sizeof(path));
	ctrl_list(ctrls, names, sizeof(names));
	if (!path[0])
		return yun_err_set(err, ENOENT,
				   "cgroup hierarchy %s (%s): no entry in /proc/self/cgroup", mount,
				   v2 ? "v2" : names);
	/* A cgroup that was removed under us reads "/path (deleted)". */
	rel = strstr(path, " (deleted)");
	if (rel)
		*rel = '\0';
	/*
	 * The mount shows the hierarchy from mroot down; inside a cgroup
	 * namespace the caller's path may lie outside it, then the mount's
	 * top is the best we can do.
	 */
	rel = path;
	if (strcmp(mroot, "/")) {
		if (!strncmp(path, mroot, rlen) && (path[rlen] == '\0' || path[rlen] == '/'))
			rel = path + rlen;
		else
			rel = "";
	}
	while (*rel == '/')
		rel++;
	hi = &h->hier[h->nhier];
	hi->mount = strdup(mount);
	if (*rel) {
		hi->base = path_join(mount, rel);
		/* Drop a trailing slash so joined paths stay tidy. */
		if (hi->base && hi->base[strlen(hi->base) - 1] == '/')
			hi->base[strlen(hi->base) - 1] = '\0';
	} else {
		hi->base = strdup(mount);
	}
	hi->ctrls = ctrls;
	hi->v2 = v2;
	h->nhier++;
	if (!hi->mount || !hi->base)
		return yun_err_set(err, ENOMEM, "out of memory");
	return 0;
}

/* Controllers the v2 hierarchy offers below the caller (its cgroup.controllers). */
static unsigned v2_ctrls(const struct hier *hi)
{
	char buf[1024];
	unsigned bits = 0;

	if (read_file(hi->base, "cgroup.controllers", buf, sizeof(buf)) < 0)
		return 0;
	chomp(buf);
	for (int c = 0; c < C_COUNT; c++)
		if (ctrl_v2_name[c] && has_word(buf, ctrl_v2_name[c]))
			bits |= 1u << c;
	return bits;
}

int cgroup_probe_from(const char *root_in, const struct cgroup_probe_src *src,
		      struct cgroup_host **out, struct yun_err *err)
{
	struct cgroup_host *h;
	char root[4096], *mi = NULL, *self = NULL, *line, *save = NULL;
	unsigned v1_seen = 0;
	int rc = 0, nv1 = 0;

	*out = NULL;
	snprintf(root, sizeof(root), "%s", root_in);
	while (strlen(root) > 1 && root[strlen(root) - 1] == '/')
		root[strlen(root) - 1] = '\0';

	h = calloc(1, sizeof(*h));
	mi = strdup(src->mountinfo ? src->mountinfo : "");
	self = strdup(src->self_cgroup ? src->self_cgroup : "");
	if (!h || !mi || !self) {
		rc = yun_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	h->v2 = -1;
	for (int c = 0; c < C_COUNT; c++)
		h->where[c] = -1;
	h->mkdir_fn = src->mkdir_fn ? src->mkdir_fn : sys_mkdir;
	h->rmdir_fn = src->rmdir_fn ? src->rmdir_fn : sys_rmdir;

	for (line = strtok_r(mi, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *f[6], *sep, *fstype, *source, *superopts, *tok_save = NULL;
		int n = 0;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &tok_save); t && n < 6;
		     t = strtok_r(NULL, " ", &tok_save))
			f[n++] = t;
		if (n < 6)
			continue;
		tok_save = NULL;
		fstype = strtok_r(sep + 3, " ", &tok_save);
		source = strtok_r(NULL, " ", &tok_save);
		superopts = strtok_r(NULL, " ", &tok_save);
		if (!fstype || !source || !superopts)
			continue;
		unescape(f[3]);
		unescape(f[4]);
		if (!under_root(f[4], root))
			continue;
		if (!strcmp(fstype, "cgroup2")) {
			if (h->v2 >= 0)
				continue; /* the same hierarchy mounted twice */
			rc = add_hier(h, f[4], f[3], true, 0, self, err);
			if (rc < 0)
				goto out;
			h->v2 = h->nhier - 1;
		} else if (!strcmp(fstype, "cgroup")) {
			unsigned bits = ctrl_bits(superopts);

			/* Named hierarchies and second mounts of a hierarchy are not ours. */
			if (!bits || (bits & v1_seen))
				continue;
			rc = add_hier(h, f[4], f[3], false, bits, self, err);
			if (rc < 0)
				goto out;
			v1_seen |= bits;
			nv1++;
			for (int c = 0; c < C_COUNT; c++)
				if (bits & (1u << c))
					h->where[c] = h->nhier - 1;
		}
	}
	if (!nv1 && h->v2 < 0) {
		rc = yun_err_set(err, ENOENT, "cgroup %s: no cgroup hierarchy is mounted there",
				 root);
		goto out;
	}
	if (h->v2 >= 0) {
		struct hier *hi = &h->hier[h->v2];

		/* A controller bound to a v1 hierarchy cannot be in v2 as well. */
		hi->ctrls = v2_ctrls(hi) & ~v1_seen;
		for (int c = 0; c < C_COUNT; c++)
			if (hi->ctrls & (1u << c))
				h->where[c] = h->v2;
	}
	h->layout = !nv1 ? CGROUP_V2 : h->v2 >= 0 ? CGROUP_HYBRID : CGROUP_V1;

	h->ncpus = src->ncpus;
	if (!h->ncpus) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		h->ncpus = n > 0 ? (unsigned)n : 1;
	}
	h->mem_bytes = src->mem_bytes;
	if (!h->mem_bytes) {
		struct sysinfo si;

		if (sysinfo(&si) == 0)
			h->mem_bytes = (uint64_t)si.totalram * si.mem_unit;
	}
out:
	free(mi);
	free(self);
	if (rc < 0)
		cgroup_host_free(h);
	else
		*out = h;
	return rc;
}

/* A /proc file (size 0 in stat) read to its end, NUL-terminated. */
static int read_proc(const char *path, char **out, struct yun_err *err)
{
	size_t cap = 16384, len = 0;
	char *buf = malloc(cap), *bigger;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf) {
		int e = fd < 0 ? errno : ENOMEM;

		free(buf);
		if (fd >= 0)
			close(fd);
		return yun_err_errno(err, e, "cgroup: reading %s", path);
	}
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			bigger = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
			if (!bigger) {
				free(buf);
				close(fd);
				return yun_err_set(err, ENOMEM, "cgroup: %s is too big", path);
			}
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			close(fd);
			return yun_err_errno(err, e, "cgroup: reading %s", path);
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int cgroup_probe(const char *root, struct cgroup_host **out, struct yun_err *err)
{
	struct cgroup_probe_src src = { 0 };
	char *mi = NULL, *self = NULL;
	int rc;

	*out = NULL;
	rc = read_proc("/proc/self/mountinfo", &mi, err);
	if (rc == 0)
		rc = read_proc("/proc/self/cgroup", &self, err);
	if (rc == 0) {
		src.mountinfo = mi;
		src.self_cgroup = self;
		rc = cgroup_probe_from(root, &src, out, err);
	}
	free(mi);
	free(self);
	return rc;
}

void cgroup_host_free(struct cgroup_host *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->nhier; i++) {
		free(h->hier[i].mount);
		free(h->hier[i].base);
	}
	free(h);
}

enum cgroup_layout cgroup_host_layout(const struct cgroup_host *h)
{
	return h->layout;
}

const char *cgroup_layout_name(enum cgroup_layout layout)
{
	switch (layout) {
	case CGROUP_V1:
		return "v1";
	case CGROUP_V2:
		return "v2";
	case CGROUP_HYBRID:
		return "hybrid";
	}
	return "?";
}

/* Index (into hier / dir) for a controller name or "unified"; -1 when absent. */
static int lookup(const int *where, int v2, const char *controller)
{
	if (!strcmp(controller, "unified"))
		return v2;
	for (int c = 0; c < C_COUNT; c++)
		if (!strcmp(controller, ctrl_v1_name[c]))
			return where[c];
	if (!strcmp(controller, "io"))
		return where[C_BLKIO];
	return -1;
}

const char *cgroup_host_path(const struct cgroup_host *h, const char *controller)
{
	int i = lookup(h->where, h->v2, controller);

	return i < 0 ? NULL : h->hier[i].base;
}

/* ---- validation ---- */

static int need_ctrl(const struct cgroup_host *h, enum ctrl c, const char *what,
		     struct yun_err *err)
{
	if (h->where[c] >= 0)
		return 0;
	return yun_err_set(err, ENOTSUP, "%s: this host has no %s controller", what,
			   h->layout == CGROUP_V2 && ctrl_v2_name[c] ? ctrl_v2_name[c]
								       : ctrl_v1_name[c]);
}

/* The CPUs the caller may hand to a container. */
static void host_cpus(const struct cgroup_host *h, struct cpu_set_bits *set, char *text,
		      size_t size)
{
	int i = h->where[C_CPUSET];
	char buf[4096];
	int rc = -ENOENT;

	if (i >= 0) {
		const struct hier *hi = &h->hier[i];

		rc = read_file(hi->base, hi->v2 ? "cpuset.cpus.effective" : "cpuset.effective_cpus",
			       buf, sizeof(buf));
		if (rc < 0 && !hi->v2)
			rc = read_file(hi->base, "cpuset.cpus", buf, sizeof(buf));
		if (rc == 0 && (!chomp(buf)[0] || cpulist_parse(buf, set) < 0))
			rc = -EINVAL;
	}
	if (rc < 0) {
		unsigned n = h->ncpus < MAX_CPUS ? h->ncpus : MAX_CPUS;

		memset(set, 0, sizeof(*set));
		for (unsigned c = 0; c < n; c++)
			set->w[c / 64] |= 1ull << (c % 64);
		snprintf(buf, sizeof(buf), n > 1 ? "0-%u" : "0", n - 1);
	}
	snprintf(text, size, "%s", buf);
}

int cgroup_limits_validate(const struct cgroup_host *h, const struct cgroup_limits *l,
			   struct yun_err *err)
{
	uint64_t ram_cap = h->mem_bytes * 4;
	int rc;

	if (isnan(l->cpus) || l->cpus < 0)
		return yun_err_set(err, EINVAL, "cpus %g: must be a positive number of CPUs",
				   l->cpus);
	if (l->cpus > 0) {
		if (l->cpus < 0.01)
			return yun_err_set(err, EINVAL, "cpus %g: below the minimum of 0.01",
					   l->cpus);
		if (l->cpus > h->ncpus)
			return yun_err_set(err, EINVAL, "cpus %g: more than the host's %u CPUs",
					   l->cpus, h->ncpus);
		rc = need_ctrl(h, C_CPU, "cpus", err);
		if (rc < 0)
			return rc;
	}
	if (l->cpu_shares) {
		if (l->cpu_shares < 2 || l->cpu_shares > 262144)
			return yun_err_set(err, EINVAL, "cpu shares %llu: outside 2..262144",
					   (unsigned long long)l->cpu_shares);
		rc = need_ctrl(h, C_CPU, "cpu shares", err);
		if (rc < 0)
			return rc;
	}
	if (l->cpuset[0]) {
		struct cpu_set_bits want, have;
		char have_text[256];

		if (!memchr(l->cpuset, '\0', sizeof(l->cpuset)) ||
		    cpulist_parse(l->cpuset, &want) < 0)
			return yun_err_set(err, EINVAL,
					   "cpuset \"%.*s\": not a CPU list like \"0-1,3\"",
					   (int)sizeof(l->cpuset), l->cpuset);
		rc = need_ctrl(h, C_CPUSET, "cpuset", err);
		if (rc < 0)
			return rc;
		host_cpus(h, &have, have_text, sizeof(have_text));
		for (unsigned c = 0; c < MAX_CPUS; c++) {
			if (cpu_in(&want, c) && !cpu_in(&have, c))
				return yun_err_set(err, EINVAL,
						   "cpuset \"%s\": CPU %u is not available "
						   "(the host offers %s)",
						   l->cpuset, c, have_text);
		}
	}
	if (l->memory_bytes) {
		if (l->memory_bytes < MIB)
			return yun_err_set(err, EINVAL,
					   "memory %llu bytes: below the minimum of 1 MiB",
					   (unsigned long long)l->memory_bytes);
		if (l->memory_bytes > ram_cap)
			return yun_err_set(err, EINVAL,
					   "memory %llu bytes: more than 4 times the host's RAM "
					   "(%llu bytes)",
					   (unsigned long long)l->memory_bytes,
					   (unsigned long long)h->mem_bytes);
		rc = need_ctrl(h, C_MEMORY, "memory", err);
		if (rc < 0)
			return rc;
	}
	if (l->swap_bytes < -1)
		return yun_err_set(err, EINVAL,
				   "swap %lld bytes: must be -1 (unlimited), 0 (none) or a size",
				   (long long)l->swap_bytes);
	if (l->swap_bytes > 0) {
		int i = h->where[C_MEMORY];

		if (!l->memory_bytes)
			return yun_err_set(err, EINVAL, "swap %lld bytes: needs a memory limit",
					   (long long)l->swap_bytes);
		if ((uint64_t)l->swap_bytes > ram_cap)
			return yun_err_set(err, EINVAL,
					   "swap %lld bytes: more than 4 times the host's RAM "
					   "(%llu bytes)",
					   (long long)l->swap_bytes,
					   (unsigned long long)h->mem_bytes);
		/* v1 shows memsw files in every cgroup; v2 not in the root, see create. */
		if (i >= 0 && !h->hier[i].v2 &&
		    !file_exists(h->hier[i].base, "memory.memsw.limit_in_bytes"))
			return yun_err_set(err, ENOTSUP,
					   "swap %lld bytes: this host has no swap accounting "
					   "(memory.memsw.limit_in_bytes is missing; boot with "
					   "swapaccount=1)",
					   (long long)l->swap_bytes);
	}
	if (l->pids) {
		if (l->pids > PID_MAX_LIMIT)
			return yun_err_set(err, EINVAL,
					   "pids %llu: more than the kernel's limit of %llu tasks",
					   (unsigned long long)l->pids, PID_MAX_LIMIT);
		rc = need_ctrl(h, C_PIDS, "pids", err);
		if (rc < 0)
			return rc;
	}
	if (l->blkio_weight) {
		if (l->blkio_weight < 10 || l->blkio_weight > 1000)
			return yun_err_set(err, EINVAL, "blkio weight %u: outside 10..1000",
					   l->blkio_weight);
		rc = need_ctrl(h, C_BLKIO, "blkio weight", err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- create / open ---- */

static int check_name(const char *name, struct yun_err *err)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '.')
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			goto bad;
	}
	return 0;
bad:
	return yun_err_set(
	    err, EINVAL,
	    "container name \"%.64s\": use 1 to 64 letters, digits, '-', '_' or '.', "
	    "not starting with '.'",
	    name);
}

static struct cgroup *cg_alloc(const struct cgroup_host *h, const char *name)
{
	struct cgroup *cg = calloc(1, sizeof(*cg));

	if (!cg)
		return NULL;
	cg->name = strdup(name);
	if (!cg->name) {
		free(cg);
		return NULL;
	}
	memcpy(cg->where, h->where, sizeof(cg->where));
	cg->v2 = h->v2;
	cg->rmdir_fn = h->rmdir_fn;
	return cg;
}

void cgroup_close(struct cgroup *cg)
{
	if (!cg)
		return;
	for (int i = 0; i < cg->ndirs; i++) {
		free(cg->dir[i].path);
		free(cg->dir[i].home);
	}
	free(cg->name);
	free(cg);
}

const char *cgroup_path(const struct cgroup *cg, const char *controller)
{
	int i = lookup(cg->where, cg->v2, controller);

	return i < 0 || i >= cg->ndirs ? NULL : cg->dir[i].path;
}

/* Directories made by one cgroup_create, undone in reverse on failure. */
struct made {
	char *path[2 * MAX_HIER];
	int n;
};

static int make_dir(const struct cgroup_host *h, const char *path, bool exist_ok, bool *made,
		    struct yun_err *err)
{
	*made = false;
	if (h->mkdir_fn(path) == 0) {
		*made = true;
		return 0;
	}
	if (errno == EEXIST && exist_ok)
		return 0;
	if (errno == EEXIST)
		return yun_err_set(err, EEXIST, "cgroup %s: already exists", path);
	return yun_err_errno(err, errno, "cgroup %s: mkdir", path);
}

/* v1 cpuset: a cgroup without CPUs and memory nodes cannot take tasks. */
static int cpuset_fill(const char *parent, const char *dir, const char *file, const char *want,
		       struct yun_err *err)
{
	char cur[4096];

	if (want && want[0])
		return write_cg(dir, file, want, err);
	if (read_file(dir, file, cur, sizeof(cur)) == 0 && chomp(cur)[0])
		return 0;
	if (read_file(parent, file, cur, sizeof(cur)) < 0 || !chomp(cur)[0])
		return yun_err_set(err, EINVAL, "cgroup %s: parent has no %s to inherit", dir,
				   file);
	return write_cg(dir, file, cur, err);
}

/* v2: let children of `dir` use the controllers in `bits`. */
static int v2_delegate(const char *dir, unsigned bits, struct yun_err *err)
{
	char cur[1024];

	if (read_file(dir, "cgroup.subtree_control", cur, sizeof(cur)) < 0)
		cur[0] = '\0';
	chomp(cur);
	for (int c = 0; c < C_COUNT; c++) {
		char req[32];
		int rc;

		if (!(bits & (1u << c)) || !ctrl_v2_name[c] || has_word(cur, ctrl_v2_name[c]))
			continue;
		snprintf(req, sizeof(req), "+%s", ctrl_v2_name[c]);
		rc = write_file(dir, "cgroup.subtree_control", req);
		if (rc == -EBUSY)
			return yun_err_set(
			    err, EBUSY,
			    "cgroup %s: cannot enable the %s controller for child "
			    "cgroups while this cgroup has processes (cgroup v2's "
			    "no-internal-process rule); run yun from a delegated cgroup "
			    "whose own processes sit in a leaf",
			    dir, ctrl_v2_name[c]);
		if (rc < 0)
			return yun_err_errno(err, -rc, "cgroup %s: enabling the %s controller", dir,
					     ctrl_v2_name[c]);
		snprintf(cur + strlen(cur), sizeof(cur) - strlen(cur), " %s", ctrl_v2_name[c]);
	}
	return 0;
}

/*
 * v1 cpuset for a new container directory: the requested CPUs, else what
 * "yun" passed on at mkdir (it has cgroup.clone_children set), else -- a
 * "yun" made before that flag was set, or by hand -- copied from "yun"
 * (filled from the caller's cpuset first when empty), and the flag set
 * for the next container.
 */
static int cpuset_inherit(const char *base, const char *yun, const char *dir, const char *file,
			  const char *want, struct yun_err *err)
{
	char cur[4096];
	int rc;

	if (want && want[0])
		return write_cg(dir, file, want, err);
	if (read_file(dir, file, cur, sizeof(cur)) == 0 && chomp(cur)[0])
		return 0;
	rc = cpuset_fill(base, yun, file, NULL, err);
	if (rc == 0)
		rc = cpuset_fill(yun, dir, file, NULL, err);
	if (rc == 0)
		write_file(yun, "cgroup.clone_children", "1"); /* an optimization only */
	return rc;
}

/* Make <base>/yun (once) in one hierarchy. */
static int create_yun(const struct cgroup_host *h, const struct hier *hi, const char *yun,
		      struct made *made, struct yun_err *err)
{
	bool did;
	int rc;

	rc = make_dir(h, yun, true, &did, err);
	if (rc < 0)
		return rc;
	if (did)
		made->path[made->n++] = strdup(yun);
	if (hi->v2 && hi->ctrls)
		return v2_delegate(yun, hi->ctrls, err);
	if (!hi->v2 && (hi->ctrls & (1u << C_CPUSET))) {
		rc = cpuset_fill(hi->base, yun, "cpuset.cpus", NULL, err);
		if (rc == 0)
			rc = cpuset_fill(hi->base, yun, "cpuset.mems", NULL, err);
		/* Containers made below start with these CPUs and memory nodes. */
		if (rc == 0)
			write_file(yun, "cgroup.clone_children", "1");
	}
	return rc;
}

/*
 * Make <base>/yun/<name> in one hierarchy, and <base>/yun when missing
 * (tried in that order: "yun" exists but for the very first container).
 */
static int create_dirs(const struct cgroup_host *h, const struct hier *hi, const char *name,
		       const struct cgroup_limits *l, struct made *made, char **out,
		       struct yun_err *err)
{
	char *yun = path_join(hi->base, "yun"), *dir = yun ? path_join(yun, name) : NULL;
	bool did;
	int rc;

	if (!yun || !dir) {
		rc = yun_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	/* v2 controllers (none on hybrid hosts): enabled down to "yun"'s children. */
	if (hi->v2 && hi->ctrls) {
		rc = v2_delegate(hi->base, hi->ctrls, err);
		if (rc < 0)
			goto out;
	}
	rc = make_dir(h, dir, false, &did, err);
	if (rc == -ENOENT) {
		rc = create_yun(h, hi, yun, made, err);
		if (rc == 0)
			rc = make_dir(h, dir, false, &did, err);
		did = false; /* create_yun delegated already */
	}
	if (rc < 0)
		goto out;
	made->path[made->n++] = strdup(dir);
	if (did && hi->v2 && hi->ctrls) {
		rc = v2_delegate(yun, hi->ctrls, err);
		if (rc < 0)
			goto out;
	}
	if (!hi->v2 && (hi->ctrls & (1u << C_CPUSET))) {
		/* Before any task joins: CPUs (requested or inherited), then memory nodes. */
		rc = cpuset_inherit(hi->base, yun, dir, "cpuset.cpus", l->cpuset, err);
		if (rc == 0)
			rc = cpuset_inherit(hi->base, yun, dir, "cpuset.mems", NULL, err);
		if (rc < 0)
			goto out;
	}
	for (int i = 0; i < made->n; i++)
		if (!made->path[i])
			rc = yun_err_set(err, ENOMEM, "out of memory");
out:
	free(yun);
	if (rc < 0) {
		free(dir);
		return rc;
	}
	*out = dir;
	return 0;
}

static int write_cpu(const struct cg_dir *d, const struct cgroup_limits *l, struct yun_err *err)
{
	char buf[64];
	int rc = 0;

	if (l->cpus > 0) {
		uint64_t quota = (uint64_t)llround(l->cpus * CPU_PERIOD_US);

		if (d->v2) {
			snprintf(buf, sizeof(buf), "%llu %u", (unsigned long long)quota,
				 CPU_PERIOD_US);
			rc = write_cg(d->path, "cpu.max", buf, err);
		} else {
			rc = write_cg_u64(d->path, "cpu.cfs_period_us", CPU_PERIOD_US, err);
			if (rc == 0)
				rc = write_cg_u64(d->path, "cpu.cfs_quota_us", quota, err);
		}
		if (rc < 0)
			return rc;
	}
	if (l->cpu_shares) {
		if (d->v2) /* the mapping runc and crun use: 2..262144 -> 1..10000 */
			rc = write_cg_u64(d->path, "cpu.weight",
					  1 + ((l->cpu_shares - 2) * 9999) / 262142, err);
		else
			rc = write_cg_u64(d->path, "cpu.shares", l->cpu_shares, err);
	}
	return rc;
}

static int write_memory(const struct cg_dir *d, const struct cgroup_limits *l,
			struct yun_err *err)
{
	const char *swap_file = d->v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
	int rc;

	if (!l->memory_bytes)
		return 0;
	rc = write_cg_u64(d->path, d->v2 ? "memory.max" : "memory.limit_in_bytes",
			  l->memory_bytes, err);
	if (rc < 0 || l->swap_bytes < 0)
		return rc; /* -1: swap stays unlimited, the kernel's default */
	if (!file_exists(d->path, swap_file)) {
		if (l->swap_bytes == 0)
			return 0; /* cannot forbid swap without swap accounting */
		return yun_err_set(err, ENOTSUP,
				   "swap %lld bytes: this host has no swap accounting (%s is "
				   "missing; boot with swapaccount=1)",
				   (long long)l->swap_bytes, swap_file);
	}
	if (d->v2) /* v2 counts swap alone */
		return write_cg_u64(d->path, swap_file, (uint64_t)l->swap_bytes, err);
	/* v1 counts memory + swap */
	return write_cg_u64(d->path, swap_file, l->memory_bytes + (uint64_t)l->swap_bytes, err);
}

static int write_blkio(const struct cg_dir *d, const struct cgroup_limits *l,
		       struct yun_err *err)
{
	char buf[32];

	if (!l->blkio_weight)
		return 0;
	if (d->v2) {
		/* io.weight is 1..10000; BFQ's io.bfq.weight keeps blkio's 10..1000 scale */
		if (file_exists(d->path, "io.weight")) {
			snprintf(buf, sizeof(buf), "default %u",
				 1 + (l->blkio_weight - 10) * 9999 / 990);
			return write_cg(d->path, "io.weight", buf, err);
		}
		if (file_exists(d->path, "io.bfq.weight")) {
			snprintf(buf, sizeof(buf), "default %u", l->blkio_weight);
			return write_cg(d->path, "io.bfq.weight", buf, err);
		}
	} else {
		if (file_exists(d->path, "blkio.weight"))
			return write_cg_u64(d->path, "blkio.weight", l->blkio_weight, err);
		if (file_exists(d->path, "blkio.bfq.weight"))
			return write_cg_u64(d->path, "blkio.bfq.weight", l->blkio_weight, err);
	}
	return yun_err_set(err, ENOTSUP,
			   "blkio weight %u: not supported by this host's I/O scheduler",
			   l->blkio_weight);
}

static int write_limits(struct cgroup *cg, const struct cgroup_limits *l, struct yun_err *err)
{
	int rc = 0;

	if (cg->where[C_CPU] >= 0)
		rc = write_cpu(&cg->dir[cg->where[C_CPU]], l, err);
	if (rc == 0 && l->cpuset[0] && cg->where[C_CPUSET] >= 0 && cg->dir[cg->where[C_CPUSET]].v2)
		rc = write_cg(cg->dir[cg->where[C_CPUSET]].path, "cpuset.cpus", l->cpuset, err);
	if (rc == 0 && cg->where[C_MEMORY] >= 0)
		rc = write_memory(&cg->dir[cg->where[C_MEMORY]], l, err);
	if (rc == 0 && l->pids && cg->where[C_PIDS] >= 0)
		rc = write_cg_u64(cg->dir[cg->where[C_PIDS]].path, "pids.max", l->pids, err);
	if (rc == 0 && cg->where[C_BLKIO] >= 0)
		rc = write_blkio(&cg->dir[cg->where[C_BLKIO]], l, err);
	return rc;
}

static int create(const struct cgroup_host *h, const char *name, const struct cgroup_limits *l,
		  bool limits, struct cgroup **out, struct yun_err *err)
{
	struct made made = { .n = 0 };
	struct cgroup *cg;
	int rc;

	*out = NULL;
	rc = check_name(name, err);
	if (rc < 0)
		return rc;
	rc = cgroup_limits_validate(h, l, err);
	if (rc < 0)
		return rc;
	cg = cg_alloc(h, name);
	if (!cg)
		return yun_err_set(err, ENOMEM, "out of memory");
	for (int i = 0; i < h->nhier; i++) {
		rc = create_dirs(h, &h->hier[i], name, l, &made, &cg->dir[i].path, err);
		if (rc < 0)
			goto fail;
		cg->dir[i].v2 = h->hier[i].v2;
		cg->ndirs++;
		cg->dir[i].home = strdup(h->hier[i].base);
		if (!cg->dir[i].home) {
			rc = yun_err_set(err, ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (limits) {
		rc = write_limits(cg, l, err);
		if (rc < 0)
			goto fail;
	}
	for (int i = 0; i < made.n; i++)
		free(made.path[i]);
	*out = cg;
	return 0;
fail:
	/* Newest first: a container's directory before the "yun" that holds it. */
	for (int i = made.n - 1; i >= 0; i--) {
		if (made.path[i])
			h->rmdir_fn(made.path[i]);
		free(made.path[i]);
	}
	cgroup_close(cg);
	return rc;
}

int cgroup_create(const struct cgroup_host *h, const char *name, const struct cgroup_limits *l,
		  struct cgroup **out, struct yun_err *err)
{
	return create(h, name, l, true, out, err);
}

int cgroup_create_unlimited(const struct cgroup_host *h, const char *name,
			    const struct cgroup_limits *l, struct cgroup **out, struct yun_err *err)
{
	return create(h, name, l, false, out, err);
}

int cgroup_set_limits(struct cgroup *cg, const struct cgroup_limits *l, struct yun_err *err)
{
	return write_limits(cg, l, err);
}

int cgroup_open(const struct cgroup_host *h, const char *name, struct cgroup **out,
		struct yun_err *err)
{
	struct cgroup *cg;
	int rc;

	*out = NULL;
	rc = check_name(name, err);
	if (rc < 0)
		return rc;
	cg = cg_alloc(h, name);
	if (!cg)
		return yun_err_set(err, ENOMEM, "out of memory");
	for (int i = 0; i < h->nhier; i++) {
		struct stat st;
		char *dir;

		if (asprintf(&dir, "%s/yun/%s", h->hier[i].base, name) < 0) {
			cgroup_close(cg);
			return yun_err_set(err, ENOMEM, "out of memory");
		}
		cg->dir[i].path = dir;
		cg->dir[i].v2 = h->hier[i].v2;
		cg->ndirs++;
		cg->dir[i].home = strdup(h->hier[i].base);
		if (!cg->dir[i].home) {
			cgroup_close(cg);
			return yun_err_set(err, ENOMEM, "out of memory");
		}
		rc = stat(dir, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
		if (rc) {
			yun_err_errno(err, rc, "container %s: cgroup %s", name, dir);
			cgroup_close(cg);
			return -rc;
		}
	}
	*out = cg;
	return 0;
}

int cgroup_enter(struct cgroup *cg, pid_t pid, struct yun_err *err)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", (int)pid);
	for (int i = 0; i < cg->ndirs; i++) {
		int rc = write_cg(cg->dir[i].path, "cgroup.procs", buf, err);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * "0" in a v1 hierarchy's `tasks` file moves the writing thread alone. The
 * kernel then skips cgroup_threadgroup_rwsem (cgroup_procs_write_start:
 * no pid and no thread group), whose write side waits for an RCU grace
 * period; a pid written to cgroup.procs takes it, milliseconds per call.
 */
static int move_self(struct cgroup *cg, bool home, struct yun_err *err)
{
	int ret = 0;

	for (int i = 0; i < cg->ndirs; i++) {
		const struct cg_dir *d = &cg->dir[i];
		int rc;

		if (d->v2)
			continue;
		rc = write_cg(home ? d->home : d->path, "tasks", "0", ret ? NULL : err);
		if (rc < 0 && !ret)
			ret = rc;
		/* Going in stops at the first failure; going home tries every hierarchy. */
		if (rc < 0 && !home)
			break;
	}
	return ret;
}

int cgroup_enter_self(struct cgroup *cg, struct yun_err *err)
{
	int rc = move_self(cg, false, err);

	if (rc < 0)
		move_self(cg, true, NULL);
	return rc;
}

int cgroup_leave_self(struct cgroup *cg, struct yun_err *err)
{
	return move_self(cg, true, err);
}

/* ---- status ---- */

bool cgroup_oom_killed(struct cgroup *cg)
{
	char buf[2048];
	const struct cg_dir *d;
	uint64_t n = 0;

	if (cg->where[C_MEMORY] < 0)
		return false;
	d = &cg->dir[cg->where[C_MEMORY]];
	if (d->v2)
		return read_file(d->path, "memory.events", buf, sizeof(buf)) == 0 &&
		       keyed_value(buf, "oom_kill", &n) && n > 0;
	if (read_file(d->path, "memory.oom_control", buf, sizeof(buf)) == 0 &&
	    keyed_value(buf, "oom_kill", &n))
		return n > 0;
	/* Before 4.13: hitting the limit is the best sign of an OOM kill there is. */
	return read_u64(d->path, "memory.failcnt", &n) && n > 0;
}

int cgroup_stats(struct cgroup *cg, struct cgroup_stats *st, struct yun_err *err)
{
	char buf[2048];
	uint64_t v;

	(void)err;
	memset(st, 0, sizeof(*st));
	if (cg->where[C_CPUACCT] >= 0 && !cg->dir[cg->where[C_CPUACCT]].v2) {
		if (read_u64(cg->dir[cg->where[C_CPUACCT]].path, "cpuacct.usage", &v))
			st->cpu_usage_ns = v;
	} else if (cg->v2 >= 0) {
		/* cpu.stat's usage_usec is there even without the cpu controller */
		if (read_file(cg->dir[cg->v2].path, "cpu.stat", buf, sizeof(buf)) == 0 &&
		    keyed_value(buf, "usage_usec", &v))
			st->cpu_usage_ns = v * 1000;
	}
	if (cg->where[C_MEMORY] >= 0) {
		const struct cg_dir *d = &cg->dir[cg->where[C_MEMORY]];

		if (read_u64(d->path, d->v2 ? "memory.current" : "memory.usage_in_bytes", &v))
			st->memory_bytes = v;
	}
	if (cg->where[C_PIDS] >= 0 && read_u64(cg->dir[cg->where[C_PIDS]].path, "pids.current", &v))
		st->pids = v;
	return 0;
}

/* ---- kill and destroy ---- */

/*
 * Call fn on dir and every sub-cgroup below it (the container may have made
 * its own). Sub-cgroups are visited before their parent.
 */
static int walk(const char *dir, int (*fn)(const char *dir, void *arg), void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char *sub;

		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sub = path_join(dir, e->d_name);
		if (!sub) {
			rc = -ENOMEM;
			break;
		}
		rc = walk(sub, fn, arg);
		free(sub);
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc < 0 ? rc : fn(dir, arg);
}

struct kill_arg {
	int found; /* tasks seen */
	bool send; /* SIGKILL them */
};

static int kill_procs(const char *dir, void *argp)
{
	struct kill_arg *arg = argp;
	char path[4096], line[32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		long pid = strtol(line, NULL, 10);

		if (pid <= 0)
			continue;
		arg->found++;
		if (arg->send && kill((pid_t)pid, SIGKILL) < 0 && errno != ESRCH) {
			int e = errno;

			fclose(f);
			return -e;
		}
	}
	fclose(f);
	return 0;
}

static int count_or_kill(const char *dir, bool send, int *found)
{
	struct kill_arg arg = { 0, send };
	int rc = walk(dir, kill_procs, &arg);

	*found = arg.found;
	return rc;
}

/*
 * v2 "populated 0" in cgroup.events: no task (zombies do not count) in the
 * cgroup or below, in one read instead of a walk. False when unknown.
 */
static bool v2_unpopulated(const char *dir)
{
	char buf[256];
	uint64_t v;

	return read_file(dir, "cgroup.events", buf, sizeof(buf)) == 0 &&
	       keyed_value(buf, "populated", &v) && v == 0;
}

static int wait_empty(const char *dir, bool resend, struct yun_err *err)
{
	int64_t deadline = now_ms() + KILL_WAIT_MS;
	long pause = 1;

	for (;;) {
		int found, rc;

		if (!resend && v2_unpopulated(dir))
			return 0;
		rc = count_or_kill(dir, resend, &found);

		if (rc < 0)
			return yun_err_errno(err, -rc, "cgroup %s: listing tasks", dir);
		if (!found)
			return 0;
		if (now_ms() > deadline)
			return yun_err_set(err, ETIMEDOUT,
					   "cgroup %s: %d task(s) still there %d ms after SIGKILL",
					   dir, found, KILL_WAIT_MS);
		sleep_ms(pause);
		if (pause < 20)
			pause *= 2;
	}
}

/* Wait (briefly) until a freezer settles; a cgroup stuck in FREEZING is killed anyway. */
static void wait_frozen(const char *dir, const char *file, const char *done)
{
	int64_t deadline = now_ms() + 1000;
	char buf[256];

	while (now_ms() < deadline) {
		if (read_file(dir, file, buf, sizeof(buf)) < 0)
			return;
		if (strstr(buf, done))
			return;
		sleep_ms(1);
	}
}

static int freeze_kill_thaw(const char *freeze_dir, const char *file, const char *on,
			    const char *off, const char *state_file, const char *frozen,
			    const char *procs_dir, struct yun_err *err)
{
	int found, rc, thaw;

	rc = write_cg(freeze_dir, file, on, err);
	if (rc < 0)
		return rc;
	wait_frozen(freeze_dir, state_file, frozen);
	rc = count_or_kill(procs_dir, true, &found);
	/* Thaw in any case, or the killed tasks could never die. */
	thaw = write_file(freeze_dir, file, off);
	if (rc < 0)
		return yun_err_errno(err, -rc, "cgroup %s: killing tasks", procs_dir);
	if (thaw < 0)
		return yun_err_errno(err, -thaw, "cgroup %s: writing \"%s\" to %s", freeze_dir,
				     off, file);
	return 0;
}

int cgroup_kill_all(struct cgroup *cg, struct yun_err *err)
{
	const char *v2 = cg->v2 >= 0 ? cg->dir[cg->v2].path : NULL;
	int rc;

	if (!cg->ndirs)
		return 0;
	if (v2 && file_exists(v2, "cgroup.kill")) {
		rc = write_cg(v2, "cgroup.kill", "1", err);
		if (rc < 0)
			return rc;
		return wait_empty(v2, false, err);
	}
	if (cg->where[C_FREEZER] >= 0 && !cg->dir[cg->where[C_FREEZER]].v2) {
		const char *fz = cg->dir[cg->where[C_FREEZER]].path;

		rc = freeze_kill_thaw(fz, "freezer.state", "FROZEN", "THAWED", "freezer.state",
				      "FROZEN", fz, err);
		if (rc < 0)
			return rc;
		return wait_empty(fz, false, err);
	}
	if (v2 && file_exists(v2, "cgroup.freeze")) {
		rc = freeze_kill_thaw(v2, "cgroup.freeze", "1", "0", "cgroup.events", "frozen 1",
				      v2, err);
		if (rc < 0)
			return rc;
		return wait_empty(v2, false, err);
	}
	/* No freezer: keep killing until no new task shows up. */
	return wait_empty(cg->dir[0].path, true, err);
}

static int remove_one(const char *dir, void *arg)
{
	struct cgroup *cg = arg;
	int64_t deadline = now_ms() + RMDIR_WAIT_MS;

	for (;;) {
		if (cg->rmdir_fn(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || now_ms() > deadline)
			return -errno;
		sleep_ms(10);
	}
}

int cgroup_destroy(struct cgroup *cg, struct yun_err *err)
{
	int ret = 0;

	if (!cg)
		return 0;
	for (int i = cg->ndirs - 1; i >= 0; i--) {
		int rc;

		/* Usually empty and without sub-cgroups: one rmdir does it. */
		if (cg->rmdir_fn(cg->dir[i].path) == 0 || errno == ENOENT)
			continue;
		rc = walk(cg->dir[i].path, remove_one, cg);

		if (rc < 0 && ret == 0)
			ret = yun_err_errno(err, -rc, "cgroup %s: rmdir", cg->dir[i].path);
	}
	cgroup_close(cg);
	return ret;
}
