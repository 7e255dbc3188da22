/* object.c - see object.h. */
#include "object.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char *const prefixes[] = {"i", "img", "net", "vol", "fl", "h", "p", "snap"};

void obj_new_id(const char *prefix, char *buf)
{
	unsigned char r[6] = {0};
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n <= 0) {
			/* Never fails for 6 bytes once the pool is up; stay unique anyway. */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			for (size_t i = 0; i < sizeof(r); i++)
				r[i] ^= (unsigned char)(ts.tv_nsec >> (i * 5));
			break;
		}
		got += (size_t)n;
	}
	snprintf(buf, OBJ_ID_MAX, "%s-%02x%02x%02x%02x%02x%02x", prefix, r[0], r[1], r[2], r[3],
		 r[4], r[5]);
}

bool obj_looks_like_id(const char *s)
{
	const char *dash = strchr(s, '-');

	if (!dash)
		return false;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);

		if ((size_t)(dash - s) != pl || strncmp(s, prefixes[i], pl))
			continue;
		if (strlen(dash + 1) != 12)
			return false;
		for (const char *p = dash + 1; *p; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
				return false;
		return true;
	}
	return false;
}

static bool name_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '_' || c == '.' || c == '-');
}

int obj_check_name(const char *kind, const char *name, struct yun_err *err)
{
	size_t len = strlen(name);

	if (!len)
		return yun_err_set(err, EINVAL, "%s name: must not be empty", kind);
	if (len > OBJ_NAME_MAX - 1)
		return yun_err_set(err, ERANGE, "%s name \"%.20s...\": longer than %d characters",
				   kind, name, OBJ_NAME_MAX - 1);
	for (size_t i = 0; i < len; i++) {
		if (!name_char(name[i], i == 0)) {
			unsigned char c = (unsigned char)name[i];

			if (c < 0x20 || c >= 0x7f)
				return yun_err_set(err, EINVAL,
						   "%s name \"%s\": character 0x%02x not allowed "
						   "(letters, digits, '_', '.', '-'; a letter or "
						   "digit first)",
						   kind, name, c);
			return yun_err_set(err, EINVAL,
					   "%s name \"%s\": '%c' not allowed (letters, digits, "
					   "'_', '.', '-'; a letter or digit first)",
					   kind, name, c);
		}
	}
	if (obj_looks_like_id(name))
		return yun_err_set(err, EINVAL, "%s name \"%s\": has the form of an id", kind,
				   name);
	return 0;
}

void obj_now(char *buf)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, OBJ_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
