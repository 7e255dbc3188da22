/* net.c - see net.h. One request, one acknowledgement, per call. */
#include "net.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Send one request and wait for its ACK; returns 0 or -errno from the kernel. */
static int rtnl_talk(struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	unsigned int portid, seq;
	ssize_t n;
	int rc;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	seq = (unsigned int)time(NULL);
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	rc = -EIO;
	while ((n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		rc = mnl_cb_run(buf, n, seq, portid, NULL, NULL);
		if (rc <= MNL_CB_STOP)
			break;
	}
	if (n < 0)
		rc = -errno;
	else if (rc == MNL_CB_ERROR)
		rc = -errno;
	else
		rc = 0;
out:
	mnl_socket_close(nl);
	return rc;
}

static struct nlmsghdr *link_msg(char *buf, int type, int flags, struct ifinfomsg **ifm)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	*ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(**ifm));
	(*ifm)->ifi_family = AF_UNSPEC;
	return nlh;
}

int ct_net_veth_create(const char *host_if, const char *peer_if, pid_t peer_ns_pid,
		       struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlattr *linkinfo, *data, *peer;
	struct ifinfomsg *ifm, *pifm;
	struct nlmsghdr *nlh;
	int rc;

	nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifm);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, host_if);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* The peer's attributes follow its own struct ifinfomsg. */
	pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
	pifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_if);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_PID, (uint32_t)peer_ns_pid);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	rc = rtnl_talk(nlh);
	if (rc == -EEXIST)
		return yun_err_set(err, EEXIST, "veth %s: a network device with this name exists",
				   host_if);
	if (rc)
		return yun_err_errno(err, -rc, "veth %s: create", host_if);
	return ct_net_link_up(host_if, err);
}

int ct_net_link_up(const char *name, struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh;
	int rc;

	nlh = link_msg(buf, RTM_NEWLINK, 0, &ifm);
	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	rc = rtnl_talk(nlh);
	if (rc)
		return yun_err_errno(err, -rc, "link %s: set up", name);
	return 0;
}

int ct_net_link_delete(const char *name, struct yun_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh;
	int rc;

	nlh = link_msg(buf, RTM_DELLINK, 0, &ifm);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	rc = rtnl_talk(nlh);
	if (rc == -ENODEV || rc == -ENOENT)
		return 0;
	if (rc)
		return yun_err_errno(err, -rc, "link %s: delete", name);
	return 0;
}

bool ct_net_link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}
