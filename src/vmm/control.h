/*
 * control.h - the controller: owns yun-vmm's configuration and its current
 * VM, and is the one place that checks which operation is allowed when.
 *
 * States, and what moves the controller between them:
 *
 *   Not started -> Running         InstanceStart, or a snapshot load with resume_vm
 *   Not started -> Paused          a snapshot load (a failed start or load stays Not started)
 *   Running <-> Paused             pause, resume
 *   Running, Paused -> Shutting down   the Shutdown action: Ctrl-Alt-Del, then a deadline
 *   Running, Paused, Shutting down -> Stopped   the VM stops (guest power-off or reset,
 *                                  a signal, the deadline's hard stop); yun-vmm exits
 *   Running -> Running             a guest reset with --reboot (a new VM)
 *   Running, Paused -> Stopped     a live migration completed (the guest runs elsewhere)
 *   Running -> Paused              a live migration whose outcome is unknown
 *   Not started -> Running         --migrate-listen: the VM arrived and runs
 *
 * Configuration (machine, boot source, drives, network interfaces, vsock,
 * balloon, metrics file) may change only while Not started. ctl_start()
 * asks the main thread (the one in ctl_run) to build the VM and waits for
 * the answer, so a bad kernel path is the caller's error and the state
 * stays Not started. Run-time operations (pause, resume, balloon target,
 * drive and rate-limit updates, shutdown, snapshots) need a VM. A guest
 * reset with --reboot builds a new VM in the same state (Running).
 *
 * While Not started with nothing to boot from the command line, the main
 * thread keeps a VM pre-built (vm_prebuild) for the machine
 * configuration's vCPUs and memory, and rebuilds it when they change; a
 * snapshot load of that shape takes it over, so the load is little more
 * than mapping the memory file and loading state. A start or a load that
 * comes while it is being built waits for it. A booted VM does not use it
 * (it is freed when ctl_run returns).
 *
 * Every operation returns 0 or a negative errno with `err` filled: the
 * message names the field and the reason, without the request line (the
 * API puts "PUT /drives/rootfs: " in front). -ENOSYS means the operation is
 * not available in this build; any other code is the caller's mistake or
 * the wrong state, and nothing changed (live migration says more below).
 *
 * Threads: any thread may call the operations (the API thread does); they
 * serialise on the controller's lock, which is held while the VM is
 * touched, so the VM cannot be destroyed under them. ctl_run runs on the
 * main thread.
 */
#ifndef YUN_VMM_CONTROL_H
#define YUN_VMM_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/err.h"
#include "config.h"
#include "console.h"
#include "ratelimit.h"

#define CTL_VERSION "0.1.0"

/* Exit status when a graceful shutdown passed its deadline and the VM was stopped hard. */
#define CTL_EXIT_HARD_STOP 4
#define CTL_EXIT_HOST_ERROR 1

#define CTL_ID_MAX 64         /* drive_id, iface_id */
#define CTL_SHUTDOWN_MAX_MS 3600000

enum ctl_state {
	CTL_NOT_STARTED,
	CTL_STARTING,   /* the main thread is building the VM */
	CTL_RUNNING,
	CTL_PAUSED,
	CTL_STOPPING,   /* shutting down: waiting for the guest, then a hard stop */
	CTL_STOPPED,
};

struct ctl;

/* Firecracker's machine-config; has_* say which fields a PATCH gives. */
struct ctl_machine {
	uint64_t vcpu_count, mem_size_mib;
	bool smt, track_dirty_pages;
	bool has_vcpu_count, has_mem_size_mib, has_smt, has_track_dirty_pages;
};

struct ctl_drive {
	const char *drive_id;
	const char *path_on_host;   /* NULL in a PATCH: unchanged */
	bool is_root_device, is_read_only;
	struct ratelimit_update limits;  /* from Firecracker's rate_limiter; unset buckets kept */
};

struct ctl_net {
	const char *iface_id;
	const char *host_dev_name;  /* PUT only */
	const char *guest_mac;      /* NULL: random */
	struct ratelimit_update rx, tx;
};

/*
 * cfg is the parsed command line, owned by the caller, which must outlive
 * the controller; the controller edits it (API configuration) and builds
 * VMs from it. con is the console every VM gets.
 */
int ctl_create(struct ctl **out, struct vmm_config *cfg, struct console *con,
	       struct yun_err *err);
void ctl_destroy(struct ctl *c);

/*
 * The main thread's loop: start at once if the configuration names a
 * kernel (the command line), else wait for ctl_start(); run the VM until it
 * stops (again after a guest reset with --reboot). Returns yun-vmm's exit
 * status, logging why the VM stopped as yun-vmm always did.
 */
int ctl_run(struct ctl *c);

/* A termination signal: stop the VM (true), or false when there is none to stop. */
bool ctl_stop_by_signal(struct ctl *c, int sig);

enum ctl_state ctl_state(struct ctl *c);
/* Firecracker's names: "Not started", "Running", "Paused"; and "Shutting down", "Stopped". */
const char *ctl_state_name(enum ctl_state s);

/* ---- configuration (Not started only) ---- */
int ctl_set_machine(struct ctl *c, const struct ctl_machine *m, bool patch, struct yun_err *err);
int ctl_set_boot_source(struct ctl *c, const char *kernel, const char *boot_args,
			const char *initrd, struct yun_err *err);
