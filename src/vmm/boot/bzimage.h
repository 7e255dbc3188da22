/*
 * bzimage.h - the Linux x86 boot protocol (Documentation/arch/x86/boot.rst),
 * 64-bit entry: load the protected-mode part of a bzImage, build the zero
 * page (struct boot_params) and say where to jump.
 *
 * The real-mode setup code is not loaded: the vCPU starts in long mode at
 * the 64-bit entry (load address + 0x200) with %rsi = LAYOUT_ZERO_PAGE.
 *
 * Guest memory written:
 *   LAYOUT_ZERO_PAGE   boot_params, 4 KiB
 *   LAYOUT_CMDLINE     the command line (handoff.h)
 *   load address       the protected-mode kernel: pref_address if the kernel
 *                      is relocatable and [pref_address, + init_size) fits in
 *                      RAM, else LAYOUT_HIMEM rounded up to kernel_alignment
 *                      (relocatable) or LAYOUT_HIMEM (not relocatable)
 *   initrd             highest page-aligned fit below initrd_addr_max (handoff.h)
 *
 * The kernel file is untrusted: every field is checked before use and
 * nothing is read outside [buf, buf + len).
 */
#ifndef YUN_VMM_BOOT_BZIMAGE_H
#define YUN_VMM_BOOT_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../memory.h"
#include "handoff.h"

/*
 * Offsets shared by the kernel file and the zero page: the setup header sits
 * at 0x1F1 in both.
 */
#define BZ_HDR_SETUP_SECTS     0x1F1 /* u8, 0 means 4 */
#define BZ_HDR_SYSSIZE         0x1F4 /* u32 */
#define BZ_HDR_VID_MODE        0x1FA /* u16 */
#define BZ_HDR_BOOT_FLAG       0x1FE /* u16, 0xAA55 */
#define BZ_HDR_JUMP            0x200 /* u16; byte 0x201 + 0x202 = end of header */
#define BZ_HDR_MAGIC           0x202 /* "HdrS" */
#define BZ_HDR_VERSION         0x206 /* u16, 0x020C = 2.12 */
#define BZ_HDR_TYPE_OF_LOADER  0x210 /* u8 */
#define BZ_HDR_LOADFLAGS       0x211 /* u8 */
#define BZ_HDR_CODE32_START    0x214 /* u32 */
#define BZ_HDR_RAMDISK_IMAGE   0x218 /* u32 */
#define BZ_HDR_RAMDISK_SIZE    0x21C /* u32 */
#define BZ_HDR_HEAP_END_PTR    0x224 /* u16 */
#define BZ_HDR_CMD_LINE_PTR    0x228 /* u32 */
#define BZ_HDR_INITRD_ADDR_MAX 0x22C /* u32, highest byte an initrd may use */
#define BZ_HDR_KERNEL_ALIGN    0x230 /* u32 */
#define BZ_HDR_RELOCATABLE     0x234 /* u8 */
#define BZ_HDR_XLOADFLAGS      0x236 /* u16 */
#define BZ_HDR_CMDLINE_SIZE    0x238 /* u32, max chars without the NUL */
#define BZ_HDR_HW_SUBARCH      0x23C /* u32 */
#define BZ_HDR_HW_SUBARCH_DATA 0x240 /* u64 */
#define BZ_HDR_SETUP_DATA      0x250 /* u64 */
#define BZ_HDR_PREF_ADDRESS    0x258 /* u64 */
#define BZ_HDR_INIT_SIZE       0x260 /* u32 */
#define BZ_HDR_END_MIN         0x264 /* a 2.12+ header reaches at least this far */
#define BZ_HDR_END_MAX         0x290 /* boot_params has room for the header up to here */

/* boot_params fields outside the setup header. */
#define BZ_BP_ACPI_RSDP_ADDR    0x070 /* u64 (2.14+ kernels read it) */
#define BZ_BP_EXT_RAMDISK_IMAGE 0x0C0 /* u32, high half of ramdisk_image */
#define BZ_BP_EXT_RAMDISK_SIZE  0x0C4 /* u32 */
#define BZ_BP_EXT_CMD_LINE_PTR  0x0C8 /* u32 */
#define BZ_BP_E820_ENTRIES      0x1E8 /* u8 */
#define BZ_BP_SENTINEL          0x1EF /* u8, must stay 0 */
#define BZ_BP_E820_TABLE        0x2D0 /* [128] of { u64 addr, u64 size, u32 type } */
#define BZ_BP_E820_ENTRY_SIZE   20
#define BZ_BP_E820_MAX          128
#define BZ_BP_SIZE              4096

#define BZ_BOOT_FLAG      0xAA55
#define BZ_MAGIC          0x53726448u /* "HdrS" */
#define BZ_MIN_VERSION    0x020C      /* 2.12: xloadflags */
#define BZ_LOADED_HIGH    0x01
#define BZ_CAN_USE_HEAP   0x80
#define BZ_XLF_KERNEL_64  0x0001
#define BZ_LOADER_UNKNOWN 0xFF        /* type_of_loader: no assigned id */
#define BZ_HEAP_END_PTR   0xFE00
#define BZ_ENTRY64_OFFSET 0x200       /* 64-bit entry, from the load address */
#define BZ_INITRD_ADDR_MAX_DEFAULT 0x37FFFFFFu

struct bzimage_loaded {
	uint64_t load_addr;   /* where the protected-mode kernel was put */
	uint64_t entry;       /* load_addr + 0x200: %rip */
	uint64_t kernel_end;  /* end of its memory: max(file part, init_size) */
	uint64_t initrd_gpa;  /* 0 when no initrd */
	uint16_t version;     /* boot protocol, e.g. 0x020F */
};

/* True when buf looks like a bzImage ("HdrS" at 0x202); it may still be invalid. */
bool bzimage_probe(const uint8_t *buf, size_t len);

/*
 * Load the bzImage in buf (named `name` in messages, e.g. its path) and
 * everything in `h`, and build the zero page. -EINVAL (bad kernel), -E2BIG
 * (cmdline), -ENOSPC (does not fit) with a message in err.
 */
int bzimage_load_buf(struct guest_mem *gm, const char *name, const uint8_t *buf, size_t len,
		     const struct handoff *h, struct bzimage_loaded *out, struct yun_err *err);

#endif
