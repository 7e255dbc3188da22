/*
 * sandbox_test.c - yun-vmm's per-thread seccomp lists (src/vmm/sandbox):
 * every kind's filter builds; in forked children, what a kind needs still
 * works, a syscall (or an ioctl request, a socket family, PROT_EXEC) off
 * its list kills the process by SIGSYS with one stderr line naming the
 * thread kind and the syscall, and the YUN_VMM_DEBUG_FORBIDDEN hook fires.
 */
#include "vmm/sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

struct outcome {
	int status;       /* from waitpid */
	char stderr_[512];
};

/* Run fn(kind) in a child with the sandbox on and `kind` entered. */
static struct outcome run_child(enum sandbox_thread kind, void (*fn)(void))
{
	struct outcome o = { 0 };
	size_t len = 0;
	int pfd[2];
	ssize_t n;
	pid_t pid;

	if (pipe(pfd) < 0)
		return o;
	pid = fork();
	if (pid == 0) {
		struct yun_err err;

		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		prctl(PR_SET_NAME, "sbtest");
		if (sandbox_set_mode(SANDBOX_ON, false, &err) < 0 || sandbox_enter(kind, &err) < 0)
			_exit(100);
		fn();
		_exit(0);
	}
	close(pfd[1]);
	while (len < sizeof(o.stderr_) - 1 &&
	       (n = read(pfd[0], o.stderr_ + len, sizeof(o.stderr_) - 1 - len)) > 0)
		len += n;
	close(pfd[0]);
	waitpid(pid, &o.status, 0);
	return o;
}

static bool killed_by_sigsys(const struct outcome *o)
{
	return WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGSYS;
}

static bool exited_ok(const struct outcome *o)
{
	return WIFEXITED(o->status) && WEXITSTATUS(o->status) == 0;
}

static void do_nothing(void)
{
	char c = 'x';

	/* Things every thread does: write, futex-free time, a clean exit. */
	if (write(STDOUT_FILENO, &c, 0) < 0)
		_exit(3);
}

static void do_personality(void)
{
	syscall(SYS_personality, 0xffffffffUL);
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
static void do_ptrace(void)
{
	syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
}
#endif

static void do_kvm_run_bad_fd(void)
{
	/* On the vCPU list: the call is made, and fails with EBADF. */
	if (ioctl(-1, KVM_RUN, 0) != -1 || errno != EBADF)
		_exit(4);
}

static void do_other_ioctl(void)
{
	struct winsize ws;

	ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
}

static void do_unix_socket(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		_exit(5);
	close(s);
}

static void do_inet_socket(void)
{
	socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static void do_exec_mmap(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void do_open_file(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		_exit(6);
	close(fd);
}

static void test_filters_build(void)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct yun_err err = { 0 };

	CHECK(fd >= 0);
	for (int k = 0; k < SANDBOX_NR_KINDS; k++) {
		CHECK_EQ(sandbox_export(k, false, fd, &err), 0);
		CHECK_EQ(sandbox_export(k, true, fd, &err), 0);
	}
	CHECK(sandbox_export(SANDBOX_NR_KINDS, false, fd, &err) < 0);
	close(fd);
	CHECK(sandbox_get_mode() == SANDBOX_OFF); /* the default: library users run unfiltered */
}

static void test_allowed_calls_work(void)
{
	for (int k = 0; k < SANDBOX_NR_KINDS; k++) {
		struct outcome o = run_child(k, do_nothing);

		CHECK(exited_ok(&o));
	}
	struct outcome o = run_child(SANDBOX_VCPU, do_kvm_run_bad_fd);
	CHECK(exited_ok(&o));
	o = run_child(SANDBOX_IO, do_unix_socket);
	CHECK(exited_ok(&o));
	o = run_child(SANDBOX_API, do_open_file);
	CHECK(exited_ok(&o));
	o = run_child(SANDBOX_API, do_inet_socket);
	CHECK(exited_ok(&o));
}

static void test_forbidden_calls_kill(void)
{
	static const char *const line[SANDBOX_NR_KINDS] = {
		"yun-vmm: seccomp: thread sbtest (vcpu) made forbidden syscall 135 (personality); "
		"stopping\n",
		"yun-vmm: seccomp: thread sbtest (io) made forbidden syscall 135 (personality); "
		"stopping\n",
		"yun-vmm: seccomp: thread sbtest (api) made forbidden syscall 135 (personality); "
		"stopping\n",
		"yun-vmm: seccomp: thread sbtest (main) made forbidden syscall 135 (personality); "
		"stopping\n",
	};

	for (int k = 0; k < SANDBOX_NR_KINDS; k++) {
		struct outcome o = run_child(k, do_personality);

		CHECK(killed_by_sigsys(&o));
		CHECK_STR_CONTAINS(o.stderr_, line[k]);
	}
	/* ptrace is off the non-sanitizer lists (sanitizer builds need it for LeakSanitizer). */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
	struct outcome p = run_child(SANDBOX_VCPU, do_ptrace);
	CHECK(killed_by_sigsys(&p));
	CHECK_STR_CONTAINS(p.stderr_, "forbidden syscall 101 (ptrace)");
#endif
}

static void test_arguments_checked(void)
{
	struct outcome o = run_child(SANDBOX_VCPU, do_other_ioctl);

	CHECK(killed_by_sigsys(&o));
	CHECK_STR_CONTAINS(o.stderr_, "(vcpu) made forbidden syscall 16 (ioctl)");
	o = run_child(SANDBOX_IO, do_inet_socket);
	CHECK(killed_by_sigsys(&o));
	CHECK_STR_CONTAINS(o.stderr_, "(io) made forbidden syscall 41 (socket)");
	o = run_child(SANDBOX_VCPU, do_exec_mmap);
	CHECK(killed_by_sigsys(&o));
	CHECK_STR_CONTAINS(o.stderr_, "(vcpu) made forbidden syscall 9 (mmap)");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
	/* Sanitizer builds may open files (/proc/self/maps for reports). */
	o = run_child(SANDBOX_VCPU, do_open_file);
	CHECK(killed_by_sigsys(&o));
#endif
}

static void test_debug_hook(void)
{
	struct outcome o;

	setenv(SANDBOX_DEBUG_ENV, "io", 1);
	o = run_child(SANDBOX_VCPU, do_nothing); /* not the kind asked: nothing */
	CHECK(exited_ok(&o));
	o = run_child(SANDBOX_IO, do_nothing);
	CHECK(killed_by_sigsys(&o));
	CHECK_STR_CONTAINS(o.stderr_, "(io) made forbidden syscall 135 (personality)");
	setenv(SANDBOX_DEBUG_ENV, "bogus", 1);
	o = run_child(SANDBOX_IO, do_nothing);
	CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 100); /* refused by set_mode */
	unsetenv(SANDBOX_DEBUG_ENV);
}

int main(void)
{
	RUN(test_filters_build);
	RUN(test_allowed_calls_work);
	RUN(test_forbidden_calls_kill);
	RUN(test_arguments_checked);
	RUN(test_debug_hook);
	return CHECK_DONE();
}
