/* wire.c - see wire.h. */
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define HELLO_MAGIC "YUNMIG01"
#define HELLO_LEN   (8 + 1 + WIRE_NONCE_LEN)

struct wire_mac {
	EVP_MAC_CTX *ctx;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- addresses and sockets ------------------------------------------------ */

int wire_parse_addr(const char *addr, struct sockaddr_storage *ss, unsigned *sslen,
		    struct yun_err *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char host[256];
	const char *port;
	size_t hlen;
	int rc;

	if (!addr || !*addr)
		return yun_err_set(err, EINVAL, "migration address: empty");
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (!end || end[1] != ':')
			return yun_err_set(err, EINVAL,
					   "migration address %s: expected [v6addr]:port", addr);
		hlen = (size_t)(end - addr - 1);
		if (hlen >= sizeof(host))
			return yun_err_set(err, EINVAL, "migration address %s: host too long", addr);
		memcpy(host, addr + 1, hlen);
		port = end + 2;
	} else {
		const char *colon = strrchr(addr, ':');

		if (!colon || strchr(addr, ':') != colon)
			return yun_err_set(err, EINVAL,
					   "migration address %s: expected host:port or [v6addr]:port",
					   addr);
		hlen = (size_t)(colon - addr);
		if (hlen >= sizeof(host))
			return yun_err_set(err, EINVAL, "migration address %s: host too long", addr);
		memcpy(host, addr, hlen);
		port = colon + 1;
	}
	host[hlen] = '\0';
	if (!*port || !*host)
		return yun_err_set(err, EINVAL, "migration address %s: host or port missing", addr);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res) {
		if (res)
			freeaddrinfo(res);
		return yun_err_set(err, EINVAL, "migration address %s: %s", addr,
				   rc ? gai_strerror(rc) : "no address");
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void name_peer(int fd, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
		snprintf(out, n, "fd %d", fd);
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(out, n, "socketpair");
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int wire_listen(const char *addr, struct yun_err *err)
{
	struct sockaddr_storage ss;
	unsigned len;
	int fd, one = 1, rc;

	rc = wire_parse_addr(addr, &ss, &len, err);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return yun_err_errno(err, errno, "migration listener %s: socket", addr);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4) < 0) {
		rc = yun_err_errno(err, errno, "migration listener %s: bind/listen", addr);
		close(fd);
		return rc;
	}
	return fd;
}

int wire_connect(const char *addr, unsigned timeout_ms, struct yun_err *err)
{
	struct sockaddr_storage ss;
	struct pollfd p;
	unsigned len;
	socklen_t elen = sizeof(int);
	int fd, rc, soerr = 0;

	rc = wire_parse_addr(addr, &ss, &len, err);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return yun_err_errno(err, errno, "migration to %s: socket", addr);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno != EINPROGRESS) {
			rc = yun_err_errno(err, errno, "migration to %s: connect", addr);
			close(fd);
			return rc;
		}
		p = (struct pollfd){ .fd = fd, .events = POLLOUT };
		rc = poll(&p, 1, timeout_ms ? (int)timeout_ms : WIRE_TIMEOUT_MS);
		if (rc <= 0) {
			rc = yun_err_errno(err, rc == 0 ? ETIMEDOUT : errno,
					   "migration to %s: connect", addr);
			close(fd);
			return rc;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) < 0)
			soerr = errno;
		if (soerr) {
			rc = yun_err_errno(err, soerr, "migration to %s: connect", addr);
			close(fd);
			return rc;
		}
	}
	return fd;
}

/* ---- bounded reads and writes --------------------------------------------- */

static const char *dir_word(const struct wire *w)
{
	return w->role == WIRE_SOURCE ? "to" : "from";
}

