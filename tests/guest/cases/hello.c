/*
 * hello.c - case "hello": what scripts/run boots for a person to look at.
 * Says how the guest was entered and what it was given, then passes; with
 * no debug-exit device the guest then powers itself off (exit.h).
 */
#include "cases.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/platform.h"

void case_hello(void)
{
	u64 ram = 0;
	u32 nram = 0;

	for (u32 i = 0; i < boot.nmap; i++) {
		if (boot.map[i].type == MEM_RAM) {
			ram += boot.map[i].len;
			nram++;
		}
	}
	yt_printf("YT HELLO Yun test guest, entered through %s (boot info at 0x%lx)\n", boot.entry,
		  (unsigned long)boot.info_addr);
	yt_printf("YT HELLO memory: %lu MiB usable in %u ranges\n", (unsigned long)(ram >> 20),
		  nram);
	if (boot.initrd_size)
		yt_printf("YT HELLO initrd: %lu bytes at 0x%lx\n", (unsigned long)boot.initrd_size,
			  (unsigned long)boot.initrd_addr);
	platform_init();
	yt_printf("YT HELLO CPUs: %u (from %s); run yuntest=smp to start them\n", platform.ncpus,
		  platform.source);
	yt_pass();
}
