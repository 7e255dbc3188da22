/* pci_test.c - configuration mechanism #1 and ECAM reach the same space; BAR sizing and decoding. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "vmm/layout.h"
#include "vmm/pci/pci.h"

static struct pci_bus bus;
static struct pci_dev dev;
static unsigned bar_hits, moves;
static uint64_t last_off;

static void bar_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	(void)is_write;
	bar_hits++;
	last_off = off;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void moved(struct pci_dev *d, int bar, uint64_t addr, bool mapped)
{
	(void)d;
	(void)bar;
	(void)addr;
	(void)mapped;
	moves++;
}

static const struct pci_dev_ops ops = { .bar_moved = moved };

static uint32_t conf1_read(uint8_t slot, uint32_t reg)
{
	uint32_t a = 0x80000000u | slot << 11 | (reg & 0xFC), v = 0;

	pci_conf1_io(&bus, 0, (uint8_t *)&a, 4, true);
	pci_conf1_io(&bus, 4 + (reg & 3), (uint8_t *)&v, 4 - (reg & 3), false);
	return v;
}

static void conf1_write(uint8_t slot, uint32_t reg, uint32_t v)
{
	uint32_t a = 0x80000000u | slot << 11 | (reg & 0xFC);

	pci_conf1_io(&bus, 0, (uint8_t *)&a, 4, true);
	pci_conf1_io(&bus, 4, (uint8_t *)&v, 4, true);
}

static uint32_t ecam_read(uint8_t slot, uint32_t reg)
{
	uint32_t v = 0;

	pci_ecam_io(&bus, (uint64_t)slot << 15 | reg, (uint8_t *)&v, 4, false);
	return v;
}

static void ecam_write(uint8_t slot, uint32_t reg, uint32_t v)
{
	pci_ecam_io(&bus, (uint64_t)slot << 15 | reg, (uint8_t *)&v, 4, true);
}

static void setup(void)
{
	struct yun_err err;

	CHECK_EQ(pci_bus_init(&bus, LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_SZ, 0x400000000ULL,
			      LAYOUT_PCI_MMIO64_SZ, &err), 0);
	pci_dev_init(&dev, "test", 0x1234, 0x5678, 0xFF0000, 2, 0, 0, &ops, NULL);
	CHECK_EQ(pci_dev_set_bar(&dev, 0, 0x4000, false, bar_io, NULL), 0);
	CHECK_EQ(pci_dev_set_bar(&dev, 2, 0x100000, true, bar_io, NULL), 0);
	CHECK(pci_dev_add_cap(&dev, PCI_CAP_ID_VNDR, 16) == 0x40);
	CHECK(pci_dev_add_cap(&dev, PCI_CAP_ID_MSIX, 12) == 0x50);
	CHECK_EQ(pci_bus_add(&bus, &dev, &err), 0);
	CHECK_EQ(dev.slot, 1);
}

static void test_both_mechanisms(void)
{
	setup();
	CHECK_EQ(conf1_read(0, 0), 0x29C08086);  /* host bridge */
	CHECK_EQ(ecam_read(0, 0), 0x29C08086);
	CHECK_EQ(conf1_read(1, 0), 0x56781234);
	CHECK_EQ(ecam_read(1, 0), 0x56781234);
	CHECK_EQ(conf1_read(2, 0), 0xFFFFFFFF);  /* empty slot */
	CHECK_EQ(ecam_read(1, 0x08) >> 8, 0xFF0000);
	CHECK_EQ(conf1_read(1, 0x34) & 0xFF, 0x40);
	CHECK_EQ(ecam_read(1, 0x40) >> 8 & 0xFF, 0x50); /* capability chain */
	/* Interrupt line written one way, read the other. */
	conf1_write(1, PCI_INTERRUPT_LINE, 0x0B);
	CHECK_EQ(ecam_read(1, PCI_INTERRUPT_LINE) & 0xFF, 0x0B);
	/* Read-only registers stay put. */
	ecam_write(1, 0, 0);
	CHECK_EQ(conf1_read(1, 0), 0x56781234);
	/* Sub-dword access through 0xCFE. */
	CHECK_EQ(conf1_read(1, 2) & 0xFFFF, 0x5678);
	/* Disabled mechanism #1 address: all ones. */
	uint32_t a = 1 << 11, v = 0;
	pci_conf1_io(&bus, 0, (uint8_t *)&a, 4, true);
	pci_conf1_io(&bus, 4, (uint8_t *)&v, 4, false);
	CHECK_EQ(v, 0xFFFFFFFF);
	/* Extended space only through ECAM; beyond 4 KiB: nothing. */
	CHECK_EQ(ecam_read(1, 0x100), 0);
	CHECK_EQ(ecam_read(1, 0xFFC), 0);
	pci_bus_destroy(&bus);
}

static void test_bar_sizing_and_decoding(void)
{
	uint8_t d[4];

	setup();
	uint32_t bar0 = ecam_read(1, PCI_BAR0);
	CHECK_EQ(bar0, LAYOUT_PCI_MMIO32);
	CHECK_EQ(ecam_read(1, PCI_BAR0 + 8), PCI_BAR_MEM_64); /* 0x4_0000_0000: low dword 0 */
	CHECK_EQ(ecam_read(1, PCI_BAR0 + 12), 4);

	/* Decoded where assigned. */
	pci_mmio32_io(&bus, 0x10, d, 4, false);
	CHECK_EQ(bar_hits, 1);
	CHECK_EQ(last_off, 0x10);
	pci_mmio64_io(&bus, 0x20, d, 4, false);
	CHECK_EQ(bar_hits, 2);

	/* Sizing: all ones reads back the size mask and type bits. */
	ecam_write(1, PCI_COMMAND, 0);
	ecam_write(1, PCI_BAR0, 0xFFFFFFFF);
	CHECK_EQ(ecam_read(1, PCI_BAR0), 0xFFFFC000);
	ecam_write(1, PCI_BAR0 + 8, 0xFFFFFFFF);
	ecam_write(1, PCI_BAR0 + 12, 0xFFFFFFFF);
	CHECK_EQ(ecam_read(1, PCI_BAR0 + 8), 0xFFF00000 | PCI_BAR_MEM_64);
	CHECK_EQ(ecam_read(1, PCI_BAR0 + 12), 0xFFFFFFFF);

	/* Memory decoding off: nobody answers. */
	memset(d, 0, 4);
	pci_mmio32_io(&bus, 0x10, d, 4, false);
	CHECK_EQ(bar_hits, 2);
	CHECK_EQ(d[0], 0xFF);

	/* Move BAR0 and turn decoding back on. */
	ecam_write(1, PCI_BAR0, LAYOUT_PCI_MMIO32 + 0x100000);
	ecam_write(1, PCI_BAR0 + 8, 0);
	ecam_write(1, PCI_BAR0 + 12, 0);
	moves = 0;
	ecam_write(1, PCI_COMMAND, PCI_COMMAND_MEMORY);
	CHECK_EQ(moves, 1); /* BAR2 at 0 stays off */
	pci_mmio32_io(&bus, 0x10, d, 4, false);
	CHECK_EQ(bar_hits, 2);
	pci_mmio32_io(&bus, 0x100008, d, 4, false);
	CHECK_EQ(bar_hits, 3);
	CHECK_EQ(last_off, 8);
	pci_bus_destroy(&bus);
}

int main(void)
{
	RUN(test_both_mechanisms);
	RUN(test_bar_sizing_and_decoding);
	return CHECK_DONE();
}
