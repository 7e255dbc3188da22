/* bzimage_test.c - what a 64-bit Linux kernel finds when yun-vmm loads its bzImage. */
#include "vmm/boot/bzimage.h"
#include "vmm/boot/e820.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include <errno.h>

#include "boot_images.h"
#include "check.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

static uint8_t kbuf[64 * 1024];
static uint8_t initrd[MIB + 123];

static void fill_initrd(void)
{
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 13 + 1);
}

static const uint8_t *zero_page(const struct guest_mem *gm)
{
	return gm_ptr(gm, LAYOUT_ZERO_PAGE, BZ_BP_SIZE);
}

/* Load a kernel built from o into a fresh guest of `mem` bytes. */
static int load(struct guest_mem *gm, uint64_t mem, const struct bz_opts *o,
		const struct handoff *h, struct bzimage_loaded *out, struct yun_err *err)
{
	size_t len = bz_build(kbuf, sizeof(kbuf), o);
	struct yun_err e;

	CHECK(len > 0);
	CHECK_EQ(gm_init(gm, mem, &e), 0);
	yun_err_clear(err);
	return bzimage_load_buf(gm, "/k/bz", kbuf, len, h, out, err);
}

/* e820 in the zero page: returns the sum of RAM; checks nothing sits in the 3-4 GiB hole. */
static uint64_t zp_e820_ram(const uint8_t *bp)
{
	uint64_t ram = 0;

	CHECK(bp[BZ_BP_E820_ENTRIES] > 0 && bp[BZ_BP_E820_ENTRIES] <= BZ_BP_E820_MAX);
	for (unsigned i = 0; i < bp[BZ_BP_E820_ENTRIES]; i++) {
		const uint8_t *e = bp + BZ_BP_E820_TABLE + i * BZ_BP_E820_ENTRY_SIZE;
		uint64_t addr = img_get64(e, 0), size = img_get64(e, 8);

		if (img_get32(e, 16) != E820_RAM)
			continue;
		CHECK(addr + size <= LAYOUT_LOW_RAM_MAX || addr >= LAYOUT_HIGH_RAM);
		ram += size;
	}
	return ram;
}

static void test_boot_params(void)
{
	struct bz_opts o = bz_default_opts();
	const char *cmdline = "console=ttyS0 root=/dev/vda rw";
	struct handoff h = { .cmdline = cmdline, .initrd = initrd, .initrd_len = sizeof(initrd),
			     .initrd_name = "/i/rd", .rsdp_gpa = 0xE0000 };
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;
	const uint8_t *bp, *k;
	uint64_t rd, rd_size, cl;

	fill_initrd();
	CHECK_EQ(load(&gm, 256 * MIB, &o, &h, &out, &err), 0);
	CHECK_EQ(err.code, 0);

	/* Relocatable, pref_address fits: loaded there; 64-bit entry at +0x200. */
	CHECK_EQ(out.load_addr, 0x1000000);
	CHECK_EQ(out.entry, 0x1000000 + 0x200);
	CHECK_EQ(out.version, 0x020F);
	k = gm_ptr(&gm, out.load_addr, o.pm_size);
	for (size_t i = 0; i < o.pm_size; i++)
		if (k[i] != bz_pm_byte(i)) {
			CHECK(!"protected-mode kernel bytes differ");
			break;
		}

	bp = zero_page(&gm);
	CHECK(!memcmp(bp + BZ_HDR_MAGIC, "HdrS", 4));
	CHECK_EQ(img_get16(bp, BZ_HDR_BOOT_FLAG), 0xAA55);
	CHECK_EQ(img_get16(bp, BZ_HDR_VERSION), 0x020F);
	CHECK_EQ(img_get32(bp, BZ_HDR_INIT_SIZE), o.init_size);
	CHECK_EQ(bp[BZ_BP_SENTINEL], 0);
	CHECK_EQ(bp[BZ_HDR_TYPE_OF_LOADER], 0xFF);
	CHECK_EQ(bp[BZ_HDR_LOADFLAGS], BZ_LOADED_HIGH | BZ_CAN_USE_HEAP);
	CHECK_EQ(img_get16(bp, BZ_HDR_HEAP_END_PTR), 0xFE00);
	CHECK_EQ(img_get32(bp, BZ_HDR_CODE32_START), out.load_addr);
	CHECK_EQ(img_get64(bp, BZ_BP_ACPI_RSDP_ADDR), 0xE0000);

	cl = img_get32(bp, BZ_HDR_CMD_LINE_PTR) |
	     (uint64_t)img_get32(bp, BZ_BP_EXT_CMD_LINE_PTR) << 32;
	CHECK_EQ(cl, LAYOUT_CMDLINE);
	CHECK(!strcmp((const char *)gm_ptr(&gm, cl, strlen(cmdline) + 1), cmdline));

	rd = img_get32(bp, BZ_HDR_RAMDISK_IMAGE) |
	     (uint64_t)img_get32(bp, BZ_BP_EXT_RAMDISK_IMAGE) << 32;
	rd_size = img_get32(bp, BZ_HDR_RAMDISK_SIZE) |
		  (uint64_t)img_get32(bp, BZ_BP_EXT_RAMDISK_SIZE) << 32;
	CHECK_EQ(rd, out.initrd_gpa);
	CHECK_EQ(rd_size, sizeof(initrd));
	CHECK_EQ(rd % 4096, 0);
	CHECK(rd + rd_size <= 256 * MIB);
	CHECK(rd + rd_size <= (uint64_t)o.initrd_addr_max + 1);
	CHECK(rd >= out.load_addr + o.init_size);           /* not over the kernel */
	CHECK(rd + rd_size + 4096 > 256 * MIB);             /* as high as it goes */
	CHECK(!memcmp(gm_ptr(&gm, rd, rd_size), initrd, rd_size));

	CHECK_EQ(zp_e820_ram(bp), 256 * MIB - (LAYOUT_HIMEM - LAYOUT_EBDA));
	gm_free(&gm);
}

