/* reconcile.c - see reconcile.h. */
#include "reconcile.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/log.h"
#include "../core/proc.h"
#include "../image/image.h"
#include "../yund.h"
#include "instance.h"
#include "netplug.h"

#define IDLE_MS	 1000
#define BUSY_MS	 10
#define SWEEP_MS 5000

struct reconcile {
	struct yund *y;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool kicked, stopping;
	struct inst_table *inst;
	struct img_jobs *jobs;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sweep(struct reconcile *r)
{
	inst_sweep(r->y);
	img_sweep(r->y, r->jobs);
}

static void *loop(void *arg)
{
	struct reconcile *r = arg;
	int64_t last_sweep = 0;
	bool kicked = false;

	for (;;) {
		bool busy = false;
		struct timespec until;
		int64_t wait_ms;

		proc_reap();
		img_reconcile(r->y, r->jobs, &busy);
		netplug_networks(r->y);
		inst_reconcile(r->y, r->inst, &busy);
		/* Kicks follow API changes (deletions among them): sweep then too. */
		if (kicked || !last_sweep || now_ms() - last_sweep >= SWEEP_MS) {
			sweep(r);
			last_sweep = now_ms();
		}

		pthread_mutex_lock(&r->lock);
		wait_ms = busy ? BUSY_MS : IDLE_MS;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!r->kicked && !r->stopping &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &until) != ETIMEDOUT)
			;
		kicked = r->kicked;
		r->kicked = false;
		if (r->stopping) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

int rec_start(struct yund *y, struct reconcile **out, struct yun_err *err)
{
	struct reconcile *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	int rc;

	if (!r)
		return yun_err_set(err, ENOMEM, "out of memory");
	r->y = y;
	r->inst = inst_table_new();
	r->jobs = img_jobs_new();
	if (!r->inst || !r->jobs) {
		inst_table_free(r->inst);
		img_jobs_free(r->jobs);
		free(r);
		return yun_err_set(err, ENOMEM, "out of memory");
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Published before the thread runs: API handlers kick through y->rec. */
	*out = r;
	rc = pthread_create(&r->thread, NULL, loop, r);
	if (rc) {
		*out = NULL;
		inst_table_free(r->inst);
		img_jobs_free(r->jobs);
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return yun_err_errno(err, rc, "reconcile thread");
	}
	return 0;
}

void rec_kick(struct reconcile *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->kicked = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void rec_stop(struct reconcile *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	img_jobs_free(r->jobs);
	inst_table_free(r->inst);
	netplug_free();
	proc_free_table();
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
