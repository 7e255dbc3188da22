/* body.c - see body.h. */
#include "body.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

int body_parse(const char *text, size_t len, bool optional, json_t **out, struct yun_err *err)
{
	json_error_t je;
	json_t *o;

	*out = NULL;
	if (!text || len == 0) {
		if (!optional)
			return yun_err_set(err, EINVAL,
					   "body: missing (a JSON object is required)");
		*out = json_object();
		return *out ? 0 : yun_err_set(err, ENOMEM, "out of memory");
	}
	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return yun_err_set(err, EINVAL, "body: invalid JSON at line %d column %d: %s",
				   je.line, je.column, je.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return yun_err_set(err, EINVAL, "body: must be a JSON object");
	}
	*out = o;
	return 0;
}

static const char *type_name(enum body_type t)
{
	switch (t) {
	case BODY_STRING:
		return "a string";
	case BODY_INT:
		return "an integer";
	case BODY_BOOL:
		return "true or false";
	case BODY_STRING_LIST:
		return "a list of strings";
	}
	return "?";
}

static int check_one(const struct body_field *f, json_t *v, struct yun_err *err)
{
	switch (f->type) {
	case BODY_STRING:
		if (!json_is_string(v))
			break;
		if (f->max && json_string_length(v) > (size_t)f->max)
			return yun_err_set(err, ERANGE, "field %s: longer than %" PRId64 " bytes",
					   f->name, f->max);
		if (f->min && json_string_length(v) < (size_t)f->min)
			return yun_err_set(err, ERANGE, "field %s: must not be empty", f->name);
		return 0;
	case BODY_INT: {
		json_int_t i;

		if (!json_is_integer(v))
			break;
		i = json_integer_value(v);
		if (i < f->min || i > f->max)
			return yun_err_set(err, ERANGE,
					   "field %s: %" JSON_INTEGER_FORMAT
					   " is out of range %" PRId64 "..%" PRId64,
					   f->name, i, f->min, f->max);
		return 0;
	}
	case BODY_BOOL:
		if (!json_is_boolean(v))
			break;
		return 0;
	case BODY_STRING_LIST: {
		size_t i;
		json_t *e;

		if (!json_is_array(v))
			break;
		if ((int64_t)json_array_size(v) < f->min || (int64_t)json_array_size(v) > f->max)
			return yun_err_set(err, ERANGE,
					   "field %s: %zu items, must be %" PRId64 "..%" PRId64,
					   f->name, json_array_size(v), f->min, f->max);
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e))
				return yun_err_set(err, EINVAL, "field %s[%zu]: must be a string",
						   f->name, i);
			if (f->item_max && json_string_length(e) > f->item_max)
				return yun_err_set(err, ERANGE,
						   "field %s[%zu]: longer than %zu bytes", f->name,
						   i, f->item_max);
		}
		return 0;
	}
	}
	return yun_err_set(err, EINVAL, "field %s: must be %s", f->name, type_name(f->type));
}

int body_check(json_t *obj, const struct body_field *fields, size_t n, struct yun_err *err)
{
	const char *key;
	json_t *v;

	/* Unknown fields first: a typo must not pass as "field x: required". */
	json_object_foreach(obj, key, v)
	{
		size_t i;

		for (i = 0; i < n && strcmp(fields[i].name, key); i++)
			;
		if (i == n) {
			/* Keys may hold anything; do not echo control characters. */
			for (const char *p = key; *p; p++)
				if ((unsigned char)*p < 0x20)
					return yun_err_set(err, EINVAL, "body: unknown field");
			return yun_err_set(err, EINVAL, "field %.64s: unknown", key);
		}
	}
	for (size_t i = 0; i < n; i++) {
		int rc;

		v = json_object_get(obj, fields[i].name);
		if (!v || json_is_null(v)) {
			if (fields[i].required)
				return yun_err_set(err, EINVAL, "field %s: required",
						   fields[i].name);
			if (v)
				json_object_del(obj, fields[i].name); /* null = absent */
			continue;
		}
		rc = check_one(&fields[i], v, err);
		if (rc)
			return rc;
	}
	return 0;
}

int64_t body_int(json_t *obj, const char *name, int64_t dflt)
{
	json_t *v = json_object_get(obj, name);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

