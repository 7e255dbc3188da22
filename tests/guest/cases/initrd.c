/*
 * initrd.c - case "initrd": report where the initrd is and a checksum of
 * its bytes, which the harness recomputes from the file it passed.
 *
 * The checksum is FNV-1a 64 over little-endian 64-bit words (the last
 * word zero-padded), then the byte length folded in the same way:
 * a word per step keeps the emulated instruction count low.
 */
#include "cases.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/layout.h"
#include "../kernel/lib.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static u64 fnv1a64_words(const u8 *p, u64 n)
{
	const u64 *w = (const u64 *)p;
	u64 h = FNV_OFFSET, nw = n / 8;

	for (u64 i = 0; i < nw; i++) {
		h ^= w[i];
		h *= FNV_PRIME;
	}
	if (n % 8) {
		u64 t = 0;
		memcpy(&t, p + nw * 8, n % 8);
		h ^= t;
		h *= FNV_PRIME;
	}
	h ^= n;
	h *= FNV_PRIME;
	return h;
}

void case_initrd(void)
{
	u64 a = boot.initrd_addr, n = boot.initrd_size;
	bool in_ram = false;

	if (!n)
		yt_fail("no initrd (address 0x%lx, size 0)", (unsigned long)a);
	yt_printf("YT INITRD 0x%lx 0x%lx\n", (unsigned long)a, (unsigned long)n);
	if (boot.kind != BOOT_PVH)
		yt_printf("YT INITRD_ADDR_MAX 0x%x\n", boot.initrd_addr_max);
	for (u32 i = 0; i < boot.nmap; i++) {
		const struct mem_range *m = &boot.map[i];
		if (m->type == MEM_RAM && a >= m->base && a + n <= m->base + m->len)
			in_ram = true;
	}
	yt_printf("YT INITRD_IN_RAM %s\n", in_ram ? "yes" : "no");
	if (a + n > 0x100000000ULL)
		yt_fail("initrd above 4 GiB is not mapped by this guest");
	yt_printf("YT INITRD_HASH %016lx\n", (unsigned long)fnv1a64_words((const u8 *)a, n));
	yt_pass();
}
