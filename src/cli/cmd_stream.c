/*
 * cmd_stream.c - yun exec and yun console: a terminal (or pipes) joined to
 * a byte stream inside an instance, over an upgraded HTTP connection
 * (client.h, yc_upgrade):
 *   exec     POST /v1/instances/{ref}/exec {command, tty}, Upgrade: yun-exec
 *   console  GET  /v1/instances/{ref}/console,          Upgrade: yun-console
 * On a terminal, stdin goes into raw mode for the session (restored on
 * every way out, signals included); Ctrl-] detaches from a console.
 * A console is raw bytes both ways. exec's answer is framed (type byte,
 * 4-byte big-endian length, payload: 1 stdout, 2 stderr, 3 exit
 * {"status": N}, the last), so `yun exec` ends with the command's status.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

#define DETACH_KEY 0x1d /* Ctrl-] */

static struct termios saved_tio;
static bool raw_on;

static void restore_tty(void)
{
	if (raw_on) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
		raw_on = false;
	}
}

static void on_signal(int sig)
{
	restore_tty();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int raw_mode(void)
{
	struct termios tio;

	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return -1;
	tio = saved_tio;
	cfmakeraw(&tio);
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &tio) < 0)
		return -1;
	raw_on = true;
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGQUIT, on_signal);
	return 0;
}

static ssize_t console_filter(void *arg, char *buf, size_t len)
{
	(void)arg;
	char *k = memchr(buf, DETACH_KEY, len);

	if (k)
		return -1;
	return (ssize_t)len;
}

static void say_connected(void *arg)
{
	(void)arg;
	fprintf(stderr, "[connected; Ctrl-] detaches]\r\n");
}

/* exec's frames, as they arrive in pieces. */
struct frames {
	uint8_t hdr[5];
	size_t hlen;	/* header bytes so far */
	uint32_t left;	/* payload bytes still to come */
	char exit[256]; /* the exit frame's JSON */
	size_t exit_len;
	bool got_exit;
};

static int put(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int exec_output(void *arg, const char *p, size_t n)
{
	struct frames *f = arg;

	while (n) {
		if (f->hlen < sizeof(f->hdr)) {
			f->hdr[f->hlen++] = (uint8_t)*p++;
			n--;
			if (f->hlen == sizeof(f->hdr))
				f->left = (uint32_t)f->hdr[1] << 24 | (uint32_t)f->hdr[2] << 16 |
					  (uint32_t)f->hdr[3] << 8 | f->hdr[4];
		} else {
			size_t k = n < f->left ? n : f->left;

			if (f->hdr[0] == 1 || f->hdr[0] == 2) {
				if (put(f->hdr[0] == 1 ? STDOUT_FILENO : STDERR_FILENO, p, k) < 0)
					return -1;
			} else if (f->hdr[0] == 3 && f->exit_len + k < sizeof(f->exit)) {
				memcpy(f->exit + f->exit_len, p, k);
				f->exit_len += k;
			}
			p += k;
			n -= k;
			f->left -= (uint32_t)k;
		}
		if (f->hlen == sizeof(f->hdr) && !f->left) {
			if (f->hdr[0] == 3) {
				f->exit[f->exit_len] = '\0';
				f->got_exit = true;
			}
			f->hlen = 0;
		}
	}
	return 0;
}

/* The command's status from the exit frame, or -1. */
static int exit_status(const struct frames *f)
{
	json_t *x = f->got_exit ? json_loads(f->exit, 0, NULL) : NULL;
	json_t *v = json_object_get(x, "status");
	int st = json_is_integer(v) ? (int)json_integer_value(v) : -1;

	json_decref(x);
	return st >= 0 && st <= 255 ? st : -1;
}

static int stream(struct cli *cli, const char *method, const char *path, json_t *body,
		  const char *proto, bool raw, bool console)
{
	struct yc_client *c = cli_client(cli);
	struct frames fr = {0};
	struct yc_stream st = {
	    .in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO, .half_close = !console};
	struct yun_err err = {0};
	enum yc_result res;

	if (!c)
		return EXIT_FAIL;
	if (!console) {
		st.on_output = exec_output;
		st.arg = &fr;
	}
	if (raw && raw_mode() < 0)
		raw = false;
	if (raw && console) {
		st.filter_in = console_filter;
		st.on_open = say_connected;
	}
	res = yc_upgrade(c, method, path, body, proto, &st, &err);
	restore_tty();
	if (st.detached)
		fprintf(stderr, "\n[detached]\n");
	if (res == YC_OK && console)
		return EXIT_OK;
	if (res == YC_OK) {
		int status = exit_status(&fr);

		if (status >= 0)
			return status;
		fprintf(stderr, "yun: error: the exec stream ended without the command's status\n");
		return EXIT_FAIL;
	}
	fprintf(stderr, "yun: error: %s\n", err.msg);
	return res == YC_UNREACHABLE ? EXIT_UNREACHABLE : EXIT_FAIL;
}

static const char exec_usage[] =
    "usage: yun exec [-t|-T] REF [--] CMD [ARG...]\n"
    "\n"
    "Runs CMD inside container instance REF with stdin, stdout and stderr\n"
    "joined to this terminal (or these pipes). Ends when CMD ends, with\n"
    "CMD's exit status (126: cannot execute, 127: not found).\n"
    "\n"
    "  -t, --tty       a terminal for CMD (default when stdin and stdout are one)\n"
    "  -T, --no-tty    pipes for CMD\n";

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"tty", no_argument, NULL, 't'},
						 {"no-tty", no_argument, NULL, 'T'},
						 CLI_GLOBAL_OPTIONS};
	bool first = true, tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	json_t *body, *cmd;
	char path[256];
	int opt, rc;

	cli->usage = exec_usage;
	/* '+': options end at REF, so CMD's own flags stay CMD's. */
	while ((opt = cli_getopt(cli, argc, argv, "+tT", longopts, &first)) != CLI_OPT_END) {
		if (opt == 't')
			tty = true;
		else if (opt == 'T')
			tty = false;
		else
			return cli_opt_exit(opt);
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which instance?");
	const char *ref = argv[optind++];

	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return cli_usage_error(cli, "which command? (yun exec REF -- CMD...)");
	cmd = json_array();
	for (int i = optind; i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	body = json_pack("{soso}", "command", cmd, "tty", json_boolean(tty));
	if (!body)
		return cli_fail("out of memory");
	rc = stream(cli, "POST", yc_path(path, sizeof(path), "instances", ref, "exec"), body,
		    "yun-exec", tty && isatty(STDIN_FILENO), false);
	json_decref(body);
	return rc;
}

static const char console_usage[] =
    "usage: yun console REF\n"
    "\n"
    "Attaches this terminal to instance REF's console (a container's init,\n"
    "a microVM's serial port). Ctrl-] detaches; the instance keeps running.\n";

int cmd_console(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	bool first = true;
	char path[256];
	int opt;

	cli->usage = console_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (optind + 1 != argc)
		return cli_usage_error(cli, optind >= argc ? "which instance?"
							   : "one instance at a time");
	return stream(cli, "GET", yc_path(path, sizeof(path), "instances", argv[optind], "console"),
		      NULL, "yun-console", isatty(STDIN_FILENO), true);
}
