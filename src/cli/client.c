/*
 * client.c - see client.h.
 *
 * One easy handle serves every plain request (so the connection to yund is
 * reused); event streams and upgraded connections get a handle of their
 * own. Upgrades: libcurl sends the request and reads the 101 answer and,
 * with no length announced, hands every later byte to the write callback
 * until the server closes. Our bytes go the other way on the same socket,
 * written directly: libcurl has nothing more to send once the request is
 * out, and the socket's descriptor is recorded when libcurl creates it
 * (CURLOPT_SOCKOPTFUNCTION).
 */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Answers bigger than this are cut off with an error (lists are small). */
#define MAX_BODY (64u << 20)

struct yc_client {
	CURL *curl;
	char *socket;
	char *base; /* "http://localhost" or the URL without a final '/' */
	char *auth; /* "Authorization: Bearer ..." or NULL */
	long timeout_ms;
	bool tcp;
};

static bool curl_ready;

struct yc_client *yc_new(const struct yc_config *cfg)
{
	struct yc_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			free(c);
			return NULL;
		}
		curl_ready = true;
	}
	c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 60000;
	if (cfg->url) {
		size_t n = strlen(cfg->url);

		c->tcp = true;
		c->base = strdup(cfg->url);
		if (c->base && n && c->base[n - 1] == '/')
			c->base[n - 1] = '\0';
		if (cfg->token && *cfg->token &&
		    asprintf(&c->auth, "Authorization: Bearer %s", cfg->token) < 0)
			c->auth = NULL;
	} else {
		c->socket = strdup(cfg->socket ? cfg->socket : "/run/yun/yund.sock");
		c->base = strdup("http://localhost");
	}
	c->curl = curl_easy_init();
	if (!c->base || !c->curl || (!c->tcp && !c->socket) ||
	    (c->tcp && cfg->token && *cfg->token && !c->auth)) {
		yc_free(c);
		return NULL;
	}
	return c;
}

void yc_free(struct yc_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->socket);
	free(c->base);
	if (c->auth) {
		/* The token should not linger in freed memory. */
		explicit_bzero(c->auth, strlen(c->auth));
		free(c->auth);
	}
	free(c);
}

void yc_cleanup(void)
{
	if (curl_ready) {
		curl_global_cleanup();
		curl_ready = false;
	}
}

const char *yc_where(const struct yc_client *c)
{
	return c->tcp ? c->base : c->socket;
}

