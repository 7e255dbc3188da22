/*
 * cmd_daemon.c - yun up and yun down: start yund in the background and
 * wait until it answers; stop it and wait until it is gone.
 *
 * up:   yund runs in its own session (setsid) with stdout and stderr
 *       appended to <run>/yund.log; `yun up` returns once GET /v1/health
 *       answers, or says why not with the log's last lines.
 * down: SIGTERM to the process serving the socket (SO_PEERCRED; the pid
 *       file <run>/yund.pid when nothing answers), then wait for it to end.
 *       Instances keep running: they outlive yund by design.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define DEFAULT_RUN "/run/yun"

static const char up_usage[] =
    "usage: yun up [--root DIR] [--run DIR] [--timeout SECS] [yund flags...]\n"
    "\n"
    "Starts yund in the background and waits until it answers (GET /v1/health).\n"
    "If a yund already answers on the socket, says so and does nothing.\n"
    "yund's output goes to <run>/yund.log.\n"
    "\n"
    "  --root DIR       yund's state: database, images, instances (yund's default /var/lib/yun)\n"
    "  --run DIR        yund's run dir: socket, log (default " DEFAULT_RUN ")\n"
    "  --timeout SECS   how long to wait for yund to answer (default 30)\n"
    "  --yund PATH      the yund binary (default $YUN_YUND, else next to yun)\n"
    "  other flags      passed to yund as they are (--listen ADDR:PORT, ...)\n";

static const char down_usage[] =
    "usage: yun down [--run DIR] [--timeout SECS] [--force]\n"
    "\n"
    "Stops the yund serving the socket (SIGTERM) and waits until it is gone.\n"
    "Instances keep running; the next `yun up` adopts them.\n"
    "\n"
    "  --run DIR        where to look for yund.pid when the socket does not answer\n"
    "  --timeout SECS   how long to wait (default 30)\n"
    "  -f, --force      SIGKILL it if it is still there after the timeout\n";

/* ---- finding and watching processes ---------------------------------------------- */

static bool executable(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK);
}

/* The yund binary: --yund, $YUN_YUND, next to yun, the build tree, $PATH. */
static int find_yund(const char *given, char *out, size_t n)
{
	char self[PATH_MAX], dir[PATH_MAX];
	const char *env = getenv("YUN_YUND");
	ssize_t len;

	if (given || (env && *env)) {
		snprintf(out, n, "%s", given ? given : env);
		return executable(out) ? 0 : -ENOENT;
	}
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len > 0) {
		self[len] = '\0';
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		if ((size_t)snprintf(out, n, "%s/yund", dir) < n && executable(out))
			return 0;
		/* A build tree: build/src/cli/yun beside build/src/yund/yund. */
		if ((size_t)snprintf(out, n, "%s/../yund/yund", dir) < n && executable(out))
			return 0;
	}
	const char *path = getenv("PATH");

	while (path && *path) {
		size_t l = strcspn(path, ":");

		snprintf(out, n, "%.*s/yund", (int)l, path);
		if (l && executable(out))
			return 0;
		path += l + (path[l] == ':');
	}
	return -ENOENT;
}

/* Gone, or a zombie nobody reaps (as good as gone). */
static bool process_gone(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (fgets(buf, sizeof(buf), f)) {
		const char *p = strrchr(buf, ')');

		gone = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
	}
	fclose(f);
	return gone;
}

static void process_name(pid_t pid, char *out, size_t n)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	out[0] = '\0';
	f = fopen(path, "re");
	if (f) {
		if (fgets(out, (int)n, f))
			out[strcspn(out, "\n")] = '\0';
		fclose(f);
	}
}

