/*
 * cmd_top.c - yun top: per-instance usage, refreshed every second.
 *
 * Each round reads GET /v1/instances (names, states) and GET /metrics
 * (Prometheus text: the counters of CPU seconds, memory, network and disk
 * bytes per instance, labelled with the instance's id); rates are the
 * difference between two rounds. An instance object that carries a
 * "usage" object with the same counters is read too. When yund serves no
 * such numbers the columns show "-" and a note says so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"
#include "table.h"

enum { U_CPU, U_MEM, U_RX, U_TX, U_RD, U_WR, U_N };

/* What the counters are called in an instance's "usage" object. */
static const char *const usage_keys[U_N] = {"cpu_seconds", "memory_bytes", "rx_bytes",
					    "tx_bytes",	   "read_bytes",   "write_bytes"};

struct usage {
	char id[40];
	double v[U_N]; /* NAN: unknown */
};

struct round {
	json_t *items; /* the instances */
	struct usage *u;
	size_t n;
	double at;
	bool metrics; /* /metrics had numbers for some instance */
};

static void round_free(struct round *r)
{
	json_decref(r->items);
	free(r->u);
	memset(r, 0, sizeof(*r));
}

static struct usage *find(struct round *r, const char *id)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->u[i].id, id))
			return &r->u[i];
	return NULL;
}

/* Which counter a metric's name is, by the words it contains; -1: none. */
static int classify(const char *name)
{
	bool bytes = strstr(name, "bytes") != NULL;

	if (strstr(name, "cpu") && strstr(name, "seconds"))
		return U_CPU;
	if (!bytes)
		return -1;
	if (strstr(name, "memory") && !strstr(name, "limit") && !strstr(name, "max"))
		return U_MEM;
	if (strstr(name, "receive") || strstr(name, "_rx"))
		return U_RX;
	if (strstr(name, "transmit") || strstr(name, "_tx"))
		return U_TX;
	if (strstr(name, "read"))
		return U_RD;
	if (strstr(name, "writ"))
		return U_WR;
	return -1;
}

static void add_metrics(struct round *r, const char *text)
{
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[2048], id[64];
		struct prom_sample s;

		if (len < sizeof(buf)) {
			memcpy(buf, line, len);
			buf[len] = '\0';
			int k;

			if (prom_parse_line(buf, &s) == 1 && (k = classify(s.name)) >= 0 &&
			    (!prom_label(s.labels, "id", id, sizeof(id)) ||
			     !prom_label(s.labels, "instance_id", id, sizeof(id)) ||
			     !prom_label(s.labels, "instance", id, sizeof(id)))) {
				struct usage *u = find(r, id);

				if (u && isfinite(s.value)) {
					/* Counters of several devices (or CPU modes) add up;
					 * memory is one figure. */
					if (isnan(u->v[k]) || k == U_MEM)
						u->v[k] = k == U_MEM && !isnan(u->v[k])
							      ? fmax(u->v[k], s.value)
							      : s.value;
					else
						u->v[k] += s.value;
					r->metrics = true;
				}
			}
		}
		line = nl ? nl + 1 : NULL;
	}
}

/* One round of numbers; an exit status. */
static int sample(struct cli *cli, struct round *r)
{
	struct yc_response m;
	struct yun_err err = {0};
	json_t *inst;
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	r->items = cli_list(cli, "instances", false, &rc);
	if (!r->items)
		return rc;
	r->at = cli_now();
	r->n = json_array_size(r->items);
	r->u = calloc(r->n ? r->n : 1, sizeof(*r->u));
	if (!r->u)
		return cli_fail("out of memory");
	json_array_foreach(r->items, i, inst) {
		json_t *usage = json_object_get(inst, "usage");

		snprintf(r->u[i].id, sizeof(r->u[i].id), "%s",
			 jstr(inst, "id") ? jstr(inst, "id") : "");
		for (int k = 0; k < U_N; k++) {
			json_t *v = json_object_get(usage, usage_keys[k]);

			r->u[i].v[k] = json_is_number(v) ? json_number_value(v) : NAN;
		}
	}
	if (yc_request(cli->client, "GET", "/metrics", NULL, &m, &err) == YC_OK && m.body)
		add_metrics(r, m.body);
	yc_response_free(&m);
	return EXIT_OK;
}

static double rate(const struct usage *now, const struct usage *before, int k, double dt)
{
	if (!before || isnan(now->v[k]) || isnan(before->v[k]) || dt <= 0)
		return NAN;
	double d = now->v[k] - before->v[k];

	return d < 0 ? NAN : d / dt;
}

static const char *fmt_bytes(double v, const char *suffix, char *buf, size_t n)
{
	char s[16];

	if (isnan(v))
		return "-";
	tbl_size((uint64_t)v, s, sizeof(s));
	snprintf(buf, n, "%s%s", s, suffix);
	return buf;
}

