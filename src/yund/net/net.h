/*
 * net.h - yund's network module: the contract the reconcile loop calls.
 *
 * A Yun network is an isolated L2 segment on this host (a Linux bridge)
 * with an IPv4 CIDR, its first address on the bridge as the gateway, NAT
 * to whatever uplink the host has, no path to other Yun networks, and
 * DHCP (dnsmasq) for microVMs. Containers attach through a veth into a
 * persistent network namespace, microVMs through a TAP. Host names come
 * from ids (ids.h), so nothing needs remembering across a crash.
 *
 * Every call that changes the host is idempotent (ensure twice = once;
 * remove of something absent succeeds) and returns 0 or -errno with a
 * struct yun_err naming the object and the reason. Calls for one network
 * or instance must not run concurrently (the reconcile loop is one
 * thread). Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for mounts). The
 * caller must not ignore SIGCHLD nor reap unknown children (waitpid(-1)):
 * starting dnsmasq and making a namespace wait for a helper process. The
 * run directory and its parents must be o+x: dnsmasq drops root and
 * re-reads its hosts file below it (ensure says so if they are not).
 *
 * Typical use:
 *
 *   struct yn_ctx ctx;            yn_ctx_init(&ctx, NULL, &err);   // $YUN_RUN or /run/yun
 *   struct yn_network net;        yn_network_init(&net, "net-0123456789ab", "10.10.0.0/24", &err);
 *   POST /networks:   yn_cidr_parse + yn_network_check_cidr(cidr, existing networks)
 *   reconcile net:    yn_network_ensure(&ctx, &net, &err)
 *   new instance:     yn_ipam_alloc(&net.cidr, used ips, n, &ip, &err)
 *   container:        yn_port_ensure_ct(&ctx, &net, "i-...", ip, NULL, netns_path, &err)
 *                     -> yun-ct run --net netns=<netns_path> ...
 *   microVM:          yn_port_ensure_tap(&ctx, &net, "i-...", ip, mac, tap, &err)
 *                     -> yun-vmm --net tap=<tap>,mac=<mac> ...
 *   delete instance:  yn_port_remove(&ctx, "i-...", &err)
 *   delete network:   yn_network_remove(&ctx, "net-...", &err)
 *   after a restart:  yn_inventory() -> remove what no object owns
 *   metrics:          yn_port_counters() or the stats in yn_inventory()
 *
 * Module files (one header each): ids (names, MACs), cidr (parsing, IPAM),
 * ctx (paths), rtnl (netlink via libmnl), netns, nft (libnftables), dhcp
 * (dnsmasq), network, port, inventory.
 */
#ifndef YUN_YUND_NET_NET_H
#define YUN_YUND_NET_NET_H

#include "cidr.h"
#include "ctx.h"
#include "dhcp.h"
#include "ids.h"
#include "inventory.h"
#include "netns.h"
#include "network.h"
#include "nft.h"
#include "port.h"
#include "rtnl.h"

#endif
