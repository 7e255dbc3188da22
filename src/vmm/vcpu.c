/* vcpu.c - see vcpu.h. */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/log.h"
#include "cpuid.h"
#include "layout.h"
#include "sandbox/seccomp.h"
#include "vm.h"

#define SIG_VCPU_KICK SIGUSR1

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static void kick_handler(int sig)
{
	(void)sig; /* Its only job is to make KVM_RUN return -EINTR. */
}

int vcpu_init_signals(struct yun_err *err)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_VCPU_KICK, &sa, NULL) < 0)
		return yun_err_errno(err, errno, "vCPU kick signal");
	return 0;
}

static int vcpu_set_cpuid(struct vcpu *v, struct yun_err *err)
{
	struct kvm_cpuid2 *c = cpuid_for_vcpu(v->vm->kvm.cpuid, v->id, v->vm->nr_vcpus);
	int rc = 0;

	if (!c)
		return yun_err_set(err, ENOMEM, "vCPU %u: out of memory for CPUID", v->id);
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		rc = yun_err_errno(err, errno, "vCPU %u: KVM_SET_CPUID2", v->id);
	free(c);
	return rc;
}

static int vcpu_set_msrs(struct vcpu *v, struct yun_err *err)
{
	static const struct { uint32_t index; uint64_t value; } boot_msrs[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },  { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 },
		{ MSR_LSTAR, 0 },             { MSR_CSTAR, 0 },
		{ MSR_SYSCALL_MASK, 0 },      { MSR_KERNEL_GS_BASE, 0 },
		{ MSR_IA32_MISC_ENABLE, 1 },  /* fast strings */
		{ MSR_MTRR_DEF_TYPE, (1 << 11) | 6 }, /* MTRRs on, default write-back */
	};
	const unsigned n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[sizeof(boot_msrs) / sizeof(boot_msrs[0])];
	} msrs;
	int set;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		msrs.e[i].index = boot_msrs[i].index;
		msrs.e[i].data = boot_msrs[i].value;
	}
	set = ioctl(v->fd, KVM_SET_MSRS, &msrs);
	if (set < 0)
		return yun_err_errno(err, errno, "vCPU %u: KVM_SET_MSRS", v->id);
	/* KVM stops at the first MSR it refuses; the rest are optional niceties. */
	if ((unsigned)set < n)
		yun_debug("vCPU %u: KVM refused MSR 0x%x; continuing", v->id,
			  boot_msrs[set].index);
	return 0;
}

static int vcpu_set_fpu(struct vcpu *v, struct yun_err *err)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return yun_err_errno(err, errno, "vCPU %u: KVM_SET_FPU", v->id);
	return 0;
}

/* LINT0 = ExtINT (the 8259 PIC), LINT1 = NMI, as firmware leaves them. */
static int vcpu_set_lint(struct vcpu *v, struct yun_err *err)
{
	struct kvm_lapic_state lapic;
	uint32_t *lint0, *lint1;

	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return yun_err_errno(err, errno, "vCPU %u: KVM_GET_LAPIC", v->id);
	lint0 = (uint32_t *)&lapic.regs[APIC_LVT_LINT0];
	lint1 = (uint32_t *)&lapic.regs[APIC_LVT_LINT1];
	*lint0 = (*lint0 & ~0x700U) | (APIC_MODE_EXTINT << 8);
	*lint1 = (*lint1 & ~0x700U) | (APIC_MODE_NMI << 8);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return yun_err_errno(err, errno, "vCPU %u: KVM_SET_LAPIC", v->id);
	return 0;
}

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, struct yun_err *err)
{
	int rc;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		v->fd = -1;
		return yun_err_errno(err, errno, "vCPU %u: KVM_CREATE_VCPU", id);
	}
	v->run = mmap(NULL, vm->kvm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		rc = yun_err_errno(err, errno, "vCPU %u: mmap kvm_run", id);
		goto fail;
	}
	rc = vcpu_set_cpuid(v, err);
	if (!rc)
		rc = vcpu_set_msrs(v, err);
	if (!rc)
		rc = vcpu_set_fpu(v, err);
	if (!rc)
		rc = vcpu_set_lint(v, err);
	if (rc)
		goto fail;
	return 0;
fail:
	vcpu_destroy(v);
	return rc;
}

int vcpu_set_entry(struct vcpu *v, const struct boot_entry *entry, struct yun_err *err)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return yun_err_errno(err, errno, "vCPU %u: KVM_GET_SREGS", v->id);
	if (entry_prepare(&v->vm->mem, entry, &regs, &sregs) < 0)
		return yun_err_set(err, EFAULT, "vCPU %u: boot tables do not fit in guest RAM",
				   v->id);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return yun_err_errno(err, errno, "vCPU %u: KVM_SET_SREGS", v->id);
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return yun_err_errno(err, errno, "vCPU %u: KVM_SET_REGS", v->id);
	return 0;
}

static void seg_line(char **p, size_t *left, const char *name, const struct kvm_segment *s)
{
	int n = snprintf(*p, *left, "  %-3s sel=%04x base=%016llx limit=%08x type=%u p=%u dpl=%u "
			 "db=%u s=%u l=%u g=%u\n",
			 name, s->selector, (unsigned long long)s->base, s->limit, s->type,
			 s->present, s->dpl, s->db, s->s, s->l, s->g);

	if (n > 0 && (size_t)n < *left) {
		*p += n;
		*left -= n;
	}
}

