/* volfile.c - see volfile.h. */
#include "volfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

const char *volfile_method_name(enum volfile_method m)
{
	return m == VOLFILE_REFLINK ? "reflink" : "copy";
}

int volfile_create_sparse(const char *path, uint64_t bytes, struct yun_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		return yun_err_errno(err, errno, "%s", path);
	if (ftruncate(fd, (off_t)bytes) < 0)
		rc =
		    yun_err_errno(err, errno, "%s: set size %llu", path, (unsigned long long)bytes);
	else if (fsync(fd) < 0)
		rc = yun_err_errno(err, errno, "%s: fsync", path);
	close(fd);
	return rc;
}

/* Copy [off, off+len) from in to out with copy_file_range, read/write where it cannot. */
static int copy_range(int in, int out, off_t off, off_t len)
{
	char buf[1 << 16];

	while (len > 0) {
		off_t o_in = off, o_out = off;
		ssize_t n = copy_file_range(in, &o_in, out, &o_out, (size_t)len, 0);

		if (n < 0 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
			n = pread(in, buf, len < (off_t)sizeof(buf) ? (size_t)len : sizeof(buf),
				  off);
			if (n > 0 && pwrite(out, buf, (size_t)n, off) != n)
				return errno ? -errno : -EIO;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the source shrank under us */
		off += n;
		len -= n;
	}
	return 0;
}

/* Data extents of in (SEEK_DATA/SEEK_HOLE) into out, which has in's size already. */
static int sparse_copy(int in, int out, off_t size)
{
	off_t data = 0, hole;
	int rc;

	while (data < size) {
		data = lseek(in, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno; /* ENXIO: only a hole is left */
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		rc = copy_range(in, out, data, hole - data);
		if (rc)
			return rc;
		data = hole;
	}
	return 0;
}

int volfile_clone(const char *src, const char *dst, enum volfile_method *how, struct yun_err *err)
{
	struct stat sb;
	int in, out, rc = 0;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return yun_err_errno(err, errno, "%s", src);
	if (fstat(in, &sb) < 0) {
		rc = yun_err_errno(err, errno, "%s", src);
		close(in);
		return rc;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = yun_err_errno(err, errno, "%s", dst);
		close(in);
		return rc;
	}
	if (ioctl(out, FICLONE, in) == 0) {
		*how = VOLFILE_REFLINK;
	} else {
		*how = VOLFILE_COPY;
		if (ftruncate(out, sb.st_size) < 0)
			rc = yun_err_errno(err, errno, "%s: set size", dst);
		else if ((rc = sparse_copy(in, out, sb.st_size)) < 0)
			rc = yun_err_errno(err, -rc, "copy %s to %s", src, dst);
	}
	if (!rc && fsync(out) < 0)
		rc = yun_err_errno(err, errno, "%s: fsync", dst);
	close(out);
	close(in);
	return rc;
}

int volfile_commit(const char *tmp, const char *path, struct yun_err *err)
{
	char dir[PATH_MAX];
	int fd, rc = 0;

	if (rename(tmp, path) < 0)
		return yun_err_errno(err, errno, "rename %s to %s", tmp, path);
	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return yun_err_errno(err, errno, "%s", dir);
	if (fsync(fd) < 0)
		rc = yun_err_errno(err, errno, "%s: fsync", dir);
	close(fd);
	return rc;
}

int volfile_remove(const char *path, struct yun_err *err)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return yun_err_errno(err, errno, "remove %s", path);
	return 0;
}

int volfile_free_bytes(const char *dir, uint64_t *out, struct yun_err *err)
{
	struct statvfs sv;

	if (statvfs(dir, &sv) < 0)
		return yun_err_errno(err, errno, "%s", dir);
	*out = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}
