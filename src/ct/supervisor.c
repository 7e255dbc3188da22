/* supervisor.c - see supervisor.h. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "cgroup.h"
#include "console.h"
#include "container.h"
#include "proto.h"
#include "state.h"

#define MAX_CLIENTS    64
#define MAX_EXECS      32
#define QUEUE_PAUSE    (1 << 20) /* stop reading a session while a client lags this much */
#define DRAIN_MS       1000	 /* console output still read after its process exited */
#define LINGER_MS      3000	 /* wait for clients to take the exit status */
#define STOP_TIMEOUT_S 10

struct chunk {
	struct chunk *next;
	size_t len, off;
	uint8_t data[];
};

struct session;

struct client {
	int fd;
	bool raw;	/* console socket: bytes only, no framing */
	bool streaming; /* attach / exec: gets output and the exit */
	bool close_after_flush;
	bool half_closed; /* all said; waiting for the client to close */
	bool waits_exit;  /* stop: gets the exit, no output */
	struct session *sess;
	struct chunk *head, *tail;
	size_t queued;
};

struct session {
	bool used;
	bool is_main;
	bool tty;
	int in_fd, out_fd, err_fd; /* in_fd == out_fd for a pty */
	pid_t pid;
	int exec_err_fd;
	bool exited, done;
	int status;
	char reason[128];
	char message[YUN_ERR_MSG_MAX];
	int64_t drain_deadline;
	uint8_t *pending; /* input not yet written */
	size_t pending_len;
	bool in_eof; /* the client's input ended: close in_fd once pending is written */
};

