/* vsock.c - virtio-vsock with Unix-socket host ends (hybrid vsock); see vsock.h. */
#include "vsock.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/log.h"

/* Control packets a connection owes the guest, sent in this order. */
#define PEND_RST            (1u << 0)
#define PEND_REQUEST        (1u << 1)
#define PEND_RESPONSE       (1u << 2)
#define PEND_CREDIT_UPDATE  (1u << 3)
#define PEND_CREDIT_REQUEST (1u << 4)
#define PEND_SHUTDOWN       (1u << 5) /* after the data: the host end hit EOF */

/* epoll tags (data.u64). */
#define TAG_LISTEN 1
#define TAG_WAKE   2
#define TAG_TIMER  3
#define TAG_CONN   16 /* + connection index */

#define TIMER_TICK_MS 250
#define ACCEPT_BUDGET 16

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- scatter/gather helpers -------------------------------------------------- */

/* out[] = the bytes [off, off + len) of iov[0..n) as iovecs; returns how many. */
static unsigned iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
			  struct iovec *out)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len ? l - off : len;
		out[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + off, c };
		len -= c;
		off = 0;
	}
	return k;
}

/* ---- connections and their fds ------------------------------------------------ */

static void wake(struct vsock *vs)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: then it is readable anyway. */
	if (write(vs->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		yun_debug("vsock %s: wake eventfd: %s", vs->path, strerror(errno));
}

static void pend(struct vsock *vs, struct vsock_conn *c, unsigned what)
{
	c->pending |= what;
	wake(vs);
}

/* What the host end should be polled for in the connection's state. */
static uint32_t conn_want(const struct vsock_conn *c)
{
	uint32_t want = 0;

	if (c->fd < 0)
		return 0;
	if (c->state == VSOCK_CLIENT_LINE)
		return EPOLLIN;
	if (c->state != VSOCK_CONNECTED)
		return 0;
	if (!c->readable && !c->host_eof && !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV))
		want |= EPOLLIN;
	if (c->buf_len)
		want |= EPOLLOUT;
	return want;
}

/*
 * Bring the fd's epoll registration in line with conn_want(). Out of the
 * set rather than in it for no events, which would still report HUP/ERR
 * level-triggered and spin.
 */
static void conn_arm(struct vsock *vs, struct vsock_conn *c)
{
	uint32_t want = conn_want(c);
	struct epoll_event ev = { .events = want, .data.u64 = TAG_CONN + (uint64_t)(c - vs->conn) };
	int op;

	if (want == c->events)
		return;
	op = !want ? EPOLL_CTL_DEL : c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(vs->epfd, op, c->fd, &ev) < 0)
		yun_warn("vsock %s: epoll_ctl on port %u: %s", vs->path, c->local_port,
			 strerror(errno));
	else
		c->events = want;
}

static void conn_close_fd(struct vsock *vs, struct vsock_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->events)
		epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->events = 0;
}

static void conn_free(struct vsock *vs, struct vsock_conn *c)
{
	conn_close_fd(vs, c);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* End a connection: the host end closes now, the guest gets a RST. */
static void conn_reset(struct vsock *vs, struct vsock_conn *c)
{
	if (c->state == VSOCK_CLIENT_LINE) {
		conn_free(vs, c); /* the guest never heard of it */
		return;
	}
	conn_close_fd(vs, c);
	c->state = VSOCK_DYING;
	c->deadline_ms = 0;
	c->buf_len = 0;
	c->readable = false;
	pend(vs, c, PEND_RST);
	c->pending = PEND_RST;
}

static struct vsock_conn *conn_alloc(struct vsock *vs)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (vs->conn[i].state == VSOCK_FREE) {
			memset(&vs->conn[i], 0, sizeof(vs->conn[i]));
			vs->conn[i].fd = -1;
			return &vs->conn[i];
		}
	return NULL;
}

