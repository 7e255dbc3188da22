/*
 * json.h - JSON documents as Yun's programs read them (jansson underneath).
 *
 * Config files and API bodies are one JSON object with no duplicate keys;
 * fields are checked one at a time and a wrong type is reported as
 * "<origin>: \"<key>\" must be <what>", where origin is whatever the caller
 * passes ("config /etc/x.json", "request body").
 */
#ifndef YUN_LIB_JSON_H
#define YUN_LIB_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * Parse `len` bytes of `text` as one JSON object; *out gets a new
 * reference. Errors: "<origin>: line L column C: <reason>", "<origin>: must
 * be a JSON object", "<origin>: contains a NUL byte".
 */
int yun_json_parse_object(const char *text, size_t len, const char *origin, json_t **out,
			  struct yun_err *err);

/* Read file `path` (at most max bytes) and parse it as above; origin is
 * "<what> <path>". */
int yun_json_load_object(const char *what, const char *path, size_t max, json_t **out,
			 struct yun_err *err);

/* Field readers: each checks the type of `v` (the value of `key`). */
int yun_json_want_string(json_t *v, const char *key, const char *origin, struct yun_err *err);
/* Replaces *dst (freeing the old string) with a copy of the string. */
int yun_json_get_string(json_t *v, const char *key, char **dst, const char *origin,
			struct yun_err *err);
int yun_json_get_bool(json_t *v, const char *key, bool *dst, const char *origin,
		      struct yun_err *err);
/* A non-negative integer. */
int yun_json_get_count(json_t *v, const char *key, uint64_t *dst, const char *origin,
		       struct yun_err *err);

/* Getters for objects whose types were checked: the value, or dflt when absent or another type. */
const char *yun_json_str_or(json_t *obj, const char *key, const char *dflt);
bool yun_json_bool_or(json_t *obj, const char *key, bool dflt);
/* True when obj has key (whatever its value, null included). */
bool yun_json_has(json_t *obj, const char *key);

#endif