void yc_response_free(struct yc_response *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

char *yc_path(char *buf, size_t n, const char *collection, const char *ref, const char *action)
{
	char *esc = curl_easy_escape(NULL, ref, 0);

	snprintf(buf, n, "/v1/%s/%s%s%s", collection, esc ? esc : "", action ? "/" : "",
		 action ? action : "");
	curl_free(esc);
	return buf;
}

/* ---- request set-up and answers ---------------------------------------- */

struct buf {
	char *data;
	size_t len;
	bool too_big;
};

static int buf_add(struct buf *b, const char *p, size_t n)
{
	if (b->len + n > MAX_BODY) {
		b->too_big = true;
		return -1;
	}
	char *d = realloc(b->data, b->len + n + 1);

	if (!d)
		return -1;
	memcpy(d + b->len, p, n);
	b->len += n;
	d[b->len] = '\0';
	b->data = d;
	return 0;
}

static size_t collect(char *p, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;

	return buf_add(arg, p, n) ? 0 : n;
}

/*
 * Common options of every transfer on handle h. *hdrs gets the header
 * list to free after the transfer. body_text may be NULL.
 */
static int setup(struct yc_client *c, CURL *h, const char *method, const char *path,
		 const char *body_text, const char *accept, struct curl_slist **hdrs)
{
	char *url = NULL;
	struct curl_slist *l = NULL, *t;
	int rc = -ENOMEM;

	if (asprintf(&url, "%s%s", c->base, path) < 0)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, url);
	free(url); /* libcurl keeps its own copy */
	if (!c->tcp)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	/* Only plain HTTP to yund: no redirects, no proxies from the env. */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "yun/" YUN_VERSION);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body_text) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_text);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body_text));
	} else if (!strcmp(method, "POST")) {
		/* A POST without a body still says so (Content-Length: 0). */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (!strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	if (!(t = curl_slist_append(l, accept)))
		goto fail;
	l = t;
	/* No "Expect: 100-continue" round trip for bigger bodies. */
	if (!(t = curl_slist_append(l, "Expect:")))
		goto fail;
	l = t;
	if (body_text) {
		if (!(t = curl_slist_append(l, "Content-Type: application/json")))
			goto fail;
		l = t;
	}
	if (c->auth) {
		if (!(t = curl_slist_append(l, c->auth)))
			goto fail;
		l = t;
	}
	*hdrs = l;
	return 0;
fail:
	curl_slist_free_all(l);
	return rc;
}

static bool unreachable_code(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_UNSUPPORTED_PROTOCOL ||
	       rc == CURLE_URL_MALFORMAT;
}

/* A transfer that got no answer: say where yund was looked for and why. */
static enum yc_result no_answer(struct yc_client *c, CURL *h, CURLcode rc, const char *errbuf,
				struct yun_err *err)
{
	long os_errno = 0;
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
	if (!unreachable_code(rc) && rc != CURLE_OPERATION_TIMEDOUT) {
		yun_err_set(err, EPROTO, "yund at %s: no answer: %s", yc_where(c), why);
		return YC_ERROR;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		double t = 0;

		/* Connected but no answer is not "cannot reach". */
		curl_easy_getinfo(h, CURLINFO_CONNECT_TIME, &t);
		if (t > 0) {
			yun_err_set(err, ETIMEDOUT, "yund at %s: no answer in time: %s",
				    yc_where(c), why);
			return YC_ERROR;
		}
	}
	if (!c->tcp && os_errno == ENOENT)
		why = "no such socket (yund is not running)";
	else if (!c->tcp && os_errno == ECONNREFUSED)
		why = "connection refused (yund is not running)";
	else if (os_errno == EACCES || os_errno == EPERM)
		why = "permission denied (the socket is root's: run yun as root)";
	yun_err_set(err, os_errno ? (int)os_errno : ECONNREFUSED,
		    "cannot reach yund at %s: %s; start it with `yun up`", yc_where(c), why);
	return YC_UNREACHABLE;
}

/* Is this body JSON? By its Content-Type, else by trying. */
static void decode(CURL *h, struct yc_response *r)
{
	char *ctype = NULL;

	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
	if (!r->body || !r->len)
		return;
	if (ctype && strncasecmp(ctype, "application/json", 16) && r->body[0] != '{' &&
	    r->body[0] != '[')
		return;
	r->json = json_loadb(r->body, r->len, 0, NULL);
}

/* The message of an error answer, in err; the code in r->code. */
static enum yc_result server_error(struct yc_client *c, struct yc_response *r, struct yun_err *err)
{
	json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));

	if (code)
		snprintf(r->code, sizeof(r->code), "%s", code);
	if (msg) {
		if (r->status == 401)
			yun_err_set(err, EACCES, "%s (check --token-file or $YUN_TOKEN)", msg);
		else
			yun_err_set(err, EIO, "%s", msg);
	} else {
		/* Not yund's error shape: show the start of what came. */
		char first[160] = "";

		if (r->body) {
			size_t n = strcspn(r->body, "\r\n");

			snprintf(first, sizeof(first), ": %.*s", (int)(n < 120 ? n : 120), r->body);
		}
		yun_err_set(err, EIO, "yund at %s answered HTTP %ld%s", yc_where(c), r->status,
			    r->len ? first : "");
	}
	return YC_ERROR;
}

enum yc_result yc_request(struct yc_client *c, const char *method, const char *path, json_t *body,
			  struct yc_response *resp, struct yun_err *err)
{
	struct curl_slist *hdrs = NULL;
	struct buf b = {0};
	char errbuf[CURL_ERROR_SIZE] = "";
	char *text = NULL;
	CURL *h = c->curl;
	CURLcode rc;
	enum yc_result res;

	memset(resp, 0, sizeof(*resp));
	if (body && !(text = json_dumps(body, JSON_COMPACT))) {
		yun_err_set(err, ENOMEM, "out of memory");
		return YC_ERROR;
	}
	curl_easy_reset(h);
	if (setup(c, h, method, path, text, "Accept: application/json", &hdrs)) {
		free(text);
		yun_err_set(err, ENOMEM, "out of memory");
		return YC_ERROR;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->body = b.data;
	resp->len = b.len;
	if (b.too_big) {
		yun_err_set(err, EFBIG, "yund at %s: answer to %s %s is over %u MiB", yc_where(c),
			    method, path, MAX_BODY >> 20);
		res = YC_ERROR;
	} else if (rc != CURLE_OK) {
		res = no_answer(c, h, rc, errbuf, err);
	} else {
		decode(h, resp);
		if (resp->status >= 200 && resp->status < 300)
			res = YC_OK;
		else
			res = server_error(c, resp, err);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	free(text);
	return res;
}

/* ---- server-sent events ------------------------------------------------- */

struct stream_ctx {
	CURL *h;
	struct sse_parser sse;
	struct buf errbody; /* the body of a refusal */
	long status;
	int sse_rc;
};

static size_t stream_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream_ctx *s = arg;
	size_t n = size * nmemb;

	if (!s->status)
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200)
		return buf_add(&s->errbody, p, n) ? 0 : n;
	s->sse_rc = sse_feed(&s->sse, p, n);
	return s->sse_rc ? 0 : n;
}

