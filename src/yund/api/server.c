/* server.c - see server.h. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "../../lib/log.h"
#include "../metrics/apistats.h"
#include "../metrics/metrics.h"
#include "../yund.h"
#include "http.h"
#include "router.h"
#include "v1.h"

struct listener {
	struct api_server *srv;
	bool tcp;
};

struct api_server {
	struct yund *y;
	struct listener unix_l, tcp_l;
	struct MHD_Daemon *unix_d, *tcp_d;
	int unix_fd, tcp_fd;
	char sock_path[PATH_MAX];
};

/* An upgraded connection's work, from the handler's reply to the socket. */
struct upgrade_job {
	void (*fn)(void *ctx, int fd, const char *extra, size_t extra_len);
	void *ctx;
	void (*free)(void *ctx);
};

/* Per request, between the calls libmicrohttpd makes for it. */
struct req_state {
	struct timespec t0;	 /* the request's first call: latency metrics */
	const char *route;	 /* its route's pattern, for the metrics */
	struct upgrade_job *job; /* queued, not yet run (freed by on_completed if never) */
	char *body;
	size_t len, cap;
	bool replied;	/* an early answer (401, 413) went out; ignore the rest */
	bool too_large; /* over API_BODY_MAX: read and dropped, then 413 */
	size_t dropped;
};

/*
 * A body without Content-Length (chunked) that grows past the cap is read
 * and dropped (libmicrohttpd cannot answer in the middle of an upload), up
 * to this much; beyond, the connection is closed.
 */
#define DROP_MAX (16u << 20)

/* ---- answering ---- */

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
		       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct upgrade_job *j = cls;
	struct req_state *rs = con_cls;

	(void)conn;
	if (rs && rs->job == j)
		rs->job = NULL;
	j->fn(j->ctx, sock, extra, extra_len);
	if (j->free)
		j->free(j->ctx);
	free(j);
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static enum MHD_Result queue(struct MHD_Connection *conn, struct api_reply *r, const char *method,
			     const char *url, bool verbose, struct req_state *rs)
{
	struct MHD_Response *resp = NULL;
	enum MHD_Result ret;

	if (r->upgraded) {
		struct upgrade_job *j = malloc(sizeof(*j));

		if (j) {
			*j = (struct upgrade_job){r->upgraded, r->stream_ctx, r->stream_free};
			resp = MHD_create_response_for_upgrade(on_upgrade, j);
			if (!resp) {
				free(j);
			} else {
				r->stream_ctx = NULL;
				if (rs)
					rs->job = j;
				MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, r->upgrade);
				MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
							"Upgrade");
			}
		}
	} else if (r->stream) {
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, r->stream,
							 r->stream_ctx, r->stream_free);
		if (resp) {
			r->stream_ctx = NULL; /* libmicrohttpd frees it now */
			r->stream = NULL;
		}
	} else if (r->fd >= 0) {
		resp = MHD_create_response_from_fd_at_offset64(r->fd_len, r->fd, r->fd_off);
		if (resp)
			r->fd = -1;
	} else if (r->json) {
		char *text = json_dumps(r->json, JSON_COMPACT);
		size_t len;

		if (text) {
			len = strlen(text);
			/* A newline, as curl users expect; MHD frees text. */
			char *t2 = realloc(text, len + 2);

			if (t2) {
				text = t2;
				text[len++] = '\n';
				text[len] = '\0';
			}
			resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
			if (!resp)
				free(text);
		}
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						"application/json");
	} else {
		resp = MHD_create_response_from_buffer(r->text_len, r->text ? r->text : (char *)"",
						       r->text ? MHD_RESPMEM_MUST_FREE
							       : MHD_RESPMEM_PERSISTENT);
		if (resp)
			r->text = NULL;
	}
	if (!resp) {
		api_reply_release(r);
		return MHD_NO;
	}
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	if (r->allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"yund\"");
	if (verbose)
		yun_info("%s %s %u", method, url, r->status);
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	api_reply_release(r);
	return ret;
}

static enum MHD_Result queue_error(struct MHD_Connection *conn, struct api_server *srv,
				   unsigned status, const char *method, const char *url,
				   const char *msg)
{
	struct api_reply r;

	api_reply_init(&r);
	api_reply_error(&r, status, "%s", msg);
	return queue(conn, &r, method, url, srv->y->cfg->verbose, NULL);
}

