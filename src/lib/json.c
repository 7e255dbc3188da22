/*
 * json.c - see json.h.
 */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "str.h"

int yun_json_parse_object(const char *text, size_t len, const char *origin, json_t **out,
			  struct yun_err *err)
{
	json_error_t jerr;
	json_t *root;

	*out = NULL;
	if (memchr(text, '\0', len))
		return yun_err_set(err, EINVAL, "%s: contains a NUL byte", origin);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return yun_err_set(err, EINVAL, "%s: line %d column %d: %s", origin, jerr.line,
				   jerr.column, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return yun_err_set(err, EINVAL, "%s: must be a JSON object", origin);
	}
	*out = root;
	return 0;
}

int yun_json_load_object(const char *what, const char *path, size_t max, json_t **out,
			 struct yun_err *err)
{
	char origin[YUN_ERR_MSG_MAX / 2];
	uint8_t *buf;
	size_t len;
	int rc;

	*out = NULL;
	rc = yun_file_read_all(what, path, max, &buf, &len, err);
	if (rc)
		return rc;
	snprintf(origin, sizeof(origin), "%s %s", what, path);
	rc = yun_json_parse_object((const char *)buf, len, origin, out, err);
	free(buf);
	return rc;
}

int yun_json_want_string(json_t *v, const char *key, const char *origin, struct yun_err *err)
{
	if (!json_is_string(v))
		return yun_err_set(err, EINVAL, "%s: \"%s\" must be a string", origin, key);
	return 0;
}

int yun_json_get_string(json_t *v, const char *key, char **dst, const char *origin,
			struct yun_err *err)
{
	int rc = yun_json_want_string(v, key, origin, err);

	return rc ? rc : yun_str_set(dst, json_string_value(v), err);
}

int yun_json_get_bool(json_t *v, const char *key, bool *dst, const char *origin,
		      struct yun_err *err)
{
	if (!json_is_boolean(v))
		return yun_err_set(err, EINVAL, "%s: \"%s\" must be true or false", origin, key);
	*dst = json_is_true(v);
	return 0;
}

int yun_json_get_count(json_t *v, const char *key, uint64_t *dst, const char *origin,
		       struct yun_err *err)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return yun_err_set(err, EINVAL, "%s: \"%s\" must be a non-negative integer",
				   origin, key);
	*dst = (uint64_t)json_integer_value(v);
	return 0;
}

const char *yun_json_str_or(json_t *obj, const char *key, const char *dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

bool yun_json_bool_or(json_t *obj, const char *key, bool dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

bool yun_json_has(json_t *obj, const char *key)
{
	return json_object_get(obj, key) != NULL;
}
