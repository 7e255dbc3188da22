/*
 * kind.c - see kind.h.
 */
#include "kind.h"

#include <stdio.h>
#include <string.h>

#include "table.h"

json_t *kind_field(json_t *obj, const char *path)
{
	char key[64];

	while (obj && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		obj = json_object_get(obj, key);
		path += n + (path[n] == '.');
	}
	return obj;
}

const char *kind_cell(const struct kind_col *c, const struct kind_row *row, char *buf, size_t n)
{
	json_t *v = c->field ? kind_field(row->obj, c->field) : NULL;

	switch (c->fmt) {
	case KF_STRING:
	case KF_STATE:
		return json_string_value(v);
	case KF_INT:
		if (!json_is_integer(v))
			return NULL;
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
		return buf;
	case KF_BYTES:
	case KF_MIB:
	case KF_GIB:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    (c->fmt == KF_GIB && !json_integer_value(v)))
			return NULL;
		if (c->fmt == KF_BYTES)
			return tbl_size((uint64_t)json_integer_value(v), buf, n);
		if (c->fmt == KF_MIB)
			return tbl_size_mib((uint64_t)json_integer_value(v), buf, n);
		return tbl_size_gib((uint64_t)json_integer_value(v), buf, n);
	case KF_AGE:
		return tbl_age_since(json_string_value(v), row->now, buf, n);
	case KF_REF:
		return cli_name_of(json_object_get(row->refs, c->ref), json_string_value(v));
	case KF_CUSTOM:
		return c->cell(row, buf, n);
	}
	return NULL;
}

/* The lists the columns refer to, fetched once; one that fails is left out
 * (its column shows ids). */
static json_t *fetch_refs(struct cli *cli, const struct kind *k)
{
	json_t *refs = json_object();

	for (const struct kind_col *c = k->cols; refs && c->header; c++) {
		json_t *items;
		int rc;

		if (!c->ref || json_object_get(refs, c->ref))
			continue;
		items = cli_list(cli, c->ref, true, &rc);
		if (items)
			json_object_set_new(refs, c->ref, items);
	}
	return refs;
}

static int print_table(struct cli *cli, const struct kind *k, json_t *items)
{
	const char *headers[TBL_MAX_COLS + 1];
	const char *cells[TBL_MAX_COLS];
	char bufs[TBL_MAX_COLS][64];
	struct kind_row row = {.now = time(NULL)};
	struct table t;
	size_t ncols = 0, i;
	json_t *obj;
	int rc = EXIT_OK;

	for (; k->cols[ncols].header && ncols < TBL_MAX_COLS; ncols++)
		headers[ncols] = k->cols[ncols].header;
	headers[ncols] = NULL;
	row.refs = fetch_refs(cli, k);
	tbl_init(&t, headers);
	for (size_t c = 0; c < ncols; c++) {
		tbl_set_right(&t, c, k->cols[c].right);
		tbl_set_max_width(&t, c, k->cols[c].max_width);
	}
	json_array_foreach(items, i, obj) {
		row.obj = obj;
		for (size_t c = 0; c < ncols; c++)
			cells[c] = kind_cell(&k->cols[c], &row, bufs[c], sizeof(bufs[c]));
		if (tbl_add_row(&t, cells)) {
			rc = cli_fail("out of memory");
			break;
		}
	}
	if (!rc)
		tbl_print(&t, stdout);
	tbl_free(&t);
	json_decref(row.refs);
	return rc;
}

