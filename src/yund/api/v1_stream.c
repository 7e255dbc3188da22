/*
 * v1_stream.c - exec and console for container instances, over an
 * upgraded HTTP/1.1 connection (101 Switching Protocols).
 *
 *   POST /v1/instances/{ref}/exec     {command[], tty, env[], cwd}   Upgrade: yun-exec
 *   GET  /v1/instances/{ref}/console                                 Upgrade: yun-console
 *
 * After the 101 the connection's thread runs a child and relays bytes
 * between it and the socket until one side ends:
 *   exec     `yun-ct exec -t|-T [-e K=V]... [--cwd D] ID -- CMD...` on three
 *            pipes. Client -> yund: CMD's stdin, raw; the client's
 *            half-close (shutdown SHUT_WR) is end of input. yund -> client:
 *            frames, a type byte, a 4-byte big-endian length, the payload:
 *              1  stdout bytes      2  stderr bytes
 *              3  exit: {"status": N} (JSON), the last frame; yund closes.
 *            N is CMD's status as a shell shows it (128+S after signal S;
 *            126 cannot execute, 127 not found, 125 yun-ct failed, its
 *            message in a stderr frame). A client that disconnects kills the
 *            session (the command gets SIGHUP from the supervisor).
 *   console  `yun-ct attach ID` on pipes: raw bytes both ways, no framing.
 *            The client detaches by closing; yund then SIGKILLs its attach
 *            client, which only detaches it (the container keeps running).
 *            yund closes when the container ends. A microVM's console is
 *            no child: yund connects to its yun-vmm's console socket
 *            (compute/vmdrv.h) and relays the same way; closing that
 *            connection detaches, yun-vmm closing it (the VM ended, or
 *            another client took the console) ends the session.
 * The children find yund's containers through $YUN_CT_ROOT (main.c sets
 * it) and are reaped here by pid (core/proc.c never waits for any pid).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/log.h"
#include "../compute/instance.h"
#include "../compute/vmdrv.h"
#include "../store/store.h"
#include "../yund.h"
#include "body.h"
#include "ranges.h"
#include "v1.h"

extern char **environ;

#define FRAME_STDOUT 1
#define FRAME_STDERR 2
#define FRAME_EXIT   3
#define CHUNK	     16384
#define EXEC_ENV_MAX 64 /* yun-ct exec takes at most this many -e */

/* ---- sessions and shutdown ---- */

static pthread_mutex_t sess_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sess_done = PTHREAD_COND_INITIALIZER;
static int n_sessions;
static bool stopping;
static int stop_pipe[2] = {-1, -1}; /* readable once yund stops: every relay wakes */

static bool session_begin(void)
{
	bool ok;

	pthread_mutex_lock(&sess_lock);
	if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		stop_pipe[0] = stop_pipe[1] = -1;
	ok = !stopping && stop_pipe[0] >= 0;
	if (ok)
		n_sessions++;
	pthread_mutex_unlock(&sess_lock);
	return ok;
}

static void session_end(void)
{
	pthread_mutex_lock(&sess_lock);
	n_sessions--;
	pthread_cond_broadcast(&sess_done);
	pthread_mutex_unlock(&sess_lock);
}

void v1_streams_shutdown(void)
{
	pthread_mutex_lock(&sess_lock);
	stopping = true;
	if (stop_pipe[1] >= 0 && write(stop_pipe[1], "x", 1) < 0)
		yun_warn("streams: waking the sessions failed: %s", strerror(errno));
	while (n_sessions > 0)
		pthread_cond_wait(&sess_done, &sess_lock);
	pthread_mutex_unlock(&sess_lock);
}

/* ---- what a session runs ---- */

