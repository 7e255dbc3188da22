/*
 * state.h - a container's directory on the host, and what it records.
 *
 *   <root>/<id>/state.json   id, pids, status, times, exit status, config
 *   <root>/<id>/sock         the supervisor's Unix socket
 *   <root>/<id>/upper, work  overlay layers (with --overlay / --image)
 *   <root>/<id>/rootfs       where the container's root is assembled (inside
 *                            the container's mount namespace only)
 *   <root>/<id>/lower        attach point of an idmapped image (--userns)
 *   <root>/<id>/supervisor.log
 *
 * <root> is /run/yun-ct, or $YUN_CT_ROOT (tests). It is mode 0700: the
 * socket gives full control of the container.
 */
#ifndef YUN_CT_STATE_H
#define YUN_CT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "../lib/err.h"

#define CT_STATE_ROOT_DEFAULT "/run/yun-ct"

enum ct_status {
	CT_STATUS_CREATING, /* supervisor building it */
	CT_STATUS_CREATED,  /* init waiting for its start signal */
	CT_STATUS_RUNNING,
	CT_STATUS_STOPPING, /* stop requested, waiting for init */
	CT_STATUS_EXITED,
};

struct ct_state {
	char id[65];
	enum ct_status status;
	pid_t pid; /* the container's init, as seen by the host */
	pid_t supervisor_pid;
	time_t created;
	int exit_status;       /* valid when EXITED */
	char exit_reason[128]; /* "exited", "killed by signal 9", "out of memory" */
	uint32_t userns_base;  /* host uid of the container's root with --userns auto; 0 = none */
	json_t *config;	       /* the container's settings (owned) */
};

/* The state root: $YUN_CT_ROOT or /run/yun-ct. */
const char *ct_state_root(void);

/* <root>/<id>[/<name>] into buf; -ENAMETOOLONG when it does not fit. */
int ct_state_path(const char *id, const char *name, char *buf, size_t len, struct yun_err *err);

/*
 * Create <root>/<id> exclusively (EEXIST: "container ID: already exists")
 * and write the initial state.json. With `want_userns`, a free 65536-id
 * range is reserved under the root's lock and recorded (*userns_base).
 */
int ct_state_create(struct ct_state *st, bool want_userns, struct yun_err *err);

/* Write state.json atomically (temporary file + rename). */
int ct_state_write(const struct ct_state *st, struct yun_err *err);

/* Read state.json of `id`; -ENOENT: "container ID: no such container". */
int ct_state_read(const char *id, struct ct_state *st, struct yun_err *err);

void ct_state_release(struct ct_state *st);

/* Remove <root>/<id> and everything in it (does not cross mount points). */
int ct_state_remove(const char *id, struct yun_err *err);

/* Ids of all containers with a state dir, sorted; free with ct_state_free_ids. */
int ct_state_list(char ***ids, size_t *n, struct yun_err *err);
void ct_state_free_ids(char **ids, size_t n);

const char *ct_status_name(enum ct_status s);

/* A random 12-hex-digit id. */
void ct_state_new_id(char *buf, size_t len);

#endif
