/*
 * http.h - what a handler sees of a request and how it answers.
 *
 * Handlers never touch libmicrohttpd's responses: they fill a struct
 * api_reply (JSON, text, a file range or a stream) and server.c turns it
 * into a response. Errors are JSON objects
 *   {"error": {"code": "not_found", "message": "instance web-1: not found"}}
 * and the code follows from the HTTP status (api_code_for_status).
 */
#ifndef YUND_API_HTTP_H
#define YUND_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "../../lib/err.h"

#define API_MAX_PARAMS 4
#define API_PARAM_MAX  256
#define API_BODY_MAX   (1u << 20) /* 1 MiB: larger bodies get 413 */

struct yund;
struct MHD_Connection;

struct api_req {
	struct yund *y;
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	char params[API_MAX_PARAMS][API_PARAM_MAX]; /* the {...} segments of the route */
	size_t n_params;
	const char *body; /* NUL-terminated; NULL when there was none */
	size_t body_len;
};

/*
 * A streamed body: called for the next bytes at `pos` (up to max); returns
 * how many, or API_STREAM_END / API_STREAM_ERROR. It may block (one thread
 * per connection).
 */
#define API_STREAM_END	 (-1)
#define API_STREAM_ERROR (-2)
typedef ssize_t (*api_stream_fn)(void *ctx, uint64_t pos, char *buf, size_t max);

struct api_reply {
	unsigned status;
	json_t *json; /* owned; serialized as the body */
	char *text;   /* owned; with content_type */
	size_t text_len;
	const char *content_type;
	int fd; /* owned; a file body: fd_len bytes from fd_off */
	uint64_t fd_off, fd_len;
	api_stream_fn stream; /* a streamed body (stream_free(stream_ctx) at the end) */
	void *stream_ctx;
	void (*stream_free)(void *ctx);
	char allow[64]; /* 405: the methods the path takes */
	/*
	 * An upgrade: 101 Switching Protocols with "Upgrade: <upgrade>", then
	 * upgraded(stream_ctx, fd, extra, extra_len) runs in the connection's
	 * thread with the socket (extra: bytes the client sent after its
	 * request) and returns when done; the server closes the socket.
	 * stream_free(stream_ctx) is called in every case.
	 */
	const char *upgrade;
	void (*upgraded)(void *ctx, int fd, const char *extra, size_t extra_len);
};

void api_reply_init(struct api_reply *r);
void api_reply_release(struct api_reply *r);

/* Status + JSON body (steals obj; NULL obj means out of memory -> 500). */
void api_reply_json(struct api_reply *r, unsigned status, json_t *obj);

/* An error reply: the code follows from status. */
void api_reply_error(struct api_reply *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * An error reply from a yun_err: ENOENT 404, EEXIST/EBUSY/EAGAIN 409,
 * ENOSPC 507, EINVAL/EPROTO 400, ERANGE/EDOM/ENOTSUP 422, EFBIG 413,
 * anything else 500.
 */
void api_reply_err(struct api_reply *r, const struct yun_err *err);

/* "not_found", "invalid", ... for an HTTP status. */
const char *api_code_for_status(unsigned status);

/* A query-string argument, or NULL. */
const char *api_query(const struct api_req *req, const char *key);
/* A request header, or NULL. */
const char *api_header(const struct api_req *req, const char *name);

#endif
