/*
 * console.c - serial console backends. See console.h for the behaviour of
 * each; this file is: parsing, opening, output, the input thread, closing.
 */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "../lib/log.h"
#include "sandbox/seccomp.h"

#define CTRL_A 0x01

#define BACKENDS "want stdio, pty, file=PATH, socket=PATH or off"

/* Largest single write: POLLOUT on a pipe or tty promises at least this much room. */
#define OUT_CHUNK 256

/* Back-off after accept() fails for a reason that will not go away by itself. */
#define ACCEPT_RETRY_MS 200

/*
 * The terminal state to restore. Global because a signal handler needs it;
 * there is only one stdin.
 */
static struct termios saved_termios;
static volatile sig_atomic_t saved_termios_fd = -1;
static bool restore_registered;

/* ---- parsing ------------------------------------------------------------- */

int console_parse(const char *spec, struct console_spec *out, struct yun_err *err)
{
	const char *eq, *arg;
	size_t name_len, max;

	memset(out, 0, sizeof(*out));
	if (!spec || !*spec)
		return yun_err_set(err, EINVAL, "serial \"\": empty value (" BACKENDS ")");
	eq = strchr(spec, '=');
	name_len = eq ? (size_t)(eq - spec) : strlen(spec);
	arg = eq ? eq + 1 : NULL;

#define IS(name) (name_len == strlen(name) && !strncmp(spec, name, name_len))
	if (IS("stdio") || IS("pty") || IS("off")) {
		if (arg)
			return yun_err_set(err, EINVAL, "serial %s: %.*s takes no argument", spec,
					   (int)name_len, spec);
		out->kind = IS("stdio") ? CONSOLE_STDIO : IS("pty") ? CONSOLE_PTY : CONSOLE_OFF;
		return 0;
	}
	if (IS("file") || IS("socket")) {
		bool sock = IS("socket");

		if (!arg)
			return yun_err_set(err, EINVAL, "serial %s: needs a path (%s=PATH)", spec,
					   spec);
		if (!*arg)
			return yun_err_set(err, EINVAL, "serial %s: empty path", spec);
		max = sock ? sizeof(((struct sockaddr_un *)0)->sun_path) : sizeof(out->path);
		if (strlen(arg) >= max)
			return yun_err_set(err, ENAMETOOLONG,
					   "serial %.*s=...: path too long%s (%zu bytes, at most %zu)",
					   (int)name_len, spec, sock ? " for a Unix socket" : "",
					   strlen(arg), max - 1);
		out->kind = sock ? CONSOLE_SOCKET : CONSOLE_FILE;
		memcpy(out->path, arg, strlen(arg) + 1);
		return 0;
	}
#undef IS
	return yun_err_set(err, EINVAL, "serial %s: unknown backend (" BACKENDS ")", spec);
}

int console_log_path(struct console_spec *spec, const char *path, struct yun_err *err)
{
	spec->log_path[0] = '\0';
	if (!path)
		return 0;
	if (!*path)
		return yun_err_set(err, EINVAL, "serial log: empty path");
	if (strlen(path) >= sizeof(spec->log_path))
		return yun_err_set(err, ENAMETOOLONG, "serial log: path too long (%zu bytes)",
				   strlen(path));
	memcpy(spec->log_path, path, strlen(path) + 1);
	return 0;
}

/* ---- the terminal -------------------------------------------------------- */

void console_restore_terminal(void)
{
	int fd = saved_termios_fd;

	if (fd < 0)
		return;
	/* tcsetattr is async-signal-safe; on failure there is nothing left to try. */
	if (tcsetattr(fd, TCSANOW, &saved_termios) == 0)
		saved_termios_fd = -1;
}

static void restore_at_exit(void)
{
	console_restore_terminal();
}

