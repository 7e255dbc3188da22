/*
 * virtio_balloon_test.c - play the virtio-balloon driver through the modern
 * PCI transport (BAR 0's MMIO handler) over a real 64 MiB guest_mem, no KVM:
 * inflated pages leave the process's RSS and read back zero, deflate with
 * MUST_TELL_HOST backs them again, PFNs outside RAM are skipped and
 * counted, a request acts on at most BALLOON_MAX_PFNS PFNs however long its
 * chain, a length that is not whole PFNs breaks the queue, the host's
 * target reaches config space with a config interrupt, statistics are kept
 * and handed back on request, and the deflate_after_ms stop-gap fires.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "vmm/layout.h"
#include "vmm/virtio/balloon.h"
#include "vmm/virtio/pci.h"

#define QSZ      64
#define RINGS    0x10000ULL /* queue q: desc, avail, used at RINGS + q * 0x4000 + 0/0x1000/0x2000 */
#define PFN_BUF  0x40000ULL
#define STAT_BUF 0x50000ULL
#define AREA     (16ULL << 20) /* the pages the guest gives back */
#define AREA_LEN (16ULL << 20)
#define PAGE     4096ULL

static struct guest_mem gm;
static struct virtio_pci vp;
static struct balloon bal;
static unsigned fired[4];
static int intx_level;

static void rec_fire(void *ctx, unsigned v)
{
	(void)ctx;
	if (v < 4)
		fired[v]++;
}

static void rec_intx(void *ctx, uint32_t gsi, int level)
{
	(void)ctx;
	(void)gsi;
	intx_level = level;
}

static void host_config_changed(void *ctx)
{
	virtio_pci_config_changed(ctx);
}

static void host_kick(void *ctx, unsigned q)
{
	virtio_pci_kick(ctx, q);
}

static uint64_t rd(uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	virtio_pci_bar_io(&vp, off, (uint8_t *)&v, len, false);
	return v;
}

static void wr(uint64_t off, uint64_t v, uint32_t len)
{
	virtio_pci_bar_io(&vp, off, (uint8_t *)&v, len, true);
}

static void start(uint32_t target, uint32_t deflate_after_ms)
{
	struct virtio_pci_host host = {
		.gm = &gm,
		.msix = { .fire = rec_fire },
		.intx = { .set_level = rec_intx, .gsi = 16 },
	};
	struct balloon_host bh = { host_config_changed, host_kick, &vp };
	struct balloon_config cfg = { target, deflate_after_ms };
	struct yun_err err;

	memset(fired, 0, sizeof(fired));
	intx_level = 0;
	CHECK_EQ(balloon_init(&bal, &gm, &cfg, &bh, &err), 0);
	CHECK_EQ(virtio_pci_init(&vp, &balloon_ops, &bal, &host, &err), 0);
}

static void stop(void)
{
	virtio_pci_destroy(&vp);
	balloon_destroy(&bal);
}

static void enable_msix(void)
{
	uint8_t cap = vp.msix.cap;

	for (unsigned v = 0; v < 4; v++)
		wr(VIRTIO_PCI_MSIX_TABLE + 16 * v + 12, 0, 4); /* unmask */
	vp.pci.cfg[cap + 3] |= MSIX_CTRL_ENABLE >> 8;
	msix_config_write(&vp.msix, cap + 2, 2);
}

static uint64_t q_base(unsigned q)
{
	return RINGS + q * 0x4000ULL;
}

