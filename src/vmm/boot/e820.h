/*
 * e820.h - the guest's physical memory map, as the BIOS E820 call would
 * report it. One map serves both boot paths: the bzImage zero page
 * (boot_params.e820_table) and the PVH start info (hvm_memmap_table_entry);
 * the type numbers are the same in both (and in the ACPI spec).
 *
 * The map, from struct guest_mem (memory.h) and layout.h:
 *
 *   [0, LAYOUT_EBDA)                      RAM
 *   [LAYOUT_EBDA, LAYOUT_HIMEM)           reserved: EBDA (MP table), the
 *                                         legacy VGA/ROM hole, and the BIOS
 *                                         area that holds the ACPI tables
 *   [LAYOUT_HIMEM, gm_low_end())          RAM
 *   [LAYOUT_PCI_ECAM, +LAYOUT_PCI_ECAM_SZ) reserved: PCIe MMCONFIG, so Linux
 *                                         accepts the MCFG area later
 *   [LAYOUT_HIGH_RAM, +rest)              RAM, only for guests > 3 GiB
 *
 * Entries are sorted by address and never overlap.
 */
#ifndef YUN_VMM_BOOT_E820_H
#define YUN_VMM_BOOT_E820_H

#include <stdint.h>

#include "../memory.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

/* Upper bound of e820_build()'s output; callers size their arrays with it. */
#define E820_MAX_ENTRIES 8

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Fill `map` (room for E820_MAX_ENTRIES) for `gm`; returns the entry count. */
unsigned e820_build(const struct guest_mem *gm, struct e820_entry map[E820_MAX_ENTRIES]);

/* Sum of the sizes of the entries of type `type`. */
uint64_t e820_total(const struct e820_entry *map, unsigned nr, uint32_t type);

#endif
