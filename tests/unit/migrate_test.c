/*
 * migrate_test.c - live migration end to end in one process: a fake source
 * VM whose guest keeps rewriting a checksummed region migrates to a fake
 * destination over a socketpair or loopback TCP (through a proxy that can
 * cut or drop traffic at any phase). What a user would notice: the guest
 * arrives byte for byte with its checksum and counter intact and keeps
 * going; a busy guest still finishes; any failure before GO leaves the
 * source running and the destination aborted; after GO with no answer the
 * source stays paused and says the outcome is unknown.
 */
#include "vmm/migrate/engine.h"
#include "vmm/migrate/wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "migrate_fake.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

/* ---- running the two ends ------------------------------------------------- */

struct end {
	struct fake_vm *f;
	struct migrate_params p;
	struct migrate_stats st;
	struct yun_err err;
	const char *addr;   /* source: connect here */
	int fd;             /* source: socketpair end; destination: listener or socketpair end */
	bool pair;
	int rc;
	pthread_t t;
};

/* One end of a migration: over TCP (addr / listener), or a socketpair end. */
static void run_end(struct end *e, enum wire_role role)
{
	struct migrate_source_vm svm;
	/* Fresh RAM from gm_init reads as zero; the socketpair runs check it anyway. */
	struct migrate_dest_vm dvm = { .ops = &fake_dest_ops, .ctx = e->f, .ram_zeroed = !e->pair };
	struct wire w;

	fake_source_vm(e->f, &svm, &fake_source_ops);
	if (!e->pair)
		e->rc = role == WIRE_SOURCE ? migrate_source(e->addr, &svm, &e->p, &e->st, &e->err) :
					      migrate_dest(e->fd, &dvm, &e->p, &e->st, &e->err);
	else if ((e->rc = wire_handshake(&w, e->fd, role, e->p.token, 0, &e->err)) == 0) {
		e->rc = role == WIRE_SOURCE ?
				migrate_source_session(&w, &svm, &e->p, &e->st, &e->err) :
				migrate_dest_session(&w, &dvm, &e->p, &e->st, &e->err);
		wire_close(&w);
	}
}

static void *source_main(void *arg)
{
	run_end(arg, WIRE_SOURCE);
	return NULL;
}

static void *dest_main(void *arg)
{
	run_end(arg, WIRE_DEST);
	return NULL;
}

static int listen_local(char *addr, size_t n)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	struct yun_err err;
	int fd = migrate_listen("127.0.0.1:0", &err);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	snprintf(addr, n, "127.0.0.1:%u", ntohs(a.sin_port));
	return fd;
}

/* ---- a proxy that can cut the connection at a chosen frame --------------- */

struct cut {
	int dir;          /* 'S': frames source -> destination; 'D': the other way */
	uint16_t type;    /* cut at the first frame of this type ... */
	uint32_t round;   /* ... (PAGES: whose round is at least this) ... */
	unsigned nth;     /* ... the nth such (from 1) */
	bool drop_only;   /* drop that frame and everything after it, keep the sockets open */
};

struct proxy {
	int lfd, a, b;   /* listener, the source's side, the destination's side */
	char addr[64];   /* where the source connects */
	const char *to;  /* the destination */
	struct cut cut;
	pthread_t ts, td, ta;
	volatile bool cut_done;
};

struct pump {
	struct proxy *x;
	int from, to, dir;
};

