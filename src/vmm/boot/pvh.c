/* pvh.c - PVH boot of ELF kernels; see pvh.h. */
#include "pvh.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "../layout.h"
#include "e820.h"

/*
 * ELF structures are read with memcpy into <elf.h> types: the buffer has no
 * alignment guarantee, and host and guest are both little-endian x86.
 */

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(offsetof(struct hvm_start_info, modlist_paddr) == 16, "modlist_paddr at 16");
_Static_assert(offsetof(struct hvm_start_info, rsdp_paddr) == 32, "rsdp_paddr at 32");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 48, "memmap_entries at 48");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry is 32 bytes");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry is 24 bytes");
_Static_assert(LAYOUT_PVH_INFO + sizeof(struct hvm_start_info) <= LAYOUT_PVH_MODLIST,
	       "start info fits below the module list");
_Static_assert(LAYOUT_PVH_MODLIST + sizeof(struct hvm_modlist_entry) <= LAYOUT_PVH_MEMMAP,
	       "module list fits below the memory map");
_Static_assert(LAYOUT_PVH_MEMMAP + E820_MAX_ENTRIES * sizeof(struct hvm_memmap_table_entry) <=
		       LAYOUT_ZERO_PAGE,
	       "memory map fits below the zero page");

#define FOUR_GIB (1ULL << 32)

/* One program header, whichever the ELF class. */
struct pvh_seg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz, align;
};

struct pvh_elf {
	const char *name;
	const uint8_t *buf;
	size_t len;
	bool is64;
	uint64_t phoff, shoff;
	unsigned phnum, shnum;
	unsigned phentsize, shentsize;
};

bool pvh_probe(const uint8_t *buf, size_t len)
{
	return len >= SELFMAG && memcmp(buf, ELFMAG, SELFMAG) == 0;
}

/* [off, off + size) lies in the file; overflow-safe. */
static bool in_file(const struct pvh_elf *e, uint64_t off, uint64_t size)
{
	return off <= e->len && size <= e->len - off;
}

/* A table of `num` entries of `entsize` bytes at `off` lies in the file. */
static bool table_in_file(const struct pvh_elf *e, uint64_t off, unsigned num, unsigned entsize)
{
	return in_file(e, off, (uint64_t)num * entsize); /* both < 2^16: no overflow */
}

static int pvh_read_ehdr(struct pvh_elf *e, struct yun_err *err)
{
	const uint8_t *id = e->buf;
	unsigned machine, type;

	if (!pvh_probe(e->buf, e->len))
		return yun_err_set(err, EINVAL, "kernel %s: not an ELF file (no ELF magic)",
				   e->name);
	if (e->len < EI_NIDENT)
		return yun_err_set(err, EINVAL, "kernel %s: truncated ELF header (%zu bytes)",
				   e->name, e->len);
	if (id[EI_CLASS] != ELFCLASS64 && id[EI_CLASS] != ELFCLASS32)
		return yun_err_set(err, EINVAL, "kernel %s: ELF class %u is neither 32 nor 64-bit",
				   e->name, id[EI_CLASS]);
	if (id[EI_DATA] != ELFDATA2LSB)
		return yun_err_set(err, EINVAL, "kernel %s: not a little-endian ELF file", e->name);
	e->is64 = id[EI_CLASS] == ELFCLASS64;

	if (e->is64) {
		Elf64_Ehdr eh;

		if (e->len < sizeof(eh))
			return yun_err_set(err, EINVAL,
					   "kernel %s: truncated ELF header (%zu bytes)", e->name,
					   e->len);
		memcpy(&eh, e->buf, sizeof(eh));
		machine = eh.e_machine;
		type = eh.e_type;
		e->phoff = eh.e_phoff;
		e->phnum = eh.e_phnum;
		e->phentsize = eh.e_phentsize;
		e->shoff = eh.e_shoff;
		e->shnum = eh.e_shnum;
		e->shentsize = eh.e_shentsize;
	} else {
		Elf32_Ehdr eh;

		if (e->len < sizeof(eh))
			return yun_err_set(err, EINVAL,
					   "kernel %s: truncated ELF header (%zu bytes)", e->name,
					   e->len);
		memcpy(&eh, e->buf, sizeof(eh));
		machine = eh.e_machine;
		type = eh.e_type;
		e->phoff = eh.e_phoff;
		e->phnum = eh.e_phnum;
		e->phentsize = eh.e_phentsize;
		e->shoff = eh.e_shoff;
		e->shnum = eh.e_shnum;
		e->shentsize = eh.e_shentsize;
	}
	if (machine != (e->is64 ? EM_X86_64 : EM_386))
		return yun_err_set(err, EINVAL, "kernel %s: ELF machine %u is not %s", e->name,
				   machine, e->is64 ? "x86-64" : "i386");
	if (type != ET_EXEC)
		return yun_err_set(err, EINVAL,
				   "kernel %s: ELF type %u is not a kernel image (need an ET_EXEC "
				   "vmlinux with a PVH entry note)",
				   e->name, type);
	if (e->phnum == 0 || e->phnum == PN_XNUM)
		return yun_err_set(err, EINVAL, "kernel %s: ELF file has %s program headers",
				   e->name, e->phnum ? "too many (PN_XNUM)" : "no");
	if (e->phentsize != (e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)))
		return yun_err_set(err, EINVAL, "kernel %s: e_phentsize %u is not %zu", e->name,
				   e->phentsize, e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr));
	if (!table_in_file(e, e->phoff, e->phnum, e->phentsize))
		return yun_err_set(err, EINVAL,
				   "kernel %s: program header table (%u entries at 0x%llx) runs "
				   "past the end of the file (%zu bytes)",
				   e->name, e->phnum, (unsigned long long)e->phoff, e->len);
	return 0;
}

