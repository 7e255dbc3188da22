/*
 * yund.h - the daemon's shared context: settings from the command line and
 * the services every part reaches (store, events, reconcile loop).
 *
 * One struct yund lives for the whole process (main.c makes it). The API
 * threads read it and call the store and the event bus; only the reconcile
 * thread touches the host (processes, files under <root>/instances and
 * <root>/images, yun-ct containers).
 */
#ifndef YUND_YUND_H
#define YUND_YUND_H

#include <limits.h>
#include <stdbool.h>

#define YUND_VERSION "0.1.0"

struct store;
struct events;
struct reconcile;

struct yund_config {
	char root[PATH_MAX];   /* --root: yund.db, images/, instances/, token */
	char run[PATH_MAX];    /* --run: yund.sock, ct/ (yun-ct's state root) */
	char socket[PATH_MAX]; /* --socket: the Unix socket */
	char listen[256];      /* --listen ADDR:PORT; empty: no TCP */
	char token_file[PATH_MAX];
	char yun_ct[PATH_MAX];	/* the yun-ct binary */
	char mkimage[PATH_MAX]; /* scripts/mkimage */
	char yun_vmm[PATH_MAX]; /* the yun-vmm binary (microVM instances) */
	double cpu_overcommit;
	double memory_overcommit;
	int verbose;
};

struct yund {
	const struct yund_config *cfg;
	struct store *store;
	struct events *events;
	struct reconcile *rec;
	char host_id[24]; /* this host's row (OBJ_ID_MAX) */
	char token[128];  /* bearer token for TCP; empty without --listen */
};

#endif
