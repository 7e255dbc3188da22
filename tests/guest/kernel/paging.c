/* paging.c - one PD per GiB above 4 GiB, from a small static pool. */
#include "paging.h"
#include "lib.h"

#define PD_POOL 16 /* GiB that can be mapped above 4 GiB */
#define PTE_P	0x1ULL
#define PTE_W	0x2ULL
#define PTE_PS	0x80ULL
#define GIB	(1ULL << 30)

extern u64 boot_pdpt[512];

static u64 pd_pool[PD_POOL][512] __attribute__((aligned(4096), section(".noinit")));
static unsigned pd_used;

bool paging_map_identity(u64 base, u64 len)
{
	u64 end = (base + len + (1ULL << 21) - 1) & ~((1ULL << 21) - 1);

	base &= ~((1ULL << 21) - 1);
	for (u64 a = base; a < end; a += 1ULL << 21) {
		u64 gib = a / GIB;

		if (gib >= 512)
			return false; /* beyond the one PDPT */
		if (!(boot_pdpt[gib] & PTE_P)) {
			if (pd_used == PD_POOL)
				return false;
			u64 *pd = pd_pool[pd_used++];
			memset(pd, 0, 4096);
			boot_pdpt[gib] = (u64)(uintptr_t)pd | PTE_P | PTE_W;
		}
		u64 *pd = (u64 *)(uintptr_t)(boot_pdpt[gib] & ~0xfffULL);
		pd[(a >> 21) & 511] = a | PTE_P | PTE_W | PTE_PS;
	}
	write_cr3(read_cr3()); /* flush */
	return true;
}