enum yc_result yc_events(struct yc_client *c, const char *path, sse_event_fn fn, void *arg,
			 struct yun_err *err)
{
	struct stream_ctx s = {0};
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	enum yc_result res;
	CURLcode rc;

	s.h = curl_easy_init();
	if (!s.h || setup(c, s.h, "GET", path, NULL, "Accept: text/event-stream", &hdrs)) {
		if (s.h)
			curl_easy_cleanup(s.h);
		yun_err_set(err, ENOMEM, "out of memory");
		return YC_ERROR;
	}
	sse_init(&s.sse, fn, arg);
	curl_easy_setopt(s.h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(s.h, CURLOPT_ERRORBUFFER, errbuf);
	/* A dead peer on TCP is noticed through keepalives. */
	curl_easy_setopt(s.h, CURLOPT_TCP_KEEPALIVE, 1L);
	rc = curl_easy_perform(s.h);
	if (!s.status) /* an answer without a body */
		curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, &s.status);
	if (s.sse_rc == 1) {
		res = YC_OK;
	} else if (s.sse_rc < 0) {
		yun_err_set(err, -s.sse_rc, "yund at %s: event stream: %s", yc_where(c),
			    s.sse_rc == -E2BIG ? "a line over 4 MiB" : "out of memory");
		res = YC_ERROR;
	} else if (s.status && s.status != 200) {
		struct yc_response r = {
		    .status = s.status, .body = s.errbody.data, .len = s.errbody.len};

		s.errbody.data = NULL;
		decode(s.h, &r);
		res = server_error(c, &r, err);
		yc_response_free(&r);
	} else if (rc != CURLE_OK && !s.status) {
		res = no_answer(c, s.h, rc, errbuf, err);
	} else {
		yun_err_set(err, EPIPE, "yund at %s closed the event stream", yc_where(c));
		res = YC_ERROR;
	}
	free(s.errbody.data);
	sse_free(&s.sse);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(s.h);
	return res;
}

/* ---- upgraded connections ---------------------------------------------- */

struct upgrade_ctx {
	CURL *h;
	struct yc_stream *st;
	int fd;		    /* the connection's socket */
	bool upgraded;	    /* the 101 and its headers are in */
	bool out_failed;    /* writing to out_fd failed */
	struct buf errbody; /* the body of a refusal */
};

static int record_socket(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	struct upgrade_ctx *u = arg;

	if (purpose == CURLSOCKTYPE_IPCXN)
		u->fd = fd;
	return CURL_SOCKOPT_OK;
}

static size_t upgrade_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct upgrade_ctx *u = arg;
	size_t n = size * nmemb;
	long status = 0;

	/* The blank line that ends a header block. */
	if (n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
		curl_easy_getinfo(u->h, CURLINFO_RESPONSE_CODE, &status);
		if (status == 101 && !u->upgraded) {
			u->upgraded = true;
			if (u->st->on_open)
				u->st->on_open(u->st->arg);
		}
	}
	return n;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			poll(&pfd, 1, -1);
			continue;
		}
		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t upgrade_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct upgrade_ctx *u = arg;
	size_t n = size * nmemb;

	if (!u->upgraded)
		return buf_add(&u->errbody, p, n) ? 0 : n;
	if (u->st->on_output ? u->st->on_output(u->st->arg, p, n) < 0
			     : write_all(u->st->out_fd, p, n) != 0) {
		u->out_failed = true;
		return 0;
	}
	return n;
}

