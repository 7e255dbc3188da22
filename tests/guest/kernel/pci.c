/*
 * pci.c - PCI configuration access (ECAM or mechanism #1), bus walk and
 * BAR assignment for a guest that no firmware prepared.
 */
#include "pci.h"
#include "acpi.h"
#include "boot.h"
#include "console.h"
#include "lib.h"

#define CFG_ADDR 0xcf8
#define CFG_DATA 0xcfc

#define PCI_COMMAND	  0x04
#define PCI_CMD_MEM	  0x0002
#define PCI_CMD_MASTER	  0x0004
#define PCI_STATUS	  0x06
#define PCI_STATUS_CAPS	  0x0010
#define PCI_HEADER_TYPE	  0x0e
#define PCI_BAR0	  0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_CAP_PTR	  0x34

/* Type 1 (bridge) header fields */
#define PCI_PRIMARY_BUS	 0x18
#define PCI_IO_BASE	 0x1c
#define PCI_MEM_BASE	 0x20
#define PCI_PREF_BASE	 0x24
#define PCI_PREF_BASE_HI 0x28
#define PCI_PREF_LIM_HI	 0x2c

#define DEFAULT_MMIO_BASE 0xc0000000ULL
#define DEFAULT_MMIO_SIZE 0x20000000ULL

struct pci_bus_info pci;

static bool use_ecam;
static u8 next_bus;

static u64 ecam_addr(u8 bus, u8 dev, u8 fn, u16 off)
{
	return pci.ecam_base + ((u64)(bus - pci.bus_start) << 20) + ((u64)dev << 15) +
	       ((u64)fn << 12) + off;
}

static void cf8_select(u8 bus, u8 dev, u8 fn, u16 off)
{
	outl(CFG_ADDR, 0x80000000u | (u32)bus << 16 | (u32)dev << 11 | (u32)fn << 8 | (off & 0xfc));
}

static u32 cfg_read(u8 bus, u8 dev, u8 fn, u16 off, int size)
{
	if (use_ecam) {
		u64 a = ecam_addr(bus, dev, fn, off);
		return size == 1 ? mmio_read8(a) : size == 2 ? mmio_read16(a) : mmio_read32(a);
	}
	if (off >= 256)
		return 0xffffffff;
	cf8_select(bus, dev, fn, off);
	u16 port = (u16)(CFG_DATA + (off & 3));
	return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

static void cfg_write(u8 bus, u8 dev, u8 fn, u16 off, u32 v, int size)
{
	if (use_ecam) {
		u64 a = ecam_addr(bus, dev, fn, off);
		if (size == 1)
			mmio_write8(a, (u8)v);
		else if (size == 2)
			mmio_write16(a, (u16)v);
		else
			mmio_write32(a, v);
		return;
	}
	if (off >= 256)
		return;
	cf8_select(bus, dev, fn, off);
	u16 port = (u16)(CFG_DATA + (off & 3));
	if (size == 1)
		outb(port, (u8)v);
	else if (size == 2)
		outw(port, (u16)v);
	else
		outl(port, v);
}

u8 pci_read8(const struct pci_dev *d, u16 off)
{
	return (u8)cfg_read(d->bus, d->dev, d->fn, off, 1);
}

u16 pci_read16(const struct pci_dev *d, u16 off)
{
	return (u16)cfg_read(d->bus, d->dev, d->fn, off, 2);
}

u32 pci_read32(const struct pci_dev *d, u16 off)
{
	return cfg_read(d->bus, d->dev, d->fn, off, 4);
}

void pci_write16(const struct pci_dev *d, u16 off, u16 v)
{
	cfg_write(d->bus, d->dev, d->fn, off, v, 2);
}

void pci_write32(const struct pci_dev *d, u16 off, u32 v)
{
	cfg_write(d->bus, d->dev, d->fn, off, v, 4);
}

u8 pci_find_cap(const struct pci_dev *d, u8 id, u8 after)
{
	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAPS))
		return 0;
	u8 p = after ? pci_read8(d, (u16)(after + 1)) : pci_read8(d, PCI_CAP_PTR);
	for (int guard = 0; p >= 0x40 && guard < 48; guard++) {
		p &= 0xfc;
		if (pci_read8(d, p) == id)
			return p;
		p = pci_read8(d, (u16)(p + 1));
	}
	return 0;
}

struct pci_dev *pci_find(u16 vendor, u16 device_a, u16 device_b)
{
	for (u32 i = 0; i < pci.ndevs; i++) {
		struct pci_dev *d = &pci.devs[i];
		if (d->vendor == vendor && (d->device == device_a || d->device == device_b))
			return d;
	}
	return NULL;
}