/* The last `lines` lines of file from offset `from` on, on stderr. */
static void print_tail(const char *file, off_t from, int lines)
{
	char buf[8192];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (end - from > (off_t)sizeof(buf) - 1)
		from = end - (off_t)sizeof(buf) + 1;
	n = from < end ? pread(fd, buf, (size_t)(end - from), from) : 0;
	close(fd);
	if (n <= 0) {
		fprintf(stderr, "  (%s is empty)\n", file);
		return;
	}
	buf[n] = '\0';
	char *start = buf + n;
	int seen = 0;

	if (start > buf && start[-1] == '\n')
		start--;
	while (start > buf && seen < lines) {
		start--;
		if (*start == '\n')
			seen++;
	}
	if (*start == '\n')
		start++;
	fprintf(stderr, "last lines of %s:\n", file);
	for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n"))
		fprintf(stderr, "  %s\n", line);
}

/* ---- up ------------------------------------------------------------------------------- */

/* argv[*i] is "NAME" (its value the next argument, *i moves on; NULL when
 * there is none) or "NAME=VALUE". */
static bool flag_value(const char *name, int argc, char **argv, int *i, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) || (a[n] && a[n] != '='))
		return false;
	if (a[n] == '=')
		*val = a + n + 1;
	else
		*val = *i + 1 < argc ? argv[++*i] : NULL;
	return true;
}

static int mkdir_p(const char *dir)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Is a yund answering? YC_OK (health in *version), YC_UNREACHABLE, YC_ERROR. */
static enum yc_result health(struct cli *cli, char *version, size_t n, struct yun_err *err)
{
	struct yc_client *c = cli_client(cli);
	struct yc_response r;
	enum yc_result res;

	if (!c)
		return YC_ERROR;
	res = yc_request(c, "GET", "/v1/health", NULL, &r, err);
	if (res == YC_OK && version)
		snprintf(version, n, "%s", jstr(r.json, "version") ? jstr(r.json, "version") : "?");
	yc_response_free(&r);
	return res;
}

static void print_up(struct cli *cli, const char *state, pid_t pid, const char *version,
		     const char *log)
{
	if (cli->json) {
		json_t *v = json_pack("{sssssiss?}", "status", state, "socket", cli->socket, "pid",
				      (int)pid, "version", version, "log", log);

		cli_print_json(v);
		json_decref(v);
	} else if (!strcmp(state, "running")) {
		printf("yund %s is already running at %s\n", version, cli->socket);
	} else {
		printf("yund %s is up at %s (pid %d, log %s)\n", version, cli->socket, (int)pid,
		       log);
	}
}

