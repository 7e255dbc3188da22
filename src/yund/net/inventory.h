/*
 * inventory.h - every host resource of the network module, found by name,
 * so the daemon can remove the ones no object owns (after a crash, or a
 * delete that was interrupted):
 *
 *   for each r in yn_inventory():
 *     r.kind is BRIDGE, DHCP or NFT  and no network r.owner  -> yn_network_remove(r.owner)
 *     r.kind is VETH, TAP or NETNS   and no instance r.owner -> yn_port_remove(r.owner)
 *
 * Veth and TAP entries carry their link counters, so one call also feeds
 * the per-instance network metrics.
 */
#ifndef YUN_YUND_NET_INVENTORY_H
#define YUN_YUND_NET_INVENTORY_H

#include <stddef.h>

#include "ctx.h"
#include "ids.h"
#include "lib/err.h"
#include "rtnl.h"

enum yn_res_kind {
	YN_RES_BRIDGE, /* link yb-<hex>: owner is the network */
	YN_RES_VETH,   /* link yv-<hex>: owner is the instance */
	YN_RES_TAP,    /* link yt-<hex> */
	YN_RES_NETNS,  /* <run>/netns/<instance id> */
	YN_RES_DHCP,   /* <run>/net/<network id>/ (dnsmasq and its files) */
	YN_RES_NFT,    /* rules tagged with the network id in table inet yun */
};

struct yn_resource {
	enum yn_res_kind kind;
	char owner[YN_ID_MAX];	    /* "net-..." or "i-..." */
	char name[YN_PATH_MAX];	    /* link name, path, or the table */
	struct yn_link_stats stats; /* VETH and TAP */
};

/* "bridge", "veth", "tap", "netns", "dhcp", "nft". */
const char *yn_res_kind_name(enum yn_res_kind kind);

/* All of them; *res is malloc'd. */
int yn_inventory(const struct yn_ctx *ctx, struct yn_resource **res, size_t *n,
		 struct yun_err *err);

#endif