/* The connection a guest packet from peer_port to local_port belongs to. */
static struct vsock_conn *conn_find(struct vsock *vs, uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &vs->conn[i];

		if (c->state >= VSOCK_REQUEST_SENT && c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

/* A RST for a guest packet that has no connection (best effort: a full ring drops it). */
static void stray_rst(struct vsock *vs, uint32_t local, uint32_t peer)
{
	unsigned i;

	if (vs->stray_len == VSOCK_MAX_STRAY)
		return;
	i = (vs->stray_head + vs->stray_len++) % VSOCK_MAX_STRAY;
	vs->stray[i].local = local;
	vs->stray[i].peer = peer;
	wake(vs);
}

/* Run the timer while some connection has a deadline. */
static void timer_update(struct vsock *vs)
{
	struct itimerspec its = { 0 };
	bool need = false;

	for (unsigned i = 0; i < VSOCK_MAX_CONNS && !need; i++)
		need = vs->conn[i].state != VSOCK_FREE && vs->conn[i].deadline_ms;
	if (need == vs->timer_armed)
		return;
	if (need) {
		its.it_interval.tv_nsec = TIMER_TICK_MS * 1000000L;
		its.it_value = its.it_interval;
	}
	if (timerfd_settime(vs->timer_fd, 0, &its, NULL) < 0)
		yun_warn("vsock %s: timerfd_settime: %s", vs->path, strerror(errno));
	else
		vs->timer_armed = need;
}

static void timer_fired(struct vsock *vs)
{
	uint64_t ticks, now = now_ms();

	if (read(vs->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		yun_debug("vsock %s: timerfd: %s", vs->path, strerror(errno));
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &vs->conn[i];

		if (c->state == VSOCK_FREE || !c->deadline_ms || now < c->deadline_ms)
			continue;
		yun_debug("vsock %s: %s timed out", vs->path,
			  c->state == VSOCK_CLIENT_LINE ? "CONNECT line" : "guest's RESPONSE");
		conn_reset(vs, c);
	}
	timer_update(vs);
}

/* Guest bytes the host end took: count them and tell the guest once a quarter is free again. */
static void conn_forwarded(struct vsock *vs, struct vsock_conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (c->fwd_cnt - c->fwd_cnt_sent >= VSOCK_CONN_BUF / 4)
		pend(vs, c, PEND_CREDIT_UPDATE);
}

/* Everything the guest sent is out: carry out its SHUTDOWN. */
static void conn_drained(struct vsock *vs, struct vsock_conn *c)
{
	if (!(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND))
		return;
	/* Both directions done (5.10.6.6): the connection goes, with a RST as Linux does. */
	if (c->guest_shut == (VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV) ||
	    c->host_eof) {
		conn_reset(vs, c);
		return;
	}
	if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
		yun_debug("vsock %s: shutdown of port %u: %s", vs->path, c->local_port,
			  strerror(errno));
}

/* The host end can take more: write what we hold for it. */
static void conn_flush(struct vsock *vs, struct vsock_conn *c)
{
	while (c->buf_len) {
		uint32_t first = VSOCK_CONN_BUF - c->buf_head;
		struct iovec v[2] = { { c->buf + c->buf_head, first < c->buf_len ? first : c->buf_len },
				      { c->buf, first < c->buf_len ? c->buf_len - first : 0 } };
		struct msghdr m = { .msg_iov = v, .msg_iovlen = v[1].iov_len ? 2 : 1 };
		ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			yun_debug("vsock %s: write to port %u: %s", vs->path, c->local_port,
				  strerror(errno));
			conn_reset(vs, c);
			return;
		}
		c->buf_head = (uint32_t)((c->buf_head + (uint32_t)n) % VSOCK_CONN_BUF);
		c->buf_len -= (uint32_t)n;
		conn_forwarded(vs, c, (uint32_t)n);
	}
	if (!c->buf_len)
		conn_drained(vs, c);
	if (c->state == VSOCK_CONNECTED)
		conn_arm(vs, c);
}

/* ---- the host side: the listening socket and CONNECT lines ------------------ */

static uint32_t alloc_host_port(struct vsock *vs)
{
	for (;;) {
		uint32_t p = vs->next_port++;
		bool used = false;

		if (vs->next_port == 0)
			vs->next_port = VSOCK_HOST_PORT_BASE;
		for (unsigned i = 0; i < VSOCK_MAX_CONNS && !used; i++)
			used = vs->conn[i].state != VSOCK_FREE && vs->conn[i].local_port == p;
		if (!used)
			return p;
	}
}

static void accept_clients(struct vsock *vs)
{
	for (unsigned i = 0; i < ACCEPT_BUDGET; i++) {
		int fd = accept4(vs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				yun_warn("vsock %s: accept: %s", vs->path, strerror(errno));
			return;
		}
		c = vs->live ? conn_alloc(vs) : NULL;
		if (!c) {
			yun_debug("vsock %s: host connection refused (%s)", vs->path,
				  vs->live ? "too many connections" : "no guest driver");
			close(fd);
			continue;
		}
		c->state = VSOCK_CLIENT_LINE;
		c->fd = fd;
		c->deadline_ms = now_ms() + VSOCK_TIMEOUT_MS;
		conn_arm(vs, c);
		timer_update(vs);
	}
}

/* "CONNECT <port>" (the '\n' stripped) -> port; -EINVAL otherwise. */
static int parse_connect(const char *line, uint32_t *port)
{
	unsigned long long v = 0;
	const char *p = line + 8;

	if (strncmp(line, "CONNECT ", 8) || !*p)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > UINT32_MAX)
			return -EINVAL;
	}
	*port = (uint32_t)v;
	return 0;
}