/* Wait for fd to become readable (POLLIN) or writable (POLLOUT). */
static int wait_fd(int fd, short events, unsigned timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	do
		rc = poll(&p, 1, (int)timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	return 0;
}

/* Read exactly n bytes. -EPIPE for EOF (what = what was being read, for the caller). */
static int read_full(int fd, void *buf, size_t n, unsigned timeout_ms)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = recv(fd, p, n, 0);

		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		r = wait_fd(fd, POLLIN, timeout_ms);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

static int write_iov(int fd, struct iovec *iov, int niov, unsigned timeout_ms)
{
	while (niov) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
		ssize_t r = sendmsg(fd, &m, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			r = wait_fd(fd, POLLOUT, timeout_ms);
			if (r < 0)
				return (int)r;
			continue;
		}
		while (niov && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			niov--;
		}
		if (niov) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n, unsigned timeout_ms)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };

	return write_iov(fd, &iov, 1, timeout_ms);
}

static const char *io_reason(int rc)
{
	if (rc == -EPIPE)
		return "connection closed";
	if (rc == -ETIMEDOUT)
		return "timed out";
	return strerror(-rc);
}

/* ---- keys and MACs -------------------------------------------------------- */

static void hmac_token(const char *token, const char *label, const uint8_t *ns,
		       const uint8_t *nd, int role, uint8_t out[WIRE_MAC_LEN])
{
	uint8_t msg[64 + 2 * WIRE_NONCE_LEN + 1];
	size_t n = strlen(label);
	unsigned olen = WIRE_MAC_LEN;

	memcpy(msg, label, n);
	memcpy(msg + n, ns, WIRE_NONCE_LEN);
	memcpy(msg + n + WIRE_NONCE_LEN, nd, WIRE_NONCE_LEN);
	n += 2 * WIRE_NONCE_LEN;
	if (role)
		msg[n++] = (uint8_t)role;
	if (!HMAC(EVP_sha256(), token, (int)strlen(token), msg, n, out, &olen))
		memset(out, 0, WIRE_MAC_LEN); /* cannot match a real proof's */
}

static struct wire_mac *mac_new(const uint8_t key[WIRE_MAC_LEN])
{
	struct wire_mac *m = calloc(1, sizeof(*m));
	EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	if (!m || !alg)
		goto fail;
	m->ctx = EVP_MAC_CTX_new(alg);
	if (!m->ctx || !EVP_MAC_init(m->ctx, key, WIRE_MAC_LEN, params))
		goto fail;
	EVP_MAC_free(alg);
	return m;
fail:
	if (m && m->ctx)
		EVP_MAC_CTX_free(m->ctx);
	free(m);
	EVP_MAC_free(alg);
	return NULL;
}

static void mac_free(struct wire_mac *m)
{
	if (m) {
		EVP_MAC_CTX_free(m->ctx);
		free(m);
	}
}

/* MAC of frame seq: seq (LE) | header | payload. Returns 0 or -EIO. */
static int mac_frame(struct wire_mac *m, uint64_t seq, const uint8_t hdr[WIRE_HDR_LEN],
		     const void *payload, size_t len, uint8_t out[WIRE_MAC_LEN])
{
	uint8_t s[8];
	size_t olen = 0;

	for (int i = 0; i < 8; i++)
		s[i] = (uint8_t)(seq >> (8 * i));
	/* A NULL key re-initialises with the key given at creation. */
	if (!EVP_MAC_init(m->ctx, NULL, 0, NULL) || !EVP_MAC_update(m->ctx, s, 8) ||
	    !EVP_MAC_update(m->ctx, hdr, WIRE_HDR_LEN) ||
	    (len && !EVP_MAC_update(m->ctx, payload, len)) ||
	    !EVP_MAC_final(m->ctx, out, &olen, WIRE_MAC_LEN) || olen != WIRE_MAC_LEN)
		return -EIO;
	return 0;
}

