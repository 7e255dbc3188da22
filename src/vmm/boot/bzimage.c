/* bzimage.c - Linux x86 boot protocol, 64-bit entry; see bzimage.h. */
#include "bzimage.h"

#include <errno.h>
#include <string.h>

#include "../layout.h"
#include "e820.h"

#define SECTOR 512u

/* Little-endian field access; callers have checked that the field lies in the buffer. */
static uint16_t get16(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	return (uint32_t)get16(p, off) | (uint32_t)get16(p, off + 2) << 16;
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	return (uint64_t)get32(p, off) | (uint64_t)get32(p, off + 4) << 32;
}

static void put8(uint8_t *p, size_t off, uint8_t v)
{
	p[off] = v;
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	put16(p, off, (uint16_t)v);
	put16(p, off + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	put32(p, off, (uint32_t)v);
	put32(p, off + 4, (uint32_t)(v >> 32));
}

bool bzimage_probe(const uint8_t *buf, size_t len)
{
	return len >= BZ_HDR_MAGIC + 4 && get32(buf, BZ_HDR_MAGIC) == BZ_MAGIC;
}

/* What the header says, once checked. */
struct bz_header {
	uint16_t version;
	uint32_t setup_size;   /* boot sector + setup sectors, in bytes */
	uint32_t hdr_end;      /* end of the setup header, <= BZ_HDR_END_MAX */
	uint64_t pm_size;      /* the protected-mode part: the rest of the file */
};

static int bz_check_header(const char *name, const uint8_t *buf, size_t len,
			   struct bz_header *hdr, struct yun_err *err)
{
	unsigned sects;

	if (len == 0)
		return yun_err_set(err, EINVAL, "kernel %s: empty file", name);
	if (!bzimage_probe(buf, len))
		return yun_err_set(err, EINVAL, "kernel %s: not a bzImage (no HdrS at 0x%x)", name,
				   BZ_HDR_MAGIC);
	/* The boot sector and at least one setup sector hold the whole setup header. */
	if (len < 2 * SECTOR)
		return yun_err_set(err, EINVAL,
				   "kernel %s: truncated bzImage (%zu bytes, less than the boot "
				   "sector and one setup sector)",
				   name, len);
	if (get16(buf, BZ_HDR_BOOT_FLAG) != BZ_BOOT_FLAG)
		return yun_err_set(err, EINVAL,
				   "kernel %s: not a bzImage "
				   "(boot_flag at 0x%x is 0x%04x, not 0x%04x)",
				   name, BZ_HDR_BOOT_FLAG, get16(buf, BZ_HDR_BOOT_FLAG),
				   BZ_BOOT_FLAG);
	hdr->version = get16(buf, BZ_HDR_VERSION);
	if (hdr->version < BZ_MIN_VERSION)
		return yun_err_set(err, EINVAL,
				   "kernel %s: boot protocol %u.%02u is too old (need 2.12 or "
				   "later for the 64-bit entry)",
				   name, hdr->version >> 8, hdr->version & 0xFF);

	sects = buf[BZ_HDR_SETUP_SECTS] ? buf[BZ_HDR_SETUP_SECTS] : 4;
	hdr->setup_size = (sects + 1) * SECTOR;
	if (len <= hdr->setup_size)
		return yun_err_set(err, EINVAL,
				   "kernel %s: truncated bzImage: setup_sects says %u setup "
				   "sectors (%u bytes with the boot sector) but the file has only "
				   "%zu bytes",
				   name, sects, hdr->setup_size, len);
	hdr->pm_size = len - hdr->setup_size;
	/* syssize (16-byte units) is how much protected-mode code the file should carry. */
	if (hdr->pm_size < (uint64_t)get32(buf, BZ_HDR_SYSSIZE) * 16)
		return yun_err_set(err, EINVAL,
				   "kernel %s: truncated bzImage: syssize says %llu bytes of kernel "
				   "after the setup code but the file has only %llu",
				   name, (unsigned long long)get32(buf, BZ_HDR_SYSSIZE) * 16,
				   (unsigned long long)hdr->pm_size);

	/* len > setup_size >= 1024 > BZ_HDR_END_MAX: every header field is in the buffer. */
	hdr->hdr_end = BZ_HDR_MAGIC + buf[BZ_HDR_JUMP + 1];
	if (hdr->hdr_end > BZ_HDR_END_MAX)
		hdr->hdr_end = BZ_HDR_END_MAX;
	if (hdr->hdr_end < BZ_HDR_END_MIN)
		return yun_err_set(err, EINVAL,
				   "kernel %s: setup header ends at 0x%x (jump byte at 0x201), "
				   "before the protocol 2.12 fields that end at 0x%x",
				   name, hdr->hdr_end, BZ_HDR_END_MIN);
	if (!(buf[BZ_HDR_LOADFLAGS] & BZ_LOADED_HIGH))
		return yun_err_set(err, EINVAL,
				   "kernel %s: a zImage "
				   "(loadflags.LOADED_HIGH clear), not a bzImage",
				   name);
	if (!(get16(buf, BZ_HDR_XLOADFLAGS) & BZ_XLF_KERNEL_64))
		return yun_err_set(err, EINVAL,
				   "kernel %s: no 64-bit entry point (xloadflags.XLF_KERNEL_64 "
				   "clear); yun-vmm boots 64-bit kernels only",
				   name);
	return 0;
}

/* [start, start + size) lies in RAM below 4 GiB and above the boot area; overflow-safe. */
static bool bz_fits(const struct guest_mem *gm, uint64_t start, uint64_t size)
{
	uint64_t low_end = gm_low_end(gm);

	return start >= LAYOUT_HIMEM && start <= low_end && size <= low_end - start;
}

/*
 * Choose where the protected-mode kernel goes and which memory it will use
 * ([*kstart, *kend)): boot.rst, "init_size" and "pref_address".
 */
static int bz_place_kernel(const struct guest_mem *gm, const char *name, const uint8_t *buf,
			   const struct bz_header *hdr, uint64_t *load, uint64_t *kstart,
			   uint64_t *kend, struct yun_err *err)
{
	uint64_t pref = get64(buf, BZ_HDR_PREF_ADDRESS);
	uint64_t align = get32(buf, BZ_HDR_KERNEL_ALIGN);
	uint64_t init_size = get32(buf, BZ_HDR_INIT_SIZE);
	uint64_t need = init_size > hdr->pm_size ? init_size : hdr->pm_size;
	uint64_t runtime;

	if (buf[BZ_HDR_RELOCATABLE]) {
		if (align == 0 || (align & (align - 1)))
			return yun_err_set(err, EINVAL,
					   "kernel %s: kernel_alignment 0x%llx "
					   "is not a power of two",
					   name, (unsigned long long)align);
		if (pref != 0 && pref % align == 0 && bz_fits(gm, pref, need))
			*load = pref;
		else
			*load = (LAYOUT_HIMEM + align - 1) & ~(align - 1);
		*kstart = *load;
		runtime = *load;
	} else {
		/* Loaded at 1 MiB, but it moves itself to pref_address and runs there. */
		*load = LAYOUT_HIMEM;
		runtime = pref ? pref : LAYOUT_HIMEM;
		if (runtime < LAYOUT_HIMEM)
			return yun_err_set(err, EINVAL,
					   "kernel %s: not relocatable and pref_address 0x%llx is "
					   "in the boot area below 1 MiB",
					   name, (unsigned long long)runtime);
		*kstart = LAYOUT_HIMEM;
	}
	if (!bz_fits(gm, *load, hdr->pm_size) || !bz_fits(gm, runtime, need))
		return yun_err_set(err, ENOSPC,
				   "kernel %s: needs 0x%llx bytes (init_size 0x%llx) at 0x%llx "
				   "but RAM below 4 GiB ends at 0x%llx",
				   name, (unsigned long long)need, (unsigned long long)init_size,
				   (unsigned long long)runtime, (unsigned long long)gm_low_end(gm));
	*kend = runtime + need;
	if (*kend < *load + hdr->pm_size)
		*kend = *load + hdr->pm_size;
	return 0;
}

static void bz_fill_zero_page(uint8_t *bp, const struct guest_mem *gm, const uint8_t *buf,
			      const struct bz_header *hdr, uint64_t load,
			      const struct handoff *h, uint64_t initrd_gpa)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	unsigned nr = e820_build(gm, map);
	uint64_t initrd_size = initrd_gpa ? h->initrd_len : 0;

	_Static_assert(E820_MAX_ENTRIES <= BZ_BP_E820_MAX, "e820 map fits the zero page");

	memset(bp, 0, BZ_BP_SIZE);
	memcpy(bp + BZ_HDR_SETUP_SECTS, buf + BZ_HDR_SETUP_SECTS,
	       hdr->hdr_end - BZ_HDR_SETUP_SECTS);

	put8(bp, BZ_HDR_TYPE_OF_LOADER, BZ_LOADER_UNKNOWN);
	put8(bp, BZ_HDR_LOADFLAGS, bp[BZ_HDR_LOADFLAGS] | BZ_LOADED_HIGH | BZ_CAN_USE_HEAP);
	put16(bp, BZ_HDR_HEAP_END_PTR, BZ_HEAP_END_PTR);
	put32(bp, BZ_HDR_CODE32_START, (uint32_t)load);
	put32(bp, BZ_HDR_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	put32(bp, BZ_BP_EXT_CMD_LINE_PTR, (uint32_t)(LAYOUT_CMDLINE >> 32));
	put32(bp, BZ_HDR_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put32(bp, BZ_BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_gpa >> 32));
	put32(bp, BZ_HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
	put32(bp, BZ_BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	/* Fields the file may carry but only a loader may set: a PC, no setup_data list. */
	put32(bp, BZ_HDR_HW_SUBARCH, 0);
	put64(bp, BZ_HDR_HW_SUBARCH_DATA, 0);
	put64(bp, BZ_HDR_SETUP_DATA, 0);
	put64(bp, BZ_BP_ACPI_RSDP_ADDR, h->rsdp_gpa);

	put8(bp, BZ_BP_E820_ENTRIES, (uint8_t)nr);
	for (unsigned i = 0; i < nr; i++) {
		size_t off = BZ_BP_E820_TABLE + i * BZ_BP_E820_ENTRY_SIZE;

		put64(bp, off, map[i].addr);
		put64(bp, off + 8, map[i].size);
		put32(bp, off + 16, map[i].type);
	}
}

int bzimage_load_buf(struct guest_mem *gm, const char *name, const uint8_t *buf, size_t len,
		     const struct handoff *h, struct bzimage_loaded *out, struct yun_err *err)
{
	uint8_t bp[BZ_BP_SIZE];
	struct bz_header hdr = { 0 };
	uint64_t load = 0, kstart = 0, kend = 0, cmdline_len, initrd_gpa;
	uint32_t initrd_max;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = bz_check_header(name, buf, len, &hdr, err);
	if (rc)
		return rc;
	rc = bz_place_kernel(gm, name, buf, &hdr, &load, &kstart, &kend, err);
	if (rc)
		return rc;
	rc = handoff_put_cmdline(gm, h, get32(buf, BZ_HDR_CMDLINE_SIZE), "cmdline_size",
				 &cmdline_len, err);
	if (rc)
		return rc;
	initrd_max = get32(buf, BZ_HDR_INITRD_ADDR_MAX);
	if (initrd_max == 0)
		initrd_max = BZ_INITRD_ADDR_MAX_DEFAULT;
	rc = handoff_put_initrd(gm, h, kstart, kend, initrd_max, "initrd_addr_max", &initrd_gpa,
				err);
	if (rc)
		return rc;
	if (gm_write(gm, load, buf + hdr.setup_size, hdr.pm_size) < 0)
		return yun_err_set(err, EFAULT, "kernel %s: 0x%llx is not guest RAM", name,
				   (unsigned long long)load);

	bz_fill_zero_page(bp, gm, buf, &hdr, load, h, initrd_gpa);
	if (gm_write(gm, LAYOUT_ZERO_PAGE, bp, sizeof(bp)) < 0)
		return yun_err_set(err, EFAULT, "zero page: 0x%llx is not guest RAM",
				   (unsigned long long)LAYOUT_ZERO_PAGE);

	out->load_addr = load;
	out->entry = load + BZ_ENTRY64_OFFSET;
	out->kernel_end = kend;
	out->initrd_gpa = initrd_gpa;
	out->version = hdr.version;
	return 0;
}
