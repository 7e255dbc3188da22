/* rtnl.c - see rtnl.h. */
#include "rtnl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Large enough for any dump part the kernel sends (it sizes them to our reads). */
#define RTNL_BUF_SIZE 65536

int yn_rtnl_open(struct yn_rtnl *r, int netns_fd, const char *netns_name, struct yun_err *err)
{
	int self = -1, rc = 0;

	memset(r, 0, sizeof(*r));
	if (netns_fd >= 0)
		snprintf(r->where, sizeof(r->where), " in netns %.36s", netns_name);
	r->buf = malloc(RTNL_BUF_SIZE);
	if (!r->buf)
		return yun_err_set(err, ENOMEM, "netlink%s: out of memory", r->where);
	/*
	 * A netlink socket belongs to the namespace it was created in, so this
	 * thread steps into the target namespace just long enough to create it
	 * (setns(CLONE_NEWNET) affects only the calling thread).
	 */
	if (netns_fd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0) {
			rc = yun_err_errno(err, errno, "netlink%s: open own namespace", r->where);
			goto fail;
		}
		if (setns(netns_fd, CLONE_NEWNET) < 0) {
			rc = yun_err_errno(err, errno, "netlink%s: enter", r->where);
			goto fail;
		}
	}
	r->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!r->nl)
		rc = yun_err_errno(err, errno, "netlink%s: open socket", r->where);
	if (self >= 0 && setns(self, CLONE_NEWNET) < 0) {
		/* Cannot happen short of a kernel bug; this thread would be stranded. */
		rc = yun_err_errno(err, errno, "netlink%s: return to own namespace", r->where);
		abort();
	}
	if (rc)
		goto fail;
	if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = yun_err_errno(err, errno, "netlink%s: bind", r->where);
		goto fail;
	}
	r->portid = mnl_socket_get_portid(r->nl);
	r->seq = (unsigned int)getpid() << 8;
	if (self >= 0)
		close(self);
	return 0;
fail:
	if (self >= 0)
		close(self);
	yn_rtnl_close(r);
	return rc;
}

void yn_rtnl_close(struct yn_rtnl *r)
{
	if (r->nl)
		mnl_socket_close(r->nl);
	r->nl = NULL;
	free(r->buf);
	r->buf = NULL;
}

/*
 * Send one request and read until its ACK (or the end of a dump), feeding
 * every reply message to cb. Returns 0 or -errno (the kernel's).
 */
static int talk(struct yn_rtnl *r, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	unsigned int seq = ++r->seq;
	ssize_t n;
	int rc;

	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(r->nl, r->buf, RTNL_BUF_SIZE);
		if (n < 0)
			return -errno;
		errno = 0;
		rc = mnl_cb_run(r->buf, (size_t)n, seq, r->portid, cb, data);
		if (rc == MNL_CB_ERROR)
			return errno ? -errno : -EIO;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

static struct nlmsghdr *link_msg(char *buf, int type, int flags, struct ifinfomsg **ifm)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = (uint16_t)type;
	nlh->nlmsg_flags = (uint16_t)flags;
	*ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(**ifm));
	(*ifm)->ifi_family = AF_UNSPEC;
	return nlh;
}

/* --- links --------------------------------------------------------------- */

struct link_list {
	struct yn_link *v;
	size_t n, cap;
	int oom;
};

static int linkinfo_attr_cb(const struct nlattr *a, void *data)
{
	struct yn_link *l = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
		snprintf(l->kind, sizeof(l->kind), "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *data)
{
	struct yn_link *l = data;
	uint16_t len = mnl_attr_get_payload_len(a);

	switch (mnl_attr_get_type(a)) {
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
			snprintf(l->name, sizeof(l->name), "%s", mnl_attr_get_str(a));
		break;
	case IFLA_MASTER:
		if (len >= 4)
			l->master = (int)mnl_attr_get_u32(a);
		break;
	case IFLA_LINK:
		if (len >= 4)
			l->peer = (int)mnl_attr_get_u32(a);
		break;
	case IFLA_ADDRESS:
		if (len == 6)
			memcpy(l->mac, mnl_attr_get_payload(a), 6);
		break;
	case IFLA_LINKINFO:
		mnl_attr_parse_nested(a, linkinfo_attr_cb, l);
		break;
	case IFLA_STATS64:
		if (len >= sizeof(struct rtnl_link_stats64)) {
			struct rtnl_link_stats64 s;

			memcpy(&s, mnl_attr_get_payload(a), sizeof(s));
			l->stats = (struct yn_link_stats){
			    .rx_bytes = s.rx_bytes,
			    .rx_packets = s.rx_packets,
			    .rx_errors = s.rx_errors,
			    .rx_dropped = s.rx_dropped,
			    .tx_bytes = s.tx_bytes,
			    .tx_packets = s.tx_packets,
			    .tx_errors = s.tx_errors,
			    .tx_dropped = s.tx_dropped,
			};
		}
		break;
	}
	return MNL_CB_OK;
}

static void parse_link(const struct nlmsghdr *nlh, struct yn_link *l)
{
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	memset(l, 0, sizeof(*l));
	l->index = ifm->ifi_index;
	l->flags = ifm->ifi_flags;
	mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, l);
}

static int link_one_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type == RTM_NEWLINK)
		parse_link(nlh, data);
	return MNL_CB_OK;
}

