/* memory_test.c - guest RAM layout and the bounds-checked accessor. */
#include "vmm/layout.h"
#include "vmm/memory.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_small_guest_is_one_region(void)
{
	struct guest_mem gm;
	struct yun_err err;

	CHECK_EQ(gm_init(&gm, 256ULL << 20, &err), 0);
	CHECK_EQ(gm.nr_regions, 1);
	CHECK_EQ(gm_low_end(&gm), 256ULL << 20);
	CHECK(gm_ptr(&gm, 0, 4096) != NULL);
	CHECK(gm_ptr(&gm, (256ULL << 20) - 8, 8) != NULL);
	CHECK(gm_ptr(&gm, (256ULL << 20) - 7, 8) == NULL); /* straddles the end */
	CHECK(gm_ptr(&gm, 256ULL << 20, 1) == NULL);
	CHECK(gm_ptr(&gm, UINT64_MAX - 3, 8) == NULL);      /* would wrap */
	CHECK(gm_ptr(&gm, 16, UINT64_MAX) == NULL);
	gm_free(&gm);
}

static void test_big_guest_skips_pci_hole(void)
{
	struct guest_mem gm;
	struct yun_err err;
	uint32_t v = 0xdeadbeef, r = 0;

	CHECK_EQ(gm_init(&gm, 5ULL << 30, &err), 0);
	CHECK_EQ(gm.nr_regions, 2);
	CHECK_EQ(gm_low_end(&gm), LAYOUT_LOW_RAM_MAX);
	CHECK_EQ(gm.region[1].gpa, LAYOUT_HIGH_RAM);
	CHECK_EQ(gm.region[1].size, (5ULL << 30) - LAYOUT_LOW_RAM_MAX);
	CHECK(gm_ptr(&gm, LAYOUT_LOW_RAM_MAX, 1) == NULL);   /* the hole is not RAM */
	CHECK(gm_ptr(&gm, LAYOUT_IOAPIC, 4) == NULL);
	CHECK(gm_ptr(&gm, LAYOUT_LOW_RAM_MAX - 4, 8) == NULL); /* no access across the hole */
	CHECK_EQ(gm_write(&gm, LAYOUT_HIGH_RAM + 100, &v, 4), 0);
	CHECK_EQ(gm_read(&gm, LAYOUT_HIGH_RAM + 100, &r, 4), 0);
	CHECK_EQ(r, v);
	CHECK_EQ(gm_write(&gm, (5ULL << 30) + LAYOUT_HIGH_RAM - LAYOUT_LOW_RAM_MAX, &v, 4), -EFAULT);
	gm_free(&gm);
}

static void test_untouched_memory_costs_nothing(void)
{
	struct guest_mem gm;
	struct yun_err err;
	long before, after;

	before = rss_kib();
	CHECK_EQ(gm_init(&gm, 4ULL << 30, &err), 0);
	for (uint64_t off = 0; off < (10ULL << 20); off += 4096)
		*(volatile uint8_t *)gm_ptr(&gm, off, 1) = 1;
	after = rss_kib();
	/* Touching 10 MiB of a 4 GiB guest costs about 10 MiB, not 4 GiB. */
	CHECK(after - before >= 10 * 1024 - 64);
	CHECK(after - before < 16 * 1024);
	gm_free(&gm);
}

static void test_zero_keeps_untouched_ram_free(void)
{
	struct guest_mem gm;
	struct yun_err err;
	uint8_t *p;
	long before, after;

	CHECK_EQ(gm_init(&gm, 64ULL << 20, &err), 0);
	p = gm_ptr(&gm, 0, 64ULL << 20);
	memset(p + 0x100000, 0xAB, 0x3000);  /* dirty three pages */
	CHECK_EQ(gm_zero(&gm, 0x100010, 0x2FE0), 0); /* unaligned both ends */
	CHECK_EQ(p[0x10000F], 0xAB);
	for (uint64_t i = 0x100010; i < 0x102FF0; i++)
		if (p[i] != 0) {
			CHECK_EQ(p[i], 0);
			break;
		}
	CHECK_EQ(p[0x102FF0], 0xAB);
	/* Zeroing 32 MiB of untouched RAM leaves it untouched. */
	before = rss_kib();
	CHECK_EQ(gm_zero(&gm, 0x1000000, 32ULL << 20), 0);
	after = rss_kib();
	CHECK(after - before < 1024);
	CHECK_EQ(gm_zero(&gm, (64ULL << 20) - 8, 16), -EFAULT);
	gm_free(&gm);
}

static void test_bad_sizes_are_refused(void)
{
	struct guest_mem gm;
	struct yun_err err;

	CHECK(gm_init(&gm, 1ULL << 20, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "memory 1 MiB");
	CHECK(gm_init(&gm, (64ULL << 20) + 5, &err) < 0);
	CHECK(gm_init(&gm, 2ULL << 40, &err) < 0);
}

/* A snapshot's memory file mapped copy-on-write: its bytes show, writes stay private. */
static void test_file_backed_ram(void)
{
	char path[] = "/tmp/yun-memory-test.XXXXXX";
	int fd = mkstemp(path);
	struct guest_mem gm;
	struct yun_err err = { 0 };
	uint64_t v = 0x1122334455667788ULL, back = 0;

	CHECK(fd >= 0);
	unlink(path);
	CHECK_EQ(ftruncate(fd, 16 << 20), 0);
	CHECK_EQ(pwrite(fd, &v, sizeof(v), 0x12340), (ssize_t)sizeof(v));
	CHECK(gm_init_file(&gm, 32 << 20, fd, &err) < 0); /* wrong size */
	CHECK_STR_CONTAINS(err.msg, "memory file");
	CHECK_EQ(gm_init_file(&gm, 16 << 20, fd, &err), 0);
	CHECK_EQ(gm.nr_regions, 1);
	CHECK_EQ(gm_read(&gm, 0x12340, &back, sizeof(back)), 0);
	CHECK_EQ(back, v);
	v = 0;
	CHECK_EQ(gm_write(&gm, 0x12340, &v, sizeof(v)), 0);
	CHECK_EQ(pread(fd, &back, sizeof(back), 0x12340), (ssize_t)sizeof(back));
	CHECK_EQ(back, 0x1122334455667788ULL); /* the file is never written */
	gm_free(&gm);
	close(fd);
}

int main(void)
{
	RUN(test_small_guest_is_one_region);
	RUN(test_big_guest_skips_pci_hole);
	RUN(test_untouched_memory_costs_nothing);
	RUN(test_zero_keeps_untouched_ram_free);
	RUN(test_bad_sizes_are_refused);
	RUN(test_file_backed_ram);
	return CHECK_DONE();
}
