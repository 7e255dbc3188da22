/*
 * ctx.h - where the network module keeps its files on the host.
 *
 * Everything lives under the daemon's run directory ($YUN_RUN, default
 * /run/yun), named after ids so it can be found again after a crash:
 *
 *   <run>/netns/<instance id>     persistent network namespace (nsfs bind mount)
 *   <run>/net/<network id>/       dnsmasq of that network: dnsmasq.pid,
 *                                 dnsmasq.leases, dhcp-hosts, dnsmasq.log
 */
#ifndef YUN_YUND_NET_CTX_H
#define YUN_YUND_NET_CTX_H

#include <stddef.h>

#include "lib/err.h"

#define YN_RUN_DIR_MAX 256
#define YN_PATH_MAX    384 /* any path below the run dir */

struct yn_ctx {
	char run_dir[YN_RUN_DIR_MAX]; /* absolute */
	char dnsmasq[YN_RUN_DIR_MAX]; /* the dnsmasq program */
};

/*
 * run_dir NULL: $YUN_RUN, else /run/yun. The dnsmasq program is
 * $YUN_DNSMASQ, else /usr/sbin/dnsmasq. Refuses relative or too long paths.
 * Creates nothing.
 */
int yn_ctx_init(struct yn_ctx *ctx, const char *run_dir, struct yun_err *err);

/* <run>/netns/<instance_id> and <run>/net/<net_id>; ids are not checked here. */
void yn_ctx_netns_path(const struct yn_ctx *ctx, const char *instance_id, char buf[YN_PATH_MAX]);
void yn_ctx_net_dir(const struct yn_ctx *ctx, const char *net_id, char buf[YN_PATH_MAX]);

/* mkdir -p with mode 0755; an existing directory is fine. */
int yn_mkdirs(const char *path, struct yun_err *err);

#endif
