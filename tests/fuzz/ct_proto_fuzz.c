/*
 * ct_proto_fuzz.c - libFuzzer target for what a client can send a yun-ct
 * supervisor on its socket (proto.h): packets read with ct_proto_recv and
 * requests decoded with ct_proto_parse_request, the supervisor's only view
 * of a request.
 *
 * The input's first byte picks the mode:
 *  - even: the rest is one REQUEST payload, decoded directly;
 *  - odd: the rest is a stream of packets, each "u16 length (little
 *    endian), u8 descriptors to attach (0..7), payload", written to a
 *    SOCK_SEQPACKET socketpair as the client would and read back with
 *    ct_proto_recv, which must return each payload and type intact, hand
 *    over at most one descriptor and close the others; REQUEST packets are
 *    decoded too.
 * Decoding invariants: success means a known operation and, for exec, a
 * command; rows/cols, the stop timeout stay in range; an error has a reason.
 * A crash, a sanitizer report, a broken invariant or a leaked descriptor
 * is a bug.
 *
 * FUZZ_SOURCES: src/ct/proto.c src/ct/state.c src/ct/config.c src/ct/mounts.c src/ct/image.c
 * FUZZ_SOURCES: src/lib/err.c src/lib/file.c src/lib/json.c src/lib/str.c
 * FUZZ_LIBS: -ljansson
 *
 * Built with -DFUZZ_WRITE_SEEDS (and without -fsanitize=fuzzer) this file is
 * instead a program that writes a seed corpus of the requests yun-ct's own
 * client sends, in both modes, into the directory given as its argument.
 */
#include "ct/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* abort() is what libFuzzer reports as a crash. */
#define INVARIANT(cond)                                                                            \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "ct_proto_fuzz: invariant broken: %s\n", #cond);           \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_PASS 7

#ifndef FUZZ_WRITE_SEEDS

static void check_request(const uint8_t *p, size_t len)
{
	struct ct_request req;
	struct yun_err err = {0};
	int rc = ct_proto_parse_request(p, len, &req, &err);

	if (rc < 0) {
		INVARIANT(err.code > 0 && -rc == err.code && err.msg[0]);
		INVARIANT(req.op == CT_OP_NONE || req.op == CT_OP_EXEC);
	} else {
		INVARIANT(req.op != CT_OP_NONE);
		if (req.op == CT_OP_EXEC)
			INVARIANT(req.argv && req.argv[0] && req.argv[0][0]);
	}
	INVARIANT(req.rows <= 65535 && req.cols <= 65535);
	INVARIANT(req.timeout >= -1 && req.timeout <= CT_STOP_TIMEOUT_MAX);
	for (char **a = req.argv; a && *a; a++)
		INVARIANT(strlen(*a) < len);
	ct_proto_request_free(&req);
}