static void test_initrd_below_initrd_addr_max(void)
{
	struct bz_opts o = bz_default_opts();
	struct handoff h = { .initrd = initrd, .initrd_len = sizeof(initrd), .initrd_name = "rd" };
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;
	uint64_t limit = 0x20000000; /* initrd_addr_max + 1 = 512 MiB, in a 1 GiB guest */

	o.initrd_addr_max = (uint32_t)(limit - 1);
	CHECK_EQ(load(&gm, GIB, &o, &h, &out, &err), 0);
	CHECK_EQ(out.initrd_gpa, (limit - sizeof(initrd)) & ~4095ULL);
	CHECK_EQ(img_get32(zero_page(&gm), BZ_HDR_RAMDISK_IMAGE), out.initrd_gpa);
	gm_free(&gm);
}

static void test_5gib_guest(void)
{
	struct bz_opts o = bz_default_opts();
	struct handoff h = { .cmdline = "" };
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;
	const uint8_t *bp;

	CHECK_EQ(load(&gm, 5 * GIB, &o, &h, &out, &err), 0);
	bp = zero_page(&gm);
	CHECK_EQ(zp_e820_ram(bp), 5 * GIB - (LAYOUT_HIMEM - LAYOUT_EBDA));
	CHECK_EQ(img_get32(bp, BZ_HDR_RAMDISK_IMAGE), 0);
	CHECK_EQ(img_get32(bp, BZ_HDR_RAMDISK_SIZE), 0);
	CHECK_EQ(*(const char *)gm_ptr(&gm, LAYOUT_CMDLINE, 1), '\0');
	gm_free(&gm);
}

static void test_pref_address_too_high_falls_back(void)
{
	struct bz_opts o = bz_default_opts();
	struct handoff h = { 0 };
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;

	/* 16 MiB guest: 16 MiB + init_size does not fit; 2 MiB (aligned up from 1 MiB) does. */
	CHECK_EQ(load(&gm, 16 * MIB, &o, &h, &out, &err), 0);
	CHECK_EQ(out.load_addr, 0x200000);
	CHECK_EQ(out.entry, 0x200200);
	gm_free(&gm);
}

static void test_not_relocatable_loads_at_1mib(void)
{
	struct bz_opts o = bz_default_opts();
	struct handoff h = { 0 };
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;

	o.relocatable = 0;
	o.setup_sects = 0; /* means 4 */
	CHECK_EQ(load(&gm, 64 * MIB, &o, &h, &out, &err), 0);
	CHECK_EQ(out.load_addr, LAYOUT_HIMEM);
	CHECK_EQ(out.entry, LAYOUT_HIMEM + 0x200);
	CHECK_EQ(*(const uint8_t *)gm_ptr(&gm, LAYOUT_HIMEM, 1), bz_pm_byte(0));
	/* It will run at pref_address: its memory ends there + init_size. */
	CHECK_EQ(out.kernel_end, o.pref_address + o.init_size);
	gm_free(&gm);
}

