/*
 * str.c - see str.h.
 */
#include "str.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int yun_str_set(char **dst, const char *value, struct yun_err *err)
{
	char *copy = strdup(value);

	if (!copy)
		return yun_err_set(err, ENOMEM, "out of memory");
	free(*dst);
	*dst = copy;
	return 0;
}

int yun_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || *end)
		return -EINVAL;
	if (errno)
		return -ERANGE;
	*out = v;
	return 0;
}

int yun_parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end)
		return -EINVAL;
	if (errno)
		return -ERANGE;
	*out = v;
	return 0;
}

int yun_parse_size_mib(const char *s, int64_t *bytes)
{
	char num[32];
	size_t len = strlen(s);
	int shift = 20;
	int64_t v;
	int rc;

	if (len == 0 || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 'K': case 'k': shift = 10; num[--len] = '\0'; break;
	case 'M': case 'm': shift = 20; num[--len] = '\0'; break;
	case 'G': case 'g': shift = 30; num[--len] = '\0'; break;
	default: break;
	}
	rc = yun_parse_i64(num, &v);
	if (rc)
		return rc;
	if (v > (INT64_MAX >> shift) || v < -(INT64_MAX >> shift))
		return -ERANGE;
	*bytes = v * ((int64_t)1 << shift);
	return 0;
}
