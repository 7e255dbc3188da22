/*
 * migrate_fake.h - a fake VM for the migration engine's tests and bench.
 *
 * Its RAM is a real struct guest_mem. Its "vCPU" is a thread that, at a set
 * rate, rewrites a random 8-byte word of a random page of a data region and
 * keeps, in the region's first page, a step counter and the sum of all the
 * region's words (updated incrementally), so any lost or stale page shows as
 * a sum that no longer matches. The data words are written straight into
 * RAM and logged afterwards in a bitmap of its own, as KVM's dirty log
 * would; the header is written through gm_write like a device model, so
 * memory.h's gm_track_* sees it. dirty_fetch ORs the two, as yun-vmm's will.
 * Its "device state" is the counter (the serial line count) saved in a
 * stream.h section: after migration it must equal the counter in RAM.
 *
 * Source ops: pause parks the thread, resume releases it, throttle slows it.
 * Destination ops: prepare allocates RAM of the source's layout, load_state
 * checks the section, start runs the thread on the received RAM. Failures
 * can be injected per op.
 */
#ifndef YUN_TESTS_MIGRATE_FAKE_H
#define YUN_TESTS_MIGRATE_FAKE_H

#include "vmm/memory.h"
#include "vmm/migrate/engine.h"
#include "vmm/snapshot/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_RATE_MAX UINT32_MAX /* as fast as the thread can go */

struct fake_vm {
	struct guest_mem gm;
	bool have_gm;
	uint64_t data_gpa, data_size; /* the checksummed region; header in its first page */
	uint32_t rate;                /* steps (page writes) per second; 0: idle */
	pthread_t thread;
	bool thread_on;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool pause_req, parked, quit;
	unsigned throttle, max_throttle;
	uint64_t rng;
	bool anonymous_hint;          /* source: offer migrate_region.anonymous */
	uint64_t *vlog;               /* the "KVM" dirty log of region 0 */
	bool vlog_on;
	/* what the engine did */
	int pauses, resumes, dirty_starts, dirty_stops, starts, aborts, loads;
	bool paused, tracking;
	uint64_t loaded_counter;
	/* injected failures */
	bool fail_prepare, fail_load, fail_start, fail_save;
};

static inline double fake_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline uint64_t fake_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Header: counter, sum. */
static inline void fake_header(const struct fake_vm *f, uint64_t *counter, uint64_t *sum)
{
	gm_read(&f->gm, f->data_gpa, counter, 8);
	gm_read(&f->gm, f->data_gpa + 8, sum, 8);
}

/* The sum of the data words (everything after the header page). */
static inline uint64_t fake_sum(const struct fake_vm *f)
{
	const uint64_t *p = gm_ptr(&f->gm, f->data_gpa + 4096, f->data_size - 4096);
	uint64_t s = 0;

	for (uint64_t i = 0; i < (f->data_size - 4096) / 8; i++)
		s += p[i];
	return s;
}

/* The guest's invariant: the sum in the header is the sum of the data. */
static inline bool fake_consistent(const struct fake_vm *f)
{
	uint64_t counter, sum;

	fake_header(f, &counter, &sum);
	return sum == fake_sum(f);
}

static inline void fake_step(struct fake_vm *f)
{
	uint64_t pages = f->data_size / 4096 - 1, r = fake_rand(&f->rng);
	uint64_t gpa = f->data_gpa + 4096 * (1 + r % pages) + 8 * ((r >> 40) % 512);
	uint64_t counter, sum, old, new;

	uint64_t *word = (uint64_t *)(f->gm.region[0].host + gpa);

	fake_header(f, &counter, &sum);
	old = *word;
	new = old * 6364136223846793005ULL + counter + 1;
	*word = new;
	/* After the write, as a write fault would: a fetch before this sees it next time. */
	if (__atomic_load_n(&f->vlog_on, __ATOMIC_ACQUIRE))
		__atomic_fetch_or(&f->vlog[gpa >> 18], 1ULL << ((gpa >> 12) % 64),
				  __ATOMIC_RELEASE);
	sum += new - old;
	counter++;
	gm_write(&f->gm, f->data_gpa, &counter, 8);
	gm_write(&f->gm, f->data_gpa + 8, &sum, 8);
}

