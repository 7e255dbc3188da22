/* vm.c - see vm.h. */
#include "vm.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../lib/log.h"
#include "boot/acpi.h"
#include "boot/loader.h"
#include "sandbox/seccomp.h"

enum {
	DEV_SERIAL = 1 << 0,
	DEV_RTC = 1 << 1,
	DEV_I8042 = 1 << 2,
	DEV_PCI = 1 << 3,
	DEV_IOTHREAD = 1 << 4,
	DEV_RNG = 1 << 5,
	DEV_BALLOON = 1 << 9,
	DEV_VSOCK = 1 << 10,
};

static void vm_irq_set_level(void *ctx, uint32_t gsi, int level)
{
	struct vm *vm = ctx;

	/* The in-kernel irqchip only fails on a bad GSI, which is ours to get right. */
	if (kvm_irq_line(&vm->kvm, gsi, level) < 0)
		yun_debug("KVM_IRQ_LINE gsi %u failed", gsi);
}

static void vm_stopper_request(void *ctx, enum vm_stop_reason reason, int exit_status)
{
	static const char *const why[] = {
		[VM_STOP_POWEROFF] = "guest powered off",
		[VM_STOP_RESET] = "guest reset",
		[VM_STOP_DEBUG_EXIT] = "guest wrote to the debug exit port",
	};

	vm_request_stop(ctx, reason, exit_status,
			reason < sizeof(why) / sizeof(why[0]) ? why[reason] : NULL, NULL);
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int exit_status,
		     const char *msg, const char *detail)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!vm->stopping) {
		vm->stop_reason = reason;
		vm->exit_status = exit_status;
		snprintf(vm->stop_msg, sizeof(vm->stop_msg), "%s", msg ? msg : "");
		snprintf(vm->stop_detail, sizeof(vm->stop_detail), "%s", detail ? detail : "");
		__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&vm->stop_cond);
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

int vm_pause(struct vm *vm, struct yun_err *err)
{
	bool started = false;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stopping) {
		pthread_mutex_unlock(&vm->stop_lock);
		return yun_err_set(err, ESHUTDOWN, "the VM is stopping");
	}
	if (vm->paused) {
		pthread_mutex_unlock(&vm->stop_lock);
		return yun_err_set(err, EALREADY, "the VM is already paused");
	}
	__atomic_store_n(&vm->pause_req, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->stop_lock);

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		started |= vm->vcpu[i].thread_started;
		vcpu_kick(&vm->vcpu[i]);
	}
	pthread_mutex_lock(&vm->stop_lock);
	while (started && vm->parked < vm->nr_vcpus && !vm->stopping)
		pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
	if (vm->stopping) {
		__atomic_store_n(&vm->pause_req, false, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&vm->stop_lock);
		return yun_err_set(err, ESHUTDOWN, "the VM stopped while pausing");
	}
	vm->paused = true;
	pthread_mutex_unlock(&vm->stop_lock);
	if (vm->devices_ready & DEV_IOTHREAD)
		iothread_pause(&vm->io);
	return 0;
}

int vm_resume(struct vm *vm, struct yun_err *err)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!vm->paused) {
		pthread_mutex_unlock(&vm->stop_lock);
		return yun_err_set(err, EALREADY, "the VM is not paused");
	}
	vm->paused = false;
	pthread_mutex_unlock(&vm->stop_lock);
	if (vm->devices_ready & DEV_IOTHREAD)
		iothread_resume(&vm->io);
	pthread_mutex_lock(&vm->stop_lock);
	__atomic_store_n(&vm->pause_req, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->stop_cond);
	pthread_mutex_unlock(&vm->stop_lock);
	return 0;
}

bool vm_paused(struct vm *vm)
{
	bool p;

	pthread_mutex_lock(&vm->stop_lock);
	p = vm->paused;
	pthread_mutex_unlock(&vm->stop_lock);
	return p;
}

void vm_park_vcpu(struct vm *vm)
{
	pthread_mutex_lock(&vm->stop_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->stop_cond);
	while (vm->pause_req && !vm->stopping)
		pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->stop_lock);
}

