/* apic.c - LAPIC, IOAPIC and PIC programming; the LAPIC-timer clock. */
#include "apic.h"
#include "console.h"
#include "platform.h"
#include "trap.h"

#define LAPIC_ID	0x020
#define LAPIC_TPR	0x080
#define LAPIC_EOI	0x0b0
#define LAPIC_SVR	0x0f0
#define LAPIC_ICR_LO	0x300
#define LAPIC_ICR_HI	0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_TMICT	0x380
#define LAPIC_TMCCT	0x390
#define LAPIC_TDCR	0x3e0

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_EN  (1ULL << 11)

#define ICR_INIT     0x00000500
#define ICR_STARTUP  0x00000600
#define ICR_ASSERT   0x00004000
#define ICR_BUSY     0x00001000
#define LVT_MASKED   0x00010000
#define LVT_PERIODIC 0x00020000

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN    0x10
#define IOAPIC_VER    0x01
#define IOAPIC_REDTBL 0x10

#define KVM_APIC_HZ 1000000000ULL /* KVM's APIC bus: 1 ns per cycle */

static u64 lapic_base(void)
{
	return platform.lapic_base ? platform.lapic_base : LAPIC_DEFAULT_BASE;
}

static u32 lapic_read(u32 reg)
{
	return mmio_read32(lapic_base() + reg);
}

static void lapic_write(u32 reg, u32 v)
{
	mmio_write32(lapic_base() + reg, v);
}

void pic_disable(void)
{
	outb(0x20, 0x11); /* ICW1: init, ICW4 follows */
	outb(0xa0, 0x11);
	outb(0x21, VEC_PIC_BASE); /* ICW2: vector base */
	outb(0xa1, VEC_PIC_BASE + 8);
	outb(0x21, 0x04); /* ICW3: slave on IRQ2 */
	outb(0xa1, 0x02);
	outb(0x21, 0x01); /* ICW4: 8086 mode */
	outb(0xa1, 0x01);
	outb(0x21, 0xff); /* mask everything */
	outb(0xa1, 0xff);
}

void lapic_init(void)
{
	u64 base = rdmsr(MSR_APIC_BASE);

	if (!(base & APIC_BASE_EN))
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_EN);
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
}

u32 lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

static void lapic_icr(u32 apic_id, u32 lo)
{
	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, lo);
	for (unsigned i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++)
		cpu_relax();
}

void lapic_send_init(u32 apic_id)
{
	lapic_icr(apic_id, ICR_INIT | ICR_ASSERT);
}

void lapic_send_sipi(u32 apic_id, u8 vector_page)
{
	lapic_icr(apic_id, ICR_STARTUP | ICR_ASSERT | vector_page);
}

void interrupts_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	platform_init();
	pic_disable();
	lapic_init();
}

/* ---- IOAPIC ---- */

static u32 ioapic_read(u64 base, u32 reg)
{
	mmio_write32(base + IOAPIC_REGSEL, reg);
	return mmio_read32(base + IOAPIC_WIN);
}

static void ioapic_write(u64 base, u32 reg, u32 v)
{
	mmio_write32(base + IOAPIC_REGSEL, reg);
	mmio_write32(base + IOAPIC_WIN, v);
}

/* The IOAPIC serving `gsi`, and the pin on it. */
static bool ioapic_for_gsi(u32 gsi, u64 *base, u32 *pin)
{
	for (u32 i = 0; i < platform.nioapic; i++) {
		const struct ioapic_info *io = &platform.ioapic[i];
		u32 pins = ((ioapic_read(io->addr, IOAPIC_VER) >> 16) & 0xff) + 1;

		if (gsi >= io->gsi_base && gsi < io->gsi_base + pins) {
			*base = io->addr;
			*pin = gsi - io->gsi_base;
			return true;
		}
	}
	if (platform.nioapic == 0 && gsi < 24) {
		*base = IOAPIC_DEFAULT_BASE;
		*pin = gsi;
		return true;
	}
	return false;
}

int ioapic_route_isa_irq(u8 irq, u8 vector, const char **how)
{
	u16 flags = 0;
	u32 gsi = platform_isa_irq_to_gsi(irq, &flags, how);
	u64 base;
	u32 pin;

	if (!ioapic_for_gsi(gsi, &base, &pin))
		yt_fail("no IOAPIC serves GSI %u (ISA IRQ %u)", gsi, irq);

	/* MPS INTI flags: polarity bits 0-1, trigger bits 2-3; ISA default edge/high. */
	u32 lo = vector;
	if ((flags & 3) == 3)
		lo |= 1u << 13; /* active low */
	if (((flags >> 2) & 3) == 3)
		lo |= 1u << 15; /* level */
	ioapic_write(base, IOAPIC_REDTBL + 2 * pin + 1, lapic_id() << 24);
	ioapic_write(base, IOAPIC_REDTBL + 2 * pin, lo);
	return (int)gsi;
}

void ioapic_mask_gsi(u32 gsi)
{
	u64 base;
	u32 pin;

	if (ioapic_for_gsi(gsi, &base, &pin))
		ioapic_write(base, IOAPIC_REDTBL + 2 * pin, LVT_MASKED);
}

/* ---- clock ---- */

volatile u64 clock_ticks;

static void clock_tick(struct trap_frame *f)
{
	(void)f;
	clock_ticks++;
	lapic_eoi();
}

void clock_start(void)
{
	static bool started;

	if (started)
		return;
	started = true;
	trap_set_handler(VEC_LAPIC_TIMER, clock_tick);
	lapic_write(LAPIC_TDCR, 0x3); /* divide by 16 */
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VEC_LAPIC_TIMER);
	lapic_write(LAPIC_TMICT, (u32)(KVM_APIC_HZ / 16 / CLOCK_HZ));
	sti();
}

u64 clock_ms(void)
{
	return clock_ticks * (1000 / CLOCK_HZ);
}

bool wait_until(bool (*done)(void *arg), void *arg, u64 ms)
{
	u64 end = clock_ticks + (ms * CLOCK_HZ + 999) / 1000;

	clock_start();
	for (;;) {
		cli();
		if (done(arg)) {
			sti();
			return true;
		}
		if (clock_ticks >= end) {
			sti();
			return false;
		}
		sti_hlt();
	}
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

void delay_ms(u64 ms)
{
	wait_until(never, NULL, ms);
}
