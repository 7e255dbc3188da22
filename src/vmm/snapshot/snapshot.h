/*
 * snapshot.h - a paused VM to a pair of files and back: the state file
 * (everything but RAM, in the section format of stream.h inside the
 * checksummed container of snap_file_write) and the memory file (guest RAM
 * as one sparse file, region after region as memory.h lays them out).
 *
 * State file sections, in order:
 *   CONF        the VM's configuration as JSON (config_to_json)
 *   devices     vm_devices_save's sections (snapshot/devices.h)
 *   KVM         in-kernel PIC master/slave, IOAPIC and PIT
 *   VCPU x n    each vCPU (vcpu_save)
 *   CLCK        kvmclock
 * A file of another container version, a bad checksum, a truncation, an
 * unknown section version or a state that does not fit its configuration
 * is refused with a message naming the file.
 *
 * Diff snapshots: vm_snapshot_save(..., diff=true) writes a memory file of
 * the full size holding only the pages written since the previous snapshot
 * of this VM (or since it was restored with track_dirty), everything else
 * a hole; its state file is complete. The pages come from the VM's one
 * dirty tracker (dirty.h, consumer DIRTY_SNAPSHOT): the vCPUs' writes from
 * KVM's log and the device models' from gm_track, so VMs with virtio
 * devices get diffs too, and a live migration may run alongside. To restore it, first apply the diff
 * to a copy of the base memory file with snap_mem_merge (yun-vmm
 * --merge-snapshot BASE DIFF), which copies the diff's data extents
 * (SEEK_DATA/SEEK_HOLE) over BASE; then restore the diff's state file with
 * the merged memory file. Chains of diffs apply in order.
 */
#ifndef YUN_VMM_SNAPSHOT_SNAPSHOT_H
#define YUN_VMM_SNAPSHOT_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../config.h"
#include "conf.h"
#include "stream.h"

struct vm;
struct console;

/*
 * Save the paused VM (vm_pause) to state_path and mem_path, both written
 * through a temporary file, fsync'd and renamed: the memory file first, so
 * a state file on disk always has its memory. Full: every non-zero page of
 * RAM, zero pages left as holes. diff: see above; the VM must have
 * dirty logging on (a previous snapshot turned it on, or a restore with
 * track_dirty). After either, the next diff is relative to this snapshot:
 * from a full snapshot on, the VM's memory slots log dirty pages (a small
 * cost on the guest's first write to each page after each snapshot). The
 * VM stays paused and may be resumed.
 */
int vm_snapshot_save(struct vm *vm, const char *state_path, const char *mem_path, bool diff,
		     struct yun_err *err);

/*
 * Build *vm from a snapshot: read and check the state file, parse its
 * configuration into cfg_out (config_init'd here; the caller config_free's
 * it after vm_destroy), apply opts, build the VM from that configuration
 * without a kernel, map RAM from mem_path copy-on-write (MAP_PRIVATE: the
 * file is never written, so many processes can restore the same snapshot
 * as independent clones, and the time taken does not grow with RAM), then
 * load the KVM, vCPU and device state. The VM is then ready for vm_run
 * (paused unless opts->resume). On error nothing runs, the VM is destroyed,
 * cfg_out is freed, and the message names the file and the problem.
 */
int vm_restore(struct vm *vm, struct vmm_config *cfg_out, struct console *con,
	       const char *state_path, const char *mem_path, const struct vm_restore_opts *opts,
	       struct yun_err *err);

/*
 * The paused VM's state as the state file holds it (CONF, devices, KVM,
 * VCPU x n, CLCK: everything but RAM), appended to w. A live migration
 * sends the same payload.
 */
int vm_state_save(struct vm *vm, struct snap_writer *w, struct yun_err *err);

/*
 * Load what follows CONF in such a payload (r is past CONF) into a VM built
 * from that configuration (vm_create_from_memory): pauses it first (it
 * stays paused), then devices, KVM, vCPUs, clock; every byte must be used.
 */
int vm_state_load(struct vm *vm, struct snap_reader *r, struct yun_err *err);

/*
 * Apply diff memory file `diff` onto memory file `base` in place: every
 * data extent of diff (SEEK_DATA/SEEK_HOLE) is copied to the same offset
 * of base; the sizes must be equal. base is fsync'd.
 */
int snap_mem_merge(const char *base, const char *diff, struct yun_err *err);

#endif
