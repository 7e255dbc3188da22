/*
 * spec.h - what a tenant writes about volume attachments, checked before
 * anything else looks at it: the path inside a container and an instance
 * create's "VOLUME[:PATH][:ro]" items. Pure (no I/O); fuzzed by
 * tests/fuzz/yund_volume_fuzz.c.
 */
#ifndef YUND_VOLUME_SPEC_H
#define YUND_VOLUME_SPEC_H

#include "../../lib/err.h"
#include "../store/store.h"

#define VOL_MOUNT_PATH_MAX 255

/*
 * A path inside a container for an attachment: absolute, no "." or ".."
 * parts, letters, digits and "/._-", not under /proc, /sys, /dev
 * (-ERANGE naming "field path" and the reason).
 */
int vol_check_mount_path(const char *path, struct yun_err *err);

/* An instance create's volumes item "VOLUME[:PATH][:ro]" (-ERANGE naming the reason). */
int vol_parse_attach(const char *spec, struct st_attach *out, struct yun_err *err);

#endif
