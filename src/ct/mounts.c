/* mounts.c - see mounts.h. */
#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "state.h"

const char *const ct_masked_paths[] = {
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/interrupts",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    NULL,
};

const char *const ct_readonly_paths[] = {
    "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static const char *const denied_sources[] = {
    "/",     "/bin",  "/boot", "/dev",	"/etc", "/lib", "/lib32",	"/lib64", "/libx32",
    "/proc", "/root", "/run",  "/sbin", "/sys", "/usr", "/var/lib/yun", NULL,
};

/* Device nodes bound from the host's /dev (the /dev tmpfs itself is nodev). */
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

bool ct_path_is_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	while (n > 1 && prefix[n - 1] == '/')
		n--;
	if (n == 1 && prefix[0] == '/')
		return path[0] == '/';
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

/* `a` and `b` overlap: one is the other or below it. */
static bool paths_overlap(const char *a, const char *b)
{
	return ct_path_is_under(a, b) || ct_path_is_under(b, a);
}

int ct_mounts_source_allowed(const char *canon, const char *state_root, const char *allow,
			     struct yun_err *err)
{
	for (const char *const *d = denied_sources; *d; d++) {
		/* "/" itself is refused; everything is below it. */
		if (!strcmp(*d, "/") ? !strcmp(canon, "/") : paths_overlap(canon, *d))
			return yun_err_set(err, EPERM,
					   "mount source %s: %s system path %s, which cannot be "
					   "mounted into a container",
					   canon,
					   ct_path_is_under(canon, *d) ? "is or is inside the"
								       : "contains the",
					   *d);
	}
	if (state_root && paths_overlap(canon, state_root))
		return yun_err_set(err, EPERM,
				   "mount source %s: overlaps yun-ct's state directory %s", canon,
				   state_root);
	if (allow && *allow) {
		char buf[PATH_MAX];
		char *save, *p;

		snprintf(buf, sizeof(buf), "%s", allow);
		for (p = strtok_r(buf, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
			if (p[0] == '/' && ct_path_is_under(canon, p))
				return 0;
		}
		return yun_err_set(err, EPERM,
				   "mount source %s: not below an allowed prefix "
				   "(YUN_CT_MOUNT_ALLOW=%s)",
				   canon, allow);
	}
	return 0;
}

int ct_mounts_check_source(const char *src, char **canon, struct yun_err *err)
{
	char *real, *state_real;
	const char *state_root = ct_state_root();
	int rc;

	real = realpath(src, NULL);
	if (!real)
		return yun_err_errno(err, errno, "mount source %s", src);
	/* The state root may not exist yet; compare its canonical form when it does. */
	state_real = realpath(state_root, NULL);
	rc = ct_mounts_source_allowed(real, state_real ? state_real : state_root,
				      getenv("YUN_CT_MOUNT_ALLOW"), err);
	free(state_real);
	if (rc) {
		free(real);
		return rc;
	}
	*canon = real;
	return 0;
}

static int openat2_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (unsigned long long)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

int ct_mounts_find_command(const char *rootfs, const char *cmd, char *const *env, char *found,
			   size_t found_len, struct yun_err *err)
{
	const char *path = CT_DEFAULT_PATH;
	char buf[PATH_MAX], cand[PATH_MAX];
	bool not_exec = false;
	char *save, *dir;
	int rootfd, rc = -ENOENT;

	for (char *const *e = env; e && *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return yun_err_errno(err, errno, "rootfs %s", rootfs);
	if (strchr(cmd, '/'))
		snprintf(buf, sizeof(buf), "%s", "/");
	else
		snprintf(buf, sizeof(buf), "%s", path);
	for (dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		struct stat st;
		int fd;

		if (strchr(cmd, '/'))
			snprintf(cand, sizeof(cand), "%s%s", cmd[0] == '/' ? "" : "/", cmd);
		else
			snprintf(cand, sizeof(cand), "%s/%s", dir, cmd);
		fd = openat2_in_root(rootfd, cand, O_PATH);
		if (fd < 0)
			continue;
		rc = fstat(fd, &st);
		close(fd);
		if (rc < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
			not_exec = true;
			rc = -EACCES;
			continue;
		}
		if (found)
			snprintf(found, found_len, "%s", cand);
		close(rootfd);
		return 0;
	}
	close(rootfd);
	if (not_exec)
		return yun_err_set(err, EACCES, "command %s: not an executable file in rootfs %s",
				   cmd, rootfs);
	if (strchr(cmd, '/'))
		return yun_err_set(err, ENOENT, "command %s: not found in rootfs %s", cmd, rootfs);
	return yun_err_set(err, ENOENT, "command %s: not found in rootfs %s (PATH=%s)", cmd, rootfs,
			   path);
}

int ct_mounts_open_in_root(int rootfd, const char *path, enum ct_create create, int flags,
			   struct yun_err *err)
{
	char prefix[PATH_MAX];
	size_t len = strlen(path), i = 0;
	int fd;

	if (len >= sizeof(prefix))
		return yun_err_set(err, ENAMETOOLONG, "path %s: too long", path);
	fd = openat2_in_root(rootfd, path, flags);
	if (fd >= 0 || fd != -ENOENT || create == CT_CREATE_NONE) {
		if (fd < 0)
			return yun_err_errno(err, -fd, "container path %s", path);
		return fd;
	}
	/* Create what is missing, one component at a time, each resolved in the root. */
	while (i < len) {
		bool last;
		int dfd, r;
		char *slash;

		while (path[i] == '/')
			i++;
		if (i >= len)
			break;
		slash = strchr(path + i, '/');
		i = slash ? (size_t)(slash - path) : len;
		last = path[i] == '\0' || strspn(path + i, "/") == len - i;
		memcpy(prefix, path, i);
		prefix[i] = '\0';
		fd = openat2_in_root(rootfd, prefix, O_PATH);
		if (fd >= 0) {
			close(fd);
			continue;
		}
		if (fd != -ENOENT)
			return yun_err_errno(err, -fd, "container path %s", prefix);
		/* The parent exists (resolved above); create the component in it. */
		{
			char *cut = strrchr(prefix, '/');
			const char *name = cut ? cut + 1 : prefix;
			char parent[PATH_MAX];

			snprintf(parent, sizeof(parent), "%.*s", (int)(cut ? cut - prefix : 0),
				 prefix);
			dfd = openat2_in_root(rootfd, parent, O_PATH | O_DIRECTORY);
			if (dfd < 0)
				return yun_err_errno(err, -dfd, "container path %s", parent);
			if (last && create == CT_CREATE_FILE) {
				r = openat(dfd, name,
					   O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
					   0644);
				if (r >= 0)
					close(r);
			} else {
				r = mkdirat(dfd, name, 0755);
			}
			if (r < 0 && errno != EEXIST) {
				r = errno;
				close(dfd);
				return yun_err_errno(err, r, "container path %s: create", prefix);
			}
			close(dfd);
		}
	}
	fd = openat2_in_root(rootfd, path, flags);
	if (fd < 0)
		return yun_err_errno(err, -fd, "container path %s", path);
	return fd;
}

/* ---- container side ---- */

static int mnt(const char *src, const char *dst, const char *type, unsigned long flags,
	       const char *data, struct yun_err *err)
{
	if (mount(src, dst, type, flags, data) < 0)
		return yun_err_errno(err, errno, "mount %s on %s (%s)", src ? src : "none", dst,
				     type ? type : "bind");
	return 0;
}

/* The flags a bind remount must keep (the kernel refuses to drop locked ones). */
static unsigned long kept_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int remount_bind(const char *path, unsigned long add, struct yun_err *err)
{
	return mnt(NULL, path, NULL, MS_BIND | MS_REMOUNT | kept_flags(path) | add, NULL, err);
}

static int make_dir(const char *target, const char *sub, char *out, size_t len, struct yun_err *err)
{
	snprintf(out, len, "%s%s", target, sub);
	if (mkdir(out, 0755) < 0 && errno != EEXIST)
		return yun_err_errno(err, errno, "mkdir %s", out);
	return 0;
}

static int make_file(const char *path, struct yun_err *err)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);

