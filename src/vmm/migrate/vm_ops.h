/*
 * vm_ops.h - live migration of yun-vmm's KVM VM: the engine's ops tables
 * (engine.h) built on struct vm, for both ends.
 *
 * Source: RAM regions are guest_mem's (anonymous unless the VM was restored
 * from a memory file); dirty pages come from the VM's one tracker (dirty.h,
 * consumer DIRTY_MIGRATE: KVM's log OR the device models' writes); pause is
 * vm_pause plus quiescing the devices (no disk read lands in guest RAM
 * after the last round); the state is vm_state_save's payload, the same a
 * snapshot's state file holds. Auto-converge: the engine's throttle is
 * vm_throttle (vCPUs kicked out of KVM_RUN every 10 ms and held back a
 * share of it, so a guest that runs without exits slows too); max_rounds
 * still forces stop-and-copy when that is not enough.
 *
 * Destination: the SETUP info is the source's CONF section (its
 * configuration), read with the caller's overrides (TAP names, disk paths:
 * vm_restore_opts). prepare() builds the VM from it on fresh zeroed RAM
 * (vm_create_from_memory without a file) and gives the engine guest RAM's
 * own host addresses: pages land in guest RAM as they arrive, no copy.
 * load_state() loads the state (the VM stays paused); start() resumes it
 * and starts its I/O thread; its vCPUs start when the caller runs vm_run.
 */
#ifndef YUN_VMM_MIGRATE_VM_OPS_H
#define YUN_VMM_MIGRATE_VM_OPS_H

#include <stdbool.h>

#include "../../lib/err.h"
#include "../config.h"
#include "../snapshot/conf.h"
#include "engine.h"

struct vm;
struct console;

/*
 * Migrate the running (or paused: then it stays paused throughout) VM to
 * addr. Returns migrate_source's result; st->outcome tells what became of
 * the guest: MIGRATE_DONE (the destination runs it; this VM is paused and
 * must never run again), MIGRATE_FAILED (it runs here as before),
 * MIGRATE_UNKNOWN (paused here, maybe running there).
 */
int vm_migrate_out(struct vm *vm, const char *addr, const struct migrate_params *p,
		   struct migrate_stats *st, struct yun_err *err);

/*
 * Receive a VM on listener lfd (migrate_listen): on success *vm is built
 * from the source's configuration (in cfg_out, config_init'd here, with
 * opts applied; config_free it after vm_destroy), its state loaded, not
 * paused, I/O started: ready for vm_run. On failure nothing was built (or
 * it was destroyed), cfg_out is freed and err says why.
 */
int vm_migrate_in(struct vm *vm, struct vmm_config *cfg_out, struct console *con, int lfd,
		  const struct migrate_params *p, const struct vm_restore_opts *opts,
		  struct migrate_stats *st, struct yun_err *err);

#endif
