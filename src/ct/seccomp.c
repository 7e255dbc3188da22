/*
 * seccomp.c - see seccomp.h.
 *
 * The policy follows Docker's default profile for a container without
 * CAP_SYS_ADMIN and with Docker's default capabilities: a fixed allow-list,
 * EPERM for everything else, a few calls allowed only with harmless
 * arguments (clone/unshare without namespace flags, personality with the
 * usual personas, socket without AF_VSOCK), clone3 answered with ENOSYS so
 * libc falls back to clone, whose flags we can see. Differences, for a
 * system container's init:
 *   - reboot is allowed: in a child pid namespace the kernel turns it into
 *     "end the namespace's init", which is how systemd and busybox init
 *     halt a container (and it still needs CAP_SYS_BOOT there).
 *   - io_uring is left out (as containerd has done since 2023): its
 *     requests bypass this filter.
 *   - with allow_user_ns_ops (the container has its own user namespace,
 *     so its capabilities only reach what it owns) the namespace and mount
 *     calls Docker grants with CAP_SYS_ADMIN are allowed, and pivot_root,
 *     which systemd uses for service sandboxing.
 * The same rules cover x86-64, i386 and x32 binaries, as Docker does.
 */
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Every namespace flag clone can take (clone's low byte is the exit signal). */
#define CLONE_NS_FLAGS                                                                     \
	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |      \
	 CLONE_NEWPID | CLONE_NEWNET)
/* unshare also takes the time namespace. */
#define UNSHARE_NS_FLAGS (CLONE_NS_FLAGS | CLONE_NEWTIME)

/*
 * Allowed with any arguments. Names libseccomp does not know on this build
 * (newer calls) are skipped and so fall to EPERM; names that exist only on
 * some of the three arches (chown32, socketcall, ...) apply where they exist.
 */
static const char *const allow_always[] = {
	/* processes, threads, signals */
	"exit", "exit_group", "execve", "execveat", "fork", "vfork", "wait4", "waitid",
	"waitpid", "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal",
	"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
	"rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "pause",
	"restart_syscall", "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
	"futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
	"set_thread_area", "get_thread_area", "arch_prctl", "modify_ldt", "prctl",
	"seccomp", "membarrier", "process_mrelease",
	/* debugging inside the container (Docker allows it on kernels >= 4.8) */
	"ptrace", "process_vm_readv", "process_vm_writev",
	/* identity and credentials (changes are gated by capabilities) */
	"getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getuid32",
	"geteuid32", "getgid32", "getegid32", "getresuid", "getresgid", "getresuid32",
	"getresgid32", "getgroups", "getgroups32", "setuid", "setgid", "setuid32", "setgid32",
	"setreuid", "setregid", "setreuid32", "setregid32", "setresuid", "setresgid",
	"setresuid32", "setresgid32", "setfsuid", "setfsgid", "setfsuid32", "setfsgid32",
	"setgroups", "setgroups32", "capget", "capset", "getsid", "setsid", "getpgid",
	"setpgid", "getpgrp",
	/* scheduling, limits, resource usage */
	"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr",
	"sched_setattr", "sched_getparam", "sched_setparam", "sched_getscheduler",
	"sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
	"sched_rr_get_interval", "sched_rr_get_interval_time64", "getpriority", "setpriority",
	"ioprio_get", "ioprio_set", "getrlimit", "setrlimit", "ugetrlimit", "prlimit64",
	"getrusage", "times", "getcpu", "sysinfo", "uname",
	/* memory */
	"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
	"mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages",
	"memfd_create", "memfd_secret", "pkey_alloc", "pkey_free", "pkey_mprotect",
	"map_shadow_stack",
	/* files and directories */
	"open", "openat", "openat2", "creat", "close", "close_range", "read", "readv", "pread64",
	"preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "lseek",
	"_llseek", "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock", "ioctl", "fsync",
	"fdatasync", "sync", "syncfs", "sync_file_range", "fallocate", "ftruncate",
	"ftruncate64", "truncate", "truncate64", "fadvise64", "fadvise64_64", "readahead",
	"sendfile", "sendfile64", "copy_file_range", "splice", "tee", "vmsplice", "cachestat",
	"stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat",
	"statx", "statfs", "statfs64", "fstatfs", "fstatfs64", "access", "faccessat",
	"faccessat2", "getcwd", "chdir", "fchdir", "chroot", "mkdir", "mkdirat", "rmdir",
	"mknod", "mknodat", "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat",
	"rename", "renameat", "renameat2", "readlink", "readlinkat", "getdents", "getdents64",
	"chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
	"chown32", "fchown32", "lchown32", "umask", "utime", "utimes", "utimensat",
	"utimensat_time64", "futimesat", "name_to_handle_at",
	"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
	"listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
	"fremovexattr",
	/* waiting for events */
	"poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait",
	"epoll_wait_old", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "pipe", "pipe2",
	"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	"fanotify_mark",
	/* time */
	"clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
	"clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "gettimeofday", "time",
	"adjtimex", "clock_adjtime", "clock_adjtime64", "alarm", "getitimer", "setitimer",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
	"timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
	/* asynchronous I/O (the old kind; io_uring is left out, see above) */
	"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
	"io_pgetevents_time64",
	/* sockets (socket itself is filtered below) */
	"socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4",
	"getsockname", "getpeername", "getsockopt", "setsockopt", "shutdown", "send",
	"sendto", "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg",
	"recvmmsg_time64",
	/* System V and POSIX IPC (the container has its own IPC namespace) */
	"ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
	"semtimedop_time64", "semctl", "shmget", "shmat", "shmdt", "shmctl", "mq_open",
	"mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive",
	"mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
	/* self-sandboxing and randomness */
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "getrandom",
	/* ending the container from inside, see the file comment */
	"reboot",
};

