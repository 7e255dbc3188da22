/* container.c - see container.h. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "console.h"
#include "mounts.h"
#include "net.h"
#include "proto.h"
#include "seccomp.h"
#include "state.h"

/* Messages on the sync socket between the supervisor and the child. */
enum sync_msg {
	SYNC_GO = 'G',	  /* supervisor: ids mapped, cgroup joined [fd: idmapped rootfs] */
	SYNC_PTY = 'P',	  /* child: [fd: the console pty master] */
	SYNC_READY = 'R', /* child: everything but the exec is done */
	SYNC_START = 'S', /* supervisor: exec now */
	SYNC_ERROR = 'E', /* child: int32 errno, then the message */
};

#define READY_TIMEOUT_MS 30000

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ull
#endif

/* struct clone_args of <linux/sched.h> up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7). */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

static const char *const ns_names[CT_NS_COUNT] = {"user",   "ipc", "uts", "net",
						  "cgroup", "pid", "mnt"};

/* ---- environment ---- */

static int env_set(char ***env, size_t *n, const char *kv)
{
	size_t klen = strcspn(kv, "=");
	char *copy = strdup(kv);
	char **nv;

	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		if (!strncmp((*env)[i], kv, klen) && (*env)[i][klen] == '=') {
			free((*env)[i]);
			(*env)[i] = copy;
			return 0;
		}
	}
	nv = realloc(*env, (*n + 2) * sizeof(char *));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	*env = nv;
	nv[(*n)++] = copy;
	nv[*n] = NULL;
	return 0;
}

char **ct_container_env(const struct ct_config *cfg, char **extra, bool tty)
{
	char host[128];
	char **env = NULL;
	size_t n = 0;
	int rc = 0;

	snprintf(host, sizeof(host), "HOSTNAME=%s", cfg->hostname ? cfg->hostname : cfg->id);
	rc |= env_set(&env, &n, "PATH=" CT_DEFAULT_PATH);
	rc |= env_set(&env, &n, "HOME=/root");
	rc |= env_set(&env, &n, host);
	rc |= env_set(&env, &n, "container=yun");
	if (tty)
		rc |= env_set(&env, &n, "TERM=xterm");
	for (char **e = cfg->env; !rc && e && *e; e++)
		rc |= env_set(&env, &n, *e);
	for (char **e = extra; !rc && e && *e; e++)
		rc |= env_set(&env, &n, *e);
	if (rc) {
		ct_container_free_env(env);
		return NULL;
	}
	return env;
}

void ct_container_free_env(char **env)
{
	for (char **e = env; e && *e; e++)
		free(*e);
	free(env);
}

/* ---- the last steps of every container process ---- */

struct exec_spec {
	char **argv;
	char **env;
	const char *cwd;
	int stdio[3];
	bool tty;
	const struct seccomp_prog
	    *seccomp; /* compiled by the supervisor, see ct_container_create */
};

/* Report a failure to the supervisor as one SYNC_ERROR packet (socket or pipe). */
static void report_error(int fd, const struct yun_err *e)
{
	uint8_t buf[1 + sizeof(int32_t) + YUN_ERR_MSG_MAX];
	int32_t code = e->code ? e->code : EIO;
	size_t len = strnlen(e->msg, YUN_ERR_MSG_MAX);

	buf[0] = SYNC_ERROR;
	memcpy(buf + 1, &code, sizeof(code));
	memcpy(buf + 1 + sizeof(code), e->msg, len);
	if (write(fd, buf, 1 + sizeof(code) + len) < 0) {
		/* Nobody to tell; the exit status still says it failed. */
	}
}

/* Parse a SYNC_ERROR packet into err; returns -code. */
static int parse_error(const uint8_t *p, size_t len, struct yun_err *err)
{
	int32_t code = EIO;

	if (len >= sizeof(code))
		memcpy(&code, p, sizeof(code));
	if (code <= 0 || code > 4095)
		code = EIO;
	len = len >= sizeof(code) ? len - sizeof(code) : 0;
	return yun_err_set(err, code, "%.*s", (int)len, (const char *)p + sizeof(int32_t));
}

static int become_root(struct yun_err *err)
{
	if (setresgid(0, 0, 0) < 0)
		return yun_err_errno(err, errno, "setresgid 0 in the user namespace");
	if (setgroups(0, NULL) < 0)
		return yun_err_errno(err, errno, "setgroups in the user namespace");
	if (setresuid(0, 0, 0) < 0)
		return yun_err_errno(err, errno, "setresuid 0 in the user namespace");
	return 0;
}

