/*
 * cmd_instance.c - yun run, ls, show, start, stop, reboot, pause, resume, rm, logs: the
 * instance lifecycle over /v1/instances.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/file.h"
#include "../lib/str.h"
#include "cli.h"
#include "kind.h"
#include "table.h"

static const char *const ST_RUNNING[] = {"running", NULL};
static const char *const ST_RUN_DONE[] = {"running", "stopped", NULL};
static const char *const ST_STOPPED[] = {"stopped", NULL};
static const char *const ST_PAUSED[] = {"paused", NULL};
static const char *const ST_FAILED[] = {"failed", NULL};

/* ---- run ----------------------------------------------------------------------- */

static const char run_usage[] =
    "usage: yun run [options] IMAGE [-- CMD [ARG...]]\n"
    "\n"
    "Creates an instance of IMAGE (a name or an id) and waits until it runs;\n"
    "prints its name and id. A failed start prints the reason (exit 1).\n"
    "\n"
    "  --type container|vm     what to run (default container)\n"
    "  --flavor F              a size from `yun flavor ls` (default: small)\n"
    "  --cpus N --memory SIZE  an explicit size instead (SIZE in MiB, or 512M, 2G)\n"
    "  --disk GIB              disk size with --cpus/--memory\n"
    "  --net N                 attach to network N\n"
    "  --name NAME             the instance's name (default: one yund picks)\n"
    "  --vol V                 attach volume V (repeatable)\n"
    "  --restart no|on-failure|always   restart policy (default no)\n"
    "  --user-data FILE        cloud-init user data\n"
    "  --ssh-key FILE          an SSH public key file, e.g. ~/.ssh/id_ed25519.pub\n"
    "                          (repeatable; a microVM gets its keys through cloud-init)\n"
    "  -e, --env K=V           environment variable (repeatable)\n"
    "  -d, --detach            return once yund accepted it (do not wait)\n"
    "  --timeout SECS          how long to wait for running (default 300)\n";

enum {
	OPT_TYPE = OPT_CMD_BASE,
	OPT_FLAVOR,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_DISK,
	OPT_NET,
	OPT_NAME,
	OPT_VOL,
	OPT_RESTART,
	OPT_USER_DATA,
	OPT_SSH_KEY,
	OPT_TIMEOUT,
	OPT_WAIT,
	OPT_TAIL,
};

static int add_string(json_t *obj, const char *key, const char *value)
{
	return json_object_set_new(obj, key, json_string(value));
}

static int append_string(json_t *obj, const char *key, const char *value)
{
	json_t *arr = json_object_get(obj, key);

	if (!arr) {
		arr = json_array();
		if (json_object_set_new(obj, key, arr))
			return -1;
	}
	return json_array_append_new(arr, json_string(value));
}

/*
 * The keys of a public key file: every line but blank ones and #
 * comments (a .pub file has one; an authorized_keys-style file more).
 * yund checks each key.
 */
