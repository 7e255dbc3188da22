/*
 * mounts.h - the container's file system view, and the path rules behind it.
 *
 * Host side (no privileges needed, used before anything is created):
 * where bind-mount sources may come from, and finding the command inside a
 * rootfs without following symlinks out of it.
 *
 * Container side (called by the container's first process, inside its new
 * mount namespace, in this order): ct_mounts_prepare builds the whole tree
 * under the future root (root layer, /proc, /sys, /dev, binds),
 * ct_mounts_pivot makes it the root, ct_mounts_finish masks and
 * write-protects the kernel files runc and the OCI spec hide by default.
 * Nothing is mounted in the host's mount namespace, so nothing needs to be
 * unmounted there when the container ends.
 */
#ifndef YUN_CT_MOUNTS_H
#define YUN_CT_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "../lib/err.h"
#include "config.h"

/* True when `path` is `prefix` or below it ("/" is above everything). */
bool ct_path_is_under(const char *path, const char *prefix);

/*
 * Mount source rule. The canonical source (symlinks resolved) is refused
 * when it is, is below, or contains any of the system areas
 *   / /bin /boot /dev /etc /lib /lib32 /lib64 /libx32 /proc /root /run
 *   /sbin /sys /usr /var/lib/yun  and yun-ct's state root
 * and, when the operator sets YUN_CT_MOUNT_ALLOW (colon-separated
 * prefixes), it must also lie below one of those prefixes.
 */
int ct_mounts_source_allowed(const char *canon, const char *state_root, const char *allow,
			     struct yun_err *err);

/* Canonicalize and check `src` with the rule above; *canon is malloc'd. */
int ct_mounts_check_source(const char *src, char **canon, struct yun_err *err);

/*
 * Find `cmd` inside `rootfs` as execve would after pivot_root: absolute or
 * searched in PATH (from `env`, else CT_DEFAULT_PATH), symlinks resolved
 * inside the root. -ENOENT when absent, -EACCES when not executable.
 * The container path found is copied to `found` when given.
 */
int ct_mounts_find_command(const char *rootfs, const char *cmd, char *const *env, char *found,
			   size_t found_len, struct yun_err *err);

/*
 * Open `path` (relative to rootfd, which acts as "/") with symlinks and ".."
 * resolved inside the root; with `create`, missing components are made as
 * directories, the last one as a directory or an empty file.
 */
enum ct_create { CT_CREATE_NONE, CT_CREATE_DIR, CT_CREATE_FILE };
int ct_mounts_open_in_root(int rootfd, const char *path, enum ct_create create, int flags,
			   struct yun_err *err);

struct ct_mounts_plan {
	const char *lower;    /* image or rootfs directory (host path) */
	int lower_fd;	      /* -1, or a detached idmapped mount of `lower` */
	const char *lower_at; /* attach point for lower_fd when overlay */
	bool overlay;
	const char *upper, *work;
	const char *target; /* the container's root is built here */
	bool own_netns;	    /* a fresh sysfs can be mounted */
	bool cgroup_rw;	    /* the container's root owns its cgroup: /sys/fs/cgroup rw */
	bool devpts_gid5;   /* gid 5 (tty) is mapped: devpts gid=5 */
	const struct ct_mount *mounts;
	const int *mount_fds; /* detached binds of the checked sources (open_tree),
			       * already nosuid, nodev and read-only as asked */
	size_t n_mounts;
};

int ct_mounts_prepare(const struct ct_mounts_plan *plan, struct yun_err *err);

/* Bind the console pty slave (an fd) on target/dev/console. */
int ct_mounts_bind_console(const char *target, int slave_fd, struct yun_err *err);

int ct_mounts_pivot(const char *target, struct yun_err *err);

int ct_mounts_finish(struct yun_err *err);

/* The default masked and read-only paths (NULL-terminated), for docs and tests. */
extern const char *const ct_masked_paths[];
extern const char *const ct_readonly_paths[];

#endif
