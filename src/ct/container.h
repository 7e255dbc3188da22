/*
 * container.h - making a container's first process, and joining it later.
 *
 * ct_container_create (in the supervisor, which becomes init's parent):
 *
 *   supervisor                          child (clone: NEWNS NEWPID NEWUTS NEWIPC
 *                                              [NEWNET] [NEWUSER])
 *   compile seccomp (or take it from the cache)
 *   enter the cgroup (v1: itself; v2: CLONE_INTO_CGROUP), clone, leave,
 *   write the limits
 *   write uid_map / gid_map
 *   veth pair, peer into the child's net ns
 *   idmapped rootfs mount (--userns)
 *   ---- GO [fd] ---------------------->  become root of the user ns
 *                                        unshare(NEWCGROUP): cgroup is now "/"
 *                                        hostname, lo/eth0 up
 *                                        mounts (mounts.h), pty in its devpts
 *   <---------------- PTY master fd ----
 *                                        pivot_root, masked/read-only paths
 *   <---------------- READY ------------  (or ERROR code+message, then exit)
 *   open /proc/<pid>/ns/... for exec
 *
 * ct_container_start sends START: the child drops capabilities, sets
 * no_new_privs, loads the seccomp profile and execs the command; the sync
 * socket is close-on-exec, so EOF means the exec worked and an ERROR
 * message carries why it did not.
 *
 * ct_container_exec starts one more process inside the same namespaces and
 * cgroup with the same restrictions.
 */
#ifndef YUN_CT_CONTAINER_H
#define YUN_CT_CONTAINER_H

#include <stdbool.h>
#include <sys/types.h>

#include "../lib/err.h"
#include "cgroup.h"
#include "config.h"
#include "seccomp.h"

enum ct_ns {
	CT_NS_USER,
	CT_NS_IPC,
	CT_NS_UTS,
	CT_NS_NET,
	CT_NS_CGROUP,
	CT_NS_PID,
	CT_NS_MNT,
	CT_NS_COUNT
};

struct ct_container {
	const struct ct_config *cfg; /* not owned; outlives the container */
	char id[65];
	pid_t pid;		 /* init in the host's pid namespace */
	int sync_fd;		 /* to the child until its exec; -1 after */
	int console_master;	 /* pty master (pty/socket console), else -1 */
	int stdio[3];		 /* stdio console: our ends of its pipes, else -1 */
	int ns_fds[CT_NS_COUNT]; /* -1 for namespaces shared with the host */
	bool userns;
	struct ct_idmap uid_map[CT_MAX_IDMAPS], gid_map[CT_MAX_IDMAPS];
	size_t n_uid_map, n_gid_map;
	struct cgroup *cg;	     /* not owned */
	int cgroup_fd;		     /* its v2 directory (CLONE_INTO_CGROUP), -1 when none */
	struct seccomp_prog seccomp; /* the profile, compiled once for init and execs */
	bool veth_made;
};

/*
 * Build the container for `cfg` (checked with ct_config_check_host) in
 * the state directory of `id`; userns_base is the host id of its root with
 * --userns auto. `cg` comes from cgroup_create_unlimited: the limits of
 * cfg are written once init is in it, before it runs anything. Returns
 * with the child waiting for START. On error nothing is left of the child
 * (the caller removes the cgroup and state dir).
 */
int ct_container_create(struct ct_container *c, const struct ct_config *cfg, const char *id,
			uint32_t userns_base, struct cgroup *cg, struct yun_err *err);

/* Let the child exec its command; -ENOENT / -EACCES when the exec failed. */
int ct_container_start(struct ct_container *c, struct yun_err *err);

struct ct_exec_req {
	char **argv;	 /* NULL-terminated */
	char **env;	 /* NULL-terminated "K=V" additions, may be NULL */
	const char *cwd; /* NULL: the container's */
	int stdio[3];	 /* descriptors for the process's 0, 1, 2 */
	bool tty;	 /* stdio[0] is a pty slave: make it the controlling tty */
};

/*
 * Start a process in the container's namespaces and cgroup; it is a child
 * of the caller (reap it with waitpid). *err_fd gets the read end of a
 * close-on-exec pipe: EOF when the exec worked, else "code message".
 */
int ct_container_exec(struct ct_container *c, const struct ct_exec_req *req, pid_t *pid,
		      int *err_fd, struct yun_err *err);

/*
 * After the exec'd process ended or exec'd: read its err_fd. Returns 0 when
 * the exec worked, else -code with the reason in err.
 */
int ct_container_exec_error(int err_fd, struct yun_err *err);

/* Open a new pty in the container's devpts (for exec -t). */
int ct_container_open_pty(struct ct_container *c, int *master, int *slave, struct yun_err *err);

/* Close our descriptors and delete the host end of a veth pair. */
void ct_container_release(struct ct_container *c);

/* The environment a container process gets: defaults, then `extra` (K=V overrides). */
char **ct_container_env(const struct ct_config *cfg, char **extra, bool tty);
void ct_container_free_env(char **env);

#endif