static void *fake_guest(void *arg)
{
	struct fake_vm *f = arg;
	double tick = fake_now_ms();

	for (;;) {
		unsigned thr;
		uint64_t steps;

		pthread_mutex_lock(&f->lock);
		if (f->pause_req && !f->quit) {
			f->parked = true;
			pthread_cond_broadcast(&f->cond);
			while (f->pause_req && !f->quit)
				pthread_cond_wait(&f->cond, &f->lock);
			f->parked = false;
			tick = fake_now_ms();
		}
		if (f->quit) {
			pthread_mutex_unlock(&f->lock);
			return NULL;
		}
		thr = f->throttle;
		pthread_mutex_unlock(&f->lock);

		if (f->rate == FAKE_RATE_MAX)
			steps = 256;
		else
			steps = (uint64_t)f->rate / 1000;
		steps = steps * (100 - thr) / 100;
		for (uint64_t i = 0; i < steps; i++)
			fake_step(f);
		if (f->rate != FAKE_RATE_MAX || thr) {
			struct timespec ts;
			double wake;

			tick += 1.0;
			wake = tick > fake_now_ms() ? tick : fake_now_ms() + 0.05;
			if (f->rate == FAKE_RATE_MAX)
				wake = fake_now_ms() + thr / 50.0; /* throttle: sit out a share of time */
			ts.tv_sec = (time_t)(wake / 1e3);
			ts.tv_nsec = (long)((wake - (double)ts.tv_sec * 1e3) * 1e6);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
	}
}

static inline void fake_run(struct fake_vm *f)
{
	f->quit = false;
	f->pause_req = false;
	f->paused = false;
	pthread_create(&f->thread, NULL, fake_guest, f);
	f->thread_on = true;
}

static inline void fake_park(struct fake_vm *f)
{
	pthread_mutex_lock(&f->lock);
	f->pause_req = true;
	while (!f->parked)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

static inline void fake_unpark(struct fake_vm *f)
{
	pthread_mutex_lock(&f->lock);
	f->pause_req = false;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static inline void fake_quit(struct fake_vm *f)
{
	if (!f->thread_on)
		return;
	pthread_mutex_lock(&f->lock);
	f->quit = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	f->thread_on = false;
}

/* A source of `mib` MiB whose data region (from 1 MiB, data_mib) is random and summed. */
static inline int fake_source_init(struct fake_vm *f, uint64_t mib, uint64_t data_mib,
				   uint32_t rate)
{
	struct yun_err err;
	uint64_t *p, counter = 0, sum = 0;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (gm_init(&f->gm, mib << 20, &err) < 0)
		return -1;
	f->have_gm = true;
	f->data_gpa = 1 << 20;
	f->data_size = data_mib << 20;
	f->rate = rate;
	f->anonymous_hint = true;
	f->rng = 0x9e3779b97f4a7c15ULL;
	p = gm_ptr(&f->gm, f->data_gpa, f->data_size);
	if (!p)
		return -1;
	for (uint64_t i = 512; i < f->data_size / 8; i++) {
		/* Every eighth page is left zero, to exercise the zero markers. */
		p[i] = (i / 512) % 8 ? fake_rand(&f->rng) : 0;
		sum += p[i];
	}
	gm_write(&f->gm, f->data_gpa, &counter, 8);
	gm_write(&f->gm, f->data_gpa + 8, &sum, 8);
	fake_run(f);
	return 0;
}

static inline void fake_destroy(struct fake_vm *f)
{
	fake_quit(f);
	free(f->vlog);
	f->vlog = NULL;
	if (f->have_gm)
		gm_free(&f->gm);
	f->have_gm = false;
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
}

/* ---- source ops ---- */

static int fake_dirty_start(void *ctx, struct yun_err *err)
{
	struct fake_vm *f = ctx;

	f->dirty_starts++;
	f->tracking = true;
	if (!f->vlog)
		f->vlog = calloc((f->gm.region[0].size >> 12) / 64 + 1, 8);
	if (!f->vlog)
		return yun_err_set(err, ENOMEM, "fake: dirty log");
	__atomic_store_n(&f->vlog_on, true, __ATOMIC_RELEASE);
	return gm_track_start(&f->gm, err);
}

static int fake_dirty_fetch(void *ctx, int region, uint64_t *bitmap, struct yun_err *err)
{
	struct fake_vm *f = ctx;

	if (gm_track_fetch(&f->gm, region, bitmap) < 0)
		return yun_err_set(err, EINVAL, "fake: region %d", region);
	if (region == 0)
		for (uint64_t i = 0; i < (f->gm.region[0].size >> 12) / 64; i++)
			bitmap[i] |= __atomic_exchange_n(&f->vlog[i], 0, __ATOMIC_ACQ_REL);
	return 0;
}

static void fake_dirty_stop(void *ctx)
{
	struct fake_vm *f = ctx;

	f->dirty_stops++;
	f->tracking = false;
	__atomic_store_n(&f->vlog_on, false, __ATOMIC_RELEASE);
	gm_track_stop(&f->gm);
}

static int fake_pause(void *ctx, struct yun_err *err)
{
	struct fake_vm *f = ctx;

	(void)err;
	f->pauses++;
	fake_park(f);
	f->paused = true;
	return 0;
}

static int fake_resume(void *ctx, struct yun_err *err)
{
	struct fake_vm *f = ctx;

	(void)err;
	f->resumes++;
	f->paused = false;
	fake_unpark(f);
	return 0;
}

static int fake_save(void *ctx, struct snap_writer *w, struct yun_err *err)
{
	struct fake_vm *f = ctx;
	uint64_t counter, sum;

	if (f->fail_save)
		return yun_err_set(err, EIO, "fake: save_state refused");
	fake_header(f, &counter, &sum);
	snap_begin(w, "FAKE", 1);
	snap_put_u64(w, counter);          /* the serial line count */
	snap_put_str(w, "fake device state");
	snap_end(w);
	return 0;
}

static void fake_throttle(void *ctx, unsigned percent)
{
	struct fake_vm *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->throttle = percent;
	if (percent > f->max_throttle)
		f->max_throttle = percent;
	pthread_mutex_unlock(&f->lock);
}

static const struct migrate_source_ops fake_source_ops = {
	.dirty_start = fake_dirty_start,
	.dirty_fetch = fake_dirty_fetch,
	.dirty_stop = fake_dirty_stop,
	.pause = fake_pause,
	.resume = fake_resume,
	.save_state = fake_save,
	.throttle = fake_throttle,
};

static inline void fake_source_vm(struct fake_vm *f, struct migrate_source_vm *vm,
				  const struct migrate_source_ops *ops)
{
	memset(vm, 0, sizeof(*vm));
	vm->ops = ops;
	vm->ctx = f;
	for (int i = 0; i < f->gm.nr_regions; i++)
		vm->region[i] = (struct migrate_region){ .gpa = f->gm.region[i].gpa,
			.size = f->gm.region[i].size, .host = f->gm.region[i].host,
			.anonymous = !f->gm.file_backed && f->anonymous_hint };
	vm->nr_regions = f->gm.nr_regions;
	vm->info = "fake-vm v1";
	vm->info_len = 10;
}

/* ---- destination ops ---- */

static int fake_prepare(void *ctx, struct migrate_region *region, int nr, const uint8_t *info,
			size_t info_len, struct yun_err *err)
{
	struct fake_vm *f = ctx;
	uint64_t total = 0;

	if (f->fail_prepare)
		return yun_err_set(err, ENOMEM, "fake: prepare refused");
	if (info_len != 10 || memcmp(info, "fake-vm v1", 10) != 0)
		return yun_err_set(err, EINVAL, "fake: unexpected info");
	for (int i = 0; i < nr; i++)
		total += region[i].size;
	if (total > (1ULL << 30) || gm_init(&f->gm, total, err) < 0)
		return yun_err_set(err, EINVAL, "fake: %llu bytes of RAM", (unsigned long long)total);
	f->have_gm = true;
	if (nr != f->gm.nr_regions)
		return yun_err_set(err, EINVAL, "fake: layout differs");
	for (int i = 0; i < nr; i++) {
		if (region[i].gpa != f->gm.region[i].gpa || region[i].size != f->gm.region[i].size)
			return yun_err_set(err, EINVAL, "fake: layout differs");
		region[i].host = f->gm.region[i].host;
	}
	return 0;
}

static int fake_load(void *ctx, const uint8_t *state, size_t len, struct yun_err *err)
{
	struct fake_vm *f = ctx;
	struct snap_reader r, sec;
	uint32_t version;
	char *s = NULL;
	int rc;

	f->loads++;
	if (f->fail_load)
		return yun_err_set(err, EIO, "fake: load_state refused");
	snap_reader_init(&r, state, len, "fake state");
	if (snap_section(&r, "FAKE", 1, &version, &sec) < 0) {
		*err = r.err;
		return -EINVAL;
	}
	f->loaded_counter = snap_get_u64(&sec);
	snap_get_str(&sec, &s, 64);
	rc = snap_reader_done(&sec, err);
	free(s);
	return rc;
}

static int fake_start(void *ctx, struct yun_err *err)
{
	struct fake_vm *f = ctx;

	if (f->fail_start)
		return yun_err_set(err, EIO, "fake: start refused");
	f->starts++;
	if (f->data_size)
		fake_run(f);
	return 0;
}

static void fake_abort(void *ctx)
{
	struct fake_vm *f = ctx;

	f->aborts++;
}

static const struct migrate_dest_ops fake_dest_ops = {
	.prepare = fake_prepare,
	.load_state = fake_load,
	.start = fake_start,
	.abort = fake_abort,
};

static inline void fake_dest_init(struct fake_vm *f, uint64_t data_gpa, uint64_t data_size)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->data_gpa = data_gpa;
	f->data_size = data_size;
	f->rng = 0x1234567;
}

#endif
