/*
 * rtnl.h - the rtnetlink requests the network module needs, over libmnl:
 * links (bridge, veth, master, up, MAC, delete, list with stats64), IPv4
 * addresses and routes. One handle = one netlink socket in one network
 * namespace; a handle opened for another namespace (yn_rtnl_open() with a
 * netns fd) acts there without the caller ever leaving its own.
 *
 * Functions return 0 or -errno and fill `err` with the object and reason
 * ("link yb-0123456789ab: create bridge: File exists").
 */
#ifndef YUN_YUND_NET_RTNL_H
#define YUN_YUND_NET_RTNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "lib/err.h"

struct mnl_socket;

struct yn_rtnl {
	struct mnl_socket *nl;
	unsigned int portid;
	unsigned int seq;
	char *buf;	/* receive buffer */
	char where[48]; /* "" (the caller's namespace) or " in netns PATH" for messages */
};

struct yn_link_stats {
	uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
	uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};

struct yn_link {
	int index;
	char name[YN_IFNAME_MAX];
	char kind[16];	/* IFLA_INFO_KIND: "bridge", "veth", "tun", ... or "" */
	int master;	/* the bridge's ifindex, 0 when not enslaved */
	int peer;	/* IFLA_LINK: a veth's peer ifindex (in the peer's namespace) */
	unsigned flags; /* IFF_UP, IFF_RUNNING, ... */
	uint8_t mac[6];
	struct yn_link_stats stats;
};

struct yn_rtnl_addr {
	int index;
	uint32_t ip; /* host byte order */
	unsigned prefix;
};

struct yn_rtnl_route {
	uint32_t dst; /* host byte order */
	unsigned prefix;
	int oif; /* 0 when none */
};

/* Open a handle in the caller's namespace (netns_fd < 0) or in netns_fd's. */
int yn_rtnl_open(struct yn_rtnl *r, int netns_fd, const char *netns_name, struct yun_err *err);
void yn_rtnl_close(struct yn_rtnl *r);

/* 0 and *link filled, or -ENODEV when there is no such link (err untouched). */
int yn_rtnl_link_get(struct yn_rtnl *r, const char *name, struct yn_link *link,
		     struct yun_err *err);

/* Every link of the namespace; *links is malloc'd (free it). */
int yn_rtnl_link_list(struct yn_rtnl *r, struct yn_link **links, size_t *n, struct yun_err *err);

/* New bridge with a fixed MAC (so it does not follow its ports'); -EEXIST if present. */
int yn_rtnl_bridge_add(struct yn_rtnl *r, const char *name, const uint8_t mac[6],
		       struct yun_err *err);

/*
 * New veth pair: `name` here, `peer` in the namespace of peer_netns_fd
 * with MAC peer_mac. -EEXIST if either name is taken.
 */
int yn_rtnl_veth_add(struct yn_rtnl *r, const char *name, const char *peer, int peer_netns_fd,
		     const uint8_t peer_mac[6], struct yun_err *err);

/*
 * Change link `index` (named `name` for messages): master > 0 enslaves it
 * to that bridge (0 leaves it alone), mac != NULL sets the MAC, and it is
 * set up.
 */
int yn_rtnl_link_set(struct yn_rtnl *r, int index, const char *name, int master, const uint8_t *mac,
		     struct yun_err *err);

/* Delete link `name`; a missing link is not an error. */
int yn_rtnl_link_del(struct yn_rtnl *r, const char *name, struct yun_err *err);

/* Add ip/prefix to link `index`, or refresh it when already there. */
int yn_rtnl_addr_replace(struct yn_rtnl *r, int index, const char *name, uint32_t ip,
			 unsigned prefix, struct yun_err *err);

/* Remove ip/prefix from link `index`; an address not there is not an error. */
int yn_rtnl_addr_del(struct yn_rtnl *r, int index, const char *name, uint32_t ip, unsigned prefix,
		     struct yun_err *err);

/* The default route via `gw` on link `index` (replacing any other default). */
int yn_rtnl_route_default(struct yn_rtnl *r, int index, const char *name, uint32_t gw,
			  struct yun_err *err);

/* Every IPv4 address; every unicast IPv4 route of the main table. malloc'd. */
int yn_rtnl_addr_list(struct yn_rtnl *r, struct yn_rtnl_addr **addrs, size_t *n,
		      struct yun_err *err);
int yn_rtnl_route_list(struct yn_rtnl *r, struct yn_rtnl_route **routes, size_t *n,
		       struct yun_err *err);

#endif
