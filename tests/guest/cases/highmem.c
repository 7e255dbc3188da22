/*
 * highmem.c - case "highmem": RAM above 4 GiB from the memory map, mapped
 * with 2 MiB pages, written with an address-derived pattern at its first
 * page, every GiB boundary, its middle and its last page, then read back.
 * Prints "YT HIGHMEM <first byte> <last byte>".
 */
#include "cases.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/paging.h"

#define FOUR_GIB    0x100000000ULL
#define MAX_PROBES  64
#define PROBE_WORDS 8

static u64 pattern(u64 addr)
{
	return (addr * 0x9e3779b97f4a7c15ULL) ^ 0x5a5a5a5a5a5a5a5aULL;
}

void case_highmem(void)
{
	u64 probes[MAX_PROBES];
	u32 nprobe = 0;
	u64 first = 0, last = 0, total = 0;

	for (u32 i = 0; i < boot.nmap; i++) {
		const struct mem_range *m = &boot.map[i];
		u64 end = m->base + m->len;

		if (m->type != MEM_RAM || end <= FOUR_GIB)
			continue;
		u64 lo = m->base > FOUR_GIB ? m->base : FOUR_GIB;
		if (!first || lo < first)
			first = lo;
		if (end - 1 > last)
			last = end - 1;
		total += end - lo;
		if (!paging_map_identity(lo, end - lo))
			yt_fail("cannot map 0x%lx..0x%lx", (unsigned long)lo, (unsigned long)end);

		u64 cand[] = {lo, (lo + (end - lo) / 2) & ~0xfffULL, end - 4096,
			      end - PROBE_WORDS * 8};
		for (u32 k = 0; k < 4 && nprobe < MAX_PROBES; k++)
			probes[nprobe++] = cand[k];
		for (u64 g = (lo + (1ULL << 30)) & ~((1ULL << 30) - 1);
		     g < end && nprobe < MAX_PROBES; g += 1ULL << 30)
			probes[nprobe++] = g - PROBE_WORDS * 8; /* straddle nothing, end a GiB */
	}
	if (!total)
		yt_fail("no RAM above 4 GiB in the memory map");
	yt_printf("YT HIGHMEM_BYTES %lu\n", (unsigned long)total);

	for (u32 k = 0; k < nprobe; k++)
		for (u32 w = 0; w < PROBE_WORDS; w++) {
			u64 a = probes[k] + 8 * w;
			*(volatile u64 *)a = pattern(a);
		}
	for (u32 k = 0; k < nprobe; k++)
		for (u32 w = 0; w < PROBE_WORDS; w++) {
			u64 a = probes[k] + 8 * w, got = *(volatile u64 *)a;
			if (got != pattern(a))
				yt_fail("at 0x%lx read 0x%lx, wrote 0x%lx", (unsigned long)a,
					(unsigned long)got, (unsigned long)pattern(a));
		}
	yt_printf("YT HIGHMEM_PROBES %u\n", nprobe);
	yt_printf("YT HIGHMEM 0x%lx 0x%lx\n", (unsigned long)first, (unsigned long)last);
	yt_pass();
}
