/* iothread.c - see iothread.h. */
#include "iothread.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The pause eventfd fired (I/O thread): park until iothread_resume(). */
static void iothread_park(void *arg)
{
	struct iothread *io = arg;
	uint64_t v;

	if (read(io->pause_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&io->pause_lock);
	io->parked = true;
	pthread_cond_broadcast(&io->pause_cond);
	while (io->pause_req)
		pthread_cond_wait(&io->pause_cond, &io->pause_lock);
	io->parked = false;
	pthread_mutex_unlock(&io->pause_lock);
}
#include "../../lib/log.h"
#include "../sandbox/seccomp.h"

int iothread_init(struct iothread *io, struct yun_err *err)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct epoll_event pev = { .events = EPOLLIN };

	memset(io, 0, sizeof(*io));
	io->pause_fd = -1;
	io->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (io->epfd < 0)
		return yun_err_errno(err, errno, "I/O thread: epoll_create1");
	io->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->stop_fd < 0 || epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->stop_fd, &ev) < 0) {
		int e = errno;

		if (io->stop_fd >= 0)
			close(io->stop_fd);
		close(io->epfd);
		io->epfd = io->stop_fd = -1;
		return yun_err_errno(err, e, "I/O thread: stop eventfd");
	}
	io->pause_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	io->pause_watch = (struct iothread_watch){ io->pause_fd, iothread_park, io };
	pev.data.ptr = &io->pause_watch;
	if (io->pause_fd < 0 || epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->pause_fd, &pev) < 0) {
		int e = errno;

		if (io->pause_fd >= 0)
			close(io->pause_fd);
		close(io->stop_fd);
		close(io->epfd);
		io->epfd = io->stop_fd = io->pause_fd = -1;
		return yun_err_errno(err, e, "I/O thread: pause eventfd");
	}
	pthread_mutex_init(&io->pause_lock, NULL);
	pthread_cond_init(&io->pause_cond, NULL);
	return 0;
}

void iothread_pause(struct iothread *io)
{
	uint64_t one = 1;

	if (!io->started)
		return;
	pthread_mutex_lock(&io->pause_lock);
	if (!io->pause_req) {
		io->pause_req = true;
		while (write(io->pause_fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
	while (!io->parked)
		pthread_cond_wait(&io->pause_cond, &io->pause_lock);
	pthread_mutex_unlock(&io->pause_lock);
}

void iothread_resume(struct iothread *io)
{
	if (!io->started)
		return;
	pthread_mutex_lock(&io->pause_lock);
	io->pause_req = false;
	pthread_cond_broadcast(&io->pause_cond);
	pthread_mutex_unlock(&io->pause_lock);
}

int iothread_watch(struct iothread *io, int fd, iothread_fn fn, void *arg, struct yun_err *err)
{
	struct iothread_watch *w;
	struct epoll_event ev = { .events = EPOLLIN };

	if (io->nr == IOTHREAD_MAX_WATCHES)
		return yun_err_set(err, ENOSPC, "I/O thread: more than %d watches",
				   IOTHREAD_MAX_WATCHES);
	w = &io->watch[io->nr];
	*w = (struct iothread_watch){ fd, fn, arg };
	ev.data.ptr = w;
	if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return yun_err_errno(err, errno, "I/O thread: watch fd %d", fd);
	io->nr++;
	return 0;
}

int iothread_watch_enable(struct iothread *io, int fd, bool enable)
{
	for (unsigned i = 0; i < io->nr; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &io->watch[i] };

		if (io->watch[i].fd != fd)
			continue;
		/* DEL rather than MOD to 0 events: EPOLLERR/EPOLLHUP would still wake us. */
		if (epoll_ctl(io->epfd, enable ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) < 0 &&
		    errno != (enable ? EEXIST : ENOENT))
			return -errno;
		return 0;
	}
	return -ENOENT;
}

int iothread_poll(struct iothread *io, int timeout_ms)
{
	struct epoll_event ev[IOTHREAD_MAX_EVENTS];
	int n = epoll_wait(io->epfd, ev, IOTHREAD_MAX_EVENTS, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno; /* EINTR: io_uring task work, a signal */
	for (int i = 0; i < n; i++) {
		struct iothread_watch *w = ev[i].data.ptr;

		if (!w || __atomic_load_n(&io->stopping, __ATOMIC_ACQUIRE))
			return -ECANCELED; /* the stop eventfd, or a stop already under way */
		w->fn(w->arg);
	}
	return n;
}

static void *iothread_main(void *arg)
{
	struct iothread *io = arg;
	struct yun_err err;

	if (sandbox_enter(SANDBOX_IO, &err) < 0) {
		yun_error("%s: the I/O thread stops", err.msg);
		return NULL;
	}
	while (iothread_poll(io, -1) >= 0)
		;
	return NULL;
}

int iothread_start(struct iothread *io, const char *name, struct yun_err *err)
{
	int rc = pthread_create(&io->thread, NULL, iothread_main, io);

	if (rc)
		return yun_err_errno(err, rc, "I/O thread: start");
	pthread_setname_np(io->thread, name);
	io->started = true;
	return 0;
}

void iothread_destroy(struct iothread *io)
{
	uint64_t one = 1;

	if (io->started) {
		/*
		 * Before the resume: a queue kicked before a pause is not served by
		 * a VM that is going away (after a live migration the destination
		 * serves it, and a disk write here would race the destination's).
		 */
		__atomic_store_n(&io->stopping, true, __ATOMIC_RELEASE);
		iothread_resume(io); /* a parked thread must see the stop */
		/* An eventfd write of 1 cannot fail short of overflow; the join would hang. */
		while (write(io->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(io->thread, NULL);
		io->started = false;
	}
	if (io->stop_fd >= 0)
		close(io->stop_fd);
	if (io->pause_fd >= 0) {
		close(io->pause_fd);
		pthread_cond_destroy(&io->pause_cond);
		pthread_mutex_destroy(&io->pause_lock);
	}
	if (io->epfd >= 0)
		close(io->epfd);
	io->stop_fd = io->epfd = io->pause_fd = -1;
}
