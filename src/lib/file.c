/* file.c - see file.h. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int yun_file_read_all(const char *what, const char *path, size_t max_len, uint8_t **buf,
		      size_t *len, struct yun_err *err)
{
	struct stat st;
	uint8_t *data;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return yun_err_errno(err, errno, "%s %s", what, path);
	if (fstat(fd, &st) < 0) {
		rc = yun_err_errno(err, errno, "%s %s", what, path);
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = yun_err_set(err, EINVAL, "%s %s: not a regular file", what, path);
		goto out_close;
	}
	if ((uint64_t)st.st_size > max_len) {
		rc = yun_err_set(err, EFBIG, "%s %s: %lld bytes is more than the %zu allowed", what,
				 path, (long long)st.st_size, max_len);
		goto out_close;
	}
	data = malloc(st.st_size ? st.st_size : 1);
	if (!data) {
		rc = yun_err_set(err, ENOMEM, "%s %s: out of memory", what, path);
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = yun_err_errno(err, errno, "%s %s: read", what, path);
			free(data);
			goto out_close;
		}
		if (n == 0)
			break;
		got += n;
	}
	*buf = data;
	*len = got;
	rc = 0;
out_close:
	close(fd);
	return rc;
}
