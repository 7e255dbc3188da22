/*
 * virtio_balloon.c - case "virtio-balloon": memory given back to the host
 * and taken again, which the harness sees in the VMM's RSS.
 *
 * The guest picks a 64 MiB range of its usable RAM (above 64 MiB, clear of
 * the kernel), writes one word in each page so the VMM has to back them
 * ("YT BALLOON TOUCHED"), then waits for the host to set a target
 * (config num_pages > 0), inflates by that many pages of the range
 * (PFNs on inflateq), writes `actual` and says "YT BALLOON INFLATED <n>".
 * It then waits for a line on COM1, deflates to the new target (PFNs on
 * deflateq), writes `actual`, touches the pages again and says
 * "YT BALLOON DEFLATED <n>"; a last line on COM1 ends the case (the harness
 * measures RSS in between). With VIRTIO_BALLOON_F_STATS_VQ the guest keeps
 * one statistics buffer (free and total memory) with the device, refilled
 * whenever the device hands it back; each report is printed as
 * "YT BALLOON STATS". Queues complete by polling.
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/lib.h"
#include "../kernel/serial.h"
#include "../kernel/virtio_pci.h"

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ	1

#define VIRTIO_BALLOON_S_MEMFREE 4
#define VIRTIO_BALLOON_S_MEMTOT	 5
#define VIRTIO_BALLOON_S_AVAIL	 6

#define CFG_NUM_PAGES 0
#define CFG_ACTUAL    4

#define INFLATEQ 0
#define DEFLATEQ 1
#define STATSQ	 2

#define PAGE	     4096u
#define REGION_BYTES (64u << 20)
#define REGION_PAGES (REGION_BYTES / PAGE)
#define PFNS_PER_REQ 1024u /* one 4 KiB page of u32 PFNs per request */

struct balloon_stat {
	u16 tag;
	u64 val;
} __attribute__((packed));

extern char kernel_end[];

static struct virtio_dev vd;
static u64 region;	  /* guest-physical base of the 64 MiB range */
static u32 inflated;	  /* pages of the range the host has now */
static u64 ram_total;	  /* usable RAM in the memory map */
static u32 *pfns;	  /* one request's PFN array */
static struct balloon_stat *stats;
static bool have_stats;
static u32 stats_reports;

static bool find_region(void)
{
	u64 low = (u64)(uintptr_t)kernel_end > (64u << 20) ? (u64)(uintptr_t)kernel_end : 64u << 20;

	for (u32 i = 0; i < boot.nmap; i++) {
		const struct mem_range *r = &boot.map[i];
		if (r->type != MEM_RAM)
			continue;
		ram_total += r->len;
		if (region)
			continue;
		u64 base = (r->base > low ? r->base : low);
		base = (base + (2u << 20) - 1) & ~((u64)(2u << 20) - 1);
		if (base + REGION_BYTES <= r->base + r->len && base + REGION_BYTES <= 0xc0000000ULL)
			region = base;
	}
	return region != 0;
}

/* One write per page: the VMM must give each page memory. */
static void touch(u32 first, u32 count, u64 salt)
{
	for (u32 i = first; i < first + count; i++)
		*(volatile u64 *)(uintptr_t)(region + (u64)i * PAGE) = salt ^ i;
}

static void stats_post(void)
{
	const char *why = "ring full";
	u64 free = ram_total - ((u64)(uintptr_t)kernel_end - 0x100000) - (u64)inflated * PAGE;

	stats[0] = (struct balloon_stat){.tag = VIRTIO_BALLOON_S_MEMFREE, .val = free};
	stats[1] = (struct balloon_stat){.tag = VIRTIO_BALLOON_S_MEMTOT, .val = ram_total};
	stats[2] = (struct balloon_stat){.tag = VIRTIO_BALLOON_S_AVAIL, .val = free};
	struct vq_buf b = {.addr = stats, .len = 3 * sizeof(*stats)};
	if (vq_add(&vd, STATSQ, &b, 1, false) < 0)
		yt_fail("statsq: %s", why);
	vq_kick(&vd, STATSQ);
	stats_reports++;
	yt_printf("YT BALLOON STATS free=%lu total=%lu report=%u\n", (unsigned long)free,
		  (unsigned long)ram_total, stats_reports);
}

/* The device returns the stats buffer when it wants fresh numbers. */
static void stats_service(void)
{
	u16 id;
	u32 len;

	if (have_stats && vq_pop(&vd, STATSQ, &id, &len))
		stats_post();
}

