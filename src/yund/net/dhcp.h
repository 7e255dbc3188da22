/*
 * dhcp.h - DHCP for microVMs: one dnsmasq per network, bound to its bridge,
 * serving only the reserved addresses (mac -> ip) of the network's
 * instances. DNS is off (--port=0).
 *
 * Files, in <run>/net/<network id>/:
 *   dnsmasq.pid      the daemon's pid (checked against /proc/PID/cmdline)
 *   dnsmasq.leases   its lease file
 *   dhcp-hosts       "mac,ip,instance-id" lines (--dhcp-hostsfile)
 *   dnsmasq.log      its log; dnsmasq.err: what it said when it failed to start
 *
 * dnsmasq daemonizes itself (it is not the caller's child once started)
 * and re-reads dhcp-hosts on SIGHUP. Because it refuses to hand out an
 * address still leased to another MAC, changing or dropping a reservation
 * whose address or MAC has a lease restarts it without those leases.
 */
#ifndef YUN_YUND_NET_DHCP_H
#define YUN_YUND_NET_DHCP_H

#include <stdint.h>
#include <sys/types.h>

#include "cidr.h"
#include "ctx.h"
#include "ids.h"
#include "lib/err.h"

#define YN_DHCP_ARGS 16

/* The dnsmasq command line for a network (pure). */
struct yn_dhcp_cmd {
	int argc;
	char *argv[YN_DHCP_ARGS + 1];
	char arg[YN_DHCP_ARGS][YN_PATH_MAX + 32];
};
void yn_dhcp_command(const struct yn_ctx *ctx, const char *net_id, const struct yn_cidr *cidr,
		     struct yn_dhcp_cmd *cmd);

/*
 * dhcp-hosts text with the entry for `instance_id` replaced by `line`
 * (NULL: removed). Lines naming the same instance, MAC or IP go, so no
 * two reservations conflict. Returns a malloc'd string or NULL (ENOMEM).
 * Pure.
 */
char *yn_dhcp_hosts_edit(const char *text, const char *instance_id, const char *line);

/* Start the network's dnsmasq unless the same one already runs. */
int yn_dhcp_ensure(const struct yn_ctx *ctx, const char *net_id, const struct yn_cidr *cidr,
		   struct yun_err *err);

/* Stop it and remove the network's directory; nothing there is fine. */
int yn_dhcp_remove(const struct yn_ctx *ctx, const char *net_id, struct yun_err *err);

/*
 * Reserve `ip` for `mac` (the instance's entry), telling dnsmasq if it
 * changed; a reservation of the instance in any other network is dropped
 * (an instance has one port).
 */
int yn_dhcp_host_set(const struct yn_ctx *ctx, const char *net_id, const char *instance_id,
		     const uint8_t mac[6], uint32_t ip, struct yun_err *err);

/* Drop the instance's reservation from that network's (NULL: every network's) dhcp-hosts. */
int yn_dhcp_host_drop(const struct yn_ctx *ctx, const char *net_id, const char *instance_id,
		      struct yun_err *err);

/* The running dnsmasq of the network, or 0. */
pid_t yn_dhcp_pid(const struct yn_ctx *ctx, const char *net_id);

#endif