/* ---- authentication (TCP only) ---- */

static bool token_ok(struct api_server *srv, struct MHD_Connection *conn)
{
	const char *h =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *want = srv->y->token;
	size_t wl = strlen(want), gl;
	unsigned diff = 0;

	if (!h || strncasecmp(h, "Bearer ", 7) || !wl)
		return false;
	h += 7;
	gl = strlen(h);
	/* Constant time in the token's length: no early exit on a mismatch. */
	diff = gl != wl;
	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? h[i] : 0);
	return diff == 0;
}

/* ---- the request handler ---- */

static void dispatch(struct api_server *srv, struct MHD_Connection *conn, const char *method,
		     const char *url, struct req_state *rs, struct api_reply *rep)
{
	struct api_req req = {.y = srv->y, .conn = conn, .method = method, .path = url};
	const struct route *rt;
	char allow[64];

	req.body = rs->body;
	req.body_len = rs->len;
	rs->route = "unmatched";
	switch (route_match(v1_routes, v1_n_routes, method, url, &rt, &req, allow, sizeof(allow))) {
	case ROUTE_NOT_FOUND:
		api_reply_error(rep, 404, "path %.200s: not found", url);
		return;
	case ROUTE_BAD_METHOD:
		api_reply_error(rep, 405, "path %.200s: method %s not allowed (allowed: %s)", url,
				method, allow);
		snprintf(rep->allow, sizeof(rep->allow), "%s", allow);
		return;
	case ROUTE_OK:
		rs->route = rt->pattern;
		rt->fn(&req, rep);
		return;
	}
}

/* Count the answer and its latency in the API metrics. */
static void observe(struct req_state *rs, const char *method, unsigned status)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	apistats_observe(rs->route ? rs->route : "unmatched", method, status,
			 (double)(t1.tv_sec - rs->t0.tv_sec) +
			     (double)(t1.tv_nsec - rs->t0.tv_nsec) / 1e9);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;
	struct api_server *srv = l->srv;
	struct req_state *rs = *con_cls;
	struct api_reply rep;

	(void)version;
	if (!rs) {
		const char *cl;

		rs = calloc(1, sizeof(*rs));
		if (!rs)
			return MHD_NO;
		*con_cls = rs;
		clock_gettime(CLOCK_MONOTONIC, &rs->t0);
		if (l->tcp && !token_ok(srv, conn)) {
			rs->replied = true;
			observe(rs, method, 401);
			return queue_error(conn, srv, 401, method, url,
					   "request: missing or wrong bearer token "
					   "(Authorization: Bearer <token>)");
		}
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX) {
			rs->replied = true;
			observe(rs, method, 413);
			return queue_error(conn, srv, 413, method, url, "body: larger than 1 MiB");
		}
		return MHD_YES;
	}
	if (rs->replied) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (rs->too_large || rs->len + n > API_BODY_MAX) {
			rs->too_large = true;
			rs->dropped += n;
			return rs->dropped > DROP_MAX ? MHD_NO : MHD_YES;
		}
		if (rs->len + n + 1 > rs->cap) {
			size_t cap = rs->cap ? rs->cap : 4096;
			char *nb;

			while (cap < rs->len + n + 1)
				cap *= 2;
			nb = realloc(rs->body, cap);
			if (!nb)
				return MHD_NO;
			rs->body = nb;
			rs->cap = cap;
		}
		memcpy(rs->body + rs->len, upload_data, n);
		rs->len += n;
		rs->body[rs->len] = '\0';
		return MHD_YES;
	}
	rs->replied = true;
	if (rs->too_large) {
		observe(rs, method, 413);
		return queue_error(conn, srv, 413, method, url, "body: larger than 1 MiB");
	}
	api_reply_init(&rep);
	dispatch(srv, conn, method, url, rs, &rep);
	observe(rs, method, rep.status);
	return queue(conn, &rep, method, url, srv->y->cfg->verbose, rs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req_state *rs = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (rs) {
		if (rs->job) {
			/* Answered with an upgrade that never happened (the client left). */
			if (rs->job->free)
				rs->job->free(rs->job->ctx);
			free(rs->job);
		}
		free(rs->body);
		free(rs);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	yun_vlog(YUN_LOG_DEBUG, "http: ", fmt, ap);
}

/* ---- sockets ---- */

static int bind_unix(const char *path, struct yun_err *err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd, probe;

	if (strlen(path) >= sizeof(a.sun_path))
		return yun_err_set(err, ENAMETOOLONG, "socket %s: path too long (max %zu)", path,
				   sizeof(a.sun_path) - 1);
	memcpy(a.sun_path, path, strlen(path) + 1);
	/* A socket file left by a yund that died: remove it, unless someone answers. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		if (connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0) {
			close(probe);
			return yun_err_set(err, EADDRINUSE, "socket %s: another yund is serving it",
					   path);
		}
		close(probe);
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return yun_err_errno(err, errno, "socket %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return yun_err_errno(err, errno, "socket %s", path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 128) < 0) {
		int e = errno;

		close(fd);
		unlink(path);
		return yun_err_errno(err, e, "socket %s", path);
	}
	return fd;
}

static int bind_tcp(const char *spec, struct yun_err *err)
{
	char host[256];
	const char *port, *colon = strrchr(spec, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL, *ai;
	int fd = -1, rc, e = 0, one = 1;

	if (!colon || colon == spec + strlen(spec) - 1 || (size_t)(colon - spec) >= sizeof(host))
		return yun_err_set(err, EINVAL, "--listen %s: must be ADDR:PORT", spec);
	port = colon + 1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	/* [::1]:8080 */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc)
		return yun_err_set(err, EINVAL, "--listen %s: %s", spec, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return yun_err_errno(err, e ? e : EADDRNOTAVAIL, "--listen %s", spec);
	return fd;
}

static struct MHD_Daemon *start_mhd(struct listener *l, int fd)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;

	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER,
				mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300, MHD_OPTION_END);
}

