/*
 * balloon.c - virtio-balloon: guest pages given back with MADV_DONTNEED; see
 * balloon.h.
 *
 * How much one inflate or deflate request may cost us. queue.c bounds a
 * chain by descriptors (the queue size, or 1024 in an indirect table) and
 * bytes (4 GiB), not by what those bytes mean here: a 4 GiB chain is 2^30
 * PFNs, each a lookup and perhaps an madvise() on the I/O thread every
 * other device shares. So a request is acted on for its first
 * BALLOON_MAX_PFNS (1024) PFNs only: one 4 KiB page of them. Linux,
 * FreeBSD and NetBSD send at most 256 per buffer (Linux:
 * VIRTIO_BALLOON_ARRAY_PFNS_MAX), a driver keeping its array in one page
 * (tests/guest's) 1024. The rest are counted in excess_pfns and left
 * alone, and the request completes as usual. A driver sending more loses
 * nothing it could rely on: inflating is advice (a page we did not take
 * back just stays backed) and a deflated page faults back in when touched.
 * Checking the length costs the same whatever the chain's size.
 *
 * A PFN outside guest RAM (past the end, in the PCI hole, 2^32 - 1) names
 * no page of ours: it is skipped and counted in bad_pfns, never turned into
 * a host address. The first ignored PFN of the device's life is logged at
 * info level, later ones at debug, so a guest cannot flood the log.
 */
#include "balloon.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../../lib/log.h"

#define CFG_NUM_PAGES 0
#define CFG_ACTUAL    4

#define STATS_MAX_ENTRIES 64 /* a report has 10 tags today; more are ignored */

struct balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

_Static_assert(sizeof(struct balloon_stat) == 10, "virtio_balloon_stat is 10 bytes");

/* ---- reading a request's device-readable bytes in order -------------------- */

struct cursor {
	const struct vq_req *req;
	unsigned iov;   /* current buffer */
	uint64_t off;   /* offset in it */
};

/* Copy the next len bytes (the caller checked that read_len has them). */
static void cursor_read(struct cursor *c, void *dst, uint64_t len)
{
	uint8_t *d = dst;

	while (len && c->iov < c->req->nr_read) {
		const struct iovec *v = &c->req->iov[c->iov];
		uint64_t n = v->iov_len - c->off;

		if (n > len)
			n = len;
		memcpy(d, (uint8_t *)v->iov_base + c->off, n);
		d += n;
		len -= n;
		c->off += n;
		if (c->off == v->iov_len) {
			c->iov++;
			c->off = 0;
		}
	}
}

/* ---- configuration space --------------------------------------------------- */

static void balloon_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct balloon *b = opaque;
	uint32_t cfg[2] = {
		__atomic_load_n(&b->num_pages, __ATOMIC_ACQUIRE),
		__atomic_load_n(&b->actual, __ATOMIC_RELAXED),
	};

	memcpy(data, (uint8_t *)cfg + off, len); /* bounds checked by the transport */
}

static void balloon_config_write(void *opaque, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct balloon *b = opaque;
	uint32_t cfg[2] = { 0, __atomic_load_n(&b->actual, __ATOMIC_RELAXED) };
	uint32_t target = __atomic_load_n(&b->num_pages, __ATOMIC_ACQUIRE);

	/* Only `actual` is the driver's to write; num_pages is read-only to it. */
	if (off + len <= CFG_ACTUAL)
		return;
	if (off < CFG_ACTUAL) {
		data += CFG_ACTUAL - off;
		len -= CFG_ACTUAL - off;
		off = CFG_ACTUAL;
	}
	memcpy((uint8_t *)cfg + off, data, len);
	__atomic_store_n(&b->actual, cfg[1], __ATOMIC_RELAXED);

	if (b->timer_fd >= 0 && !b->timer_armed && target && cfg[1] >= target) {
		struct itimerspec its = {
			.it_value = { .tv_sec = b->deflate_after_ms / 1000,
				      .tv_nsec = (long)(b->deflate_after_ms % 1000) * 1000000L },
		};

		if (timerfd_settime(b->timer_fd, 0, &its, NULL) == 0)
			b->timer_armed = true;
		else
			yun_warn("virtio-balloon: deflate timer: %s", strerror(errno));
	}
}

