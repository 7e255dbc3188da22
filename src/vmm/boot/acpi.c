/* acpi.c - ACPI 6.x tables for a hardware-reduced platform; see acpi.h. */
#include "acpi.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "../layout.h"
#include "aml.h"

#define ACPI_CREATOR_ID  "YUN "
#define ACPI_CREATOR_REV 1
#define ACPI_OEM_REV     1

struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* over the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;  /* 2: ACPI 2.0+ */
	uint32_t rsdt_address;
	uint32_t length;   /* 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id; /* 1: system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size; /* 1: byte */
	uint64_t address;
} __attribute__((packed));

#define ACPI_GAS_IO          1
#define ACPI_GAS_ACCESS_BYTE 1

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor_id[8];
} __attribute__((packed));

#define FADT_REVISION        6
#define FADT_MINOR_VERSION   0   /* ACPI 6.0: the first with hypervisor_vendor_id */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED    (1u << 20)
#define FADT_BOOT_LEGACY_DEVICES (1u << 0) /* ISA devices (COM1, RTC) exist */
#define FADT_BOOT_8042           (1u << 1) /* an i8042 at 0x60/0x64 (Linux keeps it) */

struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

#define MADT_REVISION    4
#define MADT_PCAT_COMPAT (1u << 0)

enum { MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_ISO = 2, MADT_LAPIC_NMI = 4 };

struct madt_lapic {
	uint8_t type, length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags; /* bit 0: enabled */
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type, length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct madt_iso {
	uint8_t type, length;
	uint8_t bus;    /* 0: ISA */
	uint8_t source; /* ISA IRQ */
	uint32_t gsi;
	uint16_t flags; /* MPS INTI flags */
} __attribute__((packed));

struct madt_lapic_nmi {
	uint8_t type, length;
	uint8_t processor_uid; /* 0xFF: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

#define MADT_LAPIC_ENABLED   (1u << 0)
#define MPS_INTI_CONFORMING  0x0000
#define MPS_INTI_ACTIVE_HIGH 0x0001
#define MPS_INTI_LEVEL       0x000C
#define MADT_ALL_PROCESSORS  0xFF

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP v2 is 36 bytes");
_Static_assert(sizeof(struct acpi_header) == 36, "ACPI header is 36 bytes");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS is 12 bytes");
_Static_assert(offsetof(struct acpi_fadt, dsdt) == 40, "FADT.DSDT at 40");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT.IAPC_BOOT_ARCH at 109");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT.Flags at 112");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT.RESET_REG at 116");
_Static_assert(offsetof(struct acpi_fadt, reset_value) == 128, "FADT.RESET_VALUE at 128");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT.X_DSDT at 140");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT.SLEEP_CONTROL at 244");
_Static_assert(offsetof(struct acpi_fadt, sleep_status_reg) == 256, "FADT.SLEEP_STATUS at 256");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header is 44 bytes");
_Static_assert(sizeof(struct madt_lapic) == 8, "MADT local APIC entry is 8 bytes");
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT IOAPIC entry is 12 bytes");
_Static_assert(sizeof(struct madt_iso) == 10, "MADT interrupt source override is 10 bytes");
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT local APIC NMI is 6 bytes");

/* Buses behind the host bridge: as many as the ECAM window (and MCFG) covers. */
#define ACPI_PCI_BUSES     (LAYOUT_PCI_ECAM_SZ >> 20)
/* The I/O window passed down to PCI: everything above the config ports, as QEMU does. */
#define ACPI_PCI_IO_WINDOW 0x0D00
/* Room for the DSDT's AML; a full PCI bus needs under 1 KiB. */
#define ACPI_DSDT_AML_MAX  4096

uint64_t acpi_pci_mmio64_base(const struct guest_mem *gm)
{
	uint64_t top = LAYOUT_HIGH_RAM;

	for (int i = 0; i < gm->nr_regions; i++)
		if (gm->region[i].gpa + gm->region[i].size > top)
			top = gm->region[i].gpa + gm->region[i].size;
	return (top + LAYOUT_PCI_MMIO64_ALIGN - 1) & ~(LAYOUT_PCI_MMIO64_ALIGN - 1);
}

/* Each INTx entry names a slot 1..31 (0 is the host bridge) and a GSI, each slot once. */
static int pci_irqs_check(const struct mptable_pci_irq *irqs, unsigned nr, struct yun_err *err)
{
	uint32_t seen = 0;

	if (nr > MPTABLE_MAX_PCI_IRQS)
		return yun_err_set(err, EINVAL, "ACPI tables: %u PCI interrupts, at most %d", nr,
				   MPTABLE_MAX_PCI_IRQS);
	for (unsigned i = 0; i < nr; i++) {
		unsigned slot = irqs[i].slot;

		if (slot == 0 || slot > 31 || !irqs[i].gsi || (seen & (1u << slot)))
			return yun_err_set(err, EINVAL,
					   "ACPI tables: PCI slot %u -> GSI %u: need a slot 1..31, "
					   "each once, and a GSI", slot, irqs[i].gsi);
		seen |= 1u << slot;
	}
	return 0;
}

/* Device (\_SB.PCI0): the host bridge, its windows and its INTx routing (acpi.h). */
static void dsdt_pci0(struct aml *a, const struct guest_mem *gm,
		      const struct mptable_pci_irq *irqs, unsigned nr)
{
	uint64_t mmio64 = acpi_pci_mmio64_base(gm);
	struct aml_res crs;

	aml_res_init(&crs);
	aml_res_bus_range(&crs, 0, ACPI_PCI_BUSES - 1);
	aml_res_io(&crs, PORT_PCI_CONF, PORT_PCI_CONF_LEN);
	aml_res_io_window(&crs, ACPI_PCI_IO_WINDOW, 0xFFFF);
	aml_res_mem32_window(&crs, (uint32_t)LAYOUT_PCI_MMIO32,
			     (uint32_t)(LAYOUT_PCI_MMIO32 + LAYOUT_PCI_MMIO32_SZ - 1));
	aml_res_mem64_window(&crs, mmio64, mmio64 + LAYOUT_PCI_MMIO64_SZ - 1);

	aml_scope_begin(a, "_SB"); /* \_SB: from the root no prefix is needed (iasl drops it too) */
	aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_int(a, "_UID", 0);
	aml_name_int(a, "_SEG", 0);
	aml_name_int(a, "_BBN", 0);
	aml_name(a, "_CRS");
	aml_resource_template(a, &crs);

	aml_name(a, "_PRT");
	aml_package_begin(a, nr * MPTABLE_PCI_PINS);
	for (unsigned i = 0; i < nr; i++) {
		for (unsigned pin = 0; pin < MPTABLE_PCI_PINS; pin++) {
			aml_package_begin(a, 4);
			aml_int(a, (uint64_t)irqs[i].slot << 16 | 0xFFFF); /* any function */
			aml_int(a, pin);
			aml_int(a, 0); /* Source: none; SourceIndex is a GSI */
			aml_int(a, mptable_pci_intx_gsi(irqs, nr, irqs[i].slot, pin));
			aml_end(a);
		}
	}
	aml_end(a); /* _PRT */
	aml_end(a); /* PCI0 */
	aml_end(a); /* \_SB */
}

/* The DSDT's AML (after the header) into buf; its length in *len. */
static int dsdt_build(uint8_t *buf, size_t cap, const struct guest_mem *gm, bool pci,
		      const struct mptable_pci_irq *irqs, unsigned nr, size_t *len,
		      struct yun_err *err)
{
	struct aml a;
	int rc;

	aml_init(&a, buf, cap);
	/* SLP_TYPa, what Linux writes to SLEEP_CONTROL_REG bits 4:2; SLP_TYPb unused. */
	aml_name(&a, "_S5");
	aml_package_begin(&a, 2);
	aml_int(&a, PM_SLP_TYP_S5);
	aml_int(&a, 0);
	aml_end(&a);
	if (pci)
		dsdt_pci0(&a, gm, irqs, nr);
	rc = aml_finish(&a, len);
	if (rc)
		return yun_err_set(err, -rc, "ACPI tables: DSDT does not encode (%s)",
				   rc == -ENOSPC ? "over 4 KiB" : "bad AML");
	return 0;
}

static uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)(0 - sum);
}

static void acpi_header_init(struct acpi_header *h, const char *sig, uint32_t len,
			     uint8_t revision)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = ACPI_OEM_REV;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REV;
}

/* Checksum a finished table in place (h->length bytes). */
static void acpi_header_seal(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = acpi_checksum(h, h->length);
}

static struct acpi_gas acpi_io_byte(uint16_t port)
{
	return (struct acpi_gas){ .space_id = ACPI_GAS_IO,
				  .bit_width = 8,
				  .bit_offset = 0,
				  .access_size = ACPI_GAS_ACCESS_BYTE,
				  .address = port };
}

/* A bump allocator over [LAYOUT_BIOS_ROM, LAYOUT_BIOS_ROM_END). */
struct acpi_area {
	uint8_t *host; /* host address of LAYOUT_BIOS_ROM */
	uint64_t used;
};

static uint64_t acpi_alloc(struct acpi_area *a, uint64_t len)
{
	uint64_t gpa = LAYOUT_BIOS_ROM + a->used;

	a->used = (a->used + len + 15) & ~15ULL;
	return gpa;
}

static void *acpi_host(struct acpi_area *a, uint64_t gpa)
{
	return a->host + (gpa - LAYOUT_BIOS_ROM);
}

static uint64_t madt_size(unsigned nr_vcpus)
{
	return sizeof(struct acpi_madt) + nr_vcpus * sizeof(struct madt_lapic) +
	       sizeof(struct madt_ioapic) + 2 * sizeof(struct madt_iso) +
	       sizeof(struct madt_lapic_nmi);
}

static void madt_fill(struct acpi_madt *madt, unsigned nr_vcpus)
{
	uint8_t *p = (uint8_t *)(madt + 1);
	struct madt_ioapic *ioapic;
	struct madt_iso *iso;
	struct madt_lapic_nmi *nmi;

	acpi_header_init(&madt->h, "APIC", (uint32_t)madt_size(nr_vcpus), MADT_REVISION);
	madt->lapic_address = (uint32_t)LAYOUT_LAPIC;
	madt->flags = MADT_PCAT_COMPAT;

	for (unsigned i = 0; i < nr_vcpus; i++) {
		struct madt_lapic *lapic = (struct madt_lapic *)p;

		lapic->type = MADT_LAPIC;
		lapic->length = sizeof(*lapic);
		lapic->processor_uid = (uint8_t)i;
		lapic->apic_id = (uint8_t)i;
		lapic->flags = MADT_LAPIC_ENABLED;
		p += sizeof(*lapic);
	}

	ioapic = (struct madt_ioapic *)p;
	ioapic->type = MADT_IOAPIC;
	ioapic->length = sizeof(*ioapic);
	ioapic->ioapic_id = (uint8_t)nr_vcpus; /* after the local APIC ids, as in the MP table */
	ioapic->address = (uint32_t)LAYOUT_IOAPIC;
	ioapic->gsi_base = 0;
	p += sizeof(*ioapic);

	/* The PIT's IRQ 0 is wired to IOAPIC pin 2, as on every PC since the 8259 cascade. */
	iso = (struct madt_iso *)p;
	iso->type = MADT_ISO;
	iso->length = sizeof(*iso);
	iso->bus = 0;
	iso->source = IRQ_PIT;
	iso->gsi = 2;
	iso->flags = MPS_INTI_CONFORMING;
	p += sizeof(*iso);

	/* The SCI is level triggered, active high (ACPI spec, 5.2.12.5). */
	iso = (struct madt_iso *)p;
	iso->type = MADT_ISO;
	iso->length = sizeof(*iso);
	iso->bus = 0;
	iso->source = IRQ_ACPI_SCI;
	iso->gsi = IRQ_ACPI_SCI;
	iso->flags = MPS_INTI_LEVEL | MPS_INTI_ACTIVE_HIGH;
	p += sizeof(*iso);

	nmi = (struct madt_lapic_nmi *)p;
	nmi->type = MADT_LAPIC_NMI;
	nmi->length = sizeof(*nmi);
	nmi->processor_uid = MADT_ALL_PROCESSORS;
	nmi->flags = MPS_INTI_CONFORMING;
	nmi->lint = 1;

	acpi_header_seal(&madt->h);
}

static void fadt_fill(struct acpi_fadt *fadt, uint64_t dsdt_gpa)
{
	acpi_header_init(&fadt->h, "FACP", sizeof(*fadt), FADT_REVISION);
	fadt->minor_version = FADT_MINOR_VERSION;
	fadt->dsdt = (uint32_t)dsdt_gpa;
	fadt->x_dsdt = dsdt_gpa;
	fadt->sci_int = IRQ_ACPI_SCI;
	fadt->flags = FADT_F_HW_REDUCED | FADT_F_RESET_REG_SUP;
	fadt->iapc_boot_arch = FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042;
	fadt->reset_reg = acpi_io_byte(PORT_PM_RESET);
	fadt->reset_value = PM_RESET_VALUE;
	fadt->sleep_control_reg = acpi_io_byte(PORT_PM_SLEEP_CTL);
	fadt->sleep_status_reg = acpi_io_byte(PORT_PM_SLEEP_STS);
	memcpy(fadt->hypervisor_vendor_id, ACPI_HYPERVISOR_ID, 8);
	acpi_header_seal(&fadt->h);
}

/* MCFG (PCI Firmware Specification 3.0, 4.1.2): one ECAM window, segment 0. */
struct acpi_mcfg {
	struct acpi_header h;
	uint64_t reserved;
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus, end_bus;
	uint32_t reserved2;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_mcfg) == 60, "MCFG with one allocation is 60 bytes");

static void mcfg_fill(struct acpi_mcfg *mcfg)
{
	acpi_header_init(&mcfg->h, "MCFG", sizeof(*mcfg), 1);
	mcfg->base = LAYOUT_PCI_ECAM;
	mcfg->segment = 0;
	mcfg->start_bus = 0;
	mcfg->end_bus = (uint8_t)(ACPI_PCI_BUSES - 1);
	acpi_header_seal(&mcfg->h);
}

int acpi_build(struct guest_mem *gm, unsigned nr_vcpus, uint64_t *rsdp_gpa, struct yun_err *err)
{
	return acpi_build_pci(gm, nr_vcpus, false, NULL, 0, rsdp_gpa, err);
}

int acpi_build_pci(struct guest_mem *gm, unsigned nr_vcpus, bool pci,
		   const struct mptable_pci_irq *irqs, unsigned nr_irqs, uint64_t *rsdp_gpa,
		   struct yun_err *err)
{
	unsigned nr_tables = pci ? 3 : 2;
	uint64_t mcfg_at = 0;
	const uint64_t area_size = LAYOUT_BIOS_ROM_END - LAYOUT_BIOS_ROM;
	uint64_t rsdp_at, rsdt_at, xsdt_at, fadt_at, dsdt_at, madt_at;
	struct acpi_area area = { 0 };
	struct acpi_header *rsdt, *xsdt, *dsdt;
	struct acpi_rsdp *rsdp;
	uint32_t rsdt_entry[3];
	uint64_t xsdt_entry[3];
	uint8_t aml[ACPI_DSDT_AML_MAX];
	size_t aml_len;
	int rc;

