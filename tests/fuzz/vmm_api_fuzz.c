/*
 * vmm_api_fuzz.c - libFuzzer target for yun-vmm's control API: requests as
 * a client sends them (method, path, JSON body) through the routes and the
 * body checks (api_handle) into a fresh controller that has no VM. Each
 * input is up to 8 requests, "METHOD PATH\nBODY" separated by NUL bytes,
 * so later requests see what earlier ones configured.
 *
 * Invariants: every answer has a known status; 200 has a body, 204 none;
 * every 4xx/5xx has a fault_message that starts with the request line; and
 * a refused request changes nothing (GET /vm/config is the same before and
 * after). A crash, a sanitizer report or a broken invariant is a bug.
 *
 * Not sent: InstanceStart and PUT /snapshot/load (they wait for the main
 * thread to build a VM) and PUT /metrics (it creates the file it names).
 *
 * FUZZ_SOURCES: src/vmm/control.c src/vmm/metrics.c src/vmm/vm.c src/vmm/vcpu.c
 * FUZZ_SOURCES: src/vmm/kvm.c src/vmm/config.c src/vmm/memory.c src/vmm/io_bus.c
 * FUZZ_SOURCES: src/vmm/entry.c src/vmm/cpuid.c src/vmm/irq_routing.c src/vmm/ratelimit.c
 * FUZZ_SOURCES: src/vmm/console.c src/vmm/api/routes.c src/vmm/api/fields.c
 * FUZZ_SOURCES: src/vmm/devices src/vmm/boot src/vmm/virtio src/vmm/pci src/vmm/snapshot
 * FUZZ_SOURCES: src/vmm/sandbox src/vmm/dirty.c src/vmm/migrate
 * FUZZ_SOURCES: src/lib
 * FUZZ_LIBS: -ljansson -luring -lz -lseccomp -lpthread -lcrypto
 *
 * Built with -DFUZZ_WRITE_SEEDS (and without -fsanitize=fuzzer) this file is
 * instead a program that writes a seed corpus of valid and nearly valid
 * requests into the directory given as its argument.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/api/routes.h"
#include "vmm/control.h"

#ifndef FUZZ_WRITE_SEEDS

#define MAX_REQUESTS 8

/* abort() is what libFuzzer reports as a crash. */
#define INVARIANT(cond, ...)                                                                 \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "vmm_api_fuzz: invariant broken: %s\n  ", #cond);    \
			fprintf(stderr, __VA_ARGS__);                                        \
			fprintf(stderr, "\n");                                               \
			abort();                                                             \
		}                                                                            \
	} while (0)

static void one_request(struct ctl *c, const char *req, size_t len)
{
	char method[16], path[256];
	const char *nl = memchr(req, '\n', len), *sp;
	const char *body = nl ? nl + 1 : req + len;
	size_t body_len = nl ? len - (size_t)(nl + 1 - req) : 0;
	struct api_reply r;
	json_t *before, *after;
	const char *msg;

	sp = memchr(req, ' ', nl ? (size_t)(nl - req) : len);
	if (!sp || sp - req >= (long)sizeof(method) ||
	    (size_t)((nl ? nl : req + len) - sp - 1) >= sizeof(path))
		return;
	memcpy(method, req, (size_t)(sp - req));
	method[sp - req] = '\0';
	memcpy(path, sp + 1, (size_t)((nl ? nl : req + len) - sp - 1));
	path[(nl ? nl : req + len) - sp - 1] = '\0';
	if (memmem(body, body_len, "InstanceStart", 13) || !strcmp(path, "/snapshot/load") ||
	    (!strcmp(method, "PUT") && !strcmp(path, "/metrics")))
		return;

	before = ctl_describe(c);
	api_handle(c, method, path, body, body_len, &r);
	after = ctl_describe(c);
	INVARIANT(r.status == 200 || r.status == 204 || r.status == 400 || r.status == 404 ||
			  r.status == 405 || r.status == 501,
		  "%s %s: status %u", method, path, r.status);
	INVARIANT((r.status == 204) == !r.body, "%s %s: status %u with%s a body", method, path,
		  r.status, r.body ? "" : "out");
	if (r.status >= 400) {
		char want[300], got[300];

		msg = json_string_value(json_object_get(r.body, "fault_message"));
		snprintf(want, sizeof(want), "%s %.200s: ", method, path);
		/* Bytes that are not UTF-8 may come back as '?': compare without them. */
		snprintf(got, sizeof(got), "%s", msg ? msg : "");
		for (char *q = want; *q; q++)
			*q = (unsigned char)*q >= 0x80 ? '?' : *q;
		for (char *q = got; *q; q++)
			*q = (unsigned char)*q >= 0x80 ? '?' : *q;
		INVARIANT(msg && !strncmp(got, want, strlen(want)), "%s %s: fault %s", method,
			  path, msg ? msg : "(none)");
		INVARIANT(json_equal(before, after), "%s %s: refused (%u: %s) but the "
			  "configuration changed", method, path, r.status, msg);
	}
	json_decref(before);
	json_decref(after);
	json_decref(r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmm_config cfg;
	struct yun_err err = { 0 };
	struct ctl *c;
	const char *p = (const char *)data, *end = p + size;

	config_init(&cfg);
	cfg.api_sock = strdup("/nonexistent/api.sock"); /* never bound: no server here */
	if (!cfg.api_sock || ctl_create(&c, &cfg, NULL, &err) < 0)
		abort();
	for (int n = 0; n < MAX_REQUESTS && p < end; n++) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		size_t len = z ? (size_t)(z - p) : (size_t)(end - p);

		one_request(c, p, len);
		p += len + 1;
	}
	ctl_destroy(c);
	config_free(&cfg);
	return 0;
}

