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

/* Probe the host under `root` (normally /sys/fs/cgroup; tests use a fake tree). */
int cgroup_probe(const char *root, struct cgroup_host **out, struct yun_err *err);
void cgroup_host_free(struct cgroup_host *h);
enum cgroup_layout cgroup_host_layout(const struct cgroup_host *h);

/* Check limits against the host (range, controller present) without creating anything. */
int cgroup_limits_validate(const struct cgroup_host *h, const struct cgroup_limits *l,
			   struct yun_err *err);

/* Create the container's cgroup(s) and write the limits; on error nothing is left. */
int cgroup_create(const struct cgroup_host *h, const char *name, const struct cgroup_limits *l,
		  struct cgroup **out, struct yun_err *err);

/* Re-open an existing container cgroup (after a restart, for exec / ps). */
int cgroup_open(const struct cgroup_host *h, const char *name, struct cgroup **out,
		struct yun_err *err);

/* Move `pid` into the container's cgroup(s) in every hierarchy. */
int cgroup_enter(struct cgroup *cg, pid_t pid, struct yun_err *err);

/* True once the kernel OOM-killed a task of this cgroup (memory.events / memory.oom_control). */
bool cgroup_oom_killed(struct cgroup *cg);

struct cgroup_stats {
	uint64_t cpu_usage_ns;
	uint64_t memory_bytes;
	uint64_t pids;
};
int cgroup_stats(struct cgroup *cg, struct cgroup_stats *st, struct yun_err *err);

/* SIGKILL every task (freezer first where available), wait until empty. */
int cgroup_kill_all(struct cgroup *cg, struct yun_err *err);

/* Remove the cgroup directories (they must be empty) and free cg. */
int cgroup_destroy(struct cgroup *cg, struct yun_err *err);
/* Free cg without touching the host. */
void cgroup_close(struct cgroup *cg);

#endif
