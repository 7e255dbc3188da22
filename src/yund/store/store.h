/*
 * store.h - yund's desired state: the contract every store implements.
 *
 * The store is a table of operations over an opaque handle, so that a
 * distributed store (etcd, a replicated log) can replace the embedded
 * SQLite one (store/sqlite.c) without touching its callers. Every
 * operation is atomic and durable when it returns 0: it is one
 * transaction, and an acknowledged change survives a kill -9 (and, with
 * SQLite's synchronous=FULL, a power loss). Operations that must look at
 * other rows to decide (name taken, capacity, "in use") decide inside that
 * transaction, so concurrent API calls cannot both win.
 *
 * Lookups take a reference: an id or a name (names are unique per project
 * and kind and never have an id's form). Errors are negative errnos with a
 * message naming the object and the reason:
 *   -ENOENT  "instance web-1: not found"
 *   -EEXIST  "instance web-1: name already taken"
 *   -EBUSY   "image busybox: used by instance web-1"
 *   -ENOSPC  "instance web-2: does not fit on host ...: memory ..."
 *   -EAGAIN  compare-and-swap lost (the intent changed since it was read)
 *   -ENOMEM  out of memory (a list is never returned partial)
 *   -EIO     the database failed (message from the database)
 *
 * Threads: any thread may call any operation; the implementation
 * serializes them.
 */
#ifndef YUND_STORE_STORE_H
#define YUND_STORE_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../core/object.h"

/* Fields every object has. */
struct st_meta {
	char id[OBJ_ID_MAX];
	char name[OBJ_NAME_MAX];
	char project[OBJ_NAME_MAX];
	char created_at[OBJ_TIME_MAX];
	char updated_at[OBJ_TIME_MAX];
};

struct st_host {
	struct st_meta m;
	char hostname[256];
	char state[16]; /* "up" */
	int64_t vcpus, memory_mib, disk_gib;
	double cpu_overcommit, memory_overcommit;
};

/* What the instances on a host hold. */
struct st_alloc {
	int64_t vcpus, memory_mib, disk_gib, instances;
};

struct st_flavor {
	struct st_meta m;
	int64_t vcpus, memory_mib, disk_gib;
};

struct st_image {
	struct st_meta m;
	char type[16];		    /* container | microvm */
	char state[16];		    /* building | available | failed */
	char source[PATH_MAX + 16]; /* "build:busybox" | "import:/dir" */
	char path[PATH_MAX];	    /* the image directory, once available */
	int64_t size;		    /* bytes, from the manifest */
	char os[64], version[64];
	char *command; /* JSON array text, or NULL */
	char failure[512];
};

struct st_network {
	struct st_meta m;
	char cidr[64];
	char gateway[64]; /* "" until the network service set it */
	char bridge[16];  /* "" until made */
	char desired[16]; /* active | deleted */
	char state[16];	  /* creating | active | deleting | failed */
};

struct st_instance {
	struct st_meta m;
	char type[16]; /* container | microvm */
	char image_id[OBJ_ID_MAX];
	char flavor_id[OBJ_ID_MAX];  /* "" for explicit sizes */
	char network_id[OBJ_ID_MAX]; /* "" for none */
	char host_id[OBJ_ID_MAX];
	int64_t vcpus, memory_mib, disk_gib;
	char *user_data;	 /* NULL or text */
	char *command;		 /* JSON array text, or NULL (the image's) */
	char *env;		 /* JSON array text, or NULL */
	char *ssh_keys;		 /* JSON array text of key lines, or NULL (none) */
	char restart_policy[16]; /* no | on-failure | always */

	/* Intent, written by the API (compare-and-swap on intent_gen). */
	char desired[16]; /* running | stopped | deleted */
	int64_t intent_gen;
	int64_t reboot_gen;   /* reboot requests so far */
	int64_t stop_timeout; /* seconds from TERM to KILL */

	/* Observation, written by the reconcile loop only. */
	char state[16]; /* creating | starting | running | stopping | stopped | deleting | failed */
	int64_t pid;	/* 0: none */
	bool has_exit;
	int64_t exit_status; /* of the last run, valid with has_exit */
	char failure[512];   /* why the last run ended / the start failed; "" none */
	int64_t restart_count;
	int64_t reboot_done; /* reboot requests carried out */
	char ip[64], mac[32];
};

/*
 * A volume: a raw file <root>/volumes/<id>.img holding an ext4 file
 * system (docs/yund.md). The API writes the intent (desired, the
 * attachment); the reconcile loop the observation (path, state, method,
 * failure), never moving a volume out of "deleting".
 */