static int add_ssh_keys(json_t *body, const char *path)
{
	struct yun_err err = {0};
	uint8_t *raw;
	size_t len, n = 0;
	char *data, *line, *save = NULL;
	json_t *arr = json_object_get(body, "ssh_keys");

	if (!arr) {
		arr = json_array();
		if (json_object_set_new(body, "ssh_keys", arr))
			return cli_fail("out of memory");
	}
	if (yun_file_read_all("SSH public key", path, 65536, &raw, &len, &err))
		return cli_fail("%s", err.msg);
	data = memchr(raw, '\0', len) ? NULL : strndup((const char *)raw, len);
	free(raw);
	if (!data)
		return cli_fail("SSH public key %s: not a text file", path);
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t l = strlen(line);

		while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
			line[--l] = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#')
			continue;
		if (json_array_append_new(arr, json_string(line))) {
			free(data);
			return cli_fail("SSH public key %s: not UTF-8 text", path);
		}
		n++;
	}
	free(data);
	if (!n)
		return cli_fail("SSH public key %s: no key in it", path);
	return 0;
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"flavor", required_argument, NULL, OPT_FLAVOR},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"disk", required_argument, NULL, OPT_DISK},
	    {"net", required_argument, NULL, OPT_NET},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"vol", required_argument, NULL, OPT_VOL},
	    {"restart", required_argument, NULL, OPT_RESTART},
	    {"user-data", required_argument, NULL, OPT_USER_DATA},
	    {"ssh-key", required_argument, NULL, OPT_SSH_KEY},
	    {"env", required_argument, NULL, 'e'},
	    {"detach", no_argument, NULL, 'd'},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    CLI_GLOBAL_OPTIONS};
	json_t *body = json_object(), *inst = NULL;
	bool first = true, detach = false, has_size = false;
	uint64_t cpus = 0, disk = 0, timeout = 300;
	int64_t mem_bytes = 0;
	const char *flavor = NULL;
	int opt, rc = EXIT_USAGE;

	cli->usage = run_usage;
	if (!body)
		return cli_fail("out of memory");
	while ((opt = cli_getopt(cli, argc, argv, "e:d", longopts, &first)) != CLI_OPT_END) {
		switch (opt) {
		case OPT_TYPE:
			if (strcmp(optarg, "container") && strcmp(optarg, "vm") &&
			    strcmp(optarg, "microvm")) {
				rc = cli_usage_error(cli, "--type %s: must be container or vm",
						     optarg);
				goto out;
			}
			add_string(body, "type",
				   !strcmp(optarg, "container") ? "container" : "microvm");
			break;
		case OPT_FLAVOR:
			flavor = optarg;
			break;
		case OPT_CPUS:
			if (cli_parse_uint(cli, "--cpus", optarg, 1, 256, &cpus))
				goto out;
			has_size = true;
			break;
		case OPT_MEMORY:
			if (yun_parse_size_mib(optarg, &mem_bytes) || mem_bytes < (16 << 20)) {
				rc = cli_usage_error(
				    cli,
				    "--memory %s: must be a size of at least 16 MiB "
				    "(a number of MiB, or with K, M or G)",
				    optarg);
				goto out;
			}
			has_size = true;
			break;
		case OPT_DISK:
			if (cli_parse_uint(cli, "--disk", optarg, 0, 65536, &disk))
				goto out;
			json_object_set_new(body, "disk_gib", json_integer((json_int_t)disk));
			break;
		case OPT_NET:
			add_string(body, "network", optarg);
			break;
		case OPT_NAME:
			add_string(body, "name", optarg);
			break;
		case OPT_VOL:
			append_string(body, "volumes", optarg);
			break;
		case OPT_RESTART:
			if (strcmp(optarg, "no") && strcmp(optarg, "on-failure") &&
			    strcmp(optarg, "always")) {
				rc = cli_usage_error(
				    cli, "--restart %s: must be no, on-failure or always", optarg);
				goto out;
			}
			add_string(body, "restart_policy", optarg);
			break;
		case OPT_USER_DATA: {
			struct yun_err err = {0};
			uint8_t *data;
			size_t len;

			if (yun_file_read_all("user data", optarg, 65536, &data, &len, &err)) {
				rc = cli_fail("%s", err.msg);
				goto out;
			}
			json_t *s = json_stringn((const char *)data, len);

			free(data);
			if (!s) {
				rc = cli_fail("user data %s: not UTF-8 text", optarg);
				goto out;
			}
			json_object_set_new(body, "user_data", s);
			break;
		}
		case OPT_SSH_KEY:
			rc = add_ssh_keys(body, optarg);
			if (rc)
				goto out;
			rc = EXIT_USAGE;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				rc = cli_usage_error(cli, "--env %s: must be KEY=VALUE", optarg);
				goto out;
			}
			append_string(body, "env", optarg);
			break;
		case 'd':
			detach = true;
			break;
		case OPT_TIMEOUT:
			if (cli_parse_uint(cli, "--timeout", optarg, 1, 86400, &timeout))
				goto out;
			break;
		default:
			rc = cli_opt_exit(opt);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = cli_usage_error(cli, "which image? (yun image ls)");
		goto out;
	}
	if (flavor && has_size) {
		rc = cli_usage_error(cli, "--flavor or --cpus/--memory, not both");
		goto out;
	}
	if (has_size && (!cpus || !mem_bytes)) {
		rc = cli_usage_error(cli, "--cpus and --memory go together");
		goto out;
	}
	if (flavor)
		add_string(body, "flavor", flavor);
	if (has_size) {
		json_object_set_new(body, "vcpus", json_integer((json_int_t)cpus));
		json_object_set_new(body, "memory_mib", json_integer(mem_bytes >> 20));
	}
	add_string(body, "image", argv[optind]);
	for (int i = optind + 1; i < argc; i++)
		append_string(body, "command", argv[i]);

	rc = kind_create(cli, &kind_instance, body, detach, (unsigned)timeout, &inst);
	if (rc)
		goto out;
	/* It may have run its command to the end already. */
	if (!detach && !strcmp(jstr(inst, "state"), "stopped") && jint(inst, "exit_status", 0)) {
		const char *why = jstr(inst, "failure");

		rc = cli_fail("instance %s stopped with status %lld%s%s", jstr(inst, "id"),
			      (long long)jint(inst, "exit_status", 0), why ? ": " : "",
			      why ? why : "");
		goto out;
	}
	cli_print_obj(cli, inst, NULL);
