/*
 * cpuid.h - the CPUID a vCPU shows its guest, built from what KVM supports
 * (KVM_GET_SUPPORTED_CPUID) plus Yun's topology: one socket, one core per
 * vCPU, one thread per core, APIC id = vCPU index. Pure logic, no ioctl.
 *
 * Rewritten leaves: 0 (max leaf >= 0xB), 1 (APIC id, logical count, HTT,
 * hypervisor bit), 4 (cores per package), 0xB and 0x1F (x2APIC topology),
 * 0x40000000 (hypervisor signature, added if KVM did not list it),
 * 0x80000008 / 0x8000001E (AMD core count and ids).
 */
#ifndef YUN_VMM_CPUID_H
#define YUN_VMM_CPUID_H

#include <linux/kvm.h>

/* A new kvm_cpuid2 (caller frees) for vCPU `apic_id` of `nr_vcpus`; NULL on ENOMEM. */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned apic_id,
				  unsigned nr_vcpus);

/* The entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned function, unsigned index);

#endif
