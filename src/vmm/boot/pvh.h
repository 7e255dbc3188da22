/*
 * pvh.h - PVH boot of an ELF kernel (vmlinux, or a small test guest): the
 * kernel is entered in 32-bit protected mode, paging off, at the address in
 * its XEN_ELFNOTE_PHYS32_ENTRY note, with %ebx = the hvm_start_info
 * (xen/include/public/arch-x86/hvm/start_info.h).
 *
 * ELF64 (x86-64) and ELF32 (i386) little-endian executables are accepted.
 * Each PT_LOAD segment is copied to p_paddr and its bss (p_memsz beyond
 * p_filesz) zeroed; a segment must lie wholly in guest RAM, at or above
 * LAYOUT_HIMEM and below 4 GiB. The entry note is looked for in PT_NOTE
 * segments, then in SHT_NOTE sections; its descriptor is a 32-bit address
 * (4 bytes, or 8 with the upper half zero) inside a loaded segment.
 *
 * Guest memory written:
 *   the PT_LOAD segments
 *   LAYOUT_PVH_INFO     struct hvm_start_info (version 1)
 *   LAYOUT_PVH_MODLIST  one hvm_modlist_entry for the initrd (if any)
 *   LAYOUT_PVH_MEMMAP   hvm_memmap_table_entry[], the e820 map (e820.h)
 *   LAYOUT_CMDLINE      the command line (handoff.h)
 *   initrd              highest page-aligned fit above the kernel (handoff.h)
 *
 * The file is untrusted: every header, offset and size is checked before
 * use and nothing is read outside [buf, buf + len).
 */
#ifndef YUN_VMM_BOOT_PVH_H
#define YUN_VMM_BOOT_PVH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../memory.h"
#include "handoff.h"

#define PVH_NOTE_PHYS32_ENTRY 18          /* XEN_ELFNOTE_PHYS32_ENTRY, owner "Xen" */
#define PVH_START_MAGIC       0x336ec578u /* XEN_HVM_START_MAGIC_VALUE */
#define PVH_START_VERSION     1

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* version 1 */
	uint32_t memmap_entries; /* version 1 */
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* E820_RAM, E820_RESERVED, ... (e820.h) */
	uint32_t reserved;
};

struct pvh_loaded {
	uint64_t entry;        /* 32-bit physical entry: %eip */
	uint64_t kernel_start; /* lowest byte of any PT_LOAD segment */
	uint64_t kernel_end;   /* end of the highest one */
	uint64_t initrd_gpa;   /* 0 when no initrd */
	int elf_class;         /* 32 or 64 */
};

/* True when buf starts with the ELF magic; it may still be invalid. */
bool pvh_probe(const uint8_t *buf, size_t len);

/*
 * Load the ELF kernel in buf (named `name` in messages) and everything in
 * `h`, and build the start info. -EINVAL (bad or unsupported ELF, no PVH
 * note), -E2BIG (cmdline), -ENOSPC (does not fit) with a message in err.
 * Nothing is written to guest memory unless the whole file checks out.
 */
int pvh_load_buf(struct guest_mem *gm, const char *name, const uint8_t *buf, size_t len,
		 const struct handoff *h, struct pvh_loaded *out, struct yun_err *err);

#endif