/*
 * Read the client's CONNECT line a byte at a time, so nothing it sends
 * after the '\n' is taken before the guest accepted the connection.
 */
static void client_line(struct vsock *vs, struct vsock_conn *c)
{
	for (;;) {
		char ch;
		ssize_t n = read(c->fd, &ch, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_free(vs, c); /* the client left (or broke) before asking */
			return;
		}
		if (ch != '\n') {
			if (c->line_len == VSOCK_LINE_MAX - 1) {
				yun_debug("vsock %s: CONNECT line too long", vs->path);
				conn_free(vs, c);
				return;
			}
			c->line[c->line_len++] = ch;
			continue;
		}
		c->line[c->line_len] = '\0';
		if (parse_connect(c->line, &c->peer_port) < 0) {
			yun_debug("vsock %s: bad request line \"%s\"", vs->path, c->line);
			conn_free(vs, c);
			return;
		}
		c->local_port = alloc_host_port(vs);
		c->state = VSOCK_REQUEST_SENT;
		c->deadline_ms = now_ms() + VSOCK_TIMEOUT_MS;
		conn_arm(vs, c); /* out of the set until the guest answers */
		pend(vs, c, PEND_REQUEST);
		return;
	}
}

/* The guest accepted a host-initiated connection: tell the client. */
static void host_connected(struct vsock *vs, struct vsock_conn *c)
{
	char ok[32];
	int len = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

	c->state = VSOCK_CONNECTED;
	c->deadline_ms = 0;
	/* A fresh socket's buffer takes a few bytes; anything else means the client is gone. */
	if (send(c->fd, ok, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) != len) {
		conn_reset(vs, c);
		return;
	}
	conn_arm(vs, c);
}

/* ---- packets to the guest (rx queue) ------------------------------------------- */

/* Hold an rx chain for the next packet: 1, 0 when the ring is empty, -EINVAL for a bad chain. */
static int rx_chain(struct vsock *vs, struct vq *vq)
{
	struct vq_req *r = &vs->rx_req;
	int rc;

	if (vs->rx_held)
		return 1;
	rc = vq_pop(vq, r);
	if (rc <= 0)
		return rc;
	if (r->nr_read || r->write_len < VSOCK_HDR_LEN) {
		yun_debug("vsock %s: rx chain %u: %u readable buffers, %llu writable bytes",
			  vs->path, r->head, r->nr_read, (unsigned long long)r->write_len);
		return -EINVAL;
	}
	vs->rx_held = true;
	return 1;
}

/* Give the held chain to the guest: a header for (local -> peer) and len data bytes already in. */
static void rx_send(struct vsock *vs, struct vq *vq, struct vsock_conn *c, uint32_t local,
		    uint32_t peer, uint16_t op, uint32_t flags, uint32_t len)
{
	struct virtio_vsock_hdr h = {
		.src_cid = htole64(VSOCK_HOST_CID),
		.dst_cid = htole64(vs->guest_cid),
		.src_port = htole32(local),
		.dst_port = htole32(peer),
		.len = htole32(len),
		.type = htole16(VIRTIO_VSOCK_TYPE_STREAM),
		.op = htole16(op),
		.flags = htole32(flags),
	};

	if (c) {
		/* Every packet tells the guest our credit. */
		h.buf_alloc = htole32(VSOCK_CONN_BUF);
		h.fwd_cnt = htole32(c->fwd_cnt);
		c->fwd_cnt_sent = c->fwd_cnt;
		c->pending &= ~PEND_CREDIT_UPDATE;
	}
	vq_iov_put(vs->rx_req.iov, vs->rx_req.nr_write, 0, &h, VSOCK_HDR_LEN);
	/* The chain was held since vq_pop(); its data came later (readv). */
	vq_iov_written(vq, vs->rx_req.iov, vs->rx_req.nr_write, VSOCK_HDR_LEN + len);
	vq_push(vq, vs->rx_req.head, VSOCK_HDR_LEN + len);
	vs->rx_held = false;
	vs->stats.rx_packets++;
	if (op == VIRTIO_VSOCK_OP_RST)
		vs->stats.resets++;
}

