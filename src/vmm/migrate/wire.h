/*
 * wire.h - the live-migration stream: an authenticated, framed channel over
 * one connected TCP socket between a source and a destination yun-vmm.
 *
 * Both ends are handed the same per-migration token (a secret string, e.g.
 * 32 random bytes in hex, at least WIRE_TOKEN_MIN characters) by whoever
 * orchestrates the migration. Nothing crosses the connection before both
 * ends have proved they know it:
 *
 *   source -> dest   HELLO  "YUNMIG01" 'S' nonce_s[32]
 *   dest -> source   HELLO  "YUNMIG01" 'D' nonce_d[32]
 *   source -> dest   PROOF  HMAC-SHA256(token, "yun-migrate proof" nonce_s nonce_d 'S')
 *   dest -> source   PROOF  HMAC-SHA256(token, "yun-migrate proof" nonce_s nonce_d 'D')
 *
 * The destination checks the source's proof (CRYPTO_memcmp) before sending
 * its own, so a stranger learns nothing but a random nonce. Fresh nonces on
 * both sides make an old proof useless, and the role byte stops a proof
 * being reflected back. Each direction then has its own session key,
 * HMAC-SHA256(token, "yun-migrate key S>D" | "yun-migrate key D>S",
 * nonce_s, nonce_d).
 *
 * After the handshake everything is a frame:
 *
 *   type     u16 (little endian; the engine's message types)
 *   flags    u16, must be 0
 *   length   u32, bytes of payload, at most WIRE_MAX_PAYLOAD
 *   payload
 *   mac      HMAC-SHA256(direction key, seq u64 | type | flags | length | payload)
 *
 * seq counts the frames sent in that direction from 0 and is never sent: a
 * frame that is altered, injected, replayed, dropped or moved fails its MAC
 * and the stream is dead from then on (there is no resynchronisation).
 * Frames are built in memory and sent whole, so the MAC covers exactly the
 * bytes sent even while the guest keeps writing the pages they came from.
 *
 * Every wait (connect, read, write) is bounded by a poll timeout. Errors
 * name the peer and the frame: "migration stream from 10.0.0.2:4711:
 * frame 17 fails authentication".
 */
#ifndef YUN_VMM_MIGRATE_WIRE_H
#define YUN_VMM_MIGRATE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"

#define WIRE_TOKEN_MIN    16            /* characters */
#define WIRE_TOKEN_MAX    1024
#define WIRE_NONCE_LEN    32
#define WIRE_MAC_LEN      32
#define WIRE_HDR_LEN      8
#define WIRE_MAX_PAYLOAD  (2u << 20)    /* a page batch or a state chunk fits */
#define WIRE_TIMEOUT_MS   10000         /* default wait for any read or write */
#define WIRE_HANDSHAKE_MS 5000          /* longest a connection may take to authenticate */

enum wire_role { WIRE_SOURCE = 'S', WIRE_DEST = 'D' };

struct wire_mac;   /* OpenSSL's keyed HMAC context, private to wire.c */

struct wire {
	int fd;                  /* owned: closed by wire_close */
	enum wire_role role;
	char peer[80];           /* "10.0.0.2:4711", "[fd00::2]:4711", "socketpair" */
	unsigned timeout_ms;     /* every poll for a read or write */
	struct wire_mac *tx, *rx;
	uint64_t seq_tx, seq_rx; /* frames sent / received so far */
	uint64_t bytes_tx, bytes_rx;
	uint8_t *rx_buf;         /* payload of the last frame received */
	size_t rx_cap;
	bool rx_dead;            /* a receive failed: nothing more is accepted */
	bool tx_dead;            /* a send failed: nothing more is sent */
};

/*
 * Address "host:port" or "[v6addr]:port" to a socket address; the name of
 * the port or host may be numeric or resolvable. -EINVAL with err naming it.
 */
struct sockaddr_storage;
int wire_parse_addr(const char *addr, struct sockaddr_storage *ss, unsigned *sslen,
		    struct yun_err *err);

/* A listening TCP socket bound to addr (SO_REUSEADDR, close-on-exec). Returns fd. */
int wire_listen(const char *addr, struct yun_err *err);

/* Connect to addr within timeout_ms. Returns the connected fd. */
int wire_connect(const char *addr, unsigned timeout_ms, struct yun_err *err);

/*
 * Run the handshake on connected fd as `role` and, on success, fill w (which
 * then owns fd). On failure fd is closed and err says why, naming the peer:
 * wrong magic, timeout, "token proof does not match". timeout_ms bounds
 * every wait of the handshake and then of the session (0: WIRE_TIMEOUT_MS).
 */
int wire_handshake(struct wire *w, int fd, enum wire_role role, const char *token,
		   unsigned timeout_ms, struct yun_err *err);

/*
 * Destination side of the listener: accept connections on lfd until one
 * passes the handshake (filling w) or timeout_ms passes (-ETIMEDOUT).
 * A connection that fails the handshake is closed and the wait goes on;
 * *rejected counts them and last_reject (optional) keeps the latest reason.
 */
int wire_accept(int lfd, const char *token, unsigned timeout_ms, struct wire *w,
		unsigned *rejected, struct yun_err *last_reject, struct yun_err *err);

/*
 * Send one frame. 0 only when the whole frame was handed to the kernel; on
 * error no complete frame can reach the peer (the MAC comes last), which the
 * engine's handover relies on.
 */
int wire_send(struct wire *w, uint16_t type, const void *payload, size_t len,
	      struct yun_err *err);

/*
 * Receive one frame and check its MAC: *type, *payload (valid until the next
 * call or wire_close) and *len. Fails on timeout, EOF, a length above
 * WIRE_MAX_PAYLOAD, nonzero flags or a bad MAC; after any failure nothing
 * more is received. (Sending and receiving fail independently, so a peer's
 * last ERROR frame can still be read after a send failed.)
 */
int wire_recv(struct wire *w, uint16_t *type, const uint8_t **payload, size_t *len,
	      struct yun_err *err);

/* 1 when bytes are waiting to be read (or the peer closed), 0 if not, negative on error. */
int wire_readable(struct wire *w);

void wire_close(struct wire *w);

/*
 * For tests and the fuzz target only: a session on fd with fixed nonces
 * (no handshake), so a harness can forge valid frames with wire_forge.
 */
int wire_session_fixed(struct wire *w, int fd, enum wire_role role, const char *token,
		       struct yun_err *err);

/*
 * Build the bytes of frame number seq as `role` would send it with the
 * fixed-nonce session of token into out (at least WIRE_HDR_LEN + len +
 * WIRE_MAC_LEN bytes). Returns the frame's length, or 0 on error.
 */
size_t wire_forge(enum wire_role role, const char *token, uint64_t seq, uint16_t type,
		  uint16_t flags, const void *payload, size_t len, uint8_t *out);

#endif
