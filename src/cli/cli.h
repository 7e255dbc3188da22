/*
 * cli.h - what every `yun` command shares: the global settings, option
 * parsing with the global flags mixed in, calling yund with the errors
 * printed the one way, JSON output, waiting for an object to reach a
 * state, and the progress spinner.
 *
 * Exit statuses (every command):
 *   0  done
 *   1  the operation failed: "yun: error: <message>" (yund's message when
 *      yund refused it)
 *   2  usage error: the message and "Try 'yun CMD --help'."
 *   3  yund cannot be reached: where it was looked for and `yun up`
 */
#ifndef YUN_CLI_CLI_H
#define YUN_CLI_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

#define YUN_DEFAULT_SOCKET "/run/yun/yund.sock"

struct cli {
	const char *cmd;	/* "run", "image build": for messages */
	const char *usage;	/* the current command's --help text */
	const char *socket;	/* --socket, $YUN_SOCKET, or the default */
	bool socket_given;	/* by --socket or $YUN_SOCKET */
	const char *url;	/* --url or $YUN_URL: TCP instead of the socket */
	const char *token_file; /* --token-file */
	bool json;		/* --json */
	struct yc_client *client;
};

/*
 * Option ids of the global flags (above any short option character); a
 * command's long options end with CLI_GLOBAL_OPTIONS.
 */
enum { OPT_SOCKET = 0x1000, OPT_URL, OPT_TOKEN_FILE, OPT_JSON, OPT_CMD_BASE = 0x1100 };

/* clang-format off */
#define CLI_GLOBAL_OPTIONS \
	{"socket", required_argument, NULL, OPT_SOCKET}, \
	{"url", required_argument, NULL, OPT_URL}, \
	{"token-file", required_argument, NULL, OPT_TOKEN_FILE}, \
	{"json", no_argument, NULL, OPT_JSON}, \
	{"help", no_argument, NULL, 'h'}, \
	{NULL, 0, NULL, 0}
/* clang-format on */

/* Help lines for the global flags, for the end of every --help. */
#define CLI_GLOBAL_HELP                                                                            \
	"Global options: --socket PATH (default $YUN_SOCKET or " YUN_DEFAULT_SOCKET "),\n"         \
	"  --url http://HOST:PORT with --token-file FILE or $YUN_TOKEN (TCP), --json.\n"

/* Returned by cli_getopt besides the command's own option values. */
enum { CLI_OPT_END = -1, CLI_OPT_HELP = -2, CLI_OPT_ERROR = -3 };

/*
 * getopt_long over a command's arguments (argv[0] is the command's name):
 * global flags are applied to cli and skipped, --help prints cli->usage on
 * stdout (CLI_OPT_HELP: the command returns 0), a bad flag prints a
 * message and the --help hint on stderr (CLI_OPT_ERROR: the command
 * returns 2). Call with *first = true once; positional arguments are left
 * at argv[optind..] (permuted to the end unless shortopts starts with '+').
 */
int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
	       const struct option *longopts, bool *first);

/* Convenience: the exit status for CLI_OPT_HELP / CLI_OPT_ERROR. */
int cli_opt_exit(int opt);

/* A usage error: message, hint; returns EXIT_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "yun: error: <message>" on stderr; returns EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An unsigned decimal flag value within [min, max], else a usage error
 * (returns EXIT_USAGE; 0 when fine). */
int cli_parse_uint(struct cli *cli, const char *flag, const char *s, uint64_t min, uint64_t max,
		   uint64_t *out);

/* The client for this invocation (made on first use; NULL: out of memory,
 * or an unreadable token file, reported). */
struct yc_client *cli_client(struct cli *cli);

/*
 * One call to yund. Returns an exit status: 0, or 1/3 with the error
 * printed. resp is filled in every case: the caller frees it
 * (yc_response_free). With CLI_QUIET_404 a 404 answer is not printed (the
 * caller looks at resp->status).
 */
#define CLI_QUIET_404 1u
int cli_call(struct cli *cli, const char *method, const char *path, json_t *body,
	     struct yc_response *resp);
int cli_call_ex(struct cli *cli, const char *method, const char *path, json_t *body,
		struct yc_response *resp, unsigned flags);

/*
 * GET /v1/<collection>: the items array (a new reference), or NULL with
 * the error printed and *rc set to the exit status. With quiet nothing is
 * printed (for a column that can do without: ids instead of names).
 */
json_t *cli_list(struct cli *cli, const char *collection, bool quiet, int *rc);