/* Send one packet carrying `npass` descriptors (copies of `src`), like a client. */
static int send_packet(int fd, const uint8_t *p, size_t len, int npass, int src)
{
	char cbuf[CMSG_SPACE(MAX_PASS * sizeof(int))];
	struct iovec iov = {(void *)p, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	int fds[MAX_PASS];

	if (npass) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		for (int i = 0; i < npass; i++)
			fds[i] = src;
		msg.msg_control = cbuf;
		msg.msg_controllen = CMSG_SPACE(npass * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(npass * sizeof(int));
		memcpy(CMSG_DATA(c), fds, npass * sizeof(int));
	}
	return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

#define FD_SCAN 128 /* the fuzzer's own descriptors are far fewer */

/* Which of the descriptors 0..FD_SCAN-1 are open. */
static void open_fds(bool open_[FD_SCAN])
{
	for (int fd = 0; fd < FD_SCAN; fd++)
		open_[fd] = fcntl(fd, F_GETFD) >= 0;
}

static void packet_stream(const uint8_t *data, size_t size)
{
	static uint8_t buf[CT_PROTO_MAX];
	bool before[FD_SCAN], after[FD_SCAN];
	int sv[2], src;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	src = open("/dev/null", O_RDONLY | O_CLOEXEC);
	open_fds(before);
	while (size >= 3) {
		size_t len = (size_t)data[0] | (size_t)data[1] << 8;
		int npass = data[2] % (MAX_PASS + 1), type, passfd;
		ssize_t n;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (send_packet(sv[0], data, len, npass, src) < 0)
			break;
		n = ct_proto_recv(sv[1], buf, &type, &passfd);
		if (len == 0) {
			/* An empty packet reads as the end of the stream. */
			INVARIANT(n == 0 && type == 0);
		} else {
			INVARIANT(n == (ssize_t)len - 1 && type == data[0]);
			INVARIANT(!memcmp(buf, data + 1, len - 1));
			if (type == CT_MSG_REQUEST)
				check_request(buf, (size_t)n);
		}
		INVARIANT(npass ? passfd >= 0 : passfd == -1);
		if (passfd >= 0)
			close(passfd);
		data += len;
		size -= len;
	}
	/* What ct_proto_recv received, it handed over (closed above) or closed. */
	open_fds(after);
	INVARIANT(!memcmp(before, after, sizeof(before)));
	close(sv[0]);
	close(sv[1]);
	if (src >= 0)
		close(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		packet_stream(data + 1, size - 1);
	else
		check_request(data + 1, size - 1);
	return 0;
}

#else /* FUZZ_WRITE_SEEDS */

static const char *const requests[] = {
    "{\"op\":\"status\"}",
    "{\"op\":\"attach\",\"start\":true,\"rows\":40,\"cols\":120}",
    ("{\"op\":\"exec\",\"argv\":[\"sh\",\"-c\",\"echo hi\"],\"env\":[\"A=1\"],"
     "\"tty\":false,\"cwd\":\"/tmp\"}"),
    "{\"op\":\"exec\",\"argv\":[\"top\"],\"env\":[],\"tty\":true,\"rows\":24,\"cols\":80}",
    "{\"op\":\"kill\",\"signal\":15}",
    "{\"op\":\"stop\",\"timeout\":10,\"signal\":0}",
    "{\"op\":\"exec\",\"argv\":\"sh\"}",
    "{\"op\":\"stop\",\"timeout\":9223372036854775807,\"signal\":-4294967281}",
    "{\"op\":\"nope\"}",
};

static int write_seed(const char *dir, int i, const uint8_t *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%02d", dir, i);
	f = fopen(path, "w");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t buf[4096];
	size_t n = 0, nreq = sizeof(requests) / sizeof(requests[0]);
	int k = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < nreq; i++) {
		size_t len = strlen(requests[i]);

		buf[0] = 0; /* mode: one payload */
		memcpy(buf + 1, requests[i], len);
		if (write_seed(argv[1], k++, buf, len + 1) < 0)
			return 1;
	}
	/* A session as the client streams it: the request, input, a resize, EOF, ... */
	buf[n++] = 1; /* mode: packets */
	{
		const char *attach = requests[1];
		size_t len = strlen(attach) + 1;
		static const uint8_t stdin_pkt[] = {CT_MSG_STDIN, 'l', 's', '\n'};
		static const uint8_t resize[] = {CT_MSG_RESIZE, 24, 0, 80, 0};
		static const uint8_t eof[] = {CT_MSG_STDIN_EOF};

		buf[n++] = (uint8_t)len;
		buf[n++] = 0;
		buf[n++] = 1; /* one descriptor, as ct_proto_send_fd does */
		buf[n++] = CT_MSG_REQUEST;
		memcpy(buf + n, attach, len - 1);
		n += len - 1;
		buf[n++] = sizeof(stdin_pkt);
		buf[n++] = 0;
		buf[n++] = 0;
		memcpy(buf + n, stdin_pkt, sizeof(stdin_pkt));
		n += sizeof(stdin_pkt);
		buf[n++] = sizeof(resize);
		buf[n++] = 0;
		buf[n++] = 3;
		memcpy(buf + n, resize, sizeof(resize));
		n += sizeof(resize);
		buf[n++] = sizeof(eof);
		buf[n++] = 0;
		buf[n++] = 0;
		memcpy(buf + n, eof, sizeof(eof));
		n += sizeof(eof);
		buf[n++] = 0; /* an empty packet */
		buf[n++] = 0;
		buf[n++] = 0;
	}
	return write_seed(argv[1], k, buf, n) < 0;
}

#endif /* FUZZ_WRITE_SEEDS */