static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	/* A guest claiming to have consumed more than we sent gets no extra credit. */
	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Read from the host end into the held chain: 1 sent, 0 nothing (now). */
static int rx_data(struct vsock *vs, struct vq *vq, struct vsock_conn *c)
{
	uint64_t room = vs->rx_req.write_len - VSOCK_HDR_LEN;
	uint32_t credit = peer_credit(c), max;
	unsigned n;
	ssize_t got;

	if (!credit) {
		if (c->credit_asked)
			return 0;
		c->credit_asked = true;
		rx_send(vs, vq, c, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 0);
		return 1;
	}
	if (!room)
		return 0; /* a header-only chain: for a control packet */
	max = credit < VSOCK_MAX_PKT ? credit : VSOCK_MAX_PKT;
	if (room < max)
		max = (uint32_t)room;
	n = iov_slice(vs->rx_req.iov, vs->rx_req.nr_write, VSOCK_HDR_LEN, max, vs->iov);
	do
		got = readv(c->fd, vs->iov, (int)n);
	while (got < 0 && errno == EINTR);
	if (got < 0 && errno == EAGAIN) {
		c->readable = false;
		conn_arm(vs, c);
		return 0;
	}
	if (got < 0) {
		yun_debug("vsock %s: read from port %u: %s", vs->path, c->local_port,
			  strerror(errno));
		conn_reset(vs, c);
		return 0;
	}
	if (got == 0) {
		c->host_eof = true;
		c->readable = false;
		c->pending |= PEND_SHUTDOWN;
		conn_arm(vs, c);
		return 0;
	}
	c->tx_cnt += (uint32_t)got;
	vs->stats.rx_bytes += (uint64_t)got;
	rx_send(vs, vq, c, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_RW, 0, (uint32_t)got);
	return 1;
}

/* One packet the connection owes the guest, if any: 1 sent, 0 none. */
static int conn_rx_one(struct vsock *vs, struct vq *vq, struct vsock_conn *c)
{
	static const struct { unsigned bit; uint16_t op; } ctl[] = {
		{ PEND_REQUEST, VIRTIO_VSOCK_OP_REQUEST },
		{ PEND_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE },
		{ PEND_CREDIT_UPDATE, VIRTIO_VSOCK_OP_CREDIT_UPDATE },
		{ PEND_CREDIT_REQUEST, VIRTIO_VSOCK_OP_CREDIT_REQUEST },
	};

	if (c->pending & PEND_RST) {
		rx_send(vs, vq, c, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_RST, 0, 0);
		conn_free(vs, c);
		return 1;
	}
	for (unsigned i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++)
		if (c->pending & ctl[i].bit) {
			c->pending &= ~ctl[i].bit;
			rx_send(vs, vq, c, c->local_port, c->peer_port, ctl[i].op, 0, 0);
			return 1;
		}
	if (c->state == VSOCK_CONNECTED && c->readable &&
	    !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) && rx_data(vs, vq, c))
		return 1;
	if (c->pending & PEND_SHUTDOWN) {
		c->pending &= ~PEND_SHUTDOWN;
		rx_send(vs, vq, c, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_SHUTDOWN,
			VIRTIO_VSOCK_SHUTDOWN_SEND, 0);
		/* Nothing will flow either way any more once the guest is done too. */
		if ((c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) && !c->buf_len)
			conn_reset(vs, c);
		return 1;
	}
	return 0;
}