static void put_hdr(uint8_t hdr[WIRE_HDR_LEN], uint16_t type, uint16_t flags, uint32_t len)
{
	hdr[0] = (uint8_t)type;
	hdr[1] = (uint8_t)(type >> 8);
	hdr[2] = (uint8_t)flags;
	hdr[3] = (uint8_t)(flags >> 8);
	for (int i = 0; i < 4; i++)
		hdr[4 + i] = (uint8_t)(len >> (8 * i));
}

/* Both direction keys from the nonces; w->tx/rx set by role. */
static int session_keys(struct wire *w, const char *token, const uint8_t *ns, const uint8_t *nd)
{
	uint8_t ksd[WIRE_MAC_LEN], kds[WIRE_MAC_LEN];

	hmac_token(token, "yun-migrate key S>D", ns, nd, 0, ksd);
	hmac_token(token, "yun-migrate key D>S", ns, nd, 0, kds);
	w->tx = mac_new(w->role == WIRE_SOURCE ? ksd : kds);
	w->rx = mac_new(w->role == WIRE_SOURCE ? kds : ksd);
	OPENSSL_cleanse(ksd, sizeof(ksd));
	OPENSSL_cleanse(kds, sizeof(kds));
	if (!w->tx || !w->rx) {
		mac_free(w->tx);
		mac_free(w->rx);
		w->tx = w->rx = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int check_token(const char *token, struct yun_err *err)
{
	size_t n = token ? strlen(token) : 0;

	if (n < WIRE_TOKEN_MIN || n > WIRE_TOKEN_MAX)
		return yun_err_set(err, EINVAL,
				   "migration token: %zu characters, need %d to %d", n,
				   WIRE_TOKEN_MIN, WIRE_TOKEN_MAX);
	return 0;
}

static void wire_init(struct wire *w, int fd, enum wire_role role, unsigned timeout_ms)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->role = role;
	w->timeout_ms = timeout_ms ? timeout_ms : WIRE_TIMEOUT_MS;
	name_peer(fd, w->peer, sizeof(w->peer));
}

/* ---- handshake ------------------------------------------------------------ */

static int hello_check(struct wire *w, const uint8_t *h, int role, struct yun_err *err)
{
	if (memcmp(h, HELLO_MAGIC, 8) != 0)
		return yun_err_set(err, EPROTO,
				   "migration handshake %s %s: not a yun migration stream "
				   "(bad magic)", dir_word(w), w->peer);
	if (h[8] != role)
		return yun_err_set(err, EPROTO,
				   "migration handshake %s %s: peer claims role '%c', expected '%c'",
				   dir_word(w), w->peer, h[8] >= 0x20 && h[8] < 0x7f ? h[8] : '?',
				   role);
	return 0;
}

/* One send or receive of the handshake; `step` names it in the error. */
static int hs_io(struct wire *w, bool send, void *buf, size_t n, const char *step,
		 struct yun_err *err)
{
	int rc = send ? write_full(w->fd, buf, n, w->timeout_ms) :
			read_full(w->fd, buf, n, w->timeout_ms);

	if (rc < 0)
		yun_err_set(err, -rc, "migration handshake %s %s: %s: %s", dir_word(w), w->peer,
			    step, io_reason(rc));
	return rc;
}

int wire_handshake(struct wire *w, int fd, enum wire_role role, const char *token,
		   unsigned timeout_ms, struct yun_err *err)
{
	static const char proof_label[] = "yun-migrate proof";
	uint8_t mine[HELLO_LEN], theirs[HELLO_LEN];
	uint8_t proof_s[WIRE_MAC_LEN], proof_d[WIRE_MAC_LEN], got[WIRE_MAC_LEN];
	int peer_role = role == WIRE_SOURCE ? WIRE_DEST : WIRE_SOURCE;
	const uint8_t *ns, *nd;
	int rc;

	wire_init(w, fd, role, timeout_ms);
	rc = check_token(token, err);
	if (rc < 0)
		goto fail;
	rc = set_nonblock(fd);
	if (rc < 0) {
		yun_err_errno(err, -rc, "migration %s %s: O_NONBLOCK", dir_word(w), w->peer);
		goto fail;
	}
	if (w->peer[0] != 's') {
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* best effort */
	}
	memcpy(mine, HELLO_MAGIC, 8);
	mine[8] = (uint8_t)role;
	if (RAND_bytes(mine + 9, WIRE_NONCE_LEN) != 1) {
		rc = yun_err_set(err, EIO, "migration handshake: no random bytes for a nonce");
		goto fail;
	}

	/* Hellos: the destination checks the stranger's before saying anything. */
	if (role == WIRE_SOURCE) {
		rc = hs_io(w, true, mine, HELLO_LEN, "sending hello", err);
		if (rc == 0)
			rc = hs_io(w, false, theirs, HELLO_LEN, "reading hello", err);
		if (rc == 0)
			rc = hello_check(w, theirs, peer_role, err);
	} else {
		rc = hs_io(w, false, theirs, HELLO_LEN, "reading hello", err);
		if (rc == 0)
			rc = hello_check(w, theirs, peer_role, err);
		if (rc == 0)
			rc = hs_io(w, true, mine, HELLO_LEN, "sending hello", err);
	}
	if (rc < 0)
		goto fail;
	ns = (role == WIRE_SOURCE ? mine : theirs) + 9;
	nd = (role == WIRE_SOURCE ? theirs : mine) + 9;
	hmac_token(token, proof_label, ns, nd, WIRE_SOURCE, proof_s);
	hmac_token(token, proof_label, ns, nd, WIRE_DEST, proof_d);

	/* Proofs: the source's first; the destination answers only a valid one. */
	if (role == WIRE_SOURCE) {
		rc = hs_io(w, true, proof_s, WIRE_MAC_LEN, "sending proof", err);
		if (rc == 0)
			rc = hs_io(w, false, got, WIRE_MAC_LEN, "reading proof (authentication "
				   "failed: the destination refused our token?)", err);
	} else {
		rc = hs_io(w, false, got, WIRE_MAC_LEN, "reading proof", err);
	}
	if (rc < 0)
		goto fail;
	if (CRYPTO_memcmp(got, role == WIRE_SOURCE ? proof_d : proof_s, WIRE_MAC_LEN) != 0) {
		rc = yun_err_set(err, EACCES,
				 "migration handshake %s %s: token proof does not match",
				 dir_word(w), w->peer);
		goto fail;
	}
	if (role == WIRE_DEST) {
		rc = hs_io(w, true, proof_d, WIRE_MAC_LEN, "sending proof", err);
		if (rc < 0)
			goto fail;
	}
	rc = session_keys(w, token, ns, nd);
	if (rc < 0) {
		yun_err_set(err, ENOMEM, "migration %s %s: HMAC context", dir_word(w), w->peer);
		goto fail;
	}
	return 0;

fail:
	close(fd);
	w->fd = -1;
	w->rx_dead = w->tx_dead = true;
	return rc;
}

int wire_accept(int lfd, const char *token, unsigned timeout_ms, struct wire *w,
		unsigned *rejected, struct yun_err *last_reject, struct yun_err *err)
{
	uint64_t deadline = now_ms() + timeout_ms;
	struct yun_err herr;
	int rc;

	rc = check_token(token, err);
	if (rc < 0)
		return rc;
	for (;;) {
		uint64_t now = now_ms(), left;
		int fd;

		if (now >= deadline)
			return yun_err_set(err, ETIMEDOUT,
					   "migration listener: no authenticated source within %u ms"
					   " (%u connections refused)",
					   timeout_ms, rejected ? *rejected : 0);
		rc = wait_fd(lfd, POLLIN, (unsigned)(deadline - now));
		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0)
			return yun_err_errno(err, -rc, "migration listener: poll");
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
				continue;
			return yun_err_errno(err, errno, "migration listener: accept");
		}
		/* A stranger holds the listener for at most one handshake timeout. */
		now = now_ms();
		left = deadline > now ? deadline - now : 1;
		rc = wire_handshake(w, fd, WIRE_DEST, token,
				    left < WIRE_HANDSHAKE_MS ? (unsigned)left : WIRE_HANDSHAKE_MS,
				    &herr);
		if (rc == 0) {
			w->timeout_ms = WIRE_TIMEOUT_MS;
			return 0;
		}
		if (rejected)
			(*rejected)++;
		if (last_reject)
			*last_reject = herr;
	}
}

