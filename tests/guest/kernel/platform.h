/*
 * platform.h - what the firmware tables say about the machine: the CPUs'
 * APIC ids, the IOAPICs and how ISA IRQs map to GSIs. Filled from the ACPI
 * MADT or, if there is no ACPI (or yt.tables=mp is on the command line),
 * from the MP table.
 */
#ifndef YT_PLATFORM_H
#define YT_PLATFORM_H

#include "io.h"

#define MAX_CPUS      64
#define MAX_IOAPICS   8
#define MAX_OVERRIDES 32

struct ioapic_info {
	u32 id;
	u64 addr;
	u32 gsi_base;
};

struct irq_override {
	u8 irq; /* ISA IRQ */
	u32 gsi;
	u16 flags; /* MPS INTI flags: polarity bits 0-1, trigger bits 2-3 */
};

struct platform {
	const char *source; /* "acpi", "mptable" or "none" */
	u64 lapic_base;
	u32 ncpus;
	u32 apic_id[MAX_CPUS]; /* enabled CPUs, in table order */
	u32 nioapic;
	struct ioapic_info ioapic[MAX_IOAPICS];
	u32 noverride;
	struct irq_override override[MAX_OVERRIDES];
};

extern struct platform platform;

/* Parse the tables once; later calls return at once. */
void platform_init(void);

/* The GSI ISA `irq` arrives on, its flags, and where that came from. */
u32 platform_isa_irq_to_gsi(u8 irq, u16 *flags, const char **how);

/* Add a CPU / IOAPIC / override (for the table parsers). */
void platform_add_cpu(u32 apic_id);
void platform_add_ioapic(u32 id, u64 addr, u32 gsi_base);
void platform_add_override(u8 irq, u32 gsi, u16 flags);

#endif
