/* vmmapi.c - see vmmapi.h. */
#include "vmmapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define ANSWER_MAX (1 << 20) /* the metrics of a 64-vCPU VM fit many times over */

struct answer {
	char *data;
	size_t len;
	bool too_big;
};

int vmmapi_global_init(struct yun_err *err)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_NOTHING);

	if (rc != CURLE_OK)
		return yun_err_set(err, EIO, "libcurl: %s", curl_easy_strerror(rc));
	return 0;
}

static size_t collect(char *p, size_t sz, size_t nm, void *arg)
{
	struct answer *a = arg;
	size_t n = sz * nm;
	char *nd;

	if (a->len + n > ANSWER_MAX) {
		a->too_big = true;
		return 0;
	}
	nd = realloc(a->data, a->len + n + 1);
	if (!nd)
		return 0;
	memcpy(nd + a->len, p, n);
	a->len += n;
	nd[a->len] = '\0';
	a->data = nd;
	return n;
}

/* An error answer: the VMM's fault_message, else the status and the start of the body. */
static int fault(const char *name, const char *method, const char *path, long status,
		 const struct answer *a, struct yun_err *err)
{
	json_t *j = a->data ? json_loadb(a->data, a->len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "fault_message"));
	int rc;

	if (msg)
		rc = yun_err_set(err, EPROTO, "instance %s: VMM: %.400s", name, msg);
	else
		rc = yun_err_set(err, EPROTO, "instance %s: VMM: %s %s: status %ld%s%.200s", name,
				 method, path, status, a->len ? ": " : "", a->data ? a->data : "");
	json_decref(j);
	return rc;
}

int vmmapi_call(const char *sock, const char *name, const char *method, const char *path,
		json_t *body, json_t **out, struct yun_err *err)
{
	struct answer a = {0};
	struct curl_slist *hdrs = NULL, *t;
	char url[256], errbuf[CURL_ERROR_SIZE] = "";
	char *text = NULL;
	CURL *h;
	CURLcode cc;
	long status = 0;
	int rc = 0;

	if (out)
		*out = NULL;
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return yun_err_set(err, ENOMEM, "out of memory");
	h = curl_easy_init();
	if (!h) {
		free(text);
		return yun_err_set(err, ENOMEM, "instance %s: libcurl: no handle", name);
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)VMMAPI_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)VMMAPI_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "yund");
	t = curl_slist_append(hdrs, "Accept: application/json");
	if (t)
		hdrs = t;
	t = t ? curl_slist_append(hdrs, "Expect:") : NULL;
	if (t)
		hdrs = t;
	if (text) {
		t = t ? curl_slist_append(hdrs, "Content-Type: application/json") : NULL;
		if (t)
			hdrs = t;
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
	}
	if (!t) {
		rc = yun_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (a.too_big) {
		rc = yun_err_set(err, EBADMSG, "instance %s: VMM: %s %s: answer over %d bytes",
				 name, method, path, ANSWER_MAX);
	} else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
		rc = yun_err_set(err, ECONNREFUSED, "instance %s: VMM API %s: no answer (%s)", name,
				 sock, errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		rc = yun_err_set(err, ETIMEDOUT, "instance %s: VMM: %s %s: no answer in %d ms",
				 name, method, path, VMMAPI_TIMEOUT_MS);
	} else if (cc != CURLE_OK) {
		rc = yun_err_set(err, EIO, "instance %s: VMM: %s %s: %s", name, method, path,
				 errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (status < 200 || status > 299) {
		rc = fault(name, method, path, status, &a, err);
	} else if (out && a.len) {
		json_error_t je;

		*out = json_loadb(a.data, a.len, 0, &je);
		if (!*out)
			rc = yun_err_set(err, EBADMSG, "instance %s: VMM: %s %s: bad JSON: %s",
					 name, method, path, je.text);
	}
out:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(a.data);
	free(text);
	return rc;
}

/* A request whose body is b (consumed; NULL from a failed json_pack) and whose answer is 204. */
static int send_body(const char *sock, const char *name, const char *method, const char *path,
		     json_t *b, struct yun_err *err)
{
	int rc;

	if (!b)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = vmmapi_call(sock, name, method, path, b, NULL, err);
	json_decref(b);
	return rc;
}

int vmmapi_shutdown(const char *sock, const char *name, int64_t timeout_ms, struct yun_err *err)
{
	return send_body(sock, name, "PUT", "/actions",
			 json_pack("{s:s, s:I}", "action_type", "Shutdown", "timeout_ms",
				   (json_int_t)timeout_ms),
			 err);
}

int vmmapi_set_paused(const char *sock, const char *name, bool paused, struct yun_err *err)
{
	return send_body(sock, name, "PATCH", "/vm",
			 json_pack("{s:s}", "state", paused ? "Paused" : "Resumed"), err);
}

int vmmapi_state(const char *sock, const char *name, char *buf, size_t len, struct yun_err *err)
{
	json_t *o = NULL;
	const char *st;
	int rc = vmmapi_call(sock, name, "GET", "/", NULL, &o, err);

	if (rc)
		return rc;
	st = json_string_value(json_object_get(o, "state"));
	if (st)
		snprintf(buf, len, "%s", st);
	else
		rc = yun_err_set(err, EBADMSG, "instance %s: VMM: GET /: no state", name);
	json_decref(o);
	return rc;
}
