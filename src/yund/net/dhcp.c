/* dhcp.c - see dhcp.h. */
#include "dhcp.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CMDLINE_MAX 8192

static void net_file(const struct yn_ctx *ctx, const char *net_id, const char *name,
		     char buf[YN_PATH_MAX])
{
	char dir[YN_PATH_MAX];

	yn_ctx_net_dir(ctx, net_id, dir);
	snprintf(buf, YN_PATH_MAX, "%.300s/%s", dir, name);
}

static void cmd_add(struct yn_dhcp_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cmd_add(struct yn_dhcp_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	if (cmd->argc >= YN_DHCP_ARGS)
		return;
	va_start(ap, fmt);
	vsnprintf(cmd->arg[cmd->argc], sizeof(cmd->arg[0]), fmt, ap);
	va_end(ap);
	cmd->argv[cmd->argc] = cmd->arg[cmd->argc];
	cmd->argc++;
	cmd->argv[cmd->argc] = NULL;
}

void yn_dhcp_command(const struct yn_ctx *ctx, const char *net_id, const struct yn_cidr *cidr,
		     struct yn_dhcp_cmd *cmd)
{
	char dir[YN_PATH_MAX], bridge[YN_IFNAME_MAX] = "", net[YN_IP_STRLEN], mask[YN_IP_STRLEN],
			       gw[YN_IP_STRLEN];

	yn_ctx_net_dir(ctx, net_id, dir);
	if (yn_bridge_name(net_id, bridge, NULL))
		bridge[0] = '\0';
	yn_ip_format(cidr->addr, net);
	yn_ip_format(yn_cidr_mask(cidr->prefix), mask);
	yn_ip_format(yn_cidr_gateway(cidr), gw);
	cmd->argc = 0;
	cmd_add(cmd, "%s", ctx->dnsmasq);
	cmd_add(cmd, "--conf-file=/dev/null");
	cmd_add(cmd, "--pid-file=%s/dnsmasq.pid", dir);
	cmd_add(cmd, "--dhcp-leasefile=%s/dnsmasq.leases", dir);
	cmd_add(cmd, "--dhcp-hostsfile=%s/dhcp-hosts", dir);
	cmd_add(cmd, "--log-facility=%s/dnsmasq.log", dir);
	cmd_add(cmd, "--interface=%s", bridge);
	cmd_add(cmd, "--except-interface=lo");
	cmd_add(cmd, "--bind-interfaces");
	cmd_add(cmd, "--port=0");
	cmd_add(cmd, "--dhcp-range=%s,static,%s,1h", net, mask);
	cmd_add(cmd, "--dhcp-option=option:router,%s", gw);
	cmd_add(cmd, "--dhcp-authoritative");
}

/* --- dhcp-hosts text ----------------------------------------------------- */

/* Field `i` (0-based) of a comma-separated line into buf ("" when absent). */
static void field(const char *line, size_t len, int i, char *buf, size_t size)
{
	const char *p = line, *end = line + len;

	for (; i > 0 && p < end; i--) {
		const char *c = memchr(p, ',', (size_t)(end - p));

		p = c ? c + 1 : end;
	}
	size_t n = strcspn(p, ",\n");

	if (p + n > end)
		n = (size_t)(end - p);
	if (n >= size)
		n = size - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
}

char *yn_dhcp_hosts_edit(const char *text, const char *instance_id, const char *line)
{
	/* The text, a newline its last line may lack, the new line and its newline, NUL. */
	size_t cap = strlen(text) + 1 + (line ? strlen(line) + 1 : 0) + 1, off = 0;
	char mac[32] = "", ip[32] = "", *out = malloc(cap);

	if (!out)
		return NULL;
	if (line) {
		field(line, strlen(line), 0, mac, sizeof(mac));
		field(line, strlen(line), 1, ip, sizeof(ip));
	}
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");
		char f0[32], f1[32], f2[YN_ID_MAX + 8];

		field(p, len, 0, f0, sizeof(f0));
		field(p, len, 1, f1, sizeof(f1));
		field(p, len, 2, f2, sizeof(f2));
		bool drop = len == 0 || !strcmp(f2, instance_id) ||
			    (line && (!strcasecmp(f0, mac) || !strcmp(f1, ip)));

		if (!drop) {
			memcpy(out + off, p, len);
			off += len;
			out[off++] = '\n';
		}
		p += len;
		if (*p == '\n')
			p++;
	}
	if (line)
		off += (size_t)sprintf(out + off, "%s\n", line);
	out[off] = '\0';
	return out;
}

