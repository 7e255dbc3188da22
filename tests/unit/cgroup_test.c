/*
 * cgroup_test.c - container cgroups on fake v1, v2 and hybrid trees (what
 * gets written where, validation, clean failure), then for real on this
 * host: limits in the kernel's files, tasks entering, kill_all, OOM
 * reporting, destroy leaving nothing.
 */
#include "ct/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define MIB (1024ull * 1024)
#define GIB (1024ull * MIB)

static char root[64];

/* ---- a fake cgroupfs on a plain directory ---- */

/* Control file the fake mkdir leaves out, to make a write fail midway. */
static const char *fake_missing;
/* Leave out memory.memsw.* (a host without swap accounting). */
static bool fake_no_memsw;
/* Leave out every blkio weight file (no CFQ/BFQ). */
static bool fake_no_blkio_weight;

static void put(const char *dir, const char *file, const char *value)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		abort();
	}
	fputs(value, f);
	fclose(f);
}

static void put_ctl(const char *dir, const char *file, const char *value)
{
	if (fake_missing && !strcmp(file, fake_missing))
		return;
	put(dir, file, value);
}

/* "": file missing */
static const char *get(const char *dir, const char *file)
{
	static char buf[512];
	char path[512];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	buf[0] = '\0';
	f = fopen(path, "r");
	if (!f)
		return buf;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	fclose(f);
	return buf;
}

static bool exists(const char *fmt, const char *a, const char *b)
{
	char path[512];

	snprintf(path, sizeof(path), fmt, a, b);
	return access(path, F_OK) == 0;
}

/* The control files a kernel would show in a new cgroup of each hierarchy. */
static int fake_mkdir(const char *path)
{
	const char *rel = path + strlen(root) + 1;

	if (mkdir(path, 0755) < 0)
		return -1;
	put_ctl(path, "cgroup.procs", "");
	if (!strncmp(rel, "cpu,cpuacct/", 12)) {
		put_ctl(path, "cpu.cfs_period_us", "100000\n");
		put_ctl(path, "cpu.cfs_quota_us", "-1\n");
		put_ctl(path, "cpu.shares", "1024\n");
		put_ctl(path, "cpuacct.usage", "0\n");
	} else if (!strncmp(rel, "cpuset/", 7)) {
		put_ctl(path, "cpuset.cpus", "\n");
		put_ctl(path, "cpuset.mems", "\n");
	} else if (!strncmp(rel, "memory/", 7)) {
		put_ctl(path, "memory.limit_in_bytes", "9223372036854771712\n");
		if (!fake_no_memsw)
			put_ctl(path, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
		put_ctl(path, "memory.oom_control",
			"oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
		put_ctl(path, "memory.usage_in_bytes", "0\n");
	} else if (!strncmp(rel, "pids/", 5)) {
		put_ctl(path, "pids.max", "max\n");
		put_ctl(path, "pids.current", "0\n");
	} else if (!strncmp(rel, "blkio/", 6)) {
		if (!fake_no_blkio_weight)
			put_ctl(path, "blkio.bfq.weight", "100\n"); /* like these hosts: BFQ only */
	} else if (!strncmp(rel, "freezer/", 8)) {
		put_ctl(path, "freezer.state", "THAWED\n");
	} else if (!strncmp(rel, "devices/", 8)) {
		put_ctl(path, "devices.list", "a *:* rwm\n");
	} else if (!strncmp(rel, "unified/", 8) || !strncmp(rel, "v2/", 3)) {
		put_ctl(path, "cgroup.controllers", "");
		put_ctl(path, "cgroup.subtree_control", "");
		put_ctl(path, "cgroup.kill", "");
		put_ctl(path, "cpu.stat", "usage_usec 0\n");
		if (!strncmp(rel, "v2/", 3)) {
			put_ctl(path, "cpu.max", "max 100000\n");
			put_ctl(path, "cpu.weight", "100\n");
			put_ctl(path, "cpuset.cpus", "\n");
			put_ctl(path, "memory.max", "max\n");
			if (!fake_no_memsw)
				put_ctl(path, "memory.swap.max", "max\n");
			put_ctl(path, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
			put_ctl(path, "pids.max", "max\n");
			if (!fake_no_blkio_weight)
				put_ctl(path, "io.weight", "default 100\n");
		}
	}
	return 0;
}

/* rmdir on cgroupfs takes the control files with it. */
static int fake_rmdir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p[512];

		if (e->d_type != DT_REG)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		unlink(p);
	}
	closedir(d);
	return rmdir(path);
}

static void mkdirs(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	mkdir(path, 0755);
}

static char *at(const char *rel)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, 512, "%s/%s", root, rel);
	return b;
}

enum fake { FAKE_V1, FAKE_V2, FAKE_HYBRID };

static char mountinfo[4096];
static const char *self_v1 = "12:name=systemd:/\n"
			     "11:pids:/\n"
			     "10:memory:/sandbox/x\n"
			     "9:cpu,cpuacct:/\n"
			     "8:cpuset:/\n"
			     "7:blkio:/\n"
			     "6:freezer:/\n"
			     "5:devices:/\n"
			     "0::/\n";
