/*
 * main.c - yun-ct, the command line over the container library (client.h).
 *
 * Exit statuses: run/exec/attach/stop end with the container's (or the
 * exec'd process's) status; 125 when yun-ct itself fails, 126 when the
 * command cannot be executed, 127 when it is not found. kill, ps, rm: 0 on
 * success, 1 on failure. Usage errors: 2 (125 for run and exec, whose
 * other statuses belong to the container).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "client.h"
#include "config.h"

#define EXIT_USAGE    2
#define EXIT_RUNTIME  125
#define EXIT_NOEXEC   126
#define EXIT_NOTFOUND 127

static const char usage[] =
    "usage: yun-ct COMMAND [options]\n"
    "\n"
    "System containers, each under its own supervisor process.\n"
    "\n"
    "  run [options] [--] [CMD...]   create and start a container (see run --help)\n"
    "  exec [-t] ID [--] CMD...       run a command inside a running container\n"
    "  attach ID                      attach to its console (Ctrl-P Ctrl-Q detaches)\n"
    "  kill ID [SIGNAL]               send a signal to its init (default TERM)\n"
    "  stop [--timeout S] ID          TERM, then KILL after S seconds (default 10)\n"
    "  ps [--json]                    list containers\n"
    "  rm [-f] ID                     remove an exited (--keep) or dead container\n"
    "\n"
    "State lives in /run/yun-ct (or $YUN_CT_ROOT). Run `yun-ct COMMAND --help`.\n";

static const char exec_usage[] =
    "usage: yun-ct exec [options] ID [--] CMD [ARG...]\n"
    "\n"
    "Runs CMD in the namespaces and cgroup of container ID, with the same\n"
    "capabilities, no_new_privs and seccomp profile as its init. Exits with\n"
    "CMD's status (126: cannot execute, 127: not found, 125: yun-ct failed).\n"
    "\n"
    "  -t, --tty        a new pty for CMD (default when stdin is a terminal)\n"
    "  -T, --no-tty     pipes for CMD's stdio\n"
    "  -e, --env K=V    environment variable (repeatable)\n"
    "  --cwd DIR        working directory inside\n"
    "  -h, --help       this text\n";

static const char attach_usage[] =
    "usage: yun-ct attach ID\n"
    "\n"
    "Connects stdin/stdout/stderr to the container's console until it exits\n"
    "(then exits with its status) or until Ctrl-P Ctrl-Q on a terminal.\n"
    "Starts the container if it was created but not started yet.\n";

static const char kill_usage[] =
    "usage: yun-ct kill ID [SIGNAL]\n"
    "\n"
    "Sends SIGNAL (a number or a name like TERM, KILL, HUP; default TERM) to\n"
    "the container's init. An init that installed no handler ignores all\n"
    "signals but KILL (a pid namespace's init is protected).\n";

static const char stop_usage[] =
    "usage: yun-ct stop [--timeout S] [--signal SIG] ID\n"
    "\n"
    "Sends SIG (default: the container's --stop-signal, else TERM) to its init\n"
    "and KILL to everything in it after S seconds (default 10); waits until it\n"
    "is gone and exits with its status.\n";

static const char ps_usage[] =
    "usage: yun-ct ps [--json]\n"
    "\n"
    "Lists containers: id, init pid, status (created, running, stopping,\n"
    "exited, dead = the supervisor is gone), creation time, command.\n";

static const char rm_usage[] =
    "usage: yun-ct rm [-f] ID\n"
    "\n"
    "Removes what is left of a container: an exited one kept with --keep, or\n"
    "the cgroup, veth and state of one whose supervisor died. -f kills a\n"
    "running container first.\n";

static bool want_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

static int report_exit(const struct ct_exit *ex)
{
	if (ex->detached)
		return 0;
	if (ex->message[0])
		yun_error("%s", ex->message);
	return ex->status;
}

static int run_status_for(int code)
{
	if (code == ENOENT)
		return EXIT_NOTFOUND;
	if (code == EACCES)
		return EXIT_NOEXEC;
	return EXIT_RUNTIME;
}

static int cmd_run(int argc, char **argv)
{
	struct ct_config cfg;
	struct yun_err err = {0};
	struct ct_exit ex;
	int rc, status, conn = -1;

	ct_config_init(&cfg);
	rc = ct_config_parse_args(&cfg, argc, argv, &err);
	if (!rc && cfg.help) {
		fputs(ct_config_run_usage, stdout);
		ct_config_free(&cfg);
		return 0;
	}
	if (rc) {
		yun_error("%s", err.msg);
		ct_config_free(&cfg);
		return EXIT_RUNTIME;
	}
	ct_config_resolve_console(&cfg, isatty(0));
	if (cfg.detach)
		rc = ct_client_create(&cfg, NULL, &err);
	else
		rc = ct_client_create_attached(&cfg, &conn, &err);
	if (rc) {
		yun_error("%s", err.msg);
		status = run_status_for(err.code);
		ct_config_free(&cfg);
		return status;
	}
	if (cfg.detach) {
		printf("%s\n", cfg.id);
		ct_config_free(&cfg);
		return 0;
	}
	rc = ct_client_attach_conn(conn, cfg.id, &ex, &err);
	if (rc) {
		yun_error("%s", err.msg);
		ct_config_free(&cfg);
		return EXIT_RUNTIME;
	}
	ct_config_free(&cfg);
	return report_exit(&ex);
}

static int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"tty", no_argument, NULL, 't'},	   {"no-tty", no_argument, NULL, 'T'},
	    {"env", required_argument, NULL, 'e'}, {"cwd", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},	   {NULL, 0, NULL, 0},
	};
	char *env[65] = {NULL};
	const char *cwd = NULL;
	struct yun_err err = {0};
	struct ct_exit ex;
	int tty = -1, nenv = 0, c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+tTe:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			tty = 1;
			break;
		case 'T':
			tty = 0;
			break;
		case 'e':
			if (nenv >= 64 || !strchr(optarg, '=')) {
				yun_error("env %s: not NAME=VALUE (at most 64)", optarg);
				return EXIT_RUNTIME;
			}
			env[nenv++] = optarg;
			break;
		case 'c':
			cwd = optarg;
			break;
		case 'h':
			fputs(exec_usage, stdout);
			return 0;
		default:
			yun_error("exec: unknown option or missing value in %s (see --help)",
				  argv[optind - 1]);
			return EXIT_RUNTIME;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (argc - optind < 2) {
		yun_error("exec: needs ID and CMD (see --help)");
		return EXIT_RUNTIME;
	}
	if (ct_parse_id(argv[optind], &err) < 0) {
		yun_error("%s", err.msg);
		return EXIT_RUNTIME;
	}
	{
		const char *id = argv[optind++];

		if (optind < argc && !strcmp(argv[optind], "--"))
			optind++;
		if (optind >= argc) {
			yun_error("exec: no command given");
			return EXIT_RUNTIME;
		}
		if (tty < 0)
			tty = isatty(0);
		if (ct_client_exec(id, argv + optind, env, cwd, tty, &ex, &err) < 0) {
			yun_error("%s", err.msg);
			return EXIT_RUNTIME;
		}
	}
	return report_exit(&ex);
}

/* Commands of the form NAME [--flag] ID: returns the id or NULL after a message. */
static const char *single_id(int argc, char **argv, int first)
{
	struct yun_err err = {0};

	if (first >= argc) {
		yun_error("%s: needs a container id (see --help)", argv[0]);
		return NULL;
	}
	if (argv[first][0] == '-') {
		yun_error("%s: unknown option %s (see --help)", argv[0], argv[first]);
		return NULL;
	}
	if (ct_parse_id(argv[first], &err) < 0) {
		yun_error("%s", err.msg);
		return NULL;
	}
	return argv[first];
}