static void show(struct cli *cli, struct round *now, struct round *before, bool screen)
{
	static const char *const headers[] = {"NAME", "ID",   "STATE",	  "CPU%",     "MEM",
					      "RX/s", "TX/s", "DISK R/s", "DISK W/s", NULL};
	double dt = before ? now->at - before->at : 0;
	struct table t;
	json_t *inst, *out = NULL;
	size_t i;

	if (cli->json)
		out = json_array();
	tbl_init(&t, headers);
	for (size_t c = 3; c < 9; c++)
		tbl_set_right(&t, c, true);
	json_array_foreach(now->items, i, inst) {
		struct usage *u = &now->u[i], *b = before ? find(before, u->id) : NULL;
		double cpu = rate(u, b, U_CPU, dt) * 100.0;
		double r[U_N];
		char cbuf[16], bufs[U_N][24];

		for (int k = U_RX; k < U_N; k++)
			r[k] = rate(u, b, k, dt);
		if (out) {
			json_t *row = json_pack("{s:s?,s:s?,s:s?}", "id", jstr(inst, "id"), "name",
						jstr(inst, "name"), "state", jstr(inst, "state"));
			const char *keys[U_N] = {"cpu_percent",	     "memory_bytes",
						 "rx_bytes_per_s",   "tx_bytes_per_s",
						 "read_bytes_per_s", "write_bytes_per_s"};

			for (int k = 0; k < U_N; k++) {
				double v = k == U_CPU ? cpu : k == U_MEM ? u->v[U_MEM] : r[k];

				json_object_set_new(row, keys[k],
						    isnan(v) ? json_null() : json_real(v));
			}
			json_array_append_new(out, row);
			continue;
		}
		if (isnan(cpu))
			snprintf(cbuf, sizeof(cbuf), "-");
		else
			snprintf(cbuf, sizeof(cbuf), "%.1f", cpu);
		const char *cells[] = {jstr(inst, "name"),
				       jstr(inst, "id"),
				       jstr(inst, "state"),
				       cbuf,
				       fmt_bytes(u->v[U_MEM], "", bufs[U_MEM], sizeof(bufs[0])),
				       fmt_bytes(r[U_RX], "", bufs[U_RX], sizeof(bufs[0])),
				       fmt_bytes(r[U_TX], "", bufs[U_TX], sizeof(bufs[0])),
				       fmt_bytes(r[U_RD], "", bufs[U_RD], sizeof(bufs[0])),
				       fmt_bytes(r[U_WR], "", bufs[U_WR], sizeof(bufs[0]))};

		tbl_add_row(&t, cells);
	}
	if (out) {
		json_t *frame = json_pack("{so}", "items", out);
		char *text = json_dumps(frame, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(frame);
	} else {
		if (screen) {
			time_t wall = time(NULL);
			char when[32];

			strftime(when, sizeof(when), "%H:%M:%S", localtime(&wall));
			printf("\033[H\033[2Jyun top - %s - %zu instances (Ctrl-C quits)\n\n", when,
			       now->n);
		}
		tbl_print(&t, stdout);
		if (!now->metrics && now->n)
			printf("(yund reports no usage for these instances yet)\n");
		if (!screen)
			putchar('\n');
	}
	tbl_free(&t);
	fflush(stdout);
}

static const char top_usage[] =
    "usage: yun top [-n COUNT] [-d SECS] [--json]\n"
    "\n"
    "Shows each instance's CPU, memory, network and disk use, refreshed every\n"
    "second, until interrupted. Rates are over the last interval.\n"
    "\n"
    "  -n, --iterations N   stop after N refreshes\n"
    "  -d, --delay SECS     seconds between refreshes (default 1)\n"
    "  --json               one JSON object per refresh\n";

int cmd_top(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"iterations", required_argument, NULL, 'n'},
						 {"delay", required_argument, NULL, 'd'},
						 CLI_GLOBAL_OPTIONS};
	struct round before = {0}, now = {0};
	uint64_t count = 0, delay = 1;
	bool first = true, screen;
	int opt, rc;

	cli->usage = top_usage;
	while ((opt = cli_getopt(cli, argc, argv, "n:d:", longopts, &first)) != CLI_OPT_END) {
		if (opt == 'n') {
			if (cli_parse_uint(cli, "--iterations", optarg, 1, UINT32_MAX, &count))
				return EXIT_USAGE;
		} else if (opt == 'd') {
			if (cli_parse_uint(cli, "--delay", optarg, 1, 3600, &delay))
				return EXIT_USAGE;
		} else {
			return cli_opt_exit(opt);
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	screen = !cli->json && isatty(STDOUT_FILENO);
	/* The first figures need a round before them to be rates. */
	rc = sample(cli, &before);
	for (uint64_t i = 0; !rc && (!count || i < count); i++) {
		cli_sleep_ms((unsigned)(delay * 1000));
		rc = sample(cli, &now);
		if (rc)
			break;
		show(cli, &now, &before, screen);
		round_free(&before);
		before = now;
		memset(&now, 0, sizeof(now));
	}
	round_free(&before);
	round_free(&now);
	return rc;
}
