/* prom.c - see prom.h. */
#include "prom.h"

#include <math.h>
#include <stdbool.h>

void prom_escape_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void escape_help(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

void prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", name);
	escape_help(f, help);
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

void prom_value(FILE *f, double v)
{
	if (isnan(v))
		fputs("NaN", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.17g", v);
}

void prom_sample(FILE *f, const char *name, const struct prom_label *labels, size_t n, double value)
{
	bool first = true;

	fputs(name, f);
	for (size_t i = 0; i < n; i++) {
		if (!labels[i].value)
			continue;
		fprintf(f, "%s%s=\"", first ? "{" : ",", labels[i].key);
		prom_escape_value(f, labels[i].value);
		fputc('"', f);
		first = false;
	}
	if (!first)
		fputc('}', f);
	fputc(' ', f);
	prom_value(f, value);
	fputc('\n', f);
}
