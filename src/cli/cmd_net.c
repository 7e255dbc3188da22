/*
 * cmd_net.c - yun net create over /v1/networks, and the network kind (its
 * ls/show/rm columns and texts; kind.c does the rest).
 *
 * yund stores a network at once (202, state creating) and its network
 * service makes the bridge, addresses and NAT; create waits for active.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kind.h"

enum { OPT_CIDR = OPT_CMD_BASE, OPT_TIMEOUT };

static const char create_usage[] =
    "usage: yun net create NAME --cidr CIDR [-d]\n"
    "\n"
    "Creates an isolated network (a bridge with NAT to the host's uplink);\n"
    "instances on it get addresses from CIDR. Waits until it is active.\n"
    "\n"
    "  --cidr CIDR      IPv4 prefix, /8../29 (10.10.0.0/24)\n"
    "  -d, --detach     return once yund accepted it\n"
    "  --timeout SECS   how long to wait (default 120)\n";

static int net_create(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"cidr", required_argument, NULL, OPT_CIDR},
						 {"detach", no_argument, NULL, 'd'},
						 {"timeout", required_argument, NULL, OPT_TIMEOUT},
						 CLI_GLOBAL_OPTIONS};
	const char *cidr = NULL;
	bool first = true, detach = false;
	uint64_t timeout = 120;
	json_t *body, *net;
	int opt, rc;

	cli->usage = create_usage;
	while ((opt = cli_getopt(cli, argc, argv, "d", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_CIDR)
			cidr = optarg;
		else if (opt == 'd')
			detach = true;
		else if (opt == OPT_TIMEOUT) {
			if (cli_parse_uint(cli, "--timeout", optarg, 1, 86400, &timeout))
				return EXIT_USAGE;
		} else
			return cli_opt_exit(opt);
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which name?");
	if (optind + 1 < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (!cidr)
		return cli_usage_error(cli, "--cidr is required (e.g. --cidr 10.10.0.0/24)");
	body = json_pack("{ssss}", "name", argv[optind], "cidr", cidr);
	if (!body)
		return cli_fail("out of memory");
	rc = kind_create(cli, &kind_network, body, detach, (unsigned)timeout, &net);
	json_decref(body);
	if (!rc)
		cli_print_obj(cli, net, NULL);
	json_decref(net);
	return rc;
}

/* ---- the kind: ls, show, rm ------------------------------------------------------- */

static const char *const ST_ACTIVE[] = {"active", NULL};
static const char *const ST_FAILED[] = {"failed", NULL};

static const struct kind_col net_cols[] = {
    {"NAME", "name", .fmt = KF_STRING},
    {"ID", "id", .fmt = KF_STRING},
    {"CIDR", "cidr", .fmt = KF_STRING},
    {"GATEWAY", "gateway", .fmt = KF_STRING},
    {"BRIDGE", "bridge", .fmt = KF_STRING},
    {"STATE", "state", .fmt = KF_STATE},
    {"AGE", "created_at", .fmt = KF_AGE},
    {NULL},
};

const struct kind kind_network = {
    .what = "network",
    .collection = "networks",
    .ls_usage = "usage: yun net ls [-q] [--json]\n"
		"\n"
		"Lists networks: NAME ID CIDR GATEWAY BRIDGE STATE AGE.\n"
		"\n"
		"  -q, --quiet    names only\n",
    .show_usage = "usage: yun net show REF\n\nShows every field of a network.\n",
    .rm_usage = "usage: yun net rm [-d] REF...\n"
		"\n"
		"Deletes networks (yund refuses while instances are attached) and waits\n"
		"until their bridges are gone.\n"
		"\n"
		"  -d, --detach     return once yund accepted the deletion\n"
		"  --timeout SECS   how long to wait (default 300)\n",
    .cols = net_cols,
    .ready = ST_ACTIVE,
    .failed = ST_FAILED,
    .rm_waits = true,
};

int cmd_net(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"create", net_create, "create NAME --cidr CIDR   create a network"},
	    {"ls", NULL, "ls                        list networks"},
	    {"show", NULL, "show REF                  every field of a network"},
	    {"rm", NULL, "rm REF...                 delete networks"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "net", &kind_network, subs, argc, argv);
}