struct sup {
	struct ct_config *cfg;
	struct ct_state st;
	struct ct_container ct;
	struct cgroup_host *cgh;
	struct cgroup *cg;
	int sigfd, listen_fd, console_listen_fd;
	char sock_path[108];
	struct client clients[MAX_CLIENTS];
	struct session main;
	struct session execs[MAX_EXECS];
	bool started, init_exited, torn_down;
	bool cg_emptied;       /* cgroup_kill_all succeeded after init exited */
	bool exit_unwritten;   /* init exited, state.json does not say so yet */
	bool trimmed;	       /* malloc_trim done after the start */
	int64_t stop_deadline; /* SIGKILL after this; 0 = none */
	int64_t exit_deadline; /* leave after this once init is gone */
	int start_code;	       /* errno of a failed exec of the command */
	uint8_t buf[CT_PROTO_MAX];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- clients and their output queues ---- */

static void client_close(struct client *cl)
{
	struct chunk *c = cl->head, *next;
	char sink[256];

	/* Read what is left unread, so the peer gets no ECONNRESET (see client_flush). */
	while (cl->fd >= 0 && recv(cl->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;

	for (; c; c = next) {
		next = c->next;
		free(c);
	}
	close_fd(&cl->fd);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

static void client_queue(struct client *cl, int type, const void *data, size_t len)
{
	struct chunk *c;
	size_t hdr = cl->raw ? 0 : 1;

	if (cl->fd < 0)
		return;
	if (cl->raw && type != CT_MSG_STDOUT && type != CT_MSG_STDERR)
		return;
	c = malloc(sizeof(*c) + hdr + len);
	if (!c) {
		client_close(cl);
		return;
	}
	c->next = NULL;
	c->off = 0;
	c->len = hdr + len;
	if (hdr)
		c->data[0] = (uint8_t)type;
	memcpy(c->data + hdr, data, len);
	if (cl->tail)
		cl->tail->next = c;
	else
		cl->head = c;
	cl->tail = c;
	cl->queued += c->len;
}

static void client_queue_json(struct client *cl, int type, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);

	if (text)
		client_queue(cl, type, text, strlen(text));
	free(text);
}

static void client_flush(struct client *cl)
{
	while (cl->fd >= 0 && cl->head) {
		struct chunk *c = cl->head;
		ssize_t n;

		if (cl->raw)
			n = send(cl->fd, c->data + c->off, c->len - c->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			n = send(cl->fd, c->data, c->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			client_close(cl);
			return;
		}
		if (cl->raw && (size_t)n < c->len - c->off) {
			c->off += n;
			return;
		}
		cl->queued -= c->len;
		cl->head = c->next;
		if (!cl->head)
			cl->tail = NULL;
		free(c);
	}
	/*
	 * Done with this client: half-close and wait for its own close. Closing
	 * a Unix socket with unread data makes the peer's next recv fail with
	 * ECONNRESET before it gets our last message.
	 */
	if (cl->fd >= 0 && !cl->head && cl->close_after_flush && !cl->half_closed) {
		shutdown(cl->fd, SHUT_WR);
		cl->half_closed = true;
	}
}

static void reply(struct client *cl, bool ok, int code, const char *error, json_t *extra)
{
	json_t *o = extra ? extra : json_object();

	json_object_set_new(o, "ok", json_boolean(ok));
	if (!ok) {
		json_object_set_new(o, "error", json_string(error));
		json_object_set_new(o, "code", json_integer(code));
	}
	client_queue_json(cl, CT_MSG_REPLY, o);
	json_decref(o);
}

static void reply_err(struct client *cl, const struct yun_err *e)
{
	reply(cl, false, e->code, e->msg, NULL);
	cl->close_after_flush = true;
}

/* ---- sessions: the console, and one per exec ---- */

static void session_init(struct session *s)
{
	memset(s, 0, sizeof(*s));
	s->in_fd = s->out_fd = s->err_fd = s->exec_err_fd = -1;
	s->pid = -1;
}

static bool session_lagging(struct sup *sp, struct session *s)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (sp->clients[i].fd >= 0 && sp->clients[i].sess == s &&
		    sp->clients[i].queued > QUEUE_PAUSE)
			return true;
	return false;
}

static void session_broadcast(struct sup *sp, struct session *s, int type, const void *data,
			      size_t len)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *cl = &sp->clients[i];

		if (cl->fd >= 0 && cl->sess == s && cl->streaming)
			client_queue(cl, type, data, len);
	}
}

/* Read what one output descriptor has; false at its end. */
static bool session_read(struct sup *sp, struct session *s, int *fd, int type)
{
	ssize_t n = read(*fd, sp->buf, CT_PROTO_CHUNK);

	if (n > 0) {
		session_broadcast(sp, s, type, sp->buf, (size_t)n);
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	/* EOF, or EIO on a pty master once no slave is open. */
	if (s->in_fd == *fd)
		s->in_fd = -1;
	close_fd(fd);
	return false;
}

static void session_write_input(struct session *s)
{
	while (s->pending_len && s->in_fd >= 0) {
		ssize_t n = write(s->in_fd, s->pending, s->pending_len);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			s->pending_len = 0; /* the reader is gone */
			return;
		}
		memmove(s->pending, s->pending + n, s->pending_len - n);
		s->pending_len -= n;
	}
	if (s->in_eof && !s->pending_len)
		close_fd(&s->in_fd);
}

static void session_input(struct session *s, const uint8_t *data, size_t len)
{
	uint8_t *p;

	if (s->in_fd < 0 || s->in_eof || len == 0)
		return;
	p = realloc(s->pending, s->pending_len + len);
	if (!p)
		return;
	s->pending = p;
	memcpy(p + s->pending_len, data, len);
	s->pending_len += len;
	session_write_input(s);
}

static void session_close_input(struct session *s)
{
	/*
	 * A pty has no end-of-input of its own; pipes do, after the input
	 * still queued (a process slower than its input must get all of it).
	 */
	if (!s->tty) {
		s->in_eof = true;
		session_write_input(s);
	}
}

static void teardown_host(struct sup *sp);

/*
 * All output read (or the drain time is over): tell the clients, free the
 * session. For the container's console, the host is cleaned up first, so
 * that a client seeing the exit status also sees nothing left behind.
 */
static void session_finish(struct sup *sp, struct session *s)
{
	json_t *x = json_pack("{s:i, s:s}", "status", s->status, "reason", s->reason);

	if (s->is_main)
		teardown_host(sp);

	if (s->message[0])
		json_object_set_new(x, "message", json_string(s->message));
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *cl = &sp->clients[i];

		if (cl->fd < 0 || (cl->sess != s && !(s->is_main && cl->waits_exit)))
			continue;
		if (cl->streaming || cl->waits_exit) {
			client_queue_json(cl, CT_MSG_EXIT, x);
			cl->close_after_flush = true;
			client_flush(cl);
		} else if (cl->raw) {
			client_close(cl);
		}
		if (cl->fd >= 0)
			cl->sess = NULL;
	}
	json_decref(x);
	if (s->out_fd == s->in_fd)
		s->in_fd = -1;
	close_fd(&s->in_fd);
	close_fd(&s->out_fd);
	close_fd(&s->err_fd);
	close_fd(&s->exec_err_fd);
	free(s->pending);
	s->pending = NULL;
	s->pending_len = 0;
	s->done = true;
	if (!s->is_main)
		s->used = false;
}

static void describe_status(int wstatus, int *status, char *reason, size_t len)
{
	if (WIFEXITED(wstatus)) {
		*status = WEXITSTATUS(wstatus);
		snprintf(reason, len, "exited with status %d", *status);
	} else if (WIFSIGNALED(wstatus)) {
		*status = 128 + WTERMSIG(wstatus);
		snprintf(reason, len, "killed by signal %d (%s)", WTERMSIG(wstatus),
			 strsignal(WTERMSIG(wstatus)));
	} else {
		*status = 255;
		snprintf(reason, len, "ended (wait status 0x%x)", wstatus);
	}
}

/* ---- requests ---- */

