/*
 * client.h - yun's side of the yund API (docs/api/yund.yaml), over libcurl.
 *
 * One client talks to one yund, on its Unix socket (the default) or on TCP
 * with a bearer token. Requests and answers are JSON (jansson); every
 * failure comes back as one of three results a command maps to its exit
 * status:
 *   YC_OK           the server answered 2xx;
 *   YC_ERROR        the server answered an error: err holds its message
 *                   ("instance web-1: not found"), resp->code its code;
 *                   or the answer made no sense (not JSON, cut short);
 *   YC_UNREACHABLE  no answer at all: err says where yund was looked for,
 *                   why it could not be reached, and to run `yun up`.
 * No HTTP is written or parsed here by hand: libcurl does the protocol,
 * jansson the JSON; what is left is the event-stream framing (sse.h) and
 * copying bytes once a connection is upgraded.
 */
#ifndef YUN_CLI_CLIENT_H
#define YUN_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../lib/err.h"
#include "sse.h"

enum yc_result { YC_OK = 0, YC_ERROR = 1, YC_UNREACHABLE = 3 };

struct yc_config {
	const char *socket; /* the Unix socket (used when url is NULL) */
	const char *url;    /* http://HOST:PORT, or NULL */
	const char *token;  /* bearer token for url, or NULL */
	long timeout_ms;    /* whole request (not streams); 0: 60 s */
};

struct yc_client;

struct yc_response {
	long status; /* HTTP status, 0 when there was no answer */
	char *body;  /* the body, NUL-terminated (may hold NULs) */
	size_t len;
	json_t *json;  /* the body as JSON when it is JSON, else NULL */
	char code[32]; /* error.code of an error answer ("not_found"), else "" */
};

/* Copies the strings of cfg. NULL on out of memory. */
struct yc_client *yc_new(const struct yc_config *cfg);
void yc_free(struct yc_client *c);
/* Release libcurl's global state at the end of the program. */
void yc_cleanup(void);

/* Where yund is looked for, for messages: "/run/yun/yund.sock" or the URL. */
const char *yc_where(const struct yc_client *c);

void yc_response_free(struct yc_response *r);

/*
 * One request. path starts with '/' ("/v1/instances"); body (may be NULL)
 * is sent as JSON. resp is filled in every case (free it with
 * yc_response_free); on YC_ERROR err has the server's message.
 */
enum yc_result yc_request(struct yc_client *c, const char *method, const char *path, json_t *body,
			  struct yc_response *resp, struct yun_err *err);

/*
 * "/v1/<collection>/<ref>[/<action>]" with ref percent-encoded, into buf.
 * Returns buf.
 */
char *yc_path(char *buf, size_t n, const char *collection, const char *ref, const char *action);

/*
 * Follow a text/event-stream at path (GET /v1/events): fn gets every event
 * as it arrives and stops the stream by returning non-zero. Returns
 * YC_OK when fn stopped it, YC_ERROR when the server refused or closed
 * the stream (err says which), YC_UNREACHABLE as above.
 */
enum yc_result yc_events(struct yc_client *c, const char *path, sse_event_fn fn, void *arg,
			 struct yun_err *err);

/*
 * An upgraded connection (exec, console): the request is sent with
 * "Connection: Upgrade" and "Upgrade: <proto>"; once the server answers
 * 101, bytes read from in_fd go to the server and bytes from the server go
 * to out_fd, until the server closes the connection.
 *   on_open (optional) is called once the server has switched protocols.
 *   filter_in (optional) sees every chunk read from in_fd and returns how
 *   many bytes of it to send (it may rewrite it in place), or -1 to end the
 *   session from the client side (detach).
 *   At the end of in_fd (read returns 0) the sending side is shut down
 *   when half_close is set (exec: the command sees the end of its input);
 *   either way the server's output is still copied to the end.
 *   on_output (optional) takes the server's bytes instead of out_fd (a
 *   framed stream, exec); it returns 0, or -1 to fail the session.
 * *detached is true when filter_in ended it. An answer other than 101 is
 * YC_ERROR with the server's message.
 */
struct yc_stream {
	int in_fd;
	int out_fd;
	void (*on_open)(void *arg); /* optional: the server switched (101) */
	ssize_t (*filter_in)(void *arg, char *buf, size_t len);
	int (*on_output)(void *arg, const char *buf, size_t len);
	void *arg;
	bool half_close;
	bool detached;
};
enum yc_result yc_upgrade(struct yc_client *c, const char *method, const char *path, json_t *body,
			  const char *proto, struct yc_stream *st, struct yun_err *err);

/* The pid of the process serving a Unix socket (SO_PEERCRED), or -errno. */
pid_t yc_socket_peer(const char *socket_path);

#endif
