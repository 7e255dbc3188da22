/*
 * mptable.h - the Intel MultiProcessor Specification 1.4 table: how a
 * guest without ACPI (or booted with acpi=off) finds its CPUs, the IOAPIC
 * and the ISA interrupt routing. With ACPI the MADT (acpi.h) says the same.
 *
 * Layout, one contiguous block starting at LAYOUT_EBDA (0x9FC00):
 *
 *   LAYOUT_EBDA + 0x00   MP floating pointer "_MP_" (16 bytes, 16-aligned)
 *   LAYOUT_EBDA + 0x10   MP configuration table "PCMP":
 *                          44-byte header
 *                          one processor entry (20 bytes) per vCPU
 *                          bus 0 "ISA   "
 *                          IOAPIC, id = nr_vcpus, version 0x11, LAYOUT_IOAPIC
 *                          I/O interrupts: ISA IRQ 0 -> pin 2, IRQ 1, 3..15 ->
 *                          pin = IRQ (IRQ 2 is the 8259 cascade, never a
 *                          device line, so it has no entry)
 *                          local interrupts: ExtINT -> LINT0, NMI -> LINT1
 *
 * With PCI devices (mptable_build_pci): bus 1 "PCI   " (PCI bus 0) after the
 * ISA bus, and after the ISA interrupts one I/O interrupt entry per PCI
 * INTx: source bus 1, IRQ (slot << 2) | 0 (INTA#), flags level triggered /
 * active high (explicit, because KVM's IOAPIC treats a raised line as
 * asserted), destination the IOAPIC pin = GSI 16..23. Guests booted with
 * ACPI read the same routing from the DSDT's _PRT (acpi.h); both tables
 * are written from mptable_pci_intx_gsi(), so they cannot disagree.
 *
 * Size: 16 + 196 + 20 * nr_vcpus bytes. Up to 40 vCPUs this fits in the
 * EBDA's first KiB; for LAYOUT_MAX_VCPUS (64) it is 1492 bytes and runs on
 * to 0xA01D4, into the legacy VGA hole. That is still inside the range
 * e820 reports reserved ([LAYOUT_EBDA, LAYOUT_HIMEM)) and below the ACPI
 * tables at LAYOUT_BIOS_ROM. Linux finds the floating pointer by scanning
 * 0x9FC00..0xA0000 (and the EBDA, and 0xF0000..0xFFFFF); the configuration
 * table may be anywhere, the pointer gives its address.
 */
#ifndef YUN_VMM_BOOT_MPTABLE_H
#define YUN_VMM_BOOT_MPTABLE_H

#include <stdint.h>

#include "../../lib/err.h"
#include "../memory.h"

#define MPTABLE_IOAPIC_VER  0x11
#define MPTABLE_LAPIC_VER   0x14

#define MPTABLE_MAX_PCI_IRQS 8

#define MPTABLE_PCI_PINS 4 /* INTA# .. INTD# */

struct mptable_pci_irq {
	uint8_t slot; /* PCI device number on bus 0 */
	uint8_t gsi;  /* IOAPIC pin its INTA# drives */
};

/*
 * INTx routing, the one rule both boot tables are written from: the GSI
 * that pin `pin` (0 = INTA# .. 3 = INTD#) of the device in `slot` raises,
 * 0 if irqs[] gives the slot no line. A Yun PCI device has one interrupt
 * line (vm.c wires it to the GSI in irqs[]; the device's Interrupt Pin
 * register says INTA#), so every pin of a slot is that line. The MP table
 * lists INTA#, the only pin a device declares; the DSDT's _PRT all four.
 */
uint8_t mptable_pci_intx_gsi(const struct mptable_pci_irq *irqs, unsigned nr, unsigned slot,
			     unsigned pin);

/* Bytes the whole block (floating pointer + configuration table) takes. */
uint64_t mptable_size(unsigned nr_vcpus);

/*
 * Write the MP table for nr_vcpus (1..LAYOUT_MAX_VCPUS) at LAYOUT_EBDA.
 * -EINVAL for a bad vCPU count, -EFAULT if guest RAM does not cover it.
 */
int mptable_build(struct guest_mem *gm, unsigned nr_vcpus, struct yun_err *err);

/* The same with a PCI bus and nr_irqs (<= MPTABLE_MAX_PCI_IRQS) INTx entries. */
uint64_t mptable_size_pci(unsigned nr_vcpus, const struct mptable_pci_irq *irqs, unsigned nr);
int mptable_build_pci(struct guest_mem *gm, unsigned nr_vcpus, const struct mptable_pci_irq *irqs,
		      unsigned nr_irqs, struct yun_err *err);

#endif