/* ---- inflate and deflate ----------------------------------------------------- */

/* Act on a run of contiguous host pages [p, p + len). */
static void pages_release(struct balloon *b, uint8_t *p, uint64_t len, bool inflate)
{
	if (!p || !len)
		return;
	if (inflate) {
		/* Cannot fail on our own private anonymous mapping with aligned ranges. */
		if (madvise(p, len, MADV_DONTNEED) != 0)
			yun_debug("virtio-balloon: MADV_DONTNEED: %s", strerror(errno));
	} else if (b->must_tell_host) {
		/* The host backs the pages now, before the guest uses them. */
		if (madvise(p, len, MADV_POPULATE_WRITE) != 0)
			yun_warn("virtio-balloon: cannot back %llu KiB the guest took back: %s",
				 (unsigned long long)(len >> 10), strerror(errno));
	}
}

/*
 * One request's PFN array: its first BALLOON_MAX_PFNS entries, see the top
 * of the file. Each PFN is copied out of guest memory, then checked, then
 * used: the guest cannot change it in between. -EINVAL only for a length
 * that is not whole PFNs.
 */
static int balloon_pfns(struct balloon *b, const struct vq_req *req, bool inflate)
{
	struct cursor c = { .req = req };
	uint8_t *run = NULL;
	uint64_t run_len = 0, n = 0, bad = 0, excess = 0;
	uint64_t nr = req->read_len / sizeof(uint32_t);
	uint32_t first_bad = 0;
	bool first;

	if (req->read_len % sizeof(uint32_t))
		return -EINVAL;
	if (nr > BALLOON_MAX_PFNS) {
		excess = nr - BALLOON_MAX_PFNS;
		nr = BALLOON_MAX_PFNS;
	}
	for (uint64_t i = 0; i < nr; i++) {
		uint32_t pfn;
		uint8_t *p;

		cursor_read(&c, &pfn, sizeof(pfn));
		p = gm_ptr(b->gm, (uint64_t)pfn << BALLOON_PAGE_SHIFT, BALLOON_PAGE_SIZE);
		if (!p) {
			if (!bad++)
				first_bad = pfn;
			continue;
		}
		if (run && p == run + run_len) {
			run_len += BALLOON_PAGE_SIZE;
		} else {
			pages_release(b, run, run_len, inflate);
			run = p;
			run_len = BALLOON_PAGE_SIZE;
		}
		n++;
	}
	pages_release(b, run, run_len, inflate);
	pthread_mutex_lock(&b->lock);
	first = (bad || excess) && !b->bad_pfns && !b->excess_pfns;
	if (inflate)
		b->inflated_pages += n;
	else
		b->deflated_pages += n;
	b->bad_pfns += bad;
	b->excess_pfns += excess;
	pthread_mutex_unlock(&b->lock);
	if (bad || excess)
		yun_log(first ? YUN_LOG_INFO : YUN_LOG_DEBUG,
			"virtio-balloon: %s request: %llu PFNs not guest RAM (first 0x%x), "
			"%llu past the first %u ignored",
			inflate ? "inflate" : "deflate", (unsigned long long)bad, first_bad,
			(unsigned long long)excess, BALLOON_MAX_PFNS);
	return 0;
}

/* ---- statistics ---------------------------------------------------------------- */