struct st_volume {
	struct st_meta m;
	int64_t size_gib;
	char desired[16]; /* available | deleted */
	char state[16];	  /* creating | available | deleting | failed ("in-use": attached) */
	char instance_id[OBJ_ID_MAX]; /* "" when detached */
	char mount_path[256];	      /* where a container sees it, when attached */
	bool readonly;
	char source_snapshot[OBJ_ID_MAX]; /* a clone's snapshot; "" none or deleted since */
	char path[PATH_MAX];		  /* the file, once made */
	char method[16];		  /* how it was made: mkfs | reflink | copy */
	char failure[512];
};

/* A snapshot: a point-in-time copy <root>/snapshots/<id>.img of a volume. */
struct st_snapshot {
	struct st_meta m;
	char volume_id[OBJ_ID_MAX];
	int64_t size_gib;
	char desired[16]; /* available | deleted */
	char state[16];	  /* creating | available | deleting | failed */
	char path[PATH_MAX];
	char method[16]; /* reflink | copy */
	char failure[512];
};

/* A volume to attach: its reference, where a container sees it ("": /mnt/<name>). */
struct st_attach {
	char ref[OBJ_NAME_MAX];
	char mount_path[256];
	bool readonly;
};

/* The observed half of an instance, as the reconcile loop writes it. */
struct st_observed {
	char state[16];
	int64_t pid;
	bool has_exit;
	int64_t exit_status;
	char failure[512];
	int64_t restart_count;
	int64_t reboot_done;
	char ip[64], mac[32];
};

/* The intent half, as the API writes it. */
struct st_intent {
	char desired[16];
	int64_t reboot_gen;
	int64_t stop_timeout;
	char state[16]; /* "" keeps the state; else shown at once (e.g. "deleting") */
};

/* The part of a host the admission check may hand out. */
struct st_capacity {
	int64_t vcpus;	    /* physical x cpu over-commit */
	int64_t memory_mib; /* physical x memory over-commit */
	double cpu_overcommit, memory_overcommit;
};

struct store;

struct store_ops {
	void (*close)(struct store *s);

	/* Small key/value settings of the store itself ("host_id", "seeded"). */
	int (*meta_get)(struct store *s, const char *key, char *buf, size_t len,
			struct yun_err *err); /* -ENOENT when unset */
	int (*meta_set)(struct store *s, const char *key, const char *value, struct yun_err *err);

	int (*host_put)(struct store *s, const struct st_host *h, struct yun_err *err);
	int (*host_get)(struct store *s, const char *ref, struct st_host *out, struct yun_err *err);
	int (*host_list)(struct store *s, struct st_host **out, size_t *n, struct yun_err *err);
	int (*host_allocated)(struct store *s, const char *host_id, struct st_alloc *out,
			      struct yun_err *err);

	int (*flavor_create)(struct store *s, const struct st_flavor *f, struct yun_err *err);
	int (*flavor_get)(struct store *s, const char *ref, struct st_flavor *out,
			  struct yun_err *err);
	int (*flavor_list)(struct store *s, struct st_flavor **out, size_t *n, struct yun_err *err);
	/* -EBUSY while an instance was made from it. *out: the deleted row. */
	int (*flavor_delete)(struct store *s, const char *ref, struct st_flavor *out,
			     struct yun_err *err);

	int (*image_create)(struct store *s, const struct st_image *img, struct yun_err *err);
	int (*image_get)(struct store *s, const char *ref, struct st_image *out,
			 struct yun_err *err);
	int (*image_list)(struct store *s, struct st_image **out, size_t *n, struct yun_err *err);
	/* State, path, size, os, version, command, failure of image `id`. */
	int (*image_update)(struct store *s, const struct st_image *img, struct yun_err *err);
	/* -EBUSY while an instance uses it or while it builds. */
	int (*image_delete)(struct store *s, const char *ref, struct st_image *out,
			    struct yun_err *err);

	int (*network_create)(struct store *s, const struct st_network *n, struct yun_err *err);
	int (*network_get)(struct store *s, const char *ref, struct st_network *out,
			   struct yun_err *err);
	int (*network_list)(struct store *s, struct st_network **out, size_t *n,
			    struct yun_err *err);
	/* gateway, bridge, desired, state of network `id`. */
	int (*network_update)(struct store *s, const struct st_network *net, struct yun_err *err);
	/* desired = deleted, state = deleting; -EBUSY while instances are attached. */
	int (*network_request_delete)(struct store *s, const char *ref, struct st_network *out,
				      struct yun_err *err);
	int (*network_delete)(struct store *s, const char *id, struct yun_err *err);