/* --- files --------------------------------------------------------------- */

/* Whole small file as a string; a missing file reads as "" when missing_ok. */
static int read_text(const char *path, bool missing_ok, char **text, struct yun_err *err)
{
	FILE *f = fopen(path, "re");
	size_t cap = 4096, n = 0, r;
	char *buf;

	if (!f) {
		if (errno == ENOENT && missing_ok) {
			*text = strdup("");
			return *text ? 0 : yun_err_set(err, ENOMEM, "%s: out of memory", path);
		}
		return yun_err_errno(err, errno, "file %s: open", path);
	}
	buf = malloc(cap);
	while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap) {
			char *b = realloc(buf, cap * 2);

			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	if (!buf) {
		fclose(f);
		return yun_err_set(err, ENOMEM, "file %s: out of memory", path);
	}
	if (ferror(f)) {
		int e = errno;

		free(buf);
		fclose(f);
		return yun_err_errno(err, e, "file %s: read", path);
	}
	fclose(f);
	buf[n] = '\0';
	*text = buf;
	return 0;
}

/* Replace `path` atomically with `text` (mode 0644: dnsmasq reads it as nobody). */
static int write_text(const char *path, const char *text, struct yun_err *err)
{
	char tmp[YN_PATH_MAX + 8];
	size_t len = strlen(text);
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return yun_err_errno(err, errno, "file %s: create", tmp);
	errno = 0;
	if (fchmod(fd, 0644) < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		int e = errno ? errno : EIO;

		close(fd);
		unlink(tmp);
		return yun_err_errno(err, e, "file %s: write", tmp);
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return yun_err_errno(err, e, "file %s: replace", path);
	}
	return 0;
}

/*
 * dnsmasq drops root for its compiled-in user and re-reads dhcp-hosts as
 * that user on SIGHUP: every directory above the file must let others
 * through (o+x) and the file must be world-readable. The directories this
 * module makes get 0755 whatever the umask; the run directory and its
 * ancestors are the daemon's, so a closed one is reported, not changed.
 */
static int dirs_open_to_dnsmasq(const struct yn_ctx *ctx, const char *net_id, const char *dir,
				struct yun_err *err)
{
	char path[YN_PATH_MAX], netdir[YN_PATH_MAX];
	struct stat st;

	snprintf(netdir, sizeof(netdir), "%s/net", ctx->run_dir);
	if (chmod(netdir, 0755) < 0 || chmod(dir, 0755) < 0)
		return yun_err_errno(err, errno, "directory %s: chmod 0755", dir);
	snprintf(path, sizeof(path), "%s", ctx->run_dir);
	for (;;) {
		if (stat(path, &st) < 0)
			return yun_err_errno(err, errno, "directory %s", path);
		if (!(st.st_mode & S_IXOTH))
			return yun_err_set(err, EACCES,
					   "network %s: dnsmasq (running as an unprivileged user) "
					   "cannot reach %s: %s is mode %04o, needs o+x",
					   net_id, dir, path, st.st_mode & 07777);
		char *slash = strrchr(path, '/');

		if (!slash || slash == path)
			break;
		*slash = '\0';
	}
	return 0;
}

/* --- the dnsmasq process ------------------------------------------------- */

/* /proc/PID/cmdline, NUL-separated; length or -1. */
static ssize_t read_cmdline(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	return n;
}

/* True when the NUL-separated cmdline has `arg` as one of its arguments. */
static bool cmdline_has(const char *buf, ssize_t n, const char *arg)
{
	for (ssize_t i = 0; i < n; i += (ssize_t)strnlen(buf + i, (size_t)(n - i)) + 1)
		if (!strcmp(buf + i, arg))
			return true;
	return false;
}

