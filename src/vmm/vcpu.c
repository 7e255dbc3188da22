/* vcpu.c - see vcpu.h. */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "cpuid.h"
#include "layout.h"
#include "snapshot/stream.h"
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

const char *const vcpu_exit_names[VCPU_EXIT_NR] = {
	[VCPU_EXIT_IO] = "io", [VCPU_EXIT_MMIO] = "mmio", [VCPU_EXIT_HLT] = "hlt",
	[VCPU_EXIT_SHUTDOWN] = "shutdown", [VCPU_EXIT_INTERNAL_ERROR] = "internal_error",
	[VCPU_EXIT_FAIL_ENTRY] = "fail_entry", [VCPU_EXIT_SYSTEM_EVENT] = "system_event",
	[VCPU_EXIT_INTR] = "intr", [VCPU_EXIT_OTHER] = "other",
};

/* One writer: a relaxed load and store is enough, and cheaper than a locked add. */
static void vcpu_count_exit(struct vcpu *v, uint32_t reason)
{
	static const uint8_t kind[] = {
		[KVM_EXIT_IO] = VCPU_EXIT_IO, [KVM_EXIT_MMIO] = VCPU_EXIT_MMIO,
		[KVM_EXIT_HLT] = VCPU_EXIT_HLT, [KVM_EXIT_SHUTDOWN] = VCPU_EXIT_SHUTDOWN,
		[KVM_EXIT_INTERNAL_ERROR] = VCPU_EXIT_INTERNAL_ERROR,
		[KVM_EXIT_FAIL_ENTRY] = VCPU_EXIT_FAIL_ENTRY,
		[KVM_EXIT_SYSTEM_EVENT] = VCPU_EXIT_SYSTEM_EVENT, [KVM_EXIT_INTR] = VCPU_EXIT_INTR,
	};
	unsigned k = reason < sizeof(kind) && (kind[reason] || reason == KVM_EXIT_IO)
			     ? kind[reason] : VCPU_EXIT_OTHER;
	uint64_t *c = &v->stats.exits[k];

	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

uint64_t vcpu_cpu_time_ns(struct vcpu *v)
{
	struct timespec ts;

	/* A clock id outlives its thread harmlessly: clock_gettime then fails. */
	if (!__atomic_load_n(&v->stats.has_clock, __ATOMIC_ACQUIRE) ||
	    clock_gettime(v->stats.cpu_clock, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Pause: finish the last exit first. KVM completes a port or MMIO read only
 * on the next KVM_RUN, so re-enter once with immediate_exit set (it returns
 * -EINTR without running guest code); then the vCPU's state is whole.
 */
static void vcpu_park(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(v->fd, KVM_RUN, 0) == 0 || (errno != EINTR && errno != EAGAIN))
		yun_debug("vCPU %u: completing the last exit before a pause: %s", v->id,
			  strerror(errno));
	v->run->immediate_exit = 0;
	vm_park_vcpu(v->vm);
}

/* A restored VM's boot vCPU about to run the guest again: how long restore took. */
static void vcpu_log_restore_time(struct vcpu *v)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	yun_info("restore: %llu us from vm_restore to the first KVM_RUN",
		 (unsigned long long)((now - v->vm->restore_t0_ns) / 1000));
	if (v->vm->restore_req_ns)
		yun_info("restore: %llu us from PUT /snapshot/load to the first KVM_RUN (%s VM)",
			 (unsigned long long)((now - v->vm->restore_req_ns) / 1000),
			 v->vm->from_shell ? "pre-built" : "new");
	v->vm->restore_t0_ns = 0;
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
	if (pthread_getcpuclockid(pthread_self(), &v->stats.cpu_clock) == 0)
		__atomic_store_n(&v->stats.has_clock, true, __ATOMIC_RELEASE);
	if (sandbox_enter(SANDBOX_VCPU, &err) < 0)
		vm_request_stop(v->vm, VM_STOP_ERROR, 1, err.msg, NULL);

	while (!vm_stopping(v->vm)) {
		if (__atomic_load_n(&v->vm->pause_req, __ATOMIC_ACQUIRE)) {
			vcpu_park(v);
			continue;
		}
		if (v->id == 0 && v->vm->restore_t0_ns)
			vcpu_log_restore_time(v);
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				unsigned t = __atomic_load_n(&v->vm->throttle, __ATOMIC_ACQUIRE);

				vcpu_count_exit(v, KVM_EXIT_INTR); /* a kick or a signal */
				v->run->immediate_exit = 0;
				/* Auto-converge (vm_throttle): sit out t % of the period. */
				if (t && !vm_stopping(v->vm)) {
					struct timespec ts = { 0, t * (VM_THROTTLE_PERIOD_NS / 100) };

					nanosleep(&ts, NULL);
				}
				continue;
			}
			vcpu_fail(v, "KVM_RUN: %s", strerror(errno));
			break;
		}
		vcpu_count_exit(v, v->run->exit_reason);
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

/* ---- saved state (snapshots) ------------------------------------------------ */

/*
 * One "VCPU" section per vCPU. Its body is the vCPU's id, then each piece
 * of KVM state as a u32 size + the x86 KVM ABI struct KVM returned (the
 * layouts are fixed by linux/kvm.h; a size other than this build's is
 * refused), except MSRs, which are a count + (u32 index, u64 value) pairs,
 * and XSAVE, whose size depends on the host's features.
 */
#define VCPU_SNAP_VERSION 1
#define VCPU_SNAP_MAX_MSRS 1024
#define MSR_IA32_TSC_DEADLINE 0x6e0

struct vcpu_msrs {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[VCPU_SNAP_MAX_MSRS];
};

/* The fixed-size pieces, as KVM hands them out. */
struct vcpu_kvm_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dregs;
};

static void put_blob(struct snap_writer *w, const void *p, uint32_t n)
{
	snap_put_u32(w, n);
	snap_put_bytes(w, p, n);
}

/* A piece of fixed size: refuse any other size, naming it. */
static void get_blob(struct snap_reader *r, const char *what, void *p, uint32_t n)
{
	uint32_t got = snap_get_u32(r);

	if (!r->failed && got != n) {
		snap_reader_fail(r, "%s is %u bytes, this yun-vmm expects %u", what, got, n);
		return;
	}
	snap_get_bytes(r, p, n);
}

/* The MSRs KVM lists for this host; *n entries malloc'd in *out. */
static int vcpu_msr_index_list(struct vcpu *v, uint32_t **out, uint32_t *n, struct yun_err *err)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *l;

	if (ioctl(v->vm->kvm.sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return yun_err_errno(err, errno, "vCPU %u: KVM_GET_MSR_INDEX_LIST", v->id);
	if (probe.nmsrs > VCPU_SNAP_MAX_MSRS)
		return yun_err_set(err, E2BIG, "vCPU %u: KVM lists %u MSRs, more than %d", v->id,
				   probe.nmsrs, VCPU_SNAP_MAX_MSRS);
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return yun_err_set(err, ENOMEM, "vCPU %u: out of memory", v->id);
	l->nmsrs = probe.nmsrs;
	if (ioctl(v->vm->kvm.sys_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return yun_err_errno(err, errno, "vCPU %u: KVM_GET_MSR_INDEX_LIST", v->id);
	}
	*n = l->nmsrs;
	*out = malloc((l->nmsrs ? l->nmsrs : 1) * sizeof(uint32_t));
	if (!*out) {
		free(l);
		return yun_err_set(err, ENOMEM, "vCPU %u: out of memory", v->id);
	}
	memcpy(*out, l->indices, l->nmsrs * sizeof(uint32_t));
	free(l);
	return 0;
}

/*
 * Read every listed MSR this vCPU has. KVM_GET_MSRS stops at the first MSR
 * it cannot read (one the vCPU's CPUID does not have): skip it, go on.
 */
static int vcpu_read_msrs(struct vcpu *v, struct vcpu_msrs *m, struct yun_err *err)
{
	uint32_t *idx = NULL, n = 0, done = 0;
	int rc = vcpu_msr_index_list(v, &idx, &n, err);

	if (rc)
		return rc;
	m->hdr.nmsrs = 0;
	while (done < n) {
		struct vcpu_msrs batch;
		uint32_t cnt = n - done;
		int got;

		memset(&batch, 0, sizeof(batch.hdr));
		batch.hdr.nmsrs = cnt;
		for (uint32_t i = 0; i < cnt; i++)
			batch.e[i] = (struct kvm_msr_entry){ .index = idx[done + i] };
		got = ioctl(v->fd, KVM_GET_MSRS, &batch);
		if (got < 0) {
			rc = yun_err_errno(err, errno, "vCPU %u: KVM_GET_MSRS", v->id);
			break;
		}
		for (int i = 0; i < got; i++)
			m->e[m->hdr.nmsrs++] = batch.e[i];
		done += (uint32_t)got + 1; /* skip the one KVM could not read */
	}
	free(idx);
	return rc;
}

static uint32_t vcpu_xsave_size(struct vcpu *v)
{
	int n = ioctl(v->vm->kvm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return n > (int)sizeof(struct kvm_xsave) ? (uint32_t)n : sizeof(struct kvm_xsave);
}

static bool vcpu_has(struct vcpu *v, long cap)
{
	return ioctl(v->vm->kvm.vm_fd, KVM_CHECK_EXTENSION, cap) > 0;
}

int vcpu_save(struct vcpu *v, struct snap_writer *w, struct yun_err *err)
{
	struct vcpu_kvm_state k;
	struct vcpu_msrs *msrs = NULL;
	struct kvm_xsave *xsave = NULL;
	uint32_t xsave_size = 0;
	int rc = -1;

#define GET(req, p, what)                                                             \
	do {                                                                          \
		if (ioctl(v->fd, req, p) < 0) {                                       \
			rc = yun_err_errno(err, errno, "vCPU %u: saving %s", v->id, what); \
			goto out;                                                     \
		}                                                                     \
	} while (0)
	GET(KVM_GET_REGS, &k.regs, "registers (KVM_GET_REGS)");
	GET(KVM_GET_SREGS, &k.sregs, "segment/control registers (KVM_GET_SREGS)");
	GET(KVM_GET_FPU, &k.fpu, "FPU (KVM_GET_FPU)");
	if (vcpu_has(v, KVM_CAP_XSAVE)) {
		xsave_size = vcpu_xsave_size(v);
		xsave = calloc(1, xsave_size);
		if (!xsave) {
			rc = yun_err_set(err, ENOMEM, "vCPU %u: out of memory", v->id);
			goto out;
		}
		if (xsave_size > sizeof(*xsave))
			GET(KVM_GET_XSAVE2, xsave, "XSAVE area (KVM_GET_XSAVE2)");
		else
			GET(KVM_GET_XSAVE, xsave, "XSAVE area (KVM_GET_XSAVE)");
	}
	memset(&k.xcrs, 0, sizeof(k.xcrs));
	if (vcpu_has(v, KVM_CAP_XCRS))
		GET(KVM_GET_XCRS, &k.xcrs, "XCRs (KVM_GET_XCRS)");
	GET(KVM_GET_LAPIC, &k.lapic, "local APIC (KVM_GET_LAPIC)");
	GET(KVM_GET_MP_STATE, &k.mp, "MP state (KVM_GET_MP_STATE)");
	GET(KVM_GET_VCPU_EVENTS, &k.events, "pending events (KVM_GET_VCPU_EVENTS)");
	GET(KVM_GET_DEBUGREGS, &k.dregs, "debug registers (KVM_GET_DEBUGREGS)");
#undef GET
	msrs = malloc(sizeof(*msrs));
	if (!msrs) {
		rc = yun_err_set(err, ENOMEM, "vCPU %u: out of memory", v->id);
		goto out;
	}
	rc = vcpu_read_msrs(v, msrs, err);
	if (rc)
		goto out;

	snap_begin(w, "VCPU", VCPU_SNAP_VERSION);
	snap_put_u32(w, v->id);
	put_blob(w, &k.regs, sizeof(k.regs));
	put_blob(w, &k.sregs, sizeof(k.sregs));
	put_blob(w, &k.fpu, sizeof(k.fpu));
	put_blob(w, xsave, xsave_size);
	put_blob(w, &k.xcrs, sizeof(k.xcrs));
	snap_put_u32(w, msrs->hdr.nmsrs);
	for (uint32_t i = 0; i < msrs->hdr.nmsrs; i++) {
		snap_put_u32(w, msrs->e[i].index);
		snap_put_u64(w, msrs->e[i].data);
	}
	put_blob(w, &k.lapic, sizeof(k.lapic));
	snap_put_u32(w, k.mp.mp_state);
	put_blob(w, &k.events, sizeof(k.events));
	put_blob(w, &k.dregs, sizeof(k.dregs));
	snap_end(w);
	rc = snap_writer_error(w, err);
out:
	free(msrs);
	free(xsave);
	return rc;
}

/*
 * KVM_SET_MSRS of m. KVM stops at the first value it refuses: one it holds
 * already (an MSR the host may read but not write) is skipped, any other is
 * an error naming it. m's entries are consumed.
 */
static int vcpu_put_msrs(struct vcpu *v, struct kvm_msrs *m, struct yun_err *err)
{
	while (m->nmsrs) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e[1];
		} cur = { .hdr.nmsrs = 1 };
		struct kvm_msr_entry *bad;
		int set = ioctl(v->fd, KVM_SET_MSRS, m);

		if (set < 0)
			return yun_err_errno(err, errno, "vCPU %u: restoring MSRs (KVM_SET_MSRS)",
					     v->id);
		if ((uint32_t)set >= m->nmsrs)
			return 0;
		bad = &m->entries[set];
		cur.e[0].index = bad->index;
		if (ioctl(v->fd, KVM_GET_MSRS, &cur) != 1 || cur.e[0].data != bad->data)
			return yun_err_set(err, EINVAL, "vCPU %u: KVM refused MSR 0x%x = 0x%llx",
					   v->id, bad->index, (unsigned long long)bad->data);
		/* Go on after it. */
		m->nmsrs -= (uint32_t)set + 1;
		memmove(m->entries, bad + 1, m->nmsrs * sizeof(*bad));
	}
	return 0;
}

int vcpu_load(struct vcpu *v, struct snap_reader *r, struct yun_err *err)
{
	struct vcpu_kvm_state k;
	struct vcpu_msrs *msrs = NULL;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} deadline = { .hdr.nmsrs = 0 };
	struct kvm_xsave *xsave = NULL;
	struct snap_reader s;
	uint32_t id, xsave_size, max_xsave = vcpu_xsave_size(v), n;
	int rc;

	rc = snap_section(r, "VCPU", VCPU_SNAP_VERSION, NULL, &s);
	if (rc)
		return snap_reader_done(&s, err);
	id = snap_get_u32(&s);
	if (!s.failed && id != v->id)
		snap_reader_fail(&s, "holds vCPU %u where vCPU %u was expected", id, v->id);
	get_blob(&s, "kvm_regs", &k.regs, sizeof(k.regs));
	get_blob(&s, "kvm_sregs", &k.sregs, sizeof(k.sregs));
	get_blob(&s, "kvm_fpu", &k.fpu, sizeof(k.fpu));
	xsave_size = snap_get_u32(&s);
	if (!s.failed && xsave_size &&
	    (xsave_size < sizeof(*xsave) || xsave_size > max_xsave || !vcpu_has(v, KVM_CAP_XSAVE)))
		snap_reader_fail(&s, "XSAVE area of %u bytes; this host's KVM takes %u", xsave_size,
				 vcpu_has(v, KVM_CAP_XSAVE) ? max_xsave : 0);
	if (!s.failed && xsave_size) {
		xsave = calloc(1, max_xsave);
		if (!xsave) {
			rc = yun_err_set(err, ENOMEM, "vCPU %u: out of memory", v->id);
			goto out;
		}
		snap_get_bytes(&s, xsave, xsave_size);
	}
	get_blob(&s, "kvm_xcrs", &k.xcrs, sizeof(k.xcrs));
	if (!s.failed && k.xcrs.nr_xcrs > KVM_MAX_XCRS)
		snap_reader_fail(&s, "%u XCRs, at most %d", k.xcrs.nr_xcrs, KVM_MAX_XCRS);
	n = snap_get_u32(&s);
	if (!s.failed && n > VCPU_SNAP_MAX_MSRS)
		snap_reader_fail(&s, "%u MSRs, at most %d", n, VCPU_SNAP_MAX_MSRS);
	msrs = calloc(1, sizeof(*msrs));
	if (!msrs) {
		rc = yun_err_set(err, ENOMEM, "vCPU %u: out of memory", v->id);
		goto out;
	}
	for (uint32_t i = 0; i < n && !s.failed; i++) {
		struct kvm_msr_entry e = { .index = snap_get_u32(&s) };

		e.data = snap_get_u64(&s);
		/* The TSC deadline only means something once the LAPIC is back. */
		if (e.index == MSR_IA32_TSC_DEADLINE) {
			deadline.e[0] = e;
			deadline.hdr.nmsrs = 1;
		} else {
			msrs->e[msrs->hdr.nmsrs++] = e;
		}
	}
	get_blob(&s, "kvm_lapic_state", &k.lapic, sizeof(k.lapic));
	k.mp.mp_state = snap_get_u32(&s);
	if (!s.failed && k.mp.mp_state > KVM_MP_STATE_AP_RESET_HOLD)
		snap_reader_fail(&s, "MP state %u is unknown", k.mp.mp_state);
	get_blob(&s, "kvm_vcpu_events", &k.events, sizeof(k.events));
	get_blob(&s, "kvm_debugregs", &k.dregs, sizeof(k.dregs));
	rc = snap_reader_done(&s, err);
	if (rc) {
		char msg[YUN_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		rc = yun_err_set(err, EINVAL, "vCPU %u: %s", v->id, msg);
		goto out;
	}
	k.events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;

#define SET(req, p, what)                                                                  \
	do {                                                                               \
		if (ioctl(v->fd, req, p) < 0) {                                            \
			rc = yun_err_errno(err, errno, "vCPU %u: KVM refused the saved %s", \
					   v->id, what);                                   \
			goto out;                                                          \
		}                                                                          \
	} while (0)
	/* The order QEMU uses: registers, FPU, MSRs, then the APIC and what depends on it. */
	SET(KVM_SET_SREGS, &k.sregs, "segment/control registers (KVM_SET_SREGS)");
	SET(KVM_SET_REGS, &k.regs, "registers (KVM_SET_REGS)");
	SET(KVM_SET_FPU, &k.fpu, "FPU (KVM_SET_FPU)");
	if (xsave)
		SET(KVM_SET_XSAVE, xsave, "XSAVE area (KVM_SET_XSAVE)");
	if (k.xcrs.nr_xcrs && vcpu_has(v, KVM_CAP_XCRS))
		SET(KVM_SET_XCRS, &k.xcrs, "XCRs (KVM_SET_XCRS)");
	/*
	 * MSRs include IA32_TSC: the guest's TSC goes on from the saved value
	 * (KVM keeps the vCPUs' TSCs in sync when they are written together),
	 * so with kvmclock set back too (vm state) the guest sees no time pass
	 * while it was saved.
	 */
	rc = vcpu_put_msrs(v, &msrs->hdr, err);
	if (rc)
		goto out;
	SET(KVM_SET_MP_STATE, &k.mp, "MP state (KVM_SET_MP_STATE)");
	SET(KVM_SET_LAPIC, &k.lapic, "local APIC (KVM_SET_LAPIC)");
	rc = vcpu_put_msrs(v, &deadline.hdr, err);
	if (rc)
		goto out;
	SET(KVM_SET_VCPU_EVENTS, &k.events, "pending events (KVM_SET_VCPU_EVENTS)");
	SET(KVM_SET_DEBUGREGS, &k.dregs, "debug registers (KVM_SET_DEBUGREGS)");
#undef SET
	rc = 0;
out:
	free(msrs);
	free(xsave);
	return rc;
}
