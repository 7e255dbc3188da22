/*
 * vm_rig.h - a VM for device tests and fuzz targets without KVM: a struct
 * vm with every device vm.c builds (COM1, RTC, i8042, PM, the PCI bus with
 * virtio rng, one disk, balloon, one network card and vsock), its host
 * side recorded instead of reaching KVM (MSI-X routes and fires, INTx and
 * ISA line levels, notify ioeventfds), and the guest driver's side: config
 * space through the bus, BAR 0 through the MMIO window, rings at fixed
 * addresses (RING, AVAIL, USED, BUF) with the driver's counters kept in
 * struct rig. The TAP is a SOCK_DGRAM socketpair (a datagram per frame,
 * vnet header first); the disk a file.
 *
 * Set-up failures abort (RIG_OK): a harness that cannot build its VM has
 * nothing to test. Everything is static inline, for one test or target.
 */
#ifndef YUN_TESTS_VM_RIG_H
#define YUN_TESTS_VM_RIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/vm.h"

#define RIG_OK(expr)                                                                  \
	do {                                                                          \
		if ((expr) != 0) {                                                    \
			fprintf(stderr, "%s:%d: rig set-up failed: %s\n", __FILE__,   \
				__LINE__, #expr);                                     \
			abort();                                                      \
		}                                                                     \
	} while (0)

#define RAM      (64ULL << 20)
#define QSZ      16
#define NDEV     5 /* rng, disk, balloon, net, vsock: PCI slots 1..5 */
#define DEV_RNG  0
#define DEV_BLK  1
#define DEV_BAL  2
#define DEV_NET  3
#define DEV_VS   4
#define DISK     (1u << 20)
#define MMIO64   (1ULL << 36)

/* Guest RAM layout: rings of device n, queue q; buffers of n, q, slot s. */
#define RING(n, q)   (0x100000ULL + (n) * 0x40000ULL + (q) * 0x10000ULL)
#define AVAIL(n, q)  (RING(n, q) + 0x4000)
#define USED(n, q)   (RING(n, q) + 0x6000)
#define BUF(n, q, s) (0x1000000ULL + (n) * 0x200000ULL + (q) * 0x40000ULL + (s) * 0x1000ULL)

struct devrec {                     /* what the msix host saw for one function */
	uint64_t addr[MSIX_MAX_VECTORS];
	uint32_t data[MSIX_MAX_VECTORS];
	bool on[MSIX_MAX_VECTORS];
	unsigned fired[MSIX_MAX_VECTORS];
};

struct rig {
	struct vm vm;
	struct vmm_config cfg;
	struct devrec dev[NDEV];
	int level[32];                  /* by GSI */
	uint64_t ioev[64];              /* notify addresses with an ioeventfd bound */
	unsigned nr_ioev;
	int peer;                       /* the TAP's other end */
	char image[128], sock[108];
	/* The driver's own counters (in a real guest they are in guest RAM). */
	uint16_t next_desc[NDEV][3], avail_idx[NDEV][3];
};


/* ---- host callbacks: record ------------------------------------------------- */

static inline void rec_level(void *ctx, uint32_t gsi, int level)
{
	struct rig *g = ctx;

	if (gsi < 32)
		g->level[gsi] = level;
}

static inline void rec_route(void *ctx, unsigned v, uint64_t addr, uint32_t data, bool enabled)
{
	struct devrec *d = ctx;

	d->addr[v] = addr;
	d->data[v] = data;
	d->on[v] = enabled;
}

static inline void rec_fire(void *ctx, unsigned v)
{
	((struct devrec *)ctx)->fired[v]++;
}

static inline int rec_ioeventfd(void *ctx, uint64_t gpa, uint32_t len, int fd, bool assign)
{
	struct rig *g = ctx;

	(void)len, (void)fd;
	if (assign && g->nr_ioev < 64) {
		g->ioev[g->nr_ioev++] = gpa;
	} else if (!assign) {
		for (unsigned i = 0; i < g->nr_ioev; i++)
			if (g->ioev[i] == gpa) {
				g->ioev[i] = g->ioev[--g->nr_ioev];
				break;
			}
	}
	return 0;
}

static inline bool ioev_bound(const struct rig *g, uint64_t gpa)
{
	for (unsigned i = 0; i < g->nr_ioev; i++)
		if (g->ioev[i] == gpa)
			return true;
	return false;
}

static inline void bal_changed(void *ctx)
{
	virtio_pci_config_changed(ctx);
}

static inline void bal_kick(void *ctx, unsigned q)
{
	virtio_pci_kick(ctx, q);
}

/* ---- building and tearing down a VM as vm.c does, minus KVM ----------------------- */

static inline struct virtio_pci *vp_of(struct rig *g, unsigned n)
{
	struct vm *vm = &g->vm;
	struct virtio_pci *v[NDEV] = { &vm->rng_pci, &vm->disk_pci[0], &vm->balloon_pci,
				       &vm->net_pci[0], &vm->vsock_pci };

	return v[n];
}

static inline void add_virtio(struct rig *g, unsigned n, const struct virtio_device_ops *ops, void *dev)
{
	struct virtio_pci_host host = {
		.gm = &g->vm.mem, .ioeventfd = rec_ioeventfd, .ctx = g,
		.msix = { rec_route, rec_fire, &g->dev[n] },
		.intx = { rec_level, g, PCI_INTX_GSI_BASE + n },
	};
	struct yun_err err;

	RIG_OK(virtio_pci_init(vp_of(g, n), ops, dev, &host, &err));
	RIG_OK(pci_bus_add(&g->vm.pci, &vp_of(g, n)->pci, &err));
}

static inline void open_net(struct rig *g)
{
	struct net *net = &g->vm.net[0];
	int sv[2];

	memset(net, 0, sizeof(*net));
	strcpy(net->tap, "snap0");
	RIG_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv));
	net->tap_fd = sv[0];
	g->peer = sv[1];
	net->throttle[NET_RXQ].timer_fd = net->throttle[NET_TXQ].timer_fd = -1;
	net->tx_linear = malloc(NET_HDR_LEN + NET_MAX_FRAME);
	net->rx_spill = malloc(NET_HDR_LEN + NET_MAX_FRAME);
	memcpy(net->mac, "\x02\x00\x00\x00\x00\x01", 6);
}

