/*
 * memory.h - guest RAM and the one bounds-checked way to reach it.
 *
 * RAM is a single MAP_NORESERVE anonymous mapping (so a 4 GiB guest that
 * touches 10 MiB costs ~10 MiB), shown to the guest as at most two regions:
 * [0, min(size, 3 GiB)) and, for bigger guests, [4 GiB, 4 GiB + rest), which
 * leaves the 32-bit hole (layout.h) for device MMIO.
 *
 * Every access to guest memory from the VMM, by boot code or device models,
 * goes through gm_ptr() (or gm_read/gm_write, built on it): the guest
 * controls addresses, so nothing may index host memory with a raw GPA.
 */
#ifndef YUN_VMM_MEMORY_H
#define YUN_VMM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/err.h"

#define GM_MAX_REGIONS 2

struct gm_region {
	uint64_t gpa;   /* guest-physical start */
	uint64_t size;  /* bytes */
	uint8_t *host;  /* host address of gpa */
};

struct guest_mem {
	struct gm_region region[GM_MAX_REGIONS];
	int nr_regions;
	uint64_t size;     /* total RAM in bytes */
	uint8_t *map;      /* the whole host mapping */
	uint64_t map_size;
	bool file_backed;  /* gm_init_file: pages not yet touched hold the file's bytes */
	/* Dirty tracking for live migration (gm_track_*); see below. */
	uint64_t *track;   /* two bitmaps (marked; reported by the last fetch), a bit per page
			    * of map; allocated once, freed by gm_free */
	bool tracking;     /* read and written atomically */
};

/* Smallest and largest RAM the VMM accepts, in MiB. */
#define GM_MIN_MIB 16ULL
#define GM_MAX_MIB (1024ULL * 1024) /* 1 TiB */

/* Map `size` bytes of RAM (a multiple of 1 MiB). */
int gm_init(struct guest_mem *gm, uint64_t size, struct yun_err *err);
/*
 * Map RAM from the memory file fd (a snapshot's) MAP_PRIVATE: pages are
 * read from the file when the guest first touches them and copied when it
 * writes them; the file is never changed and the cost does not grow with
 * `size`. The file must be a regular file of exactly `size` bytes.
 */
int gm_init_file(struct guest_mem *gm, uint64_t size, int fd, struct yun_err *err);
/*
 * Put the memory file fd (the same checks as gm_init_file) in place of RAM
 * from gm_init that nothing has touched yet, at the same host address
 * (mmap MAP_FIXED, MAP_PRIVATE): memory slots registered on that address
 * see the file's pages as the guest faults them in. On error RAM may be
 * unmapped (gm_free it).
 */
int gm_replace_with_file(struct guest_mem *gm, int fd, struct yun_err *err);
void gm_free(struct guest_mem *gm);

/*
 * Host pointer to [gpa, gpa + len), or NULL unless the whole range lies in
 * one RAM region. len == 0 is treated as 1. Overflow-safe.
 */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy to/from guest RAM; -EFAULT when the range is not wholly RAM. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

/*
 * Zero [gpa, gpa + len) (-EFAULT unless wholly RAM). Whole pages are given
 * back with MADV_DONTNEED instead of written, so zeroing a kernel's bss does
 * not make untouched guest RAM resident.
 */
int gm_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* True when [gpa, gpa + len) is wholly guest RAM. A check: nothing is marked dirty. */
bool gm_is_ram(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* End (exclusive) of the RAM region below 4 GiB. */
uint64_t gm_low_end(const struct guest_mem *gm);

/*
 * ---- Dirty tracking of the VMM's own writes (live migration) ----
 *
 * KVM's dirty log sees only what vCPUs write. Device models write guest
 * RAM too (used rings, block reads, net rx), always through gm_ptr(); while
 * tracking is on, gm_ptr() marks every page of the range it returns as
 * dirty. gm_ptr() cannot tell a read from a write, so reads are marked too:
 * conservative (a page may be sent once more than needed), never missing a
 * write made through the returned pointer during the call that got it.
 * The cost when tracking is off is one relaxed atomic load; when on, one
 * load per page plus an atomic OR when the bit was clear.
 *
 * The mark comes before the write it covers, so a fetch may take the mark
 * while the write is still under way and the page be copied before the
 * write lands. So every mark is reported by two consecutive fetches: a
 * write made through a pointer obtained before fetch N is seen by fetch
 * N + 1, provided it has completed by then. Device writes are memcpy's of
 * microseconds against migration rounds of milliseconds, and the VM is
 * paused (devices quiesced) before the last fetch, which therefore sees
 * every write. A device that keeps a pointer from gm_ptr() and writes
 * through it later (an io_uring read completing into guest RAM) must call
 * gm_track_mark() for the range when the write has completed (the
 * virtqueue's used ring, mapped once at queue set-up, is one: queue.c).
 */

/* Start tracking with every page clean. -ENOMEM when the bitmap cannot be had. */
int gm_track_start(struct guest_mem *gm, struct yun_err *err);

/* Stop marking (the bitmap is kept until gm_free: a racing gm_ptr may still touch it). */
void gm_track_stop(struct guest_mem *gm);

/*
 * OR into bitmap the pages of RAM region `region` marked since the previous
 * fetch or the one before it (bit i = page region.gpa + i * 4096; 64-bit
 * words, LSB first, as KVM_GET_DIRTY_LOG). -EINVAL for a bad region or when
 * tracking never started. One fetching thread at a time (marking threads
 * may run concurrently).
 */
int gm_track_fetch(struct guest_mem *gm, int region, uint64_t *bitmap);

/* Mark [gpa, gpa + len) dirty (ignored when tracking is off or the range is not RAM). */
void gm_track_mark(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/*
 * The same for host addresses gm_ptr() returned (a device keeps iovecs, not
 * GPAs); ignored when tracking is off or the range is not within RAM's mapping.
 */
void gm_track_mark_host(const struct guest_mem *gm, const void *host, uint64_t len);

#endif
