/* engine.c - see engine.h. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PROTO_VERSION 1
#define BATCH_PAGES   256                 /* pages per PAGES frame: ~1 MiB */
#define STATE_CHUNK   (1u << 20)
#define PAGE_SHIFT    12
#define POPULATE_PAGES 512                /* round 0 maps RAM in 2 MiB steps */
#define PAGEMAP_CHUNK  65536              /* pagemap entries read at a time (512 KiB) */

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *migrate_outcome_name(enum migrate_outcome o)
{
	switch (o) {
	case MIGRATE_DONE:
		return "done";
	case MIGRATE_UNKNOWN:
		return "unknown";
	default:
		return "failed";
	}
}

/* ---- little-endian fields ------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	uint64_t acc = 0;

	for (unsigned i = 0; i < MIGRATE_PAGE_SIZE / 8; i++)
		acc |= q[i];
	return acc == 0;
}

/* ERROR / NOT_STARTED payload: u32 errno, message. */
static void send_error(struct wire *w, uint16_t type, const struct yun_err *why)
{
	uint8_t buf[4 + YUN_ERR_MSG_MAX];
	size_t n = strnlen(why->msg, YUN_ERR_MSG_MAX);

	put32(buf, (uint32_t)(why->code > 0 ? why->code : EIO));
	memcpy(buf + 4, why->msg, n);
	wire_send(w, type, buf, 4 + n, NULL);
}

/* The peer's ERROR payload into err, prefixed with who said it. */
static int peer_error(const struct wire *w, const char *who, const uint8_t *p, size_t len,
		      struct yun_err *err)
{
	int code = len >= 4 ? (int)get32(p) : EIO;
	int n = len > 4 ? (int)(len - 4 < 400 ? len - 4 : 400) : 0;
	char msg[401];

	if (code <= 0 || code > 4095)
		code = EIO;
	for (int i = 0; i < n; i++)
		msg[i] = p[4 + i] >= 0x20 && p[4 + i] < 0x7f ? (char)p[4 + i] : '?';
	msg[n] = '\0';
	return yun_err_set(err, code, "migration %s %s: %s gave up: %s",
			   w->role == WIRE_SOURCE ? "to" : "from", w->peer, who, msg);
}

static int unexpected(const struct wire *w, uint16_t type, const char *waiting,
		      struct yun_err *err)
{
	return yun_err_set(err, EPROTO, "migration stream %s %s: frame %llu: message type %u while"
			   " %s", w->role == WIRE_SOURCE ? "to" : "from", w->peer,
			   (unsigned long long)(w->seq_rx - 1), type, waiting);
}

static void resolve_params(const struct migrate_params *in, struct migrate_params *p)
{
	*p = *in;
	if (!p->downtime_ms)
		p->downtime_ms = 50;
	if (!p->max_rounds)
		p->max_rounds = 30;
	if (p->max_rounds > MIGRATE_STATS_ROUNDS - 3)
		p->max_rounds = MIGRATE_STATS_ROUNDS - 3;
	if (!p->timeout_ms)
		p->timeout_ms = WIRE_TIMEOUT_MS;
	if (!p->accept_ms)
		p->accept_ms = 60000;
	if (!p->throttle_start)
		p->throttle_start = 20;
	if (!p->throttle_step)
		p->throttle_step = 10;
	if (!p->throttle_max)
		p->throttle_max = 90;
	if (p->throttle_max > 99)
		p->throttle_max = 99;
}

static int check_layout(const struct migrate_region *r, int nr, const char *who,
			struct yun_err *err)
{
	if (nr < 1 || nr > MIGRATE_MAX_REGIONS)
		return yun_err_set(err, EINVAL, "%s: %d RAM regions (1 to %d)", who, nr,
				   MIGRATE_MAX_REGIONS);
	for (int i = 0; i < nr; i++) {
		if (!r[i].size || (r[i].gpa | r[i].size) & (MIGRATE_PAGE_SIZE - 1) ||
		    r[i].gpa + r[i].size < r[i].gpa)
			return yun_err_set(err, EINVAL,
					   "%s: RAM region %d (0x%llx, %llu bytes) is empty, not page"
					   " aligned or wraps", who, i,
					   (unsigned long long)r[i].gpa,
					   (unsigned long long)r[i].size);
		for (int j = 0; j < i; j++)
			if (r[i].gpa < r[j].gpa + r[j].size && r[j].gpa < r[i].gpa + r[i].size)
				return yun_err_set(err, EINVAL, "%s: RAM regions %d and %d overlap",
						   who, j, i);
	}
	return 0;
}

