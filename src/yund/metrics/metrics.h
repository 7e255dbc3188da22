/*
 * metrics.h - GET /metrics: the Prometheus text exposition (format 0.0.4).
 *
 *   per instance (labels id, name, type):
 *     yun_instance_state{state}                   1 for the current state, 0 for the others
 *     yun_instance_vcpus, yun_instance_memory_limit_bytes   what it was given
 *     yun_instance_cpu_seconds_total               container: its cgroup's cpuacct.usage (v1)
 *                                                  or cpu.stat usage_usec (v2); microVM: the
 *                                                  process's utime + stime
 *     yun_instance_memory_bytes                    memory.usage_in_bytes / memory.current (RSS
 *                                                  of a microVM's process)
 *     yun_instance_network_{receive,transmit}_{bytes,packets}_total
 *                                                  the host-side link (yn_port_counters), seen
 *                                                  from the instance
 *     yun_instance_disk_{read,write}_bytes_total   io.stat rbytes/wbytes (v2) or blkio
 *                                                  throttle.io_service_bytes (v1); left out
 *                                                  where the host does not account (v1
 *                                                  without throttling on the devices)
 *   per host (label host):
 *     yun_host_vcpus, yun_host_memory_bytes, yun_host_{cpu,memory}_overcommit_ratio
 *     yun_host_allocated_vcpus, yun_host_allocated_memory_bytes, yun_host_instances
 *     yun_host_cpu_seconds_total{mode}             /proc/stat
 *     yun_host_memory_{total,available,used}_bytes /proc/meminfo
 *   API (apistats.h): yun_api_requests_total, yun_api_request_duration_seconds
 *
 * Counters that cannot be read (no cgroup yet, no network) are left out
 * for that instance rather than shown as 0. Usage counters restart from 0
 * when a container restarts (a new cgroup), as Prometheus's rate() expects.
 */
#ifndef YUND_METRICS_METRICS_H
#define YUND_METRICS_METRICS_H

/* The route's handler is v1_metrics (api/v1.h), defined in metrics.c. */

/* Free what the collector keeps (at exit). */
void metrics_free(void);

#endif
