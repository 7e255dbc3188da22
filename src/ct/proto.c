/* proto.c - see proto.h. */
#include "proto.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "state.h"

static int send_iov(int fd, int type, const void *data, size_t len, int passfd)
{
	uint8_t t = (uint8_t)type;
	struct iovec iov[2] = {{&t, 1}, {(void *)data, len}};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};

	if (len + 1 > CT_PROTO_MAX)
		return -EMSGSIZE;
	if (passfd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &passfd, sizeof(int));
	}
	for (;;) {
		if (sendmsg(fd, &msg, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int ct_proto_send(int fd, int type, const void *data, size_t len)
{
	return send_iov(fd, type, data, len, -1);
}

int ct_proto_send_fd(int fd, int type, const void *data, size_t len, int passfd)
{
	return send_iov(fd, type, data, len, passfd);
}

int ct_proto_send_json(int fd, int type, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	int rc;

	if (!text)
		return -ENOMEM;
	rc = ct_proto_send(fd, type, text, strlen(text));
	free(text);
	return rc;
}

ssize_t ct_proto_recv(int fd, uint8_t *buf, int *type, int *passfd)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = {buf, CT_PROTO_MAX};
	struct msghdr msg = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n;

	if (passfd)
		*passfd = -1;
	*type = 0;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[4];

		memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
		for (size_t i = 0; i < nfds; i++) {
			if (passfd && *passfd < 0)
				*passfd = fds[i];
			else
				close(fds[i]);
		}
	}
	if (n == 0)
		return 0;
	if (msg.msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	*type = buf[0];
	memmove(buf, buf + 1, n - 1);
	return n - 1;
}

json_t *ct_proto_json(const uint8_t *payload, size_t len)
{
	json_t *o = json_loadb((const char *)payload, len, 0, NULL);

	if (o && !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- requests ---- */

static const struct {
	const char *name;
	enum ct_op op;
} ops[] = {
    {"status", CT_OP_STATUS}, {"attach", CT_OP_ATTACH}, {"exec", CT_OP_EXEC},
    {"kill", CT_OP_KILL},     {"stop", CT_OP_STOP},
};

/* A JSON string without NUL bytes (C code would see a shorter one), else NULL. */
static const char *plain_string(json_t *s)
{
	const char *v = json_string_value(s);

	return v && strlen(v) == json_string_length(s) ? v : NULL;
}

/* A list of strings as a NULL-terminated vector; absent: NULL, no error. */
static int strv_from_json(json_t *a, char ***out, struct yun_err *err)
{
	size_t i, n;
	char **v;
	json_t *s;

	*out = NULL;
	if (!a)
		return 0;
	if (!json_is_array(a))
		return yun_err_set(err, EINVAL, "exec: expected a list of strings");
	n = json_array_size(a);
	v = calloc(n + 1, sizeof(char *));
	if (!v)
		return yun_err_set(err, ENOMEM, "out of memory");
	*out = v;
	json_array_foreach(a, i, s)
	{
		const char *str = plain_string(s);

		if (!str)
			return yun_err_set(err, EINVAL,
					   json_is_string(s) ? "exec: a string holds a NUL byte"
							     : "exec: expected a list of strings");
		v[i] = strdup(str);
		if (!v[i])
			return yun_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* A terminal dimension: 1..65535, else 0 ("not given"). */
static unsigned dimension(json_t *v)
{
	json_int_t n = json_integer_value(v);

	return n > 0 && n <= 65535 ? (unsigned)n : 0;
}

int ct_proto_parse_request(const uint8_t *payload, size_t len, struct ct_request *req,
			   struct yun_err *err)
{
	json_t *o = ct_proto_json(payload, len), *v;
	const char *op = o ? json_string_value(json_object_get(o, "op")) : NULL;
	int rc = 0;

	memset(req, 0, sizeof(*req));
	req->timeout = -1;
	if (!op) {
		json_decref(o);
		return yun_err_set(err, EPROTO, "malformed request");
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !req->op; i++)
		if (!strcmp(op, ops[i].name))
			req->op = ops[i].op;
	if (!req->op) {
		rc = yun_err_set(err, EINVAL, "unknown operation \"%s\"", op);
		json_decref(o);
		return rc;
	}
	req->start = json_is_true(json_object_get(o, "start"));
	req->tty = json_is_true(json_object_get(o, "tty"));
	req->rows = dimension(json_object_get(o, "rows"));
	req->cols = dimension(json_object_get(o, "cols"));
	v = json_object_get(o, "signal");
	if (v) {
		json_int_t sig = json_integer_value(v);

		req->signal = sig >= INT_MIN && sig <= INT_MAX ? (int)sig : -1;
	}
	v = json_object_get(o, "timeout");
	if (v) {
		json_int_t t = json_integer_value(v);

		req->timeout = t < 0 ? 0 : t > CT_STOP_TIMEOUT_MAX ? CT_STOP_TIMEOUT_MAX : t;
	}
	if (req->op == CT_OP_EXEC) {
		v = json_object_get(o, "cwd");
		if (v && json_is_string(v)) {
			const char *cwd = plain_string(v);

			if (!cwd)
				rc = yun_err_set(err, EINVAL,
						 "exec: the directory holds a NUL byte");
			else if (!(req->cwd = strdup(cwd)))
				rc = yun_err_set(err, ENOMEM, "out of memory");
		}
		if (!rc)
			rc = strv_from_json(json_object_get(o, "argv"), &req->argv, err);
		if (!rc)
			rc = strv_from_json(json_object_get(o, "env"), &req->env, err);
		if (!rc && (!req->argv || !req->argv[0] || !req->argv[0][0]))
			rc = yun_err_set(err, EINVAL, "exec: no command given");
	}
	json_decref(o);
	return rc;
}

static void free_strv(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

void ct_proto_request_free(struct ct_request *req)
{
	free_strv(req->argv);
	free_strv(req->env);
	free(req->cwd);
	req->argv = req->env = NULL;
	req->cwd = NULL;
}

/* ---- client side ---- */

int ct_proto_connect(const char *id, int *fd, struct yun_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[4096];
	int s, rc;

	rc = ct_state_path(id, "sock", path, sizeof(path), err);
	if (rc)
		return rc;
	if (strlen(path) >= sizeof(sa.sun_path))
		return yun_err_set(err, ENAMETOOLONG, "container %s: socket path too long", id);
	strcpy(sa.sun_path, path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return yun_err_errno(err, errno, "socket");
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = errno;
		close(s);
		if (rc == ENOENT) {
			char dir[4096];

			ct_state_path(id, NULL, dir, sizeof(dir), NULL);
			if (access(dir, F_OK) < 0)
				return yun_err_set(err, ENOENT, "container %s: no such container",
						   id);
		}
		if (rc == ENOENT || rc == ECONNREFUSED)
			return yun_err_set(err, ESRCH,
					   "container %s: its supervisor is not running", id);
		return yun_err_errno(err, rc, "container %s: connect %s", id, path);
	}
	*fd = s;
	return 0;
}

int ct_proto_call(int fd, json_t *request, json_t **reply, struct yun_err *err)
{
	int rc = ct_proto_send_json(fd, CT_MSG_REQUEST, request);

	if (rc)
		return yun_err_errno(err, -rc, "send request");
	return ct_proto_reply(fd, reply, err);
}

int ct_proto_reply(int fd, json_t **reply, struct yun_err *err)
{
	uint8_t *buf = malloc(CT_PROTO_MAX);
	json_t *r, *e;
	ssize_t n;
	int type, rc;

	if (!buf)
		return yun_err_set(err, ENOMEM, "out of memory");
	n = ct_proto_recv(fd, buf, &type, NULL);
	if (n < 0 || type != CT_MSG_REPLY) {
		free(buf);
		if (n < 0)
			return yun_err_errno(err, (int)-n, "receive reply");
		return yun_err_set(err, EPROTO, "the supervisor closed the connection");
	}
	r = ct_proto_json(buf, n);
	free(buf);
	if (!r)
		return yun_err_set(err, EPROTO, "the supervisor sent a malformed reply");
	if (!json_is_true(json_object_get(r, "ok"))) {
		json_int_t code = json_integer_value(json_object_get(r, "code"));

		e = json_object_get(r, "error");
		rc = yun_err_set(err, code > 0 && code < 4096 ? (int)code : EINVAL, "%s",
				 json_is_string(e) ? json_string_value(e) : "the request failed");
		json_decref(r);
		return rc;
	}
	*reply = r;
	return 0;
}
