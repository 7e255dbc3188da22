/*
 * virtio_pci.c - virtio 1.x over PCI (virtio spec 1.2, sections 2.7 split
 * virtqueues and 4.1 the PCI transport), for one synchronous request at a
 * time: enough to prove a device model, small enough for an emulated CPL0.
 */
#include "virtio_pci.h"
#include "apic.h"
#include "console.h"
#include "lib.h"
#include "trap.h"

/* virtio_pci_cap.cfg_type */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR	   3
#define CAP_DEVICE 4

/* Common configuration structure offsets */
#define CC_DFSELECT	0x00
#define CC_DF		0x04
#define CC_GFSELECT	0x08
#define CC_GF		0x0c
#define CC_MSIX_CONFIG	0x10
#define CC_NUM_QUEUES	0x12
#define CC_STATUS	0x14
#define CC_GENERATION	0x15
#define CC_Q_SELECT	0x16
#define CC_Q_SIZE	0x18
#define CC_Q_MSIX	0x1a
#define CC_Q_ENABLE	0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC	0x20
#define CC_Q_DRIVER	0x28
#define CC_Q_DEVICE	0x30

#define S_ACKNOWLEDGE 1
#define S_DRIVER      2
#define S_DRIVER_OK   4
#define S_FEATURES_OK 8

#define NO_VECTOR 0xffff

#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY	   1

#define PCI_COMMAND_INTX_OFF 0x0400
#define MSIX_ENABLE	     0x8000
#define MSIX_MASKALL	     0x4000

#define POOL_SIZE (192 * 1024)

volatile u32 virtio_irqs[VIRTIO_MSIX_VECTORS];

static u8 pool[POOL_SIZE] __attribute__((aligned(4096), section(".noinit")));
static u32 pool_used;

void *virtio_alloc(u32 bytes)
{
	u32 n = (bytes + 4095) & ~4095u;

	if (pool_used + n > POOL_SIZE)
		yt_fail("virtio memory pool exhausted (%u + %u bytes)", pool_used, n);
	void *p = &pool[pool_used];
	pool_used += n;
	memset(p, 0, n);
	return p;
}

/* A full barrier: the device may read the ring between our store and load. */
static void mb(void)
{
	static volatile u32 word;
	__atomic_exchange_n(&word, 0, __ATOMIC_SEQ_CST);
}

static void virtio_irq(struct trap_frame *f)
{
	u64 i = f->vector - VEC_VIRTIO;

	if (i < VIRTIO_MSIX_VECTORS)
		virtio_irqs[i]++;
	lapic_eoi();
}

u8 virtio_status(struct virtio_dev *vd)
{
	return mmio_read8(vd->common + CC_STATUS);
}

static void set_status(struct virtio_dev *vd, u8 bits)
{
	mmio_write8(vd->common + CC_STATUS, virtio_status(vd) | bits);
}

void virtio_reset(struct virtio_dev *vd)
{
	mmio_write8(vd->common + CC_STATUS, 0);
	for (int i = 0; i < 100000 && virtio_status(vd); i++)
		cpu_relax();
}

u64 virtio_device_features(struct virtio_dev *vd)
{
	mmio_write32(vd->common + CC_DFSELECT, 0);
	u64 lo = mmio_read32(vd->common + CC_DF);
	mmio_write32(vd->common + CC_DFSELECT, 1);
	u64 hi = mmio_read32(vd->common + CC_DF);
	return hi << 32 | lo;
}

u8 virtio_cfg8(struct virtio_dev *vd, u32 off)
{
	return mmio_read8(vd->device + off);
}

u32 virtio_cfg32(struct virtio_dev *vd, u32 off)
{
	return mmio_read32(vd->device + off);
}

void virtio_cfg_write32(struct virtio_dev *vd, u32 off, u32 v)
{
	mmio_write32(vd->device + off, v);
}

u64 virtio_cfg64(struct virtio_dev *vd, u32 off)
{
	u8 gen;
	u64 v;

	do {
		gen = mmio_read8(vd->common + CC_GENERATION);
		v = mmio_read32(vd->device + off) | (u64)mmio_read32(vd->device + off + 4) << 32;
	} while (gen != mmio_read8(vd->common + CC_GENERATION));
	return v;
}

