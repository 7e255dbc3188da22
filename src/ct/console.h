/*
 * console.h - ptys and terminals for containers and their clients.
 *
 * A container's pty always comes from the container's own devpts instance
 * (opened through its /dev/pts/ptmx), so inside it is /dev/pts/N and
 * /dev/console like on a real machine; the supervisor holds the master.
 * Client side: raw mode for the local terminal and its window size.
 */
#ifndef YUN_CT_CONSOLE_H
#define YUN_CT_CONSOLE_H

#include <stdbool.h>
#include <termios.h>

#include "../lib/err.h"

/* Unlock the pty behind an open master and open its slave (TIOCGPTPEER). */
int ct_console_pty_from_master(int master, int *slave, struct yun_err *err);

/* Open the ptmx at `ptmx` (a path) and its slave. */
int ct_console_pty_open(const char *ptmx, int *master, int *slave, struct yun_err *err);

/* In the process that will exec: new session, `slave` as controlling tty and stdio. */
int ct_console_make_controlling(int slave, struct yun_err *err);

int ct_console_set_winsize(int fd, unsigned rows, unsigned cols);
int ct_console_get_winsize(int fd, unsigned *rows, unsigned *cols);

/* Local terminal raw mode for an attached client; restore undoes it. */
int ct_console_raw(int fd, struct termios *saved);
void ct_console_restore(int fd, const struct termios *saved);

#endif
