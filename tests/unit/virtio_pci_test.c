/*
 * virtio_pci_test.c - play a virtio driver against the modern PCI transport
 * and virtio-rng through BAR 0's MMIO handler, with a real guest_mem, no KVM:
 * feature negotiation, queue setup, rng bytes, MSI-X delivery, NEEDS_RESET.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "vmm/layout.h"
#include "vmm/virtio/pci.h"
#include "vmm/virtio/rng.h"

#define QSZ   16
#define DESC  0x10000ULL
#define AVAIL 0x11000ULL
#define USED  0x12000ULL
#define BUF   0x20000ULL

static struct guest_mem gm;
static struct virtio_pci vp;
static struct rng rng;
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

static void start(void)
{
	struct virtio_pci_host host = {
		.gm = &gm,
		.msix = { .fire = rec_fire },
		.intx = { .set_level = rec_intx, .gsi = 16 },
	};
	struct yun_err err;

	memset(fired, 0, sizeof(fired));
	rng_init(&rng);
	CHECK_EQ(virtio_pci_init(&vp, &rng_ops, &rng, &host, &err), 0);
}

/* The driver's init sequence up to FEATURES_OK with `features`; returns the status read back. */
static uint8_t negotiate(uint64_t features)
{
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	wr(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)features, 4);
	wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(VIRTIO_PCI_COMMON_GF, (uint32_t)(features >> 32), 4);
	wr(VIRTIO_PCI_COMMON_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	return (uint8_t)rd(VIRTIO_PCI_COMMON_STATUS, 1);
}

