/*
 * trigger.h - for tests, until the control API drives snapshots: watch the
 * guest's serial output and, when a line starts with a configured text
 * (--snapshot-on-line match=TEXT,...), pause the VM, write a snapshot and
 * then exit or resume. Triggers fire once each, in the order given.
 *
 * The serial tap runs on the vCPU thread that wrote the byte; the work is
 * done by a thread of its own (vm_pause may not be called from a vCPU).
 */
#ifndef YUN_VMM_SNAPSHOT_TRIGGER_H
#define YUN_VMM_SNAPSHOT_TRIGGER_H

#include <pthread.h>
#include <stdbool.h>

#include "../../lib/err.h"
#include "../config.h"

struct vm;

struct snap_trigger {
	struct vm *vm;
	const struct vmm_config *cfg;   /* the triggers: cfg->triggers */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started;
	bool quit;
	unsigned matched;               /* triggers whose line was seen */
	unsigned handled;               /* of those, snapshots taken */
	char line[256];                 /* the line being printed (its start) */
	size_t len;
};

/* Nothing to do (returns 0) when cfg has no triggers. */
int snap_trigger_start(struct snap_trigger *t, struct vm *vm, const struct vmm_config *cfg,
		       struct yun_err *err);

/* After vm_run: stop the thread. Safe when never started. */
void snap_trigger_stop(struct snap_trigger *t);

#endif
