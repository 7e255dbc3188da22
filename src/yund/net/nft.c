/* nft.c - see nft.h. */
#include "nft.h"

#include <errno.h>
#include <jansson.h>
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAINS                                                                                     \
	"add table inet " YN_NFT_TABLE "\n"                                                        \
	"add chain inet " YN_NFT_TABLE " postrouting"                                              \
	" { type nat hook postrouting priority srcnat; policy accept; }\n"                         \
	"add chain inet " YN_NFT_TABLE " forward"                                                  \
	" { type filter hook forward priority filter; policy accept; }\n"

/* How many rules yn_nft_rules() puts in each chain. */
#define RULES_POSTROUTING 1
#define RULES_FORWARD	  3

int yn_nft_rules(const char *net_id, const char *bridge, const struct yn_cidr *cidr, char *buf,
		 size_t len)
{
	char c[YN_CIDR_STRLEN];
	int n;

	yn_cidr_format(cidr, c);
	n = snprintf(buf, len,
		     "add rule inet " YN_NFT_TABLE " postrouting"
		     " ip saddr %s oifname != \"yb-*\" masquerade comment \"%s\"\n"
		     "add rule inet " YN_NFT_TABLE " forward"
		     " iifname \"%s\" oifname \"yb-*\" oifname != \"%s\" drop comment \"%s\"\n"
		     "add rule inet " YN_NFT_TABLE " forward"
		     " oifname \"%s\" iifname != \"%s\" drop comment \"%s\"\n"
		     "add rule inet " YN_NFT_TABLE " forward"
		     " iifname \"%s\" accept comment \"%s\"\n",
		     c, net_id, bridge, bridge, net_id, bridge, bridge, net_id, bridge, net_id);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

/*
 * Run nft commands; with `out`, the output (JSON with handles when `json`)
 * is returned malloc'd. *absent is set (if given) when the command failed
 * only because the table does not exist.
 */
static int nft_run(const char *cmds, bool json, char **out, bool *absent, struct yun_err *err)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	const char *e;
	int rc = 0;

	if (absent)
		*absent = false;
	if (!nft)
		return yun_err_set(err, ENOMEM, "nftables: cannot create a context");
	if (nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		rc = yun_err_set(err, ENOMEM, "nftables: cannot buffer output");
		goto out;
	}
	if (json)
		nft_ctx_output_set_flags(nft, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
	if (nft_run_cmd_from_buffer(nft, cmds) != 0) {
		char line[300];
		size_t n;

		e = nft_ctx_get_error_buffer(nft);
		if (absent && e && strstr(e, "No such file or directory")) {
			*absent = true;
			rc = -ENOENT;
			goto out;
		}
		/* The first line of nft's message says it all. */
		snprintf(line, sizeof(line), "%s", e && *e ? e : "failed");
		n = strcspn(line, "\n");
		line[n] = '\0';
		rc = yun_err_set(err, EIO, "nftables table inet %s: %s", YN_NFT_TABLE, line);
		goto out;
	}
	if (out) {
		*out = strdup(nft_ctx_get_output_buffer(nft) ?: "");
		if (!*out)
			rc = yun_err_set(err, ENOMEM, "nftables: out of memory");
	}
out:
	nft_ctx_free(nft);
	return rc;
}

struct nft_rule {
	char chain[32];
	char comment[YN_ID_MAX];
	long long handle;
};

/* The table's rules (chain, comment, handle); an absent table has none. */
static int list_rules(struct nft_rule **rules, size_t *n, struct yun_err *err)
{
	char *text = NULL;
	json_t *root, *items, *item;
	json_error_t jerr;
	size_t i, count = 0;
	bool absent;
	int rc;

	*rules = NULL;
	*n = 0;
	rc = nft_run("list table inet " YN_NFT_TABLE, true, &text, &absent, err);
	if (absent)
		return 0;
	if (rc)
		return rc;
	root = json_loads(text, 0, &jerr);
	free(text);
	items = root ? json_object_get(root, "nftables") : NULL;
	if (!json_is_array(items)) {
		json_decref(root);
		return yun_err_set(err, EIO, "nftables table inet %s: unreadable listing",
				   YN_NFT_TABLE);
	}
	*rules = calloc(json_array_size(items) + 1, sizeof(**rules));
	if (!*rules) {
		json_decref(root);
		return yun_err_set(err, ENOMEM, "nftables: out of memory");
	}
	json_array_foreach(items, i, item)
	{
		json_t *rule = json_object_get(item, "rule");
		const char *chain, *comment;

		if (!json_is_object(rule))
			continue;
		chain = json_string_value(json_object_get(rule, "chain"));
		comment = json_string_value(json_object_get(rule, "comment"));
		snprintf((*rules)[count].chain, sizeof((*rules)[count].chain), "%s",
			 chain ? chain : "");
		snprintf((*rules)[count].comment, sizeof((*rules)[count].comment), "%s",
			 comment ? comment : "");
		(*rules)[count].handle = json_integer_value(json_object_get(rule, "handle"));
		count++;
	}
	json_decref(root);
	*n = count;
	return 0;
}

/* Append "delete rule" commands for the rules tagged `comment`. */
static size_t add_deletes(char *buf, size_t len, size_t off, const struct nft_rule *rules, size_t n,
			  const char *comment)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rules[i].comment, comment))
			continue;
		int w = snprintf(buf + off, off < len ? len - off : 0,
				 "delete rule inet " YN_NFT_TABLE " %s handle %lld\n",
				 rules[i].chain, rules[i].handle);
		off += w > 0 ? (size_t)w : 0;
	}
	return off;
}