static void setup_queue(uint16_t size, uint64_t desc)
{
	gm_zero(&gm, DESC, 0x3000);
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	wr(VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
	wr(VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
	wr(VIRTIO_PCI_COMMON_Q_DESC, (uint32_t)desc, 4); /* in two halves, as Linux does */
	wr(VIRTIO_PCI_COMMON_Q_DESC + 4, desc >> 32, 4);
	wr(VIRTIO_PCI_COMMON_Q_AVAIL, AVAIL, 8);
	wr(VIRTIO_PCI_COMMON_Q_USED, USED, 8);
	wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

static void driver_ok(void)
{
	wr(VIRTIO_PCI_COMMON_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		   VIRTIO_STATUS_DRIVER_OK, 1);
}

/* Post one writable buffer of len bytes as descriptor `d` and kick. */
static void post(uint16_t d, uint64_t addr, uint32_t len)
{
	struct vring_desc *t = gm_ptr(&gm, DESC, 16 * QSZ);
	struct vring_avail *a = gm_ptr(&gm, AVAIL, 6 + 2 * QSZ);

	t[d] = (struct vring_desc){ addr, len, VRING_DESC_F_WRITE, 0 };
	a->ring[a->idx % QSZ] = d;
	a->idx++;
	wr(VIRTIO_PCI_NOTIFY_OFF + 0, 0, 2);
}

static void enable_msix(void)
{
	uint8_t cap = vp.msix.cap;

	for (unsigned v = 0; v < 2; v++)
		wr(VIRTIO_PCI_MSIX_TABLE + 16 * v + 12, 0, 4); /* unmask */
	vp.pci.cfg[cap + 3] |= MSIX_CTRL_ENABLE >> 8;
	msix_config_write(&vp.msix, cap + 2, 2);
}

static void test_identity(void)
{
	start();
	CHECK_EQ(pci_cfg_get16(&vp.pci, PCI_VENDOR_ID), 0x1AF4);
	CHECK_EQ(pci_cfg_get16(&vp.pci, PCI_DEVICE_ID), 0x1044);
	CHECK_EQ(vp.pci.cfg[PCI_REVISION_ID], 1);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_NUMQ, 2), 1);
	wr(VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	CHECK(rd(VIRTIO_PCI_COMMON_DF, 4) & 1); /* VERSION_1 is bit 32 */
	wr(VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	CHECK(rd(VIRTIO_PCI_COMMON_DF, 4) & (1u << VIRTIO_F_RING_EVENT_IDX));
	/* Capabilities: common, notify (multiplier 4), ISR; then MSI-X. */
	unsigned types = 0, at = vp.pci.cfg[PCI_CAPABILITY_LIST];
	for (int n = 0; at && n < 16; n++, at = vp.pci.cfg[at + 1]) {
		if (vp.pci.cfg[at] == PCI_CAP_ID_VNDR) {
			types |= 1u << vp.pci.cfg[at + 3];
			if (vp.pci.cfg[at + 3] == VIRTIO_PCI_CAP_NOTIFY_CFG)
				CHECK_EQ(pci_cfg_get32(&vp.pci, at + 16), 4);
		} else {
			CHECK_EQ(vp.pci.cfg[at], PCI_CAP_ID_MSIX);
		}
	}
	CHECK_EQ(types, (1u << 1) | (1u << 2) | (1u << 3));
	virtio_pci_destroy(&vp);
}

static void test_features_need_version_1(void)
{
	start();
	CHECK(!(negotiate(0) & VIRTIO_STATUS_FEATURES_OK));
	CHECK(!(negotiate(1ULL << 40) & VIRTIO_STATUS_FEATURES_OK)); /* not offered */
	CHECK(negotiate(1ULL << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
	virtio_pci_destroy(&vp);
}

static void test_rng_bytes_and_interrupts(void)
{
	uint8_t a[64], b[64];

	start();
	CHECK(negotiate(1ULL << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
	setup_queue(QSZ, DESC);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	driver_ok();
	CHECK(!(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));

	/* MSI-X off: INTx and the ISR. */
	post(0, BUF, 64);
	struct vring_used *u = gm_ptr(&gm, USED, 6 + 8 * QSZ);
	CHECK_EQ(u->idx, 1);
	CHECK_EQ(u->ring[0].len, 64);
	CHECK_EQ(intx_level, 1);
	CHECK_EQ(rd(VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_QUEUE);
	CHECK_EQ(intx_level, 0);
	memcpy(a, gm_ptr(&gm, BUF, 64), 64);

	/* MSI-X on: vector 1 fires. */
	enable_msix();
	post(1, BUF + 64, 64);
	CHECK_EQ(u->idx, 2);
	CHECK_EQ(fired[1], 1);
	memcpy(b, gm_ptr(&gm, BUF + 64, 64), 64);
	CHECK(memcmp(a, b, 64) != 0);
	CHECK(memcmp(a, (uint8_t[64]){ 0 }, 64) != 0);

	/* Masked vector: pending bit, delivered on unmask. */
	wr(VIRTIO_PCI_MSIX_TABLE + 16 + 12, 1, 4);
	post(2, BUF + 128, 16);
	CHECK_EQ(fired[1], 1);
	CHECK_EQ(rd(VIRTIO_PCI_MSIX_PBA, 8), 2);
	wr(VIRTIO_PCI_MSIX_TABLE + 16 + 12, 0, 4);
	CHECK_EQ(fired[1], 2);
	CHECK_EQ(rd(VIRTIO_PCI_MSIX_PBA, 8), 0);

	/* Reset: status 0 and the queue disabled. */
	wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	virtio_pci_destroy(&vp);
}

static void test_bad_chain_needs_reset(void)
{
	start();
	negotiate(1ULL << VIRTIO_F_VERSION_1);
	setup_queue(QSZ, DESC);
	driver_ok();
	enable_msix();
	wr(VIRTIO_PCI_COMMON_MSIX, 0, 2);
	post(0, LAYOUT_PCI_MMIO32, 64); /* a buffer in the PCI hole */
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ(fired[0], 1); /* config-change vector */
	post(1, BUF, 64);      /* ignored until reset */
	CHECK_EQ(((struct vring_used *)gm_ptr(&gm, USED, 8))->idx, 0);
	/* After a reset the device works again. */
	negotiate(1ULL << VIRTIO_F_VERSION_1);
	setup_queue(QSZ, DESC);
	driver_ok();
	post(0, BUF, 64);
	CHECK_EQ(((struct vring_used *)gm_ptr(&gm, USED, 8))->idx, 1);
	virtio_pci_destroy(&vp);
}

static void test_bad_queue_setup(void)
{
	start();
	negotiate(1ULL << VIRTIO_F_VERSION_1);
	setup_queue(QSZ, gm.size - 64); /* descriptor table off the end of RAM */
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	negotiate(1ULL << VIRTIO_F_VERSION_1);
	setup_queue(QSZ * 8, DESC); /* bigger than the device's maximum */
	CHECK(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* Odd register accesses do nothing harmful. */
	wr(0x7FF8, ~0ULL, 8);
	wr(VIRTIO_PCI_COMMON_Q_DESC + 2, ~0ULL, 4);
	CHECK_EQ(rd(0x0FFF, 4), 0);
	virtio_pci_destroy(&vp);
}

int main(void)
{
	struct yun_err err;

	if (gm_init(&gm, 64ULL << 20, &err))
		return 1;
	RUN(test_identity);
	RUN(test_features_need_version_1);
	RUN(test_rng_bytes_and_interrupts);
	RUN(test_bad_chain_needs_reset);
	RUN(test_bad_queue_setup);
	gm_free(&gm);
	return CHECK_DONE();
}
