/* pci.c - PCI bus 0, configuration mechanisms #1 and ECAM, BAR routing; see pci.h. */
#include "pci.h"

#include <errno.h>
#include <string.h>

#define CONF1_ENABLE (1u << 31)

static void wmask_set(struct pci_dev *d, uint32_t off, uint32_t len, uint32_t mask)
{
	for (uint32_t i = 0; i < len; i++)
		d->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

void pci_dev_init(struct pci_dev *dev, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision, uint16_t subsys_vendor,
		  uint16_t subsys_id, const struct pci_dev_ops *ops, void *opaque)
{
	memset(dev, 0, sizeof(*dev));
	dev->name = name;
	dev->ops = ops;
	dev->opaque = opaque;
	pci_cfg_put16(dev, PCI_VENDOR_ID, vendor);
	pci_cfg_put16(dev, PCI_DEVICE_ID, device);
	dev->cfg[PCI_REVISION_ID] = revision;
	/* class_code is 0xCCSSPP: class, subclass, programming interface. */
	dev->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	pci_cfg_put16(dev, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
	dev->cfg[PCI_HEADER_TYPE] = 0;
	pci_cfg_put16(dev, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	pci_cfg_put16(dev, PCI_SUBSYSTEM_ID, subsys_id);
	wmask_set(dev, PCI_COMMAND, 2,
		  PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	dev->cap_end = 0x40;
}

int pci_dev_set_bar(struct pci_dev *dev, int bar, uint64_t size, bool is64,
		    io_handler_fn handler, void *opaque)
{
	uint32_t off = PCI_BAR0 + 4 * bar;
	uint64_t mask = ~(size - 1);

	if (bar < 0 || bar >= PCI_NR_BARS || (is64 && bar == PCI_NR_BARS - 1))
		return -EINVAL;
	if (size < 4096 || (size & (size - 1)) || (!is64 && size > (1ULL << 31)))
		return -EINVAL;
	dev->bar[bar] = (struct pci_bar){ .size = size, .is64 = is64, .handler = handler,
					  .opaque = opaque };
	pci_cfg_put32(dev, off, is64 ? PCI_BAR_MEM_64 : 0);
	wmask_set(dev, off, 4, (uint32_t)mask & ~0xFu);
	if (is64)
		wmask_set(dev, off + 4, 4, (uint32_t)(mask >> 32));
	return 0;
}

uint8_t pci_dev_add_cap(struct pci_dev *dev, uint8_t id, uint8_t len)
{
	uint8_t off = (dev->cap_end + 3) & ~3;

	if (len < 2 || off + len > PCI_CFG_LEGACY_SIZE)
		return 0;
	dev->cfg[off] = id;
	dev->cfg[off + 1] = 0;
	if (dev->last_cap)
		dev->cfg[dev->last_cap + 1] = off;
	else
		dev->cfg[PCI_CAPABILITY_LIST] = off;
	pci_cfg_put16(dev, PCI_STATUS, pci_cfg_get16(dev, PCI_STATUS) | PCI_STATUS_CAP_LIST);
	dev->last_cap = off;
	dev->cap_end = off + len;
	return off;
}

void pci_dev_set_intx(struct pci_dev *dev, uint8_t gsi)
{
	dev->cfg[PCI_INTERRUPT_LINE] = gsi;
	dev->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA# */
}

/* ---- BAR decoding ------------------------------------------------------- */

/* The address BAR `bar` of dev holds in the config space cfg (dev's own, or one to load). */
static uint64_t bar_addr_in(const struct pci_dev *dev, const uint8_t *cfg, int bar)
{
	uint64_t a = 0;

	for (int i = dev->bar[bar].is64 ? 7 : 3; i >= 0; i--)
		a = a << 8 | cfg[PCI_BAR0 + 4 * bar + i];
	return a & ~0xFULL;
}

static uint64_t bar_addr(const struct pci_dev *dev, int bar)
{
	return bar_addr_in(dev, dev->cfg, bar);
}

static bool in_window(uint64_t base, uint64_t size, uint64_t a, uint64_t len)
{
	return a >= base && a - base < size && len <= size - (a - base);
}

/* Re-decide which BARs dev decodes, after a command or BAR register change. */
static void pci_dev_update_bars(struct pci_bus *bus, struct pci_dev *dev)
{
	bool mem_on = pci_cfg_get16(dev, PCI_COMMAND) & PCI_COMMAND_MEMORY;

	for (int i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &dev->bar[i];
		uint64_t a;
		bool map;

		if (!b->size)
			continue;
		a = bar_addr(dev, i);
		map = mem_on && a != 0 &&
		      (in_window(bus->mmio32_base, bus->mmio32_size, a, b->size) ||
		       in_window(bus->mmio64_base, bus->mmio64_size, a, b->size));
		if (map == b->mapped && (!map || a == b->addr))
			continue;
		if (b->mapped && dev->ops && dev->ops->bar_moved)
			dev->ops->bar_moved(dev, i, b->addr, false);
		b->mapped = map;
		b->addr = a;
		if (map && dev->ops && dev->ops->bar_moved)
			dev->ops->bar_moved(dev, i, a, true);
	}
}

static void bar_dispatch(struct pci_bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
			 bool is_write)
{
	pthread_rwlock_rdlock(&bus->lock);
	for (int s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *dev = bus->slot[s];

		if (!dev)
			continue;
		for (int i = 0; i < PCI_NR_BARS; i++) {
			struct pci_bar *b = &dev->bar[i];

			if (b->mapped && addr >= b->addr && addr - b->addr < b->size &&
			    len <= b->size - (addr - b->addr)) {
				b->handler(b->opaque, addr - b->addr, data, len, is_write);
				pthread_rwlock_unlock(&bus->lock);
				return;
			}
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!is_write)
		memset(data, 0xff, len);
}

void pci_mmio32_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = opaque;

	bar_dispatch(bus, bus->mmio32_base + offset, data, len, is_write);
}

void pci_mmio64_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = opaque;

	bar_dispatch(bus, bus->mmio64_base + offset, data, len, is_write);
}

/* ---- configuration space ----------------------------------------------- */

void pci_bus_config(struct pci_bus *bus, uint8_t busnr, uint8_t slot, uint8_t fn, uint32_t reg,
		    uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_dev *dev = NULL;

	if (len > 4 || reg >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - reg) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (busnr == 0 && fn == 0 && slot < PCI_MAX_SLOTS)
		dev = bus->slot[slot];
	if (!dev) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (!is_write) {
		pthread_rwlock_rdlock(&bus->lock);
		memcpy(data, dev->cfg + reg, len);
		if (dev->ops && dev->ops->config_read)
			dev->ops->config_read(dev, reg, data, len);
		pthread_rwlock_unlock(&bus->lock);
		return;
	}
	pthread_rwlock_wrlock(&bus->lock);
	for (uint32_t i = 0; i < len; i++) {
		uint8_t m = dev->wmask[reg + i];

		dev->cfg[reg + i] = (uint8_t)((dev->cfg[reg + i] & ~m) | (data[i] & m));
	}
	if (reg < PCI_BAR0 + 4 * PCI_NR_BARS && reg + len > PCI_COMMAND)
		pci_dev_update_bars(bus, dev);
	if (dev->ops && dev->ops->config_write)
		dev->ops->config_write(dev, reg, len);
	pthread_rwlock_unlock(&bus->lock);
}

void pci_conf1_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = opaque;
	uint32_t a;

	if (offset < 4) {
		/* Only a dword access at 0xCF8 is the address register (byte pokes are not). */
		if (offset != 0 || len != 4) {
			if (!is_write)
				memset(data, 0xff, len);
			return;
		}
		if (is_write)
			memcpy(&a, data, 4), __atomic_store_n(&bus->conf1_addr, a, __ATOMIC_RELAXED);
		else
			a = __atomic_load_n(&bus->conf1_addr, __ATOMIC_RELAXED), memcpy(data, &a, 4);
		return;
	}
	a = __atomic_load_n(&bus->conf1_addr, __ATOMIC_RELAXED);
	if (!(a & CONF1_ENABLE) || offset + len > 8) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_bus_config(bus, (uint8_t)(a >> 16), (a >> 11) & 31, (a >> 8) & 7,
		       (a & 0xFC) + (uint32_t)(offset - 4), data, len, is_write);
}

void pci_ecam_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	pci_bus_config(opaque, (uint8_t)(offset >> 20), (offset >> 15) & 31, (offset >> 12) & 7,
		       offset & 0xFFF, data, len, is_write);
}

/* ---- bus ------------------------------------------------------------------ */

int pci_bus_init(struct pci_bus *bus, uint64_t mmio32_base, uint64_t mmio32_size,
		 uint64_t mmio64_base, uint64_t mmio64_size, struct yun_err *err)
{
	int rc;

	memset(bus, 0, sizeof(*bus));
	rc = pthread_rwlock_init(&bus->lock, NULL);
	if (rc)
		return yun_err_errno(err, rc, "PCI bus: lock");
	bus->mmio32_base = bus->mmio32_next = mmio32_base;
	bus->mmio32_size = mmio32_size;
	bus->mmio64_base = bus->mmio64_next = mmio64_base;
	bus->mmio64_size = mmio64_size;
	pci_dev_init(&bus->host_bridge, "host-bridge", PCI_VENDOR_INTEL, 0x29C0 /* Q35 MCH */,
		     PCI_CLASS_BRIDGE_HOST << 8, 0, 0, 0, NULL, NULL);
	bus->host_bridge.wmask[PCI_INTERRUPT_LINE] = 0;
	bus->slot[0] = &bus->host_bridge;
	bus->host_bridge.bus = bus;
	return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

static int alloc_window(uint64_t *next, uint64_t base, uint64_t size, uint64_t len,
			uint64_t *out)
{
	uint64_t a = (*next + len - 1) & ~(len - 1);

	if (a < *next || !in_window(base, size, a, len))
		return -ENOSPC;
	*out = a;
	*next = a + len;
	return 0;
}

int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev, struct yun_err *err)
{
	int slot;

	for (slot = 1; slot < PCI_MAX_SLOTS && bus->slot[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS)
		return yun_err_set(err, ENOSPC, "PCI %s: bus 0 has no free slot", dev->name);
	for (int i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &dev->bar[i];
		uint64_t a;
		int rc;

		if (!b->size)
			continue;
		/* 64-bit BARs above RAM, 32-bit ones in the hole below 4 GiB. */
		rc = b->is64 ? alloc_window(&bus->mmio64_next, bus->mmio64_base,
					    bus->mmio64_size, b->size, &a)
			     : alloc_window(&bus->mmio32_next, bus->mmio32_base,
					    bus->mmio32_size, b->size, &a);
		if (rc)
			return yun_err_set(err, ENOSPC, "PCI %s: no room for BAR%d (%llu KiB)",
					   dev->name, i, (unsigned long long)(b->size >> 10));
		pci_cfg_put32(dev, PCI_BAR0 + 4 * i,
			      (uint32_t)a | (b->is64 ? PCI_BAR_MEM_64 : 0));
		if (b->is64)
			pci_cfg_put32(dev, PCI_BAR0 + 4 * i + 4, (uint32_t)(a >> 32));
	}
	dev->slot = (uint8_t)slot;
	dev->bus = bus;
	pci_cfg_put16(dev, PCI_COMMAND, pci_cfg_get16(dev, PCI_COMMAND) | PCI_COMMAND_MEMORY);
	pthread_rwlock_wrlock(&bus->lock);
	bus->slot[slot] = dev;
	pci_dev_update_bars(bus, dev);
	pthread_rwlock_unlock(&bus->lock);
	return 0;
}

/* ---- snapshot ------------------------------------------------------------- */

void pci_dev_save(struct pci_dev *dev, struct snap_writer *w)
{
	if (dev->bus)
		pthread_rwlock_rdlock(&dev->bus->lock);
	snap_put_bytes(w, dev->cfg, PCI_CFG_SIZE);
	if (dev->bus)
		pthread_rwlock_unlock(&dev->bus->lock);
}

/* Would the bus decode BAR i of a function whose config space is cfg? */
static bool bar_loadable(const struct pci_bus *bus, const struct pci_dev *dev, const uint8_t *cfg,
			 int i, uint64_t *addr)
{
	uint64_t a = bar_addr_in(dev, cfg, i);

	*addr = a;
	return in_window(bus->mmio32_base, bus->mmio32_size, a, dev->bar[i].size) ||
	       in_window(bus->mmio64_base, bus->mmio64_size, a, dev->bar[i].size);
}

int pci_dev_load(struct pci_dev *dev, struct snap_reader *r)
{
	uint8_t cfg[PCI_CFG_SIZE];

	snap_get_bytes(r, cfg, sizeof(cfg));
	if (r->failed)
		return -EINVAL;
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
		if ((cfg[i] ^ dev->cfg[i]) & ~dev->wmask[i])
			return snap_reader_fail(r, "PCI %s: config byte 0x%03x is 0x%02x, its "
						"read-only bits are 0x%02x on this device",
						dev->name, i, cfg[i], dev->cfg[i] & ~dev->wmask[i]);
	/* A decoded BAR lies in a window: the bus would not have decoded it elsewhere. */
	if (dev->bus && (cfg[PCI_COMMAND] & PCI_COMMAND_MEMORY)) {
		for (int i = 0; i < PCI_NR_BARS; i++) {
			uint64_t a;

			if (dev->bar[i].size && !bar_loadable(dev->bus, dev, cfg, i, &a) && a)
				return snap_reader_fail(r, "PCI %s: BAR%d at 0x%llx is outside "
							"the PCI windows", dev->name, i,
							(unsigned long long)a);
		}
	}
	if (!dev->bus) {
		memcpy(dev->cfg, cfg, sizeof(cfg));
		return 0;
	}
	pthread_rwlock_wrlock(&dev->bus->lock);
	memcpy(dev->cfg, cfg, sizeof(cfg));
	pci_dev_update_bars(dev->bus, dev); /* moves the transport's ioeventfds with BAR 0 */
	pthread_rwlock_unlock(&dev->bus->lock);
	return 0;
}

void pci_bus_save(struct pci_bus *bus, struct snap_writer *w)
{
	snap_put_u32(w, __atomic_load_n(&bus->conf1_addr, __ATOMIC_RELAXED));
	pci_dev_save(&bus->host_bridge, w);
}

int pci_bus_load(struct pci_bus *bus, struct snap_reader *r)
{
	uint32_t latch = snap_get_u32(r);

	if (pci_dev_load(&bus->host_bridge, r))
		return -EINVAL;
	__atomic_store_n(&bus->conf1_addr, latch, __ATOMIC_RELAXED);
	return 0;
}
