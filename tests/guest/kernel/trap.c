/*
 * trap.c - IDT set-up and the C half of the interrupt path (head.S has the
 * 16-byte stubs that push the vector and call trap_dispatch).
 */
#include "trap.h"
#include "apic.h"
#include "console.h"
#include "layout.h"

struct idt_gate {
	u16 off_lo, sel;
	u8 ist, type;
	u16 off_mid;
	u32 off_hi, zero;
} __attribute__((packed));

struct desc_ptr {
	u16 limit;
	u64 base;
} __attribute__((packed));

extern const u8 trap_stubs[]; /* 256 x 16 bytes */

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_t handlers[256];
volatile u32 trap_unexpected;

static const char *const exception_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void trap_load_idt(void)
{
	struct desc_ptr d = {sizeof(idt) - 1, (u64)(uintptr_t)idt};

	__asm__ volatile("lidt %0" : : "m"(d));
}

void trap_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		u64 a = (u64)(uintptr_t)&trap_stubs[v * 16];

		idt[v].off_lo = (u16)a;
		idt[v].sel = SEL_CODE64;
		idt[v].ist = 0;
		idt[v].type = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
		idt[v].off_mid = (u16)(a >> 16);
		idt[v].off_hi = (u32)(a >> 32);
		idt[v].zero = 0;
	}
	trap_load_idt();
}

void trap_load_empty_idt(void)
{
	struct desc_ptr d = {0, 0};

	__asm__ volatile("lidt %0" : : "m"(d));
}

void trap_set_handler(u8 vector, irq_handler_t h)
{
	handlers[vector] = h;
}

void trap_dispatch(struct trap_frame *f);
void trap_dispatch(struct trap_frame *f)
{
	u64 v = f->vector;

	if (handlers[v]) {
		handlers[v](f);
		return;
	}
	if (v < 32) {
		const char *name = exception_names[v] ? exception_names[v] : "#??";
		yt_fail("exception %s (vector %lu) error 0x%lx at rip 0x%lx rsp 0x%lx cr2 0x%lx",
			name, (unsigned long)v, (unsigned long)f->error, (unsigned long)f->rip,
			(unsigned long)f->rsp, (unsigned long)read_cr2());
	}
	if (v == VEC_SPURIOUS)
		return; /* spurious LAPIC interrupts take no EOI */
	trap_unexpected++;
	if (v >= VEC_PIC_BASE && v < VEC_PIC_BASE + 16)
		return; /* from a (masked) 8259: it never reached the LAPIC */
	lapic_eoi();
}