/* A VM with every device, files in dir; its disk a copy of `image` (or a fresh one), its CID `cid`. */
static inline struct rig *rig_build(const char *dir, const char *name, const char *image, uint64_t cid)
{
	struct rig *g = calloc(1, sizeof(*g));
	struct vm *vm = &g->vm;
	struct yun_err err;
	char cmd[512];

	snprintf(g->image, sizeof(g->image), "%s/%s.img", dir, name);
	snprintf(g->sock, sizeof(g->sock), "%s/%s.sock", dir, name);
	if (image)
		snprintf(cmd, sizeof(cmd), "cp %s %s", image, g->image);
	else
		snprintf(cmd, sizeof(cmd), "truncate -s %u %s", DISK, g->image);
	RIG_OK(system(cmd));

	g->cfg.rng = g->cfg.balloon = g->cfg.vsock = true;
	g->cfg.nr_disks = g->cfg.nr_nets = 1;
	g->cfg.disks[0].path = g->image;
	g->cfg.nets[0].tap = "snap0";
	g->cfg.vsock_cid = cid;
	g->cfg.vsock_socket = g->sock;
	vm->cfg = &g->cfg;
	vm->irq_com1 = (struct irq_line){ rec_level, g, IRQ_COM1 };
	vm->irq_kbd = (struct irq_line){ rec_level, g, IRQ_I8042_KBD };
	RIG_OK(gm_init(&vm->mem, RAM, &err));
	RIG_OK(serial_init(&vm->serial, &vm->irq_com1, NULL, NULL, &err));
	RIG_OK(rtc_init(&vm->rtc, RAM, 0, &err));
	RIG_OK(i8042_init(&vm->i8042, &vm->irq_kbd, NULL, NULL, &err));
	pm_init(&vm->pm, NULL);
	RIG_OK(pci_bus_init(&vm->pci, LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_SZ, MMIO64,
			    LAYOUT_PCI_MMIO64_SZ, &err));

	rng_init(&vm->rng);
	add_virtio(g, DEV_RNG, &rng_ops, &vm->rng);
	struct blk_params bp = { g->image, "snapdisk", false, false, 0, 0, false };
	RIG_OK(blk_open(&vm->disk[0], &bp, &err));
	add_virtio(g, DEV_BLK, blk_device_ops(&vm->disk[0]), &vm->disk[0]);
	struct balloon_config bc = { 0, 0 };
	struct balloon_host bh = { bal_changed, bal_kick, &vm->balloon_pci };
	RIG_OK(balloon_init(&vm->balloon, &vm->mem, &bc, &bh, &err));
	add_virtio(g, DEV_BAL, &balloon_ops, &vm->balloon);
	open_net(g);
	add_virtio(g, DEV_NET, &net_ops, &vm->net[0]);
	RIG_OK(vsock_open(&vm->vsock, cid, g->sock, &err));
	add_virtio(g, DEV_VS, &vsock_ops, &vm->vsock);
	return g;
}

