/*
 * acpi_test.c - the ACPI tables as a guest's ACPI code walks them, and the
 * AML encoder (aml.h) they are built with: exact bytes for small objects,
 * then the whole DSDT read back by a small AML walker (the subset aml.h
 * writes, nothing else accepted) and checked against the MP table's PCI
 * interrupt entries for the same devices. iasl's opinion is in
 * acpi_iasl_test.c.
 */
#include "vmm/boot/acpi.h"
#include "vmm/boot/aml.h"
#include "vmm/boot/mptable.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include <errno.h>

#include "check.h"

static uint8_t sum8(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* A table at gpa with signature sig: in the BIOS area, checksum right, OEM ids ours. */
static const uint8_t *get_table(const struct guest_mem *gm, uint64_t gpa, const char *sig)
{
	const uint8_t *t = gm_ptr(gm, gpa, 36);
	uint32_t len;

	CHECK(t != NULL);
	if (!t)
		return NULL;
	len = rd32(t + 4);
	CHECK(!memcmp(t, sig, 4));
	CHECK(gpa >= LAYOUT_BIOS_ROM && gpa + len <= LAYOUT_BIOS_ROM_END);
	CHECK(gm_ptr(gm, gpa, len) != NULL);
	CHECK_EQ(sum8(t, len), 0);
	CHECK(!memcmp(t + 10, "YUN   ", 6));
	CHECK(!memcmp(t + 16, "YUNVMM  ", 8));
	return t;
}

/* A generic address structure: system I/O, 8 bits, at port. */
static void check_gas_io8(const uint8_t *g, uint16_t port)
{
	CHECK_EQ(g[0], 1);
	CHECK_EQ(g[1], 8);
	CHECK_EQ(g[2], 0);
	CHECK_EQ(g[3], 1);
	CHECK_EQ(rd64(g + 4), port);
}

/* The FADT; returns the DSDT it points to (checked as a table), or NULL. */
static const uint8_t *check_fadt(const struct guest_mem *gm, const uint8_t *fadt)
{
	CHECK_EQ(rd32(fadt + 4), 276);
	CHECK_EQ(fadt[8], 6);                                    /* revision */
	CHECK(rd32(fadt + 112) & (1u << 20));                    /* HW_REDUCED_ACPI */
	CHECK(rd32(fadt + 112) & (1u << 10));                    /* RESET_REG_SUP */
	CHECK(rd16(fadt + 109) & (1u << 1));                     /* 8042 present */
	CHECK(rd16(fadt + 109) & (1u << 0));                     /* legacy devices */
	check_gas_io8(fadt + 116, PORT_PM_RESET);
	CHECK_EQ(fadt[128], PM_RESET_VALUE);
	check_gas_io8(fadt + 244, PORT_PM_SLEEP_CTL);
	check_gas_io8(fadt + 256, PORT_PM_SLEEP_STS);
	CHECK(!memcmp(fadt + 268, "YUNVMM  ", 8));
	CHECK_EQ(rd32(fadt + 40), rd64(fadt + 140));             /* DSDT == X_DSDT */
	return get_table(gm, rd64(fadt + 140), "DSDT");
}

static void check_madt(const uint8_t *madt, unsigned n)
{
	const uint8_t *p = madt + 44, *end = madt + rd32(madt + 4);
	unsigned lapics = 0, ioapics = 0, nmis = 0, isos = 0;

	CHECK_EQ(rd32(madt + 36), LAYOUT_LAPIC);
	CHECK_EQ(rd32(madt + 40), 1); /* PCAT_COMPAT */
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		switch (p[0]) {
		case 0:
			CHECK_EQ(p[1], 8);
			CHECK_EQ(p[2], lapics); /* processor UID */
			CHECK_EQ(p[3], lapics); /* APIC id */
			CHECK_EQ(rd32(p + 4), 1);
			lapics++;
			break;
		case 1:
			CHECK_EQ(p[1], 12);
			CHECK_EQ(p[2], n);
			CHECK_EQ(rd32(p + 4), LAYOUT_IOAPIC);
			CHECK_EQ(rd32(p + 8), 0);
			ioapics++;
			break;
		case 2:
			CHECK_EQ(p[1], 10);
			CHECK_EQ(p[2], 0);
			if (p[3] == 0) {
				CHECK_EQ(rd32(p + 4), 2);
				CHECK_EQ(rd16(p + 8), 0);
			} else {
				CHECK_EQ(p[3], 9);
				CHECK_EQ(rd32(p + 4), 9);
				CHECK_EQ(rd16(p + 8), 0x000D); /* level, active high */
			}
			isos++;
			break;
		case 4:
			CHECK_EQ(p[1], 6);
			CHECK_EQ(p[2], 0xFF);
			CHECK_EQ(p[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			CHECK(!"unexpected MADT entry");
		}
		p += p[1];
	}
	CHECK(p == end);
	CHECK_EQ(lapics, n);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(isos, 2);
	CHECK_EQ(nmis, 1);
}

/* ---- the AML encoder: exact bytes for small objects ----------------------- */

/* got[0..got_len) == want[0..want_len), with a hex dump when not. */
static void check_bytes(const uint8_t *got, size_t got_len, const uint8_t *want,
			size_t want_len)
{
	CHECK_EQ(got_len, want_len);
	if (got_len == want_len && !memcmp(got, want, want_len))
		return;
	CHECK(!"AML bytes differ");
	fprintf(stderr, "  got: ");
	for (size_t i = 0; i < got_len && i < 64; i++)
		fprintf(stderr, " %02X", got[i]);
	fprintf(stderr, "\n  want:");
	for (size_t i = 0; i < want_len && i < 64; i++)
		fprintf(stderr, " %02X", want[i]);
	fprintf(stderr, "\n");
}

/* Finish a and compare what it wrote with want. */
static void check_aml(struct aml *a, const uint8_t *want, size_t want_len)
{
	size_t len = 0;

	CHECK_EQ(aml_finish(a, &len), 0);
	check_bytes(a->buf, len, want, want_len);
}

#define CHECK_AML(a, ...)                                                             \
	do {                                                                          \
		static const uint8_t want_[] = { __VA_ARGS__ };                       \
		check_aml((a), want_, sizeof(want_));                                 \
	} while (0)

static void test_aml_integers(void)
{
	static const struct {
		uint64_t v;
		uint8_t len, bytes[9];
	} cases[] = {
		{ 0, 1, { 0x00 } },                      /* ZeroOp */
		{ 1, 1, { 0x01 } },                      /* OneOp */
		{ 2, 2, { 0x0A, 0x02 } },                /* BytePrefix */
		{ 0xFF, 2, { 0x0A, 0xFF } },
		{ 0x100, 3, { 0x0B, 0x00, 0x01 } },      /* WordPrefix */
		{ 0xFFFF, 3, { 0x0B, 0xFF, 0xFF } },
		{ 0x10000, 5, { 0x0C, 0x00, 0x00, 0x01, 0x00 } }, /* DWordPrefix */
		{ 0xFFFFFFFF, 5, { 0x0C, 0xFF, 0xFF, 0xFF, 0xFF } },
		{ 0x100000000ULL, 9, { 0x0E, 0, 0, 0, 0, 1, 0, 0, 0 } }, /* QWordPrefix */
		{ UINT64_MAX, 9, { 0x0E, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[32], want[32] = { 0x08, 'X', '_', '_', '_' };
		struct aml a;
		size_t len = 0;

		aml_init(&a, buf, sizeof(buf));
		aml_name_int(&a, "X", cases[i].v);
		memcpy(want + 5, cases[i].bytes, cases[i].len);
		CHECK_EQ(aml_finish(&a, &len), 0);
		check_bytes(buf, len, want, 5u + cases[i].len);
	}
}

static void test_aml_names(void)
{
	uint8_t buf[64];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_name_int(&a, "_SB", 0); /* padded NameSeg */
	CHECK_AML(&a, 0x08, '_', 'S', 'B', '_', 0x00);

	aml_init(&a, buf, sizeof(buf));
	aml_name_int(&a, "\\_SB.PCI0", 0); /* root prefix, DualNamePrefix */
	CHECK_AML(&a, 0x08, '\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 0x00);

	aml_init(&a, buf, sizeof(buf));
	aml_name_int(&a, "A.B1.C_D", 0); /* MultiNamePrefix, 3 segments */
	CHECK_AML(&a, 0x08, 0x2F, 0x03, 'A', '_', '_', '_', 'B', '1', '_', '_', 'C', '_', 'D', '_',
		  0x00);

	static const char *const bad[] = { "", "\\", "1ABC", "ABCDE", "A..B", "A.", ".A",
					   "pci0", "A-B", "\\\\A" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len;

		aml_init(&a, buf, sizeof(buf));
		aml_name_int(&a, bad[i], 0);
		CHECK_EQ(aml_finish(&a, &len), -EINVAL);
	}
}

static void test_aml_eisaid(void)
{
	uint8_t buf[32];
	struct aml a;
	size_t len;

	CHECK_EQ(aml_eisaid_value("PNP0A08"), 0x080AD041);
	CHECK_EQ(aml_eisaid_value("PNP0A03"), 0x030AD041);
	CHECK_EQ(aml_eisaid_value("PNP0501"), 0x0105D041);
	CHECK_EQ(aml_eisaid_value("pnp0A08"), 0);
	CHECK_EQ(aml_eisaid_value("PNP0a08"), 0);
	CHECK_EQ(aml_eisaid_value("PNP0A0"), 0);
	CHECK_EQ(aml_eisaid_value("PNP0A08X"), 0);
	CHECK_EQ(aml_eisaid_value(NULL), 0);

	aml_init(&a, buf, sizeof(buf));
	aml_name_eisaid(&a, "_HID", "PNP0A08"); /* always a DWordConst */
	CHECK_AML(&a, 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x08);

	aml_init(&a, buf, sizeof(buf));
	aml_name_eisaid(&a, "_HID", "PNP0G08");
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);
}

static void test_aml_packages_devices(void)
{
	uint8_t buf[128];
	struct aml a;

	/* The DSDT's first object, as the test guest and Linux read it. */
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "_S5");
	aml_package_begin(&a, 2);
	aml_int(&a, 5);
	aml_int(&a, 0);
	aml_end(&a);
	CHECK_AML(&a, 0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0A, 0x05, 0x00);

	/* Nested packages, an empty one among them. */
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "P");
	aml_package_begin(&a, 2);
	aml_package_begin(&a, 0);
	aml_end(&a);
	aml_package_begin(&a, 1);
	aml_int(&a, 0x1234);
	aml_end(&a);
	aml_end(&a);
	CHECK_AML(&a, 0x08, 'P', '_', '_', '_', 0x12, 0x0B, 0x02, 0x12, 0x02, 0x00, 0x12, 0x05,
		  0x01, 0x0B, 0x34, 0x12);

	/* Scope, Device (ExtOpPrefix 0x5B, DeviceOp 0x82), a Name inside. */
	aml_init(&a, buf, sizeof(buf));
	aml_scope_begin(&a, "_SB");
	aml_device_begin(&a, "D0");
	aml_name_int(&a, "_UID", 7);
	aml_end(&a);
	aml_end(&a);
	CHECK_AML(&a, 0x10, 0x13, '_', 'S', 'B', '_', 0x5B, 0x82, 0x0C, 'D', '0', '_', '_', 0x08,
		  '_', 'U', 'I', 'D', 0x0A, 0x07);
}

/* Decode a PkgLength at p: bytes used (0 if malformed), value in *v. */
static size_t pkglen(const uint8_t *p, const uint8_t *end, size_t *v)
{
	size_t n;

	if (p >= end)
		return 0;
	n = 1 + (p[0] >> 6);
	if ((size_t)(end - p) < n || (n > 1 && (p[0] & 0x30)))
		return 0;
	*v = n == 1 ? p[0] : p[0] & 0x0F;
	for (size_t i = 1; i < n; i++)
		*v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return n;
}

/* Buffers across every PkgLength size: value right and encoding the shortest. */
static void test_aml_pkglength(void)
{
	static const size_t sizes[] = { 0, 1, 58, 59, 60, 61, 62, 250, 251, 4088, 4089, 4090,
					4091, 4092, 4093, 4094, 70000 };
	static uint8_t data[70000], buf[70100];
	struct aml a;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = 0, v = 0, n, size_bytes;

		aml_init(&a, buf, sizeof(buf));
		aml_name(&a, "B");
		aml_buffer(&a, data, sizes[i]);
		CHECK_EQ(aml_finish(&a, &len), 0);
		CHECK_EQ(buf[5], 0x11);
		n = pkglen(buf + 6, buf + len, &v);
		CHECK(n != 0);
		CHECK_EQ(v, len - 6); /* counts itself and everything after */
		CHECK_EQ(n, v <= 0x3F ? 1 : v <= 0xFFF ? 2 : v <= 0xFFFFF ? 3 : 4);
		size_bytes = sizes[i] <= 1 ? 1 : sizes[i] <= 0xFF ? 2 : sizes[i] <= 0xFFFF ? 3 : 5;
		CHECK_EQ(len, 6 + n + size_bytes + sizes[i]);
	}

	/* Two exact ones: 63 fits one byte; 65 takes two (lead 0x41, then 0x04). */
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "B");
	aml_buffer(&a, data, 60);
	CHECK_EQ(buf[6], 0x3F);
	CHECK_EQ(buf[7], 0x0A);
	CHECK_EQ(buf[8], 60);
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "B");
	aml_buffer(&a, data, 61);
	CHECK_EQ(buf[6], 0x41);
	CHECK_EQ(buf[7], 0x04);
	CHECK_EQ(buf[8], 0x0A);
	CHECK_EQ(buf[9], 61);
}

