/* acpi.c - ACPI table discovery and the few fields the guest reads. */
#include "acpi.h"
#include "boot.h"
#include "console.h"
#include "lib.h"
#include "platform.h"

struct rsdp {
	char sig[8];
	u8 checksum;
	char oem_id[6];
	u8 revision;
	u32 rsdt;
	u32 length; /* revision >= 2 */
	u64 xsdt;
	u8 ext_checksum, reserved[3];
} __attribute__((packed));

static bool rsdp_valid(u64 addr)
{
	const struct rsdp *r = (const void *)addr;

	if (memcmp(r->sig, "RSD PTR ", 8) || byte_sum(r, 20))
		return false;
	return r->revision < 2 || !byte_sum(r, 36);
}

static u64 scan_rsdp(u64 start, u64 end)
{
	for (u64 a = start; a < end; a += 16)
		if (*(const volatile u64 *)a == 0x2052545020445352ULL /* "RSD PTR " */ &&
		    rsdp_valid(a))
			return a;
	return 0;
}

const char *acpi_rsdp_from = "none";

u64 acpi_rsdp(void)
{
	static u64 found;
	static bool searched;

	if (searched)
		return found;
	searched = true;
	if (boot.rsdp && rsdp_valid(boot.rsdp)) {
		found = boot.rsdp;
		acpi_rsdp_from = "boot";
		return found;
	}
	if (boot.rsdp)
		yt_printf("YT WARN the loader's RSDP address 0x%lx holds no valid RSDP\n",
			  (unsigned long)boot.rsdp);
	u64 ebda = (u64) * (const volatile u16 *)0x40e << 4;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		found = scan_rsdp(ebda, ebda + 1024);
	if (!found)
		found = scan_rsdp(0xe0000, 0x100000);
	if (found)
		acpi_rsdp_from = "scan";
	return found;
}

static const struct acpi_header *checked(u64 addr)
{
	const struct acpi_header *h = (const void *)addr;

	if (!addr || addr >= 0x100000000ULL || h->length < sizeof(*h) || byte_sum(h, h->length))
		return NULL;
	return h;
}

const struct acpi_header *acpi_find(const char *sig)
{
	u64 rp = acpi_rsdp();

	if (!rp)
		return NULL;
	const struct rsdp *r = (const void *)rp;
	const struct acpi_header *root;
	unsigned width;

	if (r->revision >= 2 && r->xsdt && (root = checked(r->xsdt))) {
		width = 8;
	} else if ((root = checked(r->rsdt))) {
		width = 4;
	} else {
		return NULL;
	}
	const u8 *ents = (const u8 *)(root + 1);
	u32 n = (root->length - (u32)sizeof(*root)) / width;

	for (u32 i = 0; i < n; i++) {
		u64 a = width == 8 ? *(const u64 *)(ents + 8 * i) : *(const u32 *)(ents + 4 * i);
		const struct acpi_header *t = (const void *)a;

		if (a && a < 0x100000000ULL && !memcmp(t->sig, sig, 4))
			return checked(a);
	}
	return NULL;
}

bool acpi_parse_madt(void)
{
	const struct acpi_header *m = acpi_find("APIC");

	if (!m)
		return false;
	const u8 *p = (const u8 *)m;
	platform.lapic_base = *(const u32 *)(p + 36);

	for (u32 off = 44; off + 2 <= m->length;) {
		const u8 *e = p + off;
		u8 type = e[0], len = e[1];

		if (len < 2 || off + len > m->length)
			break;
		switch (type) {
		case 0: /* processor local APIC */
			if (*(const u32 *)(e + 4) & 1)
				platform_add_cpu(e[3]);
			break;
		case 1: /* IOAPIC */
			platform_add_ioapic(e[2], *(const u32 *)(e + 4), *(const u32 *)(e + 8));
			break;
		case 2:		       /* interrupt source override */
			if (e[2] == 0) /* bus 0 = ISA */
				platform_add_override(e[3], *(const u32 *)(e + 4),
						      *(const u16 *)(e + 8));
			break;
		case 5: /* local APIC address override */
			platform.lapic_base = *(const u64 *)(e + 4);
			break;
		case 9: /* processor local x2APIC */
			if (*(const u32 *)(e + 8) & 1)
				platform_add_cpu(*(const u32 *)(e + 4));
			break;
		}
		off += len;
	}
	return true;
}

