/*
 * migrate_harness.c - one live migration of the fake VM of
 * tests/unit/migrate_fake.h over loopback TCP, in one process: the
 * destination listens on 127.0.0.1 (ephemeral port), the source connects,
 * and the guest thread keeps dirtying random pages of its data region at
 * the given rate throughout. Prints one JSON line: the source's stats and
 * whether the destination's RAM, checksum and counter came out right.
 *
 *   migrate_harness MIB DATA_MIB RATE [DOWNTIME_MS]
 *     MIB        guest RAM
 *     DATA_MIB   the region the guest keeps rewriting (random contents;
 *                the rest of RAM is zero, sent as markers)
 *     RATE       page writes per second (0: idle, "max": as fast as it can)
 *
 * Exit status 1 if the migration failed or the guest arrived damaged.
 *
 * As two processes (for migrations between network namespaces):
 *   migrate_harness --listen ADDR MIB DATA_MIB [ACCEPT_MS]
 *     the destination: prints "listening" when bound, receives the guest,
 *     runs it for 200 ms and checks its checksum and counter. Exit 0 when it
 *     arrived intact and runs; 1 otherwise (it aborted).
 *   migrate_harness --send ADDR MIB DATA_MIB RATE [DOWNTIME_MS]
 *     the source. Exit 0 when the destination runs the guest; 3 when the
 *     migration failed and the guest still runs here, checksum intact (it is
 *     run for 200 ms more and checked); 1 otherwise.
 * Both take the token from $MIGRATE_TOKEN and print one JSON line.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../tests/unit/migrate_fake.h"

#define TOKEN "bench-token-0123456789abcdef0123"

struct dest_run {
	struct fake_vm *f;
	int lfd;
	struct migrate_params p;
	struct migrate_stats st;
	struct yun_err err;
	int rc;
};

static void *dest_main(void *arg)
{
	struct dest_run *d = arg;
	struct migrate_dest_vm vm = { .ops = &fake_dest_ops, .ctx = d->f, .ram_zeroed = true };

	d->rc = migrate_dest(d->lfd, &vm, &d->p, &d->st, &d->err);
	return NULL;
}

static const char *token_env(void)
{
	const char *t = getenv("MIGRATE_TOKEN");

	return t ? t : TOKEN;
}

static int listen_main(const char *addr, uint64_t mib, uint64_t data_mib, unsigned accept_ms)
{
	struct fake_vm dst;
	struct dest_run d;
	struct yun_err err;
	uint64_t c0, counter, sum;
	bool ok;

	fake_dest_init(&dst, 1 << 20, data_mib << 20);
	d = (struct dest_run){ .f = &dst, .p = { .token = token_env(), .accept_ms = accept_ms } };
	d.lfd = migrate_listen(addr, &err);
	if (d.lfd < 0) {
		fprintf(stderr, "migrate_harness: %s\n", err.msg);
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	dest_main(&d);
	if (d.rc < 0) {
		printf("{\"role\": \"destination\", \"ok\": false, \"aborts\": %d, "
		       "\"rejected\": %u, \"error\": \"%s\"}\n", dst.aborts, d.st.rejected, d.err.msg);
		return 1;
	}
	(void)mib;
	dst.rate = 2000;
	usleep(200000);          /* it runs here now */
	fake_park(&dst);
	fake_header(&dst, &c0, &sum);
	counter = c0;
	ok = fake_consistent(&dst) && counter > dst.loaded_counter;
	printf("{\"role\": \"destination\", \"ok\": %s, \"loaded_counter\": %llu, "
	       "\"counter_after_200ms\": %llu, \"checksum_ok\": %s, \"pages\": %llu, "
	       "\"rejected\": %u}\n", ok ? "true" : "false",
	       (unsigned long long)dst.loaded_counter, (unsigned long long)counter,
	       fake_consistent(&dst) ? "true" : "false", (unsigned long long)d.st.pages,
	       d.st.rejected);
	fake_destroy(&dst);
	return ok ? 0 : 1;
}

static int send_main(const char *addr, uint64_t mib, uint64_t data_mib, uint32_t rate,
		     unsigned downtime)
{
	struct fake_vm src;
	struct migrate_source_vm vm;
	struct migrate_params p = { .token = token_env(), .downtime_ms = downtime,
				    .timeout_ms = 3000 };
	struct migrate_stats st;
	struct yun_err err;
	uint64_t c0, c1, sum;
	int rc, status;

	if (data_mib < 1 || data_mib + 1 > mib || fake_source_init(&src, mib, data_mib, rate) < 0)
		return 2;
	usleep(100000);
	fake_source_vm(&src, &vm, &fake_source_ops);
	rc = migrate_source(addr, &vm, &p, &st, &err);
	fake_header(&src, &c0, &sum);
	if (rc == 0) {
		status = 0;
	} else if (st.outcome == MIGRATE_FAILED && st.source_running && !src.paused) {
		usleep(200000);
		fake_park(&src);
		fake_header(&src, &c1, &sum);
		status = fake_consistent(&src) && (rate == 0 || c1 > c0) ? 3 : 1;
	} else {
		status = 1;
	}
	printf("{\"role\": \"source\", \"outcome\": \"%s\", \"source_running\": %s, "
	       "\"total_ms\": %.2f, \"downtime_ms\": %.2f, \"rounds\": %u, \"pages\": %llu, "
	       "\"status\": %d, \"error\": \"%s\"}\n", migrate_outcome_name(st.outcome),
	       st.source_running ? "true" : "false", st.total_ms, st.downtime_ms, st.rounds,
	       (unsigned long long)st.pages, status, rc ? err.msg : "");
	fake_destroy(&src);
	return status;
}

