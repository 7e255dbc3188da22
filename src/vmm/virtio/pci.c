/* pci.c - virtio 1.x modern PCI transport; see pci.h for the BAR layout. */
#include "pci.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../../lib/log.h"

#define TRANSPORT_FEATURES                                                            \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_INDIRECT_DESC) |       \
	 (1ULL << VIRTIO_F_RING_EVENT_IDX))

struct virtio_pci_cap {
	uint8_t cap_vndr, cap_next, cap_len, cfg_type;
	uint8_t bar, id, padding[2];
	uint32_t offset, length;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_pci_cap) == 16, "virtio_pci_cap is 16 bytes");

/* struct virtio_pci_cfg_cap: the capability, then pci_cfg_data[4]. */
#define CFG_CAP_BAR    4
#define CFG_CAP_OFFSET 8
#define CFG_CAP_LENGTH 12
#define CFG_CAP_DATA   16
#define CFG_CAP_LEN    20

static struct virtio_pci *pci_to_vp(struct pci_dev *d)
{
	return d->opaque;
}

/* ---- interrupts ---------------------------------------------------------- */

/* Interrupt the driver for a queue (vector) or config change (isr bit). Lock held. */
static void vp_signal(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	if (msix_enabled(&vp->msix)) {
		if (vector != MSIX_NO_VECTOR)
			msix_signal(&vp->msix, vector);
		return;
	}
	vp->isr |= isr_bit;
	if (!vp->intx_asserted && vp->host.intx.set_level) {
		vp->intx_asserted = true;
		irq_line_set(&vp->host.intx, 1);
	}
}

static void vp_needs_reset_locked(struct virtio_pci *vp)
{
	if (vp->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	yun_info("%s: driver broke a queue rule; device needs reset", vp->ops->name);
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	vp->config_generation++;
	if (vp->status & VIRTIO_STATUS_DRIVER_OK)
		vp_signal(vp, vp->config_vector, VIRTIO_PCI_ISR_CONFIG);
}

void virtio_pci_needs_reset(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->lock);
	vp_needs_reset_locked(vp);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->lock);
	vp->config_generation++;
	if ((vp->status & VIRTIO_STATUS_DRIVER_OK) && !(vp->status & VIRTIO_STATUS_NEEDS_RESET))
		vp_signal(vp, vp->config_vector, VIRTIO_PCI_ISR_CONFIG);
	pthread_mutex_unlock(&vp->lock);
}

