/*
 * seccomp_test.c - the default container profile, loaded into forked
 * children: what a container's programs need still works (fork, threads,
 * exec), what Docker's profile forbids fails with EPERM, and namespace
 * calls open up only with allow_user_ns_ops.
 */
#include "ct/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* errno of a raw syscall that should fail, 0 when it succeeded. */
#define FAILS_WITH(call) ((call) == -1 ? errno : 0)

static void *thread_fn(void *arg)
{
	return arg;
}

/* i386 system call through int 0x80 (runs when the kernel has IA32 emulation). */
static long int80(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "0"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

static int run_true(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs in a child after the default profile is loaded. */
static void child_default(bool ia32)
{
	struct yun_err err = { 0 };
	struct seccomp_opts opts = { .allow_user_ns_ops = false };
	pthread_t t;
	void *ret = NULL;
	int p[2], status, fd;
	pid_t pid;
	char c;

	if (seccomp_apply_default(&opts, &err) < 0) {
		fprintf(stderr, "  seccomp_apply_default: %s\n", err.msg);
		check_failures++;
		return;
	}
	/* allowed */
	CHECK(syscall(SYS_getpid) == getpid());
	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(write(p[1], "y", 1), 1);
	CHECK_EQ(read(p[0], &c, 1), 1);
	pid = fork();
	if (pid == 0)
		_exit(7);
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	/* glibc tries clone3 first; our ENOSYS sends it back to clone */
	CHECK_EQ(pthread_create(&t, NULL, thread_fn, (void *)&c), 0);
	CHECK_EQ(pthread_join(t, &ret), 0);
	CHECK(ret == (void *)&c);
	CHECK_EQ(FAILS_WITH(syscall(SYS_clone3, NULL, 0)), ENOSYS);
	CHECK_EQ(unshare(CLONE_FILES), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	close(fd);
	CHECK(personality(0xffffffff) >= 0);
	CHECK_EQ(run_true(), 0);

	/* denied, the way Docker's default profile denies them */
	CHECK_EQ(
	    FAILS_WITH(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)),
	    EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_add_key, "user", "yun", "x", 1, KEY_SPEC_SESSION_KEYRING)),
		 EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_kexec_load, 0, 0, NULL, 0)), EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0)), EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_init_module, NULL, 0, "")), EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_bpf, 0, NULL, 0)), EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_userfaultfd, 0)), EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_io_uring_setup, 1, NULL)), EPERM);
	CHECK_EQ(FAILS_WITH(unshare(CLONE_NEWUSER)), EPERM);
	CHECK_EQ(FAILS_WITH(unshare(CLONE_NEWNS)), EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, 0)),
		 EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_setns, 0, 0)), EPERM);
	CHECK_EQ(FAILS_WITH(mount("none", "/mnt", "tmpfs", 0, NULL)), EPERM);
	CHECK_EQ(FAILS_WITH(socket(AF_VSOCK, SOCK_STREAM, 0)), EPERM);
	CHECK_EQ(FAILS_WITH(personality(PER_BSD)), EPERM);

	/* i386 binaries get the same rules */
	if (ia32) {
		CHECK_EQ(int80(20 /* getpid */, 0, 0, 0), getpid());
		CHECK_EQ(int80(288 /* keyctl */, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING,
			       0),
			 -EPERM);
	}
}

/* With a user namespace the namespace calls are the container's own business. */
static void child_userns(void)
{
	struct yun_err err = { 0 };
	struct seccomp_opts opts = { .allow_user_ns_ops = true };

	if (seccomp_apply_default(&opts, &err) < 0) {
		fprintf(stderr, "  seccomp_apply_default: %s\n", err.msg);
		check_failures++;
		return;
	}
	CHECK_EQ(unshare(CLONE_NEWUSER | CLONE_NEWUTS), 0);
	CHECK_EQ(sethostname("inside", 6), 0);
	CHECK(FAILS_WITH(syscall(SYS_clone3, NULL, 0)) != ENOSYS);
	/* still denied whatever the namespace */
	CHECK_EQ(
	    FAILS_WITH(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)),
	    EPERM);
	CHECK_EQ(FAILS_WITH(syscall(SYS_kexec_load, 0, 0, NULL, 0)), EPERM);
	CHECK_EQ(run_true(), 0);
}

static void in_child(void (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		fn();
		fflush(stderr);
		_exit(check_failures ? 1 : 0);
	}
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

static bool have_ia32;

static void default_child(void)
{
	child_default(have_ia32);
}

static void test_default_profile(void)
{
	in_child(default_child);
}

static void test_user_ns_profile(void)
{
	in_child(child_userns);
}

int main(void)
{
	/* Is there IA32 emulation to test the i386 rules with? */
	have_ia32 = int80(20, 0, 0, 0) == getpid();
	if (!have_ia32)
		printf("skip: no IA32 emulation, i386 rules not exercised\n");
	RUN(test_default_profile);
	RUN(test_user_ns_profile);
	return CHECK_DONE();
}