static const char *self_v2 = "0::/yun.service\n";

/* Build a fresh fake tree of one layout; returns the probe source for it. */
static struct cgroup_probe_src make_fake(enum fake kind)
{
	static const char *const v1[] = { "cpu,cpuacct", "cpuset", "memory", "pids",
					  "blkio",       "freezer", "devices", "systemd" };
	static const char *const v1_opts[] = { "cpu,cpuacct", "cpuset",  "memory",
					       "pids",        "blkio",   "freezer",
					       "devices",     "name=systemd" };
	struct cgroup_probe_src src = {
		.ncpus = 4,
		.mem_bytes = 8 * GIB,
		.mkdir_fn = fake_mkdir,
		.rmdir_fn = fake_rmdir,
	};
	size_t n = 0;
	int id = 30;

	snprintf(root, sizeof(root), "/tmp/yun-cgroup-test.XXXXXX");
	if (!mkdtemp(root))
		abort();
	/* noise: a mount outside the root, and one that is not a cgroup */
	n += snprintf(mountinfo + n, sizeof(mountinfo) - n,
		      "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
		      "23 1 0:22 / /elsewhere/memory rw - cgroup cgroup rw,memory\n"
		      "24 1 0:23 / %s rw shared:7 - tmpfs tmpfs rw,mode=755\n",
		      root);
	if (kind != FAKE_V2) {
		for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
			mkdirs(v1[i]);
			n += snprintf(mountinfo + n, sizeof(mountinfo) - n,
				      "%d 24 0:%d / %s/%s rw,nosuid,nodev shared:%d - cgroup "
				      "cgroup rw,%s\n",
				      id, id, root, v1[i], id, v1_opts[i]);
			id++;
		}
		mkdirs("memory/sandbox/x");
		put(at("cpuset"), "cpuset.cpus", "0-3\n");
		put(at("cpuset"), "cpuset.mems", "0\n");
		put(at("cpuset"), "cpuset.effective_cpus", "0-3\n");
		if (!fake_no_memsw)
			put(at("memory/sandbox/x"), "memory.memsw.limit_in_bytes", "max\n");
		src.self_cgroup = self_v1;
	}
	if (kind == FAKE_HYBRID) {
		mkdirs("unified");
		put(at("unified"), "cgroup.controllers", "hugetlb\n");
		put(at("unified"), "cgroup.subtree_control", "\n");
		n += snprintf(mountinfo + n, sizeof(mountinfo) - n,
			      "%d 24 0:%d / %s/unified rw shared:%d - cgroup2 cgroup2 rw\n", id, id,
			      root, id);
	}
	if (kind == FAKE_V2) {
		mkdirs("v2/yun.service");
		put(at("v2/yun.service"), "cgroup.controllers",
		    "cpuset cpu io memory hugetlb pids\n");
		/* already delegated below the service, as systemd's Delegate=yes does */
		put(at("v2/yun.service"), "cgroup.subtree_control", "cpuset cpu io memory pids\n");
		put(at("v2/yun.service"), "cpuset.cpus.effective", "0-3\n");
		n += snprintf(mountinfo + n, sizeof(mountinfo) - n,
			      "%d 24 0:%d / %s/v2 rw shared:%d - cgroup2 cgroup2 rw,nsdelegate\n",
			      id, id, root, id);
		src.self_cgroup = self_v2;
	}
	src.mountinfo = mountinfo;
	return src;
}

static void drop_fake(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	fake_missing = NULL;
	fake_no_memsw = false;
	fake_no_blkio_weight = false;
}

static struct cgroup_limits all_limits(void)
{
	struct cgroup_limits l = {
		.cpus = 0.5,
		.cpu_shares = 512,
		.cpuset = "1-2",
		.memory_bytes = 64 * MIB,
		.swap_bytes = 16 * MIB,
		.pids = 20,
		.blkio_weight = 500,
	};
	return l;
}

/* ---- probe ---- */

static void test_probe_v1(void)
{
	struct cgroup_probe_src src = make_fake(FAKE_V1);
	struct cgroup_host *h = NULL;
	struct yun_err err = { 0 };

	CHECK_EQ(cgroup_probe_from(root, &src, &h, &err), 0);
	if (!h) {
		fprintf(stderr, "  %s\n", err.msg);
		goto out;
	}
	CHECK_EQ(cgroup_host_layout(h), CGROUP_V1);
	CHECK(!strcmp(cgroup_layout_name(CGROUP_V1), "v1"));
	CHECK(!strcmp(cgroup_host_path(h, "memory"), at("memory/sandbox/x")));
	CHECK(!strcmp(cgroup_host_path(h, "cpu"), at("cpu,cpuacct")));
	CHECK(!strcmp(cgroup_host_path(h, "cpuacct"), at("cpu,cpuacct")));
	CHECK(!strcmp(cgroup_host_path(h, "pids"), at("pids")));
	CHECK(!strcmp(cgroup_host_path(h, "freezer"), at("freezer")));
	CHECK(cgroup_host_path(h, "unified") == NULL);
	CHECK(cgroup_host_path(h, "systemd") == NULL);
out:
	cgroup_host_free(h);
	drop_fake();
}