/* Program header i; the table was checked by pvh_read_ehdr(). */
static struct pvh_seg pvh_phdr(const struct pvh_elf *e, unsigned i)
{
	const uint8_t *p = e->buf + e->phoff + (uint64_t)i * e->phentsize;
	struct pvh_seg s;

	if (e->is64) {
		Elf64_Phdr ph;

		memcpy(&ph, p, sizeof(ph));
		s = (struct pvh_seg){ ph.p_type, ph.p_offset, ph.p_paddr,
				      ph.p_filesz, ph.p_memsz, ph.p_align };
	} else {
		Elf32_Phdr ph;

		memcpy(&ph, p, sizeof(ph));
		s = (struct pvh_seg){ ph.p_type, ph.p_offset, ph.p_paddr,
				      ph.p_filesz, ph.p_memsz, ph.p_align };
	}
	return s;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1); /* v < 2^33 here: no overflow */
}

/*
 * Look for the PVH entry note among the notes in [off, off + size) of the
 * file (checked to be in the file), each padded to `align` (4 or 8).
 * Returns 1 and *entry when found, 0 when not, negative on a bad note.
 * A malformed note ends the walk of this area: it may be garbage that is
 * not ours to judge, and a later area may still hold the entry.
 */
static int pvh_scan_notes(const struct pvh_elf *e, uint64_t off, uint64_t size, uint64_t align,
			  uint64_t *entry, struct yun_err *err)
{
	const uint8_t *p = e->buf + off;
	uint64_t pos = 0;

	while (size - pos >= 12) {
		uint32_t hdr[3];
		uint64_t namesz, descsz, name_at, desc_at;

		memcpy(hdr, p + pos, sizeof(hdr));
		namesz = hdr[0];
		descsz = hdr[1];
		name_at = pos + 12;
		if (align_up(namesz, align) > size - name_at)
			return 0;
		desc_at = name_at + align_up(namesz, align);
		if (descsz > size - desc_at)
			return 0;
		if (namesz == 4 && memcmp(p + name_at, "Xen", 4) == 0 &&
		    hdr[2] == PVH_NOTE_PHYS32_ENTRY) {
			uint32_t lo, hi = 0;

			if (descsz != 4 && descsz != 8)
				return yun_err_set(err, EINVAL,
						   "kernel %s: PVH entry note has a %llu-byte "
						   "descriptor (expected 4 or 8)",
						   e->name, (unsigned long long)descsz);
			memcpy(&lo, p + desc_at, 4);
			if (descsz == 8)
				memcpy(&hi, p + desc_at + 4, 4);
			if (hi)
				return yun_err_set(err, EINVAL,
						   "kernel %s: PVH entry 0x%08x%08x is above 4 GiB",
						   e->name, hi, lo);
			*entry = lo;
			return 1;
		}
		pos = desc_at + align_up(descsz, align);
		if (pos > size)
			return 0;
	}
	return 0;
}