static inline void rig_destroy(struct rig *g)
{
	struct vm *vm = &g->vm;

	for (unsigned n = 0; n < NDEV; n++)
		virtio_pci_destroy(vp_of(g, n));
	blk_close(&vm->disk[0]);
	close(vm->net[0].tap_fd);
	close(g->peer);
	free(vm->net[0].tx_linear);
	free(vm->net[0].rx_spill);
	vsock_close(&vm->vsock);
	balloon_destroy(&vm->balloon);
	pci_bus_destroy(&vm->pci);
	serial_destroy(&vm->serial);
	rtc_destroy(&vm->rtc);
	i8042_destroy(&vm->i8042);
	gm_free(&vm->mem);
	unlink(g->image);
	free(g);
}

/* ---- the guest's side --------------------------------------------------------- */

static inline void cfg_rw(struct rig *g, unsigned n, uint32_t reg, void *v, uint32_t len, bool write)
{
	pci_bus_config(&g->vm.pci, 0, vp_of(g, n)->pci.slot, 0, reg, v, len, write);
}

static inline uint64_t bar0(struct rig *g, unsigned n)
{
	uint32_t b = 0;

	cfg_rw(g, n, PCI_BAR0, &b, 4, false);
	return b & ~0xFu;
}

static inline uint64_t rd(struct rig *g, unsigned n, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	pci_mmio32_io(&g->vm.pci, bar0(g, n) + off - LAYOUT_PCI_MMIO32, (uint8_t *)&v, len, false);
	return v;
}

static inline void wr(struct rig *g, unsigned n, uint64_t off, uint64_t v, uint32_t len)
{
	pci_mmio32_io(&g->vm.pci, bar0(g, n) + off - LAYOUT_PCI_MMIO32, (uint8_t *)&v, len, true);
}

static inline void *ram(struct rig *g, uint64_t gpa, uint64_t len)
{
	return gm_ptr(&g->vm.mem, gpa, len);
}

