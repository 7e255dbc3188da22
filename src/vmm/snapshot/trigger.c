/* trigger.c - see trigger.h. */
#include "trigger.h"

#include <string.h>

#include "../../lib/log.h"
#include "../vm.h"
#include "snapshot.h"

/* vCPU thread, UART lock held: cheap, never blocks for long. */
static void trigger_tap(void *ctx, const uint8_t *buf, size_t n)
{
	struct snap_trigger *t = ctx;

	for (size_t i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (buf[i] != '\r' && t->len < sizeof(t->line) - 1)
				t->line[t->len++] = (char)buf[i];
			continue;
		}
		t->line[t->len] = '\0';
		t->len = 0;
		pthread_mutex_lock(&t->lock);
		if (t->matched < t->cfg->nr_triggers) {
			const char *m = t->cfg->triggers[t->matched].match;

			if (!strncmp(t->line, m, strlen(m))) {
				t->matched++;
				pthread_cond_signal(&t->cond);
			}
		}
		pthread_mutex_unlock(&t->lock);
	}
}

static void *trigger_thread(void *arg)
{
	struct snap_trigger *t = arg;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		const struct vmm_snap_trigger *k;
		struct yun_err err = { 0 };
		int rc;

		while (!t->quit && t->handled == t->matched)
			pthread_cond_wait(&t->cond, &t->lock);
		if (t->quit)
			break;
		k = &t->cfg->triggers[t->handled++];
		pthread_mutex_unlock(&t->lock);

		rc = vm_pause(t->vm, &err);
		if (!rc)
			rc = vm_snapshot_save(t->vm, k->state, k->mem, k->diff, &err);
		if (rc) {
			vm_request_stop(t->vm, VM_STOP_ERROR, 1, err.msg, NULL);
		} else if (!k->resume) {
			vm_request_stop(t->vm, VM_STOP_POWEROFF, 0, "snapshot written", NULL);
		} else if (vm_resume(t->vm, &err) < 0) {
			vm_request_stop(t->vm, VM_STOP_ERROR, 1, err.msg, NULL);
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int snap_trigger_start(struct snap_trigger *t, struct vm *vm, const struct vmm_config *cfg,
		       struct yun_err *err)
{
	int rc;

	memset(t, 0, sizeof(*t));
	if (!cfg->nr_triggers)
		return 0;
	t->vm = vm;
	t->cfg = cfg;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	rc = pthread_create(&t->thread, NULL, trigger_thread, t);
	if (rc) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		return yun_err_errno(err, rc, "snapshot trigger thread");
	}
	t->started = true;
	vm->serial_tap_ctx = t;
	vm->serial_tap = trigger_tap;
	return 0;
}

void snap_trigger_stop(struct snap_trigger *t)
{
	if (!t->started)
		return;
	t->vm->serial_tap = NULL;
	pthread_mutex_lock(&t->lock);
	t->quit = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	t->started = false;
}