static void test_aml_resource_template(void)
{
	uint8_t buf[256];
	struct aml_res r;
	struct aml a;
	size_t len;

	/* IO (Decode16, 0xCF8, 0xCF8, 1, 8) and the end tag, in a Buffer of 10. */
	aml_res_init(&r);
	aml_res_io(&r, 0xCF8, 8);
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "_CRS");
	aml_resource_template(&a, &r);
	CHECK_AML(&a, 0x08, '_', 'C', 'R', 'S', 0x11, 0x0D, 0x0A, 0x0A, 0x47, 0x01, 0xF8, 0x0C,
		  0xF8, 0x0C, 0x01, 0x08, 0x79, 0x00);

	/* WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100). */
	aml_res_init(&r);
	aml_res_bus_range(&r, 0, 0xFF);
	{
		static const uint8_t want[] = { 0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00,
						0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x01 };
		check_bytes(r.buf, r.len, want, sizeof(want));
	}

	/* DWordMemory (..., NonCacheable, ReadWrite, 0, 0xC0000000, 0xDFFFFFFF, 0, 0x20000000). */
	aml_res_init(&r);
	aml_res_mem32_window(&r, 0xC0000000, 0xDFFFFFFF);
	{
		static const uint8_t want[] = { 0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0, 0, 0, 0,
						0x00, 0x00, 0x00, 0xC0, 0xFF, 0xFF, 0xFF, 0xDF,
						0, 0, 0, 0, 0x00, 0x00, 0x00, 0x20 };
		check_bytes(r.buf, r.len, want, sizeof(want));
	}

	/* WordIO EntireRange (type-specific flags 3); QWordMemory is 46 bytes. */
	aml_res_init(&r);
	aml_res_io_window(&r, 0x0D00, 0xFFFF);
	CHECK_EQ(r.len, 16);
	CHECK_EQ(r.buf[3], 1);
	CHECK_EQ(r.buf[5], 3);
	CHECK_EQ(rd16(r.buf + 14), 0xF300);
	aml_res_init(&r);
	aml_res_mem64_window(&r, 0x100000000ULL, 0x10FFFFFFFFULL);
	CHECK_EQ(r.len, 46);
	CHECK_EQ(rd64(r.buf + 38), 0x1000000000ULL);

	/* Ranges that cannot be described: the error reaches aml_finish. */
	aml_res_init(&r);
	aml_res_mem32_window(&r, 0xD0000000, 0xC0000000);
	CHECK_EQ(r.error, -EINVAL);
	aml_res_init(&r);
	aml_res_io_window(&r, 0, 0xFFFF); /* length 0x10000 needs 17 bits */
	CHECK_EQ(r.error, -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "_CRS");
	aml_resource_template(&a, &r);
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);
	aml_res_init(&r);
	for (int i = 0; i < 10; i++)
		aml_res_mem64_window(&r, 0, 1);
	CHECK_EQ(r.error, -ENOSPC);
}

