/* loader_test.c - boot_load(): kernel, initrd and command line from files, plus the tables. */
#include "vmm/boot/bzimage.h"
#include "vmm/boot/loader.h"
#include "vmm/boot/pvh.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include <errno.h>
#include <fcntl.h>

#include "boot_images.h"
#include "check.h"

#define MIB (1ULL << 20)

static uint8_t buf[64 * 1024];

/* Temp files made by a test, removed at exit. */
static char made[16][64];
static int nr_made;

static const char *temp_file(const void *data, size_t len)
{
	char *path = made[nr_made];

	if (nr_made >= 16 || img_write_temp(data, len, path) < 0) {
		CHECK(!"cannot write a temp file");
		return "/nonexistent";
	}
	nr_made++;
	return path;
}

static void remove_temp_files(void)
{
	for (int i = 0; i < nr_made; i++)
		unlink(made[i]);
}

static const char *bzimage_file(void)
{
	struct bz_opts o = bz_default_opts();

	return temp_file(buf, bz_build(buf, sizeof(buf), &o));
}

static const char *elf_file(void)
{
	struct elf_opts o = elf_default_opts();

	return temp_file(buf, elf_build(buf, sizeof(buf), &o));
}

static void test_bzimage_from_files(void)
{
	static const uint8_t rd[] = "070701 a tiny cpio-looking initrd";
	struct boot_config cfg = { .kernel_path = bzimage_file(),
				   .initrd_path = temp_file(rd, sizeof(rd)),
				   .cmdline = "console=ttyS0",
				   .nr_vcpus = 2 };
	struct boot_entry entry;
	struct guest_mem gm;
	struct yun_err err;
	const uint8_t *bp;

	CHECK_EQ(gm_init(&gm, 128 * MIB, &err), 0);
	yun_err_clear(&err);
	CHECK_EQ(boot_load(&gm, &cfg, &entry, &err), 0);
	CHECK_EQ(err.code, 0);
	CHECK_EQ(entry.mode, BOOT_LINUX64);
	CHECK_EQ(entry.rip, 0x1000000 + 0x200);
	CHECK_EQ(entry.boot_info, LAYOUT_ZERO_PAGE);

	bp = gm_ptr(&gm, LAYOUT_ZERO_PAGE, BZ_BP_SIZE);
	CHECK_EQ(img_get64(bp, BZ_BP_ACPI_RSDP_ADDR), LAYOUT_BIOS_ROM);
	CHECK(!memcmp(gm_ptr(&gm, LAYOUT_BIOS_ROM, 8), "RSD PTR ", 8));
	CHECK(!memcmp(gm_ptr(&gm, LAYOUT_EBDA, 4), "_MP_", 4));
	CHECK(!strcmp((const char *)gm_ptr(&gm, img_get32(bp, BZ_HDR_CMD_LINE_PTR), 14),
		      "console=ttyS0"));
	CHECK_EQ(img_get32(bp, BZ_HDR_RAMDISK_SIZE), sizeof(rd));
	CHECK(!memcmp(gm_ptr(&gm, img_get32(bp, BZ_HDR_RAMDISK_IMAGE), sizeof(rd)), rd,
		      sizeof(rd)));
	gm_free(&gm);
}

static void test_pvh_from_file(void)
{
	struct boot_config cfg = { .kernel_path = elf_file(), .nr_vcpus = 1 };
	struct boot_entry entry;
	struct hvm_start_info si;
	struct guest_mem gm;
	struct yun_err err;

	CHECK_EQ(gm_init(&gm, 32 * MIB, &err), 0);
	CHECK_EQ(boot_load(&gm, &cfg, &entry, &err), 0);
	CHECK_EQ(entry.mode, BOOT_PVH32);
	CHECK_EQ(entry.rip, elf_default_opts().entry);
	CHECK_EQ(entry.boot_info, LAYOUT_PVH_INFO);
	CHECK_EQ(gm_read(&gm, LAYOUT_PVH_INFO, &si, sizeof(si)), 0);
	CHECK_EQ(si.magic, PVH_START_MAGIC);
	CHECK_EQ(si.rsdp_paddr, LAYOUT_BIOS_ROM);
	CHECK_EQ(si.nr_modules, 0);
	gm_free(&gm);
}

