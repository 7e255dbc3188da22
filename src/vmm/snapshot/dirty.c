/* dirty.c - see dirty.h. */
#include "dirty.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../vm.h"

static int dirty_alloc(struct vm *vm, struct yun_err *err)
{
	struct snap_dirty *d = calloc(1, sizeof(*d));

	if (!d)
		return yun_err_set(err, ENOMEM, "dirty pages: out of memory");
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		d->words[i] = (vm->mem.region[i].size / 4096 + 63) / 64;
		d->bitmap[i] = calloc(d->words[i], sizeof(uint64_t));
		if (!d->bitmap[i]) {
			snap_dirty_free(d);
			return yun_err_set(err, ENOMEM, "dirty pages: out of memory");
		}
	}
	vm->dirty = d;
	return 0;
}

/*
 * KVM's log of every slot (slot i = RAM region i), added to the bitmaps:
 * reading clears KVM's copy, ours stays until snap_dirty_clear, so a diff
 * that fails to be written loses nothing.
 */
static int dirty_fetch(struct vm *vm, struct yun_err *err)
{
	struct snap_dirty *d = vm->dirty;

	for (int i = 0; i < vm->mem.nr_regions; i++) {
		uint64_t *tmp = calloc(d->words[i], sizeof(uint64_t));
		struct kvm_dirty_log log = { .slot = (uint32_t)i, .dirty_bitmap = tmp };

		if (!tmp)
			return yun_err_set(err, ENOMEM, "dirty pages: out of memory");
		if (ioctl(vm->kvm.vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			free(tmp);
			return yun_err_errno(err, errno, "dirty pages: KVM_GET_DIRTY_LOG of slot %d",
					     i);
		}
		for (uint64_t w = 0; w < d->words[i]; w++)
			d->bitmap[i][w] |= tmp[w];
		free(tmp);
	}
	return 0;
}

void snap_dirty_clear(struct snap_dirty *d)
{
	for (int i = 0; i < 2; i++)
		if (d->bitmap[i])
			memset(d->bitmap[i], 0, d->words[i] * sizeof(uint64_t));
}

int snap_dirty_start(struct vm *vm, struct yun_err *err)
{
	int rc;

	if (!vm->dirty) {
		rc = dirty_alloc(vm, err);
		if (rc)
			return rc;
	}
	if (!vm->kvm.log_dirty) {
		/* A flags-only change of the same slots; KVM starts with an empty log. */
		vm->kvm.log_dirty = true;
		rc = kvm_map_memory(&vm->kvm, &vm->mem, err);
		if (rc) {
			vm->kvm.log_dirty = false;
			return rc;
		}
		return 0;
	}
	rc = dirty_fetch(vm, err); /* drop what was logged before now */
	snap_dirty_clear(vm->dirty);
	return rc;
}

int snap_dirty_collect(struct vm *vm, struct yun_err *err)
{
	if (!vm->kvm.log_dirty || !vm->dirty)
		return yun_err_set(err, ENOTSUP, "diff snapshot: no base to diff against (take a "
				   "full snapshot first, or restore with dirty=on)");
	if (vm->cfg->rng || vm->cfg->nr_disks || vm->cfg->balloon || vm->cfg->nr_nets ||
	    vm->cfg->vsock)
		return yun_err_set(err, ENOTSUP, "diff snapshot: pages written by virtio devices "
				   "are not tracked yet (needs the VMM page tracker); take a full "
				   "snapshot");
	return dirty_fetch(vm, err);
}

void snap_dirty_free(struct snap_dirty *d)
{
	if (!d)
		return;
	for (int i = 0; i < 2; i++)
		free(d->bitmap[i]);
	free(d);
}
