/*
 * layout.h - where things live in the guest: the one place that fixes the
 * guest-physical memory map, the I/O ports and the interrupt lines.
 *
 * Boot code (boot/) writes tables at these addresses; device models
 * (devices/) are registered at these ports; ACPI tables describe them.
 */
#ifndef YUN_VMM_LAYOUT_H
#define YUN_VMM_LAYOUT_H

/* ---- guest-physical memory ---------------------------------------------- */

#define LAYOUT_BOOT_GDT      0x0500ULL   /* GDT used at the 64-bit / PVH entry */
#define LAYOUT_PVH_INFO      0x6000ULL   /* struct hvm_start_info */
#define LAYOUT_PVH_MODLIST   0x6100ULL   /* hvm_modlist_entry[] (initrd) */
#define LAYOUT_PVH_MEMMAP    0x6200ULL   /* hvm_memmap_table_entry[] */
#define LAYOUT_ZERO_PAGE     0x7000ULL   /* struct boot_params */
#define LAYOUT_PML4          0x9000ULL   /* boot page tables: PML4 */
#define LAYOUT_PDPT          0xA000ULL   /*   one PDPT */
#define LAYOUT_PD            0xB000ULL   /*   four PDs: identity map of 0..4 GiB, 2 MiB pages */
#define LAYOUT_BOOT_STACK    0x8FF0ULL   /* initial RSP / ESP for the BSP */
#define LAYOUT_CMDLINE       0x20000ULL  /* kernel command line */
#define LAYOUT_CMDLINE_MAX   0x10000ULL  /*   its room, NUL included */
#define LAYOUT_EBDA          0x9FC00ULL  /* end of base RAM; MP table lives here */
#define LAYOUT_BIOS_ROM      0xE0000ULL  /* 0xE0000..0xFFFFF: ACPI RSDP + tables */
#define LAYOUT_BIOS_ROM_END  0x100000ULL
#define LAYOUT_HIMEM         0x100000ULL /* 1 MiB: kernel load address (non-relocatable) */

#define LAYOUT_LOW_RAM_MAX   0xC0000000ULL  /* RAM below 4 GiB stops here (3 GiB) */
#define LAYOUT_HIGH_RAM      0x100000000ULL /* the rest of RAM starts at 4 GiB */

/* The 32-bit hole between LAYOUT_LOW_RAM_MAX and 4 GiB. */
#define LAYOUT_PCI_MMIO32    0xC0000000ULL  /* 32-bit PCI BAR window, 512 MiB */
#define LAYOUT_PCI_MMIO32_SZ 0x20000000ULL
#define LAYOUT_PCI_ECAM      0xE0000000ULL  /* PCIe ECAM, 256 MiB */
#define LAYOUT_PCI_ECAM_SZ   0x10000000ULL
/* 64-bit BARs: a window starting at the first 1 GiB boundary above RAM. */
#define LAYOUT_PCI_MMIO64_ALIGN 0x40000000ULL
#define LAYOUT_PCI_MMIO64_SZ    0x1000000000ULL /* 64 GiB */
#define LAYOUT_IOAPIC        0xFEC00000ULL
#define LAYOUT_LAPIC         0xFEE00000ULL

/* ---- I/O ports -------------------------------------------------------- */

#define PORT_I8042_DATA      0x60
#define PORT_I8042_CMD       0x64   /* write 0xFE: pulse reset line */
#define PORT_RTC_INDEX       0x70
#define PORT_RTC_DATA        0x71
#define PORT_POST            0x80   /* BIOS POST codes: ignored */
#define PORT_COM1            0x3F8  /* 16550A, 8 registers */
#define PORT_DEBUG_EXIT      0x501  /* QEMU isa-debug-exit compatible, 2 bytes */
#define PORT_PCI_CONF        0xCF8  /* PCI configuration mechanism #1: 0xCF8 address, 0xCFC data */
#define PORT_PCI_CONF_LEN    8

/* ACPI hardware-reduced power management registers (described by the FADT). */
#define PORT_PM_SLEEP_CTL    0x600  /* write (SLP_TYP << 2) | SLP_EN: S5 = power off */
#define PORT_PM_SLEEP_STS    0x601
#define PORT_PM_RESET        0x602  /* write PM_RESET_VALUE: reset */
#define PM_RESET_VALUE       0x0F
#define PM_SLP_EN            0x20
#define PM_SLP_TYP_S5        5      /* the _S5_ package in the DSDT says 5 */

/* ---- interrupt lines (GSI = ISA IRQ on the IOAPIC) ------------------------ */

#define IRQ_PIT              0   /* in-kernel PIT; routed to IOAPIC pin 2 */
#define IRQ_I8042_KBD        1
#define IRQ_I8042_AUX        12
#define IRQ_COM1             4
#define IRQ_RTC              8
#define IRQ_ACPI_SCI         9
/* PCI INTx: IOAPIC pins 16-23 (pci/pci.h), one per device; MSI-X: GSIs from 24 (irq_routing.h). */

#define LAYOUT_MAX_VCPUS     64  /* MP table and MADT room; APIC ids 0..63 */

#endif