int ctl_put_drive(struct ctl *c, const struct ctl_drive *d, struct yun_err *err);
int ctl_put_net(struct ctl *c, const struct ctl_net *n, struct yun_err *err);
int ctl_set_vsock(struct ctl *c, uint64_t guest_cid, const char *uds_path, struct yun_err *err);
int ctl_set_balloon(struct ctl *c, uint64_t amount_mib, bool deflate_on_oom,
		    uint64_t stats_polling_interval_s, struct yun_err *err);
int ctl_set_metrics_path(struct ctl *c, const char *path, struct yun_err *err);

/* The whole configuration as Firecracker's GET /vm/config shows it (new reference). */
json_t *ctl_describe(struct ctl *c);

/* ---- life cycle ---- */
int ctl_start(struct ctl *c, struct yun_err *err);
int ctl_pause(struct ctl *c, struct yun_err *err);
int ctl_resume(struct ctl *c, struct yun_err *err);
int ctl_send_ctrl_alt_del(struct ctl *c, struct yun_err *err);
/*
 * Graceful shutdown: Ctrl-Alt-Del to the guest (resumed first if paused),
 * then, if the VM is still there after timeout_ms, a hard stop (exit
 * status CTL_EXIT_HARD_STOP). Returns at once; the state is Shutting down.
 */
int ctl_shutdown(struct ctl *c, uint64_t timeout_ms, struct yun_err *err);

/* ---- run-time changes (before the start they edit the configuration) ---- */
int ctl_patch_drive(struct ctl *c, const struct ctl_drive *d, struct yun_err *err);
int ctl_patch_net(struct ctl *c, const struct ctl_net *n, struct yun_err *err);
int ctl_balloon_target(struct ctl *c, uint64_t amount_mib, struct yun_err *err);
int ctl_balloon_stats_interval(struct ctl *c, uint64_t seconds, struct yun_err *err);
/* Firecracker's BalloonStats (new reference in *out). */
int ctl_balloon_stats(struct ctl *c, json_t **out, struct yun_err *err);

/* ---- metrics ---- */
int ctl_metrics(struct ctl *c, json_t **out, struct yun_err *err);
/* Append one metrics line to the metrics file (FlushMetrics). */
int ctl_flush_metrics(struct ctl *c, struct yun_err *err);

/* ---- snapshots and migration ---- */
/* Save the paused VM (snapshot/snapshot.h); it stays paused. */
int ctl_snapshot_create(struct ctl *c, const char *snapshot_path, const char *mem_path,
			bool diff, struct yun_err *err);
/*
 * Not started only: the main thread builds the VM from the files (as
 * ctl_start does from a kernel); the snapshot's configuration is in force
 * from then on. Paused unless resume_vm.
 */
int ctl_snapshot_load(struct ctl *c, const char *snapshot_path, const char *mem_path,
		      bool track_dirty_pages, bool resume_vm, struct yun_err *err);
#define CTL_MIGRATE_MAX_ROUNDS 60 /* the engine keeps per-round figures for this many */

/* A migration request (PUT /migrate); zero numbers take the engine's defaults. */
struct ctl_migrate_req {
	const char *destination;  /* HOST:PORT of a yun-vmm --migrate-listen */
	const char *token;        /* the per-migration secret the destination was given */
	unsigned downtime_ms;     /* stop-and-copy budget; 0: 50 */
	unsigned max_rounds;      /* dirty rounds before stop-and-copy is forced; 0: 30 */
	unsigned timeout_ms;      /* every network wait; 0: the engine's */
};

enum ctl_migrate_result {
	CTL_MIGRATED,          /* the destination runs the guest; this VM stops after the reply */
	CTL_MIGRATE_FAILED,    /* the guest runs here as before (or stays paused if it was) */
	CTL_MIGRATE_UNKNOWN,   /* GO went out, no answer: paused here, maybe running there */
};

/*
 * Live migration of the VM (Running or Paused) to req->destination
 * (migrate/vm_ops.h); blocks until it ends, holding the controller. 0 with
 * *result CTL_MIGRATED and *stats (new reference: rounds, bytes,
 * downtime_ms, total_ms, outcome, ...); the VM is stopped (yun-vmm exits
 * with status 0) once ctl_migrated_reply_sent() says the answer is out.
 * Negative with err: a bad request or state (nothing happened, *result
 * CTL_MIGRATE_FAILED), the migration failed (CTL_MIGRATE_FAILED: the VM is
 * in the state it was in) or CTL_MIGRATE_UNKNOWN (state Paused; the
 * operator must find out whether the destination runs the guest before
 * resuming or stopping this one). *stats is set whenever the engine ran.
 */
int ctl_migrate(struct ctl *c, const struct ctl_migrate_req *req, json_t **stats,
		enum ctl_migrate_result *result, struct yun_err *err);

/* The API's answer to a completed migration is out: stop the VM (exit status 0). */
void ctl_migrated_reply_sent(struct ctl *c);

/*
 * Destination of a live migration (yun-vmm --migrate-listen): the first VM
 * is received on listener lfd (taken over: closed by the controller) with
 * token, and opts' overrides of the source's configuration, instead of
 * booted. A failure makes ctl_run return CTL_EXIT_HOST_ERROR.
 */
void ctl_set_migrate_in(struct ctl *c, int lfd, const char *token,
			const struct vmm_restore *opts);

#endif
