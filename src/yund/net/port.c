/* port.c - see port.h. */
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dhcp.h"
#include "netns.h"

/* Shared checks: ids, address, MAC; finds the network's bridge. */
static int port_prepare(struct yn_rtnl *r, const struct yn_network *net, const char *instance_id,
			uint32_t ip, const uint8_t *mac_in, uint8_t mac[6], struct yn_link *bridge,
			struct yun_err *err)
{
	char brname[YN_IFNAME_MAX];
	int rc;

	if ((rc = yn_id_check(YN_ID_INSTANCE, instance_id, err)) ||
	    (rc = yn_bridge_name(net->id, brname, err)))
		return rc;
	if ((rc = yn_ipam_check(&net->cidr, ip, err)))
		return rc;
	if (mac_in) {
		if ((mac_in[0] & 1) || !memcmp(mac_in, "\0\0\0\0\0\0", 6))
			return yun_err_set(err, EINVAL, "instance %s: mac is multicast or zero",
					   instance_id);
		memcpy(mac, mac_in, 6);
	} else if ((rc = yn_mac_for_instance(instance_id, mac, err))) {
		return rc;
	}
	if ((rc = yn_rtnl_open(r, -1, NULL, err)))
		return rc;
	rc = yn_rtnl_link_get(r, brname, bridge, err);
	if (rc == -ENODEV)
		rc = yun_err_set(err, ENODEV,
				 "network %s: bridge %s does not exist (ensure the network first)",
				 net->id, brname);
	else if (!rc && strcmp(bridge->kind, "bridge"))
		rc = yun_err_set(err, EEXIST, "network %s: link %s is not a bridge", net->id,
				 brname);
	if (rc)
		yn_rtnl_close(r);
	return rc;
}

/* The veth pair yv-<id> (host) <-> eth0 (netns), recreated unless they are each other's peer. */
static int veth_ensure(struct yn_rtnl *host, struct yn_rtnl *ns, int nsfd, const char *veth,
		       const uint8_t mac[6], struct yn_link *yv, struct yn_link *eth0,
		       struct yun_err *err)
{
	int rc_yv, rc_e0, rc;

	rc_yv = yn_rtnl_link_get(host, veth, yv, err);
	if (rc_yv && rc_yv != -ENODEV)
		return rc_yv;
	rc_e0 = yn_rtnl_link_get(ns, "eth0", eth0, err);
	if (rc_e0 && rc_e0 != -ENODEV)
		return rc_e0;
	if (!rc_yv && !rc_e0 && !strcmp(yv->kind, "veth") && !strcmp(eth0->kind, "veth") &&
	    yv->peer == eth0->index && eth0->peer == yv->index)
		return 0;
	if ((!rc_yv && (rc = yn_rtnl_link_del(host, veth, err))) ||
	    (!rc_e0 && (rc = yn_rtnl_link_del(ns, "eth0", err))))
		return rc;
	if ((rc = yn_rtnl_veth_add(host, veth, "eth0", nsfd, mac, err)))
		return rc;
	if ((rc = yn_rtnl_link_get(host, veth, yv, err)) == -ENODEV ||
	    (rc == 0 && (rc = yn_rtnl_link_get(ns, "eth0", eth0, err)) == -ENODEV))
		return yun_err_set(err, EIO, "link %s: vanished after creation", veth);
	return rc;
}

/*
 * eth0 has exactly ip/prefix as its IPv4 address. Others (an older address)
 * go first: deleting a primary address after adding the new one in the
 * same subnet would take the new one, a secondary, with it.
 */
static int addr_ensure(struct yn_rtnl *ns, int index, uint32_t ip, unsigned prefix,
		       struct yun_err *err)
{
	struct yn_rtnl_addr *addrs;
	size_t n;
	int rc;

	if ((rc = yn_rtnl_addr_list(ns, &addrs, &n, err)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		if (addrs[i].index == index && (addrs[i].ip != ip || addrs[i].prefix != prefix))
			rc = yn_rtnl_addr_del(ns, index, "eth0", addrs[i].ip, addrs[i].prefix, err);
	free(addrs);
	return rc ? rc : yn_rtnl_addr_replace(ns, index, "eth0", ip, prefix, err);
}

int yn_port_ensure_ct(const struct yn_ctx *ctx, const struct yn_network *net,
		      const char *instance_id, uint32_t ip, const uint8_t *mac_in,
		      char netns_path[YN_PATH_MAX], struct yun_err *err)
{
	struct yn_rtnl host, ns = {0};
	struct yn_link bridge, yv, eth0, lo;
	char veth[YN_IFNAME_MAX];
	uint8_t mac[6];
	int rc, nsfd = -1;

	if ((rc = port_prepare(&host, net, instance_id, ip, mac_in, mac, &bridge, err)))
		return rc;
	yn_veth_name(instance_id, veth, NULL);
	if ((rc = yn_netns_ensure(ctx, instance_id, netns_path, err)))
		goto out;
	nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		rc = yun_err_errno(err, errno, "netns %s: open", netns_path);
		goto out;
	}
	if ((rc = yn_rtnl_open(&ns, nsfd, instance_id, err)))
		goto out;
	if ((rc = veth_ensure(&host, &ns, nsfd, veth, mac, &yv, &eth0, err)))
		goto out;
	if ((rc = yn_rtnl_link_set(&host, yv.index, veth, bridge.index, NULL, err)))
		goto out;
	if ((rc = yn_rtnl_link_get(&ns, "lo", &lo, err)) ||
	    (rc = yn_rtnl_link_set(&ns, lo.index, "lo", 0, NULL, err)))
		goto out;
	if ((rc = yn_rtnl_link_set(&ns, eth0.index, "eth0", 0,
				   memcmp(eth0.mac, mac, 6) ? mac : NULL, err)) ||
	    (rc = addr_ensure(&ns, eth0.index, ip, net->cidr.prefix, err)) ||
	    (rc = yn_rtnl_route_default(&ns, eth0.index, "eth0", yn_cidr_gateway(&net->cidr), err)))
		goto out;
	rc = yn_dhcp_host_set(ctx, net->id, instance_id, mac, ip, err);
out:
	if (ns.nl)
		yn_rtnl_close(&ns);
	if (nsfd >= 0)
		close(nsfd);
	yn_rtnl_close(&host);
	return rc;
}

/* A persistent TAP: it stays when the file descriptor closes, for yun-vmm to attach. */
static int tap_create(const char *name, struct yun_err *err)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return yun_err_errno(err, errno, "tap %s: open /dev/net/tun", name);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;

