/*
 * err.h - error objects that say what failed and why.
 *
 * Library code never prints and never exits: it fills a struct yun_err and
 * returns a negative errno. The caller decides whether to print it. The
 * message names the object and the reason, e.g.
 *   "kernel /tmp/k.img: not a bzImage (no HdrS signature at 0x202)".
 */
#ifndef YUN_LIB_ERR_H
#define YUN_LIB_ERR_H

#include <stddef.h>

#define YUN_ERR_MSG_MAX 512

struct yun_err {
	int code;                   /* positive errno, 0 when no error */
	char msg[YUN_ERR_MSG_MAX];  /* one line, no trailing newline */
};

/* Record an error; returns -code so callers can `return yun_err_set(...)`. */
int yun_err_set(struct yun_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* As yun_err_set, appending ": strerror(code)". */
int yun_err_errno(struct yun_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void yun_err_clear(struct yun_err *err);

#endif
