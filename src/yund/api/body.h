/*
 * body.h - request bodies: parsed by jansson, checked against a table of
 * the fields an operation takes, before anything else looks at them.
 *
 * Messages name the field and the reason. Errors: -EINVAL (400) for
 * malformed JSON, a body that is not an object, an unknown field, a
 * missing required field or a wrong JSON type; -ERANGE (422) for a value
 * out of range (numbers, string lengths, list sizes); -EFBIG (413) never
 * comes from here (server.c caps the size before).
 */
#ifndef YUND_API_BODY_H
#define YUND_API_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../../lib/err.h"
#include "../../lib/json.h"

enum body_type {
	BODY_STRING, /* max: longest length (bytes) */
	BODY_INT,    /* min..max */
	BODY_BOOL,
	BODY_STRING_LIST /* min..max items, each a string of at most item_max bytes */
};

struct body_field {
	const char *name;
	enum body_type type;
	bool required;
	int64_t min, max;
	size_t item_max; /* BODY_STRING_LIST */
};

/*
 * Parse `text` (len bytes; NULL or empty when `optional` allows no body)
 * into a JSON object *out (caller owns; an empty object when absent).
 */
int body_parse(const char *text, size_t len, bool optional, json_t **out, struct yun_err *err);

/* Check obj against fields[0..n). */
int body_check(json_t *obj, const struct body_field *fields, size_t n, struct yun_err *err);

/*
 * An integer of a checked body, or dflt when absent. Strings and presence:
 * yun_json_str_or and yun_json_has (lib/json.h).
 */
int64_t body_int(json_t *obj, const char *name, int64_t dflt);

#endif