/* Send PFNs of pages [first, first + count) of the range on queue q. */
static void send_pfns(u16 q, u32 first, u32 count)
{
	const char *why;
	u32 base_pfn = (u32)(region / PAGE);

	for (u32 done = 0; done < count;) {
		u32 n = count - done < PFNS_PER_REQ ? count - done : PFNS_PER_REQ;
		for (u32 i = 0; i < n; i++)
			pfns[i] = base_pfn + first + done + i;
		struct vq_buf b = {.addr = pfns, .len = n * 4};
		if (vq_request(&vd, q, &b, 1, false, VQ_POLL, 5000, &why) < 0)
			yt_fail("%s of %u pages: %s (status 0x%x)",
				q == INFLATEQ ? "inflate" : "deflate", n, why, virtio_status(&vd));
		done += n;
	}
}

/* Wait for one line on COM1 (polled), serving the stats queue meanwhile. */
static void wait_serial_line(const char *what)
{
	u64 end = clock_ms() + 30000;

	for (;;) {
		while (uart_in(UART_LSR) & LSR_DR)
			if (uart_in(UART_RBR) == '\n')
				return;
		stats_service();
		if (clock_ms() > end)
			yt_fail("no line on the serial input (%s) in 30 s", what);
		delay_ms(10);
	}
}

void case_virtio_balloon(void)
{
	const char *why;
	u64 optional = (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC) |
		       (1ULL << VIRTIO_BALLOON_F_MUST_TELL_HOST) | (1ULL << VIRTIO_BALLOON_F_STATS_VQ);

	if (!find_region())
		yt_fail("no 64 MiB of usable RAM above 64 MiB and below 3 GiB");
	if (!virtio_open(&vd, VIRTIO_ID_BALLOON, optional, false, &why))
		yt_fail("virtio-balloon: %s", why);
	have_stats = vd.features & (1ULL << VIRTIO_BALLOON_F_STATS_VQ);
	if (!virtio_setup_queue(&vd, INFLATEQ, &why) || !virtio_setup_queue(&vd, DEFLATEQ, &why) ||
	    (have_stats && !virtio_setup_queue(&vd, STATSQ, &why)))
		yt_fail("virtio-balloon queues: %s", why);
	virtio_driver_ok(&vd);
	interrupts_init(); /* the clock for the waits (the queues themselves are polled) */
	clock_start();
	pfns = virtio_alloc(PFNS_PER_REQ * 4);
	stats = virtio_alloc(PAGE);
	yt_printf("YT BALLOON CONFIG num_pages=%u actual=%u stats=%d must_tell_host=%d "
		  "region=0x%lx pages=%u\n",
		  virtio_cfg32(&vd, CFG_NUM_PAGES), virtio_cfg32(&vd, CFG_ACTUAL), have_stats,
		  !!(vd.features & (1ULL << VIRTIO_BALLOON_F_MUST_TELL_HOST)),
		  (unsigned long)region, REGION_PAGES);
	if (have_stats)
		stats_post(); /* the initial buffer (virtio spec 5.5.6.3) */

	u64 t0 = clock_ms();
	touch(0, REGION_PAGES, 0x5a5a5a5a00000000ULL);
	yt_printf("YT BALLOON TOUCHED %u ms=%lu\n", REGION_PAGES, (unsigned long)(clock_ms() - t0));

	/* The host's target: pages it wants (config changes are polled). */
	u32 target = 0;
	for (u64 end = clock_ms() + 30000; !(target = virtio_cfg32(&vd, CFG_NUM_PAGES));) {
		stats_service();
		if (clock_ms() > end)
			yt_fail("the host set no balloon target (num_pages) in 30 s");
		delay_ms(10);
	}
	u32 n = target < REGION_PAGES ? target : REGION_PAGES;
	t0 = clock_ms();
	send_pfns(INFLATEQ, 0, n);
	inflated = n;
	virtio_cfg_write32(&vd, CFG_ACTUAL, inflated);
	yt_printf("YT BALLOON INFLATED %u target=%u ms=%lu\n", n, target,
		  (unsigned long)(clock_ms() - t0));
	wait_serial_line("deflate");

	target = virtio_cfg32(&vd, CFG_NUM_PAGES);
	u32 give_back = target < inflated ? inflated - target : 0;
	t0 = clock_ms();
	send_pfns(DEFLATEQ, inflated - give_back, give_back);
	inflated -= give_back;
	virtio_cfg_write32(&vd, CFG_ACTUAL, inflated);
	touch(inflated, give_back, 0xa5a5a5a500000000ULL);
	yt_printf("YT BALLOON DEFLATED %u target=%u actual=%u ms=%lu\n", give_back, target,
		  inflated, (unsigned long)(clock_ms() - t0));
	wait_serial_line("done");
	yt_printf("YT BALLOON STATS_REPORTS %u\n", stats_reports);
	yt_pass();
}
