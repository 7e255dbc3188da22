/*
 * reconcile.h - the reconcile loop: one thread that converges the host
 * (actual state) to the store (desired state).
 *
 * A pass: reap children, images (image.h), networks (netplug.h),
 * instances (instance.h). Passes run when kicked (every API change kicks),
 * when a yun-ct container's state changes (a watcher thread follows
 * yun-ct's state files with inotify, so "running" or an exit is seen when
 * it happens), every 10 ms while something is in transition and every
 * second anyway (the fallback, should a change slip past the watcher). The first pass after
 * start, and a sweep every 5 s and after API changes, remove what belongs
 * to no row (containers, instance and image directories): that, and
 * idempotent steps, is what makes a kill -9 of yund at any moment leave
 * nothing half-made.
 */
#ifndef YUND_COMPUTE_RECONCILE_H
#define YUND_COMPUTE_RECONCILE_H

#include "../../lib/err.h"

struct yund;
struct reconcile;

int rec_start(struct yund *y, struct reconcile **out, struct yun_err *err);

/* Run a pass soon (any thread). NULL is allowed (does nothing). */
void rec_kick(struct reconcile *r);

/* Finish the current pass, stop the thread, kill image jobs; instances keep running. */
void rec_stop(struct reconcile *r);

#endif
