/*
 * blk_harness.c - virtio-blk throughput in-process: this program plays the
 * guest driver (split queue in a real guest_mem, notify writes through the
 * PCI transport, no KVM) against src/vmm/virtio/blk.c on one thread, and
 * keeps `iodepth` reads in flight for `seconds`.
 *
 *   blk_harness FILE randread|seqread BS IODEPTH SECONDS [direct]
 *
 * Prints one JSON object: backend, ops, bytes, seconds, iops, mib_s, and the
 * CPU seconds this process used (user + system). YUN_BLK_NO_URING=1 selects
 * the synchronous backend, as for yun-vmm. bench/blk.py runs it beside fio.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "vmm/virtio/blk.h"
#include "vmm/virtio/pci.h"

#define QSZ   256
#define DESC  0x10000ULL
#define AVAIL 0x14000ULL
#define USED  0x15000ULL
#define HDRS  0x20000ULL
#define STAT  0x30000ULL
#define DATA  0x100000ULL

static struct guest_mem gm;
static struct virtio_pci vp;
static struct blk blk;

static void wr(uint64_t off, uint64_t v, uint32_t len)
{
	virtio_pci_bar_io(&vp, off, (uint8_t *)&v, len, true);
}

static uint64_t rd(uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	virtio_pci_bar_io(&vp, off, (uint8_t *)&v, len, false);
	return v;
}

static void driver_init(void)
{
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	uint64_t f;

	wr(VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	f = rd(VIRTIO_PCI_COMMON_DF, 4);
	wr(VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	f |= rd(VIRTIO_PCI_COMMON_DF, 4) << 32;
	f &= ~(1ULL << VIRTIO_F_RING_EVENT_IDX); /* a kick per batch, interrupts ignored */
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)f, 4);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)(f >> 32), 4);
	s |= VIRTIO_STATUS_FEATURES_OK;
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	wr(VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
	wr(VIRTIO_PCI_COMMON_Q_DESC, DESC, 8);
	wr(VIRTIO_PCI_COMMON_Q_AVAIL, AVAIL, 8);
	wr(VIRTIO_PCI_COMMON_Q_USED, USED, 8);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	wr(VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_DRIVER_OK, 1);
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct virtio_pci_host host = { .gm = &gm };
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct yun_err err;
	struct blk_params p = { 0 };
	uint64_t bs, depth, seconds, blocks, next = 0, seed = 88172645463325252ULL;
	uint64_t ops = 0, errors = 0;
	uint16_t seen = 0;
	bool random;
	double t0, t1, c0, c1;

	if (argc < 6) {
		fprintf(stderr, "usage: %s FILE randread|seqread BS IODEPTH SECONDS [direct]\n",
			argv[0]);
		return 2;
	}
	p.path = argv[1];
	p.readonly = true;
	p.direct = argc > 6 && !strcmp(argv[6], "direct");
	random = !strcmp(argv[2], "randread");
	bs = strtoull(argv[3], NULL, 0);
	depth = strtoull(argv[4], NULL, 0);
	seconds = strtoull(argv[5], NULL, 0);
	if (!bs || bs % 512 || !depth || depth > QSZ / 3 || depth * bs > (200ULL << 20)) {
		fprintf(stderr, "bad BS or IODEPTH\n");
		return 2;
	}
	if (gm_init(&gm, 256ULL << 20, &err) || blk_open(&blk, &p, &err) ||
	    virtio_pci_init(&vp, blk_device_ops(&blk), &blk, &host, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	blocks = blk.size / bs;
	driver_init();
	desc = gm_ptr(&gm, DESC, vq_desc_bytes(QSZ));
	avail = gm_ptr(&gm, AVAIL, vq_avail_bytes(QSZ));
	used = gm_ptr(&gm, USED, vq_used_bytes(QSZ));

	/* Slot i: descriptors 3i..3i+2 (header, data, status), reused for every request. */
	for (uint16_t i = 0; i < depth; i++) {
		desc[3 * i] = (struct vring_desc){ HDRS + 16 * i, 16, VRING_DESC_F_NEXT, 3 * i + 1 };
		desc[3 * i + 1] = (struct vring_desc){ DATA + bs * i, (uint32_t)bs,
						       VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
						       3 * i + 2 };
		desc[3 * i + 2] = (struct vring_desc){ STAT + i, 1, VRING_DESC_F_WRITE, 0 };
	}

	t0 = now();
	c0 = cpu_seconds();
	t1 = t0 + (double)seconds;
	/* Post every slot once, then re-post each as it completes. */
	for (uint16_t i = 0; i < depth; i++) {
		uint64_t *h = gm_ptr(&gm, HDRS + 16 * i, 16);
		uint64_t b = random ? xorshift(&seed) % blocks : next++ % blocks;

		h[0] = VIRTIO_BLK_T_IN;
		h[1] = b * bs / 512;
		avail->ring[avail->idx % QSZ] = 3 * i;
		__atomic_store_n(&avail->idx, (uint16_t)(avail->idx + 1), __ATOMIC_RELEASE);
	}
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	for (;;) {
		uint16_t idx = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
		bool posted = false, done = now() >= t1;

		while (seen != idx) {
			uint16_t head = (uint16_t)used->ring[seen % QSZ].id, i = head / 3;
			uint64_t *h = gm_ptr(&gm, HDRS + 16 * i, 16);
			uint64_t b = random ? xorshift(&seed) % blocks : next++ % blocks;

			seen++;
			ops++;
			if (*(uint8_t *)gm_ptr(&gm, STAT + i, 1) != VIRTIO_BLK_S_OK)
				errors++;
			if (done)
				continue;
			h[1] = b * bs / 512;
			avail->ring[avail->idx % QSZ] = head;
			__atomic_store_n(&avail->idx, (uint16_t)(avail->idx + 1), __ATOMIC_RELEASE);
			posted = true;
		}
		if (done && (uint16_t)(avail->idx - seen) == 0)
			break;
		if (posted)
			wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
		if (blk_uses_uring(&blk) && used->idx == seen) {
			struct pollfd pfd = { .fd = blk_event_fd(&blk), .events = POLLIN };

			poll(&pfd, 1, 1000);
			virtio_pci_run(&vp, 0, blk_complete);
		}
	}
	t1 = now();
	c1 = cpu_seconds();
	printf("{\"backend\": \"%s\", \"mode\": \"%s\", \"bs\": %llu, \"iodepth\": %llu, "
	       "\"direct\": %s, \"ops\": %llu, \"errors\": %llu, \"seconds\": %.3f, "
	       "\"iops\": %.0f, \"mib_s\": %.1f, \"cpu_seconds\": %.3f}\n",
	       blk_uses_uring(&blk) ? "io_uring" : "sync", argv[2], (unsigned long long)bs,
	       (unsigned long long)depth, p.direct ? "true" : "false", (unsigned long long)ops,
	       (unsigned long long)errors, t1 - t0, ops / (t1 - t0),
	       ops * (double)bs / (t1 - t0) / (1 << 20), c1 - c0);
	virtio_pci_destroy(&vp);
	blk_close(&blk);
	gm_free(&gm);
	return errors ? 1 : 0;
}
