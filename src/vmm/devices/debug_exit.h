/*
 * debug_exit.h - QEMU isa-debug-exit compatible exit port at PORT_DEBUG_EXIT
 * (2 ports wide), for test guests.
 *
 * A write of value v (1 or 2 bytes, little-endian, at either port; bytes of
 * a wider access past the 2-byte window are not ours and are ignored) asks
 * the VM to stop with VM_STOP_DEBUG_EXIT and exit status (v << 1) | 1, as
 * QEMU does. The full value is passed on; the OS keeps only its low 8 bits
 * as a process exit status, so the caller truncates. Reads return 0xff.
 *
 * What it may touch: the vm_stopper. No state, so no lock.
 */
#ifndef YUN_VMM_DEVICES_DEBUG_EXIT_H
#define YUN_VMM_DEVICES_DEBUG_EXIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../vm_stop.h"

#define DEBUG_EXIT_NR_PORTS 2

struct debug_exit {
	struct vm_stopper stop;
};

/* The stopper is copied. */
void debug_exit_init(struct debug_exit *d, const struct vm_stopper *stop);

/* The io_bus handler: register at PORT_DEBUG_EXIT, DEBUG_EXIT_NR_PORTS long. */
void debug_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