static int stdin_raw_mode(struct yun_err *err)
{
	struct termios raw;

	if (!restore_registered) {
		if (atexit(restore_at_exit) != 0)
			return yun_err_set(err, ENOMEM, "serial stdio: cannot register exit handler");
		restore_registered = true;
	}
	if (tcgetattr(STDIN_FILENO, &saved_termios) != 0)
		return yun_err_errno(err, errno, "serial stdio: reading terminal settings");
	raw = saved_termios;
	cfmakeraw(&raw);
	/*
	 * Keep output post-processing: guests send "\r\n" which renders the
	 * same either way, and the VMM's own "\n"-terminated diagnostics on
	 * the same terminal stay readable.
	 */
	raw.c_oflag |= saved_termios.c_oflag & (OPOST | ONLCR);
	saved_termios_fd = STDIN_FILENO;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0) {
		saved_termios_fd = -1;
		return yun_err_errno(err, errno, "serial stdio: raw terminal mode");
	}
	return 0;
}

/* ---- opening ------------------------------------------------------------- */

static int open_pty(struct console *c, struct yun_err *err)
{
	struct termios t;
	int m, flags;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return yun_err_errno(err, errno, "serial pty: posix_openpt");
	c->in_fd = c->out_fd = m;
	if (grantpt(m) != 0)
		return yun_err_errno(err, errno, "serial pty: grantpt");
	if (unlockpt(m) != 0)
		return yun_err_errno(err, errno, "serial pty: unlockpt");
	errno = ptsname_r(m, c->path, sizeof(c->path));
	if (errno)
		return yun_err_errno(err, errno, "serial pty: ptsname");
	c->pty_slave = open(c->path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->pty_slave < 0)
		return yun_err_errno(err, errno, "serial pty %s: open", c->path);
	if (tcgetattr(c->pty_slave, &t) != 0)
		return yun_err_errno(err, errno, "serial pty %s: tcgetattr", c->path);
	cfmakeraw(&t);
	if (tcsetattr(c->pty_slave, TCSANOW, &t) != 0)
		return yun_err_errno(err, errno, "serial pty %s: raw mode", c->path);
	flags = fcntl(m, F_GETFL);
	if (flags < 0 || fcntl(m, F_SETFL, flags | O_NONBLOCK) < 0)
		return yun_err_errno(err, errno, "serial pty %s: non-blocking master", c->path);
	return 0;
}

static int open_log(struct console *c, const char *path, struct yun_err *err)
{
	c->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (c->log_fd < 0)
		return yun_err_errno(err, errno, "serial log %s: open", path);
	return 0;
}

static int open_file(struct console *c, const char *path, struct yun_err *err)
{
	c->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (c->out_fd < 0)
		return yun_err_errno(err, errno, "serial file=%s: open", path);
	return 0;
}

/* An existing socket file: stale (remove it) or someone's live listener. */
static int clear_stale_socket(const struct sockaddr_un *sa, struct yun_err *err)
{
	const char *path = sa->sun_path;
	struct stat st;
	int probe, rc;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return yun_err_errno(err, errno, "serial socket=%s", path);
	}
	if (!S_ISSOCK(st.st_mode))
		return yun_err_set(err, EEXIST, "serial socket=%s: exists and is not a socket",
				   path);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return yun_err_errno(err, errno, "serial socket=%s: socket", path);
	rc = connect(probe, (const struct sockaddr *)sa, sizeof(*sa));
	close(probe);
	if (rc == 0 || errno == EAGAIN)
		return yun_err_set(err, EADDRINUSE,
				   "serial socket=%s: another process is listening on it", path);
	if (unlink(path) != 0 && errno != ENOENT)
		return yun_err_errno(err, errno, "serial socket=%s: removing stale socket", path);
	return 0;
}