void vcpu_dump_registers(struct vcpu *v, char *out, size_t size)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	char *p = out;
	size_t left = size;
	int n;

	out[0] = '\0';
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		snprintf(out, size, "  (registers unavailable: %s)\n", strerror(errno));
		return;
	}
	n = snprintf(p, left,
		     "  RIP=%016llx RSP=%016llx RFLAGS=%016llx\n"
		     "  RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n"
		     "  RSI=%016llx RDI=%016llx RBP=%016llx R8 =%016llx\n"
		     "  R9 =%016llx R10=%016llx R11=%016llx R12=%016llx\n"
		     "  R13=%016llx R14=%016llx R15=%016llx\n"
		     "  CR0=%016llx CR2=%016llx CR3=%016llx CR4=%016llx\n"
		     "  EFER=%016llx APIC_BASE=%016llx GDT=%016llx/%04x IDT=%016llx/%04x\n",
		     r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8,
		     r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cr0, s.cr2, s.cr3, s.cr4,
		     s.efer, s.apic_base, s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
	if (n < 0 || (size_t)n >= left)
		return;
	p += n;
	left -= n;
	seg_line(&p, &left, "CS", &s.cs);
	seg_line(&p, &left, "SS", &s.ss);
	seg_line(&p, &left, "DS", &s.ds);
	seg_line(&p, &left, "TR", &s.tr);
}

/* Stop the VM for an exit the guest cannot continue from, with a register dump. */
static void vcpu_fail(struct vcpu *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vcpu_fail(struct vcpu *v, const char *fmt, ...)
{
	char msg[256], dump[2048];
	int n;
	va_list ap;

	n = snprintf(msg, sizeof(msg), "vCPU %u: ", v->id);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	va_end(ap);
	vcpu_dump_registers(v, dump, sizeof(dump));
	vm_request_stop(v->vm, VM_STOP_ERROR, VM_EXIT_GUEST_CRASH, msg, dump);
}

static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* String I/O (rep ins/outs) arrives as `count` consecutive accesses. */
	for (uint32_t i = 0; i < run->io.count; i++)
		io_bus_access(&v->vm->pio, run->io.port, data + i * run->io.size, run->io.size,
			      is_write);
}

static void vcpu_handle_internal_error(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char extra[160] = "";
	int n = 0;

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		/* KVM may say which instruction it could not emulate: name its bytes. */
		if (run->emulation_failure.ndata >= 3 &&
		    (run->emulation_failure.flags &
		     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
			unsigned len = run->emulation_failure.insn_size;

			if (len > sizeof(run->emulation_failure.insn_bytes))
				len = sizeof(run->emulation_failure.insn_bytes);
			n = snprintf(extra, sizeof(extra), ", instruction bytes");
			for (unsigned i = 0; i < len && n < (int)sizeof(extra) - 4; i++)
				n += snprintf(extra + n, sizeof(extra) - n, " %02x",
					      run->emulation_failure.insn_bytes[i]);
		}
		vcpu_fail(v, "KVM internal error: emulation failure (KVM cannot emulate the "
			     "guest's instruction)%s", extra);
		return;
	}
	for (uint32_t i = 0; i < run->internal.ndata && i < 4; i++)
		n += snprintf(extra + n, sizeof(extra) - n, " %llx",
			      (unsigned long long)run->internal.data[i]);
	vcpu_fail(v, "KVM internal error %u (see KVM_INTERNAL_ERROR_* in linux/kvm.h)%s%s",
		  run->internal.suberror, n ? ", data" : "", extra);
}

static void vcpu_handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(v->vm, VM_STOP_POWEROFF, 0, "guest powered off", NULL);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(v->vm, VM_STOP_RESET, 0, "guest reset", NULL);
		break;
	default:
		vcpu_fail(v, "guest crashed (KVM system event %u)", v->run->system_event.type);
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct yun_err err;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, SIG_VCPU_KICK);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (sandbox_enter(SANDBOX_VCPU, &err) < 0)
		vm_request_stop(v->vm, VM_STOP_ERROR, 1, err.msg, NULL);

	while (!vm_stopping(v->vm)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			vcpu_fail(v, "KVM_RUN: %s", strerror(errno));
			break;
		}
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			vcpu_handle_io(v);
			break;
		case KVM_EXIT_MMIO:
			io_bus_access(&v->vm->mmio, v->run->mmio.phys_addr, v->run->mmio.data,
				      v->run->mmio.len, v->run->mmio.is_write);
			break;
		case KVM_EXIT_HLT:
			/* Only without an in-kernel LAPIC; nothing can wake us then. */
			vcpu_fail(v, "halted with no way to be woken");
			break;
		case KVM_EXIT_SHUTDOWN:
			vcpu_fail(v, "triple fault (KVM_EXIT_SHUTDOWN): the guest hit an "
				     "exception it could not handle");
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			vcpu_handle_internal_error(v);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			vcpu_fail(v, "VM entry failed, hardware reason 0x%llx",
				  (unsigned long long)v->run->fail_entry
					  .hardware_entry_failure_reason);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			vcpu_handle_system_event(v);
			break;
		case KVM_EXIT_INTR:
			break;
		default:
			vcpu_fail(v, "unexpected KVM exit reason %u", v->run->exit_reason);
			break;
		}
	}
	return NULL;
}

int vcpu_start(struct vcpu *v, struct yun_err *err)
{
	sigset_t set, old;
	int rc;

	/* The thread starts with the kick signal blocked and unblocks it itself. */
	sigemptyset(&set);
	sigaddset(&set, SIG_VCPU_KICK);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return yun_err_errno(err, rc, "vCPU %u: start thread", v->id);
	v->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->thread_started)
		return;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, SIG_VCPU_KICK);
}

void vcpu_join(struct vcpu *v)
{
	if (v->thread_started) {
		pthread_join(v->thread, NULL);
		v->thread_started = false;
	}
}

void vcpu_destroy(struct vcpu *v)
{
	vcpu_join(v);
	if (v->run)
		munmap(v->run, v->vm->kvm.run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
