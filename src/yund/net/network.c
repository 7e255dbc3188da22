/* network.c - see network.h. */
#include "network.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dhcp.h"
#include "nft.h"
#include "rtnl.h"

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"

int yn_network_init(struct yn_network *net, const char *id, const char *cidr, struct yun_err *err)
{
	int rc;

	memset(net, 0, sizeof(*net));
	if ((rc = yn_id_check(YN_ID_NETWORK, id, err)))
		return rc;
	snprintf(net->id, sizeof(net->id), "%s", id);
	return yn_cidr_parse(cidr, &net->cidr, err);
}

static int ip_forward_on(struct yun_err *err)
{
	char c = 0;
	int fd = open(IP_FORWARD, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return yun_err_errno(err, errno, "%s: open", IP_FORWARD);
	if (read(fd, &c, 1) == 1 && c == '1') {
		close(fd);
		return 0;
	}
	if (pwrite(fd, "1\n", 2, 0) != 2) {
		int e = errno;

		close(fd);
		return yun_err_errno(err, e, "%s: write 1", IP_FORWARD);
	}
	close(fd);
	return 0;
}

/* The bridge, up, with its MAC and the gateway address. */
static int bridge_ensure(struct yn_rtnl *r, const struct yn_network *net, struct yun_err *err)
{
	char name[YN_IFNAME_MAX];
	struct yn_link br;
	uint8_t mac[6];
	int rc;

	if ((rc = yn_bridge_name(net->id, name, err)) ||
	    (rc = yn_mac_for_bridge(net->id, mac, err)))
		return rc;
	rc = yn_rtnl_link_get(r, name, &br, err);
	if (rc == -ENODEV) {
		if ((rc = yn_rtnl_bridge_add(r, name, mac, err)))
			return rc;
		rc = yn_rtnl_link_get(r, name, &br, err);
	}
	if (rc)
		return rc;
	if (strcmp(br.kind, "bridge"))
		return yun_err_set(err, EEXIST,
				   "network %s: link %s exists and is not a bridge (%s)", net->id,
				   name, br.kind[0] ? br.kind : "no kind");
	if ((rc = yn_rtnl_link_set(r, br.index, name, 0, memcmp(br.mac, mac, 6) ? mac : NULL, err)))
		return rc;
	return yn_rtnl_addr_replace(r, br.index, name, yn_cidr_gateway(&net->cidr),
				    net->cidr.prefix, err);
}

int yn_network_ensure(const struct yn_ctx *ctx, const struct yn_network *net, struct yun_err *err)
{
	struct yn_rtnl r;
	int rc;

	if ((rc = yn_id_check(YN_ID_NETWORK, net->id, err)))
		return rc;
	if (net->cidr.prefix < YN_PREFIX_MIN || net->cidr.prefix > YN_PREFIX_MAX ||
	    net->cidr.addr != (net->cidr.addr & yn_cidr_mask(net->cidr.prefix)))
		return yun_err_set(err, EINVAL, "network %s: invalid cidr", net->id);
	if ((rc = ip_forward_on(err)))
		return rc;
	if ((rc = yn_rtnl_open(&r, -1, NULL, err)))
		return rc;
	rc = bridge_ensure(&r, net, err);
	yn_rtnl_close(&r);
	if (!rc)
		rc = yn_nft_network_ensure(net->id, &net->cidr, err);
	if (!rc)
		rc = yn_dhcp_ensure(ctx, net->id, &net->cidr, err);
	return rc;
}

int yn_network_remove(const struct yn_ctx *ctx, const char *net_id, struct yun_err *err)
{
	char name[YN_IFNAME_MAX];
	struct yun_err e2;
	struct yn_rtnl r;
	int rc, first;

	if ((rc = yn_bridge_name(net_id, name, err)))
		return rc;
	first = yn_dhcp_remove(ctx, net_id, err);
	rc = yn_nft_network_remove(net_id, first ? &e2 : err);
	first = first ? first : rc;
	rc = yn_rtnl_open(&r, -1, NULL, first ? &e2 : err);
	if (!rc) {
		rc = yn_rtnl_link_del(&r, name, first ? &e2 : err);
		yn_rtnl_close(&r);
	}
	return first ? first : rc;
}

int yn_host_cidrs(struct yn_cidr_use **uses, size_t *n, struct yun_err *err)
{
	struct yn_link *links = NULL;
	struct yn_rtnl_addr *addrs = NULL;
	struct yn_rtnl_route *routes = NULL;
	size_t nl = 0, na = 0, nr = 0, k = 0;
	struct yn_cidr_use *out = NULL;
	struct yn_rtnl r;
	int rc;

	*uses = NULL;
	*n = 0;
	if ((rc = yn_rtnl_open(&r, -1, NULL, err)))
		return rc;
	if ((rc = yn_rtnl_link_list(&r, &links, &nl, err)) ||
	    (rc = yn_rtnl_addr_list(&r, &addrs, &na, err)) ||
	    (rc = yn_rtnl_route_list(&r, &routes, &nr, err)))
		goto out;
	out = calloc(na + nr + 1, sizeof(*out));
	if (!out) {
		rc = yun_err_set(err, ENOMEM, "host networks: out of memory");
		goto out;
	}
	for (size_t i = 0; i < na + nr; i++) {
		bool is_addr = i < na;
		int index = is_addr ? addrs[i].index : routes[i - na].oif;
		uint32_t ip = is_addr ? addrs[i].ip : routes[i - na].dst;
		unsigned prefix = is_addr ? addrs[i].prefix : routes[i - na].prefix;
		const char *ifname = "?";
		char a[YN_IP_STRLEN], owner[YN_ID_MAX];

		if (!is_addr && prefix == 0)
			continue; /* the default route overlaps everything by design */
		for (size_t j = 0; j < nl; j++)
			if (links[j].index == index)
				ifname = links[j].name;
		if (yn_link_role_of(ifname, owner) == YN_LINK_BRIDGE)
			continue;
		out[k].cidr.prefix = prefix;
		out[k].cidr.addr = ip & yn_cidr_mask(prefix);
		if (is_addr)
			snprintf(out[k].what, sizeof(out[k].what), "address %s/%u on %s",
				 yn_ip_format(ip, a), prefix, ifname);
		else
			snprintf(out[k].what, sizeof(out[k].what), "route on %s", ifname);
		k++;
	}
	*uses = out;
	*n = k;
out:
	free(links);
	free(addrs);
	free(routes);
	yn_rtnl_close(&r);
	return rc;
}

int yn_network_check_cidr(const struct yn_cidr *cidr, const struct yn_cidr_use *networks, size_t n,
			  struct yun_err *err)
{
	struct yn_cidr_use *host;
	size_t nh;
	int rc;

	if ((rc = yn_cidr_check_free(cidr, networks, n, err)))
		return rc;
	if ((rc = yn_host_cidrs(&host, &nh, err)))
		return rc;
	rc = yn_cidr_check_free(cidr, host, nh, err);
	free(host);
	return rc;
}
