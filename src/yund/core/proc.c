/* proc.c - see proc.h. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The children we started and, once reaped, their statuses. */
struct child {
	pid_t pid;	/* 0: free slot */
	bool exited;	/* reaped; status valid */
	bool forgotten; /* nobody asks: free the slot once reaped */
	int status;
};

static struct child *children;
static size_t n_children;

static void track(pid_t pid)
{
	struct child *nc;

	for (size_t i = 0; i < n_children; i++) {
		if (children[i].pid == 0) {
			children[i] = (struct child){.pid = pid};
			return;
		}
	}
	nc = realloc(children, (n_children + 1) * sizeof(*children));
	if (!nc)
		return; /* proc_poll will say ECHILD; the loop copes */
	children = nc;
	children[n_children++] = (struct child){.pid = pid};
}

static struct child *find(pid_t pid)
{
	for (size_t i = 0; i < n_children && pid > 0; i++)
		if (children[i].pid == pid)
			return &children[i];
	return NULL;
}

/* In the child: report errno on the pipe and leave. */
static void child_fail(int fd, int e)
{
	if (write(fd, &e, sizeof(e)) < 0) {
		/* Nothing more can be said. */
	}
	_exit(127);
}

int proc_spawn(char *const argv[], const struct proc_opts *o, pid_t *pid, struct yun_err *err)
{
	static const struct proc_opts none = {0};
	int pfd[2], e = 0, out = -1, in = -1;
	pid_t ppid = getpid();
	sigset_t all;
	ssize_t n;
	pid_t p;

	if (!o)
		o = &none;
	in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return yun_err_errno(err, errno, "/dev/null");
	if (o->out_path)
		out = open(o->out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	else
		out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (out < 0) {
		e = errno;
		close(in);
		return yun_err_errno(err, e, "%s", o->out_path ? o->out_path : "/dev/null");
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		e = errno;
		close(in);
		close(out);
		return yun_err_errno(err, e, "pipe");
	}
	p = fork();
	if (p == 0) {
		struct sigaction dfl = {.sa_handler = SIG_DFL};

		for (int s = 1; s < NSIG; s++)
			sigaction(s, &dfl, NULL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (o->setsid && setsid() < 0)
			child_fail(pfd[1], errno);
		if (o->die_with_parent) {
			if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
				child_fail(pfd[1], errno);
			if (getppid() != ppid)
				_exit(127);
		}
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			child_fail(pfd[1], errno);
		if (chdir(o->cwd ? o->cwd : "/") < 0)
			child_fail(pfd[1], errno);
		/* Everything else yund has open stays here (the pipe closes on exec). */
		syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
		execv(argv[0], argv);
		child_fail(pfd[1], errno);
	}
	e = errno;
	close(pfd[1]);
	close(in);
	close(out);
	if (p < 0) {
		close(pfd[0]);
		return yun_err_errno(err, e, "fork for %s", argv[0]);
	}
	/* EOF at exec; 4 bytes of errno if the child failed before. */
	while ((n = read(pfd[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (n == sizeof(e)) {
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
		return yun_err_errno(err, e, "%s", argv[0]);
	}
	track(p);
	*pid = p;
	return 0;
}

static int shell_status(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 255;
}

void proc_reap(void)
{
	/*
	 * Only our own children, by pid: other modules (net/'s dnsmasq and
	 * helpers) wait for theirs, so waitpid(-1) would steal their statuses.
	 */
	for (size_t i = 0; i < n_children; i++) {
		struct child *c = &children[i];
		int ws;
		pid_t p;

		if (c->pid <= 0 || c->exited)
			continue;
		while ((p = waitpid(c->pid, &ws, WNOHANG)) < 0 && errno == EINTR)
			;
		if (p == c->pid) {
			c->exited = true;
			c->status = shell_status(ws);
		} else if (p < 0) {
			c->exited = true; /* not a child after all */
			c->status = 255;
		}
		if (c->exited && c->forgotten)
			*c = (struct child){0};
	}
}

int proc_poll(pid_t pid, bool *exited, int *status)
{
	struct child *c = find(pid);

	*exited = false;
	if (!c)
		return -ECHILD;
	if (c->exited) {
		*exited = true;
		*status = c->status;
		c->pid = 0;
	}
	return 0;
}

void proc_forget(pid_t pid)
{
	struct child *c = find(pid);

	/* Still reaped when it exits (no zombie), its status dropped. */
	if (c)
		c->forgotten = true;
}

void proc_free_table(void)
{
	free(children);
	children = NULL;
	n_children = 0;
}

void proc_describe(int status, char *buf, size_t len)
{
	if (status > 128 && status < 128 + NSIG)
		snprintf(buf, len, "killed by signal %d (%s)", status - 128,
			 sigabbrev_np(status - 128) ? sigabbrev_np(status - 128) : "?");
	else
		snprintf(buf, len, "exited with status %d", status);
}

bool proc_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	bool alive = false;
	FILE *f;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		alive = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}
