/*
 * cmd_misc.c - yun events (GET /v1/events), flavor ls|show|create|rm,
 * host ls|show, version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/str.h"
#include "cli.h"
#include "table.h"

enum { OPT_TYPE = OPT_CMD_BASE, OPT_VCPUS, OPT_MEMORY, OPT_DISK };

/* ---- events ------------------------------------------------------------------------ */

static const char events_usage[] =
    "usage: yun events [--type PREFIX] [-n COUNT] [--json]\n"
    "\n"
    "Follows yund's state changes, one line per event:\n"
    "  TIME TYPE NAME ID STATE\n"
    "(TYPE is KIND.created, KIND.state or KIND.deleted). With --json each line\n"
    "is {\"id\": ..., \"event\": TYPE, \"data\": OBJECT}. Runs until interrupted.\n"
    "\n"
    "  --type PREFIX    only events whose type starts with PREFIX (instance, image.state)\n"
    "  -n, --count N    stop after N events\n";

struct events_ctx {
	struct cli *cli;
	const char *prefix;
	uint64_t left; /* 0: forever */
	int rc;
};

static int on_event(const struct sse_event *ev, void *arg)
{
	struct events_ctx *e = arg;
	json_t *data;

	if (e->prefix && strncmp(ev->type, e->prefix, strlen(e->prefix)))
		return 0;
	data = json_loads(ev->data, JSON_DECODE_ANY, NULL);
	if (e->cli->json) {
		/* yund's ids are numbers: keep them numbers for scripts. */
		char *end;
		unsigned long long n = strtoull(ev->id, &end, 10);
		json_t *id = *ev->id && !*end ? json_integer((json_int_t)n) : json_string(ev->id);
		json_t *line = json_pack("{sosssO?}", "id", id, "event", ev->type, "data", data);
		char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(line);
	} else if (json_is_object(data)) {
		const char *state = jstr(data, "state"), *desired = jstr(data, "desired");
		const char *when = jstr(data, "updated_at");

		printf("%s %s %s %s %s", when ? when : "-", ev->type,
		       jstr(data, "name") ? jstr(data, "name") : "-",
		       jstr(data, "id") ? jstr(data, "id") : "-", state ? state : "-");
		if (desired && state && strcmp(desired, state))
			printf(" (desired %s)", desired);
		if (jstr(data, "failure") && state && !strcmp(state, "failed"))
			printf(": %s", jstr(data, "failure"));
		putchar('\n');
	} else {
		printf("- %s %s\n", ev->type, ev->data);
	}
	json_decref(data);
	/* A reader at the other end of a pipe sees each event as it comes. */
	if (fflush(stdout)) {
		e->rc = cli_fail("writing the events failed");
		return 1;
	}
	if (e->left && !--e->left)
		return 1;
	return 0;
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"type", required_argument, NULL, OPT_TYPE},
						 {"count", required_argument, NULL, 'n'},
						 CLI_GLOBAL_OPTIONS};
	struct events_ctx e = {.cli = cli};
	struct yun_err err = {0};
	struct yc_client *c;
	bool first = true;
	enum yc_result res;
	int opt;

	cli->usage = events_usage;
	while ((opt = cli_getopt(cli, argc, argv, "n:", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_TYPE) {
			e.prefix = optarg;
		} else if (opt == 'n') {
			if (cli_parse_uint(cli, "--count", optarg, 1, UINT32_MAX, &e.left))
				return EXIT_USAGE;
		} else {
			return cli_opt_exit(opt);
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!(c = cli_client(cli)))
		return EXIT_FAIL;
	res = yc_events(c, "/v1/events", on_event, &e, &err);
	if (res == YC_OK)
		return e.rc;
	fprintf(stderr, "yun: error: %s\n", err.msg);
	return res == YC_UNREACHABLE ? EXIT_UNREACHABLE : EXIT_FAIL;
}

/* ---- flavors ------------------------------------------------------------------------- */

static const char flavor_ls_usage[] =
    "usage: yun flavor ls [--json]\n"
    "\n"
    "Lists flavors (instance sizes): NAME ID VCPUS MEMORY DISK.\n";

static int flavor_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	static const char *const headers[] = {"NAME", "ID", "VCPUS", "MEMORY", "DISK", NULL};
	struct yc_response r;
	struct table t;
	bool first = true;
	json_t *fl;
	size_t i;
	int opt, rc;

	cli->usage = flavor_ls_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = cli_call(cli, "GET", "/v1/flavors", NULL, &r);
	if (rc || cli->json) {
		if (!rc)
			cli_print_json(r.json);
		yc_response_free(&r);
		return rc;
	}
	tbl_init(&t, headers);
	for (size_t c = 2; c <= 4; c++)
		tbl_set_right(&t, c, true);
	json_array_foreach(json_object_get(r.json, "items"), i, fl) {
		char cpus[24], mem[16], disk[16];

		snprintf(cpus, sizeof(cpus), "%lld", (long long)jint(fl, "vcpus", 0));
		tbl_size_mib((uint64_t)jint(fl, "memory_mib", 0), mem, sizeof(mem));
		if (jint(fl, "disk_gib", 0) > 0)
			tbl_size_gib((uint64_t)jint(fl, "disk_gib", 0), disk, sizeof(disk));
		else
			snprintf(disk, sizeof(disk), "-");
		const char *cells[] = {jstr(fl, "name"), jstr(fl, "id"), cpus, mem, disk};

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

static const char flavor_show_usage[] =
    "usage: yun flavor show REF\n\nShows every field of a flavor.\n";

static int flavor_show(struct cli *cli, int argc, char **argv)
{
	cli->usage = flavor_show_usage;
	return cli_cmd_show(cli, argc, argv, "flavors", "flavor");
}

static const char flavor_create_usage[] =
    "usage: yun flavor create NAME --vcpus N --memory SIZE [--disk GIB]\n"
    "\n"
    "Adds an instance size.\n"
    "\n"
    "  --vcpus N        virtual CPUs (1..256)\n"
    "  --memory SIZE    memory: MiB, or with K, M or G (512M, 2G)\n"
    "  --disk GIB       disk in GiB (default 0)\n";

static int flavor_create(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"vcpus", required_argument, NULL, OPT_VCPUS},
						 {"cpus", required_argument, NULL, OPT_VCPUS},
						 {"memory", required_argument, NULL, OPT_MEMORY},
						 {"disk", required_argument, NULL, OPT_DISK},
						 CLI_GLOBAL_OPTIONS};
	bool first = true;
	uint64_t vcpus = 0, disk = 0;
	int64_t mem = 0;
	struct yc_response r;
	json_t *body;
	int opt, rc;

	cli->usage = flavor_create_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_VCPUS) {
			if (cli_parse_uint(cli, "--vcpus", optarg, 1, 256, &vcpus))
				return EXIT_USAGE;
		} else if (opt == OPT_MEMORY) {
			if (yun_parse_size_mib(optarg, &mem) || mem < (16 << 20))
				return cli_usage_error(cli,
						       "--memory %s: must be a size of at least 16 "
						       "MiB (a number of MiB, or with K, M or G)",
						       optarg);
		} else if (opt == OPT_DISK) {
			if (cli_parse_uint(cli, "--disk", optarg, 0, 65536, &disk))
				return EXIT_USAGE;
		} else {
			return cli_opt_exit(opt);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, optind >= argc ? "which name?" : "one name");
	if (!vcpus || !mem)
		return cli_usage_error(cli, "--vcpus and --memory are required");
	body = json_pack("{sssIsIsI}", "name", argv[optind], "vcpus", (json_int_t)vcpus,
			 "memory_mib", (json_int_t)(mem >> 20), "disk_gib", (json_int_t)disk);
	if (!body)
		return cli_fail("out of memory");
	rc = cli_call(cli, "POST", "/v1/flavors", body, &r);
	json_decref(body);
	if (!rc) {
		if (cli->json)
			cli_print_json(r.json);
		else
			printf("%s %s\n", argv[optind],
			       jstr(r.json, "id") ? jstr(r.json, "id") : "-");
	}
	yc_response_free(&r);
	return rc;
}

