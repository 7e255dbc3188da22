/*
 * e820.c - case "e820": print the memory map as the guest received it
 * (boot_params e820 table or PVH memmap). The harness checks the sums,
 * the order and the hole below 4 GiB.
 */
#include "cases.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"

void case_e820(void)
{
	u64 ram = 0;

	if (!boot.nmap)
		yt_fail("no memory map");
	for (u32 i = 0; i < boot.nmap; i++) {
		const struct mem_range *m = &boot.map[i];

		yt_printf("YT E820 0x%016lx 0x%016lx %u\n", (unsigned long)m->base,
			  (unsigned long)m->len, m->type);
		if (m->type == MEM_RAM)
			ram += m->len;
	}
	yt_printf("YT E820_ENTRIES %u\n", boot.nmap);
	yt_printf("YT E820_RAM %lu\n", (unsigned long)ram);
	yt_pass();
}