/* Print JSON on stdout, indented, with a final newline. */
void cli_print_json(json_t *v);

/* Typed field access: NULL / fallback when absent or of another type. */
const char *jstr(json_t *obj, const char *key);
int64_t jint(json_t *obj, const char *key, int64_t fallback);

/* In items, the name of the object with this id (or the id itself). */
const char *cli_name_of(json_t *items, const char *id);

/* An object's "name (id)" for messages, into buf. */
const char *cli_label(json_t *obj, char *buf, size_t n);

/* ---- waiting for states -------------------------------------------------- */

/*
 * Poll GET /v1/<collection>/<ref> until its "state" is one of `want`
 * (success) or one of `fail` (its "failure" is printed: exit 1); with
 * want_gone, a 404 is success; with old_pid, a wanted state counts only
 * once "pid" differs from it (a reboot's new run). A spinner on stderr
 * when it is a terminal says "<label> <ref>: <state> (Ns)". timeout_s 0:
 * wait forever. *last (may be NULL) gets the last object seen (a new
 * reference; NULL when gone). Returns an exit status.
 */
struct cli_wait {
	const char *collection; /* "instances" */
	const char *ref;
	const char *label; /* "instance" */
	const char *const *want;
	const char *const *fail;
	bool want_gone;
	int64_t old_pid;
	unsigned timeout_s;
};
int cli_wait(struct cli *cli, const struct cli_wait *w, json_t **last);

/* The spinner, on stderr only when stderr is a terminal. */
struct spinner {
	bool on;
	unsigned frame;
	double start;
};
void spin_start(struct spinner *s);
void spin_show(struct spinner *s, const char *what, const char *state);
void spin_end(struct spinner *s);

/* Seconds on the monotonic clock. */
double cli_now(void);
void cli_sleep_ms(unsigned ms);

/* ---- the commands (one file per group) ----------------------------------- */

typedef int (*cli_cmd_fn)(struct cli *cli, int argc, char **argv);

/* cmd_instance.c */
int cmd_run(struct cli *cli, int argc, char **argv);
int cmd_ls(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_start(struct cli *cli, int argc, char **argv);
int cmd_stop(struct cli *cli, int argc, char **argv);
int cmd_reboot(struct cli *cli, int argc, char **argv);
int cmd_pause(struct cli *cli, int argc, char **argv);
int cmd_resume(struct cli *cli, int argc, char **argv);
int cmd_rm(struct cli *cli, int argc, char **argv);
int cmd_logs(struct cli *cli, int argc, char **argv);
/* cmd_stream.c */
int cmd_exec(struct cli *cli, int argc, char **argv);
int cmd_console(struct cli *cli, int argc, char **argv);
/* cmd_top.c */
int cmd_top(struct cli *cli, int argc, char **argv);
/* cmd_image.c */
int cmd_image(struct cli *cli, int argc, char **argv);
/* cmd_net.c */
int cmd_net(struct cli *cli, int argc, char **argv);
/* cmd_vol.c */
int cmd_vol(struct cli *cli, int argc, char **argv);
/* cmd_misc.c */
int cmd_events(struct cli *cli, int argc, char **argv);
int cmd_flavor(struct cli *cli, int argc, char **argv);
int cmd_host(struct cli *cli, int argc, char **argv);
int cmd_version(struct cli *cli, int argc, char **argv);
/* cmd_daemon.c */
int cmd_up(struct cli *cli, int argc, char **argv);
int cmd_down(struct cli *cli, int argc, char **argv);

/*
 * A command group's sub-commands ("image build", "image ls"): dispatch
 * argv[1] through the table; "ls" is also "list", "rm" also "delete". An
 * entry without fn is the kind's generic ls, show or rm (kind.h).
 */
struct kind;
struct cli_sub {
	const char *name;
	cli_cmd_fn fn;
	const char *help; /* one line for the group's --help */
};
int cli_dispatch_sub(struct cli *cli, const char *group, const struct kind *kind,
		     const struct cli_sub *subs, int argc, char **argv);

/*
 * Generic object display for `show`: one "key  value" line per field in
 * the server's order, nested objects as "key.sub", arrays joined by
 * spaces, null as "-".
 */
void cli_show_object(json_t *obj);

/*
 * What a command that made or changed an object prints: its JSON with
 * --json, else "NAME ID" ("-" for a missing name), or fallback when the
 * answer has no id.
 */
void cli_print_obj(struct cli *cli, json_t *obj, const char *fallback);

#endif
