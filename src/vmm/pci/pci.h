/*
 * pci.h - PCI bus 0 behind a host bridge: configuration spaces reached by
 * configuration mechanism #1 (ports 0xCF8/0xCFC) and by ECAM (MMIO at
 * LAYOUT_PCI_ECAM), and memory BARs placed and routed.
 *
 * Configuration space: 4 KiB per function (the first 256 bytes are what
 * mechanism #1 reaches), a per-byte write mask decides what the guest may
 * change. BAR sizing falls out of the mask: writing all ones reads back
 * ~(size - 1) | type bits. Only function 0 of each slot exists; slot 0 is
 * the host bridge.
 *
 * BAR routing: the bus owns the two MMIO windows (LAYOUT_PCI_MMIO32 and a
 * 64-bit window above RAM) and registers each window once on the VM's MMIO
 * io_bus (which stays build-once). Inside a window, accesses are looked up
 * in the bus's own BAR table, which changes whenever the guest moves a BAR
 * or flips the command register's memory-enable bit; a read-write lock
 * makes lookups (vCPU threads, in parallel) safe against those changes. A
 * BAR placed outside both windows is not decoded (like a real root port's
 * apertures). pci_dev_ops.bar_moved tells the device so it can move what
 * lives outside user space (the transport's ioeventfds).
 *
 * Lock order: the bus lock, then device locks. A device's BAR handler,
 * its config_read and its config_write hook run with the bus lock held
 * (read, read and write respectively) and must not call back into the bus.
 */
#ifndef YUN_VMM_PCI_PCI_H
#define YUN_VMM_PCI_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../io_bus.h"
#include "../snapshot/stream.h"

#define PCI_CFG_SIZE        4096
#define PCI_CFG_LEGACY_SIZE 256
#define PCI_MAX_SLOTS       32
#define PCI_NR_BARS         6

/* Standard header registers. */
#define PCI_VENDOR_ID       0x00
#define PCI_DEVICE_ID       0x02
#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_REVISION_ID     0x08
#define PCI_CLASS_PROG      0x09
#define PCI_CLASS_DEVICE    0x0A
#define PCI_HEADER_TYPE     0x0E
#define PCI_BAR0            0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2C
#define PCI_SUBSYSTEM_ID    0x2E
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE  0x3C
#define PCI_INTERRUPT_PIN   0x3D

#define PCI_COMMAND_MEMORY  0x0002
#define PCI_COMMAND_MASTER  0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_STATUS_INTERRUPT 0x0008

#define PCI_BAR_MEM_64      0x04
#define PCI_BAR_PREFETCH    0x08

#define PCI_CAP_ID_MSIX     0x11
#define PCI_CAP_ID_VNDR     0x09

#define PCI_VENDOR_INTEL    0x8086
#define PCI_CLASS_BRIDGE_HOST 0x0600

struct pci_dev;

struct pci_dev_ops {
	/* After the guest wrote config bytes [off, off + len) (the bus lock is held). */
	void (*config_write)(struct pci_dev *dev, uint32_t off, uint32_t len);
	/*
	 * The guest reads config bytes [off, off + len): data[] holds them
	 * from cfg[]; the device may replace those of registers it computes on
	 * access. The bus lock is held for reading (vCPUs may be in here at
	 * once), so the hook must not change cfg[].
	 */
	void (*config_read)(struct pci_dev *dev, uint32_t off, uint8_t *data, uint32_t len);
	/*
	 * BAR `bar` stopped or started being decoded at `addr` (mapped says
	 * which). Called with the bus lock held, before the new mapping is
	 * used. May fail only by logging: the guest sees no error.
	 */
	void (*bar_moved)(struct pci_dev *dev, int bar, uint64_t addr, bool mapped);
};

struct pci_bar {
	uint64_t size;            /* power of two >= 4 KiB, 0: unused */
	bool is64;
	io_handler_fn handler;    /* offset is relative to the BAR's base */
	void *opaque;
	/* Decoded state (bus lock). */
	bool mapped;
	uint64_t addr;
};

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];
	struct pci_bar bar[PCI_NR_BARS];
	const struct pci_dev_ops *ops;
	void *opaque;             /* the device model's state */
	const char *name;
	uint8_t slot;
	uint8_t cap_end;          /* next free byte for a capability */
	uint8_t last_cap;         /* offset of the last capability's header, 0: none */
	struct pci_bus *bus;
};

