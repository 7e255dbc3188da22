/*
 * port.h - an instance's attachment to its network.
 *
 *   container: netns <run>/netns/<id> holding eth0 (MAC, ip/prefix, default
 *              route via the gateway, lo up), the other end of the veth
 *              yv-<id> enslaved to the bridge; yun-ct joins the namespace
 *              with `--net netns=PATH`.
 *   microVM:   persistent TAP yt-<id> (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
 *              what yun-vmm attaches to with `--net tap=yt-<id>,mac=MAC`)
 *              enslaved to the bridge; the guest gets its address by DHCP.
 *
 * eth0's IPv4 configuration is Yun's: an ensure removes addresses other than
 * the instance's (an address change replaces the old one).
 *
 * Both reserve mac -> ip in the network's dnsmasq (dhcp.h), so a guest
 * asking by DHCP always gets the address the daemon chose. Idempotent:
 * ensure repairs whatever part is missing or wrong (a veth whose peer is
 * not the namespace's eth0 is recreated), remove of nothing succeeds.
 * The network must have been ensured first (its bridge must exist).
 */
#ifndef YUN_YUND_NET_PORT_H
#define YUN_YUND_NET_PORT_H

#include <stdint.h>

#include "ctx.h"
#include "ids.h"
#include "lib/err.h"
#include "network.h"
#include "rtnl.h"

/*
 * Container port. mac NULL: derived from the id (yn_mac_for_instance).
 * `ip` must be a host address of the network other than the gateway.
 * Writes the namespace's path to netns_path.
 */
int yn_port_ensure_ct(const struct yn_ctx *ctx, const struct yn_network *net,
		      const char *instance_id, uint32_t ip, const uint8_t *mac,
		      char netns_path[YN_PATH_MAX], struct yun_err *err);

/* microVM port (same arguments); writes the TAP's name to `tap`. */
int yn_port_ensure_tap(const struct yn_ctx *ctx, const struct yn_network *net,
		       const char *instance_id, uint32_t ip, const uint8_t *mac,
		       char tap[YN_IFNAME_MAX], struct yun_err *err);

/*
 * Remove whatever the instance has: veth, TAP, netns (unmounted and
 * unlinked), DHCP reservation in any network. Tries every step; returns
 * the first error.
 */
int yn_port_remove(const struct yn_ctx *ctx, const char *instance_id, struct yun_err *err);

/*
 * Counters of the instance's host-side link (yv-<id>, else yt-<id>), as
 * the host sees them: rx = what the instance sent, tx = what it received.
 * -ENODEV (err untouched) when the instance has no port.
 */
int yn_port_counters(const char *instance_id, struct yn_link_stats *stats, char link[YN_IFNAME_MAX],
		     struct yun_err *err);

#endif