int kind_ls(struct cli *cli, const struct kind *k, int argc, char **argv)
{
	static const struct option longopts[] = {{"quiet", no_argument, NULL, 'q'},
						 CLI_GLOBAL_OPTIONS};
	struct yc_response r;
	char path[128];
	bool first = true, quiet = false;
	json_t *obj;
	size_t i;
	int opt, rc;

	cli->usage = k->ls_usage;
	while ((opt = cli_getopt(cli, argc, argv, "q", longopts, &first)) != CLI_OPT_END) {
		if (opt == 'q')
			quiet = true;
		else
			return cli_opt_exit(opt);
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	snprintf(path, sizeof(path), "/v1/%s", k->collection);
	rc = cli_call(cli, "GET", path, NULL, &r);
	if (!rc && cli->json) {
		cli_print_json(r.json);
	} else if (!rc && quiet) {
		json_array_foreach(json_object_get(r.json, "items"), i, obj) {
			const char *name = jstr(obj, "name") ? jstr(obj, "name") : jstr(obj, "id");

			if (name)
				printf("%s\n", name);
		}
	} else if (!rc) {
		rc = print_table(cli, k, json_object_get(r.json, "items"));
	}
	yc_response_free(&r);
	return rc;
}

int kind_show(struct cli *cli, const struct kind *k, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	struct yc_response r;
	char path[256];
	bool first = true;
	int opt, rc;

	cli->usage = k->show_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (optind >= argc)
		return cli_usage_error(cli, "which %s?", k->what);
	if (optind + 1 < argc)
		return cli_usage_error(cli, "one %s at a time", k->what);
	rc = cli_call(cli, "GET", yc_path(path, sizeof(path), k->collection, argv[optind], NULL),
		      NULL, &r);
	if (!rc) {
		if (cli->json)
			cli_print_json(r.json);
		else
			cli_show_object(r.json);
	}
	yc_response_free(&r);
	return rc;
}

enum { OPT_RM_TIMEOUT = OPT_CMD_BASE };

int kind_rm(struct cli *cli, const struct kind *k, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"detach", no_argument, NULL, 'd'},
	    {"timeout", required_argument, NULL, OPT_RM_TIMEOUT},
	    CLI_GLOBAL_OPTIONS};
	static const struct option longopts_force[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"detach", no_argument, NULL, 'd'},
	    {"timeout", required_argument, NULL, OPT_RM_TIMEOUT},
	    CLI_GLOBAL_OPTIONS};
	static const char *const failed[] = {"failed", NULL};
	bool first = true, force = false, detach = false;
	uint64_t timeout = 300;
	int opt, rc = EXIT_OK;

	cli->usage = k->rm_usage;
	while ((opt = cli_getopt(cli, argc, argv, k->rm_check ? "fd" : "d",
				 k->rm_check ? longopts_force : longopts, &first)) != CLI_OPT_END) {
		if (opt == 'f')
			force = true;
		else if (opt == 'd')
			detach = true;
		else if (opt == OPT_RM_TIMEOUT) {
			if (cli_parse_uint(cli, "--timeout", optarg, 1, 86400, &timeout))
				return EXIT_USAGE;
		} else
			return cli_opt_exit(opt);
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which %s?", k->what);
	for (int i = optind; i < argc; i++) {
		struct yc_response r = {0};
		char path[256];
		int one = 0;

		yc_path(path, sizeof(path), k->collection, argv[i], NULL);
		if (k->rm_check && !force)
			one = k->rm_check(cli, argv[i], path);
		if (!one)
			one = cli_call(cli, "DELETE", path, NULL, &r);
		if (!one && k->rm_waits && !detach && r.status == 202) {
			struct cli_wait w = {.collection = k->collection,
					     .ref =
						 jstr(r.json, "id") ? jstr(r.json, "id") : argv[i],
					     .label = k->what,
					     .fail = failed,
					     .want_gone = true,
					     .timeout_s = (unsigned)timeout};

			one = cli_wait(cli, &w, NULL);
		}
		if (!one) {
			if (cli->json && r.json)
				cli_print_json(r.json);
			else
				printf("%s\n", argv[i]);
		}
		yc_response_free(&r);
		if (one == EXIT_UNREACHABLE)
			return one;
		if (one)
			rc = one;
	}
	return rc;
}

int kind_create(struct cli *cli, const struct kind *k, json_t *body, bool detach,
		unsigned timeout_s, json_t **obj)
{
	struct yc_response r;
	char path[128];
	int rc;

	*obj = NULL;
	snprintf(path, sizeof(path), "/v1/%s", k->collection);
	rc = cli_call(cli, "POST", path, body, &r);
	if (!rc && !detach && k->ready) {
		if (!jstr(r.json, "id")) {
			rc = cli_fail("yund accepted the %s but its answer has no id", k->what);
		} else {
			struct cli_wait w = {.collection = k->collection,
					     .ref = jstr(r.json, "id"),
					     .label = k->what,
					     .want = k->ready,
					     .fail = k->failed,
					     .timeout_s = timeout_s};

			rc = cli_wait(cli, &w, obj);
		}
	} else if (!rc) {
		*obj = r.json ? json_incref(r.json) : json_object();
	}
	yc_response_free(&r);
	return rc;
}