	if (fd < 0)
		return yun_err_errno(err, errno, "create %s", path);
	close(fd);
	return 0;
}

static int setup_root(const struct ct_mounts_plan *p, struct yun_err *err)
{
	const char *lower = p->lower;
	char opts[3 * PATH_MAX + 64];
	int rc;

	if (p->lower_fd >= 0) {
		const char *at = p->overlay ? p->lower_at : p->target;

		if (move_mount(p->lower_fd, "", AT_FDCWD, at, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return yun_err_errno(err, errno, "attach the idmapped rootfs at %s", at);
		if (!p->overlay)
			return remount_bind(p->target, MS_NODEV, err);
		lower = p->lower_at;
	}
	if (p->overlay) {
		snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, p->upper,
			 p->work);
		if (mount("overlay", p->target, "overlay", MS_NODEV, opts) < 0)
			return yun_err_errno(err, errno, "overlay rootfs on %s (lowerdir %s)",
					     p->target, p->lower);
		return 0;
	}
	rc = mnt(lower, p->target, NULL, MS_BIND | MS_REC, NULL, err);
	if (!rc)
		rc = remount_bind(p->target, MS_NODEV, err);
	return rc;
}

/* Read-only (and nosuid, nodev, noexec) for a whole tree of mounts at `path`. */
static int make_tree_readonly(const char *path, struct yun_err *err)
{
	struct mount_attr attr = {
	    .attr_set =
		MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
	};

	if (mount_setattr(AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		return yun_err_errno(err, errno, "make %s read-only", path);
	return 0;
}

/*
 * The container's cgroup tree at /sys/fs/cgroup: a cgroup2 mount, whose
 * root is the container's own cgroup (its cgroup namespace). Read-only
 * unless the cgroup was delegated to the container's root (--userns):
 * root without a user namespace could otherwise raise its own limits.
 */
static int setup_cgroupfs(const struct ct_mounts_plan *p, const char *sys, struct yun_err *err)
{
	unsigned long ro = p->cgroup_rw ? 0 : MS_RDONLY;
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/fs/cgroup", sys);
	if (access(path, F_OK) < 0)
		return 0;
	if (mount("cgroup2", path, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, NULL) == 0)
		return 0;
	/* No cgroup2 here: at least hide whatever a bind of the host's /sys shows. */
	return mnt("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0",
		   err);
}

static int setup_sys(const struct ct_mounts_plan *p, struct yun_err *err)
{
	char path[PATH_MAX];
	int rc;

	rc = make_dir(p->target, "/sys", path, sizeof(path), err);
	if (rc)
		return rc;
	/* A fresh sysfs shows the container's own network devices; it needs an owned net ns. */
	if (p->own_netns &&
	    mount("sysfs", path, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0)
		return setup_cgroupfs(p, path, err);
	/* The host's /sys, with everything mounted below it, read-only. */
	rc = mnt("/sys", path, NULL, MS_BIND | MS_REC, NULL, err);
	if (!rc)
		rc = make_tree_readonly(path, err);
	if (!rc)
		rc = setup_cgroupfs(p, path, err);
	return rc;
}

/* /run as on a booted machine: an empty tmpfs, with /run/lock (systemd expects both). */
static int setup_run(const struct ct_mounts_plan *p, struct yun_err *err)
{
	char path[PATH_MAX], lock[PATH_MAX + 8];
	int rc;

	rc = make_dir(p->target, "/run", path, sizeof(path), err);
	if (!rc)
		rc = mnt("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=65536k", err);
	if (rc)
		return rc;
	snprintf(lock, sizeof(lock), "%s/lock", path);
	if (mkdir(lock, 01777) < 0 && errno != EEXIST)
		return yun_err_errno(err, errno, "mkdir %s", lock);
	return mnt("tmpfs", lock, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=5120k",
		   err);
}

static int setup_dev(const struct ct_mounts_plan *p, struct yun_err *err)
{
	static const struct {
		const char *path, *to;
	} links[] = {
	    {"/dev/fd", "/proc/self/fd"},	{"/dev/stdin", "/proc/self/fd/0"},
	    {"/dev/stdout", "/proc/self/fd/1"}, {"/dev/stderr", "/proc/self/fd/2"},
	    {"/dev/ptmx", "pts/ptmx"},
	};
	char dev[PATH_MAX], path[PATH_MAX + 64], host[64];
	int rc;

	rc = make_dir(p->target, "/dev", dev, sizeof(dev), err);
	if (rc)
		return rc;
	/* nodev: device nodes made inside the container do not open (see docs/ct.md). */
	rc = mnt("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME,
		 "mode=755,size=65536k", err);
	if (rc)
		return rc;
	for (const char *const *n = dev_nodes; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", dev, *n);
		snprintf(host, sizeof(host), "/dev/%s", *n);
		rc = make_file(path, err);
		if (!rc)
			rc = mnt(host, path, NULL, MS_BIND, NULL, err);
		if (rc)
			return rc;
	}
	rc = make_dir(p->target, "/dev/pts", path, sizeof(path), err);
	if (rc)
		return rc;
	rc = mnt("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC,
		 p->devpts_gid5 ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
				: "newinstance,ptmxmode=0666,mode=0620",
		 err);
	if (rc)
		return rc;
	rc = make_dir(p->target, "/dev/shm", path, sizeof(path), err);
	if (!rc)
		rc = mnt("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			 "mode=1777,size=65536k", err);
	if (rc)
		return rc;
	rc = make_dir(p->target, "/dev/mqueue", path, sizeof(path), err);
	if (!rc)
		rc = mnt("mqueue", path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", p->target, links[i].path);
		if (symlink(links[i].to, path) < 0)
			return yun_err_errno(err, errno, "symlink %s", links[i].path);
	}
	return 0;
}

/* One --mount: attach its detached tree (see ct_mounts_plan) at the destination. */
static int setup_bind(int rootfd, const struct ct_mount *m, int tree, struct yun_err *err)
{
	struct stat st;
	int dst, rc = 0;

	if (fstat(tree, &st) < 0)
		return yun_err_errno(err, errno, "mount source %s", m->src);
	dst = ct_mounts_open_in_root(
	    rootfd, m->dst, S_ISDIR(st.st_mode) ? CT_CREATE_DIR : CT_CREATE_FILE, O_PATH, err);
	if (dst < 0)
		return dst;
	if (move_mount(tree, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		rc = yun_err_errno(err, errno, "mount %s on %s", m->src, m->dst);
	close(dst);
	return rc;
}

int ct_mounts_prepare(const struct ct_mounts_plan *p, struct yun_err *err)
{
	char path[PATH_MAX];
	int rootfd, rc;

	/* Nothing done below may propagate back to the host. */
	rc = mnt(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL, err);
	if (!rc)
		rc = setup_root(p, err);
	if (!rc)
		rc = make_dir(p->target, "/proc", path, sizeof(path), err);
	if (!rc)
		rc = mnt("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (!rc)
		rc = setup_sys(p, err);
	if (!rc)
		rc = setup_dev(p, err);
	if (!rc)
		rc = setup_run(p, err);
	if (rc || p->n_mounts == 0)
		return rc;
	rootfd = open(p->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return yun_err_errno(err, errno, "container root %s", p->target);
	for (size_t i = 0; !rc && i < p->n_mounts; i++)
		rc = setup_bind(rootfd, &p->mounts[i], p->mount_fds[i], err);
	close(rootfd);
	return rc;
}

int ct_mounts_bind_console(const char *target, int slave_fd, struct yun_err *err)
{
	char path[PATH_MAX], src[64];
	int rc;

	snprintf(path, sizeof(path), "%s/dev/console", target);
	rc = make_file(path, err);
	if (rc)
		return rc;
	snprintf(src, sizeof(src), "/proc/self/fd/%d", slave_fd);
	return mnt(src, path, NULL, MS_BIND, NULL, err);
}

int ct_mounts_pivot(const char *target, struct yun_err *err)
{
	int oldroot, newroot, rc = 0;

	oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		return yun_err_errno(err, errno, "open /");
	newroot = open(target, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (newroot < 0) {
		rc = yun_err_errno(err, errno, "open %s", target);
		goto out;
	}
	/*
	 * pivot_root(".", "."): the old root ends up stacked on the new one;
	 * detach it from there. No directory for it is needed in the image.
	 */
	if (fchdir(newroot) < 0) {
		rc = yun_err_errno(err, errno, "chdir %s", target);
		goto out;
	}
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		rc = yun_err_errno(err, errno, "pivot_root to %s", target);
		goto out;
	}
	if (fchdir(oldroot) < 0) {
		rc = yun_err_errno(err, errno, "chdir old root");
		goto out;
	}
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
		rc = yun_err_errno(err, errno, "make the old root a slave");
		goto out;
	}
	if (umount2(".", MNT_DETACH) < 0) {
		rc = yun_err_errno(err, errno, "detach the old root");
		goto out;
	}
	if (chdir("/") < 0)
		rc = yun_err_errno(err, errno, "chdir /");
out:
	if (newroot >= 0)
		close(newroot);
	close(oldroot);
	return rc;
}

static int mask_path(const char *path, struct yun_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : yun_err_errno(err, errno, "mask %s", path);
	if (S_ISDIR(st.st_mode))
		return mnt("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			   "size=0", err);
	return mnt("/dev/null", path, NULL, MS_BIND, NULL, err);
}

static int readonly_path(const char *path, struct yun_err *err)
{
	int rc;

	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : yun_err_errno(err, errno, "read-only %s", path);
	rc = mnt(path, path, NULL, MS_BIND | MS_REC, NULL, err);
	if (!rc)
		rc = remount_bind(path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
	return rc;
}

int ct_mounts_finish(struct yun_err *err)
{
	int rc;

	for (const char *const *p = ct_readonly_paths; *p; p++) {
		rc = readonly_path(*p, err);
		if (rc)
			return rc;
	}
	for (const char *const *p = ct_masked_paths; *p; p++) {
		rc = mask_path(*p, err);
		if (rc)
			return rc;
	}
	return 0;
}
