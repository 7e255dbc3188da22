/* pvh_test.c - what a PVH kernel finds: its segments, the entry, hvm_start_info. */
#include "vmm/boot/e820.h"
#include "vmm/boot/pvh.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include <errno.h>

#include "boot_images.h"
#include "check.h"

#define MIB (1ULL << 20)

static uint8_t ebuf[16 * 1024];
static uint8_t initrd[3 * 4096 + 5];

static int load_elf(struct guest_mem *gm, uint64_t mem, const struct elf_opts *o,
		    const struct handoff *h, struct pvh_loaded *out, struct yun_err *err)
{
	size_t len = elf_build(ebuf, sizeof(ebuf), o);
	struct yun_err e;

	CHECK(len > 0);
	CHECK_EQ(gm_init(gm, mem, &e), 0);
	yun_err_clear(err);
	return pvh_load_buf(gm, "/k/vmlinux", ebuf, len, h, out, err);
}

static void check_start_info(const struct guest_mem *gm, const struct elf_opts *o,
			     const struct pvh_loaded *out, const char *cmdline)
{
	struct hvm_start_info si;
	struct hvm_modlist_entry mod;
	struct hvm_memmap_table_entry mm[E820_MAX_ENTRIES];
	struct e820_entry map[E820_MAX_ENTRIES];
	unsigned nr = e820_build(gm, map);
	const uint8_t *seg;

	CHECK_EQ(out->entry, o->entry);
	CHECK_EQ(out->elf_class, o->elf_class);
	seg = gm_ptr(gm, o->paddr, o->memsz);
	for (size_t i = 0; i < o->memsz; i++)
		if (seg[i] != (i < o->filesz ? elf_code_byte(i) : 0)) {
			CHECK(!"segment bytes or bss differ");
			break;
		}

	CHECK_EQ(gm_read(gm, LAYOUT_PVH_INFO, &si, sizeof(si)), 0);
	CHECK_EQ(si.magic, 0x336ec578);
	CHECK_EQ(si.version, 1);
	CHECK_EQ(si.rsdp_paddr, 0xE0000);
	CHECK_EQ(si.cmdline_paddr, LAYOUT_CMDLINE);
	CHECK(!strcmp((const char *)gm_ptr(gm, si.cmdline_paddr, strlen(cmdline) + 1), cmdline));

	CHECK_EQ(si.memmap_paddr, LAYOUT_PVH_MEMMAP);
	CHECK_EQ(si.memmap_entries, nr);
	CHECK_EQ(gm_read(gm, si.memmap_paddr, mm, nr * sizeof(mm[0])), 0);
	for (unsigned i = 0; i < nr; i++) {
		CHECK_EQ(mm[i].addr, map[i].addr);
		CHECK_EQ(mm[i].size, map[i].size);
		CHECK_EQ(mm[i].type, map[i].type);
		CHECK_EQ(mm[i].reserved, 0);
	}

	CHECK_EQ(si.nr_modules, 1);
	CHECK_EQ(si.modlist_paddr, LAYOUT_PVH_MODLIST);
	CHECK_EQ(gm_read(gm, si.modlist_paddr, &mod, sizeof(mod)), 0);
	CHECK_EQ(mod.paddr, out->initrd_gpa);
	CHECK_EQ(mod.size, sizeof(initrd));
	CHECK_EQ(mod.paddr % 4096, 0);
	CHECK(mod.paddr >= out->kernel_end);
	CHECK(mod.paddr + mod.size <= gm_low_end(gm));
	CHECK(mod.paddr + mod.size + 4096 > gm_low_end(gm)); /* highest fit */
	CHECK(!memcmp(gm_ptr(gm, mod.paddr, mod.size), initrd, mod.size));
}

static void run_good(struct elf_opts o)
{
	const char *cmdline = "console=ttyS0 quiet";
	struct handoff h = { .cmdline = cmdline, .initrd = initrd, .initrd_len = sizeof(initrd),
			     .initrd_name = "/i/rd", .rsdp_gpa = 0xE0000 };
	struct pvh_loaded out;
	struct guest_mem gm;
	struct yun_err err;

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5A);
	CHECK_EQ(load_elf(&gm, 32 * MIB, &o, &h, &out, &err), 0);
	if (err.code)
		fprintf(stderr, "  %s\n", err.msg);
	CHECK_EQ(out.kernel_start, o.paddr);
	CHECK_EQ(out.kernel_end, o.paddr + o.memsz);
	check_start_info(&gm, &o, &out, cmdline);
	gm_free(&gm);
}

