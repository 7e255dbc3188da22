/*
 * metrics.h - what a running VM counts, as one JSON object (the control
 * API's GET /metrics and the lines FlushMetrics writes).
 *
 *   vcpus[]:  per vCPU, exits by reason (vcpu.h) and CPU time (ns);
 *   exits:    the same reasons summed over the vCPUs;
 *   memory:   guest_mib (configured), rss_kib (the whole process's VmRSS);
 *   block[]:  per disk, requests and bytes read/written, flushes, errors;
 *   net[]:    per card, frames and bytes each way, drops;
 *   balloon:  target and actual MiB, pages inflated and deflated.
 *
 * Device counters are read under the device's lock, so a line is
 * consistent per device. The caller keeps the VM alive meanwhile.
 */
#ifndef YUN_VMM_METRICS_H
#define YUN_VMM_METRICS_H

#include <jansson.h>

struct vm;

/*
 * The VM's counters; drive_ids[i] and iface_ids[i] name disk i and card i.
 * status_fd: an open /proc/self/status (read with pread, so it works in a
 * sandbox that cannot open files), or -1: no rss_kib. NULL when out of memory.
 */
json_t *metrics_vm_json(struct vm *vm, const char *const *drive_ids,
			const char *const *iface_ids, int status_fd);

/* VmRSS in KiB from an open /proc/self/status, or -1. */
long long metrics_rss_kib(int status_fd);

#endif