/* ---- frames --------------------------------------------------------------- */

int wire_send(struct wire *w, uint16_t type, const void *payload, size_t len,
	      struct yun_err *err)
{
	uint8_t hdr[WIRE_HDR_LEN], mac[WIRE_MAC_LEN];
	struct iovec iov[3];
	int n = 0, rc;

	if (w->tx_dead || w->fd < 0)
		return yun_err_set(err, EPIPE, "migration stream %s %s: already failed",
				   dir_word(w), w->peer);
	if (len > WIRE_MAX_PAYLOAD)
		return yun_err_set(err, EMSGSIZE, "migration stream %s %s: frame of %zu bytes",
				   dir_word(w), w->peer, len);
	put_hdr(hdr, type, 0, (uint32_t)len);
	if (mac_frame(w->tx, w->seq_tx, hdr, payload, len, mac) < 0)
		return yun_err_set(err, EIO, "migration stream %s %s: HMAC failed", dir_word(w),
				   w->peer);
	iov[n++] = (struct iovec){ .iov_base = hdr, .iov_len = WIRE_HDR_LEN };
	if (len)
		iov[n++] = (struct iovec){ .iov_base = (void *)payload, .iov_len = len };
	iov[n++] = (struct iovec){ .iov_base = mac, .iov_len = WIRE_MAC_LEN };
	rc = write_iov(w->fd, iov, n, w->timeout_ms);
	if (rc < 0) {
		w->tx_dead = true;
		return yun_err_set(err, -rc, "migration stream %s %s: sending frame %llu: %s",
				   dir_word(w), w->peer, (unsigned long long)w->seq_tx,
				   io_reason(rc));
	}
	w->seq_tx++;
	w->bytes_tx += WIRE_HDR_LEN + len + WIRE_MAC_LEN;
	return 0;
}

