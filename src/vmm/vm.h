/*
 * vm.h - one microVM: guest memory, the KVM VM, its devices and vCPUs, and
 * the single place that decides when and why it stops.
 *
 * Life cycle: vm_create() (everything built, kernel loaded, nothing
 * running) -> vm_run() (vCPUs run until a stop request) -> vm_destroy().
 * While vm_run() waits, another thread may vm_pause() and vm_resume() it:
 * a paused VM has every vCPU parked outside KVM_RUN with its last exit
 * completed (KVM_RUN re-entered with immediate_exit, as the KVM API asks
 * before state is read) and the I/O thread parked between handlers, so
 * its state can be saved.
 * The console (host side of COM1) is owned by the caller and outlives the
 * VM, so a rebooting guest keeps its terminal, pty or socket.
 */
#ifndef YUN_VMM_VM_H
#define YUN_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>

#include "../lib/err.h"
#include "config.h"
#include "console.h"
#include "dirty.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/pm.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "io_bus.h"
#include "kvm.h"
#include "layout.h"
#include "memory.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "vcpu.h"
#include "virtio/blk.h"
#include "virtio/balloon.h"
#include "virtio/iothread.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "vm_stop.h"

/* One PCI function's MSI-X vectors as KVM sees them: a GSI and an irqfd each. */
struct vm_msix {
	struct vm *vm;
	uint32_t gsi_base;
	unsigned nr;
	int fd[MSIX_MAX_VECTORS];
};

#define VM_MAX_PCI_DEVICES 8

/* Exit status when the guest crashes (triple fault, KVM internal error). */
#define VM_EXIT_GUEST_CRASH 2

struct vm {
	const struct vmm_config *cfg;
	struct console *console;
	struct kvm kvm;
	struct guest_mem mem;
	struct io_bus pio;
	struct io_bus mmio;
	unsigned nr_vcpus;
	struct vcpu vcpu[LAYOUT_MAX_VCPUS];

	struct serial serial;
	struct rtc rtc;
	struct i8042 i8042;
	struct debug_exit debug_exit;
	struct pm pm;
	struct irq_line irq_com1, irq_kbd, irq_aux;

	struct pci_bus pci;
	struct iothread io;       /* runs virtio queue work */
	struct vm_msix msix[VM_MAX_PCI_DEVICES];
	unsigned nr_msix;
	uint32_t next_msi_gsi;
	struct virtio_pci rng_pci;
	struct rng rng;
	struct virtio_pci balloon_pci;
	struct balloon balloon;
	struct virtio_pci disk_pci[CONFIG_MAX_DISKS];
	struct blk disk[CONFIG_MAX_DISKS];
	unsigned nr_disks;        /* opened (closed by vm_destroy) */
	struct virtio_pci net_pci[CONFIG_MAX_NETS];
	struct net net[CONFIG_MAX_NETS];
	unsigned nr_nets;         /* TAPs opened (closed by vm_destroy) */
	struct virtio_pci vsock_pci;
	struct vsock vsock;
	struct vm_stopper stopper;
	unsigned devices_ready;   /* bit per device initialised, for vm_destroy */

	pthread_mutex_t stop_lock; /* also guards the pause state below */
	pthread_cond_t stop_cond;  /* stop requests, parks and resumes */
	bool stopping;            /* read by vCPU threads without the lock */
	bool pause_req;           /* vCPUs park at their next exit; read without the lock */
	bool paused;              /* vm_pause() finished, vm_resume() not yet called */
	unsigned parked;          /* vCPUs parked now */
	enum vm_stop_reason stop_reason;
	int exit_status;
	char stop_msg[YUN_ERR_MSG_MAX + 64];
	char stop_detail[2048];   /* register dump for crashes */

	/* Auto-converge of a live migration (vm_throttle): */
	unsigned throttle;         /* % of each VM_THROTTLE_PERIOD_NS the vCPUs sleep; atomic */
	pthread_t throttle_thread; /* kicks the vCPUs out of KVM_RUN every period */
	bool throttle_started;     /* under stop_lock */