static void test_aml_errors(void)
{
	uint8_t buf[64], small[8];
	struct aml a;
	size_t len;

	aml_init(&a, buf, sizeof(buf)); /* a value with no Name */
	aml_int(&a, 1);
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, buf, sizeof(buf)); /* a Name with no value */
	aml_name(&a, "X");
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, buf, sizeof(buf)); /* a Name followed by a Name */
	aml_name(&a, "X");
	aml_name_int(&a, "Y", 1);
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, buf, sizeof(buf)); /* aml_end with nothing open */
	aml_end(&a);
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, buf, sizeof(buf)); /* left open */
	aml_scope_begin(&a, "_SB");
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, buf, sizeof(buf)); /* fewer elements than announced */
	aml_name(&a, "P");
	aml_package_begin(&a, 2);
	aml_int(&a, 1);
	aml_end(&a);
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, buf, sizeof(buf)); /* a Name inside a package */
	aml_name(&a, "P");
	aml_package_begin(&a, 1);
	aml_name_int(&a, "X", 1);
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, buf, sizeof(buf)); /* more than 255 elements */
	aml_name(&a, "P");
	aml_package_begin(&a, 256);
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, buf, sizeof(buf)); /* too deep */
	for (int i = 0; i <= AML_MAX_DEPTH; i++)
		aml_scope_begin(&a, "S");
	CHECK_EQ(aml_finish(&a, &len), -EINVAL);

	aml_init(&a, small, sizeof(small)); /* full; and sticky: nothing after counts */
	aml_name_int(&a, "X", 0x12345678);
	aml_end(&a);
	CHECK_EQ(aml_finish(&a, &len), -ENOSPC);
	CHECK(a.len <= sizeof(small));

	aml_init(&a, small, 5); /* the PkgLength itself does not fit */
	aml_scope_begin(&a, "S");
	aml_end(&a);
	CHECK_EQ(aml_finish(&a, &len), -ENOSPC);
}

