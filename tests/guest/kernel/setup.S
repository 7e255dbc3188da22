/*
 * setup.S - the real-mode part of the test guest's bzImage.
 *
 * The first 512 bytes are the (non-bootable) boot sector carrying the start
 * of the Linux setup header at 0x1F1; the header continues at 0x202 ("HdrS").
 * A boot loader that uses the 16-bit entry (QEMU's firmware does) jumps to
 * offset 0x200 with CS = setup segment + 0x20. This code then does what a
 * real kernel's setup does, in miniature: it builds a zero page (struct
 * boot_params) in the setup segment's heap, copies the loader-filled setup
 * header into it, collects the BIOS e820 memory map into it, switches to
 * 32-bit protected mode and jumps to code32_start with ESI = the zero page.
 * (The zero page cannot be the setup segment itself: its e820 table at
 * 0x2d0 would overwrite this code.)
 *
 * mkbzimage patches setup_sects, syssize and init_size.
 * Field offsets: Documentation/arch/x86/boot.rst.
 */

#define SMAP		0x534d4150
#define E820_TABLE	0x2d0	/* boot_params.e820_table */
#define E820_ENTRIES	0x1e8	/* boot_params.e820_entries */
#define E820_MAX	128
#define ZERO_PAGE	0x1000	/* offset in the setup segment: below the stack */
#define HDR_START	0x1f1
#define BOOT_CS		0x10	/* the boot protocol's flat 32-bit code selector */
#define BOOT_DS		0x18	/* and its flat data selector */

	.code16
	.section .setup, "ax"
	.globl	setup_start
setup_start:
	/* Boot sector: nothing runs here; a BIOS boot of this image just hangs. */
	cli
1:	hlt
	jmp	1b

	.org	0x1f1
setup_sects:	.byte	0		/* patched: number of 512-byte setup sectors */
root_flags:	.word	0
syssize:	.long	0		/* patched: protected-mode size / 16 */
ram_size:	.word	0
vid_mode:	.word	0xffff		/* NORMAL_VGA */
root_dev:	.word	0
boot_flag:	.word	0xaa55

	/* 0x200: the 16-bit entry point */
	.byte	0xeb, setup_main - 1f	/* jmp short setup_main */
1:
	.ascii	"HdrS"			/* 0x202 header magic */
	.word	0x020f			/* 0x206 boot protocol 2.15 */
	.long	0			/* 0x208 realmode_swtch */
	.word	0			/* 0x20c start_sys_seg */
	.word	kernel_version - 0x200	/* 0x20e kernel_version */
type_of_loader:	.byte	0		/* 0x210 */
loadflags:	.byte	0x01		/* 0x211 LOADED_HIGH */
	.word	0			/* 0x212 setup_move_size */
code32_start:	.long	0x100000	/* 0x214 */
	.long	0			/* 0x218 ramdisk_image */
	.long	0			/* 0x21c ramdisk_size */
	.long	0			/* 0x220 bootsect_kludge */
	.word	0			/* 0x224 heap_end_ptr */
	.byte	0			/* 0x226 ext_loader_ver */
	.byte	0			/* 0x227 ext_loader_type */
	.long	0			/* 0x228 cmd_line_ptr */
	.long	0x7fffffff		/* 0x22c initrd_addr_max */
	.long	0x200000		/* 0x230 kernel_alignment */
	.byte	0			/* 0x234 relocatable_kernel: no */
	.byte	21			/* 0x235 min_alignment (log2) */
	.word	0x0001			/* 0x236 xloadflags: XLF_KERNEL_64 */
	.long	4095			/* 0x238 cmdline_size (without the NUL) */
	.long	0			/* 0x23c hardware_subarch: PC */
	.quad	0			/* 0x240 hardware_subarch_data */
	.long	0			/* 0x248 payload_offset */
	.long	0			/* 0x24c payload_length */
	.quad	0			/* 0x250 setup_data */
	.quad	0x100000		/* 0x258 pref_address */
init_size:	.long	0		/* 0x260 patched: memory the kernel needs */
	.long	0			/* 0x264 handover_offset: no EFI */
	.long	0x1f0			/* 0x268 kernel_info_offset (see head.S) */

	/*
	 * 0x26c: end of the header. Loaders compute the header's end as
	 * 0x202 + the jump offset at 0x201, so the code must start right here.
	 */
setup_main:
	cli
	cld
	movw	%cs, %ax
	subw	$0x20, %ax		/* the setup segment */
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0xfe00, %sp		/* below the command line at +0x10000 */

	/* An empty zero page, then the setup header (as the loader left it). */
	movw	$ZERO_PAGE, %di
	xorl	%eax, %eax
	movw	$1024, %cx
	rep	stosl
	movw	$HDR_START, %si
	movw	$(ZERO_PAGE + HDR_START), %di
	movzbw	0x201, %cx		/* header end = 0x202 + jump offset */
	addw	$(0x202 - HDR_START), %cx
	rep	movsb

	/* BIOS e820: one 20-byte entry per call straight into the zero page. */
	xorl	%ebx, %ebx
	xorw	%bp, %bp
	movw	$(ZERO_PAGE + E820_TABLE), %di
2:	movl	$0xe820, %eax
	movl	$SMAP, %edx
	movl	$20, %ecx
	int	$0x15
	jc	3f
	cmpl	$SMAP, %eax
	jne	3f
	incw	%bp
	addw	$20, %di
	testl	%ebx, %ebx
	jz	3f
	cmpw	$E820_MAX, %bp
	jb	2b
3:	movw	%bp, %ax
	movb	%al, ZERO_PAGE + E820_ENTRIES

	/* Linear addresses: of our GDT, and of the zero page for ESI. */
	xorl	%esi, %esi
	movw	%ds, %si
	shll	$4, %esi
	leal	setup_gdt(%esi), %eax
	movl	%eax, setup_gdt_desc + 2
	leal	pm_jump(%esi), %ecx	/* the far pointer, read after DS goes flat */
	addl	$ZERO_PAGE, %esi
	movl	code32_start, %eax
	movl	%eax, pm_jump

	lgdtl	setup_gdt_desc
	movl	%cr0, %eax
	orl	$1, %eax		/* PE */
	movl	%eax, %cr0
	movw	$BOOT_DS, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	xorl	%ebx, %ebx		/* the protocol wants EBX, EBP, EDI zero */
	xorl	%ebp, %ebp
	xorl	%edi, %edi
	ljmpl	*(%ecx)			/* not %cs: CS is the setup segment + 0x20 */

	.balign	4
pm_jump:
	.long	0			/* code32_start */
	.word	BOOT_CS

	.balign	8
setup_gdt:
	.quad	0
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x10: flat 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x18: flat data */
setup_gdt_desc:
	.word	setup_gdt_desc - setup_gdt - 1
	.long	0			/* patched: linear address of setup_gdt */

kernel_version:
	.asciz	"yun-test-guest"

	.balign	512
setup_end:
