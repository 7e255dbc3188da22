/*
 * image.h - container images on disk, as scripts/mkimage writes them:
 *
 *   DIR/manifest.json  {"name": "busybox", "os": "busybox", "version": "1.35.0",
 *                       "command": ["/sbin/init"], "size": 2097152,
 *                       "created": "2025-01-01T00:00:00Z"}
 *   DIR/rootfs/        the root filesystem, shared read-only by containers
 *
 * name, os, command (a non-empty array of strings) and size (bytes, an
 * integer >= 0) are required; version and created are optional strings;
 * other fields are ignored so newer tools can add them.
 */
#ifndef YUN_CT_IMAGE_H
#define YUN_CT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

struct image {
	char *dir;      /* the image directory, as given */
	char *rootfs;   /* DIR/rootfs */
	char *name;
	char *os;
	char *version;  /* "" when the manifest has none */
	char **command; /* default command, NULL-terminated (execv-ready) */
	size_t command_len;
	uint64_t size;  /* bytes, as recorded by mkimage */
};

/*
 * Read and check DIR/manifest.json and DIR/rootfs. On success img owns
 * copies of everything (free with image_close); on error img is left empty
 * and err says which file and field is wrong, e.g.
 *   image /var/lib/yun/images/bb: manifest.json: "command" must be an array of strings
 */
int image_open(const char *dir, struct image *img, struct yun_err *err);
void image_close(struct image *img);

#endif
