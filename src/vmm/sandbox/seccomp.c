/*
 * sandbox/seccomp.c - see seccomp.h.
 *
 * The lists were written from the code each thread runs and checked by
 * running the test guests (every case of tests/guest/run_cases.py) under
 * strace -f and with the filters on. When a thread needs a new syscall, the
 * SIGSYS line names it: add a row to sb_rules (or sb_ioctls).
 */
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Sanitizer runtimes need more (see sb_sanitizer); gcc and clang say so differently. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SB_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SB_SANITIZER 1
#endif
#endif
#ifndef SB_SANITIZER
#define SB_SANITIZER 0
#endif

#define V (1u << SANDBOX_VCPU)
#define I (1u << SANDBOX_IO)
#define A (1u << SANDBOX_API)
#define M (1u << SANDBOX_MAIN)
#define ALL (V | I | A | M)

struct sb_rule {
	const char *name; /* syscall, resolved by libseccomp (absent ones are skipped) */
	unsigned kinds;   /* thread kinds allowed to make it with any arguments */
};

/*
 * Syscalls allowed with any arguments. Rows marked A only are, for the
 * main thread with --reboot, also what building a VM needs (see the header).
 */
static const struct sb_rule sb_rules[] = {
	/* Every thread: memory (mmap/mprotect below), locks, signals, exit, time, logging. */
	{ "read", ALL },           { "write", ALL },        { "readv", ALL },
	{ "writev", ALL },         { "close", ALL },        { "futex", ALL },
	{ "brk", ALL },            { "munmap", ALL },       { "madvise", ALL },
	{ "mremap", ALL },         { "rt_sigreturn", ALL }, { "rt_sigprocmask", ALL },
	{ "rt_sigaction", ALL },   { "sigaltstack", ALL },  { "restart_syscall", ALL },
	{ "exit", ALL },           { "exit_group", ALL },   { "getpid", ALL },
	{ "gettid", ALL },         { "tgkill", ALL },       { "clock_gettime", ALL },
	{ "clock_nanosleep", ALL }, { "nanosleep", ALL },   { "sched_yield", ALL },
	{ "fstat", ALL },          { "newfstatat", ALL },   { "poll", ALL },
	{ "ppoll", ALL },          { "lseek", ALL },
	/* Device work: the I/O thread, and vCPU threads on register writes. */
	{ "epoll_wait", I | A },   { "epoll_pwait", I | A }, { "epoll_ctl", V | I | A },
	{ "io_uring_enter", V | I | A | M },
	{ "timerfd_settime", V | I | A }, { "timerfd_gettime", V | I | A },
	{ "preadv", I | A },       { "pwritev", I | A },    { "preadv2", I | A },
	{ "pwritev2", I | A },     { "pread64", I | A },    { "pwrite64", I | A },
	{ "fdatasync", I | A },    { "fsync", I | A },      { "fallocate", I | A },
	{ "getrandom", I | A },
	/* Sockets already open (vsock, console socket, the API's). */
	{ "accept4", I | A | M },  { "recvfrom", I | A | M }, { "recvmsg", I | A },
	{ "sendto", V | I | A | M }, { "sendmsg", V | I | A }, { "connect", I | A },
	{ "shutdown", V | I | A },
	/* Signal thread: sigwait. Exit paths: the console and vsock socket files. */
	{ "rt_sigtimedwait", A | M }, { "unlink", A | M },  { "unlinkat", A | M },
	/* The API: snapshot files, the migration socket, libmicrohttpd. */
	{ "openat", A },           { "open", A },           { "ftruncate", A },
	{ "rename", A },           { "renameat", A },       { "renameat2", A },
	{ "mkdir", A },            { "mkdirat", A },        { "fchmod", A },
	{ "msync", A },            { "statx", A },          { "getdents64", A },
	{ "readlink", A },         { "fcntl", A },          { "dup", A },
	{ "dup2", A },             { "dup3", A },           { "pipe2", A },
	{ "eventfd2", A },         { "epoll_create1", A },  { "timerfd_create", A },
	{ "bind", A },             { "listen", A },         { "accept", A },
	{ "setsockopt", A },       { "getsockopt", A },     { "getsockname", A },
	{ "getpeername", A },      { "sendmmsg", A },       { "recvmmsg", A },
	{ "select", A },           { "pselect6", A },       { "uname", A },
	{ "sched_getaffinity", A }, { "clone", A },         { "clone3", A },
	{ "set_robust_list", A },  { "rseq", A },           { "io_uring_setup", A },
	{ "io_uring_register", A }, { "memfd_create", A },  { "sysinfo", A },
	{ "getuid", A },           { "geteuid", A },        { "getgid", A },
	{ "getegid", A },          { "prlimit64", A },
	/* Threads this one starts (vCPUs again) install their own filters. */
	{ "seccomp", A },
};