bool acpi_fadt(struct acpi_fadt_info *out)
{
	const struct acpi_header *f = acpi_find("FACP");

	memset(out, 0, sizeof(*out));
	if (!f)
		return false;
	const u8 *p = (const u8 *)f;
	u32 len = f->length;
	u32 flags = len >= 116 ? *(const u32 *)(p + 112) : 0;

	out->hw_reduced = flags & (1u << 20);
	out->pm1a_cnt = len >= 68 ? *(const u32 *)(p + 64) : 0;
	out->pm1b_cnt = len >= 72 ? *(const u32 *)(p + 68) : 0;
	if (len >= 129) {
		memcpy(&out->reset_reg, p + 116, sizeof(out->reset_reg));
		out->reset_value = p[128];
		out->has_reset_reg = (flags & (1u << 10)) && out->reset_reg.addr;
	}
	if (len >= 196) {
		struct acpi_gas x;

		memcpy(&x, p + 172, sizeof(x));
		if (x.addr && x.space == ACPI_SPACE_IO && !out->pm1a_cnt)
			out->pm1a_cnt = (u32)x.addr;
	}
	if (len >= 256)
		memcpy(&out->sleep_control, p + 244, sizeof(out->sleep_control));

	u64 dsdt = len >= 148 ? *(const u64 *)(p + 140) : 0;
	if (!dsdt && len >= 44)
		dsdt = *(const u32 *)(p + 40);
	out->dsdt = checked(dsdt);
	return true;
}

int acpi_s5_slp_typ(const struct acpi_header *dsdt)
{
	if (!dsdt)
		return -1;
	const u8 *p = (const u8 *)dsdt;
	u32 len = dsdt->length;

	for (u32 i = sizeof(*dsdt) + 1; i + 8 < len; i++) {
		if (p[i] != '_' || memcmp(p + i, "_S5_", 4))
			continue;
		/* NameOp (0x08), optional root prefix, then a PackageOp (0x12). */
		if (p[i - 1] != 0x08 && !(p[i - 1] == '\\' && p[i - 2] == 0x08))
			continue;
		if (p[i + 4] != 0x12)
			continue;
		u32 j = i + 5;
		j += 1 + (p[j] >> 6); /* PkgLength: lead byte + follow bytes */
		j += 1;		      /* NumElements */
		switch (p[j]) {
		case 0x0a: /* BytePrefix */
			return p[j + 1];
		case 0x00: /* ZeroOp */
			return 0;
		case 0x01: /* OneOp */
			return 1;
		default:
			return p[j] < 8 ? p[j] : -1;
		}
	}
	return -1;
}

void acpi_gas_write(const struct acpi_gas *g, u64 v)
{
	unsigned width = g->access_size ? 8u << (g->access_size - 1) : g->bit_width;

	if (g->space == ACPI_SPACE_IO) {
		u16 port = (u16)g->addr;
		if (width == 16)
			outw(port, (u16)v);
		else if (width == 32)
			outl(port, (u32)v);
		else
			outb(port, (u8)v);
	} else if (g->space == ACPI_SPACE_MEM) {
		if (width == 16)
			mmio_write16(g->addr, (u16)v);
		else if (width == 32)
			mmio_write32(g->addr, (u32)v);
		else if (width == 64)
			mmio_write64(g->addr, v);
		else
			mmio_write8(g->addr, (u8)v);
	}
}

#define SLP_EN_HWR 0x20	      /* in SLEEP_CONTROL_REG */
#define SLP_EN_PM1 (1u << 13) /* in PM1x_CNT */

bool acpi_s5_method(struct acpi_s5 *m, const char **why)
{
	struct acpi_fadt_info f;

	memset(m, 0, sizeof(*m));
	if (!acpi_fadt(&f)) {
		*why = acpi_rsdp() ? "no FADT" : "no ACPI (no RSDP)";
		return false;
	}
	m->hw_reduced = f.hw_reduced;
	m->slp_typ = acpi_s5_slp_typ(f.dsdt);
	if (f.hw_reduced) {
		if (!f.sleep_control.addr) {
			*why = "hardware-reduced FADT without SLEEP_CONTROL_REG";
			return false;
		}
		m->sleep_control = f.sleep_control;
		m->value = (u16)((((m->slp_typ >= 0 ? m->slp_typ : 5) & 7) << 2) | SLP_EN_HWR);
		return true;
	}
	if (m->slp_typ < 0) {
		*why = "no \\_S5_ in the DSDT";
		return false;
	}
	if (!f.pm1a_cnt) {
		*why = "FADT without PM1a_CNT_BLK";
		return false;
	}
	m->pm1a_cnt = (u16)f.pm1a_cnt;
	m->pm1b_cnt = (u16)f.pm1b_cnt;
	m->value = (u16)(((unsigned)m->slp_typ & 7) << 10 | SLP_EN_PM1);
	return true;
}

void acpi_s5_enter(const struct acpi_s5 *m)
{
	if (m->hw_reduced) {
		acpi_gas_write(&m->sleep_control, m->value);
		return;
	}
	outw(m->pm1a_cnt, m->value);
	if (m->pm1b_cnt)
		outw(m->pm1b_cnt, m->value);
}
