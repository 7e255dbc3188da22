/* mptable.c - Intel MP spec 1.4 table; see mptable.h for the layout. */
#include "mptable.h"

#include <errno.h>
#include <string.h>

#include "../layout.h"

#define MP_SPEC_REV 4 /* 1.4 */

struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;  /* configuration table */
	uint8_t length;    /* in 16-byte units: 1 */
	uint8_t specrev;
	uint8_t checksum;
	uint8_t feature1;  /* 0: a configuration table is present */
	uint8_t feature2;  /* bit 7 IMCRP clear: virtual wire mode */
	uint8_t feature3[3];
} __attribute__((packed));

struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;   /* base table, header included */
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount; /* number of entries */
	uint32_t lapic;    /* local APIC address */
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_SMI = 2, MP_EXTINT = 3 };

#define CPU_ENABLED   0x01
#define CPU_BOOTPROC  0x02
#define IOAPIC_USABLE 0x01
#define MP_IRQ_CONFORMING 0x0000 /* polarity and trigger: as the bus says */
#define MP_ALL_LAPICS 0xFF
#define MP_ISA_BUS    0
#define MP_PCI_BUS    1  /* MP bus ids are the table's own; this one is PCI bus 0 */
#define MP_IRQ_PCI_INTX 0x000D /* level triggered (0b11 << 2), active high (0b01) */

struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature; /* CPUID.1 EAX: stepping, model, family */
	uint32_t featureflag; /* CPUID.1 EDX */
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc { /* also the local interrupt entry: same shape */
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer is 16 bytes");
_Static_assert(sizeof(struct mpc_table) == 44, "MP config header is 44 bytes");
_Static_assert(sizeof(struct mpc_cpu) == 20, "processor entry is 20 bytes");
_Static_assert(sizeof(struct mpc_bus) == 8, "bus entry is 8 bytes");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "IOAPIC entry is 8 bytes");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "interrupt entry is 8 bytes");

#define MP_ISA_IRQS  16
#define MP_NR_INTSRC (MP_ISA_IRQS - 1) /* no entry for IRQ 2, the cascade */
#define MP_NR_LINT   2
#define MP_FIXED_SIZE                                                                 \
	(sizeof(struct mpc_table) + sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) + \
	 (MP_NR_INTSRC + MP_NR_LINT) * sizeof(struct mpc_intsrc))

/* Plausible identity for every vCPU: family 6, model 15; FPU and APIC present. */
#define MP_CPU_SIGNATURE 0x000006F0u
#define MP_CPU_FEATURES  ((1u << 0) | (1u << 9))

_Static_assert(LAYOUT_EBDA + sizeof(struct mpf_intel) + MP_FIXED_SIZE +
			       LAYOUT_MAX_VCPUS * sizeof(struct mpc_cpu) <=
		       LAYOUT_BIOS_ROM,
	       "the MP table for LAYOUT_MAX_VCPUS must end below the ACPI area");

static uint8_t mp_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)(0 - sum);
}

uint64_t mptable_size(unsigned nr_vcpus)
{
	return mptable_size_pci(nr_vcpus, NULL, 0);
}

uint64_t mptable_size_pci(unsigned nr_vcpus, const struct mptable_pci_irq *irqs, unsigned nr)
{
	(void)irqs;
	return sizeof(struct mpf_intel) + MP_FIXED_SIZE +
	       (uint64_t)nr_vcpus * sizeof(struct mpc_cpu) +
	       (nr ? sizeof(struct mpc_bus) + nr * sizeof(struct mpc_intsrc) : 0);
}

uint8_t mptable_pci_intx_gsi(const struct mptable_pci_irq *irqs, unsigned nr, unsigned slot,
			     unsigned pin)
{
	if (pin >= MPTABLE_PCI_PINS)
		return 0;
	for (unsigned i = 0; i < nr; i++)
		if (irqs[i].slot == slot)
			return irqs[i].gsi;
	return 0;
}

/* Entry writers: each fills one entry at *p and advances *p past it. */
static void mp_put_cpu(uint8_t **p, unsigned index)
{
	struct mpc_cpu *cpu = (struct mpc_cpu *)*p;

	cpu->type = MP_PROCESSOR;
	cpu->apicid = (uint8_t)index;
	cpu->apicver = MPTABLE_LAPIC_VER;
	cpu->cpuflag = CPU_ENABLED | (index == 0 ? CPU_BOOTPROC : 0);
	cpu->cpufeature = MP_CPU_SIGNATURE;
	cpu->featureflag = MP_CPU_FEATURES;
	*p += sizeof(*cpu);
}

static void mp_put_bus(uint8_t **p, uint8_t id, const char *type)
{
	struct mpc_bus *bus = (struct mpc_bus *)*p;

	bus->type = MP_BUS;
	bus->busid = id;
	memcpy(bus->bustype, type, 6);
	*p += sizeof(*bus);
}