int wire_recv(struct wire *w, uint16_t *type, const uint8_t **payload, size_t *len,
	      struct yun_err *err)
{
	uint8_t hdr[WIRE_HDR_LEN], mac[WIRE_MAC_LEN];
	unsigned long long seq = (unsigned long long)w->seq_rx;
	uint32_t n;
	uint16_t flags;
	int rc;

	if (w->rx_dead || w->fd < 0)
		return yun_err_set(err, EPIPE, "migration stream %s %s: already failed",
				   dir_word(w), w->peer);
	w->rx_dead = true; /* until this frame proves good */
	rc = read_full(w->fd, hdr, WIRE_HDR_LEN, w->timeout_ms);
	if (rc < 0)
		return yun_err_set(err, -rc, "migration stream %s %s: receiving frame %llu: %s",
				   dir_word(w), w->peer, seq, io_reason(rc));
	n = (uint32_t)hdr[4] | (uint32_t)hdr[5] << 8 | (uint32_t)hdr[6] << 16 |
	    (uint32_t)hdr[7] << 24;
	flags = (uint16_t)(hdr[2] | hdr[3] << 8);
	if (n > WIRE_MAX_PAYLOAD || flags != 0)
		return yun_err_set(err, EBADMSG,
				   "migration stream %s %s: frame %llu: bad header (length %u,"
				   " flags 0x%x)", dir_word(w), w->peer, seq, n, flags);
	if (w->rx_cap < (size_t)n + WIRE_MAC_LEN) {
		size_t cap = (size_t)n + WIRE_MAC_LEN < 65536 ? 65536 : (size_t)n + WIRE_MAC_LEN;
		uint8_t *b = realloc(w->rx_buf, cap);

		if (!b)
			return yun_err_set(err, ENOMEM, "migration stream %s %s: frame %llu: "
					   "%u bytes", dir_word(w), w->peer, seq, n);
		w->rx_buf = b;
		w->rx_cap = cap;
	}
	rc = read_full(w->fd, w->rx_buf, (size_t)n + WIRE_MAC_LEN, w->timeout_ms);
	if (rc < 0)
		return yun_err_set(err, -rc,
				   "migration stream %s %s: receiving frame %llu (%u bytes): %s",
				   dir_word(w), w->peer, seq, n, io_reason(rc));
	if (mac_frame(w->rx, w->seq_rx, hdr, w->rx_buf, n, mac) < 0 ||
	    CRYPTO_memcmp(mac, w->rx_buf + n, WIRE_MAC_LEN) != 0)
		return yun_err_set(err, EBADMSG,
				   "migration stream %s %s: frame %llu fails authentication",
				   dir_word(w), w->peer, seq);
	w->rx_dead = false;
	w->seq_rx++;
	w->bytes_rx += WIRE_HDR_LEN + n + WIRE_MAC_LEN;
	*type = (uint16_t)(hdr[0] | hdr[1] << 8);
	*payload = w->rx_buf;
	*len = n;
	return 0;
}

