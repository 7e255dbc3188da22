/*
 * metrics.h - reading yund's GET /metrics (Prometheus text format 0.0.4)
 * for `yun top`: one sample per line, "name{label="value",...} value
 * [timestamp]"; '#' lines (HELP, TYPE) and blank lines carry no sample.
 * Pure: no I/O (tests/unit/cli_metrics_test.c).
 */
#ifndef YUN_CLI_METRICS_H
#define YUN_CLI_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct prom_sample {
	char name[128];
	char labels[1024]; /* the text between the braces, as written */
	double value;
};

/*
 * Parse one line (without its newline). Returns 1 with *out filled for a
 * sample, 0 for a comment or blank line, -EINVAL for anything else (a
 * name or labels too long for the struct are -EINVAL too).
 */
int prom_parse_line(const char *line, struct prom_sample *out);

/*
 * The value of label `key` in a sample's label text, unescaped (\\, \",
 * \n) into out. 0, or -ENOENT when absent, -EINVAL when malformed.
 */
int prom_label(const char *labels, const char *key, char *out, size_t n);

#endif
