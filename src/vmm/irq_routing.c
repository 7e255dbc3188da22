/* irq_routing.c - see irq_routing.h. */
#include "irq_routing.h"

#include <errno.h>
#include <string.h>

void irq_routing_init_pc(struct irq_routing *r)
{
	memset(r, 0, sizeof(*r));
	for (unsigned irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue; /* the PIC cascade */
		r->e[r->nr++] = (struct kvm_irq_routing_entry){
			.gsi = irq, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = irq < 8 ? KVM_IRQCHIP_PIC_MASTER
							  : KVM_IRQCHIP_PIC_SLAVE,
				       .pin = irq % 8 },
		};
	}
	for (unsigned gsi = 0; gsi < IRQ_IOAPIC_PINS; gsi++) {
		if (gsi == 2)
			continue; /* pin 2 belongs to GSI 0 */
		r->e[r->nr++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi ? gsi : 2 },
		};
	}
}

static int find_msi(const struct irq_routing *r, uint32_t gsi)
{
	for (unsigned i = 0; i < r->nr; i++)
		if (r->e[i].gsi == gsi && r->e[i].type == KVM_IRQ_ROUTING_MSI)
			return (int)i;
	return -1;
}

int irq_routing_set_msi(struct irq_routing *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
	int i;

	if (gsi < IRQ_MSI_GSI_BASE || gsi >= IRQ_MSI_GSI_MAX)
		return -EINVAL;
	i = find_msi(r, gsi);
	if (i < 0) {
		if (r->nr == IRQ_ROUTING_MAX)
			return -ENOSPC;
		i = (int)r->nr++;
	}
	r->e[i] = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
		.u.msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			   .data = data },
	};
	return 0;
}

void irq_routing_clear(struct irq_routing *r, uint32_t gsi)
{
	int i = find_msi(r, gsi);

	if (i >= 0)
		r->e[i] = r->e[--r->nr];
}