static bool queue_live(const struct virtio_pci *vp, const struct virtio_pci_queue *q)
{
	return q->enabled && (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(vp->status & VIRTIO_STATUS_NEEDS_RESET);
}

static void queue_done_locked(struct virtio_pci *vp, struct virtio_pci_queue *q)
{
	if (queue_live(vp, q) && vq_should_notify(&q->vq))
		vp_signal(vp, q->msix_vector, VIRTIO_PCI_ISR_QUEUE);
}

void virtio_pci_queue_done(struct virtio_pci *vp, unsigned qi)
{
	if (qi >= vp->ops->num_queues)
		return;
	pthread_mutex_lock(&vp->lock);
	queue_done_locked(vp, &vp->q[qi]);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_run(struct virtio_pci *vp, unsigned qi, virtio_pci_run_fn fn)
{
	struct virtio_pci_queue *q;

	if (qi >= vp->ops->num_queues)
		return;
	q = &vp->q[qi];
	pthread_mutex_lock(&vp->lock);
	if (!queue_live(vp, q)) {
		fn(vp->dev, qi, NULL);
	} else if (fn(vp->dev, qi, &q->vq) < 0) {
		vp_needs_reset_locked(vp);
	} else {
		queue_done_locked(vp, q);
	}
	pthread_mutex_unlock(&vp->lock);
}

/* ---- queue kicks --------------------------------------------------------- */

static void vp_run_queue_locked(struct virtio_pci *vp, struct virtio_pci_queue *q)
{
	int rc;

	if (!queue_live(vp, q))
		return;
	rc = vp->ops->queue_notify(vp->dev, q->index, &q->vq);
	if (rc < 0) {
		vp_needs_reset_locked(vp);
		return;
	}
	queue_done_locked(vp, q);
}

void virtio_pci_kick(struct virtio_pci *vp, unsigned qi)
{
	struct virtio_pci_queue *q;
	uint64_t n;

	if (qi >= vp->ops->num_queues)
		return;
	q = &vp->q[qi];
	/* Drain the eventfd first: a kick arriving after this is seen next round. */
	if (read(q->kick_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		yun_debug("%s: queue %u kick eventfd: %s", vp->ops->name, qi, strerror(errno));
	pthread_mutex_lock(&vp->lock);
	vp_run_queue_locked(vp, q);
	pthread_mutex_unlock(&vp->lock);
}

static void vp_kick_thunk(void *arg)
{
	struct virtio_pci_queue *q = arg;

	virtio_pci_kick(q->vp, q->index);
}

static void vp_notify_write(struct virtio_pci *vp, unsigned qi)
{
	uint64_t one = 1;

	if (qi >= vp->ops->num_queues)
		return;
	if (!vp->host.iothread) {
		pthread_mutex_lock(&vp->lock);
		vp_run_queue_locked(vp, &vp->q[qi]);
		pthread_mutex_unlock(&vp->lock);
		return;
	}
	/* Hand the work to the I/O thread, as the in-kernel ioeventfd would. */
	if (write(vp->q[qi].kick_fd, &one, sizeof(one)) != sizeof(one))
		yun_debug("%s: queue %u kick: %s", vp->ops->name, qi, strerror(errno));
}

/* ---- reset and status ------------------------------------------------------ */

static void vp_reset_locked(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vp->ops->num_queues; i++) {
		struct virtio_pci_queue *q = &vp->q[i];

		q->size = vp->ops->queue_max_size;
		q->msix_vector = MSIX_NO_VECTOR;
		q->enabled = false;
		q->desc = q->avail = q->used = 0;
		memset(&q->vq, 0, sizeof(q->vq));
	}
	vp->driver_features = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->config_vector = MSIX_NO_VECTOR;
	vp->queue_select = 0;
	vp->status = 0;
	vp->isr = 0;
	if (vp->intx_asserted) {
		vp->intx_asserted = false;
		irq_line_set(&vp->host.intx, 0);
	}
	if (vp->ops->reset)
		vp->ops->reset(vp->dev);
}

static void vp_write_status(struct virtio_pci *vp, uint8_t val)
{
	uint8_t old = vp->status, new = val;

	if (val == 0) {
		vp_reset_locked(vp);
		return;
	}
	if ((new & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* 3.1.1: the device refuses a subset without VERSION_1 or with unknown bits. */
		if (!(vp->driver_features & (1ULL << VIRTIO_F_VERSION_1)) ||
		    (vp->driver_features & ~vp->device_features))
			new &= ~VIRTIO_STATUS_FEATURES_OK;
	}
	if ((new & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(new & VIRTIO_STATUS_FEATURES_OK)) {
			new &= ~VIRTIO_STATUS_DRIVER_OK;
		} else {
			vp->status = new | (old & VIRTIO_STATUS_NEEDS_RESET);
			if (vp->ops->activate)
				vp->ops->activate(vp->dev, vp->driver_features);
			/* Buffers made available before DRIVER_OK are processed now. */
			for (unsigned i = 0; i < vp->ops->num_queues; i++)
				if (vq_has_avail(&vp->q[i].vq))
					vp_run_queue_locked(vp, &vp->q[i]);
			return;
		}
	}
	vp->status = new | (old & VIRTIO_STATUS_NEEDS_RESET);
}

static void vp_enable_queue(struct virtio_pci *vp, struct virtio_pci_queue *q)
{
	bool event_idx = vp->driver_features & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	bool indirect = vp->driver_features & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);

	if (q->enabled)
		return;
	if (q->size > vp->ops->queue_max_size ||
	    vq_init(&q->vq, vp->host.gm, q->size, q->desc, q->avail, q->used, event_idx,
		    indirect) < 0) {
		vp_needs_reset_locked(vp);
		return;
	}
	q->enabled = true;
}

/* ---- common configuration ------------------------------------------------ */

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void common_read(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len)
{
	uint8_t c[0x40] = { 0 };

	put32(c + VIRTIO_PCI_COMMON_DFSELECT, vp->dfselect);
	put32(c + VIRTIO_PCI_COMMON_DF,
	      vp->dfselect < 2 ? (uint32_t)(vp->device_features >> (32 * vp->dfselect)) : 0);
	put32(c + VIRTIO_PCI_COMMON_GFSELECT, vp->gfselect);
	put32(c + VIRTIO_PCI_COMMON_GF,
	      vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0);
	put16(c + VIRTIO_PCI_COMMON_MSIX, vp->config_vector);
	put16(c + VIRTIO_PCI_COMMON_NUMQ, vp->ops->num_queues);
	c[VIRTIO_PCI_COMMON_STATUS] = vp->status;
	c[VIRTIO_PCI_COMMON_CFGGEN] = vp->config_generation;
	put16(c + VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_select);
	if (vp->queue_select < vp->ops->num_queues) {
		const struct virtio_pci_queue *q = &vp->q[vp->queue_select];

		put16(c + VIRTIO_PCI_COMMON_Q_SIZE, q->size);
		put16(c + VIRTIO_PCI_COMMON_Q_MSIX, q->msix_vector);
		put16(c + VIRTIO_PCI_COMMON_Q_ENABLE, q->enabled);
		put16(c + VIRTIO_PCI_COMMON_Q_NOFF, (uint16_t)q->index);
		put64(c + VIRTIO_PCI_COMMON_Q_DESC, q->desc);
		put64(c + VIRTIO_PCI_COMMON_Q_AVAIL, q->avail);
		put64(c + VIRTIO_PCI_COMMON_Q_USED, q->used);
	}
	if (off >= sizeof(c) || len > sizeof(c) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, c + off, len);
}

/* Set bytes [lo, lo + len) of a 64-bit field (the driver may write it in halves). */
static void set_part64(uint64_t *field, unsigned lo, const uint8_t *data, uint32_t len)
{
	uint8_t b[8];

	memcpy(b, field, 8);
	memcpy(b + lo, data, len);
	memcpy(field, b, 8);
}

static uint16_t vector_or_none(const struct virtio_pci *vp, uint16_t v)
{
	return v < vp->msix.nr ? v : MSIX_NO_VECTOR;
}

static void common_write(struct virtio_pci *vp, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_pci_queue *q =
		vp->queue_select < vp->ops->num_queues ? &vp->q[vp->queue_select] : NULL;
	uint32_t v32 = 0;
	uint16_t v16;

	memcpy(&v32, data, len < 4 ? len : 4);
	v16 = (uint16_t)v32;
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		if (len == 4)
			vp->dfselect = v32;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT:
		if (len == 4)
			vp->gfselect = v32;
		return;
	case VIRTIO_PCI_COMMON_GF:
		if (len != 4 || vp->gfselect >= 2 || (vp->status & VIRTIO_STATUS_FEATURES_OK))
			return;
		set_part64(&vp->driver_features, 4 * vp->gfselect, data, 4);
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		if (len == 2)
			vp->config_vector = vector_or_none(vp, v16);
		return;
	case VIRTIO_PCI_COMMON_STATUS:
		if (len == 1)
			vp_write_status(vp, data[0]);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		if (len == 2)
			vp->queue_select = v16;
		return;
	}
	if (!q || q->enabled)
		return; /* queue registers are frozen once the queue is enabled */
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		if (len == 2)
			q->size = v16;
		return;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (len == 2)
			q->msix_vector = vector_or_none(vp, v16);
		return;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (len == 2 && v16 == 1)
			vp_enable_queue(vp, q);
		return;
	}
	if (off >= VIRTIO_PCI_COMMON_Q_DESC && off < VIRTIO_PCI_COMMON_Q_USED + 8 &&
	    (len == 4 || len == 8) && !(off & (len - 1))) {
		uint64_t *field = off < VIRTIO_PCI_COMMON_Q_AVAIL ? &q->desc
				  : off < VIRTIO_PCI_COMMON_Q_USED ? &q->avail
								   : &q->used;

		set_part64(field, off & 7, data, len);
	}
}

/* ---- BAR 0 --------------------------------------------------------------- */

void virtio_pci_bar_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *vp = opaque;
	uint64_t region = offset & ~(uint64_t)(VIRTIO_PCI_REGION_SIZE - 1);
	uint64_t off = offset - region;

	if (region == VIRTIO_PCI_MSIX_TABLE) {
		msix_table_io(&vp->msix, off, data, len, is_write);
		return;
	}
	if (region == VIRTIO_PCI_MSIX_PBA) {
		msix_pba_io(&vp->msix, off, data, len, is_write);
		return;
	}
	if (region == VIRTIO_PCI_NOTIFY_OFF) {
		if (is_write && off % VIRTIO_PCI_NOTIFY_MULT == 0)
			vp_notify_write(vp, (unsigned)(off / VIRTIO_PCI_NOTIFY_MULT));
		else if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (!is_write)
		memset(data, 0, len);
	pthread_mutex_lock(&vp->lock);
	switch (region) {
	case VIRTIO_PCI_COMMON_OFF:
		if (is_write)
			common_write(vp, off, data, len);
		else
			common_read(vp, off, data, len);
		break;
	case VIRTIO_PCI_ISR_OFF:
		if (!is_write && off == 0) {
			data[0] = vp->isr; /* reading clears it and drops INTx */
			vp->isr = 0;
			if (vp->intx_asserted) {
				vp->intx_asserted = false;
				irq_line_set(&vp->host.intx, 0);
			}
		}
		break;
	case VIRTIO_PCI_DEVICE_OFF:
		if (off >= vp->ops->config_size || len > vp->ops->config_size - off)
			break;
		if (is_write && vp->ops->config_write)
			vp->ops->config_write(vp->dev, (uint32_t)off, data, len);
		else if (!is_write && vp->ops->config_read)
			vp->ops->config_read(vp->dev, (uint32_t)off, data, len);
		break;
	}
	pthread_mutex_unlock(&vp->lock);
}

/* ---- the PCI configuration access capability (4.1.4.9) --------------------- */

/* Is [off, off + len) inside the structure at [base, base + size)? */
static bool within(uint32_t off, uint32_t len, uint32_t base, uint32_t size)
{
	return off >= base && (uint64_t)off + len <= (uint64_t)base + size;
}

/*
 * The BAR range the driver selected with cap.bar, cap.offset and
 * cap.length, if it is one the window may reach: BAR 0, 1, 2 or 4 bytes,
 * aligned, inside one of the structures the other capabilities describe
 * (so never the MSI-X table or PBA). Bus lock held.
 */
static bool cfg_window(const struct virtio_pci *vp, uint32_t *off, uint32_t *len)
{
	const struct pci_dev *d = &vp->pci;
	uint32_t o = pci_cfg_get32(d, vp->cfg_cap + CFG_CAP_OFFSET);
	uint32_t l = pci_cfg_get32(d, vp->cfg_cap + CFG_CAP_LENGTH);

	if (d->cfg[vp->cfg_cap + CFG_CAP_BAR] != VIRTIO_PCI_BAR)
		return false;
	if ((l != 1 && l != 2 && l != 4) || o % l)
		return false;
	if (!within(o, l, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_SIZE) &&
	    !within(o, l, VIRTIO_PCI_ISR_OFF, 1) &&
	    !within(o, l, VIRTIO_PCI_DEVICE_OFF, vp->ops->config_size) &&
	    !within(o, l, VIRTIO_PCI_NOTIFY_OFF, VIRTIO_PCI_NOTIFY_MULT * vp->ops->num_queues))
		return false;
	*off = o;
	*len = l;
	return true;
}

/* Does the access [off, off + len) touch pci_cfg_data? */
static bool touches_cfg_data(const struct virtio_pci *vp, uint32_t off, uint32_t len)
{
	uint32_t data = vp->cfg_cap + CFG_CAP_DATA;

	return vp->cfg_cap && off < data + 4 && off + len > data;
}

/* A read of pci_cfg_data is a read of the selected BAR range; anything else reads 0. */
static void vp_config_read(struct pci_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = pci_to_vp(d);
	uint8_t val[4] = { 0 };
	uint32_t bar_off, bar_len, win = vp->cfg_cap + CFG_CAP_DATA;

	if (!touches_cfg_data(vp, off, len))
		return;
	if (cfg_window(vp, &bar_off, &bar_len))
		virtio_pci_bar_io(vp, bar_off, val, bar_len, false);
	for (uint32_t i = 0; i < len; i++)
		if (off + i >= win && off + i < win + 4)
			data[i] = val[off + i - win];
}

/* A write of pci_cfg_data writes its first cap.length bytes to the selected BAR range. */
static void cfg_data_written(struct virtio_pci *vp)
{
	uint32_t bar_off, bar_len;

	if (cfg_window(vp, &bar_off, &bar_len))
		virtio_pci_bar_io(vp, bar_off, vp->pci.cfg + vp->cfg_cap + CFG_CAP_DATA, bar_len,
				  true);
}

/* ---- PCI glue ------------------------------------------------------------- */

static void vp_config_write(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = pci_to_vp(d);

	msix_config_write(&vp->msix, off, len);
	if (touches_cfg_data(vp, off, len))
		cfg_data_written(vp);
}

/* BAR 0 moved: move the notify ioeventfds with it (bus lock held). */
static void vp_bar_moved(struct pci_dev *d, int bar, uint64_t addr, bool mapped)
{
	struct virtio_pci *vp = pci_to_vp(d);

	if (bar != VIRTIO_PCI_BAR || !vp->host.ioeventfd)
		return;
	for (unsigned i = 0; i < vp->ops->num_queues; i++) {
		struct virtio_pci_queue *q = &vp->q[i];
		uint64_t gpa = addr + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * i;

		if (q->ioeventfd_bound) {
			vp->host.ioeventfd(vp->host.ctx, q->bound_gpa, 2, q->kick_fd, false);
			q->ioeventfd_bound = false;
		}
		if (mapped && vp->host.ioeventfd(vp->host.ctx, gpa, 2, q->kick_fd, true) == 0) {
			q->ioeventfd_bound = true;
			q->bound_gpa = gpa;
		}
	}
}

static const struct pci_dev_ops vp_pci_ops = {
	.config_write = vp_config_write,
	.config_read = vp_config_read,
	.bar_moved = vp_bar_moved,
};

/* Append a virtio capability; returns its offset in config space, or -ENOSPC. */
static int add_vcap(struct pci_dev *d, uint8_t type, uint32_t offset, uint32_t length,
		    uint8_t len, uint32_t multiplier)
{
	uint8_t at = pci_dev_add_cap(d, PCI_CAP_ID_VNDR, len);
	struct virtio_pci_cap cap = {
		.cap_vndr = PCI_CAP_ID_VNDR, .cap_len = len, .cfg_type = type,
		.bar = VIRTIO_PCI_BAR, .offset = offset, .length = length,
	};

	if (!at)
		return -ENOSPC;
	cap.cap_next = d->cfg[at + 1];
	memcpy(d->cfg + at, &cap, sizeof(cap));
	if (len > sizeof(cap))
		pci_cfg_put32(d, at + sizeof(cap), multiplier);
	return at;
}

/*
 * The PCI configuration access capability: bar, offset, length and
 * pci_cfg_data are the driver's to write (checked when used, see
 * cfg_window()); everything else in it is read-only.
 */
static int add_cfg_cap(struct virtio_pci *vp)
{
	struct pci_dev *d = &vp->pci;
	int at = add_vcap(d, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, CFG_CAP_LEN, 0);

	if (at < 0)
		return at;
	d->wmask[at + CFG_CAP_BAR] = 0xff;
	memset(d->wmask + at + CFG_CAP_OFFSET, 0xff, CFG_CAP_LEN - CFG_CAP_OFFSET);
	vp->cfg_cap = (uint8_t)at;
	return 0;
}

int virtio_pci_init(struct virtio_pci *vp, const struct virtio_device_ops *ops, void *dev,
		    const struct virtio_pci_host *host, struct yun_err *err)
{
	uint16_t nr_vectors = ops->num_queues + 1;
	struct pci_dev *d = &vp->pci;
	int rc;

	memset(vp, 0, sizeof(*vp));
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vp->q[i].kick_fd = -1;
	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES ||
	    ops->queue_max_size == 0 || ops->queue_max_size > VQ_MAX_SIZE ||
	    (ops->queue_max_size & (ops->queue_max_size - 1)) ||
	    ops->config_size > VIRTIO_PCI_REGION_SIZE)
		return yun_err_set(err, EINVAL, "%s: bad queue or config geometry", ops->name);
	vp->ops = ops;
	vp->dev = dev;
	vp->host = *host;
	vp->device_features = ops->features | TRANSPORT_FEATURES;
	pthread_mutex_init(&vp->lock, NULL);

	pci_dev_init(d, ops->name, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + ops->device_type,
		     ops->class_code, 1, VIRTIO_PCI_VENDOR, VIRTIO_PCI_SUBSYS_ID, &vp_pci_ops, vp);
	rc = pci_dev_set_bar(d, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, false, virtio_pci_bar_io, vp);
	if (!rc)
		rc = add_vcap(d, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
			      VIRTIO_PCI_COMMON_SIZE, 16, 0);
	if (rc >= 0)
		rc = add_vcap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			      VIRTIO_PCI_NOTIFY_MULT * ops->num_queues, 20,
			      VIRTIO_PCI_NOTIFY_MULT);
	if (rc >= 0)
		rc = add_vcap(d, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, 16, 0);
	if (rc >= 0 && ops->config_size)
		rc = add_vcap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
			      ops->config_size, 16, 0);
	if (rc >= 0)
		rc = add_cfg_cap(vp);
	if (!rc)
		rc = msix_init(&vp->msix, d, nr_vectors, VIRTIO_PCI_BAR, VIRTIO_PCI_MSIX_TABLE,
			       VIRTIO_PCI_MSIX_PBA, &host->msix);
	if (rc) {
		pthread_mutex_destroy(&vp->lock);
		return yun_err_set(err, -rc, "%s: PCI function setup failed", ops->name);
	}
	if (host->intx.set_level)
		pci_dev_set_intx(d, (uint8_t)host->intx.gsi);

	for (unsigned i = 0; i < ops->num_queues; i++) {
		struct virtio_pci_queue *q = &vp->q[i];

		q->vp = vp;
		q->index = i;
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0) {
			rc = yun_err_errno(err, errno, "%s: queue %u eventfd", ops->name, i);
			virtio_pci_destroy(vp);
			return rc;
		}
		if (host->iothread) {
			rc = iothread_watch(host->iothread, q->kick_fd, vp_kick_thunk, q, err);
			if (rc) {
				virtio_pci_destroy(vp);
				return rc;
			}
		}
	}
	pthread_mutex_lock(&vp->lock);
	vp_reset_locked(vp);
	pthread_mutex_unlock(&vp->lock);
	return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp->ops)
		return;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (vp->q[i].ioeventfd_bound && vp->host.ioeventfd)
			vp->host.ioeventfd(vp->host.ctx, vp->q[i].bound_gpa, 2, vp->q[i].kick_fd,
					   false);
		if (vp->q[i].kick_fd >= 0)
			close(vp->q[i].kick_fd);
		vp->q[i].kick_fd = -1;
	}
	msix_destroy(&vp->msix);
	pthread_mutex_destroy(&vp->lock);
	vp->ops = NULL;
}

