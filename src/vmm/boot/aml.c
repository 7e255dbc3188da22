/* aml.c - a small AML encoder; see aml.h. Grammar references: ACPI 6.4, 20.2. */
#include "aml.h"

#include <errno.h>
#include <string.h>

#define AML_ZERO_OP           0x00
#define AML_ONE_OP            0x01
#define AML_NAME_OP           0x08
#define AML_BYTE_PREFIX       0x0A
#define AML_WORD_PREFIX       0x0B
#define AML_DWORD_PREFIX      0x0C
#define AML_QWORD_PREFIX      0x0E
#define AML_SCOPE_OP          0x10
#define AML_BUFFER_OP         0x11
#define AML_PACKAGE_OP        0x12
#define AML_DUAL_NAME_PREFIX  0x2E
#define AML_MULTI_NAME_PREFIX 0x2F
#define AML_EXT_OP_PREFIX     0x5B
#define AML_DEVICE_OP         0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR         '\\'

#define AML_MAX_SEGS          16   /* NameSegs in one path: plenty for a DSDT */
#define AML_PKGLEN_MAX        0x0FFFFFFF /* 28 bits */

/* Resource descriptors (ACPI 6.4, 6.4.2 and 6.4.3). */
#define RES_IO                0x47 /* small, type 0x08, 7 bytes */
#define RES_END_TAG           0x79 /* small, type 0x0F, 1 byte */
#define RES_DWORD_ADDR        0x87 /* large, type 0x07 */
#define RES_WORD_ADDR         0x88 /* large, type 0x08 */
#define RES_QWORD_ADDR        0x8A /* large, type 0x0A */
#define RES_IO_DECODE16       0x01
#define RES_SPACE_MEM         0
#define RES_SPACE_IO          1
#define RES_SPACE_BUS         2
#define RES_FLAGS_WINDOW      0x0C /* producer, positive decode, _MIF, _MAF */
#define RES_IO_ENTIRE_RANGE   0x03 /* _RNG */
#define RES_MEM_RW            0x01 /* _RW; _MEM 0: non-cacheable */

static void fail(struct aml *a, int error)
{
	if (!a->error)
		a->error = error;
}

static void put(struct aml *a, const void *p, size_t n)
{
	if (a->error || n == 0)
		return;
	if (n > a->cap - a->len) {
		fail(a, -ENOSPC);
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void put8(struct aml *a, uint8_t v)
{
	put(a, &v, 1);
}

/* v in little-endian order, n bytes. */
static void put_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(a, b, n);
}

/* An integer in its shortest encoding (also BufferSize, which is no element). */
static void put_int(struct aml *a, uint64_t v)
{
	if (v == 0) {
		put8(a, AML_ZERO_OP);
	} else if (v == 1) {
		put8(a, AML_ONE_OP);
	} else if (v <= 0xFF) {
		put8(a, AML_BYTE_PREFIX);
		put_le(a, v, 1);
	} else if (v <= 0xFFFF) {
		put8(a, AML_WORD_PREFIX);
		put_le(a, v, 2);
	} else if (v <= 0xFFFFFFFF) {
		put8(a, AML_DWORD_PREFIX);
		put_le(a, v, 4);
	} else {
		put8(a, AML_QWORD_PREFIX);
		put_le(a, v, 8);
	}
}

static bool seg_char_ok(char c, unsigned pos)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (pos > 0 && c >= '0' && c <= '9');
}

static void put_namestring(struct aml *a, const char *path)
{
	char segs[AML_MAX_SEGS][4];
	const char *p = path;
	unsigned n = 0;
	bool root = false;

	if (!p) {
		fail(a, -EINVAL);
		return;
	}
	if (*p == AML_ROOT_CHAR) {
		root = true;
		p++;
	}
	for (;;) {
		unsigned i = 0;

		if (n == AML_MAX_SEGS) {
			fail(a, -EINVAL);
			return;
		}
		memset(segs[n], '_', 4);
		for (; *p && *p != '.'; p++, i++) {
			if (i == 4 || !seg_char_ok(*p, i)) {
				fail(a, -EINVAL);
				return;
			}
			segs[n][i] = *p;
		}
		if (i == 0) { /* empty path, or an empty segment */
			fail(a, -EINVAL);
			return;
		}
		n++;
		if (!*p)
			break;
		p++;
	}
	if (root)
		put8(a, AML_ROOT_CHAR);
	if (n == 2) {
		put8(a, AML_DUAL_NAME_PREFIX);
	} else if (n > 2) {
		put8(a, AML_MULTI_NAME_PREFIX);
		put8(a, (uint8_t)n);
	}
	put(a, segs, 4 * n);
}

