/*
 * loader.h - everything yun-vmm writes into guest memory before the first
 * instruction, in one call: the kernel (bzImage or PVH ELF, told apart by
 * content), its command line and initrd, the MP table and the ACPI tables.
 *
 * Not done here: vCPU registers, the boot GDT and page tables (the vCPU
 * code sets those up from struct boot_entry).
 *
 * Guest-physical map after boot_load() (addresses from layout.h):
 *   0x06000  hvm_start_info          (PVH only)
 *   0x06100  hvm_modlist_entry       (PVH with initrd)
 *   0x06200  hvm_memmap_table_entry[] (PVH only)
 *   0x07000  boot_params, 4 KiB      (bzImage only)
 *   0x20000  command line, NUL-terminated, < 64 KiB
 *   0x9FC00  MP floating pointer + configuration table (mptable.h)
 *   0xE0000  ACPI RSDP, RSDT, XSDT, FADT, DSDT, MADT (acpi.h)
 *   >= 1 MiB kernel (bzimage.h / pvh.h), then the initrd near the top of
 *            RAM below 4 GiB (handoff.h)
 */
#ifndef YUN_VMM_BOOT_LOADER_H
#define YUN_VMM_BOOT_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../memory.h"
#include "mptable.h"

/* Largest kernel file read: a vmlinux with debug info can be a few hundred MiB. */
#define BOOT_KERNEL_MAX_BYTES (1ULL << 30)

struct boot_config {
	const char *kernel_path;  /* bzImage or ELF with a PVH note; required */
	const char *initrd_path;  /* NULL: none */
	const char *cmdline;      /* NULL: empty */
	unsigned nr_vcpus;        /* 1..LAYOUT_MAX_VCPUS */
	bool pci;                 /* describe the PCI host bridge (MCFG, MP PCI bus) */
	const struct mptable_pci_irq *pci_irqs; /* INTx lines for the MP table */
	unsigned nr_pci_irqs;
};

enum boot_mode {
	BOOT_LINUX64, /* 64-bit Linux boot protocol: long mode, %rsi = zero page */
	BOOT_PVH32,   /* PVH: 32-bit protected mode, paging off, %ebx = start info */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t boot_info; /* zero page GPA (rsi) or hvm_start_info GPA (rbx) */
};

/*
 * Load cfg's kernel, initrd and command line into gm and write the MP and
 * ACPI tables for cfg->nr_vcpus. On success *entry says how to start the
 * BSP. On failure returns a negative errno with err naming the file or
 * value and the reason; guest memory may then hold a partial image.
 */
int boot_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_entry *entry,
	      struct yun_err *err);

#endif