static void mp_put_ioapic(uint8_t **p, uint8_t id)
{
	struct mpc_ioapic *ioapic = (struct mpc_ioapic *)*p;

	ioapic->type = MP_IOAPIC;
	ioapic->apicid = id;
	ioapic->apicver = MPTABLE_IOAPIC_VER;
	ioapic->flags = IOAPIC_USABLE;
	ioapic->apicaddr = (uint32_t)LAYOUT_IOAPIC;
	*p += sizeof(*ioapic);
}

static void mp_put_irq(uint8_t **p, uint8_t entry_type, uint8_t irq_type, uint8_t src_irq,
		       uint8_t dst_apic, uint8_t dst_pin)
{
	struct mpc_intsrc *src = (struct mpc_intsrc *)*p;

	src->type = entry_type;
	src->irqtype = irq_type;
	src->irqflag = MP_IRQ_CONFORMING;
	src->srcbus = MP_ISA_BUS;
	src->srcbusirq = src_irq;
	src->dstapic = dst_apic;
	src->dstirq = dst_pin;
	*p += sizeof(*src);
}

int mptable_build(struct guest_mem *gm, unsigned nr_vcpus, struct yun_err *err)
{
	return mptable_build_pci(gm, nr_vcpus, NULL, 0, err);
}

int mptable_build_pci(struct guest_mem *gm, unsigned nr_vcpus, const struct mptable_pci_irq *irqs,
		      unsigned nr_irqs, struct yun_err *err)
{
	uint64_t size = mptable_size_pci(nr_vcpus, irqs, nr_irqs);
	uint8_t ioapic_id = (uint8_t)nr_vcpus;
	struct mpf_intel *mpf;
	struct mpc_table *mpc;
	uint8_t *base, *p;

	if (nr_vcpus == 0 || nr_vcpus > LAYOUT_MAX_VCPUS)
		return yun_err_set(err, EINVAL, "MP table: %u vCPUs, must be 1 to %d", nr_vcpus,
				   LAYOUT_MAX_VCPUS);
	if (nr_irqs > MPTABLE_MAX_PCI_IRQS)
		return yun_err_set(err, EINVAL, "MP table: %u PCI interrupts, at most %d",
				   nr_irqs, MPTABLE_MAX_PCI_IRQS);
	base = gm_ptr(gm, LAYOUT_EBDA, size);
	if (!base)
		return yun_err_set(err, EFAULT, "MP table: 0x%llx..0x%llx is not guest RAM",
				   (unsigned long long)LAYOUT_EBDA,
				   (unsigned long long)(LAYOUT_EBDA + size));
	memset(base, 0, size);
	mpf = (struct mpf_intel *)base;
	mpc = (struct mpc_table *)(mpf + 1);

	p = (uint8_t *)(mpc + 1);
	for (unsigned i = 0; i < nr_vcpus; i++)
		mp_put_cpu(&p, i);
	mp_put_bus(&p, MP_ISA_BUS, "ISA   ");
	if (nr_irqs)
		mp_put_bus(&p, MP_PCI_BUS, "PCI   ");
	mp_put_ioapic(&p, ioapic_id);
	for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++) {
		if (irq == 2)
			continue;
		mp_put_irq(&p, MP_INTSRC, MP_INT, (uint8_t)irq, ioapic_id,
			   (uint8_t)(irq == IRQ_PIT ? 2 : irq));
	}
	for (unsigned i = 0; i < nr_irqs; i++) {
		struct mpc_intsrc *src = (struct mpc_intsrc *)p;

		/* Source: PCI bus, (device << 2) | pin (0 = INTA#); level, active high. */
		mp_put_irq(&p, MP_INTSRC, MP_INT, (uint8_t)(irqs[i].slot << 2), ioapic_id,
			   mptable_pci_intx_gsi(irqs, nr_irqs, irqs[i].slot, 0));
		src->srcbus = MP_PCI_BUS;
		src->irqflag = MP_IRQ_PCI_INTX;
	}
	mp_put_irq(&p, MP_LINTSRC, MP_EXTINT, 0, MP_ALL_LAPICS, 0);
	mp_put_irq(&p, MP_LINTSRC, MP_NMI, 0, MP_ALL_LAPICS, 1);

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)(p - (uint8_t *)mpc);
	mpc->spec = MP_SPEC_REV;
	memcpy(mpc->oem, "YUN     ", 8);
	memcpy(mpc->productid, "YUNVMM      ", 12);
	mpc->oemcount = (uint16_t)(nr_vcpus + 2 + MP_NR_INTSRC + MP_NR_LINT +
				   (nr_irqs ? 1 + nr_irqs : 0));
	mpc->lapic = (uint32_t)LAYOUT_LAPIC;
	mpc->checksum = mp_checksum(mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(LAYOUT_EBDA + sizeof(*mpf));
	mpf->length = 1;
	mpf->specrev = MP_SPEC_REV;
	mpf->checksum = mp_checksum(mpf, sizeof(*mpf));
	return 0;
}
