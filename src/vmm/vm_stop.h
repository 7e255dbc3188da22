/*
 * vm_stop.h - how a device asks the VM to end (power-off, reset, the debug
 * exit port) without knowing about vCPUs. The VM supplies the callback; the
 * first request wins, later ones are ignored.
 */
#ifndef YUN_VMM_VM_STOP_H
#define YUN_VMM_VM_STOP_H

enum vm_stop_reason {
	VM_STOP_NONE = 0,
	VM_STOP_POWEROFF,   /* guest powered off: exit status 0 */
	VM_STOP_RESET,      /* guest reset: exit 0, or reboot with --reboot */
	VM_STOP_DEBUG_EXIT, /* isa-debug-exit: exit status (v << 1) | 1 */
	VM_STOP_ERROR,      /* triple fault, internal error: non-zero */
};

struct vm_stopper {
	void (*request)(void *ctx, enum vm_stop_reason reason, int exit_status);
	void *ctx;
};

static inline void vm_stop_request(const struct vm_stopper *s, enum vm_stop_reason reason,
				   int exit_status)
{
	if (s && s->request)
		s->request(s->ctx, reason, exit_status);
}

#endif
