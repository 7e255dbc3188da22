/*
 * fs.h - the file operations the reconcile loop repeats: atomic writes,
 * removing trees (idempotent: a missing path is success), reading the
 * last line of a log.
 */
#ifndef YUND_CORE_FS_H
#define YUND_CORE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../../lib/err.h"

/* snprintf for paths: -ENAMETOOLONG (buf empty) instead of a truncated path. */
int fs_path(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* mkdir -p with `mode` for the directories it makes. */
int fs_mkdirs(const char *path, mode_t mode, struct yun_err *err);

/* Write path atomically: a temporary file, fsync, rename, fsync of the directory. */
int fs_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
		    struct yun_err *err);

/* rm -rf that never crosses a mount point; 0 when path does not exist. */
int fs_remove_tree(const char *path, struct yun_err *err);

/* The last non-empty line of `path` after byte `from` (at most len-1 bytes); "" if none. */
void fs_last_line(const char *path, off_t from, char *buf, size_t len);

/* Size of a file, 0 when missing. */
off_t fs_size(const char *path);

bool fs_exists(const char *path);

#endif