	/*
	 * Insert `inst` if its vcpus and memory fit in `cap` minus what every
	 * instance on its host holds (-ENOSPC otherwise, nothing written).
	 */
	int (*instance_create)(struct store *s, const struct st_instance *inst,
			       const struct st_capacity *cap, struct yun_err *err);
	/* instance_create, attaching volumes v[0..n) in the same transaction (all or none). */
	int (*instance_create_attached)(struct store *s, const struct st_instance *inst,
					const struct st_capacity *cap, const struct st_attach *v,
					size_t n, struct yun_err *err);
	int (*instance_get)(struct store *s, const char *ref, struct st_instance *out,
			    struct yun_err *err);
	int (*instance_list)(struct store *s, struct st_instance **out, size_t *n,
			     struct yun_err *err);
	/*
	 * Write the intent of instance `id` if its intent_gen is still
	 * `expect_gen` (-EAGAIN otherwise); intent_gen becomes expect_gen + 1.
	 */
	int (*instance_set_intent)(struct store *s, const char *id, int64_t expect_gen,
				   const struct st_intent *in, struct yun_err *err);
	/*
	 * Write the observation of instance `id`; with `intent`, also that
	 * intent in the same transaction, if intent_gen is still expect_gen
	 * (-EAGAIN and nothing written otherwise).
	 */
	int (*instance_set_observed)(struct store *s, const char *id, const struct st_observed *o,
				     const struct st_intent *intent, int64_t expect_gen,
				     struct yun_err *err);
	/* Removes the row; its volumes are detached in the same transaction. */
	int (*instance_delete)(struct store *s, const char *id, struct yun_err *err);

	/*
	 * A clone (source_snapshot set) needs that snapshot available
	 * (-ENOENT / -EBUSY otherwise), decided in the transaction.
	 */
	int (*volume_create)(struct store *s, const struct st_volume *v, struct yun_err *err);
	int (*volume_get)(struct store *s, const char *ref, struct st_volume *out,
			  struct yun_err *err);
	int (*volume_list)(struct store *s, struct st_volume **out, size_t *n, struct yun_err *err);
	/*
	 * The loop's observation of volume `v->m.id`: path, state, method,
	 * failure. A volume the API marked deleting stays deleting.
	 */
	int (*volume_set_observed)(struct store *s, const struct st_volume *v, struct yun_err *err);
	/*
	 * Attach volume `ref` to instance `inst_ref` at mount_path ("":
	 * /mnt/<volume name>): -EBUSY
	 * when attached elsewhere, deleting or failed, when the instance is
	 * being deleted or already has something at mount_path.
	 */
	int (*volume_attach)(struct store *s, const char *ref, const char *inst_ref,
			     const char *mount_path, bool readonly, struct st_volume *out,
			     struct yun_err *err);
	/* Detach; with inst_ref, -EBUSY unless attached to that instance. */
	int (*volume_detach)(struct store *s, const char *ref, const char *inst_ref,
			     struct st_volume *out, struct yun_err *err);
	/* desired = deleted, state = deleting; -EBUSY while attached or snapshotted. */
	int (*volume_request_delete)(struct store *s, const char *ref, struct st_volume *out,
				     struct yun_err *err);
	int (*volume_delete)(struct store *s, const char *id, struct yun_err *err);

	/* The volume must exist and not be deleting or failed. */
	int (*snapshot_create)(struct store *s, const struct st_snapshot *sn, struct yun_err *err);
	int (*snapshot_get)(struct store *s, const char *ref, struct st_snapshot *out,
			    struct yun_err *err);
	int (*snapshot_list)(struct store *s, struct st_snapshot **out, size_t *n,
			     struct yun_err *err);
	/* path, state, method, failure; a snapshot marked deleting stays deleting. */
	int (*snapshot_set_observed)(struct store *s, const struct st_snapshot *sn,
				     struct yun_err *err);
	/* -EBUSY while a volume cloned from it is still being made. */
	int (*snapshot_request_delete)(struct store *s, const char *ref, struct st_snapshot *out,
				       struct yun_err *err);
	/* Removes the row; clones made from it keep their data, source_snapshot becomes "". */
	int (*snapshot_delete)(struct store *s, const char *id, struct yun_err *err);
};

struct store {
	const struct store_ops *ops;
};

/* Records with heap parts. */
void st_image_clear(struct st_image *img);
void st_instance_clear(struct st_instance *inst);
void st_images_free(struct st_image *v, size_t n);
void st_instances_free(struct st_instance *v, size_t n);
/* Deep copy (heap parts duplicated); -ENOMEM. */
int st_instance_copy(struct st_instance *dst, const struct st_instance *src);

/* The observed half of an instance, for a read-modify-write by the loop. */
void st_instance_observed(const struct st_instance *inst, struct st_observed *o);

#endif