/* ---- source --------------------------------------------------------------- */

struct source {
	struct wire *w;
	const struct migrate_source_vm *vm;
	const struct migrate_source_ops *ops;
	struct migrate_params p;
	struct migrate_stats *st;
	uint64_t *bm[MIGRATE_MAX_REGIONS]; /* pages still to send */
	uint64_t pages[MIGRATE_MAX_REGIONS];
	uint8_t *batch;
	size_t batch_len;
	unsigned batch_count, round;
	bool tracking, paused, go_sent;
	unsigned throttle;
	double rtt_ms;     /* smallest round trip seen (SETUP, then each SYNC) */
	/* round 0 of anonymous regions: /proc/self/pagemap entries of one chunk */
	int pagemap_fd;    /* -1: not open (or unusable: read every page) */
	uint64_t *pm;
	int pm_region;
	uint64_t pm_first, pm_count;
};

static uint64_t words_of(uint64_t pages)
{
	return (pages + 63) / 64;
}

/* Drop bits beyond the end of each region, count the rest. */
static uint64_t count_pending(struct source *s)
{
	uint64_t n = 0;

	for (int r = 0; r < s->vm->nr_regions; r++) {
		uint64_t words = words_of(s->pages[r]);

		if (s->pages[r] % 64)
			s->bm[r][words - 1] &= (1ULL << (s->pages[r] % 64)) - 1;
		for (uint64_t i = 0; i < words; i++)
			n += (uint64_t)__builtin_popcountll(s->bm[r][i]);
	}
	return n;
}

/* If the destination said something (it only ever says ERROR mid-stream), fail with it. */
static int poll_peer(struct source *s, struct yun_err *err)
{
	const uint8_t *p;
	uint16_t type;
	size_t len;
	int rc = wire_readable(s->w);

	if (rc <= 0)
		return 0;
	rc = wire_recv(s->w, &type, &p, &len, err);
	if (rc < 0)
		return rc;
	if (type == MIGRATE_MSG_ERROR)
		return peer_error(s->w, "destination", p, len, err);
	return unexpected(s->w, type, "sending pages", err);
}

static int flush_batch(struct source *s, struct yun_err *err)
{
	int rc;

	if (!s->batch_count)
		return 0;
	put32(s->batch, s->batch_count);
	put32(s->batch + 4, s->round);
	rc = wire_send(s->w, MIGRATE_MSG_PAGES, s->batch, s->batch_len, err);
	s->batch_count = 0;
	s->batch_len = 8;
	if (rc < 0)
		return rc;
	return poll_peer(s, err);
}

/*
 * Round 0, anonymous region: true when the page was never touched (so it is
 * zero; a write after this look is in the dirty log, which is already on).
 * False when pagemap cannot say.
 */
static bool never_touched(struct source *s, int r, uint64_t page)
{
	const uint8_t *host = s->vm->region[r].host;

	if (s->pagemap_fd < 0)
		return false;
	if (r != s->pm_region || page < s->pm_first || page >= s->pm_first + s->pm_count) {
		uint64_t first = page - page % PAGEMAP_CHUNK;
		uint64_t n = s->pages[r] - first < PAGEMAP_CHUNK ? s->pages[r] - first : PAGEMAP_CHUNK;
		off_t at = (off_t)(((uintptr_t)host / MIGRATE_PAGE_SIZE + first) * 8);

		if (pread(s->pagemap_fd, s->pm, n * 8, at) != (ssize_t)(n * 8)) {
			close(s->pagemap_fd); /* fall back to reading every page */
			s->pagemap_fd = -1;
			return false;
		}
		s->pm_region = r;
		s->pm_first = first;
		s->pm_count = n;
	}
	return (s->pm[page - s->pm_first] >> 62) == 0; /* bit 63 present, 62 swapped */
}

/*
 * The guest may be writing the page meanwhile. A page seen all zero is sent
 * as a marker: true when looked at, and a later write is in the next fetch.
 * Other pages are copied into the frame, so the MAC covers what is sent; a
 * copy torn by a write is resent in the next round for the same reason.
 */