static bool cmdline_is(const char *buf, ssize_t n, char *const argv[])
{
	ssize_t i = 0;

	for (int a = 0; argv[a]; a++) {
		size_t len = strlen(argv[a]) + 1;

		if (i + (ssize_t)len > n || memcmp(buf + i, argv[a], len))
			return false;
		i += (ssize_t)len;
	}
	return i == n;
}

static bool pid_is_ours(pid_t pid, const char *pidfile_arg)
{
	char *buf = malloc(CMDLINE_MAX);
	ssize_t n;
	bool ours;

	if (!buf)
		return false;
	n = pid > 0 ? read_cmdline(pid, buf, CMDLINE_MAX) : -1;
	ours = n > 0 && cmdline_has(buf, n, pidfile_arg);
	free(buf);
	return ours;
}

/*
 * The dnsmasq serving this network: the pid file's pid if its command line
 * has our --pid-file argument, else any process whose has (a pid file lost
 * in a crash must not leave an unkillable twin).
 */
static pid_t find_dnsmasq(const struct yn_ctx *ctx, const char *net_id)
{
	char pidfile[YN_PATH_MAX], arg[YN_PATH_MAX + 16];
	FILE *f;
	DIR *d;
	struct dirent *de;
	int pid = 0;

	net_file(ctx, net_id, "dnsmasq.pid", pidfile);
	snprintf(arg, sizeof(arg), "--pid-file=%s", pidfile);
	f = fopen(pidfile, "re");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
		if (pid_is_ours(pid, arg))
			return pid;
	}
	d = opendir("/proc");
	if (!d)
		return 0;
	pid = 0;
	while (!pid && (de = readdir(d))) {
		char *end;
		long p = strtol(de->d_name, &end, 10);

		if (*end || p <= 0 || p == getpid())
			continue;
		if (pid_is_ours((pid_t)p, arg))
			pid = (int)p;
	}
	closedir(d);
	return pid;
}

pid_t yn_dhcp_pid(const struct yn_ctx *ctx, const char *net_id)
{
	if (yn_id_check(YN_ID_NETWORK, net_id, NULL))
		return 0;
	return find_dnsmasq(ctx, net_id);
}

static bool pid_gone(pid_t pid)
{
	char path[64], state = 0;
	FILE *f;

	/* Reap it if it happens to be our child (a subreaper daemon). */
	(void)waitpid(pid, NULL, WNOHANG);
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	/* "pid (comm) S ...": the state follows the last ')'. */
	char line[512];

	if (fgets(line, sizeof(line), f)) {
		char *rp = strrchr(line, ')');

		if (rp && rp[1] == ' ')
			state = rp[2];
	}
	fclose(f);
	return state == 'Z' || state == 'X';
}

static int stop_pid(pid_t pid, const char *net_id, struct yun_err *err)
{
	const struct timespec tick = {0, 10 * 1000 * 1000};

	for (int sig = 0; sig < 2; sig++) {
		if (kill(pid, sig ? SIGKILL : SIGTERM) < 0 && errno != ESRCH)
			return yun_err_errno(err, errno, "network %s: dnsmasq %d: kill", net_id,
					     (int)pid);
		for (int i = 0; i < 200; i++) {
			if (pid_gone(pid))
				return 0;
			nanosleep(&tick, NULL);
		}
	}
	return yun_err_set(err, ETIMEDOUT, "network %s: dnsmasq %d: still running after SIGKILL",
			   net_id, (int)pid);
}

/*
 * Run dnsmasq: it forks its daemon and exits 0 once that is serving (or
 * non-zero with a reason on stderr, kept in dnsmasq.err).
 */
static int start_dnsmasq(const struct yn_ctx *ctx, const char *net_id, char *const argv[],
			 struct yun_err *err)
{
	char errpath[YN_PATH_MAX];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	pid_t pid;
	int rc, status;

