/*
 * cgroup.h - the jail's cgroup: one directory per hierarchy, limits
 * written before the VMM joins, removed after it exits.
 *
 * cgroup v1 (and hybrid hosts, whose controllers are v1): for each
 * controller named by a setting, plus cpu and memory always, the directory
 * /sys/fs/cgroup/<controller>/yun-vmm/<id>. cgroup v2 (/sys/fs/cgroup is
 * cgroup2): /sys/fs/cgroup/yun-vmm/<id>, with the controllers enabled in
 * the parents' cgroup.subtree_control. The shared yun-vmm/ parent stays.
 */
#ifndef YUN_JAILER_CGROUP_H
#define YUN_JAILER_CGROUP_H

#include <limits.h>
#include <stdbool.h>

#include "../lib/err.h"

#define JCG_MAX_SETTINGS 16
#define JCG_MAX_DIRS 12

/* One --cgroup setting: file name (e.g. memory.limit_in_bytes) and value. */
struct jcg_setting {
	char key[64];
	char value[128];
};

struct jail_cgroup {
	bool v2;
	char dir[JCG_MAX_DIRS][PATH_MAX]; /* created by us, removed by jcg_remove */
	unsigned nr_dirs;
};

/*
 * Check one "key=value" setting: key <controller>.<name> in [a-z0-9_.],
 * value printable without '/' or newline. `what` names it in messages.
 */
int jcg_parse_setting(const char *text, struct jcg_setting *out, struct yun_err *err);

/*
 * Create the cgroup of jail `id` and write the settings; on failure
 * nothing is left behind. `root` is normally /sys/fs/cgroup (tests may
 * point elsewhere).
 */
int jcg_create(struct jail_cgroup *cg, const char *root, const char *id,
	       const struct jcg_setting *set, unsigned nr, struct yun_err *err);

/* Move the calling process into every directory of the cgroup. */
int jcg_join(const struct jail_cgroup *cg, struct yun_err *err);

/* Remove the directories (the processes in them must be gone); best effort. */
int jcg_remove(struct jail_cgroup *cg, struct yun_err *err);

#endif