/* Move descriptors out of 0..2 so the dup2s below cannot clobber each other. */
static int lift_fd(int fd)
{
	return fd >= 0 && fd < 3 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd;
}

static int reset_signals(struct yun_err *err)
{
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		return yun_err_errno(err, errno, "signal mask");
	return 0;
}

static void __attribute__((noreturn)) exec_final(const struct exec_spec *s, int report_fd)
{
	struct yun_err e = {0};
	int fds[3], code;

	for (int i = 0; i < 3; i++)
		fds[i] = lift_fd(s->stdio[i]);
	if (s->tty) {
		if (ct_console_make_controlling(fds[0], &e) < 0)
			goto fail;
	} else {
		for (int i = 0; i < 3; i++) {
			if (dup2(fds[i], i) < 0) {
				yun_err_errno(&e, errno, "stdio: dup2");
				goto fail;
			}
		}
	}
	/* The supervisor blocks and ignores signals for itself; none of that is inherited. */
	if (reset_signals(&e) < 0)
		goto fail;
	if (s->cwd && chdir(s->cwd) < 0) {
		yun_err_errno(&e, errno, "cwd %s", s->cwd);
		goto fail;
	}
	/* Nothing of ours may leak into the container: mark every other fd close-on-exec. */
	if (syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC) < 0) {
		yun_err_errno(&e, errno, "close_range");
		goto fail;
	}
	if (ct_caps_drop_to_default(&e) < 0)
		goto fail;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		yun_err_errno(&e, errno, "no_new_privs");
		goto fail;
	}
	if (seccomp_prog_load(s->seccomp, &e) < 0)
		goto fail;
	environ = s->env;
	execvp(s->argv[0], s->argv);
	code = errno;
	yun_err_errno(&e, code, "exec %s", s->argv[0]);
	report_error(report_fd, &e);
	_exit(code == ENOENT ? 127 : 126);
fail:
	report_error(report_fd, &e);
	_exit(126);
}

/* ---- the child: from clone to READY ---- */

struct child_ctx {
	const struct ct_config *cfg;
	const char *id;
	int sync;
	bool userns;
	bool cgroup_rw; /* its v2 cgroup was delegated to the container's root */
	bool devpts_gid5;
	char target[PATH_MAX], upper[PATH_MAX], work[PATH_MAX], lower_at[PATH_MAX];
	int *mount_fds;
	int stdio[3]; /* stdio console: the child's ends of the pipes */
	const struct seccomp_prog *seccomp;
};

static int child_wait(int sync, int want, int *fd, struct yun_err *err)
{
	uint8_t buf[CT_PROTO_MAX];
	int type;
	ssize_t n = ct_proto_recv(sync, buf, &type, fd);

	if (n < 0)
		return yun_err_errno(err, (int)-n, "sync with the supervisor");
	if (type != want)
		return yun_err_set(err, EPIPE, "the supervisor went away");
	return 0;
}

static int child_setup(struct child_ctx *x, int *console_slave, struct yun_err *err)
{
	const struct ct_config *cfg = x->cfg;
	const char *host = cfg->hostname ? cfg->hostname : x->id;
	struct ct_mounts_plan plan = {
	    .lower = cfg->rootfs,
	    .lower_fd = -1,
	    .lower_at = x->lower_at,
	    .overlay = cfg->overlay,
	    .upper = x->upper,
	    .work = x->work,
	    .target = x->target,
	    .own_netns = cfg->net == CT_NET_NONE || cfg->net == CT_NET_VETH,
	    .cgroup_rw = x->cgroup_rw,
	    .devpts_gid5 = x->devpts_gid5,
	    .mounts = cfg->mounts,
	    .mount_fds = x->mount_fds,
	    .n_mounts = cfg->n_mounts,
	};
	char ptmx[PATH_MAX + 16];
	int rc, master, slave;

	rc = child_wait(x->sync, SYNC_GO, &plan.lower_fd, err);
	if (rc)
		return rc;
	if (x->userns && (rc = become_root(err)))
		return rc;
	/* After the supervisor put us in the container's cgroup: it becomes our "/". */
	if (unshare(CLONE_NEWCGROUP) < 0)
		return yun_err_errno(err, errno, "new cgroup namespace");
	if (sethostname(host, strlen(host)) < 0)
		return yun_err_errno(err, errno, "hostname %s", host);
	if (plan.own_netns && (rc = ct_net_link_up("lo", err)))
		return rc;
	if (cfg->net == CT_NET_VETH && (rc = ct_net_link_up("eth0", err)))
		return rc;
	rc = ct_mounts_prepare(&plan, err);
	if (plan.lower_fd >= 0)
		close(plan.lower_fd);
	if (rc)
		return rc;
	for (size_t i = 0; i < cfg->n_mounts; i++)
		close(x->mount_fds[i]);
	if (cfg->console == CT_CONSOLE_PTY || cfg->console == CT_CONSOLE_SOCKET) {
		snprintf(ptmx, sizeof(ptmx), "%s/dev/pts/ptmx", x->target);
		rc = ct_console_pty_open(ptmx, &master, &slave, err);
		if (rc)
			return rc;
		rc = ct_mounts_bind_console(x->target, slave, err);
		if (!rc && ct_proto_send_fd(x->sync, SYNC_PTY, NULL, 0, master) < 0)
			rc = yun_err_errno(err, errno, "send the console to the supervisor");
		close(master);
		if (rc)
			return rc;
		*console_slave = slave;
	}
	rc = ct_mounts_pivot(x->target, err);
	if (!rc)
		rc = ct_mounts_finish(err);
	return rc;
}

