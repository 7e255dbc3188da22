/*
 * loopmnt.h - a volume's ext4 file system mounted on the host through a
 * loop device, so a container can bind-mount it.
 *
 * The loop device is set up with autoclear: it goes away by itself when
 * its last mount does (or when the setting-up process dies before it
 * mounted it), so nothing but the mount itself can leak, and the mount
 * is found again by its path.
 */
#ifndef YUND_VOLUME_LOOPMNT_H
#define YUND_VOLUME_LOOPMNT_H

#include <stdbool.h>

#include "../../lib/err.h"

/* Mount the ext4 image `file` at directory `dir` (nodev, nosuid). */
int loopmnt_mount(const char *file, const char *dir, struct yun_err *err);

/* Whether something is mounted at `dir`. */
bool loopmnt_is_mounted(const char *dir);

/* Detach the mount at `dir` (lazily: a container's own copy of it lives on); 0 if none. */
int loopmnt_umount(const char *dir, struct yun_err *err);

#endif
