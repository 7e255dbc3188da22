/* loopmnt.c - see loopmnt.h. */
#include "loopmnt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define FREE_TRIES 8 /* another process may take the free device we were given */

/* A free loop device bound to fd `file` with autoclear: its fd, or -errno. */
static int loop_attach(int file, char *dev, size_t len)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int rc = -EBUSY;

	if (ctl < 0)
		return -errno;
	for (int i = 0; i < FREE_TRIES && rc == -EBUSY; i++) {
		struct loop_config cfg;
		int n = ioctl(ctl, LOOP_CTL_GET_FREE), fd;

		if (n < 0) {
			rc = -errno;
			break;
		}
		snprintf(dev, len, "/dev/loop%d", n);
		fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			break;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (unsigned)file;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
			rc = fd;
		else if (errno == EINVAL || errno == ENOTTY) {
			/* Kernels before 5.8: the two-step way. */
			struct loop_info64 info;

			memset(&info, 0, sizeof(info));
			info.lo_flags = LO_FLAGS_AUTOCLEAR;
			if (ioctl(fd, LOOP_SET_FD, file) < 0)
				rc = -errno;
			else if (ioctl(fd, LOOP_SET_STATUS64, &info) < 0) {
				rc = -errno;
				ioctl(fd, LOOP_CLR_FD, 0);
			} else
				rc = fd;
		} else {
			rc = -errno;
		}
		if (rc < 0)
			close(fd);
	}
	close(ctl);
	return rc;
}

int loopmnt_mount(const char *file, const char *dir, struct yun_err *err)
{
	char dev[32];
	int f, lfd, rc = 0;

	f = open(file, O_RDWR | O_CLOEXEC);
	if (f < 0)
		return yun_err_errno(err, errno, "%s", file);
	lfd = loop_attach(f, dev, sizeof(dev));
	close(f);
	if (lfd < 0)
		return yun_err_errno(err, -lfd, "%s: loop device", file);
	if (mount(dev, dir, "ext4", MS_NODEV | MS_NOSUID, NULL) < 0)
		rc = yun_err_errno(err, errno, "mount %s (%s) at %s", file, dev, dir);
	/* Autoclear: the device goes with its mount, or now if the mount failed. */
	close(lfd);
	return rc;
}

bool loopmnt_is_mounted(const char *dir)
{
	char parent[PATH_MAX + 4];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", dir);
	if (stat(dir, &a) < 0 || stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

int loopmnt_umount(const char *dir, struct yun_err *err)
{
	if (!loopmnt_is_mounted(dir))
		return 0;
	if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return yun_err_errno(err, errno, "unmount %s", dir);
	return 0;
}
