/*
 * pci.h - PCI configuration access and enumeration. Configuration space is
 * reached through ECAM (base from the ACPI MCFG table, else "yt.ecam=ADDR"
 * on the command line), else configuration mechanism #1 (ports 0xCF8/0xCFC);
 * "yt.pci=cf8" forces mechanism #1.
 * Nobody assigns BARs for a directly booted guest, so pci_init() sizes every
 * memory BAR and places it in the 32-bit MMIO window ("yt.mmio=BASE,SIZE",
 * default 0xC0000000 + 512 MiB), then enables memory decoding and bus
 * mastering. I/O BARs are left unassigned (no I/O window is assumed).
 */
#ifndef YT_PCI_H
#define YT_PCI_H

#include "io.h"

#define PCI_MAX_DEVS 32

#define PCI_CAP_MSIX   0x11
#define PCI_CAP_VENDOR 0x09

struct pci_dev {
	u8 bus, dev, fn;
	u16 vendor, device;
	u16 subsys_vendor, subsys_id;
	u32 class; /* base class << 16 | subclass << 8 | prog-if */
	u8 header_type;
	u64 bar[6];	 /* assigned address; 0 = unassigned */
	u64 bar_size[6]; /* 0 = not implemented */
	bool bar_io[6];
};

struct pci_bus_info {
	const char *mech; /* "ecam-mcfg", "ecam-cmdline", "cf8" or "none" */
	u64 ecam_base;
	u8 bus_start, bus_end;
	u64 mmio_base, mmio_size, mmio_next;
	u32 ndevs;
	struct pci_dev devs[PCI_MAX_DEVS];
};

extern struct pci_bus_info pci;

/*
 * Find the configuration mechanism, walk the buses (through bridges),
 * assign BARs, print one "YT PCI" line per function. False (with a
 * reason in *why) if there is no configuration mechanism or the MMIO
 * window is too small.
 */
bool pci_init(const char **why);

/* The first function with this vendor and one of the device ids; NULL if none. */
struct pci_dev *pci_find(u16 vendor, u16 device_a, u16 device_b);

u8 pci_read8(const struct pci_dev *d, u16 off);
u16 pci_read16(const struct pci_dev *d, u16 off);
u32 pci_read32(const struct pci_dev *d, u16 off);
void pci_write16(const struct pci_dev *d, u16 off, u16 v);
void pci_write32(const struct pci_dev *d, u16 off, u32 v);

/* Offset of the next capability with `id` after `after` (0: from the start); 0 = none. */
u8 pci_find_cap(const struct pci_dev *d, u8 id, u8 after);

#endif