static void __attribute__((noreturn)) child_main(struct child_ctx *x)
{
	const struct ct_config *cfg = x->cfg;
	struct yun_err e = {0};
	struct exec_spec s = {
	    .argv = cfg->argv,
	    .cwd = cfg->cwd ? cfg->cwd : "/",
	    .seccomp = x->seccomp,
	};
	int slave = -1;

	/* Die with the supervisor: nobody could reach or reap the container (docs/ct.md). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (child_setup(x, &slave, &e) < 0)
		goto fail;
	s.tty = slave >= 0;
	for (int i = 0; i < 3; i++)
		s.stdio[i] = s.tty ? slave : x->stdio[i];
	s.env = ct_container_env(cfg, NULL, s.tty);
	if (!s.env) {
		yun_err_set(&e, ENOMEM, "out of memory");
		goto fail;
	}
	if (ct_proto_send(x->sync, SYNC_READY, NULL, 0) < 0)
		_exit(1);
	if (child_wait(x->sync, SYNC_START, NULL, &e) < 0)
		_exit(1);
	exec_final(&s, x->sync);
fail:
	report_error(x->sync, &e);
	_exit(1);
}

/* ---- the supervisor's side ---- */

static int write_file(const char *path, const char *text, struct yun_err *err)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return yun_err_errno(err, errno, "open %s", path);
	n = write(fd, text, strlen(text));
	if (n < 0 || (size_t)n != strlen(text)) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		return yun_err_errno(err, e, "write %s", path);
	}
	close(fd);
	return 0;
}

static int write_idmap(pid_t pid, const char *which, const struct ct_idmap *m, size_t n,
		       struct yun_err *err)
{
	char path[64], text[CT_MAX_IDMAPS * 40] = "";
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += snprintf(text + len, sizeof(text) - len, "%u %u %u\n", m[i].inside,
				m[i].outside, m[i].count);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
	return write_file(path, text, err);
}

/* Host id that container id `in` maps to; -1 when unmapped. */
static int64_t map_id(const struct ct_idmap *m, size_t n, uint32_t in)
{
	for (size_t i = 0; i < n; i++)
		if (in >= m[i].inside && in - m[i].inside < m[i].count)
			return (int64_t)m[i].outside + (in - m[i].inside);
	return -1;
}

/*
 * cgroup v2 delegation to the container's root (user namespace only): it
 * may make sub-cgroups and move its processes (systemd does), while the
 * limit files stay host root's, which it cannot write.
 */
static int delegate_cgroup(struct ct_container *c, bool *done, struct yun_err *err)
{
	static const char *const files[] = {"", "/cgroup.procs", "/cgroup.threads",
					    "/cgroup.subtree_control"};
	const char *dir = c->cg ? cgroup_path(c->cg, "unified") : NULL;
	int64_t uid = map_id(c->uid_map, c->n_uid_map, 0);
	int64_t gid = map_id(c->gid_map, c->n_gid_map, 0);
	char path[PATH_MAX];

	*done = false;
	if (!dir || uid < 0 || gid < 0)
		return 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", dir, files[i]);
		if (chown(path, (uid_t)uid, (gid_t)gid) < 0 && !(i > 0 && errno == ENOENT))
			return yun_err_errno(err, errno, "delegate cgroup %s", path);
	}
	*done = true;
	return 0;
}

