/*
 * exceptions.c - case "exceptions": the VMM (on PVM hosts, KVM's emulator)
 * delivers CPU exceptions through the guest's IDT with the right vector,
 * error code and CR2, and the guest resumes after them.
 *
 * Three faults, each at a known instruction whose handler moves RIP on:
 *   #UD  ud2
 *   #PF  a write to 1 TiB, which no page table maps (error code: write,
 *        not present; CR2 = the address)
 *   #DE  a division by zero
 */
#include "cases.h"
#include "../kernel/console.h"
#include "../kernel/trap.h"

#define VEC_DE	   0
#define VEC_UD	   6
#define VEC_PF	   14
#define UNMAPPED   0x10000000000ULL /* 1 TiB: PML4 entry 2, not present */
#define PF_PRESENT 0x1
#define PF_WRITE   0x2

static volatile u64 seen_vector, seen_error, seen_rip, seen_cr2;
static volatile unsigned seen_count;

/* The faulting instructions and where to resume: labels in the asm below. */
extern const char ud_insn[], ud_resume[], pf_insn[], pf_resume[], de_insn[], de_resume[];

static void on_fault(struct trap_frame *f)
{
	seen_vector = f->vector;
	seen_error = f->error;
	seen_rip = f->rip;
	seen_cr2 = f->vector == VEC_PF ? read_cr2() : 0;
	seen_count++;
	if (f->rip == (u64)(uintptr_t)ud_insn)
		f->rip = (u64)(uintptr_t)ud_resume;
	else if (f->rip == (u64)(uintptr_t)pf_insn)
		f->rip = (u64)(uintptr_t)pf_resume;
	else if (f->rip == (u64)(uintptr_t)de_insn)
		f->rip = (u64)(uintptr_t)de_resume;
	else
		yt_fail("exception %lu at unexpected rip 0x%lx", (unsigned long)f->vector,
			(unsigned long)f->rip);
}

/* noinline: each asm body (and its global labels) must exist exactly once. */
static __attribute__((noinline)) void raise_ud(void)
{
	__asm__ volatile(".globl ud_insn, ud_resume\n"
			 "ud_insn: ud2\n"
			 "ud_resume:\n" ::
			     : "memory");
}

static __attribute__((noinline)) void raise_pf(void)
{
	__asm__ volatile(".globl pf_insn, pf_resume\n"
			 "pf_insn: movq %%rax, (%0)\n"
			 "pf_resume:\n"
			 :
			 : "r"(UNMAPPED)
			 : "memory");
}

static __attribute__((noinline)) void raise_de(void)
{
	__asm__ volatile(".globl de_insn, de_resume\n"
			 "xorl %%edx, %%edx\n"
			 "movl $1, %%eax\n"
			 "xorl %%ecx, %%ecx\n"
			 "de_insn: divl %%ecx\n"
			 "de_resume:\n" ::
			     : "rax", "rcx", "rdx", "memory");
}

static void check(const char *name, void (*raise)(void), u64 vector, const char *insn)
{
	unsigned before = seen_count;

	raise();
	if (seen_count != before + 1)
		yt_fail("%s: %u exceptions delivered, want 1", name, seen_count - before);
	if (seen_vector != vector || seen_rip != (u64)(uintptr_t)insn)
		yt_fail("%s: vector %lu at rip 0x%lx, want vector %lu at 0x%lx", name,
			(unsigned long)seen_vector, (unsigned long)seen_rip, (unsigned long)vector,
			(unsigned long)(uintptr_t)insn);
	yt_printf("YT EXCEPTION %s vector=%lu error=0x%lx cr2=0x%lx\n", name,
		  (unsigned long)seen_vector, (unsigned long)seen_error, (unsigned long)seen_cr2);
}

void case_exceptions(void)
{
	trap_set_handler(VEC_UD, on_fault);
	trap_set_handler(VEC_PF, on_fault);
	trap_set_handler(VEC_DE, on_fault);

	check("#UD", raise_ud, VEC_UD, ud_insn);
	check("#PF", raise_pf, VEC_PF, pf_insn);
	if (seen_cr2 != UNMAPPED)
		yt_fail("#PF: CR2 0x%lx, want 0x%llx", (unsigned long)seen_cr2, UNMAPPED);
	if ((seen_error & (PF_PRESENT | PF_WRITE)) != PF_WRITE)
		yt_fail("#PF: error code 0x%lx, want write + not present",
			(unsigned long)seen_error);
	check("#DE", raise_de, VEC_DE, de_insn);
	yt_pass();
}
