/* platform.c - picks the table source and answers routing questions. */
#include "platform.h"
#include "acpi.h"
#include "boot.h"
#include "console.h"
#include "mptable.h"

struct platform platform;

void platform_add_cpu(u32 apic_id)
{
	if (platform.ncpus < MAX_CPUS)
		platform.apic_id[platform.ncpus++] = apic_id;
}

void platform_add_ioapic(u32 id, u64 addr, u32 gsi_base)
{
	if (platform.nioapic < MAX_IOAPICS)
		platform.ioapic[platform.nioapic++] = (struct ioapic_info){id, addr, gsi_base};
}

void platform_add_override(u8 irq, u32 gsi, u16 flags)
{
	if (platform.noverride < MAX_OVERRIDES)
		platform.override[platform.noverride++] = (struct irq_override){irq, gsi, flags};
}

void platform_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	platform.source = "none";
	if (!cmdline_is("yt.tables", "mp") && acpi_parse_madt())
		platform.source = "acpi";
	else if (mptable_parse())
		platform.source = "mptable";
	yt_printf("YT TABLES %s cpus=%u ioapics=%u overrides=%u rsdp=0x%lx rsdp_from=%s\n",
		  platform.source, platform.ncpus, platform.nioapic, platform.noverride,
		  (unsigned long)acpi_rsdp(), acpi_rsdp_from);
}

u32 platform_isa_irq_to_gsi(u8 irq, u16 *flags, const char **how)
{
	platform_init();
	for (u32 i = 0; i < platform.noverride; i++) {
		if (platform.override[i].irq == irq) {
			*flags = platform.override[i].flags;
			*how = platform.source[0] == 'a' ? "madt-override" : "mptable";
			return platform.override[i].gsi;
		}
	}
	*flags = 0;
	/*
	 * No entry. ACPI says that means GSI = IRQ; but every KVM VMM wires the
	 * PIT to pin 2, so for IRQ0 assume that (and say so).
	 */
	if (irq == 0) {
		*how = "default-pin2";
		return 2;
	}
	*how = "identity";
	return irq;
}
