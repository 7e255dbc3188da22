/*
 * prom.h - writing the Prometheus text exposition format (version 0.0.4).
 *
 * A family is announced once (HELP and TYPE lines), then its samples
 * follow, each "name{k="v",...} value". Label values are escaped (\\, \",
 * \n), HELP text too (\\, \n). Values print exactly for integers up to
 * 2^53, else with 17 significant digits; +Inf/-Inf/NaN as Prometheus
 * spells them. Pure: writes to a FILE (an open_memstream in yund, a file
 * in tests).
 */
#ifndef YUND_METRICS_PROM_H
#define YUND_METRICS_PROM_H

#include <stdio.h>

/* One label: key and value (NULL value: the label is left out). */
struct prom_label {
	const char *key;
	const char *value;
};

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void prom_family(FILE *f, const char *name, const char *type, const char *help);

/* name{labels} value; labels[0..n). */
void prom_sample(FILE *f, const char *name, const struct prom_label *labels, size_t n,
		 double value);

/* A label value with \\, \" and \n escaped. */
void prom_escape_value(FILE *f, const char *v);

/* A value as the format writes it. */
void prom_value(FILE *f, double v);

#endif
