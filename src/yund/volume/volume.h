/*
 * volume.h - volumes and snapshots on the host (docs/yund.md, issue 5):
 * the reconcile loop's steps that make and remove their files, the host
 * mounts that put a volume into a container, and what an instance driver
 * needs to know of an instance's volumes.
 *
 * Files: volume <root>/volumes/<id>.img (a sparse raw file with an ext4
 * file system, or a copy of a snapshot), snapshot <root>/snapshots/<id>.img.
 * Host mounts: <run>/volumes/<volume id>, with <run>/volumes/<id>.holder
 * naming the instance whose container mounted it.
 *
 * Crash safety. The API only commits rows (state "creating" or
 * "deleting"); the loop makes the host match, so a volume is made in the
 * background rather than synchronously in the API thread: the same
 * contract as instances and images (the API never touches the host), no
 * API call waits for mkfs or a copy of gigabytes, and the file's commit
 * point is a rename. Each file is written under a temporary name
 * .tmp-<id>.img, fsync'ed, renamed into place and its directory fsync'ed;
 * only then is the row marked available. A kill -9 before the rename
 * leaves a temporary file that the next attempt (the row still says
 * creating) or the sweep (no row) removes; after the rename and before
 * the commit, the next pass finds the whole file and just records it. A
 * delete removes the file, then the row; a crash between repeats the
 * (idempotent) removal. The sweep removes every file and host mount in
 * those directories that belongs to no row.
 *
 * Attachments: one instance per volume. For a container, the volume's
 * file system is loop-mounted on the host when the container starts and
 * bind-mounted by yun-ct at the attachment's path; an attach or detach
 * takes effect at the instance's next start. For a microVM the volume
 * file is a virtio-blk disk (yun-vmm locks it exclusively). Either way
 * the start claims the volume (<run>/volumes/<id>.holder); a volume
 * detached from an instance that still runs stays claimed until it has
 * stopped, and another instance's start waits until then (never two
 * mounts of one ext4, never a mount and a VM).
 */
#ifndef YUND_VOLUME_VOLUME_H
#define YUND_VOLUME_VOLUME_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "../../lib/err.h"
#include "../core/object.h"
#include "../store/store.h"
#include "spec.h"

struct yund;

/* A volume attached to an instance, as an instance driver uses it. */
struct vol_attachment {
	char id[OBJ_ID_MAX];
	char name[OBJ_NAME_MAX];
	char path[PATH_MAX];  /* the raw image file (virtio-blk: --disk path=...) */
	char mount_path[256]; /* containers: where it appears */
	bool readonly;
	bool ready; /* its file is made (state available); wait otherwise */
};

/* The volumes attached to instance `instance_id` (*out: free()); never partial. */
int vol_attachments(struct store *s, const char *instance_id, struct vol_attachment **out,
		    size_t *n, struct yun_err *err);

/*
 * Before a container instance starts: mount each attached volume on the
 * host and give yun-ct's "mounts" list as JSON text (*json: free(); NULL
 * when the instance has no volume). -EAGAIN (with a reason) while a
 * volume is not made yet or still mounted in another instance's container.
 */
int vol_ct_mounts(struct yund *y, const char *instance_id, char **json, struct yun_err *err);

/*
 * Before a microVM instance starts: claim its volumes (no host mount; the
 * VMM opens the files). -EAGAIN while a volume is not made yet or still
 * in use by another instance (a container that has not ended, a VM).
 */
int vol_vm_claim(struct yund *y, const char *instance_id, struct yun_err *err);

/* One pass of the loop: make, snapshot, clone and delete files; unmount what is unused. */
void vol_reconcile(struct yund *y, bool *busy);

/* Remove files and host mounts that belong to no row. */
void vol_sweep(struct yund *y);

/* Where the files are. */
void vol_file_path(const struct yund *y, const char *id, char *buf, size_t len);
void vol_snapshot_path(const struct yund *y, const char *id, char *buf, size_t len);

/* As the API shows them ("in-use": attached and available). */
json_t *vol_render(const struct st_volume *v);
json_t *vol_render_snapshot(const struct st_snapshot *sn);
void vol_notify(struct yund *y, const char *what, const struct st_volume *v);
void vol_notify_snapshot(struct yund *y, const char *what, const struct st_snapshot *sn);

#endif
