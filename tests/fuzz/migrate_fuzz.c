/*
 * migrate_fuzz.c - libFuzzer target for the live-migration destination:
 * after a (fixed-nonce) authenticated session is set up, the bytes a source
 * sends are arbitrary. Whatever arrives, the destination must not crash,
 * write outside the RAM prepare() gave it, or start the guest without a
 * complete stream, READY and GO.
 *
 * Input, first byte even ("framed"): records of u8 type, u16 length (LE),
 * payload; each becomes a frame with a valid MAC (sequence numbers in
 * order), so the fuzzer reaches the message handlers (SETUP layout checks,
 * PAGES descriptors, STATE bounds, COMMIT accounting, the handover).
 * First byte odd ("raw"): the rest goes to the socket as it is, exercising
 * the frame parser and MAC check.
 *
 * Built with -DFUZZ_WRITE_SEEDS this file is instead a program writing a
 * seed corpus (a whole valid migration of a 64 KiB guest) into the
 * directory it is given.
 *
 * FUZZ_SOURCES: src/vmm/migrate/wire.c src/vmm/migrate/engine.c
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c src/lib/err.c
 * FUZZ_LIBS: -lcrypto -lz
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/migrate/engine.h"
#include "vmm/migrate/wire.h"

#define TOKEN     "fuzz-token-0123456789abcdef"
#define MAX_RAM   (256u << 10)
#define MAX_INPUT (96u << 10) /* fits a socketpair's buffer: the writer never blocks */

#define INVARIANT(cond)                                                               \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "migrate_fuzz: invariant broken: %s\n", #cond); \
			abort();                                                      \
		}                                                                     \
	} while (0)

struct fuzz_vm {
	uint8_t *ram[MIGRATE_MAX_REGIONS];
	int nr;
	bool loaded, started, aborted;
};

static int fz_prepare(void *ctx, struct migrate_region *region, int nr, const uint8_t *info,
		      size_t info_len, struct yun_err *err)
{
	struct fuzz_vm *v = ctx;
	uint64_t total = 0;

	(void)info;
	(void)info_len;
	for (int i = 0; i < nr; i++) {
		total += region[i].size;
		if (region[i].size > MAX_RAM || total > MAX_RAM)
			return yun_err_set(err, EINVAL, "fuzz: more than %u bytes of RAM", MAX_RAM);
	}
	for (int i = 0; i < nr; i++) {
		/* Exactly the size, so ASan catches a write one byte past it. */
		v->ram[i] = malloc(region[i].size);
		if (!v->ram[i])
			return yun_err_set(err, ENOMEM, "fuzz: RAM");
		region[i].host = v->ram[i];
		v->nr = i + 1;
	}
	return 0;
}

static int fz_load(void *ctx, const uint8_t *state, size_t len, struct yun_err *err)
{
	struct fuzz_vm *v = ctx;
	struct snap_reader r, sec;
	uint32_t version;

	snap_reader_init(&r, state, len, "fuzz state");
	if (snap_section(&r, "FAKE", 1, &version, &sec) < 0) {
		*err = r.err;
		return -EINVAL;
	}
	snap_get_u64(&sec);
	v->loaded = true;
	return snap_reader_done(&sec, err);
}

static int fz_start(void *ctx, struct yun_err *err)
{
	struct fuzz_vm *v = ctx;

	(void)err;
	INVARIANT(v->loaded && !v->aborted && !v->started);
	v->started = true;
	return 0;
}

static void fz_abort(void *ctx)
{
	struct fuzz_vm *v = ctx;

	INVARIANT(!v->started && !v->aborted);
	v->aborted = true;
}

static const struct migrate_dest_ops fz_ops = {
	.prepare = fz_prepare, .load_state = fz_load, .start = fz_start, .abort = fz_abort,
};

