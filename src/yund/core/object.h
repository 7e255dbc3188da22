/*
 * object.h - what every yund object has: an id (kind prefix + 12 hex
 * digits), a name that is safe anywhere, and RFC 3339 timestamps.
 */
#ifndef YUND_CORE_OBJECT_H
#define YUND_CORE_OBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "../../lib/err.h"

#define OBJ_ID_MAX	    24 /* "img-" + 12 hex + NUL, with room */
#define OBJ_NAME_MAX	    64 /* 63 characters + NUL */
#define OBJ_TIME_MAX	    24 /* "2026-11-22T07:00:00Z" + NUL */
#define OBJ_PROJECT_DEFAULT "default"

/* A new random id "<prefix>-<12 hex digits>" into buf (OBJ_ID_MAX). */
void obj_new_id(const char *prefix, char *buf);

/* Whether s has the form of an id of any kind ("i-0123456789ab"). */
bool obj_looks_like_id(const char *s);

/*
 * Check a name: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}, and not of an id's form
 * (so that a reference is never ambiguous). `kind` names the object in the
 * message: "instance name \"a/b\": ...". -EINVAL or -ERANGE (too long).
 */
int obj_check_name(const char *kind, const char *name, struct yun_err *err);

/* The current time as "YYYY-MM-DDTHH:MM:SSZ" into buf (OBJ_TIME_MAX). */
void obj_now(char *buf);

#endif