/* What Docker grants with CAP_SYS_ADMIN, here granted with a user namespace. */
static const char *const allow_userns[] = {
	"clone", "clone3", "unshare", "setns", "mount", "umount", "umount2", "mount_setattr",
	"move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "pivot_root",
	"sethostname", "setdomainname",
};

/* The personas Docker allows: Linux, 32-bit Linux, uname26 variants, and query. */
static const unsigned int personas[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n_args,
		    const struct scmp_arg_cmp *args, struct yun_err *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	int rc;

	if (nr == __NR_SCMP_ERROR)
		return 0; /* unknown to this libseccomp: stays denied */
	rc = seccomp_rule_add_array(ctx, action, nr, n_args, args);
	if (rc < 0)
		return yun_err_set(err, -rc, "seccomp: adding a rule for %s: %s", name,
				   strerror(-rc));
	return 0;
}

static int build(scmp_filter_ctx ctx, const struct seccomp_opts *opts, struct yun_err *err)
{
	struct scmp_arg_cmp arg;
	int rc;

	for (size_t i = 0; i < sizeof(allow_always) / sizeof(allow_always[0]); i++) {
		rc = add_rule(ctx, SCMP_ACT_ALLOW, allow_always[i], 0, NULL, err);
		if (rc < 0)
			return rc;
	}
	/* No AF_VSOCK: it reaches the host's hypervisor services. */
	arg = SCMP_A0_32(SCMP_CMP_NE, AF_VSOCK);
	rc = add_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &arg, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < sizeof(personas) / sizeof(personas[0]); i++) {
		arg = SCMP_A0_32(SCMP_CMP_EQ, personas[i]);
		rc = add_rule(ctx, SCMP_ACT_ALLOW, "personality", 1, &arg, err);
		if (rc < 0)
			return rc;
	}
	if (opts && opts->allow_user_ns_ops) {
		for (size_t i = 0; i < sizeof(allow_userns) / sizeof(allow_userns[0]); i++) {
			rc = add_rule(ctx, SCMP_ACT_ALLOW, allow_userns[i], 0, NULL, err);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	/* fork and threads, but no new namespaces */
	arg = SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0);
	rc = add_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &arg, err);
	if (rc < 0)
		return rc;
	arg = SCMP_A0_64(SCMP_CMP_MASKED_EQ, UNSHARE_NS_FLAGS, 0);
	rc = add_rule(ctx, SCMP_ACT_ALLOW, "unshare", 1, &arg, err);
	if (rc < 0)
		return rc;
	/* clone3 passes its flags in memory we cannot inspect: make libc use clone. */
	return add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err);
}

