/*
 * yund_volume_fuzz.c - libFuzzer target for what a tenant writes about
 * volume attachments (src/yund/volume/spec.c): a container path, and an
 * instance create's "VOLUME[:PATH][:ro]" item. The first byte picks the
 * parser, the rest is the text. An accepted path is absolute, at most 255
 * bytes of [A-Za-z0-9/._-], with no empty, "." or ".." part and nothing
 * under /proc, /sys or /dev; an accepted item has a non-empty reference
 * without ':' and, if any, an accepted path; a refusal names its field.
 *
 * FUZZ_SOURCES: src/yund/volume/spec.c src/lib/err.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yund/volume/spec.h"

/* abort() is what libFuzzer reports as a crash. */
#define INVARIANT(cond, text)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "yund_volume_fuzz: invariant broken: %s (\"%s\")\n",       \
				#cond, (text));                                                    \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void path_ok(const char *p)
{
	size_t len = strlen(p);

	INVARIANT(p[0] == '/' && len >= 2 && len <= VOL_MOUNT_PATH_MAX, p);
	INVARIANT(strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") ==
		      len,
		  p);
	INVARIANT(!strstr(p, "//") && !strstr(p, "/./") && !strstr(p, "/../"), p);
	INVARIANT(p[len - 1] != '/', p);
	INVARIANT(strcmp(p + len - 2, "/.") && (len < 3 || strcmp(p + len - 3, "/..")), p);
	INVARIANT(strncmp(p, "/proc", 5) || (p[5] != '\0' && p[5] != '/'), p);
	INVARIANT(strncmp(p, "/sys", 4) || (p[4] != '\0' && p[4] != '/'), p);
	INVARIANT(strncmp(p, "/dev", 4) || (p[4] != '\0' && p[4] != '/'), p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yun_err err = {0};
	struct st_attach a;
	char *text;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1) {
		if (vol_check_mount_path(text, &err) == 0)
			path_ok(text);
		else
			INVARIANT(strstr(err.msg, "field path"), err.msg);
	} else if (vol_parse_attach(text, &a, &err) == 0) {
		INVARIANT(a.ref[0] && !strchr(a.ref, ':') && strlen(a.ref) < sizeof(a.ref), text);
		INVARIANT(!strncmp(text, a.ref, strlen(a.ref)), text);
		if (a.mount_path[0])
			path_ok(a.mount_path);
	} else {
		INVARIANT(strstr(err.msg, "field volumes") || strstr(err.msg, "field path"),
			  err.msg);
	}
	free(text);
	return 0;
}
