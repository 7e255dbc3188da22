/*
 * file.h - whole-file reads for loaders and config files.
 */
#ifndef YUN_LIB_FILE_H
#define YUN_LIB_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * Read all of regular file `path` into a new malloc'd buffer (*buf, *len).
 * `what` names the file's role in messages ("kernel", "initrd", "config").
 * Refuses non-regular files and files larger than max_len.
 */
int yun_file_read_all(const char *what, const char *path, size_t max_len, uint8_t **buf,
		      size_t *len, struct yun_err *err);

#endif
