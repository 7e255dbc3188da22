/*
 * iothread.h - an epoll loop on its own thread that runs device work:
 * queue kicks (ioeventfds), backend completions, timers. Several devices
 * share one I/O thread; each registers the fds it waits on.
 *
 * Handlers run on the I/O thread only, one at a time. Watches are added
 * before iothread_start() (the VM's devices are fixed at creation).
 */
#ifndef YUN_VMM_VIRTIO_IOTHREAD_H
#define YUN_VMM_VIRTIO_IOTHREAD_H

#include <pthread.h>
#include <stdbool.h>

#include "../../lib/err.h"

#define IOTHREAD_MAX_WATCHES 128

typedef void (*iothread_fn)(void *arg);

struct iothread_watch {
	int fd;
	iothread_fn fn;
	void *arg;
};

struct iothread {
	int epfd;
	int stop_fd;     /* eventfd: written by iothread_stop() */
	pthread_t thread;
	bool started;
	unsigned nr;
	struct iothread_watch watch[IOTHREAD_MAX_WATCHES];
};

int iothread_init(struct iothread *io, struct yun_err *err);

/* Call fn(arg) on the I/O thread whenever fd is readable (level-triggered). */
int iothread_watch(struct iothread *io, int fd, iothread_fn fn, void *arg, struct yun_err *err);

int iothread_start(struct iothread *io, const char *name, struct yun_err *err);

/* Stop and join the thread (if started) and close its fds. */
void iothread_destroy(struct iothread *io);

#endif
