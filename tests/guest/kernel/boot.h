/*
 * boot.h - what the loader told the guest, in one shape whatever the entry:
 * Linux boot_params (bzImage, 32- or 64-bit entry) or PVH hvm_start_info.
 */
#ifndef YT_BOOT_H
#define YT_BOOT_H

#include "io.h"

#define CMDLINE_MAX 4096
#define MEMMAP_MAX  128

#define MEM_RAM 1 /* e820 / hvm_memmap type "usable" */

struct mem_range {
	u64 base, len;
	u32 type;
};

struct boot_info {
	u32 kind;	     /* BOOT_BZ64, BOOT_BZ32, BOOT_PVH */
	const char *entry;   /* "bz64", "bz32", "pvh" */
	u64 info_addr;	     /* where the zero page / start_info was */
	u8 loader_type;	     /* boot_params type_of_loader (bz only) */
	u32 initrd_addr_max; /* setup header value the loader saw (bz only) */
	u64 setup_data;	     /* boot_params setup_data list head (bz only) */

	char cmdline[CMDLINE_MAX];
	u32 cmdline_len;
	bool cmdline_truncated;

	struct mem_range map[MEMMAP_MAX];
	u32 nmap;

	u64 initrd_addr, initrd_size;
	u64 rsdp; /* 0 = the loader did not say */
};

extern struct boot_info boot;

/* Fill `boot` from the loader's structure; reports problems with yt_fail. */
void boot_info_init(u32 kind, u64 info);

/*
 * The value of word `key=value` on the command line, or NULL. *len gets the
 * value's length (values end at a space; they are not NUL-terminated).
 */
const char *cmdline_get(const char *key, size_t *len);
bool cmdline_is(const char *key, const char *value);

#endif
