/*
 * caps.h - the capabilities a container's processes keep.
 *
 * Docker's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
 * NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT,
 * KILL, AUDIT_WRITE. Everything else leaves the bounding set too, so no
 * later execve (setuid or file capabilities) can bring it back; the
 * inheritable and ambient sets are emptied.
 */
#ifndef YUN_CT_CAPS_H
#define YUN_CT_CAPS_H

#include <stdbool.h>

#include "../lib/err.h"

/* Drop the calling process to the default set (needs CAP_SETPCAP first). */
int ct_caps_drop_to_default(struct yun_err *err);

/* True when capability number `cap` is in the default set. */
bool ct_caps_in_default(int cap);

#endif