static int link_list_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_list *ll = data;

	if (nlh->nlmsg_type != RTM_NEWLINK || ll->oom)
		return MNL_CB_OK;
	if (ll->n == ll->cap) {
		size_t cap = ll->cap ? 2 * ll->cap : 16;
		struct yn_link *v = realloc(ll->v, cap * sizeof(*v));

		if (!v) {
			ll->oom = 1;
			return MNL_CB_OK;
		}
		ll->v = v;
		ll->cap = cap;
	}
	parse_link(nlh, &ll->v[ll->n++]);
	return MNL_CB_OK;
}

int yn_rtnl_link_get(struct yn_rtnl *r, const char *name, struct yn_link *link, struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh = link_msg(buf, RTM_GETLINK, 0, &ifm);
	int rc;

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	memset(link, 0, sizeof(*link));
	rc = talk(r, nlh, link_one_cb, link);
	if (rc == -ENODEV)
		return rc;
	if (rc)
		return yun_err_errno(err, -rc, "link %s%s: query", name, r->where);
	if (!link->index)
		return yun_err_set(err, EIO, "link %s%s: no answer from the kernel", name,
				   r->where);
	return 0;
}

int yn_rtnl_link_list(struct yn_rtnl *r, struct yn_link **links, size_t *n, struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh = link_msg(buf, RTM_GETLINK, NLM_F_DUMP, &ifm);
	struct link_list ll = {0};
	int rc = talk(r, nlh, link_list_cb, &ll);

	if (!rc && ll.oom)
		rc = -ENOMEM;
	if (rc) {
		free(ll.v);
		return yun_err_errno(err, -rc, "links%s: list", r->where);
	}
	*links = ll.v;
	*n = ll.n;
	return 0;
}

int yn_rtnl_bridge_add(struct yn_rtnl *r, const char *name, const uint8_t mac[6],
		       struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifm);
	struct nlattr *info;
	int rc;

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, info);
	rc = talk(r, nlh, NULL, NULL);
	if (rc)
		return yun_err_errno(err, -rc, "link %s%s: create bridge", name, r->where);
	return 0;
}

int yn_rtnl_veth_add(struct yn_rtnl *r, const char *name, const char *peer, int peer_netns_fd,
		     const uint8_t peer_mac[6], struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm, *pifm;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifm);
	struct nlattr *info, *data, *pattr;
	int rc;

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	pattr = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* The peer's attributes follow its own struct ifinfomsg. */
	pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
	pifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, peer_mac);
	if (peer_netns_fd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	mnl_attr_nest_end(nlh, pattr);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	rc = talk(r, nlh, NULL, NULL);
	if (rc)
		return yun_err_errno(err, -rc, "link %s%s: create veth (peer %s)", name, r->where,
				     peer);
	return 0;
}

int yn_rtnl_link_set(struct yn_rtnl *r, int index, const char *name, int master, const uint8_t *mac,
		     struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, &ifm);
	int rc;

	ifm->ifi_index = index;
	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	if (master > 0)
		mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
	if (mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	rc = talk(r, nlh, NULL, NULL);
	if (rc)
		return yun_err_errno(err, -rc, "link %s%s: set up%s%s", name, r->where,
				     master > 0 ? ", attach to bridge" : "",
				     mac ? ", set mac" : "");
	return 0;
}

int yn_rtnl_link_del(struct yn_rtnl *r, const char *name, struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh = link_msg(buf, RTM_DELLINK, 0, &ifm);
	int rc;

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	rc = talk(r, nlh, NULL, NULL);
	if (rc == -ENODEV || rc == -ENOENT)
		return 0;
	if (rc)
		return yun_err_errno(err, -rc, "link %s%s: delete", name, r->where);
	return 0;
}

/* --- addresses and routes ------------------------------------------------ */

int yn_rtnl_addr_replace(struct yn_rtnl *r, int index, const char *name, uint32_t ip,
			 unsigned prefix, struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	uint32_t mask = prefix ? ~(0xffffffffu >> prefix) : 0;
	uint32_t be_ip = htonl(ip), be_brd = htonl(ip | ~mask);
	char s[INET_ADDRSTRLEN];
	int rc;

	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (uint8_t)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)index;
	mnl_attr_put(nlh, IFA_LOCAL, 4, &be_ip);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, &be_ip);
	if (prefix < 31)
		mnl_attr_put(nlh, IFA_BROADCAST, 4, &be_brd);
	rc = talk(r, nlh, NULL, NULL);
	if (rc)
		return yun_err_errno(err, -rc, "link %s%s: add address %s/%u", name, r->where,
				     inet_ntop(AF_INET, &be_ip, s, sizeof(s)), prefix);
	return 0;
}

