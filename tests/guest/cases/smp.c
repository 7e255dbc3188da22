/*
 * smp.c - case "smp": start every CPU the firmware tables list with
 * INIT-SIPI-SIPI. The 16-bit trampoline (head.S) is copied to TRAMP_BASE;
 * an AP goes real -> protected -> long mode on the boot page tables, takes
 * the stack the BSP left in ap_stack_top, prints "YT CPU <apic id> online"
 * and counts itself. The BSP starts the APs one at a time, waits at most
 * 20 s in all, then prints "YT CPUS <n>".
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/console.h"
#include "../kernel/layout.h"
#include "../kernel/lib.h"
#include "../kernel/platform.h"
#include "../kernel/trap.h"

#define AP_STACK      8192
#define SMP_BUDGET_MS 20000

extern const u8 tramp_start[], tramp_end[];
extern void halt_forever(void);

volatile u64 ap_stack_top; /* read by head.S */
static volatile u32 cpus_online;
static u8 ap_stacks[MAX_CPUS][AP_STACK] __attribute__((aligned(16), section(".noinit")));

void ap_main(void)
{
	trap_load_idt();
	yt_printf("YT CPU %u online\n", lapic_id());
	__atomic_fetch_add(&cpus_online, 1, __ATOMIC_SEQ_CST); /* lock xadd */
	halt_forever();
}

static bool online_above(void *arg)
{
	return cpus_online > *(const u32 *)arg;
}

void case_smp(void)
{
	interrupts_init();
	u32 bsp = lapic_id();

	if (!platform.ncpus)
		yt_fail("no CPUs in the firmware tables (%s)", platform.source);
	memcpy((void *)TRAMP_BASE, tramp_start, (size_t)(tramp_end - tramp_start));
	yt_printf("YT CPU %u online\n", bsp);
	cpus_online = 1;
	clock_start();

	u64 deadline = clock_ms() + SMP_BUDGET_MS;
	for (u32 i = 0; i < platform.ncpus; i++) {
		u32 id = platform.apic_id[i];
		u32 before = cpus_online;

		if (id == bsp)
			continue;
		if (clock_ms() >= deadline)
			break;
		ap_stack_top = (u64)(uintptr_t)&ap_stacks[i][AP_STACK];
		lapic_send_init(id);
		delay_ms(10);
		lapic_send_sipi(id, TRAMP_BASE >> 12);
		if (!wait_until(online_above, &before, 200)) {
			lapic_send_sipi(id, TRAMP_BASE >> 12);
			u64 now = clock_ms();
			wait_until(online_above, &before, deadline > now ? deadline - now : 0);
		}
		if (cpus_online == before)
			yt_printf("YT WARN cpu %u did not come online\n", id);
	}
	yt_printf("YT CPUS %u\n", cpus_online);
	if (cpus_online != platform.ncpus)
		yt_fail("%u of %u CPUs came online", cpus_online, platform.ncpus);
	yt_pass();
}
