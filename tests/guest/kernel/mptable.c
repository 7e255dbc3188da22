/*
 * mptable.c - finds the MP floating pointer ("_MP_": EBDA, last KiB of base
 * memory, 0xf0000-0xfffff) and reads processors, IOAPICs and the ISA
 * interrupt assignments from the configuration table ("PCMP").
 */
#include "mptable.h"
#include "console.h"
#include "lib.h"
#include "platform.h"

static u64 scan_mpf(u64 start, u64 end)
{
	for (u64 a = start; a < end; a += 16) {
		const u8 *p = (const u8 *)a;

		if (*(const volatile u32 *)a == 0x5f504d5f /* "_MP_" */ && p[8] == 1 &&
		    !byte_sum(p, 16))
			return a;
	}
	return 0;
}

static u64 find_mpf(void)
{
	u64 ebda = (u64) * (const volatile u16 *)0x40e << 4;
	u64 basemem = (u64) * (const volatile u16 *)0x413 * 1024;
	u64 a = 0;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		a = scan_mpf(ebda, ebda + 1024);
	if (!a && basemem >= 0x80000 && basemem <= 0xa0000)
		a = scan_mpf(basemem - 1024, basemem);
	if (!a)
		a = scan_mpf(0x9fc00, 0xa0000);
	if (!a)
		a = scan_mpf(0xf0000, 0x100000);
	return a;
}

bool mptable_parse(void)
{
	u64 mpf = find_mpf();

	if (!mpf)
		return false;
	u64 cfg = *(const u32 *)(mpf + 4);
	const u8 *c = (const u8 *)cfg;

	if (!cfg || memcmp(c, "PCMP", 4))
		return false;
	u16 len = *(const u16 *)(c + 4);
	if (byte_sum(c, len))
		return false;
	platform.lapic_base = *(const u32 *)(c + 36);
	/*
	 * Walk by the table length, as Linux does, not by the entry count:
	 * QEMU microvm's firmware (qboot) leaves the count at 0.
	 */
	const u8 *end = c + len;

	/* Bus ids that are ISA, and IOAPIC id -> GSI base (pin counts unknown: 24). */
	u8 isa_bus[8];
	u32 nisa = 0;
	const u8 *e = c + 44;

	while (e < end) {
		switch (e[0]) {
		case 0: /* processor */
			if (e[3] & 1)
				platform_add_cpu(e[1]);
			e += 20;
			break;
		case 1: /* bus */
			if (!memcmp(e + 2, "ISA", 3) && nisa < ARRAY_SIZE(isa_bus))
				isa_bus[nisa++] = e[1];
			e += 8;
			break;
		case 2: /* IOAPIC */
			if (e[3] & 1)
				platform_add_ioapic(e[1], *(const u32 *)(e + 4),
						    24 * platform.nioapic);
			e += 8;
			break;
		case 3: /* I/O interrupt: second pass */
		case 4: /* local interrupt */
			e += 8;
			break;
		default: /* unknown: its size is unknown too */
			e = end;
			break;
		}
	}

	e = c + 44;
	while (e < end && e[0] <= 4) {
		if (e[0] == 0) {
			e += 20;
			continue;
		}
		if (e[0] == 3 && e[1] == 0 /* INT */) {
			bool isa = false;
			for (u32 b = 0; b < nisa; b++)
				isa |= isa_bus[b] == e[4];
			for (u32 k = 0; isa && k < platform.nioapic; k++)
				if (platform.ioapic[k].id == e[6])
					platform_add_override(e[5],
							      platform.ioapic[k].gsi_base + e[7],
							      *(const u16 *)(e + 2));
		}
		e += 8;
	}
	return true;
}
