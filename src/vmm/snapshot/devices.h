/*
 * devices.h - every device model's state in and out of the section stream
 * (stream.h): the device half of a snapshot or a live migration.
 *
 * The sections, in this order (each versioned by its module):
 *   DEVS  which devices the state has (rng, disks, balloon, cards, vsock)
 *   SER0 RTC0 KBC0 PM0   COM1, the CMOS clock, the i8042, ACPI PM
 *   PCI0  the 0xCF8 latch and the host bridge's config space
 *   then per virtio device its transport (VPRN, VPDn, VPBL, VPNn, VPVS:
 *   config space, features, status, queues, MSI-X) and its model (RNG0,
 *   BLKn, BAL0, NETn, VSK0).
 *
 * vm_devices_save() runs with the VM paused: vCPUs parked and the I/O
 * thread parked or not started (it runs device work on the calling thread).
 * First it quiesces what a saved state cannot hold: disk requests in
 * flight are waited for and completed through the normal path (used ring,
 * status, interrupt), rx chains net and vsock hold are given back to their
 * rings. So call it before the vCPU and interrupt-controller state is read:
 * a completion may raise an interrupt. The devices stay runnable: the VM
 * may resume after a save.
 *
 * vm_devices_load() runs on a VM freshly built from the same configuration
 * (devices created and on their buses, the KVM irqchip there, no vCPU or
 * I/O thread running) and reads exactly the sections above from r, leaving
 * r after them. Everything in the state is untrusted: each value is checked
 * as the live device would have checked the write that set it, and the
 * first bad one fails the load with a message naming section and field
 * ("section VPD0: queue 0: size 3 is not a power of two up to 256"). A
 * state of other devices (2 disks for 1, another capacity) fails naming
 * the device. On failure devices may be half loaded: the caller destroys
 * the VM. On success the side effects live devices had are back (MSI-X
 * routes, notify ioeventfds where the guest put BAR 0, raised INTx and
 * COM1 lines, offloads, timers) and each live queue has a kick waiting, so
 * the I/O thread serves what the driver posted before the save once it
 * starts. vsock connections are gone: the guest gets TRANSPORT_RESET.
 * Guest RAM is not touched by either call.
 */
#ifndef YUN_VMM_SNAPSHOT_DEVICES_H
#define YUN_VMM_SNAPSHOT_DEVICES_H

#include "../../lib/err.h"
#include "stream.h"

struct vm;

#define DEVICES_SNAP_VERSION 1 /* of the DEVS section */

/*
 * Of the paused VM: finish what a save cannot hold (disk requests in
 * flight, rx chains held but not filled), so no device writes guest RAM
 * after this until the VM resumes. vm_devices_save does it first.
 */
void vm_devices_quiesce(struct vm *vm);

int vm_devices_save(struct vm *vm, struct snap_writer *w, struct yun_err *err);
int vm_devices_load(struct vm *vm, struct snap_reader *r, struct yun_err *err);

#endif
