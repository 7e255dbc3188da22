/*
 * seccomp.h - the default seccomp profile of yun-ct containers, built with
 * libseccomp: modelled on Docker's default profile (allow-list, EPERM for
 * the rest), adjusted so a system container's init (busybox init, systemd)
 * runs. Installed as the very last step before exec, after no_new_privs.
 */
#ifndef YUN_CT_SECCOMP_H
#define YUN_CT_SECCOMP_H

#include <stdbool.h>

#include <linux/filter.h>

#include "../lib/err.h"

struct seccomp_opts {
	bool allow_user_ns_ops; /* container has its own user namespace: mount/unshare of
				  * namespaces are then safe to allow, as Docker does with
				  * CAP_SYS_ADMIN */
};

/* The profile compiled to a classic BPF program for seccomp(2). */
struct seccomp_prog {
	struct sock_filter *insns; /* malloc'd */
	unsigned short len;	   /* instructions */
};

/*
 * Compile the default profile. libseccomp takes ~10 ms for it (three
 * architectures), so with `cache_dir` (NULL: none) the program is kept
 * there, as crun does, and reused while the executable, libseccomp and
 * the kernel stay the same: a directory made 0700, files 0600 owned by
 * the caller, each with a key and a checksum; a missing, foreign or
 * damaged file is compiled anew. Free with seccomp_prog_free.
 */
int seccomp_prog_default(const struct seccomp_opts *opts, const char *cache_dir,
			 struct seccomp_prog *out, struct yun_err *err);

/*
 * Load a program into the calling thread (inherited by its children); sets
 * no_new_privs first, as libseccomp's seccomp_load does. Allocates nothing:
 * fine in a child between fork and exec.
 */
int seccomp_prog_load(const struct seccomp_prog *p, struct yun_err *err);
void seccomp_prog_free(struct seccomp_prog *p);

/*
 * Compile and load in one go (no cache).
 * Everything off the allow-list fails with EPERM; clone3 fails with ENOSYS
 * so libc falls back to clone, whose namespace flags the filter can see.
 * Also sets no_new_privs.
 */
int seccomp_apply_default(const struct seccomp_opts *opts, struct yun_err *err);

#endif
