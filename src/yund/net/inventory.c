/* inventory.c - see inventory.h. */
#include "inventory.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nft.h"

const char *yn_res_kind_name(enum yn_res_kind kind)
{
	static const char *const names[] = {"bridge", "veth", "tap", "netns", "dhcp", "nft"};

	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

struct res_list {
	struct yn_resource *v;
	size_t n, cap;
};

static struct yn_resource *res_add(struct res_list *l, enum yn_res_kind kind, const char *owner,
				   const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct yn_resource *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	struct yn_resource *r = &l->v[l->n++];

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	snprintf(r->owner, sizeof(r->owner), "%.*s", (int)sizeof(r->owner) - 1, owner);
	snprintf(r->name, sizeof(r->name), "%.*s", (int)sizeof(r->name) - 1, name);
	return r;
}

/* Entries of <run>/<sub> whose names are ids of `idkind`. */
static int scan_dir(const struct yn_ctx *ctx, const char *sub, enum yn_id_kind idkind,
		    enum yn_res_kind kind, struct res_list *l, struct yun_err *err)
{
	char dir[YN_PATH_MAX], path[YN_PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", ctx->run_dir, sub);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : yun_err_errno(err, errno, "directory %s: open", dir);
	while ((de = readdir(d))) {
		if (yn_id_check(idkind, de->d_name, NULL))
			continue;
		snprintf(path, sizeof(path), "%.300s/%.40s", dir, de->d_name);
		if (!res_add(l, kind, de->d_name, path)) {
			closedir(d);
			return yun_err_set(err, ENOMEM, "inventory: out of memory");
		}
	}
	closedir(d);
	return 0;
}

int yn_inventory(const struct yn_ctx *ctx, struct yn_resource **res, size_t *n, struct yun_err *err)
{
	static const enum yn_res_kind by_role[] = {
	    [YN_LINK_BRIDGE] = YN_RES_BRIDGE,
	    [YN_LINK_VETH] = YN_RES_VETH,
	    [YN_LINK_TAP] = YN_RES_TAP,
	};
	struct res_list l = {0};
	struct yn_link *links = NULL;
	char(*nets)[YN_ID_MAX] = NULL;
	size_t nl = 0, nn = 0;
	struct yn_rtnl r;
	int rc;

	*res = NULL;
	*n = 0;
	if ((rc = yn_rtnl_open(&r, -1, NULL, err)))
		return rc;
	rc = yn_rtnl_link_list(&r, &links, &nl, err);
	yn_rtnl_close(&r);
	if (rc)
		return rc;
	for (size_t i = 0; i < nl && !rc; i++) {
		char owner[YN_ID_MAX];
		enum yn_link_role role = yn_link_role_of(links[i].name, owner);
		struct yn_resource *e;

		if (role == YN_LINK_OTHER)
			continue;
		e = res_add(&l, by_role[role], owner, links[i].name);
		if (!e)
			rc = yun_err_set(err, ENOMEM, "inventory: out of memory");
		else
			e->stats = links[i].stats;
	}
	free(links);
	if (!rc)
		rc = scan_dir(ctx, "netns", YN_ID_INSTANCE, YN_RES_NETNS, &l, err);
	if (!rc)
		rc = scan_dir(ctx, "net", YN_ID_NETWORK, YN_RES_DHCP, &l, err);
	if (!rc)
		rc = yn_nft_networks(&nets, &nn, err);
	for (size_t i = 0; i < nn && !rc; i++)
		if (!res_add(&l, YN_RES_NFT, nets[i], "table inet " YN_NFT_TABLE))
			rc = yun_err_set(err, ENOMEM, "inventory: out of memory");
	free(nets);
	if (rc) {
		free(l.v);
		return rc;
	}
	*res = l.v;
	*n = l.n;
	return 0;
}