static json_t *status_json(struct sup *sp)
{
	json_t *o =
	    json_pack("{s:s, s:i, s:s, s:i}", "id", sp->st.id, "pid", (int)sp->ct.pid, "status",
		      ct_status_name(sp->st.status), "supervisor_pid", (int)getpid());

	if (sp->st.status == CT_STATUS_EXITED) {
		json_object_set_new(o, "exit_status", json_integer(sp->main.status));
		json_object_set_new(o, "exit_reason", json_string(sp->main.reason));
	}
	return o;
}

static void set_status(struct sup *sp, enum ct_status s)
{
	struct yun_err e = {0};

	sp->st.status = s;
	if (ct_state_write(&sp->st, &e) < 0)
		yun_warn("%s", e.msg);
}

static void start_container(struct sup *sp)
{
	struct yun_err e = {0};

	if (sp->started)
		return;
	sp->started = true;
	if (ct_container_start(&sp->ct, &e) < 0) {
		/* init exits with 126/127 by itself; keep the reason for the clients. */
		snprintf(sp->main.message, sizeof(sp->main.message), "%s", e.msg);
		sp->start_code = e.code;
		yun_warn("%s", e.msg);
	}
	set_status(sp, CT_STATUS_RUNNING);
}

static void op_attach(struct sup *sp, struct client *cl, const struct ct_request *req)
{
	struct yun_err e = {0};

	if (sp->init_exited || sp->main.done) {
		yun_err_set(&e, ESRCH, "container %s: has exited (%s)", sp->st.id, sp->main.reason);
		reply_err(cl, &e);
		return;
	}
	cl->sess = &sp->main;
	cl->streaming = true;
	if (sp->main.tty)
		ct_console_set_winsize(sp->main.out_fd, req->rows, req->cols);
	reply(cl, true, 0, NULL, json_pack("{s:b}", "tty", sp->main.tty));
	if (req->start)
		start_container(sp);
}

/* bad: why the request itself is wrong, reported after the container's own checks. */
static void op_exec(struct sup *sp, struct client *cl, const struct ct_request *req,
		    const struct yun_err *bad)
{
	struct ct_exec_req er = {.stdio = {-1, -1, -1},
				 .argv = req->argv,
				 .env = req->env,
				 .cwd = req->cwd,
				 .tty = req->tty};
	struct session *s = NULL;
	struct yun_err e = {0};
	int ours[3] = {-1, -1, -1};
	pid_t pid;
	int efd;

	if (!sp->started || sp->init_exited) {
		yun_err_set(&e, ESRCH, "container %s: is not running", sp->st.id);
		goto fail;
	}
	for (int i = 0; i < MAX_EXECS && !s; i++)
		if (!sp->execs[i].used)
			s = &sp->execs[i];
	if (!s) {
		yun_err_set(&e, EBUSY, "container %s: %d execs already running", sp->st.id,
			    MAX_EXECS);
		goto fail;
	}
	if (bad) {
		e = *bad;
		goto fail;
	}
	if (er.tty) {
		int master, slave;

		if (ct_container_open_pty(&sp->ct, &master, &slave, &e) < 0)
			goto fail;
		ct_console_set_winsize(master, req->rows, req->cols);
		ours[0] = ours[1] = master;
		er.stdio[0] = er.stdio[1] = er.stdio[2] = slave;
	} else {
		for (int i = 0; i < 3; i++) {
			int p[2];

			if (pipe2(p, O_CLOEXEC) < 0) {
				yun_err_errno(&e, errno, "pipe");
				goto fail;
			}
			/* stdin: the process reads p[0]; stdout/stderr: it writes p[1]. */
			er.stdio[i] = i == 0 ? p[0] : p[1];
			ours[i] = i == 0 ? p[1] : p[0];
		}
	}
	if (ct_container_exec(&sp->ct, &er, &pid, &efd, &e) < 0)
		goto fail;
	session_init(s);
	s->used = true;
	s->tty = er.tty;
	s->pid = pid;
	s->exec_err_fd = efd;
	s->in_fd = ours[0];
	s->out_fd = ours[1];
	s->err_fd = ours[2];
	for (int i = 0; i < 3; i++) {
		set_nonblock(ours[i]);
		ours[i] = -1;
	}
	cl->sess = s;
	cl->streaming = true;
	reply(cl, true, 0, NULL, json_pack("{s:i}", "pid", (int)pid));
	goto out;
fail:
	reply_err(cl, &e);
out:
	/* The process's ends are its own now; ours went to the session unless it failed. */
	for (int i = 0; i < 3; i++) {
		if (er.stdio[i] >= 0 && (i == 0 || er.stdio[i] != er.stdio[0]))
			close(er.stdio[i]);
		if (ours[i] >= 0 && (i == 0 || ours[i] != ours[0]))
			close(ours[i]);
	}
}

