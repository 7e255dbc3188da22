/*
 * v1_networks.c - /v1/networks: stored here; the network service (net/,
 * wired in through compute/netplug.h) makes them real.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compute/reconcile.h"
#include "../core/notify.h"
#include "../core/render.h"
#include "../net/net.h"
#include "../store/store.h"
#include "../yund.h"
#include "body.h"
#include "v1.h"

/* IPv4 a.b.c.d/len, len 8..30, no host bits. */
static int parse_cidr(const char *s, uint32_t *net, int *len, struct yun_err *err)
{
	char addr[32];
	const char *slash = strchr(s, '/');
	struct in_addr in;
	char *end;
	long l;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return yun_err_set(err, ERANGE,
				   "field cidr: \"%.40s\": must be an IPv4 prefix "
				   "like 10.10.0.0/24",
				   s);
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	errno = 0;
	l = strtol(slash + 1, &end, 10);
	if (inet_pton(AF_INET, addr, &in) != 1 || *end || end == slash + 1 || errno)
		return yun_err_set(err, ERANGE,
				   "field cidr: \"%.40s\": must be an IPv4 prefix "
				   "like 10.10.0.0/24",
				   s);
	if (l < 8 || l > 30)
		return yun_err_set(err, ERANGE, "field cidr: %s: prefix length must be 8..30", s);
	*net = ntohl(in.s_addr);
	*len = (int)l;
	if (*net & ~(0xffffffffu << (32 - l))) {
		struct in_addr fixed = {.s_addr = htonl(*net & (0xffffffffu << (32 - l)))};
		char buf[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &fixed, buf, sizeof(buf));
		return yun_err_set(err, ERANGE, "field cidr: %s: host bits set (%s/%ld?)", s, buf,
				   l);
	}
	return 0;
}

/*
 * The network module's checks: no reserved range (ERANGE, 422), no
 * overlap with another network or with an address or route of this host
 * (EBUSY, 409).
 */
static int check_free(const char *cidr, const struct st_network *v, size_t n, struct yun_err *err)
{
	struct yn_cidr_use *uses = calloc(n + 1, sizeof(*uses));
	struct yn_cidr c;
	size_t k = 0;
	int rc;

	if (!uses)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = yn_cidr_parse(cidr, &c, err);
	if (rc) {
		free(uses);
		err->code = ERANGE;
		return -ERANGE;
	}
	for (size_t i = 0; i < n; i++) {
		if (yn_cidr_parse(v[i].cidr, &uses[k].cidr, NULL) == 0) {
			snprintf(uses[k].what, sizeof(uses[k].what), "network %s", v[i].m.name);
			k++;
		}
	}
	rc = yn_network_check_cidr(&c, uses, k, err);
	free(uses);
	if (rc && err->code == EEXIST) {
		err->code = EBUSY; /* taken, not "name taken": 409 either way */
		rc = -EBUSY;
	}
	return rc;
}

void v1_networks_list(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_network *v;
	size_t n;
	json_t *items;

	if (s->ops->network_list(s, &v, &n, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	items = json_array();
	for (size_t i = 0; i < n && items; i++)
		json_array_append_new(items, render_network(&v[i]));
	free(v);
	api_reply_json(rep, 200, render_list(items));
}

void v1_network_get(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_network net;

	if (s->ops->network_get(s, req->params[0], &net, &err) < 0)
		api_reply_err(rep, &err);
	else
		api_reply_json(rep, 200, render_network(&net));
}

void v1_network_create(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"name", BODY_STRING, true, 0, 0, 0},
	    {"cidr", BODY_STRING, true, 0, 64, 0},
	};
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_network net = {0}, *v = NULL;
	uint32_t addr;
	size_t n = 0;
	int len;
	json_t *b = NULL;

	if (body_parse(req->body, req->body_len, false, &b, &err) < 0 ||
	    body_check(b, fields, sizeof(fields) / sizeof(fields[0]), &err) < 0 ||
	    obj_check_name("network", yun_json_str_or(b, "name", ""), &err) < 0 ||
	    parse_cidr(yun_json_str_or(b, "cidr", ""), &addr, &len, &err) < 0)
		goto fail;
	if (s->ops->network_list(s, &v, &n, &err) < 0)
		goto fail;
	if (check_free(yun_json_str_or(b, "cidr", ""), v, n, &err) < 0) {
		free(v);
		goto fail;
	}
	free(v);
	obj_new_id("net", net.m.id);
	snprintf(net.m.name, sizeof(net.m.name), "%s", yun_json_str_or(b, "name", ""));
	snprintf(net.m.project, sizeof(net.m.project), OBJ_PROJECT_DEFAULT);
	obj_now(net.m.created_at);
	memcpy(net.m.updated_at, net.m.created_at, sizeof(net.m.updated_at));
	snprintf(net.cidr, sizeof(net.cidr), "%s", yun_json_str_or(b, "cidr", ""));
	snprintf(net.desired, sizeof(net.desired), "active");
	snprintf(net.state, sizeof(net.state), "creating");
	json_decref(b);
	b = NULL;
	if (s->ops->network_create(s, &net, &err) < 0)
		goto fail;
	notify_network(req->y, "created", &net);
	rec_kick(req->y->rec);
	api_reply_json(rep, 202, render_network(&net));
	return;
fail:
	json_decref(b);
	api_reply_err(rep, &err);
}

void v1_network_delete(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_network net;

	if (s->ops->network_request_delete(s, req->params[0], &net, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	notify_network(req->y, "state", &net);
	rec_kick(req->y->rec);
	api_reply_json(rep, 202, render_network(&net));
}
