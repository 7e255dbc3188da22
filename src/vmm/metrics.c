/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm.h"

long long metrics_rss_kib(int status_fd)
{
	char buf[4096];
	ssize_t n;
	const char *p;

	if (status_fd < 0)
		return -1;
	n = pread(status_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\nVmRSS:");
	return p ? strtoll(p + 7, NULL, 10) : -1;
}

static json_t *vcpus_json(struct vm *vm, json_t *totals)
{
	json_t *list = json_array();
	uint64_t sum[VCPU_EXIT_NR] = { 0 };

	for (unsigned i = 0; list && i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpu[i];
		json_t *exits = json_object();

		for (unsigned k = 0; exits && k < VCPU_EXIT_NR; k++) {
			uint64_t n = __atomic_load_n(&v->stats.exits[k], __ATOMIC_RELAXED);

			sum[k] += n;
			json_object_set_new(exits, vcpu_exit_names[k], json_integer((json_int_t)n));
		}
		json_array_append_new(list, json_pack("{s:I, s:I, s:o*}", "id", (json_int_t)i,
						      "cpu_time_ns",
						      (json_int_t)vcpu_cpu_time_ns(v), "exits",
						      exits));
	}
	for (unsigned k = 0; k < VCPU_EXIT_NR; k++)
		json_object_set_new(totals, vcpu_exit_names[k], json_integer((json_int_t)sum[k]));
	return list;
}

static json_t *block_json(struct vm *vm, const char *const *ids)
{
	json_t *list = json_array();

	for (unsigned i = 0; list && i < vm->nr_disks; i++) {
		struct blk *b = &vm->disk[i];
		json_t *o;

		pthread_mutex_lock(&vm->disk_pci[i].lock);
		o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "drive_id", ids[i],
			      "read_requests", (json_int_t)b->reads, "read_bytes",
			      (json_int_t)b->bytes_read, "write_requests", (json_int_t)b->writes,
			      "write_bytes", (json_int_t)b->bytes_written, "flush_requests",
			      (json_int_t)b->flushes, "discard_requests",
			      (json_int_t)(b->discards + b->write_zeroes), "errors",
			      (json_int_t)b->errors);
		if (o)
			json_object_set_new(o, "throttled", json_integer((json_int_t)b->throttle.stalls));
		pthread_mutex_unlock(&vm->disk_pci[i].lock);
		json_array_append_new(list, o);
	}
	return list;
}

static json_t *net_json(struct vm *vm, const char *const *ids)
{
	json_t *list = json_array();

	for (unsigned i = 0; list && i < vm->nr_nets; i++) {
		struct net_stats s;

		pthread_mutex_lock(&vm->net_pci[i].lock);
		s = vm->net[i].stats;
		pthread_mutex_unlock(&vm->net_pci[i].lock);
		json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
						      "iface_id", ids[i], "rx_frames",
						      (json_int_t)s.rx_frames, "rx_bytes",
						      (json_int_t)s.rx_bytes, "rx_dropped",
						      (json_int_t)s.rx_dropped, "tx_frames",
						      (json_int_t)s.tx_frames, "tx_bytes",
						      (json_int_t)s.tx_bytes, "tx_dropped",
						      (json_int_t)s.tx_dropped));
	}
	return list;
}

static json_t *balloon_json(struct vm *vm)
{
	struct balloon *b = &vm->balloon;
	uint64_t inflated, deflated;
	const unsigned shift = 20 - BALLOON_PAGE_SHIFT;

	if (!vm->cfg->balloon)
		return json_null();
	pthread_mutex_lock(&b->lock);
	inflated = b->inflated_pages;
	deflated = b->deflated_pages;
	pthread_mutex_unlock(&b->lock);
	return json_pack("{s:I, s:I, s:I, s:I}", "target_mib",
			 (json_int_t)(balloon_target(b) >> shift), "actual_mib",
			 (json_int_t)(balloon_actual(b) >> shift), "inflated_pages",
			 (json_int_t)inflated, "deflated_pages", (json_int_t)deflated);
}

json_t *metrics_vm_json(struct vm *vm, const char *const *drive_ids,
			const char *const *iface_ids, int status_fd)
{
	json_t *totals = json_object();
	json_t *vcpus = totals ? vcpus_json(vm, totals) : NULL;
	long long rss = metrics_rss_kib(status_fd);

	return json_pack("{s:o*, s:o*, s:{s:I, s:I}, s:o*, s:o*, s:o*}", "vcpus", vcpus, "exits",
			 totals, "memory", "guest_mib", (json_int_t)(vm->mem.size >> 20),
			 "rss_kib", (json_int_t)rss, "block", block_json(vm, drive_ids), "net",
			 net_json(vm, iface_ids), "balloon", balloon_json(vm));
}