static void op_kill(struct sup *sp, struct client *cl, const struct ct_request *req)
{
	int sig = req->signal;
	struct yun_err e = {0};

	if (sp->init_exited || sp->ct.pid <= 0) {
		yun_err_set(&e, ESRCH, "container %s: is not running", sp->st.id);
		reply_err(cl, &e);
		return;
	}
	if (sig <= 0 || sig > SIGRTMAX || kill(sp->ct.pid, sig) < 0) {
		yun_err_errno(&e, sig <= 0 || sig > SIGRTMAX ? EINVAL : errno,
			      "container %s: signal %d", sp->st.id, sig);
		reply_err(cl, &e);
		return;
	}
	reply(cl, true, 0, NULL, NULL);
	cl->close_after_flush = true;
}

/* `sig` first (0: the container's stop signal, TERM by default), SIGKILL after timeout_s. */
static void begin_stop(struct sup *sp, int sig, int64_t timeout_s)
{
	if (sp->init_exited)
		return;
	if (!sp->started) {
		/* Never started: nothing to ask politely. */
		kill(sp->ct.pid, SIGKILL);
		return;
	}
	if (sp->st.status != CT_STATUS_STOPPING)
		set_status(sp, CT_STATUS_STOPPING);
	if (!sig)
		sig = sp->cfg->stop_signal ? sp->cfg->stop_signal : SIGTERM;
	kill(sp->ct.pid, sig);
	if (!sp->stop_deadline || now_ms() + timeout_s * 1000 < sp->stop_deadline)
		sp->stop_deadline = now_ms() + timeout_s * 1000;
}

static void op_stop(struct sup *sp, struct client *cl, const struct ct_request *req)
{
	int64_t timeout = req->timeout < 0 ? STOP_TIMEOUT_S : req->timeout;
	int sig = req->signal;

	if (sig < 0 || sig > SIGRTMAX)
		sig = 0;
	reply(cl, true, 0, NULL, NULL);
	cl->waits_exit = true;
	begin_stop(sp, sig, timeout);
}

static void handle_request(struct sup *sp, struct client *cl, const uint8_t *p, size_t len)
{
	struct ct_request req;
	struct yun_err e = {0};
	int rc = ct_proto_parse_request(p, len, &req, &e);

	switch (req.op) {
	case CT_OP_NONE:
		reply_err(cl, &e);
		break;
	case CT_OP_STATUS:
		reply(cl, true, 0, NULL, status_json(sp));
		cl->close_after_flush = true;
		break;
	case CT_OP_ATTACH:
		op_attach(sp, cl, &req);
		break;
	case CT_OP_EXEC:
		op_exec(sp, cl, &req, rc < 0 ? &e : NULL);
		break;
	case CT_OP_KILL:
		op_kill(sp, cl, &req);
		break;
	case CT_OP_STOP:
		op_stop(sp, cl, &req);
		break;
	}
	ct_proto_request_free(&req);
	client_flush(cl);
}

static void client_readable(struct sup *sp, struct client *cl)
{
	struct session *s = cl->sess;
	int type;
	ssize_t n;

	if (cl->half_closed) {
		n = recv(cl->fd, sp->buf, CT_PROTO_MAX, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			client_close(cl);
		return;
	}
	if (cl->raw) {
		n = read(cl->fd, sp->buf, CT_PROTO_CHUNK);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				client_close(cl);
			return;
		}
		if (s)
			session_input(s, sp->buf, (size_t)n);
		return;
	}
	n = ct_proto_recv(cl->fd, sp->buf, &type, NULL);
	if (n < 0 && (n == -EAGAIN || n == -EINTR))
		return;
	if (n < 0 || type == 0) {
		/* Disconnect = detach. An exec session's process loses its terminal. */
		if (s && !s->is_main && s->pid > 0 && !s->exited)
			kill(s->pid, SIGHUP);
		client_close(cl);
		return;
	}
	if (type == CT_MSG_REQUEST && !cl->sess && !cl->streaming && !cl->waits_exit) {
		handle_request(sp, cl, sp->buf, (size_t)n);
		return;
	}
	if (!s)
		return;
	switch (type) {
	case CT_MSG_STDIN:
		session_input(s, sp->buf, (size_t)n);
		break;
	case CT_MSG_STDIN_EOF:
		session_close_input(s);
		break;
	case CT_MSG_RESIZE:
		if (n >= 4 && s->tty && s->out_fd >= 0) {
			uint16_t rc[2];

			memcpy(rc, sp->buf, sizeof(rc));
			ct_console_set_winsize(s->out_fd, rc[0], rc[1]);
		}
		break;
	default:
		break;
	}
}