static void ignore_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write)
		memset(data, 0xff, len);
}

/* Guest serial output: to the console, and to the tap when one is set (snapshot tests). */
static void vm_serial_tx(void *ctx, const uint8_t *buf, size_t n)
{
	struct vm *vm = ctx;

	console_tx(vm->console, buf, n);
	if (vm->serial_tap)
		vm->serial_tap(vm->serial_tap_ctx, buf, n);
}

/* ---- PCI and virtio -------------------------------------------------------- */

static void vm_msix_route(void *ctx, unsigned vector, uint64_t addr, uint32_t data, bool enabled)
{
	struct vm_msix *m = ctx;
	int rc = kvm_set_msi_route(&m->vm->kvm, m->gsi_base + vector, addr, data, enabled);

	if (rc < 0)
		yun_info("MSI-X route for GSI %u: %s", m->gsi_base + vector, strerror(-rc));
}

/* Any thread: an eventfd write, which KVM turns into the MSI (irqfd). */
static void vm_msix_fire(void *ctx, unsigned vector)
{
	struct vm_msix *m = ctx;
	uint64_t one = 1;

	if (vector < m->nr && write(m->fd[vector], &one, sizeof(one)) != sizeof(one))
		yun_debug("MSI-X irqfd GSI %u: %s", m->gsi_base + vector, strerror(errno));
}

static int vm_ioeventfd(void *ctx, uint64_t gpa, uint32_t len, int fd, bool assign)
{
	struct vm *vm = ctx;
	int rc = kvm_ioeventfd(&vm->kvm, gpa, len, fd, assign);

	if (rc < 0)
		yun_debug("KVM_IOEVENTFD 0x%llx: %s (kicks go through user space)",
			  (unsigned long long)gpa, strerror(-rc));
	return rc;
}

/* GSIs and irqfds for nr MSI-X vectors of one PCI function. */
static int vm_msix_alloc(struct vm *vm, unsigned nr, struct msix_host *host,
			 struct yun_err *err)
{
	struct vm_msix *m;

	if (vm->nr_msix == VM_MAX_PCI_DEVICES || nr > MSIX_MAX_VECTORS ||
	    vm->next_msi_gsi + nr > IRQ_MSI_GSI_MAX)
		return yun_err_set(err, ENOSPC, "MSI-X: out of interrupt vectors");
	m = &vm->msix[vm->nr_msix++];
	m->vm = vm;
	m->gsi_base = vm->next_msi_gsi;
	vm->next_msi_gsi += nr;
	for (unsigned i = 0; i < nr; i++) {
		int rc;

		m->fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->fd[i] < 0)
			return yun_err_errno(err, errno, "MSI-X: eventfd");
		m->nr = i + 1;
		rc = kvm_irqfd(&vm->kvm, m->fd[i], m->gsi_base + i, true);
		if (rc < 0)
			return yun_err_errno(err, -rc, "MSI-X: KVM_IRQFD for GSI %u",
					     m->gsi_base + i);
	}
	*host = (struct msix_host){ vm_msix_route, vm_msix_fire, m };
	return 0;
}

/* The PCI slot and INTx GSI the n-th PCI device (from 0) gets; boot tables say the same. */
static unsigned vm_pci_slot(unsigned n)
{
	return n + 1;
}

static uint32_t vm_pci_intx_gsi(unsigned n)
{
	return n < PCI_INTX_NR_GSI ? PCI_INTX_GSI_BASE + n : 0;
}

