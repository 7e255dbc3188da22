/* http.c - see http.h. */
#include "http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <microhttpd.h>

void api_reply_init(struct api_reply *r)
{
	*r = (struct api_reply){.status = 500, .fd = -1};
}

void api_reply_release(struct api_reply *r)
{
	json_decref(r->json);
	free(r->text);
	if (r->fd >= 0)
		close(r->fd);
	if (r->stream_free && r->stream_ctx)
		r->stream_free(r->stream_ctx);
	api_reply_init(r);
}

void api_reply_json(struct api_reply *r, unsigned status, json_t *obj)
{
	if (!obj) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	json_decref(r->json);
	r->status = status;
	r->json = obj;
}

const char *api_code_for_status(unsigned status)
{
	switch (status) {
	case 400:
	case 422:
		return "invalid";
	case 401:
		return "unauthorized";
	case 404:
		return "not_found";
	case 405:
		return "method_not_allowed";
	case 409:
		return "conflict";
	case 413:
		return "too_large";
	case 507:
		return "no_capacity";
	default:
		return "internal";
	}
}

static void set_error(struct api_reply *r, unsigned status, const char *msg)
{
	json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", api_code_for_status(status),
			      "message", msg);

	json_decref(r->json);
	r->json = o;
	r->status = status;
}

void api_reply_error(struct api_reply *r, unsigned status, const char *fmt, ...)
{
	char msg[YUN_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_error(r, status, msg);
}

void api_reply_err(struct api_reply *r, const struct yun_err *err)
{
	unsigned status;

	switch (err->code) {
	case ENOENT:
		status = 404;
		break;
	case EEXIST:
	case EBUSY:
	case EAGAIN:
		status = 409;
		break;
	case ENOSPC:
		status = 507;
		break;
	case EINVAL:
	case EPROTO:
		status = 400;
		break;
	case ERANGE:
	case EDOM:
	case ENOTSUP:
		status = 422;
		break;
	case EFBIG:
		status = 413;
		break;
	default:
		status = 500;
		break;
	}
	set_error(r, status, err->msg[0] ? err->msg : "internal error");
}

const char *api_query(const struct api_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *api_header(const struct api_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}
