/*
 * yund_net_fuzz.c - libFuzzer target for what a tenant's API request hands
 * yund's network module: CIDRs, addresses, MACs and ids (cidr.c, ids.c),
 * and the dhcp-hosts editing that follows (dhcp.c's pure part). The first
 * byte picks the parser, the rest is the text. Accepted input must be
 * canonical and round-trip: an accepted address or CIDR prints back as the
 * same text, a network's gateway and first free address are its own, an
 * accepted id names links that map back to it, and editing dhcp-hosts
 * twice the same way changes nothing the second time.
 *
 * FUZZ_SOURCES: src/yund/net/cidr.c src/yund/net/ids.c src/yund/net/dhcp.c
 * FUZZ_SOURCES: src/yund/net/ctx.c src/lib/err.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "yund/net/cidr.h"
#include "yund/net/dhcp.h"
#include "yund/net/ids.h"

/* abort() is what libFuzzer reports as a crash. */
#define INVARIANT(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "yund_net_fuzz: invariant broken: %s\n", #cond);           \
			fprintf(stderr, "  " __VA_ARGS__);                                         \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void fuzz_cidr(const char *s)
{
	struct yun_err err;
	struct yn_cidr c, again;
	char buf[YN_CIDR_STRLEN];
	uint32_t ip;

	if (yn_cidr_parse(s, &c, &err))
		return;
	INVARIANT(c.prefix >= YN_PREFIX_MIN && c.prefix <= YN_PREFIX_MAX, "%s", s);
	INVARIANT(!strcmp(yn_cidr_format(&c, buf), s), "%s printed as %s", s, buf);
	INVARIANT(yn_cidr_parse(buf, &again, &err) == 0 && again.addr == c.addr &&
		      again.prefix == c.prefix,
		  "%s", s);
	INVARIANT(yn_cidr_contains(&c, yn_cidr_gateway(&c)), "%s", s);
	INVARIANT(yn_ipam_alloc(&c, NULL, 0, &ip, &err) == 0 && yn_ipam_check(&c, ip, &err) == 0,
		  "%s: %s", s, err.msg);
}

static void fuzz_ip(const char *s)
{
	char buf[YN_IP_STRLEN];
	uint32_t ip;

	if (yn_ip_parse(s, &ip))
		return;
	INVARIANT(!strcmp(yn_ip_format(ip, buf), s), "%s printed as %s", s, buf);
}

static void fuzz_mac(const char *s)
{
	char buf[YN_MAC_STRLEN];
	struct yun_err err;
	uint8_t mac[6];

	if (yn_mac_parse(s, mac, &err))
		return;
	INVARIANT(!(mac[0] & 1), "%s", s);
	INVARIANT(!strcasecmp(yn_mac_format(mac, buf), s), "%s printed as %s", s, buf);
}

static void fuzz_id(const char *s)
{
	char name[YN_IFNAME_MAX], owner[YN_ID_MAX];
	struct yun_err err;
	uint8_t mac[6];

	if (!yn_id_check(YN_ID_NETWORK, s, &err)) {
		INVARIANT(yn_bridge_name(s, name, &err) == 0, "%s", s);
		INVARIANT(yn_link_role_of(name, owner) == YN_LINK_BRIDGE && !strcmp(owner, s), "%s",
			  s);
		INVARIANT(yn_mac_for_bridge(s, mac, &err) == 0 && (mac[0] & 3) == 2, "%s", s);
	}
	if (!yn_id_check(YN_ID_INSTANCE, s, &err)) {
		INVARIANT(yn_veth_name(s, name, &err) == 0, "%s", s);
		INVARIANT(yn_link_role_of(name, owner) == YN_LINK_VETH && !strcmp(owner, s), "%s",
			  s);
		INVARIANT(yn_tap_name(s, name, &err) == 0, "%s", s);
		INVARIANT(yn_link_role_of(name, owner) == YN_LINK_TAP && !strcmp(owner, s), "%s",
			  s);
		INVARIANT(yn_mac_for_instance(s, mac, &err) == 0 && mac[0] == 2, "%s", s);
	}
}

/* True when `text` has `line` as one of its lines. */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] ? 1 : 0))
		if (strcspn(p, "\n") == n && !strncmp(p, line, n))
			return 1;
	return 0;
}

static void fuzz_hosts(const char *text)
{
	static const char *const id = "i-0123456789ab";
	static const char *const line = "02:23:45:67:89:ab,10.10.0.9,i-0123456789ab";
	char *set, *set2, *drop;

	set = yn_dhcp_hosts_edit(text, id, line);
	INVARIANT(set != NULL, "out of memory");
	set2 = yn_dhcp_hosts_edit(set, id, line);
	INVARIANT(set2 && !strcmp(set, set2), "setting twice differs");
	drop = yn_dhcp_hosts_edit(set, id, NULL);
	INVARIANT(has_line(set, line), "entry missing after setting it");
	INVARIANT(drop && !has_line(drop, line), "entry survives its removal");
	free(set);
	free(set2);
	free(drop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1 || size > 4096)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0:
		fuzz_cidr(s);
		break;
	case 1:
		fuzz_ip(s);
		break;
	case 2:
		fuzz_mac(s);
		break;
	case 3:
		fuzz_id(s);
		break;
	default:
		fuzz_hosts(s);
		break;
	}
	free(s);
	return 0;
}