static unsigned vm_pci_irqs(const struct vmm_config *cfg, struct mptable_pci_irq *irqs)
{
	unsigned n = 0;

	if (cfg->rng) {
		irqs[n] = (struct mptable_pci_irq){ (uint8_t)vm_pci_slot(n),
						    (uint8_t)vm_pci_intx_gsi(n) };
		n++;
	}
	for (unsigned i = 0; i < cfg->nr_disks; i++, n++)
		irqs[n] = (struct mptable_pci_irq){ (uint8_t)vm_pci_slot(n),
						    (uint8_t)vm_pci_intx_gsi(n) };
	if (cfg->balloon) {
		irqs[n] = (struct mptable_pci_irq){ (uint8_t)vm_pci_slot(n),
						    (uint8_t)vm_pci_intx_gsi(n) };
		n++;
	}
	for (unsigned i = 0; i < cfg->nr_nets && n < MPTABLE_MAX_PCI_IRQS; i++, n++)
		irqs[n] = (struct mptable_pci_irq){ (uint8_t)vm_pci_slot(n),
						    (uint8_t)vm_pci_intx_gsi(n) };
	if (cfg->vsock && n < MPTABLE_MAX_PCI_IRQS) {
		irqs[n] = (struct mptable_pci_irq){ (uint8_t)vm_pci_slot(n),
						    (uint8_t)vm_pci_intx_gsi(n) };
		n++;
	}
	return n;
}

static int vm_add_virtio(struct vm *vm, struct virtio_pci *vp, const struct virtio_device_ops *ops,
			 void *dev, unsigned n, struct yun_err *err)
{
	struct virtio_pci_host host = {
		.gm = &vm->mem, .iothread = &vm->io, .ioeventfd = vm_ioeventfd, .ctx = vm,
	};
	int rc = vm_msix_alloc(vm, ops->num_queues + 1, &host.msix, err);

	if (rc)
		return rc;
	if (vm_pci_intx_gsi(n))
		host.intx = (struct irq_line){ vm_irq_set_level, vm, vm_pci_intx_gsi(n) };
	rc = virtio_pci_init(vp, ops, dev, &host, err);
	if (rc)
		return rc;
	rc = pci_bus_add(&vm->pci, &vp->pci, err);
	if (!rc && vp->pci.slot != vm_pci_slot(n))
		rc = yun_err_set(err, EINVAL, "%s: in PCI slot %u, boot tables say %u", ops->name,
				 vp->pci.slot, vm_pci_slot(n));
	return rc;
}

/* Completions of disk requests (io_uring), on the I/O thread. */
static void vm_disk_complete(void *arg)
{
	virtio_pci_run(arg, 0, blk_complete);
}

/* A rate-limited disk may go on (I/O thread). */
static void vm_disk_timer(void *arg)
{
	virtio_pci_run(arg, 0, blk_timer_fired);
}

static int vm_add_disk(struct vm *vm, unsigned i, unsigned n, struct yun_err *err)
{
	const struct vmm_disk *d = &vm->cfg->disks[i];
	struct blk_params p = { d->path, d->id, d->readonly, d->direct, d->bw, d->iops,
				vm->disk_locks_later };
	struct blk *blk = &vm->disk[i];
	int rc = blk_open(blk, &p, err);

	if (rc)
		return rc;
	vm->nr_disks = i + 1;
	rc = vm_add_virtio(vm, &vm->disk_pci[i], blk_device_ops(blk), blk, n, err);
	if (!rc && blk_event_fd(blk) >= 0)
		rc = iothread_watch(&vm->io, blk_event_fd(blk), vm_disk_complete,
				    &vm->disk_pci[i], err);
	if (!rc && blk_timer_fd(blk) >= 0)
		rc = iothread_watch(&vm->io, blk_timer_fd(blk), vm_disk_timer, &vm->disk_pci[i],
				    err);
	return rc;
}

static void vm_balloon_config_changed(void *ctx)
{
	virtio_pci_config_changed(ctx);
}

static void vm_balloon_kick(void *ctx, unsigned q)
{
	virtio_pci_kick(ctx, q);
}

static void vm_balloon_timer(void *arg)
{
	balloon_timer_fired(arg);
}

static int vm_add_balloon(struct vm *vm, unsigned n, struct yun_err *err)
{
	struct balloon_config bc = {
		.target_pages = (uint32_t)(vm->cfg->balloon_target_mib << (20 - BALLOON_PAGE_SHIFT)),
		.deflate_after_ms = vm->cfg->balloon_deflate_after_ms,
	};
	struct balloon_host bh = { vm_balloon_config_changed, vm_balloon_kick, &vm->balloon_pci };
	int rc = balloon_init(&vm->balloon, &vm->mem, &bc, &bh, err);

	if (rc)
		return rc;
	vm->devices_ready |= DEV_BALLOON;
	rc = vm_add_virtio(vm, &vm->balloon_pci, &balloon_ops, &vm->balloon, n, err);
	if (!rc && vm->balloon.timer_fd >= 0)
		rc = iothread_watch(&vm->io, vm->balloon.timer_fd, vm_balloon_timer, &vm->balloon,
				    err);
	return rc;
}