/* ---- compiling ---- */

static int compile(const struct seccomp_opts *opts, struct seccomp_prog *out, struct yun_err *err)
{
	static const uint32_t extra_arches[] = { SCMP_ARCH_X86, SCMP_ARCH_X32 };
	scmp_filter_ctx ctx;
	struct stat st;
	int rc, fd = -1;

	ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return yun_err_set(err, ENOMEM, "seccomp: cannot create a filter");
	if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
		for (size_t i = 0; i < sizeof(extra_arches) / sizeof(extra_arches[0]); i++) {
			rc = seccomp_arch_add(ctx, extra_arches[i]);
			if (rc < 0 && rc != -EEXIST) {
				yun_err_set(err, -rc, "seccomp: adding the %s architecture: %s",
					    extra_arches[i] == SCMP_ARCH_X86 ? "i386" : "x32",
					    strerror(-rc));
				goto out;
			}
		}
	}
	/* A binary tree instead of a linear list: ~350 rules are checked per call. */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	rc = build(ctx, opts, err);
	if (rc < 0)
		goto out;
	/* libseccomp 2.5 exports to a descriptor only. */
	fd = memfd_create("yun-ct-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = yun_err_errno(err, errno, "seccomp: memfd_create");
		goto out;
	}
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0) {
		yun_err_set(err, -rc, "seccomp: generating the filter: %s", strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = yun_err_errno(err, errno, "seccomp: fstat");
		goto out;
	}
	if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
	    st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		rc = yun_err_set(err, E2BIG, "seccomp: the filter has %lld bytes",
				 (long long)st.st_size);
		goto out;
	}
	out->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	out->insns = malloc((size_t)st.st_size);
	if (!out->insns) {
		rc = yun_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	if (pread(fd, out->insns, (size_t)st.st_size, 0) != st.st_size) {
		rc = yun_err_errno(err, errno ? errno : EIO, "seccomp: reading the filter back");
		seccomp_prog_free(out);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return rc < 0 ? rc : 0;
}

/* ---- the cache ---- */

/*
 * libseccomp takes ~10 ms to compile this profile for three architectures,
 * half of what starting a container costs otherwise. Like crun, keep the
 * result in the state directory: one file per variant, a header naming
 * what it was made from, then the program. Anything that could change the
 * program is in the key: this executable (device, inode, size, mtime), the
 * libseccomp version, the kernel (its release and build, which also fix
 * what libseccomp's API level probe finds), the options.
 */
#define CACHE_MAGIC "YUNSECC1"

struct cache_hdr {
	char magic[8];
	uint64_t key;
	uint64_t sum; /* FNV-1a of the program */
	uint32_t len; /* instructions */
	uint32_t zero;
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s)
{
	return fnv1a(h, s, strlen(s) + 1);
}

static int cache_key(const struct seccomp_opts *opts, uint64_t *key)
{
	const struct scmp_version *v = seccomp_version();
	bool userns = opts && opts->allow_user_ns_ops;
	struct utsname u;
	struct stat st;
	uint64_t h = 0xcbf29ce484222325ull;

	if (stat("/proc/self/exe", &st) < 0 || uname(&u) < 0)
		return -1;
	h = fnv1a_str(h, CACHE_MAGIC);
	h = fnv1a(h, &st.st_dev, sizeof(st.st_dev));
	h = fnv1a(h, &st.st_ino, sizeof(st.st_ino));
	h = fnv1a(h, &st.st_size, sizeof(st.st_size));
	h = fnv1a(h, &st.st_mtim, sizeof(st.st_mtim));
	h = fnv1a(h, &v->major, sizeof(v->major));
	h = fnv1a(h, &v->minor, sizeof(v->minor));
	h = fnv1a(h, &v->micro, sizeof(v->micro));
	h = fnv1a_str(h, u.release);
	h = fnv1a_str(h, u.version);
	h = fnv1a_str(h, u.machine);
	h = fnv1a(h, &userns, sizeof(userns));
	*key = h;
	return 0;
}

static const char *cache_name(const struct seccomp_opts *opts)
{
	return opts && opts->allow_user_ns_ops ? "userns.bpf" : "default.bpf";
}

/* The cached program, or -1 when there is none that fits (never an error). */
static int cache_read(int dirfd, const char *name, uint64_t key, struct seccomp_prog *out)
{
	struct cache_hdr hdr;
	struct stat st;
	size_t bytes;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -1;
	/* Ours alone: root's, written by nobody else. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || pread(fd, &hdr, sizeof(hdr), 0) != sizeof(hdr) ||
	    memcmp(hdr.magic, CACHE_MAGIC, sizeof(hdr.magic)) || hdr.key != key ||
	    hdr.len == 0 || hdr.len > BPF_MAXINSNS ||
	    (uint64_t)st.st_size != sizeof(hdr) + (uint64_t)hdr.len * sizeof(struct sock_filter))
		goto miss;
	bytes = (size_t)hdr.len * sizeof(struct sock_filter);
	out->insns = malloc(bytes);
	if (!out->insns)
		goto miss;
	if (pread(fd, out->insns, bytes, sizeof(hdr)) != (ssize_t)bytes ||
	    fnv1a(0xcbf29ce484222325ull, out->insns, bytes) != hdr.sum) {
		free(out->insns);
		out->insns = NULL;
		goto miss;
	}
	out->len = (unsigned short)hdr.len;
	close(fd);
	return 0;
miss:
	close(fd);
	return -1;
}

/* Best effort: a cache that cannot be written only costs time. */
static void cache_write(int dirfd, const char *name, uint64_t key, const struct seccomp_prog *p)
{
	size_t bytes = (size_t)p->len * sizeof(struct sock_filter);
	struct cache_hdr hdr = { .key = key, .len = p->len };
	char tmp[64];
	int fd;

	memcpy(hdr.magic, CACHE_MAGIC, sizeof(hdr.magic));
	hdr.sum = fnv1a(0xcbf29ce484222325ull, p->insns, bytes);
	/* A private name, then rename: readers see the old file or the whole new one. */
	snprintf(tmp, sizeof(tmp), ".%s.%d", name, (int)getpid());
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (write(fd, &hdr, sizeof(hdr)) != sizeof(hdr) ||
	    write(fd, p->insns, bytes) != (ssize_t)bytes || close(fd) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0)
		unlinkat(dirfd, tmp, 0);
}

static int open_cache_dir(const char *dir)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the interface ---- */

int seccomp_prog_default(const struct seccomp_opts *opts, const char *cache_dir,
			 struct seccomp_prog *out, struct yun_err *err)
{
	const char *name = cache_name(opts);
	uint64_t key = 0;
	int dirfd = -1, rc;

	out->insns = NULL;
	out->len = 0;
	if (cache_dir && cache_key(opts, &key) == 0)
		dirfd = open_cache_dir(cache_dir);
	if (dirfd >= 0 && cache_read(dirfd, name, key, out) == 0) {
		close(dirfd);
		return 0;
	}
	rc = compile(opts, out, err);
	if (rc == 0 && dirfd >= 0)
		cache_write(dirfd, name, key, out);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

int seccomp_prog_load(const struct seccomp_prog *p, struct yun_err *err)
{
	struct sock_fprog fprog = { .len = p->len, .filter = p->insns };

	/* What seccomp_load does by default (SCMP_FLTATR_CTL_NNP). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return yun_err_errno(err, errno, "seccomp: no_new_privs");
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
		return yun_err_errno(err, errno, "seccomp: loading the filter");
	return 0;
}

void seccomp_prog_free(struct seccomp_prog *p)
{
	free(p->insns);
	p->insns = NULL;
	p->len = 0;
}

int seccomp_apply_default(const struct seccomp_opts *opts, struct yun_err *err)
{
	struct seccomp_prog p;
	int rc = seccomp_prog_default(opts, NULL, &p, err);

	if (rc == 0)
		rc = seccomp_prog_load(&p, err);
	seccomp_prog_free(&p);
	return rc;
}