/* ---- an AML walker for what aml.h writes -------------------------------- */

struct ns_obj {
	char path[64];          /* absolute: "\_SB_.PCI0._HID" */
	const uint8_t *p, *end; /* the value (Name) or the body (Device) */
	bool device;
};

struct ns {
	struct ns_obj obj[32];
	unsigned n;
};

/* A NameString at p, resolved against scope into out; bytes used, 0 if malformed. */
static size_t namestring(const uint8_t *p, const uint8_t *end, const char *scope, char *out)
{
	const uint8_t *q = p;
	unsigned segs = 1;

	strcpy(out, scope);
	if (q < end && *q == '\\') {
		strcpy(out, "\\");
		q++;
	}
	if (q < end && *q == 0x2E) {
		segs = 2;
		q++;
	} else if (q + 1 < end && *q == 0x2F) {
		segs = q[1];
		q += 2;
	}
	if (segs == 0 || (size_t)(end - q) < 4 * segs || strlen(out) + 5 * segs >= 64)
		return 0;
	for (unsigned i = 0; i < segs; i++, q += 4) {
		for (int c = 0; c < 4; c++)
			if (!(q[c] == '_' || (q[c] >= 'A' && q[c] <= 'Z') ||
			      (c > 0 && q[c] >= '0' && q[c] <= '9')))
				return 0;
		if (strcmp(out, "\\"))
			strcat(out, ".");
		strncat(out, (const char *)q, 4);
	}
	return (size_t)(q - p);
}

/* An integer object at p: bytes used (0 if not one), value in *v. */
static size_t integer(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	static const uint8_t size[] = { [0x0A] = 1, [0x0B] = 2, [0x0C] = 4, [0x0E] = 8 };
	size_t n;

	if (p >= end)
		return 0;
	if (*p == 0x00 || *p == 0x01) {
		*v = *p;
		return 1;
	}
	if (*p >= sizeof(size) || !size[*p])
		return 0;
	n = size[*p];
	if ((size_t)(end - p) < 1 + n)
		return 0;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v |= (uint64_t)p[1 + i] << (8 * i);
	return 1 + n;
}

/* A data object at p: its length, 0 if malformed (packages and buffers checked inside). */
static size_t data_object(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *body, *obj_end, *q;
	size_t n, v = 0, k;
	uint64_t i;

	if ((n = integer(p, end, &i)))
		return n;
	if (p >= end || (*p != 0x11 && *p != 0x12))
		return 0;
	k = pkglen(p + 1, end, &v);
	if (!k || v > (size_t)(end - p - 1))
		return 0;
	body = p + 1 + k;
	obj_end = p + 1 + v;
	if (*p == 0x11) { /* Buffer: BufferSize is the rest */
		n = integer(body, obj_end, &i);
		return n && i == (uint64_t)(obj_end - body - n) ? 1 + v : 0;
	}
	if (body >= obj_end) /* Package: NumElements, then exactly those */
		return 0;
	q = body + 1;
	for (unsigned e = 0; e < *body; e++) {
		n = data_object(q, obj_end);
		if (!n)
			return 0;
		q += n;
	}
	return q == obj_end ? 1 + v : 0;
}