static uint64_t note_align(uint64_t a)
{
	return a == 8 ? 8 : 4;
}

/* The PVH entry from PT_NOTE segments, else SHT_NOTE sections. 1 found, 0 not, <0 error. */
static int pvh_find_entry(const struct pvh_elf *e, uint64_t *entry, struct yun_err *err)
{
	int rc;

	for (unsigned i = 0; i < e->phnum; i++) {
		struct pvh_seg s = pvh_phdr(e, i);

		if (s.type != PT_NOTE || !in_file(e, s.offset, s.filesz))
			continue;
		rc = pvh_scan_notes(e, s.offset, s.filesz, note_align(s.align), entry, err);
		if (rc)
			return rc;
	}

	/* Sections are optional: a missing or bogus section table just has no notes. */
	if (e->shnum == 0 ||
	    e->shentsize != (e->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
	    !table_in_file(e, e->shoff, e->shnum, e->shentsize))
		return 0;
	for (unsigned i = 0; i < e->shnum; i++) {
		const uint8_t *p = e->buf + e->shoff + (uint64_t)i * e->shentsize;
		uint64_t type, off, size, align;

		if (e->is64) {
			Elf64_Shdr sh;

			memcpy(&sh, p, sizeof(sh));
			type = sh.sh_type;
			off = sh.sh_offset;
			size = sh.sh_size;
			align = sh.sh_addralign;
		} else {
			Elf32_Shdr sh;

			memcpy(&sh, p, sizeof(sh));
			type = sh.sh_type;
			off = sh.sh_offset;
			size = sh.sh_size;
			align = sh.sh_addralign;
		}
		if (type != SHT_NOTE || !in_file(e, off, size))
			continue;
		rc = pvh_scan_notes(e, off, size, note_align(align), entry, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* Check every PT_LOAD segment; report the kernel's extent. Nothing is written. */
static int pvh_check_segments(const struct guest_mem *gm, const struct pvh_elf *e,
			      uint64_t *kstart, uint64_t *kend, struct yun_err *err)
{
	unsigned loads = 0;

	*kstart = UINT64_MAX;
	*kend = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		struct pvh_seg s = pvh_phdr(e, i);
		uint64_t end;

		if (s.type != PT_LOAD)
			continue;
		if (s.filesz > s.memsz)
			return yun_err_set(err, EINVAL,
					   "kernel %s: segment %u has "
					   "p_filesz 0x%llx > p_memsz 0x%llx",
					   e->name, i, (unsigned long long)s.filesz,
					   (unsigned long long)s.memsz);
		if (!in_file(e, s.offset, s.filesz))
			return yun_err_set(err, EINVAL,
					   "kernel %s: segment %u (0x%llx bytes at file offset "
					   "0x%llx) runs past the end of the file (%zu bytes)",
					   e->name, i, (unsigned long long)s.filesz,
					   (unsigned long long)s.offset, e->len);
		if (s.memsz == 0)
			continue;
		end = s.paddr + s.memsz; /* may wrap: only printed, never used unchecked */
		if (s.paddr < LAYOUT_HIMEM)
			return yun_err_set(err, EINVAL,
					   "kernel %s: segment %u at 0x%llx overlaps the boot "
					   "area below 1 MiB",
					   e->name, i, (unsigned long long)s.paddr);
		if (s.paddr >= FOUR_GIB || s.memsz > FOUR_GIB - s.paddr)
			return yun_err_set(err, EINVAL,
					   "kernel %s: segment %u at 0x%llx..0x%llx is not below "
					   "4 GiB, out of reach of the 32-bit PVH entry",
					   e->name, i, (unsigned long long)s.paddr,
					   (unsigned long long)end);
		if (!gm_is_ram(gm, s.paddr, s.memsz))
			return yun_err_set(err, EINVAL,
					   "kernel %s: segment %u at 0x%llx..0x%llx is outside "
					   "guest RAM (ends at 0x%llx)",
					   e->name, i, (unsigned long long)s.paddr,
					   (unsigned long long)end,
					   (unsigned long long)gm_low_end(gm));
		if (s.paddr < *kstart)
			*kstart = s.paddr;
		if (end > *kend)
			*kend = end;
		loads++;
	}
	if (!loads)
		return yun_err_set(err, EINVAL,
				   "kernel %s: ELF file has no PT_LOAD segment to load", e->name);
	return 0;
}

static bool pvh_entry_is_loaded(const struct pvh_elf *e, uint64_t entry)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		struct pvh_seg s = pvh_phdr(e, i);

		if (s.type == PT_LOAD && entry >= s.paddr && entry - s.paddr < s.memsz)
			return true;
	}
	return false;
}

/* Copy the (checked) segments into guest RAM and zero their bss. */
static void pvh_load_segments(struct guest_mem *gm, const struct pvh_elf *e)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		struct pvh_seg s = pvh_phdr(e, i);
		uint8_t *dst;

		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		dst = gm_ptr(gm, s.paddr, s.memsz); /* checked by pvh_check_segments() */
		memcpy(dst, e->buf + s.offset, s.filesz);
		gm_zero(gm, s.paddr + s.filesz, s.memsz - s.filesz);
	}
}