/* A TAP has frames (I/O thread): deliver them under the device lock. */
static void vm_net_tap_ready(void *arg)
{
	virtio_pci_run(arg, NET_RXQ, net_tap_ready);
}

/* A rate-limited direction of a card may go on (I/O thread). */
static void vm_net_rx_timer(void *arg)
{
	virtio_pci_run(arg, NET_RXQ, net_timer_fired);
}

static void vm_net_tx_timer(void *arg)
{
	virtio_pci_run(arg, NET_TXQ, net_timer_fired);
}

static int vm_add_net(struct vm *vm, unsigned i, unsigned n, struct yun_err *err)
{
	const struct vmm_net *c = &vm->cfg->nets[i];
	struct net_limits limits = { c->rx_bw, c->rx_pps, c->tx_bw, c->tx_pps };
	struct net *net = &vm->net[i];
	int rc = net_open(net, c->tap, c->has_mac ? c->mac : NULL, err);

	if (rc)
		return rc;
	vm->nr_nets = i + 1;
	rc = net_set_limits(net, &limits, err);
	if (!rc)
		rc = vm_add_virtio(vm, &vm->net_pci[i], &net_ops, net, n, err);
	if (!rc)
		rc = net_watch(net, &vm->io, vm_net_tap_ready, &vm->net_pci[i], err);
	if (!rc && net_timer_fd(net, NET_RXQ) >= 0)
		rc = iothread_watch(&vm->io, net_timer_fd(net, NET_RXQ), vm_net_rx_timer,
				    &vm->net_pci[i], err);
	if (!rc && net_timer_fd(net, NET_TXQ) >= 0)
		rc = iothread_watch(&vm->io, net_timer_fd(net, NET_TXQ), vm_net_tx_timer,
				    &vm->net_pci[i], err);
	return rc;
}

/* vsock sockets are ready or packets wait for the guest (I/O thread). */
static void vm_vsock_ready(void *arg)
{
	virtio_pci_run(arg, VSOCK_RXQ, vsock_ready);
}

static int vm_add_vsock(struct vm *vm, unsigned n, struct yun_err *err)
{
	int rc = vsock_open(&vm->vsock, vm->cfg->vsock_cid, vm->cfg->vsock_socket, err);

	if (rc)
		return rc;
	vm->devices_ready |= DEV_VSOCK;
	rc = vm_add_virtio(vm, &vm->vsock_pci, &vsock_ops, &vm->vsock, n, err);
	if (!rc)
		rc = vsock_watch(&vm->vsock, &vm->io, vm_vsock_ready, &vm->vsock_pci, err);
	return rc;
}