/* ---- run-time operations (the control API) ------------------------------------ */

int virtio_pci_call(struct virtio_pci *vp, virtio_pci_call_fn fn, void *arg,
		    struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&vp->lock);
	rc = fn(vp->dev, arg, err);
	if (rc >= 0) {
		for (unsigned i = 0; i < vp->ops->num_queues; i++)
			queue_done_locked(vp, &vp->q[i]);
	}
	if (rc == VIRTIO_PCI_CONFIG_CHANGED) {
		vp->config_generation++;
		if ((vp->status & VIRTIO_STATUS_DRIVER_OK) &&
		    !(vp->status & VIRTIO_STATUS_NEEDS_RESET))
			vp_signal(vp, vp->config_vector, VIRTIO_PCI_ISR_CONFIG);
		rc = 0;
	}
	pthread_mutex_unlock(&vp->lock);
	return rc;
}

/* ---- snapshot ------------------------------------------------------------- */

#define KNOWN_STATUS                                                                      \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |     \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

void virtio_pci_save(struct virtio_pci *vp, struct snap_writer *w)
{
	pci_dev_save(&vp->pci, w); /* the bus lock before the device lock */
	pthread_mutex_lock(&vp->lock);
	snap_put_u64(w, vp->device_features);
	snap_put_u64(w, vp->driver_features);
	snap_put_u32(w, vp->dfselect);
	snap_put_u32(w, vp->gfselect);
	snap_put_u16(w, vp->config_vector);
	snap_put_u16(w, vp->queue_select);
	snap_put_u8(w, vp->status);
	snap_put_u8(w, vp->config_generation);
	snap_put_u8(w, vp->isr);
	snap_put_bool(w, vp->intx_asserted);
	snap_put_u16(w, vp->ops->num_queues);
	for (unsigned i = 0; i < vp->ops->num_queues; i++) {
		const struct virtio_pci_queue *q = &vp->q[i];
		struct vq_indices ix;

		vq_indices(&q->vq, &ix);
		snap_put_u16(w, q->size);
		snap_put_u16(w, q->msix_vector);
		snap_put_bool(w, q->enabled);
		snap_put_u64(w, q->desc);
		snap_put_u64(w, q->avail);
		snap_put_u64(w, q->used);
		snap_put_u16(w, ix.last_avail);
		snap_put_u16(w, ix.used_idx);
		snap_put_u16(w, ix.signalled_used);
	}
	msix_save(&vp->msix, w);
	pthread_mutex_unlock(&vp->lock);
}

