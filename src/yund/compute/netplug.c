/*
 * netplug.c - networks and instance ports through the network module
 * (net/net.h). See netplug.h.
 *
 * No inventory sweep (yn_inventory): bridges, veths and nftables rules
 * have host-wide names, so on a machine running several yunds (tests) the
 * inventory shows the others' too. None is needed for crash safety: the
 * loop removes host resources before the row that owns them, so a row
 * (desired = deleted) survives any crash until its resources are gone.
 */
#include "netplug.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/log.h"
#include "../core/notify.h"
#include "../net/net.h"
#include "../yund.h"

#define RETRY_S 10 /* a network that failed to come up is tried again after this */

/* Per network, in memory: made (ensured) by this process, or when to try again. */
struct net_rt {
	char id[OBJ_ID_MAX];
	bool ensured;
	time_t retry_at;
};

static struct yn_ctx ctx;
static bool ctx_ready;
static struct net_rt *rts;
static size_t n_rts;

static int ready(struct yund *y, struct yun_err *err)
{
	if (ctx_ready)
		return 0;
	if (yn_ctx_init(&ctx, y->cfg->run, err) < 0)
		return -err->code;
	ctx_ready = true;
	return 0;
}

static struct net_rt *rt_get(const char *id)
{
	struct net_rt *nv;

