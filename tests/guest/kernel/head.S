/*
 * head.S - the guest kernel's entry points, boot page tables and GDT,
 * the AP trampoline and the interrupt entry stubs.
 *
 * Image layout at KERNEL_BASE (1 MiB):
 *   +0x000  entry32:  Linux 32-bit boot protocol entry (ESI = boot_params)
 *           pvh_entry: PVH entry named by the Xen ELF note (EBX = start_info)
 *   +0x1f0  kernel_info ("LToP"), named by the setup header
 *   +0x200  entry64:  Linux 64-bit boot protocol entry (RSI = boot_params)
 * All entries switch to this file's GDT and page tables and end in
 * kmain(kind, info); nothing the loader set up is used after the switch.
 */
#include "layout.h"

#define MSR_EFER	0xc0000080
#define EFER_LME	0x100
#define CR0_PE		0x1
#define CR0_PG		0x80000000
#define CR4_PAE		0x20

	.section .head.text, "ax"
	.code32
	.globl	entry32
entry32:				/* must stay at offset 0 */
	cli
	movl	$BOOT_BZ32, %edi
	jmp	common32

	.globl	pvh_entry
pvh_entry:
	cli
	movl	%ebx, %esi
	movl	$BOOT_PVH, %edi
	/* fall through */

/*
 * 32-bit protected mode, flat DS (all three 32-bit callers guarantee it),
 * paging off. EDI = boot kind, ESI = boot info. No stack is used.
 */
	.globl	common32
common32:
	lgdt	gdt_desc
	ljmp	$SEL_CODE32, $1f
1:	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$boot_pml4, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_PE), %eax
	movl	%eax, %cr0
	ljmp	$SEL_CODE64, $start64

	/* kernel_info: boot.rst, "Details of the kernel_info Fields" */
	.org	0x1f0
	.ascii	"LToP"
	.long	16			/* size */
	.long	16			/* size_total */
	.long	0			/* setup_type_max */

	.code64
	.org	0x200
	.globl	entry64
entry64:				/* must stay at offset 0x200 */
	cli
	movl	$BOOT_BZ64, %edi
	lgdt	gdt_desc(%rip)
	pushq	$SEL_CODE64
	leaq	1f(%rip), %rax
	pushq	%rax
	lretq
1:	movl	$boot_pml4, %eax
	movq	%rax, %cr3
	/* fall through */

start64:
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%edi, %edi		/* upper halves are undefined after 32-bit mode */
	movl	%esi, %esi
	cmpl	$BOOT_AP, %edi
	je	ap_start64
	leaq	boot_stack_top(%rip), %rsp
	pushq	$2			/* RFLAGS: IF = DF = 0 */
	popfq
	call	kmain
	jmp	halt_forever

ap_start64:
	movq	ap_stack_top(%rip), %rsp
	pushq	$2
	popfq
	call	ap_main
	/* fall through */

	.globl	halt_forever
halt_forever:
	cli
	hlt
	jmp	halt_forever

/* ---- AP trampoline: copied to TRAMP_BASE, entered by SIPI at CS:IP = TRAMP_BASE>>4:0 ---- */

	.section .rodata.tramp, "a"
	.code16
	.globl	tramp_start, tramp_end
tramp_start:
	cli
	movw	%cs, %ax
	movw	%ax, %ds
	lgdtl	tramp_gdt_desc - tramp_start
	movl	%cr0, %eax
	orl	$CR0_PE, %eax
	movl	%eax, %cr0
	movw	$SEL_DATA, %ax		/* common32 wants a flat DS */
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	$BOOT_AP, %edi
	ljmpl	$SEL_CODE32, $common32
	.balign	8
tramp_gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt
tramp_end:

/* ---- interrupt entry: one 16-byte stub per vector, then a common path ---- */

	.text
	.code64
	.balign	16
	.globl	trap_stubs
trap_stubs:
	vec = 0
	.rept	256
	.balign	16
	/* The CPU pushes an error code for these exceptions only. */
	.if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$vec
	jmp	trap_common
	vec = vec + 1
	.endr

trap_common:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rbx
	pushq	%rbp
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rdi
	cld
	call	trap_dispatch
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rbp
	popq	%rbx
	popq	%rdx
	popq	%rcx
	popq	%rax
	addq	$16, %rsp		/* vector and error code */
	iretq

/* ---- the guest's GDT ---- */

	.data
	.balign	16
	.globl	gdt, gdt_end
gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* SEL_CODE64 */
	.quad	0x00cf9a000000ffff	/* SEL_CODE32 */
	.quad	0x00cf92000000ffff	/* SEL_DATA */
gdt_end:
	.balign	8
gdt_desc:				/* 10 bytes; 32-bit lgdt reads the first 6 */
	.word	gdt_end - gdt - 1
	.quad	gdt

/*
 * Boot page tables, fully built at link time: identity map of 0..4 GiB with
 * 2 MiB pages; 3..4 GiB (the MMIO hole) uncached. paging.c adds more PDPT
 * entries for RAM above 4 GiB.
 */
	.section .pgtable, "aw"
	.balign	4096
	.globl	boot_pml4, boot_pdpt
boot_pml4:
	.quad	boot_pdpt + 0x3		/* present, writable */
	.fill	511, 8, 0
boot_pdpt:
	.quad	boot_pd + 0x0003
	.quad	boot_pd + 0x1003
	.quad	boot_pd + 0x2003
	.quad	boot_pd + 0x3003
	.fill	508, 8, 0
boot_pd:
	pg = 0
	.rept	2048
	.if pg >= 1536
	.quad	(pg << 21) | 0x9b	/* present, writable, PWT, PCD, 2 MiB */
	.else
	.quad	(pg << 21) | 0x83	/* present, writable, 2 MiB */
	.endif
	pg = pg + 1
	.endr

/* ---- PVH: XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen", 64-bit descriptor ---- */

	.section .note.Xen, "a"
	.balign	4
	.long	4			/* namesz */
	.long	8			/* descsz */
	.long	18			/* type */
	.asciz	"Xen"
	.balign	4
	.quad	pvh_entry

/* ---- stacks (not part of the image; nobody needs them zeroed) ---- */

	.section .noinit, "aw", @nobits
	.balign	16
boot_stack:
	.skip	16384
	.globl	boot_stack_top
boot_stack_top:
