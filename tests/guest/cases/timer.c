/*
 * timer.c - case "timer": PIT channel 0 as a 100 Hz rate generator, ISA
 * IRQ0 routed through the IOAPIC (pin from the MADT override or MP table).
 * Prints "YT TICK 0" at a tick and "YT TICK 50" fifty ticks later; the
 * harness times the two lines on the host (0.5 s expected). The LAPIC
 * timer clock's ticks over the same span are printed too (also ~50).
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/console.h"
#include "../kernel/trap.h"

#define PIT_HZ	1193182
#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define TICK_HZ 100

static volatile u64 pit_ticks;

static void pit_irq(struct trap_frame *f)
{
	(void)f;
	pit_ticks++;
	lapic_eoi();
}

static bool pit_reached(void *arg)
{
	return pit_ticks >= *(const u64 *)arg;
}

static u16 pit_read_ch0(void)
{
	outb(PIT_CMD, 0x00); /* latch channel 0 */
	u8 lo = inb(PIT_CH0);
	return (u16)(lo | inb(PIT_CH0) << 8);
}

void case_timer(void)
{
	const char *how;
	u16 divisor = (PIT_HZ + TICK_HZ / 2) / TICK_HZ;

	interrupts_init();
	trap_set_handler(VEC_PIT, pit_irq);
	int gsi = ioapic_route_isa_irq(0, VEC_PIT, &how);
	yt_printf("YT IRQ0_GSI %d %s\n", gsi, how);

	outb(PIT_CMD, 0x34); /* channel 0, lo/hi byte, mode 2, binary */
	outb(PIT_CH0, (u8)divisor);
	outb(PIT_CH0, (u8)(divisor >> 8));
	clock_start();

	u64 want = 1;
	if (!wait_until(pit_reached, &want, 2000)) {
		u16 a = pit_read_ch0(), b = pit_read_ch0();
		yt_fail(
		    "no IRQ0 interrupt within 2 s (GSI %d, vector 0x%x; PIT counter %u then %u; "
		    "LAPIC clock ticks %lu)",
		    gsi, VEC_PIT, a, b, (unsigned long)clock_ticks);
	}
	u64 t0 = pit_ticks, c0 = clock_ticks;
	yt_printf("YT TICK 0\n");
	want = t0 + 50;
	if (!wait_until(pit_reached, &want, 5000))
		yt_fail("only %lu PIT ticks in 5 s", (unsigned long)(pit_ticks - t0));
	u64 c1 = clock_ticks;
	yt_printf("YT TICK 50\n");
	yt_printf("YT LAPIC_TICKS %lu\n", (unsigned long)(c1 - c0));
	yt_pass();
}