/* A TermList of Names, Scopes and Devices (nothing else is accepted). */
static bool term_list(struct ns *ns, const uint8_t *p, const uint8_t *end, const char *scope)
{
	while (p < end) {
		char path[64];
		size_t n, k, v = 0, op;

		if (*p == 0x08) { /* Name */
			n = namestring(p + 1, end, scope, path);
			k = n ? data_object(p + 1 + n, end) : 0;
			if (!k || ns->n == 32)
				return false;
			ns->obj[ns->n++] = (struct ns_obj){ .p = p + 1 + n, .end = p + 1 + n + k };
			strcpy(ns->obj[ns->n - 1].path, path);
			p += 1 + n + k;
			continue;
		}
		if (*p == 0x10)
			op = 1; /* Scope */
		else if (*p == 0x5B && p + 1 < end && p[1] == 0x82)
			op = 2; /* Device */
		else
			return false;
		k = pkglen(p + op, end, &v);
		if (!k || v > (size_t)(end - p - op))
			return false;
		n = namestring(p + op + k, p + op + v, scope, path);
		if (!n)
			return false;
		if (op == 2) {
			if (ns->n == 32)
				return false;
			ns->obj[ns->n++] = (struct ns_obj){ .p = p + op + k + n, .end = p + op + v,
							    .device = true };
			strcpy(ns->obj[ns->n - 1].path, path);
		}
		if (!term_list(ns, p + op + k + n, p + op + v, path))
			return false;
		p += op + v;
	}
	return p == end;
}

static const struct ns_obj *lookup(const struct ns *ns, const char *path)
{
	for (unsigned i = 0; i < ns->n; i++)
		if (!strcmp(ns->obj[i].path, path))
			return &ns->obj[i];
	fprintf(stderr, "  %s: not in the DSDT\n", path);
	return NULL;
}

/* The value of an integer Name, or ~0 if it is missing or not an integer. */
static uint64_t name_int(const struct ns *ns, const char *path)
{
	const struct ns_obj *o = lookup(ns, path);
	uint64_t v;

	return o && integer(o->p, o->end, &v) == (size_t)(o->end - o->p) ? v : ~0ULL;
}

/* Elements of a package value: pointers to each, count returned (-1 if not a package). */
static int package_elements(const uint8_t *p, const uint8_t *end, const uint8_t **elem, int max)
{
	size_t v = 0, k;
	const uint8_t *q;
	int n;

	if (p >= end || *p != 0x12 || !(k = pkglen(p + 1, end, &v)))
		return -1;
	n = p[1 + k];
	q = p + 2 + k;
	for (int i = 0; i < n; i++) {
		if (i < max)
			elem[i] = q;
		q += data_object(q, end);
	}
	return n;
}

/* ---- the PCI host bridge in the DSDT ------------------------------------ */

/* The _CRS buffer: bus range, config ports, I/O window, both memory windows, end. */
static void check_crs(const struct ns *ns, uint64_t mmio64)
{
	const struct ns_obj *o = lookup(ns, "\\_SB_.PCI0._CRS");
	const uint8_t *p, *end;
	size_t k, v = 0, n;
	uint64_t size;

	if (!o)
		return;
	CHECK_EQ(o->p[0], 0x11);
	k = pkglen(o->p + 1, o->end, &v);
	n = integer(o->p + 1 + k, o->end, &size);
	p = o->p + 1 + k + n;
	end = o->end;
	CHECK_EQ(size, (uint64_t)(end - p));

	/* WordBusNumber 0 .. ECAM buses - 1: producer, fixed, positive decode. */
	CHECK(end - p >= 16 && p[0] == 0x88 && rd16(p + 1) == 13 && p[3] == 2 && p[4] == 0x0C);
	CHECK_EQ(rd16(p + 8), 0);
	CHECK_EQ(rd16(p + 10), (LAYOUT_PCI_ECAM_SZ >> 20) - 1);
	CHECK_EQ(rd16(p + 14), LAYOUT_PCI_ECAM_SZ >> 20);
	p += 16;
	/* IO (Decode16, 0xCF8, 0xCF8, 1, 8) */
	CHECK(end - p >= 8 && p[0] == 0x47 && p[1] == 1);
	CHECK_EQ(rd16(p + 2), PORT_PCI_CONF);
	CHECK_EQ(rd16(p + 4), PORT_PCI_CONF);
	CHECK_EQ(p[7], PORT_PCI_CONF_LEN);
	p += 8;
	/* WordIO 0x0D00 .. 0xFFFF */
	CHECK(end - p >= 16 && p[0] == 0x88 && p[3] == 1 && p[4] == 0x0C && p[5] == 3);
	CHECK_EQ(rd16(p + 8), 0x0D00);
	CHECK_EQ(rd16(p + 10), 0xFFFF);
	p += 16;
	/* DWordMemory: the 32-bit BAR window */
	CHECK(end - p >= 26 && p[0] == 0x87 && rd16(p + 1) == 23 && p[3] == 0 && p[4] == 0x0C);
	CHECK_EQ(rd32(p + 10), LAYOUT_PCI_MMIO32);
	CHECK_EQ(rd32(p + 14), LAYOUT_PCI_MMIO32 + LAYOUT_PCI_MMIO32_SZ - 1);
	CHECK_EQ(rd32(p + 22), LAYOUT_PCI_MMIO32_SZ);
	p += 26;
	/* QWordMemory: the 64-bit BAR window above RAM */
	CHECK(end - p >= 46 && p[0] == 0x8A && rd16(p + 1) == 43 && p[3] == 0 && p[4] == 0x0C);
	CHECK_EQ(rd64(p + 14), mmio64);
	CHECK_EQ(rd64(p + 22), mmio64 + LAYOUT_PCI_MMIO64_SZ - 1);
	CHECK_EQ(rd64(p + 38), LAYOUT_PCI_MMIO64_SZ);
	p += 46;
	CHECK(end - p == 2 && p[0] == 0x79);
}