struct session {
	char **argv; /* the yun-ct command line (owned, NULL-terminated) */
	char vm_sock[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* microVM console: no argv */
	bool framed; /* exec: frames and an exit status; console: raw */
	char what[96];
};

static void session_free(void *ctx)
{
	struct session *s = ctx;

	if (!s)
		return;
	for (char **a = s->argv; a && *a; a++)
		free(*a);
	free(s->argv);
	free(s);
}

/* posix_spawn: thread-safe in a threaded daemon; default signals, empty mask, fds 0-2 only. */
static int spawn(char **argv, int in, int out, int err, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return -rc;
}

/* ---- the relay ---- */

struct relay {
	struct session *s;
	int sock, in_w, out_r, err_r;
	char *pending; /* client bytes the child's stdin has not taken yet */
	size_t pending_len;
	bool sock_in_open; /* the client may still send */
	bool client_gone;
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* All of p to the socket; false when the client is gone or yund stops. */
static bool send_all(struct relay *r, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(r->sock, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf[2] = {{.fd = r->sock, .events = POLLOUT},
					       {.fd = stop_pipe[0], .events = POLLIN}};

			if (poll(pf, 2, -1) < 0 && errno != EINTR)
				return false;
			if (pf[1].revents)
				return false;
			continue;
		}
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

static bool send_frame(struct relay *r, uint8_t type, const void *p, size_t n)
{
	uint8_t h[5] = {type, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
			(uint8_t)n};

	if (!r->s->framed)
		return send_all(r, p, n);
	return send_all(r, h, sizeof(h)) && send_all(r, p, n);
}

/* Hand what the client sent to the child's stdin, as much as it takes now. */
static void feed_stdin(struct relay *r)
{
	while (r->pending_len && r->in_w >= 0) {
		ssize_t w = write(r->in_w, r->pending, r->pending_len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			/* The child closed its stdin: drop the rest. */
			close_fd(&r->in_w);
			r->pending_len = 0;
			return;
		}
		memmove(r->pending, r->pending + w, r->pending_len - (size_t)w);
		r->pending_len -= (size_t)w;
	}
	if (!r->pending_len && !r->sock_in_open && r->s->framed)
		close_fd(&r->in_w); /* exec: the client's half-close is CMD's end of input */
}

static int add_pending(struct relay *r, const char *p, size_t n)
{
	char *b;

	if (!n)
		return 0;
	if (r->in_w < 0)
		return 0;
	b = realloc(r->pending, r->pending_len + n);
	if (!b)
		return -ENOMEM;
	r->pending = b;
	memcpy(b + r->pending_len, p, n);
	r->pending_len += n;
	return 0;
}

/* Read the client; returns false when the session must end (client gone). */
static bool from_client(struct relay *r)
{
	char buf[CHUNK];
	ssize_t n = recv(r->sock, buf, sizeof(buf), 0);

	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return true;
	if (n < 0) {
		r->client_gone = true;
		return false;
	}
	if (n == 0) {
		r->sock_in_open = false;
		if (!r->s->framed) {
			/* console: the client left (detach) */
			r->client_gone = true;
			return false;
		}
		feed_stdin(r);
		return true;
	}
	if (add_pending(r, buf, (size_t)n) < 0)
		return false;
	feed_stdin(r);
	return true;
}

/* Read the child's stdout or stderr; returns false when the client is gone. */
static bool from_child(struct relay *r, int *fd, uint8_t type)
{
	char buf[CHUNK];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		close_fd(fd);
		return true;
	}
	if (!send_frame(r, type, buf, (size_t)n)) {
		r->client_gone = true;
		return false;
	}
	return true;
}

static int wait_child(pid_t pid)
{
	int ws;

	if (pid <= 0)
		return 0; /* a microVM console: no child */
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return 255;
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 255;
}

/* A connection to a yun-vmm console socket, or -errno. */
static int connect_vm(const char *path, int *fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	if (connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(*fd);
		*fd = -1;
		return rc;
	}
	return 0;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void run_session(void *ctx, int sock, const char *extra, size_t extra_len)
{
	struct session *s = ctx;
	struct relay r = {
	    .s = s, .sock = sock, .in_w = -1, .out_r = -1, .err_r = -1, .sock_in_open = true};
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	bool ended_by_us = false;
	pid_t pid = -1;
	int rc, status;

	if (!session_begin())
		return;
	set_nonblock(sock);
	if (s->vm_sock[0]) {
		/* One connection, both ways: in_w writes to it, out_r reads from it. */
		rc = connect_vm(s->vm_sock, &r.out_r);
		if (rc < 0)
			goto fail;
		r.in_w = fcntl(r.out_r, F_DUPFD_CLOEXEC, 0);
		if (r.in_w < 0) {
			rc = -errno;
			close_fd(&r.out_r);
			goto fail;
		}
	} else {
		if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
		    (s->framed && pipe2(err, O_CLOEXEC) < 0)) {
			rc = -errno;
			goto fail;
		}
		rc = spawn(s->argv, in[0], out[1], s->framed ? err[1] : out[1], &pid);
		close_fd(&in[0]);
		close_fd(&out[1]);
		close_fd(&err[1]);
		if (rc < 0)
			goto fail;
		r.in_w = in[1];
		r.out_r = out[0];
		r.err_r = err[0];
		in[1] = out[0] = err[0] = -1;
	}
	set_nonblock(r.in_w);
	set_nonblock(r.out_r);
	if (r.err_r >= 0)
		set_nonblock(r.err_r);
	if (add_pending(&r, extra, extra_len) == 0)
		feed_stdin(&r);

	while (r.out_r >= 0 || r.err_r >= 0) {
		/*
		 * The socket stays in the set after the client's half-close
		 * (events 0): a Unix socket whose peer closed reports POLLHUP,
		 * so a client that left is noticed even while the command is
		 * silent (on TCP, at its next output).
		 */
		struct pollfd pf[5] = {
		    {.fd = r.sock,
		     .events = (short)(r.sock_in_open && !r.pending_len ? POLLIN : 0)},
		    {.fd = r.pending_len ? r.in_w : -1, .events = POLLOUT},
		    {.fd = r.out_r, .events = POLLIN},
		    {.fd = r.err_r, .events = POLLIN},
		    {.fd = stop_pipe[0], .events = POLLIN},
		};

		if (poll(pf, 5, -1) < 0) {
			if (errno == EINTR)
				continue;
			ended_by_us = true;
			break;
		}
		if (pf[4].revents) {
			ended_by_us = true;
			break;
		}
		if ((pf[0].revents & POLLIN) && !from_client(&r)) {
			ended_by_us = true;
			break;
		}
		if ((pf[0].revents & (POLLHUP | POLLERR)) && !(pf[0].revents & POLLIN)) {
			r.client_gone = true;
			ended_by_us = true;
			break;
		}
		if (pf[1].revents)
			feed_stdin(&r);
		if (pf[2].revents && !from_child(&r, &r.out_r, FRAME_STDOUT)) {
			ended_by_us = true;
			break;
		}
		if (pf[3].revents && !from_child(&r, &r.err_r, FRAME_STDERR)) {
			ended_by_us = true;
			break;
		}
	}
	close_fd(&r.in_w);
	close_fd(&r.out_r);
	close_fd(&r.err_r);
	if (ended_by_us && pid > 0)
		kill(pid, SIGKILL); /* exec: the command gets SIGHUP; console: a detach */
	status = wait_child(pid);
	if (s->framed && !ended_by_us) {
		char x[32];
		int n = snprintf(x, sizeof(x), "{\"status\":%d}", status);

		send_frame(&r, FRAME_EXIT, x, (size_t)n);
	}
	if (s->what[0])
		yun_debug("%s: ended (%s, status %d)", s->what,
			  r.client_gone ? "client left"
			  : ended_by_us ? "yund stops"
					: "done",
			  status);
	/* Our last bytes first, then the close (server.c) is an orderly one. */
	shutdown(sock, SHUT_WR);
	free(r.pending);
	session_end();
	return;
fail:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	yun_warn("%s: starting %s failed: %s", s->what, s->vm_sock[0] ? s->vm_sock : s->argv[0],
		 strerror(-rc));
	if (s->framed) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg), "yund: starting %s: %s\n", s->argv[0],
				 strerror(-rc));