out:
	json_decref(inst);
	json_decref(body);
	return rc;
}

/* ---- start, stop, reboot ------------------------------------------------------------ */

static const char start_usage[] =
    "usage: yun start [--wait] REF...\n"
    "\n"
    "Starts stopped or failed instances (yund's desired state: running).\n"
    "\n"
    "  -w, --wait          wait until each one runs\n"
    "  --timeout SECS      how long --wait waits (default 300)\n";

static const char stop_usage[] =
    "usage: yun stop [--wait] [-t SECS] REF...\n"
    "\n"
    "Stops instances: TERM to a container's init, KILL after the grace time;\n"
    "a microVM's guest gets Ctrl-Alt-Del and is stopped hard at the deadline.\n"
    "\n"
    "  -t, --time SECS     grace time before KILL (0..3600; yund's default 10)\n"
    "  -w, --wait          wait until each one is stopped\n"
    "  --timeout SECS      how long --wait waits (default 300)\n";

static const char reboot_usage[] = "usage: yun reboot [--wait] REF...\n"
				   "\n"
				   "Stops and starts running instances again.\n"
				   "\n"
				   "  -w, --wait          wait until each one runs again\n"
				   "  --timeout SECS      how long --wait waits (default 300)\n";

static const char pause_usage[] = "usage: yun pause [--wait] REF...\n"
				  "\n"
				  "Pauses running microVMs (their vCPUs stop; memory and devices\n"
				  "stay). Containers cannot be paused yet.\n"
				  "\n"
				  "  -w, --wait          wait until each one is paused\n"
				  "  --timeout SECS      how long --wait waits (default 300)\n";

static const char resume_usage[] = "usage: yun resume [--wait] REF...\n"
				   "\n"
				   "Lets paused microVMs run on.\n"
				   "\n"
				   "  -w, --wait          wait until each one runs again\n"
				   "  --timeout SECS      how long --wait waits (default 300)\n";

