/*
 * acpi.h - just enough ACPI: find the RSDP, walk the XSDT/RSDT, read the
 * MADT, the FADT's power registers and the DSDT's _S5 value.
 */
#ifndef YT_ACPI_H
#define YT_ACPI_H

#include "io.h"

struct acpi_header {
	char sig[4];
	u32 length;
	u8 revision, checksum;
	char oem_id[6], oem_table_id[8];
	u32 oem_revision, creator_id, creator_revision;
} __attribute__((packed));

/* Generic Address Structure */
struct acpi_gas {
	u8 space; /* 0 = system memory, 1 = system I/O */
	u8 bit_width, bit_offset, access_size;
	u64 addr;
} __attribute__((packed));

#define ACPI_SPACE_MEM 0
#define ACPI_SPACE_IO  1

/* The RSDP's address (boot info, else EBDA / BIOS area scan); 0 = none. */
u64 acpi_rsdp(void);
extern const char *acpi_rsdp_from; /* "boot", "scan" or "none" */

/* A table by signature, checksum verified; NULL if absent. */
const struct acpi_header *acpi_find(const char *sig);

/* Fill `platform` from the MADT. False if there is no MADT. */
bool acpi_parse_madt(void);

struct acpi_fadt_info {
	bool hw_reduced;
	struct acpi_gas sleep_control; /* hardware-reduced sleep */
	struct acpi_gas reset_reg;
	u8 reset_value;
	bool has_reset_reg;	/* flags bit 10 RESET_REG_SUP, or address set */
	u32 pm1a_cnt, pm1b_cnt; /* I/O ports (legacy sleep) */
	const struct acpi_header *dsdt;
};

/* False if there is no FADT. */
bool acpi_fadt(struct acpi_fadt_info *out);

/* SLP_TYP for S5 from the DSDT's \_S5_ package; -1 if not found. */
int acpi_s5_slp_typ(const struct acpi_header *dsdt);

/*
 * How to enter S5 (soft off): hardware-reduced FADT (flags bit 20): write
 * (SLP_TYP << 2) | SLP_EN to SLEEP_CONTROL_REG; else SLP_TYP << 10 | SLP_EN
 * to PM1a/b_CNT. SLP_TYP comes from the DSDT's \_S5_ (5 if absent on a
 * hardware-reduced machine).
 */
struct acpi_s5 {
	bool hw_reduced;
	int slp_typ;		       /* from \_S5_, -1 if not found */
	struct acpi_gas sleep_control; /* hardware-reduced */
	u16 pm1a_cnt, pm1b_cnt;	       /* legacy */
	u16 value;		       /* what to write */
};

/* False, with a reason in `why`, if the tables offer no way to S5. */
bool acpi_s5_method(struct acpi_s5 *m, const char **why);
void acpi_s5_enter(const struct acpi_s5 *m);

/* Write `v` to a GAS register (I/O or memory, by its access width). */
void acpi_gas_write(const struct acpi_gas *g, u64 v);

#endif