int cmd_up(struct cli *cli, int argc, char **argv)
{
	const char *run = DEFAULT_RUN, *yund_given = NULL;
	char yund[PATH_MAX], sock[PATH_MAX], log[PATH_MAX], version[64] = "?";
	/* Room for "yund", each argument twice ("--run=X" -> "--run" "X"),
	 * "--socket" PATH and the NULL. */
	char **args = calloc(2 * (size_t)argc + 4, sizeof(*args));
	uint64_t timeout = 30;
	struct yun_err err = {0};
	int nargs = 0, rc = EXIT_FAIL, logfd = -1;
	bool passthrough = false;
	off_t log_start = 0;
	pid_t pid;

	cli->usage = up_usage;
	if (!args)
		return cli_fail("out of memory");
	args[nargs++] = "yund";
	/* Our flags are taken out; everything else is yund's, in order. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;

		if (passthrough) {
			args[nargs++] = argv[i];
		} else if (!strcmp(a, "--")) {
			passthrough = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(up_usage, stdout);
			fputs(CLI_GLOBAL_HELP, stdout);
			rc = EXIT_OK;
			goto out;
		} else if (!strcmp(a, "--json")) {
			cli->json = true;
		} else if (flag_value("--url", argc, argv, &i, &val) ||
			   flag_value("--token-file", argc, argv, &i, &val)) {
			rc = cli_usage_error(cli, "%s: yun up starts a yund on this host", a);
			goto out;
		} else if (flag_value("--timeout", argc, argv, &i, &val)) {
			if (!val)
				goto missing;
			if (cli_parse_uint(cli, "--timeout", val, 1, 3600, &timeout)) {
				rc = EXIT_USAGE;
				goto out;
			}
		} else if (flag_value("--yund", argc, argv, &i, &val)) {
			if (!val)
				goto missing;
			yund_given = val;
		} else if (flag_value("--socket", argc, argv, &i, &val)) {
			if (!val)
				goto missing;
			cli->socket = val;
			cli->socket_given = true;
		} else if (flag_value("--run", argc, argv, &i, &val) ||
			   flag_value("--root", argc, argv, &i, &val)) {
			if (!val)
				goto missing;
			if (a[3] == 'u') /* --run */
				run = val;
			args[nargs++] = a[3] == 'u' ? "--run" : "--root";
			args[nargs++] = (char *)val;
		} else {
			args[nargs++] = argv[i];
		}
		continue;
	missing:
		rc = cli_usage_error(cli, "option '%s' needs a value", a);
		goto out;
	}
	/* The socket: given, else the run dir's. yund is told when it differs. */
	snprintf(sock, sizeof(sock), "%s/yund.sock", run);
	if (cli->socket_given && strcmp(cli->socket, sock)) {
		args[nargs++] = "--socket";
		args[nargs++] = (char *)cli->socket;
	} else {
		cli->socket = sock;
	}
	args[nargs] = NULL;

	switch (health(cli, version, sizeof(version), &err)) {
	case YC_OK:
		print_up(cli, "running", 0, version, NULL);
		rc = EXIT_OK;
		goto out;
	case YC_ERROR:
		rc = cli_fail("something answers at %s, but not as a healthy yund: %s", cli->socket,
			      err.msg);
		goto out;
	case YC_UNREACHABLE:
		break;
	}
	if (find_yund(yund_given, yund, sizeof(yund))) {
		rc = cli_fail("cannot find the yund binary%s%s (looked next to yun and in $PATH); "
			      "set $YUN_YUND or --yund",
			      yund_given || getenv("YUN_YUND") ? " at " : "",
			      yund_given	   ? yund_given
			      : getenv("YUN_YUND") ? getenv("YUN_YUND")
						   : "");
		goto out;
	}
	int e = mkdir_p(run);

	if (e) {
		rc = cli_fail("run dir %s: %s", run, strerror(-e));
		goto out;
	}
	snprintf(log, sizeof(log), "%s/yund.log", run);
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0) {
		rc = cli_fail("log %s: %s", log, strerror(errno));
		goto out;
	}
	log_start = lseek(logfd, 0, SEEK_END);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = cli_fail("fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setsid();
		if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
		    dup2(logfd, STDERR_FILENO) < 0)
			_exit(127);
		execv(yund, args);
		dprintf(STDERR_FILENO, "yun up: cannot run %s: %s\n", yund, strerror(errno));
		_exit(127);
	}
	close(logfd);
	logfd = -1;

	double deadline = cli_now() + (double)timeout;
	struct spinner sp;

	spin_start(&sp);
	for (;;) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			spin_end(&sp);
			if (WIFEXITED(status))
				cli_fail("yund exited with status %d before answering",
					 WEXITSTATUS(status));
			else
				cli_fail("yund was killed by signal %d before answering",
					 WTERMSIG(status));
			print_tail(log, log_start, 40);
			rc = EXIT_FAIL;
			goto out;
		}
		if (health(cli, version, sizeof(version), &err) == YC_OK)
			break;
		if (cli_now() > deadline) {
			spin_end(&sp);
			kill(pid, SIGTERM);
			cli_fail("yund (pid %d) did not answer at %s within %llus; stopped it",
				 (int)pid, cli->socket, (unsigned long long)timeout);
			print_tail(log, log_start, 40);
			rc = EXIT_FAIL;
			goto out;
		}
		spin_show(&sp, "starting yund", NULL);
		cli_sleep_ms(50);
	}
	spin_end(&sp);
	print_up(cli, "started", pid, version, log);
	rc = EXIT_OK;
