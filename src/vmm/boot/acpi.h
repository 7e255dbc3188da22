/*
 * acpi.h - the ACPI 6.x tables a guest finds at boot: power-off (_S5_ and
 * the hardware-reduced sleep registers), reset, and the CPU / IOAPIC
 * topology (MADT).
 *
 * The platform is ACPI "hardware reduced": no PM1 blocks, no FACS, no
 * SCI-driven events; sleep control, sleep status and reset are the three
 * I/O ports PORT_PM_SLEEP_CTL / PORT_PM_SLEEP_STS / PORT_PM_RESET (layout.h).
 *
 * Layout, packed upwards from LAYOUT_BIOS_ROM (0xE0000), each table
 * 16-byte aligned, in this order (addresses for 1 / 64 vCPUs):
 *
 *   0xE0000  RSDP v2 "RSD PTR " (36 bytes; both checksums)
 *   0xE0030  RSDT (32-bit pointers: FADT, MADT), 44 bytes
 *   0xE0060  XSDT (64-bit pointers: FADT, MADT), 52 bytes
 *   0xE00A0  FADT "FACP" revision 6.0, 276 bytes; DSDT and X_DSDT -> DSDT
 *   0xE01C0  DSDT, 48 bytes: Name (_S5_, Package () { 5, 0 })
 *   0xE01F0  MADT "APIC", 82 + 8 * nr_vcpus bytes (ends 0xE024A for 1 vCPU,
 *            0xE0442 for 64): LAPIC at LAYOUT_LAPIC, PCAT_COMPAT; one enabled
 *            local APIC per vCPU (UID = APIC id = index); IOAPIC id nr_vcpus,
 *            GSI base 0; overrides IRQ0 -> GSI2 and IRQ9 (SCI) level/high;
 *            local APIC NMI on LINT1 for all processors.
 *
 * With PCI (acpi_build_pci(..., true, ...)) the RSDT and XSDT list a third
 * table, MCFG, after the MADT: one ECAM allocation at LAYOUT_PCI_ECAM for
 * segment 0, buses 0-255 (the window e820 reserves), 60 bytes right after
 * the MADT; the longer RSDT/XSDT still fit their 16-byte slots, so every
 * other table keeps its address. PCI devices are found by scanning
 * bus 0 (no DSDT host bridge object, no _PRT: INTx routing is in the MP
 * table, and guests are expected to use MSI-X).
 *
 * Everything stays far below LAYOUT_BIOS_ROM_END; e820 reports the whole
 * [LAYOUT_EBDA, LAYOUT_HIMEM) range reserved. Linux finds the RSDP from
 * the zero page (acpi_rsdp_addr) or the PVH start info (rsdp_paddr), and
 * failing those by scanning 0xE0000..0xFFFFF.
 */
#ifndef YUN_VMM_BOOT_ACPI_H
#define YUN_VMM_BOOT_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../memory.h"

#define ACPI_OEM_ID       "YUN   "    /* 6 bytes */
#define ACPI_OEM_TABLE_ID "YUNVMM  "  /* 8 bytes */
#define ACPI_HYPERVISOR_ID "YUNVMM  " /* FADT hypervisor vendor identity, 8 bytes */

/*
 * Write the tables for nr_vcpus (1..LAYOUT_MAX_VCPUS) and return the RSDP's
 * guest-physical address in *rsdp_gpa. -EINVAL for a bad vCPU count,
 * -EFAULT if guest RAM does not cover the BIOS area.
 */
int acpi_build(struct guest_mem *gm, unsigned nr_vcpus, uint64_t *rsdp_gpa,
	       struct yun_err *err);

/* As acpi_build, plus an MCFG describing the PCI ECAM window when `pci`. */
int acpi_build_pci(struct guest_mem *gm, unsigned nr_vcpus, bool pci, uint64_t *rsdp_gpa,
		   struct yun_err *err);

#endif