static void stats_parse(struct balloon *b, const struct vq_req *req)
{
	struct cursor c = { .req = req };
	struct balloon_stats s;
	uint64_t nr = req->read_len / sizeof(struct balloon_stat);

	memset(&s, 0, sizeof(s));
	if (nr > STATS_MAX_ENTRIES)
		nr = STATS_MAX_ENTRIES;
	for (uint64_t i = 0; i < nr; i++) {
		struct balloon_stat e;

		cursor_read(&c, &e, sizeof(e));
		if (e.tag < BALLOON_S_NR) {
			s.val[e.tag] = e.val;
			s.present |= 1u << e.tag;
		}
	}
	pthread_mutex_lock(&b->lock);
	s.reports = b->stats.reports + 1;
	b->stats = s;
	pthread_mutex_unlock(&b->lock);
	yun_info("virtio-balloon: stats report %llu: free %llu total %llu available %llu",
		 (unsigned long long)s.reports, (unsigned long long)s.val[BALLOON_S_MEMFREE],
		 (unsigned long long)s.val[BALLOON_S_MEMTOT],
		 (unsigned long long)s.val[BALLOON_S_AVAIL]);
}

/*
 * The driver posts one buffer and expects it back only when the host wants
 * fresh figures (5.5.6.3): keep it. A second buffer (a confused driver)
 * sends the first back.
 */
static int stats_notify(struct balloon *b, struct vq *vq)
{
	int rc;

	while ((rc = vq_pop(vq, &b->req)) > 0) {
		stats_parse(b, &b->req);
		if (b->stats_held)
			vq_push(vq, b->stats_head, 0);
		b->stats_held = true;
		b->stats_head = b->req.head;
	}
	if (rc < 0)
		return rc;
	if (__atomic_exchange_n(&b->stats_wanted, false, __ATOMIC_ACQ_REL) && b->stats_held) {
		vq_push(vq, b->stats_head, 0);
		b->stats_held = false;
	}
	return 0;
}

static int balloon_queue_notify(void *opaque, unsigned q, struct vq *vq)
{
	struct balloon *b = opaque;
	int rc;

	if (q == BALLOON_STATSQ)
		return stats_notify(b, vq);
	while ((rc = vq_pop(vq, &b->req)) > 0) {
		rc = balloon_pfns(b, &b->req, q == BALLOON_INFLATEQ);
		if (rc < 0)
			return rc; /* the transport sets NEEDS_RESET */
		vq_push(vq, b->req.head, 0);
	}
	return rc;
}

static void balloon_activate(void *opaque, uint64_t features)
{
	struct balloon *b = opaque;

	b->must_tell_host = features & (1ULL << VIRTIO_BALLOON_F_MUST_TELL_HOST);
}

/* The driver's balloon is gone with it: the pages are the guest's again. */
static void balloon_reset(void *opaque)
{
	struct balloon *b = opaque;

	__atomic_store_n(&b->actual, 0, __ATOMIC_RELAXED);
	b->must_tell_host = false;
	b->stats_held = false;
}

const struct virtio_device_ops balloon_ops = {
	.name = "virtio-balloon",
	.device_type = VIRTIO_ID_BALLOON,
	.num_queues = 3,
	.queue_max_size = BALLOON_QUEUE_SIZE,
	.features = (1ULL << VIRTIO_BALLOON_F_MUST_TELL_HOST) | (1ULL << VIRTIO_BALLOON_F_STATS_VQ),
	.config_size = BALLOON_CONFIG_SIZE,
	.class_code = 0x050000, /* "RAM memory controller", as QEMU's virtio-balloon-pci */
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.queue_notify = balloon_queue_notify,
	.activate = balloon_activate,
	.reset = balloon_reset,
};

/* ---- the host's side ------------------------------------------------------------ */

int balloon_init(struct balloon *b, const struct guest_mem *gm, const struct balloon_config *cfg,
		 const struct balloon_host *host, struct yun_err *err)
{
	memset(b, 0, sizeof(*b));
	b->gm = gm;
	b->host = *host;
	b->num_pages = cfg->target_pages;
	b->deflate_after_ms = cfg->deflate_after_ms;
	b->timer_fd = -1;
	if (cfg->deflate_after_ms) {
		b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (b->timer_fd < 0)
			return yun_err_errno(err, errno, "virtio-balloon: timerfd");
	}
	pthread_mutex_init(&b->lock, NULL);
	return 0;
}

void balloon_destroy(struct balloon *b)
{
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	b->timer_fd = -1;
	pthread_mutex_destroy(&b->lock);
}

