/*
 * proto.h - the supervisor's socket protocol (<state dir>/sock).
 *
 * A Unix SOCK_SEQPACKET socket: every message is one packet, a type byte
 * followed by its payload. A connection starts with one REQUEST, a JSON
 * object {"op": ...}; the supervisor answers with one REPLY {"ok": true,
 * ...} or {"ok": false, "error": "message"}. Then, for "attach" and
 * "exec", the connection becomes a stream:
 *   client -> supervisor  STDIN bytes, STDIN_EOF, RESIZE rows/cols
 *   supervisor -> client  STDOUT / STDERR bytes, then one EXIT
 *                         {"status": N, "reason": "...", "message": "..."}
 * A client detaches by closing its connection.
 * Operations (decoded by ct_proto_parse_request):
 *   {"op":"status"}                        -> state fields
 *   {"op":"attach", "start": bool, "rows", "cols"}
 *   {"op":"exec", "argv": [...], "env": [...], "cwd", "tty": bool, "rows", "cols"}
 *   {"op":"kill", "signal": N}
 *   {"op":"stop", "timeout": S, "signal": N} -> REPLY, then EXIT when init is gone
 */
#ifndef YUN_CT_PROTO_H
#define YUN_CT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "../lib/err.h"

#define CT_PROTO_MAX   65536 /* largest packet, type byte included */
#define CT_PROTO_CHUNK 16384 /* stream payloads are cut to this size */

enum ct_msg {
	CT_MSG_REQUEST = 'Q',
	CT_MSG_REPLY = 'R',
	CT_MSG_STDIN = 'I',
	CT_MSG_STDIN_EOF = 'E',
	CT_MSG_RESIZE = 'W', /* payload: uint16 rows, uint16 cols (host order) */
	CT_MSG_STDOUT = '1',
	CT_MSG_STDERR = '2',
	CT_MSG_EXIT = 'X',
};

/* Send one packet (blocking unless the socket is non-blocking); 0 or -errno. */
int ct_proto_send(int fd, int type, const void *data, size_t len);
int ct_proto_send_json(int fd, int type, json_t *obj);

/* Send / receive one packet carrying a file descriptor (SCM_RIGHTS). */
int ct_proto_send_fd(int fd, int type, const void *data, size_t len, int passfd);

/*
 * Receive one packet into buf (CT_PROTO_MAX bytes): returns the payload
 * length, 0 with *type = 0 at end of stream, or -errno. *passfd gets a
 * received descriptor when given (else -1; extra descriptors are closed).
 */
ssize_t ct_proto_recv(int fd, uint8_t *buf, int *type, int *passfd);

/* Parse a JSON payload; NULL when it is not a JSON object. */
json_t *ct_proto_json(const uint8_t *payload, size_t len);

/* A REQUEST, decoded and checked: what the supervisor acts on. */
enum ct_op {
	CT_OP_NONE, /* not a request (malformed, unknown operation) */
	CT_OP_STATUS,
	CT_OP_ATTACH,
	CT_OP_EXEC,
	CT_OP_KILL,
	CT_OP_STOP,
};

#define CT_STOP_TIMEOUT_MAX 2147483647 /* seconds; larger values are cut to this */

struct ct_request {
	enum ct_op op;
	bool start;	     /* attach: start a created container */
	unsigned rows, cols; /* attach, exec: the client's terminal, 1..65535; 0 = not given */
	char **argv;	     /* exec: NULL-terminated, argv[0] a non-empty string */
	char **env;	     /* exec: NULL-terminated additions ("K=V"), or NULL */
	char *cwd;	     /* exec: NULL = the container's */
	bool tty;	     /* exec: give the process a new pty */
	int signal;	     /* kill, stop: as given (0: none; -1: not an int) */
	int64_t timeout;     /* stop: seconds, 0..CT_STOP_TIMEOUT_MAX; -1 = not given */
};

/*
 * Decode a REQUEST payload into req (free with ct_proto_request_free, also
 * after an error). Errors: -EPROTO "malformed request" (not a JSON object
 * with a string "op"), -EINVAL "unknown operation \"X\"" (req->op is then
 * CT_OP_NONE); for exec, -EINVAL when argv or env is not a list of strings,
 * a string holds a NUL byte, or argv names no command (req->op is then
 * CT_OP_EXEC: the supervisor reports it after its own checks). Fields a
 * request does not use, or of the wrong JSON type, read as "not given".
 */
int ct_proto_parse_request(const uint8_t *payload, size_t len, struct ct_request *req,
			   struct yun_err *err);
void ct_proto_request_free(struct ct_request *req);

/* Connect to container `id`'s supervisor. */
int ct_proto_connect(const char *id, int *fd, struct yun_err *err);

/* One request, one reply; *reply is owned by the caller. */
int ct_proto_call(int fd, json_t *request, json_t **reply, struct yun_err *err);

/* The reply half of ct_proto_call, for a request sent earlier. */
int ct_proto_reply(int fd, json_t **reply, struct yun_err *err);

#endif