/* A detached copy of the rootfs whose owners appear shifted into the container's ids. */
static int idmapped_rootfs(const char *rootfs, pid_t pid, int *out, struct yun_err *err)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP};
	char path[64];
	int tree, userns, rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		return yun_err_errno(err, errno, "open %s", path);
	tree = open_tree(AT_FDCWD, rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0) {
		rc = yun_err_errno(err, errno, "rootfs %s: clone its mount", rootfs);
		goto out;
	}
	attr.userns_fd = userns;
	if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
		rc = yun_err_errno(err, errno,
				   "rootfs %s: idmapped mount (the file system must support "
				   "idmapped mounts for --userns)",
				   rootfs);
		close(tree);
		goto out;
	}
	*out = tree;
out:
	close(userns);
	return rc;
}

/*
 * With a user namespace the container's root is an ordinary host uid
 * while it mounts its layers: every directory above them must let it pass.
 */
static int check_searchable(const char *path, uid_t uid, gid_t gid, struct yun_err *err)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	while ((slash = strrchr(dir, '/')) != NULL) {
		struct stat st;

		*slash = '\0';
		if (!dir[0])
			break;
		if (stat(dir, &st) < 0)
			return yun_err_errno(err, errno, "stat %s", dir);
		if ((st.st_mode & S_IXOTH) || (st.st_uid == uid && (st.st_mode & S_IXUSR)) ||
		    (st.st_gid == gid && (st.st_mode & S_IXGRP)))
			continue;
		return yun_err_set(err, EACCES,
				   "--userns: directory %s (mode %04o) is not searchable by the "
				   "container's root (host uid %u); the state root and every "
				   "directory above it need o+x",
				   dir, (unsigned)(st.st_mode & 07777), (unsigned)uid);
	}
	return 0;
}

static int prepare_dirs(struct ct_container *c, struct child_ctx *x, struct yun_err *err)
{
	const struct ct_config *cfg = c->cfg;
	int64_t uid = 0, gid = 0;
	char *dirs[3] = {x->target, NULL, NULL};
	int rc;

	rc = ct_state_path(c->id, "rootfs", x->target, sizeof(x->target), err);
	if (!rc)
		rc = ct_state_path(c->id, "upper", x->upper, sizeof(x->upper), err);
	if (!rc)
		rc = ct_state_path(c->id, "work", x->work, sizeof(x->work), err);
	if (!rc)
		rc = ct_state_path(c->id, "lower", x->lower_at, sizeof(x->lower_at), err);
	if (rc)
		return rc;
	if (cfg->overlay) {
		dirs[1] = x->upper;
		dirs[2] = x->work;
	}
	if (c->userns) {
		uid = map_id(c->uid_map, c->n_uid_map, 0);
		gid = map_id(c->gid_map, c->n_gid_map, 0);
		rc = check_searchable(x->target, (uid_t)uid, (gid_t)gid, err);
		if (rc)
			return rc;
	}
	for (int i = 0; i < 3; i++) {
		if (!dirs[i])
			continue;
		if (mkdir(dirs[i], 0755) < 0 && errno != EEXIST)
			return yun_err_errno(err, errno, "mkdir %s", dirs[i]);
		/* The container's root owns its layers, so its writes are its own. */
		if (c->userns && i > 0 && chown(dirs[i], (uid_t)uid, (gid_t)gid) < 0)
			return yun_err_errno(err, errno, "chown %s", dirs[i]);
	}
	if (cfg->overlay) {
		struct stat st;

		/* The merged root shows the upper dir's mode: make it the image's. */
		if (stat(cfg->rootfs, &st) == 0 && chmod(x->upper, st.st_mode & 07777) < 0)
			return yun_err_errno(err, errno, "chmod %s", x->upper);
		if (c->userns && mkdir(x->lower_at, 0755) < 0 && errno != EEXIST)
			return yun_err_errno(err, errno, "mkdir %s", x->lower_at);
	}
	return 0;
}

/*
 * Each --mount source as a detached recursive bind, made here in the
 * host's mount namespace (the child's copy of the tree cannot clone mounts
 * it does not have): nosuid, nodev, read-only when asked. A source that
 * moved since it was checked is refused.
 */
