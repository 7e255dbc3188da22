/* mptable_test.c - the MP table as a guest's MP parser (Linux mpparse.c) reads it. */
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

/* Find "_MP_" the way Linux does: 16-byte steps through the EBDA's first KiB. */
static const uint8_t *find_mpf(const struct guest_mem *gm)
{
	const uint8_t *base = gm_ptr(gm, 639 * 0x400, 0x400);

	for (unsigned off = 0; off < 0x400; off += 16)
		if (!memcmp(base + off, "_MP_", 4) && base[off + 8] == 1 &&
		    sum8(base + off, 16) == 0)
			return base + off;
	return NULL;
}

static void check_mptable(unsigned n)
{
	struct guest_mem gm;
	struct yun_err err;
	const uint8_t *mpf, *mpc, *p, *end;
	unsigned cpus = 0, buses = 0, ioapics = 0, intsrc = 0, lint = 0, entries = 0;
	int irq_pin[16];

	for (int i = 0; i < 16; i++)
		irq_pin[i] = -1;
	CHECK_EQ(gm_init(&gm, 64ULL << 20, &err), 0);
	CHECK_EQ(mptable_build(&gm, n, &err), 0);

	mpf = find_mpf(&gm);
	CHECK(mpf != NULL);
	if (!mpf)
		goto out;
	CHECK_EQ(mpf[9], 4);    /* spec 1.4 */
	CHECK_EQ(mpf[11], 0);   /* a configuration table follows, no default config */
	mpc = gm_ptr(&gm, rd32(mpf + 4), 44);
	CHECK(mpc != NULL);
	if (!mpc)
		goto out;
	CHECK(!memcmp(mpc, "PCMP", 4));
	CHECK_EQ(mpc[6], 4);
	CHECK(gm_ptr(&gm, rd32(mpf + 4), rd16(mpc + 4)) != NULL);
	CHECK_EQ(sum8(mpc, rd16(mpc + 4)), 0);
	CHECK_EQ(rd32(mpc + 36), LAYOUT_LAPIC);
	CHECK_EQ(rd16(mpc + 40), 0); /* no extended table */
	CHECK_EQ(rd32(mpf + 4) + rd16(mpc + 4) - LAYOUT_EBDA, mptable_size(n));
	CHECK(LAYOUT_EBDA + mptable_size(n) <= LAYOUT_BIOS_ROM);

	p = mpc + 44;
	end = mpc + rd16(mpc + 4);
	while (p < end) {
		entries++;
		switch (p[0]) {
		case 0: /* processor */
			CHECK_EQ(p[1], cpus);                     /* APIC id = index */
			CHECK(p[3] & 1);                          /* enabled */
			CHECK_EQ(!!(p[3] & 2), cpus == 0);        /* BSP is CPU 0 only */
			CHECK(rd32(p + 8) & (1u << 9));           /* APIC feature flag */
			cpus++;
			p += 20;
			break;
		case 1:
			CHECK(!memcmp(p + 2, "ISA   ", 6));
			buses++;
			p += 8;
			break;
		case 2:
			CHECK_EQ(p[1], n);
			CHECK_EQ(p[2], 0x11);
			CHECK(p[3] & 1);
			CHECK_EQ(rd32(p + 4), LAYOUT_IOAPIC);
			ioapics++;
			p += 8;
			break;
		case 3:
			CHECK_EQ(p[1], 0);        /* INT */
			CHECK_EQ(rd16(p + 2), 0); /* conforming */
			CHECK_EQ(p[6], n);        /* to the IOAPIC */
			if (p[5] < 16)
				irq_pin[p[5]] = p[7];
			intsrc++;
			p += 8;
			break;
		case 4:
			CHECK_EQ(p[6], 0xFF);
			CHECK_EQ(p[1], p[7] == 0 ? 3 : 1); /* ExtINT on LINT0, NMI on LINT1 */
			lint++;
			p += 8;
			break;
		default:
			CHECK(!"unknown MP entry type");
			p = end;
		}
	}
	CHECK(p == end);
	CHECK_EQ(entries, rd16(mpc + 34));
	CHECK_EQ(cpus, n);
	CHECK_EQ(buses, 1);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(intsrc, 15);
	CHECK_EQ(lint, 2);
	CHECK_EQ(irq_pin[0], 2);
	CHECK_EQ(irq_pin[2], -1);
	for (int irq = 1; irq < 16; irq++)
		if (irq != 2)
			CHECK_EQ(irq_pin[irq], irq);
out:
	gm_free(&gm);
}

static void test_one_vcpu(void)
{
	check_mptable(1);
}

static void test_two_vcpus(void)
{
	check_mptable(2);
}

static void test_max_vcpus(void)
{
	check_mptable(LAYOUT_MAX_VCPUS);
}

static void test_fits_ebda_kib_up_to_40(void)
{
	CHECK(mptable_size(40) <= 1024);
	CHECK(mptable_size(41) > 1024);
}

static void test_bad_vcpu_counts(void)
{
	struct guest_mem gm;
	struct yun_err err;

	CHECK_EQ(gm_init(&gm, 16ULL << 20, &err), 0);
	CHECK_EQ(mptable_build(&gm, 0, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "0 vCPUs");
	CHECK_EQ(mptable_build(&gm, LAYOUT_MAX_VCPUS + 1, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "65 vCPUs, must be 1 to 64");
	gm_free(&gm);
}

int main(void)
{
	RUN(test_one_vcpu);
	RUN(test_two_vcpus);
	RUN(test_max_vcpus);
	RUN(test_fits_ebda_kib_up_to_40);
	RUN(test_bad_vcpu_counts);
	return CHECK_DONE();
}
