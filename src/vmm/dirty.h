/*
 * dirty.h - the one dirty-page tracker of a VM: which guest pages changed,
 * for every consumer that asks (diff snapshots, live migration).
 *
 * Two sources are ORed: KVM's dirty log (memory slots with
 * KVM_MEM_LOG_DIRTY_PAGES, read and cleared by KVM_GET_DIRTY_LOG) for what
 * the vCPUs write, and memory.h's gm_track_* for what the VMM's device
 * models write (rings, block reads, received frames). Both are read-and-
 * clear and so may have one reader only: this module. Every time it reads
 * them it ORs what it got into the pending bitmap of every active consumer,
 * so one consumer's fetch never takes pages from another: a migration's
 * rounds and a diff snapshot's "since the last snapshot" run on one VM.
 *
 * RAM slot i is guest_mem region i (kvm_map_memory), at the same gpa, size
 * and host address. Logging is switched on by re-registering the slots
 * with the flag (KVM write-protects them and starts with an empty log) and
 * off again when the last consumer stops. Bitmaps: bit i = page
 * region.gpa + i * 4096, 64-bit words, least significant bit first (as
 * KVM_GET_DIRTY_LOG).
 *
 * Thread-safe (one lock); marking by device threads (gm_ptr) is lock-free.
 */
#ifndef YUN_VMM_DIRTY_H
#define YUN_VMM_DIRTY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/err.h"
#include "memory.h"

enum dirty_user {
	DIRTY_SNAPSHOT,  /* pages changed since the last snapshot (diff snapshots) */
	DIRTY_MIGRATE,   /* pages changed since the last round (live migration) */
	DIRTY_USERS,
};

struct dirty {
	pthread_mutex_t lock;
	int vm_fd;
	struct guest_mem *gm;
	bool logging;                   /* the slots carry KVM_MEM_LOG_DIRTY_PAGES */
	bool active[DIRTY_USERS];
	uint64_t *pending[DIRTY_USERS][GM_MAX_REGIONS];
	uint64_t words[GM_MAX_REGIONS]; /* of each region's bitmap */
	uint64_t *scratch;              /* one region's bitmap as KVM fills it */
};

/*
 * Set up the tracker of vm_fd's RAM gm (nothing logged yet). logging: the
 * slots were created with KVM_MEM_LOG_DIRTY_PAGES already (kvm->log_dirty).
 */
int dirty_init(struct dirty *d, int vm_fd, struct guest_mem *gm, bool logging,
	       struct yun_err *err);
void dirty_free(struct dirty *d);

/*
 * Start consumer u (or restart it): from now on its pending bitmap gets
 * every page written. Turns KVM's log and gm_track on if no consumer had;
 * what was logged before is given to the other consumers, not to u.
 */
int dirty_start(struct dirty *d, enum dirty_user u, struct yun_err *err);

/* Stop consumer u; with no consumer left, logging and gm_track go off. */
void dirty_stop(struct dirty *d, enum dirty_user u);

bool dirty_active(struct dirty *d, enum dirty_user u);

/*
 * Read both sources for region (all regions when region < 0) into every
 * active consumer's pending bitmap. -ENOTSUP when u is not active.
 */
int dirty_collect(struct dirty *d, enum dirty_user u, int region, struct yun_err *err);

/*
 * Collect region, OR u's pending pages of it into bitmap and forget them
 * (a migration round).
 */
int dirty_fetch(struct dirty *d, enum dirty_user u, int region, uint64_t *bitmap,
		struct yun_err *err);

/* u's pending bitmap of region (after dirty_collect); valid until dirty_free. */
static inline bool dirty_test(const struct dirty *d, enum dirty_user u, int region,
			      uint64_t page)
{
	return (d->pending[u][region][page / 64] >> (page % 64)) & 1;
}

/* Forget u's pending pages (a diff snapshot holding them is written). */
void dirty_clear(struct dirty *d, enum dirty_user u);

#endif
