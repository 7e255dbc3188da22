/*
 * cli.c - see cli.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/file.h"
#include "kind.h"

/* ---- options --------------------------------------------------------------- */

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "yun%s%s: ", cli->cmd ? " " : "", cli->cmd ? cli->cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'yun%s%s --help'.\n", cli->cmd ? " " : "", cli->cmd ? cli->cmd : "");
	return EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("yun: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int cli_opt_exit(int opt)
{
	return opt == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
}

int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
	       const struct option *longopts, bool *first)
{
	char spec[64];

	/* ':' first: a missing argument is told apart from an unknown flag. */
	snprintf(spec, sizeof(spec), "%s:%s", shortopts[0] == '+' ? "+" : "",
		 shortopts + (shortopts[0] == '+'));
	if (*first) {
		optind = 0; /* glibc: start over, new argv */
		*first = false;
	}
	opterr = 0;
	for (;;) {
		int prev = optind ? optind : 1;
		int c = getopt_long(argc, argv, spec, longopts, NULL);

		switch (c) {
		case -1:
			return CLI_OPT_END;
		case OPT_SOCKET:
			cli->socket = optarg;
			cli->socket_given = true;
			continue;
		case OPT_URL:
			cli->url = optarg;
			continue;
		case OPT_TOKEN_FILE:
			cli->token_file = optarg;
			continue;
		case OPT_JSON:
			cli->json = true;
			continue;
		case 'h':
			fputs(cli->usage, stdout);
			fputs(CLI_GLOBAL_HELP, stdout);
			return CLI_OPT_HELP;
		case ':':
			cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
			return CLI_OPT_ERROR;
		case '?':
			if (optopt && optopt < 0x100)
				cli_usage_error(cli, "unknown option '-%c'", optopt);
			else
				cli_usage_error(cli, "unknown option '%s'",
						argv[optind - 1 >= prev ? optind - 1 : prev]);
			return CLI_OPT_ERROR;
		default:
			return c;
		}
	}
}

