/*
 * seccomp.h - the default seccomp profile of yun-ct containers, built with
 * libseccomp: modelled on Docker's default profile (allow-list, EPERM for
 * the rest), adjusted so a system container's init (busybox init, systemd)
 * runs. Installed as the very last step before exec, after no_new_privs.
 */
#ifndef YUN_CT_SECCOMP_H
#define YUN_CT_SECCOMP_H

#include <stdbool.h>

#include "../lib/err.h"

struct seccomp_opts {
	bool allow_user_ns_ops; /* container has its own user namespace: mount/unshare of
				  * namespaces are then safe to allow, as Docker does with
				  * CAP_SYS_ADMIN */
};

/*
 * Load the filter into the calling thread (inherited by its children).
 * Everything off the allow-list fails with EPERM; clone3 fails with ENOSYS
 * so libc falls back to clone, whose namespace flags the filter can see.
 * Also sets no_new_privs (seccomp_load does, harmless when already set).
 */
int seccomp_apply_default(const struct seccomp_opts *opts, struct yun_err *err);

#endif
