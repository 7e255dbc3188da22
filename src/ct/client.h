/*
 * client.h - what the yun-ct commands do, as library calls.
 *
 * ct_client_create checks the configuration against the host, creates the
 * state dir and forks the container's supervisor (supervisor.h); the other
 * calls talk to a running supervisor over its socket (proto.h). Calls that
 * relay a console use the caller's stdin/stdout/stderr; when stdin is a
 * terminal it is put in raw mode for the session and Ctrl-P Ctrl-Q
 * detaches; when it is not, SIGINT and SIGTERM received by an attached
 * client are forwarded to the container's init.
 */
#ifndef YUN_CT_CLIENT_H
#define YUN_CT_CLIENT_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "../lib/err.h"
#include "config.h"

/* Result of a relayed session. */
struct ct_exit {
	int status;	   /* the process's status (128+N after signal N) */
	bool detached;	   /* the user detached: status is meaningless */
	char message[512]; /* why it ended, when notable ("out of memory", exec errors) */
};

/*
 * Validate cfg, check it against the host, create the container and its
 * supervisor. With cfg->detach the container is started; otherwise it
 * waits for ct_client_attach(start = true). cfg->id is set when it was
 * empty. Nothing is left behind on error. -ENOENT / -EACCES mean the
 * command is not in the rootfs / not executable; nothing else uses them.
 */
int ct_client_create(struct ct_config *cfg, pid_t *init_pid, struct yun_err *err);

/* Attach stdio to the container's console until it exits or the user detaches. */
int ct_client_attach(const char *id, bool start, struct ct_exit *ex, struct yun_err *err);

/*
 * The two together for an attached `run`, without a connect / accept round
 * trip: ct_client_create_attached hands the supervisor a connected socket
 * as its first client, carrying the request attach-and-start before the
 * container even exists, so that it starts the moment it is created (an
 * attached run still starts only once its client is attached). *conn is
 * the caller's end; ct_client_attach_conn takes the reply and relays the
 * console as ct_client_attach does, then closes it.
 */
int ct_client_create_attached(struct ct_config *cfg, int *conn, struct yun_err *err);
int ct_client_attach_conn(int conn, const char *id, struct ct_exit *ex, struct yun_err *err);

/* Run argv in the container (tty: a new pty), relaying stdio; *ex gets its status. */
int ct_client_exec(const char *id, char **argv, char **env, const char *cwd, bool tty,
		   struct ct_exit *ex, struct yun_err *err);

int ct_client_kill(const char *id, int sig, struct yun_err *err);

/*
 * `sig` (0: the container's --stop-signal, TERM by default) to init, then
 * SIGKILL to everything in it after timeout_s; waits for the exit.
 */
int ct_client_stop(const char *id, int sig, int timeout_s, struct ct_exit *ex, struct yun_err *err);

/* One entry per container, as `ps` shows it; *out is a JSON array (caller owns). */
int ct_client_list(json_t **out, struct yun_err *err);

/*
 * Remove a container: with `force` a running one is killed first; without,
 * only an exited (--keep) one or the leftovers of one whose supervisor died.
 */
int ct_client_remove(const char *id, bool force, struct yun_err *err);

#endif