static inline uint16_t used_idx(struct rig *g, unsigned n, unsigned q)
{
	return __atomic_load_n(&((struct vring_used *)ram(g, USED(n, q), 8))->idx,
			       __ATOMIC_ACQUIRE);
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Put a chain in queue q's avail ring (no kick). */
static inline void post(struct rig *g, unsigned n, unsigned q, const struct seg *s, unsigned nseg)
{
	struct vring_desc *t = ram(g, RING(n, q), 16 * QSZ);
	struct vring_avail *a = ram(g, AVAIL(n, q), vq_avail_bytes(QSZ));
	uint16_t head = g->next_desc[n][q] % QSZ;

	for (unsigned i = 0; i < nseg; i++) {
		uint16_t d = g->next_desc[n][q]++ % QSZ;

		t[d] = (struct vring_desc){ s[i].gpa, s[i].len,
					    (uint16_t)((s[i].write ? VRING_DESC_F_WRITE : 0) |
						       (i + 1 < nseg ? VRING_DESC_F_NEXT : 0)),
					    (uint16_t)(g->next_desc[n][q] % QSZ) };
	}
	a->ring[g->avail_idx[n][q]++ % QSZ] = head;
	__atomic_store_n(&a->idx, g->avail_idx[n][q], __ATOMIC_RELEASE);
}

static inline void post1(struct rig *g, unsigned n, unsigned q, uint64_t gpa, uint32_t len, bool write)
{
	struct seg s = { gpa, len, write };

	post(g, n, q, &s, 1);
}

static inline void kick(struct rig *g, unsigned n, unsigned q)
{
	wr(g, n, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, q, 2);
}

/* Reset, accept every feature, set up nq queues of QSZ (MSI-X vector q, or INTx), DRIVER_OK. */
static inline void driver_init(struct rig *g, unsigned n, unsigned nq, bool msix)
{
	struct virtio_pci *vp = vp_of(g, n);
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	uint64_t f;

	wr(g, n, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(g, n, VIRTIO_PCI_COMMON_STATUS, s, 1);
	wr(g, n, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	f = rd(g, n, VIRTIO_PCI_COMMON_DF, 4);
	wr(g, n, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	f |= rd(g, n, VIRTIO_PCI_COMMON_DF, 4) << 32;
	for (unsigned i = 0; i < 2; i++) {
		wr(g, n, VIRTIO_PCI_COMMON_GFSELECT, i, 4);
		wr(g, n, VIRTIO_PCI_COMMON_GF, (uint32_t)(f >> (32 * i)), 4);
	}
	s |= VIRTIO_STATUS_FEATURES_OK;
	wr(g, n, VIRTIO_PCI_COMMON_STATUS, s, 1);
	if (msix) {
		uint16_t ctrl = MSIX_CTRL_ENABLE;

		for (unsigned v = 0; v <= nq; v++) {
			uint64_t e = VIRTIO_PCI_MSIX_TABLE + MSIX_ENTRY_SIZE * v;

			wr(g, n, e, 0xFEE00000u | (v << 12), 4);
			wr(g, n, e + 4, 0, 4);
			wr(g, n, e + 8, 0x40 + 8 * n + v, 4);
			wr(g, n, e + 12, 0, 4); /* unmask */
		}
		cfg_rw(g, n, vp->msix.cap + 2, &ctrl, 2, true);
		wr(g, n, VIRTIO_PCI_COMMON_MSIX, nq, 2);
	}
	for (unsigned q = 0; q < nq; q++) {
		memset(ram(g, RING(n, q), 0x8000), 0, 0x8000);
		wr(g, n, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		wr(g, n, VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
		if (msix)
			wr(g, n, VIRTIO_PCI_COMMON_Q_MSIX, q, 2);
		wr(g, n, VIRTIO_PCI_COMMON_Q_DESC, RING(n, q), 8);
		wr(g, n, VIRTIO_PCI_COMMON_Q_AVAIL, AVAIL(n, q), 8);
		wr(g, n, VIRTIO_PCI_COMMON_Q_USED, USED(n, q), 8);
		wr(g, n, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	}
	wr(g, n, VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_STATUS_DRIVER_OK, 1);
	RIG_OK(rd(g, n, VIRTIO_PCI_COMMON_STATUS, 1) != (s | VIRTIO_STATUS_DRIVER_OK));
}

#endif