		send_frame(&r, FRAME_STDERR, msg, (size_t)n);
		send_frame(&r, FRAME_EXIT, "{\"status\":125}", 14);
	}
	shutdown(sock, SHUT_WR);
	session_end();
}

/* ---- the handlers ---- */

static bool wants(const struct api_req *req, const char *proto)
{
	const char *up = api_header(req, "Upgrade");
	const char *conn = api_header(req, "Connection");

	return up && conn && !strcasecmp(up, proto) && strcasestr(conn, "upgrade");
}

/*
 * The instance, which must be running and a container (or, with vm_too,
 * a microVM); false after an error reply.
 */
static bool running_instance(struct api_req *req, struct api_reply *rep, const char *op,
			     bool vm_too, struct st_instance *in)
{
	struct store *st = req->y->store;
	struct yun_err err = {0};

	if (st->ops->instance_get(st, req->params[0], in, &err) < 0) {
		api_reply_err(rep, &err);
		return false;
	}
	if (strcmp(in->type, "container") && !(vm_too && !strcmp(in->type, "microvm"))) {
		api_reply_error(rep, 422,
				"instance %s: %s is for container instances (this is a %s)",
				in->m.name, op, in->type);
	} else if (strcmp(in->state, "running")) {
		api_reply_error(rep, 409, "instance %s: not running (%s); start it first",
				in->m.name, in->state);
	} else {
		return true;
	}
	st_instance_clear(in);
	return false;
}

