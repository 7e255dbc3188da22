/*
 * yund_net_test.c - the pure parts of yund's network module: CIDR parsing
 * (every way a user can get it wrong, with the message they see), overlap
 * checks, IPAM, ids and the names and MACs derived from them, the nftables
 * rule text, the dnsmasq command line and dhcp-hosts editing.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "yund/net/net.h"

static uint32_t ip(const char *s)
{
	uint32_t v = 0;

	CHECK(yn_ip_parse(s, &v) == 0);
	return v;
}

/* Expect yn_cidr_parse(s) to fail with a message containing `needle`. */
static void cidr_bad(const char *s, const char *needle)
{
	struct yun_err err = {0};
	struct yn_cidr c;

	if (yn_cidr_parse(s, &c, &err) != -EINVAL) {
		fprintf(stderr, "cidr \"%s\" was accepted\n", s ? s : "(null)");
		check_failures++;
		return;
	}
	CHECK_STR_CONTAINS(err.msg, needle);
}

static void test_ip_parse(void)
{
	static const char *const bad[] = {
	    "",		"1",	      "1.2.3",	   "1.2.3.4.5",	 "256.0.0.0", "1.2.3.-1",
	    "01.2.3.4", "1.2.3.4 ",   " 1.2.3.4",  "1..2.3",	 "1.2.3.",    ".1.2.3",
	    "a.b.c.d",	"1.2.3.4/24", "0x1.2.3.4", "1.2.3.1000",
	};
	uint32_t v;
	char buf[YN_IP_STRLEN];

	CHECK_EQ(ip("0.0.0.0"), 0);
	CHECK_EQ(ip("255.255.255.255"), 0xffffffffu);
	CHECK_EQ(ip("10.10.0.1"), 0x0a0a0001u);
	CHECK(!strcmp(yn_ip_format(0xc0000202u, buf), "192.0.2.2"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (yn_ip_parse(bad[i], &v) == 0) {
			fprintf(stderr, "ip \"%s\" was accepted\n", bad[i]);
			check_failures++;
		}
	}
}

static void test_cidr_parse_good(void)
{
	struct yun_err err = {0};
	struct yn_cidr c;
	char buf[YN_CIDR_STRLEN];

	CHECK(yn_cidr_parse("10.10.0.0/24", &c, &err) == 0);
	CHECK_EQ(c.addr, 0x0a0a0000u);
	CHECK_EQ(c.prefix, 24);
	CHECK(!strcmp(yn_cidr_format(&c, buf), "10.10.0.0/24"));
	CHECK_EQ(yn_cidr_gateway(&c), ip("10.10.0.1"));
	CHECK_EQ(yn_cidr_broadcast(&c), ip("10.10.0.255"));
	CHECK_EQ(yn_cidr_mask(24), 0xffffff00u);
	CHECK(yn_cidr_parse("10.0.0.0/8", &c, &err) == 0);
	CHECK_EQ(yn_cidr_broadcast(&c), ip("10.255.255.255"));
	CHECK(yn_cidr_parse("172.16.4.0/30", &c, &err) == 0);
	CHECK_EQ(yn_cidr_broadcast(&c), ip("172.16.4.3"));
	CHECK(yn_cidr_parse("192.168.128.0/17", &c, &err) == 0);
	CHECK(yn_cidr_parse("100.64.0.0/10", &c, &err) == 0);
	CHECK_EQ(yn_cidr_mask(0), 0);
	CHECK_EQ(yn_cidr_mask(32), 0xffffffffu);
}

static void test_cidr_parse_bad(void)
{
	cidr_bad(NULL, "cidr: empty");
	cidr_bad("", "cidr: empty");
	cidr_bad("10.10.0.0", "cidr \"10.10.0.0\": expected ADDRESS/PREFIX, e.g. 10.10.0.0/24");
	cidr_bad("10.10.0/24", "\"10.10.0\" is not an IPv4 address");
	cidr_bad("10.10.0.256/24", "\"10.10.0.256\" is not an IPv4 address");
	cidr_bad("/24", "\"\" is not an IPv4 address");
	cidr_bad("ten.0.0.0/8", "is not an IPv4 address");
	cidr_bad("10.10.0.0/", "prefix \"\" is not a number");
	cidr_bad("10.10.0.0/x", "prefix \"x\" is not a number");
	cidr_bad("10.10.0.0/-1", "prefix \"-1\" is not a number");
	cidr_bad("10.10.0.0/024", "prefix \"024\" is not a number");
	cidr_bad("10.10.0.0/24 ", "prefix \"24 \" is not a number");
	cidr_bad("10.10.0.0/24/24", "is not a number");
	cidr_bad("10.10.0.0/31", "cidr \"10.10.0.0/31\": prefix /31 out of range (/8 to /30)");
	cidr_bad("10.10.0.0/32", "prefix /32 out of range");
	cidr_bad("10.10.0.0/33", "prefix /33 out of range");
	cidr_bad("10.0.0.0/7", "prefix /7 out of range");
	cidr_bad("0.0.0.0/0", "prefix /0 out of range");
	cidr_bad("10.10.0.1/24",
		 "cidr \"10.10.0.1/24\": not a network address (did you mean 10.10.0.0/24?)");
	cidr_bad("10.10.10.0/16", "did you mean 10.10.0.0/16?");
	cidr_bad("172.16.4.2/30", "did you mean 172.16.4.0/30?");
	cidr_bad("127.0.0.0/8", "in the loopback range 127.0.0.0/8");
	cidr_bad("127.1.0.0/16", "loopback");
	cidr_bad("0.0.0.0/8", "\"this network\" range");
	cidr_bad("169.254.0.0/16", "link-local range 169.254.0.0/16");
	cidr_bad("224.0.0.0/8", "multicast range 224.0.0.0/4");
	cidr_bad("240.0.0.0/8", "reserved range 240.0.0.0/4");
	cidr_bad("255.255.255.0/24", "reserved range");
}

static struct yn_cidr cidr(const char *s)
{
	struct yn_cidr c = {0};
	struct yun_err err;

	if (yn_cidr_parse(s, &c, &err)) {
		fprintf(stderr, "cidr(%s): %s\n", s, err.msg);
		check_failures++;
	}
	return c;
}

static void test_overlap(void)
{
	struct yn_cidr a = cidr("10.10.0.0/24"), b = cidr("10.10.1.0/24"), big = cidr("10.0.0.0/8");
	struct yn_cidr host32 = {ip("10.10.0.77"), 32};
	struct yn_cidr_use used[3];
	struct yun_err err = {0};

	CHECK(yn_cidr_overlaps(&a, &a));
	CHECK(!yn_cidr_overlaps(&a, &b));
	CHECK(yn_cidr_overlaps(&a, &big) && yn_cidr_overlaps(&big, &a));
	CHECK(yn_cidr_overlaps(&a, &host32));
	CHECK(!yn_cidr_overlaps(&b, &host32));
	CHECK(yn_cidr_contains(&a, ip("10.10.0.255")));
	CHECK(!yn_cidr_contains(&a, ip("10.10.1.0")));

	used[0] = (struct yn_cidr_use){b, "network net-00000000000b"};
	used[1] = (struct yn_cidr_use){cidr("192.168.0.0/16"), "route on eth0"};
	CHECK(yn_cidr_check_free(&a, used, 2, &err) == 0);
	CHECK(yn_cidr_check_free(&a, used, 0, &err) == 0);
	used[2] = (struct yn_cidr_use){big, "route on eth1"};
	CHECK(yn_cidr_check_free(&a, used, 3, &err) == -EEXIST);
	CHECK(!strcmp(err.msg, "cidr 10.10.0.0/24: overlaps 10.0.0.0/8 (route on eth1)"));
	used[2] = (struct yn_cidr_use){host32, "address 10.10.0.77/32 on lo"};
	CHECK(yn_cidr_check_free(&a, used, 3, &err) == -EEXIST);
	CHECK(!strcmp(err.msg,
		      "cidr 10.10.0.0/24: overlaps 10.10.0.77/32 (address 10.10.0.77/32 on lo)"));
	/* The same CIDR as an existing network. */
	CHECK(yn_cidr_check_free(&b, used, 1, &err) == -EEXIST);
	CHECK_STR_CONTAINS(err.msg, "overlaps 10.10.1.0/24 (network net-00000000000b)");
}

static void test_ipam(void)
{
	struct yn_cidr a = cidr("10.10.0.0/24"), tiny = cidr("10.20.0.0/30");
	uint32_t used[8], got = 0;
	struct yun_err err = {0};

	CHECK(yn_ipam_alloc(&a, NULL, 0, &got, &err) == 0);
	CHECK_EQ(got, ip("10.10.0.2"));
	used[0] = ip("10.10.0.2");
	used[1] = ip("10.10.0.4");
	CHECK(yn_ipam_alloc(&a, used, 2, &got, &err) == 0);
	CHECK_EQ(got, ip("10.10.0.3"));
	/* Unsorted, duplicates, and addresses of other networks do not matter. */
	used[0] = ip("10.10.0.3");
	used[1] = ip("10.10.0.2");
	used[2] = ip("10.10.0.3");
	used[3] = ip("10.99.0.4");
	used[4] = ip("10.10.0.5");
	CHECK(yn_ipam_alloc(&a, used, 5, &got, &err) == 0);
	CHECK_EQ(got, ip("10.10.0.4"));

	/* A /30 has one address for an instance. */
	CHECK(yn_ipam_alloc(&tiny, NULL, 0, &got, &err) == 0);
	CHECK_EQ(got, ip("10.20.0.2"));
	used[0] = ip("10.20.0.2");
	CHECK(yn_ipam_alloc(&tiny, used, 1, &got, &err) == -ENOSPC);
	CHECK(!strcmp(err.msg, "network 10.20.0.0/30: no free address (1 in use)"));

	/* A full /24: 253 instance addresses (.2 - .254). */
	{
		uint32_t all[253];

		for (int i = 0; i < 253; i++)
			all[i] = ip("10.10.0.2") + (uint32_t)i;
		CHECK(yn_ipam_alloc(&a, all, 253, &got, &err) == -ENOSPC);
		CHECK_STR_CONTAINS(err.msg, "(253 in use)");
		all[100] = ip("10.10.1.1");
		CHECK(yn_ipam_alloc(&a, all, 253, &got, &err) == 0);
		CHECK_EQ(got, ip("10.10.0.102"));
	}

	CHECK(yn_ipam_check(&a, ip("10.10.0.2"), &err) == 0);
	CHECK(yn_ipam_check(&a, ip("10.10.0.254"), &err) == 0);
	CHECK(yn_ipam_check(&a, ip("10.10.0.0"), &err) == -EINVAL);
	CHECK(!strcmp(err.msg, "address 10.10.0.0: the network address of 10.10.0.0/24"));
	CHECK(yn_ipam_check(&a, ip("10.10.0.1"), &err) == -EINVAL);
	CHECK(!strcmp(err.msg, "address 10.10.0.1: the gateway of 10.10.0.0/24"));
	CHECK(yn_ipam_check(&a, ip("10.10.0.255"), &err) == -EINVAL);
	CHECK(!strcmp(err.msg, "address 10.10.0.255: the broadcast address of 10.10.0.0/24"));
	CHECK(yn_ipam_check(&a, ip("10.10.1.5"), &err) == -EINVAL);
	CHECK(!strcmp(err.msg, "address 10.10.1.5: not in network 10.10.0.0/24"));
}

static void test_ids_and_names(void)
{
	static const char *const bad_nets[] = {
	    "net-0123456789a",	 "net-0123456789abc", "net-0123456789AB", "net-0123456789ag",
	    "i-0123456789ab",	 "net0123456789ab",   "NET-0123456789ab", "net-../../etc/x",
	    "net-0123456789ab/", " net-0123456789ab",
	};
	struct yun_err err = {0};
	char name[YN_IFNAME_MAX], owner[YN_ID_MAX];

	CHECK(yn_id_check(YN_ID_NETWORK, "net-0123456789ab", &err) == 0);
	CHECK(yn_id_check(YN_ID_INSTANCE, "i-0123456789ab", &err) == 0);
	for (size_t i = 0; i < sizeof(bad_nets) / sizeof(bad_nets[0]); i++) {
		if (yn_id_check(YN_ID_NETWORK, bad_nets[i], &err) != -EINVAL) {
			fprintf(stderr, "network id \"%s\" was accepted\n", bad_nets[i]);
			check_failures++;
		}
	}
	CHECK(yn_id_check(YN_ID_NETWORK, "net-0123456789AB", &err) == -EINVAL);
	CHECK(!strcmp(err.msg, "network id \"net-0123456789AB\": expected net- followed by 12 "
			       "lower-case hex digits"));
	CHECK(yn_id_check(YN_ID_INSTANCE, "", &err) == -EINVAL);
	CHECK(!strcmp(err.msg, "instance id: empty"));
	CHECK(yn_id_check(YN_ID_INSTANCE, "net-0123456789ab", &err) == -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "expected i- followed by 12");

	CHECK(yn_bridge_name("net-0123456789ab", name, &err) == 0);
	CHECK(!strcmp(name, "yb-0123456789ab"));
	CHECK_EQ(strlen(name), 15); /* IFNAMSIZ - 1 */
	CHECK(yn_veth_name("i-00000000beef", name, &err) == 0);
	CHECK(!strcmp(name, "yv-00000000beef"));
	CHECK(yn_tap_name("i-00000000beef", name, &err) == 0);
	CHECK(!strcmp(name, "yt-00000000beef"));
	CHECK(yn_tap_name("net-00000000beef", name, &err) == -EINVAL);
	CHECK(yn_bridge_name("i-00000000beef", name, &err) == -EINVAL);

	CHECK(yn_link_role_of("yb-0123456789ab", owner) == YN_LINK_BRIDGE);
	CHECK(!strcmp(owner, "net-0123456789ab"));
	CHECK(yn_link_role_of("yv-0123456789ab", owner) == YN_LINK_VETH);
	CHECK(!strcmp(owner, "i-0123456789ab"));
	CHECK(yn_link_role_of("yt-0123456789ab", owner) == YN_LINK_TAP);
	CHECK(!strcmp(owner, "i-0123456789ab"));
	CHECK(yn_link_role_of("eth0", owner) == YN_LINK_OTHER);
	CHECK(yn_link_role_of("yb-0123456789a", owner) == YN_LINK_OTHER);
	CHECK(yn_link_role_of("yb-0123456789AB", owner) == YN_LINK_OTHER);
	CHECK(yn_link_role_of("yx-0123456789ab", owner) == YN_LINK_OTHER);
	CHECK(yn_link_role_of("yb0123456789abc", owner) == YN_LINK_OTHER);
}

static void test_macs(void)
{
	struct yun_err err = {0};
	uint8_t mac[6], back[6];
	char buf[YN_MAC_STRLEN];

	CHECK(yn_mac_for_instance("i-0123456789ab", mac, &err) == 0);
	CHECK(!strcmp(yn_mac_format(mac, buf), "02:23:45:67:89:ab"));
	CHECK(yn_mac_for_bridge("net-0123456789ab", mac, &err) == 0);
	CHECK(!strcmp(yn_mac_format(mac, buf), "06:23:45:67:89:ab"));
	/* Locally administered (bit 1) and unicast (bit 0 clear). */
	CHECK((mac[0] & 3) == 2);
	CHECK(yn_mac_for_instance("i-0123", mac, &err) == -EINVAL);

	CHECK(yn_mac_parse("02:AB:cd:00:00:01", back, &err) == 0);
	CHECK(!strcmp(yn_mac_format(back, buf), "02:ab:cd:00:00:01"));
	CHECK(yn_mac_parse("03:00:00:00:00:01", back, &err) == -EINVAL);
	CHECK(!strcmp(err.msg, "mac 03:00:00:00:00:01: a multicast address"));
	CHECK(yn_mac_parse("00:00:00:00:00:00", back, &err) == -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "all zero");
	CHECK(yn_mac_parse("02:00:00:00:00", back, &err) == -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "expected six hex pairs");
	CHECK(yn_mac_parse("02-00-00-00-00-01", back, &err) == -EINVAL);
	CHECK(yn_mac_parse("02:00:00:00:00:0g", back, &err) == -EINVAL);
}

static void test_nft_rules(void)
{
	struct yn_cidr c = cidr("10.10.0.0/24");
	char buf[2048];
	int n = yn_nft_rules("net-0123456789ab", "yb-0123456789ab", &c, buf, sizeof(buf));

	CHECK(n > 0);
	CHECK_STR_CONTAINS(buf, "add rule inet yun postrouting ip saddr 10.10.0.0/24 oifname != "
				"\"yb-*\" masquerade comment \"net-0123456789ab\"\n");
	CHECK_STR_CONTAINS(buf, "add rule inet yun forward iifname \"yb-0123456789ab\" oifname "
				"\"yb-*\" oifname != \"yb-0123456789ab\" drop comment "
				"\"net-0123456789ab\"\n");
	CHECK_STR_CONTAINS(buf, "add rule inet yun forward oifname \"yb-0123456789ab\" iifname != "
				"\"yb-0123456789ab\" drop comment \"net-0123456789ab\"\n");
	CHECK_STR_CONTAINS(buf, "add rule inet yun forward iifname \"yb-0123456789ab\" accept "
				"comment \"net-0123456789ab\"\n");
	/* Drops come before the accept (first match wins in a chain). */
	CHECK(strstr(buf, "drop") < strstr(buf, "accept"));
	CHECK(yn_nft_rules("net-0123456789ab", "yb-0123456789ab", &c, buf, 40) == -ENOSPC);
}

static void test_dhcp_command(void)
{
	struct yn_dhcp_cmd cmd;
	struct yn_cidr c = cidr("10.10.0.0/24");
	struct yn_ctx ctx;
	struct yun_err err = {0};
	static const char *const want[] = {
	    "/usr/sbin/dnsmasq",
	    "--conf-file=/dev/null",
	    "--pid-file=/tmp/r/net/net-0123456789ab/dnsmasq.pid",
	    "--dhcp-leasefile=/tmp/r/net/net-0123456789ab/dnsmasq.leases",
	    "--dhcp-hostsfile=/tmp/r/net/net-0123456789ab/dhcp-hosts",
	    "--log-facility=/tmp/r/net/net-0123456789ab/dnsmasq.log",
	    "--interface=yb-0123456789ab",
	    "--except-interface=lo",
	    "--bind-interfaces",
	    "--port=0",
	    "--dhcp-range=10.10.0.0,static,255.255.255.0,1h",
	    "--dhcp-option=option:router,10.10.0.1",
	    "--dhcp-authoritative",
	};

	unsetenv("YUN_DNSMASQ");
	CHECK(yn_ctx_init(&ctx, "/tmp/r/", &err) == 0);
	CHECK(!strcmp(ctx.run_dir, "/tmp/r"));
	yn_dhcp_command(&ctx, "net-0123456789ab", &c, &cmd);
	CHECK_EQ(cmd.argc, sizeof(want) / sizeof(want[0]));
	for (int i = 0; i < cmd.argc && i < (int)(sizeof(want) / sizeof(want[0])); i++)
		if (strcmp(cmd.argv[i], want[i])) {
			fprintf(stderr, "argv[%d] = \"%s\", want \"%s\"\n", i, cmd.argv[i],
				want[i]);
			check_failures++;
		}
	CHECK(cmd.argv[cmd.argc] == NULL);

	CHECK(yn_ctx_init(&ctx, "run", &err) == -EINVAL);
	CHECK(!strcmp(err.msg, "run directory run: must be an absolute path"));
	setenv("YUN_RUN", "/var/run/yun-test", 1);
	CHECK(yn_ctx_init(&ctx, NULL, &err) == 0);
	CHECK(!strcmp(ctx.run_dir, "/var/run/yun-test"));
	unsetenv("YUN_RUN");
	CHECK(yn_ctx_init(&ctx, NULL, &err) == 0);
	CHECK(!strcmp(ctx.run_dir, "/run/yun"));
}

static void test_dhcp_hosts_edit(void)
{
	char *t1, *t2, *t3, *t4, *t5;

	t1 = yn_dhcp_hosts_edit("", "i-000000000001", "02:00:00:00:00:01,10.0.0.2,i-000000000001");
	CHECK(!strcmp(t1, "02:00:00:00:00:01,10.0.0.2,i-000000000001\n"));
	t2 = yn_dhcp_hosts_edit(t1, "i-000000000002", "02:00:00:00:00:02,10.0.0.3,i-000000000002");
	CHECK(!strcmp(t2, "02:00:00:00:00:01,10.0.0.2,i-000000000001\n"
			  "02:00:00:00:00:02,10.0.0.3,i-000000000002\n"));
	/* Replacing an entry: same text when nothing changed (no reload needed). */
	t3 = yn_dhcp_hosts_edit(t2, "i-000000000002", "02:00:00:00:00:02,10.0.0.3,i-000000000002");
	CHECK(!strcmp(t3, t2));
	/* A new instance taking an IP (or MAC) of a stale entry pushes it out. */
	t4 = yn_dhcp_hosts_edit(t3, "i-000000000003", "02:00:00:00:00:03,10.0.0.2,i-000000000003");
	CHECK(!strcmp(t4, "02:00:00:00:00:02,10.0.0.3,i-000000000002\n"
			  "02:00:00:00:00:03,10.0.0.2,i-000000000003\n"));
	/* Removal; blank lines vanish; an unknown instance changes nothing. */
	t5 = yn_dhcp_hosts_edit("\n02:00:00:00:00:02,10.0.0.3,i-000000000002\n\n"
				"02:00:00:00:00:03,10.0.0.2,i-000000000003",
				"i-000000000002", NULL);
	CHECK(!strcmp(t5, "02:00:00:00:00:03,10.0.0.2,i-000000000003\n"));
	free(t1);
	/* A last line without its newline still gets one (found by the fuzz target). */
	t1 = yn_dhcp_hosts_edit("x,y,z", "i-000000000001",
				"02:00:00:00:00:01,10.0.0.2,i-000000000001");
	CHECK(!strcmp(t1, "x,y,z\n02:00:00:00:00:01,10.0.0.2,i-000000000001\n"));
	free(t1);
	t1 = yn_dhcp_hosts_edit(t5, "i-00000000000f", NULL);
	CHECK(!strcmp(t1, t5));
	free(t1);
	free(t2);
	free(t3);
	free(t4);
	free(t5);
}

int main(void)
{
	RUN(test_ip_parse);
	RUN(test_cidr_parse_good);
	RUN(test_cidr_parse_bad);
	RUN(test_overlap);
	RUN(test_ipam);
	RUN(test_ids_and_names);
	RUN(test_macs);
	RUN(test_nft_rules);
	RUN(test_dhcp_command);
	RUN(test_dhcp_hosts_edit);
	return CHECK_DONE();
}
