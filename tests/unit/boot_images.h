/*
 * boot_images.h - synthetic kernels for the boot tests and the boot fuzz
 * target's seed corpus: a bzImage with a chosen setup header and a minimal
 * ELF (32 or 64-bit) with one PT_LOAD and a PVH entry note. Header-only;
 * every builder writes into a caller buffer and returns the image size.
 */
#ifndef YUN_TESTS_BOOT_IMAGES_H
#define YUN_TESTS_BOOT_IMAGES_H

#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/boot/bzimage.h"

static inline void img_put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, 2);
}

static inline void img_put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

static inline void img_put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, 8);
}

static inline uint16_t img_get16(const uint8_t *p, size_t off)
{
	uint16_t v;

	memcpy(&v, p + off, 2);
	return v;
}

static inline uint32_t img_get32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return v;
}

static inline uint64_t img_get64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, 8);
	return v;
}

/* ---- bzImage ------------------------------------------------------------ */

struct bz_opts {
	unsigned setup_sects;    /* as written in the header (0 means 4) */
	uint16_t version;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint8_t relocatable;
	uint32_t kernel_alignment;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint8_t jump_len;        /* byte at 0x201: header ends at 0x202 + this */
	size_t pm_size;          /* bytes of protected-mode "kernel" after the setup */
};

/* A kernel like a 6.x x86_64 defconfig, scaled down. */
static inline struct bz_opts bz_default_opts(void)
{
	return (struct bz_opts){
		.setup_sects = 4,
		.version = 0x020F,
		.loadflags = BZ_LOADED_HIGH,
		.xloadflags = BZ_XLF_KERNEL_64 | 0x0002, /* + XLF_CAN_BE_LOADED_ABOVE_4G */
		.relocatable = 1,
		.kernel_alignment = 0x200000,
		.pref_address = 0x1000000,
		.init_size = 0x800000,
		.cmdline_size = 2047,
		.initrd_addr_max = 0x7FFFFFFF,
		.jump_len = 0x6A,
		.pm_size = 4096,
	};
}

/* Byte i of the protected-mode part: recognisable, not constant. */
static inline uint8_t bz_pm_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static inline size_t bz_setup_bytes(const struct bz_opts *o)
{
	return ((o->setup_sects ? o->setup_sects : 4) + 1) * 512;
}

/* Build into buf (cap bytes); returns the size, 0 if cap is too small. */
static inline size_t bz_build(uint8_t *buf, size_t cap, const struct bz_opts *o)
{
	size_t setup = bz_setup_bytes(o), len = setup + o->pm_size;

	if (len > cap)
		return 0;
	memset(buf, 0, setup);
	buf[BZ_HDR_SETUP_SECTS] = (uint8_t)o->setup_sects;
	img_put16(buf, BZ_HDR_VID_MODE, 0xFFFF);
	img_put16(buf, BZ_HDR_BOOT_FLAG, BZ_BOOT_FLAG);
	buf[BZ_HDR_JUMP] = 0xEB;
	buf[BZ_HDR_JUMP + 1] = o->jump_len;
	memcpy(buf + BZ_HDR_MAGIC, "HdrS", 4);
	img_put16(buf, BZ_HDR_VERSION, o->version);
	buf[BZ_HDR_LOADFLAGS] = o->loadflags;
	img_put32(buf, BZ_HDR_CODE32_START, 0x100000);
	img_put32(buf, BZ_HDR_INITRD_ADDR_MAX, o->initrd_addr_max);
	img_put32(buf, BZ_HDR_KERNEL_ALIGN, o->kernel_alignment);
	buf[BZ_HDR_RELOCATABLE] = o->relocatable;
	buf[BZ_HDR_RELOCATABLE + 1] = 21; /* min_alignment */
	img_put16(buf, BZ_HDR_XLOADFLAGS, o->xloadflags);
	img_put32(buf, BZ_HDR_CMDLINE_SIZE, o->cmdline_size);
	img_put64(buf, BZ_HDR_PREF_ADDRESS, o->pref_address);
	img_put32(buf, BZ_HDR_INIT_SIZE, o->init_size);
	img_put32(buf, BZ_HDR_SYSSIZE, (uint32_t)((o->pm_size + 15) / 16));
	for (size_t i = 0; i < o->pm_size; i++)
		buf[setup + i] = bz_pm_byte(i);
	return len;
}

/* ---- ELF with a PVH note ------------------------------------------------ */

struct elf_opts {
	int elf_class;        /* 32 or 64 */
	uint64_t paddr;       /* the one PT_LOAD's physical address */
	uint64_t filesz, memsz;
	unsigned note_desc;   /* 0: no PVH note; 4 or 8: descriptor size */
	int note_in_section;  /* the note in a SHT_NOTE section, not a PT_NOTE */
	uint64_t entry;       /* what the note says */
	uint32_t note_type;   /* normally 18 */
};

static inline struct elf_opts elf_default_opts(void)
{
	return (struct elf_opts){
		.elf_class = 64,
		.paddr = 0x100000,
		.filesz = 0x100,
		.memsz = 0x2000,
		.note_desc = 4,
		.entry = 0x100010,
		.note_type = 18,
	};
}

static inline uint8_t elf_code_byte(size_t i)
{
	return (uint8_t)(0xC0 ^ i);
}

/* File layout: ehdr, 2 phdrs, the note at 0x100, the code at 0x200, section headers after. */
#define ELF_NOTE_OFF 0x100
#define ELF_CODE_OFF 0x200

