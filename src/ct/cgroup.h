/*
 * cgroup.h - resource limits for one container, on any host cgroup layout:
 * pure v1 (one hierarchy per controller), pure v2 (unified), or hybrid (v1
 * controllers plus a v2 mount holding few or no controllers, as on the test
 * machines). Each controller is driven where the host actually has it.
 *
 * A container's cgroup is created below the cgroup the calling process is
 * in (per hierarchy), under "yun/<name>", so it inherits whatever limits
 * the host put on Yun itself.
 */
#ifndef YUN_CT_CGROUP_H
#define YUN_CT_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/err.h"

enum cgroup_layout { CGROUP_V1, CGROUP_V2, CGROUP_HYBRID };

/* What the host offers; filled by cgroup_probe. */
struct cgroup_host;

/* Requested limits; 0 / negative means "not set" as documented per field. */
struct cgroup_limits {
	double cpus;            /* CPU quota in cores (0.5 = half a core); 0 = none */
	uint64_t cpu_shares;    /* relative weight, v1 shares scale 2..262144; 0 = default */
	char cpuset[64];        /* "0-1" etc; "" = inherit */
	uint64_t memory_bytes;  /* hard limit; 0 = none */
	int64_t swap_bytes;     /* swap on top of memory; -1 = unlimited, 0 = no swap */
	uint64_t pids;          /* max tasks; 0 = none */
	uint16_t blkio_weight;  /* 10..1000 (v1 blkio.weight / v2 io.weight 1..10000 scaled); 0 = default */
};

struct cgroup;

/*
 * Probe the host under `root` (normally /sys/fs/cgroup): the cgroup mounts
 * at or below root in /proc/self/mountinfo and the caller's cgroups from
 * /proc/self/cgroup. Containers get a directory in every hierarchy that
 * drives cpu, cpuacct, cpuset, memory, pids, blkio, freezer or devices, and
 * in the v2 mount when there is one (even without controllers: it gives
 * cgroup.kill and process tracking); named v1 hierarchies (name=systemd)
 * are left alone.
 */
int cgroup_probe(const char *root, struct cgroup_host **out, struct yun_err *err);

/*
 * What cgroup_probe reads, given explicitly: tests build a fake tree under
 * a temporary root and describe it here. mkdir_fn / rmdir_fn let a test
 * emulate cgroupfs on a plain directory (mkdir makes the control files,
 * rmdir removes them); they return 0 or -1 with errno set, like the calls.
 */
struct cgroup_probe_src {
	const char *mountinfo;   /* text of /proc/self/mountinfo */
	const char *self_cgroup; /* text of /proc/self/cgroup */
	unsigned ncpus;          /* host CPUs; 0 = ask the kernel */
	uint64_t mem_bytes;      /* host RAM; 0 = ask the kernel */
	int (*mkdir_fn)(const char *path); /* NULL = mkdir(path, 0755) */
	int (*rmdir_fn)(const char *path); /* NULL = rmdir(path) */
};
int cgroup_probe_from(const char *root, const struct cgroup_probe_src *src,
		      struct cgroup_host **out, struct yun_err *err);

void cgroup_host_free(struct cgroup_host *h);
enum cgroup_layout cgroup_host_layout(const struct cgroup_host *h);
/* "v1", "v2" or "hybrid". */
const char *cgroup_layout_name(enum cgroup_layout layout);
/*
 * Directory of the caller's cgroup for a v1 controller name ("memory",
 * "cpu", ...) or "unified" for the v2 mount; NULL when the host has none.
 * For a controller that lives in v2 this is the v2 directory.
 */
const char *cgroup_host_path(const struct cgroup_host *h, const char *controller);

/* Check limits against the host (range, controller present) without creating anything. */
int cgroup_limits_validate(const struct cgroup_host *h, const struct cgroup_limits *l,
			   struct yun_err *err);

