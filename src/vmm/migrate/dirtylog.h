/*
 * dirtylog.h - KVM's dirty page log for live migration: which guest pages
 * the vCPUs wrote since the last look.
 *
 * The VM's RAM slots are the ones kvm_map_memory() creates: slot i is
 * guest_mem region i, at the same gpa, size and host address. Start
 * re-registers each slot with KVM_MEM_LOG_DIRTY_PAGES (KVM write-protects
 * the slot and records the first write to each page); fetch is
 * KVM_GET_DIRTY_LOG, which returns the pages written since the previous
 * fetch and re-arms them; stop re-registers the slots without the flag.
 *
 * Only vCPU writes are logged. Writes by the VMM itself (device models)
 * are tracked by memory.h's gm_track_*; a migration's dirty_fetch ORs both.
 */
#ifndef YUN_VMM_MIGRATE_DIRTYLOG_H
#define YUN_VMM_MIGRATE_DIRTYLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../memory.h"

struct dirtylog {
	int vm_fd;
	const struct guest_mem *gm;
	uint64_t *scratch;       /* one region's bitmap, as KVM fills it */
	bool on;
};

/* Turn logging on for every RAM slot of vm_fd (slots 0..gm->nr_regions-1). */
int dirtylog_start(struct dirtylog *dl, int vm_fd, const struct guest_mem *gm,
		   struct yun_err *err);

/*
 * OR into bitmap the pages of region `region` written by vCPUs since start
 * or the previous fetch of that region (bit i: page region.gpa + i * 4096,
 * 64-bit words, LSB first).
 */
int dirtylog_fetch(struct dirtylog *dl, int region, uint64_t *bitmap, struct yun_err *err);

/* Turn logging off again (slots keep their memory); frees the scratch bitmap. */
void dirtylog_stop(struct dirtylog *dl);

#endif
