/*
 * iothread.h - an epoll loop on its own thread that runs device work:
 * queue kicks (ioeventfds), backend completions, timers. Several devices
 * share one I/O thread; each registers the fds it waits on.
 *
 * Handlers run on the I/O thread only, one at a time (or, in a harness
 * that never starts the thread, on the one calling iothread_poll()).
 * Watches are added before iothread_start() (the VM's devices are fixed at
 * creation).
 */
#ifndef YUN_VMM_VIRTIO_IOTHREAD_H
#define YUN_VMM_VIRTIO_IOTHREAD_H

#include <pthread.h>
#include <stdbool.h>

#include "../../lib/err.h"

#define IOTHREAD_MAX_WATCHES 128
#define IOTHREAD_MAX_EVENTS  16   /* ready fds taken from one epoll_wait */

typedef void (*iothread_fn)(void *arg);

struct iothread_watch {
	int fd;
	iothread_fn fn;
	void *arg;
};

struct iothread {
	int epfd;
	int stop_fd;     /* eventfd: written by iothread_stop() */
	int pause_fd;    /* eventfd: written by iothread_pause() */
	struct iothread_watch pause_watch;
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	bool pause_req, parked;
	pthread_t thread;
	bool started;
	bool stopping;   /* iothread_destroy began: no handler runs any more */
	unsigned nr;
	struct iothread_watch watch[IOTHREAD_MAX_WATCHES];
};

int iothread_init(struct iothread *io, struct yun_err *err);

/* Call fn(arg) on the I/O thread whenever fd is readable (level-triggered). */
int iothread_watch(struct iothread *io, int fd, iothread_fn fn, void *arg, struct yun_err *err);

/*
 * Stop (false) or resume (true) calling a watch's handler, e.g. a backend fd
 * while the guest has no buffers for what it would deliver. The fd leaves
 * the epoll set while paused, so not even an error condition wakes the
 * thread. Any thread; -ENOENT for an fd never watched.
 */
int iothread_watch_enable(struct iothread *io, int fd, bool enable);

int iothread_start(struct iothread *io, const char *name, struct yun_err *err);

/*
 * One round of the loop on the caller's thread: wait up to timeout_ms (-1:
 * for ever) for watched fds and run their handlers. It is the whole body of
 * the started thread's loop; a harness that plays the guest on one thread
 * calls it instead of iothread_start(). Returns the handlers run (0 on
 * timeout or EINTR), -ECANCELED once iothread_destroy() asked the loop to
 * stop, another negative errno if epoll_wait failed.
 */
int iothread_poll(struct iothread *io, int timeout_ms);

/*
 * Park the started thread between handlers and wait until it is parked, so
 * no device work runs until iothread_resume() (a VM pause, a snapshot).
 * Not from the I/O thread itself. Without a started thread: nothing to do.
 */
void iothread_pause(struct iothread *io);
void iothread_resume(struct iothread *io);

/* Stop and join the thread (if started) and close its fds. */
void iothread_destroy(struct iothread *io);

#endif