/*
 * The MP table's PCI INTx entries (as Linux's mpparse reads them):
 * mp_gsi[slot][pin] = destination pin, -1 where there is no entry.
 */
static unsigned mp_pci_entries(const struct guest_mem *gm, int mp_gsi[32][4])
{
	const uint8_t *mpf = gm_ptr(gm, LAYOUT_EBDA, 16), *mpc, *p, *end;
	int pci_bus = -1;
	unsigned n = 0;

	for (int s = 0; s < 32; s++)
		for (int i = 0; i < 4; i++)
			mp_gsi[s][i] = -1;
	CHECK(mpf && !memcmp(mpf, "_MP_", 4));
	mpc = mpf ? gm_ptr(gm, rd32(mpf + 4), 44) : NULL;
	CHECK(mpc && !memcmp(mpc, "PCMP", 4));
	if (!mpc)
		return 0;
	p = mpc + 44;
	end = mpc + rd16(mpc + 4);
	while (p < end) {
		if (p[0] == 0) {
			p += 20;
			continue;
		}
		if (p[0] == 1 && !memcmp(p + 2, "PCI   ", 6))
			pci_bus = p[1];
		if (p[0] == 3 && p[4] == pci_bus) {
			CHECK_EQ(rd16(p + 2), 0x000D); /* level, active high */
			mp_gsi[(p[5] >> 2) & 31][p[5] & 3] = p[7];
			n++;
		}
		p += 8;
	}
	return n;
}

/*
 * _PRT: one Package (4) { (slot << 16) | 0xFFFF, pin, 0, GSI } per slot
 * and pin, agreeing with the MP table: each MP entry (INTA#) is there, and
 * every pin of a slot is the MP table's line for that slot.
 */
static void check_prt(const struct guest_mem *gm, const struct ns *ns,
		      const struct mptable_pci_irq *irqs, unsigned nr)
{
	const struct ns_obj *o = lookup(ns, "\\_SB_.PCI0._PRT");
	const uint8_t *elem[255];
	int prt[32][4], mp[32][4], n;
	unsigned mp_entries = mp_pci_entries(gm, mp);

	if (!o)
		return;
	for (int s = 0; s < 32; s++)
		for (int i = 0; i < 4; i++)
			prt[s][i] = -1;
	n = package_elements(o->p, o->end, elem, 255);
	CHECK_EQ(n, 4 * nr);
	for (int i = 0; i < n && i < 255; i++) {
		const uint8_t *f[4];
		uint64_t addr = ~0ULL, pin = ~0ULL, src = ~0ULL, gsi = ~0ULL;

		CHECK_EQ(package_elements(elem[i], o->end, f, 4), 4);
		CHECK(integer(f[0], o->end, &addr) && integer(f[1], o->end, &pin) &&
		      integer(f[2], o->end, &src) && integer(f[3], o->end, &gsi));
		CHECK_EQ(addr & 0xFFFF, 0xFFFF); /* any function */
		CHECK((addr >> 16) < 32 && pin < 4);
		CHECK_EQ(src, 0);                /* a GSI, no link device */
		if ((addr >> 16) < 32 && pin < 4) {
			CHECK_EQ(prt[addr >> 16][pin], -1); /* each slot and pin once */
			prt[addr >> 16][pin] = (int)gsi;
		}
	}

	CHECK_EQ(mp_entries, nr);
	for (int s = 0; s < 32; s++) {
		for (int i = 0; i < 4; i++) {
			if (mp[s][i] >= 0)
				CHECK_EQ(prt[s][i], mp[s][i]);
			CHECK_EQ(prt[s][i], mp[s][0]); /* -1 in both where no device */
		}
	}
	for (unsigned i = 0; i < nr; i++)
		for (int pin = 0; pin < 4; pin++)
			CHECK_EQ(prt[irqs[i].slot][pin], irqs[i].gsi);
}

/*
 * The DSDT: header right (get_table), the whole body walks as AML, \_S5_
 * first with { 5, 0 }, and with PCI the PCI0 device and nothing else.
 */
static void check_dsdt(const struct guest_mem *gm, const uint8_t *dsdt, bool pci,
		       const struct mptable_pci_irq *irqs, unsigned nr)
{
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x05,
				      0x02, 0x0A, 0x05, 0x00 };
	const struct ns_obj *o;
	const uint8_t *elem[2];
	struct ns ns = { 0 };
	uint64_t v = ~0ULL;

	CHECK_EQ(dsdt[8], 2); /* revision 2: 64-bit AML integers */
	CHECK(!memcmp(dsdt + 36, s5, sizeof(s5))); /* the test guest's parser wants this first */
	CHECK(term_list(&ns, dsdt + 36, dsdt + rd32(dsdt + 4), "\\"));
	o = lookup(&ns, "\\_S5_");
	CHECK(o && package_elements(o->p, o->end, elem, 2) == 2);
	if (o && package_elements(o->p, o->end, elem, 2) == 2) {
		CHECK(integer(elem[0], o->end, &v) && v == PM_SLP_TYP_S5);
		CHECK(integer(elem[1], o->end, &v) && v == 0);
	}
	if (!pci) {
		CHECK_EQ(rd32(dsdt + 4), 36 + sizeof(s5));
		CHECK_EQ(ns.n, 1);
		return;
	}
	CHECK_EQ(ns.n, 9); /* _S5_, PCI0 and its 7 names */
	o = lookup(&ns, "\\_SB_.PCI0");
	CHECK(o && o->device);
	CHECK_EQ(name_int(&ns, "\\_SB_.PCI0._HID"), 0x080AD041); /* EisaId ("PNP0A08") */
	CHECK_EQ(name_int(&ns, "\\_SB_.PCI0._CID"), 0x030AD041); /* EisaId ("PNP0A03") */
	CHECK_EQ(name_int(&ns, "\\_SB_.PCI0._UID"), 0);
	CHECK_EQ(name_int(&ns, "\\_SB_.PCI0._SEG"), 0);
	CHECK_EQ(name_int(&ns, "\\_SB_.PCI0._BBN"), 0);
	check_crs(&ns, acpi_pci_mmio64_base(gm));
	check_prt(gm, &ns, irqs, nr);
}

