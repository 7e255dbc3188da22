/* err.c - see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void err_vformat(struct yun_err *err, int code, const char *fmt, va_list ap)
{
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int yun_err_set(struct yun_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		err_vformat(err, code, fmt, ap);
		va_end(ap);
	}
	return -code;
}

int yun_err_errno(struct yun_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (err) {
		va_start(ap, fmt);
		err_vformat(err, code, fmt, ap);
		va_end(ap);
		n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(code));
	}
	return -code;
}

void yun_err_clear(struct yun_err *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}
