/* fs.c - see fs.h. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int fs_mkdirs(const char *path, mode_t mode, struct yun_err *err)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return yun_err_set(err, ENAMETOOLONG, "%s: path too long", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return yun_err_errno(err, errno, "directory %s", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return yun_err_errno(err, errno, "directory %s", buf);
	return 0;
}

int fs_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
		    struct yun_err *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd, dfd, e;
	size_t off = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return yun_err_set(err, ENAMETOOLONG, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return yun_err_errno(err, errno, "%s", tmp);
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			close(fd);
			unlink(tmp);
			return yun_err_errno(err, e, "%s", tmp);
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		e = errno;
		unlink(tmp);
		return yun_err_errno(err, e, "%s", tmp);
	}
	if (rename(tmp, path) < 0) {
		e = errno;
		unlink(tmp);
		return yun_err_errno(err, e, "%s", path);
	}
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(p) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(p) < 0 && errno != ENOENT ? -1 : 0;
}

int fs_remove_tree(const char *path, struct yun_err *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : yun_err_errno(err, errno, "%s", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return yun_err_errno(err, errno, "%s", path);
		return 0;
	}
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return yun_err_errno(err, errno, "remove %s", path);
	if (lstat(path, &st) == 0)
		return yun_err_set(err, EBUSY, "remove %s: something is left (a mount point?)",
				   path);
	return 0;
}

void fs_last_line(const char *path, off_t from, char *buf, size_t len)
{
	char chunk[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	off_t start;
	ssize_t n;
	char *end, *line;

	buf[0] = '\0';
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size <= from) {
		close(fd);
		return;
	}
	start = st.st_size - (off_t)sizeof(chunk) + 1;
	if (start < from)
		start = from;
	n = pread(fd, chunk, sizeof(chunk) - 1, start);
	close(fd);
	if (n <= 0)
		return;
	chunk[n] = '\0';
	end = chunk + n;
	while (end > chunk && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		*--end = '\0';
	line = strrchr(chunk, '\n');
	line = line ? line + 1 : chunk;
	snprintf(buf, len, "%s", line);
}

off_t fs_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : 0;
}

bool fs_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}