static void test_probe_v2(void)
{
	struct cgroup_probe_src src = make_fake(FAKE_V2);
	struct cgroup_host *h = NULL;
	struct yun_err err = { 0 };

	CHECK_EQ(cgroup_probe_from(root, &src, &h, &err), 0);
	if (!h) {
		fprintf(stderr, "  %s\n", err.msg);
		goto out;
	}
	CHECK_EQ(cgroup_host_layout(h), CGROUP_V2);
	CHECK(!strcmp(cgroup_host_path(h, "unified"), at("v2/yun.service")));
	CHECK(!strcmp(cgroup_host_path(h, "memory"), at("v2/yun.service")));
	CHECK(!strcmp(cgroup_host_path(h, "blkio"), at("v2/yun.service")));
	/* v2 freezes and filters devices without a controller of that name */
	CHECK(cgroup_host_path(h, "freezer") == NULL);
out:
	cgroup_host_free(h);
	drop_fake();
}

static void test_probe_hybrid(void)
{
	struct cgroup_probe_src src = make_fake(FAKE_HYBRID);
	struct cgroup_host *h = NULL;
	struct yun_err err = { 0 };

	CHECK_EQ(cgroup_probe_from(root, &src, &h, &err), 0);
	if (!h) {
		fprintf(stderr, "  %s\n", err.msg);
		goto out;
	}
	CHECK_EQ(cgroup_host_layout(h), CGROUP_HYBRID);
	CHECK(!strcmp(cgroup_layout_name(CGROUP_HYBRID), "hybrid"));
	CHECK(!strcmp(cgroup_host_path(h, "unified"), at("unified")));
	/* hugetlb-only v2: every limit lives in v1 */
	CHECK(!strcmp(cgroup_host_path(h, "memory"), at("memory/sandbox/x")));
	CHECK(!strcmp(cgroup_host_path(h, "cpu"), at("cpu,cpuacct")));
out:
	cgroup_host_free(h);
	drop_fake();
}

/* Inside a cgroup namespace the mount's root and our path share a prefix. */
static void test_probe_mount_root(void)
{
	struct cgroup_probe_src src = { .ncpus = 1, .mem_bytes = GIB };
	struct cgroup_host *h = NULL;
	struct yun_err err = { 0 };
	char mi[512];

	snprintf(root, sizeof(root), "/tmp/yun-cgroup-test.XXXXXX");
	if (!mkdtemp(root))
		abort();
	snprintf(mi, sizeof(mi),
		 "40 1 0:40 /sandbox %s/memory rw - cgroup cgroup rw,memory\n"
		 "41 1 0:41 /other %s/pids rw - cgroup cgroup rw,pids\n"
		 "42 1 0:42 / %s/my\\040cpu rw - cgroup cgroup rw,cpu\n",
		 root, root, root);
	src.mountinfo = mi;
	src.self_cgroup = "3:memory:/sandbox/x\n2:pids:/sandbox/x\n1:cpu:/a\n";
	CHECK_EQ(cgroup_probe_from(root, &src, &h, &err), 0);
	if (h) {
		CHECK(!strcmp(cgroup_host_path(h, "memory"), at("memory/x")));
		CHECK(!strcmp(cgroup_host_path(h, "pids"), at("pids")));
		CHECK(!strcmp(cgroup_host_path(h, "cpu"), at("my cpu/a")));
	}
	cgroup_host_free(h);
	h = NULL;

	/* nothing mounted under the root */
	src.mountinfo = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n";
	CHECK_EQ(cgroup_probe_from(root, &src, &h, &err), -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "no cgroup hierarchy is mounted there");
	CHECK(h == NULL);

	/* a hierarchy /proc/self/cgroup does not mention */
	src.mountinfo = mi;
	src.self_cgroup = "3:memory:/sandbox/x\n";
	CHECK_EQ(cgroup_probe_from(root, &src, &h, &err), -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "no entry in /proc/self/cgroup");
	drop_fake();
}

/* ---- create ---- */

static struct cgroup_host *probe_fake(struct cgroup_probe_src *src)
{
	struct cgroup_host *h = NULL;
	struct yun_err err = { 0 };

	if (cgroup_probe_from(root, src, &h, &err) < 0)
		fprintf(stderr, "  probe: %s\n", err.msg);
	return h;
}

static void check_procs_have(const char *dir, const char *pid)
{
	CHECK(!strcmp(get(dir, "cgroup.procs"), pid));
}