static int open_mount_sources(const struct ct_config *cfg, int *fds, struct yun_err *err)
{
	char link[64], real[PATH_MAX];

	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct ct_mount *m = &cfg->mounts[i];
		struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
		ssize_t n;
		int fd;

		fd = open(m->src, O_PATH | O_CLOEXEC);
		if (fd < 0)
			return yun_err_errno(err, errno, "mount source %s", m->src);
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, real, sizeof(real) - 1);
		if (n < 0 || ((real[n] = '\0'), strcmp(real, m->src))) {
			close(fd);
			return yun_err_set(err, EPERM,
					   "mount source %s: changed while being checked", m->src);
		}
		fds[i] = open_tree(
		    fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
		close(fd);
		if (fds[i] < 0)
			return yun_err_errno(err, errno, "mount source %s: clone", m->src);
		if (m->ro)
			attr.attr_set |= MOUNT_ATTR_RDONLY;
		if (mount_setattr(fds[i], "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) <
		    0)
			return yun_err_errno(err, errno, "mount source %s: set %s", m->src,
					     m->ro ? "read-only" : "nosuid,nodev");
	}
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Wait for READY, taking the console master on the way. */
static int wait_ready(struct ct_container *c, struct yun_err *err)
{
	uint8_t *buf = malloc(CT_PROTO_MAX);
	struct pollfd pfd = {.fd = c->sync_fd, .events = POLLIN};
	int rc = 0;

	if (!buf)
		return yun_err_set(err, ENOMEM, "out of memory");
	for (;;) {
		int type, fd;
		ssize_t n;

		rc = poll(&pfd, 1, READY_TIMEOUT_MS);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			rc =
			    yun_err_set(err, ETIMEDOUT,
					"container %s: its first process did not get ready in %d s",
					c->id, READY_TIMEOUT_MS / 1000);
			break;
		}
		n = ct_proto_recv(c->sync_fd, buf, &type, &fd);
		if (n < 0) {
			rc = yun_err_errno(err, (int)-n, "container %s: sync", c->id);
			break;
		}
		if (type == SYNC_READY) {
			rc = 0;
			break;
		}
		if (type == SYNC_PTY && fd >= 0) {
			close_fd(&c->console_master);
			c->console_master = fd;
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (type == SYNC_ERROR) {
			rc = parse_error(buf, (size_t)n, err);
			break;
		}
		rc = yun_err_set(err, EPROTO, "container %s: its first process exited during setup",
				 c->id);
		break;
	}
	free(buf);
	return rc;
}

static int open_namespaces(struct ct_container *c, struct yun_err *err)
{
	const struct ct_config *cfg = c->cfg;
	char path[64];

	for (int i = 0; i < CT_NS_COUNT; i++) {
		if (i == CT_NS_USER && !c->userns)
			continue;
		if (i == CT_NS_NET && cfg->net == CT_NET_HOST)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)c->pid, ns_names[i]);
		c->ns_fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (c->ns_fds[i] < 0)
			return yun_err_errno(err, errno, "container %s: open %s", c->id, path);
	}
	return 0;
}

/*
 * fork-like clone (the child returns 0) with namespace `flags`; with
 * cgroup_fd >= 0 the child starts in that v2 cgroup (clone3 with
 * CLONE_INTO_CGROUP, which does not take the global lock a write to
 * cgroup.procs takes). *placed tells whether it did: before Linux 5.7
 * there is no such flag, and the caller moves the child itself.
 */
static pid_t clone_into(unsigned long flags, int cgroup_fd, bool *placed)
{
	struct clone3_args a = {.flags = flags | CLONE_INTO_CGROUP,
				.exit_signal = SIGCHLD,
				.cgroup = (uint64_t)cgroup_fd};
	pid_t pid;

	*placed = false;
	if (cgroup_fd >= 0) {
		pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
		if (pid >= 0) {
			*placed = true;
			return pid;
		}
		if (errno != ENOSYS && errno != E2BIG && errno != EINVAL)
			return -1;
	}
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/*
 * Fork the container's init straight into its cgroups (see cgroup.h): in
 * v1 hierarchies the supervisor passes through them itself, the child
 * inheriting its thread's cgroups; in v2 with CLONE_INTO_CGROUP. Then the
 * limits, which would have throttled the supervisor, refused the fork
 * (pids.max 1) or offered it to the OOM killer while it was inside.
 */
static int clone_init(struct ct_container *c, unsigned long flags, pid_t *pid, struct yun_err *err)
{
	struct yun_err ignored = {0};
	bool placed = false;
	int rc = 0;

	*pid = -1;
	if (c->cg && (rc = cgroup_enter_self(c->cg, err)) < 0)
		return rc;
	*pid = clone_into(flags, c->cgroup_fd, &placed);
	if (*pid == 0)
		return 0;
	if (*pid < 0)
		rc = yun_err_errno(err, errno, "container %s: clone", c->id);
	if (c->cg) {
		int left = cgroup_leave_self(c->cg, rc ? &ignored : err);

		if (left < 0 && !rc)
			rc = left;
	}
	/* Without CLONE_INTO_CGROUP: the slow way, as the only way. */
	if (!rc && c->cgroup_fd >= 0 && !placed)
		rc = cgroup_enter(c->cg, *pid, err);
	if (!rc && c->cg)
		rc = cgroup_set_limits(c->cg, &c->cfg->limits, err);
	if (rc && *pid > 0) {
		kill(*pid, SIGKILL);
		while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
			;
		*pid = -1;
	}
	return rc;
}

/* The container's v2 cgroup directory, for CLONE_INTO_CGROUP (init and exec). */
static int open_cgroup_dir(struct ct_container *c, struct yun_err *err)
{
	const char *dir = c->cg ? cgroup_path(c->cg, "unified") : NULL;

	if (!dir)
		return 0;
	c->cgroup_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->cgroup_fd < 0)
		return yun_err_errno(err, errno, "container %s: cgroup %s", c->id, dir);
	return 0;
}