/* Turn the framed input into authenticated frames. Returns bytes written to out. */
static size_t frame_records(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;
	uint64_t seq = 0;

	while (n >= 3) {
		uint16_t type = in[0];
		size_t len = (size_t)(in[1] | in[2] << 8);

		in += 3;
		n -= 3;
		if (len > n)
			len = n;
		if (o + WIRE_HDR_LEN + len + WIRE_MAC_LEN > cap)
			break;
		o += wire_forge(WIRE_SOURCE, TOKEN, seq++, type, 0, in, len, out + o);
		in += len;
		n -= len;
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[MAX_INPUT + 4096];
	struct migrate_params p = { .token = TOKEN, .timeout_ms = 1000 };
	struct fuzz_vm v = { 0 };
	struct migrate_dest_vm vm = { .ops = &fz_ops, .ctx = &v };
	struct migrate_stats st;
	struct yun_err err;
	struct wire w;
	size_t n;
	int sv[2], rc;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	if (data[0] & 1) {
		n = size - 1;
		memcpy(buf, data + 1, n);
	} else {
		n = frame_records(data + 1, size - 1, buf, sizeof(buf));
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	{
		int sz = 1 << 20;

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	if (n && write(sv[0], buf, n) != (ssize_t)n) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[0], SHUT_WR); /* the destination sees EOF, never waits */
	if (wire_session_fixed(&w, sv[1], WIRE_DEST, TOKEN, &err) == 0) {
		rc = migrate_dest_session(&w, &vm, &p, &st, &err);
		INVARIANT(rc == 0 ? v.started && !v.aborted : v.aborted && !v.started);
		INVARIANT(st.pages <= 1u << 20);
	}
	wire_close(&w);
	close(sv[0]);
	for (int i = 0; i < v.nr; i++)
		free(v.ram[i]);
	return 0;
}

#ifdef FUZZ_WRITE_SEEDS
static uint8_t seed[MAX_INPUT];
static size_t seed_len;

static void rec(uint16_t type, const void *payload, size_t len)
{
	seed[seed_len++] = (uint8_t)type;
	seed[seed_len++] = (uint8_t)len;
	seed[seed_len++] = (uint8_t)(len >> 8);
	memcpy(seed + seed_len, payload, len);
	seed_len += len;
}

static void le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void write_seed(const char *dir, const char *name)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, seed, seed_len) != (ssize_t)seed_len)
		exit(1);
	close(fd);
}

/* A whole migration of a 64 KiB guest: SETUP, PAGES (zero and data), STATE, COMMIT, GO. */
static void whole(bool with_data)
{
	uint8_t b[8 + 16 * (8 + 4096)], st[64];
	size_t o = 8;
	struct snap_writer w;

	seed_len = 0;
	seed[seed_len++] = 0; /* framed */
	memset(b, 0, sizeof(b));
	le(b, 1, 4);
	le(b + 4, MIGRATE_PAGE_SIZE, 4);
	le(b + 8, 1, 4);
	le(b + 12, 0, 8);
	le(b + 20, 16 * 4096, 8);
	le(b + 28, 0, 4);
	rec(MIGRATE_MSG_SETUP, b, 32);
	memset(b, 0, sizeof(b));
	le(b, 16, 4);
	for (int i = 0; i < 16; i++) {
		bool data = with_data && i % 5 == 0;

		le(b + o, (uint64_t)i * 4096 | (data ? 0 : MIGRATE_PAGE_ZERO), 8);
		o += 8;
		if (data) {
			memset(b + o, 0xa0 + i, 4096);
			o += 4096;
		}
	}
	rec(MIGRATE_MSG_PAGES, b, o);
	snap_writer_init(&w);
	snap_begin(&w, "FAKE", 1);
	snap_put_u64(&w, 42);
	snap_end(&w);
	rec(MIGRATE_MSG_STATE, w.buf, w.len);
	le(st, w.len, 8);
	le(st + 8, 16, 8);
	le(st + 16, 1, 4);
	rec(MIGRATE_MSG_COMMIT, st, 20);
	rec(MIGRATE_MSG_GO, NULL, 0);
	snap_writer_free(&w);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	whole(false);
	write_seed(argv[1], "zero-pages");
	whole(true);
	write_seed(argv[1], "data-pages");
	return 0;
}
#endif
