/*
 * entry_test.c - the CPU state at the kernel entry, checked the way the CPU
 * and the kernel will use it: segment descriptors decoded from the GDT bytes
 * in guest memory (a mismatch with the cached kvm_segment would fault on the
 * kernel's first segment reload) and the page tables walked from CR3.
 */
#include "vmm/entry.h"
#include "vmm/layout.h"

#include <stdlib.h>

#include "check.h"

#define CR0_PE   (1ULL << 0)
#define CR0_PG   (1ULL << 31)
#define CR4_PAE  (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define GUEST_MIB 64

/* A descriptor as the CPU decodes it on a segment load. */
struct desc {
	uint64_t base;
	uint32_t limit;   /* in bytes, granularity applied */
	unsigned type, s, dpl, present, avl, l, db, g;
};

static struct desc decode(uint64_t d)
{
	struct desc x;
	uint32_t raw_limit = (uint32_t)((d & 0xFFFF) | ((d >> 32) & 0xF0000));

	x.base = ((d >> 16) & 0xFFFFFF) | (((d >> 56) & 0xFF) << 24);
	x.type = (d >> 40) & 0xF;
	x.s = (d >> 44) & 1;
	x.dpl = (d >> 45) & 3;
	x.present = (d >> 47) & 1;
	x.avl = (d >> 52) & 1;
	x.l = (d >> 53) & 1;
	x.db = (d >> 54) & 1;
	x.g = (d >> 55) & 1;
	x.limit = x.g ? (raw_limit << 12) | 0xFFF : raw_limit;
	return x;
}

/* Read the descriptor `seg` selects from the GDT in guest memory and compare. */
static void check_segment(const struct guest_mem *gm, const struct kvm_sregs *sregs,
			  const struct kvm_segment *seg, const char *name)
{
	uint64_t raw = 0, hi = 0;
	unsigned idx = seg->selector >> 3;
	struct desc d;
	int before = check_failures;

	CHECK_EQ(seg->selector & 4, 0);   /* GDT, not LDT */
	CHECK_EQ(seg->selector & 3, seg->dpl);
	CHECK(idx != 0);                  /* not the null selector */
	/* A system descriptor (TSS) is 16 bytes in long mode. */
	CHECK(idx * 8 + (seg->s ? 7 : 15) <= sregs->gdt.limit);
	CHECK_EQ(gm_read(gm, sregs->gdt.base + idx * 8, &raw, 8), 0);
	d = decode(raw);
	CHECK_EQ(d.base, seg->base);
	CHECK_EQ(d.limit, seg->limit);
	CHECK_EQ(d.type, seg->type);
	CHECK_EQ(d.s, seg->s);
	CHECK_EQ(d.dpl, seg->dpl);
	CHECK_EQ(d.present, seg->present);
	CHECK_EQ(d.l, seg->l);
	CHECK_EQ(d.db, seg->db);
	CHECK_EQ(d.g, seg->g);
	CHECK_EQ(d.avl, seg->avl);
	CHECK(d.present);
	CHECK_EQ(seg->unusable, 0);
	if (!seg->s) {
		CHECK_EQ(gm_read(gm, sregs->gdt.base + idx * 8 + 8, &hi, 8), 0);
		CHECK_EQ(hi & 0xFFFFFFFF, seg->base >> 32); /* upper base */
	}
	if (check_failures != before)
		fprintf(stderr, "  segment %s (selector 0x%x, descriptor 0x%016llx)\n", name,
			seg->selector, (unsigned long long)raw);
}

/* Walk the 4-level tables from CR3; returns the physical address or ~0 when not mapped. */
static uint64_t translate(const struct guest_mem *gm, uint64_t cr3, uint64_t va, int *big,
			  int *writable)
{
	static const int shifts[] = { 39, 30, 21, 12 };
	uint64_t table = cr3 & ~0xFFFULL;

	*writable = 1;
	for (int level = 0; level < 4; level++) {
		uint64_t e = 0;
		unsigned idx = (va >> shifts[level]) & 511;

		if (gm_read(gm, table + idx * 8, &e, 8) < 0 || !(e & 1))
			return ~0ULL;
		*writable &= (e >> 1) & 1;
		if (level >= 1 && level <= 2 && (e & (1ULL << 7))) {
			uint64_t mask = (1ULL << shifts[level]) - 1;

			*big = shifts[level];
			return (e & 0x000FFFFFFFFFF000ULL & ~mask) | (va & mask);
		}
		table = e & 0x000FFFFFFFFFF000ULL;
	}
	*big = 12;
	return table | (va & 0xFFF);
}

/* What KVM_GET_SREGS gives for a new vCPU (the fields that matter here). */
static void reset_sregs(struct kvm_sregs *s)
{
	memset(s, 0, sizeof(*s));
	s->cr0 = 0x60000010;
	s->apic_base = 0xFEE00900;
	s->interrupt_bitmap[0] = 0x5a5a;
}