/* Read and check queue i's registers and positions into q (not yet the device's). */
static int queue_load(struct virtio_pci *vp, struct snap_reader *r, unsigned i, uint64_t features,
		      struct virtio_pci_queue *q)
{
	struct vq_indices ix;
	int rc;

	q->size = snap_get_u16(r);
	q->msix_vector = snap_get_u16(r);
	q->enabled = snap_get_bool(r);
	q->desc = snap_get_u64(r);
	q->avail = snap_get_u64(r);
	q->used = snap_get_u64(r);
	ix.last_avail = snap_get_u16(r);
	ix.used_idx = snap_get_u16(r);
	ix.signalled_used = snap_get_u16(r);
	memset(&q->vq, 0, sizeof(q->vq));
	if (r->failed)
		return -EINVAL;
	if (q->msix_vector != MSIX_NO_VECTOR && q->msix_vector >= vp->msix.nr)
		return snap_reader_fail(r, "queue %u: MSI-X vector %u, the device has %u", i,
					q->msix_vector, vp->msix.nr);
	if (!q->enabled) {
		if (ix.last_avail || ix.used_idx || ix.signalled_used)
			return snap_reader_fail(r, "queue %u: not enabled but has ring positions",
						i);
		return 0;
	}
	if (q->size > vp->ops->queue_max_size || !q->size || (q->size & (q->size - 1)))
		return snap_reader_fail(r, "queue %u: size %u is not a power of two up to %u", i,
					q->size, vp->ops->queue_max_size);
	rc = vq_restore(&q->vq, vp->host.gm, q->size, q->desc, q->avail, q->used,
			features & (1ULL << VIRTIO_F_RING_EVENT_IDX),
			features & (1ULL << VIRTIO_F_RING_INDIRECT_DESC), &ix);
	if (rc == -EFAULT)
		return snap_reader_fail(r, "queue %u: rings at 0x%llx/0x%llx/0x%llx are not all in "
					"guest RAM", i, (unsigned long long)q->desc,
					(unsigned long long)q->avail, (unsigned long long)q->used);
	if (rc == -ERANGE)
		return snap_reader_fail(r, "queue %u: last_avail %u and used index %u are more "
					"than %u apart", i, ix.last_avail, ix.used_idx, q->size);
	if (rc)
		return snap_reader_fail(r, "queue %u: rings at 0x%llx/0x%llx/0x%llx misaligned", i,
					(unsigned long long)q->desc, (unsigned long long)q->avail,
					(unsigned long long)q->used);
	return 0;
}