	if (nr_vcpus == 0 || nr_vcpus > LAYOUT_MAX_VCPUS)
		return yun_err_set(err, EINVAL, "ACPI tables: %u vCPUs, must be 1 to %d", nr_vcpus,
				   LAYOUT_MAX_VCPUS);
	if (!pci)
		nr_irqs = 0;
	rc = pci_irqs_check(irqs, nr_irqs, err);
	if (rc)
		return rc;
	area.host = gm_ptr(gm, LAYOUT_BIOS_ROM, area_size);
	if (!area.host)
		return yun_err_set(err, EFAULT, "ACPI tables: 0x%llx..0x%llx is not guest RAM",
				   (unsigned long long)LAYOUT_BIOS_ROM,
				   (unsigned long long)LAYOUT_BIOS_ROM_END);
	rc = dsdt_build(aml, sizeof(aml), gm, pci, irqs, nr_irqs, &aml_len, err);
	if (rc)
		return rc;

	rsdp_at = acpi_alloc(&area, sizeof(struct acpi_rsdp));
	rsdt_at = acpi_alloc(&area, sizeof(struct acpi_header) + nr_tables * sizeof(uint32_t));
	xsdt_at = acpi_alloc(&area, sizeof(struct acpi_header) + nr_tables * sizeof(uint64_t));
	fadt_at = acpi_alloc(&area, sizeof(struct acpi_fadt));
	dsdt_at = acpi_alloc(&area, sizeof(struct acpi_header) + aml_len);
	madt_at = acpi_alloc(&area, madt_size(nr_vcpus));
	if (pci)
		mcfg_at = acpi_alloc(&area, sizeof(struct acpi_mcfg));
	/* Worst case (64 vCPUs, 8 PCI devices) is under 3 KiB of the 128 KiB area. */
	if (area.used > area_size)
		return yun_err_set(err, ENOSPC,
				   "ACPI tables: %llu bytes do not fit in the BIOS area",
				   (unsigned long long)area.used);
	memset(area.host, 0, area.used);

	dsdt = acpi_host(&area, dsdt_at);
	acpi_header_init(dsdt, "DSDT", (uint32_t)(sizeof(*dsdt) + aml_len), 2);
	memcpy(dsdt + 1, aml, aml_len);
	acpi_header_seal(dsdt);

	fadt_fill(acpi_host(&area, fadt_at), dsdt_at);
	madt_fill(acpi_host(&area, madt_at), nr_vcpus);
	if (pci)
		mcfg_fill(acpi_host(&area, mcfg_at));

	rsdt = acpi_host(&area, rsdt_at);
	acpi_header_init(rsdt, "RSDT", sizeof(*rsdt) + nr_tables * sizeof(uint32_t), 1);
	rsdt_entry[0] = (uint32_t)fadt_at;
	rsdt_entry[1] = (uint32_t)madt_at;
	rsdt_entry[2] = (uint32_t)mcfg_at;
	memcpy(rsdt + 1, rsdt_entry, nr_tables * sizeof(uint32_t));
	acpi_header_seal(rsdt);

	xsdt = acpi_host(&area, xsdt_at);
	acpi_header_init(xsdt, "XSDT", sizeof(*xsdt) + nr_tables * sizeof(uint64_t), 1);
	xsdt_entry[0] = fadt_at;
	xsdt_entry[1] = madt_at;
	xsdt_entry[2] = mcfg_at;
	memcpy(xsdt + 1, xsdt_entry, nr_tables * sizeof(uint64_t)); /* 8-byte entries at 36 */
	acpi_header_seal(xsdt);

	rsdp = acpi_host(&area, rsdp_at);
	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, ACPI_OEM_ID, 6);
	rsdp->revision = 2;
	rsdp->rsdt_address = (uint32_t)rsdt_at;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = xsdt_at;
	rsdp->checksum = acpi_checksum(rsdp, 20);
	rsdp->extended_checksum = acpi_checksum(rsdp, sizeof(*rsdp));

	*rsdp_gpa = rsdp_at;
	return 0;
}