/* ---- the whole set of tables --------------------------------------------- */

struct acpi_case {
	unsigned vcpus;
	uint64_t mem_mib;
	bool pci;
	const struct mptable_pci_irq *irqs;
	unsigned nr_irqs;
	uint64_t madt_at; /* where acpi.h says the MADT lands; 0: not documented */
};

static void check_acpi_case(const struct acpi_case *c)
{
	const uint8_t *rsdp, *xsdt, *rsdt, *fadt = NULL, *madt = NULL, *mcfg = NULL, *dsdt = NULL;
	unsigned nr_tables = c->pci ? 3 : 2;
	struct guest_mem gm;
	struct yun_err err;
	uint64_t rsdp_gpa = 0;

	CHECK_EQ(gm_init(&gm, c->mem_mib << 20, &err), 0);
	CHECK_EQ(mptable_build_pci(&gm, c->vcpus, c->irqs, c->nr_irqs, &err), 0);
	if (c->pci)
		CHECK_EQ(acpi_build_pci(&gm, c->vcpus, true, c->irqs, c->nr_irqs, &rsdp_gpa, &err),
			 0);
	else
		CHECK_EQ(acpi_build(&gm, c->vcpus, &rsdp_gpa, &err), 0);
	CHECK_EQ(rsdp_gpa, LAYOUT_BIOS_ROM);
	CHECK_EQ(rsdp_gpa % 16, 0);

	rsdp = gm_ptr(&gm, rsdp_gpa, 36);
	CHECK(!memcmp(rsdp, "RSD PTR ", 8));
	CHECK_EQ(sum8(rsdp, 20), 0);
	CHECK_EQ(sum8(rsdp, 36), 0);
	CHECK_EQ(rsdp[15], 2);
	CHECK_EQ(rd32(rsdp + 20), 36);
	CHECK(!memcmp(rsdp + 9, "YUN   ", 6));

	/* The addresses acpi.h documents. */
	CHECK_EQ(rd32(rsdp + 16), 0xE0030);
	CHECK_EQ(rd64(rsdp + 24), 0xE0060);
	CHECK_EQ(rd64(gm_ptr(&gm, 0xE0060 + 36, 8)), 0xE00A0);
	CHECK_EQ(rd64(gm_ptr(&gm, 0xE00A0 + 140, 8)), 0xE01C0);
	if (c->madt_at)
		CHECK_EQ(rd64(gm_ptr(&gm, 0xE0060 + 44, 8)), c->madt_at);

	xsdt = get_table(&gm, rd64(rsdp + 24), "XSDT");
	rsdt = get_table(&gm, rd32(rsdp + 16), "RSDT");
	if (!xsdt || !rsdt)
		goto out;
	CHECK_EQ(rd32(xsdt + 4), 36 + nr_tables * 8);
	CHECK_EQ(rd32(rsdt + 4), 36 + nr_tables * 4);
	for (unsigned i = 0; i < nr_tables; i++) {
		uint64_t gpa = rd64(xsdt + 36 + 8 * i);
		const uint8_t *t = gm_ptr(&gm, gpa, 4);

		CHECK_EQ(rd32(rsdt + 36 + 4 * i), gpa); /* both roots list the same tables */
		if (t && !memcmp(t, "FACP", 4))
			fadt = get_table(&gm, gpa, "FACP");
		else if (t && !memcmp(t, "APIC", 4))
			madt = get_table(&gm, gpa, "APIC");
		else if (t && !memcmp(t, "MCFG", 4))
			mcfg = get_table(&gm, gpa, "MCFG");
	}
	CHECK(fadt != NULL);
	CHECK(madt != NULL);
	CHECK_EQ(mcfg != NULL, c->pci);
	if (fadt)
		dsdt = check_fadt(&gm, fadt);
	if (dsdt)
		check_dsdt(&gm, dsdt, c->pci, c->irqs, c->nr_irqs);
	if (madt)
		check_madt(madt, c->vcpus);
	if (mcfg) {
		CHECK_EQ(rd64(mcfg + 44), LAYOUT_PCI_ECAM);
		CHECK_EQ(mcfg[55], (LAYOUT_PCI_ECAM_SZ >> 20) - 1);
	}

	/* No two tables overlap: RSDT, XSDT, FADT, DSDT, MADT, MCFG after the RSDP. */
	{
		const uint8_t *t[] = { rsdt, xsdt, fadt, dsdt, madt, mcfg };
		const uint8_t *base = gm_ptr(&gm, 0, 1);
		uint64_t prev_end = rsdp_gpa + 36;

		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
			if (!t[i])
				continue;
			CHECK((uint64_t)(t[i] - base) >= prev_end);
			prev_end = (uint64_t)(t[i] - base) + rd32(t[i] + 4);
		}
	}
out:
	gm_free(&gm);
}

static void test_one_vcpu(void)
{
	check_acpi_case(&(struct acpi_case){ 1, 64, false, NULL, 0, 0xE01F0 });
}