/*
 * Sanitizer runtimes (ASan, UBSan, LeakSanitizer): reports read
 * /proc/self/maps and the binary for symbols; LeakSanitizer at exit clones
 * a tracer that lists /proc/self/task and ptraces every thread (it inherits
 * the main thread's filter and blocks all signals, so a violation there
 * kills it silently and the main thread waits for it forever). On x86-64
 * the runtimes make the old calls (open, stat, getdents), not the *at ones.
 * Test builds only.
 */
static const char *const sb_sanitizer[] = {
	"openat", "open", "readlink", "readlinkat", "getdents64", "getdents", "stat", "lstat",
	"access", "prctl", "clone",
	"wait4", "waitid", "ptrace", "kill", "getppid", "prlimit64", "getrlimit",
	"setrlimit", "sched_getaffinity", "pread64", "uname",
	"set_robust_list", "rseq", "fcntl", "dup2", "pipe2", "statx",
};

struct sb_ioctl {
	unsigned long request;
	unsigned kinds;
};

/* ioctl requests per kind; the API thread (and --reboot's main) may make any. */
static const struct sb_ioctl sb_ioctls[] = {
	{ KVM_RUN, V },
	{ KVM_GET_REGS, V },          /* the register dump of a crash */
	{ KVM_GET_SREGS, V },
	{ KVM_IRQ_LINE, V | I | M },  /* INTx: serial (console input), PCI */
	{ KVM_SET_GSI_ROUTING, V },   /* MSI-X table writes */
	{ KVM_IRQFD, V },
	{ KVM_IOEVENTFD, V | M },     /* queue notify addresses; unbound at exit */
	{ TUNSETOFFLOAD, V },         /* virtio-net feature negotiation */
	{ TCGETS, M },                /* the terminal, restored at exit */
	{ TCSETS, M },
	{ TCSETSW, M },
	{ TCSETSF, M },
};

/* Socket families per kind. */
static const struct { int family; unsigned kinds; } sb_sockets[] = {
	{ AF_UNIX, I | A }, /* vsock's host side */
	{ AF_INET, A },     /* migration; with --reboot, TAP bring-up */
	{ AF_INET6, A },
};

static const char *const sb_kind_names[SANDBOX_NR_KINDS] = {
	[SANDBOX_VCPU] = "vcpu", [SANDBOX_IO] = "io", [SANDBOX_API] = "api", [SANDBOX_MAIN] = "main",
};

/* ---- state -------------------------------------------------------------- */

#define SB_MAX_NR 512 /* syscall numbers named in the SIGSYS line */

static enum sandbox_mode sb_mode = SANDBOX_OFF;
static scmp_filter_ctx sb_ctx[SANDBOX_NR_KINDS];
static pthread_mutex_t sb_lock = PTHREAD_MUTEX_INITIALIZER; /* seccomp_load of a shared ctx */
static char sb_names[SB_MAX_NR][28]; /* filled before any filter is loaded */
static int sb_debug_kind = -1;       /* YUN_VMM_DEBUG_FORBIDDEN */
static bool sb_debug_done;
static __thread int sb_thread_kind = -1;

const char *sandbox_thread_name(enum sandbox_thread kind)
{
	return (unsigned)kind < SANDBOX_NR_KINDS ? sb_kind_names[kind] : "?";
}

enum sandbox_mode sandbox_get_mode(void)
{
	return sb_mode;
}

/* ---- the SIGSYS handler (async-signal-safe: no stdio, no malloc) --------- */

static size_t sb_append(char *buf, size_t len, size_t cap, const char *s)
{
	while (*s && len + 1 < cap)
		buf[len++] = *s++;
	buf[len] = '\0';
	return len;
}