static void accept_client(struct sup *sp, int lfd, bool raw)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct client *cl = NULL;

	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS && !cl; i++)
		if (sp->clients[i].fd < 0)
			cl = &sp->clients[i];
	if (!cl || (raw && (sp->init_exited || sp->main.done))) {
		close(fd);
		return;
	}
	memset(cl, 0, sizeof(*cl));
	cl->fd = fd;
	cl->raw = raw;
	if (raw) {
		cl->sess = &sp->main;
		cl->streaming = true;
	}
}

/* ---- children ---- */

static void init_exited(struct sup *sp, int wstatus)
{
	struct session *m = &sp->main;
	struct yun_err e = {0};

	sp->init_exited = true;
	m->exited = true;
	describe_status(wstatus, &m->status, m->reason, sizeof(m->reason));
	if (sp->cg && cgroup_oom_killed(sp->cg)) {
		if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) {
			/* The OOM killer's SIGKILL, not a mysterious signal 9. */
			snprintf(m->reason, sizeof(m->reason), "out of memory");
			snprintf(
			    m->message, sizeof(m->message),
			    "container %s: out of memory (init was killed at the memory limit)",
			    sp->st.id);
		} else if (!m->message[0]) {
			snprintf(m->message, sizeof(m->message),
				 "container %s: %s; the kernel killed a process in it at the "
				 "memory limit (out of memory)",
				 sp->st.id, m->reason);
		}
	}
	/*
	 * With init gone the kernel kills the pid namespace; make sure of the
	 * cgroup too. Nothing can join it after this (exec needs a running
	 * init), so teardown need not do it again.
	 */
	if (sp->cg && cgroup_kill_all(sp->cg, &e) < 0)
		yun_warn("%s", e.msg);
	else
		sp->cg_emptied = true;
	m->drain_deadline = now_ms() + DRAIN_MS;
	sp->st.exit_status = m->status;
	snprintf(sp->st.exit_reason, sizeof(sp->st.exit_reason), "%s", m->reason);
	/*
	 * state.json says "exited" once the loop would wait for the console to
	 * drain (see loop); usually it drains at once and teardown removes the
	 * state dir (or, with --keep, writes it) right away.
	 */
	sp->st.status = CT_STATUS_EXITED;
	sp->exit_unwritten = true;
	yun_info("container %s: %s", sp->st.id, m->reason);
}

static void exec_exited(struct sup *sp, struct session *s, int wstatus)
{
	struct yun_err e = {0};

	(void)sp;
	s->exited = true;
	describe_status(wstatus, &s->status, s->reason, sizeof(s->reason));
	if (s->exec_err_fd >= 0 && ct_container_exec_error(s->exec_err_fd, &e) < 0)
		snprintf(s->message, sizeof(s->message), "%s", e.msg);
	s->drain_deadline = now_ms() + (s->tty ? DRAIN_MS / 4 : DRAIN_MS / 4);
}

static void reap(struct sup *sp)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		if (pid == sp->ct.pid) {
			init_exited(sp, wstatus);
			continue;
		}
		for (int i = 0; i < MAX_EXECS; i++)
			if (sp->execs[i].used && sp->execs[i].pid == pid && !sp->execs[i].exited)
				exec_exited(sp, &sp->execs[i], wstatus);
	}
}

static void handle_signals(struct sup *sp)
{
	struct signalfd_siginfo si;

	while (read(sp->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			reap(sp);
		else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			begin_stop(sp, 0, STOP_TIMEOUT_S);
	}
}

/* ---- the loop ---- */

enum { FD_SIG, FD_LISTEN, FD_CONSOLE_LISTEN, FD_CLIENT, FD_SESS_OUT, FD_SESS_ERR, FD_SESS_IN };

struct slot {
	int kind;
	void *ptr;
};

static void session_poll(struct sup *sp, struct session *s, struct pollfd *pfds, struct slot *slots,
			 int *n)
{
	bool lag = session_lagging(sp, s);

	if (s->out_fd >= 0) {
		pfds[*n] = (struct pollfd){.fd = s->out_fd, .events = lag ? 0 : POLLIN};
		if (s->tty && s->pending_len)
			pfds[*n].events |= POLLOUT;
		slots[(*n)++] = (struct slot){FD_SESS_OUT, s};
	}
	if (s->err_fd >= 0 && !lag) {
		pfds[*n] = (struct pollfd){.fd = s->err_fd, .events = POLLIN};
		slots[(*n)++] = (struct slot){FD_SESS_ERR, s};
	}
	if (!s->tty && s->in_fd >= 0 && s->pending_len) {
		pfds[*n] = (struct pollfd){.fd = s->in_fd, .events = POLLOUT};
		slots[(*n)++] = (struct slot){FD_SESS_IN, s};
	}
}

/* A session whose process has exited ends once its output is read or its drain time is over. */
static void session_check_done(struct sup *sp, struct session *s, int64_t now)
{
	if (s->done || !s->exited)
		return;
	if ((s->out_fd < 0 && s->err_fd < 0) || now >= s->drain_deadline)
		session_finish(sp, s);
}

static bool clients_pending(struct sup *sp)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (sp->clients[i].fd >= 0 && (sp->clients[i].head || sp->clients[i].half_closed))
			return true;
	return false;
}