static int vm_add_pci(struct vm *vm, struct yun_err *err)
{
	uint64_t mmio64 = acpi_pci_mmio64_base(&vm->mem); /* the window the DSDT describes */
	unsigned n = 0;
	int rc;

	vm->next_msi_gsi = IRQ_MSI_GSI_BASE;

	rc = pci_bus_init(&vm->pci, LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_SZ, mmio64,
			  LAYOUT_PCI_MMIO64_SZ, err);
	if (rc)
		return rc;
	vm->devices_ready |= DEV_PCI;
	rc = iothread_init(&vm->io, err);
	if (rc)
		return rc;
	vm->devices_ready |= DEV_IOTHREAD;
	rc = io_bus_add(&vm->pio, "pci-conf", PORT_PCI_CONF, PORT_PCI_CONF_LEN, pci_conf1_io,
			&vm->pci, err);
	if (!rc)
		rc = io_bus_add(&vm->mmio, "pci-ecam", LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SZ,
				pci_ecam_io, &vm->pci, err);
	if (!rc)
		rc = io_bus_add(&vm->mmio, "pci-mmio32", LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_SZ,
				pci_mmio32_io, &vm->pci, err);
	if (!rc)
		rc = io_bus_add(&vm->mmio, "pci-mmio64", mmio64, LAYOUT_PCI_MMIO64_SZ,
				pci_mmio64_io, &vm->pci, err);
	if (rc)
		return rc;
	if (vm->cfg->rng) {
		rng_init(&vm->rng);
		rc = vm_add_virtio(vm, &vm->rng_pci, &rng_ops, &vm->rng, n++, err);
		if (vm->rng_pci.ops)
			vm->devices_ready |= DEV_RNG;
		if (rc)
			return rc;
	}
	for (unsigned i = 0; i < vm->cfg->nr_disks; i++) {
		rc = vm_add_disk(vm, i, n++, err);
		if (rc)
			return rc;
	}
	if (vm->cfg->balloon) {
		rc = vm_add_balloon(vm, n++, err);
		if (rc)
			return rc;
	}
	for (unsigned i = 0; i < vm->cfg->nr_nets; i++) {
		rc = vm_add_net(vm, i, n++, err);
		if (rc)
			return rc;
	}
	if (vm->cfg->vsock) {
		rc = vm_add_vsock(vm, n++, err);
		if (rc)
			return rc;
	}
	if (vm->defer_io)
		return 0; /* vm_start_io, once restored state is in */
	return iothread_start(&vm->io, "io", err);
}

static int vm_add_devices(struct vm *vm, struct yun_err *err)
{
	struct io_bus *pio = &vm->pio;
	uint64_t low = gm_low_end(&vm->mem);
	int rc;

	vm->irq_com1 = (struct irq_line){ vm_irq_set_level, vm, IRQ_COM1 };
	vm->irq_kbd = (struct irq_line){ vm_irq_set_level, vm, IRQ_I8042_KBD };
	vm->irq_aux = (struct irq_line){ vm_irq_set_level, vm, IRQ_I8042_AUX };
	vm->stopper = (struct vm_stopper){ vm_stopper_request, vm };

	rc = serial_init(&vm->serial, &vm->irq_com1, vm_serial_tx, vm, err);
	if (rc)
		return rc;
	vm->devices_ready |= DEV_SERIAL;
	rc = rtc_init(&vm->rtc, low, vm->mem.size - low, err);
	if (rc)
		return rc;
	vm->devices_ready |= DEV_RTC;
	rc = i8042_init(&vm->i8042, &vm->irq_kbd, &vm->irq_aux, &vm->stopper, err);
	if (rc)
		return rc;
	vm->devices_ready |= DEV_I8042;
	pm_init(&vm->pm, &vm->stopper);
	debug_exit_init(&vm->debug_exit, &vm->stopper);

	rc = io_bus_add(pio, "com1", PORT_COM1, SERIAL_NR_PORTS, serial_io, &vm->serial, err);
	if (!rc)
		rc = io_bus_add(pio, "rtc", PORT_RTC_INDEX, RTC_NR_PORTS, rtc_io, &vm->rtc, err);
	if (!rc)
		rc = io_bus_add(pio, "i8042-data", PORT_I8042_DATA, 1, i8042_data_io, &vm->i8042,
				err);
	if (!rc)
		rc = io_bus_add(pio, "i8042-cmd", PORT_I8042_CMD, 1, i8042_cmd_io, &vm->i8042, err);
	if (!rc)
		rc = io_bus_add(pio, "pm", PORT_PM_SLEEP_CTL, PM_NR_PORTS, pm_io, &vm->pm, err);
	if (!rc)
		rc = io_bus_add(pio, "post", PORT_POST, 1, ignore_io, NULL, err);
	if (!rc && vm->cfg->debug_exit)
		rc = io_bus_add(pio, "debug-exit", PORT_DEBUG_EXIT, DEBUG_EXIT_NR_PORTS,
				debug_exit_io, &vm->debug_exit, err);
	if (!rc)
		rc = vm_add_pci(vm, err);
	return rc;
}

/* The part of building a VM both paths share, before guest RAM exists. */
static void vm_build_begin(struct vm *vm, const struct vmm_config *cfg, struct console *console)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->console = console;
	vm->nr_vcpus = cfg->cpus;
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		vm->vcpu[i].fd = -1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_cond_init(&vm->stop_cond, NULL);
	io_bus_init(&vm->pio);
	io_bus_init(&vm->mmio);
}

/* With guest RAM in place: KVM, memory slots, irqchip, devices, vCPUs. */
static int vm_build_finish(struct vm *vm, bool log_dirty, struct yun_err *err)
{
	const struct vmm_config *cfg = vm->cfg;
	int rc;

	rc = kvm_open(&vm->kvm, cfg->kvm_device ? cfg->kvm_device : CONFIG_DEFAULT_KVM_DEVICE,
		      err);
	if (rc)
		return rc;
	if (cfg->cpus > (unsigned)vm->kvm.max_vcpus)
		return yun_err_set(err, EINVAL, "cpus %u: this host's KVM allows at most %d",
				   cfg->cpus, vm->kvm.max_vcpus);
	vm->kvm.log_dirty = log_dirty;
	/*
	 * Memory slots before the irqchip: once the in-kernel irqchip exists,
	 * a slot change waits for an SRCU grace period (~5 ms here).
	 */
	rc = kvm_map_memory(&vm->kvm, &vm->mem, err);
	if (!rc)
		rc = dirty_init(&vm->dirty, vm->kvm.vm_fd, &vm->mem, log_dirty, err);
	if (!rc)
		vm->dirty_ready = true;
	if (!rc)
		rc = kvm_create_platform(&vm->kvm, err);
	if (!rc)
		rc = vm_add_devices(vm, err);
	for (unsigned i = 0; !rc && i < vm->nr_vcpus; i++)
		rc = vcpu_create(&vm->vcpu[i], vm, i, err);
	return rc;
}

int vm_create(struct vm *vm, const struct vmm_config *cfg, struct console *console,
	      struct yun_err *err)
{
	struct boot_config boot = {
		.kernel_path = cfg->kernel,
		.initrd_path = cfg->initrd,
		.cmdline = cfg->cmdline,
		.nr_vcpus = cfg->cpus,
	};
	struct mptable_pci_irq pci_irqs[MPTABLE_MAX_PCI_IRQS];
	struct boot_entry entry;
	int rc;

	boot.pci = true;
	boot.pci_irqs = pci_irqs;
	boot.nr_pci_irqs = vm_pci_irqs(cfg, pci_irqs);
	vm_build_begin(vm, cfg, console);

	/* Cheap checks and file loading first: bad input fails before KVM is touched. */
	rc = gm_init(&vm->mem, cfg->memory_mib << 20, err);
	if (rc)
		goto fail;
	rc = boot_load(&vm->mem, &boot, &entry, err);
	if (!rc)
		rc = vm_build_finish(vm, false, err);
	if (!rc)
		rc = vcpu_set_entry(&vm->vcpu[0], &entry, err);
	if (rc)
		goto fail;
	yun_info("%u vCPU(s), %llu MiB, %s entry at 0x%llx", vm->nr_vcpus,
		 (unsigned long long)cfg->memory_mib,
		 entry.mode == BOOT_LINUX64 ? "64-bit Linux" : "PVH", (unsigned long long)entry.rip);
	return 0;
fail:
	vm_destroy(vm);
	return rc;
}

int vm_prebuild(struct vm *vm, unsigned cpus, uint64_t memory_mib, const char *kvm_device,
		 struct yun_err *err)
{
	static const struct vmm_config none;
	int rc;

	vm_build_begin(vm, &none, NULL);
	vm->cfg = NULL;
	vm->nr_vcpus = cpus;
	rc = gm_init(&vm->mem, memory_mib << 20, err);
	if (!rc)
		rc = kvm_open(&vm->kvm, kvm_device ? kvm_device : CONFIG_DEFAULT_KVM_DEVICE, err);
	if (!rc && (cpus == 0 || cpus > (unsigned)vm->kvm.max_vcpus || cpus > LAYOUT_MAX_VCPUS))
		rc = yun_err_set(err, EINVAL, "cpus %u: not a vCPU count this host allows", cpus);
	if (!rc)
		rc = kvm_map_memory(&vm->kvm, &vm->mem, err); /* before the irqchip: vm_build_finish */
	if (!rc)
		rc = kvm_create_platform(&vm->kvm, err);
	for (unsigned i = 0; !rc && i < cpus; i++)
		rc = vcpu_create(&vm->vcpu[i], vm, i, err);
	if (rc) {
		vm_destroy(vm);
		return rc;
	}
	vm->prebuilt = true;
	return 0;
}

