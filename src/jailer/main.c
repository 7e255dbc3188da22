/*
 * main.c - yun-jailer: run one yun-vmm in a jail of its own.
 *
 *   yun-jailer --id NAME --uid N --gid N --chroot-base DIR [--netns PATH]
 *              [--cgroup KEY=VALUE[,KEY=VALUE...]] [--copy SRC:DST] [--keep]
 *              -- /path/to/yun-vmm ARGS...
 *
 * Steps: check every argument; build <chroot-base>/yun-vmm/<id>/root (see
 * jail.h); create the cgroup and write its limits (see cgroup.h); then a
 * child, made in a new pid namespace (it is pid 1 there), joins the
 * cgroup, the network namespace (--netns, or a new empty one), new mount,
 * IPC and UTS namespaces, pivots into the root, drops to uid/gid with no
 * capabilities and no_new_privs, and execs the program's copy there. The
 * jailer stays as the parent: it forwards SIGTERM, SIGINT and SIGHUP to
 * the VMM (which blocks them and takes them with sigwait, so the kernel
 * delivers them to it even as a namespace's init), waits, then removes the
 * cgroup and the jail directory (--keep leaves the directory) and exits
 * with the VMM's status (128 + N if a signal N killed it). If the jailer
 * dies, the parent-death signal kills the VMM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/log.h"
#include "cgroup.h"
#include "jail.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static const char usage[] =
	"usage: yun-jailer --id NAME --uid N --gid N --chroot-base DIR [options]\n"
	"                  -- /path/to/yun-vmm [ARGS...]\n"
	"\n"
	"Runs one VMM in a jail: its own directory as /, pid, mount, network, IPC\n"
	"and UTS namespaces, a cgroup, an unprivileged uid/gid, no capabilities.\n"
	"\n"
	"  --id NAME           the jail's name: 1-64 characters from A-Z a-z 0-9 -\n"
	"  --uid N, --gid N    who the VMM runs as (not 0)\n"
	"  --chroot-base DIR   absolute; the jail is DIR/yun-vmm/NAME/root\n"
	"  --netns PATH        join this network namespace (e.g. /var/run/netns/X);\n"
	"                      default a new, empty one\n"
	"  --cgroup K=V[,K=V]  cgroup settings written before the VMM starts, e.g.\n"
	"                      memory.limit_in_bytes=268435456,cpu.cfs_quota_us=50000\n"
	"                      (cgroup v2: memory.max=..., cpu.max=...); repeatable\n"
	"  --copy SRC:DST      copy host file SRC to DST inside the jail, owned by the\n"
	"                      VMM's uid/gid (kernel, initrd, disks); repeatable\n"
	"  --keep              leave the jail directory after the VMM exits\n"
	"  -h, --help          this text\n"
	"\n"
	"Paths in ARGS are paths inside the jail: the kernel, disks and sockets must\n"
	"be placed there beforehand (--copy, or by the caller into DIR/yun-vmm/NAME/root\n"
	"... which exists only while the jailer runs). The environment is passed on.\n"
	"Exit status: the VMM's (128 + N if signal N killed it); 1 if the jail could\n"
	"not be set up, with nothing left behind.\n";

struct args {
	const char *id, *chroot_base, *netns;
	long uid, gid;
	struct jcg_setting cg[JCG_MAX_SETTINGS];
	unsigned nr_cg;
	struct jail_copy copy[JAIL_MAX_COPIES];
	unsigned nr_copy;
	bool keep;
	char **prog; /* program and its arguments */
};

static volatile pid_t vmm_pid;

static void forward(int sig)
{
	if (vmm_pid > 0)
		kill(vmm_pid, sig);
}

static int parse_id(const char *opt, const char *text, long *out, struct yun_err *err)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < 0 || v >= 0xffffffffL)
		return yun_err_set(err, EINVAL, "%s %s: not a number from 1 to 4294967294", opt,
				   text);
	if (v == 0)
		return yun_err_set(err, EPERM, "%s 0: refusing to run the VMM as root", opt);
	*out = v;
	return 0;
}