#else /* FUZZ_WRITE_SEEDS */

#include "seed_text.h"

static const char *const seeds[] = {
    "GET /",
    "PUT /machine-config\n{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"smt\": false}",
    "PATCH /machine-config\n{\"track_dirty_pages\": true, \"cpu_template\": \"None\"}",
    "PUT /boot-source\n{\"kernel_image_path\": \"/k\", \"boot_args\": \"console=ttyS0\","
    " \"initrd_path\": \"/i\"}",
    "PUT /drives/root\n{\"drive_id\": \"root\", \"path_on_host\": \"/r.img\","
    " \"is_root_device\": true, \"is_read_only\": false, \"cache_type\": \"Writeback\","
    " \"rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 100},"
    " \"ops\": {\"size\": 10, \"one_time_burst\": 0, \"refill_time\": 1000}}}",
    "PATCH /drives/root\n{\"drive_id\": \"root\", \"path_on_host\": \"/s.img\"}",
    "PUT /network-interfaces/eth0\n{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\","
    " \"guest_mac\": \"52:54:00:12:34:56\", \"rx_rate_limiter\": {\"ops\": {\"size\": 5,"
    " \"refill_time\": 10}}}",
    "PATCH /network-interfaces/eth0\n{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {}}",
    "PUT /vsock\n{\"guest_cid\": 3, \"uds_path\": \"/v.sock\", \"vsock_id\": \"v\"}",
    "PUT /balloon\n{\"amount_mib\": 16, \"deflate_on_oom\": false,"
    " \"stats_polling_interval_s\": 1}",
    "PATCH /balloon\n{\"amount_mib\": 8}",
    "GET /balloon/statistics",
    "PATCH /balloon/statistics\n{\"stats_polling_interval_s\": 2}",
    "PUT /actions\n{\"action_type\": \"Shutdown\", \"timeout_ms\": 100}",
    "PUT /actions\n{\"action_type\": \"FlushMetrics\"}",
    "PATCH /vm\n{\"state\": \"Paused\"}",
    "GET /vm/config",
    "PUT /snapshot/create\n{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"/s\","
    " \"mem_file_path\": \"/m\"}",
    "PUT /snapshot/load\n{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_path\":"
    " \"/m\", \"backend_type\": \"File\"}, \"resume_vm\": true}",
    "GET /metrics",
    "PUT /migrate\n{}",
    "PUT /migrate\n{\"destination\": \"127.0.0.1:1\", \"token\": \"0123456789abcdef\","
    " \"downtime_ms\": 50, \"max_rounds\": 3, \"timeout_ms\": 100}",
    "PUT /machine-config\n{\"vcpu_count\": 1",
};

int main(int argc, char **argv)
{
	/* Several requests in one input: configure, then change, then read. */
	static const char chain[] =
		"PUT /balloon\n{\"amount_mib\": 4, \"deflate_on_oom\": false}\0"
		"PUT /machine-config\n{\"vcpu_count\": 1, \"mem_size_mib\": 2}\0"
		"PATCH /balloon\n{\"amount_mib\": 1000}\0GET /vm/config";
	char path[4096];
	FILE *f;
	int rc = seed_text_main(argc, argv, seeds, sizeof(seeds) / sizeof(seeds[0]));

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/seed-chain", argv[1]);
	f = fopen(path, "w");
	if (!f || fwrite(chain, 1, sizeof(chain) - 1, f) != sizeof(chain) - 1 || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

#endif /* FUZZ_WRITE_SEEDS */