static void test_create_v1(bool hybrid)
{
	struct cgroup_probe_src src = make_fake(hybrid ? FAKE_HYBRID : FAKE_V1);
	struct cgroup_host *h = probe_fake(&src);
	struct cgroup_limits l = all_limits();
	struct cgroup *cg = NULL, *again = NULL;
	struct yun_err err = { 0 };
	int rc;

	if (!h)
		goto out;
	rc = cgroup_create(h, "c1", &l, &cg, &err);
	CHECK_EQ(rc, 0);
	if (rc < 0) {
		fprintf(stderr, "  %s\n", err.msg);
		goto out;
	}
	CHECK(!strcmp(cgroup_path(cg, "memory"), at("memory/sandbox/x/yun/c1")));
	CHECK(!strcmp(get(at("cpu,cpuacct/yun/c1"), "cpu.cfs_period_us"), "100000"));
	CHECK(!strcmp(get(at("cpu,cpuacct/yun/c1"), "cpu.cfs_quota_us"), "50000"));
	CHECK(!strcmp(get(at("cpu,cpuacct/yun/c1"), "cpu.shares"), "512"));
	/* cpuset: the parent "yun" inherits the caller's, the container gets its own */
	CHECK(!strcmp(get(at("cpuset/yun"), "cpuset.cpus"), "0-3"));
	CHECK(!strcmp(get(at("cpuset/yun"), "cpuset.mems"), "0"));
	CHECK(!strcmp(get(at("cpuset/yun/c1"), "cpuset.cpus"), "1-2"));
	CHECK(!strcmp(get(at("cpuset/yun/c1"), "cpuset.mems"), "0"));
	CHECK(!strcmp(get(at("memory/sandbox/x/yun/c1"), "memory.limit_in_bytes"), "67108864"));
	/* v1 counts memory + swap */
	CHECK(!strcmp(get(at("memory/sandbox/x/yun/c1"), "memory.memsw.limit_in_bytes"),
		      "83886080"));
	CHECK(!strcmp(get(at("pids/yun/c1"), "pids.max"), "20"));
	CHECK(!strcmp(get(at("blkio/yun/c1"), "blkio.bfq.weight"), "500"));
	CHECK(exists("%s/freezer/yun/c1", root, ""));
	CHECK(exists("%s/devices/yun/c1", root, ""));
	CHECK(!exists("%s/systemd/yun", root, ""));
	CHECK(exists("%s/unified/yun/c1", root, "") == hybrid);

	CHECK_EQ(cgroup_enter(cg, 4242, &err), 0);
	check_procs_have(at("memory/sandbox/x/yun/c1"), "4242");
	check_procs_have(at("cpuset/yun/c1"), "4242");
	check_procs_have(at("freezer/yun/c1"), "4242");
	if (hybrid)
		check_procs_have(at("unified/yun/c1"), "4242");
	CHECK(!cgroup_oom_killed(cg));
	put(at("memory/sandbox/x/yun/c1"), "memory.oom_control",
	    "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
	CHECK(cgroup_oom_killed(cg));

	/* the name is taken; the existing one can be opened */
	CHECK_EQ(cgroup_create(h, "c1", &l, &again, &err), -EEXIST);
	CHECK_STR_CONTAINS(err.msg, "already exists");
	CHECK(exists("%s/pids/yun/c1", root, ""));
	CHECK_EQ(cgroup_open(h, "c1", &again, &err), 0);
	if (again)
		CHECK(!strcmp(cgroup_path(again, "pids"), at("pids/yun/c1")));
	cgroup_close(again);
	CHECK_EQ(cgroup_open(h, "c2", &again, &err), -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "container c2");

	/* destroy removes the directory in every hierarchy (our fake rmdir is cgroupfs') */
	put(at("pids/yun/c1"), "cgroup.procs", "");
	CHECK_EQ(cgroup_destroy(cg, &err), 0);
	cg = NULL;
	CHECK(!exists("%s/memory/sandbox/x/yun/c1", root, ""));
	CHECK(!exists("%s/cpuset/yun/c1", root, ""));
	CHECK(!exists("%s/unified/yun/c1", root, ""));
	CHECK(exists("%s/cpuset/yun", root, ""));
out:
	cgroup_close(cg);
	cgroup_host_free(h);
	drop_fake();
}

static void test_create_v1_only(void)
{
	test_create_v1(false);
}

static void test_create_hybrid(void)
{
	test_create_v1(true);
}

static void test_create_v2(void)
{
	struct cgroup_probe_src src = make_fake(FAKE_V2);
	struct cgroup_host *h = probe_fake(&src);
	struct cgroup_limits l = all_limits();
	struct yun_err err = { 0 };
	struct cgroup *cg = NULL;
	const char *dir = at("v2/yun.service/yun/c1");
	struct cgroup_stats st;
	int rc;

	if (!h)
		goto out;
	rc = cgroup_create(h, "c1", &l, &cg, &err);
	CHECK_EQ(rc, 0);
	if (rc < 0) {
		fprintf(stderr, "  %s\n", err.msg);
		goto out;
	}
	dir = cgroup_path(cg, "unified");
	CHECK(!strcmp(dir, at("v2/yun.service/yun/c1")));
	CHECK(!strcmp(get(dir, "cpu.max"), "50000 100000"));
	/* shares 512 -> weight 1 + (510 * 9999) / 262142 */
	CHECK(!strcmp(get(dir, "cpu.weight"), "20"));
	CHECK(!strcmp(get(dir, "cpuset.cpus"), "1-2"));
	CHECK(!strcmp(get(dir, "memory.max"), "67108864"));
	/* v2 counts swap alone */
	CHECK(!strcmp(get(dir, "memory.swap.max"), "16777216"));
	CHECK(!strcmp(get(dir, "pids.max"), "20"));
	/* blkio 500 on 10..1000 -> io.weight 1 + 490 * 9999 / 990 on 1..10000 */
	CHECK(!strcmp(get(dir, "io.weight"), "default 4950"));
	/* the caller's cgroup was already delegated, "yun" got the controllers enabled */
	CHECK(!strcmp(get(at("v2/yun.service"), "cgroup.subtree_control"),
		      "cpuset cpu io memory pids"));
	CHECK(get(at("v2/yun.service/yun"), "cgroup.subtree_control")[0] == '+');

	put(dir, "memory.events", "low 0\nhigh 3\nmax 9\noom 1\noom_kill 2\n");
	CHECK(cgroup_oom_killed(cg));
	put(dir, "memory.current", "12345\n");
	put(dir, "cpu.stat", "usage_usec 7\nuser_usec 5\n");
	put(dir, "pids.current", "3\n");
	CHECK_EQ(cgroup_stats(cg, &st, &err), 0);
	CHECK_EQ(st.memory_bytes, 12345);
	CHECK_EQ(st.cpu_usage_ns, 7000);
	CHECK_EQ(st.pids, 3);
out:
	cgroup_close(cg);
	cgroup_host_free(h);
	drop_fake();
}

/* Nothing under any hierarchy's "yun" (and no "yun" this create made). */
static const char *const yun_dirs[] = { "cpu,cpuacct/yun", "cpuset/yun", "memory/sandbox/x/yun",
					"pids/yun",        "blkio/yun",  "freezer/yun",
					"devices/yun",     "unified/yun", "v2/yun.service/yun" };

static void check_nothing_left(const char *what)
{
	for (size_t i = 0; i < sizeof(yun_dirs) / sizeof(yun_dirs[0]); i++)
		if (exists("%s/%s", root, yun_dirs[i])) {
			fprintf(stderr, "  %s: %s/%s left behind\n", what, root, yun_dirs[i]);
			check_failures++;
		}
}

/* "yun" stays after a destroy; take it away by hand. */
static void remove_yun_dirs(void)
{
	for (size_t i = 0; i < sizeof(yun_dirs) / sizeof(yun_dirs[0]); i++)
		if (exists("%s/%s", root, yun_dirs[i]))
			CHECK_EQ(fake_rmdir(at(yun_dirs[i])), 0);
}

static void test_create_failure_leaves_nothing(void)
{
	static const char *const fail_at[] = { "pids.max", "memory.limit_in_bytes",
					       "cpuset.mems", "cgroup.procs" };
	struct cgroup_limits l = all_limits();

	for (int kind = FAKE_V1; kind <= FAKE_HYBRID; kind++) {
		for (size_t i = 0; i < sizeof(fail_at) / sizeof(fail_at[0]); i++) {
			struct cgroup_probe_src src = make_fake(kind);
			struct cgroup_host *h = probe_fake(&src);
			struct cgroup *cg = NULL;
			struct yun_err err = { 0 };
			int rc;

			if (!h) {
				drop_fake();
				continue;
			}
			fake_missing = fail_at[i];
			rc = cgroup_create(h, "c1", &l, &cg, &err);
			if (!strcmp(fail_at[i], "cgroup.procs")) {
				/* created fine; entering fails, destroy cleans up */
				CHECK_EQ(rc, 0);
				CHECK(cgroup_enter(cg, 1, &err) < 0);
				CHECK_STR_CONTAINS(err.msg, "cgroup.procs");
			} else if (kind == FAKE_V2 && strcmp(fail_at[i], "pids.max")) {
				CHECK_EQ(rc, 0); /* a v1 file, not used on v2 */
			} else {
				CHECK(rc < 0);
				CHECK(cg == NULL);
				CHECK_STR_CONTAINS(err.msg, fail_at[i]);
			}
			if (cg) {
				CHECK_EQ(cgroup_destroy(cg, &err), 0);
				cg = NULL;
				remove_yun_dirs();
			}
			check_nothing_left(fail_at[i]);
			cgroup_close(cg);
			cgroup_host_free(h);
			drop_fake();
		}
	}
}

/* ---- validation ---- */

static void expect_invalid(struct cgroup_host *h, struct cgroup_limits l, const char *msg)
{
	struct yun_err err = { 0 };
	struct cgroup *cg = NULL;

	CHECK(cgroup_limits_validate(h, &l, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, msg);
	/* create refuses the same way and makes nothing */
	CHECK(cgroup_create(h, "bad", &l, &cg, &err) < 0);
	CHECK(cg == NULL);
	CHECK_STR_CONTAINS(err.msg, msg);
	check_nothing_left(msg);
}

static void test_validation(void)
{
	struct cgroup_probe_src src = make_fake(FAKE_HYBRID);
	struct cgroup_host *h = probe_fake(&src);
	struct cgroup_limits ok = all_limits(), l;
	struct yun_err err = { 0 };
	struct cgroup *cg = NULL;

	if (!h)
		goto out;
	CHECK_EQ(cgroup_limits_validate(h, &ok, &err), 0);
	l = ok, l.cpus = -1;
	expect_invalid(h, l, "cpus -1: must be a positive");
	l = ok, l.cpus = 0.001;
	expect_invalid(h, l, "cpus 0.001: below the minimum");
	l = ok, l.cpus = 64;
	expect_invalid(h, l, "cpus 64: more than the host's 4 CPUs");
	l = ok, l.cpu_shares = 1;
	expect_invalid(h, l, "cpu shares 1: outside 2..262144");
	l = ok, l.cpu_shares = (uint64_t)-5;
	expect_invalid(h, l, "cpu shares 18446744073709551611");
	l = ok, snprintf(l.cpuset, sizeof(l.cpuset), "0-");
	expect_invalid(h, l, "cpuset \"0-\": not a CPU list");
	l = ok, snprintf(l.cpuset, sizeof(l.cpuset), "2,7");
	expect_invalid(h, l, "cpuset \"2,7\": CPU 7 is not available (the host offers 0-3)");
	l = ok, l.memory_bytes = 1000;
	expect_invalid(h, l, "memory 1000 bytes: below the minimum of 1 MiB");
	l = ok, l.memory_bytes = 40 * GIB;
	expect_invalid(h, l, "memory 42949672960 bytes: more than 4 times the host's RAM");
	l = ok, l.memory_bytes = (uint64_t)-1;
	expect_invalid(h, l, "memory 18446744073709551615 bytes");
	l = ok, l.swap_bytes = -2;
	expect_invalid(h, l, "swap -2 bytes: must be -1");
	l = ok, l.memory_bytes = 0;
	expect_invalid(h, l, "swap 16777216 bytes: needs a memory limit");
	l = ok, l.pids = 5000000;
	expect_invalid(h, l, "pids 5000000: more than the kernel's limit");
	l = ok, l.blkio_weight = 5;
	expect_invalid(h, l, "blkio weight 5: outside 10..1000");
	l = ok, l.blkio_weight = 2000;
	expect_invalid(h, l, "blkio weight 2000");

	CHECK_EQ(cgroup_create(h, "../evil", &ok, &cg, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "container name \"../evil\"");
	CHECK_EQ(cgroup_create(h, "", &ok, &cg, &err), -EINVAL);
	CHECK_EQ(cgroup_create(h, ".hidden", &ok, &cg, &err), -EINVAL);
	check_nothing_left("bad names");
out:
	cgroup_host_free(h);
	drop_fake();

	/* a controller the host lacks */
	src = make_fake(FAKE_V2);
	put(at("v2/yun.service"), "cgroup.controllers", "cpu memory\n");
	h = probe_fake(&src);
	if (h) {
		l = ok;
		expect_invalid(h, l, "cpuset: this host has no cpuset controller");
		l.cpuset[0] = '\0';
		expect_invalid(h, l, "pids: this host has no pids controller");
		l.pids = 0;
		expect_invalid(h, l, "blkio weight: this host has no io controller");
		l = (struct cgroup_limits){ .memory_bytes = 64 * MIB, .cpus = 1 };
		CHECK_EQ(cgroup_limits_validate(h, &l, &err), 0);
	}
	cgroup_host_free(h);
	drop_fake();
}

static void test_swap_and_blkio_support(void)
{
	struct cgroup_limits l = all_limits();
	struct cgroup_probe_src src;
	struct yun_err err = { 0 };
	struct cgroup_host *h;
	struct cgroup *cg = NULL;

	/* no swap accounting: asking for swap is an error, the default "none" is skipped */
	for (int kind = FAKE_V1; kind <= FAKE_V2; kind++) {
		fake_no_memsw = true;
		src = make_fake(kind);
		h = probe_fake(&src);
		if (!h) {
			drop_fake();
			continue;
		}
		CHECK_EQ(cgroup_create(h, "c1", &l, &cg, &err), -ENOTSUP);
		CHECK_STR_CONTAINS(err.msg,
				   "swap 16777216 bytes: this host has no swap accounting");
		check_nothing_left("swap");
		l.swap_bytes = 0;
		CHECK_EQ(cgroup_create(h, "c1", &l, &cg, &err), 0);
		if (cg)
			CHECK(!strcmp(get(cgroup_path(cg, "memory"), kind == FAKE_V1
									  ? "memory.limit_in_bytes"
									  : "memory.max"),
				      "67108864"));
		cgroup_close(cg);
		cg = NULL;
		l.swap_bytes = 16 * MIB;
		cgroup_host_free(h);
		drop_fake();
	}

	/* -1 leaves swap unlimited */
	src = make_fake(FAKE_V1);
	h = probe_fake(&src);
	l.swap_bytes = -1;
	if (h && cgroup_create(h, "c1", &l, &cg, &err) == 0) {
		CHECK(!strcmp(get(cgroup_path(cg, "memory"), "memory.memsw.limit_in_bytes"),
			      "9223372036854771712"));
		cgroup_close(cg);
		cg = NULL;
	} else {
		check_failures++;
	}
	l.swap_bytes = 16 * MIB;
	cgroup_host_free(h);
	drop_fake();

	/* no I/O weight anywhere: an error only when a weight is asked for */
	fake_no_blkio_weight = true;
	src = make_fake(FAKE_HYBRID);
	h = probe_fake(&src);
	if (h) {
		CHECK_EQ(cgroup_create(h, "c1", &l, &cg, &err), -ENOTSUP);
		CHECK_STR_CONTAINS(err.msg,
				   "blkio weight 500: not supported by this host's I/O scheduler");
		check_nothing_left("blkio");
		l.blkio_weight = 0;
		CHECK_EQ(cgroup_create(h, "c1", &l, &cg, &err), 0);
		cgroup_close(cg);
	}
	cgroup_host_free(h);
	drop_fake();
}

/* ---- on this host, for real ---- */

static bool real_ok(void)
{
	if (geteuid() != 0 || access("/sys/fs/cgroup", F_OK) != 0) {
		printf("skip: real cgroup tests need root and /sys/fs/cgroup\n");
		return false;
	}
	return true;
}

static const char *real_file(struct cgroup *cg, const char *ctrl, const char *v1, const char *v2)
{
	const char *dir = cgroup_path(cg, ctrl);
	const char *unified = cgroup_path(cg, "unified");

	if (!dir)
		return "(no controller)";
	return get(dir, unified && !strcmp(dir, unified) ? v2 : v1);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A child that, once let go, forks `extra` sleepers and sleeps itself. */
static pid_t spawn_family(int *go_fd, int extra)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char c;

		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(1);
		/* memory charged to the container (pages do not follow a moved task on v1) */
		volatile char *mem = malloc(4 * MIB);

		for (size_t i = 0; mem && i < 4 * MIB; i += 4096)
			mem[i] = 1;
		for (int i = 0; i < extra; i++)
			if (fork() == 0)
				for (;;)
					pause();
		for (;;)
			pause();
	}
	close(p[0]);
	*go_fd = p[1];
	return pid;
}

static void real_cycle(struct cgroup_host *h, const char *label)
{
	struct cgroup_limits l = { .cpus = 0.5, .memory_bytes = 64 * MIB, .pids = 20 };
	char name[64], paths[16][512], procfile[64], buf[4096];
	struct yun_err err = { 0 };
	struct cgroup *cg = NULL;
	struct cgroup_stats st;
	int npaths = 0, go, status, rc;
	const char *ctrls[] = { "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer",
				"devices", "unified" };
	pid_t pid;
	int64_t end;
	FILE *f;
	size_t n;

	snprintf(name, sizeof(name), "unit-%s-%d", label, (int)getpid());
	rc = cgroup_create(h, name, &l, &cg, &err);
	CHECK_EQ(rc, 0);
	if (rc < 0) {
		fprintf(stderr, "  %s: %s\n", label, err.msg);
		return;
	}
	for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
		const char *p = cgroup_path(cg, ctrls[i]);

		if (p && npaths < 16)
			snprintf(paths[npaths++], sizeof(paths[0]), "%s", p);
	}
	CHECK(!strcmp(real_file(cg, "memory", "memory.limit_in_bytes", "memory.max"), "67108864"));
	CHECK(!strcmp(real_file(cg, "pids", "pids.max", "pids.max"), "20"));
	CHECK(!strcmp(real_file(cg, "cpu", "cpu.cfs_quota_us", "cpu.max"),
		      cgroup_path(cg, "cpu") == cgroup_path(cg, "unified") ? "50000 100000"
									 : "50000"));

	CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	pid = spawn_family(&go, 3);
	CHECK(pid > 0);
	if (pid <= 0)
		goto out;
	CHECK_EQ(cgroup_enter(cg, pid, &err), 0);
	if (write(go, "x", 1) != 1)
		check_failures++;
	close(go);
	/* its /proc/PID/cgroup names the container in the memory hierarchy */
	snprintf(procfile, sizeof(procfile), "/proc/%d/cgroup", (int)pid);
	f = fopen(procfile, "r");
	n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	CHECK_STR_CONTAINS(buf, name);
	end = now_ms() + 2000;
	do {
		CHECK_EQ(cgroup_stats(cg, &st, &err), 0);
	} while (st.pids < 4 && now_ms() < end);
	CHECK_EQ(st.pids, 4);
	/* read again: the memory counter may have been read before the pids one got to 4 */
	CHECK_EQ(cgroup_stats(cg, &st, &err), 0);
	CHECK(st.memory_bytes >= 4 * MIB);

	rc = cgroup_kill_all(cg, &err);
	CHECK_EQ(rc, 0);
	if (rc < 0)
		fprintf(stderr, "  %s: %s\n", label, err.msg);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* we are their subreaper: pids.current drops once the orphans are reaped */
	while (waitpid(-1, &status, 0) > 0)
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_EQ(cgroup_stats(cg, &st, &err), 0);
	CHECK_EQ(st.pids, 0);
	CHECK(!cgroup_oom_killed(cg));
out:
	rc = cgroup_destroy(cg, &err);
	CHECK_EQ(rc, 0);
	if (rc < 0)
		fprintf(stderr, "  %s: %s\n", label, err.msg);
	for (int i = 0; i < npaths; i++)
		if (access(paths[i], F_OK) == 0) {
			fprintf(stderr, "  %s: %s left behind\n", label, paths[i]);
			check_failures++;
		}
}

static void test_real_host(void)
{
	struct cgroup_host *h = NULL;
	struct yun_err err = { 0 };

	if (!real_ok())
		return;
	CHECK_EQ(cgroup_probe("/sys/fs/cgroup", &h, &err), 0);
	if (!h) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	printf("host cgroup layout: %s\n", cgroup_layout_name(cgroup_host_layout(h)));
	real_cycle(h, cgroup_layout_name(cgroup_host_layout(h)));
	cgroup_host_free(h);
}

/* The same host seen as pure v1 (its cgroup2 mount hidden): the freezer kill path. */
static void test_real_host_as_v1(void)
{
	struct cgroup_probe_src src = { 0 };
	struct cgroup_host *h = NULL;
	struct yun_err err = { 0 };
	static char mi[65536], self[4096];
	char line[1024];
	size_t n = 0;
	FILE *f;

	if (!real_ok())
		return;
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strstr(line, " - cgroup2 ") && n + strlen(line) < sizeof(mi))
			n += snprintf(mi + n, sizeof(mi) - n, "%s", line);
	fclose(f);
	f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return;
	self[fread(self, 1, sizeof(self) - 1, f)] = '\0';
	fclose(f);
	src.mountinfo = mi;
	src.self_cgroup = self;
	if (cgroup_probe_from("/sys/fs/cgroup", &src, &h, &err) < 0) {
		printf("skip: no v1 hierarchy on this host (%s)\n", err.msg);
		return;
	}
	CHECK_EQ(cgroup_host_layout(h), CGROUP_V1);
	if (cgroup_host_path(h, "freezer"))
		real_cycle(h, "v1");
	else
		printf("skip: no v1 freezer on this host\n");
	cgroup_host_free(h);
}