static struct aml_frame *innermost(struct aml *a)
{
	return a->depth ? &a->frame[a->depth - 1] : NULL;
}

/* A data object is about to be written: is this a place for one? */
static bool value_ok(struct aml *a)
{
	struct aml_frame *f = innermost(a);

	if (a->error)
		return false;
	if (a->need_value) {
		a->need_value = false;
		return true;
	}
	if (f && f->is_package) {
		f->seen++;
		return true;
	}
	fail(a, -EINVAL);
	return false;
}

/* A named object or a scope is about to be written: not inside a package, no Name waiting. */
static bool term_ok(struct aml *a)
{
	struct aml_frame *f = innermost(a);

	if (a->error)
		return false;
	if (a->need_value || (f && f->is_package)) {
		fail(a, -EINVAL);
		return false;
	}
	return true;
}

/* Open a PkgLength'd body right here (after its opcode). */
static void push(struct aml *a, bool is_package, unsigned expected)
{
	if (a->error)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		fail(a, -EINVAL);
		return;
	}
	a->frame[a->depth++] = (struct aml_frame){
		.pkg_at = a->len, .expected = expected, .is_package = is_package
	};
}

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = cap;
}

int aml_finish(const struct aml *a, size_t *len)
{
	if (a->error)
		return a->error;
	if (a->depth || a->need_value)
		return -EINVAL;
	*len = a->len;
	return 0;
}

void aml_name(struct aml *a, const char *path)
{
	if (!term_ok(a))
		return;
	put8(a, AML_NAME_OP);
	put_namestring(a, path);
	a->need_value = true;
}

void aml_int(struct aml *a, uint64_t v)
{
	if (value_ok(a))
		put_int(a, v);
}

uint32_t aml_eisaid_value(const char *id)
{
	uint32_t v[7];

	if (!id || strlen(id) != 7)
		return 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v[i] = (uint32_t)(id[i] - 0x40); /* 5 bits: 'A' is 1 */
	}
	for (int i = 3; i < 7; i++) {
		if (id[i] >= '0' && id[i] <= '9')
			v[i] = (uint32_t)(id[i] - '0');
		else if (id[i] >= 'A' && id[i] <= 'F')
			v[i] = (uint32_t)(id[i] - 'A' + 10);
		else
			return 0;
	}
	/* Bytes in memory order: the three letters in 15 bits (big-endian), then the digits. */
	return ((v[0] << 2) | (v[1] >> 3)) | (((v[1] & 7) << 5) | v[2]) << 8 |
	       ((v[3] << 4) | v[4]) << 16 | ((v[5] << 4) | v[6]) << 24;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = aml_eisaid_value(id);

	if (!v) {
		fail(a, -EINVAL);
		return;
	}
	if (!value_ok(a))
		return;
	put8(a, AML_DWORD_PREFIX); /* always a DWord, as iasl encodes EisaId () */
	put_le(a, v, 4);
}

/* BufferOp PkgLength BufferSize ByteList, from two pieces. */
static void put_buffer(struct aml *a, const void *d1, size_t n1, const void *d2, size_t n2)
{
	if (!value_ok(a))
		return;
	put8(a, AML_BUFFER_OP);
	push(a, false, 0);
	put_int(a, n1 + n2);
	put(a, d1, n1);
	put(a, d2, n2);
	aml_end(a);
}

void aml_buffer(struct aml *a, const void *data, size_t len)
{
	put_buffer(a, data, len, NULL, 0);
}

void aml_resource_template(struct aml *a, const struct aml_res *res)
{
	static const uint8_t end_tag[] = { RES_END_TAG, 0 };

	if (res->error) {
		fail(a, res->error);
		return;
	}
	put_buffer(a, res->buf, res->len, end_tag, sizeof(end_tag));
}

void aml_scope_begin(struct aml *a, const char *path)
{
	if (!term_ok(a))
		return;
	put8(a, AML_SCOPE_OP);
	push(a, false, 0);
	put_namestring(a, path);
}

void aml_device_begin(struct aml *a, const char *path)
{
	if (!term_ok(a))
		return;
	put8(a, AML_EXT_OP_PREFIX);
	put8(a, AML_DEVICE_OP);
	push(a, false, 0);
	put_namestring(a, path);
}

void aml_package_begin(struct aml *a, unsigned nr_elements)
{
	if (nr_elements > 0xFF) {
		fail(a, -EINVAL);
		return;
	}
	if (!value_ok(a))
		return;
	put8(a, AML_PACKAGE_OP);
	push(a, true, nr_elements);
	put8(a, (uint8_t)nr_elements);
}

