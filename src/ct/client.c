/* client.c - see client.h. */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "console.h"
#include "net.h"
#include "proto.h"
#include "state.h"
#include "supervisor.h"

#define DETACH_KEY1 0x10 /* Ctrl-P */
#define DETACH_KEY2 0x11 /* Ctrl-Q */

/* ---- create ---- */

/* The host's cgroups, kept for the supervisor (a fork of this process). */
static int check_cgroups(const struct ct_config *cfg, struct cgroup_host **h, struct yun_err *err)
{
	int rc;

	rc = cgroup_probe("/sys/fs/cgroup", h, err);
	if (rc)
		return rc;
	rc = cgroup_limits_validate(*h, &cfg->limits, err);
	if (rc) {
		cgroup_host_free(*h);
		*h = NULL;
	}
	return rc;
}

/*
 * The supervisor must not hold the caller's descriptors (a pipe would never
 * see EOF): only the report pipe stays, as 3, and the first client
 * connection when there is one, as 4.
 */
static void detach_stdio(int report_fd, int conn_fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	/* Out of the way of the dup2s below first. */
	report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, 5);
	if (conn_fd >= 0)
		conn_fd = fcntl(conn_fd, F_DUPFD_CLOEXEC, 5);
	dup2(report_fd, 3);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	if (conn_fd >= 0) {
		dup2(conn_fd, 4);
		fcntl(4, F_SETFD, FD_CLOEXEC);
	}
	syscall(SYS_close_range, conn_fd >= 0 ? 5 : 4, ~0u, 0);
}

/*
 * One line from the supervisor. Not "until EOF": the container's first
 * process holds a copy of the pipe until its exec.
 */
