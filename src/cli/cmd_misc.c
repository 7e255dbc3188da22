/*
 * cmd_misc.c - yun events (GET /v1/events), flavor create, version, and
 * the flavor and host kinds (their ls/show/rm columns and texts; kind.c
 * does the rest).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/str.h"
#include "cli.h"
#include "kind.h"
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
	if (!rc)
		cli_print_obj(cli, r.json, NULL);
	yc_response_free(&r);
	return rc;
}

static const struct kind_col flavor_cols[] = {
    {"NAME", "name", .fmt = KF_STRING},
    {"ID", "id", .fmt = KF_STRING},
    {"VCPUS", "vcpus", .fmt = KF_INT, .right = true},
    {"MEMORY", "memory_mib", .fmt = KF_MIB, .right = true},
    {"DISK", "disk_gib", .fmt = KF_GIB, .right = true},
    {NULL},
};

const struct kind kind_flavor = {
    .what = "flavor",
    .collection = "flavors",
    .ls_usage = "usage: yun flavor ls [-q] [--json]\n"
		"\n"
		"Lists flavors (instance sizes): NAME ID VCPUS MEMORY DISK.\n"
		"\n"
		"  -q, --quiet    names only\n",
    .show_usage = "usage: yun flavor show REF\n\nShows every field of a flavor.\n",
    .rm_usage = "usage: yun flavor rm REF...\n"
		"\n"
		"Deletes flavors; yund refuses while an instance uses one.\n",
    .cols = flavor_cols,
};

int cmd_flavor(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"ls", NULL, "ls                                  list flavors"},
	    {"show", NULL, "show REF                            every field of a flavor"},
	    {"create", flavor_create, "create NAME --vcpus N --memory SIZE add a flavor"},
	    {"rm", NULL, "rm REF...                           delete flavors"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "flavor", &kind_flavor, subs, argc, argv);
}

/* ---- hosts ---------------------------------------------------------------------------- */

/*
 * Host cells: allocated/capacity pairs (capacity is physical x over-commit;
 * older answers have only the physical figures at the top level).
 */
static const char *host_name(const struct kind_row *row, char *buf, size_t n)
{
	(void)buf;
	(void)n;
	return jstr(row->obj, "hostname") ? jstr(row->obj, "hostname") : jstr(row->obj, "name");
}

static int64_t host_cap(const struct kind_row *row, const char *key)
{
	return jint(json_object_get(row->obj, "capacity"), key, jint(row->obj, key, 0));
}

static int64_t host_alloc(const struct kind_row *row, const char *key)
{
	return jint(json_object_get(row->obj, "allocated"), key, 0);
}

static const char *host_vcpus(const struct kind_row *row, char *buf, size_t n)
{
	snprintf(buf, n, "%lld/%lld", (long long)host_alloc(row, "vcpus"),
		 (long long)host_cap(row, "vcpus"));
	return buf;
}

static const char *host_memory(const struct kind_row *row, char *buf, size_t n)
{
	char a[16], b[16];

	snprintf(buf, n, "%s/%s",
		 tbl_size_mib((uint64_t)host_alloc(row, "memory_mib"), a, sizeof(a)),
		 tbl_size_mib((uint64_t)host_cap(row, "memory_mib"), b, sizeof(b)));
	return buf;
}

static const char *host_disk(const struct kind_row *row, char *buf, size_t n)
{
	char a[16], b[16];

	snprintf(buf, n, "%s/%s", tbl_size_gib((uint64_t)host_alloc(row, "disk_gib"), a, sizeof(a)),
		 tbl_size_gib((uint64_t)host_cap(row, "disk_gib"), b, sizeof(b)));
	return buf;
}

static const char *host_instances(const struct kind_row *row, char *buf, size_t n)
{
	snprintf(buf, n, "%lld", (long long)host_alloc(row, "instances"));
	return buf;
}

static const char *host_load(const struct kind_row *row, char *buf, size_t n)
{
	json_t *l1 = kind_field(row->obj, "utilisation.load1");

	if (!json_is_number(l1))
		return NULL;
	snprintf(buf, n, "%.2f", json_number_value(l1));
	return buf;
}

static const struct kind_col host_cols[] = {
    {"NAME", NULL, .fmt = KF_CUSTOM, .cell = host_name},
    {"ID", "id", .fmt = KF_STRING},
    {"STATE", "state", .fmt = KF_STATE},
    {"VCPUS", NULL, .fmt = KF_CUSTOM, .right = true, .cell = host_vcpus},
    {"MEMORY", NULL, .fmt = KF_CUSTOM, .right = true, .cell = host_memory},
    {"DISK", NULL, .fmt = KF_CUSTOM, .right = true, .cell = host_disk},
    {"INSTANCES", NULL, .fmt = KF_CUSTOM, .right = true, .cell = host_instances},
    {"LOAD", NULL, .fmt = KF_CUSTOM, .right = true, .cell = host_load},
    {NULL},
};

const struct kind kind_host = {
    .what = "host",
    .collection = "hosts",
    .ls_usage = "usage: yun host ls [-q] [--json]\n"
		"\n"
		"Lists hosts: NAME ID STATE VCPUS MEMORY DISK (allocated/capacity, where\n"
		"capacity is physical x over-commit) INSTANCES LOAD.\n"
		"\n"
		"  -q, --quiet    names only\n",
    .show_usage = "usage: yun host show REF\n\nShows every field of a host.\n",
    .cols = host_cols,
};

int cmd_host(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"ls", NULL, "ls         list hosts and their capacity"},
	    {"show", NULL, "show REF   every field of a host"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "host", &kind_host, subs, argc, argv);
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