/*
 * PkgLength (20.2.4): counts itself and the body. One byte holds 0..63;
 * otherwise bits 7:6 of the lead byte say how many bytes follow (1..3),
 * its bits 3:0 are the low nibble and each following byte the next 8 bits.
 */
void aml_end(struct aml *a)
{
	struct aml_frame *f = innermost(a);
	size_t body, n, v;

	if (a->error)
		return;
	if (!f || a->need_value || (f->is_package && f->seen != f->expected)) {
		fail(a, -EINVAL);
		return;
	}
	body = a->len - f->pkg_at;
	if (body + 1 <= 0x3F)
		n = 1;
	else if (body + 2 <= 0xFFF)
		n = 2;
	else if (body + 3 <= 0xFFFFF)
		n = 3;
	else if (body + 4 <= AML_PKGLEN_MAX)
		n = 4;
	else {
		fail(a, -EINVAL);
		return;
	}
	if (n > a->cap - a->len) {
		fail(a, -ENOSPC);
		return;
	}
	memmove(a->buf + f->pkg_at + n, a->buf + f->pkg_at, body);
	v = body + n;
	if (n == 1) {
		a->buf[f->pkg_at] = (uint8_t)v;
	} else {
		a->buf[f->pkg_at] = (uint8_t)(((n - 1) << 6) | (v & 0x0F));
		for (size_t i = 1; i < n; i++)
			a->buf[f->pkg_at + i] = (uint8_t)(v >> (4 + 8 * (i - 1)));
	}
	a->len += n;
	a->depth--;
}

void aml_name_int(struct aml *a, const char *path, uint64_t v)
{
	aml_name(a, path);
	aml_int(a, v);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name(a, path);
	aml_eisaid(a, id);
}

/* ---- resource templates ------------------------------------------------ */

void aml_res_init(struct aml_res *r)
{
	memset(r, 0, sizeof(*r));
}

static void res_put_le(struct aml_res *r, uint64_t v, unsigned n)
{
	if (r->error)
		return;
	/* Keep room for the end tag that aml_resource_template() appends. */
	if (n > AML_RES_MAX - 2 - r->len) {
		r->error = -ENOSPC;
		return;
	}
	for (unsigned i = 0; i < n; i++)
		r->buf[r->len++] = (uint8_t)(v >> (8 * i));
}

/*
 * An address space descriptor: tag, length, type, flags, then granularity,
 * minimum, maximum, translation offset and length, `size` bytes each.
 */
static void res_addr(struct aml_res *r, uint8_t tag, unsigned size, uint8_t space,
		     uint8_t type_flags, uint64_t min, uint64_t max)
{
	uint64_t limit = size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;

	if (r->error)
		return;
	/* The length (max - min + 1) must be representable too. */
	if (min > max || max > limit || max - min == limit) {
		r->error = -EINVAL;
		return;
	}
	res_put_le(r, tag, 1);
	res_put_le(r, 3 + 5 * size, 2);
	res_put_le(r, space, 1);
	res_put_le(r, RES_FLAGS_WINDOW, 1);
	res_put_le(r, type_flags, 1);
	res_put_le(r, 0, size);
	res_put_le(r, min, size);
	res_put_le(r, max, size);
	res_put_le(r, 0, size);
	res_put_le(r, max - min + 1, size);
}

void aml_res_bus_range(struct aml_res *r, uint16_t min, uint16_t max)
{
	res_addr(r, RES_WORD_ADDR, 2, RES_SPACE_BUS, 0, min, max);
}

void aml_res_io(struct aml_res *r, uint16_t base, uint8_t len)
{
	res_put_le(r, RES_IO, 1);
	res_put_le(r, RES_IO_DECODE16, 1);
	res_put_le(r, base, 2); /* minimum */
	res_put_le(r, base, 2); /* maximum: the range cannot move */
	res_put_le(r, 1, 1);    /* alignment */
	res_put_le(r, len, 1);
}

void aml_res_io_window(struct aml_res *r, uint16_t min, uint16_t max)
{
	res_addr(r, RES_WORD_ADDR, 2, RES_SPACE_IO, RES_IO_ENTIRE_RANGE, min, max);
}

void aml_res_mem32_window(struct aml_res *r, uint32_t min, uint32_t max)
{
	res_addr(r, RES_DWORD_ADDR, 4, RES_SPACE_MEM, RES_MEM_RW, min, max);
}

void aml_res_mem64_window(struct aml_res *r, uint64_t min, uint64_t max)
{
	res_addr(r, RES_QWORD_ADDR, 8, RES_SPACE_MEM, RES_MEM_RW, min, max);
}
