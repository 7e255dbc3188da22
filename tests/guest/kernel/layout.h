/*
 * layout.h - constants shared by the guest's assembly and C: how the guest
 * was entered, its segment selectors, and where it puts things in low memory.
 */
#ifndef YT_LAYOUT_H
#define YT_LAYOUT_H

/* How the guest was entered (passed from head.S to kmain in EDI). */
#define BOOT_BZ64 1 /* bzImage, 64-bit entry at load address + 0x200 */
#define BOOT_BZ32 2 /* bzImage, 32-bit entry at load address (via setup) */
#define BOOT_PVH  3 /* ELF, PVH entry from the Xen ELF note */
#define BOOT_AP	  4 /* an application processor leaving the trampoline */

/* The guest's own GDT (head.S). 0x10/0x18 match the boot protocol's. */
#define SEL_CODE64 0x08
#define SEL_CODE32 0x10
#define SEL_DATA   0x18

#define KERNEL_BASE 0x100000 /* where the protected-mode kernel runs */

/*
 * The AP trampoline page. Clear of yun-vmm's boot data (0x500 GDT,
 * 0x6000-0x7fff boot info, 0x9000-0xefff page tables, 0x20000 cmdline) and
 * of QEMU's (setup + zero page at 0x10000, cmdline at 0x20000).
 */
#define TRAMP_BASE 0x3000

#endif