/* Reset, negotiate `features`, set up all three queues, DRIVER_OK. */
static void driver_up(uint64_t features)
{
	const uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)features, 4);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)(features >> 32), 4);
	wr(VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_FEATURES_OK, 1);
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK);
	wr(VIRTIO_PCI_COMMON_MSIX, 0, 2);
	gm_zero(&gm, RINGS, 3 * 0x4000);
	for (unsigned q = 0; q < 3; q++) {
		wr(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		wr(VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
		wr(VIRTIO_PCI_COMMON_Q_MSIX, q + 1, 2);
		wr(VIRTIO_PCI_COMMON_Q_DESC, q_base(q), 8);
		wr(VIRTIO_PCI_COMMON_Q_AVAIL, q_base(q) + 0x1000, 8);
		wr(VIRTIO_PCI_COMMON_Q_USED, q_base(q) + 0x2000, 8);
		wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	}
	wr(VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
}

static struct vring_used *used(unsigned q)
{
	return gm_ptr(&gm, q_base(q) + 0x2000, 6 + 8 * QSZ);
}

/* Post one device-readable buffer on queue q (descriptor = avail slot) and kick. */
static void post(unsigned q, uint64_t addr, uint32_t len)
{
	struct vring_desc *t = gm_ptr(&gm, q_base(q), 16 * QSZ);
	struct vring_avail *a = gm_ptr(&gm, q_base(q) + 0x1000, 6 + 2 * QSZ);
	uint16_t d = a->idx % QSZ;

	t[d] = (struct vring_desc){ addr, len, 0, 0 };
	a->ring[d] = d;
	a->idx++;
	wr(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, q, 2);
}

/* Send the PFNs of [gpa, gpa + len) on queue q, a page of them (BALLOON_MAX_PFNS) per request. */
static void send_range(unsigned q, uint64_t gpa, uint64_t len)
{
	uint32_t *pfns = gm_ptr(&gm, PFN_BUF, PAGE);

	for (uint64_t done = 0; done < len;) {
		uint32_t n = 0;

		for (; n < BALLOON_MAX_PFNS && done < len; n++, done += PAGE)
			pfns[n] = (uint32_t)((gpa + done) / PAGE);
		post(q, PFN_BUF, n * 4);
	}
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

/* Pages of [gpa, gpa + len) resident in host memory. */
static uint64_t resident_pages(uint64_t gpa, uint64_t len)
{
	static unsigned char vec[AREA_LEN / PAGE];
	uint64_t n = 0;

	if (mincore(gm_ptr(&gm, gpa, len), len, vec) != 0)
		return ~0ULL;
	for (uint64_t i = 0; i < len / PAGE; i++)
		n += vec[i] & 1;
	return n;
}

static void touch(uint64_t gpa, uint64_t len, uint8_t v)
{
	memset(gm_ptr(&gm, gpa, len), v, len);
}

static bool all_zero(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gm_ptr(&gm, gpa, len);

	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void test_identity(void)
{
	start(0, 0);
	CHECK_EQ(pci_cfg_get16(&vp.pci, PCI_DEVICE_ID), 0x1045);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_NUMQ, 2), 3);
	wr(VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_DF, 4) & 3, 3); /* MUST_TELL_HOST, STATS_VQ */
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), 0);
	stop();
}

static void test_inflate_gives_pages_back(void)
{
	long before, touched, after;

	start(AREA_LEN / PAGE, 0);
	driver_up(1ULL << VIRTIO_F_VERSION_1);
	enable_msix();
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), AREA_LEN / PAGE); /* the initial target */

	before = rss_kib();
	touch(AREA, AREA_LEN, 0xA5);
	touched = rss_kib();
	CHECK_EQ(resident_pages(AREA, AREA_LEN), AREA_LEN / PAGE);
	CHECK(touched - before >= (long)(AREA_LEN >> 10) * 3 / 4);

	send_range(BALLOON_INFLATEQ, AREA, AREA_LEN);
	CHECK_EQ(used(BALLOON_INFLATEQ)->idx, AREA_LEN / PAGE / BALLOON_MAX_PFNS);
	CHECK(!(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	CHECK(fired[1] >= 1);
	after = rss_kib();
	CHECK_EQ(resident_pages(AREA, AREA_LEN), 0);
	CHECK(touched - after >= (long)(AREA_LEN >> 10) * 3 / 4);
	fprintf(stderr, "  RSS KiB: before %ld, touched %ld, inflated %ld\n", before, touched,
		after);

	/* The driver reports what it holds; num_pages is not its to write. */
	wr(VIRTIO_PCI_DEVICE_OFF + 4, AREA_LEN / PAGE, 4);
	wr(VIRTIO_PCI_DEVICE_OFF, 7, 4);
	CHECK_EQ(balloon_actual(&bal), AREA_LEN / PAGE);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), AREA_LEN / PAGE);
	CHECK_EQ(bal.inflated_pages, AREA_LEN / PAGE);

	/* Deflate without MUST_TELL_HOST: nothing happens until the guest touches. */
	send_range(BALLOON_DEFLATEQ, AREA, AREA_LEN / 2);
	CHECK_EQ(resident_pages(AREA, AREA_LEN), 0);
	CHECK_EQ(bal.deflated_pages, AREA_LEN / PAGE / 2);
	touch(AREA, AREA_LEN / 2, 1);
	CHECK_EQ(resident_pages(AREA, AREA_LEN), AREA_LEN / PAGE / 2);
	/* Pages still in the balloon read back zero (reads map the zero page). */
	CHECK(all_zero(AREA + AREA_LEN / 2, AREA_LEN / 2));

	/* A reset drops the driver's balloon. */
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ(balloon_actual(&bal), 0);
	stop();
	gm_zero(&gm, AREA, AREA_LEN);
}

