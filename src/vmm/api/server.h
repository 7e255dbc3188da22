/*
 * server.h - yun-vmm's control API server: HTTP/1.1 (libmicrohttpd) on a
 * Unix socket, served by one thread of its own.
 *
 * The socket is bound here (mode 0600; a stale file from a dead yun-vmm is
 * replaced, a live one is refused) and handed to libmicrohttpd, which runs
 * without threads of its own: the API thread waits on its epoll fd and
 * calls MHD_run, so one thread does all the HTTP and enters the API
 * sandbox before it serves anything. Bodies over API_BODY_MAX get 413
 * without being kept. Requests go to the routes (routes.h).
 */
#ifndef YUN_VMM_API_SERVER_H
#define YUN_VMM_API_SERVER_H

#include <stdbool.h>

#include "../../lib/err.h"

#define API_BODY_MAX (64 * 1024)

struct ctl;
struct api_server;

/* Bind `path`, start the API thread. verbose: log every request. */
int api_server_start(struct api_server **out, const char *path, struct ctl *ctl, bool verbose,
		     struct yun_err *err);

/* Stop the thread (a request being answered finishes first), close and remove the socket. */
void api_server_stop(struct api_server *s);

#endif