static int add_page(struct source *s, int r, uint64_t page, struct yun_err *err)
{
	const struct migrate_region *reg = &s->vm->region[r];
	uint64_t gpa = reg->gpa + (page << PAGE_SHIFT);
	uint8_t *desc = s->batch + s->batch_len;
	uint8_t *data = desc + 8;
	int rc;

	/*
	 * Round 0 reads every page, most never touched by an idle guest: one
	 * madvise maps a 2 MiB run (to the shared zero page where untouched)
	 * instead of 512 page faults. An optimisation only: errors are ignored.
	 */
	bool untouched = s->round == 0 && reg->anonymous && never_touched(s, r, page);

	if (s->round == 0 && !untouched && page % POPULATE_PAGES == 0 &&
	    !(reg->anonymous && s->pagemap_fd >= 0)) {
		uint64_t n = s->pages[r] - page < POPULATE_PAGES ? s->pages[r] - page : POPULATE_PAGES;

		(void)madvise(reg->host + (page << PAGE_SHIFT), n << PAGE_SHIFT, MADV_POPULATE_READ);
	}
	if (untouched || page_is_zero(reg->host + (page << PAGE_SHIFT))) {
		put64(desc, gpa | MIGRATE_PAGE_ZERO);
		s->batch_len += 8;
		s->st->zero_pages++;
	} else {
		put64(desc, gpa);
		memcpy(data, reg->host + (page << PAGE_SHIFT), MIGRATE_PAGE_SIZE);
		s->batch_len += 8 + MIGRATE_PAGE_SIZE;
	}
	s->batch_count++;
	s->st->pages++;
	s->st->round_pages[s->round]++;
	if (s->batch_count == BATCH_PAGES) {
		rc = flush_batch(s, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Send every pending page (clearing the bitmaps) as round s->round. */
static int send_pending(struct source *s, struct yun_err *err)
{
	int rc;

	for (int r = 0; r < s->vm->nr_regions; r++) {
		uint64_t words = words_of(s->pages[r]);

		for (uint64_t i = 0; i < words; i++) {
			while (s->bm[r][i]) {
				uint64_t bit = (uint64_t)__builtin_ctzll(s->bm[r][i]);

				s->bm[r][i] &= s->bm[r][i] - 1;
				rc = add_page(s, r, i * 64 + bit, err);
				if (rc < 0)
					return rc;
			}
		}
	}
	rc = flush_batch(s, err);
	if (rc < 0)
		return rc;
	s->round++;
	s->st->rounds = s->round;
	return 0;
}

static int await(struct source *s, uint16_t want, const char *waiting, const uint8_t **p,
		 size_t *len, struct yun_err *err);

/* SYNC and wait for SYNC_OK: the destination has consumed the round. */
static int sync_round(struct source *s, struct yun_err *err)
{
	const uint8_t *p;
	uint8_t r[4];
	size_t len;
	int rc;

	double t0 = now_ms();

	put32(r, s->round);
	rc = wire_send(s->w, MIGRATE_MSG_SYNC, r, 4, err);
	if (rc == 0)
		rc = await(s, MIGRATE_MSG_SYNC_OK, "waiting for SYNC_OK", &p, &len, err);
	if (rc == 0 && now_ms() - t0 < s->rtt_ms)
		s->rtt_ms = now_ms() - t0; /* a round's tail drains first: an upper bound */
	if (rc == 0 && (len != 4 || get32(p) != s->round))
		rc = yun_err_set(err, EPROTO, "migration stream to %s: SYNC_OK for another round",
				 s->w->peer);
	return rc;
}

static int fetch_dirty(struct source *s, uint64_t *count, struct yun_err *err)
{
	for (int r = 0; r < s->vm->nr_regions; r++) {
		int rc = s->ops->dirty_fetch(s->vm->ctx, r, s->bm[r], err);

		if (rc < 0)
			return rc;
	}
	*count = count_pending(s);
	return 0;
}

/* Wait for a reply of type want; ERROR (and anything else) becomes err. */
static int await(struct source *s, uint16_t want, const char *waiting, const uint8_t **p,
		 size_t *len, struct yun_err *err)
{
	uint16_t type;
	int rc = wire_recv(s->w, &type, p, len, err);

	if (rc < 0)
		return rc;
	if (type == MIGRATE_MSG_ERROR)
		return peer_error(s->w, "destination", *p, *len, err);
	if (type != want)
		return unexpected(s->w, type, waiting, err);
	return 0;
}

static int send_setup(struct source *s, struct yun_err *err)
{
	const struct migrate_source_vm *vm = s->vm;
	size_t len = 16 + (size_t)vm->nr_regions * 16 + vm->info_len;
	uint8_t *buf = malloc(len), *q;
	int rc;

	if (!buf)
		return yun_err_set(err, ENOMEM, "migration: SETUP of %zu bytes", len);
	put32(buf, PROTO_VERSION);
	put32(buf + 4, MIGRATE_PAGE_SIZE);
	put32(buf + 8, (uint32_t)vm->nr_regions);
	q = buf + 12;
	for (int i = 0; i < vm->nr_regions; i++, q += 16) {
		put64(q, vm->region[i].gpa);
		put64(q + 8, vm->region[i].size);
	}
	put32(q, (uint32_t)vm->info_len);
	if (vm->info_len)
		memcpy(q + 4, vm->info, vm->info_len);
	rc = wire_send(s->w, MIGRATE_MSG_SETUP, buf, len, err);
	free(buf);
	return rc;
}

static int send_state(struct source *s, struct yun_err *err)
{
	struct snap_writer sw;
	uint8_t commit[20];
	int rc;

	snap_writer_init(&sw);
	rc = s->ops->save_state(s->vm->ctx, &sw, err);
	if (rc == 0)
		rc = snap_writer_error(&sw, err);
	if (rc == 0 && sw.len > SNAP_MAX_PAYLOAD)
		rc = yun_err_set(err, EFBIG, "migration: VM state of %zu bytes is too big", sw.len);
	for (size_t off = 0; rc == 0 && off < sw.len; off += STATE_CHUNK) {
		size_t n = sw.len - off < STATE_CHUNK ? sw.len - off : STATE_CHUNK;

		rc = wire_send(s->w, MIGRATE_MSG_STATE, sw.buf + off, n, err);
	}
	if (rc == 0) {
		s->st->state_bytes = sw.len;
		put64(commit, sw.len);
		put64(commit + 8, s->st->pages);
		put32(commit + 16, s->round);
		rc = wire_send(s->w, MIGRATE_MSG_COMMIT, commit, sizeof(commit), err);
	}
	snap_writer_free(&sw);
	return rc;
}

/* Undo everything so the guest runs here as before. */
static void source_back_out(struct source *s, struct yun_err *err)
{
	struct yun_err e2;

	if (s->tracking)
		s->ops->dirty_stop(s->vm->ctx);
	s->tracking = false;
	if (s->throttle && s->ops->throttle)
		s->ops->throttle(s->vm->ctx, 0);
	s->throttle = 0;
	if (!s->w->tx_dead && !s->go_sent)
		send_error(s->w, MIGRATE_MSG_ERROR, err);
	if (s->paused) {
		if (s->ops->resume(s->vm->ctx, &e2) < 0) {
			size_t n = strlen(err->msg);

			snprintf(err->msg + n, sizeof(err->msg) - n, "; and resuming failed: %s",
				 e2.msg);
			s->st->source_running = false;
			return;
		}
		s->paused = false;
	}
	s->st->source_running = true;
}

/*
 * Decide, after a fetch of n dirty pages, whether to stop and copy now: the
 * pages at the measured bandwidth plus the two round trips of the handover
 * (COMMIT/READY, GO/RUNNING) must fit three quarters of the budget, so a
 * dip in bandwidth during the stop-and-copy still fits the whole of it.
 */
static bool converged(struct source *s, uint64_t n, double bw_bytes_ms, double rtt_ms)
{
	double est = (double)n * MIGRATE_PAGE_SIZE / bw_bytes_ms + 2 * rtt_ms;

	return n == 0 || est <= 0.75 * (double)s->p.downtime_ms;
}

static void auto_converge(struct source *s, uint64_t n, uint64_t prev)
{
	if (!s->ops->throttle || prev == UINT64_MAX || n * 10 < prev * 9)
		return; /* no throttle, first dirty round, or still shrinking by 10% a round */
	if (!s->throttle)
		s->throttle = s->p.throttle_start;
	else
		s->throttle += s->p.throttle_step;
	if (s->throttle > s->p.throttle_max)
		s->throttle = s->p.throttle_max;
	s->ops->throttle(s->vm->ctx, s->throttle);
	if (s->throttle > s->st->throttle)
		s->st->throttle = s->throttle;
}

static int source_run(struct source *s, struct yun_err *err)
{
	const struct migrate_source_vm *vm = s->vm;
	double t0 = now_ms(), t, t_pause, bw = 0;
	const uint8_t *p;
	uint16_t type;
	size_t len;
	uint64_t n, prev = UINT64_MAX;
	int rc;

	rc = check_layout(vm->region, vm->nr_regions, "migration source", err);
	if (rc < 0)
		return rc;
	if (vm->info_len > MIGRATE_MAX_INFO)
		return yun_err_set(err, EINVAL, "migration source: %zu bytes of info (max %u)",
				   vm->info_len, MIGRATE_MAX_INFO);
	for (int r = 0; r < vm->nr_regions; r++) {
		s->pages[r] = vm->region[r].size >> PAGE_SHIFT;
		s->bm[r] = malloc(words_of(s->pages[r]) * 8);
		if (!s->bm[r])
			return yun_err_set(err, ENOMEM, "migration source: dirty bitmap");
		memset(s->bm[r], 0xff, words_of(s->pages[r]) * 8); /* round 0: everything */
	}
	s->batch = malloc(8 + (size_t)BATCH_PAGES * (8 + MIGRATE_PAGE_SIZE));
	if (!s->batch)
		return yun_err_set(err, ENOMEM, "migration source: page batch");
	for (int r = 0; r < vm->nr_regions; r++)
		if (vm->region[r].anonymous && s->pagemap_fd < 0) {
			s->pm = malloc(PAGEMAP_CHUNK * 8);
			if (s->pm)
				s->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		}
	s->batch_len = 8;

	rc = send_setup(s, err);
	if (rc == 0)
		rc = await(s, MIGRATE_MSG_SETUP_OK, "waiting for SETUP_OK", &p, &len, err);
	if (rc < 0)
		return rc;
	s->rtt_ms = now_ms() - t0; /* includes the destination's prepare: an upper bound */

	rc = s->ops->dirty_start(vm->ctx, err);
	if (rc < 0)
		return rc;
	s->tracking = true;

	/* Round 0 and the dirty rounds. */
	count_pending(s);
	for (;;) {
		uint64_t before = s->w->bytes_tx;
		double r0 = now_ms(), dt;

		rc = send_pending(s, err);
		if (rc == 0)
			rc = sync_round(s, err);
		if (rc < 0)
			return rc;
		/* A round of a few pages is mostly the round trip: keep the last figure. */
		dt = now_ms() - r0;
		if (s->w->bytes_tx - before >= (256u << 10) || bw == 0)
			bw = (double)(s->w->bytes_tx - before) / (dt > 0.01 ? dt : 0.01);
		s->st->bandwidth_mib_s = bw * 1000.0 / (1 << 20);

		rc = fetch_dirty(s, &n, err);
		if (rc < 0)
			return rc;
		if (converged(s, n, bw, s->rtt_ms))
			break;
		if (s->round > s->p.max_rounds) {
			s->st->forced = true;
			break;
		}
		auto_converge(s, n, prev);
		prev = n;
	}

	/* Stop and copy. */
	t_pause = now_ms();
	rc = s->ops->pause(vm->ctx, err);
	if (rc < 0)
		return rc;
	s->paused = true;
	rc = fetch_dirty(s, &n, err);
	if (rc < 0)
		return rc;
	s->st->final_pages = n;
	rc = send_pending(s, err);
	if (rc == 0)
		rc = send_state(s, err);
	if (rc == 0)
		rc = await(s, MIGRATE_MSG_READY, "waiting for READY", &p, &len, err);
	if (rc < 0)
		return rc;

	/* From here on the guest may run over there. */
	rc = wire_send(s->w, MIGRATE_MSG_GO, NULL, 0, err);
	if (rc < 0)
		return rc; /* not fully sent: cannot authenticate there */
	s->go_sent = true;
	rc = wire_recv(s->w, &type, &p, &len, err);
	t = now_ms();
	if (rc == 0 && type == MIGRATE_MSG_RUNNING) {
		s->st->downtime_ms = t - t_pause;
		s->st->total_ms = t - t0;
		s->st->outcome = MIGRATE_DONE;
		return 0;
	}
	if (rc == 0 && type == MIGRATE_MSG_NOT_STARTED) {
		s->go_sent = false; /* the destination aborted: it is ours again */
		return peer_error(s->w, "destination (after GO, not started)", p, len, err);
	}
	if (rc == 0)
		rc = unexpected(s->w, type, "waiting for RUNNING", err);
	s->st->outcome = MIGRATE_UNKNOWN;
	{
		size_t m = strlen(err->msg);

		snprintf(err->msg + m, sizeof(err->msg) - m,
			 "; GO was sent, so the guest may run on the destination: it stays "
			 "paused here");
	}
	return rc;
}

int migrate_source_session(struct wire *w, const struct migrate_source_vm *vm,
			   const struct migrate_params *p, struct migrate_stats *st,
			   struct yun_err *err)
{
	struct source s = { .w = w, .vm = vm, .ops = vm->ops, .st = st, .pagemap_fd = -1,
			    .pm_region = -1 };
	int rc;

	memset(st, 0, sizeof(*st));
	st->source_running = true;
	resolve_params(p, &s.p);
	w->timeout_ms = s.p.timeout_ms;
	rc = source_run(&s, err);
	if (rc < 0 && st->outcome != MIGRATE_UNKNOWN) {
		st->outcome = MIGRATE_FAILED;
		source_back_out(&s, err);
	} else if (rc < 0) {
		st->source_running = false; /* paused, on purpose */
	} else {
		st->source_running = false;
	}
	if (s.tracking && st->outcome != MIGRATE_FAILED) {
		vm->ops->dirty_stop(vm->ctx);
		if (s.throttle && vm->ops->throttle)
			vm->ops->throttle(vm->ctx, 0);
	}
	st->bytes = w->bytes_tx + w->bytes_rx;
	for (int r = 0; r < MIGRATE_MAX_REGIONS; r++)
		free(s.bm[r]);
	free(s.batch);
	free(s.pm);
	if (s.pagemap_fd >= 0)
		close(s.pagemap_fd);
	return rc;
}

int migrate_source(const char *addr, const struct migrate_source_vm *vm,
		   const struct migrate_params *p, struct migrate_stats *st, struct yun_err *err)
{
	struct wire w;
	int fd, rc;

	memset(st, 0, sizeof(*st));
	st->source_running = true;
	st->outcome = MIGRATE_FAILED;
	fd = wire_connect(addr, p->timeout_ms, err);
	if (fd < 0)
		return fd;
	rc = wire_handshake(&w, fd, WIRE_SOURCE, p->token, p->timeout_ms, err);
	if (rc < 0)
		return rc;
	rc = migrate_source_session(&w, vm, p, st, err);
	wire_close(&w);
	return rc;
}

/* ---- destination ---------------------------------------------------------- */

struct dest {
	struct wire *w;
	const struct migrate_dest_vm *vm;
	struct migrate_stats *st;
	struct migrate_region region[MIGRATE_MAX_REGIONS];
	int nr_regions;
	uint64_t *seen[MIGRATE_MAX_REGIONS];
	uint64_t seen_count, total_pages;
	uint8_t *state;
	size_t state_len, state_cap;
};

static int bad(const struct dest *d, struct yun_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(const struct dest *d, struct yun_err *err, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return yun_err_set(err, EBADMSG, "migration stream from %s: frame %llu: %s", d->w->peer,
			   (unsigned long long)(d->w->seq_rx - 1), what);
}

static int dest_setup(struct dest *d, const uint8_t *p, size_t len, struct yun_err *err)
{
	uint32_t nr, info_len;
	const uint8_t *q;
	char who[128];
	int rc;

	if (len < 16 || get32(p) != PROTO_VERSION || get32(p + 4) != MIGRATE_PAGE_SIZE)
		return bad(d, err, "SETUP: version %u, page size %u (want %u, %u)",
			   len >= 8 ? get32(p) : 0, len >= 8 ? get32(p + 4) : 0, PROTO_VERSION,
			   MIGRATE_PAGE_SIZE);
	nr = get32(p + 8);
	if (nr < 1 || nr > MIGRATE_MAX_REGIONS || len < 16 + (size_t)nr * 16)
		return bad(d, err, "SETUP: %u RAM regions in %zu bytes", nr, len);
	q = p + 12;
	for (uint32_t i = 0; i < nr; i++, q += 16)
		d->region[i] = (struct migrate_region){ .gpa = get64(q), .size = get64(q + 8) };
	d->nr_regions = (int)nr;
	info_len = get32(q);
	if (info_len > MIGRATE_MAX_INFO || len != 16 + (size_t)nr * 16 + info_len)
		return bad(d, err, "SETUP: %u info bytes in a frame of %zu", info_len, len);
	snprintf(who, sizeof(who), "migration stream from %s: SETUP", d->w->peer);
	rc = check_layout(d->region, d->nr_regions, who, err);
	if (rc < 0)
		return rc;
	rc = d->vm->ops->prepare(d->vm->ctx, d->region, d->nr_regions, q + 4, info_len, err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < d->nr_regions; i++) {
		uint64_t pages = d->region[i].size >> PAGE_SHIFT;

		if (!d->region[i].host)
			return yun_err_set(err, EINVAL, "migration: prepare left region %d unmapped",
					   i);
		d->seen[i] = calloc(words_of(pages), 8);
		if (!d->seen[i])
			return yun_err_set(err, ENOMEM, "migration: received-page bitmap");
		d->total_pages += pages;
	}
	return 0;
}

static int dest_pages(struct dest *d, const uint8_t *p, size_t len, struct yun_err *err)
{
	uint32_t count, round;
	size_t off = 8;

	if (len < 8)
		return bad(d, err, "PAGES of %zu bytes", len);
	count = get32(p);
	round = get32(p + 4);
	if (round + 1 > d->st->rounds)
		d->st->rounds = round + 1 < MIGRATE_STATS_ROUNDS ? round + 1 : MIGRATE_STATS_ROUNDS;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t desc, gpa, page;
		bool zero;
		int r;

		if (len - off < 8)
			return bad(d, err, "PAGES: %u pages announced, %u present", count, i);
		desc = get64(p + off);
		off += 8;
		gpa = desc & ~(uint64_t)(MIGRATE_PAGE_SIZE - 1);
		if (desc & (MIGRATE_PAGE_SIZE - 1) & ~(uint64_t)MIGRATE_PAGE_ZERO)
			return bad(d, err, "PAGES: descriptor 0x%llx has unknown flags",
				   (unsigned long long)desc);
		zero = desc & MIGRATE_PAGE_ZERO;
		for (r = 0; r < d->nr_regions; r++)
			if (gpa >= d->region[r].gpa && gpa - d->region[r].gpa < d->region[r].size)
				break;
		if (r == d->nr_regions)
			return bad(d, err, "PAGES: page 0x%llx outside guest RAM",
				   (unsigned long long)gpa);
		page = (gpa - d->region[r].gpa) >> PAGE_SHIFT;
		if (zero) {
			uint8_t *dst = d->region[r].host + (page << PAGE_SHIFT);
			bool fresh = d->vm->ram_zeroed &&
				     !(d->seen[r][page / 64] & (1ULL << (page % 64)));

			/* Checking before writing keeps untouched pages unallocated. */
			if (!fresh && !page_is_zero(dst))
				memset(dst, 0, MIGRATE_PAGE_SIZE);
			d->st->zero_pages++;
		} else {
			if (len - off < MIGRATE_PAGE_SIZE)
				return bad(d, err, "PAGES: page 0x%llx cut short",
					   (unsigned long long)gpa);
			memcpy(d->region[r].host + (page << PAGE_SHIFT), p + off, MIGRATE_PAGE_SIZE);
			off += MIGRATE_PAGE_SIZE;
		}
		if (!(d->seen[r][page / 64] & (1ULL << (page % 64)))) {
			d->seen[r][page / 64] |= 1ULL << (page % 64);
			d->seen_count++;
		}
		d->st->pages++;
		if (round < MIGRATE_STATS_ROUNDS)
			d->st->round_pages[round]++;
	}
	if (off != len)
		return bad(d, err, "PAGES: %zu bytes after %u pages", len - off, count);
	return 0;
}

static int dest_state(struct dest *d, const uint8_t *p, size_t len, struct yun_err *err)
{
	if (len > SNAP_MAX_PAYLOAD - d->state_len)
		return bad(d, err, "STATE: more than %u bytes of VM state", SNAP_MAX_PAYLOAD);
	if (d->state_len + len > d->state_cap) {
		size_t cap = d->state_cap ? d->state_cap * 2 : STATE_CHUNK;
		uint8_t *b;

		while (cap < d->state_len + len)
			cap *= 2;
		b = realloc(d->state, cap);
		if (!b)
			return yun_err_set(err, ENOMEM, "migration: %zu bytes of VM state", cap);
		d->state = b;
		d->state_cap = cap;
	}
	if (len)
		memcpy(d->state + d->state_len, p, len);
	d->state_len += len;
	return 0;
}

static int dest_commit(struct dest *d, const uint8_t *p, size_t len, struct yun_err *err)
{
	if (len != 20)
		return bad(d, err, "COMMIT of %zu bytes", len);
	if (get64(p) != d->state_len)
		return bad(d, err, "COMMIT: %llu bytes of state announced, %zu received",
			   (unsigned long long)get64(p), d->state_len);
	if (get64(p + 8) != d->st->pages)
		return bad(d, err, "COMMIT: %llu pages announced, %llu received",
			   (unsigned long long)get64(p + 8), (unsigned long long)d->st->pages);
	if (d->seen_count != d->total_pages)
		return bad(d, err, "COMMIT: %llu of %llu RAM pages never sent",
			   (unsigned long long)(d->total_pages - d->seen_count),
			   (unsigned long long)d->total_pages);
	d->st->state_bytes = d->state_len;
	return d->vm->ops->load_state(d->vm->ctx, d->state ? d->state : (const uint8_t *)"",
				      d->state_len, err);
}

/* Receive until the guest is loaded (READY sent). */
static int dest_receive(struct dest *d, struct yun_err *err)
{
	const uint8_t *p;
	uint16_t type;
	size_t len;
	int rc;

	rc = wire_recv(d->w, &type, &p, &len, err);
	if (rc < 0)
		return rc;
	if (type == MIGRATE_MSG_ERROR)
		return peer_error(d->w, "source", p, len, err);
	if (type != MIGRATE_MSG_SETUP)
		return unexpected(d->w, type, "waiting for SETUP", err);
	rc = dest_setup(d, p, len, err);
	if (rc < 0)
		return rc;
	rc = wire_send(d->w, MIGRATE_MSG_SETUP_OK, NULL, 0, err);
	if (rc < 0)
		return rc;
	for (;;) {
		rc = wire_recv(d->w, &type, &p, &len, err);
		if (rc < 0)
			return rc;
		switch (type) {
		case MIGRATE_MSG_PAGES:
			rc = dest_pages(d, p, len, err);
			break;
		case MIGRATE_MSG_STATE:
			rc = dest_state(d, p, len, err);
			break;
		case MIGRATE_MSG_SYNC:
			if (len != 4)
				return bad(d, err, "SYNC of %zu bytes", len);
			rc = wire_send(d->w, MIGRATE_MSG_SYNC_OK, p, 4, err);
			break;
		case MIGRATE_MSG_COMMIT:
			rc = dest_commit(d, p, len, err);
			if (rc < 0)
				return rc;
			return wire_send(d->w, MIGRATE_MSG_READY, NULL, 0, err);
		case MIGRATE_MSG_ERROR:
			return peer_error(d->w, "source", p, len, err);
		default:
			return unexpected(d->w, type, "receiving RAM and state", err);
		}
		if (rc < 0)
			return rc;
	}
}

int migrate_dest_session(struct wire *w, const struct migrate_dest_vm *vm,
			 const struct migrate_params *p, struct migrate_stats *st,
			 struct yun_err *err)
{
	struct dest d = { .w = w, .vm = vm, .st = st };
	struct migrate_params rp;
	const uint8_t *pl;
	uint16_t type;
	size_t len;
	double t0 = now_ms();
	int rc;

	memset(st, 0, sizeof(*st));
	resolve_params(p, &rp);
	w->timeout_ms = rp.timeout_ms;
	rc = dest_receive(&d, err);
	if (rc == 0) {
		rc = wire_recv(w, &type, &pl, &len, err);
		if (rc == 0 && type == MIGRATE_MSG_ERROR)
			rc = peer_error(w, "source", pl, len, err);
		else if (rc == 0 && type != MIGRATE_MSG_GO)
			rc = unexpected(w, type, "waiting for GO", err);
		if (rc == 0) {
			rc = vm->ops->start(vm->ctx, err);
			if (rc < 0) {
				send_error(w, MIGRATE_MSG_NOT_STARTED, err);
				vm->ops->abort(vm->ctx);
				goto out;
			}
			st->outcome = MIGRATE_DONE;
			/* Running here now, whatever happens to the reply. */
			if (wire_send(w, MIGRATE_MSG_RUNNING, NULL, 0, NULL) < 0)
				st->running_unsent = true;
			goto out;
		}
	}
	if (!w->tx_dead)
		send_error(w, MIGRATE_MSG_ERROR, err);
	vm->ops->abort(vm->ctx);
out:
	st->total_ms = now_ms() - t0;
	st->bytes = w->bytes_tx + w->bytes_rx;
	for (int r = 0; r < MIGRATE_MAX_REGIONS; r++)
		free(d.seen[r]);
	free(d.state);
	return rc;
}

int migrate_listen(const char *addr, struct yun_err *err)
{
	return wire_listen(addr, err);
}

int migrate_dest(int lfd, const struct migrate_dest_vm *vm, const struct migrate_params *p,
		 struct migrate_stats *st, struct yun_err *err)
{
	struct migrate_params rp;
	struct wire w;
	unsigned rejected = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	resolve_params(p, &rp);
	rc = wire_accept(lfd, rp.token, rp.accept_ms, &w, &rejected, NULL, err);
	if (rc < 0) {
		st->rejected = rejected;
		vm->ops->abort(vm->ctx);
		return rc;
	}
	rc = migrate_dest_session(&w, vm, &rp, st, err);
	st->rejected = rejected;
	wire_close(&w);
	return rc;
}
