/*
 * handoff.h - what the VMM hands a kernel besides the kernel itself: the
 * command line, the initrd and the ACPI RSDP address. Both boot paths
 * (bzimage.h, pvh.h) place these the same way:
 *
 *   - the command line, NUL-terminated, at LAYOUT_CMDLINE;
 *   - the initrd at the highest page-aligned address where it ends at or
 *     below min(the kernel's limit, end of RAM below 4 GiB) and overlaps
 *     neither the kernel's memory nor the boot area below LAYOUT_HIMEM.
 *
 * The RSDP address is only carried here; the boot paths write it into the
 * zero page / start info.
 */
#ifndef YUN_VMM_BOOT_HANDOFF_H
#define YUN_VMM_BOOT_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../memory.h"

struct handoff {
	const char *cmdline;      /* NULL means "" */
	const uint8_t *initrd;    /* NULL: no initrd */
	size_t initrd_len;
	const char *initrd_name;  /* its path, for messages */
	uint64_t rsdp_gpa;        /* 0: no ACPI tables */
};

/*
 * Copy h->cmdline (and its NUL) to LAYOUT_CMDLINE. Refuses a command line
 * longer than max_chars (the kernel's limit, NUL excluded; `limit_what`
 * says where that limit comes from, for the message) or than the room at
 * LAYOUT_CMDLINE. *len gets the length without the NUL.
 */
int handoff_put_cmdline(struct guest_mem *gm, const struct handoff *h, uint64_t max_chars,
			const char *limit_what, uint64_t *len, struct yun_err *err);

/*
 * Place and copy the initrd, if any (*gpa = 0 when there is none).
 * [kernel_start, kernel_end) is the kernel's memory; addr_max is the
 * highest address the initrd may occupy (inclusive, as the boot protocol's
 * initrd_addr_max) and `addr_max_what` names it in messages.
 * -ENOSPC with a message naming the file and the limits when it does not fit.
 */
int handoff_put_initrd(struct guest_mem *gm, const struct handoff *h, uint64_t kernel_start,
		       uint64_t kernel_end, uint64_t addr_max, const char *addr_max_what,
		       uint64_t *gpa, struct yun_err *err);

/* "512 MiB", "1.5 MiB" or "300 bytes": sizes in messages. */
const char *handoff_fmt_size(char *buf, size_t bufsz, uint64_t bytes);

#endif