static void test_linux64(void)
{
	struct guest_mem gm;
	struct yun_err err;
	struct boot_entry entry = { .mode = BOOT_LINUX64, .rip = 0x100200,
				    .boot_info = LAYOUT_ZERO_PAGE };
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	static const uint64_t probes[] = {
		0, 0x1000, LAYOUT_ZERO_PAGE, 0x100200, 0x1FFFFF, 0x200000, 0x3FFFFFF,
		0xBFFFFFF8, 0xC0000000, LAYOUT_IOAPIC, LAYOUT_LAPIC, 0xFFFFF000, 0xFFFFFFF8,
	};

	CHECK_EQ(gm_init(&gm, GUEST_MIB << 20, &err), 0);
	reset_sregs(&sregs);
	memset(&regs, 0xA5, sizeof(regs));
	CHECK_EQ(entry_prepare(&gm, &entry, &regs, &sregs), 0);

	/* Registers of the 64-bit boot protocol. */
	CHECK_EQ(regs.rip, 0x100200);
	CHECK_EQ(regs.rsi, LAYOUT_ZERO_PAGE);
	CHECK_EQ(regs.rflags & ~2ULL, 0); /* interrupts off, reserved bit 1 */
	CHECK_EQ(regs.rflags & 2, 2);
	CHECK_EQ(regs.rax, 0);
	CHECK(regs.rsp != 0 && gm_is_ram(&gm, regs.rsp - 16, 16));

	/* Long mode with paging. */
	CHECK(sregs.cr0 & CR0_PE);
	CHECK(sregs.cr0 & CR0_PG);
	CHECK_EQ(sregs.cr0 & ((1ULL << 29) | (1ULL << 30)), 0); /* NW, CD off: caches on */
	CHECK(sregs.cr4 & CR4_PAE);
	CHECK(sregs.efer & EFER_LME);
	CHECK(sregs.efer & EFER_LMA);
	CHECK_EQ(sregs.cr3, LAYOUT_PML4);
	CHECK_EQ(sregs.apic_base, 0xFEE00900);          /* not entry_prepare's */
	CHECK_EQ(sregs.interrupt_bitmap[0], 0x5a5a);

	/* Segments: 64-bit code, flat data, a busy TSS; all match the GDT. */
	CHECK_EQ(sregs.gdt.base, LAYOUT_BOOT_GDT);
	CHECK_EQ(sregs.cs.selector, ENTRY_SEL_CODE64);
	CHECK_EQ(sregs.cs.l, 1);
	CHECK_EQ(sregs.cs.db, 0);
	CHECK(sregs.cs.type & 8);                          /* code */
	check_segment(&gm, &sregs, &sregs.cs, "cs");
	check_segment(&gm, &sregs, &sregs.ds, "ds");
	check_segment(&gm, &sregs, &sregs.es, "es");
	check_segment(&gm, &sregs, &sregs.ss, "ss");
	check_segment(&gm, &sregs, &sregs.fs, "fs");
	check_segment(&gm, &sregs, &sregs.gs, "gs");
	check_segment(&gm, &sregs, &sregs.tr, "tr");
	CHECK_EQ(sregs.ds.selector, ENTRY_SEL_DATA);
	CHECK_EQ(sregs.ss.type & 8, 0);                    /* data */
	CHECK(sregs.ss.type & 2);                          /* writable */
	CHECK_EQ(sregs.tr.type, 11);                       /* busy 64-bit TSS */

	/* Identity map of 0..4 GiB, 2 MiB pages, writable. */
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		int big = 0, writable = 0;
		uint64_t pa = translate(&gm, sregs.cr3, probes[i], &big, &writable);

		if (pa != probes[i] || big != 21 || !writable)
			fprintf(stderr, "  va 0x%llx -> pa 0x%llx, page shift %d, writable %d\n",
				(unsigned long long)probes[i], (unsigned long long)pa, big,
				writable);
		CHECK_EQ(pa, probes[i]);
		CHECK_EQ(big, 21);
		CHECK(writable);
	}
	/* Every 2 MiB page of the low 4 GiB, not just the probes. */
	int bad = 0;
	for (uint64_t va = 0; va < (4ULL << 30); va += 2ULL << 20) {
		int big = 0, writable = 0;

		bad += translate(&gm, sregs.cr3, va + 0x1234, &big, &writable) != va + 0x1234;
	}
	CHECK_EQ(bad, 0);
	{
		int big = 0, writable = 0;

		CHECK_EQ(translate(&gm, sregs.cr3, 4ULL << 30, &big, &writable), ~0ULL);
	}
	gm_free(&gm);
}