struct pci_bus {
	pthread_rwlock_t lock;
	struct pci_dev host_bridge;
	struct pci_dev *slot[PCI_MAX_SLOTS];
	uint32_t conf1_addr;      /* the 0xCF8 latch */
	uint64_t mmio32_base, mmio32_size, mmio32_next;
	uint64_t mmio64_base, mmio64_size, mmio64_next;
};

/* INTx: slots get INTA# on IOAPIC pins PCI_INTX_GSI_BASE.. (one each, not shared). */
#define PCI_INTX_GSI_BASE 16
#define PCI_INTX_NR_GSI   8

/* The host bridge at 00.0; windows: [mmio32_base, +size) and [mmio64_base, +size). */
int pci_bus_init(struct pci_bus *bus, uint64_t mmio32_base, uint64_t mmio32_size,
		 uint64_t mmio64_base, uint64_t mmio64_size, struct yun_err *err);
void pci_bus_destroy(struct pci_bus *bus);

/* Prepare a device's header (type 0); then add BARs and capabilities, then pci_bus_add. */
void pci_dev_init(struct pci_dev *dev, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision, uint16_t subsys_vendor,
		  uint16_t subsys_id, const struct pci_dev_ops *ops, void *opaque);

/* Declare a memory BAR (size a power of two, >= 4 KiB); a 64-bit BAR takes bar + 1 too. */
int pci_dev_set_bar(struct pci_dev *dev, int bar, uint64_t size, bool is64,
		    io_handler_fn handler, void *opaque);

/* Append a capability of `len` bytes (header included); returns its offset, 0 if full. */
uint8_t pci_dev_add_cap(struct pci_dev *dev, uint8_t id, uint8_t len);

/*
 * Put dev in the first free slot, assign its BARs addresses in the windows
 * (the firmware's job on a PC) and enable memory decoding. *slot gets the
 * slot number. -ENOSPC if the bus or a window is full.
 */
int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev, struct yun_err *err);

/* Give dev INTA# on `gsi` (written to Interrupt Line/Pin); call before pci_bus_add. */
void pci_dev_set_intx(struct pci_dev *dev, uint8_t gsi);

/* Configuration access to bus 0, slot, function 0; others read all ones. */
void pci_bus_config(struct pci_bus *bus, uint8_t busnr, uint8_t slot, uint8_t fn, uint32_t reg,
		    uint8_t *data, uint32_t len, bool is_write);

/* io_bus handlers: mechanism #1 ports (base 0xCF8, 8 ports), ECAM and the BAR windows. */
void pci_conf1_io(void *bus, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_ecam_io(void *bus, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_mmio32_io(void *bus, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_mmio64_io(void *bus, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/*
 * Snapshot: a function's whole configuration space. Loading refuses a
 * space whose read-only bits differ from this device's (another device,
 * another layout) or with memory decoding on and a BAR outside the
 * windows; then it re-decodes the BARs as a guest write would (bar_moved
 * tells the device). The bus adds the 0xCF8 latch and the host bridge.
 */
#define PCI_SNAP_VERSION 1 /* of the bus section */
void pci_dev_save(struct pci_dev *dev, struct snap_writer *w);
int pci_dev_load(struct pci_dev *dev, struct snap_reader *r);
void pci_bus_save(struct pci_bus *bus, struct snap_writer *w);
int pci_bus_load(struct pci_bus *bus, struct snap_reader *r);

/* Little-endian helpers for config space. */
static inline void pci_cfg_put16(struct pci_dev *d, uint32_t off, uint16_t v)
{
	d->cfg[off] = (uint8_t)v;
	d->cfg[off + 1] = (uint8_t)(v >> 8);
}

static inline void pci_cfg_put32(struct pci_dev *d, uint32_t off, uint32_t v)
{
	pci_cfg_put16(d, off, (uint16_t)v);
	pci_cfg_put16(d, off + 2, (uint16_t)(v >> 16));
}

static inline uint16_t pci_cfg_get16(const struct pci_dev *d, uint32_t off)
{
	return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}

static inline uint32_t pci_cfg_get32(const struct pci_dev *d, uint32_t off)
{
	return pci_cfg_get16(d, off) | (uint32_t)pci_cfg_get16(d, off + 2) << 16;
}

#endif