/* The common registers' values a live device could hold; 0 or the reader failed. */
static int common_check(struct virtio_pci *vp, struct snap_reader *r, uint64_t device,
			uint64_t driver, uint16_t config_vector, uint8_t status, uint8_t isr,
			bool intx)
{
	if (device != vp->device_features)
		return snap_reader_fail(r, "%s: offered features 0x%llx, this device offers "
					"0x%llx", vp->ops->name, (unsigned long long)device,
					(unsigned long long)vp->device_features);
	if (driver & ~device)
		return snap_reader_fail(r, "driver features 0x%llx are not a subset of the offered "
					"0x%llx", (unsigned long long)driver,
					(unsigned long long)device);
	if (status & ~KNOWN_STATUS)
		return snap_reader_fail(r, "status 0x%02x has unknown bits", status);
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK))
		return snap_reader_fail(r, "status 0x%02x: DRIVER_OK without FEATURES_OK", status);
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(driver & (1ULL << VIRTIO_F_VERSION_1)))
		return snap_reader_fail(r, "status 0x%02x: FEATURES_OK without VERSION_1", status);
	if (config_vector != MSIX_NO_VECTOR && config_vector >= vp->msix.nr)
		return snap_reader_fail(r, "config MSI-X vector %u, the device has %u",
					config_vector, vp->msix.nr);
	if (isr & ~(VIRTIO_PCI_ISR_QUEUE | VIRTIO_PCI_ISR_CONFIG))
		return snap_reader_fail(r, "ISR 0x%02x has unknown bits", isr);
	if (intx && !isr)
		return snap_reader_fail(r, "INTx asserted with ISR 0");
	return 0;
}

