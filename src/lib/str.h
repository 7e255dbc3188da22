/*
 * str.h - strings and numbers as users type them.
 *
 * The parsers accept exactly one value with nothing before or after it (no
 * spaces, no trailing garbage) and return -EINVAL or -ERANGE without a
 * message, so the caller can name the setting in its own error.
 */
#ifndef YUN_LIB_STR_H
#define YUN_LIB_STR_H

#include <stdint.h>

#include "err.h"

/* Replace *dst (freeing the old string) with a copy of value. */
int yun_str_set(char **dst, const char *value, struct yun_err *err);

/* Unsigned decimal: "0" .. "18446744073709551615"; no sign. */
int yun_parse_u64(const char *s, uint64_t *out);

/* Signed decimal. */
int yun_parse_i64(const char *s, int64_t *out);

/*
 * An amount of memory: a signed decimal with an optional unit suffix K, M
 * or G (either case); a plain number is in MiB. *bytes gets the amount in
 * bytes (negative amounts are returned as such for the caller to judge).
 * -ERANGE when it does not fit in 63 bits.
 */
int yun_parse_size_mib(const char *s, int64_t *bytes);

#endif