	net_file(ctx, net_id, "dnsmasq.err", errpath);
	sigemptyset(&none);
	sigfillset(&dfl);
	sigdelset(&dfl, SIGKILL);
	sigdelset(&dfl, SIGSTOP);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETSID);
	rc = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc)
		return yun_err_errno(err, rc, "network %s: run %s", net_id, argv[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return yun_err_errno(err, errno, "network %s: wait for dnsmasq", net_id);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *text = NULL;

		if (read_text(errpath, true, &text, NULL) == 0)
			text[strcspn(text, "\n")] = '\0';
		rc = yun_err_set(err, EIO,
				 "network %s: dnsmasq failed to start (status 0x%x): %.300s",
				 net_id, status, text && *text ? text : "no message");
		free(text);
		return rc;
	}
	if (!find_dnsmasq(ctx, net_id))
		return yun_err_set(err, EIO, "network %s: dnsmasq started but is not running",
				   net_id);
	return 0;
}

int yn_dhcp_ensure(const struct yn_ctx *ctx, const char *net_id, const struct yn_cidr *cidr,
		   struct yun_err *err)
{
	char dir[YN_PATH_MAX], hosts[YN_PATH_MAX], pidfile[YN_PATH_MAX];
	struct yn_dhcp_cmd *cmd;
	char *buf = NULL;
	pid_t pid;
	int rc, fd;

	if ((rc = yn_id_check(YN_ID_NETWORK, net_id, err)))
		return rc;
	yn_ctx_net_dir(ctx, net_id, dir);
	net_file(ctx, net_id, "dhcp-hosts", hosts);
	net_file(ctx, net_id, "dnsmasq.pid", pidfile);
	if ((rc = yn_mkdirs(dir, err)) || (rc = dirs_open_to_dnsmasq(ctx, net_id, dir, err)))
		return rc;
	fd = open(hosts, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return yun_err_errno(err, errno, "file %s: create", hosts);
	if (fchmod(fd, 0644) < 0) {
		rc = yun_err_errno(err, errno, "file %s: chmod 0644", hosts);
		close(fd);
		return rc;
	}
	close(fd);
	cmd = malloc(sizeof(*cmd));
	buf = malloc(CMDLINE_MAX);
	if (!cmd || !buf) {
		rc = yun_err_set(err, ENOMEM, "network %s: out of memory", net_id);
		goto out;
	}
	yn_dhcp_command(ctx, net_id, cidr, cmd);
	pid = find_dnsmasq(ctx, net_id);
	if (pid) {
		ssize_t n = read_cmdline(pid, buf, CMDLINE_MAX);

		if (n > 0 && cmdline_is(buf, n, cmd->argv))
			goto out; /* already serving, as configured */
		if ((rc = stop_pid(pid, net_id, err)))
			goto out;
	}
	unlink(pidfile);
	rc = start_dnsmasq(ctx, net_id, cmd->argv, err);
out:
	free(buf);
	free(cmd);
	return rc;
}

int yn_dhcp_remove(const struct yn_ctx *ctx, const char *net_id, struct yun_err *err)
{
	static const char *const files[] = {"dnsmasq.pid",    "dnsmasq.leases",	    "dhcp-hosts",
					    "dhcp-hosts.tmp", "dnsmasq.leases.tmp", "dnsmasq.log",
					    "dnsmasq.err"};
	char dir[YN_PATH_MAX], path[YN_PATH_MAX];
	pid_t pid;
	int rc;

	if ((rc = yn_id_check(YN_ID_NETWORK, net_id, err)))
		return rc;
	pid = find_dnsmasq(ctx, net_id);
	if (pid && (rc = stop_pid(pid, net_id, err)))
		return rc;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		net_file(ctx, net_id, files[i], path);
		if (unlink(path) < 0 && errno != ENOENT)
			return yun_err_errno(err, errno, "file %s: remove", path);
	}
	yn_ctx_net_dir(ctx, net_id, dir);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return yun_err_errno(err, errno, "directory %s: remove", dir);
	return 0;
}

/* --- leases -------------------------------------------------------------- */

enum lease_pick {
	LEASE_CONFLICT, /* a lease with the MAC or the IP, but not both */
	LEASE_ANY,	/* a lease with the MAC or the IP */
};

