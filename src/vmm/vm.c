/* vm.c - see vm.h. */
#include "vm.h"

#include <errno.h>
#include <string.h>

#include "../lib/log.h"
#include "boot/loader.h"

enum {
	DEV_SERIAL = 1 << 0,
	DEV_RTC = 1 << 1,
	DEV_I8042 = 1 << 2,
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

static void ignore_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write)
		memset(data, 0xff, len);
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

	rc = serial_init(&vm->serial, &vm->irq_com1, console_tx, vm->console, err);
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
	struct boot_entry entry;
	int rc;

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

	/* Cheap checks and file loading first: bad input fails before KVM is touched. */
	rc = gm_init(&vm->mem, cfg->memory_mib << 20, err);
	if (rc)
		goto fail;
	rc = boot_load(&vm->mem, &boot, &entry, err);
	if (rc)
		goto fail;
	rc = kvm_open(&vm->kvm, cfg->kvm_device ? cfg->kvm_device : CONFIG_DEFAULT_KVM_DEVICE,
		      err);
	if (rc)
		goto fail;
	if (cfg->cpus > (unsigned)vm->kvm.max_vcpus) {
		rc = yun_err_set(err, EINVAL, "cpus %u: this host's KVM allows at most %d",
				 cfg->cpus, vm->kvm.max_vcpus);
		goto fail;
	}
	/*
	 * Memory slots before the irqchip: once the in-kernel irqchip exists,
	 * a slot change waits for an SRCU grace period (~5 ms here).
	 */
	rc = kvm_map_memory(&vm->kvm, &vm->mem, err);
	if (!rc)
		rc = kvm_create_platform(&vm->kvm, err);
	if (!rc)
		rc = vm_add_devices(vm, err);
	for (unsigned i = 0; !rc && i < vm->nr_vcpus; i++)
		rc = vcpu_create(&vm->vcpu[i], vm, i, err);
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
	pthread_mutex_lock(&vm->stop_lock);
	while (!vm->stopping)
		pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
	pthread_mutex_unlock(&vm->stop_lock);

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpu[i]);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpu[i]);
	return rc;
}

void vm_destroy(struct vm *vm)
{
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		if (vm->vcpu[i].fd >= 0)
			vcpu_destroy(&vm->vcpu[i]);
	/* The console reads into our UART: detach it before the UART goes. */
	if (vm->console)
		console_attach(vm->console, NULL);
	if (vm->devices_ready & DEV_I8042)
		i8042_destroy(&vm->i8042);
	if (vm->devices_ready & DEV_RTC)
		rtc_destroy(&vm->rtc);
	if (vm->devices_ready & DEV_SERIAL)
		serial_destroy(&vm->serial);
	vm->devices_ready = 0;
	kvm_close(&vm->kvm);
	gm_free(&vm->mem);
	pthread_cond_destroy(&vm->stop_cond);
	pthread_mutex_destroy(&vm->stop_lock);
}