int yn_nft_network_ensure(const char *net_id, const struct yn_cidr *cidr, struct yun_err *err)
{
	char bridge[YN_IFNAME_MAX], *buf;
	struct nft_rule *rules;
	size_t n, off, len, post = 0, fwd = 0;
	bool have_base = false;
	int rc, w;

	if ((rc = yn_bridge_name(net_id, bridge, err)))
		return rc;
	if ((rc = list_rules(&rules, &n, err)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(rules[i].chain, "forward") &&
		    !strcmp(rules[i].comment, YN_NFT_BASE_COMMENT))
			have_base = true;
		if (strcmp(rules[i].comment, net_id))
			continue;
		if (!strcmp(rules[i].chain, "postrouting"))
			post++;
		else if (!strcmp(rules[i].chain, "forward"))
			fwd++;
	}
	if (have_base && post == RULES_POSTROUTING && fwd == RULES_FORWARD) {
		free(rules);
		return 0;
	}
	len = 1024 + 96 * n;
	buf = malloc(len);
	if (!buf) {
		free(rules);
		return yun_err_set(err, ENOMEM, "nftables: out of memory");
	}
	off = (size_t)snprintf(buf, len, "%s", CHAINS);
	/* The conntrack shortcut must stay first in forward: insert, not add. */
	if (!have_base)
		off += (size_t)snprintf(buf + off, len - off,
					"insert rule inet " YN_NFT_TABLE " forward"
					" ct state established,related accept comment \"%s\"\n",
					YN_NFT_BASE_COMMENT);
	off = add_deletes(buf, len, off, rules, n, net_id);
	free(rules);
	w = off < len ? yn_nft_rules(net_id, bridge, cidr, buf + off, len - off) : -ENOSPC;
	if (w < 0) {
		free(buf);
		return yun_err_set(err, ENOSPC, "network %s: nftables commands too long", net_id);
	}
	rc = nft_run(buf, false, NULL, NULL, err);
	free(buf);
	return rc;
}

int yn_nft_network_remove(const char *net_id, struct yun_err *err)
{
	struct nft_rule *rules;
	size_t n, off = 0, len, others = 0;
	char *buf;
	int rc;

	if ((rc = yn_id_check(YN_ID_NETWORK, net_id, err)))
		return rc;
	if ((rc = list_rules(&rules, &n, err)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rules[i].comment, net_id) && !strncmp(rules[i].comment, "net-", 4))
			others++;
	}
	if (n == 0) {
		/* No rules: either no table, or an empty one left behind. */
		bool absent;

		free(rules);
		rc = nft_run("delete table inet " YN_NFT_TABLE, false, NULL, &absent, err);
		return absent ? 0 : rc;
	}
	len = 128 + 96 * n;
	buf = malloc(len);
	if (!buf) {
		free(rules);
		return yun_err_set(err, ENOMEM, "nftables: out of memory");
	}
	if (others == 0)
		off = (size_t)snprintf(buf, len, "delete table inet " YN_NFT_TABLE "\n");
	else
		off = add_deletes(buf, len, 0, rules, n, net_id);
	free(rules);
	rc = off ? nft_run(buf, false, NULL, NULL, err) : 0;
	free(buf);
	return rc;
}

int yn_nft_networks(char (**ids)[YN_ID_MAX], size_t *n, struct yun_err *err)
{
	struct nft_rule *rules;
	size_t count, k = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((rc = list_rules(&rules, &count, err)))
		return rc;
	*ids = calloc(count + 1, sizeof(**ids));
	if (!*ids) {
		free(rules);
		return yun_err_set(err, ENOMEM, "nftables: out of memory");
	}
	for (size_t i = 0; i < count; i++) {
		bool seen = false;

		if (yn_id_check(YN_ID_NETWORK, rules[i].comment, NULL))
			continue;
		for (size_t j = 0; j < k; j++)
			seen = seen || !strcmp((*ids)[j], rules[i].comment);
		if (!seen)
			snprintf((*ids)[k++], YN_ID_MAX, "%s", rules[i].comment);
	}
	free(rules);
	*n = k;
	return 0;
}

int yn_nft_dump(char **text, struct yun_err *err)
{
	bool absent;
	int rc = nft_run("list table inet " YN_NFT_TABLE, false, text, &absent, err);

	if (absent) {
		*text = strdup("");
		return *text ? 0 : yun_err_set(err, ENOMEM, "nftables: out of memory");
	}
	return rc;
}