/*
 * Create the container's cgroup(s) and write the limits; on error nothing is left.
 * `name`: 1..64 of [A-Za-z0-9_.-], not starting with '.'. The directories are
 * <caller's cgroup>/yun/<name> in each hierarchy ("yun" is made when missing
 * and kept). swap_bytes needs memory_bytes; a swap request on a host without
 * swap accounting is an error, while the default "no swap" (0) is then
 * skipped. EEXIST when the container's cgroup already exists.
 */
int cgroup_create(const struct cgroup_host *h, const char *name, const struct cgroup_limits *l,
		  struct cgroup **out, struct yun_err *err);

/*
 * cgroup_create without the limits, except the CPU set (a v1 cpuset takes
 * no task before it has CPUs and memory nodes); l is validated all the
 * same. For a caller that passes through the cgroup itself to fork the
 * container's first process there (cgroup_enter_self) and must not be
 * throttled, refused the fork by pids.max or picked by the OOM killer
 * meanwhile: it writes the limits with cgroup_set_limits once it left,
 * before that process runs anything.
 */
int cgroup_create_unlimited(const struct cgroup_host *h, const char *name,
			    const struct cgroup_limits *l, struct cgroup **out, struct yun_err *err);
int cgroup_set_limits(struct cgroup *cg, const struct cgroup_limits *l, struct yun_err *err);

/* Re-open an existing container cgroup (after a restart, for exec / ps). */
int cgroup_open(const struct cgroup_host *h, const char *name, struct cgroup **out,
		struct yun_err *err);

/*
 * Move `pid` into the container's cgroup(s) in every hierarchy. Slow: each
 * write of a pid to cgroup.procs takes the kernel's global threadgroup
 * lock, whose write side waits for an RCU grace period (milliseconds).
 */
int cgroup_enter(struct cgroup *cg, pid_t pid, struct yun_err *err);

/*
 * The fast way in: the calling *thread* moves itself into the container's
 * cgroup in every v1 hierarchy ("0" written to `tasks`, which the kernel
 * does without that lock), so that a child it forks starts there.
 * cgroup_leave_self moves it back to where cgroup_create / cgroup_open
 * found the caller. The v2 hierarchy has no such move for a domain
 * cgroup: fork with clone3(CLONE_INTO_CGROUP) on the directory
 * cgroup_path(cg, "unified") instead. On error, enter_self has moved the
 * thread back; leave_self tries every hierarchy and reports the first failure.
 */
int cgroup_enter_self(struct cgroup *cg, struct yun_err *err);
int cgroup_leave_self(struct cgroup *cg, struct yun_err *err);

/*
 * True once the kernel OOM-killed a task of this cgroup (memory.events /
 * memory.oom_control "oom_kill"; on v1 kernels before 4.13, which lack that
 * line, memory.failcnt > 0 is taken as a sign of it).
 */
bool cgroup_oom_killed(struct cgroup *cg);

/* Counters; 0 where the host has no such controller. */
struct cgroup_stats {
	uint64_t cpu_usage_ns;
	uint64_t memory_bytes;
	uint64_t pids;
};
int cgroup_stats(struct cgroup *cg, struct cgroup_stats *st, struct yun_err *err);

/*
 * SIGKILL every task, sub-cgroups included: v2 cgroup.kill when present,
 * else freeze (v1 freezer or v2 cgroup.freeze), kill, thaw; wait up to 5 s
 * until no task is left (ETIMEDOUT otherwise). Zombies count as gone.
 */
int cgroup_kill_all(struct cgroup *cg, struct yun_err *err);

/*
 * Remove the cgroup directories, sub-cgroups the container made included
 * (they must have no tasks; EBUSY is retried for up to a second), and free
 * cg, also when it fails.
 */
int cgroup_destroy(struct cgroup *cg, struct yun_err *err);
/* Free cg without touching the host. */
void cgroup_close(struct cgroup *cg);

/* The container's directory for a controller (as cgroup_host_path), or NULL. */
const char *cgroup_path(const struct cgroup *cg, const char *controller);

#endif