/* Lease lines: "expiry mac ip hostname client-id". */
static bool lease_hit(const char *line, size_t len, const char *mac, const char *ip,
		      enum lease_pick pick)
{
	char l_mac[64], l_ip[64];
	char tmp[256];
	bool m, i;

	if (len >= sizeof(tmp))
		return false;
	memcpy(tmp, line, len);
	tmp[len] = '\0';
	if (sscanf(tmp, "%*s %63s %63s", l_mac, l_ip) != 2)
		return false;
	m = !strcasecmp(l_mac, mac);
	i = !strcmp(l_ip, ip);
	return pick == LEASE_ANY ? (m || i) : (m != i);
}

/*
 * Drop the picked leases from the lease file. dnsmasq only reads that file
 * when it starts, so a running one is stopped first and started again
 * with its own command line.
 */
static int purge_leases(const struct yn_ctx *ctx, const char *net_id, const char *mac,
			const char *ip, enum lease_pick pick, struct yun_err *err)
{
	char path[YN_PATH_MAX];
	char *text = NULL, *out = NULL, *cmdbuf = NULL, **argv = NULL;
	size_t off = 0;
	bool hit = false;
	ssize_t n = 0;
	pid_t pid;
	int rc;

	net_file(ctx, net_id, "dnsmasq.leases", path);
	if ((rc = read_text(path, true, &text, err)))
		return rc;
	for (const char *p = text; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] ? 1 : 0))
		hit = hit || lease_hit(p, strcspn(p, "\n"), mac, ip, pick);
	if (!hit)
		goto out;
	out = malloc(strlen(text) + 1);
	cmdbuf = malloc(CMDLINE_MAX);
	argv = calloc(CMDLINE_MAX / 2 + 1, sizeof(*argv));
	if (!out || !cmdbuf || !argv) {
		rc = yun_err_set(err, ENOMEM, "network %s: out of memory", net_id);
		goto out;
	}
	pid = find_dnsmasq(ctx, net_id);
	if (pid) {
		n = read_cmdline(pid, cmdbuf, CMDLINE_MAX - 1);
		if (n <= 0) {
			rc =
			    yun_err_set(err, EIO, "network %s: dnsmasq %d: unreadable command line",
					net_id, (int)pid);
			goto out;
		}
		cmdbuf[n] = '\0';
		if ((rc = stop_pid(pid, net_id, err)))
			goto out;
	}
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");

		if (!lease_hit(p, len, mac, ip, pick)) {
			memcpy(out + off, p, len);
			off += len;
			out[off++] = '\n';
		}
		p += len + (p[len] ? 1 : 0);
	}
	out[off] = '\0';
	if ((rc = write_text(path, out, err)))
		goto out;
	if (pid) {
		int argc = 0;

		for (ssize_t i = 0; i < n; i += (ssize_t)strlen(cmdbuf + i) + 1)
			argv[argc++] = cmdbuf + i;
		argv[argc] = NULL;
		rc = start_dnsmasq(ctx, net_id, argv, err);
	}
out:
	free(text);
	free(out);
	free(cmdbuf);
	free(argv);
	return rc;
}

/* Install the new dhcp-hosts text and make dnsmasq see it. */
static int hosts_commit(const struct yn_ctx *ctx, const char *net_id, const char *text,
			const char *mac, const char *ip, enum lease_pick pick, struct yun_err *err)
{
	char path[YN_PATH_MAX];
	pid_t pid;
	int rc;

	net_file(ctx, net_id, "dhcp-hosts", path);
	if ((rc = write_text(path, text, err)))
		return rc;
	/* A restart (leases to drop) re-reads the hosts too; else SIGHUP does. */
	if ((rc = purge_leases(ctx, net_id, mac, ip, pick, err)))
		return rc;
	pid = find_dnsmasq(ctx, net_id);
	if (pid && kill(pid, SIGHUP) < 0 && errno != ESRCH)
		return yun_err_errno(err, errno, "network %s: dnsmasq %d: reload", net_id,
				     (int)pid);
	return 0;
}

