/*
 * io_bus.h - address-range dispatch for port I/O (and later MMIO) exits.
 *
 * Devices register [base, base + len) with a handler. The bus is built
 * before the vCPUs start and is read-only afterwards, so dispatch takes no
 * lock; devices that share state between vCPU and I/O threads lock it
 * themselves. Reads nobody claims return all ones, writes nobody claims
 * are dropped (as on real hardware with no device on the bus).
 */
#ifndef YUN_VMM_IO_BUS_H
#define YUN_VMM_IO_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/err.h"

/*
 * One access of `len` bytes (1, 2, 4 or 8) at `offset` from the registered
 * base. On a read the handler fills data[0..len); on a write it consumes it.
 */
typedef void (*io_handler_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      bool is_write);

struct io_range {
	uint64_t base;
	uint64_t len;
	io_handler_fn handler;
	void *opaque;
	const char *name;
};

#define IO_BUS_MAX 64

struct io_bus {
	struct io_range range[IO_BUS_MAX];
	int nr;            /* kept sorted by base */
};

void io_bus_init(struct io_bus *bus);

/* Register a range; -EEXIST if it overlaps one already there. */
int io_bus_add(struct io_bus *bus, const char *name, uint64_t base, uint64_t len,
	       io_handler_fn handler, void *opaque, struct yun_err *err);

/* Dispatch one access; returns false when no device claims addr. */
bool io_bus_access(const struct io_bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
		   bool is_write);

#endif