/*
 * Take over the shell *vm for cfg: what vm_build_begin and vm_build_finish
 * do, with KVM and the vCPUs already there and RAM swapped for the memory
 * file. Errors leave the VM for the caller to destroy.
 */
static int vm_adopt_shell(struct vm *vm, const struct vmm_config *cfg, struct console *console,
			  int mem_fd, struct yun_err *err)
{
	int rc;

	vm->prebuilt = false;
	vm->from_shell = true;
	vm->cfg = cfg;
	vm->console = console;
	vm->defer_io = true;
	rc = gm_replace_with_file(&vm->mem, mem_fd, err);
	if (!rc)
		rc = vm_add_devices(vm, err);
	return rc;
}

int vm_create_from_memory(struct vm *vm, const struct vmm_config *cfg, struct console *console,
			  int mem_fd, bool log_dirty, struct yun_err *err)
{
	int rc;

	if (vm->prebuilt) {
		if (vm->nr_vcpus == cfg->cpus && vm->mem.size == cfg->memory_mib << 20 &&
		    !log_dirty && mem_fd >= 0) {
			rc = vm_adopt_shell(vm, cfg, console, mem_fd, err);
			if (rc)
				vm_destroy(vm);
			return rc;
		}
		yun_info("restore: the pre-built VM (%u vCPU(s), %llu MiB) does not fit the "
			 "snapshot (%u, %llu MiB%s): building afresh", vm->nr_vcpus,
			 (unsigned long long)(vm->mem.size >> 20), cfg->cpus,
			 (unsigned long long)cfg->memory_mib, log_dirty ? ", dirty logging" : "");
		vm_destroy(vm);
	}
	vm_build_begin(vm, cfg, console);
	vm->defer_io = true;
	vm->disk_locks_later = mem_fd < 0;
	if (mem_fd < 0)
		rc = gm_init(&vm->mem, cfg->memory_mib << 20, err);
	else
		rc = gm_init_file(&vm->mem, cfg->memory_mib << 20, mem_fd, err);
	if (!rc)
		rc = vm_build_finish(vm, log_dirty, err);
	if (rc)
		vm_destroy(vm);
	return rc;
}

static void *throttle_main(void *arg)
{
	struct vm *vm = arg;
	const struct timespec period = { 0, VM_THROTTLE_PERIOD_NS };

	while (__atomic_load_n(&vm->throttle, __ATOMIC_ACQUIRE) && !vm_stopping(vm)) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(&vm->vcpu[i]);
		nanosleep(&period, NULL);
	}
	return NULL;
}

