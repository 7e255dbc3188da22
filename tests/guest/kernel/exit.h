/*
 * exit.h - how the guest ends its VM when a case is done: the debug-exit
 * port (QEMU isa-debug-exit semantics), or ACPI S5 when there is none.
 */
#ifndef YT_EXIT_H
#define YT_EXIT_H

#include "io.h"

#define DEBUG_EXIT_PORT 0x501
#define EXIT_PASS	0x10 /* VMM exit status (0x10 << 1) | 1 = 33 */
#define EXIT_FAIL	0x11 /* 35 */

/*
 * Write `value` to the debug-exit port. Without that device (yun-vmm run
 * without --debug-exit) the guest powers off instead, so a person running
 * it by hand gets their terminal back; the result is on the console.
 */
_Noreturn void debug_exit(u8 value);

#endif
