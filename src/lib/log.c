/* log.c - see log.h. One write(2) per line so threads do not interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static const char *log_prog = "yun";
static enum yun_log_level log_level = YUN_LOG_WARN;

void yun_log_init(const char *prog, enum yun_log_level level)
{
	log_prog = prog;
	log_level = level;
}

enum yun_log_level yun_log_level(void)
{
	return log_level;
}

void yun_vlog(enum yun_log_level level, const char *prefix, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	int n, m;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "%s: %s: %s", log_prog, names[level], prefix);
	if (n < 0 || n >= (int)sizeof(line) - 2)
		return;
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';
	/* Diagnostics are best effort: nothing useful to do if stderr is gone. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void yun_log(enum yun_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yun_vlog(level, "", fmt, ap);
	va_end(ap);
}
