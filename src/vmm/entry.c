/* entry.c - see entry.h. */
#include "entry.h"

#include <errno.h>
#include <string.h>

#include "layout.h"

#define CR0_PE   (1ULL << 0)
#define CR0_MP   (1ULL << 1)
#define CR0_ET   (1ULL << 4)
#define CR0_NE   (1ULL << 5)
#define CR0_PG   (1ULL << 31)
#define CR4_PAE  (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_P    (1ULL << 0)
#define PTE_RW   (1ULL << 1)
#define PTE_PS   (1ULL << 7)

#define GDT_ENTRIES 8

static const uint64_t boot_gdt[GDT_ENTRIES] = {
	[ENTRY_SEL_CODE64 / 8] = 0x00AF9B000000FFFFULL, /* 64-bit code, DPL 0 */
	[ENTRY_SEL_DATA / 8] = 0x00CF93000000FFFFULL,   /* flat 4 GiB data */
	[ENTRY_SEL_CODE32 / 8] = 0x00CF9B000000FFFFULL, /* flat 32-bit code (PVH) */
	[ENTRY_SEL_TSS / 8] = 0x00008B0000000067ULL,    /* busy TSS at 0, 104 bytes */
};

static struct kvm_segment code_segment(int long_mode)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xFFFFFFFF,
		.selector = long_mode ? ENTRY_SEL_CODE64 : ENTRY_SEL_CODE32,
		.type = 11, .present = 1, .dpl = 0, .db = !long_mode, .s = 1, .l = long_mode, .g = 1,
	};
}

static struct kvm_segment data_segment(void)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xFFFFFFFF, .selector = ENTRY_SEL_DATA,
		.type = 3, .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

/* Identity map of 0..4 GiB with 2 MiB pages: one PML4, one PDPT, four PDs. */
static int write_page_tables(struct guest_mem *gm)
{
	uint64_t *pml4 = gm_ptr(gm, LAYOUT_PML4, 4096);
	uint64_t *pdpt = gm_ptr(gm, LAYOUT_PDPT, 4096);
	uint64_t *pd = gm_ptr(gm, LAYOUT_PD, 4 * 4096);

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

int entry_prepare(struct guest_mem *gm, const struct boot_entry *entry, struct kvm_regs *regs,
		  struct kvm_sregs *sregs)
{
	int long_mode = entry->mode == BOOT_LINUX64;
	struct kvm_segment data = data_segment();

	if (gm_write(gm, LAYOUT_BOOT_GDT, boot_gdt, sizeof(boot_gdt)) < 0)
		return -EFAULT;

	sregs->gdt.base = LAYOUT_BOOT_GDT;
	sregs->gdt.limit = sizeof(boot_gdt) - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cs = code_segment(long_mode);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = (struct kvm_segment){
		.base = 0, .limit = 0x67, .selector = ENTRY_SEL_TSS, .type = 11, .present = 1,
	};
	sregs->ldt = (struct kvm_segment){ .type = 2, .present = 1, .limit = 0xFFFF };
	sregs->cr0 = CR0_PE | CR0_ET;

	memset(regs, 0, sizeof(*regs));
	regs->rflags = 2;
	regs->rip = entry->rip;
	regs->rsp = LAYOUT_BOOT_STACK;

	if (long_mode) {
		if (write_page_tables(gm) < 0)
			return -EFAULT;
		sregs->cr0 |= CR0_MP | CR0_NE | CR0_PG;
		sregs->cr3 = LAYOUT_PML4;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
		regs->rsi = entry->boot_info;
	} else {
		/* Paging off, whatever state the vCPU was in before. */
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
		regs->rbx = entry->boot_info;
	}
	return 0;
}