static int cmd_attach(int argc, char **argv)
{
	struct yun_err err = {0};
	struct ct_exit ex;
	const char *id;

	if (want_help(argc, argv)) {
		fputs(attach_usage, stdout);
		return 0;
	}
	id = single_id(argc, argv, 1);
	if (!id)
		return EXIT_RUNTIME;
	if (argc > 2) {
		yun_error("attach: unexpected argument %s", argv[2]);
		return EXIT_RUNTIME;
	}
	if (ct_client_attach(id, true, &ex, &err) < 0) {
		yun_error("%s", err.msg);
		return EXIT_RUNTIME;
	}
	return report_exit(&ex);
}

static int cmd_kill(int argc, char **argv)
{
	struct yun_err err = {0};
	const char *id;
	int sig = 15;

	if (want_help(argc, argv)) {
		fputs(kill_usage, stdout);
		return 0;
	}
	id = single_id(argc, argv, 1);
	if (!id)
		return EXIT_USAGE;
	if (argc > 3) {
		yun_error("kill: unexpected argument %s", argv[3]);
		return EXIT_USAGE;
	}
	if (argc == 3 && ct_parse_signal(argv[2], &sig, &err) < 0) {
		yun_error("%s", err.msg);
		return EXIT_USAGE;
	}
	if (ct_client_kill(id, sig, &err) < 0) {
		yun_error("%s", err.msg);
		return 1;
	}
	return 0;
}