int main(int argc, char **argv)
{
	struct fake_vm src, dst;
	struct migrate_source_vm vm;
	struct migrate_stats st;
	struct dest_run d;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct yun_err err;
	uint64_t mib, data_mib, counter, sum;
	uint32_t rate;
	unsigned downtime = 50;
	char addr[64];
	pthread_t t;
	bool same = true, ok;
	int rc;

	if (argc >= 5 && strcmp(argv[1], "--listen") == 0)
		return listen_main(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
				   argc > 5 ? (unsigned)strtoul(argv[5], NULL, 10) : 60000);
	if (argc >= 6 && strcmp(argv[1], "--send") == 0)
		return send_main(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
				 strcmp(argv[5], "max") == 0 ? FAKE_RATE_MAX :
							      (uint32_t)strtoul(argv[5], NULL, 10),
				 argc > 6 ? (unsigned)strtoul(argv[6], NULL, 10) : 50);
	if (argc < 4) {
		fprintf(stderr, "usage: migrate_harness MIB DATA_MIB RATE|max [DOWNTIME_MS]\n");
		return 2;
	}
	mib = strtoull(argv[1], NULL, 10);
	data_mib = strtoull(argv[2], NULL, 10);
	rate = strcmp(argv[3], "max") == 0 ? FAKE_RATE_MAX : (uint32_t)strtoul(argv[3], NULL, 10);
	if (argc > 4)
		downtime = (unsigned)strtoul(argv[4], NULL, 10);
	if (data_mib < 1 || data_mib + 1 > mib || fake_source_init(&src, mib, data_mib, rate) < 0) {
		fprintf(stderr, "migrate_harness: bad sizes\n");
		return 2;
	}
	fake_dest_init(&dst, src.data_gpa, src.data_size);
	usleep(100000); /* let the guest settle into its rate */

	d = (struct dest_run){ .f = &dst, .p = { .token = TOKEN, .downtime_ms = downtime } };
	d.lfd = migrate_listen("127.0.0.1:0", &err);
	if (d.lfd < 0 || getsockname(d.lfd, (struct sockaddr *)&a, &alen) < 0) {
		fprintf(stderr, "migrate_harness: %s\n", err.msg);
		return 1;
	}
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	pthread_create(&t, NULL, dest_main, &d);
	fake_source_vm(&src, &vm, &fake_source_ops);
	rc = migrate_source(addr, &vm, &d.p, &st, &err);
	pthread_join(t, NULL);
	if (rc < 0 || d.rc < 0) {
		fprintf(stderr, "migrate_harness: source: %s\n  destination: %s\n",
			rc < 0 ? err.msg : "ok", d.rc < 0 ? d.err.msg : "ok");
		return 1;
	}
	fake_quit(&dst);
	for (int i = 0; i < src.gm.nr_regions; i++)
		same = same && memcmp(src.gm.region[i].host, dst.gm.region[i].host,
				      src.gm.region[i].size) == 0;
	fake_header(&src, &counter, &sum);
	ok = same && fake_consistent(&dst) && dst.loaded_counter == counter;
	printf("{\"mib\": %llu, \"data_mib\": %llu, \"rate_pages_s\": %lld, "
	       "\"downtime_target_ms\": %u, \"total_ms\": %.2f, \"downtime_ms\": %.2f, "
	       "\"rounds\": %u, \"pages\": %llu, \"zero_pages\": %llu, \"final_pages\": %llu, "
	       "\"bytes\": %llu, \"state_bytes\": %llu, \"bandwidth_mib_s\": %.1f, "
	       "\"throttle\": %u, \"forced\": %s, \"ram_identical\": %s, "
	       "\"checksum_ok\": %s, \"counter_ok\": %s}\n",
	       (unsigned long long)mib, (unsigned long long)data_mib,
	       rate == FAKE_RATE_MAX ? -1LL : (long long)rate, downtime, st.total_ms,
	       st.downtime_ms, st.rounds, (unsigned long long)st.pages,
	       (unsigned long long)st.zero_pages, (unsigned long long)st.final_pages,
	       (unsigned long long)st.bytes, (unsigned long long)st.state_bytes,
	       st.bandwidth_mib_s, st.throttle, st.forced ? "true" : "false",
	       same ? "true" : "false", fake_consistent(&dst) ? "true" : "false",
	       dst.loaded_counter == counter ? "true" : "false");
	close(d.lfd);
	fake_destroy(&src);
	fake_destroy(&dst);
	return ok ? 0 : 1;
}