/* boot_load with cfg into a guest of mem bytes; expect rc and a message containing want. */
static void expect_error(const struct boot_config *cfg, uint64_t mem, int rc, const char *want)
{
	struct boot_entry entry;
	struct guest_mem gm;
	struct yun_err err;

	CHECK_EQ(gm_init(&gm, mem, &err), 0);
	yun_err_clear(&err);
	CHECK_EQ(boot_load(&gm, cfg, &entry, &err), rc);
	CHECK_STR_CONTAINS(err.msg, want);
	gm_free(&gm);
}

static void test_bad_kernel_files(void)
{
	struct boot_config cfg = { .nr_vcpus = 1 };
	char msg[256];

	cfg.kernel_path = temp_file("", 0);
	snprintf(msg, sizeof(msg), "kernel %s: empty file", cfg.kernel_path);
	expect_error(&cfg, 16 * MIB, -EINVAL, msg);

	memset(buf, 0x90, 4096);
	cfg.kernel_path = temp_file(buf, 4096);
	snprintf(msg, sizeof(msg),
		 "kernel %s: not a bzImage or ELF (no HdrS at 0x202, no ELF magic)",
		 cfg.kernel_path);
	expect_error(&cfg, 16 * MIB, -EINVAL, msg);

	cfg.kernel_path = "/nonexistent/bzImage";
	expect_error(&cfg, 16 * MIB, -ENOENT, "kernel /nonexistent/bzImage");

	/* The path names the file in the module's messages too. */
	{
		struct elf_opts o = elf_default_opts();

		o.note_desc = 0;
		cfg.kernel_path = temp_file(buf, elf_build(buf, sizeof(buf), &o));
		snprintf(msg, sizeof(msg),
			 "ELF kernel %s has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
			 cfg.kernel_path);
		expect_error(&cfg, 16 * MIB, -EINVAL, msg);
	}
}

static void test_vcpu_counts(void)
{
	struct boot_config cfg = { .kernel_path = bzimage_file() };

	cfg.nr_vcpus = 0;
	expect_error(&cfg, 16 * MIB, -EINVAL, "vcpus 0: must be 1 to 64");
	cfg.nr_vcpus = 65;
	expect_error(&cfg, 16 * MIB, -EINVAL, "vcpus 65: must be 1 to 64");
	{
		struct boot_entry entry;
		struct guest_mem gm;
		struct yun_err err;

		cfg.nr_vcpus = 64;
		CHECK_EQ(gm_init(&gm, 32 * MIB, &err), 0);
		CHECK_EQ(boot_load(&gm, &cfg, &entry, &err), 0);
		gm_free(&gm);
	}
}

static void test_initrd_too_big(void)
{
	struct boot_config cfg = { .kernel_path = bzimage_file(), .nr_vcpus = 1 };
	char path[64], msg[256];
	int fd;

	/* A sparse 900 MiB file: refused before it is read. */
	if (img_write_temp("", 0, path) < 0) {
		CHECK(!"temp file");
		return;
	}
	memcpy(made[nr_made++], path, sizeof(path));
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && ftruncate(fd, 900 * MIB) == 0);
	close(fd);
	cfg.initrd_path = path;
	snprintf(msg, sizeof(msg), "initrd %s: 900 MiB does not fit in 512 MiB of RAM", path);
	expect_error(&cfg, 512 * MIB, -ENOSPC, msg);

	/* 60 MiB fits in 64 MiB of RAM, but not beside the kernel. */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && ftruncate(fd, 60 * MIB) == 0);
	close(fd);
	snprintf(msg, sizeof(msg),
		 "initrd %s: 60 MiB does not fit below 0x7fffffff (initrd_addr_max) in 64 MiB of "
		 "RAM",
		 path);
	expect_error(&cfg, 64 * MIB, -ENOSPC, msg);

	cfg.initrd_path = "/nonexistent/initrd";
	expect_error(&cfg, 64 * MIB, -ENOENT, "initrd /nonexistent/initrd");
}

static void test_cmdline_too_long(void)
{
	static char big[3000];
	struct boot_config cfg = { .kernel_path = bzimage_file(), .cmdline = big, .nr_vcpus = 1 };

	memset(big, 'x', sizeof(big) - 1);
	expect_error(&cfg, 16 * MIB, -E2BIG,
		     "cmdline: 2999 bytes is longer than the 2047 the kernel accepts "
		     "(cmdline_size)");
}

int main(void)
{
	RUN(test_bzimage_from_files);
	RUN(test_pvh_from_file);
	RUN(test_bad_kernel_files);
	RUN(test_vcpu_counts);
	RUN(test_initrd_too_big);
	RUN(test_cmdline_too_long);
	remove_temp_files();
	return CHECK_DONE();
}
