/*
 * boot_fuzz.c - libFuzzer target for the kernel image parsers. The input is
 * a kernel file; it goes to both bzimage_load_buf() and pvh_load_buf() (each
 * rejects what is not its format early) with a small initrd and a command
 * line, into a 64 MiB guest. A crash, a sanitizer report or a broken
 * placement invariant is a bug.
 *
 * FUZZ_SOURCES: src/vmm/boot src/vmm/memory.c src/lib/err.c src/lib/file.c
 *
 * Built with -DFUZZ_WRITE_SEEDS (and without -fsanitize=fuzzer) this file is
 * instead a program that writes a seed corpus of valid synthetic kernels
 * (tests/unit/boot_images.h) into the directory given as its argument.
 */
#include "vmm/boot/bzimage.h"
#include "vmm/boot/pvh.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include <stdio.h>
#include <stdlib.h>

#include "boot_images.h"

#define GUEST_MIB 64

/* abort() is what libFuzzer reports as a crash. */
#define INVARIANT(cond)                                                               \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "boot_fuzz: invariant broken: %s\n", #cond); \
			abort();                                                      \
		}                                                                     \
	} while (0)

#ifndef FUZZ_WRITE_SEEDS

static uint8_t fuzz_initrd[3 * 4096 + 17];

static void check_initrd(const struct guest_mem *gm, uint64_t gpa, uint64_t kstart,
			 uint64_t kend)
{
	if (!gpa)
		return;
	INVARIANT(gpa % 4096 == 0);
	INVARIANT(gpa >= LAYOUT_HIMEM);
	INVARIANT(gpa + sizeof(fuzz_initrd) <= gm_low_end(gm));
	INVARIANT(gpa + sizeof(fuzz_initrd) <= kstart || gpa >= kend);
	INVARIANT(!memcmp(gm_ptr(gm, gpa, sizeof(fuzz_initrd)), fuzz_initrd,
			  sizeof(fuzz_initrd)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem gm;
	static int ready;
	struct handoff h = { .cmdline = "console=ttyS0", .initrd = fuzz_initrd,
			     .initrd_len = sizeof(fuzz_initrd), .initrd_name = "fuzz-initrd",
			     .rsdp_gpa = LAYOUT_BIOS_ROM };
	struct bzimage_loaded bz;
	struct pvh_loaded pvh;
	struct yun_err err;

	if (!ready) {
		if (gm_init(&gm, GUEST_MIB << 20, &err)) {
			fprintf(stderr, "boot_fuzz: %s\n", err.msg);
			abort();
		}
		for (size_t i = 0; i < sizeof(fuzz_initrd); i++)
			fuzz_initrd[i] = (uint8_t)(i * 31 + 7);
		ready = 1;
	}

	if (bzimage_load_buf(&gm, "fuzz", data, size, &h, &bz, &err) == 0) {
		INVARIANT(bz.load_addr >= LAYOUT_HIMEM);
		INVARIANT(bz.entry == bz.load_addr + BZ_ENTRY64_OFFSET);
		INVARIANT(bz.kernel_end <= gm_low_end(&gm));
		check_initrd(&gm, bz.initrd_gpa, bz.load_addr, bz.kernel_end);
	} else {
		INVARIANT(err.msg[0] != '\0');
	}

	if (pvh_load_buf(&gm, "fuzz", data, size, &h, &pvh, &err) == 0) {
		INVARIANT(pvh.kernel_start >= LAYOUT_HIMEM);
		INVARIANT(pvh.kernel_end <= gm_low_end(&gm));
		INVARIANT(pvh.entry >= pvh.kernel_start && pvh.entry < pvh.kernel_end);
		check_initrd(&gm, pvh.initrd_gpa, pvh.kernel_start, pvh.kernel_end);
	} else {
		INVARIANT(err.msg[0] != '\0');
	}
	return 0;
}

#else /* FUZZ_WRITE_SEEDS */

static int write_seed(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

int main(int argc, char **argv)
{
	static uint8_t buf[16384];
	struct bz_opts bo;
	struct elf_opts eo;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	bo = bz_default_opts();
	bo.pm_size = 512;
	rc |= write_seed(argv[1], "bzimage", buf, bz_build(buf, sizeof(buf), &bo));
	rc |= write_seed(argv[1], "bzimage-header-only", buf, BZ_HDR_END_MAX);
	bo.relocatable = 0;
	bo.setup_sects = 0;
	rc |= write_seed(argv[1], "bzimage-fixed", buf, bz_build(buf, sizeof(buf), &bo));

	eo = elf_default_opts();
	rc |= write_seed(argv[1], "elf64", buf, elf_build(buf, sizeof(buf), &eo));
	eo.note_desc = 8;
	rc |= write_seed(argv[1], "elf64-note8", buf, elf_build(buf, sizeof(buf), &eo));
	eo.note_desc = 4;
	eo.note_in_section = 1;
	rc |= write_seed(argv[1], "elf64-shnote", buf, elf_build(buf, sizeof(buf), &eo));
	eo = elf_default_opts();
	eo.elf_class = 32;
	rc |= write_seed(argv[1], "elf32", buf, elf_build(buf, sizeof(buf), &eo));
	return rc ? 1 : 0;
}

#endif
