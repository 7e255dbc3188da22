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
 * Operations:
 *   {"op":"status"}                        -> state fields
 *   {"op":"attach", "start": bool, "rows", "cols"}
 *   {"op":"exec", "argv": [...], "env": [...], "cwd", "tty": bool, "rows", "cols"}
 *   {"op":"kill", "signal": N}
 *   {"op":"stop", "timeout": S}            -> REPLY, then EXIT when init is gone
 */
#ifndef YUN_CT_PROTO_H
#define YUN_CT_PROTO_H

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

/* Connect to container `id`'s supervisor. */
int ct_proto_connect(const char *id, int *fd, struct yun_err *err);

/* One request, one reply; *reply is owned by the caller. */
int ct_proto_call(int fd, json_t *request, json_t **reply, struct yun_err *err);

#endif