static void test_elf64(void)
{
	run_good(elf_default_opts());
}

static void test_elf64_8_byte_note(void)
{
	struct elf_opts o = elf_default_opts();

	o.note_desc = 8;
	o.entry = 0x1000F0;
	run_good(o);
}

static void test_elf32(void)
{
	struct elf_opts o = elf_default_opts();

	o.elf_class = 32;
	o.paddr = 0x200000;
	o.entry = 0x200000;
	run_good(o);
}

static void test_note_in_section(void)
{
	struct elf_opts o = elf_default_opts();

	o.note_in_section = 1;
	run_good(o);
	o.elf_class = 32;
	run_good(o);
}

static void test_bss_is_zeroed(void)
{
	struct elf_opts o = elf_default_opts();
	struct handoff h = { 0 };
	size_t len = elf_build(ebuf, sizeof(ebuf), &o);
	struct pvh_loaded out;
	struct guest_mem gm;
	struct yun_err err;
	uint8_t *p;

	CHECK_EQ(gm_init(&gm, 16 * MIB, &err), 0);
	p = gm_ptr(&gm, o.paddr, o.memsz);
	memset(p, 0xAA, o.memsz);
	CHECK_EQ(pvh_load_buf(&gm, "k", ebuf, len, &h, &out, &err), 0);
	CHECK_EQ(p[o.filesz], 0);
	CHECK_EQ(p[o.memsz - 1], 0);
	CHECK_EQ(out.initrd_gpa, 0);
	{
		struct hvm_start_info si;

		CHECK_EQ(gm_read(&gm, LAYOUT_PVH_INFO, &si, sizeof(si)), 0);
		CHECK_EQ(si.nr_modules, 0);
		CHECK_EQ(si.modlist_paddr, 0);
		CHECK_EQ(*(const char *)gm_ptr(&gm, si.cmdline_paddr, 1), '\0');
	}
	gm_free(&gm);
}

/* Build o, optionally patch it, load into 16 MiB; expect rc and a message with want. */
static void expect_error(const struct elf_opts *o, void (*patch)(uint8_t *, size_t *), int rc,
			 const char *want)
{
	size_t len = elf_build(ebuf, sizeof(ebuf), o);
	struct handoff h = { 0 };
	struct pvh_loaded out;
	struct guest_mem gm;
	struct yun_err err;

	if (patch)
		patch(ebuf, &len);
	CHECK_EQ(gm_init(&gm, 16 * MIB, &err), 0);
	yun_err_clear(&err);
	CHECK_EQ(pvh_load_buf(&gm, "/k/vmlinux", ebuf, len, &h, &out, &err), rc);
	CHECK_STR_CONTAINS(err.msg, want);
	CHECK_STR_CONTAINS(err.msg, "/k/vmlinux");
	/* A rejected kernel leaves guest memory alone. */
	CHECK_EQ(*(const uint8_t *)gm_ptr(&gm, 0x100000, 1), 0);
	CHECK_EQ(*(const uint32_t *)gm_ptr(&gm, LAYOUT_PVH_INFO, 4), 0);
	gm_free(&gm);
}

static void phoff_past_end(uint8_t *b, size_t *len)
{
	Elf64_Ehdr eh;

	memcpy(&eh, b, sizeof(eh));
	eh.e_phoff = *len - 8;
	memcpy(b, &eh, sizeof(eh));
}

static void phoff_huge(uint8_t *b, size_t *len)
{
	Elf64_Ehdr eh;

	(void)len;
	memcpy(&eh, b, sizeof(eh));
	eh.e_phoff = UINT64_MAX - 16;
	memcpy(b, &eh, sizeof(eh));
}

static void truncate_header(uint8_t *b, size_t *len)
{
	(void)b;
	*len = 40;
}

static void big_endian(uint8_t *b, size_t *len)
{
	(void)len;
	b[EI_DATA] = ELFDATA2MSB;
}

static void wrong_machine(uint8_t *b, size_t *len)
{
	(void)len;
	img_put16(b, 18, EM_AARCH64);
}