static int open_socket(struct console *c, const char *path, struct yun_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return yun_err_set(err, ENAMETOOLONG, "serial socket=%s: path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	rc = clear_stale_socket(&sa, err);
	if (rc)
		return rc;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0)
		return yun_err_errno(err, errno, "serial socket=%s: socket", path);
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return yun_err_errno(err, errno, "serial socket=%s: bind", path);
	memcpy(c->path, path, strlen(path) + 1); /* ours to remove from now on */
	if (listen(c->listen_fd, 1) != 0)
		return yun_err_errno(err, errno, "serial socket=%s: listen", path);
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Everything console_open may have set up; leaves c closed. */
static void release(struct console *c)
{
	if (c->kind != CONSOLE_STDIO) {
		/* pty master and socket client serve as both. */
		if (c->in_fd != c->out_fd)
			close_fd(&c->in_fd);
		close_fd(&c->out_fd);
	}
	c->in_fd = c->out_fd = -1;
	close_fd(&c->listen_fd);
	close_fd(&c->log_fd);
	close_fd(&c->pty_slave);
	close_fd(&c->stop_fd);
	if (c->kind == CONSOLE_SOCKET && c->path[0]) {
		/* path stays set only if the file could not be removed. */
		if (unlink(c->path) == 0 || errno == ENOENT)
			c->path[0] = '\0';
	}
	if (c->raw_tty)
		console_restore_terminal();
	c->raw_tty = false;
	c->kind = CONSOLE_OFF;
}

void console_abandon(struct console *c)
{
	if (c->kind == CONSOLE_SOCKET && c->path[0])
		unlink(c->path);
	console_restore_terminal();
}

int console_open(struct console *c, const struct console_spec *spec, struct serial *uart,
		 struct yun_err *err)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->in_fd = c->out_fd = c->listen_fd = c->log_fd = c->pty_slave = c->stop_fd = -1;
	c->uart = uart;
	rc = pthread_mutex_init(&c->lock, NULL);
	if (rc)
		return yun_err_errno(err, rc, "serial: mutex");
	c->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->stop_fd < 0) {
		rc = yun_err_errno(err, errno, "serial: eventfd");
		goto fail;
	}
	c->kind = spec->kind;
	if (spec->log_path[0]) {
		rc = open_log(c, spec->log_path, err);
		if (rc)
			goto fail;
	}
	switch (spec->kind) {
	case CONSOLE_OFF:
		rc = 0;
		break;
	case CONSOLE_STDIO:
		c->in_fd = STDIN_FILENO;
		c->out_fd = STDOUT_FILENO;
		rc = 0;
		if (isatty(STDIN_FILENO)) {
			rc = stdin_raw_mode(err);
			c->raw_tty = rc == 0;
		}
		break;
	case CONSOLE_PTY:
		rc = open_pty(c, err);
		break;
	case CONSOLE_FILE:
		rc = open_file(c, spec->path, err);
		break;
	case CONSOLE_SOCKET:
		rc = open_socket(c, spec->path, err);
		break;
	default:
		rc = yun_err_set(err, EINVAL, "serial: unknown backend %d", spec->kind);
		break;
	}
	if (rc)
		goto fail;
	c->open = true;
	return 0;
fail:
	release(c);
	pthread_mutex_destroy(&c->lock);
	return rc;
}

const char *console_pty_path(const struct console *c)
{
	return c->kind == CONSOLE_PTY ? c->path : NULL;
}

/* ---- output -------------------------------------------------------------- */

/*
 * Write all of buf to fd.
 *
 * wait_ms < 0 (stdout, files): wait as long as the reader needs, like any
 * program's output, but in poll() rather than in a blocking write(): poll
 * is never restarted after a signal handler, so a signal to this thread
 * (how a VMM kicks its vCPUs when stopping) ends the wait, dropping the
 * rest of this output. Chunks after POLLOUT are small enough not to block.
 *
 * wait_ms >= 0 (pty, socket): a full fd is waited for at most that long,
 * then output is dropped without waiting until the fd takes data again.
 *
 * Errors (a closed pipe or peer, a full disk) lose this output only.
 * The log (is_log) never touches the backend's stall state.
 */