/*
 * The seccomp program for init and every exec, compiled (or taken from the
 * cache in the state root) once, here: after pivot_root the child could
 * not read the cache, and libseccomp's compiler costs milliseconds.
 */
static int compile_seccomp(struct ct_container *c, struct yun_err *err)
{
	struct seccomp_opts opts = {.allow_user_ns_ops = c->userns};
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/.seccomp", ct_state_root());
	return seccomp_prog_default(&opts, dir, &c->seccomp, err);
}

static void init_container(struct ct_container *c, const struct ct_config *cfg, const char *id,
			   uint32_t userns_base, struct cgroup *cg)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->pid = -1;
	c->sync_fd = -1;
	c->console_master = -1;
	c->cgroup_fd = -1;
	c->cg = cg;
	for (int i = 0; i < 3; i++)
		c->stdio[i] = -1;
	for (int i = 0; i < CT_NS_COUNT; i++)
		c->ns_fds[i] = -1;
	if (cfg->userns == CT_USERNS_AUTO) {
		c->userns = true;
		c->uid_map[0] = (struct ct_idmap){0, userns_base, CT_USERNS_SIZE};
		c->gid_map[0] = c->uid_map[0];
		c->n_uid_map = c->n_gid_map = 1;
	} else if (cfg->userns == CT_USERNS_MAP) {
		c->userns = true;
		memcpy(c->uid_map, cfg->uid_map, sizeof(c->uid_map));
		memcpy(c->gid_map, cfg->gid_map, sizeof(c->gid_map));
		c->n_uid_map = cfg->n_uid_map;
		c->n_gid_map = cfg->n_gid_map;
	}
}