static int read_n(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_n(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void *pump_main(void *arg)
{
	struct pump *pm = arg;
	struct proxy *x = pm->x;
	uint8_t *buf = malloc(WIRE_HDR_LEN + WIRE_MAX_PAYLOAD + WIRE_MAC_LEN);
	unsigned seen = 0;
	bool dropping = false;

	/* The handshake: hello, then proof (which waits for the other side's hello). */
	if (read_n(pm->from, buf, 41) < 0 || write_n(pm->to, buf, 41) < 0 ||
	    read_n(pm->from, buf, 32) < 0 || write_n(pm->to, buf, 32) < 0)
		goto out;
	for (;;) {
		uint16_t type;
		uint32_t len;

		if (read_n(pm->from, buf, WIRE_HDR_LEN) < 0)
			break;
		type = (uint16_t)(buf[0] | buf[1] << 8);
		len = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
		      (uint32_t)buf[7] << 24;
		if (len > WIRE_MAX_PAYLOAD ||
		    read_n(pm->from, buf + WIRE_HDR_LEN, len + WIRE_MAC_LEN) < 0)
			break;
		if (pm->dir == x->cut.dir && type == x->cut.type && !dropping &&
		    (type != MIGRATE_MSG_PAGES ||
		     (buf[12] | buf[13] << 8 | buf[14] << 16) >= (int)x->cut.round) &&
		    ++seen == x->cut.nth) {
			x->cut_done = true;
			if (!x->cut.drop_only) {
				shutdown(x->a, SHUT_RDWR);
				shutdown(x->b, SHUT_RDWR);
				break;
			}
			dropping = true;
		}
		if (!dropping && write_n(pm->to, buf, WIRE_HDR_LEN + len + WIRE_MAC_LEN) < 0)
			break;
	}
out:
	if (!x->cut.drop_only || !x->cut_done)
		shutdown(pm->to, SHUT_WR);
	free(buf);
	free(pm);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct proxy *x = arg;
	struct yun_err err;
	struct pump *s = malloc(sizeof(*s)), *d = malloc(sizeof(*d));

	x->a = accept(x->lfd, NULL, NULL);
	x->b = wire_connect(x->to, 2000, &err);
	if (x->a >= 0 && x->b >= 0) {
		int fl = 0;

		/* wire_connect leaves the socket non-blocking; the pumps block. */
		ioctl(x->b, FIONBIO, &fl);
	}
	*s = (struct pump){ .x = x, .from = x->a, .to = x->b, .dir = 'S' };
	*d = (struct pump){ .x = x, .from = x->b, .to = x->a, .dir = 'D' };
	pthread_create(&x->ts, NULL, pump_main, s);
	pthread_create(&x->td, NULL, pump_main, d);
	pthread_join(x->ts, NULL);
	pthread_join(x->td, NULL);
	close(x->a);
	close(x->b);
	return NULL;
}

static void proxy_start(struct proxy *x, const char *to, struct cut cut)
{
	x->to = to;
	x->cut = cut;
	x->cut_done = false;
	x->lfd = listen_local(x->addr, sizeof(x->addr));
	pthread_create(&x->ta, NULL, accept_main, x);
}

static void proxy_stop(struct proxy *x)
{
	pthread_join(x->ta, NULL);
	close(x->lfd);
}

/* ---- checks ---------------------------------------------------------------- */

static bool same_ram(const struct fake_vm *a, const struct fake_vm *b)
{
	if (a->gm.nr_regions != b->gm.nr_regions)
		return false;
	for (int i = 0; i < a->gm.nr_regions; i++)
		if (a->gm.region[i].size != b->gm.region[i].size ||
		    memcmp(a->gm.region[i].host, b->gm.region[i].host, a->gm.region[i].size))
			return false;
	return true;
}

static uint64_t counter_of(const struct fake_vm *f)
{
	uint64_t c, s;

	fake_header(f, &c, &s);
	return c;
}

static void print_stats(const char *what, const struct migrate_stats *st)
{
	fprintf(stderr, "  %s: %s, %u rounds, %llu pages (%llu zero), %.1f ms total, "
		"%.2f ms down, throttle %u%%, %s, final %llu pages, %.0f MiB/s\n",
		what, migrate_outcome_name(st->outcome), st->rounds,
		(unsigned long long)st->pages, (unsigned long long)st->zero_pages, st->total_ms,
		st->downtime_ms, st->throttle, st->forced ? "forced" : "converged",
		(unsigned long long)st->final_pages, st->bandwidth_mib_s);
}

/*
 * Migrate src to a fresh destination over TCP (through proxy x when given)
 * and return the two ends' results.
 */
static void migrate_tcp(struct fake_vm *src, struct fake_vm *dst, struct migrate_params p,
			struct proxy *x, struct cut cut, struct end *se, struct end *de)
{
	char addr[64];

	if (!p.accept_ms)
		p.accept_ms = 5000;
	*se = (struct end){ .f = src, .p = p };
	*de = (struct end){ .f = dst, .p = p };
	de->fd = listen_local(addr, sizeof(addr));
	se->addr = addr;
	if (x) {
		proxy_start(x, addr, cut);
		se->addr = x->addr;
	}
	pthread_create(&de->t, NULL, dest_main, de);
	pthread_create(&se->t, NULL, source_main, se);
	pthread_join(se->t, NULL);
	pthread_join(de->t, NULL);
	if (x)
		proxy_stop(x);
	close(de->fd);
}

/* Both ends say the migration is done; the reasons are printed if not. */
static void check_done(const struct end *se, const struct end *de)
{
	if (se->rc)
		fprintf(stderr, "  source: %s\n", se->err.msg);
	if (de->rc)
		fprintf(stderr, "  dest: %s\n", de->err.msg);
	CHECK_EQ(se->rc, 0);
	CHECK_EQ(de->rc, 0);
	CHECK_EQ(se->st.outcome, MIGRATE_DONE);
}

/* ---- tests ----------------------------------------------------------------- */

/* Idle guest over a socketpair: byte-for-byte copy, zero pages as markers. */
static void idle_guest_arrives_whole(bool anonymous)
{
	struct fake_vm src, dst;
	struct end se, de;
	int sv[2];

	CHECK_EQ(fake_source_init(&src, 64, 16, 0), 0);
	src.anonymous_hint = anonymous;
	/* A page written and zeroed again is touched but zero: still a marker. */
	memset(gm_ptr(&src.gm, 40ULL << 20, 4096), 0, 4096);
	fake_dest_init(&dst, src.data_gpa, src.data_size);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	se = (struct end){ .f = &src, .p = { .token = TOKEN }, .fd = sv[0], .pair = true };
	de = (struct end){ .f = &dst, .p = { .token = TOKEN }, .fd = sv[1], .pair = true };
	pthread_create(&de.t, NULL, dest_main, &de);
	pthread_create(&se.t, NULL, source_main, &se);
	pthread_join(se.t, NULL);
	pthread_join(de.t, NULL);
	check_done(&se, &de);
	CHECK(!se.st.source_running && src.paused && src.resumes == 0);
	CHECK_EQ(src.dirty_stops, 1);
	CHECK_EQ(dst.starts, 1);
	CHECK_EQ(dst.aborts, 0);
	CHECK(same_ram(&src, &dst));
	/* 64 MiB: 16384 pages; all but the 16 MiB data region's ~7/8 are zero markers. */
	CHECK(se.st.zero_pages > 16384 - 4096);
	CHECK(se.st.bytes < (20ULL << 20));
	CHECK_EQ(dst.loaded_counter, counter_of(&src));
	print_stats(anonymous ? "idle 64 MiB, socketpair, pagemap" :
				"idle 64 MiB, socketpair, every page read", &se.st);
	fake_destroy(&src);
	fake_destroy(&dst);
}

static void test_idle_guest_arrives_whole(void)
{
	idle_guest_arrives_whole(false);
	idle_guest_arrives_whole(true);
}

/* A guest dirtying ~80 MiB/s over TCP: converges, checksum and counter hold, it keeps going. */
static void test_busy_guest_over_tcp_keeps_going(void)
{
	struct fake_vm src, dst;
	struct end se, de;
	uint64_t at_pause;

	CHECK_EQ(fake_source_init(&src, 128, 64, 20000), 0);
	fake_dest_init(&dst, src.data_gpa, src.data_size);
	usleep(50000);
	migrate_tcp(&src, &dst, (struct migrate_params){ .token = TOKEN }, NULL, (struct cut){ 0 },
		    &se, &de);
	check_done(&se, &de);
	CHECK(se.st.rounds >= 2);
	print_stats("busy 128 MiB, TCP", &se.st);
	/* The source is paused at what it sent: the destination got exactly that. */
	fake_quit(&dst);
	CHECK(same_ram(&src, &dst));
	CHECK(fake_consistent(&src));
	at_pause = counter_of(&src);
	CHECK(at_pause > 0);
	CHECK_EQ(dst.loaded_counter, at_pause);
	/* It keeps counting on the destination, checksum intact. */
	dst.rate = 20000;
	fake_run(&dst);
	usleep(100000);
	fake_park(&dst);
	CHECK(counter_of(&dst) > at_pause);
	CHECK(fake_consistent(&dst));
	fake_destroy(&src);
	fake_destroy(&dst);
}

/* As fast as the thread can dirty: auto-converge, or max_rounds forces the end. */
static void test_fast_dirtying_still_finishes(void)
{
	static const struct migrate_source_ops no_throttle = {
		.dirty_start = fake_dirty_start, .dirty_fetch = fake_dirty_fetch,
		.dirty_stop = fake_dirty_stop, .pause = fake_pause, .resume = fake_resume,
		.save_state = fake_save,
	};

	for (int with_throttle = 1; with_throttle >= 0; with_throttle--) {
		struct fake_vm src, dst;
		struct migrate_source_vm vm;
		struct end se = { 0 }, de;
		int sv[2];

		CHECK_EQ(fake_source_init(&src, 64, 48, FAKE_RATE_MAX), 0);
		fake_dest_init(&dst, src.data_gpa, src.data_size);
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		de = (struct end){ .f = &dst, .p = { .token = TOKEN, .max_rounds = 8,
			.downtime_ms = 1 }, .fd = sv[1], .pair = true };
		pthread_create(&de.t, NULL, dest_main, &de);
		fake_source_vm(&src, &vm, with_throttle ? &fake_source_ops : &no_throttle);
		{
			struct wire w;

			se.rc = wire_handshake(&w, sv[0], WIRE_SOURCE, TOKEN, 0, &se.err);
			if (se.rc == 0) {
				se.rc = migrate_source_session(&w, &vm, &de.p, &se.st, &se.err);
				wire_close(&w);
			}
		}
		pthread_join(de.t, NULL);
		if (se.rc)
			fprintf(stderr, "  source: %s\n", se.err.msg);
		CHECK_EQ(se.rc, 0);
		CHECK_EQ(de.rc, 0);
		CHECK(se.st.rounds <= 8 + 2);
		print_stats(with_throttle ? "fast, throttle" : "fast, no throttle", &se.st);
		if (with_throttle)
			CHECK(se.st.throttle > 0 && src.max_throttle == se.st.throttle);
		else
			CHECK(se.st.forced);
		CHECK_EQ(src.throttle, 0); /* removed again */
		fake_quit(&dst);
		CHECK(same_ram(&src, &dst));
		CHECK(fake_consistent(&dst));
		CHECK_EQ(dst.loaded_counter, counter_of(&src));
		fake_destroy(&src);
		fake_destroy(&dst);
	}
}

/* After a failure the source runs as before and the destination aborted. */
static void check_source_survived(struct fake_vm *src, struct fake_vm *dst, struct end *se,
				  struct end *de, const char *what)
{
	uint64_t c0;

	fprintf(stderr, "  %s: source: %s\n  %s: dest: %s\n", what, se->err.msg, what,
		de->err.msg);
	CHECK(se->rc < 0);
	CHECK(de->rc < 0);
	CHECK_EQ(se->st.outcome, MIGRATE_FAILED);
	CHECK(se->st.source_running);
	CHECK(!src->paused && src->pauses == src->resumes);
	CHECK(!src->tracking);
	CHECK_EQ(src->throttle, 0);
	CHECK_EQ(dst->starts, 0);
	CHECK_EQ(dst->aborts, 1);
	c0 = counter_of(src);
	usleep(20000);
	CHECK(counter_of(src) > c0); /* still running */
	fake_park(src);
	CHECK(fake_consistent(src));
	fake_unpark(src);
}

static void test_cut_at_each_phase_leaves_source_running(void)
{
	static const struct {
		const char *what;
		struct cut cut;
	} cases[] = {
		{ "round 0", { 'S', MIGRATE_MSG_PAGES, 0, 20, false } },
		{ "mid-rounds", { 'S', MIGRATE_MSG_PAGES, 2, 1, false } },
		{ "after state", { 'S', MIGRATE_MSG_COMMIT, 0, 1, false } },
		{ "before GO (READY lost)", { 'D', MIGRATE_MSG_READY, 0, 1, false } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_vm src, dst;
		struct end se, de;
		struct proxy x;

		CHECK_EQ(fake_source_init(&src, 64, 32, 20000), 0);
		fake_dest_init(&dst, src.data_gpa, src.data_size);
		migrate_tcp(&src, &dst, (struct migrate_params){ .token = TOKEN, .downtime_ms = 1,
			    .max_rounds = 6, .timeout_ms = 2000 }, &x, cases[i].cut, &se, &de);
		CHECK(x.cut_done);
		check_source_survived(&src, &dst, &se, &de, cases[i].what);
		fake_destroy(&src);
		fake_destroy(&dst);
	}
}

/* GO went through, RUNNING never comes back: paused here, outcome unknown. */
static void test_no_running_reply_leaves_source_paused(void)
{
	struct fake_vm src, dst;
	struct end se, de;
	struct proxy x;

	CHECK_EQ(fake_source_init(&src, 64, 16, 1000), 0);
	fake_dest_init(&dst, src.data_gpa, src.data_size);
	migrate_tcp(&src, &dst, (struct migrate_params){ .token = TOKEN, .timeout_ms = 500 }, &x,
		    (struct cut){ 'D', MIGRATE_MSG_RUNNING, 0, 1, true }, &se, &de);
	fprintf(stderr, "  source: %s\n", se.err.msg);
	CHECK(x.cut_done);
	CHECK(se.rc < 0);
	CHECK_EQ(de.rc, 0);               /* the destination runs the guest */
	CHECK_EQ(dst.starts, 1);
	CHECK_EQ(se.st.outcome, MIGRATE_UNKNOWN);
	CHECK(!se.st.source_running);
	CHECK(src.paused && src.resumes == 0);
	CHECK_STR_CONTAINS(se.err.msg, "stays paused");
	fake_destroy(&src);
	fake_destroy(&dst);
}

/* The destination refuses (prepare, load_state, start): the source hears why and runs on. */
static void test_destination_refusals(void)
{
	for (int which = 0; which < 4; which++) {
		struct fake_vm src, dst;
		struct end se, de;

		CHECK_EQ(fake_source_init(&src, 32, 8, 5000), 0);
		fake_dest_init(&dst, src.data_gpa, src.data_size);
		dst.fail_prepare = which == 0;
		dst.fail_load = which == 1;
		dst.fail_start = which == 2;
		src.fail_save = which == 3;
		migrate_tcp(&src, &dst, (struct migrate_params){ .token = TOKEN }, NULL,
			    (struct cut){ 0 }, &se, &de);
		check_source_survived(&src, &dst, &se, &de,
				      (const char *[]){ "prepare", "load", "start", "save" }[which]);
		if (which < 3)
			CHECK_STR_CONTAINS(se.err.msg, "destination");
		CHECK_STR_CONTAINS(se.err.msg, "refused");
		if (which == 3)
			CHECK_STR_CONTAINS(de.err.msg, "source gave up");
		fake_destroy(&src);
		fake_destroy(&dst);
	}
}

/* A stranger with the wrong token is dropped; the listener keeps waiting for the real source. */
static void test_wrong_token_refused_listener_waits(void)
{
	struct fake_vm src, dst;
	struct end se, de;
	struct yun_err err;
	struct wire w;
	char addr[64];
	int fd;

	CHECK_EQ(fake_source_init(&src, 32, 8, 0), 0);
	fake_dest_init(&dst, src.data_gpa, src.data_size);
	de = (struct end){ .f = &dst, .p = { .token = TOKEN, .accept_ms = 10000 } };
	de.fd = listen_local(addr, sizeof(addr));
	pthread_create(&de.t, NULL, dest_main, &de);

	fd = wire_connect(addr, 1000, &err);
	CHECK(fd >= 0);
	CHECK(wire_handshake(&w, fd, WIRE_SOURCE, "not-the-token-but-long-enough", 0, &err) < 0);
	fprintf(stderr, "  stranger: %s\n", err.msg);
	CHECK_STR_CONTAINS(err.msg, "reading proof");
	fd = wire_connect(addr, 1000, &err); /* garbage instead of a hello */
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "GET / HTTP/1.0\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 46), 46);
	usleep(20000);
	close(fd);

	se = (struct end){ .f = &src, .p = { .token = TOKEN }, .addr = addr };
	pthread_create(&se.t, NULL, source_main, &se);
	pthread_join(se.t, NULL);
	pthread_join(de.t, NULL);
	CHECK_EQ(se.rc, 0);
	CHECK_EQ(de.rc, 0);
	CHECK_EQ(de.st.rejected, 2);
	CHECK(same_ram(&src, &dst));
	close(de.fd);
	fake_destroy(&src);
	fake_destroy(&dst);
}

/* Nobody comes: the destination gives up after accept_ms and aborts. */
static void test_listener_times_out(void)
{
	struct fake_vm dst;
	struct end de;
	char addr[64];

	fake_dest_init(&dst, 0, 0);
	de = (struct end){ .f = &dst, .p = { .token = TOKEN, .accept_ms = 200 } };
	de.fd = listen_local(addr, sizeof(addr));
	dest_main(&de);
	CHECK(de.rc == -ETIMEDOUT);
	CHECK_EQ(dst.aborts, 1);
	CHECK_STR_CONTAINS(de.err.msg, "no authenticated source");
	close(de.fd);
	fake_destroy(&dst);
}

int main(void)
{
	RUN(test_idle_guest_arrives_whole);
	RUN(test_busy_guest_over_tcp_keeps_going);
	RUN(test_fast_dirtying_still_finishes);
	RUN(test_cut_at_each_phase_leaves_source_running);
	RUN(test_no_running_reply_leaves_source_paused);
	RUN(test_destination_refusals);
	RUN(test_wrong_token_refused_listener_waits);
	RUN(test_listener_times_out);
	return CHECK_DONE();
}
