/* ids.c - see ids.h. */
#include "ids.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *kind_prefix(enum yn_id_kind kind)
{
	return kind == YN_ID_NETWORK ? "net-" : "i-";
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int yn_id_check(enum yn_id_kind kind, const char *id, struct yun_err *err)
{
	const char *prefix = kind_prefix(kind);
	const char *what = kind == YN_ID_NETWORK ? "network" : "instance";
	size_t plen = strlen(prefix);

	if (!id || !*id)
		return yun_err_set(err, EINVAL, "%s id: empty", what);
	if (strncmp(id, prefix, plen) || strlen(id) != plen + YN_ID_HEX ||
	    !is_lower_hex(id + plen, YN_ID_HEX))
		return yun_err_set(
		    err, EINVAL,
		    "%s id \"%.40s\": expected %s followed by %d lower-case hex digits", what, id,
		    prefix, YN_ID_HEX);
	return 0;
}

static int derived_name(enum yn_id_kind kind, const char *id, const char *prefix,
			char name[YN_IFNAME_MAX], struct yun_err *err)
{
	int rc = yn_id_check(kind, id, err);

	if (rc)
		return rc;
	snprintf(name, YN_IFNAME_MAX, "%s%s", prefix, id + strlen(kind_prefix(kind)));
	return 0;
}

int yn_bridge_name(const char *net_id, char name[YN_IFNAME_MAX], struct yun_err *err)
{
	return derived_name(YN_ID_NETWORK, net_id, "yb-", name, err);
}

int yn_veth_name(const char *instance_id, char name[YN_IFNAME_MAX], struct yun_err *err)
{
	return derived_name(YN_ID_INSTANCE, instance_id, "yv-", name, err);
}

int yn_tap_name(const char *instance_id, char name[YN_IFNAME_MAX], struct yun_err *err)
{
	return derived_name(YN_ID_INSTANCE, instance_id, "yt-", name, err);
}

enum yn_link_role yn_link_role_of(const char *ifname, char owner_id[YN_ID_MAX])
{
	enum yn_link_role role;

	if (strlen(ifname) != 3 + YN_ID_HEX || !is_lower_hex(ifname + 3, YN_ID_HEX))
		return YN_LINK_OTHER;
	if (!strncmp(ifname, "yb-", 3))
		role = YN_LINK_BRIDGE;
	else if (!strncmp(ifname, "yv-", 3))
		role = YN_LINK_VETH;
	else if (!strncmp(ifname, "yt-", 3))
		role = YN_LINK_TAP;
	else
		return YN_LINK_OTHER;
	snprintf(owner_id, YN_ID_MAX, "%s%s", role == YN_LINK_BRIDGE ? "net-" : "i-", ifname + 3);
	return role;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* first octet, then the id's last 10 hex digits: the MAC reads like the id. */
static int mac_from_id(enum yn_id_kind kind, const char *id, uint8_t first, uint8_t mac[6],
		       struct yun_err *err)
{
	int rc = yn_id_check(kind, id, err);
	const char *tail;

	if (rc)
		return rc;
	tail = id + strlen(id) - 10;
	mac[0] = first;
	for (int i = 0; i < 5; i++)
		mac[i + 1] = (uint8_t)(hexval(tail[2 * i]) << 4 | hexval(tail[2 * i + 1]));
	return 0;
}

int yn_mac_for_instance(const char *instance_id, uint8_t mac[6], struct yun_err *err)
{
	return mac_from_id(YN_ID_INSTANCE, instance_id, 0x02, mac, err);
}

int yn_mac_for_bridge(const char *net_id, uint8_t mac[6], struct yun_err *err)
{
	return mac_from_id(YN_ID_NETWORK, net_id, 0x06, mac, err);
}

char *yn_mac_format(const uint8_t mac[6], char buf[YN_MAC_STRLEN])
{
	snprintf(buf, YN_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
	return buf;
}

int yn_mac_parse(const char *s, uint8_t mac[6], struct yun_err *err)
{
	bool zero = true;

	if (strlen(s) != 17)
		goto bad;
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			goto bad;
		mac[i] = (uint8_t)(hi << 4 | lo);
		zero = zero && mac[i] == 0;
	}
	if (mac[0] & 1)
		return yun_err_set(err, EINVAL, "mac %s: a multicast address", s);
	if (zero)
		return yun_err_set(err, EINVAL, "mac %s: all zero", s);
	return 0;
bad:
	return yun_err_set(err, EINVAL,
			   "mac \"%.40s\": expected six hex pairs like 02:00:00:00:00:01", s);
}
