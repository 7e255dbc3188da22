/* spec.c - see spec.h. */
#include "spec.h"

#include <errno.h>
#include <string.h>

/* A path inside a container: absolute, no "." or ".." parts, plain characters. */
int vol_check_mount_path(const char *p, struct yun_err *err)
{
	size_t len = strlen(p);

	if (p[0] != '/' || len < 2)
		return yun_err_set(err, ERANGE,
				   "field path: \"%.60s\": must be an absolute path below /", p);
	if (len > VOL_MOUNT_PATH_MAX)
		return yun_err_set(err, ERANGE, "field path: longer than %d characters",
				   VOL_MOUNT_PATH_MAX);
	for (const char *c = p; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("/._-", *c)))
			return yun_err_set(err, ERANGE,
					   "field path: \"%.60s\": character 0x%02x not allowed "
					   "(letters, digits, '/', '.', '_', '-')",
					   p, (unsigned char)*c);
	}
	for (const char *c = p; *c; c++) {
		if (*c != '/')
			continue;
		if (c[1] == '/' || c[1] == '\0' || (c[1] == '.' && (c[2] == '/' || c[2] == '\0')) ||
		    (c[1] == '.' && c[2] == '.' && (c[3] == '/' || c[3] == '\0')))
			return yun_err_set(err, ERANGE,
					   "field path: \"%.60s\": empty, \".\" or \"..\" part or "
					   "trailing '/'",
					   p);
	}
	if (!strcmp(p, "/proc") || !strncmp(p, "/proc/", 6) || !strcmp(p, "/sys") ||
	    !strncmp(p, "/sys/", 5) || !strcmp(p, "/dev") || !strncmp(p, "/dev/", 5))
		return yun_err_set(err, ERANGE, "field path: %s: /proc, /sys and /dev are reserved",
				   p);
	return 0;
}

int vol_parse_attach(const char *spec, struct st_attach *out, struct yun_err *err)
{
	const char *c1 = strchr(spec, ':'), *rest;
	size_t len = c1 ? (size_t)(c1 - spec) : strlen(spec);

	memset(out, 0, sizeof(*out));
	if (!len || len >= sizeof(out->ref))
		return yun_err_set(err, ERANGE,
				   "field volumes: \"%.60s\": must be VOLUME[:PATH][:ro]", spec);
	memcpy(out->ref, spec, len);
	if (!c1)
		return 0;
	rest = c1 + 1;
	if (rest[0] == '/') {
		const char *c2 = strchr(rest, ':');
		size_t plen = c2 ? (size_t)(c2 - rest) : strlen(rest);

		if (plen >= sizeof(out->mount_path))
			return yun_err_set(err, ERANGE, "field volumes: \"%.60s\": path too long",
					   spec);
		memcpy(out->mount_path, rest, plen);
		if (vol_check_mount_path(out->mount_path, err) < 0)
			return -ERANGE;
		rest = c2 ? c2 + 1 : NULL;
	}
	if (!rest || !strcmp(rest, "rw"))
		return 0;
	if (!strcmp(rest, "ro")) {
		out->readonly = true;
		return 0;
	}
	return yun_err_set(err, ERANGE, "field volumes: \"%.60s\": must be VOLUME[:PATH][:ro]",
			   spec);
}
