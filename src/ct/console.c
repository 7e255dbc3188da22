/* console.c - see console.h. */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int ct_console_pty_from_master(int master, int *slave, struct yun_err *err)
{
	int unlock = 0, fd;

	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return yun_err_errno(err, errno, "pty: unlock");
	fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return yun_err_errno(err, errno, "pty: open the slave");
	*slave = fd;
	return 0;
}

int ct_console_pty_open(const char *ptmx, int *master, int *slave, struct yun_err *err)
{
	int m = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
	int rc;

	if (m < 0)
		return yun_err_errno(err, errno, "pty: open %s", ptmx);
	rc = ct_console_pty_from_master(m, slave, err);
	if (rc) {
		close(m);
		return rc;
	}
	*master = m;
	return 0;
}

int ct_console_make_controlling(int slave, struct yun_err *err)
{
	if (setsid() < 0)
		return yun_err_errno(err, errno, "console: setsid");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return yun_err_errno(err, errno, "console: set the controlling terminal");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return yun_err_errno(err, errno, "console: dup2");
	if (slave > 2)
		close(slave);
	return 0;
}

int ct_console_set_winsize(int fd, unsigned rows, unsigned cols)
{
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};

	if (rows == 0 || cols == 0)
		return 0;
	return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

int ct_console_get_winsize(int fd, unsigned *rows, unsigned *cols)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		return -errno;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}

int ct_console_raw(int fd, struct termios *saved)
{
	struct termios t;

	if (tcgetattr(fd, saved) < 0)
		return -errno;
	t = *saved;
	cfmakeraw(&t);
	/* Keep output processing: the remote side already produces \r\n. */
	t.c_oflag = saved->c_oflag & ~OPOST;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	return 0;
}

void ct_console_restore(int fd, const struct termios *saved)
{
	tcsetattr(fd, TCSANOW, saved);
}
