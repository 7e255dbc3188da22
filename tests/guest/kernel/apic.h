/*
 * apic.h - local APIC, IOAPIC and 8259 PIC, plus the guest's clock.
 *
 * Interrupt routing follows the firmware tables (platform.h): an ISA IRQ
 * becomes a GSI (through an interrupt source override if there is one),
 * the GSI picks an IOAPIC and pin, and the pin is sent to the BSP.
 */
#ifndef YT_APIC_H
#define YT_APIC_H

#include "io.h"

#define LAPIC_DEFAULT_BASE  0xfee00000ULL
#define IOAPIC_DEFAULT_BASE 0xfec00000ULL

/* Once per boot: firmware tables, 8259s off, this CPU's LAPIC on. */
void interrupts_init(void);

void pic_disable(void); /* remap both 8259s to 0x20-0x2f and mask them */

void lapic_init(void); /* enable this CPU's LAPIC (SVR), LINT0 masked */
u32 lapic_id(void);
void lapic_eoi(void);
void lapic_send_init(u32 apic_id);
void lapic_send_sipi(u32 apic_id, u8 vector_page);

/*
 * Route ISA `irq` to `vector` on this CPU. Returns the GSI used; *how
 * receives a short description of where the mapping came from.
 */
int ioapic_route_isa_irq(u8 irq, u8 vector, const char **how);
void ioapic_mask_gsi(u32 gsi);

/*
 * The guest's clock: the LAPIC timer in periodic mode at CLOCK_HZ. KVM's
 * emulated APIC timer counts at 1 GHz (APIC bus cycle 1 ns), so no
 * calibration; the timer case cross-checks it against the PIT.
 * clock_start() also enables interrupts.
 */
#define CLOCK_HZ 100
void clock_start(void);
extern volatile u64 clock_ticks;
u64 clock_ms(void);

/*
 * Halt until `done(arg)` is true or `ms` have passed; interrupts stay
 * enabled. Returns done's last answer.
 */
bool wait_until(bool (*done)(void *arg), void *arg, u64 ms);
void delay_ms(u64 ms);

#endif