static size_t sb_append_num(char *buf, size_t len, size_t cap, long v)
{
	char digits[24];
	int n = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;

	do {
		digits[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u && n < (int)sizeof(digits));
	if (v < 0 && len + 1 < cap)
		buf[len++] = '-';
	while (n && len + 1 < cap)
		buf[len++] = digits[--n];
	buf[len] = '\0';
	return len;
}

static void sb_sigsys(int sig, siginfo_t *si, void *uctx)
{
	char line[256], comm[17] = "?";
	int nr = si->si_syscall;
	size_t len = 0;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t set;

	(void)uctx;
	/* prctl(PR_GET_NAME) is on every list; a failure leaves "?". */
	if (syscall(SYS_prctl, PR_GET_NAME, comm, 0, 0, 0) < 0)
		strcpy(comm, "?");
	comm[16] = '\0';
	len = sb_append(line, len, sizeof(line), "yun-vmm: seccomp: thread ");
	len = sb_append(line, len, sizeof(line), comm);
	len = sb_append(line, len, sizeof(line), " (");
	len = sb_append(line, len, sizeof(line),
			sb_thread_kind >= 0 ? sb_kind_names[sb_thread_kind] : "?");
	len = sb_append(line, len, sizeof(line), ") made forbidden syscall ");
	len = sb_append_num(line, len, sizeof(line), nr);
	len = sb_append(line, len, sizeof(line), " (");
	len = sb_append(line, len, sizeof(line),
			nr >= 0 && nr < SB_MAX_NR && sb_names[nr][0] ? sb_names[nr] : "unknown");
	if (si->si_arch != AUDIT_ARCH_X86_64)
		len = sb_append(line, len, sizeof(line), ", foreign architecture");
	len = sb_append(line, len, sizeof(line), "); stopping\n");
	/* One write of one line: nothing more to do if stderr is gone. */
	if (write(STDERR_FILENO, line, len) < 0)
		line[0] = '\0';
	/* Die by the signal itself: the exit status says SIGSYS (128 + 31). */
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/*
	 * Still here: we are a pid namespace's init (yun-jailer), which the
	 * kernel does not let die by its own default-action signals. Exit
	 * with the status a shell would show; the raw call skips the atexit
	 * handlers and sanitizer hooks that _exit/exit would run.
	 */
	syscall(SYS_exit_group, 128 + sig);
}

/* ---- building ------------------------------------------------------------ */

static int sb_add(scmp_filter_ctx ctx, const char *name, unsigned n, const struct scmp_arg_cmp *a,
		  struct yun_err *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	int rc;

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, a);
	if (rc < 0 && rc != -EEXIST)
		return yun_err_errno(err, -rc, "seccomp: rule for %s", name);
	return 0;
}

static bool sb_allowed(unsigned kinds, enum sandbox_thread kind, bool reboot)
{
	unsigned want = 1u << kind;

	/* The main thread that builds VMs again gets what the API thread may do. */
	if (kind == SANDBOX_MAIN && reboot)
		want |= A;
	return kinds & want;
}

static int sb_build(enum sandbox_thread kind, bool reboot, scmp_filter_ctx *out,
		    struct yun_err *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	bool any_ioctl = kind == SANDBOX_API || (kind == SANDBOX_MAIN && reboot);
	struct scmp_arg_cmp a;
	int rc = 0;

	if (!ctx)
		return yun_err_set(err, ENOMEM, "seccomp: out of memory for the %s filter",
				   sb_kind_names[kind]);
	/* A syscall of another ABI (i386, x32) is a violation like any other. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
	/* no_new_privs is set once for the process (sandbox_set_mode), not per load. */
	if (!rc)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (rc < 0) {
		rc = yun_err_errno(err, -rc, "seccomp: filter attributes");
		goto out;
	}
	for (size_t i = 0; !rc && i < sizeof(sb_rules) / sizeof(sb_rules[0]); i++)
		if (sb_allowed(sb_rules[i].kinds, kind, reboot))
			rc = sb_add(ctx, sb_rules[i].name, 0, NULL, err);
	for (size_t i = 0; !rc && SB_SANITIZER && i < sizeof(sb_sanitizer) / sizeof(sb_sanitizer[0]);
	     i++)
		rc = sb_add(ctx, sb_sanitizer[i], 0, NULL, err);

	/* ioctl: by request, or any for the API thread. */
	if (!rc && any_ioctl)
		rc = sb_add(ctx, "ioctl", 0, NULL, err);
	for (size_t i = 0; !rc && !any_ioctl && i < sizeof(sb_ioctls) / sizeof(sb_ioctls[0]); i++) {
		if (!(sb_ioctls[i].kinds & (1u << kind)))
			continue;
		a = SCMP_A1(SCMP_CMP_EQ, sb_ioctls[i].request);
		rc = sb_add(ctx, "ioctl", 1, &a, err);
	}
	/* socket: by family. */
	for (size_t i = 0; !rc && i < sizeof(sb_sockets) / sizeof(sb_sockets[0]); i++) {
		if (!sb_allowed(sb_sockets[i].kinds, kind, reboot))
			continue;
		a = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sb_sockets[i].family);
		rc = sb_add(ctx, "socket", 1, &a, err);
	}
	/* No new executable memory: mmap/mprotect without PROT_EXEC. */
	a = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if (!rc)
		rc = sb_add(ctx, "mmap", 1, &a, err);
	if (!rc)
		rc = sb_add(ctx, "mprotect", 1, &a, err);
	/* prctl: the thread's name only (the SIGSYS handler reads it). */
	a = SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME);
	if (!rc)
		rc = sb_add(ctx, "prctl", 1, &a, err);
	a = SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME);
	if (!rc)
		rc = sb_add(ctx, "prctl", 1, &a, err);