/* Send what waits for the guest while it has rx buffers. */
static int rx_run(struct vsock *vs, struct vq *vq)
{
	for (unsigned budget = 0; budget < VSOCK_RX_BUDGET; budget++) {
		int rc = rx_chain(vs, vq);
		bool sent = false;

		if (rc <= 0)
			return rc; /* no buffers: the driver's rx kick brings us back */
		if (vs->stray_len) {
			unsigned i = vs->stray_head;

			vs->stray_head = (vs->stray_head + 1) % VSOCK_MAX_STRAY;
			vs->stray_len--;
			rx_send(vs, vq, NULL, vs->stray[i].local, vs->stray[i].peer,
				VIRTIO_VSOCK_OP_RST, 0, 0);
			continue;
		}
		for (unsigned k = 0; k < VSOCK_MAX_CONNS && !sent; k++) {
			unsigned i = (vs->rr + k) % VSOCK_MAX_CONNS;
			struct vsock_conn *c = &vs->conn[i];

			if (c->state < VSOCK_REQUEST_SENT)
				continue;
			if (conn_rx_one(vs, vq, c)) {
				vs->rr = i + 1;
				sent = true;
			}
		}
		if (!sent)
			return 0;
	}
	wake(vs); /* more to do: after the other devices had their turn */
	return 0;
}

/* ---- packets from the guest (tx queue) ------------------------------------------- */

/* A guest REQUEST to host port `port`: connect to PATH_port. */
static void guest_connect(struct vsock *vs, const struct virtio_vsock_hdr *h)
{
	uint32_t local = le32toh(h->dst_port), peer = le32toh(h->src_port);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsock_conn *c = conn_alloc(vs);
	int fd;

	if (!c) {
		yun_debug("vsock %s: guest connection to port %u refused: too many", vs->path,
			  local);
		stray_rst(vs, local, peer);
		return;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", vs->path, local);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* Unix sockets connect at once; EAGAIN is a full backlog: refuse too. */
		yun_debug("vsock %s: guest connection to port %u: %s: %s", vs->path, local,
			  sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		stray_rst(vs, local, peer);
		return;
	}
	c->state = VSOCK_CONNECTED;
	c->fd = fd;
	c->local_port = local;
	c->peer_port = peer;
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	conn_arm(vs, c);
	pend(vs, c, PEND_RESPONSE);
}

/* Guest data for the host end: straight to the socket, what it does not take into buf. */
static void guest_data(struct vsock *vs, struct vsock_conn *c, const struct vq_req *r,
		       uint32_t len)
{
	size_t done = 0;

	if (!len)
		return;
	vs->stats.tx_bytes += len;
	if (!c->buf_len) {
		unsigned n = iov_slice(r->iov, r->nr_read, VSOCK_HDR_LEN, len, vs->iov);
		struct msghdr m = { .msg_iov = vs->iov, .msg_iovlen = n };
		ssize_t w;

		do
			w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN) {
			yun_debug("vsock %s: write to port %u: %s", vs->path, c->local_port,
				  strerror(errno));
			conn_reset(vs, c);
			return;
		}
		done = w < 0 ? 0 : (size_t)w;
		conn_forwarded(vs, c, (uint32_t)done);
	}
	if (done == len)
		return;
	/* The guest may only send what our buf_alloc leaves room for: more is a protocol error. */
	if (len - done > VSOCK_CONN_BUF - c->buf_len) {
		yun_debug("vsock %s: guest overran its credit on port %u", vs->path, c->local_port);
		conn_reset(vs, c);
		return;
	}
	if (!c->buf) {
		c->buf = malloc(VSOCK_CONN_BUF);
		if (!c->buf) {
			conn_reset(vs, c);
			return;
		}
	}
	while (done < len) {
		uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_CONN_BUF;
		uint32_t room = VSOCK_CONN_BUF - tail;
		size_t n = len - done < room ? len - done : room;

		vq_iov_get(r->iov, r->nr_read, VSOCK_HDR_LEN + done, c->buf + tail, n);
		c->buf_len += (uint32_t)n;
		done += n;
	}
	conn_arm(vs, c);
}

