/* debug_exit.c - see debug_exit.h. */
#include "debug_exit.h"

#include <string.h>

void debug_exit_init(struct debug_exit *d, const struct vm_stopper *stop)
{
	memset(d, 0, sizeof(*d));
	if (stop)
		d->stop = *stop;
}

void debug_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debug_exit *d = opaque;
	uint32_t i, n;
	int v = 0;

	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	if (offset >= DEBUG_EXIT_NR_PORTS || len == 0)
		return;
	/* Only the bytes that land inside the 2-port window carry the value. */
	n = DEBUG_EXIT_NR_PORTS - offset;
	if (n > len)
		n = len;
	for (i = 0; i < n; i++)
		v |= data[i] << (8 * i);
	vm_stop_request(&d->stop, VM_STOP_DEBUG_EXIT, (v << 1) | 1);
}
