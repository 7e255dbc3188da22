/*
 * cidr.h - IPv4 networks of Yun: parsing, overlap checks and address
 * management (IPAM). Pure logic, no host access (network.h reads the
 * host's own addresses and routes for yn_cidr_check_free()).
 *
 * A Yun network is an IPv4 CIDR with a prefix of /8 to /30, written as its
 * network address ("10.10.0.0/24"). Its first host address is the gateway
 * (the bridge's address on the host); instances get the others, lowest
 * free first; the broadcast address is never handed out.
 */
#ifndef YUN_YUND_NET_CIDR_H
#define YUN_YUND_NET_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define YN_PREFIX_MIN	8
#define YN_PREFIX_MAX	30
#define YN_IP_STRLEN	16 /* "255.255.255.255" + NUL */
#define YN_CIDR_STRLEN	19 /* "255.255.255.255/32" + NUL */
#define YN_CIDR_WHATLEN 80

/* An IPv4 network; addresses are in host byte order throughout. */
struct yn_cidr {
	uint32_t addr;	 /* the network address (host bits zero) */
	unsigned prefix; /* 0..32 */
};

/* A network already in use somewhere, and a phrase saying where. */
struct yn_cidr_use {
	struct yn_cidr cidr;
	char what[YN_CIDR_WHATLEN]; /* "network net-0123456789ab", "address 192.0.2.2/24 on eth0" */
};

/* Strict dotted quad: four decimal numbers 0..255, no leading zeros, no spaces. */
int yn_ip_parse(const char *s, uint32_t *ip);
char *yn_ip_format(uint32_t ip, char buf[YN_IP_STRLEN]);
char *yn_cidr_format(const struct yn_cidr *c, char buf[YN_CIDR_STRLEN]);

/*
 * Parse a Yun network's CIDR. Errors, each naming the input:
 * no "/PREFIX", a bad address, a prefix that is not a number or is outside
 * /8../30, host bits set ("not a network address (did you mean ...?)"),
 * and the ranges no tenant network may use (0.0.0.0/8, loopback,
 * link-local, multicast, reserved 240.0.0.0/4).
 */
int yn_cidr_parse(const char *s, struct yn_cidr *c, struct yun_err *err);

uint32_t yn_cidr_mask(unsigned prefix);
bool yn_cidr_contains(const struct yn_cidr *c, uint32_t ip);
bool yn_cidr_overlaps(const struct yn_cidr *a, const struct yn_cidr *b);
uint32_t yn_cidr_gateway(const struct yn_cidr *c);   /* first host address */
uint32_t yn_cidr_broadcast(const struct yn_cidr *c); /* last address */

/*
 * 0 when `c` overlaps none of `used[0..n)`; otherwise -EEXIST with a message
 * naming both ("cidr 10.10.0.0/24: overlaps 10.0.0.0/8 (route on eth0)").
 */
int yn_cidr_check_free(const struct yn_cidr *c, const struct yn_cidr_use *used, size_t n,
		       struct yun_err *err);

/* 0 when `ip` may be an instance's address in `c` (not network, gateway, broadcast). */
int yn_ipam_check(const struct yn_cidr *c, uint32_t ip, struct yun_err *err);

/*
 * The lowest address of `c` an instance may have that is not in
 * `used[0..n)` (addresses outside `c` are ignored). -ENOSPC when full.
 */
int yn_ipam_alloc(const struct yn_cidr *c, const uint32_t *used, size_t n, uint32_t *ip,
		  struct yun_err *err);

#endif
