/*
 * ranges.h - the ranges the API accepts (documented in docs/api/yund.yaml).
 * Anything outside is refused with 422 before it reaches the store.
 */
#ifndef YUND_API_RANGES_H
#define YUND_API_RANGES_H

#define LIM_VCPUS_MIN	  1
#define LIM_VCPUS_MAX	  256
#define LIM_VM_VCPUS_MAX  64 /* yun-vmm's limit (MP table and MADT) */
#define LIM_VM_MEMORY_MAX 1048576 /* MiB: yun-vmm's limit (1 TiB) */
#define LIM_MEMORY_MIN	  16	  /* MiB */
#define LIM_MEMORY_MAX	  4194304 /* MiB = 4 TiB */
#define LIM_DISK_MIN	  0
#define LIM_DISK_MAX	  65536 /* GiB */
#define LIM_USER_DATA_MAX 65536 /* bytes */
#define LIM_ARGS_MAX	  256	/* command / env items */
#define LIM_ARG_LEN_MAX	  4096	/* bytes per command / env item */
#define LIM_STOP_TIMEOUT  3600	/* seconds */
#define LIM_LOG_TAIL_MAX  100000
#define LIM_VOLUME_MIN	  1	/* GiB */
#define LIM_INSTANCE_VOLUMES 16	/* volumes at an instance create */
#define LIM_VOLUME_MAX	  65536 /* GiB; and at most the host's free disk (507) */
#define LIM_LOG_BYTES	  (1u << 20) /* GET logs returns at most the last 1 MiB */

#endif