int ct_container_create(struct ct_container *c, const struct ct_config *cfg, const char *id,
			uint32_t userns_base, struct cgroup *cg, struct yun_err *err)
{
	struct child_ctx x = {.cfg = cfg, .id = id};
	int mount_fds[CT_MAX_MOUNTS];
	int sync[2] = {-1, -1}, pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	int netns = -1, oldns = -1, idmapped = -1;
	unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
	int rc;

	init_container(c, cfg, id, userns_base, cg);
	for (size_t i = 0; i < CT_MAX_MOUNTS; i++)
		mount_fds[i] = -1;
	x.userns = c->userns;
	x.devpts_gid5 = !c->userns || map_id(c->gid_map, c->n_gid_map, 5) >= 0;
	x.mount_fds = mount_fds;
	rc = prepare_dirs(c, &x, err);
	if (!rc && c->userns)
		rc = delegate_cgroup(c, &x.cgroup_rw, err);
	if (!rc)
		rc = open_mount_sources(cfg, mount_fds, err);
	if (!rc)
		rc = open_cgroup_dir(c, err);
	if (!rc)
		rc = compile_seccomp(c, err);
	if (rc)
		goto out;
	x.seccomp = &c->seccomp;
	if (cfg->console == CT_CONSOLE_STDIO) {
		for (int i = 0; i < 3; i++) {
			if (pipe2(pipes[i], O_CLOEXEC) < 0) {
				rc = yun_err_errno(err, errno, "pipe");
				goto out;
			}
		}
		/* The child reads stdin's read end and writes the others' write ends. */
		x.stdio[0] = pipes[0][0];
		x.stdio[1] = pipes[1][1];
		x.stdio[2] = pipes[2][1];
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
		rc = yun_err_errno(err, errno, "socketpair");
		goto out;
	}
	x.sync = sync[1];
	if (cfg->net == CT_NET_NONE || cfg->net == CT_NET_VETH)
		flags |= CLONE_NEWNET;
	if (c->userns)
		flags |= CLONE_NEWUSER;
	if (cfg->net == CT_NET_NETNS) {
		/* The child inherits the namespace we are in when cloning it. */
		netns = open(cfg->net_arg, O_RDONLY | O_CLOEXEC);
		oldns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (netns < 0 || oldns < 0) {
			rc = yun_err_errno(err, errno, "net netns=%s", cfg->net_arg);
			goto out;
		}
		if (setns(netns, CLONE_NEWNET) < 0) {
			rc = yun_err_errno(err, errno, "net netns=%s: join", cfg->net_arg);
			goto out;
		}
	}
	rc = clone_init(c, flags, &c->pid, err);
	if (!rc && c->pid == 0) {
		close(sync[0]);
		child_main(&x);
	}
	if (oldns >= 0 && setns(oldns, CLONE_NEWNET) < 0 && !rc)
		rc = yun_err_errno(err, errno, "container %s: back to the host's network", id);
	if (rc)
		goto out;
	c->sync_fd = sync[0];
	sync[0] = -1;
	if (c->userns) {
		rc = write_idmap(c->pid, "uid_map", c->uid_map, c->n_uid_map, err);
		if (!rc)
			rc = write_idmap(c->pid, "gid_map", c->gid_map, c->n_gid_map, err);
		if (rc)
			goto out;
	}

	if (cfg->net == CT_NET_VETH) {
		rc = ct_net_veth_create(cfg->net_arg, "eth0", c->pid, err);
		if (rc)
			goto out;
		c->veth_made = true;
	}
	if (c->userns && (rc = idmapped_rootfs(cfg->rootfs, c->pid, &idmapped, err)))
		goto out;
	if (ct_proto_send_fd(c->sync_fd, SYNC_GO, NULL, 0, idmapped) < 0) {
		rc = yun_err_errno(err, errno, "container %s: sync", id);
		goto out;
	}
	close_fd(&sync[1]);
	rc = wait_ready(c, err);
	if (!rc)
		rc = open_namespaces(c, err);
	if (!rc && cfg->console == CT_CONSOLE_STDIO) {
		c->stdio[0] = pipes[0][1];
		c->stdio[1] = pipes[1][0];
		c->stdio[2] = pipes[2][0];
		pipes[0][1] = pipes[1][0] = pipes[2][0] = -1;
	}
out:
	for (int i = 0; i < 3; i++) {
		close_fd(&pipes[i][0]);
		close_fd(&pipes[i][1]);
	}
	for (size_t i = 0; i < cfg->n_mounts; i++)
		close_fd(&mount_fds[i]);
	close_fd(&sync[0]);
	close_fd(&sync[1]);
	close_fd(&netns);
	close_fd(&oldns);
	close_fd(&idmapped);
	if (rc && c->pid > 0) {
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
		c->pid = -1;
	}
	if (rc)
		ct_container_release(c);
	return rc;
}

int ct_container_start(struct ct_container *c, struct yun_err *err)
{
	uint8_t *buf;
	ssize_t n;
	int type, rc = 0;

	if (c->sync_fd < 0)
		return yun_err_set(err, EALREADY, "container %s: already started", c->id);
	if (ct_proto_send(c->sync_fd, SYNC_START, NULL, 0) < 0)
		return yun_err_errno(err, errno, "container %s: start", c->id);
	buf = malloc(CT_PROTO_MAX);
	if (!buf)
		return yun_err_set(err, ENOMEM, "out of memory");
	/* EOF: the socket closed on exec. */
	n = ct_proto_recv(c->sync_fd, buf, &type, NULL);
	if (n > 0 && type == SYNC_ERROR)
		rc = parse_error(buf, (size_t)n, err);
	free(buf);
	close_fd(&c->sync_fd);
	return rc;
}

