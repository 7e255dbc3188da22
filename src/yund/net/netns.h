/*
 * netns.h - persistent named network namespaces for container instances.
 *
 * <run>/netns/<instance id> is an nsfs bind mount that keeps the namespace
 * alive with no process in it; yun-ct joins it with `--net netns=PATH`.
 * <run>/netns itself is made a shared mount point (bound onto itself), so
 * an unmount here also reaches copies of the mount that other mount
 * namespaces (containers cloned while it existed) may hold.
 */
#ifndef YUN_YUND_NET_NETNS_H
#define YUN_YUND_NET_NETNS_H

#include <stdbool.h>

#include "ctx.h"
#include "lib/err.h"

/*
 * Make sure <run>/netns/<instance_id> holds a network namespace: an
 * existing one is kept (with everything in it), a leftover plain file from
 * an interrupted call is mounted over. Writes the path to `path`.
 */
int yn_netns_ensure(const struct yn_ctx *ctx, const char *instance_id, char path[YN_PATH_MAX],
		    struct yun_err *err);

/* Unmount and unlink it; a missing one is not an error. */
int yn_netns_remove(const struct yn_ctx *ctx, const char *instance_id, struct yun_err *err);

/* True when `path` is a mounted network namespace. */
bool yn_netns_is_mounted(const char *path);

#endif