static struct pci_dev *find_device(u16 type)
{
	static const u16 transitional[] = {
	    [VIRTIO_ID_NET] = 0x1000, [VIRTIO_ID_BLOCK] = 0x1001, [VIRTIO_ID_RNG] = 0x1005,
	    [VIRTIO_ID_BALLOON] = 0x1002};
	u16 legacy_id = type < ARRAY_SIZE(transitional) ? transitional[type] : 0;

	for (u32 i = 0; i < pci.ndevs; i++) {
		struct pci_dev *d = &pci.devs[i];
		if (d->vendor != VIRTIO_VENDOR || d->header_type != 0)
			continue;
		if (d->device == 0x1040 + type)
			return d;
		/* A transitional device names its type in the subsystem id. */
		if (legacy_id && d->device == legacy_id && d->subsys_id == type)
			return d;
	}
	return NULL;
}

static bool map_caps(struct virtio_dev *vd, const char **why)
{
	struct pci_dev *d = vd->pci;

	for (u8 c = pci_find_cap(d, PCI_CAP_VENDOR, 0); c; c = pci_find_cap(d, PCI_CAP_VENDOR, c)) {
		u8 type = pci_read8(d, c + 3), bar = pci_read8(d, c + 4);
		u32 off = pci_read32(d, c + 8), len = pci_read32(d, c + 12);

		if (bar > 5 || !d->bar[bar] || d->bar_io[bar] || (u64)off + len > d->bar_size[bar])
			continue; /* unusable (or an I/O BAR nobody assigned) */
		u64 addr = d->bar[bar] + off;
		switch (type) {
		case CAP_COMMON:
			if (!vd->common)
				vd->common = addr;
			break;
		case CAP_NOTIFY:
			if (!vd->notify) {
				vd->notify = addr;
				vd->notify_mult = pci_read32(d, c + 16);
			}
			break;
		case CAP_ISR:
			if (!vd->isr)
				vd->isr = addr;
			break;
		case CAP_DEVICE:
			if (!vd->device) {
				vd->device = addr;
				vd->device_len = len;
			}
			break;
		}
	}
	if (!vd->common || !vd->notify || !vd->isr) {
		*why = "missing a virtio common/notify/ISR capability in a memory BAR";
		return false;
	}
	yt_printf("YT VIRTIO_CAPS common=0x%lx notify=0x%lx mult=%u isr=0x%lx device=0x%lx+%u\n",
		  (unsigned long)vd->common, (unsigned long)vd->notify, vd->notify_mult,
		  (unsigned long)vd->isr, (unsigned long)vd->device, vd->device_len);
	return true;
}

static bool msix_init(struct virtio_dev *vd, const char **why)
{
	struct pci_dev *d = vd->pci;
	u8 c = pci_find_cap(d, PCI_CAP_MSIX, 0);

	if (!c) {
		*why = "no MSI-X capability";
		return false;
	}
	u16 ctrl = pci_read16(d, c + 2);
	u32 table = pci_read32(d, c + 4);
	u8 bir = table & 7;
	vd->msix_cap = c;
	vd->msix_size = (ctrl & 0x7ff) + 1;
	if (bir > 5 || !d->bar[bir] || d->bar_io[bir]) {
		*why = "MSI-X table BAR is not an assigned memory BAR";
		return false;
	}
	vd->msix_table = d->bar[bir] + (table & ~7u);
	pci_write16(d, c + 2, (u16)((ctrl & ~MSIX_MASKALL) | MSIX_ENABLE));
	pci_write16(d, 0x04, pci_read16(d, 0x04) | PCI_COMMAND_INTX_OFF);

	u32 apic = lapic_id();
	for (u16 e = 0; e < vd->msix_size && e < VIRTIO_MSIX_VECTORS; e++) {
		u64 ent = vd->msix_table + 16u * e;
		mmio_write32(ent + 0, 0xfee00000u | apic << 12);
		mmio_write32(ent + 4, 0);
		mmio_write32(ent + 8, VEC_VIRTIO + e); /* fixed delivery, edge */
		mmio_write32(ent + 12, 0);	       /* unmasked */
		trap_set_handler((u8)(VEC_VIRTIO + e), virtio_irq);
	}
	mmio_write16(vd->common + CC_MSIX_CONFIG, 0);
	if (mmio_read16(vd->common + CC_MSIX_CONFIG) != 0) {
		*why = "device refused MSI-X vector 0 for configuration changes";
		return false;
	}
	vd->msix = true;
	yt_printf("YT VIRTIO_MSIX entries=%u table=0x%lx apic=%u vectors=0x%x-0x%x\n",
		  vd->msix_size, (unsigned long)vd->msix_table, apic, VEC_VIRTIO,
		  VEC_VIRTIO + VIRTIO_MSIX_VECTORS - 1);
	return true;
}

