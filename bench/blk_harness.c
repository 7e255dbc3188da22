/*
 * blk_harness.c - virtio-blk throughput in-process: this program plays the
 * guest driver against src/vmm/virtio/blk.c and keeps `iodepth` reads in
 * flight for `seconds`, on one thread, through the same paths as yun-vmm:
 *
 *   - a split queue in a real guest_mem, set up through the PCI transport's
 *     BAR handler, with VIRTIO_F_EVENT_IDX and MSI-X negotiated as Linux
 *     does;
 *   - kicks: a notify write through the BAR, which the transport turns into
 *     a write of the queue's kick eventfd (what KVM's ioeventfd does in
 *     yun-vmm), and only when the device's avail_event asks for one;
 *   - device work: an I/O thread (iothread.c) watching the kick eventfd and
 *     the disk's completion fd exactly as vm.c sets it up. By default this
 *     thread runs that loop (iothread_poll) itself while the "guest" waits
 *     for its interrupt: one thread, like fio. With `thread` the loop runs
 *     on its own thread (iothread_start, as in yun-vmm) and this one plays
 *     the vCPU, blocking on the interrupt; pinned to one core, that adds two
 *     context switches per round trip, which a VM with the vCPU and the I/O
 *     thread on different cores does not pay;
 *   - completions: the device raises the queue's MSI-X vector; the fire
 *     callback writes an eventfd as yun-vmm's irqfd write does, and the
 *     driver then reaps the used ring, re-arms used_event and reposts.
 *
 *   blk_harness FILE randread|seqread BS IODEPTH SECONDS [direct] [thread]
 *
 * Prints one JSON object: backend, ops, bytes, seconds, iops, mib_s, the
 * CPU seconds this process used (user + system), and the kicks and
 * interrupts it took. YUN_BLK_NO_URING=1 selects the synchronous backend,
 * as for yun-vmm. bench/blk.py runs it beside fio.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vmm/virtio/blk.h"
#include "vmm/virtio/iothread.h"
#include "vmm/virtio/pci.h"

#define QSZ   256
#define DESC  0x10000ULL
#define AVAIL 0x14000ULL
#define USED  0x15000ULL
#define HDRS  0x20000ULL
#define STAT  0x30000ULL
#define DATA  0x100000ULL

#define CONFIG_VECTOR 0
#define QUEUE_VECTOR  1

static struct guest_mem gm;
static struct virtio_pci vp;
static struct blk blk;
static struct iothread io;
static int irq_fd = -1;         /* stands in for the MSI-X vector's KVM irqfd */
static bool threaded;           /* the I/O loop on its own thread */
static bool irq_pending;        /* one thread: the vector fired */
static uint64_t kicks, interrupts;

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

/* The MSI-X fire callback: what vm.c's does (an eventfd write), then "deliver" it. */
static void irq_fire(void *ctx, unsigned vector)
{
	uint64_t one = 1;

	(void)ctx;
	if (write(irq_fd, &one, sizeof(one)) != sizeof(one))
		perror("blk_harness: irq eventfd");
	if (vector == QUEUE_VECTOR) {
		irq_pending = true;
		interrupts++;
	}
}

/* Wait for the queue's interrupt: the guest halts and the host runs the device. */
static int wait_interrupt(void)
{
	uint64_t n;

	if (threaded)
		return read(irq_fd, &n, sizeof(n)) == sizeof(n) ? 0 : -errno;
	while (!irq_pending) {
		int rc = iothread_poll(&io, 1000);

		if (rc < 0)
			return rc;
	}
	irq_pending = false;
	return 0;
}

/* The disk's completion fd is readable: what vm.c's vm_disk_complete does. */
static void disk_complete(void *arg)
{
	virtio_pci_run(arg, 0, blk_complete);
}

static void enable_msix(void)
{
	uint8_t cap = vp.msix.cap;

	for (unsigned v = 0; v < vp.msix.nr; v++)
		wr(VIRTIO_PCI_MSIX_TABLE + 16 * v + 12, 0, 4); /* unmask */
	vp.pci.cfg[cap + 3] |= MSIX_CTRL_ENABLE >> 8;
	msix_config_write(&vp.msix, cap + 2, 2);
}