static int cmd_stop(int argc, char **argv)
{
	struct yun_err err = {0};
	struct ct_exit ex;
	const char *id;
	long timeout = 10;
	int i = 1, sig = 0;

	if (want_help(argc, argv)) {
		fputs(stop_usage, stdout);
		return 0;
	}
	for (; i < argc && argv[i][0] == '-'; i++) {
		char *end;
		const char *v = NULL;

		if (!strcmp(argv[i], "--signal") || !strcmp(argv[i], "-s")) {
			if (i + 1 >= argc) {
				yun_error("stop: --signal needs a value");
				return EXIT_USAGE;
			}
			if (ct_parse_signal(argv[++i], &sig, &err) < 0) {
				yun_error("%s", err.msg);
				return EXIT_USAGE;
			}
			continue;
		}
		if (!strcmp(argv[i], "--timeout") || !strcmp(argv[i], "-t"))
			v = i + 1 < argc ? argv[++i] : NULL;
		else if (!strncmp(argv[i], "--timeout=", 10))
			v = argv[i] + 10;
		else {
			yun_error("stop: unknown option %s (see --help)", argv[i]);
			return EXIT_USAGE;
		}
		if (!v || (timeout = strtol(v, &end, 10), *end || end == v) || timeout < 0 ||
		    timeout > 86400) {
			yun_error("stop: timeout %s: must be 0 to 86400 seconds", v ? v : "(none)");
			return EXIT_USAGE;
		}
	}
	id = single_id(argc, argv, i);
	if (!id)
		return EXIT_USAGE;
	if (ct_client_stop(id, sig, (int)timeout, &ex, &err) < 0) {
		yun_error("%s", err.msg);
		return 1;
	}
	return ex.status;
}

static int cmd_ps(int argc, char **argv)
{
	struct yun_err err = {0};
	bool as_json = false;
	json_t *list, *e;
	size_t i;

	if (want_help(argc, argv)) {
		fputs(ps_usage, stdout);
		return 0;
	}
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--json")) {
			as_json = true;
		} else {
			yun_error("ps: unexpected argument %s (see --help)", argv[a]);
			return EXIT_USAGE;
		}
	}
	if (ct_client_list(&list, &err) < 0) {
		yun_error("%s", err.msg);
		return 1;
	}
	if (as_json) {
		char *text = json_dumps(list, JSON_INDENT(2));

		printf("%s\n", text ? text : "[]");
		free(text);
		json_decref(list);
		return 0;
	}
	printf("%-16s %-8s %-12s %-20s %s\n", "ID", "PID", "STATUS", "CREATED", "COMMAND");
	json_array_foreach(list, i, e)
	{
		char cmd[64] = "", status[32];
		json_t *a = json_object_get(e, "command"), *s;
		size_t j;

		json_array_foreach(a, j, s)
		{
			size_t len = strlen(cmd);

			snprintf(cmd + len, sizeof(cmd) - len, "%s%s", len ? " " : "",
				 json_string_value(s));
		}
		if (json_object_get(e, "exit_status"))
			snprintf(status, sizeof(status), "exited(%d)",
				 (int)json_integer_value(json_object_get(e, "exit_status")));
		else
			snprintf(status, sizeof(status), "%s",
				 json_string_value(json_object_get(e, "status")));
		printf("%-16s %-8d %-12s %-20s %s\n", json_string_value(json_object_get(e, "id")),
		       (int)json_integer_value(json_object_get(e, "pid")), status,
		       json_string_value(json_object_get(e, "created")), cmd);
	}
	json_decref(list);
	return 0;
}

static int cmd_rm(int argc, char **argv)
{
	struct yun_err err = {0};
	bool force = false;
	const char *id;
	int i = 1;

	if (want_help(argc, argv)) {
		fputs(rm_usage, stdout);
		return 0;
	}
	if (i < argc && (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force"))) {
		force = true;
		i++;
	}
	id = single_id(argc, argv, i);
	if (!id)
		return EXIT_USAGE;
	if (ct_client_remove(id, force, &err) < 0) {
		yun_error("%s", err.msg);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
	    {"run", cmd_run},	{"exec", cmd_exec}, {"attach", cmd_attach}, {"kill", cmd_kill},
	    {"stop", cmd_stop}, {"ps", cmd_ps},	    {"rm", cmd_rm},
	};

	yun_log_init("yun-ct", YUN_LOG_WARN);
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	yun_error("unknown command \"%s\" (see yun-ct --help)", argv[1]);
	return EXIT_USAGE;
}