static struct session *session_new(size_t argc)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s && !(s->argv = calloc(argc + 1, sizeof(char *)))) {
		free(s);
		s = NULL;
	}
	return s;
}

static int push(struct session *s, size_t *i, const char *a)
{
	if (!(s->argv[*i] = strdup(a)))
		return -ENOMEM;
	(*i)++;
	return 0;
}

static void reply_upgrade(struct api_reply *rep, struct session *s, const char *proto)
{
	rep->status = 101;
	rep->upgrade = proto;
	rep->upgraded = run_session;
	rep->stream_ctx = s;
	rep->stream_free = session_free;
}

static const struct body_field exec_fields[] = {
    {"command", BODY_STRING_LIST, true, 1, LIM_ARGS_MAX, LIM_ARG_LEN_MAX},
    {"tty", BODY_BOOL, false, 0, 0, 0},
    {"env", BODY_STRING_LIST, false, 0, EXEC_ENV_MAX, LIM_ARG_LEN_MAX},
    {"cwd", BODY_STRING, false, 1, LIM_ARG_LEN_MAX, 0},
};

static int check_exec_body(json_t *b, struct yun_err *err)
{
	json_t *v;
	size_t i;

	if (json_string_length(json_array_get(json_object_get(b, "command"), 0)) == 0)
		return yun_err_set(err, ERANGE, "field command[0]: must not be empty");
	json_array_foreach(json_object_get(b, "env"), i, v)
	{
		const char *e = json_string_value(v);

		if (!e[0] || e[0] == '=' || !strchr(e, '='))
			return yun_err_set(err, ERANGE,
					   "field env[%zu]: \"%.40s\": must be NAME=VALUE", i, e);
	}
	v = json_object_get(b, "cwd");
	if (v && json_string_value(v)[0] != '/')
		return yun_err_set(err, ERANGE, "field cwd: \"%.40s\": must be an absolute path",
				   json_string_value(v));
	return 0;
}