static int host_drop_all(const struct yn_ctx *ctx, const char *except_net, const char *instance_id,
			 struct yun_err *err);

int yn_dhcp_host_set(const struct yn_ctx *ctx, const char *net_id, const char *instance_id,
		     const uint8_t mac[6], uint32_t ip, struct yun_err *err)
{
	char dir[YN_PATH_MAX], path[YN_PATH_MAX], m[YN_MAC_STRLEN], a[YN_IP_STRLEN];
	char line[YN_MAC_STRLEN + YN_IP_STRLEN + YN_ID_MAX + 4];
	char *text = NULL, *next = NULL;
	int rc;

	if ((rc = yn_id_check(YN_ID_NETWORK, net_id, err)) ||
	    (rc = yn_id_check(YN_ID_INSTANCE, instance_id, err)))
		return rc;
	yn_ctx_net_dir(ctx, net_id, dir);
	net_file(ctx, net_id, "dhcp-hosts", path);
	if ((rc = yn_mkdirs(dir, err)))
		return rc;
	if ((rc = host_drop_all(ctx, net_id, instance_id, err)) ||
	    (rc = read_text(path, true, &text, err)))
		return rc;
	snprintf(line, sizeof(line), "%s,%s,%s", yn_mac_format(mac, m), yn_ip_format(ip, a),
		 instance_id);
	next = yn_dhcp_hosts_edit(text, instance_id, line);
	if (!next)
		rc = yun_err_set(err, ENOMEM, "network %s: out of memory", net_id);
	else if (strcmp(next, text))
		rc = hosts_commit(ctx, net_id, next, m, a, LEASE_CONFLICT, err);
	free(text);
	free(next);
	return rc;
}

static int host_drop_one(const struct yn_ctx *ctx, const char *net_id, const char *instance_id,
			 struct yun_err *err)
{
	char path[YN_PATH_MAX], mac[32] = "", ip[32] = "";
	char *text = NULL, *next = NULL;
	int rc;

	net_file(ctx, net_id, "dhcp-hosts", path);
	if ((rc = read_text(path, true, &text, err)))
		return rc;
	/* The entry's MAC and IP say which leases go with it. */
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");
		char id[YN_ID_MAX + 8];

		field(p, len, 2, id, sizeof(id));
		if (!strcmp(id, instance_id)) {
			field(p, len, 0, mac, sizeof(mac));
			field(p, len, 1, ip, sizeof(ip));
		}
		p += len + (p[len] ? 1 : 0);
	}
	next = yn_dhcp_hosts_edit(text, instance_id, NULL);
	if (!next)
		rc = yun_err_set(err, ENOMEM, "network %s: out of memory", net_id);
	else if (strcmp(next, text))
		rc = hosts_commit(ctx, net_id, next, mac, ip, LEASE_ANY, err);
	free(text);
	free(next);
	return rc;
}

/* Drop the instance's entry from every network but except_net (NULL: all). */
static int host_drop_all(const struct yn_ctx *ctx, const char *except_net, const char *instance_id,
			 struct yun_err *err)
{
	char dir[YN_PATH_MAX];
	struct dirent *de;
	int rc = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/net", ctx->run_dir);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : yun_err_errno(err, errno, "directory %s: open", dir);
	while ((de = readdir(d)))
		if (!yn_id_check(YN_ID_NETWORK, de->d_name, NULL) &&
		    (!except_net || strcmp(de->d_name, except_net)) &&
		    (rc = host_drop_one(ctx, de->d_name, instance_id, err)))
			break;
	closedir(d);
	return rc;
}

int yn_dhcp_host_drop(const struct yn_ctx *ctx, const char *net_id, const char *instance_id,
		      struct yun_err *err)
{
	int rc;

	if ((rc = yn_id_check(YN_ID_INSTANCE, instance_id, err)))
		return rc;
	if (!net_id)
		return host_drop_all(ctx, NULL, instance_id, err);
	if ((rc = yn_id_check(YN_ID_NETWORK, net_id, err)))
		return rc;
	return host_drop_one(ctx, net_id, instance_id, err);
}