		close(fd);
		return yun_err_errno(err, e, "tap %s: create", name);
	}
	if (ioctl(fd, TUNSETPERSIST, 1) < 0) {
		int e = errno;

		close(fd);
		return yun_err_errno(err, e, "tap %s: make persistent", name);
	}
	close(fd);
	return 0;
}

int yn_port_ensure_tap(const struct yn_ctx *ctx, const struct yn_network *net,
		       const char *instance_id, uint32_t ip, const uint8_t *mac_in,
		       char tap[YN_IFNAME_MAX], struct yun_err *err)
{
	struct yn_link bridge, link;
	struct yn_rtnl host;
	uint8_t mac[6];
	int rc;

	if ((rc = port_prepare(&host, net, instance_id, ip, mac_in, mac, &bridge, err)))
		return rc;
	yn_tap_name(instance_id, tap, NULL);
	rc = yn_rtnl_link_get(&host, tap, &link, err);
	if (rc == -ENODEV) {
		/* A running yun-vmm keeps an existing TAP; only a missing one is made. */
		if ((rc = tap_create(tap, err)) == 0)
			rc = yn_rtnl_link_get(&host, tap, &link, err);
	}
	if (!rc && strcmp(link.kind, "tun"))
		rc = yun_err_set(err, EEXIST, "tap %s: exists and is not a TAP (%s)", tap,
				 link.kind[0] ? link.kind : "no kind");
	/* No MAC on the TAP itself: the guest's MAC must stay off the bridge's own list. */
	if (!rc)
		rc = yn_rtnl_link_set(&host, link.index, tap, bridge.index, NULL, err);
	yn_rtnl_close(&host);
	if (!rc)
		rc = yn_dhcp_host_set(ctx, net->id, instance_id, mac, ip, err);
	return rc;
}

int yn_port_remove(const struct yn_ctx *ctx, const char *instance_id, struct yun_err *err)
{
	char veth[YN_IFNAME_MAX], tap[YN_IFNAME_MAX];
	struct yun_err spare;
	struct yn_rtnl host;
	int rc, first = 0;

	if ((rc = yn_veth_name(instance_id, veth, err)) ||
	    (rc = yn_tap_name(instance_id, tap, err)))
		return rc;
		/* Every step runs; the first failure is the one reported. */
#define STEP(call)                                                                                 \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_ && !first)                                                                 \
			first = rc_;                                                               \
	} while (0)
#define ERR (first ? &spare : err)
	STEP(yn_dhcp_host_drop(ctx, NULL, instance_id, ERR));
	rc = yn_rtnl_open(&host, -1, NULL, ERR);
	STEP(rc);
	if (!rc) {
		/* Deleting the host end takes the namespace's eth0 with it. */
		STEP(yn_rtnl_link_del(&host, veth, ERR));
		STEP(yn_rtnl_link_del(&host, tap, ERR));
		yn_rtnl_close(&host);
	}
	STEP(yn_netns_remove(ctx, instance_id, ERR));
#undef STEP
#undef ERR
	return first;
}

int yn_port_counters(const char *instance_id, struct yn_link_stats *stats, char link[YN_IFNAME_MAX],
		     struct yun_err *err)
{
	struct yn_rtnl host;
	struct yn_link l;
	int rc;

	if ((rc = yn_veth_name(instance_id, link, err)))
		return rc;
	if ((rc = yn_rtnl_open(&host, -1, NULL, err)))
		return rc;
	rc = yn_rtnl_link_get(&host, link, &l, err);
	if (rc == -ENODEV) {
		yn_tap_name(instance_id, link, NULL);
		rc = yn_rtnl_link_get(&host, link, &l, err);
	}
	yn_rtnl_close(&host);
	if (!rc)
		*stats = l.stats;
	return rc;
}
