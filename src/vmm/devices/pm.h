/*
 * pm.h - ACPI hardware-reduced power management: the sleep control, sleep
 * status and reset registers the FADT points at (PORT_PM_SLEEP_CTL,
 * PORT_PM_SLEEP_STS, PORT_PM_RESET: three consecutive 8-bit ports).
 *
 *  - SLEEP_CTL: writing SLP_EN (PM_SLP_EN) with SLP_TYP ((v >> 2) & 7) equal
 *    to PM_SLP_TYP_S5 powers the VM off (VM_STOP_POWEROFF). Other sleep
 *    types (S1-S4) are not supported and silently ignored. Reads 0.
 *  - SLEEP_STS: write-1-to-clear, nothing ever sets a bit: reads 0.
 *  - RESET: writing PM_RESET_VALUE resets the VM (VM_STOP_RESET). Reads 0.
 *
 * What it may touch: the vm_stopper. No state, so no lock.
 */
#ifndef YUN_VMM_DEVICES_PM_H
#define YUN_VMM_DEVICES_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "../snapshot/stream.h"
#include "../vm_stop.h"

#define PM_NR_PORTS 3

struct pm {
	struct vm_stopper stop;
};

/* The stopper is copied. */
void pm_init(struct pm *pm, const struct vm_stopper *stop);

/* The io_bus handler: register at PORT_PM_SLEEP_CTL, PM_NR_PORTS long. */
void pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/*
 * Snapshot (PM_SNAP_VERSION): the registers hold nothing between accesses,
 * so the section is empty; it exists so a later version can add state.
 */
#define PM_SNAP_VERSION 1
void pm_save(const struct pm *pm, struct snap_writer *w);
int pm_load(struct pm *pm, struct snap_reader *r);

#endif
