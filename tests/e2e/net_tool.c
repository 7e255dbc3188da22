/*
 * net_tool.c - a thin command line over yund's network module
 * (src/yund/net/net.h), for tests/e2e/yund_net.py. One command per call;
 * exit 0 on success, 1 with "net_tool: MESSAGE" on stderr otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yund/net/net.h"

static void usage(void)
{
	fputs("usage: net_tool [--run DIR] COMMAND ARGS\n"
	      "  network-ensure NET CIDR\n"
	      "  network-remove NET\n"
	      "  port-ensure-ct NET CIDR INSTANCE IP [MAC]    prints the netns path\n"
	      "  port-ensure-tap NET CIDR INSTANCE IP [MAC]   prints the TAP name\n"
	      "  port-remove INSTANCE\n"
	      "  counters INSTANCE     link rx_bytes rx_packets tx_bytes tx_packets\n"
	      "  inventory             kind owner name, a line each\n"
	      "  nft-dump              table inet yun as nft lists it\n"
	      "  dhcp-pid NET          the network's dnsmasq pid, 0 if none\n"
	      "  check-cidr CIDR [CIDR=LABEL...]   against those and the host's networks\n"
	      "  alloc CIDR [USED_IP...]           lowest free address\n"
	      "  mac INSTANCE\n",
	      stderr);
}

static int fail(const struct yun_err *err)
{
	fprintf(stderr, "net_tool: %s\n", err->msg);
	return 1;
}

static int port_args(char **argv, struct yn_network *net, uint32_t *ip, uint8_t mac[6],
		     int *has_mac, int argc, struct yun_err *err)
{
	int rc = yn_network_init(net, argv[0], argv[1], err);

	if (rc)
		return rc;
	if (yn_ip_parse(argv[3], ip))
		return yun_err_set(err, EINVAL, "address \"%s\": not an IPv4 address", argv[3]);
	*has_mac = argc > 4;
	return *has_mac ? yn_mac_parse(argv[4], mac, err) : 0;
}

int main(int argc, char **argv)
{
	struct yun_err err = {0};
	const char *run = NULL, *cmd;
	struct yn_ctx ctx;
	int rc = 0;

	argv++;
	argc--;
	if (argc >= 2 && !strcmp(argv[0], "--run")) {
		run = argv[1];
		argv += 2;
		argc -= 2;
	}
	if (argc < 1) {
		usage();
		return 2;
	}
	if (yn_ctx_init(&ctx, run, &err))
		return fail(&err);
	cmd = argv[0];
	argv++;
	argc--;

	if (!strcmp(cmd, "network-ensure") && argc == 2) {
		struct yn_network net;

		rc = yn_network_init(&net, argv[0], argv[1], &err);
		if (!rc)
			rc = yn_network_ensure(&ctx, &net, &err);
	} else if (!strcmp(cmd, "network-remove") && argc == 1) {
		rc = yn_network_remove(&ctx, argv[0], &err);
	} else if ((!strcmp(cmd, "port-ensure-ct") || !strcmp(cmd, "port-ensure-tap")) &&
		   (argc == 4 || argc == 5)) {
		struct yn_network net;
		uint8_t mac[6];
		uint32_t ip;
		int has_mac;

		rc = port_args(argv, &net, &ip, mac, &has_mac, argc, &err);
		if (!rc && cmd[12] == 'c') {
			char path[YN_PATH_MAX];

			rc = yn_port_ensure_ct(&ctx, &net, argv[2], ip, has_mac ? mac : NULL, path,
					       &err);
			if (!rc)
				printf("%s\n", path);
		} else if (!rc) {
			char tap[YN_IFNAME_MAX];

			rc = yn_port_ensure_tap(&ctx, &net, argv[2], ip, has_mac ? mac : NULL, tap,
						&err);
			if (!rc)
				printf("%s\n", tap);
		}
	} else if (!strcmp(cmd, "port-remove") && argc == 1) {
		rc = yn_port_remove(&ctx, argv[0], &err);
	} else if (!strcmp(cmd, "counters") && argc == 1) {
		struct yn_link_stats s;
		char link[YN_IFNAME_MAX];

		rc = yn_port_counters(argv[0], &s, link, &err);
		if (rc == -ENODEV)
			yun_err_set(&err, ENODEV, "instance %s: no port", argv[0]);
		if (!rc)
			printf("%s %llu %llu %llu %llu\n", link, (unsigned long long)s.rx_bytes,
			       (unsigned long long)s.rx_packets, (unsigned long long)s.tx_bytes,
			       (unsigned long long)s.tx_packets);
	} else if (!strcmp(cmd, "inventory") && argc == 0) {
		struct yn_resource *res;
		size_t n;

		rc = yn_inventory(&ctx, &res, &n, &err);
		for (size_t i = 0; !rc && i < n; i++)
			printf("%s %s %s\n", yn_res_kind_name(res[i].kind), res[i].owner,
			       res[i].name);
		if (!rc)
			free(res);
	} else if (!strcmp(cmd, "nft-dump") && argc == 0) {
		char *text;

		rc = yn_nft_dump(&text, &err);
		if (!rc) {
			fputs(text, stdout);
			free(text);
		}
	} else if (!strcmp(cmd, "dhcp-pid") && argc == 1) {
		printf("%d\n", (int)yn_dhcp_pid(&ctx, argv[0]));
	} else if (!strcmp(cmd, "check-cidr") && argc >= 1) {
		struct yn_cidr_use uses[16];
		struct yn_cidr c;
		int n = 0;

		rc = yn_cidr_parse(argv[0], &c, &err);
		for (int i = 1; !rc && i < argc && n < 16; i++, n++) {
			char *eq = strchr(argv[i], '=');

			if (eq)
				*eq = '\0';
			rc = yn_cidr_parse(argv[i], &uses[n].cidr, &err);
			snprintf(uses[n].what, sizeof(uses[n].what), "%s", eq ? eq + 1 : "given");
		}
		if (!rc)
			rc = yn_network_check_cidr(&c, uses, (size_t)n, &err);
		if (!rc)
			printf("ok\n");
	} else if (!strcmp(cmd, "alloc") && argc >= 1) {
		struct yn_cidr c;
		uint32_t used[64], ip;
		char buf[YN_IP_STRLEN];
		int n = 0;

		rc = yn_cidr_parse(argv[0], &c, &err);
		for (int i = 1; !rc && i < argc && n < 64; i++)
			if (yn_ip_parse(argv[i], &used[n++]))
				rc = yun_err_set(&err, EINVAL, "address \"%s\": not IPv4", argv[i]);
		if (!rc)
			rc = yn_ipam_alloc(&c, used, (size_t)n, &ip, &err);
		if (!rc)
			printf("%s\n", yn_ip_format(ip, buf));
	} else if (!strcmp(cmd, "mac") && argc == 1) {
		uint8_t mac[6];
		char buf[YN_MAC_STRLEN];

		rc = yn_mac_for_instance(argv[0], mac, &err);
		if (!rc)
			printf("%s\n", yn_mac_format(mac, buf));
	} else {
		usage();
		return 2;
	}
	return rc ? fail(&err) : 0;
}