static int parse_cgroup(struct args *a, char *text, struct yun_err *err)
{
	char *save = NULL;

	for (char *tok = strtok_r(text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (a->nr_cg == JCG_MAX_SETTINGS)
			return yun_err_set(err, E2BIG, "--cgroup: more than %d settings",
					   JCG_MAX_SETTINGS);
		if (jcg_parse_setting(tok, &a->cg[a->nr_cg], err) < 0)
			return -err->code;
		a->nr_cg++;
	}
	return 0;
}

static int parse_copy(struct args *a, char *text, struct yun_err *err)
{
	char *colon = strrchr(text, ':');

	if (!colon || colon == text || colon[1] != '/')
		return yun_err_set(err, EINVAL, "--copy %s: want SRC:DST, DST an absolute path "
				   "inside the jail", text);
	if (a->nr_copy == JAIL_MAX_COPIES)
		return yun_err_set(err, E2BIG, "--copy: more than %d files", JAIL_MAX_COPIES);
	*colon = '\0';
	a->copy[a->nr_copy++] = (struct jail_copy){ text, colon + 1 };
	return 0;
}

static int absolute_dir(const char *opt, const char *path, struct yun_err *err)
{
	struct stat st;

	if (path[0] != '/')
		return yun_err_set(err, EINVAL, "%s %s: must be an absolute path", opt, path);
	if (stat(path, &st) < 0)
		return yun_err_errno(err, errno, "%s %s", opt, path);
	if (!S_ISDIR(st.st_mode))
		return yun_err_set(err, ENOTDIR, "%s %s: not a directory", opt, path);
	return 0;
}

static int parse_args(struct args *a, int argc, char **argv, struct yun_err *err)
{
	enum { O_ID = 256, O_UID, O_GID, O_BASE, O_NETNS, O_CGROUP, O_COPY, O_KEEP };
	static const struct option opts[] = {
		{ "id", required_argument, NULL, O_ID },
		{ "uid", required_argument, NULL, O_UID },
		{ "gid", required_argument, NULL, O_GID },
		{ "chroot-base", required_argument, NULL, O_BASE },
		{ "netns", required_argument, NULL, O_NETNS },
		{ "cgroup", required_argument, NULL, O_CGROUP },
		{ "copy", required_argument, NULL, O_COPY },
		{ "keep", no_argument, NULL, O_KEEP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct stat st;
	int c, rc = 0;

	memset(a, 0, sizeof(*a));
	a->uid = a->gid = -1;
	opterr = 0;
	while (!rc && (c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case O_ID: a->id = optarg; break;
		case O_UID: rc = parse_id("--uid", optarg, &a->uid, err); break;
		case O_GID: rc = parse_id("--gid", optarg, &a->gid, err); break;
		case O_BASE: a->chroot_base = optarg; break;
		case O_NETNS: a->netns = optarg; break;
		case O_CGROUP: rc = parse_cgroup(a, optarg, err); break;
		case O_COPY: rc = parse_copy(a, optarg, err); break;
		case O_KEEP: a->keep = true; break;
		case 'h': fputs(usage, stdout); exit(0);
		case ':': rc = yun_err_set(err, EINVAL, "%s needs a value", argv[optind - 1]); break;
		default:
			rc = yun_err_set(err, EINVAL, "unknown option %s (see --help)",
					 argv[optind - 1]);
			break;
		}
	}
	if (rc)
		return rc;
	if (!a->id)
		return yun_err_set(err, EINVAL, "--id: required (see --help)");
	if (!jail_id_valid(a->id))
		return yun_err_set(err, EINVAL, "--id %s: want 1 to %d characters from A-Z, a-z, "
				   "0-9 and -", a->id, JAIL_ID_MAX);
	if (a->uid < 0 || a->gid < 0)
		return yun_err_set(err, EINVAL, "--uid and --gid: required");
	if (!a->chroot_base)
		return yun_err_set(err, EINVAL, "--chroot-base: required");
	rc = absolute_dir("--chroot-base", a->chroot_base, err);
	if (rc)
		return rc;
	if (a->netns && a->netns[0] != '/')
		return yun_err_set(err, EINVAL, "--netns %s: must be an absolute path", a->netns);
	if (optind >= argc)
		return yun_err_set(err, EINVAL, "no program to run (-- /path/to/yun-vmm ARGS)");
	a->prog = argv + optind;
	if (a->prog[0][0] != '/')
		return yun_err_set(err, EINVAL, "%s: the program must be an absolute path",
				   a->prog[0]);
	if (stat(a->prog[0], &st) < 0)
		return yun_err_errno(err, errno, "%s", a->prog[0]);
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
		return yun_err_set(err, EACCES, "%s: not an executable file", a->prog[0]);
	if (geteuid() != 0)
		return yun_err_set(err, EPERM, "must run as root (it makes device nodes, cgroups "
				   "and namespaces)");
	return 0;
}

/* In the child: never returns. Failures go to the parent through `errfd`. */
static void child(const struct jail *j, const struct jail_cgroup *cg, int netns_fd,
		  char **prog, int errfd)
{
	struct yun_err err = { 0 };
	sigset_t none;
	char **argv;
	int n = 0;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	while (prog[n])
		n++;
	argv = calloc(n + 1, sizeof(*argv));
	if (!argv) {
		yun_err_set(&err, ENOMEM, "out of memory");
		goto fail;
	}
	argv[0] = (char *)j->exec_inside;
	for (int i = 1; i < n; i++)
		argv[i] = prog[i];
	if (jcg_join(cg, &err) < 0 || jail_enter(j, netns_fd, &err) < 0)
		goto fail;
	if (netns_fd >= 0)
		close(netns_fd);
	execv(j->exec_inside, argv);
	yun_err_errno(&err, errno, "exec %s in the jail", j->exec_inside);
fail:
	if (write(errfd, err.msg, strlen(err.msg)) < 0)
		_exit(2);
	_exit(1);
}

static void cleanup(struct jail *j, struct jail_cgroup *cg, bool keep)
{
	struct yun_err err = { 0 };

	if (jcg_remove(cg, &err) < 0)
		yun_warn("%s", err.msg);
	if (!keep && jail_remove(j, &err) < 0)
		yun_warn("%s", err.msg);
}

int main(int argc, char **argv)
{
	struct yun_err err = { 0 };
	struct jail_cgroup cg;
	struct jail j;
	struct args a;
	struct sigaction sa = { .sa_handler = forward };
	char msg[YUN_ERR_MSG_MAX] = "";
	int netns_fd = -1, pfd[2], status;
	ssize_t n;
	size_t len = 0;
	pid_t pid;

	yun_log_init("yun-jailer", YUN_LOG_WARN);
	if (parse_args(&a, argc, argv, &err) < 0) {
		yun_error("%s", err.msg);
		return 1;
	}
	if (a.netns && (netns_fd = open(a.netns, O_RDONLY | O_CLOEXEC)) < 0) {
		yun_error("--netns %s: %s", a.netns, strerror(errno));
		return 1;
	}
	memset(&j, 0, sizeof(j));
	j.id = a.id;
	j.uid = (uid_t)a.uid;
	j.gid = (gid_t)a.gid;
	j.exec = a.prog[0];
	j.copies = a.copy;
	j.nr_copies = a.nr_copy;
	if (jail_prepare(&j, a.chroot_base, &err) < 0) {
		yun_error("%s", err.msg);
		return 1;
	}
	if (jcg_create(&cg, CGROUP_ROOT, a.id, a.cg, a.nr_cg, &err) < 0) {
		yun_error("%s", err.msg);
		cleanup(&j, &cg, false);
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/*
	 * The child is the first process of a new pid namespace: its pid 1.
	 * clone rather than unshare + fork: the jailer itself must be able to
	 * fork later (sanitizer runtimes do at exit) outside that namespace.
	 */
	if (pipe2(pfd, O_CLOEXEC) < 0 ||
	    (pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0)) < 0) {
		yun_error("start the jailed process: %s", strerror(errno));
		cleanup(&j, &cg, false);
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		child(&j, &cg, netns_fd, a.prog, pfd[1]);
	}
	vmm_pid = pid;
	close(pfd[1]);
	if (netns_fd >= 0)
		close(netns_fd);
	/* EOF without a word: the exec happened (the pipe is close-on-exec). */
	while ((n = read(pfd[0], msg + len, sizeof(msg) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (len += n) == sizeof(msg) - 1)
			break;
	}
	msg[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
	cleanup(&j, &cg, a.keep && !len);
	if (len) {
		yun_error("%s", msg);
		return 1;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