static void test_two_vcpus(void)
{
	check_acpi_case(&(struct acpi_case){ 2, 64, false, NULL, 0, 0xE01F0 });
}

static void test_max_vcpus(void)
{
	check_acpi_case(&(struct acpi_case){ LAYOUT_MAX_VCPUS, 64, false, NULL, 0, 0xE01F0 });
}

/* What vm.c hands the loader for n devices: slot n + 1 on GSI 16 + n. */
static unsigned vm_like_irqs(struct mptable_pci_irq *irqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		irqs[i] = (struct mptable_pci_irq){ (uint8_t)(i + 1), (uint8_t)(16 + i) };
	return n;
}

static void test_pci_no_devices(void)
{
	check_acpi_case(&(struct acpi_case){ 1, 64, true, NULL, 0, 0xE02B0 });
}

static void test_pci_one_device(void)
{
	struct mptable_pci_irq irqs[1];

	check_acpi_case(&(struct acpi_case){ 2, 512, true, irqs, vm_like_irqs(irqs, 1), 0 });
}

static void test_pci_full_bus(void)
{
	struct mptable_pci_irq irqs[MPTABLE_MAX_PCI_IRQS];
	unsigned n = vm_like_irqs(irqs, MPTABLE_MAX_PCI_IRQS);

	check_acpi_case(&(struct acpi_case){ 1, 64, true, irqs, n, 0xE0440 });
	check_acpi_case(&(struct acpi_case){ LAYOUT_MAX_VCPUS, 6144, true, irqs, n, 0xE0440 });
}

/* Routing is whatever the list says, not a formula: sparse slots, GSIs out of order. */
static void test_pci_sparse_slots(void)
{
	static const struct mptable_pci_irq irqs[] = { { 3, 20 }, { 7, 17 }, { 31, 23 } };

	check_acpi_case(&(struct acpi_case){ 4, 64, true, irqs, 3, 0 });
}

static void test_pci_bad_routes(void)
{
	struct mptable_pci_irq irqs[MPTABLE_MAX_PCI_IRQS + 1];
	struct guest_mem gm;
	struct yun_err err;
	uint64_t rsdp;

	CHECK_EQ(gm_init(&gm, 16ULL << 20, &err), 0);
	vm_like_irqs(irqs, MPTABLE_MAX_PCI_IRQS + 1);
	CHECK_EQ(acpi_build_pci(&gm, 1, true, irqs, MPTABLE_MAX_PCI_IRQS + 1, &rsdp, &err),
		 -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "9 PCI interrupts, at most 8");
	irqs[1].slot = 1; /* twice */
	CHECK_EQ(acpi_build_pci(&gm, 1, true, irqs, 2, &rsdp, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "PCI slot 1 -> GSI 17");
	irqs[1] = (struct mptable_pci_irq){ 0, 17 }; /* the host bridge's slot */
	CHECK_EQ(acpi_build_pci(&gm, 1, true, irqs, 2, &rsdp, &err), -EINVAL);
	irqs[1] = (struct mptable_pci_irq){ 32, 17 };
	CHECK_EQ(acpi_build_pci(&gm, 1, true, irqs, 2, &rsdp, &err), -EINVAL);
	irqs[1] = (struct mptable_pci_irq){ 2, 0 }; /* no line */
	CHECK_EQ(acpi_build_pci(&gm, 1, true, irqs, 2, &rsdp, &err), -EINVAL);
	/* Without PCI the list is not used. */
	CHECK_EQ(acpi_build_pci(&gm, 1, false, irqs, 2, &rsdp, &err), 0);
	gm_free(&gm);
}

/* The 64-bit window: the first 1 GiB boundary at or above 4 GiB and the end of RAM. */
static void test_mmio64_base(void)
{
	static const struct {
		uint64_t mib, base;
	} cases[] = {
		{ 64, 4ULL << 30 },          { 3072, 4ULL << 30 },
		{ 4096, 5ULL << 30 },        /* 3 GiB low, [4, 5) GiB high */
		{ 4608, 6ULL << 30 },        /* high RAM ends at 5.5 GiB */
		{ 6144, 7ULL << 30 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct guest_mem gm;
		struct yun_err err;

		CHECK_EQ(gm_init(&gm, cases[i].mib << 20, &err), 0);
		CHECK_EQ(acpi_pci_mmio64_base(&gm), cases[i].base);
		gm_free(&gm);
	}
}

static void test_bad_vcpu_counts(void)
{
	struct guest_mem gm;
	struct yun_err err;
	uint64_t rsdp;

	CHECK_EQ(gm_init(&gm, 16ULL << 20, &err), 0);
	CHECK_EQ(acpi_build(&gm, 0, &rsdp, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "0 vCPUs");
	CHECK_EQ(acpi_build(&gm, 65, &rsdp, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "65 vCPUs, must be 1 to 64");
	gm_free(&gm);
}

int main(void)
{
	RUN(test_aml_integers);
	RUN(test_aml_names);
	RUN(test_aml_eisaid);
	RUN(test_aml_packages_devices);
	RUN(test_aml_pkglength);
	RUN(test_aml_resource_template);
	RUN(test_aml_errors);
	RUN(test_one_vcpu);
	RUN(test_two_vcpus);
	RUN(test_max_vcpus);
	RUN(test_pci_no_devices);
	RUN(test_pci_one_device);
	RUN(test_pci_full_bus);
	RUN(test_pci_sparse_slots);
	RUN(test_pci_bad_routes);
	RUN(test_mmio64_base);
	RUN(test_bad_vcpu_counts);
	return CHECK_DONE();
}
