/*
 * trap.h - the IDT: exceptions end the test with a FAIL line that names the
 * vector and RIP; interrupt vectors call the handler a case installed.
 */
#ifndef YT_TRAP_H
#define YT_TRAP_H

#include "io.h"

/* Vectors the guest uses. */
#define VEC_PIC_BASE	0x20 /* 8259s remapped here, then masked */
#define VEC_PIT		0x30
#define VEC_COM1	0x34
#define VEC_LAPIC_TIMER 0x40
#define VEC_VIRTIO	0x50 /* virtio MSI-X entries 0.. (virtio_pci.h) */
#define VEC_SPURIOUS	0xff

struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rdi, rsi, rbp, rbx, rdx, rcx, rax;
	u64 vector, error;
	u64 rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

typedef void (*irq_handler_t)(struct trap_frame *f);

void trap_init(void);	  /* build the IDT and load it (BSP) */
void trap_load_idt(void); /* load the same IDT (APs) */
void trap_set_handler(u8 vector, irq_handler_t h);
void trap_load_empty_idt(void); /* for the triple-fault case */

/* Interrupts that arrived on a vector nobody handles. */
extern volatile u32 trap_unexpected;

#endif