bool virtio_open(struct virtio_dev *vd, u16 type, u64 optional, bool use_msix, const char **why)
{
	memset(vd, 0, sizeof(*vd));
	vd->type = type;
	if (!pci_init(why))
		return false;
	vd->pci = find_device(type);
	if (!vd->pci) {
		*why = "no such virtio device on PCI";
		return false;
	}
	yt_printf("YT VIRTIO_DEV %02x:%02x.%x %04x:%04x type=%u\n", vd->pci->bus, vd->pci->dev,
		  vd->pci->fn, vd->pci->vendor, vd->pci->device, type);
	if (!map_caps(vd, why))
		return false;

	virtio_reset(vd);
	if (virtio_status(vd)) {
		*why = "device status does not read 0 after reset";
		return false;
	}
	set_status(vd, S_ACKNOWLEDGE);
	set_status(vd, S_DRIVER);

	u64 offered = virtio_device_features(vd);
	if (!(offered & (1ULL << VIRTIO_F_VERSION_1))) {
		*why = "device does not offer VIRTIO_F_VERSION_1";
		return false;
	}
	vd->features = (1ULL << VIRTIO_F_VERSION_1) | (offered & optional);
	mmio_write32(vd->common + CC_GFSELECT, 0);
	mmio_write32(vd->common + CC_GF, (u32)vd->features);
	mmio_write32(vd->common + CC_GFSELECT, 1);
	mmio_write32(vd->common + CC_GF, (u32)(vd->features >> 32));
	set_status(vd, S_FEATURES_OK);
	if (!(virtio_status(vd) & S_FEATURES_OK)) {
		*why = "device cleared FEATURES_OK";
		return false;
	}
	vd->nqueues = mmio_read16(vd->common + CC_NUM_QUEUES);
	yt_printf("YT VIRTIO_FEATURES offered=0x%lx accepted=0x%lx queues=%u\n",
		  (unsigned long)offered, (unsigned long)vd->features, vd->nqueues);

	if (use_msix) {
		interrupts_init();
		if (!msix_init(vd, why))
			return false;
	}
	return true;
}