static int lifecycle(struct cli *cli, int argc, char **argv, const char *action)
{
	static const struct option longopts[] = {{"wait", no_argument, NULL, 'w'},
						 {"time", required_argument, NULL, 't'},
						 {"timeout", required_argument, NULL, OPT_TIMEOUT},
						 CLI_GLOBAL_OPTIONS};
	bool first = true, wait = false, is_stop = !strcmp(action, "stop");
	uint64_t grace = 0, timeout = 300;
	bool has_grace = false;
	int opt, rc = EXIT_OK;

	while ((opt = cli_getopt(cli, argc, argv, is_stop ? "wt:" : "w", longopts, &first)) !=
	       CLI_OPT_END) {
		if (opt == 'w') {
			wait = true;
		} else if (opt == 't' && is_stop) {
			if (cli_parse_uint(cli, "--time", optarg, 0, 3600, &grace))
				return EXIT_USAGE;
			has_grace = true;
		} else if (opt == OPT_TIMEOUT) {
			if (cli_parse_uint(cli, "--timeout", optarg, 1, 86400, &timeout))
				return EXIT_USAGE;
		} else if (opt == 't') {
			return cli_usage_error(cli, "unknown option '--time'");
		} else {
			return cli_opt_exit(opt);
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which instance?");
	for (int i = optind; i < argc; i++) {
		json_t *body = NULL, *inst = NULL;
		struct yc_response r;
		char path[256];
		int one;

		if (has_grace)
			body = json_pack("{sI}", "timeout", (json_int_t)grace);
		one = cli_call(cli, "POST",
			       yc_path(path, sizeof(path), "instances", argv[i], action), body, &r);
		json_decref(body);
		if (one == EXIT_UNREACHABLE) {
			yc_response_free(&r);
			return one;
		}
		if (!one && wait) {
			struct cli_wait w = {.collection = "instances",
					     .ref =
						 jstr(r.json, "id") ? jstr(r.json, "id") : argv[i],
					     .label = "instance",
					     .want = is_stop			? ST_STOPPED
						     : !strcmp(action, "pause") ? ST_PAUSED
										: ST_RUNNING,
					     .fail = ST_FAILED,
					     .timeout_s = (unsigned)timeout};

			/* A reboot is over when a new run (a new init) is up. */
			if (!strcmp(action, "reboot"))
				w.old_pid = jint(r.json, "pid", 0);
			one = cli_wait(cli, &w, &inst);
		}
		if (!one)
			cli_print_obj(cli, inst ? inst : r.json, NULL);
		json_decref(inst);
		yc_response_free(&r);
		if (one)
			rc = one;
	}
	return rc;
}

int cmd_start(struct cli *cli, int argc, char **argv)
{
	cli->usage = start_usage;
	return lifecycle(cli, argc, argv, "start");
}

int cmd_stop(struct cli *cli, int argc, char **argv)
{
	cli->usage = stop_usage;
	return lifecycle(cli, argc, argv, "stop");
}

int cmd_reboot(struct cli *cli, int argc, char **argv)
{
	cli->usage = reboot_usage;
	return lifecycle(cli, argc, argv, "reboot");
}

int cmd_pause(struct cli *cli, int argc, char **argv)
{
	cli->usage = pause_usage;
	return lifecycle(cli, argc, argv, "pause");
}

int cmd_resume(struct cli *cli, int argc, char **argv)
{
	cli->usage = resume_usage;
	return lifecycle(cli, argc, argv, "resume");
}

/* ---- the kind: ls, show, rm --------------------------------------------------------- */

static const char *type_cell(const struct kind_row *row, char *buf, size_t n)
{
	const char *type = jstr(row->obj, "type");

	(void)buf;
	(void)n;
	return type && !strcmp(type, "microvm") ? "vm" : type;
}

/* The flavor's name, or vCPUs/memory (2c/512M) for an explicit size. */
static const char *size_cell(const struct kind_row *row, char *buf, size_t n)
{
	const char *flavor = jstr(row->obj, "flavor");
	char mem[16];

	if (flavor)
		return cli_name_of(json_object_get(row->refs, "flavors"), flavor);
	tbl_size_mib((uint64_t)jint(row->obj, "memory_mib", 0), mem, sizeof(mem));
	snprintf(buf, n, "%lldc/%s", (long long)jint(row->obj, "vcpus", 0), mem);
	return buf;
}

static bool is_active(const char *state)
{
	return state && (!strcmp(state, "running") || !strcmp(state, "starting") ||
			 !strcmp(state, "creating") || !strcmp(state, "stopping") ||
			 !strcmp(state, "paused"));
}

/* Without -f, a running instance (not already on its way to stopped) is refused. */
static int rm_check(struct cli *cli, const char *ref, const char *path)
{
	struct yc_response r;
	int rc = cli_call(cli, "GET", path, NULL, &r);

	if (!rc && is_active(jstr(r.json, "state")) &&
	    strcmp(jstr(r.json, "desired") ? jstr(r.json, "desired") : "", "stopped"))
		rc = cli_fail("instance %s is %s: stop it first, or rm -f", ref,
			      jstr(r.json, "state"));
	yc_response_free(&r);
	return rc;
}

static const struct kind_col instance_cols[] = {
    {"NAME", "name", .fmt = KF_STRING},
    {"ID", "id", .fmt = KF_STRING},
    {"TYPE", "type", .fmt = KF_CUSTOM, .cell = type_cell},
    {"STATE", "state", .fmt = KF_STATE},
    {"IMAGE", "image", .fmt = KF_REF, .max_width = 24, .ref = "images"},
    {"FLAVOR/SIZE", "flavor", .fmt = KF_CUSTOM, .ref = "flavors", .cell = size_cell},
    {"IP", "ip", .fmt = KF_STRING},
    {"AGE", "created_at", .fmt = KF_AGE},
    {NULL},
};

const struct kind kind_instance = {
    .what = "instance",
    .collection = "instances",
    .ls_usage = "usage: yun ls [-q] [--json]\n"
		"\n"
		"Lists instances: NAME ID TYPE STATE IMAGE FLAVOR/SIZE IP AGE. A size shows\n"
		"as vCPUs/memory (2c/512M) when the instance has no flavor.\n"
		"\n"
		"  -q, --quiet    names only\n"
		"  --json         yund's answer as it is\n",
    .show_usage = "usage: yun show [--json] REF\n"
		  "\n"
		  "Shows every field of instance REF (a name or an id).\n",
    .rm_usage = "usage: yun rm [-f] [-d] REF...\n"
		"\n"
		"Deletes instances and waits until they are gone. A running instance is\n"
		"refused unless -f (yund then stops it first).\n"
		"\n"
		"  -f, --force     delete running instances too\n"
		"  -d, --detach    return once yund accepted the deletion\n"
		"  --timeout SECS  how long to wait (default 300)\n",
    .cols = instance_cols,
    .ready = ST_RUN_DONE,
    .failed = ST_FAILED,
    .rm_waits = true,
    .rm_check = rm_check,
};

int cmd_ls(struct cli *cli, int argc, char **argv)
{
	return kind_ls(cli, &kind_instance, argc, argv);
}

int cmd_show(struct cli *cli, int argc, char **argv)
{
	return kind_show(cli, &kind_instance, argc, argv);
}

int cmd_rm(struct cli *cli, int argc, char **argv)
{
	return kind_rm(cli, &kind_instance, argc, argv);
}

/* ---- logs ---------------------------------------------------------------------------- */

static const char logs_usage[] =
    "usage: yun logs [--tail N] REF\n"
    "\n"
    "Prints the instance's console log (its init's output, every run; yund\n"
    "keeps the last 1 MiB).\n"
    "\n"
    "  -n, --tail N    only the last N lines\n";

int cmd_logs(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"tail", required_argument, NULL, 'n'},
						 CLI_GLOBAL_OPTIONS};
	struct yc_response r;
	char path[300];
	bool first = true;
	uint64_t tail = 0;
	int opt, rc;

	cli->usage = logs_usage;
	while ((opt = cli_getopt(cli, argc, argv, "n:", longopts, &first)) != CLI_OPT_END) {
		if (opt == 'n') {
			if (cli_parse_uint(cli, "--tail", optarg, 1, 100000, &tail))
				return EXIT_USAGE;
		} else {
			return cli_opt_exit(opt);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(cli, optind >= argc ? "which instance?"
							   : "one instance at a time");
	yc_path(path, sizeof(path) - 32, "instances", argv[optind], "logs");
	if (tail)
		snprintf(path + strlen(path), 32, "?tail=%llu", (unsigned long long)tail);
	rc = cli_call(cli, "GET", path, NULL, &r);
	if (!rc && r.len && fwrite(r.body, 1, r.len, stdout) != r.len)
		rc = cli_fail("writing the log failed");
	yc_response_free(&r);
	return rc;
}