/* The boot structures must not overlap each other (one would overwrite the other). */
static void test_boot_structures_do_not_overlap(void)
{
	struct guest_mem gm;
	struct yun_err err;
	struct boot_entry entry = { .mode = BOOT_LINUX64, .rip = 0x100200,
				    .boot_info = LAYOUT_ZERO_PAGE };
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct { uint64_t start, end; const char *name; } r[6];

	CHECK_EQ(gm_init(&gm, GUEST_MIB << 20, &err), 0);
	reset_sregs(&sregs);
	CHECK_EQ(entry_prepare(&gm, &entry, &regs, &sregs), 0);
	r[0].start = sregs.gdt.base;
	r[0].end = sregs.gdt.base + sregs.gdt.limit + 1;
	r[0].name = "gdt";
	r[1].start = LAYOUT_PML4;
	r[1].end = LAYOUT_PD + 4 * 4096;
	r[1].name = "page tables";
	r[2].start = LAYOUT_ZERO_PAGE;
	r[2].end = LAYOUT_ZERO_PAGE + 4096;
	r[2].name = "zero page";
	r[3].start = LAYOUT_PVH_INFO;
	r[3].end = LAYOUT_PVH_MEMMAP + 0x400;
	r[3].name = "pvh info";
	r[4].start = LAYOUT_CMDLINE;
	r[4].end = LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX;
	r[4].name = "cmdline";
	r[5].start = regs.rsp - 256; /* the first frames of the boot stack */
	r[5].end = regs.rsp;
	r[5].name = "stack";
	for (int i = 0; i < 6; i++)
		for (int j = i + 1; j < 6; j++)
			if (r[i].start < r[j].end && r[j].start < r[i].end) {
				fprintf(stderr, "  %s overlaps %s\n", r[i].name, r[j].name);
				CHECK(0);
			}
	gm_free(&gm);
}

static void test_pvh32(void)
{
	struct guest_mem gm;
	struct yun_err err;
	struct boot_entry entry = { .mode = BOOT_PVH32, .rip = 0x1000040,
				    .boot_info = LAYOUT_PVH_INFO };
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	CHECK_EQ(gm_init(&gm, GUEST_MIB << 20, &err), 0);
	reset_sregs(&sregs);
	memset(&regs, 0xA5, sizeof(regs));
	CHECK_EQ(entry_prepare(&gm, &entry, &regs, &sregs), 0);

	/* PVH: 32-bit protected mode, paging off, EBX = start info. */
	CHECK_EQ(regs.rip, 0x1000040);
	CHECK_EQ(regs.rbx, LAYOUT_PVH_INFO);
	CHECK_EQ(regs.rflags, 2);
	CHECK(sregs.cr0 & CR0_PE);
	CHECK_EQ(sregs.cr0 & CR0_PG, 0);
	CHECK_EQ(sregs.cr0 & ((1ULL << 29) | (1ULL << 30)), 0);
	CHECK_EQ(sregs.efer & (EFER_LME | EFER_LMA), 0);
	CHECK_EQ(sregs.cr4 & CR4_PAE, 0);
	CHECK_EQ(sregs.cs.selector, ENTRY_SEL_CODE32);
	CHECK_EQ(sregs.cs.db, 1);
	CHECK_EQ(sregs.cs.l, 0);
	CHECK_EQ(sregs.cs.base, 0);
	CHECK_EQ(sregs.cs.limit, 0xFFFFFFFF);
	CHECK_EQ(sregs.ds.base, 0);
	CHECK_EQ(sregs.ds.limit, 0xFFFFFFFF);
	CHECK_EQ(sregs.ds.db, 1);
	check_segment(&gm, &sregs, &sregs.cs, "cs");
	check_segment(&gm, &sregs, &sregs.ds, "ds");
	check_segment(&gm, &sregs, &sregs.es, "es");
	check_segment(&gm, &sregs, &sregs.ss, "ss");
	check_segment(&gm, &sregs, &sregs.fs, "fs");
	check_segment(&gm, &sregs, &sregs.gs, "gs");
	check_segment(&gm, &sregs, &sregs.tr, "tr");
	CHECK_EQ(sregs.apic_base, 0xFEE00900);
	gm_free(&gm);
}

/*
 * entry.h: entry_prepare owns every field but the APIC base and the
 * interrupt bitmap, so a PVH entry prepared over a long-mode state must not
 * keep long mode (EFER.LME with paging off is not a state a PVH kernel
 * expects).
 */
static void test_pvh32_over_long_mode_state(void)
{
	struct guest_mem gm;
	struct yun_err err;
	struct boot_entry lm = { .mode = BOOT_LINUX64, .rip = 0x100200,
				 .boot_info = LAYOUT_ZERO_PAGE };
	struct boot_entry pvh = { .mode = BOOT_PVH32, .rip = 0x100000,
				  .boot_info = LAYOUT_PVH_INFO };
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	CHECK_EQ(gm_init(&gm, GUEST_MIB << 20, &err), 0);
	reset_sregs(&sregs);
	CHECK_EQ(entry_prepare(&gm, &lm, &regs, &sregs), 0);
	CHECK_EQ(entry_prepare(&gm, &pvh, &regs, &sregs), 0);
	CHECK_EQ(sregs.cr0 & CR0_PG, 0);
	CHECK_EQ(sregs.efer & (EFER_LME | EFER_LMA), 0);
	CHECK_EQ(regs.rsi, 0);
	CHECK_EQ(regs.rbx, LAYOUT_PVH_INFO);
	gm_free(&gm);
}

int main(void)
{
	RUN(test_linux64);
	RUN(test_boot_structures_do_not_overlap);
	RUN(test_pvh32);
	RUN(test_pvh32_over_long_mode_state);
	return CHECK_DONE();
}