bool virtio_setup_queue(struct virtio_dev *vd, u16 idx, const char **why)
{
	struct virtq *q = &vd->vq[idx];

	if (idx >= VQ_MAX || idx >= vd->nqueues) {
		*why = "no such queue";
		return false;
	}
	mmio_write16(vd->common + CC_Q_SELECT, idx);
	u16 max = mmio_read16(vd->common + CC_Q_SIZE);
	if (max == 0) {
		*why = "queue size 0 (queue not available)";
		return false;
	}
	u16 size = VQ_SIZE_MAX;
	while (size > max)
		size >>= 1;
	q->index = idx;
	q->size = size;
	q->desc = virtio_alloc(16u * size);
	q->avail = virtio_alloc(6u + 2u * size);
	q->used = virtio_alloc(6u + 8u * size);
	q->indirect = virtio_alloc(16u * VQ_SIZE_MAX);
	for (u16 i = 0; i < size; i++)
		q->desc[i].next = (u16)(i + 1);
	q->free_head = 0;
	q->num_free = size;
	mmio_write16(vd->common + CC_Q_SIZE, size);

	u64 a;
	a = (u64)(uintptr_t)q->desc;
	mmio_write32(vd->common + CC_Q_DESC, (u32)a);
	mmio_write32(vd->common + CC_Q_DESC + 4, (u32)(a >> 32));
	a = (u64)(uintptr_t)q->avail;
	mmio_write32(vd->common + CC_Q_DRIVER, (u32)a);
	mmio_write32(vd->common + CC_Q_DRIVER + 4, (u32)(a >> 32));
	a = (u64)(uintptr_t)q->used;
	mmio_write32(vd->common + CC_Q_DEVICE, (u32)a);
	mmio_write32(vd->common + CC_Q_DEVICE + 4, (u32)(a >> 32));

	q->msix_entry = NO_VECTOR;
	if (vd->msix && idx + 1u < vd->msix_size && idx + 1u < VIRTIO_MSIX_VECTORS) {
		mmio_write16(vd->common + CC_Q_MSIX, (u16)(idx + 1));
		if (mmio_read16(vd->common + CC_Q_MSIX) != idx + 1) {
			*why = "device refused an MSI-X vector for the queue";
			return false;
		}
		q->msix_entry = (u16)(idx + 1);
		q->vector = (u8)(VEC_VIRTIO + idx + 1);
	}
	u16 noff = mmio_read16(vd->common + CC_Q_NOTIFY_OFF);
	q->notify_addr = vd->notify + (u64)noff * vd->notify_mult;
	mmio_write16(vd->common + CC_Q_ENABLE, 1);
	yt_printf("YT VIRTQ %u size=%u max=%u notify=0x%lx msix=%d\n", idx, size, max,
		  (unsigned long)q->notify_addr, q->msix_entry == NO_VECTOR ? -1 : q->msix_entry);
	return true;
}

void virtio_driver_ok(struct virtio_dev *vd)
{
	set_status(vd, S_DRIVER_OK);
}

static bool has(struct virtio_dev *vd, int bit)
{
	return vd->features & (1ULL << bit);
}

/* virtio spec 2.7.10: notify if the event index lies in (old, new]. */
static bool need_event(u16 event, u16 new_idx, u16 old)
{
	return (u16)(new_idx - event - 1) < (u16)(new_idx - old);
}

static bool used_arrived(void *arg)
{
	struct virtq *q = arg;

	return q->used[1] != q->last_used;
}

int vq_add(struct virtio_dev *vd, u16 qi, const struct vq_buf *bufs, u32 n, bool indirect)
{
	struct virtq *q = &vd->vq[qi];

	if (indirect && !has(vd, VIRTIO_F_INDIRECT_DESC))
		indirect = false;
	if (n == 0 || n > VQ_SIZE_MAX || (indirect ? 1 : n) > q->num_free)
		return -1;

	u16 head = q->free_head;
	if (indirect) {
		struct vring_desc *t = q->indirect;
		for (u32 i = 0; i < n; i++) {
			t[i].addr = (u64)(uintptr_t)bufs[i].addr;
			t[i].len = bufs[i].len;
			t[i].flags = (u16)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VRING_DESC_F_NEXT : 0));
			t[i].next = (u16)(i + 1);
		}
		q->free_head = q->desc[head].next;
		q->num_free--;
		q->desc[head].addr = (u64)(uintptr_t)q->indirect;
		q->desc[head].len = 16u * n;
		q->desc[head].flags = VRING_DESC_F_INDIRECT;
	} else {
		u16 at = head;
		for (u32 i = 0; i < n; i++) {
			q->desc[at].addr = (u64)(uintptr_t)bufs[i].addr;
			q->desc[at].len = bufs[i].len;
			q->desc[at].flags = (u16)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
						  (i + 1 < n ? VRING_DESC_F_NEXT : 0));
			at = q->desc[at].next; /* the free list's link doubles as the chain's */
		}
		q->free_head = at;
		q->num_free = (u16)(q->num_free - n);
	}
	q->avail[2 + q->avail_idx % q->size] = head;
	barrier();
	q->avail_idx++;
	q->avail[1] = q->avail_idx;
	return head;
}

