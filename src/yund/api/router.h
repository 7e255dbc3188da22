/*
 * router.h - method + path pattern -> handler.
 *
 * Patterns are literal segments and {name} segments that match one
 * non-empty segment (captured, in order, into req->params). A path that
 * matches a pattern but none of its methods gives 405 with the methods
 * that would do; nothing matching gives 404. One trailing '/' is ignored.
 * Pure: no I/O, no allocation.
 */
#ifndef YUND_API_ROUTER_H
#define YUND_API_ROUTER_H

#include <stddef.h>

#include "http.h"

typedef void (*api_handler)(struct api_req *req, struct api_reply *rep);

struct route {
	const char *method; /* "GET", "POST", "DELETE" */
	const char *pattern;
	api_handler fn;
};

enum route_result { ROUTE_OK, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD };

/*
 * Find the route for method + path. On ROUTE_OK *out is it and the captures
 * are in req->params; on ROUTE_BAD_METHOD `allow` lists the methods
 * ("GET, DELETE").
 */
enum route_result route_match(const struct route *routes, size_t n, const char *method,
			      const char *path, const struct route **out, struct api_req *req,
			      char *allow, size_t allow_len);

#endif
