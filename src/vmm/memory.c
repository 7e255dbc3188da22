/* memory.c - see memory.h. */
#include "memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "layout.h"

static int gm_check_size(uint64_t size, struct yun_err *err)
{
	if (size < GM_MIN_MIB << 20 || size > GM_MAX_MIB << 20 || (size & ((1ULL << 20) - 1)))
		return yun_err_set(err, EINVAL,
				   "memory %llu MiB: must be a whole number of MiB from %llu to %llu",
				   (unsigned long long)(size >> 20), GM_MIN_MIB, GM_MAX_MIB);
	return 0;
}

/* The regions of RAM mapped at `map` (see memory.h). */
static void gm_set_regions(struct guest_mem *gm, void *map, uint64_t size)
{
	uint64_t low;

	gm->map = map;
	gm->map_size = size;
	gm->size = size;
	low = size < LAYOUT_LOW_RAM_MAX ? size : LAYOUT_LOW_RAM_MAX;
	gm->region[0] = (struct gm_region){ .gpa = 0, .size = low, .host = map };
	gm->nr_regions = 1;
	if (size > low) {
		gm->region[1] = (struct gm_region){
			.gpa = LAYOUT_HIGH_RAM, .size = size - low, .host = (uint8_t *)map + low
		};
		gm->nr_regions = 2;
	}
}

/*
 * Map RAM private and unreserved: anonymous (fd < 0) or from a file. Guest
 * RAM is not worth a core dump, and must not be inherited by children.
 */
static int gm_map(struct guest_mem *gm, void *at, uint64_t size, int fd, const char *what,
		  struct yun_err *err)
{
	int flags = MAP_PRIVATE | MAP_NORESERVE | (fd < 0 ? MAP_ANONYMOUS : 0) |
		    (at ? MAP_FIXED : 0);
	void *map = mmap(at, size, PROT_READ | PROT_WRITE, flags, fd, 0);

	if (map == MAP_FAILED)
		return yun_err_errno(err, errno, "%s: mmap of %llu MiB", what,
				     (unsigned long long)(size >> 20));
	madvise(map, size, MADV_DONTDUMP);
	madvise(map, size, MADV_DONTFORK);
	gm_set_regions(gm, map, size);
	gm->file_backed = fd >= 0;
	return 0;
}

int gm_init(struct guest_mem *gm, uint64_t size, struct yun_err *err)
{
	memset(gm, 0, sizeof(*gm));
	if (gm_check_size(size, err))
		return -EINVAL;
	return gm_map(gm, NULL, size, -1, "memory", err);
}

/* fd is a regular file of exactly size bytes. */
static int gm_check_file(int fd, uint64_t size, struct yun_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return yun_err_errno(err, errno, "memory file");
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
		return yun_err_set(err, EINVAL, "memory file: %llu bytes, but the guest has %llu "
				   "MiB (%llu bytes)", (unsigned long long)st.st_size,
				   (unsigned long long)(size >> 20), (unsigned long long)size);
	return 0;
}

int gm_init_file(struct guest_mem *gm, uint64_t size, int fd, struct yun_err *err)
{
	int rc;

	memset(gm, 0, sizeof(*gm));
	rc = gm_check_size(size, err);
	if (!rc)
		rc = gm_check_file(fd, size, err);
	if (rc)
		return rc;
	/* Private: the guest's writes are copy-on-write, the file is never changed. */
	return gm_map(gm, NULL, size, fd, "memory file", err);
}

int gm_replace_with_file(struct guest_mem *gm, int fd, struct yun_err *err)
{
	int rc;

	if (!gm->map || gm->file_backed || gm->track)
		return yun_err_set(err, EINVAL, "memory file: RAM is not a fresh reservation");
	rc = gm_check_file(fd, gm->size, err);
	if (rc)
		return rc;
	/* Same address, same size: the regions (and KVM's slots on them) stay valid. */
	return gm_map(gm, gm->map, gm->size, fd, "memory file", err);
}

void gm_free(struct guest_mem *gm)
{
	free(gm->track);
	if (gm->map)
		munmap(gm->map, gm->map_size);
	memset(gm, 0, sizeof(*gm));
}

static void track_mark_host(const struct guest_mem *gm, const uint8_t *host, uint64_t len);

