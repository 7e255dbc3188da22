/*
 * migrate_wire_test.c - the migration stream's authentication and framing:
 * the token handshake, and that a frame that is altered, replayed,
 * reordered, reflected, oversized or late is refused with a message naming
 * the peer and the frame.
 */
#include "vmm/migrate/wire.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

struct hs {
	int fd;
	const char *token;
	enum wire_role role;
	struct wire w;
	struct yun_err err;
	int rc;
};

static void *hs_main(void *arg)
{
	struct hs *h = arg;

	h->rc = wire_handshake(&h->w, h->fd, h->role, h->token, 1000, &h->err);
	return NULL;
}

/* Handshake over a socketpair with the two tokens given. */
static void handshake(const char *src_token, const char *dst_token, struct hs *s, struct hs *d)
{
	int sv[2];
	pthread_t t;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*s = (struct hs){ .fd = sv[0], .token = src_token, .role = WIRE_SOURCE };
	*d = (struct hs){ .fd = sv[1], .token = dst_token, .role = WIRE_DEST };
	pthread_create(&t, NULL, hs_main, d);
	hs_main(s);
	pthread_join(t, NULL);
}

static void test_handshake_and_frames(void)
{
	struct hs s, d;
	const uint8_t *p;
	uint16_t type;
	size_t len;
	struct yun_err err;

	handshake(TOKEN, TOKEN, &s, &d);
	CHECK_EQ(s.rc, 0);
	CHECK_EQ(d.rc, 0);
	CHECK_EQ(wire_send(&s.w, 7, "hello", 5, &err), 0);
	CHECK_EQ(wire_send(&s.w, 8, NULL, 0, &err), 0);
	CHECK_EQ(wire_send(&d.w, 9, "back", 4, &err), 0);
	CHECK_EQ(wire_recv(&d.w, &type, &p, &len, &err), 0);
	CHECK(type == 7 && len == 5 && memcmp(p, "hello", 5) == 0);
	CHECK_EQ(wire_recv(&d.w, &type, &p, &len, &err), 0);
	CHECK(type == 8 && len == 0);
	CHECK_EQ(wire_recv(&s.w, &type, &p, &len, &err), 0);
	CHECK(type == 9 && len == 4);
	CHECK(wire_send(&s.w, 1, "x", WIRE_MAX_PAYLOAD + 1, &err) == -EMSGSIZE);
	wire_close(&s.w);
	wire_close(&d.w);
}

static void test_wrong_token_is_refused(void)
{
	struct hs s, d;

	handshake("a-different-token-of-enough-length", TOKEN, &s, &d);
	CHECK(s.rc < 0);
	CHECK(d.rc < 0);
	fprintf(stderr, "  source: %s\n  dest: %s\n", s.err.msg, d.err.msg);
	CHECK_STR_CONTAINS(d.err.msg, "token proof does not match");
	CHECK_STR_CONTAINS(s.err.msg, "reading proof");

	handshake("short", "short", &s, &d);
	CHECK(s.rc == -EINVAL && d.rc == -EINVAL);
	CHECK_STR_CONTAINS(s.err.msg, "migration token");
}

static void test_not_a_migration_stream(void)
{
	int sv[2];
	struct wire w;
	struct yun_err err;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(write(sv[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n..............", 41), 41);
	CHECK(wire_handshake(&w, sv[1], WIRE_DEST, TOKEN, 500, &err) == -EPROTO);
	CHECK_STR_CONTAINS(err.msg, "bad magic");
	close(sv[0]);

	/* Silence: the handshake gives up at its timeout. */
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK(wire_handshake(&w, sv[1], WIRE_DEST, TOKEN, 100, &err) == -ETIMEDOUT);
	CHECK_STR_CONTAINS(err.msg, "timed out");
	close(sv[0]);
}

/* A destination session on a socketpair, fed raw bytes on the other end. */
static int fixed_pair(struct wire *w, int *raw)
{
	int sv[2];
	struct yun_err err;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	*raw = sv[0];
	return wire_session_fixed(w, sv[1], WIRE_DEST, TOKEN, &err);
}

static size_t forge(uint64_t seq, uint16_t type, const char *payload, uint8_t *out)
{
	return wire_forge(WIRE_SOURCE, TOKEN, seq, type, 0, payload, strlen(payload), out);
}

static void test_tampering_fails_authentication(void)
{
	uint8_t f0[128], f1[128], bad[128];
	size_t n0, n1;
	const uint8_t *p;
	uint16_t type;
	size_t len;
	struct yun_err err;
	struct wire w;
	int raw;

	n0 = forge(0, 3, "first frame", f0);
	n1 = forge(1, 3, "second frame", f1);
	CHECK(n0 && n1);

	/* Genuine frames pass, in order. */
	CHECK_EQ(fixed_pair(&w, &raw), 0);
	CHECK_EQ(write(raw, f0, n0), (ssize_t)n0);
	CHECK_EQ(write(raw, f1, n1), (ssize_t)n1);
	CHECK_EQ(wire_recv(&w, &type, &p, &len, &err), 0);
	CHECK(len == 11 && memcmp(p, "first frame", 11) == 0);
	CHECK_EQ(wire_recv(&w, &type, &p, &len, &err), 0);
	/* Replay of frame 0 as the third frame. */
	CHECK_EQ(write(raw, f0, n0), (ssize_t)n0);
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -EBADMSG);
	CHECK_STR_CONTAINS(err.msg, "frame 2 fails authentication");
	CHECK_STR_CONTAINS(err.msg, "from socketpair");
	/* Dead from then on, even for a good frame. */
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -EPIPE);
	close(raw);
	wire_close(&w);

	/* Every single flipped bit, in header, payload or MAC, is caught. */
	for (size_t bit = 0; bit < n0 * 8; bit += 3) {
		memcpy(bad, f0, n0);
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CHECK_EQ(fixed_pair(&w, &raw), 0);
		CHECK_EQ(write(raw, bad, n0), (ssize_t)n0);
		shutdown(raw, SHUT_WR);
		w.timeout_ms = 200;
		CHECK(wire_recv(&w, &type, &p, &len, &err) < 0);
		close(raw);
		wire_close(&w);
	}

	/* Reordered: frame 1 first. */
	CHECK_EQ(fixed_pair(&w, &raw), 0);
	CHECK_EQ(write(raw, f1, n1), (ssize_t)n1);
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -EBADMSG);
	CHECK_STR_CONTAINS(err.msg, "frame 0 fails authentication");
	close(raw);
	wire_close(&w);

	/* Reflected: a frame the destination itself would send. */
	CHECK_EQ(fixed_pair(&w, &raw), 0);
	n0 = wire_forge(WIRE_DEST, TOKEN, 0, 3, 0, "x", 1, bad);
	CHECK_EQ(write(raw, bad, n0), (ssize_t)n0);
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -EBADMSG);
	close(raw);
	wire_close(&w);

	/* Signed with another token. */
	CHECK_EQ(fixed_pair(&w, &raw), 0);
	n0 = wire_forge(WIRE_SOURCE, "another-token-entirely-0000000", 0, 3, 0, "x", 1, bad);
	CHECK_EQ(write(raw, bad, n0), (ssize_t)n0);
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -EBADMSG);
	close(raw);
	wire_close(&w);
}

