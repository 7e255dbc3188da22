/*
 * mkbzimage - packs the test guest as a Linux bzImage.
 *
 *   mkbzimage SETUP.elf KERNEL.elf OUT
 *
 * SETUP.elf is the boot sector + real-mode setup linked at 0 (its setup
 * header at 0x1f1); KERNEL.elf is the protected-mode kernel linked at
 * 1 MiB. The output is the setup padded to whole 512-byte sectors followed
 * by the kernel's loadable bytes, with setup_sects, syssize and init_size
 * filled in (Documentation/arch/x86/boot.rst).
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECTOR	    512
#define KERNEL_BASE 0x100000

struct blob {
	unsigned char *data;
	size_t len;
	uint64_t memsz; /* loaded bytes plus .bss */
};

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (!f) {
		fprintf(stderr, "mkbzimage: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "mkbzimage: %s: cannot size\n", path);
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "mkbzimage: %s: read failed\n", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/*
 * Flatten an ELF64's PT_LOAD segments into one buffer starting at `base`
 * (segments must lie at or above it, by physical address).
 */
static int flatten(const char *path, uint64_t base, struct blob *out)
{
	size_t flen;
	unsigned char *f = read_file(path, &flen);
	int ret = -1;

	if (!f)
		return -1;
	memset(out, 0, sizeof(*out));
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
	if (flen < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > flen || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > flen - eh->e_phoff) {
		fprintf(stderr, "mkbzimage: %s: not a usable ELF64 file\n", path);
		goto done;
	}
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff);
	uint64_t file_end = 0, mem_end = 0;

	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (ph[i].p_paddr < base || ph[i].p_offset > flen ||
		    ph[i].p_filesz > flen - ph[i].p_offset || ph[i].p_filesz > ph[i].p_memsz) {
			fprintf(stderr, "mkbzimage: %s: bad PT_LOAD %d\n", path, i);
			goto done;
		}
		if (ph[i].p_paddr - base + ph[i].p_filesz > file_end)
			file_end = ph[i].p_paddr - base + ph[i].p_filesz;
		if (ph[i].p_paddr - base + ph[i].p_memsz > mem_end)
			mem_end = ph[i].p_paddr - base + ph[i].p_memsz;
	}
	if (!file_end || file_end > (64u << 20)) {
		fprintf(stderr, "mkbzimage: %s: no loadable bytes (or absurdly many)\n", path);
		goto done;
	}
	out->data = calloc(1, file_end);
	if (!out->data) {
		fprintf(stderr, "mkbzimage: out of memory\n");
		goto done;
	}
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_filesz)
			memcpy(out->data + (ph[i].p_paddr - base), f + ph[i].p_offset,
			       ph[i].p_filesz);
	out->len = file_end;
	out->memsz = mem_end;
	ret = 0;
done:
	free(f);
	return ret;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

int main(int argc, char **argv)
{
	struct blob setup = {0}, kernel = {0};
	unsigned char *img = NULL;
	FILE *out = NULL;
	int ret = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: mkbzimage SETUP.elf KERNEL.elf OUT\n");
		return 2;
	}
	if (flatten(argv[1], 0, &setup) || flatten(argv[2], KERNEL_BASE, &kernel))
		goto done;

	size_t setup_len = (setup.len + SECTOR - 1) / SECTOR * SECTOR;
	if (setup_len < 2 * SECTOR || setup_len > 64 * SECTOR) {
		fprintf(stderr, "mkbzimage: setup is %zu bytes; want 2..64 sectors\n", setup.len);
		goto done;
	}
	img = calloc(1, setup_len + kernel.len);
	if (!img) {
		fprintf(stderr, "mkbzimage: out of memory\n");
		goto done;
	}
	memcpy(img, setup.data, setup.len);
	memcpy(img + setup_len, kernel.data, kernel.len);
	if (img[0x1fe] != 0x55 || img[0x1ff] != 0xaa || memcmp(img + 0x202, "HdrS", 4)) {
		fprintf(stderr, "mkbzimage: %s has no setup header\n", argv[1]);
		goto done;
	}
	img[0x1f1] = (unsigned char)(setup_len / SECTOR - 1);			 /* setup_sects */
	put32(img + 0x1f4, (uint32_t)((kernel.len + 15) / 16));			 /* syssize */
	put32(img + 0x260, (uint32_t)((kernel.memsz + 4095) & ~(uint64_t)4095)); /* init_size */

	out = fopen(argv[3], "wb");
	if (!out || fwrite(img, 1, setup_len + kernel.len, out) != setup_len + kernel.len) {
		fprintf(stderr, "mkbzimage: %s: %s\n", argv[3], strerror(errno));
		goto done;
	}
	if (fclose(out)) {
		out = NULL;
		fprintf(stderr, "mkbzimage: %s: %s\n", argv[3], strerror(errno));
		goto done;
	}
	out = NULL;
	ret = 0;
done:
	if (out)
		fclose(out);
	if (ret)
		remove(argv[3]);
	free(img);
	free(setup.data);
	free(kernel.data);
	return ret;
}
