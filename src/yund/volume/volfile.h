/*
 * volfile.h - the files behind volumes and snapshots: a sparse raw file of
 * a given size, and a copy of one that shares blocks with it (FICLONE,
 * a reflink) where the file system can, else a sparse copy (only the
 * data extents, holes stay holes).
 *
 * Crash safety is the caller's: these write where they are told (a
 * temporary name) and fsync what they wrote; the caller renames the
 * result into place and fsyncs the directory (volfile_commit).
 */
#ifndef YUND_VOLUME_VOLFILE_H
#define YUND_VOLUME_VOLFILE_H

#include <stdint.h>

#include "../../lib/err.h"

enum volfile_method {
	VOLFILE_REFLINK, /* shares the source's blocks (FICLONE) */
	VOLFILE_COPY,	 /* copied data extents; holes kept */
};

const char *volfile_method_name(enum volfile_method m);

/* Create `path` (must not exist) as a sparse file of `bytes`, fsync'ed. */
int volfile_create_sparse(const char *path, uint64_t bytes, struct yun_err *err);

/* Copy `src` to new file `dst` (must not exist), fsync'ed; *how says which way. */
int volfile_clone(const char *src, const char *dst, enum volfile_method *how, struct yun_err *err);

/* Rename `tmp` to `path` and fsync their directory: the file is there whole or not at all. */
int volfile_commit(const char *tmp, const char *path, struct yun_err *err);

/* unlink that counts a missing file as success. */
int volfile_remove(const char *path, struct yun_err *err);

/* Bytes free for an unprivileged writer in the file system holding `dir`. */
int volfile_free_bytes(const char *dir, uint64_t *out, struct yun_err *err);

#endif
