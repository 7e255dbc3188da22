/* netns.c - see netns.h. */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ids.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

bool yn_netns_is_mounted(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == NSFS_MAGIC;
}

/* <run>/netns as a shared mount point of its own (once). */
static int netns_dir_ensure(const char *dir, struct yun_err *err)
{
	int rc = yn_mkdirs(dir, err);

	if (rc)
		return rc;
	if (mount("", dir, NULL, MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return yun_err_errno(err, errno, "directory %s: make shared", dir);
	/* EINVAL: not a mount point yet. */
	if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0)
		return yun_err_errno(err, errno, "directory %s: bind onto itself", dir);
	if (mount("", dir, NULL, MS_SHARED | MS_REC, NULL) < 0)
		return yun_err_errno(err, errno, "directory %s: make shared", dir);
	return 0;
}

/*
 * A child unshares a new network namespace and binds its
 * /proc/self/ns/net onto `path` (it shares our mount namespace, so the
 * mount stays when it exits). Only system calls between fork and _exit:
 * the daemon is multi-threaded.
 */
static int netns_create(const char *path, struct yun_err *err)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return yun_err_errno(err, errno, "netns %s: fork", path);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0)
			_exit(errno & 0x7f);
		if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0)
			_exit((errno & 0x7f) | 0x80);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return yun_err_errno(err, errno, "netns %s: wait for helper", path);
	if (!WIFEXITED(status))
		return yun_err_set(err, EIO, "netns %s: helper died (status 0x%x)", path, status);
	if (WEXITSTATUS(status) == 0)
		return 0;
	return yun_err_errno(err, WEXITSTATUS(status) & 0x7f, "netns %s: %s", path,
			     WEXITSTATUS(status) & 0x80 ? "bind mount" : "unshare");
}

int yn_netns_ensure(const struct yn_ctx *ctx, const char *instance_id, char path[YN_PATH_MAX],
		    struct yun_err *err)
{
	char dir[YN_PATH_MAX];
	int rc, fd;

	if ((rc = yn_id_check(YN_ID_INSTANCE, instance_id, err)))
		return rc;
	snprintf(dir, sizeof(dir), "%s/netns", ctx->run_dir);
	yn_ctx_netns_path(ctx, instance_id, path);
	if ((rc = netns_dir_ensure(dir, err)))
		return rc;
	if (yn_netns_is_mounted(path))
		return 0;
	/* The mount point: a new empty file, or the one an interrupted call left. */
	fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0);
	if (fd < 0)
		return yun_err_errno(err, errno, "netns %s: create", path);
	close(fd);
	rc = netns_create(path, err);
	if (rc)
		unlink(path);
	return rc;
}

int yn_netns_remove(const struct yn_ctx *ctx, const char *instance_id, struct yun_err *err)
{
	char path[YN_PATH_MAX];
	int rc;

	if ((rc = yn_id_check(YN_ID_INSTANCE, instance_id, err)))
		return rc;
	yn_ctx_netns_path(ctx, instance_id, path);
	/* Repeat: an interrupted ensure may have stacked two mounts. */
	for (int i = 0; i < 8 && yn_netns_is_mounted(path); i++)
		if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			return yun_err_errno(err, errno, "netns %s: unmount", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return yun_err_errno(err, errno, "netns %s: remove", path);
	return 0;
}