int yn_rtnl_addr_del(struct yn_rtnl *r, int index, const char *name, uint32_t ip, unsigned prefix,
		     struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	uint32_t be_ip = htonl(ip);
	char s[INET_ADDRSTRLEN];
	int rc;

	nlh->nlmsg_type = RTM_DELADDR;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (uint8_t)prefix;
	ifa->ifa_index = (uint32_t)index;
	mnl_attr_put(nlh, IFA_LOCAL, 4, &be_ip);
	rc = talk(r, nlh, NULL, NULL);
	if (rc == -EADDRNOTAVAIL || rc == -ENOENT)
		return 0;
	if (rc)
		return yun_err_errno(err, -rc, "link %s%s: remove address %s/%u", name, r->where,
				     inet_ntop(AF_INET, &be_ip, s, sizeof(s)), prefix);
	return 0;
}

int yn_rtnl_route_default(struct yn_rtnl *r, int index, const char *name, uint32_t gw,
			  struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	uint32_t be_gw = htonl(gw);
	char s[INET_ADDRSTRLEN];
	int rc;

	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_GATEWAY, 4, &be_gw);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)index);
	rc = talk(r, nlh, NULL, NULL);
	if (rc)
		return yun_err_errno(err, -rc, "link %s%s: default route via %s", name, r->where,
				     inet_ntop(AF_INET, &be_gw, s, sizeof(s)));
	return 0;
}

struct vec {
	void *v;
	size_t n, cap, size;
	int oom;
};

static void *vec_push(struct vec *v)
{
	if (v->oom)
		return NULL;
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 16;
		void *p = realloc(v->v, cap * v->size);

		if (!p) {
			v->oom = 1;
			return NULL;
		}
		v->v = p;
		v->cap = cap;
	}
	return (char *)v->v + v->size * v->n++;
}

static int addr_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if ((type == IFA_LOCAL || type == IFA_ADDRESS) && mnl_attr_get_payload_len(a) == 4)
		tb[type] = a;
	return MNL_CB_OK;
}

static int addr_list_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = {0};
	struct yn_rtnl_addr *a;
	const struct nlattr *ip;
	uint32_t be;

	if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb);
	ip = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!ip || !(a = vec_push(data)))
		return MNL_CB_OK;
	memcpy(&be, mnl_attr_get_payload(ip), 4);
	a->index = (int)ifa->ifa_index;
	a->ip = ntohl(be);
	a->prefix = ifa->ifa_prefixlen;
	return MNL_CB_OK;
}

int yn_rtnl_addr_list(struct yn_rtnl *r, struct yn_rtnl_addr **addrs, size_t *n,
		      struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct vec v = {.size = sizeof(struct yn_rtnl_addr)};
	struct ifaddrmsg *ifa;
	int rc;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	rc = talk(r, nlh, addr_list_cb, &v);
	if (!rc && v.oom)
		rc = -ENOMEM;
	if (rc) {
		free(v.v);
		return yun_err_errno(err, -rc, "addresses%s: list", r->where);
	}
	*addrs = v.v;
	*n = v.n;
	return 0;
}

static int route_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if ((type == RTA_DST || type == RTA_OIF || type == RTA_TABLE) &&
	    mnl_attr_get_payload_len(a) == 4)
		tb[type] = a;
	return MNL_CB_OK;
}

static int route_list_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = {0};
	struct yn_rtnl_route *rt;
	uint32_t table, be = 0;

	if (nlh->nlmsg_type != RTM_NEWROUTE || rtm->rtm_family != AF_INET ||
	    rtm->rtm_type != RTN_UNICAST)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
	table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (table != RT_TABLE_MAIN || !(rt = vec_push(data)))
		return MNL_CB_OK;
	if (tb[RTA_DST])
		memcpy(&be, mnl_attr_get_payload(tb[RTA_DST]), 4);
	rt->dst = ntohl(be);
	rt->prefix = rtm->rtm_dst_len;
	rt->oif = tb[RTA_OIF] ? (int)mnl_attr_get_u32(tb[RTA_OIF]) : 0;
	return MNL_CB_OK;
}

int yn_rtnl_route_list(struct yn_rtnl *r, struct yn_rtnl_route **routes, size_t *n,
		       struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct vec v = {.size = sizeof(struct yn_rtnl_route)};
	struct rtmsg *rtm;
	int rc;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_DUMP;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rc = talk(r, nlh, route_list_cb, &v);
	if (!rc && v.oom)
		rc = -ENOMEM;
	if (rc) {
		free(v.v);
		return yun_err_errno(err, -rc, "routes%s: list", r->where);
	}
	*routes = v.v;
	*n = v.n;
	return 0;
}