static inline size_t elf_build(uint8_t *buf, size_t cap, const struct elf_opts *o)
{
	int is64 = o->elf_class == 64;
	size_t note_len = 12 + 4 + o->note_desc;
	size_t shoff = ELF_CODE_OFF + ((o->filesz + 7) & ~7ULL);
	size_t shdr_size = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	size_t len = shoff + (o->note_in_section ? 2 * shdr_size : 0);
	int has_pt_note = o->note_desc && !o->note_in_section;
	uint8_t *note = buf + ELF_NOTE_OFF;

	if (len > cap)
		return 0;
	memset(buf, 0, len);
	if (o->note_desc) {
		img_put32(note, 0, 4);
		img_put32(note, 4, o->note_desc);
		img_put32(note, 8, o->note_type);
		memcpy(note + 12, "Xen", 4);
		if (o->note_desc == 8)
			img_put64(note, 16, o->entry);
		else
			img_put32(note, 16, (uint32_t)o->entry);
	}
	for (size_t i = 0; i < o->filesz; i++)
		buf[ELF_CODE_OFF + i] = elf_code_byte(i);

	if (is64) {
		Elf64_Ehdr eh = { 0 };
		Elf64_Phdr ph[2] = { 0 };
		Elf64_Shdr sh[2] = { 0 };

		memcpy(eh.e_ident, ELFMAG, SELFMAG);
		eh.e_ident[EI_CLASS] = ELFCLASS64;
		eh.e_ident[EI_DATA] = ELFDATA2LSB;
		eh.e_ident[EI_VERSION] = EV_CURRENT;
		eh.e_type = ET_EXEC;
		eh.e_machine = EM_X86_64;
		eh.e_version = EV_CURRENT;
		eh.e_entry = 0xffffffff81000000ULL;
		eh.e_phoff = sizeof(eh);
		eh.e_ehsize = sizeof(eh);
		eh.e_phentsize = sizeof(Elf64_Phdr);
		eh.e_phnum = has_pt_note ? 2 : 1;
		ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X,
				      .p_offset = ELF_CODE_OFF,
				      .p_vaddr = 0xffffffff80000000ULL + o->paddr,
				      .p_paddr = o->paddr, .p_filesz = o->filesz,
				      .p_memsz = o->memsz, .p_align = 0x1000 };
		ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_flags = PF_R,
				      .p_offset = ELF_NOTE_OFF, .p_filesz = note_len,
				      .p_memsz = note_len, .p_align = 4 };
		if (o->note_in_section) {
			eh.e_shoff = shoff;
			eh.e_shentsize = sizeof(Elf64_Shdr);
			eh.e_shnum = 2;
			sh[1] = (Elf64_Shdr){ .sh_type = SHT_NOTE, .sh_offset = ELF_NOTE_OFF,
					      .sh_size = note_len, .sh_addralign = 4 };
			memcpy(buf + shoff, sh, sizeof(sh));
		}
		memcpy(buf, &eh, sizeof(eh));
		memcpy(buf + sizeof(eh), ph, eh.e_phnum * sizeof(ph[0]));
	} else {
		Elf32_Ehdr eh = { 0 };
		Elf32_Phdr ph[2] = { 0 };
		Elf32_Shdr sh[2] = { 0 };

		memcpy(eh.e_ident, ELFMAG, SELFMAG);
		eh.e_ident[EI_CLASS] = ELFCLASS32;
		eh.e_ident[EI_DATA] = ELFDATA2LSB;
		eh.e_ident[EI_VERSION] = EV_CURRENT;
		eh.e_type = ET_EXEC;
		eh.e_machine = EM_386;
		eh.e_version = EV_CURRENT;
		eh.e_entry = (uint32_t)o->paddr;
		eh.e_phoff = sizeof(eh);
		eh.e_ehsize = sizeof(eh);
		eh.e_phentsize = sizeof(Elf32_Phdr);
		eh.e_phnum = has_pt_note ? 2 : 1;
		ph[0] = (Elf32_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X,
				      .p_offset = ELF_CODE_OFF, .p_vaddr = (uint32_t)o->paddr,
				      .p_paddr = (uint32_t)o->paddr,
				      .p_filesz = (uint32_t)o->filesz,
				      .p_memsz = (uint32_t)o->memsz, .p_align = 0x1000 };
		ph[1] = (Elf32_Phdr){ .p_type = PT_NOTE, .p_flags = PF_R,
				      .p_offset = ELF_NOTE_OFF, .p_filesz = (uint32_t)note_len,
				      .p_memsz = (uint32_t)note_len, .p_align = 4 };
		if (o->note_in_section) {
			eh.e_shoff = (uint32_t)shoff;
			eh.e_shentsize = sizeof(Elf32_Shdr);
			eh.e_shnum = 2;
			sh[1] = (Elf32_Shdr){ .sh_type = SHT_NOTE, .sh_offset = ELF_NOTE_OFF,
					      .sh_size = (uint32_t)note_len, .sh_addralign = 4 };
			memcpy(buf + shoff, sh, sizeof(sh));
		}
		memcpy(buf, &eh, sizeof(eh));
		memcpy(buf + sizeof(eh), ph, eh.e_phnum * sizeof(ph[0]));
	}
	return len;
}

/* ---- files -------------------------------------------------------------- */

/* Write data to a new temporary file; path gets its name (room for 64). Returns 0 or -1. */
static inline int img_write_temp(const void *data, size_t len, char path[64])
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int fd;

	snprintf(path, 64, "%.40s/yun-boot-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	if (len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

#endif
