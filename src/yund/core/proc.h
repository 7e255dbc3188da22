/*
 * proc.h - starting the helper processes yund runs (yun-ct, mkimage, cp)
 * and collecting their exit statuses.
 *
 * Only the reconcile thread spawns and reaps (the table below is not locked).
 * yund is multi-threaded, so the child does only async-signal-safe system
 * calls between fork and exec. Every child starts with default signal
 * dispositions and an empty signal mask (yund blocks SIGTERM & co. in all
 * its threads) and only descriptors 0-2 open.
 */
#ifndef YUND_CORE_PROC_H
#define YUND_CORE_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "../../lib/err.h"

struct proc_opts {
	const char *out_path; /* stdout and stderr appended here (created 0600); NULL: /dev/null */
	bool setsid;	      /* a new session: outlives yund, no terminal signals */
	bool die_with_parent; /* SIGKILL when the spawning thread exits (PR_SET_PDEATHSIG);
				 also a new process group */
	const char *cwd;      /* NULL: "/" */
};

/* Start argv[0] (a path) with argv; *pid set. envp NULL: yund's environment. */
int proc_spawn(char *const argv[], const struct proc_opts *o, pid_t *pid, struct yun_err *err);

/*
 * Reap every child that exited (call once per loop pass); statuses of the
 * children proc_spawn started are kept for proc_poll.
 */
void proc_reap(void);

/*
 * Whether child `pid` has exited (as of the last proc_reap); if so *status
 * is its status as a shell shows it (128+N after signal N) and pid is
 * forgotten. -ECHILD when pid is not a child proc_spawn started.
 */
int proc_poll(pid_t pid, bool *exited, int *status);

/* Stop tracking pid (its exit will be reaped and dropped). */
void proc_forget(pid_t pid);

/* Free the table (at exit). */
void proc_free_table(void);

/* Describe a status for messages: "exited with status 3", "killed by signal 9". */
void proc_describe(int status, char *buf, size_t len);

/* Whether a process exists and is not a zombie. */
bool proc_alive(pid_t pid);

#endif
