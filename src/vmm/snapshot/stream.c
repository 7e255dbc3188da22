/* stream.c - see stream.h. */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SECTION_HDR 16 /* tag 4 + version 4 + length 8 */
#define FILE_HDR    24 /* magic 8 + version 4 + crc 4 + length 8 */

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->section = SIZE_MAX;
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	snap_writer_init(w);
}

static uint8_t *snap_grow(struct snap_writer *w, size_t n)
{
	if (w->oom)
		return NULL;
	if (n > SIZE_MAX / 2 - w->len) {
		w->oom = true;
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *b;

		while (cap < w->len + n)
			cap *= 2;
		b = realloc(w->buf, cap);
		if (!b) {
			w->oom = true;
			return NULL;
		}
		w->buf = b;
		w->cap = cap;
	}
	w->len += n;
	return w->buf + w->len - n;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_int(struct snap_writer *w, uint64_t v, unsigned n)
{
	uint8_t *p = snap_grow(w, n);

	if (p)
		put_le(p, v, n);
}

static void tag_bytes(const char *tag, uint8_t out[4])
{
	size_t n = strnlen(tag, 4);

	memset(out, ' ', 4);
	memcpy(out, tag, n);
}

void snap_begin(struct snap_writer *w, const char *tag, uint32_t version)
{
	uint8_t *p;

	if (w->section != SIZE_MAX)
		snap_end(w);
	w->section = w->len;
	p = snap_grow(w, SECTION_HDR);
	if (!p)
		return;
	tag_bytes(tag, p);
	put_le(p + 4, version, 4);
	put_le(p + 8, 0, 8);
}

void snap_end(struct snap_writer *w)
{
	if (w->section == SIZE_MAX)
		return;
	if (!w->oom)
		put_le(w->buf + w->section + 8, w->len - w->section - SECTION_HDR, 8);
	w->section = SIZE_MAX;
}

void snap_put_u8(struct snap_writer *w, uint8_t v) { put_int(w, v, 1); }
void snap_put_u16(struct snap_writer *w, uint16_t v) { put_int(w, v, 2); }
void snap_put_u32(struct snap_writer *w, uint32_t v) { put_int(w, v, 4); }
void snap_put_u64(struct snap_writer *w, uint64_t v) { put_int(w, v, 8); }
void snap_put_bool(struct snap_writer *w, bool v) { put_int(w, v ? 1 : 0, 1); }

void snap_put_bytes(struct snap_writer *w, const void *p, size_t n)
{
	uint8_t *d = snap_grow(w, n);

	if (d && n)
		memcpy(d, p, n);
}

void snap_put_str(struct snap_writer *w, const char *s)
{
	if (!s) {
		snap_put_u32(w, UINT32_MAX);
		return;
	}
	snap_put_u32(w, (uint32_t)strlen(s));
	snap_put_bytes(w, s, strlen(s));
}

void snap_put_u64s(struct snap_writer *w, const uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snap_put_u64(w, v[i]);
}

int snap_writer_error(const struct snap_writer *w, struct yun_err *err)
{
	if (w->oom)
		return yun_err_set(err, ENOMEM, "saving VM state: out of memory");
	return 0;
}

void snap_reader_init(struct snap_reader *r, const void *p, size_t len, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	r->len = len;
	snprintf(r->name, sizeof(r->name), "%s", name);
}

int snap_reader_fail(struct snap_reader *r, const char *fmt, ...)
{
	char msg[YUN_ERR_MSG_MAX];
	va_list ap;

	if (r->failed)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->failed = true;
	yun_err_set(&r->err, EINVAL, "%s: %s", r->name, msg);
	return -EINVAL;
}

/* The next n bytes, or NULL (and the reader failed) when there are fewer. */
static const uint8_t *take(struct snap_reader *r, size_t n, const char *what)
{
	const uint8_t *p;

	if (r->failed)
		return NULL;
	if (n > r->len - r->off) {
		snap_reader_fail(r, "truncated at byte %zu: %s needs %zu bytes, %zu left", r->off,
				 what, n, r->len - r->off);
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static uint64_t get_int(struct snap_reader *r, unsigned n, const char *what)
{
	const uint8_t *p = take(r, n, what);

	return p ? get_le(p, n) : 0;
}

uint8_t snap_get_u8(struct snap_reader *r) { return (uint8_t)get_int(r, 1, "a u8"); }
uint16_t snap_get_u16(struct snap_reader *r) { return (uint16_t)get_int(r, 2, "a u16"); }
uint32_t snap_get_u32(struct snap_reader *r) { return (uint32_t)get_int(r, 4, "a u32"); }
uint64_t snap_get_u64(struct snap_reader *r) { return get_int(r, 8, "a u64"); }

bool snap_get_bool(struct snap_reader *r)
{
	size_t at = r->off;
	uint8_t v = snap_get_u8(r);

	if (v > 1) {
		snap_reader_fail(r, "byte %zu: boolean is %u, not 0 or 1", at, v);
		return false;
	}
	return v;
}

void snap_get_bytes(struct snap_reader *r, void *p, size_t n)
{
	const uint8_t *s = take(r, n, "a byte string");

	if (s)
		memcpy(p, s, n);
	else if (n)
		memset(p, 0, n);
}

void snap_get_u64s(struct snap_reader *r, uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = snap_get_u64(r);
}

void snap_get_str(struct snap_reader *r, char **out, size_t max)
{
	size_t at = r->off;
	uint32_t n = snap_get_u32(r);
	const uint8_t *s;

	*out = NULL;
	if (r->failed || n == UINT32_MAX)
		return;
	if (n > max) {
		snap_reader_fail(r, "byte %zu: string of %u bytes, at most %zu allowed", at, n, max);
		return;
	}
	s = take(r, n, "a string");
	if (!s)
		return;
	if (memchr(s, '\0', n)) {
		snap_reader_fail(r, "byte %zu: string holds a NUL byte", at);
		return;
	}
	*out = strndup((const char *)s, n);
	if (!*out)
		snap_reader_fail(r, "out of memory");
}

void snap_peek_tag(const struct snap_reader *r, char tag[5])
{
	tag[0] = '\0';
	if (r->failed || r->len - r->off < SECTION_HDR)
		return;
	memcpy(tag, r->p + r->off, 4);
	tag[4] = '\0';
}

int snap_section(struct snap_reader *r, const char *tag, uint32_t max_version,
		 uint32_t *version, struct snap_reader *sub)
{
	uint8_t want[4];
	const uint8_t *h;
	uint64_t len;
	uint32_t v;
	char name[8];

	tag_bytes(tag, want);
	snprintf(name, sizeof(name), "%.4s", (const char *)want);
	snap_reader_init(sub, NULL, 0, "");
	h = take(r, SECTION_HDR, "a section header");
	if (!h)
		goto fail;
	if (memcmp(h, want, 4) != 0) {
		char got[5];

		for (int i = 0; i < 4; i++)
			got[i] = (h[i] >= 0x20 && h[i] < 0x7f) ? (char)h[i] : '?';
		got[4] = '\0';
		snap_reader_fail(r, "expected section %s, found \"%s\"", name, got);
		goto fail;
	}
	v = (uint32_t)get_le(h + 4, 4);
	len = get_le(h + 8, 8);
	if (v == 0 || v > max_version) {
		snap_reader_fail(r, "section %s has version %u; this yun-vmm reads 1 to %u", name,
				 v, max_version);
		goto fail;
	}
	if (len > r->len - r->off) {
		snap_reader_fail(r, "section %s claims %llu bytes, only %zu left", name,
				 (unsigned long long)len, r->len - r->off);
		goto fail;
	}
	snap_reader_init(sub, r->p + r->off, (size_t)len, "");
	snprintf(sub->name, sizeof(sub->name), "section %s", name);
	r->off += (size_t)len;
	if (version)
		*version = v;
	return 0;
fail:
	sub->failed = true;
	sub->err = r->err;
	return -EINVAL;
}

int snap_reader_done(struct snap_reader *r, struct yun_err *err)
{
	if (!r->failed && r->off != r->len)
		snap_reader_fail(r, "%zu unread bytes at the end", r->len - r->off);
	if (r->failed) {
		if (err)
			*err = r->err;
		return -EINVAL;
	}
	return 0;
}

uint32_t snap_crc32(const void *p, size_t n)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	const Bytef *b = p;

	while (n) {
		uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;

		crc = crc32(crc, b, chunk);
		b += chunk;
		n -= chunk;
	}
	return (uint32_t)crc;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int snap_file_write(const char *path, const void *payload, size_t len, struct yun_err *err)
{
	uint8_t hdr[FILE_HDR];
	char tmp[4096];
	int fd, rc;

	if (len > SNAP_MAX_PAYLOAD)
		return yun_err_set(err, EFBIG, "%s: state of %zu bytes is over the %u limit", path,
				   len, SNAP_MAX_PAYLOAD);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return yun_err_set(err, ENAMETOOLONG, "%s: path too long", path);
	memcpy(hdr, SNAP_FILE_MAGIC, 8);
	put_le(hdr + 8, SNAP_FILE_VERSION, 4);
	put_le(hdr + 12, snap_crc32(payload, len), 4);
	put_le(hdr + 16, len, 8);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return yun_err_errno(err, errno, "%s", tmp);
	rc = write_all(fd, hdr, sizeof(hdr));
	if (!rc)
		rc = write_all(fd, payload, len);
	rc = snap_file_commit(fd, tmp, path, rc);
	if (rc)
		return yun_err_errno(err, -rc, "%s: writing state", path);
	return 0;
}

int snap_file_commit(int fd, const char *tmp, const char *path, int rc)
{
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

int snap_file_read(const char *path, uint8_t **payload, size_t *len, struct yun_err *err)
{
	uint8_t hdr[FILE_HDR], *buf = NULL;
	struct stat st;
	uint64_t n;
	uint32_t version, crc;
	ssize_t got;
	int fd, rc = 0;

	*payload = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return yun_err_errno(err, errno, "state file %s", path);
	if (fstat(fd, &st) < 0) {
		rc = yun_err_errno(err, errno, "state file %s", path);
		goto out;
	}
	got = pread(fd, hdr, sizeof(hdr), 0);
	if (got != (ssize_t)sizeof(hdr) || memcmp(hdr, SNAP_FILE_MAGIC, 8) != 0) {
		rc = yun_err_set(err, EINVAL, "state file %s: not a yun-vmm state file (%s)", path,
				 got == (ssize_t)sizeof(hdr) ? "bad magic" : "shorter than its header");
		goto out;
	}
	version = (uint32_t)get_le(hdr + 8, 4);
	crc = (uint32_t)get_le(hdr + 12, 4);
	n = get_le(hdr + 16, 8);
	if (version != SNAP_FILE_VERSION) {
		rc = yun_err_set(err, EINVAL,
				 "state file %s: format version %u, this yun-vmm reads version %u",
				 path, version, SNAP_FILE_VERSION);
		goto out;
	}
	if (n > SNAP_MAX_PAYLOAD || (uint64_t)st.st_size != sizeof(hdr) + n) {
		rc = yun_err_set(err, EINVAL,
				 "state file %s: header says %llu bytes of state, the file has %lld "
				 "(truncated or padded)",
				 path, (unsigned long long)n, (long long)st.st_size - (long long)sizeof(hdr));
		goto out;
	}
	buf = malloc(n ? n : 1);
	if (!buf) {
		rc = yun_err_set(err, ENOMEM, "state file %s: out of memory", path);
		goto out;
	}
	for (uint64_t off = 0; off < n;) {
		got = pread(fd, buf + off, n - off, sizeof(hdr) + off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = yun_err_errno(err, got < 0 ? errno : EIO, "state file %s: read", path);
			goto out;
		}
		off += (uint64_t)got;
	}
	if (snap_crc32(buf, n) != crc) {
		rc = yun_err_set(err, EINVAL, "state file %s: checksum mismatch (corrupted)", path);
		goto out;
	}
	*payload = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}