static void write_out(struct console *c, int fd, const uint8_t *buf, size_t n, int wait_ms,
		      bool is_log)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	size_t chunk;
	ssize_t w;
	int rc;

	/*
	 * Write first and wait only when the reader is behind: one syscall per
	 * guest write in the common case. With wait_ms < 0 (stdio, file) a
	 * signal to the writing thread (the VM stopping) ends any wait: a
	 * blocking write returns EINTR, a poll on a non-blocking fd fails.
	 */
	while (n) {
		chunk = n < OUT_CHUNK ? n : OUT_CHUNK;
		if (c->kind == CONSOLE_SOCKET && !is_log)
			w = send(fd, buf, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			w = write(fd, buf, chunk);
		if (w > 0) {
			buf += w;
			n -= w;
			if (!is_log)
				c->out_stalled = false;
			continue;
		}
		if (w < 0 && errno == EINTR) {
			if (wait_ms < 0)
				return; /* kicked while blocked on a slow reader: drop */
			continue;
		}
		if (w == 0 || errno != EAGAIN)
			return;
		if (wait_ms < 0) {
			if (poll(&pfd, 1, -1) < 0)
				return;
			continue; /* a non-blocking stdout with room again */
		}
		if (c->out_stalled)
			return; /* nobody is reading: drop */
		rc = poll(&pfd, 1, wait_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			c->out_stalled = true;
			return;
		}
	}
}

void console_write(struct console *c, const uint8_t *buf, size_t n)
{
	if (!c->open || n == 0)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->log_fd >= 0)
		write_out(c, c->log_fd, buf, n, -1, true);
	if (c->kind != CONSOLE_OFF && c->out_fd >= 0) {
		switch (c->kind) {
		case CONSOLE_STDIO:
		case CONSOLE_FILE:
			write_out(c, c->out_fd, buf, n, -1, false);
			break;
		case CONSOLE_PTY:
			write_out(c, c->out_fd, buf, n, CONSOLE_WRITE_TIMEOUT_MS, false);
			break;
		case CONSOLE_SOCKET:
			/* A dead client is closed by the input thread when it sees EOF. */
			write_out(c, c->out_fd, buf, n, CONSOLE_WRITE_TIMEOUT_MS, false);
			break;
		default:
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void console_tx(void *ctx, const uint8_t *buf, size_t n)
{
	console_write(ctx, buf, n);
}

/* ---- input thread -------------------------------------------------------- */

/*
 * Ctrl-A escapes on a raw terminal: Ctrl-A x quits, Ctrl-A Ctrl-A is one
 * Ctrl-A, Ctrl-A anything-else passes both. Returns the bytes left in out
 * (out has room for 2 * n).
 */
static size_t filter_escapes(struct console *c, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++) {
		uint8_t b = in[i];

		if (!c->escape) {
			if (b == CTRL_A)
				c->escape = true;
			else
				out[len++] = b;
			continue;
		}
		c->escape = false;
		if (b == 'x' || b == 'X') {
			if (c->quit)
				c->quit(c->quit_ctx);
		} else if (b == CTRL_A) {
			out[len++] = CTRL_A;
		} else {
			out[len++] = CTRL_A;
			out[len++] = b;
		}
	}
	return len;
}

/* Socket client bookkeeping: only the input thread opens and closes clients. */
static void set_client(struct console *c, int fd)
{
	int old;

	pthread_mutex_lock(&c->lock);
	old = c->out_fd;
	c->out_fd = fd;
	c->in_fd = fd;
	c->out_stalled = false;
	pthread_mutex_unlock(&c->lock);
	if (old >= 0)
		close(old);
}

/* Returns false when accept() keeps failing (e.g. out of fds): back off. */
static bool accept_client(struct console *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED;
	set_client(c, fd); /* a new client replaces the old one */
	return true;
}

/* Read some input into buf (room for 2 * cap); returns its length. */
static size_t read_input(struct console *c, uint8_t *buf, size_t cap)
{
	uint8_t raw[256];
	ssize_t n;

	if (cap > sizeof(raw))
		cap = sizeof(raw);
	n = read(c->in_fd, raw, cap);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		/* End of input or a broken fd. */
		if (c->kind == CONSOLE_SOCKET)
			set_client(c, -1); /* wait for the next client */
		else
			c->in_eof = true;
		return 0;
	}
	if (c->raw_tty)
		return filter_escapes(c, raw, n, buf);
	memcpy(buf, raw, n);
	return n;
}

