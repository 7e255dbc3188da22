/* cidr.c - see cidr.h. */
#include "cidr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One decimal number without sign or leading zeros, at most `max`. */
static bool parse_dec(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_ip_n(const char *s, size_t len, uint32_t *ip)
{
	uint32_t v = 0;
	size_t start = 0;
	int parts = 0;

	for (size_t i = 0; i <= len; i++) {
		unsigned octet;

		if (i < len && s[i] != '.')
			continue;
		if (parts == 4 || !parse_dec(s + start, i - start, 255, &octet))
			return false;
		v = v << 8 | octet;
		parts++;
		start = i + 1;
	}
	if (parts != 4)
		return false;
	*ip = v;
	return true;
}

int yn_ip_parse(const char *s, uint32_t *ip)
{
	return parse_ip_n(s, strlen(s), ip) ? 0 : -EINVAL;
}

char *yn_ip_format(uint32_t ip, char buf[YN_IP_STRLEN])
{
	snprintf(buf, YN_IP_STRLEN, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff,
		 ip & 0xff);
	return buf;
}

char *yn_cidr_format(const struct yn_cidr *c, char buf[YN_CIDR_STRLEN])
{
	char ip[YN_IP_STRLEN];

	snprintf(buf, YN_CIDR_STRLEN, "%s/%u", yn_ip_format(c->addr, ip), c->prefix);
	return buf;
}

uint32_t yn_cidr_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
}

bool yn_cidr_contains(const struct yn_cidr *c, uint32_t ip)
{
	return (ip & yn_cidr_mask(c->prefix)) == c->addr;
}

bool yn_cidr_overlaps(const struct yn_cidr *a, const struct yn_cidr *b)
{
	/* Two CIDRs overlap iff they agree on the shorter prefix. */
	uint32_t m = yn_cidr_mask(a->prefix < b->prefix ? a->prefix : b->prefix);

	return (a->addr & m) == (b->addr & m);
}

uint32_t yn_cidr_gateway(const struct yn_cidr *c)
{
	return c->addr + 1;
}

uint32_t yn_cidr_broadcast(const struct yn_cidr *c)
{
	return c->addr | ~yn_cidr_mask(c->prefix);
}

/* Ranges no tenant network may take, with the reason shown to the user. */
static const struct {
	uint32_t addr;
	unsigned prefix;
	const char *why;
} reserved[] = {
    {0x00000000, 8, "the \"this network\" range 0.0.0.0/8"},
    {0x7f000000, 8, "the loopback range 127.0.0.0/8"},
    {0xa9fe0000, 16, "the link-local range 169.254.0.0/16"},
    {0xe0000000, 4, "the multicast range 224.0.0.0/4"},
    {0xf0000000, 4, "the reserved range 240.0.0.0/4"},
};

int yn_cidr_parse(const char *s, struct yn_cidr *c, struct yun_err *err)
{
	const char *slash;
	unsigned prefix;
	uint32_t ip;
	char buf[YN_CIDR_STRLEN];

	if (!s || !*s)
		return yun_err_set(err, EINVAL,
				   "cidr: empty (expected ADDRESS/PREFIX, e.g. 10.10.0.0/24)");
	slash = strchr(s, '/');
	if (!slash)
		return yun_err_set(err, EINVAL,
				   "cidr \"%.40s\": expected ADDRESS/PREFIX, e.g. 10.10.0.0/24", s);
	if (!parse_ip_n(s, (size_t)(slash - s), &ip))
		return yun_err_set(
		    err, EINVAL,
		    "cidr \"%.40s\": \"%.*s\" is not an IPv4 address (four numbers 0-255 "
		    "separated by dots)",
		    s, (int)(slash - s > 20 ? 20 : slash - s), s);
	if (!parse_dec(slash + 1, strlen(slash + 1), 999, &prefix))
		return yun_err_set(err, EINVAL, "cidr \"%.40s\": prefix \"%.10s\" is not a number",
				   s, slash + 1);
	if (prefix < YN_PREFIX_MIN || prefix > YN_PREFIX_MAX)
		return yun_err_set(err, EINVAL,
				   "cidr \"%.40s\": prefix /%u out of range (/%d to /%d)", s,
				   prefix, YN_PREFIX_MIN, YN_PREFIX_MAX);
	c->addr = ip & yn_cidr_mask(prefix);
	c->prefix = prefix;
	if (c->addr != ip)
		return yun_err_set(err, EINVAL,
				   "cidr \"%.40s\": not a network address (did you mean %s?)", s,
				   yn_cidr_format(c, buf));
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		struct yn_cidr r = {reserved[i].addr, reserved[i].prefix};

		if (yn_cidr_overlaps(c, &r))
			return yun_err_set(err, EINVAL, "cidr %s: in %s", s, reserved[i].why);
	}
	return 0;
}

int yn_cidr_check_free(const struct yn_cidr *c, const struct yn_cidr_use *used, size_t n,
		       struct yun_err *err)
{
	char a[YN_CIDR_STRLEN], b[YN_CIDR_STRLEN];

	for (size_t i = 0; i < n; i++)
		if (yn_cidr_overlaps(c, &used[i].cidr))
			return yun_err_set(err, EEXIST, "cidr %s: overlaps %s (%s)",
					   yn_cidr_format(c, a), yn_cidr_format(&used[i].cidr, b),
					   used[i].what);
	return 0;
}

int yn_ipam_check(const struct yn_cidr *c, uint32_t ip, struct yun_err *err)
{
	char a[YN_IP_STRLEN], n[YN_CIDR_STRLEN];

	if (!yn_cidr_contains(c, ip))
		return yun_err_set(err, EINVAL, "address %s: not in network %s",
				   yn_ip_format(ip, a), yn_cidr_format(c, n));
	if (ip == c->addr)
		return yun_err_set(err, EINVAL, "address %s: the network address of %s",
				   yn_ip_format(ip, a), yn_cidr_format(c, n));
	if (ip == yn_cidr_gateway(c))
		return yun_err_set(err, EINVAL, "address %s: the gateway of %s",
				   yn_ip_format(ip, a), yn_cidr_format(c, n));
	if (ip == yn_cidr_broadcast(c))
		return yun_err_set(err, EINVAL, "address %s: the broadcast address of %s",
				   yn_ip_format(ip, a), yn_cidr_format(c, n));
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int yn_ipam_alloc(const struct yn_cidr *c, const uint32_t *used, size_t n, uint32_t *ip,
		  struct yun_err *err)
{
	uint32_t candidate = yn_cidr_gateway(c) + 1, last = yn_cidr_broadcast(c) - 1;
	uint32_t *sorted = NULL;
	size_t in_use = 0;
	char buf[YN_CIDR_STRLEN];

	if (n) {
		sorted = malloc(n * sizeof(*sorted));
		if (!sorted)
			return yun_err_set(err, ENOMEM, "network %s: out of memory",
					   yn_cidr_format(c, buf));
		memcpy(sorted, used, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_u32);
	}
	/* Walk the sorted set upwards; the first gap at or above `candidate` wins. */
	for (size_t i = 0; i < n; i++) {
		if (yn_cidr_contains(c, sorted[i]) && (i == 0 || sorted[i] != sorted[i - 1]))
			in_use++;
		if (sorted[i] == candidate)
			candidate++;
	}
	free(sorted);
	if (candidate > last)
		return yun_err_set(err, ENOSPC, "network %s: no free address (%zu in use)",
				   yn_cidr_format(c, buf), in_use);
	*ip = candidate;
	return 0;
}