static void guest_shutdown(struct vsock *vs, struct vsock_conn *c, uint32_t flags)
{
	c->guest_shut |= flags & (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	if (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV)
		c->readable = false; /* what the host end still sends is dropped with it */
	if (!c->buf_len)
		conn_drained(vs, c);
	if (c->state == VSOCK_CONNECTED)
		conn_arm(vs, c);
}

/* One packet from the guest; -EINVAL for a chain no driver may post. */
static int tx_one(struct vsock *vs, const struct vq_req *r)
{
	struct virtio_vsock_hdr h;
	uint32_t local, peer, len;
	uint16_t op;
	struct vsock_conn *c;

	if (r->nr_write || r->read_len < VSOCK_HDR_LEN)
		return -EINVAL;
	vq_iov_get(r->iov, r->nr_read, 0, &h, VSOCK_HDR_LEN);
	vs->stats.tx_packets++;
	if (le64toh(h.src_cid) != vs->guest_cid || le64toh(h.dst_cid) != VSOCK_HOST_CID) {
		/* Not a packet of this guest for the host: nobody to answer. */
		vs->stats.dropped++;
		return 0;
	}
	local = le32toh(h.dst_port);
	peer = le32toh(h.src_port);
	len = le32toh(h.len);
	op = le16toh(h.op);
	c = conn_find(vs, local, peer);
	if (le16toh(h.type) != VIRTIO_VSOCK_TYPE_STREAM || len > r->read_len - VSOCK_HDR_LEN ||
	    len > VSOCK_MAX_PKT || op < VIRTIO_VSOCK_OP_REQUEST ||
	    op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
		yun_debug("vsock %s: bad packet %u -> %u: type %u op %u len %u", vs->path, peer,
			  local, le16toh(h.type), op, len);
		if (op == VIRTIO_VSOCK_OP_RST)
			return 0;
		if (c && c->state != VSOCK_DYING)
			conn_reset(vs, c);
		else if (!c)
			stray_rst(vs, local, peer);
		return 0;
	}
	if (!c) {
		if (op == VIRTIO_VSOCK_OP_REQUEST)
			guest_connect(vs, &h);
		else if (op != VIRTIO_VSOCK_OP_RST)
			stray_rst(vs, local, peer);
		return 0;
	}
	if (c->state == VSOCK_DYING) {
		if (op == VIRTIO_VSOCK_OP_RST)
			conn_free(vs, c); /* it knows: no need for ours */
		return 0;
	}
	/* Every packet carries the guest's credit. */
	c->peer_buf_alloc = le32toh(h.buf_alloc);
	c->peer_fwd_cnt = le32toh(h.fwd_cnt);
	if (c->readable && peer_credit(c)) {
		c->credit_asked = false;
		wake(vs);
	}
	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state == VSOCK_REQUEST_SENT)
			host_connected(vs, c);
		else
			conn_reset(vs, c);
		break;
	case VIRTIO_VSOCK_OP_RST:
		conn_free(vs, c);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state == VSOCK_CONNECTED)
			guest_shutdown(vs, c, le32toh(h.flags));
		else
			conn_reset(vs, c);
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state == VSOCK_CONNECTED && !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND))
			guest_data(vs, c, r, len);
		else
			conn_reset(vs, c);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		pend(vs, c, PEND_CREDIT_UPDATE);
		break;
	default: /* REQUEST for a connection that exists */
		conn_reset(vs, c);
		break;
	}
	return 0;
}

static int tx_run(struct vsock *vs, struct vq *vq)
{
	int rc;

	while ((rc = vq_pop(vq, &vs->req)) > 0) {
		rc = tx_one(vs, &vs->req);
		if (rc < 0) {
			yun_debug("vsock %s: tx chain %u: %llu readable bytes, %u writable buffers",
				  vs->path, vs->req.head, (unsigned long long)vs->req.read_len,
				  vs->req.nr_write);
			return rc;
		}
		vq_push(vq, vs->req.head, 0);
	}
	timer_update(vs);
	return rc;
}

/* ---- the I/O thread's entry ------------------------------------------------------ */