/* Host address of [gpa, gpa + len) if it lies wholly in one region; nothing marked. */
static uint8_t *gm_lookup(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (int i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->region[i];

		/* Written so that no sum can overflow: gpa - r->gpa < r->size first. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t *p = gm_lookup(gm, gpa, len);

	if (p && __atomic_load_n(&gm->tracking, __ATOMIC_RELAXED))
		track_mark_host(gm, p, len ? len : 1);
	return p;
}

/* A check only: the pages are not marked for the dirty tracker. */
bool gm_is_ram(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	return gm_lookup(gm, gpa, len) != NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int gm_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	const uint64_t page = 4096;
	uint8_t *p = gm_ptr(gm, gpa, len);
	uint64_t head, body;

	if (!p)
		return -EFAULT;
	head = (page - ((uintptr_t)p & (page - 1))) & (page - 1);
	if (head >= len) {
		memset(p, 0, len);
		return 0;
	}
	body = (len - head) & ~(page - 1);
	memset(p, 0, head);
	if (body && madvise(p + head, body, MADV_DONTNEED) != 0)
		memset(p + head, 0, body); /* cannot fail on our own anonymous mapping */
	memset(p + head + body, 0, len - head - body);
	return 0;
}

uint64_t gm_low_end(const struct guest_mem *gm)
{
	return gm->region[0].gpa + gm->region[0].size;
}

/* ---- dirty tracking for live migration (see memory.h) -------------------- */

#define GM_PAGE_SHIFT 12

static void track_mark_host(const struct guest_mem *gm, const uint8_t *host, uint64_t len)
{
	uint64_t first = (uint64_t)(host - gm->map) >> GM_PAGE_SHIFT;
	uint64_t last = ((uint64_t)(host - gm->map) + len - 1) >> GM_PAGE_SHIFT;
	uint64_t *bits = gm->track;

	for (uint64_t pg = first; pg <= last; pg++) {
		uint64_t *w = &bits[pg / 64], m = 1ULL << (pg % 64);

		/* Most marks hit pages already dirty: look before the locked OR. */
		if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & m))
			__atomic_fetch_or(w, m, __ATOMIC_RELAXED);
	}
}

static size_t track_words(const struct guest_mem *gm)
{
	return (size_t)((gm->map_size >> GM_PAGE_SHIFT) + 63) / 64;
}

int gm_track_start(struct guest_mem *gm, struct yun_err *err)
{
	size_t words = track_words(gm);

	if (!gm->track) {
		gm->track = calloc(2 * words, sizeof(uint64_t));
		if (!gm->track)
			return yun_err_set(err, ENOMEM, "memory: dirty bitmaps of %zu KiB",
					   2 * words * 8 / 1024);
	} else {
		for (size_t i = 0; i < 2 * words; i++)
			__atomic_store_n(&gm->track[i], 0, __ATOMIC_RELAXED);
	}
	/* Release: a thread that sees tracking on also sees the bitmap. */
	__atomic_store_n(&gm->tracking, true, __ATOMIC_RELEASE);
	return 0;
}

void gm_track_stop(struct guest_mem *gm)
{
	__atomic_store_n(&gm->tracking, false, __ATOMIC_RELEASE);
}

int gm_track_fetch(struct guest_mem *gm, int region, uint64_t *bitmap)
{
	const struct gm_region *r;
	uint64_t first, pages, *cur, *prev;

	if (region < 0 || region >= gm->nr_regions || !gm->track)
		return -EINVAL;
	cur = gm->track;
	prev = gm->track + track_words(gm); /* only the fetching thread touches it */
	r = &gm->region[region];
	first = (uint64_t)(r->host - gm->map) >> GM_PAGE_SHIFT;
	pages = r->size >> GM_PAGE_SHIFT;
	if (first % 64 == 0) {
		uint64_t words = (pages + 63) / 64;

		for (uint64_t i = 0; i < words; i++) {
			uint64_t keep = 0, v, *pw = &prev[first / 64 + i];

			/* The last word may hold the next region's first pages: leave those. */
			if (i == words - 1 && pages % 64)
				keep = ~((1ULL << (pages % 64)) - 1);
			v = __atomic_fetch_and(&cur[first / 64 + i], keep, __ATOMIC_ACQ_REL) & ~keep;
			bitmap[i] |= v | (*pw & ~keep);
			*pw = (*pw & keep) | v;
		}
		return 0;
	}
	for (uint64_t i = 0; i < pages; i++) {
		uint64_t pg = first + i, m = 1ULL << (pg % 64);
		bool now = __atomic_fetch_and(&cur[pg / 64], ~m, __ATOMIC_ACQ_REL) & m;

		if (now || (prev[pg / 64] & m))
			bitmap[i / 64] |= 1ULL << (i % 64);
		prev[pg / 64] = now ? prev[pg / 64] | m : prev[pg / 64] & ~m;
	}
	return 0;
}

void gm_track_mark(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	/* gm_ptr marks the range when tracking is on; that is all this needs. */
	(void)gm_ptr(gm, gpa, len);
}

void gm_track_mark_host(const struct guest_mem *gm, const void *host, uint64_t len)
{
	const uint8_t *p = host;

	if (!len || !__atomic_load_n(&gm->tracking, __ATOMIC_ACQUIRE) || p < gm->map ||
	    (uint64_t)(p - gm->map) >= gm->map_size || len > gm->map_size - (uint64_t)(p - gm->map))
		return;
	track_mark_host(gm, p, len);
}
