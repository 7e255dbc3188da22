/*
 * host.h - this host as a resource pool: what it has (online CPUs,
 * physical memory, the root dir's file system), what instances may hold
 * (times the over-commit ratios) and what is in use right now.
 */
#ifndef YUND_COMPUTE_HOST_H
#define YUND_COMPUTE_HOST_H

#include <stdint.h>

#include "../../lib/err.h"
#include "../store/store.h"

/* Fill h's hostname and sizes from this machine; `root` is yund's root dir. */
int host_probe(const char *root, struct st_host *h, struct yun_err *err);

/* Capacity = physical x over-commit (rounded down). */
void host_capacity(const struct st_host *h, struct st_capacity *cap);

struct host_usage {
	double load1;
	int64_t memory_used_mib;
	int64_t disk_used_gib;
};

/* Measured now (zeros when unavailable). Uses the root given to host_probe. */
void host_usage(struct host_usage *u);

#endif
