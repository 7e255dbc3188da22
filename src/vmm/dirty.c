/* dirty.c - see dirty.h. */
#include "dirty.h"

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

int dirty_init(struct dirty *d, int vm_fd, struct guest_mem *gm, bool logging,
	       struct yun_err *err)
{
	uint64_t max = 0;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	d->vm_fd = vm_fd;
	d->gm = gm;
	d->logging = logging;
	for (int i = 0; i < gm->nr_regions; i++) {
		d->words[i] = ((gm->region[i].size >> 12) + 63) / 64;
		if (d->words[i] > max)
			max = d->words[i];
		for (int u = 0; u < DIRTY_USERS; u++) {
			d->pending[u][i] = calloc(d->words[i], sizeof(uint64_t));
			if (!d->pending[u][i])
				goto oom;
		}
	}
	d->scratch = calloc(max ? max : 1, sizeof(uint64_t));
	if (d->scratch)
		return 0;
oom:
	dirty_free(d);
	return yun_err_set(err, ENOMEM, "dirty pages: bitmaps of %llu KiB",
			   (unsigned long long)(max * 8 * (1 + DIRTY_USERS) / 1024));
}

void dirty_free(struct dirty *d)
{
	for (int u = 0; u < DIRTY_USERS; u++)
		for (int i = 0; i < GM_MAX_REGIONS; i++) {
			free(d->pending[u][i]);
			d->pending[u][i] = NULL;
		}
	free(d->scratch);
	d->scratch = NULL;
	pthread_mutex_destroy(&d->lock);
}

static bool any_active(const struct dirty *d)
{
	for (int u = 0; u < DIRTY_USERS; u++)
		if (d->active[u])
			return true;
	return false;
}

/* Both sources of one region into scratch, then into every active consumer. Lock held. */
static int collect_region(struct dirty *d, int region, struct yun_err *err)
{
	struct kvm_dirty_log log = { .slot = (uint32_t)region, .dirty_bitmap = d->scratch };
	uint64_t words = d->words[region];

	memset(d->scratch, 0, words * 8);
	if (d->logging && ioctl(d->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return yun_err_errno(err, errno, "dirty pages: KVM_GET_DIRTY_LOG of slot %d",
				     region);
	if (d->gm->tracking)
		gm_track_fetch(d->gm, region, d->scratch);
	for (int u = 0; u < DIRTY_USERS; u++)
		if (d->active[u])
			for (uint64_t w = 0; w < words; w++)
				d->pending[u][region][w] |= d->scratch[w];
	return 0;
}

static int collect(struct dirty *d, int region, struct yun_err *err)
{
	int rc = 0;

	if (region >= 0)
		return collect_region(d, region, err);
	for (int i = 0; !rc && i < d->gm->nr_regions; i++)
		rc = collect_region(d, i, err);
	return rc;
}

static void clear_user(struct dirty *d, enum dirty_user u)
{
	for (int i = 0; i < d->gm->nr_regions; i++)
		memset(d->pending[u][i], 0, d->words[i] * 8);
}

int dirty_start(struct dirty *d, enum dirty_user u, struct yun_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (any_active(d)) {
		/* The others keep what was logged so far; u starts from now. */
		rc = collect(d, -1, err);
	} else {
		rc = gm_track_start(d->gm, err);
		for (int i = 0; !rc && i < d->gm->nr_regions; i++) {
			if (d->logging)
				break;
			rc = set_slot(d->vm_fd, d->gm, i, KVM_MEM_LOG_DIRTY_PAGES);
			if (rc < 0) {
				for (int j = 0; j < i; j++)
					set_slot(d->vm_fd, d->gm, j, 0);
				gm_track_stop(d->gm);
				rc = yun_err_errno(err, -rc, "dirty pages: KVM_MEM_LOG_DIRTY_PAGES on "
						   "slot %d (0x%llx, %llu MiB)", i,
						   (unsigned long long)d->gm->region[i].gpa,
						   (unsigned long long)(d->gm->region[i].size >> 20));
			} else if (i == d->gm->nr_regions - 1) {
				d->logging = true;
			}
		}
		/* Slots that logged from their creation: drop what they logged before now. */
		if (!rc)
			rc = collect(d, -1, err);
	}
	if (!rc) {
		clear_user(d, u);
		d->active[u] = true;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void dirty_stop(struct dirty *d, enum dirty_user u)
{
	pthread_mutex_lock(&d->lock);
	d->active[u] = false;
	if (!any_active(d)) {
		gm_track_stop(d->gm);
		if (d->logging)
			for (int i = 0; i < d->gm->nr_regions; i++)
				set_slot(d->vm_fd, d->gm, i, 0); /* failing leaves logging on: harmless */
		d->logging = false;
	}
	pthread_mutex_unlock(&d->lock);
}

bool dirty_active(struct dirty *d, enum dirty_user u)
{
	bool on;

	pthread_mutex_lock(&d->lock);
	on = d->active[u];
	pthread_mutex_unlock(&d->lock);
	return on;
}

int dirty_collect(struct dirty *d, enum dirty_user u, int region, struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	if (!d->active[u] || region >= d->gm->nr_regions)
		rc = yun_err_set(err, ENOTSUP, "dirty pages: not tracking");
	else
		rc = collect(d, region, err);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int dirty_fetch(struct dirty *d, enum dirty_user u, int region, uint64_t *bitmap,
		struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	if (!d->active[u] || region < 0 || region >= d->gm->nr_regions) {
		rc = yun_err_set(err, EINVAL, "dirty pages: region %d not tracked", region);
	} else {
		rc = collect_region(d, region, err);
		for (uint64_t w = 0; !rc && w < d->words[region]; w++) {
			bitmap[w] |= d->pending[u][region][w];
			d->pending[u][region][w] = 0;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void dirty_clear(struct dirty *d, enum dirty_user u)
{
	pthread_mutex_lock(&d->lock);
	clear_user(d, u);
	pthread_mutex_unlock(&d->lock);
}
