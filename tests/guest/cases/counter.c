/*
 * counter.c - case "counter": a guest that keeps going, for pause/resume,
 * snapshots and live migration. It rewrites a region of memory one 4 KiB
 * page at a time (each step a new pattern), keeps the sum of all the
 * region's words as it goes, and every yt.period milliseconds (LAPIC
 * clock, default 50) re-adds the whole region and prints
 *
 *   YT COUNT <n> steps=<s> sum=<hex>
 *
 * n counts lines from 0. If the re-added sum differs from the kept one
 * (memory lost or corrupted under the guest, e.g. a page a migration did
 * not carry) it prints YT FAIL. With yt.count=N it passes after line N;
 * by default it never ends. yt.region=KIB sets the region (default 64,
 * at 32 MiB; guest kernel code is emulated on PVM hosts, so keep it small).
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/lib.h"
#include "../kernel/trap.h"

#define REGION_BASE 0x2000000ULL
#define PAGE_WORDS  512

static u64 opt(const char *key, u64 dflt)
{
	size_t len;
	u64 v;
	const char *s = cmdline_get(key, &len);

	if (!s)
		return dflt;
	if (!parse_u64(s, len, &v))
		yt_fail("%s: not a number", key);
	return v;
}

static u64 mix(u64 step, u64 i)
{
	u64 x = step * 0x9E3779B97F4A7C15ULL ^ (i + 1) * 0xBF58476D1CE4E5B9ULL;

	return x ^ (x >> 29);
}

void case_counter(void)
{
	u64 kib = opt("yt.region", 64), period = opt("yt.period", 50), count = opt("yt.count", 0);
	u64 words, npages, sum = 0, steps = 0, n = 0, last;
	volatile u64 *region = (volatile u64 *)REGION_BASE;

	if (kib < 4 || kib > 64 * 1024 || kib % 4)
		yt_fail("yt.region=%lu: 4 to 65536 KiB, a multiple of 4", (unsigned long)kib);
	words = kib * 1024 / 8;
	npages = words / PAGE_WORDS;
	for (u64 i = 0; i < words; i++) {
		region[i] = mix(0, i);
		sum += region[i];
	}
	interrupts_init();
	clock_start();
	last = clock_ms();
	for (;;) {
		u64 page = steps % npages, now;

		steps++;
		for (u64 i = page * PAGE_WORDS; i < (page + 1) * PAGE_WORDS; i++) {
			u64 w = mix(steps, i);

			sum += w - region[i];
			region[i] = w;
		}
		now = clock_ms();
		if (now - last < period)
			continue;
		last = now;
		u64 check = 0;
		for (u64 i = 0; i < words; i++)
			check += region[i];
		if (check != sum)
			yt_fail("region sum 0x%lx, expected 0x%lx after %lu steps", (unsigned long)check,
				(unsigned long)sum, (unsigned long)steps);
		yt_printf("YT COUNT %lu steps=%lu sum=0x%lx\n", (unsigned long)n,
			  (unsigned long)steps, (unsigned long)sum);
		if (count && n >= count)
			yt_pass();
		n++;
	}
}
