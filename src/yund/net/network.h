/*
 * network.h - a Yun network on this host: bridge yb-<id> with the gateway
 * address, IP forwarding, its nftables rules (nft.h) and its dnsmasq
 * (dhcp.h). Every call is idempotent: ensure converges whatever is there
 * to the desired state, remove of something absent succeeds.
 */
#ifndef YUN_YUND_NET_NETWORK_H
#define YUN_YUND_NET_NETWORK_H

#include <stddef.h>

#include "cidr.h"
#include "ctx.h"
#include "ids.h"
#include "lib/err.h"

struct yn_network {
	char id[YN_ID_MAX]; /* "net-0123456789ab" */
	struct yn_cidr cidr;
};

/* Fill `net` from an id and a CIDR string, checking both (cidr.h's messages). */
int yn_network_init(struct yn_network *net, const char *id, const char *cidr, struct yun_err *err);

/*
 * Make the network exist: net.ipv4.ip_forward = 1 (never reset: other
 * users may rely on it), bridge up with the gateway address and a MAC
 * derived from the id, nftables rules, dnsmasq running.
 */
int yn_network_ensure(const struct yn_ctx *ctx, const struct yn_network *net, struct yun_err *err);

/*
 * Undo it: dnsmasq stopped and its files gone, rules deleted, bridge
 * deleted (ports still on it are left detached: remove ports first).
 * Needs only the id, so leftovers of unknown networks can be removed.
 * Tries every step; returns the first error.
 */
int yn_network_remove(const struct yn_ctx *ctx, const char *net_id, struct yun_err *err);

/*
 * The IPv4 networks this host already uses: every address (as its
 * network, "address 192.0.2.2/24 on eth0") and every non-default route of
 * the main table ("route on eth0"). Links yb-* are skipped: Yun's own
 * networks are the caller's to list. *uses is malloc'd.
 */
int yn_host_cidrs(struct yn_cidr_use **uses, size_t *n, struct yun_err *err);

/*
 * Whether a new network may take `cidr`: it must overlap neither the
 * given Yun networks nor anything of the host (yn_host_cidrs()).
 */
int yn_network_check_cidr(const struct yn_cidr *cidr, const struct yn_cidr_use *networks, size_t n,
			  struct yun_err *err);

#endif