int virtio_pci_load(struct virtio_pci *vp, struct snap_reader *r)
{
	struct virtio_pci_queue q[VIRTIO_MAX_QUEUES];
	uint64_t device, driver;
	uint32_t dfselect, gfselect;
	uint16_t config_vector, queue_select, nq;
	uint8_t status, generation, isr;
	bool intx;

	if (pci_dev_load(&vp->pci, r))
		return -EINVAL;
	device = snap_get_u64(r);
	driver = snap_get_u64(r);
	dfselect = snap_get_u32(r);
	gfselect = snap_get_u32(r);
	config_vector = snap_get_u16(r);
	queue_select = snap_get_u16(r);
	status = snap_get_u8(r);
	generation = snap_get_u8(r);
	isr = snap_get_u8(r);
	intx = snap_get_bool(r);
	nq = snap_get_u16(r);
	if (r->failed ||
	    common_check(vp, r, device, driver, config_vector, status, isr, intx))
		return -EINVAL;
	if (nq != vp->ops->num_queues)
		return snap_reader_fail(r, "%s: %u queues, this device has %u", vp->ops->name, nq,
					vp->ops->num_queues);
	for (unsigned i = 0; i < nq; i++)
		if (queue_load(vp, r, i, driver, &q[i]))
			return -EINVAL;
	if (msix_load(&vp->msix, r))
		return -EINVAL;

	pthread_mutex_lock(&vp->lock);
	vp->driver_features = driver;
	vp->dfselect = dfselect;
	vp->gfselect = gfselect;
	vp->config_vector = config_vector;
	vp->queue_select = queue_select;
	vp->status = status;
	vp->config_generation = generation;
	vp->isr = isr;
	for (unsigned i = 0; i < nq; i++) {
		vp->q[i].size = q[i].size;
		vp->q[i].msix_vector = q[i].msix_vector;
		vp->q[i].enabled = q[i].enabled;
		vp->q[i].desc = q[i].desc;
		vp->q[i].avail = q[i].avail;
		vp->q[i].used = q[i].used;
		vp->q[i].vq = q[i].vq;
	}
	/* A level-triggered line that was high is high again. */
	if (intx && !vp->intx_asserted && vp->host.intx.set_level) {
		vp->intx_asserted = true;
		irq_line_set(&vp->host.intx, 1);
	}
	/* The model learns the features as it did at DRIVER_OK; its own section follows. */
	if ((status & VIRTIO_STATUS_DRIVER_OK) && vp->ops->activate)
		vp->ops->activate(vp->dev, driver);
	pthread_mutex_unlock(&vp->lock);
	return 0;
}

void virtio_pci_resume(struct virtio_pci *vp)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vp->lock);
	for (unsigned i = 0; i < vp->ops->num_queues; i++)
		if (queue_live(vp, &vp->q[i]) &&
		    write(vp->q[i].kick_fd, &one, sizeof(one)) != sizeof(one))
			yun_debug("%s: queue %u kick: %s", vp->ops->name, i, strerror(errno));
	pthread_mutex_unlock(&vp->lock);
}