int wire_readable(struct wire *w)
{
	struct pollfd p = { .fd = w->fd, .events = POLLIN };
	int rc = poll(&p, 1, 0);

	if (rc < 0)
		return -errno;
	return rc > 0;
}

void wire_close(struct wire *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	mac_free(w->tx);
	mac_free(w->rx);
	w->tx = w->rx = NULL;
	free(w->rx_buf);
	w->rx_buf = NULL;
	w->rx_cap = 0;
}

/* ---- fixed sessions for tests and fuzzing --------------------------------- */

static void fixed_nonces(uint8_t ns[WIRE_NONCE_LEN], uint8_t nd[WIRE_NONCE_LEN])
{
	memset(ns, 0x5a, WIRE_NONCE_LEN);
	memset(nd, 0xa5, WIRE_NONCE_LEN);
}

int wire_session_fixed(struct wire *w, int fd, enum wire_role role, const char *token,
		       struct yun_err *err)
{
	uint8_t ns[WIRE_NONCE_LEN], nd[WIRE_NONCE_LEN];
	int rc;

	wire_init(w, fd, role, 0);
	rc = check_token(token, err);
	if (rc < 0)
		return rc;
	rc = set_nonblock(fd);
	if (rc < 0)
		return yun_err_errno(err, -rc, "migration: O_NONBLOCK");
	fixed_nonces(ns, nd);
	if (session_keys(w, token, ns, nd) < 0)
		return yun_err_set(err, ENOMEM, "migration: HMAC context");
	return 0;
}

size_t wire_forge(enum wire_role role, const char *token, uint64_t seq, uint16_t type,
		  uint16_t flags, const void *payload, size_t len, uint8_t *out)
{
	struct wire w = { .fd = -1, .role = role };
	uint8_t ns[WIRE_NONCE_LEN], nd[WIRE_NONCE_LEN];
	size_t total = 0;

	fixed_nonces(ns, nd);
	if (len > UINT32_MAX || session_keys(&w, token, ns, nd) < 0)
		return 0;
	put_hdr(out, type, flags, (uint32_t)len);
	if (len)
		memmove(out + WIRE_HDR_LEN, payload, len);
	if (mac_frame(w.tx, seq, out, out + WIRE_HDR_LEN, len, out + WIRE_HDR_LEN + len) == 0)
		total = WIRE_HDR_LEN + len + WIRE_MAC_LEN;
	mac_free(w.tx);
	mac_free(w.rx);
	return total;
}