static void test_bad_headers_and_timeouts(void)
{
	uint8_t hdr[8] = { 3, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f }; /* 2 GiB payload */
	uint8_t frame[64];
	const uint8_t *p;
	uint16_t type;
	size_t len, n;
	struct yun_err err;
	struct wire w;
	int raw;

	CHECK_EQ(fixed_pair(&w, &raw), 0);
	CHECK_EQ(write(raw, hdr, 8), 8);
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -EBADMSG);
	CHECK_STR_CONTAINS(err.msg, "bad header");
	close(raw);
	wire_close(&w);

	/* Nonzero flags, even with a valid MAC over them. */
	CHECK_EQ(fixed_pair(&w, &raw), 0);
	n = wire_forge(WIRE_SOURCE, TOKEN, 0, 3, 1, "x", 1, frame);
	CHECK_EQ(write(raw, frame, n), (ssize_t)n);
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -EBADMSG);
	close(raw);
	wire_close(&w);

	/* A frame cut short, then silence: the read times out. */
	CHECK_EQ(fixed_pair(&w, &raw), 0);
	n = wire_forge(WIRE_SOURCE, TOKEN, 0, 3, 0, "payload", 7, frame);
	CHECK_EQ(write(raw, frame, n - 5), (ssize_t)(n - 5));
	w.timeout_ms = 100;
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -ETIMEDOUT);
	CHECK_STR_CONTAINS(err.msg, "timed out");
	close(raw);
	wire_close(&w);

	/* ... or the peer goes away. */
	CHECK_EQ(fixed_pair(&w, &raw), 0);
	CHECK_EQ(write(raw, frame, n - 5), (ssize_t)(n - 5));
	close(raw);
	CHECK(wire_recv(&w, &type, &p, &len, &err) == -EPIPE);
	CHECK_STR_CONTAINS(err.msg, "connection closed");
	wire_close(&w);
}

static void test_addresses(void)
{
	struct sockaddr_storage ss;
	struct yun_err err;
	unsigned len;

	CHECK_EQ(wire_parse_addr("127.0.0.1:4711", &ss, &len, &err), 0);
	CHECK_EQ(ss.ss_family, AF_INET);
	CHECK_EQ(ntohs(((struct sockaddr_in *)&ss)->sin_port), 4711);
	CHECK_EQ(wire_parse_addr("[::1]:4711", &ss, &len, &err), 0);
	CHECK_EQ(ss.ss_family, AF_INET6);
	CHECK(wire_parse_addr("::1:4711", &ss, &len, &err) < 0);  /* v6 needs brackets */
	CHECK(wire_parse_addr("[::1]4711", &ss, &len, &err) < 0);
	CHECK(wire_parse_addr("127.0.0.1", &ss, &len, &err) < 0);
	CHECK(wire_parse_addr(":4711", &ss, &len, &err) < 0);
	CHECK(wire_parse_addr("127.0.0.1:", &ss, &len, &err) < 0);
	CHECK(wire_parse_addr("", &ss, &len, &err) < 0);
	CHECK(wire_listen("not-an-address", &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "not-an-address");
}

int main(void)
{
	RUN(test_handshake_and_frames);
	RUN(test_wrong_token_is_refused);
	RUN(test_not_a_migration_stream);
	RUN(test_tampering_fails_authentication);
	RUN(test_bad_headers_and_timeouts);
	RUN(test_addresses);
	return CHECK_DONE();
}