int vsock_ready(void *dev, unsigned q, struct vq *vq)
{
	struct vsock *vs = dev;
	struct epoll_event ev[32];
	uint64_t cnt;
	int n;

	(void)q;
	if (read(vs->wake_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		yun_debug("vsock %s: wake eventfd: %s", vs->path, strerror(errno));
	n = epoll_wait(vs->epfd, ev, 32, 0);
	for (int i = 0; i < n; i++) {
		uint64_t tag = ev[i].data.u64;
		struct vsock_conn *c;

		if (tag == TAG_LISTEN) {
			accept_clients(vs);
			continue;
		}
		if (tag == TAG_TIMER) {
			timer_fired(vs);
			continue;
		}
		if (tag < TAG_CONN || tag >= TAG_CONN + VSOCK_MAX_CONNS)
			continue; /* the wake eventfd, drained above */
		c = &vs->conn[tag - TAG_CONN];
		if (c->fd < 0 || !c->events)
			continue; /* closed earlier in this batch */
		if (c->state == VSOCK_CLIENT_LINE) {
			client_line(vs, c);
			continue;
		}
		if (ev[i].events & EPOLLOUT)
			conn_flush(vs, c);
		if (c->state == VSOCK_CONNECTED && (c->events & EPOLLIN) &&
		    (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
			c->readable = true;
			conn_arm(vs, c);
		}
	}
	timer_update(vs);
	if (!vq)
		return 0; /* not live: what waits for the guest waits for DRIVER_OK */
	return rx_run(vs, vq);
}

static int evq_run(struct vsock *vs, struct vq *vq);

static int vsock_queue_notify(void *dev, unsigned q, struct vq *vq)
{
	struct vsock *vs = dev;

	if (q == VSOCK_TXQ)
		return tx_run(vs, vq);
	if (q == VSOCK_RXQ)
		return rx_run(vs, vq);
	return evq_run(vs, vq); /* event buffers: kept until a restore resets the transport */
}

/* ---- configuration space, life cycle ------------------------------------------------ */

static void vsock_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct vsock *vs = dev;
	uint64_t cid = htole64(vs->guest_cid);

	memcpy(data, (uint8_t *)&cid + off, len); /* the transport checked off + len */
}

/* Every connection goes (the guest forgot them); the listening socket stays. */
static void drop_all(struct vsock *vs)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (vs->conn[i].state != VSOCK_FREE)
			conn_free(vs, &vs->conn[i]);
	vs->stray_len = 0;
	vs->rx_held = false;
	if (vs->timer_fd >= 0)
		timer_update(vs);
}

static void vsock_activate(void *dev, uint64_t features)
{
	struct vsock *vs = dev;

	(void)features;
	drop_all(vs);
	vs->live = true;
}

static void vsock_reset(void *dev)
{
	struct vsock *vs = dev;

	drop_all(vs);
	vs->live = false;
	vs->reset_pending = false;
}

const struct virtio_device_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_type = VIRTIO_ID_VSOCK,
	.num_queues = 3,
	.queue_max_size = VSOCK_QUEUE_SIZE,
	.features = 1ULL << VIRTIO_VSOCK_F_STREAM,
	.config_size = VSOCK_CONFIG_SIZE,
	.class_code = 0xFF0000, /* "unclassified device", as QEMU's vhost-vsock-pci */
	.config_read = vsock_config_read,
	.queue_notify = vsock_queue_notify,
	.activate = vsock_activate,
	.reset = vsock_reset,
};

/* Bind the listening socket; a stale file from a dead VMM is replaced. */
static int listen_on(struct vsock *vs, struct yun_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vs->path);
	vs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (vs->listen_fd < 0)
		return yun_err_errno(err, errno, "vsock %s: socket", vs->path);
	if (bind(vs->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int probe, e = errno;

		if (e != EADDRINUSE)
			return yun_err_errno(err, e, "vsock %s: bind", vs->path);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return yun_err_errno(err, errno, "vsock %s: socket", vs->path);
		e = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno : 0;
		close(probe);
		if (e != ECONNREFUSED)
			return yun_err_set(err, EADDRINUSE, "vsock %s: in use by another process",
					   vs->path);
		if (unlink(vs->path) < 0 ||
		    bind(vs->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return yun_err_errno(err, errno, "vsock %s: replacing a stale socket",
					     vs->path);
	}
	vs->bound = true;
	if (listen(vs->listen_fd, 64) < 0)
		return yun_err_errno(err, errno, "vsock %s: listen", vs->path);
	return 0;
}

static int epoll_add(struct vsock *vs, int fd, uint64_t tag, struct yun_err *err)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return yun_err_errno(err, errno, "vsock %s: epoll_ctl", vs->path);
	return 0;
}

int vsock_open(struct vsock *vs, uint64_t cid, const char *path, struct yun_err *err)
{
	int rc;

	memset(vs, 0, sizeof(*vs));
	vs->listen_fd = vs->epfd = vs->wake_fd = vs->timer_fd = -1;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		vs->conn[i].fd = -1;
	if (cid <= VSOCK_HOST_CID || cid >= UINT32_MAX)
		return yun_err_set(err, EINVAL, "vsock cid %llu: must be from 3 to %u",
				   (unsigned long long)cid, UINT32_MAX - 1);
	if (!*path || strlen(path) > VSOCK_PATH_MAX)
		return yun_err_set(err, EINVAL, "vsock %s: socket path empty or longer than %zu bytes",
				   path, VSOCK_PATH_MAX);
	vs->guest_cid = cid;
	snprintf(vs->path, sizeof(vs->path), "%s", path);
	vs->next_port = VSOCK_HOST_PORT_BASE;
	vs->epfd = epoll_create1(EPOLL_CLOEXEC);
	vs->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vs->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vs->epfd < 0 || vs->wake_fd < 0 || vs->timer_fd < 0) {
		rc = yun_err_errno(err, errno, "vsock %s: epoll, eventfd or timerfd", path);
		goto fail;
	}
	rc = listen_on(vs, err);
	if (!rc)
		rc = epoll_add(vs, vs->listen_fd, TAG_LISTEN, err);
	if (!rc)
		rc = epoll_add(vs, vs->wake_fd, TAG_WAKE, err);
	if (!rc)
		rc = epoll_add(vs, vs->timer_fd, TAG_TIMER, err);
	if (!rc)
		return 0;
fail:
	vsock_close(vs);
	return rc;
}

