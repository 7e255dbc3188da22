/* fields.c - see fields.h. */
#include "fields.h"

#include "../../lib/json.h"

#include <errno.h>
#include <string.h>

int fields_parse(const char *text, size_t len, json_t **out, struct yun_err *err)
{
	*out = NULL;
	if (!text || !len)
		return yun_err_set(err, EINVAL, "the body is empty (a JSON object is required)");
	return yun_json_parse_object(text, len, "the body", out, err);
}

static const char *json_kind(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a fraction";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

/* Does v have the type t? (Names the wrong type in err when not.) */
static int check_type(json_t *v, const struct field *f, const char *prefix,
		      struct yun_err *err)
{
	static const char *const want[] = {
		[FIELD_STRING] = "a string", [FIELD_COUNT] = "an integer",
		[FIELD_BOOL] = "true or false", [FIELD_OBJECT] = "an object",
	};
	bool ok = false;

	switch (f->type) {
	case FIELD_STRING: ok = json_is_string(v); break;
	case FIELD_COUNT: ok = json_is_integer(v); break;
	case FIELD_BOOL: ok = json_is_boolean(v); break;
	case FIELD_OBJECT: ok = json_is_object(v); break;
	}
	if (!ok)
		return yun_err_set(err, EINVAL, "%s%s: must be %s, not %s", prefix, f->name,
				   want[f->type], json_kind(v));
	if (f->type == FIELD_COUNT && json_integer_value(v) < 0)
		return yun_err_set(err, ERANGE, "%s%s %" JSON_INTEGER_FORMAT ": must not be "
				   "negative", prefix, f->name, json_integer_value(v));
	if (f->type == FIELD_STRING && strlen(json_string_value(v)) != json_string_length(v))
		return yun_err_set(err, EINVAL, "%s%s: contains a NUL character", prefix, f->name);
	return 0;
}

int fields_check(json_t *obj, const struct field *fields, size_t n, const char *prefix,
		 struct yun_err *err)
{
	const char *key;
	void *tmp;
	json_t *v;

	json_object_foreach_safe(obj, tmp, key, v) {
		size_t i = 0;
		bool printable = true;

		while (i < n && strcmp(fields[i].name, key))
			i++;
		if (i < n) {
			if (json_is_null(v))
				json_object_del(obj, key); /* null: as if absent */
			continue;
		}
		for (const char *p = key; *p; p++)
			printable &= (unsigned char)*p >= 0x20 && *p != '"';
		if (!printable || strlen(key) > 64)
			return yun_err_set(err, EINVAL, "unknown field in %s", *prefix ? prefix :
					   "the body");
		return yun_err_set(err, EINVAL, "unknown field \"%s%s\"", prefix, key);
	}
	for (size_t i = 0; i < n; i++) {
		int rc;

		v = json_object_get(obj, fields[i].name);
		if (!v) {
			if (fields[i].required)
				return yun_err_set(err, EINVAL, "%s%s: required", prefix,
						   fields[i].name);
			continue;
		}
		rc = check_type(v, &fields[i], prefix, err);
		if (rc)
			return rc;
	}
	return 0;
}

uint64_t field_count(json_t *obj, const char *name, uint64_t dflt)
{
	json_t *v = json_object_get(obj, name);

	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : dflt;
}