static void segment_offset_past_end(uint8_t *b, size_t *len)
{
	(void)len;
	img_put64(b, 64 + 8, UINT64_MAX - 4); /* phdr[0].p_offset */
}

static void test_bad_elves(void)
{
	struct elf_opts o;

	o = elf_default_opts();
	o.note_desc = 0;
	expect_error(&o, NULL, -EINVAL,
		     "ELF kernel /k/vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");

	o = elf_default_opts();
	o.note_type = 17; /* another Xen note */
	expect_error(&o, NULL, -EINVAL, "has no PVH entry note");

	o = elf_default_opts();
	o.paddr = 15 * MIB;
	o.memsz = 2 * MIB;
	o.entry = o.paddr;
	expect_error(&o, NULL, -EINVAL, "segment 0 at 0xf00000..0x1100000 is outside guest RAM");

	o = elf_default_opts();
	o.paddr = 0x5000000000ULL;
	expect_error(&o, NULL, -EINVAL, "not below 4 GiB");

	o = elf_default_opts();
	o.paddr = 0x8000;
	o.entry = 0x8000;
	expect_error(&o, NULL, -EINVAL, "overlaps the boot area below 1 MiB");

	o = elf_default_opts();
	o.filesz = 0x300;
	o.memsz = 0x200;
	expect_error(&o, NULL, -EINVAL, "segment 0 has p_filesz 0x300 > p_memsz 0x200");

	o = elf_default_opts();
	expect_error(&o, phoff_past_end, -EINVAL, "program header table (2 entries at 0x");
	expect_error(&o, phoff_huge, -EINVAL, "runs past the end of the file");
	expect_error(&o, truncate_header, -EINVAL, "truncated ELF header (40 bytes)");
	expect_error(&o, big_endian, -EINVAL, "not a little-endian ELF");
	expect_error(&o, wrong_machine, -EINVAL, "ELF machine 183 is not x86-64");
	expect_error(&o, segment_offset_past_end, -EINVAL, "runs past the end of the file");

	o = elf_default_opts();
	o.entry = 0x300000;
	expect_error(&o, NULL, -EINVAL, "PVH entry 0x300000 is not inside any loaded segment");

	o = elf_default_opts();
	o.note_desc = 8;
	o.entry = 0x100000100000ULL;
	expect_error(&o, NULL, -EINVAL, "above 4 GiB");
}

static void test_initrd_does_not_fit(void)
{
	static uint8_t rd[15 * MIB];
	struct elf_opts o = elf_default_opts();
	struct handoff h = { .initrd = rd, .initrd_len = sizeof(rd), .initrd_name = "/i/rd" };
	struct pvh_loaded out;
	struct guest_mem gm;
	struct yun_err err;

	CHECK_EQ(load_elf(&gm, 16 * MIB, &o, &h, &out, &err), -ENOSPC);
	CHECK_STR_CONTAINS(err.msg, "initrd /i/rd: 15 MiB does not fit below 0xffffff");
	gm_free(&gm);
}

static void test_not_elf(void)
{
	struct handoff h = { 0 };
	struct pvh_loaded out;
	struct guest_mem gm;
	struct yun_err err;

	CHECK_EQ(gm_init(&gm, 16 * MIB, &err), 0);
	CHECK_EQ(pvh_load_buf(&gm, "/k/x", (const uint8_t *)"MZ\0\0", 4, &h, &out, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "kernel /k/x: not an ELF file");
	CHECK_EQ(pvh_load_buf(&gm, "/k/x", (const uint8_t *)"", 0, &h, &out, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "kernel /k/x: empty file");
	CHECK_EQ(pvh_load_buf(&gm, "/k/x", (const uint8_t *)"\x7f" "ELF", 4, &h, &out, &err),
		 -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "truncated ELF header (4 bytes)");
	gm_free(&gm);
}

int main(void)
{
	RUN(test_elf64);
	RUN(test_elf64_8_byte_note);
	RUN(test_elf32);
	RUN(test_note_in_section);
	RUN(test_bss_is_zeroed);
	RUN(test_bad_elves);
	RUN(test_initrd_does_not_fit);
	RUN(test_not_elf);
	return CHECK_DONE();
}
