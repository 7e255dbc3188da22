/*
 * ctdrv.h - container instances on yun-ct: what is there (observe), and
 * the idempotent steps that change it (start, stop, remove).
 *
 * The container's name is the instance id, under yund's own yun-ct state
 * root ($YUN_CT_ROOT = <run>/ct, set by main). The instance's process is
 * an attached `yun-ct run --config <dir>/ct.json` in its own session: it
 * relays the container's console into <dir>/console.log for as long as
 * the container runs (yun-ct keeps no log of its own) and outlives yund.
 * The console is a pty (yun-ct's console=pty): `yun-ct attach` clients
 * (GET .../console) type into it; the run client's own stdin is
 * /dev/null, whose end a pty ignores.
 * The config has keep=true, so an ended container stays, with its exit
 * status, until ctdrv_remove: yund learns how every run ended, even one
 * that ended while yund was down.
 */
#ifndef YUND_COMPUTE_CTDRV_H
#define YUND_COMPUTE_CTDRV_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "../../lib/err.h"

enum ctdrv_phase {
	CTDRV_NONE,	/* no container by that name */
	CTDRV_CREATING, /* yun-ct is building it */
	CTDRV_RUNNING,
	CTDRV_STOPPING,
	CTDRV_EXITED, /* ended; exit_status and exit_reason say how */
	CTDRV_DEAD,   /* its supervisor is gone without a word */
};

struct ctdrv_obs {
	enum ctdrv_phase phase;
	pid_t pid; /* init, on the host */
	int exit_status;
	char exit_reason[128];
};

/* yun-ct's state root for yund's containers ($YUN_CT_ROOT): <root>/<id>/state.json. */
const char *ctdrv_state_root(void);

/* The yun-ct binary (its supervisors are forks of it: how a live one is told from a reused pid). */
void ctdrv_set_binary(const char *yun_ct);

void ctdrv_observe(const char *id, struct ctdrv_obs *o);

struct ctdrv_spec {
	const char *id;
	const char *hostname;
	const char *image_dir;
	double cpus; /* CPU time limit in CPUs */
	int64_t memory_mib;
	const char *command; /* JSON array text, or NULL for the image's */
	const char *env;     /* JSON array text, or NULL */
	const char *netns;   /* a network namespace path, or NULL: --net none */
	const char *mounts;  /* yun-ct "mounts" as JSON array text, or NULL (volumes) */
	const char *config_path;
	const char *log_path;
	const char *yun_ct;
};

/* Write the config and start the instance's yun-ct process (*client). */
int ctdrv_start(const struct ctdrv_spec *spec, pid_t *client, struct yun_err *err);

/* Ask the supervisor to stop: the stop signal now, KILL after timeout_s. Returns at once. */
int ctdrv_stop(const char *id, int64_t timeout_s, struct yun_err *err);

/* Kill (if needed) and remove everything of the container; 0 when there is none. */
int ctdrv_remove(const char *id, struct yun_err *err);

#endif
