/*
 * jail.h - the jail of one VMM: a directory holding only its files, and
 * the steps that move a process into it.
 *
 * Layout: <chroot-base>/yun-vmm/<id>/root becomes the process's "/". It
 * holds the program (copied to /<basename>), the shared libraries it
 * links (as the dynamic loader lists them, copied to the same paths), the
 * device nodes a VMM needs (/dev/kvm, /dev/net/tun, /dev/null,
 * /dev/urandom: made with mknod after the host's, owned by the jail's
 * uid/gid), an empty /proc (the jail's own procfs is mounted there) and the
 * files given with --copy. The root directory itself is owned by the
 * jail's uid/gid, mode 0700, so the VMM can make its sockets there and no
 * other jail can look in. Everything else is the caller's: paths given
 * to the VMM are paths inside the root.
 */
#ifndef YUN_JAILER_JAIL_H
#define YUN_JAILER_JAIL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "../lib/err.h"

#define JAIL_ID_MAX 64
#define JAIL_MAX_COPIES 16

struct jail_copy {
	const char *src; /* host path */
	const char *dst; /* absolute path inside the root */
};

struct jail {
	const char *id;
	uid_t uid;
	gid_t gid;
	const char *exec;          /* host path of the program */
	const struct jail_copy *copies;
	unsigned nr_copies;
	char dir[PATH_MAX];        /* <chroot-base>/yun-vmm/<id> */
	char root[PATH_MAX];       /* <dir>/root */
	char exec_inside[PATH_MAX]; /* the program's path inside the root */
};

/* An id is 1..64 characters from [A-Za-z0-9-]. */
bool jail_id_valid(const char *id);

/*
 * Create the jail directory and fill it; refuses an existing one. On
 * failure removes what it created.
 */
int jail_prepare(struct jail *j, const char *chroot_base, struct yun_err *err);

/*
 * In the child, already in its new pid namespace and in its cgroup: join
 * `netns_fd` (or a new network namespace when -1), new mount, IPC and UTS
 * namespaces, a private mount tree, the jail's procfs, pivot_root into the
 * root, drop every capability and the groups, become uid/gid, set
 * no_new_privs and the parent-death signal. Then the caller execs.
 */
int jail_enter(const struct jail *j, int netns_fd, struct yun_err *err);

/* Remove the jail directory and everything in it (never crossing mounts). */
int jail_remove(const struct jail *j, struct yun_err *err);

#endif