static int loop(struct sup *sp)
{
	enum { MAXFD = 4 + MAX_CLIENTS + 3 * (MAX_EXECS + 1) };
	struct pollfd pfds[MAXFD];
	struct slot slots[MAXFD];

	for (;;) {
		int64_t now = now_ms(), timeout = -1;
		int n = 0, rc;

		if (sp->stop_deadline && now >= sp->stop_deadline && !sp->init_exited) {
			struct yun_err e = {0};

			sp->stop_deadline = 0;
			kill(sp->ct.pid, SIGKILL);
			if (sp->cg && cgroup_kill_all(sp->cg, &e) < 0)
				yun_warn("%s", e.msg);
		}
		session_check_done(sp, &sp->main, now);
		for (int i = 0; i < MAX_EXECS; i++)
			if (sp->execs[i].used)
				session_check_done(sp, &sp->execs[i], now);
		if (sp->main.done) {
			bool execs = false;

			for (int i = 0; i < MAX_EXECS; i++)
				execs |= sp->execs[i].used;
			if (!sp->exit_deadline)
				sp->exit_deadline = now + LINGER_MS;
			if ((!clients_pending(sp) && !execs) || now >= sp->exit_deadline)
				return 0;
		}

		pfds[n] = (struct pollfd){.fd = sp->sigfd, .events = POLLIN};
		slots[n++] = (struct slot){FD_SIG, NULL};
		if (sp->listen_fd >= 0) {
			pfds[n] = (struct pollfd){.fd = sp->listen_fd, .events = POLLIN};
			slots[n++] = (struct slot){FD_LISTEN, NULL};
		}
		if (sp->console_listen_fd >= 0) {
			pfds[n] = (struct pollfd){.fd = sp->console_listen_fd, .events = POLLIN};
			slots[n++] = (struct slot){FD_CONSOLE_LISTEN, NULL};
		}
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *cl = &sp->clients[i];

			if (cl->fd < 0)
				continue;
			pfds[n] = (struct pollfd){.fd = cl->fd, .events = 0};
			/* Input waits while the session cannot take more. */
			if (!cl->sess || cl->sess->pending_len < QUEUE_PAUSE)
				pfds[n].events |= POLLIN;
			if (cl->head)
				pfds[n].events |= POLLOUT;
			slots[n++] = (struct slot){FD_CLIENT, cl};
		}
		if (!sp->main.done)
			session_poll(sp, &sp->main, pfds, slots, &n);
		for (int i = 0; i < MAX_EXECS; i++)
			if (sp->execs[i].used)
				session_poll(sp, &sp->execs[i], pfds, slots, &n);

		if (sp->stop_deadline)
			timeout = sp->stop_deadline - now;
		if (sp->main.exited && !sp->main.done &&
		    (timeout < 0 || sp->main.drain_deadline - now < timeout))
			timeout = sp->main.drain_deadline - now;
		for (int i = 0; i < MAX_EXECS; i++) {
			struct session *s = &sp->execs[i];

			if (s->used && s->exited &&
			    (timeout < 0 || s->drain_deadline - now < timeout))
				timeout = s->drain_deadline - now;
		}
		if (sp->exit_deadline && (timeout < 0 || sp->exit_deadline - now < timeout))
			timeout = sp->exit_deadline - now;
		if (timeout < 0 && timeout != -1)
			timeout = 0;
		if (sp->exit_unwritten && !sp->main.done && timeout != 0) {
			sp->exit_unwritten = false;
			set_status(sp, CT_STATUS_EXITED);
		}
		/*
		 * Once running, before the first wait: give back what setting
		 * up freed (the client's parsing, libseccomp's compiler on a
		 * cache miss: up to 1 MiB) for the container's whole life.
		 */
		if (sp->started && !sp->trimmed && timeout != 0) {
			sp->trimmed = true;
			malloc_trim(0);
		}

		rc = poll(pfds, n, (int)timeout);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			yun_error("poll: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			short ev = pfds[i].revents;
			struct session *s = slots[i].ptr;
			struct client *cl = slots[i].ptr;

			if (!ev)
				continue;
			switch (slots[i].kind) {
			case FD_SIG:
				handle_signals(sp);
				break;
			case FD_LISTEN:
				accept_client(sp, sp->listen_fd, false);
				break;
			case FD_CONSOLE_LISTEN:
				accept_client(sp, sp->console_listen_fd, true);
				break;
			case FD_CLIENT:
				if (cl->fd != pfds[i].fd)
					break;
				if (ev & POLLOUT)
					client_flush(cl);
				if (cl->fd >= 0 && (ev & (POLLIN | POLLHUP | POLLERR)))
					client_readable(sp, cl);
				break;
			case FD_SESS_OUT:
				if (s->out_fd != pfds[i].fd)
					break;
				if (ev & POLLOUT)
					session_write_input(s);
				if (ev & (POLLIN | POLLHUP | POLLERR))
					session_read(sp, s, &s->out_fd, CT_MSG_STDOUT);
				break;
			case FD_SESS_ERR:
				if (s->err_fd == pfds[i].fd)
					session_read(sp, s, &s->err_fd, CT_MSG_STDERR);
				break;
			case FD_SESS_IN:
				if (s->in_fd == pfds[i].fd)
					session_write_input(s);
				break;
			}
		}
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (sp->clients[i].fd >= 0 && sp->clients[i].head)
				client_flush(&sp->clients[i]);
	}
}

