/*
 * aml.h - a small encoder of AML (ACPI Machine Language, ACPI 6.4 chapter
 * 20) for the definition blocks yun-vmm writes at run time (the DSDT,
 * acpi.h). It covers what those need and nothing more:
 *
 *   named objects      aml_name(path) then one data object: its value
 *   scopes, devices    aml_scope_begin(path) / aml_device_begin(path) ... aml_end()
 *   integers           aml_int(): ZeroOp, OneOp or the shortest of
 *                      Byte/Word/DWord/QWordConst (never OnesOp)
 *   EISA ids           aml_eisaid("PNP0A08"): the compressed id as a DWordConst
 *   packages           aml_package_begin(nr_elements) ... aml_end()
 *   buffers            aml_buffer(bytes), aml_resource_template(res)
 *
 * No strings, methods, operators or fields: every object is a constant a
 * guest reads with a plain evaluation. (Methods would be needed for _OSC,
 * which the DSDT leaves out on purpose; see acpi.h.)
 *
 * Paths: NameSegs of 1 to 4 characters ([A-Z_] then [A-Z0-9_]; shorter
 * ones are padded with '_', so "_SB" is "_SB_"), joined by '.', optionally
 * after a leading '\' (the root): "_HID", "PCI0", "\\_SB.PCI0". Encoded as
 * a NameSeg, DualNamePrefix or MultiNamePrefix NameString.
 *
 * Output goes into the caller's buffer; nothing is allocated. Objects that
 * carry a PkgLength (Scope, Device, Package, Buffer) are opened, filled and
 * closed: aml_end() writes the PkgLength in its shortest encoding (1 to 4
 * bytes) and moves the body up to make room. A package checks at aml_end()
 * that it got exactly the number of elements it announced.
 *
 * The grammar is enforced as far as these objects go: a Name's value must
 * follow it, package elements are the only data objects without a Name,
 * and nothing but data objects goes inside a package.
 *
 * Errors are sticky: after the first one (buffer full, bad name or id, a
 * grammar slip as above, nesting deeper than AML_MAX_DEPTH, aml_end() with
 * nothing open, wrong element count) every call is a no-op, and
 * aml_finish() returns it: -ENOSPC for a full buffer, -EINVAL otherwise.
 *
 * Resource templates (ACPI 6.4, 6.4) are built apart in a struct aml_res
 * with the aml_res_*() calls and emitted as one Buffer, end tag included
 * (checksum byte 0: "treat as valid", as iasl writes it). Address space
 * descriptors are written as producers with fixed minimum and maximum,
 * positive decode, granularity and translation 0; memory ones read-write,
 * non-cacheable (not prefetchable: Linux would then refuse non-prefetchable
 * BARs in the window).
 */
#ifndef YUN_VMM_BOOT_AML_H
#define YUN_VMM_BOOT_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 8
#define AML_RES_MAX   256 /* bytes of one resource template, end tag included */

struct aml_frame {
	size_t pkg_at;      /* where the PkgLength goes (the body follows) */
	unsigned expected;  /* packages: NumElements; others: unused */
	unsigned seen;      /* data objects emitted directly inside */
	bool is_package;
};

struct aml {
	uint8_t *buf;
	size_t cap, len;
	struct aml_frame frame[AML_MAX_DEPTH];
	unsigned depth;
	bool need_value;    /* after aml_name(): the next object is its value */
	int error;          /* 0 or the first negative errno */
};

struct aml_res {
	uint8_t buf[AML_RES_MAX];
	size_t len;
	int error;          /* sticky as in struct aml; reported by aml_resource_template() */
};

/* Start encoding into buf[0..cap). */
void aml_init(struct aml *a, uint8_t *buf, size_t cap);

/* Bytes written in *len, or the first error; -EINVAL if an object is still open. */
int aml_finish(const struct aml *a, size_t *len);

/* DefName: NameOp and the path; the next data object is the value. */
void aml_name(struct aml *a, const char *path);

/* Data objects. */
void aml_int(struct aml *a, uint64_t v);
void aml_eisaid(struct aml *a, const char *id); /* "AAA####": 3 letters, 4 hex digits */
void aml_buffer(struct aml *a, const void *data, size_t len);
void aml_resource_template(struct aml *a, const struct aml_res *res);

/* Objects with a body; each is closed by aml_end(). */
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *path);
void aml_package_begin(struct aml *a, unsigned nr_elements); /* <= 255 */
void aml_end(struct aml *a);

/* Shorthands: Name (path, value). */
void aml_name_int(struct aml *a, const char *path, uint64_t v);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

/* Resource template builders (see the contract above). */
void aml_res_init(struct aml_res *r);
/* WordBusNumber: the bus numbers [min, max] a bridge decodes. */
void aml_res_bus_range(struct aml_res *r, uint16_t min, uint16_t max);
/* IO (Decode16, base, base, 1, len): ports consumed by the device itself. */
void aml_res_io(struct aml_res *r, uint16_t base, uint8_t len);
/* WordIO, EntireRange: a window of ports [min, max] passed down. */
void aml_res_io_window(struct aml_res *r, uint16_t min, uint16_t max);
/* DWordMemory / QWordMemory: a window of addresses [min, max] passed down. */
void aml_res_mem32_window(struct aml_res *r, uint32_t min, uint32_t max);
void aml_res_mem64_window(struct aml_res *r, uint64_t min, uint64_t max);

/* The 32-bit value of EISA id `id`, or 0 if it is not of the form "AAA####". */
uint32_t aml_eisaid_value(const char *id);

#endif
