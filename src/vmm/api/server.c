/* server.c - see server.h. */
#include "server.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "../../lib/log.h"
#include "../control.h"
#include "../sandbox/seccomp.h"
#include "routes.h"

struct api_server {
	struct ctl *ctl;
	bool verbose;
	struct MHD_Daemon *mhd;
	int listen_fd;
	int stop_fd;               /* eventfd: the thread's signal to end */
	int epoll_fd;              /* waits on MHD's epoll fd and stop_fd */
	pthread_t thread;
	bool thread_started;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/*
 * A body over API_BODY_MAX is read and dropped, then answered 413, up to
 * this size; a larger Content-Length is answered before the body is read
 * (the connection then closes under a client still sending).
 */
#define DROP_MAX (1 << 20)

/* One request's body, gathered across libmicrohttpd's calls. */
struct upload {
	char *data;
	size_t len;
	bool too_large;
	bool answered;             /* the 413 went out before the body */
	bool stop_after;           /* api_reply.stop_after: tell the controller when done */
	size_t dropped;
};

/* ---- answers ---------------------------------------------------------------------- */

static enum MHD_Result send_reply(struct api_server *s, struct MHD_Connection *conn,
				  const char *method, const char *url, struct api_reply *r)
{
	struct MHD_Response *resp;
	char *text = NULL;
	enum MHD_Result ret;

	if (r->body) {
		text = json_dumps(r->body, JSON_COMPACT);
		json_decref(r->body);
		r->body = NULL;
	}
	resp = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
		    : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	if (text)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (r->allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (s->verbose)
		yun_info("api: %s %s %u", method, url, r->status);
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result too_large(struct api_server *s, struct MHD_Connection *conn,
				 const char *method, const char *url)
{
	struct api_reply r = { .status = 413 };
	char msg[300];

	snprintf(msg, sizeof(msg), "%s %.200s: the body is larger than %d bytes", method, url,
		 API_BODY_MAX);
	r.body = json_pack("{s:s}", "fault_message", msg);
	return send_reply(s, conn, method, url, &r);
}

/*
 * libmicrohttpd calls this once when the headers are in, then once per
 * piece of body, then once more with no data: time to answer.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct api_server *s = cls;
	struct upload *up = *con_cls;
	struct api_reply r;

	(void)version;
	if (!up) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		up = calloc(1, sizeof(*up));
		if (!up)
			return MHD_NO;
		*con_cls = up;
		if (cl && strtoull(cl, NULL, 10) > DROP_MAX) {
			up->too_large = true;
			up->answered = true;
			return too_large(s, conn, method, url);
		}
		return MHD_YES;
	}
	if (up->answered) {
		*data_size = 0;
		return MHD_YES;
	}
	if (*data_size) {
		size_t n = *data_size;

		*data_size = 0;
			if (up->too_large || up->len + n > API_BODY_MAX) {
			/* Too long: drop it, answer 413 at the end (or give up past DROP_MAX). */
			up->too_large = true;
			up->dropped += n;
			return up->dropped > DROP_MAX ? MHD_NO : MHD_YES;
		}
		if (!up->data && !(up->data = malloc(API_BODY_MAX)))
			return MHD_NO;
		memcpy(up->data + up->len, data, n);
		up->len += n;
		return MHD_YES;
	}
	if (up->answered)
		return MHD_YES;
	if (up->too_large)
		return too_large(s, conn, method, url);
	api_handle(s->ctl, method, url, up->data, up->len, &r);
	up->stop_after = r.stop_after;
	return send_reply(s, conn, method, url, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode why)
{
	struct api_server *s = cls;
	struct upload *up = *con_cls;

	(void)conn;
	(void)why;
	/* Sent (or the client went away): now the migrated VM may stop. */
	if (up && up->stop_after)
		ctl_migrated_reply_sent(s->ctl);
	if (up) {
		free(up->data);
		free(up);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	yun_vlog(YUN_LOG_DEBUG, "api: ", fmt, ap);
}

/* ---- the thread --------------------------------------------------------------------- */

static void *api_thread(void *arg)
{
	struct api_server *s = arg;
	struct yun_err err = { 0 };

	pthread_setname_np(pthread_self(), "api");
	if (sandbox_enter(SANDBOX_API, &err) < 0) {
		yun_error("api: %s (the API is not served)", err.msg);
		return NULL;
	}
	for (;;) {
		MHD_UNSIGNED_LONG_LONG left;
		struct epoll_event ev[2];
		int ms = -1, n;
		bool stop = false;

		if (MHD_get_timeout(s->mhd, &left) == MHD_YES)
			ms = left > INT_MAX ? INT_MAX : (int)left;
		n = epoll_wait(s->epoll_fd, ev, 2, ms);
		if (n < 0 && errno != EINTR) {
			yun_error("api: epoll_wait: %s (the API stops)", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++)
			stop |= ev[i].data.fd == s->stop_fd;
		if (stop)
			break;
		MHD_run(s->mhd);
	}
	return NULL;
}

/* ---- the socket ---------------------------------------------------------------------- */

/*
 * Listen on a temporary name beside `path`, then rename it into place: a
 * client that waits for the file to appear never finds it not listening.
 */
static int listen_unix(const char *path, struct yun_err *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char tmp[sizeof(a.sun_path)];
	struct stat st;
	int fd, n;

	n = snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	if (!*path || n < 0 || (size_t)n >= sizeof(a.sun_path))
		return yun_err_set(err, ENAMETOOLONG, "--api-sock %s: empty or too long (a socket "
				   "path holds %zu bytes, with .PID added while it is set up)", path,
				   sizeof(a.sun_path) - 1);
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return yun_err_set(err, EEXIST, "--api-sock %s: exists and is not a socket", path);
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return yun_err_errno(err, errno, "--api-sock %s: socket", path);
	/* A socket file nobody answers on is left over from a dead process: replace it. */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		close(fd);
		return yun_err_set(err, EADDRINUSE, "--api-sock %s: another process serves it", path);
	}
	close(fd);
	strcpy(a.sun_path, tmp);
	unlink(tmp);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return yun_err_errno(err, errno, "--api-sock %s: socket", path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		return yun_err_errno(err, e, "--api-sock %s", tmp);
	}
	if (chmod(tmp, 0600) < 0 || listen(fd, 16) < 0 || rename(tmp, path) < 0) {
		int e = errno;

		close(fd);
		unlink(tmp);
		return yun_err_errno(err, e, "--api-sock %s", path);
	}
	return fd;
}

int api_server_start(struct api_server **out, const char *path, struct ctl *ctl, bool verbose,
		     struct yun_err *err)
{
	struct api_server *s = calloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;
	struct epoll_event ev = { .events = EPOLLIN };
	int rc;

	if (!s)
		return yun_err_set(err, ENOMEM, "out of memory");
	s->ctl = ctl;
	s->verbose = verbose;
	s->stop_fd = s->epoll_fd = -1;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->listen_fd = listen_unix(path, err);
	if (s->listen_fd < 0) {
		rc = s->listen_fd;
		free(s);
		return rc;
	}
	s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, s,
				  MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!s->mhd) {
		close(s->listen_fd);
		unlink(s->path);
		free(s);
		return yun_err_set(err, EIO, "--api-sock %s: libmicrohttpd did not start", path);
	}
	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	rc = s->stop_fd < 0 || s->epoll_fd < 0 || !info ? -1 : 0;
	ev.data.fd = info ? info->epoll_fd : -1;
	if (!rc)
		rc = epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, info->epoll_fd, &ev);
	ev.data.fd = s->stop_fd;
	if (!rc)
		rc = epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->stop_fd, &ev);
	if (rc) {
		rc = yun_err_errno(err, errno, "--api-sock %s: epoll", path);
		api_server_stop(s);
		return rc;
	}
	rc = pthread_create(&s->thread, NULL, api_thread, s);
	if (rc) {
		api_server_stop(s);
		return yun_err_errno(err, rc, "--api-sock %s: thread", path);
	}
	s->thread_started = true;
	*out = s;
	return 0;
}

void api_server_stop(struct api_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	if (s->thread_started) {
		if (write(s->stop_fd, &one, sizeof(one)) != sizeof(one))
			yun_warn("api: cannot wake the API thread: %s", strerror(errno));
		pthread_join(s->thread, NULL);
	}
	MHD_stop_daemon(s->mhd); /* closes the listening socket too */
	unlink(s->path);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	free(s);
}