out:
	if (logfd >= 0)
		close(logfd);
	free(args);
	return rc;
}

/* ---- down ------------------------------------------------------------------------------ */

static pid_t pid_from_file(const char *run)
{
	char path[PATH_MAX], buf[32] = "";
	FILE *f;
	long v;

	if ((size_t)snprintf(path, sizeof(path), "%s/yund.pid", run) >= sizeof(path))
		return -1;
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	v = strtol(buf, NULL, 10);
	if (v <= 0 || process_gone((pid_t)v))
		return -1;
	return (pid_t)v;
}

static void print_down(struct cli *cli, const char *status, pid_t pid, bool killed)
{
	json_t *v = json_pack("{sssssisb}", "status", status, "socket", cli->socket, "pid",
			      (int)pid, "killed", killed);

	cli_print_json(v);
	json_decref(v);
}

int cmd_down(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"run", required_argument, NULL, OPT_CMD_BASE},
						 {"timeout", required_argument, NULL, 't'},
						 {"force", no_argument, NULL, 'f'},
						 CLI_GLOBAL_OPTIONS};
	static char sock[PATH_MAX]; /* cli->socket may point here */
	char run[PATH_MAX], sockcopy[PATH_MAX], name[64];
	const char *run_given = NULL;
	uint64_t timeout = 30;
	bool first = true, force = false;
	int opt;
	pid_t pid;

	cli->usage = down_usage;
	while ((opt = cli_getopt(cli, argc, argv, "t:f", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_CMD_BASE)
			run_given = optarg;
		else if (opt == 't') {
			if (cli_parse_uint(cli, "--timeout", optarg, 1, 3600, &timeout))
				return EXIT_USAGE;
		} else if (opt == 'f')
			force = true;
		else
			return cli_opt_exit(opt);
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (cli->url)
		return cli_usage_error(cli, "--url: yun down stops a yund on this host");
	if (run_given && !cli->socket_given) {
		snprintf(sock, sizeof(sock), "%s/yund.sock", run_given);
		cli->socket = sock;
	}
	snprintf(sockcopy, sizeof(sockcopy), "%s", cli->socket);
	snprintf(run, sizeof(run), "%s", run_given ? run_given : dirname(sockcopy));

	pid = yc_socket_peer(cli->socket);
	if (pid <= 0)
		pid = pid_from_file(run);
	if (pid <= 0) {
		if (cli->json)
			print_down(cli, "not running", 0, false);
		else
			printf("yund is not running (nothing answers at %s)\n", cli->socket);
		return EXIT_OK;
	}
	process_name(pid, name, sizeof(name));
	if (strncmp(name, "yund", 4))
		return cli_fail("the process serving %s is '%s' (pid %d), not yund: not stopping "
				"it",
				cli->socket, name, (int)pid);
	if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
		return cli_fail("yund (pid %d): %s", (int)pid, strerror(errno));

	struct spinner sp;
	double deadline = cli_now() + (double)timeout;
	bool killed = false;

	spin_start(&sp);
	while (!process_gone(pid)) {
		if (cli_now() > deadline) {
			if (!force || killed) {
				spin_end(&sp);
				return cli_fail("yund (pid %d) is still running after %llus%s",
						(int)pid, (unsigned long long)timeout,
						force ? "" : "; `yun down --force` kills it");
			}
			kill(pid, SIGKILL);
			killed = true;
			deadline = cli_now() + 5;
		}
		spin_show(&sp, "stopping yund", NULL);
		cli_sleep_ms(50);
	}
	spin_end(&sp);
	if (cli->json)
		print_down(cli, "stopped", pid, killed);
	else
		printf("yund stopped (pid %d%s)\n", (int)pid, killed ? ", killed" : "");
	return EXIT_OK;
}
