/* reconcile.c - see reconcile.h. */
#include "reconcile.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/log.h"
#include "../core/proc.h"
#include "../image/image.h"
#include "../volume/volume.h"
#include "../yund.h"
#include "ctdrv.h"
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
	bool woken; /* a container's state changed (the watcher) */
	struct inst_table *inst;
	struct img_jobs *jobs;
	/* The watcher: inotify on yun-ct's state root; -1 when there is none. */
	pthread_t watcher;
	int ino, ino_root, stop_fd;
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
	vol_sweep(r->y);
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
		vol_reconcile(r->y, &busy);
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
		while (!r->kicked && !r->woken && !r->stopping &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &until) != ETIMEDOUT)
			;
		kicked = r->kicked;
		r->kicked = false;
		r->woken = false;
		if (r->stopping) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

/*
 * The watcher: yun-ct records every change of a container's state by
 * renaming <ct root>/<id>/state.json into place, so an inotify watch on
 * the root (new container directories) and on each container directory
 * wakes the loop the moment a container is running, stopping or has
 * exited, instead of on its next BUSY_MS tick. The tick stays as the
 * fallback: a watch that could not be added or an overflowed queue costs
 * at most BUSY_MS.
 */
static void watch_dir(struct reconcile *r, const char *name)
{
	char path[PATH_MAX];

	if (name[0] == '.' ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", ctdrv_state_root(), name) >= sizeof(path))
		return;
	/* A directory gone meanwhile (ENOENT) has nothing left to say. */
	(void)inotify_add_watch(r->ino, path, IN_MOVED_TO | IN_ONLYDIR);
}

static void wake(struct reconcile *r)
{
	pthread_mutex_lock(&r->lock);
	r->woken = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void *watch_loop(void *arg)
{
	struct reconcile *r = arg;
	union {
		struct inotify_event ev;
		char buf[8192];
	} u;
	struct pollfd p[2] = {{.fd = r->ino, .events = POLLIN},
			      {.fd = r->stop_fd, .events = POLLIN}};

	for (;;) {
		ssize_t n;
		bool changed = false;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[1].revents)
			return NULL;
		if (!p[0].revents)
			continue;
		n = read(r->ino, u.buf, sizeof(u.buf));
		if (n <= 0)
			continue;
		for (char *q = u.buf; q < u.buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)q;

			if (ev->mask & IN_Q_OVERFLOW)
				changed = true;
			else if (ev->wd == r->ino_root && (ev->mask & IN_ISDIR) && ev->len)
				watch_dir(r, ev->name);
			else if (ev->len && !strcmp(ev->name, "state.json"))
				changed = true;
			q += sizeof(*ev) + ev->len;
		}
		if (changed)
			wake(r);
	}
}

/* Start the watcher; on any failure there is none and the tick does the work. */
static void watch_start(struct reconcile *r)
{
	const char *root = ctdrv_state_root();
	DIR *d;
	struct dirent *de;

	r->stop_fd = eventfd(0, EFD_CLOEXEC);
	r->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	/* The root as yun-ct makes it (0711), so it can be watched before the first run. */
	if (mkdir(root, 0711) < 0 && errno != EEXIST)
		yun_warn("yun-ct state root %s: %s", root, strerror(errno));
	if (r->stop_fd >= 0 && r->ino >= 0)
		r->ino_root = inotify_add_watch(r->ino, root, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
	if (r->stop_fd < 0 || r->ino < 0 || r->ino_root < 0 ||
	    pthread_create(&r->watcher, NULL, watch_loop, r)) {
		yun_warn("watching %s: %s; noticing container changes every %d ms", root,
			 strerror(errno), BUSY_MS);
		if (r->ino >= 0)
			close(r->ino);
		if (r->stop_fd >= 0)
			close(r->stop_fd);
		r->ino = r->stop_fd = -1;
		return;
	}
	/* Containers already there (adopted ones): after the root's watch, so none is missed. */
	d = opendir(root);
	while (d && (de = readdir(d)))
		watch_dir(r, de->d_name);
	if (d)
		closedir(d);
}

static void watch_stop(struct reconcile *r)
{
	uint64_t one = 1;

	if (r->ino < 0)
		return;
	if (write(r->stop_fd, &one, sizeof(one)) != sizeof(one))
		yun_warn("stopping the container watcher: %s", strerror(errno));
	pthread_join(r->watcher, NULL);
	close(r->ino);
	close(r->stop_fd);
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
	watch_start(r);
	/* Published before the thread runs: API handlers kick through y->rec. */
	*out = r;
	rc = pthread_create(&r->thread, NULL, loop, r);
	if (rc) {
		*out = NULL;
		watch_stop(r);
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
	watch_stop(r);
	img_jobs_free(r->jobs);
	inst_table_free(r->inst);
	netplug_free();
	proc_free_table();
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
