/*
 * msix.h - MSI-X for a PCI device model: the capability in configuration
 * space, the vector table and pending-bit array in one of its BARs, and
 * delivery through two host callbacks, so the model never sees KVM.
 *
 *   route(ctx, vector, addr, data, enabled): the guest programmed (or
 *     masked/unmasked, enabled/disabled) a vector. The VM turns it into a
 *     KVM GSI route of type MSI; a harness may ignore it.
 *   fire(ctx, vector): deliver the vector now. The VM writes the vector's
 *     irqfd (an eventfd write, so any thread may fire); a harness records.
 *
 * msix_signal() is what the device calls: it fires, or sets the pending
 * bit when the vector or the whole function is masked; unmasking later
 * fires what was pending (PCI 3.0, 6.8.3.5).
 */
#ifndef YUN_VMM_PCI_MSIX_H
#define YUN_VMM_PCI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define MSIX_MAX_VECTORS 64
#define MSIX_ENTRY_SIZE  16
#define MSIX_NO_VECTOR   0xFFFF

#define MSIX_CTRL_ENABLE   0x8000
#define MSIX_CTRL_FN_MASK  0x4000

struct msix_host {
	void (*route)(void *ctx, unsigned vector, uint64_t addr, uint32_t data, bool enabled);
	void (*fire)(void *ctx, unsigned vector);
	void *ctx;
};

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct msix {
	pthread_mutex_t lock;
	struct pci_dev *dev;
	uint8_t cap;            /* capability offset in config space */
	uint16_t nr;
	bool enabled, fn_masked;
	struct msix_entry table[MSIX_MAX_VECTORS];
	uint64_t pending;       /* one bit per vector */
	struct msix_host host;
};

/*
 * Add the capability to dev: nr vectors, table at table_off and PBA at
 * pba_off, both in BAR `bar`. 0 or -ENOSPC / -EINVAL.
 */
int msix_init(struct msix *m, struct pci_dev *dev, uint16_t nr, int bar, uint32_t table_off,
	      uint32_t pba_off, const struct msix_host *host);
void msix_destroy(struct msix *m);

/* Forward from the device's pci_dev_ops.config_write. */
void msix_config_write(struct msix *m, uint32_t off, uint32_t len);

/* BAR accesses inside the table [table_off, +16 * nr) and the PBA. */
void msix_table_io(struct msix *m, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void msix_pba_io(struct msix *m, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* MSI-X enabled by the guest (the device then does not use INTx). */
bool msix_enabled(struct msix *m);

/* Deliver (or mark pending) `vector`; false if MSI-X is off or vector out of range. */
bool msix_signal(struct msix *m, uint16_t vector);

/*
 * Snapshot: the vector table and pending bits (enable and function mask
 * are in config space, loaded first by pci_dev_load). Loading checks the
 * vector count and reserved bits, then routes every vector the guest can
 * receive through host.route, as its programming did on the live device.
 */
void msix_save(struct msix *m, struct snap_writer *w);
int msix_load(struct msix *m, struct snap_reader *r);

#endif
