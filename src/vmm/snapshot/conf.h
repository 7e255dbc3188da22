/*
 * conf.h - the CONF section of a snapshot's state file: the VM's
 * configuration as JSON (config_to_json), and on restore the configuration
 * parsed back with a clone's own identity applied. No KVM here, so the
 * parse is unit-tested and fuzzed on its own (tests/fuzz/snapshot_fuzz.c).
 */
#ifndef YUN_VMM_SNAPSHOT_CONF_H
#define YUN_VMM_SNAPSHOT_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../config.h"
#include "stream.h"

#define SNAP_CONF_VERSION 1

/* How a restored VM differs from the one saved; zero/NULL fields keep the saved value. */
struct vm_restore_opts {
	bool resume;                        /* vCPUs run at vm_run; else they stay parked */
	bool track_dirty;                   /* log dirty pages from now, for diff snapshots */
	uint64_t vsock_cid;                 /* a clone's own CID */
	const char *vsock_socket;           /* and its own host-side socket */
	const char *tap[CONFIG_MAX_NETS];   /* per card: another TAP */
	const char *mac[CONFIG_MAX_NETS];   /* per card: "52:54:..." or "random"; the card
					     * shows it after the load, with a configuration-
					     * change interrupt: the guest sees it when it asks */
	const char *disk[CONFIG_MAX_DISKS]; /* per disk: another image path */
	uint64_t t_request_ns;              /* CLOCK_MONOTONIC when the restore was asked for
					     * (PUT /snapshot/load), 0: not through the API;
					     * for the timing log only */
};

/* Write the CONF section for cfg. */
int snap_conf_save(struct snap_writer *w, const struct vmm_config *cfg, struct yun_err *err);

/*
 * Read the CONF section into cfg (config_init'd by the caller), apply opts
 * and validate the result (config_validate). -EINVAL with err naming the
 * problem; cfg may then hold part of the configuration (config_free it).
 */
int snap_conf_load(struct snap_reader *r, struct vmm_config *cfg,
		   const struct vm_restore_opts *opts, struct yun_err *err);

#endif