void v1_instance_exec(struct api_req *req, struct api_reply *rep)
{
	struct yun_err err = {0};
	struct st_instance in;
	struct session *s = NULL;
	json_t *b = NULL, *cmd, *env, *v;
	size_t i, k = 0;

	if (!wants(req, "yun-exec")) {
		api_reply_error(rep, 400,
				"exec: needs an upgrade (Connection: Upgrade, Upgrade: yun-exec)");
		return;
	}
	if (body_parse(req->body, req->body_len, false, &b, &err) < 0 ||
	    body_check(b, exec_fields, sizeof(exec_fields) / sizeof(exec_fields[0]), &err) < 0 ||
	    check_exec_body(b, &err) < 0) {
		api_reply_err(rep, &err);
		json_decref(b);
		return;
	}
	if (!running_instance(req, rep, "exec", false, &in)) {
		json_decref(b);
		return;
	}
	cmd = json_object_get(b, "command");
	env = json_object_get(b, "env");
	/* yun-ct exec -t|-T [-e K=V]... [--cwd D] ID -- CMD... */
	s = session_new(7 + 2 * json_array_size(env) + json_array_size(cmd));
	if (!s || push(s, &k, req->y->cfg->yun_ct) || push(s, &k, "exec") ||
	    push(s, &k, json_is_true(json_object_get(b, "tty")) ? "-t" : "-T"))
		goto oom;
	json_array_foreach(env, i, v)
	{
		if (push(s, &k, "-e") || push(s, &k, json_string_value(v)))
			goto oom;
	}
	if (json_object_get(b, "cwd") &&
	    (push(s, &k, "--cwd") || push(s, &k, json_string_value(json_object_get(b, "cwd")))))
		goto oom;
	if (push(s, &k, in.m.id) || push(s, &k, "--"))
		goto oom;
	json_array_foreach(cmd, i, v)
	{
		if (push(s, &k, json_string_value(v)))
			goto oom;
	}
	s->framed = true;
	snprintf(s->what, sizeof(s->what), "instance %s: exec", in.m.name);
	reply_upgrade(rep, s, "yun-exec");
	st_instance_clear(&in);
	json_decref(b);
	return;
oom:
	session_free(s);
	st_instance_clear(&in);
	json_decref(b);
	api_reply_error(rep, 500, "out of memory");
}

/* A running microVM's console: its yun-vmm's socket (compute/vmdrv.h). */
static void vm_console(struct api_req *req, struct api_reply *rep, const struct st_instance *in)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct session *s;
	struct stat st;

	instance_dir(req->y, in->m.id, dir, sizeof(dir));
	if (!vmdrv_console_socket(dir, path, sizeof(path))) {
		api_reply_error(rep, 422,
				"instance %s: has no console (its directory's path is too long "
				"for a Unix socket; the output is in its logs)",
				in->m.name);
		return;
	}
	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		api_reply_error(rep, 409,
				"instance %s: its yun-vmm serves no console (started by an older "
				"yund? restart the instance)",
				in->m.name);
		return;
	}
	s = session_new(0);
	if (!s) {
		api_reply_error(rep, 500, "out of memory");
		return;
	}
	memcpy(s->vm_sock, path, strlen(path) + 1); /* fits: vmdrv_console_socket checked */
	snprintf(s->what, sizeof(s->what), "instance %s: console", in->m.name);
	reply_upgrade(rep, s, "yun-console");
}

void v1_instance_console(struct api_req *req, struct api_reply *rep)
{
	struct st_instance in;
	struct session *s;
	size_t k = 0;

	if (!wants(req, "yun-console")) {
		api_reply_error(rep, 400,
				"console: needs an upgrade (Connection: Upgrade, Upgrade: "
				"yun-console)");
		return;
	}
	if (!running_instance(req, rep, "console", true, &in))
		return;
	if (!strcmp(in.type, "microvm")) {
		vm_console(req, rep, &in);
		st_instance_clear(&in);
		return;
	}
	s = session_new(3);
	if (!s || push(s, &k, req->y->cfg->yun_ct) || push(s, &k, "attach") ||
	    push(s, &k, in.m.id)) {
		session_free(s);
		st_instance_clear(&in);
		api_reply_error(rep, 500, "out of memory");
		return;
	}
	snprintf(s->what, sizeof(s->what), "instance %s: console", in.m.name);
	reply_upgrade(rep, s, "yun-console");
	st_instance_clear(&in);
}