static void *input_thread(void *arg)
{
	struct console *c = arg;
	uint8_t buf[512];
	size_t off = 0, len = 0;
	bool accept_ok = true;
	uint64_t cnt;
	struct yun_err err;

	if (sandbox_enter(SANDBOX_MAIN, &err) < 0) {
		yun_error("%s (console input disabled)", err.msg);
		return NULL;
	}

	for (;;) {
		struct pollfd pfd[3];
		int n = 0, i_in = -1, i_space = -1, i_listen = -1, rc;

		pfd[n++] = (struct pollfd){ .fd = c->stop_fd, .events = POLLIN };
		if (off < len) {
			i_space = n;
			pfd[n++] = (struct pollfd){ .fd = serial_rx_space_fd(c->uart), .events = POLLIN };
		} else if (c->in_fd >= 0 && !c->in_eof) {
			i_in = n;
			pfd[n++] = (struct pollfd){ .fd = c->in_fd, .events = POLLIN };
		}
		if (c->listen_fd >= 0 && accept_ok) {
			i_listen = n;
			pfd[n++] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
		}
		rc = poll(pfd, n, accept_ok ? -1 : ACCEPT_RETRY_MS);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			break; /* cannot wait any more: input ends, the VM goes on */
		}
		if (pfd[0].revents)
			break;
		accept_ok = true;
		if (i_space >= 0 && pfd[i_space].revents) {
			/* Reset the eventfd before pushing; EAGAIN means already reset. */
			if (read(pfd[i_space].fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
				break;
		}
		if (i_in >= 0 && pfd[i_in].revents) {
			off = 0;
			len = read_input(c, buf, sizeof(buf) / 2);
		}
		if (i_listen >= 0 && pfd[i_listen].revents) {
			accept_ok = accept_client(c);
			if (!accept_ok)
				continue;
		}
		if (off < len)
			off += serial_rx_push(c->uart, buf + off, len - off);
		if (off == len)
			off = len = 0;
	}
	return NULL;
}

int console_start(struct console *c, void (*quit)(void *ctx), void *quit_ctx,
		  struct yun_err *err)
{
	int rc;

	c->quit = quit;
	c->quit_ctx = quit_ctx;
	if (!c->open || c->running || !c->uart)
		return 0;
	if (c->kind == CONSOLE_OFF || c->kind == CONSOLE_FILE)
		return 0; /* no input */
	rc = pthread_create(&c->thread, NULL, input_thread, c);
	if (rc)
		return yun_err_errno(err, rc, "serial: input thread");
	c->running = true;
	return 0;
}

/* ---- closing ------------------------------------------------------------- */

int console_stop_input(struct console *c)
{
	uint64_t one = 1, cnt;

	if (!c->running)
		return 0;
	/* An eventfd write of 8 bytes only fails when the counter is full. */
	if (write(c->stop_fd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
		return -errno;
	pthread_join(c->thread, NULL);
	c->running = false;
	/* Consume the stop so a later console_start's thread does not see it. */
	if (read(c->stop_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

void console_attach(struct console *c, struct serial *uart)
{
	console_stop_input(c);
	c->uart = uart;
}

void console_close(struct console *c)
{
	if (!c->open)
		return;
	if (console_stop_input(c) < 0)
		return; /* cannot stop the thread: leave everything open */
	pthread_mutex_lock(&c->lock);
	release(c);
	c->open = false;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
}