/* ---- setup and teardown ---- */

static int listen_unix(const char *path, int type, struct yun_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return yun_err_set(err, ENAMETOOLONG, "socket %s: path too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return yun_err_errno(err, errno, "socket");
	/* Connecting needs write access to the socket file: root only. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 16) < 0) {
		int e = errno;

		close(fd);
		return yun_err_errno(err, e, "socket %s", path);
	}
	return fd;
}

static int setup_signals(struct sup *sp, struct yun_err *err)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return yun_err_errno(err, errno, "sigprocmask");
	sp->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sp->sigfd < 0)
		return yun_err_errno(err, errno, "signalfd");
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void report(int fd, int code, const char *msg)
{
	char line[YUN_ERR_MSG_MAX + 32];
	int n = snprintf(line, sizeof(line), "%d %s\n", code, msg);

	if (fd >= 0 && write(fd, line, (size_t)n) < 0) {
		/* The client is gone; the log has the same line. */
	}
}

/* Remove everything the container made on the host (once). */
static void teardown_host(struct sup *sp)
{
	struct yun_err e = {0};

	if (sp->torn_down)
		return;
	sp->torn_down = true;
	close_fd(&sp->listen_fd);
	unlink(sp->sock_path);
	if (sp->console_listen_fd >= 0) {
		close_fd(&sp->console_listen_fd);
		unlink(sp->cfg->console_path);
	}
	/* Namespace descriptors go first, so the network namespace (and the veth) can die. */
	ct_container_release(&sp->ct);
	if (sp->cg) {
		if (!sp->cg_emptied && cgroup_kill_all(sp->cg, &e) < 0)
			yun_warn("%s", e.msg);
		if (cgroup_destroy(sp->cg, &e) < 0)
			yun_warn("%s", e.msg);
		sp->cg = NULL;
	}
	if (sp->cgh)
		cgroup_host_free(sp->cgh);
	sp->cgh = NULL;
	if (sp->cfg->keep) {
		if (ct_state_write(&sp->st, &e) < 0)
			yun_warn("%s", e.msg);
	} else if (ct_state_remove(sp->st.id, &e) < 0) {
		yun_warn("%s", e.msg);
	}
}

static void teardown(struct sup *sp)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (sp->clients[i].fd >= 0)
			client_close(&sp->clients[i]);
	teardown_host(sp);
}

/*
 * The supervisor's stderr: <state dir>/supervisor.log, removed with the
 * state dir; $YUN_CT_LOG names a file that outlives it (debugging, tests).
 */