/* Load o (into 64 MiB unless mem) and expect rc and a message containing want. */
static void expect_error(const struct bz_opts *o, const struct handoff *h, uint64_t mem, int rc,
			 const char *want)
{
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;

	CHECK_EQ(load(&gm, mem ? mem : 64 * MIB, o, h, &out, &err), rc);
	CHECK_STR_CONTAINS(err.msg, want);
	/* The message names what is wrong: the command line, the initrd or the kernel. */
	if (rc == -E2BIG)
		CHECK_STR_CONTAINS(err.msg, "cmdline");
	else if (rc == -ENOSPC && h->initrd)
		CHECK_STR_CONTAINS(err.msg, "initrd");
	else
		CHECK_STR_CONTAINS(err.msg, "/k/bz");
	gm_free(&gm);
}

static void test_bad_headers(void)
{
	struct bz_opts o;
	struct handoff h = { 0 };

	o = bz_default_opts();
	o.version = 0x0202;
	expect_error(&o, &h, 0, -EINVAL, "boot protocol 2.02 is too old");

	o = bz_default_opts();
	o.xloadflags = 0;
	expect_error(&o, &h, 0, -EINVAL, "XLF_KERNEL_64");

	o = bz_default_opts();
	o.loadflags = 0;
	expect_error(&o, &h, 0, -EINVAL, "zImage");

	o = bz_default_opts();
	o.relocatable = 1;
	o.kernel_alignment = 0x300000;
	expect_error(&o, &h, 0, -EINVAL, "kernel_alignment 0x300000 is not a power of two");

	o = bz_default_opts();
	o.jump_len = 0x20;
	expect_error(&o, &h, 0, -EINVAL, "setup header ends at 0x222");

	o = bz_default_opts();
	o.init_size = 100 * MIB;
	expect_error(&o, &h, 0, -ENOSPC, "init_size 0x6400000");
}

