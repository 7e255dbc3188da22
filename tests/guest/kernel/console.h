/*
 * console.h - the test protocol on COM1. Data lines are "YT <KEY> <value>",
 * the last line is "YT PASS <case>" or "YT FAIL <case> <reason>", after which
 * the guest leaves through the debug-exit port (0x10 = pass, 0x11 = fail).
 */
#ifndef YT_CONSOLE_H
#define YT_CONSOLE_H

#include <stdarg.h>
#include "io.h"

/* The running case's name, for PASS/FAIL lines and exception reports. */
extern const char *yt_case;

int yt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int yt_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One whole line (or lines) under the console lock; safe from any CPU. */
void yt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* For long output built piece by piece: take the lock, put, release. */
void console_lock(void);
void console_unlock(void);
void console_putc(char c);
void console_puts(const char *s);

/* Print a string with everything outside printable ASCII and '\' as \xHH. */
void console_put_escaped(const char *s, size_t len);

_Noreturn void yt_pass(void);
_Noreturn void yt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
