/* handoff.c - command line and initrd placement; see handoff.h. */
#include "handoff.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../layout.h"

#define PAGE_SIZE 4096ULL
#define MIB       (1ULL << 20)

const char *handoff_fmt_size(char *buf, size_t bufsz, uint64_t bytes)
{
	if (bytes < MIB)
		snprintf(buf, bufsz, "%llu bytes", (unsigned long long)bytes);
	else if (bytes % MIB == 0)
		snprintf(buf, bufsz, "%llu MiB", (unsigned long long)(bytes / MIB));
	else
		snprintf(buf, bufsz, "%.1f MiB", (double)bytes / MIB);
	return buf;
}

int handoff_put_cmdline(struct guest_mem *gm, const struct handoff *h, uint64_t max_chars,
			const char *limit_what, uint64_t *len, struct yun_err *err)
{
	const char *cmdline = h->cmdline ? h->cmdline : "";
	/* Bounded: one byte past the room is enough to know it is too long. */
	size_t n = strnlen(cmdline, LAYOUT_CMDLINE_MAX);

	if (n > LAYOUT_CMDLINE_MAX - 1)
		return yun_err_set(err, E2BIG,
				   "cmdline: %zu bytes or more is longer than the %llu bytes "
				   "yun-vmm has room for at 0x%llx",
				   n, (unsigned long long)(LAYOUT_CMDLINE_MAX - 1),
				   (unsigned long long)LAYOUT_CMDLINE);
	if (n > max_chars)
		return yun_err_set(err, E2BIG,
				   "cmdline: %zu bytes is longer than "
				   "the %llu the kernel accepts (%s)",
				   n, (unsigned long long)max_chars, limit_what);
	if (gm_write(gm, LAYOUT_CMDLINE, cmdline, n + 1) < 0)
		return yun_err_set(err, EFAULT, "cmdline: 0x%llx is not guest RAM",
				   (unsigned long long)LAYOUT_CMDLINE);
	*len = n;
	return 0;
}

/* Highest page-aligned start of `size` bytes inside [lo, hi), or 0 (never a valid spot). */
static uint64_t fit_top(uint64_t lo, uint64_t hi, uint64_t size)
{
	uint64_t addr;

	if (hi <= lo || hi - lo < size)
		return 0;
	addr = (hi - size) & ~(PAGE_SIZE - 1);
	return addr >= lo ? addr : 0;
}

int handoff_put_initrd(struct guest_mem *gm, const struct handoff *h, uint64_t kernel_start,
		       uint64_t kernel_end, uint64_t addr_max, const char *addr_max_what,
		       uint64_t *gpa, struct yun_err *err)
{
	uint64_t low_end = gm_low_end(gm), limit = low_end, addr;
	const char *name = h->initrd_name ? h->initrd_name : "(in memory)";
	char sz[32];

	*gpa = 0;
	if (!h->initrd)
		return 0;
	if (h->initrd_len == 0)
		return yun_err_set(err, EINVAL, "initrd %s: empty file", name);
	/* addr_max is inclusive; written so that addr_max == UINT64_MAX cannot wrap. */
	if (addr_max < limit - 1)
		limit = addr_max + 1;
	if (kernel_start < LAYOUT_HIMEM)
		kernel_start = LAYOUT_HIMEM;

	/* Above the kernel first (the usual spot), else between 1 MiB and the kernel. */
	addr = fit_top(kernel_end > LAYOUT_HIMEM ? kernel_end : LAYOUT_HIMEM, limit,
		       h->initrd_len);
	if (!addr)
		addr = fit_top(LAYOUT_HIMEM, kernel_start < limit ? kernel_start : limit,
			       h->initrd_len);
	if (!addr)
		return yun_err_set(err, ENOSPC,
				   "initrd %s: %s does not fit below 0x%llx (%s) in %llu MiB of "
				   "RAM beside the kernel at 0x%llx..0x%llx",
				   name, handoff_fmt_size(sz, sizeof(sz), h->initrd_len),
				   (unsigned long long)addr_max, addr_max_what,
				   (unsigned long long)(gm->size / MIB),
				   (unsigned long long)kernel_start,
				   (unsigned long long)kernel_end);
	if (gm_write(gm, addr, h->initrd, h->initrd_len) < 0)
		return yun_err_set(err, EFAULT, "initrd %s: 0x%llx is not guest RAM", name,
				   (unsigned long long)addr);
	*gpa = addr;
	return 0;
}