void vm_throttle(struct vm *vm, unsigned percent)
{
	pthread_mutex_lock(&vm->stop_lock);
	__atomic_store_n(&vm->throttle, percent > 99 ? 99 : percent, __ATOMIC_RELEASE);
	if (percent && !vm->throttle_started && !vm->stopping) {
		vm->throttle_started =
			pthread_create(&vm->throttle_thread, NULL, throttle_main, vm) == 0;
		if (!vm->throttle_started)
			__atomic_store_n(&vm->throttle, 0, __ATOMIC_RELEASE);
	} else if (!percent && vm->throttle_started) {
		/* It takes no lock: joining under ours is safe. */
		pthread_join(vm->throttle_thread, NULL);
		vm->throttle_started = false;
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

int vm_lock_disks(struct vm *vm, struct yun_err *err)
{
	for (unsigned i = 0; i < vm->nr_disks; i++) {
		int rc = blk_lock(&vm->disk[i], err);

		if (rc) {
			while (i--)
				blk_unlock(&vm->disk[i]);
			return rc;
		}
	}
	vm->disk_locks_later = false;
	return 0;
}

void vm_unlock_disks(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_disks; i++)
		blk_unlock(&vm->disk[i]);
}

int vm_start_io(struct vm *vm, struct yun_err *err)
{
	int rc;

	if (!vm->defer_io || !(vm->devices_ready & DEV_IOTHREAD))
		return 0;
	rc = iothread_start(&vm->io, "io", err);
	if (rc)
		return rc;
	vm->defer_io = false;
	if (vm_paused(vm))
		iothread_pause(&vm->io); /* vm_resume lets it go */
	return 0;
}

int vm_run(struct vm *vm, struct yun_err *err)
{
	int rc = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		rc = vcpu_start(&vm->vcpu[i], err);
		if (rc) {
			vm_request_stop(vm, VM_STOP_ERROR, 1, err->msg, NULL);
			break;
		}
	}
	/* Last, once every thread of the VM exists: see sandbox/seccomp.h on stacking. */
	if (!rc && (rc = sandbox_enter(SANDBOX_MAIN, err)) < 0)
		vm_request_stop(vm, VM_STOP_ERROR, 1, err->msg, NULL);
	pthread_mutex_lock(&vm->stop_lock);
	while (!vm->stopping)
		pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
	pthread_mutex_unlock(&vm->stop_lock);

	vm_throttle(vm, 0); /* no kicks at threads being joined */
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpu[i]);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpu[i]);
	return rc;
}

void vm_destroy(struct vm *vm)
{
	if (vm->throttle_started)
		vm_throttle(vm, 0);
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		if (vm->vcpu[i].fd >= 0)
			vcpu_destroy(&vm->vcpu[i]);
	/* The console reads into our UART: detach it before the UART goes. */
	if (vm->console)
		console_attach(vm->console, NULL);
	/* The I/O thread first: nothing may run a queue while the devices go. */
	if (vm->devices_ready & DEV_IOTHREAD)
		iothread_destroy(&vm->io);
	if (vm->devices_ready & DEV_RNG)
		virtio_pci_destroy(&vm->rng_pci);
	if (vm->devices_ready & DEV_BALLOON) {
		virtio_pci_destroy(&vm->balloon_pci); /* nothing when it never got that far */
		balloon_destroy(&vm->balloon);
	}
	for (unsigned i = 0; i < vm->nr_disks; i++) {
		virtio_pci_destroy(&vm->disk_pci[i]); /* nothing when it never got that far */
		blk_close(&vm->disk[i]);
	}
	vm->nr_disks = 0;
	for (unsigned i = 0; i < vm->nr_nets; i++) {
		virtio_pci_destroy(&vm->net_pci[i]); /* nothing when it never got that far */
		net_close(&vm->net[i]);              /* a TAP we created goes with it */
	}
	vm->nr_nets = 0;
	if (vm->devices_ready & DEV_VSOCK) {
		virtio_pci_destroy(&vm->vsock_pci); /* nothing when it never got that far */
		vsock_close(&vm->vsock);            /* removes the socket file */
	}
	for (unsigned i = 0; i < vm->nr_msix; i++)
		for (unsigned v = 0; v < vm->msix[i].nr; v++)
			close(vm->msix[i].fd[v]); /* closing also detaches the irqfd */
	vm->nr_msix = 0;
	if (vm->devices_ready & DEV_PCI)
		pci_bus_destroy(&vm->pci);
	if (vm->devices_ready & DEV_I8042)
		i8042_destroy(&vm->i8042);
	if (vm->devices_ready & DEV_RTC)
		rtc_destroy(&vm->rtc);
	if (vm->devices_ready & DEV_SERIAL)
		serial_destroy(&vm->serial);
	vm->devices_ready = 0;
	vm->prebuilt = false;
	if (vm->dirty_ready)
		dirty_free(&vm->dirty);
	vm->dirty_ready = false;
	kvm_close(&vm->kvm);
	gm_free(&vm->mem);
	pthread_cond_destroy(&vm->stop_cond);
	pthread_mutex_destroy(&vm->stop_lock);
}
