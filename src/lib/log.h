/*
 * log.h - diagnostics on stderr for the programs (not for library callers,
 * who get struct yun_err). Lines look like "yun-vmm: warning: ...".
 */
#ifndef YUN_LIB_LOG_H
#define YUN_LIB_LOG_H

#include <stdarg.h>

enum yun_log_level { YUN_LOG_ERROR, YUN_LOG_WARN, YUN_LOG_INFO, YUN_LOG_DEBUG };

/* Program name printed before every line; defaults to "yun". */
void yun_log_init(const char *prog, enum yun_log_level level);
enum yun_log_level yun_log_level(void);

void yun_log(enum yun_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The same for a message another library formats (libmicrohttpd's logger
 * callback): `prefix` goes first, newlines at its end are dropped.
 */
void yun_vlog(enum yun_log_level level, const char *prefix, const char *fmt, va_list ap);

#define yun_error(...) yun_log(YUN_LOG_ERROR, __VA_ARGS__)
#define yun_warn(...)  yun_log(YUN_LOG_WARN, __VA_ARGS__)
#define yun_info(...)  yun_log(YUN_LOG_INFO, __VA_ARGS__)
#define yun_debug(...) yun_log(YUN_LOG_DEBUG, __VA_ARGS__)

#endif
