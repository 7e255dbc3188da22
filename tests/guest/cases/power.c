/*
 * power.c - cases "poweroff", "reset" and "triplefault": the ways a guest
 * ends its VM other than the debug-exit port.
 *
 * poweroff: ACPI S5 as the FADT and DSDT describe it (acpi.h). Expected:
 *   the VMM exits with status 0.
 * reset: i8042 pulse (0xfe to port 0x64), then the FADT RESET_REG, then a
 *   triple fault. Expected: the VMM exits with status 0 (QEMU: -no-reboot).
 *   "yt.reset=fadt" skips the i8042, to prove the FADT's reset register.
 *   machine_reset() is that sequence, for other cases that end by a reset.
 * triplefault: empty IDT + ud2. Expected: the VMM exits non-zero and says
 *   why on stderr.
 */
#include "cases.h"
#include "../kernel/acpi.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/trap.h"

static const char *space_name(const struct acpi_gas *g)
{
	return g->space == ACPI_SPACE_IO ? "io" : g->space == ACPI_SPACE_MEM ? "mem" : "other";
}

/*
 * Empty IDT, then an exception: #UD cannot be delivered (#GP), nor can the
 * #GP (#DF), nor the #DF: shutdown. ud2 rather than int3 because on PVM
 * hosts CPL0 code runs in KVM's instruction emulator, which does not
 * emulate software interrupts in long mode (KVM internal error instead).
 */
static _Noreturn void triple_fault(void)
{
	cli();
	trap_load_empty_idt();
	__asm__ volatile("ud2");
	yt_fail("still running after a triple fault");
}

void case_poweroff(void)
{
	struct acpi_s5 m;
	const char *why;

	interrupts_init();
	if (!acpi_s5_method(&m, &why))
		yt_fail("%s", why);
	yt_printf("YT FADT hw_reduced=%d s5=%d\n", m.hw_reduced, m.slp_typ);
	if (m.hw_reduced)
		yt_printf("YT POWEROFF sleep-control %s 0x%lx 0x%x\n", space_name(&m.sleep_control),
			  (unsigned long)m.sleep_control.addr, m.value);
	else
		yt_printf("YT POWEROFF pm1-cnt io 0x%x 0x%x\n", m.pm1a_cnt, m.value);
	acpi_s5_enter(&m);
	delay_ms(2000);
	yt_fail("still running 2 s after the S5 request");
}

void case_reset(void)
{
	interrupts_init();
	machine_reset();
}

void machine_reset(void)
{
	struct acpi_fadt_info f;

	if (!cmdline_is("yt.reset", "fadt")) {
		yt_printf("YT RESET i8042\n");
		outb(0x64, 0xfe);
		delay_ms(500);
	}

	if (acpi_fadt(&f) && f.has_reset_reg) {
		yt_printf("YT RESET fadt %s 0x%lx 0x%x\n", space_name(&f.reset_reg),
			  (unsigned long)f.reset_reg.addr, f.reset_value);
		acpi_gas_write(&f.reset_reg, f.reset_value);
		delay_ms(500);
	}
	yt_printf("YT RESET triple-fault\n");
	triple_fault();
}

void case_triplefault(void)
{
	yt_printf("YT TRIPLEFAULT\n");
	triple_fault();
}