	/* Snapshots (snapshot/) and live migration (migrate/): */
	struct dirty dirty;        /* the one dirty-page tracker (dirty.h) */
	bool dirty_ready;          /* dirty_init done (vm_destroy frees it) */
	uint64_t restore_t0_ns;    /* CLOCK_MONOTONIC at vm_restore's start; 0: not restored */
	uint64_t restore_req_ns;   /* when the restore was asked for (API), or 0 */
	bool defer_io;             /* I/O thread not started until vm_start_io */
	bool prebuilt;             /* a shell from vm_prebuild, not yet adopted by a restore */
	bool from_shell;           /* built by adopting such a shell */
	bool disk_locks_later;     /* disks opened unlocked: vm_lock_disks (migration) */
	void (*serial_tap)(void *ctx, const uint8_t *buf, size_t n); /* sees guest output */
	void *serial_tap_ctx;
};

int vm_create(struct vm *vm, const struct vmm_config *cfg, struct console *console,
	      struct yun_err *err);

/*
 * As vm_create, but guest RAM is the memory file mem_fd mapped copy-on-write
 * (gm_init_file), or fresh zeroed RAM (gm_init) when mem_fd < 0 (a live
 * migration's destination fills it), and no kernel is loaded: vCPUs are at
 * their reset state for vm_restore to load. log_dirty: memory slots log
 * dirty pages from the start. *vm may be a vm_prebuild shell (see there).
 * On error the VM is destroyed. Without a file
 * the disks are opened without their locks (the source still holds them):
 * vm_lock_disks before the guest runs.
 */
int vm_create_from_memory(struct vm *vm, const struct vmm_config *cfg, struct console *console,
			  int mem_fd, bool log_dirty, struct yun_err *err);

/*
 * A shell for a restore to come, built before its snapshot is known so that
 * restoring costs little more than mapping the memory file and loading
 * state: the KVM VM with memory slots for `memory_mib` MiB on an untouched
 * address reservation (slots before the irqchip, where they are cheap),
 * the in-kernel irqchip and PIT, and `cpus` vCPU fds. No devices, no
 * threads, nothing runs. Hand it to vm_create_from_memory (through
 * vm_restore), which adopts it when the snapshot has that shape and
 * destroys it and builds afresh otherwise; or vm_destroy it. On error the
 * shell is destroyed.
 */
int vm_prebuild(struct vm *vm, unsigned cpus, uint64_t memory_mib, const char *kvm_device,
		struct yun_err *err);

/*
 * A VM from vm_create_from_memory has its I/O thread created but not
 * started, so device state loads with nothing serving queues: start it
 * (parked if the VM is paused). Does nothing for other VMs.
 */
int vm_start_io(struct vm *vm, struct yun_err *err);

/*
 * Take (or, paused, let go of) every disk image's lock (blk_lock): a live
 * migration hands them from source to destination. vm_lock_disks takes all
 * or none.
 */
int vm_lock_disks(struct vm *vm, struct yun_err *err);
void vm_unlock_disks(struct vm *vm);

/* Run until the guest (or vm_request_stop) ends it. All vCPUs are joined. */
int vm_run(struct vm *vm, struct yun_err *err);

void vm_destroy(struct vm *vm);

/* First request wins. msg/detail may be NULL. Safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int exit_status,
		     const char *msg, const char *detail);

/*
 * Park all vCPUs (and the I/O thread) and return once they are parked.
 * Before vm_run() it only marks the VM so its vCPUs park as they start (a
 * restored VM that should not run yet). -EALREADY when paused, -ESHUTDOWN
 * when the VM is stopping (err says so). Not from a vCPU or the I/O thread.
 */
int vm_pause(struct vm *vm, struct yun_err *err);

/* Let parked vCPUs and the I/O thread go on. -EALREADY when not paused. */
int vm_resume(struct vm *vm, struct yun_err *err);

bool vm_paused(struct vm *vm);

#define VM_THROTTLE_PERIOD_NS 10000000L /* 10 ms */

/*
 * Hold every vCPU back `percent` % of the time (0: off; at most 99): a
 * thread kicks the vCPUs out of KVM_RUN every 10 ms and each sleeps that
 * share of the period before going back in, so a guest that runs without
 * exits is slowed too. Live migration's auto-converge. Not from a vCPU.
 */
void vm_throttle(struct vm *vm, unsigned percent);

/* vCPU thread: park here while a pause is requested (see vcpu.c). */
void vm_park_vcpu(struct vm *vm);

static inline bool vm_stopping(struct vm *vm)
{
	return __atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE);
}

#endif