	for (size_t i = 0; i < n_rts; i++)
		if (!strcmp(rts[i].id, id))
			return &rts[i];
	nv = realloc(rts, (n_rts + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	rts = nv;
	memset(&rts[n_rts], 0, sizeof(*nv));
	snprintf(rts[n_rts].id, sizeof(rts[n_rts].id), "%s", id);
	return &rts[n_rts++];
}

static void update(struct yund *y, struct st_network *net, const char *state)
{
	if (!strcmp(net->state, state))
		return;
	snprintf(net->state, sizeof(net->state), "%s", state);
	if (y->store->ops->network_update(y->store, net, NULL) == 0)
		notify_network(y, "state", net);
}

static void one_network(struct yund *y, struct st_network *row)
{
	struct yun_err err = {0};
	struct yn_network net;
	struct net_rt *rt = rt_get(row->m.id);
	char ip[YN_IP_STRLEN], bridge[YN_IFNAME_MAX];

	if (!rt)
		return;
	if (!strcmp(row->desired, "deleted")) {
		if (yn_network_remove(&ctx, row->m.id, &err) < 0) {
			yun_warn("network %s: %s", row->m.name, err.msg);
			return;
		}
		if (y->store->ops->network_delete(y->store, row->m.id, &err) < 0) {
			yun_warn("%s", err.msg);
			return;
		}
		rt->ensured = false;
		snprintf(row->state, sizeof(row->state), "deleted");
		notify_network(y, "deleted", row);
		return;
	}
	/* Made once per process: at start that repairs whatever a crash left. */
	if (rt->ensured || time(NULL) < rt->retry_at)
		return;
	if (yn_network_init(&net, row->m.id, row->cidr, &err) < 0 ||
	    yn_network_ensure(&ctx, &net, &err) < 0 ||
	    yn_bridge_name(row->m.id, bridge, &err) < 0) {
		yun_warn("network %s: %s", row->m.name, err.msg);
		rt->retry_at = time(NULL) + RETRY_S;
		update(y, row, "failed");
		return;
	}
	rt->ensured = true;
	yn_ip_format(yn_cidr_gateway(&net.cidr), ip);
	if (strcmp(row->gateway, ip) || strcmp(row->bridge, bridge)) {
		snprintf(row->gateway, sizeof(row->gateway), "%s", ip);
		snprintf(row->bridge, sizeof(row->bridge), "%s", bridge);
		row->state[0] = '\0'; /* make update() write the new fields */
	}
	update(y, row, "active");
}

void netplug_networks(struct yund *y)
{
	struct store *s = y->store;
	struct st_network *v;
	struct yun_err err = {0};
	size_t n;

	if (ready(y, &err) < 0) {
		yun_warn("%s", err.msg);
		return;
	}
	if (s->ops->network_list(s, &v, &n, NULL) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		one_network(y, &v[i]);
	free(v);
}

/* The instance's address: the one it had, else the lowest free one. */
static int pick_ip(struct yund *y, const struct st_instance *in, const struct yn_network *net,
		   uint32_t *ip, struct yun_err *err)
{
	struct st_instance *v;
	uint32_t *used;
	size_t n, k = 0;
	int rc;

	if (in->ip[0] && yn_ip_parse(in->ip, ip) == 0 && yn_ipam_check(&net->cidr, *ip, NULL) == 0)
		return 0;
	rc = y->store->ops->instance_list(y->store, &v, &n, err);
	if (rc)
		return rc;
	used = calloc(n + 1, sizeof(*used));
	if (!used) {
		st_instances_free(v, n);
		return yun_err_set(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].network_id, in->network_id) && strcmp(v[i].m.id, in->m.id) &&
		    yn_ip_parse(v[i].ip, &used[k]) == 0)
			k++;
	rc = yn_ipam_alloc(&net->cidr, used, k, ip, err);
	free(used);
	st_instances_free(v, n);
	return rc;
}

/* The port of either kind: a netns with a veth (containers) or a TAP (microVMs). */
static int attach(struct yund *y, const struct st_instance *in, bool tap, char *netns,
		  size_t netns_len, char *ip, size_t ip_len, char *mac, size_t mac_len,
		  struct yun_err *err)
{
	struct st_network row;
	struct yn_network net;
	char path[YN_PATH_MAX], ipbuf[YN_IP_STRLEN];
	uint8_t m[6];
	uint32_t addr;
	int rc;

	if (netns_len)
		netns[0] = '\0';
	if (!in->network_id[0]) {
		if (ip_len)
			ip[0] = '\0';
		if (mac_len)
			mac[0] = '\0';
		return 0; /* no network: the container gets only lo (--net none) */
	}
	rc = ready(y, err);
	if (!rc)
		rc = y->store->ops->network_get(y->store, in->network_id, &row, err);
	if (rc)
		return rc;
	if (strcmp(row.state, "active"))
		return yun_err_set(err, EAGAIN, "network %s: is %s", row.m.name, row.state);
	rc = yn_network_init(&net, row.m.id, row.cidr, err);
	if (!rc)
		rc = pick_ip(y, in, &net, &addr, err);
	if (!rc && tap) {
		char name[YN_IFNAME_MAX];

		rc = yn_port_ensure_tap(&ctx, &net, in->m.id, addr, NULL, name, err);
		snprintf(path, sizeof(path), "%s", name);
	} else if (!rc) {
		rc = yn_port_ensure_ct(&ctx, &net, in->m.id, addr, NULL, path, err);
	}
	if (!rc)
		rc = yn_mac_for_instance(in->m.id, m, err);
	if (rc)
		return rc;
	snprintf(netns, netns_len, "%s", path);
	snprintf(ip, ip_len, "%s", yn_ip_format(addr, ipbuf));
	snprintf(mac, mac_len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return 0;
}

int netplug_instance_attach(struct yund *y, const struct st_instance *in, char *netns,
			    size_t netns_len, char *ip, size_t ip_len, char *mac, size_t mac_len,
			    struct yun_err *err)
{
	return attach(y, in, false, netns, netns_len, ip, ip_len, mac, mac_len, err);
}

int netplug_instance_attach_tap(struct yund *y, const struct st_instance *in, char *tap,
				size_t tap_len, char *ip, size_t ip_len, char *mac, size_t mac_len,
				struct yun_err *err)
{
	return attach(y, in, true, tap, tap_len, ip, ip_len, mac, mac_len, err);
}

int netplug_instance_detach(struct yund *y, const struct st_instance *in, struct yun_err *err)
{
	int rc = ready(y, err);

	if (rc)
		return rc;
	return yn_port_remove(&ctx, in->m.id, err);
}

void netplug_free(void)
{
	free(rts);
	rts = NULL;
	n_rts = 0;
}