static u64 align_up(u64 v, u64 a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Size the BARs of `d` (decoding is off) and place memory BARs in the window. */
static bool assign_bars(struct pci_dev *d, int nbars, const char **why)
{
	for (int i = 0; i < nbars; i++) {
		u16 off = (u16)(PCI_BAR0 + 4 * i);
		u32 orig = pci_read32(d, off);

		pci_write32(d, off, 0xffffffff);
		u32 m = pci_read32(d, off);
		pci_write32(d, off, orig);
		if (m == 0)
			continue;
		if (orig & 1) { /* I/O BAR: sized for the record, never placed */
			d->bar_io[i] = true;
			d->bar_size[i] = (u16)(~(m & ~3u) + 1);
			continue;
		}
		bool is64 = ((m >> 1) & 3) == 2;
		u64 mask = (m & ~0xfULL) | 0xffffffff00000000ULL;
		if (is64 && i + 1 < nbars) {
			u32 hi = pci_read32(d, (u16)(off + 4));
			pci_write32(d, (u16)(off + 4), 0xffffffff);
			u32 mh = pci_read32(d, (u16)(off + 4));
			pci_write32(d, (u16)(off + 4), hi);
			mask = (mask & 0xffffffffULL) | (u64)mh << 32;
		}
		u64 size = ~mask + 1;
		u64 addr = align_up(pci.mmio_next, size < 4096 ? 4096 : size);
		if (!size || addr + size > pci.mmio_base + pci.mmio_size) {
			*why = "a BAR does not fit the MMIO window";
			return false;
		}
		pci.mmio_next = addr + size;
		d->bar[i] = addr;
		d->bar_size[i] = size;
		pci_write32(d, off, (u32)addr | (m & 0xf));
		if (is64) {
			pci_write32(d, (u16)(off + 4), (u32)(addr >> 32));
			i++;
		}
	}
	return true;
}

static bool scan_bus(u8 bus, const char **why);

static bool scan_fn(u8 bus, u8 dev, u8 fn, const char **why)
{
	u32 id = cfg_read(bus, dev, fn, 0, 4);

	if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
		return true;
	if (pci.ndevs == PCI_MAX_DEVS) {
		*why = "too many PCI functions";
		return false;
	}
	struct pci_dev *d = &pci.devs[pci.ndevs++];
	memset(d, 0, sizeof(*d));
	d->bus = bus;
	d->dev = dev;
	d->fn = fn;
	d->vendor = (u16)id;
	d->device = (u16)(id >> 16);
	d->class = pci_read32(d, 0x08) >> 8;
	d->header_type = pci_read8(d, PCI_HEADER_TYPE) & 0x7f;
	yt_printf("YT PCI %02x:%02x.%x %04x:%04x class=%06x\n", bus, dev, fn, d->vendor, d->device,
		  d->class);

	pci_write16(d, PCI_COMMAND, 0);
	if (d->header_type == 0) {
		u32 ss = pci_read32(d, PCI_SUBSYS_VENDOR);
		d->subsys_vendor = (u16)ss;
		d->subsys_id = (u16)(ss >> 16);
		if (!assign_bars(d, 6, why))
			return false;
	} else if (d->header_type == 1) {
		if (!assign_bars(d, 2, why))
			return false;
		u8 sec = ++next_bus;
		/* primary, secondary, subordinate (open until the walk below ends) */
		pci_write32(d, PCI_PRIMARY_BUS,
			    (pci_read32(d, PCI_PRIMARY_BUS) & 0xff000000) | 0xff0000u |
				(u32)sec << 8 | bus);
		pci.mmio_next = align_up(pci.mmio_next, 1 << 20);
		u64 start = pci.mmio_next;
		if (!scan_bus(sec, why))
			return false;
		pci.mmio_next = align_up(pci.mmio_next, 1 << 20);
		u64 end = pci.mmio_next;
		pci_write32(d, PCI_PRIMARY_BUS,
			    (pci_read32(d, PCI_PRIMARY_BUS) & 0xff000000) | (u32)next_bus << 16 |
				(u32)sec << 8 | bus);
		if (end > start)
			pci_write32(d, PCI_MEM_BASE,
				    (u32)((start >> 16) & 0xfff0) |
					(u32)(((end - 1) >> 16) & 0xfff0) << 16);
		else
			pci_write32(d, PCI_MEM_BASE, 0x0000fff0);
		pci_write32(d, PCI_PREF_BASE, 0x0000fff0); /* no prefetchable window */
		pci_write32(d, PCI_PREF_BASE_HI, 0);
		pci_write32(d, PCI_PREF_LIM_HI, 0);
		pci_write16(d, PCI_IO_BASE, 0x00f0); /* no I/O window */
		yt_printf("YT PCI_BRIDGE %02x:%02x.%x bus=%u-%u mem=0x%lx-0x%lx\n", bus, dev, fn,
			  sec, next_bus, (unsigned long)start, (unsigned long)end);
	}
	for (int i = 0; i < 6; i++)
		if (d->bar_size[i] && !d->bar_io[i])
			yt_printf("YT PCI_BAR %02x:%02x.%x bar%d 0x%lx size 0x%lx\n", bus, dev, fn,
				  i, (unsigned long)d->bar[i], (unsigned long)d->bar_size[i]);
	pci_write16(d, PCI_COMMAND, PCI_CMD_MEM | PCI_CMD_MASTER);
	return true;
}

static bool scan_bus(u8 bus, const char **why)
{
	for (u8 dev = 0; dev < 32; dev++) {
		u32 id = cfg_read(bus, dev, 0, 0, 4);
		if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
			continue;
		u8 nfn = (cfg_read(bus, dev, 0, PCI_HEADER_TYPE, 1) & 0x80) ? 8 : 1;
		for (u8 fn = 0; fn < nfn; fn++)
			if (!scan_fn(bus, dev, fn, why))
				return false;
	}
	return true;
}

/* ECAM from the MCFG table (segment 0), else from "yt.ecam=ADDR". */
static bool find_ecam(void)
{
	const struct acpi_header *m = acpi_find("MCFG");
	size_t len;
	const char *v;

	if (m) {
		const u8 *p = (const u8 *)m;
		for (u32 off = 44; off + 16 <= m->length; off += 16) {
			if (*(const u16 *)(p + off + 8) != 0) /* PCI segment 0 only */
				continue;
			pci.ecam_base = *(const u64 *)(p + off);
			pci.bus_start = p[off + 10];
			pci.bus_end = p[off + 11];
			pci.mech = "ecam-mcfg";
			return true;
		}
	}
	v = cmdline_get("yt.ecam", &len);
	if (v && parse_u64(v, len, &pci.ecam_base)) {
		pci.mech = "ecam-cmdline";
		return true;
	}
	return false;
}

static bool find_mechanism(void)
{
	pci.bus_start = 0;
	pci.bus_end = 255;
	/* "yt.pci=cf8" proves mechanism #1 even where ECAM exists. */
	if (!cmdline_is("yt.pci", "cf8") && find_ecam()) {
		use_ecam = true;
		return true;
	}
	/* Mechanism #1 is there if the address register keeps what is written. */
	u32 saved = inl(CFG_ADDR);
	outl(CFG_ADDR, 0x80000000u);
	u32 back = inl(CFG_ADDR);
	outl(CFG_ADDR, saved);
	if (back == 0x80000000u) {
		pci.mech = "cf8";
		return true;
	}
	pci.mech = "none";
	return false;
}

static void parse_window(void)
{
	size_t len;
	const char *v = cmdline_get("yt.mmio", &len);

	pci.mmio_base = DEFAULT_MMIO_BASE;
	pci.mmio_size = DEFAULT_MMIO_SIZE;
	if (v) {
		size_t comma = 0;
		while (comma < len && v[comma] != ',')
			comma++;
		u64 b, s;
		if (comma < len && parse_u64(v, comma, &b) &&
		    parse_u64(v + comma + 1, len - comma - 1, &s)) {
			pci.mmio_base = b;
			pci.mmio_size = s;
		} else {
			yt_printf("YT WARN bad yt.mmio=BASE,SIZE; using the default window\n");
		}
	}
	pci.mmio_next = pci.mmio_base;
}

bool pci_init(const char **why)
{
	static bool done;

	if (done)
		return true;
	pci.ndevs = 0;
	next_bus = 0;
	if (!find_mechanism()) {
		*why = "no PCI configuration mechanism (no MCFG, no yt.ecam=, no 0xCF8/0xCFC)";
		return false;
	}
	parse_window();
	yt_printf("YT PCI_CONFIG %s ecam=0x%lx buses=%u-%u mmio=0x%lx+0x%lx\n", pci.mech,
		  (unsigned long)pci.ecam_base, pci.bus_start, pci.bus_end,
		  (unsigned long)pci.mmio_base, (unsigned long)pci.mmio_size);
	next_bus = pci.bus_start;
	if (!scan_bus(pci.bus_start, why))
		return false;
	done = true;
	return true;
}
