/*
 * cmd_net.c - yun net create|ls|show|rm over /v1/networks.
 *
 * yund stores a network at once (202, state creating) and its network
 * service makes the bridge, addresses and NAT; create waits for active.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "table.h"

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
	static const char *const active[] = {"active", NULL};
	static const char *const failed[] = {"failed", NULL};
	const char *cidr = NULL;
	bool first = true, detach = false;
	uint64_t timeout = 120;
	struct yc_response r;
	json_t *body, *net = NULL;
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
	rc = cli_call(cli, "POST", "/v1/networks", body, &r);
	json_decref(body);
	if (!rc && !detach && jstr(r.json, "id")) {
		struct cli_wait w = {.collection = "networks",
				     .ref = jstr(r.json, "id"),
				     .label = "network",
				     .want = active,
				     .fail = failed,
				     .timeout_s = (unsigned)timeout};

		rc = cli_wait(cli, &w, &net);
	}
	if (!rc) {
		json_t *show = net ? net : r.json;

		if (cli->json)
			cli_print_json(show);
		else
			printf("%s %s\n", jstr(show, "name") ? jstr(show, "name") : "-",
			       jstr(show, "id") ? jstr(show, "id") : "-");
	}
	json_decref(net);
	yc_response_free(&r);
	return rc;
}

static const char ls_usage[] = "usage: yun net ls [--json]\n"
			       "\n"
			       "Lists networks: NAME ID CIDR GATEWAY BRIDGE STATE AGE.\n";

static int net_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	static const char *const headers[] = {"NAME",	"ID",	 "CIDR", "GATEWAY",
					      "BRIDGE", "STATE", "AGE",	 NULL};
	struct yc_response r;
	struct table t;
	bool first = true;
	json_t *net;
	size_t i;
	int opt, rc;

	cli->usage = ls_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = cli_call(cli, "GET", "/v1/networks", NULL, &r);
	if (rc || cli->json) {
		if (!rc)
			cli_print_json(r.json);
		yc_response_free(&r);
		return rc;
	}
	tbl_init(&t, headers);
	time_t now = time(NULL);

	json_array_foreach(json_object_get(r.json, "items"), i, net) {
		char age[16];
		const char *cells[] = {
		    jstr(net, "name"),
		    jstr(net, "id"),
		    jstr(net, "cidr"),
		    jstr(net, "gateway"),
		    jstr(net, "bridge"),
		    jstr(net, "state"),
		    tbl_age_since(jstr(net, "created_at"), now, age, sizeof(age))};

		if (tbl_add_row(&t, cells)) {
			rc = cli_fail("out of memory");
			break;
		}
	}
	if (!rc)
		tbl_print(&t, stdout);
	tbl_free(&t);
	yc_response_free(&r);
	return rc;
}

static const char show_usage[] = "usage: yun net show REF\n\nShows every field of a network.\n";

static int net_show(struct cli *cli, int argc, char **argv)
{
	cli->usage = show_usage;
	return cli_cmd_show(cli, argc, argv, "networks", "network");
}

static const char rm_usage[] =
    "usage: yun net rm [-d] REF...\n"
    "\n"
    "Deletes networks (yund refuses while instances are attached) and waits\n"
    "until their bridges are gone.\n"
    "\n"
    "  -d, --detach     return once yund accepted the deletion\n";

static int net_rm(struct cli *cli, int argc, char **argv)
{
	cli->usage = rm_usage;
	return cli_cmd_rm(cli, argc, argv, "networks", "network", true);
}

int cmd_net(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"create", net_create, "create NAME --cidr CIDR   create a network"},
	    {"ls", net_ls, "ls                        list networks"},
	    {"show", net_show, "show REF                  every field of a network"},
	    {"rm", net_rm, "rm REF...                 delete networks"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "net", subs, argc, argv);
}
