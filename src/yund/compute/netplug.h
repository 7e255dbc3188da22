/*
 * netplug.h - where the network service (net/net.h: bridges, veth/netns,
 * IPAM, nftables, DHCP) plugs into the reconcile loop.
 *
 * - netplug_networks: once per loop pass. Makes (yn_network_ensure) every
 *   network with desired = active once per process (at start that repairs
 *   what a crash left), records its gateway and bridge and state active
 *   (failed, retried every 10 s, when it cannot); removes those with
 *   desired = deleted (yn_network_remove), then their rows.
 * - netplug_instance_attach: before an instance's container starts. For an
 *   instance on a network: its address (the one it had, else the lowest
 *   free one: yn_ipam_alloc over the instances' ip column), its port
 *   (yn_port_ensure_ct: netns <run>/netns/<id> with eth0, veth yv-<hex> on
 *   the bridge) and the netns path the container joins (net=netns=PATH).
 *   -EAGAIN while the network is not active yet. Without a network: no
 *   path, the container runs with --net none.
 * - netplug_instance_detach: when an instance is deleted, after its
 *   container is gone (yn_port_remove; idempotent, names derive from the id).
 *
 * All from the reconcile thread only.
 */
#ifndef YUND_COMPUTE_NETPLUG_H
#define YUND_COMPUTE_NETPLUG_H

#include <stddef.h>

#include "../../lib/err.h"
#include "../store/store.h"

struct yund;

void netplug_networks(struct yund *y);

/* netns: "" for none; ip/mac (may stay ""): what to show in the instance. */
int netplug_instance_attach(struct yund *y, const struct st_instance *in, char *netns,
			    size_t netns_len, char *ip, size_t ip_len, char *mac, size_t mac_len,
			    struct yun_err *err);

/*
 * The same for a microVM: its TAP yt-<hex> on the bridge and its DHCP
 * reservation (yn_port_ensure_tap); tap: "" without a network.
 */
int netplug_instance_attach_tap(struct yund *y, const struct st_instance *in, char *tap,
				size_t tap_len, char *ip, size_t ip_len, char *mac, size_t mac_len,
				struct yun_err *err);

int netplug_instance_detach(struct yund *y, const struct st_instance *in, struct yun_err *err);

/* Free what the loop remembered (at exit). */
void netplug_free(void);

#endif
