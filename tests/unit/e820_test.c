/* e820_test.c - the guest memory map a kernel is told about. */
#include "vmm/boot/e820.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include "check.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/* Entries sorted, non-overlapping, non-empty. */
static void check_well_formed(const struct e820_entry *map, unsigned nr)
{
	for (unsigned i = 0; i < nr; i++) {
		CHECK(map[i].size > 0);
		if (i)
			CHECK(map[i].addr >= map[i - 1].addr + map[i - 1].size);
	}
}

static void test_small_guest(void)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct guest_mem gm;
	struct yun_err err;
	unsigned nr;

	CHECK_EQ(gm_init(&gm, 256 * MIB, &err), 0);
	nr = e820_build(&gm, map);
	CHECK_EQ(nr, 4);
	check_well_formed(map, nr);
	CHECK_EQ(map[0].addr, 0);
	CHECK_EQ(map[0].size, LAYOUT_EBDA);
	CHECK_EQ(map[0].type, E820_RAM);
	CHECK_EQ(map[1].addr, LAYOUT_EBDA);
	CHECK_EQ(map[1].addr + map[1].size, LAYOUT_HIMEM);
	CHECK_EQ(map[1].type, E820_RESERVED);
	CHECK_EQ(map[2].addr, LAYOUT_HIMEM);
	CHECK_EQ(map[2].addr + map[2].size, 256 * MIB);
	CHECK_EQ(map[2].type, E820_RAM);
	CHECK_EQ(map[3].addr, LAYOUT_PCI_ECAM);
	CHECK_EQ(map[3].size, LAYOUT_PCI_ECAM_SZ);
	CHECK_EQ(map[3].type, E820_RESERVED);
	/* All RAM but the EBDA/BIOS area the tables live in. */
	CHECK_EQ(e820_total(map, nr, E820_RAM), 256 * MIB - (LAYOUT_HIMEM - LAYOUT_EBDA));
	gm_free(&gm);
}

static void test_big_guest_has_hole(void)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct guest_mem gm;
	struct yun_err err;
	unsigned nr;

	CHECK_EQ(gm_init(&gm, 5 * GIB, &err), 0);
	nr = e820_build(&gm, map);
	CHECK_EQ(nr, 5);
	check_well_formed(map, nr);
	CHECK_EQ(e820_total(map, nr, E820_RAM), 5 * GIB - (LAYOUT_HIMEM - LAYOUT_EBDA));
	for (unsigned i = 0; i < nr; i++) {
		uint64_t end = map[i].addr + map[i].size;

		/* No RAM in the 32-bit hole [3 GiB, 4 GiB). */
		if (map[i].type == E820_RAM)
			CHECK(end <= LAYOUT_LOW_RAM_MAX || map[i].addr >= LAYOUT_HIGH_RAM);
	}
	CHECK_EQ(map[2].addr + map[2].size, LAYOUT_LOW_RAM_MAX);
	CHECK_EQ(map[4].addr, LAYOUT_HIGH_RAM);
	CHECK_EQ(map[4].size, 2 * GIB);
	CHECK_EQ(map[4].type, E820_RAM);
	gm_free(&gm);
}

static void test_exactly_3gib_has_no_high_ram(void)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct guest_mem gm;
	struct yun_err err;
	unsigned nr;

	CHECK_EQ(gm_init(&gm, 3 * GIB, &err), 0);
	nr = e820_build(&gm, map);
	CHECK_EQ(nr, 4);
	CHECK_EQ(e820_total(map, nr, E820_RAM), 3 * GIB - (LAYOUT_HIMEM - LAYOUT_EBDA));
	gm_free(&gm);
}

int main(void)
{
	RUN(test_small_guest);
	RUN(test_big_guest_has_hole);
	RUN(test_exactly_3gib_has_no_high_ram);
	return CHECK_DONE();
}