/* A memory hog over its limit is OOM-killed, and the cgroup says so. */
static void test_real_oom(void)
{
	struct cgroup_limits l = { .memory_bytes = 32 * MIB, .swap_bytes = 0 };
	struct cgroup_host *h = NULL;
	struct yun_err err = { 0 };
	struct cgroup *cg = NULL;
	char name[64];
	int go, status, p[2];
	pid_t pid;

	if (!real_ok())
		return;
	if (cgroup_probe("/sys/fs/cgroup", &h, &err) < 0 || !cgroup_host_path(h, "memory")) {
		printf("skip: no memory controller\n");
		cgroup_host_free(h);
		return;
	}
	snprintf(name, sizeof(name), "unit-oom-%d", (int)getpid());
	CHECK_EQ(cgroup_create(h, name, &l, &cg, &err), 0);
	if (!cg) {
		fprintf(stderr, "  %s\n", err.msg);
		goto out;
	}
	if (pipe(p) < 0)
		goto out;
	pid = fork();
	if (pid == 0) {
		char c;

		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(1);
		for (size_t total = 0; total < 256 * MIB; total += MIB) {
			char *m = malloc(MIB);

			if (!m)
				_exit(2);
			memset(m, 1, MIB);
		}
		_exit(0);
	}
	close(p[0]);
	go = p[1];
	CHECK(!cgroup_oom_killed(cg));
	CHECK_EQ(cgroup_enter(cg, pid, &err), 0);
	if (write(go, "x", 1) != 1)
		check_failures++;
	close(go);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK(cgroup_oom_killed(cg));
	CHECK_EQ(cgroup_kill_all(cg, &err), 0);
out:
	CHECK_EQ(cgroup_destroy(cg, &err), 0);
	cgroup_host_free(h);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	RUN(test_probe_v1);
	RUN(test_probe_v2);
	RUN(test_probe_hybrid);
	RUN(test_probe_mount_root);
	RUN(test_create_v1_only);
	RUN(test_create_hybrid);
	RUN(test_create_v2);
	RUN(test_create_failure_leaves_nothing);
	RUN(test_validation);
	RUN(test_swap_and_blkio_support);
	RUN(test_real_host);
	RUN(test_real_host_as_v1);
	RUN(test_real_oom);
	return CHECK_DONE();
}
