/* cpuid.c - see cpuid.h. */
#include "cpuid.h"

#include <stdlib.h>
#include <string.h>

#define CPUID_1_ECX_HYPERVISOR (1U << 31)
#define CPUID_1_EDX_HTT        (1U << 28)
#define TOPO_TYPE_SMT          1
#define TOPO_TYPE_CORE         2

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned function, unsigned index)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}

/* Bits needed to hold ids 0..n-1. */
static unsigned order_of(unsigned n)
{
	unsigned shift = 0;

	while ((1U << shift) < n)
		shift++;
	return shift;
}

static void drop_function(struct kvm_cpuid2 *c, unsigned function)
{
	unsigned j = 0;

	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function != function)
			c->entries[j++] = c->entries[i];
	c->nent = j;
}

static void add_entry(struct kvm_cpuid2 *c, unsigned function, unsigned index, unsigned flags,
		      unsigned eax, unsigned ebx, unsigned ecx, unsigned edx)
{
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = function, .index = index, .flags = flags,
		.eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx,
	};
}

/* Leaf 0xB / 0x1F: level 0 = SMT (1 thread), level 1 = core (nr_vcpus), then invalid. */
static void add_topology_leaf(struct kvm_cpuid2 *c, unsigned function, unsigned apic_id,
			      unsigned nr_vcpus)
{
	unsigned flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

	drop_function(c, function);
	add_entry(c, function, 0, flags, 0, 1, 0 | (TOPO_TYPE_SMT << 8), apic_id);
	add_entry(c, function, 1, flags, order_of(nr_vcpus), nr_vcpus, 1 | (TOPO_TYPE_CORE << 8),
		  apic_id);
	add_entry(c, function, 2, flags, 0, 0, 2, apic_id);
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned apic_id,
				  unsigned nr_vcpus)
{
	/* Room for everything KVM listed plus the entries added below. */
	unsigned room = supported->nent + 8;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + room * sizeof(c->entries[0]));
	struct kvm_cpuid_entry2 *e;
	unsigned max_basic = 0;

	if (!c)
		return NULL;
	c->nent = supported->nent;
	memcpy(c->entries, supported->entries, supported->nent * sizeof(c->entries[0]));

	e = cpuid_find(c, 0, 0);
	if (e) {
		if (e->eax < 0xB)
			e->eax = 0xB;
		max_basic = e->eax;
	}
	e = cpuid_find(c, 1, 0);
	if (e) {
		e->ebx = (e->ebx & 0x0000FFFF) | (apic_id << 24) | ((nr_vcpus & 0xFF) << 16);
		e->ecx |= CPUID_1_ECX_HYPERVISOR;
		if (nr_vcpus > 1)
			e->edx |= CPUID_1_EDX_HTT;
		else
			e->edx &= ~CPUID_1_EDX_HTT;
	}
	/* Leaf 4 (Intel caches): cores per package in EAX[31:26]; caches per core. */
	for (unsigned i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		if (e->function != 4 || (e->eax & 0x1F) == 0)
			continue;
		unsigned level = (e->eax >> 5) & 7;
		unsigned sharing = level >= 3 ? nr_vcpus - 1 : 0;

		e->eax = (e->eax & 0x3FFF) | ((sharing & 0xFFF) << 14) |
			 (((nr_vcpus - 1) & 0x3F) << 26);
	}
	add_topology_leaf(c, 0xB, apic_id, nr_vcpus);
	if (max_basic >= 0x1F)
		add_topology_leaf(c, 0x1F, apic_id, nr_vcpus);

	if (!cpuid_find(c, 0x40000000, 0)) {
		/* "KVMKVMKVM\0\0\0": the guest may use KVM's paravirt clock and features. */
		add_entry(c, 0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x0000004d);
	}

	/* AMD: cores per package and per-core ids. */
	e = cpuid_find(c, 0x80000008, 0);
	if (e)
		e->ecx = (e->ecx & ~0xF0FFU) | ((nr_vcpus - 1) & 0xFF) |
			 (order_of(nr_vcpus) << 12);
	e = cpuid_find(c, 0x8000001E, 0);
	if (e) {
		e->eax = apic_id;
		e->ebx = apic_id & 0xFF; /* core id; threads per core - 1 = 0 */
		e->ecx = 0;              /* one node */
	}
	return c;
}
