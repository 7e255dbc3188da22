/* console_test.c - serial console backends with a real UART behind them. */
#include "vmm/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define LSR 5

static char tmpdir[64];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read n bytes the guest would see on RBR, waiting at most timeout_ms. */
static size_t uart_read(struct serial *s, uint8_t *buf, size_t n, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	struct timespec ms = { 0, 1000000 };
	size_t got = 0;
	uint8_t v;

	while (got < n && now_ms() < end) {
		serial_io(s, LSR, &v, 1, false);
		if (v & 0x01) {
			serial_io(s, 0, &buf[got++], 1, false);
			continue;
		}
		nanosleep(&ms, NULL);
	}
	return got;
}

/* Read exactly n bytes from fd, waiting at most timeout_ms. */
static size_t fd_read(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = end - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) != 1)
			break;
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

static void uart_init(struct serial *s, struct console *c)
{
	struct yun_err err;

	CHECK_EQ(serial_init(s, NULL, console_tx, c, &err), 0);
	serial_io(s, 2, &(uint8_t){ 0x01 }, 1, true); /* FIFO on */
}

static void test_parse(void)
{
	struct console_spec spec;
	struct yun_err err;
	char longpath[200];

	CHECK_EQ(console_parse("stdio", &spec, &err), 0);
	CHECK_EQ(spec.kind, CONSOLE_STDIO);
	CHECK_EQ(console_parse("pty", &spec, &err), 0);
	CHECK_EQ(spec.kind, CONSOLE_PTY);
	CHECK_EQ(console_parse("off", &spec, &err), 0);
	CHECK_EQ(spec.kind, CONSOLE_OFF);
	CHECK_EQ(console_parse("file=/tmp/con.log", &spec, &err), 0);
	CHECK_EQ(spec.kind, CONSOLE_FILE);
	CHECK(!strcmp(spec.path, "/tmp/con.log"));
	CHECK_EQ(console_parse("socket=/run/vm.sock", &spec, &err), 0);
	CHECK_EQ(spec.kind, CONSOLE_SOCKET);
	CHECK(!strcmp(spec.path, "/run/vm.sock"));

	CHECK_EQ(console_parse("", &spec, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "serial \"\": empty");
	CHECK_EQ(console_parse("tty", &spec, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "serial tty: unknown backend (want stdio, pty");
	CHECK_EQ(console_parse("file", &spec, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "serial file: needs a path (file=PATH)");
	CHECK_EQ(console_parse("socket=", &spec, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "serial socket=: empty path");
	CHECK_EQ(console_parse("stdio=x", &spec, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "serial stdio=x: stdio takes no argument");
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	memcpy(longpath, "socket=/", 8);
	CHECK_EQ(console_parse(longpath, &spec, &err), -ENAMETOOLONG);
	CHECK_STR_CONTAINS(err.msg, "path too long for a Unix socket");
}

static void test_file(void)
{
	struct console_spec spec;
	struct console c;
	struct serial s;
	struct yun_err err;
	char arg[128], path[96], buf[32] = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/out.log", tmpdir);
	snprintf(arg, sizeof(arg), "file=%s", path);
	CHECK_EQ(console_parse(arg, &spec, &err), 0);
	uart_init(&s, &c);
	CHECK_EQ(console_open(&c, &spec, &s, &err), 0);
	CHECK_EQ(console_start(&c, NULL, NULL, &err), 0);
	console_write(&c, (const uint8_t *)"boot: ", 6);
	serial_io(&s, 0, &(uint8_t){ 'o' }, 1, true);
	serial_io(&s, 0, &(uint8_t){ 'k' }, 1, true);
	console_close(&c);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, buf, sizeof(buf)), 8);
	CHECK(!strcmp(buf, "boot: ok"));
	close(fd);
	serial_destroy(&s);

	CHECK_EQ(console_parse("file=/nonexistent/dir/x", &spec, &err), 0);
	CHECK_EQ(console_open(&c, &spec, NULL, &err), -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "serial file=/nonexistent/dir/x: open: No such file");
	console_close(&c);                  /* harmless after a failed open */
}

static int connect_to(const char path[96])
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_socket(void)
{
	struct console_spec spec;
	struct console c;
	struct serial s;
	struct yun_err err;
	char arg[128], path[96];
	uint8_t in[64], big[4096];
	int64_t t0;
	int a, b, i;

	snprintf(path, sizeof(path), "%s/con.sock", tmpdir);
	snprintf(arg, sizeof(arg), "socket=%s", path);
	CHECK_EQ(console_parse(arg, &spec, &err), 0);
	uart_init(&s, &c);
	CHECK_EQ(console_open(&c, &spec, &s, &err), 0);
	CHECK_EQ(console_start(&c, NULL, NULL, &err), 0);

	/* No client: output is dropped at once. */
	t0 = now_ms();
	for (i = 0; i < 1000; i++)
		serial_io(&s, 0, &(uint8_t){ '.' }, 1, true);
	CHECK(now_ms() - t0 < 100);

	/* A client's input reaches the UART, at the pace the guest reads. */
	a = connect_to(path);
	CHECK(a >= 0);
	for (i = 0; i < 40; i++)
		in[i] = 'a' + i % 26;
	CHECK_EQ(write(a, in, 40), 40);
	memset(in, 0, sizeof(in));
	CHECK_EQ(uart_read(&s, in, 40, 1000), 40);
	CHECK_EQ(in[0], 'a');
	CHECK_EQ(in[39], 'a' + 39 % 26);

	/* Output goes to the client. */
	console_write(&c, (const uint8_t *)"login: ", 7);
	CHECK_EQ(fd_read(a, in, 7, 1000), 7);
	CHECK(!memcmp(in, "login: ", 7));

	/* A client that does not read costs one bounded wait, then output drops. */
	memset(big, 'x', sizeof(big));
	t0 = now_ms();
	for (i = 0; i < 256; i++)
		console_write(&c, big, sizeof(big));
	CHECK(now_ms() - t0 < 1000);

	/* A new client replaces the old one. */
	b = connect_to(path);
	CHECK(b >= 0);
	CHECK_EQ(write(b, "B", 1), 1);
	CHECK_EQ(uart_read(&s, in, 1, 1000), 1);
	CHECK_EQ(in[0], 'B');
	while (fd_read(a, big, sizeof(big), 1000) == sizeof(big))
		;                           /* the old one drains, then sees EOF */
	CHECK_EQ(read(a, big, 1), 0);
	console_write(&c, (const uint8_t *)"hi", 2);
	CHECK_EQ(fd_read(b, in, 2, 1000), 2);
	CHECK(!memcmp(in, "hi", 2));
	close(a);
	close(b);

	console_close(&c);
	CHECK(access(path, F_OK) != 0);      /* socket file removed */
	serial_destroy(&s);
}

/* --serial-log: a socket console's output is logged with or without a client. */
static void test_socket_log(void)
{
	struct console_spec spec;
	struct console c;
	struct serial s;
	struct yun_err err;
	char arg[128], path[96], logp[96], buf[64] = { 0 };
	uint8_t in[8];
	int a, fd;

	snprintf(path, sizeof(path), "%s/logged.sock", tmpdir);
	snprintf(logp, sizeof(logp), "%s/logged.log", tmpdir);
	fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK_EQ(write(fd, "old;", 4), 4); /* appended to, not truncated */
	close(fd);
	snprintf(arg, sizeof(arg), "socket=%s", path);
	CHECK_EQ(console_parse(arg, &spec, &err), 0);
	CHECK_EQ(console_log_path(&spec, "", &err), -EINVAL);
	CHECK_EQ(console_log_path(&spec, logp, &err), 0);
	uart_init(&s, &c);
	CHECK_EQ(console_open(&c, &spec, &s, &err), 0);
	CHECK_EQ(console_start(&c, NULL, NULL, &err), 0);
	console_write(&c, (const uint8_t *)"boot;", 5); /* no client */
	a = connect_to(path);
	CHECK(a >= 0);
	CHECK_EQ(write(a, "k", 1), 1); /* once the guest has it, the client is accepted */
	CHECK_EQ(uart_read(&s, in, 1, 1000), 1);
	console_write(&c, (const uint8_t *)"login", 5);
	CHECK_EQ(fd_read(a, in, 5, 1000), 5);
	CHECK(!memcmp(in, "login", 5));
	close(a);
	console_close(&c);
	serial_destroy(&s);
	fd = open(logp, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, buf, sizeof(buf)), 14);
	CHECK(!strcmp(buf, "old;boot;login"));
	close(fd);
	unlink(logp);

	CHECK_EQ(console_parse("off", &spec, &err), 0);
	CHECK_EQ(console_log_path(&spec, "/nonexistent/dir/x", &err), 0);
	CHECK_EQ(console_open(&c, &spec, NULL, &err), -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "serial log /nonexistent/dir/x: open");
	console_close(&c);
}

static void test_socket_path_checks(void)
{
	struct console_spec spec;
	struct console c, c2;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct yun_err err;
	char arg[128], path[96];
	int fd;

	snprintf(path, sizeof(path), "%s/notasock", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);
	snprintf(arg, sizeof(arg), "socket=%s", path);
	CHECK_EQ(console_parse(arg, &spec, &err), 0);
	CHECK_EQ(console_open(&c, &spec, NULL, &err), -EEXIST);
	CHECK_STR_CONTAINS(err.msg, "exists and is not a socket");
	CHECK_EQ(access(path, F_OK), 0);    /* left alone */

	/* A stale socket file (nobody listening) is replaced... */
	snprintf(path, sizeof(path), "%s/stale.sock", tmpdir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	snprintf(arg, sizeof(arg), "socket=%s", path);
	CHECK_EQ(console_parse(arg, &spec, &err), 0);
	CHECK_EQ(console_open(&c, &spec, NULL, &err), 0);
	/* ...but a live one is not taken over. */
	CHECK_EQ(console_open(&c2, &spec, NULL, &err), -EADDRINUSE);
	CHECK_STR_CONTAINS(err.msg, "another process is listening");
	console_close(&c);
}

static void test_pty(void)
{
	struct console_spec spec;
	struct console c;
	struct serial s;
	struct yun_err err;
	const char *name;
	uint8_t in[8];
	int fd;

	CHECK_EQ(console_parse("pty", &spec, &err), 0);
	uart_init(&s, &c);
	CHECK_EQ(console_open(&c, &spec, &s, &err), 0);
	name = console_pty_path(&c);
	CHECK(name && !strncmp(name, "/dev/pts/", 9));
	CHECK_EQ(console_start(&c, NULL, NULL, &err), 0);
	fd = open(name, O_RDWR | O_NOCTTY);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "ping\r", 5), 5);
	CHECK_EQ(uart_read(&s, in, 5, 1000), 5);
	CHECK(!memcmp(in, "ping\r", 5));    /* raw: no CR translation */
	serial_io(&s, 0, &(uint8_t){ 'o' }, 1, true);
	serial_io(&s, 0, &(uint8_t){ 'k' }, 1, true);
	CHECK_EQ(fd_read(fd, in, 2, 1000), 2);
	CHECK(!memcmp(in, "ok", 2));
	close(fd);

	/* Nobody reading the pty: once its buffer fills, output is dropped. */
	{
		uint8_t big[4096];
		int64_t t0 = now_ms();
		int i;

		memset(big, 'y', sizeof(big));
		for (i = 0; i < 64; i++)
			console_write(&c, big, sizeof(big));
		CHECK(now_ms() - t0 < 1000);
	}
	console_close(&c);
	serial_destroy(&s);
}

/* Run fn with stdin and stdout replaced by in_fd and out_fd. */
static void with_stdio(int in_fd, int out_fd, void (*fn)(void *), void *arg)
{
	int saved_in = dup(0), saved_out = dup(1);

	CHECK(dup2(in_fd, 0) == 0 && dup2(out_fd, 1) == 1);
	fn(arg);
	CHECK(dup2(saved_in, 0) == 0 && dup2(saved_out, 1) == 1);
	close(saved_in);
	close(saved_out);
}

struct stdio_case {
	int feed;        /* test's end of stdin */
	int sink;        /* test's end of stdout */
	int quits;
	bool tty;
};

static void count_quit(void *ctx)
{
	((struct stdio_case *)ctx)->quits++;
}

static void stdio_body(void *arg)
{
	struct stdio_case *t = arg;
	struct console_spec spec = { .kind = CONSOLE_STDIO };
	struct console c;
	struct serial s;
	struct yun_err err;
	uint8_t in[16] = { 0 };
	const char *typed = t->tty ? "ab\x01x\x01\x01" "c\x01q" : "abc";
	const char *want = t->tty ? "ab\x01" "c\x01q" : "abc";

	uart_init(&s, &c);
	CHECK_EQ(console_open(&c, &spec, &s, &err), 0);
	CHECK_EQ(console_start(&c, count_quit, t, &err), 0);
	CHECK_EQ(write(t->feed, typed, strlen(typed)), (ssize_t)strlen(typed));
	CHECK_EQ(uart_read(&s, in, strlen(want), 1000), strlen(want));
	CHECK(!memcmp(in, want, strlen(want)));
	serial_io(&s, 0, &(uint8_t){ '!' }, 1, true);
	CHECK_EQ(fd_read(t->sink, in, 1, 1000), 1);
	CHECK_EQ(in[0], '!');
	if (!t->tty) {
		close(t->feed);             /* EOF stops input, nothing else */
		t->feed = -1;
		serial_io(&s, 0, &(uint8_t){ '?' }, 1, true);
		CHECK_EQ(fd_read(t->sink, in, 1, 1000), 1);
	}
	console_close(&c);
	serial_destroy(&s);
}

static void test_stdio_pipe(void)
{
	struct stdio_case t = { 0 };
	int in[2], out[2];

	CHECK_EQ(pipe(in), 0);
	CHECK_EQ(pipe(out), 0);
	t.feed = in[1];
	t.sink = out[0];
	with_stdio(in[0], out[1], stdio_body, &t);
	CHECK_EQ(t.quits, 0);
	close(in[0]);
	close(out[0]);
	close(out[1]);
}

static void test_stdio_terminal(void)
{
	struct stdio_case t = { .tty = true };
	struct termios before, after;
	int m, slave, out[2];

	m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0);
	slave = open(ptsname(m), O_RDWR | O_NOCTTY);
	CHECK(slave >= 0);
	CHECK_EQ(pipe(out), 0);
	CHECK_EQ(tcgetattr(slave, &before), 0);
	t.feed = m;
	t.sink = out[0];
	with_stdio(slave, out[1], stdio_body, &t);
	CHECK_EQ(t.quits, 1);               /* Ctrl-A x */
	CHECK_EQ(tcgetattr(slave, &after), 0);
	CHECK_EQ(after.c_lflag, before.c_lflag); /* terminal restored */
	CHECK_EQ(after.c_iflag, before.c_iflag);
	close(slave);
	close(m);
	close(out[0]);
	close(out[1]);
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

struct stuck_writer {
	struct console *c;
	atomic_bool done;
};

static void *stuck_writer_thread(void *arg)
{
	struct stuck_writer *w = arg;

	console_write(w->c, (const uint8_t *)"x", 1);
	w->done = true;
	return NULL;
}

static void stdout_full_body(void *arg)
{
	struct console_spec spec = { .kind = CONSOLE_STDIO };
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	struct stuck_writer w = { .done = false };
	struct timespec ms = { 0, 1000000 };
	struct console c;
	struct yun_err err;
	uint8_t page[4096] = { 0 };
	pthread_t t;
	int i;

	(void)arg;
	/* Fill stdout (a pipe nobody reads). */
	CHECK_EQ(fcntl(1, F_SETFL, O_NONBLOCK), 0);
	while (write(1, page, sizeof(page)) > 0)
		;
	CHECK_EQ(fcntl(1, F_SETFL, 0), 0);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	CHECK_EQ(console_open(&c, &spec, NULL, &err), 0);
	w.c = &c;
	CHECK_EQ(pthread_create(&t, NULL, stuck_writer_thread, &w), 0);
	for (i = 0; i < 20; i++)
		nanosleep(&ms, NULL);
	CHECK(!w.done);                     /* waits for the reader... */
	for (i = 0; i < 1000 && !w.done; i++) {
		pthread_kill(t, SIGUSR1);   /* ...until the VMM kicks the thread */
		nanosleep(&ms, NULL);
	}
	CHECK(w.done);
	pthread_join(t, NULL);
	console_close(&c);
}

static void test_stdout_full_does_not_trap_vcpu(void)
{
	int in[2], out[2];

	CHECK_EQ(pipe(in), 0);
	CHECK_EQ(pipe(out), 0);
	with_stdio(in[0], out[1], stdout_full_body, NULL);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
}

static void cleanup(void)
{
	static const char *const files[] = { "out.log", "notasock", "stale.sock", "con.sock" };
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	CHECK_EQ(rmdir(tmpdir), 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/yun-console-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_parse);
	RUN(test_file);
	RUN(test_socket);
	RUN(test_socket_log);
	RUN(test_socket_path_checks);
	RUN(test_pty);
	RUN(test_stdio_pipe);
	RUN(test_stdio_terminal);
	RUN(test_stdout_full_does_not_trap_vcpu);
	cleanup();
	return CHECK_DONE();
}
