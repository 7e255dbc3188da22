/* router.c - see router.h. */
#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Next segment of *p (after '/'): start and length; false at the end. */
static bool next_seg(const char **p, const char **seg, size_t *len)
{
	const char *s = *p;

	if (*s != '/')
		return false;
	s++;
	*seg = s;
	while (*s && *s != '/')
		s++;
	*len = (size_t)(s - *seg);
	*p = s;
	return true;
}

static bool match(const char *pattern, const char *path, struct api_req *req)
{
	const char *pp = pattern, *up = path, *ps, *us;
	size_t pl, ul, np = 0;

	if (req)
		req->n_params = 0;
	for (;;) {
		bool pmore = next_seg(&pp, &ps, &pl);
		bool umore = next_seg(&up, &us, &ul);

		/* One trailing slash on the path is the same path. */
		if (!pmore && umore && ul == 0 && *up == '\0')
			umore = false;
		if (!pmore || !umore)
			return !pmore && !umore && *up == '\0';
		if (pl >= 2 && ps[0] == '{' && ps[pl - 1] == '}') {
			if (ul == 0 || ul >= API_PARAM_MAX || np >= API_MAX_PARAMS)
				return false;
			if (req) {
				memcpy(req->params[np], us, ul);
				req->params[np][ul] = '\0';
			}
			np++;
		} else if (pl != ul || memcmp(ps, us, ul)) {
			return false;
		}
		if (req)
			req->n_params = np;
	}
}

enum route_result route_match(const struct route *routes, size_t n, const char *method,
			      const char *path, const struct route **out, struct api_req *req,
			      char *allow, size_t allow_len)
{
	bool path_known = false;
	size_t used = 0;

	if (allow_len)
		allow[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!match(routes[i].pattern, path, NULL))
			continue;
		path_known = true;
		if (!strcmp(routes[i].method, method)) {
			match(routes[i].pattern, path, req);
			*out = &routes[i];
			return ROUTE_OK;
		}
		if (used < allow_len && !strstr(allow, routes[i].method)) {
			int k = snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
					 routes[i].method);

			if (k > 0)
				used += (size_t)k;
		}
	}
	return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}
