/* io_bus.c - see io_bus.h. */
#include "io_bus.h"

#include <errno.h>
#include <string.h>

void io_bus_init(struct io_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
}

int io_bus_add(struct io_bus *bus, const char *name, uint64_t base, uint64_t len,
	       io_handler_fn handler, void *opaque, struct yun_err *err)
{
	int i;

	if (len == 0 || base + len < base)
		return yun_err_set(err, EINVAL, "%s: bad range 0x%llx+0x%llx", name,
				   (unsigned long long)base, (unsigned long long)len);
	if (bus->nr == IO_BUS_MAX)
		return yun_err_set(err, ENOSPC, "%s: I/O bus full", name);
	for (i = 0; i < bus->nr; i++) {
		const struct io_range *r = &bus->range[i];

		if (base < r->base + r->len && r->base < base + len)
			return yun_err_set(err, EEXIST, "%s: 0x%llx+0x%llx overlaps %s", name,
					   (unsigned long long)base, (unsigned long long)len,
					   r->name);
	}
	for (i = bus->nr; i > 0 && bus->range[i - 1].base > base; i--)
		bus->range[i] = bus->range[i - 1];
	bus->range[i] = (struct io_range){ base, len, handler, opaque, name };
	bus->nr++;
	return 0;
}

bool io_bus_access(const struct io_bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
		   bool is_write)
{
	int lo = 0, hi = bus->nr - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		const struct io_range *r = &bus->range[mid];

		if (addr < r->base) {
			hi = mid - 1;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			r->handler(r->opaque, addr - r->base, data, len, is_write);
			return true;
		}
	}
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}