static void test_no_hdrs_and_bad_boot_flag(void)
{
	struct bz_opts o = bz_default_opts();
	struct handoff h = { 0 };
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;
	size_t len = bz_build(kbuf, sizeof(kbuf), &o);

	CHECK_EQ(gm_init(&gm, 64 * MIB, &err), 0);
	memcpy(kbuf + BZ_HDR_MAGIC, "HdrX", 4);
	CHECK_EQ(bzimage_load_buf(&gm, "/k/bz", kbuf, len, &h, &out, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "kernel /k/bz: not a bzImage (no HdrS at 0x202)");

	memcpy(kbuf + BZ_HDR_MAGIC, "HdrS", 4);
	img_put16(kbuf, BZ_HDR_BOOT_FLAG, 0x1234);
	CHECK_EQ(bzimage_load_buf(&gm, "/k/bz", kbuf, len, &h, &out, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "boot_flag at 0x1fe is 0x1234");

	CHECK_EQ(bzimage_load_buf(&gm, "/k/bz", kbuf, 0, &h, &out, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "kernel /k/bz: empty file");
	CHECK_EQ(bzimage_load_buf(&gm, "/k/bz", kbuf, 0x205, &h, &out, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "no HdrS");
	/* A good boot sector with HdrS, but the file stops right after the magic. */
	img_put16(kbuf, BZ_HDR_BOOT_FLAG, BZ_BOOT_FLAG);
	for (size_t len2 = 0x206; len2 < 0x210; len2++) {
		uint8_t *tiny = malloc(len2); /* exact size, so ASan sees any overread */

		memcpy(tiny, kbuf, len2);
		CHECK_EQ(bzimage_load_buf(&gm, "/k/bz", tiny, len2, &h, &out, &err), -EINVAL);
		CHECK_STR_CONTAINS(err.msg, "truncated bzImage");
		free(tiny);
	}
	gm_free(&gm);
}

static void test_truncated(void)
{
	struct bz_opts o = bz_default_opts();
	struct handoff h = { 0 };
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;
	size_t len;

	/* The header says 30 setup sectors (15.5 KiB) but the file is 4 KiB. */
	o.pm_size = 4096 - bz_setup_bytes(&o);
	len = bz_build(kbuf, sizeof(kbuf), &o);
	CHECK_EQ(len, 4096);
	kbuf[BZ_HDR_SETUP_SECTS] = 30;
	CHECK_EQ(gm_init(&gm, 64 * MIB, &err), 0);
	CHECK_EQ(bzimage_load_buf(&gm, "/k/bz", kbuf, len, &h, &out, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "kernel /k/bz: truncated bzImage: setup_sects says 30");
	CHECK_STR_CONTAINS(err.msg, "only 4096 bytes");
	/* Exactly the setup and nothing after it: no kernel either. */
	CHECK_EQ(bzimage_load_buf(&gm, "/k/bz", kbuf, 31 * 512, &h, &out, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "truncated");
	gm_free(&gm);
}

static void test_cmdline_limits(void)
{
	static char big[LAYOUT_CMDLINE_MAX + 10];
	struct bz_opts o = bz_default_opts();
	struct handoff h = { .cmdline = big };

	memset(big, 'a', 2048);
	big[2048] = '\0';
	expect_error(&o, &h, 0, -E2BIG,
		     "cmdline: 2048 bytes is longer than the 2047 the kernel accepts "
		     "(cmdline_size)");

	o.cmdline_size = 0xFFFFFFFF;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_error(&o, &h, 0, -E2BIG, "room for at 0x20000");

	/* Exactly cmdline_size characters is fine. */
	{
		struct bzimage_loaded out;
		struct guest_mem gm;
		struct yun_err err;

		o = bz_default_opts();
		big[2047] = '\0';
		CHECK_EQ(load(&gm, 64 * MIB, &o, &h, &out, &err), 0);
		CHECK_EQ(strlen((const char *)gm_ptr(&gm, LAYOUT_CMDLINE, 2048)), 2047);
		gm_free(&gm);
	}
}

static void test_initrd_too_big(void)
{
	static uint8_t rd[48 * MIB];
	struct bz_opts o = bz_default_opts();
	struct handoff h = { .initrd = rd, .initrd_len = sizeof(rd), .initrd_name = "/i/big" };

	/* 64 MiB guest, kernel at 16 MiB + 8 MiB: neither 24..64 nor 1..16 MiB holds 48 MiB. */
	expect_error(&o, &h, 64 * MIB, -ENOSPC,
		     "initrd /i/big: 48 MiB does not fit below 0x7fffffff (initrd_addr_max) "
		     "in 64 MiB of RAM");
	/* But it fits in 128 MiB. */
	{
		struct bzimage_loaded out;
		struct guest_mem gm;
		struct yun_err err;

		CHECK_EQ(load(&gm, 128 * MIB, &o, &h, &out, &err), 0);
		CHECK(out.initrd_gpa >= 0x1000000 + o.init_size);
		gm_free(&gm);
	}
}

static void test_initrd_below_kernel_when_above_is_full(void)
{
	static uint8_t rd[8 * MIB];
	struct bz_opts o = bz_default_opts();
	struct handoff h = { .initrd = rd, .initrd_len = sizeof(rd), .initrd_name = "rd" };
	struct bzimage_loaded out;
	struct guest_mem gm;
	struct yun_err err;

	/* 32 MiB guest: kernel at 16..24 MiB, 8 MiB above it; 8 MiB + a page fits only below. */
	o.init_size = 8 * MIB + 4096;
	CHECK_EQ(load(&gm, 32 * MIB, &o, &h, &out, &err), 0);
	CHECK_EQ(out.load_addr, 16 * MIB);
	CHECK_EQ(out.initrd_gpa, 8 * MIB);
	gm_free(&gm);
}

int main(void)
{
	RUN(test_boot_params);
	RUN(test_initrd_below_initrd_addr_max);
	RUN(test_5gib_guest);
	RUN(test_pref_address_too_high_falls_back);
	RUN(test_not_relocatable_loads_at_1mib);
	RUN(test_bad_headers);
	RUN(test_no_hdrs_and_bad_boot_flag);
	RUN(test_truncated);
	RUN(test_cmdline_limits);
	RUN(test_initrd_too_big);
	RUN(test_initrd_below_kernel_when_above_is_full);
	return CHECK_DONE();
}