static int read_report(int fd, char *line, size_t len)
{
	size_t got = 0;

	while (got + 1 < len && !memchr(line, '\n', got)) {
		ssize_t n = read(fd, line + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	line[got] = '\0';
	return (int)got;
}

static void add_winsize(json_t *req);

/*
 * With `first` (a request), the supervisor also gets a connected socket as
 * its first client, with `first` already queued on it: it answers as soon
 * as the container exists, with no connect / accept round trip. *conn is
 * then our end.
 */
static int create(struct ct_config *cfg, pid_t *init_pid, json_t *first, int *conn,
		  struct yun_err *err)
{
	struct cgroup_host *cgh = NULL;
	struct ct_state st = {0};
	char id[CT_ID_MAX + 1], line[YUN_ERR_MSG_MAX + 32];
	int pfd[2], sv[2] = {-1, -1}, rc, wstatus;
	pid_t mid;
	char *end;
	long code;

	rc = ct_config_validate(cfg, err);
	if (!rc)
		rc = ct_config_check_host(cfg, err);
	if (!rc)
		rc = check_cgroups(cfg, &cgh, err);
	if (rc)
		return rc;
	if (cfg->net == CT_NET_VETH && ct_net_link_exists(cfg->net_arg)) {
		rc = yun_err_set(err, EEXIST, "veth %s: a network device with this name exists",
				 cfg->net_arg);
		goto out;
	}
	if (!cfg->id) {
		ct_state_new_id(id, sizeof(id));
		cfg->id = strdup(id);
		if (!cfg->id) {
			rc = yun_err_set(err, ENOMEM, "out of memory");
			goto out;
		}
	}
	snprintf(st.id, sizeof(st.id), "%s", cfg->id);
	st.created = time(NULL);
	rc = ct_state_create(&st, cfg->userns == CT_USERNS_AUTO, err);
	if (rc)
		goto out;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		rc = yun_err_errno(err, errno, "pipe");
		ct_state_remove(cfg->id, NULL);
		goto out;
	}
	if (first && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = yun_err_errno(err, errno, "socketpair");
		close(pfd[0]);
		close(pfd[1]);
		ct_state_remove(cfg->id, NULL);
		goto out;
	}
	mid = fork();
	if (mid == 0) {
		/* Middle process: a new session, then the supervisor is orphaned to init. */
		close(pfd[0]);
		if (sv[0] >= 0)
			close(sv[0]);
		if (setsid() < 0)
			_exit(1);
		pid_t sup = fork();

		if (sup == 0) {
			detach_stdio(pfd[1], sv[1]);
			if (chdir("/") < 0)
				_exit(1);
			exit(ct_supervisor_main(cfg, st.userns_base, cgh, 3, sv[1] >= 0 ? 4 : -1));
		}
		_exit(sup < 0 ? 1 : 0);
	}
	close(pfd[1]);
	if (sv[1] >= 0)
		close(sv[1]);
	cgroup_host_free(cgh);
	cgh = NULL;
	if (mid < 0) {
		close(pfd[0]);
		if (sv[0] >= 0)
			close(sv[0]);
		ct_state_remove(cfg->id, NULL);
		return yun_err_errno(err, errno, "fork");
	}
	/* Queued for the supervisor while it builds the container. */
	if (first && ct_proto_send_json(sv[0], CT_MSG_REQUEST, first) < 0) {
		close(sv[0]);
		sv[0] = -1;
	}
	while (waitpid(mid, &wstatus, 0) < 0 && errno == EINTR)
		;
	read_report(pfd[0], line, sizeof(line));
	close(pfd[0]);
	code = strtol(line, &end, 10);
	line[strcspn(line, "\n")] = '\0';
	if (end == line || *end != ' ') {
		/* The supervisor died before it could say anything. */
		ct_state_remove(cfg->id, NULL);
		rc = yun_err_set(err, EIO, "container %s: the supervisor failed to start", cfg->id);
	} else if (code != 0) {
		rc = yun_err_set(err, code > 0 && code < 4096 ? (int)code : EIO, "%s", end + 1);
	} else if (first && sv[0] < 0) {
		rc = yun_err_set(err, EPIPE, "container %s: lost the supervisor's connection",
				 cfg->id);
	} else {
		if (init_pid)
			*init_pid = (pid_t)strtol(end + 1, NULL, 10);
		if (conn) {
			*conn = sv[0];
			sv[0] = -1;
		}
		rc = 0;
	}
	if (sv[0] >= 0)
		close(sv[0]);
	return rc;
out:
	cgroup_host_free(cgh);
	return rc;
}

int ct_client_create(struct ct_config *cfg, pid_t *init_pid, struct yun_err *err)
{
	return create(cfg, init_pid, NULL, NULL, err);
}

int ct_client_create_attached(struct ct_config *cfg, int *conn, struct yun_err *err)
{
	json_t *req = json_pack("{s:s, s:b}", "op", "attach", "start", true);
	int rc;

	if (!req)
		return yun_err_set(err, ENOMEM, "out of memory");
	add_winsize(req);
	rc = create(cfg, NULL, req, conn, err);
	json_decref(req);
	return rc;
}

/* ---- relaying a console ---- */

struct relay {
	const char *proxy_id; /* forward SIGINT/SIGTERM to this container's init */
	int sock;
	bool tty;	/* the remote side is a pty */
	bool local_tty; /* our stdin is a terminal (raw mode, detach keys) */
	bool stdin_open;
	bool saw_key1;
	struct termios saved;
	int sigfd;
};

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void send_winsize(struct relay *r)
{
	unsigned rows, cols;
	uint16_t rc[2];

	if (!r->local_tty || ct_console_get_winsize(0, &rows, &cols) < 0)
		return;
	rc[0] = (uint16_t)rows;
	rc[1] = (uint16_t)cols;
	ct_proto_send(r->sock, CT_MSG_RESIZE, rc, sizeof(rc));
}

/* Forward stdin; returns true when the detach sequence was typed. */
static bool forward_stdin(struct relay *r)
{
	uint8_t buf[CT_PROTO_CHUNK], out[CT_PROTO_CHUNK + 1];
	size_t m = 0;
	ssize_t n = read(0, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return false;
	if (n <= 0) {
		r->stdin_open = false;
		ct_proto_send(r->sock, CT_MSG_STDIN_EOF, NULL, 0);
		return false;
	}
	if (!r->local_tty)
		return ct_proto_send(r->sock, CT_MSG_STDIN, buf, (size_t)n), false;
	for (ssize_t i = 0; i < n; i++) {
		if (r->saw_key1) {
			r->saw_key1 = false;
			if (buf[i] == DETACH_KEY2)
				return true;
			out[m++] = DETACH_KEY1;
		}
		if (buf[i] == DETACH_KEY1) {
			r->saw_key1 = true;
			continue;
		}
		out[m++] = buf[i];
	}
	if (m)
		ct_proto_send(r->sock, CT_MSG_STDIN, out, m);
	return false;
}

static int relay_run(struct relay *r, struct ct_exit *ex, struct yun_err *err)
{
	uint8_t *buf = malloc(CT_PROTO_MAX);
	sigset_t set, old;
	int rc = 0;

	if (!buf)
		return yun_err_set(err, ENOMEM, "out of memory");
	memset(ex, 0, sizeof(*ex));
	r->local_tty = r->tty && isatty(0);
	r->stdin_open = true;
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	/* Without a local terminal Ctrl-C reaches us, not the container: pass it on. */
	if (r->proxy_id && !r->local_tty) {
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
	}
	sigprocmask(SIG_BLOCK, &set, &old);
	r->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (r->local_tty && ct_console_raw(0, &r->saved) < 0)
		r->local_tty = false;
	send_winsize(r);
	for (;;) {
		struct pollfd p[3] = {
		    {.fd = r->sock, .events = POLLIN},
		    {.fd = r->stdin_open ? 0 : -1, .events = POLLIN},
		    {.fd = r->sigfd, .events = POLLIN},
		};
		int type;
		ssize_t n;

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = yun_err_errno(err, errno, "poll");
			break;
		}
		if (p[2].revents) {
			struct signalfd_siginfo si;

			while (read(r->sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGWINCH)
					send_winsize(r);
				else
					ct_client_kill(r->proxy_id, (int)si.ssi_signo, NULL);
			}
		}
		if (p[1].revents && forward_stdin(r)) {
			ex->detached = true;
			break;
		}
		if (!p[0].revents)
			continue;
		n = ct_proto_recv(r->sock, buf, &type, NULL);
		/* A reset is reported before queued packets; those are still there. */
		if (n == -ECONNRESET)
			n = ct_proto_recv(r->sock, buf, &type, NULL);
		if (n < 0 || type == 0) {
			rc = yun_err_set(err, EPIPE, "lost the connection to the supervisor");
			break;
		}
		if (type == CT_MSG_STDOUT || type == CT_MSG_STDERR) {
			write_all(type == CT_MSG_STDOUT ? 1 : 2, buf, (size_t)n);
		} else if (type == CT_MSG_EXIT) {
			json_t *x = ct_proto_json(buf, (size_t)n);
			json_t *msg = x ? json_object_get(x, "message") : NULL;

			ex->status =
			    x ? (int)json_integer_value(json_object_get(x, "status")) : 255;
			if (json_is_string(msg))
				snprintf(ex->message, sizeof(ex->message), "%s",
					 json_string_value(msg));
			json_decref(x);
			break;
		}
	}
	if (r->local_tty)
		ct_console_restore(0, &r->saved);
	if (r->sigfd >= 0)
		close(r->sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	free(buf);
	return rc;
}

static void add_winsize(json_t *req)
{
	unsigned rows, cols;

	if (isatty(0) && ct_console_get_winsize(0, &rows, &cols) == 0) {
		json_object_set_new(req, "rows", json_integer(rows));
		json_object_set_new(req, "cols", json_integer(cols));
	}
}

int ct_client_attach_conn(int conn, const char *id, struct ct_exit *ex, struct yun_err *err)
{
	struct relay r = {.sigfd = -1, .proxy_id = id, .sock = conn};
	json_t *rep = NULL;
	int rc;

	rc = ct_proto_reply(r.sock, &rep, err);
	if (!rc) {
		r.tty = json_is_true(json_object_get(rep, "tty"));
		json_decref(rep);
		rc = relay_run(&r, ex, err);
	}
	close(r.sock);
	return rc;
}

int ct_client_attach(const char *id, bool start, struct ct_exit *ex, struct yun_err *err)
{
	struct relay r = {.sigfd = -1, .proxy_id = id};
	json_t *req, *rep = NULL;
	int rc;

	rc = ct_proto_connect(id, &r.sock, err);
	if (rc)
		return rc;
	req = json_pack("{s:s, s:b}", "op", "attach", "start", start);
	add_winsize(req);
	rc = ct_proto_call(r.sock, req, &rep, err);
	json_decref(req);
	if (!rc) {
		r.tty = json_is_true(json_object_get(rep, "tty"));
		json_decref(rep);
		rc = relay_run(&r, ex, err);
	}
	close(r.sock);
	return rc;
}

static json_t *strv_json(char **v)
{
	json_t *a = json_array();

	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

int ct_client_exec(const char *id, char **argv, char **env, const char *cwd, bool tty,
		   struct ct_exit *ex, struct yun_err *err)
{
	struct relay r = {.sigfd = -1, .tty = tty};
	json_t *req, *rep = NULL;
	int rc;

	rc = ct_proto_connect(id, &r.sock, err);
	if (rc)
		return rc;
	req = json_pack("{s:s, s:o, s:o, s:b}", "op", "exec", "argv", strv_json(argv), "env",
			strv_json(env), "tty", tty);
	if (cwd)
		json_object_set_new(req, "cwd", json_string(cwd));
	add_winsize(req);
	rc = ct_proto_call(r.sock, req, &rep, err);
	json_decref(req);
	if (!rc) {
		json_decref(rep);
		rc = relay_run(&r, ex, err);
	}
	close(r.sock);
	return rc;
}

/* ---- simple requests ---- */

static int simple_call(const char *id, json_t *req, json_t **rep, struct yun_err *err)
{
	json_t *r = NULL;
	int fd, rc;

	rc = ct_proto_connect(id, &fd, err);
	if (rc) {
		json_decref(req);
		return rc;
	}
	rc = ct_proto_call(fd, req, &r, err);
	json_decref(req);
	close(fd);
	if (rep)
		*rep = r;
	else
		json_decref(r);
	return rc;
}

int ct_client_kill(const char *id, int sig, struct yun_err *err)
{
	return simple_call(id, json_pack("{s:s, s:i}", "op", "kill", "signal", sig), NULL, err);
}

int ct_client_stop(const char *id, int sig, int timeout_s, struct ct_exit *ex, struct yun_err *err)
{
	uint8_t *buf;
	json_t *req, *rep = NULL;
	int fd, rc, type;
	ssize_t n;

	memset(ex, 0, sizeof(*ex));
	rc = ct_proto_connect(id, &fd, err);
	if (rc)
		return rc;
	req = json_pack("{s:s, s:i, s:i}", "op", "stop", "timeout", timeout_s, "signal", sig);
	rc = ct_proto_call(fd, req, &rep, err);
	json_decref(req);
	json_decref(rep);
	if (rc) {
		close(fd);
		return rc;
	}
	buf = malloc(CT_PROTO_MAX);
	if (!buf) {
		close(fd);
		return yun_err_set(err, ENOMEM, "out of memory");
	}
	/* The EXIT message comes when init is gone. */
	for (;;) {
		n = ct_proto_recv(fd, buf, &type, NULL);
		if (n < 0 || type == 0) {
			rc = yun_err_set(err, EPIPE,
					 "container %s: lost the supervisor while stopping", id);
			break;
		}
		if (type == CT_MSG_EXIT) {
			json_t *x = ct_proto_json(buf, (size_t)n);

			ex->status =
			    x ? (int)json_integer_value(json_object_get(x, "status")) : 255;
			json_decref(x);
			break;
		}
	}
	free(buf);
	close(fd);
	return rc;
}

/* A process that exists and is not a zombie waiting for its reaper. */
static bool pid_running(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool running = false;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		running = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return running;
}

/* The supervisor answers on its socket (a pid alone could be reused or a zombie). */
static bool supervisor_alive(const struct ct_state *st)
{
	int fd;

	if (!pid_running(st->supervisor_pid) || ct_proto_connect(st->id, &fd, NULL) < 0)
		return false;
	close(fd);
	return true;
}

int ct_client_list(json_t **out, struct yun_err *err)
{
	json_t *list = json_array();
	char **ids;
	size_t n;
	int rc;

	if (!list)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = ct_state_list(&ids, &n, err);
	if (rc) {
		json_decref(list);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		struct ct_state st;
		char created[32];
		struct tm tm;
		const char *status;
		json_t *e, *cmd;

		if (ct_state_read(ids[i], &st, NULL) < 0)
			continue;
		status = ct_status_name(st.status);
		if (st.status != CT_STATUS_EXITED && !supervisor_alive(&st))
			status = "dead";
		gmtime_r(&st.created, &tm);
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
		cmd = st.config ? json_object_get(st.config, "command") : NULL;
		e = json_pack("{s:s, s:i, s:s, s:s, s:o}", "id", st.id, "pid", (int)st.pid,
			      "status", status, "created", created, "command",
			      cmd ? json_incref(cmd) : json_array());
		if (st.status == CT_STATUS_EXITED) {
			json_object_set_new(e, "exit_status", json_integer(st.exit_status));
			json_object_set_new(e, "exit_reason", json_string(st.exit_reason));
		}
		json_array_append_new(list, e);
		ct_state_release(&st);
	}
	ct_state_free_ids(ids, n);
	*out = list;
	return 0;
}

/* What a dead supervisor left: the cgroup, a veth, the state dir. */
static int remove_leftovers(const char *id, const struct ct_state *st, struct yun_err *err)
{
	struct cgroup_host *h;
	struct cgroup *cg;
	json_t *net = st->config ? json_object_get(st->config, "net") : NULL;
	int rc;

	if (json_is_string(net) && !strncmp(json_string_value(net), "veth=", 5))
		ct_net_link_delete(json_string_value(net) + 5, NULL);
	if (cgroup_probe("/sys/fs/cgroup", &h, NULL) == 0) {
		if (cgroup_open(h, id, &cg, NULL) == 0) {
			cgroup_kill_all(cg, NULL);
			if (cgroup_destroy(cg, err) < 0) {
				cgroup_host_free(h);
				return -err->code;
			}
		}
		cgroup_host_free(h);
	}
	rc = ct_state_remove(id, err);
	return rc;
}

int ct_client_remove(const char *id, bool force, struct yun_err *err)
{
	struct ct_state st;
	struct ct_exit ex;
	int rc;

	rc = ct_state_read(id, &st, err);
	if (rc)
		return rc;
	/* An exited container's supervisor may still be saying goodbye to its clients. */
	for (int i = 0; i < 200 && st.status == CT_STATUS_EXITED && pid_running(st.supervisor_pid);
	     i++)
		usleep(10000);
	if (st.status != CT_STATUS_EXITED && supervisor_alive(&st)) {
		if (!force) {
			ct_state_release(&st);
			return yun_err_set(err, EBUSY,
					   "container %s: is %s (stop it first, or rm -f)", id,
					   ct_status_name(st.status));
		}
		ct_client_stop(id, 0, 0, &ex, NULL);
		/* The supervisor cleans up; wait until it is gone. */
		for (int i = 0; i < 250 && pid_running(st.supervisor_pid); i++)
			usleep(20000);
		if (pid_running(st.supervisor_pid)) {
			ct_state_release(&st);
			return yun_err_set(err, EBUSY, "container %s: the supervisor did not exit",
					   id);
		}
	}
	rc = remove_leftovers(id, &st, err);
	ct_state_release(&st);
	return rc;
}
