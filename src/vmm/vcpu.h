/*
 * vcpu.h - one virtual CPU: its KVM fd, its thread and its run loop.
 *
 * Each vCPU runs KVM_RUN on its own thread and dispatches port I/O and MMIO
 * exits to the VM's buses. Exits that end the VM (triple fault, internal
 * error) are reported to the VM with a register dump. vcpu_kick() makes a
 * vCPU leave KVM_RUN promptly (immediate_exit + a signal), which is how the
 * VM stops them all.
 */
#ifndef YUN_VMM_VCPU_H
#define YUN_VMM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "../lib/err.h"
#include "entry.h"

struct vm;

/* Exits by reason, for the metrics API: written by the vCPU thread, read anywhere. */
enum vcpu_exit_kind {
	VCPU_EXIT_IO, VCPU_EXIT_MMIO, VCPU_EXIT_HLT, VCPU_EXIT_SHUTDOWN,
	VCPU_EXIT_INTERNAL_ERROR, VCPU_EXIT_FAIL_ENTRY, VCPU_EXIT_SYSTEM_EVENT,
	VCPU_EXIT_INTR, VCPU_EXIT_OTHER, VCPU_EXIT_NR
};

struct vcpu_stats {
	uint64_t exits[VCPU_EXIT_NR]; /* relaxed atomics: one writer, the vCPU thread */
	clockid_t cpu_clock;          /* the thread's CPU-time clock, valid when has_clock */
	bool has_clock;
};

/* Names for the metrics JSON, indexed by enum vcpu_exit_kind. */
extern const char *const vcpu_exit_names[VCPU_EXIT_NR];

struct vcpu {
	struct vm *vm;
	unsigned id;              /* also the APIC id */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	struct vcpu_stats stats;
};

/* Create vCPU `id`: fd, run area, CPUID, MSRs, FPU, LAPIC LINT0/LINT1. */
int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, struct yun_err *err);

/* Put the boot vCPU at the kernel entry point. */
int vcpu_set_entry(struct vcpu *v, const struct boot_entry *entry, struct yun_err *err);

int vcpu_start(struct vcpu *v, struct yun_err *err);

/* Make the vCPU leave KVM_RUN; it then sees the VM is stopping and returns. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

/* Write the registers (general, segment, control) to `out`, a few lines. */
void vcpu_dump_registers(struct vcpu *v, char *out, size_t size);

/* CPU time the vCPU thread has used, in ns; 0 before it started (any thread). */
uint64_t vcpu_cpu_time_ns(struct vcpu *v);

struct snap_writer;
struct snap_reader;

/*
 * Saved state of a vCPU that is not running (parked or never started): one
 * "VCPU" section with registers, segment and control registers, FPU, XSAVE
 * and XCRs, every MSR KVM lists that this vCPU has (TSC, kvmclock, APIC
 * base, EFER, SYSCALL...), LAPIC, MP state, pending events, debug
 * registers. vcpu_load checks sizes and counts and then hands each piece to
 * KVM; an error names the vCPU and the piece (and KVM's reason).
 */
int vcpu_save(struct vcpu *v, struct snap_writer *w, struct yun_err *err);
int vcpu_load(struct vcpu *v, struct snap_reader *r, struct yun_err *err);

/* Install the (empty) kick signal handler; once per process. */
int vcpu_init_signals(struct yun_err *err);

#endif