out:
	if (rc) {
		seccomp_release(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

int sandbox_export(enum sandbox_thread kind, bool reboot, int fd, struct yun_err *err)
{
	scmp_filter_ctx ctx;
	int rc;

	if ((unsigned)kind >= SANDBOX_NR_KINDS)
		return yun_err_set(err, EINVAL, "seccomp: no thread kind %d", (int)kind);
	rc = sb_build(kind, reboot, &ctx, err);
	if (rc)
		return rc;
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		rc = yun_err_errno(err, -rc, "seccomp: export the %s filter", sb_kind_names[kind]);
	seccomp_release(ctx);
	return rc;
}

static void sb_resolve_names(void)
{
	for (int nr = 0; nr < SB_MAX_NR; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		if (name) {
			strncpy(sb_names[nr], name, sizeof(sb_names[nr]) - 1);
			free(name);
		}
	}
}

static void sb_release_all(void)
{
	for (int k = 0; k < SANDBOX_NR_KINDS; k++) {
		if (sb_ctx[k])
			seccomp_release(sb_ctx[k]);
		sb_ctx[k] = NULL;
	}
}

int sandbox_set_mode(enum sandbox_mode mode, bool reboot, struct yun_err *err)
{
	struct sigaction sa = { .sa_sigaction = sb_sigsys, .sa_flags = SA_SIGINFO };
	const char *debug = getenv(SANDBOX_DEBUG_ENV);
	int rc = 0;

	if (mode == SANDBOX_OFF || sb_mode == SANDBOX_ON)
		return 0; /* filters cannot be taken back: once ON it stays ON */
	for (int k = 0; debug && *debug && k < SANDBOX_NR_KINDS; k++)
		if (!strcmp(debug, sb_kind_names[k]))
			sb_debug_kind = k;
	if (debug && *debug && sb_debug_kind < 0)
		return yun_err_set(err, EINVAL, "%s=%s: must be vcpu, io, api or main",
				   SANDBOX_DEBUG_ENV, debug);
	for (int k = 0; !rc && k < SANDBOX_NR_KINDS; k++)
		rc = sb_build(k, reboot, &sb_ctx[k], err);
	if (rc) {
		sb_release_all();
		return rc;
	}
	/*
	 * Loading a filter needs no_new_privs (or CAP_SYS_ADMIN). Set here, in
	 * the main thread before it starts the others, every thread inherits
	 * it, and no thread needs prctl once filtered.
	 */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		sb_release_all();
		return yun_err_errno(err, errno, "seccomp: no_new_privs");
	}
	sb_resolve_names();
	tzset(); /* glibc reads /etc/localtime on the first time conversion (the RTC's) */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		sb_release_all();
		return yun_err_errno(err, errno, "seccomp: SIGSYS handler");
	}
	sb_mode = SANDBOX_ON;
	return 0;
}

int sandbox_enter(enum sandbox_thread kind, struct yun_err *err)
{
	bool debug;
	int rc;

	if (sb_mode != SANDBOX_ON || sb_thread_kind >= 0)
		return 0;
	if ((unsigned)kind >= SANDBOX_NR_KINDS)
		return yun_err_set(err, EINVAL, "seccomp: no thread kind %d", (int)kind);
	pthread_mutex_lock(&sb_lock);
	rc = seccomp_load(sb_ctx[kind]);
	debug = rc == 0 && (int)kind == sb_debug_kind && !sb_debug_done;
	if (debug)
		sb_debug_done = true;
	pthread_mutex_unlock(&sb_lock);
	if (rc < 0)
		return yun_err_errno(err, -rc, "seccomp: load the %s filter", sb_kind_names[kind]);
	sb_thread_kind = kind;
	if (debug)
		syscall(SYS_personality, 0xffffffffUL); /* the debug hook: never allowed */
	return 0;
}