void vsock_close(struct vsock *vs)
{
	drop_all(vs);
	if (vs->listen_fd >= 0)
		close(vs->listen_fd);
	if (vs->bound && unlink(vs->path) < 0 && errno != ENOENT)
		yun_warn("vsock %s: removing the socket: %s", vs->path, strerror(errno));
	if (vs->timer_fd >= 0)
		close(vs->timer_fd);
	if (vs->wake_fd >= 0)
		close(vs->wake_fd);
	if (vs->epfd >= 0)
		close(vs->epfd);
	vs->listen_fd = vs->timer_fd = vs->wake_fd = vs->epfd = -1;
	vs->bound = false;
}

int vsock_watch(struct vsock *vs, struct iothread *io, iothread_fn fn, void *arg,
		struct yun_err *err)
{
	return iothread_watch(io, vs->epfd, fn, arg, err);
}

int vsock_event_fd(const struct vsock *vs)
{
	return vs->epfd;
}

/* ---- snapshot ------------------------------------------------------------- */

/* struct virtio_vsock_event (5.10.6.7): le32 id. */
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0

/* Event queue kicked: deliver TRANSPORT_RESET if a restore left one to send. */
static int evq_run(struct vsock *vs, struct vq *vq)
{
	uint32_t id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	int rc;

	if (!vs->reset_pending)
		return 0;
	rc = vq_pop(vq, &vs->req);
	if (rc <= 0)
		return rc; /* no buffer yet: the driver's next event-queue kick brings one */
	if (vs->req.nr_read || vs->req.write_len < sizeof(id))
		return -EINVAL;
	vq_req_write(&vs->req, &id, sizeof(id));
	vq_push(vq, vs->req.head, sizeof(id));
	vs->reset_pending = false;
	return 0;
}

int vsock_unhold(void *dev, unsigned q, struct vq *vq)
{
	struct vsock *vs = dev;

	(void)q;
	if (vq && vs->rx_held)
		vq_unpop(vq, 1);
	vs->rx_held = false;
	return 0;
}

#define VSOCK_NR_STATS 6
_Static_assert(sizeof(struct vsock_stats) == VSOCK_NR_STATS * sizeof(uint64_t),
	       "struct vsock_stats is VSOCK_NR_STATS counters");

void vsock_save(const struct vsock *vs, struct snap_writer *w)
{
	uint64_t c[VSOCK_NR_STATS];

	memcpy(c, &vs->stats, sizeof(c));
	snap_put_u32(w, vs->next_port);
	snap_put_u64s(w, c, VSOCK_NR_STATS);
}

int vsock_load(struct vsock *vs, struct snap_reader *r)
{
	uint32_t next_port = snap_get_u32(r);
	uint64_t c[VSOCK_NR_STATS];

	snap_get_u64s(r, c, VSOCK_NR_STATS);
	if (r->failed)
		return -EINVAL;
	if (next_port < VSOCK_HOST_PORT_BASE)
		return snap_reader_fail(r, "next host port %u is below %u", next_port,
					VSOCK_HOST_PORT_BASE);
	drop_all(vs); /* nothing of the saved connections survives */
	vs->next_port = next_port;
	memcpy(&vs->stats, c, sizeof(c));
	/* A driver that was up learns its connections are gone (and re-reads the CID). */
	vs->reset_pending = vs->live;
	return 0;
}
