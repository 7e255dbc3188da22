/*
 * entry.h - the CPU state at the kernel's entry point.
 *
 * Two entries exist: the Linux 64-bit boot protocol (long mode, paging on
 * with an identity map of the low 4 GiB, RSI = zero page) and PVH (32-bit
 * protected mode, paging off, EBX = hvm_start_info). entry_prepare() writes
 * the boot GDT and page tables into guest memory (at layout.h addresses) and
 * fills the registers; it does no ioctl, so it is unit-tested as is.
 * `sregs` should come from KVM_GET_SREGS: fields entry_prepare does not own
 * (APIC base, interrupt bitmap) are left as they are.
 */
#ifndef YUN_VMM_ENTRY_H
#define YUN_VMM_ENTRY_H

#include <linux/kvm.h>
#include <stdint.h>

#include "boot/loader.h"
#include "memory.h"

/* Boot GDT selectors. */
#define ENTRY_SEL_CODE64 0x10
#define ENTRY_SEL_DATA   0x18
#define ENTRY_SEL_CODE32 0x20
#define ENTRY_SEL_TSS    0x28

int entry_prepare(struct guest_mem *gm, const struct boot_entry *entry, struct kvm_regs *regs,
		  struct kvm_sregs *sregs);

#endif