/* The socket is non-blocking (libcurl's): wait until it takes the bytes. */
static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read what in_fd has and send it on; returns 1 at its end, -1 to detach. */
static int pump_in(struct upgrade_ctx *u)
{
	char buf[16384];
	ssize_t n = read(u->st->in_fd, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : 1;
	if (n == 0)
		return 1;
	if (u->st->filter_in) {
		n = u->st->filter_in(u->st->arg, buf, (size_t)n);
		if (n < 0)
			return -1;
	}
	if (n && send_all(u->fd, buf, (size_t)n))
		return 1; /* the server went away: its side ends the loop */
	return 0;
}

enum yc_result yc_upgrade(struct yc_client *c, const char *method, const char *path, json_t *body,
			  const char *proto, struct yc_stream *st, struct yun_err *err)
{
	struct upgrade_ctx u = {.st = st, .fd = -1};
	struct curl_slist *hdrs = NULL, *t;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *text = NULL, *up = NULL;
	CURLM *m = NULL;
	CURLcode done = CURLE_OK;
	enum yc_result res = YC_ERROR;
	bool in_open = st->in_fd >= 0, finished = false;
	int running = 1;

	st->detached = false;
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		goto oom;
	u.h = curl_easy_init();
	m = curl_multi_init();
	if (!u.h || !m || asprintf(&up, "Upgrade: %s", proto) < 0) {
		up = NULL;
		goto oom;
	}
	if (setup(c, u.h, method, path, text, "Accept: */*", &hdrs))
		goto oom;
	if (!(t = curl_slist_append(hdrs, "Connection: Upgrade")))
		goto oom;
	hdrs = t;
	if (!(t = curl_slist_append(hdrs, up)))
		goto oom;
	hdrs = t;
	curl_easy_setopt(u.h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(u.h, CURLOPT_HEADERFUNCTION, upgrade_header);
	curl_easy_setopt(u.h, CURLOPT_HEADERDATA, &u);
	curl_easy_setopt(u.h, CURLOPT_WRITEFUNCTION, upgrade_write);
	curl_easy_setopt(u.h, CURLOPT_WRITEDATA, &u);
	curl_easy_setopt(u.h, CURLOPT_SOCKOPTFUNCTION, record_socket);
	curl_easy_setopt(u.h, CURLOPT_SOCKOPTDATA, &u);
	curl_easy_setopt(u.h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(u.h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(u.h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_multi_add_handle(m, u.h);

	while (running) {
		struct curl_waitfd extra = {.fd = st->in_fd, .events = CURL_WAIT_POLLIN};
		int nfds = 0;

		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		if (!running)
			break;
		bool watch_in = u.upgraded && in_open && u.fd >= 0;

		if (curl_multi_poll(m, watch_in ? &extra : NULL, watch_in ? 1 : 0, 1000, &nfds) !=
		    CURLM_OK)
			break;
		if (watch_in && (extra.revents & (CURL_WAIT_POLLIN | POLLHUP | POLLERR))) {
			int r = pump_in(&u);

			if (r < 0) {
				st->detached = true;
				finished = true;
				break;
			}
			if (r > 0) {
				in_open = false;
				if (st->half_close)
					shutdown(u.fd, SHUT_WR);
			}
		}
	}
	if (!finished) {
		CURLMsg *msg;
		int q;

		while ((msg = curl_multi_info_read(m, &q)))
			if (msg->msg == CURLMSG_DONE)
				done = msg->data.result;
	}
	if (u.upgraded) {
		/* The server closing the stream is the normal end. */
		res = YC_OK;
		if (u.out_failed) {
			yun_err_set(err, EPIPE, "writing the stream's output failed");
			res = YC_ERROR;
		}
	} else {
		long status = 0;

		curl_easy_getinfo(u.h, CURLINFO_RESPONSE_CODE, &status);
		if (!status) {
			res = no_answer(c, u.h, done, errbuf, err);
		} else {
			struct yc_response r = {
			    .status = status, .body = u.errbody.data, .len = u.errbody.len};

			u.errbody.data = NULL;
			decode(u.h, &r);
			if (status >= 200 && status < 300)
				yun_err_set(err, EPROTO,
					    "yund at %s did not switch to the %s stream (HTTP %ld)",
					    yc_where(c), proto, status);
			else
				server_error(c, &r, err);
			res = YC_ERROR;
			yc_response_free(&r);
		}
	}
	curl_multi_remove_handle(m, u.h);
	goto out;
oom:
	yun_err_set(err, ENOMEM, "out of memory");
out:
	if (m)
		curl_multi_cleanup(m);
	if (u.h)
		curl_easy_cleanup(u.h);
	curl_slist_free_all(hdrs);
	free(u.errbody.data);
	free(up);
	free(text);
	return res;
}

pid_t yc_socket_peer(const char *socket_path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, rc;

	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	close(fd);
	return cred.pid > 0 ? cred.pid : -ESRCH;
}
