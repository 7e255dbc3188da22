/*
 * server.h - the HTTP/1.1 server: libmicrohttpd on the Unix socket (always)
 * and on TCP (with --listen), one thread per connection.
 *
 * yund binds both sockets itself (the Unix socket 0600, after checking no
 * other yund answers on it) and hands them to libmicrohttpd. Requests on
 * TCP need "Authorization: Bearer <token>" (401 otherwise); the Unix
 * socket is guarded by its file mode. Bodies over API_BODY_MAX get 413
 * without being read. Requests go through the router (router.h) to the v1
 * handlers (v1.h).
 */
#ifndef YUND_API_SERVER_H
#define YUND_API_SERVER_H

#include "../../lib/err.h"

struct yund;
struct api_server;

int api_server_start(struct yund *y, struct api_server **out, struct yun_err *err);

/* Stop accepting, finish the open connections (event streams must have been woken). */
void api_server_stop(struct api_server *s);

#endif
