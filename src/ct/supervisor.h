/*
 * supervisor.h - the one small process that owns a container.
 *
 * `yun-ct run` forks twice (the middle process calls setsid and exits), so
 * the supervisor belongs to no terminal session and no client: killing the
 * client leaves the container running. The supervisor
 *   - builds the container (cgroup, state dir, container.h) and is the
 *     parent of its init, so it reaps it and records the exit status
 *     (128+N for signal N; "out of memory" when the cgroup saw an OOM kill);
 *   - holds the console (pty master or stdio pipes) and serves the socket
 *     protocol of proto.h: attach, exec, kill, stop, status;
 *   - when init exits: kills what is left in the cgroup, sends the exit
 *     status to every attached client, then removes the cgroup, the veth,
 *     and the state dir (unless --keep), and exits.
 * Single-threaded: one poll loop over the socket, the clients, the console
 * and a signalfd.
 */
#ifndef YUN_CT_SUPERVISOR_H
#define YUN_CT_SUPERVISOR_H

#include <stdint.h>

#include "../lib/err.h"
#include "cgroup.h"
#include "config.h"

/*
 * Run the supervisor of container `id` (its state dir exists) in the
 * calling process, which must be a fresh, detached process. `cgh` is the
 * host's cgroups as the client probed them (taken over and freed; NULL:
 * probe again). Once the container is created (or failed), one line goes
 * to report_fd: "0 <init pid>" or "<errno> <message>"; then report_fd is
 * closed. client_fd (-1: none) is a connected socket taken as the first
 * client; its requests are served after the report. Returns the process
 * exit status for the supervisor (0, or 1 after a failure).
 */
int ct_supervisor_main(struct ct_config *cfg, uint32_t userns_base, struct cgroup_host *cgh,
		       int report_fd, int client_fd);

#endif