void vq_kick(struct virtio_dev *vd, u16 qi)
{
	struct virtq *q = &vd->vq[qi];
	u16 old = q->kicked_idx;

	mb();
	bool notify = has(vd, VIRTIO_F_EVENT_IDX)
			  ? need_event(q->used[2 + 4 * q->size], q->avail_idx, old)
			  : !(q->used[0] & VRING_USED_F_NO_NOTIFY);
	q->kicked_idx = q->avail_idx;
	if (notify) {
		mmio_write16(q->notify_addr, qi);
		q->notifies++;
	} else {
		q->notifies_skipped++;
	}
}

bool vq_has_used(struct virtio_dev *vd, u16 qi)
{
	return used_arrived(&vd->vq[qi]);
}

bool vq_pop(struct virtio_dev *vd, u16 qi, u16 *id, u32 *len)
{
	struct virtq *q = &vd->vq[qi];

	if (!used_arrived(q))
		return false;
	barrier();
	u16 slot = q->last_used % q->size;
	*id = (u16) * (volatile u32 *)&q->used[2 + 4 * slot];
	*len = *(volatile u32 *)&q->used[2 + 4 * slot + 2];
	q->last_used++;
	if (*id >= q->size)
		yt_fail("queue %u: used ring names descriptor %u of %u", qi, *id, q->size);
	/* Give the chain back to the free list. */
	u16 at = *id, n = 1;
	while ((q->desc[at].flags & VRING_DESC_F_NEXT) && n < q->size) {
		at = q->desc[at].next;
		n++;
	}
	q->desc[at].flags = 0;
	q->desc[at].next = q->free_head;
	q->free_head = *id;
	q->num_free = (u16)(q->num_free + n);
	return true;
}

void vq_irq_enable(struct virtio_dev *vd, u16 qi, bool on)
{
	struct virtq *q = &vd->vq[qi];

	if (has(vd, VIRTIO_F_EVENT_IDX))
		q->avail[2 + q->size] = on ? q->last_used : (u16)(q->last_used + 0x8000);
	else
		q->avail[0] = on ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
	mb();
}

struct irq_wait {
	volatile u32 *count;
	u32 before;
};

static bool irq_arrived(void *arg)
{
	struct irq_wait *w = arg;

	return *w->count != w->before;
}

long vq_request(struct virtio_dev *vd, u16 qi, const struct vq_buf *bufs, u32 n, bool indirect,
		enum vq_mode mode, u64 ms, const char **why)
{
	struct virtq *q = &vd->vq[qi];

	*why = NULL;
	if (n == 0 || n > q->size || n > VQ_SIZE_MAX) {
		*why = "bad request";
		return -1;
	}
	/* Interrupt suppression for this request. */
	vq_irq_enable(vd, qi, mode == VQ_IRQ);
	int head = vq_add(vd, qi, bufs, n, indirect);
	if (head < 0) {
		*why = "no free descriptors";
		return -1;
	}
	u32 irqs_before = q->vector >= VEC_VIRTIO ? virtio_irqs[q->vector - VEC_VIRTIO] : 0;
	vq_kick(vd, qi);

	bool ok;
	if (mode == VQ_IRQ) {
		/*
		 * A device writes the used ring before it signals, so the ring can
		 * move a moment before the interrupt lands: wait for both.
		 */
		ok = wait_until(used_arrived, q, ms);
		if (ok && q->vector >= VEC_VIRTIO) {
			struct irq_wait w = { .count = &virtio_irqs[q->vector - VEC_VIRTIO],
					      .before = irqs_before };

			ok = wait_until(irq_arrived, &w, ms);
			if (!ok)
				*why = "used ring updated but no interrupt arrived";
		}
	} else {
		clock_start();
		u64 end = clock_ticks + (ms * CLOCK_HZ + 999) / 1000;
		while (!(ok = used_arrived(q)) && clock_ticks < end)
			cpu_relax();
	}
	if (!ok) {
		if (!*why)
			*why = "request not completed in time";
		return -1;
	}
	u16 id;
	u32 len;
	vq_pop(vd, qi, &id, &len);
	if (id != head) {
		*why = "used ring names another descriptor than the one submitted";
		return -1;
	}
	return len;
}