int cli_parse_uint(struct cli *cli, const char *flag, const char *s, uint64_t min, uint64_t max,
		   uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		goto bad;
	v = strtoull(s, &end, 10);
	if (*end || errno)
		goto bad;
	if (v < min || v > max)
		return cli_usage_error(cli, "%s %s: out of range %llu..%llu", flag, s,
				       (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
bad:
	return cli_usage_error(cli, "%s '%s': not a number", flag, s);
}

/* ---- calling yund ------------------------------------------------------------ */

struct yc_client *cli_client(struct cli *cli)
{
	struct yc_config cfg = {0};
	char *token = NULL;

	if (cli->client)
		return cli->client;
	cfg.socket = cli->socket;
	cfg.url = cli->url;
	if (cli->url) {
		if (cli->token_file) {
			struct yun_err err = {0};
			uint8_t *buf;
			size_t len;

			if (yun_file_read_all("token file", cli->token_file, 4096, &buf, &len,
					      &err)) {
				cli_fail("%s", err.msg);
				return NULL;
			}
			token = strndup((char *)buf, len);
			explicit_bzero(buf, len);
			free(buf);
			if (!token) {
				cli_fail("out of memory");
				return NULL;
			}
			/* The token is the first line; a trailing newline is not part of it. */
			token[strcspn(token, "\r\n")] = '\0';
		} else {
			const char *env = getenv("YUN_TOKEN");

			if (env && *env)
				token = strdup(env);
		}
		cfg.token = token;
	}
	cli->client = yc_new(&cfg);
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	if (!cli->client)
		cli_fail("out of memory");
	return cli->client;
}

int cli_call_ex(struct cli *cli, const char *method, const char *path, json_t *body,
		struct yc_response *resp, unsigned flags)
{
	struct yc_client *c = cli_client(cli);
	struct yun_err err = {0};
	enum yc_result r;

	memset(resp, 0, sizeof(*resp));
	if (!c)
		return EXIT_FAIL;
	r = yc_request(c, method, path, body, resp, &err);
	if (r == YC_OK)
		return EXIT_OK;
	if (r == YC_ERROR && resp->status == 404 && (flags & CLI_QUIET_404))
		return EXIT_FAIL;
	fprintf(stderr, "yun: error: %s\n", err.msg);
	return r == YC_UNREACHABLE ? EXIT_UNREACHABLE : EXIT_FAIL;
}

int cli_call(struct cli *cli, const char *method, const char *path, json_t *body,
	     struct yc_response *resp)
{
	return cli_call_ex(cli, method, path, body, resp, 0);
}

json_t *cli_list(struct cli *cli, const char *collection, bool quiet, int *rc)
{
	struct yc_response r;
	char path[128];
	json_t *items;

	snprintf(path, sizeof(path), "/v1/%s", collection);
	if (quiet) {
		struct yc_client *c = cli_client(cli);
		struct yun_err err = {0};
		enum yc_result res = c ? yc_request(c, "GET", path, NULL, &r, &err) : YC_ERROR;

		*rc = res == YC_OK ? EXIT_OK : res == YC_UNREACHABLE ? EXIT_UNREACHABLE : EXIT_FAIL;
	} else {
		*rc = cli_call(cli, "GET", path, NULL, &r);
	}
	if (*rc) {
		yc_response_free(&r);
		return NULL;
	}
	items = json_object_get(r.json, "items");
	if (!json_is_array(items)) {
		yc_response_free(&r);
		*rc = quiet ? EXIT_FAIL
			    : cli_fail("yund: GET %s: answer without an \"items\" list", path);
		return NULL;
	}
	json_incref(items);
	yc_response_free(&r);
	return items;
}

void cli_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

const char *jstr(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int64_t jint(json_t *obj, const char *key, int64_t fallback)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : fallback;
}

const char *cli_name_of(json_t *items, const char *id)
{
	size_t i;
	json_t *o;

	if (!id)
		return NULL;
	json_array_foreach(items, i, o) {
		const char *oid = jstr(o, "id");

		if (oid && !strcmp(oid, id))
			return jstr(o, "name") ? jstr(o, "name") : id;
	}
	return id;
}

const char *cli_label(json_t *obj, char *buf, size_t n)
{
	const char *name = jstr(obj, "name"), *id = jstr(obj, "id");

	if (name && id)
		snprintf(buf, n, "%s (%s)", name, id);
	else
		snprintf(buf, n, "%s", name ? name : id ? id : "?");
	return buf;
}

/* ---- time, spinner, waiting --------------------------------------------------- */

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void cli_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void spin_start(struct spinner *s)
{
	s->on = isatty(STDERR_FILENO);
	s->frame = 0;
	s->start = cli_now();
}

void spin_show(struct spinner *s, const char *what, const char *state)
{
	static const char frames[] = "|/-\\";

	if (!s->on)
		return;
	fprintf(stderr, "\r\033[K%c %s: %s (%.0fs)", frames[s->frame++ % 4], what,
		state ? state : "...", cli_now() - s->start);
	fflush(stderr);
}

void spin_end(struct spinner *s)
{
	if (!s->on)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
}

static bool in_list(const char *s, const char *const *list)
{
	for (; s && list && *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

int cli_wait(struct cli *cli, const struct cli_wait *w, json_t **last)
{
	struct spinner sp;
	char path[256], what[128];
	double deadline = w->timeout_s ? cli_now() + w->timeout_s : 0;
	unsigned delay = 20;
	int rc;

	if (last)
		*last = NULL;
	yc_path(path, sizeof(path), w->collection, w->ref, NULL);
	snprintf(what, sizeof(what), "%s %s", w->label, w->ref);
	spin_start(&sp);
	for (;;) {
		struct yc_response r;
		const char *state;

		rc = cli_call_ex(cli, "GET", path, NULL, &r, w->want_gone ? CLI_QUIET_404 : 0);
		if (rc && w->want_gone && r.status == 404) {
			yc_response_free(&r);
			rc = EXIT_OK;
			break;
		}
		if (rc) {
			yc_response_free(&r);
			break;
		}
		state = jstr(r.json, "state");
		if (jstr(r.json, "name"))
			snprintf(what, sizeof(what), "%s %s", w->label, jstr(r.json, "name"));
		bool failed = in_list(state, w->fail);
		bool done = in_list(state, w->want) &&
			    (!w->old_pid || jint(r.json, "pid", 0) != w->old_pid);

		if (done || failed) {
			spin_end(&sp);
			if (failed) {
				const char *why = jstr(r.json, "failure");

				rc = cli_fail("%s %s%s%s", what, state, why ? ": " : "",
					      why ? why : "");
			}
			if (last)
				*last = json_incref(r.json);
			yc_response_free(&r);
			return rc;
		}
		spin_show(&sp, what, state);
		if (w->timeout_s && cli_now() > deadline) {
			spin_end(&sp);
			rc = cli_fail("%s: still %s after %us", what, state ? state : "?",
				      w->timeout_s);
			yc_response_free(&r);
			return rc;
		}
		yc_response_free(&r);
		cli_sleep_ms(delay);
		if (delay < 250)
			delay *= 2;
	}
	spin_end(&sp);
	return rc;
}

/* ---- sub-commands and show ------------------------------------------------------ */

int cli_dispatch_sub(struct cli *cli, const char *group, const struct kind *kind,
		     const struct cli_sub *subs, int argc, char **argv)
{
	static char cmd[64];
	const char *name = argc > 1 ? argv[1] : NULL;

	if (name && !strcmp(name, "list"))
		name = "ls";
	if (name && !strcmp(name, "delete"))
		name = "rm";
	if (!name || !strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		FILE *out = name ? stdout : stderr;

		fprintf(out, "usage: yun %s COMMAND [options]\n\n", group);
		for (const struct cli_sub *s = subs; s->name; s++)
			fprintf(out, "  %s\n", s->help);
		fprintf(out, "\nRun 'yun %s COMMAND --help' for a command's options.\n", group);
		return name ? EXIT_OK : EXIT_USAGE;
	}
	for (const struct cli_sub *s = subs; s->name; s++) {
		if (!strcmp(s->name, name)) {
			snprintf(cmd, sizeof(cmd), "%s %s", group, s->name);
			cli->cmd = cmd;
			if (s->fn)
				return s->fn(cli, argc - 1, argv + 1);
			if (kind && !strcmp(s->name, "ls"))
				return kind_ls(cli, kind, argc - 1, argv + 1);
			if (kind && !strcmp(s->name, "show"))
				return kind_show(cli, kind, argc - 1, argv + 1);
			if (kind && !strcmp(s->name, "rm"))
				return kind_rm(cli, kind, argc - 1, argv + 1);
			break;
		}
	}
	cli->cmd = group;
	return cli_usage_error(cli, "unknown command '%s'", name);
}

static void show_value(const char *key, json_t *v)
{
	char *text = NULL;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *sub;

		json_object_foreach(v, k, sub) {
			char full[256];

			snprintf(full, sizeof(full), "%s.%s", key, k);
			show_value(full, sub);
		}
		return;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *e;

		printf("%-20s ", key);
		if (!json_array_size(v))
			fputs(" -", stdout);
		json_array_foreach(v, i, e) {
			if (json_is_string(e)) {
				printf(" %s", json_string_value(e));
			} else {
				text = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
				printf(" %s", text ? text : "?");
				free(text);
			}
		}
		fputc('\n', stdout);
		return;
	}
	case JSON_STRING:
		printf("%-20s  %s\n", key, json_string_value(v));
		return;
	case JSON_NULL:
		printf("%-20s  -\n", key);
		return;
	default:
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%-20s  %s\n", key, text ? text : "?");
		free(text);
	}
}

void cli_show_object(json_t *obj)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		show_value(k, v);
	}
}

void cli_print_obj(struct cli *cli, json_t *obj, const char *fallback)
{
	if (cli->json)
		cli_print_json(obj ? obj : json_null());
	else if (jstr(obj, "id") || !fallback)
		printf("%s %s\n", jstr(obj, "name") ? jstr(obj, "name") : "-",
		       jstr(obj, "id") ? jstr(obj, "id") : "-");
	else
		printf("%s\n", fallback);
}
