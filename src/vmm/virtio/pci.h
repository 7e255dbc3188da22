/*
 * pci.h - the virtio 1.x modern PCI transport (virtio 1.2, 4.1): one PCI
 * function per device model, vendor 0x1AF4, device 0x1040 + type,
 * revision 1, everything in one 32-bit memory BAR (BAR 0, 32 KiB):
 *
 *   0x0000  common configuration   (VIRTIO_PCI_CAP_COMMON_CFG)
 *   0x1000  ISR status             (VIRTIO_PCI_CAP_ISR_CFG)
 *   0x2000  device configuration   (VIRTIO_PCI_CAP_DEVICE_CFG, if any)
 *   0x3000  queue notify: queue q at 0x3000 + 4 * q (multiplier 4)
 *   0x4000  MSI-X table (one vector per queue + one for config changes)
 *   0x5000  MSI-X PBA
 *
 * Capabilities, in list order: common, notify, ISR, device (if the model
 * has a configuration), PCI configuration access, MSI-X. The last virtio
 * one (VIRTIO_PCI_CAP_PCI_CFG, 4.1.4.9) is a window for drivers that
 * cannot map the BAR: the driver writes cap.bar, cap.offset and
 * cap.length, then a read of pci_cfg_data reads that BAR range and a write
 * writes it, through the same handlers as MMIO. The window reaches only
 * the four virtio structures above: BAR 0, a length of 1, 2 or 4, aligned
 * to it, wholly inside one structure; anything else (another BAR, the
 * MSI-X table, a range running off a structure or past 2^32) reads as 0
 * and ignores writes.
 *
 * Kicks: each queue has an eventfd. The VM binds it to the queue's notify
 * address with KVM_IOEVENTFD (host.ioeventfd), so a driver's notify write
 * never leaves the kernel, and the I/O thread (host.iothread) polls it and
 * runs the model's queue_notify. A notify write that does reach user space
 * (no ioeventfd, odd access size) writes the same eventfd; with no I/O
 * thread at all (a unit-test harness) it runs the queue on the caller's
 * thread, so a harness writing the notify register sees the used ring
 * updated when the write returns.
 *
 * Interrupts: MSI-X when the driver enabled it (host.msix fires vectors),
 * else INTx through host.intx with the ISR register (read-to-clear).
 */
#ifndef YUN_VMM_VIRTIO_PCI_H
#define YUN_VMM_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../irq.h"
#include "../memory.h"
#include "../pci/msix.h"
#include "../pci/pci.h"
#include "iothread.h"
#include "virtio.h"

#define VIRTIO_PCI_VENDOR      0x1AF4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_SUBSYS_ID   0x1100

#define VIRTIO_PCI_BAR         0
#define VIRTIO_PCI_BAR_SIZE    0x8000
#define VIRTIO_PCI_COMMON_OFF  0x0000
#define VIRTIO_PCI_ISR_OFF     0x1000
#define VIRTIO_PCI_DEVICE_OFF  0x2000
#define VIRTIO_PCI_NOTIFY_OFF  0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE  0x4000
#define VIRTIO_PCI_MSIX_PBA    0x5000
#define VIRTIO_PCI_REGION_SIZE 0x1000

/* virtio_pci_cap.cfg_type */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

/* struct virtio_pci_common_cfg offsets. */
#define VIRTIO_PCI_COMMON_DFSELECT  0x00
#define VIRTIO_PCI_COMMON_DF        0x04
#define VIRTIO_PCI_COMMON_GFSELECT  0x08
#define VIRTIO_PCI_COMMON_GF        0x0C
#define VIRTIO_PCI_COMMON_MSIX      0x10
#define VIRTIO_PCI_COMMON_NUMQ      0x12
#define VIRTIO_PCI_COMMON_STATUS    0x14
#define VIRTIO_PCI_COMMON_CFGGEN    0x15
#define VIRTIO_PCI_COMMON_Q_SELECT  0x16
#define VIRTIO_PCI_COMMON_Q_SIZE    0x18
#define VIRTIO_PCI_COMMON_Q_MSIX    0x1A
#define VIRTIO_PCI_COMMON_Q_ENABLE  0x1C
#define VIRTIO_PCI_COMMON_Q_NOFF    0x1E
#define VIRTIO_PCI_COMMON_Q_DESC    0x20
#define VIRTIO_PCI_COMMON_Q_AVAIL   0x28
#define VIRTIO_PCI_COMMON_Q_USED    0x30
#define VIRTIO_PCI_COMMON_SIZE      0x3C

#define VIRTIO_PCI_ISR_QUEUE  1
#define VIRTIO_PCI_ISR_CONFIG 2

/* What the VM gives the transport; every member may be empty in a harness. */
struct virtio_pci_host {
	const struct guest_mem *gm;
	struct iothread *iothread;   /* NULL: run kicks on the notifying thread */
	/* Bind/unbind eventfd `fd` to writes of `len` bytes at `gpa`; <0: not possible. */
	int (*ioeventfd)(void *ctx, uint64_t gpa, uint32_t len, int fd, bool assign);
	void *ctx;
	struct msix_host msix;
	struct irq_line intx;        /* set_level NULL: no INTx */
};

struct virtio_pci;

