/*
 * virtio_pci_test.c - play a virtio driver against the modern PCI transport
 * and virtio-rng through BAR 0's MMIO handler, with a real guest_mem, no KVM:
 * feature negotiation, queue setup, rng bytes, MSI-X delivery, NEEDS_RESET;
 * and, through a PCI bus's configuration space, the capability list and the
 * PCI configuration access window (with what a driver may not do to it).
 */
#include <errno.h>
#include <pthread.h>
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
	CHECK_EQ(types, (1u << 1) | (1u << 2) | (1u << 3) | (1u << VIRTIO_PCI_CAP_PCI_CFG));
	virtio_pci_destroy(&vp);
}

/* ---- configuration space through a bus -------------------------------------- */

static struct pci_bus bus;

static uint32_t cfgr(uint32_t reg, uint32_t len)
{
	uint32_t v = 0;

	pci_bus_config(&bus, 0, vp.pci.slot, 0, reg, (uint8_t *)&v, len, false);
	return v;
}

static void cfgw(uint32_t reg, uint32_t v, uint32_t len)
{
	pci_bus_config(&bus, 0, vp.pci.slot, 0, reg, (uint8_t *)&v, len, true);
}

static void on_bus(void)
{
	struct yun_err err;

	start();
	CHECK_EQ(pci_bus_init(&bus, LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_SZ, 0x400000000ULL,
			      LAYOUT_PCI_MMIO64_SZ, &err), 0);
	CHECK_EQ(pci_bus_add(&bus, &vp.pci, &err), 0);
}

static void off_bus(void)
{
	pci_bus_destroy(&bus);
	virtio_pci_destroy(&vp);
}

