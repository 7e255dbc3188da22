/* proto.c - see proto.h. */
#include "proto.h"

#include <errno.h>
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
	uint8_t *buf = malloc(CT_PROTO_MAX);
	json_t *r, *e;
	ssize_t n;
	int type, rc;

	if (!buf)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = ct_proto_send_json(fd, CT_MSG_REQUEST, request);
	if (rc) {
		free(buf);
		return yun_err_errno(err, -rc, "send request");
	}
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
