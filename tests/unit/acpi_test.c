/* acpi_test.c - the ACPI tables as a guest's ACPI code walks them. */
#include "vmm/boot/acpi.h"
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

static void check_fadt(const struct guest_mem *gm, const uint8_t *fadt)
{
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06,
				      0x02, 0x0A, 0x05, 0x0A, 0x00 };
	const uint8_t *dsdt;

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

	dsdt = get_table(gm, rd64(fadt + 140), "DSDT");
	if (!dsdt)
		return;
	CHECK(dsdt[8] >= 2); /* 64-bit AML integers */
	CHECK_EQ(rd32(dsdt + 4), 36 + sizeof(s5));
	CHECK(!memcmp(dsdt + 36, s5, sizeof(s5)));
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

static void check_acpi(unsigned n)
{
	const uint8_t *rsdp, *xsdt, *rsdt, *fadt = NULL, *madt = NULL;
	struct guest_mem gm;
	struct yun_err err;
	uint64_t rsdp_gpa = 0;

	CHECK_EQ(gm_init(&gm, 64ULL << 20, &err), 0);
	CHECK_EQ(acpi_build(&gm, n, &rsdp_gpa, &err), 0);
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
	CHECK_EQ(rd64(gm_ptr(&gm, 0xE0060 + 44, 8)), 0xE01F0);
	CHECK_EQ(rd64(gm_ptr(&gm, 0xE00A0 + 140, 8)), 0xE01C0);

	xsdt = get_table(&gm, rd64(rsdp + 24), "XSDT");
	rsdt = get_table(&gm, rd32(rsdp + 16), "RSDT");
	if (!xsdt || !rsdt)
		goto out;
	CHECK_EQ(rd32(xsdt + 4), 36 + 2 * 8);
	CHECK_EQ(rd32(rsdt + 4), 36 + 2 * 4);
	for (unsigned i = 0; i < 2; i++) {
		uint64_t gpa = rd64(xsdt + 36 + 8 * i);
		const uint8_t *t = gm_ptr(&gm, gpa, 4);

		CHECK_EQ(rd32(rsdt + 36 + 4 * i), gpa); /* both roots list the same tables */
		if (t && !memcmp(t, "FACP", 4))
			fadt = get_table(&gm, gpa, "FACP");
		else if (t && !memcmp(t, "APIC", 4))
			madt = get_table(&gm, gpa, "APIC");
	}
	CHECK(fadt != NULL);
	CHECK(madt != NULL);
	if (fadt)
		check_fadt(&gm, fadt);
	if (madt)
		check_madt(madt, n);
out:
	gm_free(&gm);
}

static void test_one_vcpu(void)
{
	check_acpi(1);
}

static void test_two_vcpus(void)
{
	check_acpi(2);
}

static void test_max_vcpus(void)
{
	check_acpi(LAYOUT_MAX_VCPUS);
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
	RUN(test_one_vcpu);
	RUN(test_two_vcpus);
	RUN(test_max_vcpus);
	RUN(test_bad_vcpu_counts);
	return CHECK_DONE();
}