struct virtio_pci_queue {
	struct virtio_pci *vp;
	unsigned index;
	uint16_t size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc, avail, used;
	struct vq vq;
	int kick_fd;                 /* eventfd */
	bool ioeventfd_bound;
	uint64_t bound_gpa;
};

struct virtio_pci {
	struct pci_dev pci;
	struct msix msix;
	pthread_mutex_t lock;        /* everything below; model calls happen under it */
	const struct virtio_device_ops *ops;
	void *dev;
	struct virtio_pci_host host;

	uint64_t device_features, driver_features;
	uint32_t dfselect, gfselect;
	uint16_t config_vector, queue_select;
	uint8_t status, config_generation, isr;
	bool intx_asserted;
	uint8_t cfg_cap;             /* offset of the PCI configuration access capability */
	struct virtio_pci_queue q[VIRTIO_MAX_QUEUES];
};

/*
 * Build the PCI function for a model (ops, dev) with its capabilities,
 * BAR and MSI-X; then the caller adds vp->pci to a bus with pci_bus_add().
 * The transport offers VERSION_1, INDIRECT_DESC and EVENT_IDX on top of
 * ops->features.
 */
int virtio_pci_init(struct virtio_pci *vp, const struct virtio_device_ops *ops, void *dev,
		    const struct virtio_pci_host *host, struct yun_err *err);
void virtio_pci_destroy(struct virtio_pci *vp);

/* BAR 0 handler (what the PCI bus calls; a harness may call it directly). */
void virtio_pci_bar_io(void *vp, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Run queue q now: what the I/O thread does when its kick eventfd fires. */
void virtio_pci_kick(struct virtio_pci *vp, unsigned q);

/* For models that complete requests later: after vq_push()es on q, maybe interrupt. */
void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q);

/*
 * For work a model finishes later (an io_uring completion, a timer): run
 * fn(dev, q, vq) under the device lock, as a kick runs queue_notify, so it
 * may vq_push() safely against a concurrent reset. When queue q is not live
 * (not enabled, not DRIVER_OK, or NEEDS_RESET) fn gets vq == NULL and must
 * only drop what it holds. A negative return sets NEEDS_RESET; otherwise the
 * driver is interrupted if it wants.
 */
typedef int (*virtio_pci_run_fn)(void *dev, unsigned q, struct vq *vq);
void virtio_pci_run(struct virtio_pci *vp, unsigned q, virtio_pci_run_fn fn);

/* The device went wrong: set DEVICE_NEEDS_RESET and tell the driver. */
void virtio_pci_needs_reset(struct virtio_pci *vp);

/*
 * The model changed its configuration space (a balloon target): bump
 * config_generation and raise the configuration-change interrupt once the
 * driver is up. Any thread except inside a model callback (takes the lock).
 */
void virtio_pci_config_changed(struct virtio_pci *vp);

/* ---- run-time operations (the control API) ------------------------------------ */

/* What a virtio_pci_call fn returns when the device's configuration space changed. */
#define VIRTIO_PCI_CONFIG_CHANGED 1

/*
 * Run fn(vp->dev, arg, err) under the device lock, serialised with kicks,
 * completions, timers and the driver's register accesses, from any thread
 * except inside a model callback (the lock is not recursive). fn returns
 * 0 (done), VIRTIO_PCI_CONFIG_CHANGED (done, and the configuration space
 * changed: the transport bumps config_generation and, once the driver is
 * up, raises the configuration-change interrupt) or a negative errno with
 * err filled, leaving the device as it was. Buffers fn pushed on a live
 * queue interrupt the driver as after a kick. Returns fn's result (0 for
 * VIRTIO_PCI_CONFIG_CHANGED).
 */
typedef int (*virtio_pci_call_fn)(void *dev, void *arg, struct yun_err *err);
int virtio_pci_call(struct virtio_pci *vp, virtio_pci_call_fn fn, void *arg,
		    struct yun_err *err);

/* ---- snapshot ------------------------------------------------------------- */

/*
 * The transport's state: the function's config space (BARs, command, the
 * MSI-X control word), feature words, status, ISR and INTx level, every
 * queue's registers and ring positions (vq_indices), the MSI-X table and
 * pending bits. The model's own state is a separate section.
 *
 * virtio_pci_load() is for a device freshly built with the same model and
 * geometry, its driver not yet started. It checks every value as the live
 * device would have (offered features equal, driver features a subset,
 * status bits coherent, queue sizes, ring alignment and rings in guest
 * RAM, MSI-X vector numbers) and fails naming the field. Then it re-creates
 * what the live device had done outside itself: BAR decoding and the
 * notify ioeventfds (through pci_dev_load), MSI-X routes, a raised INTx
 * line, and the model's activate() when DRIVER_OK was set.
 *
 * virtio_pci_resume(): after the model's state is loaded, kick every live
 * queue once (through its eventfd, so on the I/O thread once it runs), so
 * chains the driver posted before the save, whose kick is long gone, are
 * served.
 */
#define VIRTIO_PCI_SNAP_VERSION 1
void virtio_pci_save(struct virtio_pci *vp, struct snap_writer *w);
int virtio_pci_load(struct virtio_pci *vp, struct snap_reader *r);
void virtio_pci_resume(struct virtio_pci *vp);

#endif