static int pvh_write_start_info(struct guest_mem *gm, const struct handoff *h,
				uint64_t initrd_gpa, struct yun_err *err)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct hvm_memmap_table_entry mm[E820_MAX_ENTRIES];
	struct hvm_modlist_entry mod = { 0 };
	struct hvm_start_info si = { 0 };
	unsigned nr = e820_build(gm, map);

	memset(mm, 0, sizeof(mm));
	for (unsigned i = 0; i < nr; i++) {
		mm[i].addr = map[i].addr;
		mm[i].size = map[i].size;
		mm[i].type = map[i].type;
	}
	si.magic = PVH_START_MAGIC;
	si.version = PVH_START_VERSION;
	si.cmdline_paddr = LAYOUT_CMDLINE;
	si.rsdp_paddr = h->rsdp_gpa;
	si.memmap_paddr = LAYOUT_PVH_MEMMAP;
	si.memmap_entries = nr;
	if (initrd_gpa) {
		mod.paddr = initrd_gpa;
		mod.size = h->initrd_len;
		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_PVH_MODLIST;
	}
	if (gm_write(gm, LAYOUT_PVH_INFO, &si, sizeof(si)) < 0 ||
	    gm_write(gm, LAYOUT_PVH_MODLIST, &mod, sizeof(mod)) < 0 ||
	    gm_write(gm, LAYOUT_PVH_MEMMAP, mm, nr * sizeof(mm[0])) < 0)
		return yun_err_set(err, EFAULT, "PVH start info: 0x%llx is not guest RAM",
				   (unsigned long long)LAYOUT_PVH_INFO);
	return 0;
}

int pvh_load_buf(struct guest_mem *gm, const char *name, const uint8_t *buf, size_t len,
		 const struct handoff *h, struct pvh_loaded *out, struct yun_err *err)
{
	struct pvh_elf e = { .name = name, .buf = buf, .len = len };
	uint64_t kstart, kend, entry = 0, cmdline_len, initrd_gpa;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return yun_err_set(err, EINVAL, "kernel %s: empty file", name);
	rc = pvh_read_ehdr(&e, err);
	if (rc)
		return rc;
	rc = pvh_check_segments(gm, &e, &kstart, &kend, err);
	if (rc)
		return rc;
	rc = pvh_find_entry(&e, &entry, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return yun_err_set(err, EINVAL,
				   "ELF kernel %s has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
				   name);
	if (!pvh_entry_is_loaded(&e, entry))
		return yun_err_set(err, EINVAL,
				   "kernel %s: PVH entry 0x%llx is not inside any loaded segment",
				   name, (unsigned long long)entry);

	rc = handoff_put_cmdline(gm, h, LAYOUT_CMDLINE_MAX - 1, "yun-vmm's command line room",
				 &cmdline_len, err);
	if (rc)
		return rc;
	rc = handoff_put_initrd(gm, h, kstart, kend, gm_low_end(gm) - 1, "end of RAM below 4 GiB",
				&initrd_gpa, err);
	if (rc)
		return rc;
	pvh_load_segments(gm, &e);
	rc = pvh_write_start_info(gm, h, initrd_gpa, err);
	if (rc)
		return rc;

	out->entry = entry;
	out->kernel_start = kstart;
	out->kernel_end = kend;
	out->initrd_gpa = initrd_gpa;
	out->elf_class = e.is64 ? 64 : 32;
	return 0;
}
