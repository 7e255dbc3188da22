/*
 * irq.h - how a device model raises an interrupt line without knowing KVM.
 *
 * The VM wires each device to a struct irq_line whose set_level() ends in
 * KVM_IRQ_LINE; a test harness wires it to a recorder instead.
 */
#ifndef YUN_VMM_IRQ_H
#define YUN_VMM_IRQ_H

#include <stdint.h>

struct irq_line {
	void (*set_level)(void *ctx, uint32_t gsi, int level);
	void *ctx;
	uint32_t gsi;
};

static inline void irq_line_set(const struct irq_line *line, int level)
{
	if (line->set_level)
		line->set_level(line->ctx, line->gsi, level);
}

#endif
