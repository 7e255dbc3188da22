/*
 * acpi.h - the ACPI 6.x tables a guest finds at boot: power-off (_S5_ and
 * the hardware-reduced sleep registers), reset, the CPU / IOAPIC topology
 * (MADT) and, with PCI, the ECAM window (MCFG) and the PCI host bridge
 * with its windows and INTx routing (DSDT).
 *
 * The platform is ACPI "hardware reduced": no PM1 blocks, no FACS, no
 * SCI-driven events; sleep control, sleep status and reset are the three
 * I/O ports PORT_PM_SLEEP_CTL / PORT_PM_SLEEP_STS / PORT_PM_RESET (layout.h).
 *
 * Layout, packed upwards from LAYOUT_BIOS_ROM (0xE0000), each table
 * 16-byte aligned, in this order (addresses without PCI, for 1 / 64 vCPUs):
 *
 *   0xE0000  RSDP v2 "RSD PTR " (36 bytes; both checksums)
 *   0xE0030  RSDT (32-bit pointers: FADT, MADT), 44 bytes
 *   0xE0060  XSDT (64-bit pointers: FADT, MADT), 52 bytes
 *   0xE00A0  FADT "FACP" revision 6.0, 276 bytes; DSDT and X_DSDT -> DSDT
 *   0xE01C0  DSDT revision 2 (64-bit integers), 47 bytes without PCI
 *   0xE01F0  MADT "APIC", 82 + 8 * nr_vcpus bytes (ends 0xE024A for 1 vCPU,
 *            0xE0442 for 64): LAPIC at LAYOUT_LAPIC, PCAT_COMPAT; one enabled
 *            local APIC per vCPU (UID = APIC id = index); IOAPIC id nr_vcpus,
 *            GSI base 0; overrides IRQ0 -> GSI2 and IRQ9 (SCI) level/high;
 *            local APIC NMI on LINT1 for all processors.
 *
 * With PCI (acpi_build_pci(..., true, ...)) the RSDT and XSDT list a third
 * table, MCFG, after the MADT: one ECAM allocation at LAYOUT_PCI_ECAM for
 * segment 0, buses 0-255 (the window e820 reserves), 60 bytes. The longer
 * RSDT/XSDT still fit their 16-byte slots; the DSDT grows by the PCI0
 * device (232 bytes in all with no INTx routes, about 50 more per route:
 * 633 with 8), so the MADT and MCFG that follow it move up (MADT at
 * 0xE02B0 with no routes, 0xE0440 with 8).
 *
 * The DSDT's AML is generated at run time (aml.h):
 *
 *   Name (_S5_, Package () { 5, 0 })      SLP_TYPa for SLEEP_CONTROL_REG
 *   Scope (\_SB) { Device (PCI0) {        only with PCI
 *     _HID EisaId ("PNP0A08"), _CID EisaId ("PNP0A03")   PCIe host bridge
 *     _UID 0, _SEG 0, _BBN 0                (no _ADR: a device has _HID or _ADR, not both)
 *     _CRS ResourceTemplate () {
 *       WordBusNumber 0 .. ECAM buses - 1 (0xFF)
 *       IO (Decode16, 0xCF8, 0xCF8, 1, 8)  configuration mechanism #1, consumed
 *       WordIO 0x0D00 .. 0xFFFF            no device has I/O BARs; the rest of
 *                                          the port space, as QEMU passes it down
 *       DWordMemory LAYOUT_PCI_MMIO32 .. + LAYOUT_PCI_MMIO32_SZ - 1
 *       QWordMemory acpi_pci_mmio64_base() .. + LAYOUT_PCI_MMIO64_SZ - 1
 *     }                                    (the two windows pci.c decodes BARs in)
 *     _PRT Package () { one Package () { (slot << 16) | 0xFFFF, pin, 0, GSI }
 *       for each slot in irqs[] and each pin INTA# .. INTD#, GSI =
 *       mptable_pci_intx_gsi(): the MP table's routing by construction }
 *   } }
 *
 * _PRT entries name GSIs directly (Source 0, no PNP0C0F link devices):
 * ACPI then means level triggered, active low, where the MP table says
 * active high. KVM's IOAPIC ignores the polarity bit (a raised line is
 * asserted either way), so both are right for this machine; link devices
 * would only add methods to say "active high".
 *
 * No _OSC, on purpose: it hands PCIe features (native hotplug, AER, PME,
 * LTR, DPC) from firmware to the OS, and this bus has none of them (no
 * root ports, no PCIe capabilities). Linux then logs "_OSC: platform
 * retains control of PCIe features (AE_NOT_FOUND)" and leaves ASPM alone,
 * which is the truth. No _STA either: the bridge is always present.
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
#include "mptable.h"

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

/*
 * As acpi_build, plus, when `pci`, the MCFG and the DSDT's PCI0 device with
 * an INTx route for each of irqs[0..nr_irqs) (the MP table's list, vm.c's
 * wiring). -EINVAL for more than MPTABLE_MAX_PCI_IRQS routes, a slot
 * outside 1..31 or given twice, or a GSI of 0.
 */
int acpi_build_pci(struct guest_mem *gm, unsigned nr_vcpus, bool pci,
		   const struct mptable_pci_irq *irqs, unsigned nr_irqs, uint64_t *rsdp_gpa,
		   struct yun_err *err);

/*
 * Base of the 64-bit PCI window (LAYOUT_PCI_MMIO64_SZ bytes): the first
 * LAYOUT_PCI_MMIO64_ALIGN boundary at or above both 4 GiB and the end of
 * RAM. vm.c gives the PCI bus this window; the DSDT's _CRS describes it.
 */
uint64_t acpi_pci_mmio64_base(const struct guest_mem *gm);

#endif
