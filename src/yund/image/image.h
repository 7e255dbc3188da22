/*
 * image.h - the local image store: <root>/images/<id>/ holds a
 * scripts/mkimage image (manifest.json + rootfs/).
 *
 * An image row starts in state "building"; the reconcile loop runs one
 * job per such image in <root>/images/.tmp-<id>/ (scripts/mkimage KIND,
 * or cp -a of an import directory, output in .tmp-<id>/log), renames the
 * result to <root>/images/<id> (atomic: the image is whole or absent),
 * reads its manifest and marks it "available" (or "failed" with the
 * job's last line). A job dies with the loop's thread (yund's exit); at
 * the next start a building image either has its directory already
 * (finished before the crash: marked available) or is built again from
 * scratch. Directories of deleted images are swept.
 */
#ifndef YUND_IMAGE_IMAGE_H
#define YUND_IMAGE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../../lib/err.h"

struct yund;

/* For the API: "busybox" or "debian" (ERANGE otherwise). */
int img_check_build_kind(const char *kind, struct yun_err *err);

/* For the API: an absolute path to a directory with manifest.json and rootfs/ (ERANGE). */
int img_check_import_dir(const char *dir, struct yun_err *err);

/*
 * microVM images: <root>/images/<id>/ holds kernel (a bzImage or an ELF
 * with a PVH note), initrd (optional), rootfs.ext4 and manifest.json
 * ({"type": "microvm", "cmdline": ..., "size": ...}). An import copies
 * kernel, initrd and rootfs.ext4 (reflink when possible), or makes
 * rootfs.ext4 from a rootfs/ directory with `mkfs.ext4 -d`; a build runs
 * scripts/mkimage KIND and makes rootfs.ext4 from its rootfs/, with the
 * kernel given. The import's manifest.json may set cmdline (default
 * "console=ttyS0 root=/dev/vda rw").
 */
#define IMG_KERNEL_MAX	((off_t)256 << 20)
#define IMG_INITRD_MAX	((off_t)1 << 30)
#define IMG_ROOTFS_MAX	((off_t)64 << 30)
#define IMG_CMDLINE_MAX 4096

/* For the API: a kernel file by its magic (ERANGE), `field` names it in messages. */
int img_check_kernel(const char *field, const char *path, struct yun_err *err);

/* For the API: an absolute path to a microVM image directory (ERANGE). */
int img_check_microvm_import(const char *dir, struct yun_err *err);

void img_dir(const struct yund *y, const char *id, char *buf, size_t len);

struct img_jobs;

struct img_jobs *img_jobs_new(void);
/* Kill the jobs still running (their images are rebuilt at the next start). */
void img_jobs_free(struct img_jobs *j);

/* One pass: start, finish and record image jobs. *busy: one is running. */
void img_reconcile(struct yund *y, struct img_jobs *j, bool *busy);

/* Remove image directories that belong to no image row. */
void img_sweep(struct yund *y, struct img_jobs *j);

#endif