int api_server_start(struct yund *y, struct api_server **out, struct yun_err *err)
{
	struct api_server *s = calloc(1, sizeof(*s));

	if (!s)
		return yun_err_set(err, ENOMEM, "out of memory");
	s->y = y;
	s->unix_fd = s->tcp_fd = -1;
	s->unix_l = (struct listener){.srv = s, .tcp = false};
	s->tcp_l = (struct listener){.srv = s, .tcp = true};
	snprintf(s->sock_path, sizeof(s->sock_path), "%s", y->cfg->socket);
	s->unix_fd = bind_unix(s->sock_path, err);
	if (s->unix_fd < 0) {
		int rc = s->unix_fd;

		free(s);
		return rc;
	}
	if (y->cfg->listen[0]) {
		s->tcp_fd = bind_tcp(y->cfg->listen, err);
		if (s->tcp_fd < 0) {
			int rc = s->tcp_fd;

			close(s->unix_fd);
			unlink(s->sock_path);
			free(s);
			return rc;
		}
	}
	s->unix_d = start_mhd(&s->unix_l, s->unix_fd);
	if (s->unix_d && s->tcp_fd >= 0)
		s->tcp_d = start_mhd(&s->tcp_l, s->tcp_fd);
	if (!s->unix_d || (s->tcp_fd >= 0 && !s->tcp_d)) {
		api_server_stop(s);
		return yun_err_set(err, EIO, "http server: libmicrohttpd did not start");
	}
	*out = s;
	return 0;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	/* Upgraded connections (exec, console) end first: MHD waits for their threads. */
	v1_streams_shutdown();
	/* MHD_quiesce first: no new connections while the open ones finish. */
	if (s->unix_d)
		MHD_quiesce_daemon(s->unix_d);
	if (s->tcp_d)
		MHD_quiesce_daemon(s->tcp_d);
	if (s->unix_d)
		MHD_stop_daemon(s->unix_d);
	if (s->tcp_d)
		MHD_stop_daemon(s->tcp_d);
	if (s->unix_fd >= 0) {
		close(s->unix_fd);
		unlink(s->sock_path);
	}
	if (s->tcp_fd >= 0)
		close(s->tcp_fd);
	metrics_free(); /* no scrape can run any more */
	free(s);
}