static const char flavor_rm_usage[] = "usage: yun flavor rm REF...\n"
				      "\n"
				      "Deletes flavors; yund refuses while an instance uses one.\n";

static int flavor_rm(struct cli *cli, int argc, char **argv)
{
	cli->usage = flavor_rm_usage;
	return cli_cmd_rm(cli, argc, argv, "flavors", "flavor", false);
}

int cmd_flavor(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"ls", flavor_ls, "ls                                  list flavors"},
	    {"show", flavor_show, "show REF                            every field of a flavor"},
	    {"create", flavor_create, "create NAME --vcpus N --memory SIZE add a flavor"},
	    {"rm", flavor_rm, "rm REF...                           delete flavors"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "flavor", subs, argc, argv);
}

/* ---- hosts ---------------------------------------------------------------------------- */

static const char host_ls_usage[] =
    "usage: yun host ls [--json]\n"
    "\n"
    "Lists hosts: NAME ID STATE VCPUS MEMORY DISK (allocated/capacity, where\n"
    "capacity is physical x over-commit) INSTANCES LOAD.\n";

/* "used/total" of two sizes. */
static void pair(char *buf, size_t n, const char *a, const char *b)
{
	snprintf(buf, n, "%s/%s", a, b);
}

static int host_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	static const char *const headers[] = {"NAME", "ID",	   "STATE", "VCPUS", "MEMORY",
					      "DISK", "INSTANCES", "LOAD",  NULL};
	struct yc_response r;
	struct table t;
	bool first = true;
	json_t *h;
	size_t i;
	int opt, rc;

	cli->usage = host_ls_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = cli_call(cli, "GET", "/v1/hosts", NULL, &r);
	if (rc || cli->json) {
		if (!rc)
			cli_print_json(r.json);
		yc_response_free(&r);
		return rc;
	}
	tbl_init(&t, headers);
	for (size_t c = 3; c <= 7; c++)
		tbl_set_right(&t, c, true);
	json_array_foreach(json_object_get(r.json, "items"), i, h) {
		json_t *cap = json_object_get(h, "capacity"),
		       *alloc = json_object_get(h, "allocated");
		json_t *util = json_object_get(h, "utilisation");
		char cpus[48], mem[48], disk[48], inst[24], load[24], a[16], b[16];
		json_t *l1 = json_object_get(util, "load1");

		snprintf(cpus, sizeof(cpus), "%lld/%lld", (long long)jint(alloc, "vcpus", 0),
			 (long long)jint(cap, "vcpus", jint(h, "vcpus", 0)));
		pair(mem, sizeof(mem),
		     tbl_size_mib((uint64_t)jint(alloc, "memory_mib", 0), a, sizeof(a)),
		     tbl_size_mib((uint64_t)jint(cap, "memory_mib", jint(h, "memory_mib", 0)), b,
				  sizeof(b)));
		pair(disk, sizeof(disk),
		     tbl_size_gib((uint64_t)jint(alloc, "disk_gib", 0), a, sizeof(a)),
		     tbl_size_gib((uint64_t)jint(cap, "disk_gib", jint(h, "disk_gib", 0)), b,
				  sizeof(b)));
		snprintf(inst, sizeof(inst), "%lld", (long long)jint(alloc, "instances", 0));
		if (json_is_number(l1))
			snprintf(load, sizeof(load), "%.2f", json_number_value(l1));
		else
			snprintf(load, sizeof(load), "-");
		const char *cells[] = {jstr(h, "hostname") ? jstr(h, "hostname") : jstr(h, "name"),
				       jstr(h, "id"),
				       jstr(h, "state"),
				       cpus,
				       mem,
				       disk,
				       inst,
				       load};

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

static const char host_show_usage[] = "usage: yun host show REF\n\nShows every field of a host.\n";

static int host_show(struct cli *cli, int argc, char **argv)
{
	cli->usage = host_show_usage;
	return cli_cmd_show(cli, argc, argv, "hosts", "host");
}

int cmd_host(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"ls", host_ls, "ls         list hosts and their capacity"},
	    {"show", host_show, "show REF   every field of a host"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "host", subs, argc, argv);
}

/* ---- version ---------------------------------------------------------------------------- */

static const char version_usage[] =
    "usage: yun version [--json]\n"
    "\n"
    "Prints yun's version and the version of the yund answering (GET /v1/health).\n";

int cmd_version(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	struct yc_response r;
	bool first = true;
	int opt, rc;

	cli->usage = version_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!cli->json)
		printf("yun %s\n", YUN_VERSION);
	rc = cli_call(cli, "GET", "/v1/health", NULL, &r);
	if (!rc) {
		if (cli->json) {
			json_t *v = json_pack("{sssO}", "yun", YUN_VERSION, "yund", r.json);

			cli_print_json(v);
			json_decref(v);
		} else {
			printf("yund %s at %s\n",
			       jstr(r.json, "version") ? jstr(r.json, "version") : "?",
			       yc_where(cli->client));
		}
	}
	yc_response_free(&r);
	return rc;
}