static void test_deflate_must_tell_host_backs_pages(void)
{
	start(0, 0);
	driver_up((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BALLOON_F_MUST_TELL_HOST));
	touch(AREA, 1 << 20, 3);
	send_range(BALLOON_INFLATEQ, AREA, 1 << 20);
	CHECK_EQ(resident_pages(AREA, 1 << 20), 0);
	send_range(BALLOON_DEFLATEQ, AREA, 1 << 20);
	CHECK_EQ(used(BALLOON_DEFLATEQ)->idx, 1);
	CHECK_EQ(resident_pages(AREA, 1 << 20), (1 << 20) / PAGE);
	CHECK(all_zero(AREA, 1 << 20));
	stop();
	gm_zero(&gm, AREA, 1 << 20);
}

/*
 * A PFN that is not guest RAM is skipped and counted, the request completes
 * and the good PFNs around it are acted on; the device stays up.
 */
static void bad_pfn(unsigned q, uint32_t pfn)
{
	uint32_t *pfns = gm_ptr(&gm, PFN_BUF, PAGE);

	start(0, 0);
	driver_up(1ULL << VIRTIO_F_VERSION_1);
	enable_msix();
	touch(AREA, 2 * PAGE, 7);
	pfns[0] = (uint32_t)(AREA / PAGE);
	pfns[1] = pfn;
	pfns[2] = (uint32_t)(AREA / PAGE) + 1;
	post(q, PFN_BUF, 12);
	CHECK(!(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	CHECK_EQ(used(q)->idx, 1);
	CHECK_EQ(fired[0], 0); /* no "needs reset" */
	CHECK_EQ(bal.bad_pfns, 1);
	CHECK_EQ(bal.excess_pfns, 0);
	if (q == BALLOON_INFLATEQ) {
		CHECK_EQ(bal.inflated_pages, 2);
		CHECK_EQ(resident_pages(AREA, 2 * PAGE), 0);
	} else {
		CHECK_EQ(bal.deflated_pages, 2);
	}
	/* A request of nothing but bad PFNs: all counted, nothing done. */
	for (unsigned i = 0; i < 3; i++)
		pfns[i] = pfn;
	post(q, PFN_BUF, 12);
	CHECK_EQ(used(q)->idx, 2);
	CHECK_EQ(bal.bad_pfns, 4);
	CHECK_EQ(bal.inflated_pages + bal.deflated_pages, 2);
	CHECK(!(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	stop();
	gm_zero(&gm, AREA, 2 * PAGE);
}

static void test_bad_pfns(void)
{
	uint32_t *pfns = gm_ptr(&gm, PFN_BUF, PAGE);

	bad_pfn(BALLOON_INFLATEQ, (uint32_t)(LAYOUT_PCI_MMIO32 / PAGE)); /* the PCI hole */
	bad_pfn(BALLOON_INFLATEQ, (uint32_t)(gm.size / PAGE));          /* just past RAM */
	bad_pfn(BALLOON_INFLATEQ, 0xFFFFFFFFu);
	bad_pfn(BALLOON_DEFLATEQ, (uint32_t)(gm.size / PAGE));
	bad_pfn(BALLOON_DEFLATEQ, 0xFFFFFFFFu);
	/* A length that is not whole PFNs breaks the queue; a reset brings it back. */
	start(0, 0);
	driver_up(1ULL << VIRTIO_F_VERSION_1);
	enable_msix();
	pfns[0] = (uint32_t)(AREA / PAGE);
	post(BALLOON_INFLATEQ, PFN_BUF, 6);
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ(used(BALLOON_INFLATEQ)->idx, 0);
	CHECK_EQ(fired[0], 1); /* config vector: "needs reset" */
	driver_up(1ULL << VIRTIO_F_VERSION_1);
	post(BALLOON_INFLATEQ, PFN_BUF, 4);
	CHECK(!(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	CHECK_EQ(used(BALLOON_INFLATEQ)->idx, 1);
	stop();
}

/* A request longer than BALLOON_MAX_PFNS: the first ones are acted on, the rest only counted. */
static void test_long_request_bounded(void)
{
	const uint32_t n = 4 * BALLOON_MAX_PFNS;
	uint32_t *pfns = gm_ptr(&gm, PFN_BUF, n * 4);
	uint64_t huge = 48ULL << 20; /* most of RAM as one buffer: 12 Mi "PFNs" */
	struct vring_desc *t;
	struct vring_avail *a;

	start(0, 0);
	driver_up(1ULL << VIRTIO_F_VERSION_1);
	touch(AREA, (uint64_t)n * PAGE, 9);
	for (uint32_t i = 0; i < n; i++)
		pfns[i] = (uint32_t)(AREA / PAGE) + i;
	post(BALLOON_INFLATEQ, PFN_BUF, n * 4);
	CHECK(!(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	CHECK_EQ(used(BALLOON_INFLATEQ)->idx, 1);
	CHECK_EQ(bal.inflated_pages, BALLOON_MAX_PFNS);
	CHECK_EQ(bal.excess_pfns, n - BALLOON_MAX_PFNS);
	CHECK_EQ(resident_pages(AREA, (uint64_t)n * PAGE), n - BALLOON_MAX_PFNS);
	CHECK(all_zero(AREA, (uint64_t)BALLOON_MAX_PFNS * PAGE));

	/*
	 * A chain as long as the queue allows, each buffer most of RAM: millions
	 * of entries, but no more work than a normal request (and no page of the
	 * rings or the PFN buffer is taken: the first entries are PFN 0 or AREA's).
	 */
	t = gm_ptr(&gm, q_base(BALLOON_DEFLATEQ), 16 * QSZ);
	a = gm_ptr(&gm, q_base(BALLOON_DEFLATEQ) + 0x1000, 6 + 2 * QSZ);
	for (unsigned i = 0; i < QSZ; i++)
		t[i] = (struct vring_desc){ AREA, (uint32_t)huge, VRING_DESC_F_NEXT, (uint16_t)(i + 1) };
	t[QSZ - 1].flags = 0;
	a->ring[0] = 0;
	a->idx = 1;
	wr(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * BALLOON_DEFLATEQ, 1, 2);
	CHECK(!(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	CHECK_EQ(used(BALLOON_DEFLATEQ)->idx, 1);
	CHECK_EQ(bal.excess_pfns, (n - BALLOON_MAX_PFNS) + QSZ * huge / 4 - BALLOON_MAX_PFNS);
	CHECK_EQ(bal.deflated_pages + bal.bad_pfns, BALLOON_MAX_PFNS);
	stop();
	gm_zero(&gm, AREA, (uint64_t)n * PAGE);
}

static void test_set_target_interrupts(void)
{
	uint8_t gen;

	start(0, 0);
	driver_up(1ULL << VIRTIO_F_VERSION_1);
	/* INTx: the ISR's config bit. */
	gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1);
	balloon_set_target(&bal, 1234);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), 1234);
	CHECK_EQ(balloon_target(&bal), 1234);
	CHECK(rd(VIRTIO_PCI_COMMON_CFGGEN, 1) != gen);
	CHECK_EQ(intx_level, 1);
	CHECK_EQ(rd(VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_CONFIG);
	CHECK_EQ(intx_level, 0);
	/* MSI-X: the config vector. */
	enable_msix();
	balloon_set_target(&bal, 0);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), 0);
	CHECK_EQ(fired[0], 1);
	/* Before DRIVER_OK the value changes but nobody is interrupted. */
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	balloon_set_target(&bal, 99);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), 99);
	CHECK_EQ(fired[0], 1);
	stop();
}

static void test_stats(void)
{
	uint8_t *buf = gm_ptr(&gm, STAT_BUF, 30);
	struct { uint16_t tag; uint64_t val; } __attribute__((packed)) st[3] = {
		{ BALLOON_S_MEMFREE, 100 << 20 }, { BALLOON_S_MEMTOT, 256 << 20 }, { 77, 5 },
	};
	struct balloon_stats s;

	start(0, 0);
	driver_up((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BALLOON_F_STATS_VQ));
	enable_msix();
	memcpy(buf, st, sizeof(st));
	post(BALLOON_STATSQ, STAT_BUF, sizeof(st));
	CHECK_EQ(used(BALLOON_STATSQ)->idx, 0); /* held until the host asks */
	balloon_get_stats(&bal, &s);
	CHECK_EQ(s.reports, 1);
	CHECK_EQ(s.val[BALLOON_S_MEMFREE], 100 << 20);
	CHECK_EQ(s.val[BALLOON_S_MEMTOT], 256 << 20);
	CHECK_EQ(s.present, (1u << BALLOON_S_MEMFREE) | (1u << BALLOON_S_MEMTOT));

	balloon_request_stats(&bal);
	CHECK_EQ(used(BALLOON_STATSQ)->idx, 1);
	CHECK_EQ(fired[3], 1);
	st[0].val = 50 << 20;
	memcpy(buf, st, sizeof(st));
	post(BALLOON_STATSQ, STAT_BUF, sizeof(st));
	balloon_get_stats(&bal, &s);
	CHECK_EQ(s.reports, 2);
	CHECK_EQ(s.val[BALLOON_S_MEMFREE], 50 << 20);
	/* Nothing held: a request is remembered, not an error. */
	balloon_request_stats(&bal);
	CHECK_EQ(used(BALLOON_STATSQ)->idx, 2);
	balloon_request_stats(&bal);
	CHECK_EQ(used(BALLOON_STATSQ)->idx, 2);
	stop();
}

static void test_deflate_after_ms(void)
{
	struct pollfd pfd;

	start(256, 20);
	driver_up(1ULL << VIRTIO_F_VERSION_1);
	enable_msix();
	CHECK(bal.timer_fd >= 0);
	wr(VIRTIO_PCI_DEVICE_OFF + 4, 100, 4); /* not there yet: no timer */
	pfd = (struct pollfd){ .fd = bal.timer_fd, .events = POLLIN };
	CHECK_EQ(poll(&pfd, 1, 60), 0);
	wr(VIRTIO_PCI_DEVICE_OFF + 4, 256, 4);
	CHECK_EQ(poll(&pfd, 1, 2000), 1);
	balloon_timer_fired(&bal);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), 0);
	CHECK_EQ(fired[0], 1);
	/* Once only. */
	balloon_set_target(&bal, 256);
	wr(VIRTIO_PCI_DEVICE_OFF + 4, 256, 4);
	CHECK_EQ(poll(&pfd, 1, 60), 0);
	stop();
}

static void *set_amounts(void *arg)
{
	struct yun_err err;

	(void)arg;
	for (unsigned i = 0; i < 2000; i++)
		CHECK_EQ(balloon_set_amount_mib(&bal, i % 64, &err), 0);
	return NULL;
}

/* Firecracker's /balloon and /balloon/statistics, from another thread while the driver runs. */
static void test_control_api(void)
{
	uint8_t *buf = gm_ptr(&gm, STAT_BUF, 30);
	struct { uint16_t tag; uint64_t val; } __attribute__((packed)) st[3] = {
		{ BALLOON_S_MEMFREE, 100 << 20 }, { BALLOON_S_MAJFLT, 7 }, { BALLOON_S_SWAP_IN, 0 },
	};
	struct yun_err err = { 0 };
	pthread_t t;
	json_t *j;

	start(0, 0);
	driver_up((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BALLOON_F_STATS_VQ));
	enable_msix();
	CHECK_EQ(balloon_set_amount_mib(&bal, 16, &err), 0);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), 16 * 256);
	CHECK_EQ(fired[0], 1);
	CHECK(balloon_set_amount_mib(&bal, 65, &err) < 0); /* the guest has 64 MiB */
	CHECK_STR_CONTAINS(err.msg, "balloon: amount_mib 65 is more than the guest's 64 MiB");
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), 16 * 256);
	CHECK_EQ(fired[0], 1);

	j = balloon_config_json(&bal);
	CHECK(j && json_integer_value(json_object_get(j, "amount_mib")) == 16);
	CHECK(json_is_false(json_object_get(j, "deflate_on_oom")));
	CHECK(json_integer_value(json_object_get(j, "stats_polling_interval_s")) == 0);
	json_decref(j);

	/* The driver holds 8 MiB so far and reported three figures. */
	wr(VIRTIO_PCI_DEVICE_OFF + 4, 8 * 256, 4);
	memcpy(buf, st, sizeof(st));
	post(BALLOON_STATSQ, STAT_BUF, sizeof(st));
	j = balloon_statistics_json(&bal);
	CHECK(j != NULL);
	CHECK_EQ(json_integer_value(json_object_get(j, "target_pages")), 4096);
	CHECK_EQ(json_integer_value(json_object_get(j, "actual_pages")), 2048);
	CHECK_EQ(json_integer_value(json_object_get(j, "target_mib")), 16);
	CHECK_EQ(json_integer_value(json_object_get(j, "actual_mib")), 8);
	CHECK_EQ(json_integer_value(json_object_get(j, "free_memory")), 100 << 20);
	CHECK_EQ(json_integer_value(json_object_get(j, "major_faults")), 7);
	CHECK(json_is_integer(json_object_get(j, "swap_in")));
	CHECK(!json_object_get(j, "total_memory")); /* not reported: absent */
	CHECK_EQ(json_object_size(j), 7);
	json_decref(j);

	/* The API thread sets targets while this one plays the driver reading them. */
	CHECK_EQ(pthread_create(&t, NULL, set_amounts, NULL), 0);
	for (unsigned i = 0; i < 2000; i++) {
		uint32_t v = (uint32_t)rd(VIRTIO_PCI_DEVICE_OFF, 4);

		CHECK(v % 256 == 0 && v < 64 * 256);
		rd(VIRTIO_PCI_COMMON_CFGGEN, 1);
	}
	pthread_join(t, NULL);
	CHECK_EQ(rd(VIRTIO_PCI_DEVICE_OFF, 4), 1999 % 64 * 256);
	stop();
}

int main(void)
{
	struct yun_err err;

	if (gm_init(&gm, 64ULL << 20, &err))
		return 1;
	RUN(test_identity);
	RUN(test_inflate_gives_pages_back);
	RUN(test_deflate_must_tell_host_backs_pages);
	RUN(test_bad_pfns);
	RUN(test_long_request_bounded);
	RUN(test_set_target_interrupts);
	RUN(test_stats);
	RUN(test_deflate_after_ms);
	RUN(test_control_api);
	gm_free(&gm);
	return CHECK_DONE();
}
