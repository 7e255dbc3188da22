/* ctx.c - see ctx.h. */
#include "ctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int set_path(char *dst, const char *what, const char *src, struct yun_err *err)
{
	size_t n = strlen(src);

	if (src[0] != '/')
		return yun_err_set(err, EINVAL, "%s %.100s: must be an absolute path", what, src);
	if (n >= YN_RUN_DIR_MAX - 64)
		return yun_err_set(err, ENAMETOOLONG, "%s %.100s...: longer than %d characters",
				   what, src, YN_RUN_DIR_MAX - 64);
	memcpy(dst, src, n + 1);
	/* No trailing slash, so derived paths read cleanly. */
	while (n > 1 && dst[n - 1] == '/')
		dst[--n] = '\0';
	return 0;
}

int yn_ctx_init(struct yn_ctx *ctx, const char *run_dir, struct yun_err *err)
{
	const char *dnsmasq = getenv("YUN_DNSMASQ");
	int rc;

	if (!run_dir)
		run_dir = getenv("YUN_RUN");
	if (!run_dir || !*run_dir)
		run_dir = "/run/yun";
	if (!dnsmasq || !*dnsmasq)
		dnsmasq = "/usr/sbin/dnsmasq";
	rc = set_path(ctx->run_dir, "run directory", run_dir, err);
	if (!rc)
		rc = set_path(ctx->dnsmasq, "dnsmasq program", dnsmasq, err);
	return rc;
}

void yn_ctx_netns_path(const struct yn_ctx *ctx, const char *instance_id, char buf[YN_PATH_MAX])
{
	snprintf(buf, YN_PATH_MAX, "%s/netns/%.40s", ctx->run_dir, instance_id);
}

void yn_ctx_net_dir(const struct yn_ctx *ctx, const char *net_id, char buf[YN_PATH_MAX])
{
	snprintf(buf, YN_PATH_MAX, "%s/net/%.40s", ctx->run_dir, net_id);
}

int yn_mkdirs(const char *path, struct yun_err *err)
{
	char buf[YN_PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return yun_err_set(err, ENAMETOOLONG, "directory %.100s...: path too long", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return yun_err_errno(err, errno, "directory %s: create", buf);
		*p = c;
		if (!c)
			break;
	}
	return 0;
}