static int open_log(const char *id)
{
	const char *env = getenv("YUN_CT_LOG");
	char path[4096];

	if (env && *env)
		snprintf(path, sizeof(path), "%s", env);
	else if (ct_state_path(id, "supervisor.log", path, sizeof(path), NULL) < 0)
		return -1;
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static int setup(struct sup *sp, struct yun_err *err)
{
	const struct ct_config *cfg = sp->cfg;
	int rc;

	rc = setup_signals(sp, err);
	if (rc)
		return rc;
	/* Orphans of exec'd processes come to us, not to the host's init. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	rc = ct_state_path(sp->st.id, "sock", sp->sock_path, sizeof(sp->sock_path), err);
	if (rc)
		return rc;
	sp->listen_fd = listen_unix(sp->sock_path, SOCK_SEQPACKET, err);
	if (sp->listen_fd < 0)
		return sp->listen_fd;
	if (!sp->cgh)
		rc = cgroup_probe("/sys/fs/cgroup", &sp->cgh, err);
	if (!rc)
		rc = cgroup_create_unlimited(sp->cgh, sp->st.id, &cfg->limits, &sp->cg, err);
	if (rc)
		return rc;
	rc = ct_container_create(&sp->ct, cfg, sp->st.id, sp->st.userns_base, sp->cg, err);
	if (rc)
		return rc;
	if (cfg->console == CT_CONSOLE_SOCKET) {
		sp->console_listen_fd = listen_unix(cfg->console_path, SOCK_STREAM, err);
		if (sp->console_listen_fd < 0)
			return sp->console_listen_fd;
	}
	session_init(&sp->main);
	sp->main.is_main = true;
	sp->main.used = true;
	sp->main.pid = sp->ct.pid;
	if (sp->ct.console_master >= 0) {
		sp->main.tty = true;
		sp->main.in_fd = sp->main.out_fd = sp->ct.console_master;
		sp->ct.console_master = -1;
		set_nonblock(sp->main.out_fd);
	} else {
		sp->main.in_fd = sp->ct.stdio[0];
		sp->main.out_fd = sp->ct.stdio[1];
		sp->main.err_fd = sp->ct.stdio[2];
		for (int i = 0; i < 3; i++) {
			set_nonblock(sp->ct.stdio[i]);
			sp->ct.stdio[i] = -1;
		}
	}
	sp->st.pid = sp->ct.pid;
	sp->st.supervisor_pid = getpid();
	return 0; /* "created" goes to state.json unless it starts at once (see main) */
}

int ct_supervisor_main(struct ct_config *cfg, uint32_t userns_base, struct cgroup_host *cgh,
		       int report_fd, int client_fd)
{
	struct sup *sp = calloc(1, sizeof(*sp));
	struct yun_err err = {0};
	char pid[32];
	int logfd, rc;

	if (!sp) {
		cgroup_host_free(cgh);
		if (client_fd >= 0)
			close(client_fd);
		report(report_fd, ENOMEM, "out of memory");
		return 1;
	}
	sp->cfg = cfg;
	sp->cgh = cgh;
	sp->sigfd = sp->listen_fd = sp->console_listen_fd = -1;
	for (int i = 0; i < MAX_CLIENTS; i++)
		sp->clients[i].fd = -1;
	/* The starting client, connected already (its request waits until after the report). */
	if (client_fd >= 0) {
		set_nonblock(client_fd);
		sp->clients[0].fd = client_fd;
	}
	session_init(&sp->main);
	sp->ct.pid = -1;
	sp->ct.sync_fd = sp->ct.console_master = -1;
	sp->ct.cgroup_fd = -1;
	for (int i = 0; i < 3; i++)
		sp->ct.stdio[i] = -1;
	for (int i = 0; i < CT_NS_COUNT; i++)
		sp->ct.ns_fds[i] = -1;
	sp->ct.cfg = cfg;
	snprintf(sp->st.id, sizeof(sp->st.id), "%s", cfg->id);
	sp->st.userns_base = userns_base;
	sp->st.created = time(NULL);
	sp->st.config = ct_config_to_json(cfg);

	logfd = open_log(cfg->id);
	if (logfd >= 0) {
		dup2(logfd, STDERR_FILENO);
		close(logfd);
	}
	yun_log_init("yun-ct supervisor", YUN_LOG_INFO);

	rc = setup(sp, &err);
	if (rc) {
		yun_error("%s", err.msg);
		sp->cfg->keep = false;
		if (sp->ct.pid > 0) {
			kill(sp->ct.pid, SIGKILL);
			waitpid(sp->ct.pid, NULL, 0);
		}
		/* Clean up before answering: the client's error means nothing is left. */
		teardown(sp);
		/* ENOENT / EACCES tell the client "command not found / not executable". */
		if (!err.code || err.code == ENOENT || err.code == EACCES)
			err.code = EIO;
		report(report_fd, err.code, err.msg);
		close(report_fd);
		ct_state_release(&sp->st);
		close_fd(&sp->sigfd);
		free(sp);
		return 1;
	}
	if (cfg->detach) {
		/* Detached: the client returns once the command runs (or could not). */
		start_container(sp);
		if (sp->main.message[0]) {
			int wstatus;

			waitpid(sp->ct.pid, &wstatus, 0);
			report(report_fd, sp->start_code, sp->main.message);
			close(report_fd);
			sp->cfg->keep = false;
			teardown(sp);
			ct_state_release(&sp->st);
			close_fd(&sp->sigfd);
			free(sp);
			return 1;
		}
	} else if (sp->clients[0].fd >= 0) {
		/*
		 * The starting client's "attach and start" waits on its connection
		 * already: serve it now, before the report, so the container
		 * starts without a state write or a round of the loop in between.
		 */
		client_readable(sp, &sp->clients[0]);
	}
	if (!sp->started)
		set_status(sp, CT_STATUS_CREATED);
	snprintf(pid, sizeof(pid), "%d", (int)sp->ct.pid);
	report(report_fd, 0, pid);
	close(report_fd);
	rc = loop(sp);
	teardown(sp);
	ct_state_release(&sp->st);
	close_fd(&sp->sigfd);
	for (int i = 0; i < MAX_EXECS; i++)
		free(sp->execs[i].pending);
	free(sp->main.pending);
	free(sp);
	return rc;
}