void balloon_set_target(struct balloon *b, uint32_t pages)
{
	__atomic_store_n(&b->num_pages, pages, __ATOMIC_RELEASE);
	if (b->host.config_changed)
		b->host.config_changed(b->host.ctx);
}

uint32_t balloon_target(struct balloon *b)
{
	return __atomic_load_n(&b->num_pages, __ATOMIC_ACQUIRE);
}

uint32_t balloon_actual(struct balloon *b)
{
	return __atomic_load_n(&b->actual, __ATOMIC_RELAXED);
}

void balloon_get_stats(struct balloon *b, struct balloon_stats *out)
{
	pthread_mutex_lock(&b->lock);
	*out = b->stats;
	pthread_mutex_unlock(&b->lock);
}

void balloon_request_stats(struct balloon *b)
{
	__atomic_store_n(&b->stats_wanted, true, __ATOMIC_RELEASE);
	if (b->host.kick)
		b->host.kick(b->host.ctx, BALLOON_STATSQ);
}

void balloon_timer_fired(struct balloon *b)
{
	uint64_t expirations;

	if (read(b->timer_fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return; /* spurious wake-up: EAGAIN */
	yun_info("virtio-balloon: deflate_after_ms %u elapsed: target 0 pages",
		 b->deflate_after_ms);
	balloon_set_target(b, 0);
}

/* ---- the control API (Firecracker's /balloon) ------------------------------------ */

#define PAGES_PER_MIB (1u << (20 - BALLOON_PAGE_SHIFT))

int balloon_set_amount_mib(struct balloon *b, uint64_t mib, struct yun_err *err)
{
	uint64_t ram_mib = b->gm ? b->gm->size >> 20 : 0;

	if (mib > ram_mib || mib * PAGES_PER_MIB > UINT32_MAX)
		return yun_err_set(err, ERANGE,
				   "balloon: amount_mib %llu is more than the guest's %llu MiB of "
				   "memory", (unsigned long long)mib, (unsigned long long)ram_mib);
	balloon_set_target(b, (uint32_t)(mib * PAGES_PER_MIB));
	return 0;
}

json_t *balloon_config_json(struct balloon *b)
{
	return json_pack("{s:I, s:b, s:i}", "amount_mib",
			 (json_int_t)(balloon_target(b) / PAGES_PER_MIB), "deflate_on_oom", 0,
			 "stats_polling_interval_s", 0);
}

/* Firecracker's names for the statistics tags, by tag. */
static const char *const stat_names[BALLOON_S_NR] = {
	[BALLOON_S_SWAP_IN] = "swap_in",
	[BALLOON_S_SWAP_OUT] = "swap_out",
	[BALLOON_S_MAJFLT] = "major_faults",
	[BALLOON_S_MINFLT] = "minor_faults",
	[BALLOON_S_MEMFREE] = "free_memory",
	[BALLOON_S_MEMTOT] = "total_memory",
	[BALLOON_S_AVAIL] = "available_memory",
	[BALLOON_S_CACHES] = "disk_caches",
	[BALLOON_S_HTLB_PGALLOC] = "hugetlb_allocations",
	[BALLOON_S_HTLB_PGFAIL] = "hugetlb_failures",
};

json_t *balloon_statistics_json(struct balloon *b)
{
	uint32_t target = balloon_target(b), actual = balloon_actual(b);
	struct balloon_stats s;
	json_t *o;

	balloon_get_stats(b, &s);
	o = json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)target, "actual_pages",
		      (json_int_t)actual, "target_mib", (json_int_t)(target / PAGES_PER_MIB),
		      "actual_mib", (json_int_t)(actual / PAGES_PER_MIB));
	for (unsigned t = 0; o && t < BALLOON_S_NR; t++) {
		/* json_int_t is signed: a counter past 2^63 reads as the largest. */
		json_int_t v = s.val[t] > INT64_MAX ? INT64_MAX : (json_int_t)s.val[t];

		if ((s.present & (1u << t)) &&
		    json_object_set_new(o, stat_names[t], json_integer(v)) < 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

/* ---- snapshot ------------------------------------------------------------- */

/* Milliseconds left on the deflate timer, 0 when it is not running. */
static uint64_t timer_left_ms(const struct balloon *b)
{
	struct itimerspec its;

	if (b->timer_fd < 0 || !b->timer_armed || timerfd_gettime(b->timer_fd, &its) < 0)
		return 0;
	return (uint64_t)its.it_value.tv_sec * 1000 + (uint64_t)its.it_value.tv_nsec / 1000000 + 1;
}

void balloon_save(struct balloon *b, struct snap_writer *w)
{
	uint64_t counts[4];

	snap_put_u32(w, balloon_target(b));
	snap_put_u32(w, balloon_actual(b));
	snap_put_bool(w, b->stats_held);
	snap_put_u16(w, b->stats_head);
	snap_put_bool(w, __atomic_load_n(&b->stats_wanted, __ATOMIC_ACQUIRE));
	snap_put_bool(w, b->timer_armed);
	snap_put_u64(w, timer_left_ms(b));
	pthread_mutex_lock(&b->lock);
	counts[0] = b->inflated_pages;
	counts[1] = b->deflated_pages;
	counts[2] = b->bad_pfns;
	counts[3] = b->excess_pfns;
	snap_put_u64s(w, b->stats.val, BALLOON_S_NR);
	snap_put_u32(w, b->stats.present);
	snap_put_u64(w, b->stats.reports);
	snap_put_u64s(w, counts, 4);
	pthread_mutex_unlock(&b->lock);
}

int balloon_load(struct balloon *b, struct snap_reader *r)
{
	uint32_t target = snap_get_u32(r), actual = snap_get_u32(r);
	bool held = snap_get_bool(r);
	uint16_t head = snap_get_u16(r);
	bool wanted = snap_get_bool(r), armed = snap_get_bool(r);
	uint64_t left_ms = snap_get_u64(r), counts[4];
	struct balloon_stats stats = { 0 };

	snap_get_u64s(r, stats.val, BALLOON_S_NR);
	stats.present = snap_get_u32(r);
	stats.reports = snap_get_u64(r);
	snap_get_u64s(r, counts, 4);
	if (r->failed)
		return -EINVAL;
	if (held && head >= BALLOON_QUEUE_SIZE)
		return snap_reader_fail(r, "stats buffer head %u is past the queue (%u)", head,
					BALLOON_QUEUE_SIZE);
	if (stats.present >> BALLOON_S_NR)
		return snap_reader_fail(r, "stats present bits 0x%x name unknown tags",
					stats.present);
	if (left_ms > UINT32_MAX)
		return snap_reader_fail(r, "deflate timer %llu ms away", (unsigned long long)left_ms);

	/* Pages the guest gave back stay given back: guest RAM comes back as it was saved. */
	__atomic_store_n(&b->num_pages, target, __ATOMIC_RELEASE);
	__atomic_store_n(&b->actual, actual, __ATOMIC_RELAXED);
	b->stats_held = held;
	b->stats_head = held ? head : 0;
	__atomic_store_n(&b->stats_wanted, wanted, __ATOMIC_RELEASE);
	pthread_mutex_lock(&b->lock);
	b->stats = stats;
	b->inflated_pages = counts[0];
	b->deflated_pages = counts[1];
	b->bad_pfns = counts[2];
	b->excess_pfns = counts[3];
	pthread_mutex_unlock(&b->lock);
	b->timer_armed = false;
	if (armed && b->timer_fd >= 0) {
		struct itimerspec its = {
			.it_value = { .tv_sec = (time_t)(left_ms / 1000),
				      .tv_nsec = (long)(left_ms % 1000) * 1000000L },
		};

		if (!left_ms)
			its.it_value.tv_nsec = 1000000L;
		if (timerfd_settime(b->timer_fd, 0, &its, NULL) == 0)
			b->timer_armed = true;
	}
	return 0;
}