int ct_container_open_pty(struct ct_container *c, int *master, int *slave, struct yun_err *err)
{
	char path[64];
	struct stat st;
	int root, m, rc;

	snprintf(path, sizeof(path), "/proc/%d/root", (int)c->pid);
	root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return yun_err_errno(err, errno, "container %s: open its root", c->id);
	m = ct_mounts_open_in_root(root, "/dev/pts/ptmx", CT_CREATE_NONE, O_RDWR | O_NOCTTY, err);
	close(root);
	if (m < 0)
		return m;
	/* The container controls its /dev: accept only a real ptmx. */
	if (fstat(m, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 ||
	    minor(st.st_rdev) != 2) {
		close(m);
		return yun_err_set(err, EPERM,
				   "container %s: /dev/pts/ptmx is not a pty multiplexer", c->id);
	}
	rc = ct_console_pty_from_master(m, slave, err);
	if (rc) {
		close(m);
		return rc;
	}
	*master = m;
	return 0;
}

/* The process that joins the namespaces, then forks the one that execs. */
static void __attribute__((noreturn))
exec_joiner(struct ct_container *c, const struct ct_exec_req *req, bool in_v2, int err_w, int pid_w)
{
	struct yun_err e = {0};
	struct exec_spec s = {
	    .argv = req->argv,
	    .cwd = req->cwd ? req->cwd : (c->cfg->cwd ? c->cfg->cwd : "/"),
	    .tty = req->tty,
	    .seccomp = &c->seccomp,
	};
	pid_t pid;

	for (int i = 0; i < 3; i++)
		s.stdio[i] = req->stdio[i];
	/* Born in the v2 cgroup (clone_into); v1 by moving itself, as init's fork did. */
	if (c->cg && cgroup_enter_self(c->cg, &e) < 0)
		goto fail;
	if (c->cg && c->cgroup_fd >= 0 && !in_v2 && cgroup_enter(c->cg, getpid(), &e) < 0)
		goto fail;
	/* User namespace first: it grants the rights to join the others. */
	for (int i = 0; i < CT_NS_COUNT; i++) {
		if (c->ns_fds[i] >= 0 && setns(c->ns_fds[i], 0) < 0) {
			yun_err_errno(&e, errno, "container %s: join its %s namespace", c->id,
				      ns_names[i]);
			goto fail;
		}
	}
	if (c->userns && become_root(&e) < 0)
		goto fail;
	s.env = ct_container_env(c->cfg, req->env, req->tty);
	if (!s.env) {
		yun_err_set(&e, ENOMEM, "out of memory");
		goto fail;
	}
	/* A new pid namespace applies to children: this one becomes the supervisor's child. */
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		close(pid_w);
		exec_final(&s, err_w);
	}
	if (pid < 0) {
		yun_err_errno(&e, errno, "container %s: fork", c->id);
		goto fail;
	}
	if (write(pid_w, &pid, sizeof(pid)) != sizeof(pid))
		_exit(1);
	_exit(0);
fail:
	report_error(err_w, &e);
	_exit(1);
}

int ct_container_exec(struct ct_container *c, const struct ct_exec_req *req, pid_t *pid_out,
		      int *err_fd, struct yun_err *err)
{
	int errp[2], pidp[2];
	pid_t joiner, pid = -1;
	bool in_v2;
	ssize_t n;

	if (pipe2(errp, O_CLOEXEC) < 0)
		return yun_err_errno(err, errno, "pipe");
	if (pipe2(pidp, O_CLOEXEC) < 0) {
		close(errp[0]);
		close(errp[1]);
		return yun_err_errno(err, errno, "pipe");
	}
	joiner = clone_into(0, c->cgroup_fd, &in_v2);
	if (joiner == 0) {
		close(errp[0]);
		close(pidp[0]);
		exec_joiner(c, req, in_v2, errp[1], pidp[1]);
	}
	close(errp[1]);
	close(pidp[1]);
	if (joiner < 0) {
		close(errp[0]);
		close(pidp[0]);
		return yun_err_errno(err, errno, "container %s: fork", c->id);
	}
	do
		n = read(pidp[0], &pid, sizeof(pid));
	while (n < 0 && errno == EINTR);
	close(pidp[0]);
	while (waitpid(joiner, NULL, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(pid)) {
		uint8_t buf[1 + sizeof(int32_t) + YUN_ERR_MSG_MAX];
		ssize_t m = read(errp[0], buf, sizeof(buf));

		close(errp[0]);
		if (m > 1 && buf[0] == SYNC_ERROR)
			return parse_error(buf + 1, (size_t)m - 1, err);
		return yun_err_set(err, EIO, "container %s: exec failed", c->id);
	}
	*pid_out = pid;
	*err_fd = errp[0];
	return 0;
}

int ct_container_exec_error(int err_fd, struct yun_err *err)
{
	uint8_t buf[1 + sizeof(int32_t) + YUN_ERR_MSG_MAX];
	ssize_t m;

	do
		m = read(err_fd, buf, sizeof(buf));
	while (m < 0 && errno == EINTR);
	if (m > 1 && buf[0] == SYNC_ERROR)
		return parse_error(buf + 1, (size_t)m - 1, err);
	return 0;
}

void ct_container_release(struct ct_container *c)
{
	close_fd(&c->sync_fd);
	close_fd(&c->cgroup_fd);
	seccomp_prog_free(&c->seccomp);
	close_fd(&c->console_master);
	for (int i = 0; i < 3; i++)
		close_fd(&c->stdio[i]);
	for (int i = 0; i < CT_NS_COUNT; i++)
		close_fd(&c->ns_fds[i]);
	if (c->veth_made) {
		ct_net_link_delete(c->cfg->net_arg, NULL);
		c->veth_made = false;
	}
}