/* Walk the list as a driver does; returns the PCI_CFG capability's offset (0: none). */
static uint32_t walk_caps(unsigned *nr)
{
	uint32_t at = cfgr(PCI_CAPABILITY_LIST, 1), cfg = 0;
	uint8_t seen[256] = { 0 };

	*nr = 0;
	CHECK(cfgr(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	while (at) {
		/* Each next pointer: past the header, dword aligned, room for a header, no loop. */
		CHECK(at >= 0x40 && at <= 0xFC && !(at & 3));
		if (at < 0x40 || at > 0xFC || (at & 3) || seen[at]++)
			return 0;
		(*nr)++;
		if (cfgr(at, 1) == PCI_CAP_ID_VNDR) {
			uint32_t len = cfgr(at + 2, 1);

			CHECK(len >= 16 && at + len <= 0x100);
			if (cfgr(at + 3, 1) == VIRTIO_PCI_CAP_PCI_CFG) {
				CHECK_EQ(len, 20);
				CHECK_EQ(cfg, 0);
				cfg = at;
			}
		}
		at = cfgr(at + 1, 1);
	}
	return cfg;
}

/* Point the window at (bar, offset, length). */
static void window(uint32_t cap, uint8_t bar, uint32_t offset, uint32_t length)
{
	cfgw(cap + 4, bar, 1);
	cfgw(cap + 8, offset, 4);
	cfgw(cap + 12, length, 4);
}

static void test_cfg_capability_window(void)
{
	uint32_t cap, df_hi, df_lo;
	unsigned nr;

	on_bus();
	cap = walk_caps(&nr);
	CHECK(cap != 0);
	CHECK_EQ(nr, 5); /* common, notify, ISR, PCI_CFG (rng has no device config), MSI-X */
	CHECK_EQ(cfgr(cap + 4, 1), VIRTIO_PCI_BAR);
	CHECK_EQ(cfgr(cap + 12, 4), 0);
	/* Only bar, offset, length and pci_cfg_data are the driver's. */
	cfgw(cap, 0xFFFFFFFF, 4);
	CHECK_EQ(cfgr(cap + 3, 1), VIRTIO_PCI_CAP_PCI_CFG);
	CHECK_EQ(cfgr(cap + 2, 1), 20);
	CHECK_EQ(walk_caps(&nr), cap);

	/* device_feature through the window, as MMIO shows it. */
	window(cap, VIRTIO_PCI_BAR, VIRTIO_PCI_COMMON_DFSELECT, 4);
	cfgw(cap + 16, 1, 4);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_DFSELECT, 4), 1);
	window(cap, VIRTIO_PCI_BAR, VIRTIO_PCI_COMMON_DF, 4);
	df_hi = cfgr(cap + 16, 4);
	CHECK_EQ(df_hi, rd(VIRTIO_PCI_COMMON_DF, 4));
	CHECK(df_hi & 1); /* VERSION_1 */
	wr(VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	df_lo = cfgr(cap + 16, 4); /* every read of pci_cfg_data reads the BAR anew */
	CHECK_EQ(df_lo, rd(VIRTIO_PCI_COMMON_DF, 4));
	CHECK(df_lo & (1u << VIRTIO_F_RING_EVENT_IDX));
	CHECK_EQ(cfgr(cap + 17, 1), (df_lo >> 8) & 0xFF); /* a byte of it */

	/* queue_select written through the window, read back both ways. */
	window(cap, VIRTIO_PCI_BAR, VIRTIO_PCI_COMMON_Q_SELECT, 2);
	cfgw(cap + 16, 7, 2);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_Q_SELECT, 2), 7);
	CHECK_EQ(cfgr(cap + 16, 2), 7);
	cfgw(cap + 16, 0, 2);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
	CHECK_EQ(cfgr(cap + 16, 4), 0);

	/* Bad windows read 0 and ignore writes. */
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 3, 2);
	static const struct { uint8_t bar; uint32_t off, len; } bad[] = {
		{ 1, VIRTIO_PCI_COMMON_Q_SELECT, 2 },          /* no such BAR */
		{ 0xFF, VIRTIO_PCI_COMMON_Q_SELECT, 2 },
		{ 0, VIRTIO_PCI_COMMON_Q_SELECT, 3 },          /* lengths: 1, 2, 4 only */
		{ 0, VIRTIO_PCI_COMMON_Q_SELECT, 8 },
		{ 0, VIRTIO_PCI_COMMON_Q_SELECT, 0 },
		{ 0, VIRTIO_PCI_COMMON_Q_SELECT, 0xFFFFFFFF },
		{ 0, VIRTIO_PCI_COMMON_Q_SELECT + 1, 2 },      /* unaligned */
		{ 0, 0xFFFFFFFC, 4 },                          /* offset + length wraps */
		{ 0, VIRTIO_PCI_COMMON_SIZE, 4 },              /* past the structure */
		{ 0, VIRTIO_PCI_ISR_OFF, 2 },
		{ 0, VIRTIO_PCI_DEVICE_OFF, 4 },               /* rng has no device config */
		{ 0, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT, 2 }, /* past queue 0 */
		{ 0, VIRTIO_PCI_MSIX_TABLE + 12, 4 },          /* not a virtio structure */
		{ 0, VIRTIO_PCI_BAR_SIZE, 4 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		window(cap, bad[i].bar, bad[i].off, bad[i].len);
		CHECK_EQ(cfgr(cap + 16, 4), 0);
		cfgw(cap + 16, 0x5A5A5A5A, 4);
		CHECK_EQ(cfgr(cap + 16, 4), 0);
		CHECK_EQ(cfgr(cap + 8, 4), bad[i].off); /* the fields keep what was written */
	}
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_Q_SELECT, 2), 3);
	CHECK_EQ(rd(VIRTIO_PCI_MSIX_TABLE + 12, 4), 1); /* vector 0 still masked */

	/* The rest of a device works through it too: a kick, and the ISR (read to clear). */
	wr(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	CHECK(negotiate(1ULL << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
	setup_queue(QSZ, DESC);
	driver_ok();
	struct vring_desc *t = gm_ptr(&gm, DESC, 16 * QSZ);
	struct vring_avail *a = gm_ptr(&gm, AVAIL, 6 + 2 * QSZ);
	t[0] = (struct vring_desc){ BUF, 32, VRING_DESC_F_WRITE, 0 };
	a->ring[0] = 0;
	a->idx = 1;
	window(cap, VIRTIO_PCI_BAR, VIRTIO_PCI_NOTIFY_OFF, 2);
	cfgw(cap + 16, 0, 2);
	CHECK_EQ(((struct vring_used *)gm_ptr(&gm, USED, 8))->idx, 1);
	CHECK_EQ(intx_level, 1);
	window(cap, VIRTIO_PCI_BAR, VIRTIO_PCI_ISR_OFF, 1);
	CHECK_EQ(cfgr(cap + 16, 1), VIRTIO_PCI_ISR_QUEUE);
	CHECK_EQ(intx_level, 0);
	CHECK_EQ(cfgr(cap + 16, 1), 0);
	off_bus();
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

/* What a virtio_pci_call fn sees and answers. */
struct call_arg {
	int ret;
	void *dev_seen;
	bool locked;            /* the device lock was held while fn ran */
};

static int call_fn(void *dev, void *arg, struct yun_err *err)
{
	struct call_arg *a = arg;

	a->dev_seen = dev;
	a->locked = pthread_mutex_trylock(&vp.lock) == EBUSY;
	if (!a->locked)
		pthread_mutex_unlock(&vp.lock); /* we just took it: give it back */
	if (a->ret < 0)
		return yun_err_set(err, -a->ret, "call failed on purpose");
	return a->ret;
}

/* virtio_pci_call: fn under the lock; CONFIG_CHANGED bumps the generation and interrupts. */
static void test_call(void)
{
	struct call_arg a = { 0 };
	struct yun_err err = { 0 };
	uint8_t gen;

	start();
	/* Before DRIVER_OK: the generation moves, nobody is interrupted. */
	gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1);
	a.ret = VIRTIO_PCI_CONFIG_CHANGED;
	CHECK_EQ(virtio_pci_call(&vp, call_fn, &a, &err), 0);
	CHECK(a.locked);
	CHECK(a.dev_seen == &rng);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_CFGGEN, 1), (uint8_t)(gen + 1));
	CHECK_EQ(intx_level, 0);

	CHECK(negotiate(1ULL << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
	setup_queue(QSZ, DESC);
	wr(VIRTIO_PCI_COMMON_MSIX, 0, 2); /* config changes on vector 0 */
	driver_ok();
	/* INTx: the ISR's config bit. */
	CHECK_EQ(virtio_pci_call(&vp, call_fn, &a, &err), 0);
	CHECK_EQ(intx_level, 1);
	CHECK_EQ(rd(VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_CONFIG);
	/* 0: done, nothing changed, no interrupt. */
	gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1);
	a.ret = 0;
	CHECK_EQ(virtio_pci_call(&vp, call_fn, &a, &err), 0);
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_CFGGEN, 1), gen);
	CHECK_EQ(intx_level, 0);
	/* An error comes back with its message; nothing else happens. */
	a.ret = -EINVAL;
	CHECK_EQ(virtio_pci_call(&vp, call_fn, &a, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "call failed on purpose");
	CHECK_EQ(rd(VIRTIO_PCI_COMMON_CFGGEN, 1), gen);
	CHECK(!(rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	/* MSI-X: the config vector fires once per change. */
	enable_msix();
	a.ret = VIRTIO_PCI_CONFIG_CHANGED;
	CHECK_EQ(virtio_pci_call(&vp, call_fn, &a, &err), 0);
	CHECK_EQ(fired[0], 1);
	CHECK_EQ(fired[1], 0);
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
	RUN(test_cfg_capability_window);
	RUN(test_call);
	gm_free(&gm);
	return CHECK_DONE();
}