static void driver_init(void)
{
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	uint64_t f;

	enable_msix();
	wr(VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	f = rd(VIRTIO_PCI_COMMON_DF, 4);
	wr(VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	f |= rd(VIRTIO_PCI_COMMON_DF, 4) << 32;
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)f, 4);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)(f >> 32), 4);
	s |= VIRTIO_STATUS_FEATURES_OK;
	wr(VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(VIRTIO_PCI_COMMON_MSIX, CONFIG_VECTOR, 2);
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	wr(VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
	wr(VIRTIO_PCI_COMMON_Q_MSIX, QUEUE_VECTOR, 2);
	wr(VIRTIO_PCI_COMMON_Q_DESC, DESC, 8);
	wr(VIRTIO_PCI_COMMON_Q_AVAIL, AVAIL, 8);
	wr(VIRTIO_PCI_COMMON_Q_USED, USED, 8);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	wr(VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_DRIVER_OK, 1);
}

/* Linux's vring_need_event(): did the index step past `event` going from old to new? */
static bool need_event(uint16_t event, uint16_t new, uint16_t old)
{
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
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
	struct virtio_pci_host host = {
		.gm = &gm, .iothread = &io, .msix = { .fire = irq_fire },
	};
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t *used_event, *avail_event;
	struct yun_err err;
	struct blk_params p = { 0 };
	uint64_t bs, depth, seconds, blocks, next = 0, seed = 88172645463325252ULL;
	uint64_t ops = 0, errors = 0;
	uint16_t seen = 0, old;
	bool random, done = false;
	int rc;
	double t0, t1, c0, c1;

	if (argc < 6) {
		fprintf(stderr,
			"usage: %s FILE randread|seqread BS IODEPTH SECONDS [direct] [thread]\n",
			argv[0]);
		return 2;
	}
	p.path = argv[1];
	p.readonly = true;
	for (int i = 6; i < argc; i++) {
		if (!strcmp(argv[i], "direct")) {
			p.direct = true;
		} else if (!strcmp(argv[i], "thread")) {
			threaded = true;
		} else {
			fprintf(stderr, "blk_harness: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	random = !strcmp(argv[2], "randread");
	bs = strtoull(argv[3], NULL, 0);
	depth = strtoull(argv[4], NULL, 0);
	seconds = strtoull(argv[5], NULL, 0);
	if (!bs || bs % 512 || !depth || depth > QSZ / 3 || depth * bs > (200ULL << 20)) {
		fprintf(stderr, "bad BS or IODEPTH\n");
		return 2;
	}
	irq_fd = eventfd(0, EFD_CLOEXEC | (threaded ? 0 : EFD_NONBLOCK));
	if (irq_fd < 0) {
		perror("blk_harness: eventfd");
		return 1;
	}
	if (gm_init(&gm, 256ULL << 20, &err) || iothread_init(&io, &err) ||
	    blk_open(&blk, &p, &err) ||
	    virtio_pci_init(&vp, blk_device_ops(&blk), &blk, &host, &err) ||
	    (blk_event_fd(&blk) >= 0 &&
	     iothread_watch(&io, blk_event_fd(&blk), disk_complete, &vp, &err))) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	blocks = blk.size / bs;
	driver_init();
	desc = gm_ptr(&gm, DESC, vq_desc_bytes(QSZ));
	avail = gm_ptr(&gm, AVAIL, vq_avail_bytes(QSZ));
	used = gm_ptr(&gm, USED, vq_used_bytes(QSZ));
	used_event = &avail->ring[QSZ];
	avail_event = (uint16_t *)&used->ring[QSZ];
	if (!vp.q[0].vq.event_idx) {
		fprintf(stderr, "blk_harness: EVENT_IDX not negotiated\n");
		return 1;
	}
	if (threaded && iothread_start(&io, "io", &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}

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
	old = avail->idx;
	for (uint16_t i = 0; i < depth; i++) {
		uint64_t *h = gm_ptr(&gm, HDRS + 16 * i, 16);
		uint64_t b = random ? xorshift(&seed) % blocks : next++ % blocks;

		h[0] = VIRTIO_BLK_T_IN;
		h[1] = b * bs / 512;
		avail->ring[avail->idx % QSZ] = 3 * i;
		__atomic_store_n(&avail->idx, (uint16_t)(avail->idx + 1), __ATOMIC_RELEASE);
	}
	for (;;) {
		/* The kick, if the device asked for one (virtqueue_kick_prepare). */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (need_event(__atomic_load_n(avail_event, __ATOMIC_RELAXED), avail->idx, old)) {
			wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
			kicks++;
		}
		old = avail->idx;
		if (done && old == seen)
			break;
		rc = wait_interrupt();
		if (rc < 0) {
			fprintf(stderr, "blk_harness: no interrupt: %s\n", strerror(-rc));
			return 1;
		}
		done = done || now() >= t1;
		/* The interrupt handler: reap, re-arm used_event, look again (virtblk_done). */
		for (;;) {
			uint16_t idx = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);

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
				__atomic_store_n(&avail->idx, (uint16_t)(avail->idx + 1),
						 __ATOMIC_RELEASE);
			}
			__atomic_store_n(used_event, seen, __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == seen)
				break;
		}
	}
	t1 = now();
	c1 = cpu_seconds();
	printf("{\"backend\": \"%s\", \"mode\": \"%s\", \"bs\": %llu, \"iodepth\": %llu, "
	       "\"direct\": %s, \"ops\": %llu, \"errors\": %llu, \"seconds\": %.3f, "
	       "\"iops\": %.0f, \"mib_s\": %.1f, \"cpu_seconds\": %.3f, \"kicks\": %llu, "
	       "\"interrupts\": %llu, \"io_thread\": %s}\n",
	       blk_uses_uring(&blk) ? "io_uring" : "sync", argv[2], (unsigned long long)bs,
	       (unsigned long long)depth, p.direct ? "true" : "false", (unsigned long long)ops,
	       (unsigned long long)errors, t1 - t0, ops / (t1 - t0),
	       ops * (double)bs / (t1 - t0) / (1 << 20), c1 - c0, (unsigned long long)kicks,
	       (unsigned long long)interrupts, threaded ? "true" : "false");
	iothread_destroy(&io);
	virtio_pci_destroy(&vp);
	blk_close(&blk);
	close(irq_fd);
	gm_free(&gm);
	return errors ? 1 : 0;
}
