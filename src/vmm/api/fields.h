/*
 * fields.h - request bodies of yun-vmm's control API: parsed by jansson and
 * checked against the table of fields a route takes before any of them is
 * used, so a mistake never half-applies.
 *
 * Messages name the field and the reason (the server puts the request line
 * in front): 'unknown field "vcpus"', "vcpu_count: must be an integer, not
 * a string", "vcpu_count -1: must not be negative", 'invalid JSON at line 1
 * column 7: ...'. A null value counts as absent (Firecracker's clients send
 * them for optional fields). Nested objects are checked with a prefix
 * ("rate_limiter.bandwidth.size").
 */
#ifndef YUN_VMM_API_FIELDS_H
#define YUN_VMM_API_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../../lib/json.h"

enum field_type { FIELD_STRING, FIELD_COUNT, FIELD_BOOL, FIELD_OBJECT };

struct field {
	const char *name;
	enum field_type type;
	bool required;
};

/* Parse text[0..len) as one JSON object (*out: new reference). Empty text: an error. */
int fields_parse(const char *text, size_t len, json_t **out, struct yun_err *err);

/* Check obj against fields[0..n); prefix ("" or "rate_limiter.") goes before names. */
int fields_check(json_t *obj, const struct field *fields, size_t n, const char *prefix,
		 struct yun_err *err);

/*
 * A count of a checked object, or dflt when absent (or null). Strings,
 * booleans and presence: yun_json_str_or, yun_json_bool_or, yun_json_has
 * (lib/json.h).
 */
uint64_t field_count(json_t *obj, const char *name, uint64_t dflt);

#endif
