/*
 * instance.h - instances, reconciled: each pass compares what an
 * instance should be (desired) with what its container is (ctdrv_observe)
 * and takes the one step that brings them closer. Every step is idempotent
 * and every host name derives from the instance id, so a pass after a
 * crash at any point finishes or undoes what was in flight:
 *
 *   desired running, no container        -> start (state starting)
 *   desired running, container running   -> adopt (state running, pid)
 *   desired paused (microVMs), VM running -> PATCH /vm Paused (state paused);
 *        desired running again           -> Resumed (state running)
 *   desired stopped, container running   -> ask it to stop (state stopping;
 *        a microVM: the API's Shutdown with the stop timeout as deadline,
 *        SIGTERM only when the API does not answer)
 *   container ended (exited/dead)        -> record how, remove it; then
 *        desired stopped -> stopped; a reboot pending -> start again;
 *        else the restart policy: restart, or failed/stopped with
 *        desired = stopped
 *   desired deleted                      -> remove container, files, row
 *
 * Files: <root>/instances/<id>/{ct.json,console.log}.
 */
#ifndef YUND_COMPUTE_INSTANCE_H
#define YUND_COMPUTE_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>

struct yund;

#define INSTANCE_DEFAULT_FLAVOR "small"
#define INSTANCE_STOP_TIMEOUT	10 /* seconds from the stop signal to KILL */

void instance_dir(const struct yund *y, const char *id, char *buf, size_t len);
void instance_log_path(const struct yund *y, const char *id, char *buf, size_t len);

/*
 * A microVM's control API socket, <run>/vm/<id>.sock, into buf; false when
 * it does not fit a Unix socket address (the VM then runs without the API).
 */
bool instance_api_sock(const struct yund *y, const char *id, char *buf, size_t len);

/* What the loop remembers between passes (lost on restart; never needed for safety). */
struct inst_table;

struct inst_table *inst_table_new(void);
void inst_table_free(struct inst_table *t);

/* One pass over every instance. *busy: one is in transition (look again soon). */
void inst_reconcile(struct yund *y, struct inst_table *t, bool *busy);

/* Remove containers and instance dirs that belong to no instance row. */
void inst_sweep(struct yund *y);

#endif
