/* e820.c - the guest memory map; see e820.h. */
#include "e820.h"

#include "../layout.h"

static unsigned e820_add(struct e820_entry *map, unsigned nr, uint64_t start, uint64_t end,
			 uint32_t type)
{
	if (end <= start || nr >= E820_MAX_ENTRIES)
		return nr;
	map[nr] = (struct e820_entry){ .addr = start, .size = end - start, .type = type };
	return nr + 1;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

unsigned e820_build(const struct guest_mem *gm, struct e820_entry map[E820_MAX_ENTRIES])
{
	uint64_t low_end = gm_low_end(gm);
	unsigned nr = 0;

	/* Clipped to low_end so that a (test) guest_mem smaller than 1 MiB stays honest. */
	nr = e820_add(map, nr, 0, min_u64(LAYOUT_EBDA, low_end), E820_RAM);
	nr = e820_add(map, nr, LAYOUT_EBDA, LAYOUT_HIMEM, E820_RESERVED);
	nr = e820_add(map, nr, LAYOUT_HIMEM, low_end, E820_RAM);
	nr = e820_add(map, nr, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM + LAYOUT_PCI_ECAM_SZ,
		      E820_RESERVED);
	for (int i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->region[i];

		if (r->gpa >= LAYOUT_HIGH_RAM)
			nr = e820_add(map, nr, r->gpa, r->gpa + r->size, E820_RAM);
	}
	return nr;
}

uint64_t e820_total(const struct e820_entry *map, unsigned nr, uint32_t type)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < nr; i++)
		if (map[i].type == type)
			sum += map[i].size;
	return sum;
}
