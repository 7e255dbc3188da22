/*
 * boot.c - normalises the loader's boot information.
 *
 * Linux boot_params (Documentation/arch/x86/zero-page.rst): the setup
 * header sits at 0x1f1 as in the image; e820 table at 0x2d0.
 * PVH hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).
 * Everything is copied, so the loader's pages can be reused afterwards.
 */
#include "boot.h"
#include "console.h"
#include "layout.h"
#include "lib.h"

struct boot_info boot;

/* boot_params offsets */
#define BP_ACPI_RSDP	     0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES	     0x1e8
#define BP_TYPE_OF_LOADER    0x210
#define BP_RAMDISK_IMAGE     0x218
#define BP_RAMDISK_SIZE	     0x21c
#define BP_CMD_LINE_PTR	     0x228
#define BP_INITRD_ADDR_MAX   0x22c
#define BP_SETUP_DATA	     0x250
#define BP_E820_TABLE	     0x2d0

#define PVH_MAGIC 0x336ec578

struct hvm_start_info {
	u32 magic, version, flags, nr_modules;
	u64 modlist_paddr, cmdline_paddr, rsdp_paddr;
	u64 memmap_paddr; /* version >= 1 */
	u32 memmap_entries, reserved;
};

struct hvm_modlist_entry {
	u64 paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_table_entry {
	u64 addr, size;
	u32 type, reserved;
};

static u32 rd32(u64 addr)
{
	return *(const volatile u32 *)addr;
}

static void copy_cmdline(u64 addr)
{
	const char *s = (const char *)addr;
	u32 n = 0;

	if (!addr)
		return;
	while (s[n] && n < CMDLINE_MAX - 1) {
		boot.cmdline[n] = s[n];
		n++;
	}
	boot.cmdline[n] = '\0';
	boot.cmdline_len = n;
	boot.cmdline_truncated = s[n] != '\0';
}

static void from_boot_params(u64 bp)
{
	const u8 *p = (const u8 *)bp;

	boot.loader_type = p[BP_TYPE_OF_LOADER];
	boot.initrd_addr_max = rd32(bp + BP_INITRD_ADDR_MAX);
	boot.setup_data = *(const u64 *)(p + BP_SETUP_DATA);
	boot.rsdp = *(const u64 *)(p + BP_ACPI_RSDP);
	copy_cmdline(rd32(bp + BP_CMD_LINE_PTR) | (u64)rd32(bp + BP_EXT_CMD_LINE_PTR) << 32);
	boot.initrd_addr = rd32(bp + BP_RAMDISK_IMAGE) | (u64)rd32(bp + BP_EXT_RAMDISK_IMAGE) << 32;
	boot.initrd_size = rd32(bp + BP_RAMDISK_SIZE) | (u64)rd32(bp + BP_EXT_RAMDISK_SIZE) << 32;

	u32 n = p[BP_E820_ENTRIES];
	if (n > MEMMAP_MAX)
		n = MEMMAP_MAX;
	for (u32 i = 0; i < n; i++) {
		const u8 *e = p + BP_E820_TABLE + 20 * i; /* packed 20-byte entries */
		boot.map[i].base = *(const u64 *)e;
		boot.map[i].len = *(const u64 *)(e + 8);
		boot.map[i].type = *(const u32 *)(e + 16);
	}
	boot.nmap = n;
}

static void from_pvh(u64 addr)
{
	const struct hvm_start_info *si = (const void *)addr;

	if (si->magic != PVH_MAGIC)
		yt_fail("hvm_start_info at 0x%lx has magic 0x%x, want 0x%x", (unsigned long)addr,
			si->magic, PVH_MAGIC);
	copy_cmdline(si->cmdline_paddr);
	boot.rsdp = si->rsdp_paddr;
	if (si->nr_modules && si->modlist_paddr) {
		const struct hvm_modlist_entry *m = (const void *)si->modlist_paddr;
		boot.initrd_addr = m->paddr;
		boot.initrd_size = m->size;
	}
	if (si->version >= 1 && si->memmap_paddr) {
		const struct hvm_memmap_table_entry *e = (const void *)si->memmap_paddr;
		u32 n = si->memmap_entries;

		if (n > MEMMAP_MAX)
			n = MEMMAP_MAX;
		for (u32 i = 0; i < n; i++) {
			boot.map[i].base = e[i].addr;
			boot.map[i].len = e[i].size;
			boot.map[i].type = e[i].type;
		}
		boot.nmap = n;
	}
}

void boot_info_init(u32 kind, u64 info)
{
	boot.kind = kind;
	boot.info_addr = info;
	switch (kind) {
	case BOOT_BZ64:
		boot.entry = "bz64";
		from_boot_params(info);
		break;
	case BOOT_BZ32:
		boot.entry = "bz32";
		from_boot_params(info);
		break;
	case BOOT_PVH:
		boot.entry = "pvh";
		from_pvh(info);
		break;
	default:
		yt_fail("entered with unknown boot kind %u", kind);
	}
}

const char *cmdline_get(const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *s = boot.cmdline;

	while (*s) {
		while (*s == ' ')
			s++;
		const char *w = s;
		while (*s && *s != ' ')
			s++;
		if ((size_t)(s - w) > klen && !strncmp(w, key, klen) && w[klen] == '=') {
			*len = (size_t)(s - w) - klen - 1;
			return w + klen + 1;
		}
	}
	return NULL;
}

bool cmdline_is(const char *key, const char *value)
{
	size_t len;
	const char *v = cmdline_get(key, &len);

	return v && len == strlen(value) && !strncmp(v, value, len);
}
