/*
 * dirty.h - which guest pages changed since the last snapshot, for diff
 * snapshots.
 *
 * The guest's writes come from KVM's dirty log (memory slots with
 * KVM_MEM_LOG_DIRTY_PAGES, read and cleared with KVM_GET_DIRTY_LOG). Pages
 * written by the VMM's device models (virtqueue rings, received buffers)
 * are not in KVM's log; until the VMM-side page tracker (gm_track_*, from
 * the live migration work) is merged, snap_dirty_collect refuses VMs with
 * virtio devices rather than write a diff that could miss pages.
 *
 * Minimal on purpose: src/vmm/migrate/dirtylog.[ch] (live migration) does
 * the same with more; the two are to be merged into one.
 */
#ifndef YUN_VMM_SNAPSHOT_DIRTY_H
#define YUN_VMM_SNAPSHOT_DIRTY_H

#include <stdint.h>

#include "../../lib/err.h"

struct vm;

/* One bit per 4 KiB page of each RAM region (memory.h), 64 pages a word. */
struct snap_dirty {
	uint64_t *bitmap[2];
	uint64_t words[2];
};

/*
 * Start logging (if the VM's slots do not log yet) and forget what was
 * logged so far: the next collect reports pages written from now on.
 * Sets vm->dirty.
 */
int snap_dirty_start(struct vm *vm, struct yun_err *err);

/*
 * Add the pages written since start or the last collect to
 * vm->dirty->bitmap (KVM's log is cleared, the bitmap is not). -ENOTSUP
 * when the VM was not logging.
 */
int snap_dirty_collect(struct vm *vm, struct yun_err *err);

static inline int snap_dirty_test(const struct snap_dirty *d, int region, uint64_t page)
{
	return (int)((d->bitmap[region][page / 64] >> (page % 64)) & 1);
}

/* Forget the collected pages (once a diff holding them is written). */
void snap_dirty_clear(struct snap_dirty *d);

void snap_dirty_free(struct snap_dirty *d);

#endif
