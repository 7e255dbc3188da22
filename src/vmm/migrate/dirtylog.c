/* dirtylog.c - see dirtylog.h. */
#include "dirtylog.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static int set_slot(int vm_fd, const struct guest_mem *gm, int i, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = (uint32_t)i,
		.flags = flags,
		.guest_phys_addr = gm->region[i].gpa,
		.memory_size = gm->region[i].size,
		.userspace_addr = (uintptr_t)gm->region[i].host,
	};

	return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

static uint64_t region_words(const struct guest_mem *gm, int i)
{
	return ((gm->region[i].size >> 12) + 63) / 64;
}

int dirtylog_start(struct dirtylog *dl, int vm_fd, const struct guest_mem *gm,
		   struct yun_err *err)
{
	uint64_t words = 0;
	int rc;

	memset(dl, 0, sizeof(*dl));
	dl->vm_fd = vm_fd;
	dl->gm = gm;
	for (int i = 0; i < gm->nr_regions; i++)
		if (region_words(gm, i) > words)
			words = region_words(gm, i);
	dl->scratch = calloc(words, sizeof(uint64_t));
	if (!dl->scratch)
		return yun_err_set(err, ENOMEM, "kvm dirty log: bitmap of %llu KiB",
				   (unsigned long long)(words * 8 / 1024));
	for (int i = 0; i < gm->nr_regions; i++) {
		rc = set_slot(vm_fd, gm, i, KVM_MEM_LOG_DIRTY_PAGES);
		if (rc < 0) {
			for (int j = 0; j < i; j++)
				set_slot(vm_fd, gm, j, 0);
			free(dl->scratch);
			dl->scratch = NULL;
			return yun_err_errno(err, -rc,
					     "kvm dirty log: KVM_MEM_LOG_DIRTY_PAGES on slot %d "
					     "(0x%llx, %llu MiB)", i,
					     (unsigned long long)gm->region[i].gpa,
					     (unsigned long long)(gm->region[i].size >> 20));
		}
	}
	dl->on = true;
	return 0;
}

int dirtylog_fetch(struct dirtylog *dl, int region, uint64_t *bitmap, struct yun_err *err)
{
	struct kvm_dirty_log log = { .slot = (uint32_t)region };
	uint64_t words;

	if (!dl->on || region < 0 || region >= dl->gm->nr_regions)
		return yun_err_set(err, EINVAL, "kvm dirty log: region %d not logged", region);
	words = region_words(dl->gm, region);
	memset(dl->scratch, 0, words * 8);
	log.dirty_bitmap = dl->scratch;
	if (ioctl(dl->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return yun_err_errno(err, errno, "kvm dirty log: KVM_GET_DIRTY_LOG slot %d",
				     region);
	for (uint64_t i = 0; i < words; i++)
		bitmap[i] |= dl->scratch[i];
	return 0;
}

void dirtylog_stop(struct dirtylog *dl)
{
	if (dl->on)
		for (int i = 0; i < dl->gm->nr_regions; i++)
			set_slot(dl->vm_fd, dl->gm, i, 0); /* failing leaves logging on: harmless */
	dl->on = false;
	free(dl->scratch);
	dl->scratch = NULL;
}
