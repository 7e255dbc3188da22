/*
 * sandbox/seccomp.h - yun-vmm's seccomp-bpf allow-lists, one per kind of
 * thread, built with libseccomp.
 *
 * Every thread yun-vmm starts calls sandbox_enter(kind) once its own setup
 * is done and before it touches anything the guest controls: a vCPU thread
 * before its first KVM_RUN, the I/O thread before its first epoll_wait, the
 * console and signal threads when they start, the control API thread when
 * it starts, and the main thread in vm_run once the vCPU threads are
 * running. The filter is loaded into the calling thread only (no TSYNC).
 * A syscall off the list raises SIGSYS (SCMP_ACT_TRAP); the handler writes
 * one line to stderr, async-signal-safely,
 *   yun-vmm: seccomp: thread vcpu0 (vcpu) made forbidden syscall 135 (personality); stopping
 * then resets SIGSYS to its default action and re-raises it: the whole
 * process dies by SIGSYS (a shell shows status 159 = 128 + 31; as a pid
 * namespace's init, under yun-jailer, it exits with status 159). Syscall
 * names are resolved when the lists are built, not in the handler.
 *
 * Stacking. Filters are inherited by threads created later and stack (the
 * strictest verdict wins), so a thread created by an already filtered
 * thread only gets what both lists allow. The rules that keep this sound:
 *   - The main thread installs its filter last, in vm_run after the vCPU
 *     threads exist; every other thread of the VM (I/O, console, signal,
 *     API) is created before that, by an unfiltered main thread.
 *   - With --reboot the main thread builds the next VM under its filter,
 *     so sandbox_set_mode(SANDBOX_ON) with reboot set widens the main list
 *     by what building a VM needs (open, every ioctl, thread creation) and
 *     by the vCPU and I/O lists, which the new threads then narrow again.
 *   - The API list is a superset of the vCPU and I/O lists, so vCPU threads
 *     the API thread restarts (snapshot restore, migration) still work.
 * A thread that must be created after the main thread is filtered needs its
 * list to be a subset of the main one (and should be avoided).
 *
 * The lists are tables in seccomp.c (syscall names with the thread kinds
 * that may use them, ioctl requests likewise); extending one is one line.
 * Arguments are checked where it is cheap: ioctl requests for the vCPU, I/O
 * and main threads, socket families, no PROT_EXEC in mmap/mprotect, prctl
 * only to get or set the thread's name. Sanitizer builds (ASan, UBSan) add
 * what their runtimes need to report and, for LeakSanitizer at exit, to
 * stop the world (clone, ptrace, wait4 ...); see sb_sanitizer in seccomp.c.
 * io_uring requests are not seen by seccomp at all: the ring is the block
 * device's, set up before the filters, and only io_uring_enter is allowed.
 *
 * Debug hook: with YUN_VMM_DEBUG_FORBIDDEN=vcpu|io|api|main in the
 * environment, the first thread of that kind makes a forbidden syscall
 * (personality(0xffffffff), a harmless query) right after installing its
 * filter, so tests can prove that a violation stops the VMM.
 */
#ifndef YUN_VMM_SANDBOX_SECCOMP_H
#define YUN_VMM_SANDBOX_SECCOMP_H

#include <stdbool.h>

#include "../../lib/err.h"

enum sandbox_thread {
	SANDBOX_VCPU,
	SANDBOX_IO,
	SANDBOX_API,
	SANDBOX_MAIN, /* main, signal, console threads */
};
#define SANDBOX_NR_KINDS 4

enum sandbox_mode { SANDBOX_OFF, SANDBOX_ON };

/* The environment variable of the debug hook. */
#define SANDBOX_DEBUG_ENV "YUN_VMM_DEBUG_FORBIDDEN"

/*
 * Process-wide switch, set once by the main thread before it starts any
 * other thread (default OFF, so unit tests and harnesses linking the
 * device models run unfiltered; yun-vmm turns it ON unless --seccomp off).
 * ON builds every kind's filter now, so an error shows before the VM
 * starts, installs the SIGSYS handler and sets no_new_privs on the calling
 * thread, which the threads it starts inherit (loading a filter needs it;
 * once filtered, a thread may not call prctl for it). `reboot`: the main
 * thread will build VMs again under its filter (see above).
 */
int sandbox_set_mode(enum sandbox_mode mode, bool reboot, struct yun_err *err);
enum sandbox_mode sandbox_get_mode(void);

/*
 * Install `kind`'s filter in the calling thread; nothing when the mode is
 * OFF or this thread already entered. Thread-safe.
 */
int sandbox_enter(enum sandbox_thread kind, struct yun_err *err);

/* "vcpu", "io", "api", "main". */
const char *sandbox_thread_name(enum sandbox_thread kind);

/* For tests: write `kind`'s compiled BPF program to fd (mode need not be ON). */
int sandbox_export(enum sandbox_thread kind, bool reboot, int fd, struct yun_err *err);

#endif
