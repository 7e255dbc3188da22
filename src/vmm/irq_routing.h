/*
 * irq_routing.h - the VM's GSI routing table as data: the PC routes (ISA
 * IRQs on the PICs and the IOAPIC, PIT on pin 2, GSIs 16-23 IOAPIC-only)
 * plus one MSI route per MSI-X vector the guest has programmed. kvm.c
 * hands the whole table to KVM_SET_GSI_ROUTING after each change; keeping
 * the table here means the PC part is never lost when MSI routes change.
 */
#ifndef YUN_VMM_IRQ_ROUTING_H
#define YUN_VMM_IRQ_ROUTING_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define IRQ_IOAPIC_PINS   24
#define IRQ_MSI_GSI_BASE  24     /* first GSI handed to MSI-X vectors */
#define IRQ_MSI_GSI_MAX   256    /* GSIs [IRQ_MSI_GSI_BASE, IRQ_MSI_GSI_MAX) */
#define IRQ_ROUTING_MAX   (16 + IRQ_IOAPIC_PINS + (IRQ_MSI_GSI_MAX - IRQ_MSI_GSI_BASE))

struct irq_routing {
	unsigned nr;
	struct kvm_irq_routing_entry e[IRQ_ROUTING_MAX];
};

/* Start with the PC routes only. */
void irq_routing_init_pc(struct irq_routing *r);

/* Add or replace the MSI route of `gsi`; -EINVAL outside the MSI range. */
int irq_routing_set_msi(struct irq_routing *r, uint32_t gsi, uint64_t addr, uint32_t data);

/* Drop gsi's MSI route (nothing if it has none). */
void irq_routing_clear(struct irq_routing *r, uint32_t gsi);

#endif
