/*
 * kvm.h - the VM-wide KVM objects: /dev/kvm, the VM fd, its in-kernel
 * interrupt controllers and PIT, and guest memory slots.
 *
 * Only the KVM API is required: no vmx/svm CPU flag is checked, so this
 * works on any host whose /dev/kvm answers (including PVM-backed KVM).
 */
#ifndef YUN_VMM_KVM_H
#define YUN_VMM_KVM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/err.h"
#include "irq_routing.h"
#include "memory.h"

struct kvm_cpuid2;

struct kvm {
	int sys_fd;                  /* /dev/kvm */
	int vm_fd;
	int run_size;                /* size of each vCPU's struct kvm_run mapping */
	int max_vcpus;               /* KVM_CAP_MAX_VCPUS */
	struct kvm_cpuid2 *cpuid;    /* KVM_GET_SUPPORTED_CPUID, owned */
	pthread_mutex_t routing_lock; /* routing, and the KVM_SET_GSI_ROUTING that follows */
	struct irq_routing routing;
	bool log_dirty;              /* kvm_map_memory: KVM_MEM_LOG_DIRTY_PAGES (dirty.h) */
};

/* Open `dev` (normally /dev/kvm), check the API, create the VM. */
int kvm_open(struct kvm *kvm, const char *dev, struct yun_err *err);

/* In-kernel IOAPIC + PIC + LAPICs and the PIT; TSS and identity map in the hole. */
int kvm_create_platform(struct kvm *kvm, struct yun_err *err);

/* One memory slot per guest RAM region. */
int kvm_map_memory(struct kvm *kvm, const struct guest_mem *gm, struct yun_err *err);

/* Drive an interrupt line (GSI) of the in-kernel irqchip. */
int kvm_irq_line(struct kvm *kvm, uint32_t gsi, int level);

/*
 * Point MSI GSI `gsi` at message (addr, data), or drop its route when
 * !enabled, and reload KVM's routing table (PC routes + all MSI routes).
 */
int kvm_set_msi_route(struct kvm *kvm, uint32_t gsi, uint64_t addr, uint32_t data, bool enabled);

/* Bind (assign) or unbind eventfd fd as an irqfd for gsi: a write injects it. */
int kvm_irqfd(struct kvm *kvm, int fd, uint32_t gsi, bool assign);

/* Bind (assign) or unbind eventfd fd to guest writes of len bytes (0: any) at MMIO gpa. */
int kvm_ioeventfd(struct kvm *kvm, uint64_t gpa, uint32_t len, int fd, bool assign);

/*
 * Saved VM-wide state (snapshots). "KVM " holds the in-kernel PIC
 * master/slave and IOAPIC (KVM_GET_IRQCHIP) and the PIT (KVM_GET_PIT2);
 * "CLCK" holds kvmclock (KVM_GET_CLOCK), written after the vCPUs and set
 * back last on load, so guest time goes on from where it was saved.
 */
struct snap_writer;
struct snap_reader;
int kvm_save_platform(struct kvm *kvm, struct snap_writer *w, struct yun_err *err);
int kvm_load_platform(struct kvm *kvm, struct snap_reader *r, struct yun_err *err);
int kvm_save_clock(struct kvm *kvm, struct snap_writer *w, struct yun_err *err);
int kvm_load_clock(struct kvm *kvm, struct snap_reader *r, struct yun_err *err);

void kvm_close(struct kvm *kvm);

#endif
