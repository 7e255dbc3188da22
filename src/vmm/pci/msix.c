/* msix.c - MSI-X capability, table and PBA; see msix.h. */
#include "msix.h"

#include <errno.h>
#include <string.h>

#define MSIX_CAP_LEN 12
#define MSIX_VEC_MASKED 1u

int msix_init(struct msix *m, struct pci_dev *dev, uint16_t nr, int bar, uint32_t table_off,
	      uint32_t pba_off, const struct msix_host *host)
{
	memset(m, 0, sizeof(*m));
	if (nr == 0 || nr > MSIX_MAX_VECTORS || (table_off & 7) || (pba_off & 7))
		return -EINVAL;
	m->cap = pci_dev_add_cap(dev, PCI_CAP_ID_MSIX, MSIX_CAP_LEN);
	if (!m->cap)
		return -ENOSPC;
	pthread_mutex_init(&m->lock, NULL);
	m->dev = dev;
	m->nr = nr;
	m->host = *host;
	m->fn_masked = false;
	for (unsigned i = 0; i < nr; i++)
		m->table[i].ctrl = MSIX_VEC_MASKED; /* all vectors start masked */
	pci_cfg_put16(dev, m->cap + 2, (uint16_t)(nr - 1));
	pci_cfg_put32(dev, m->cap + 4, table_off | (uint32_t)bar);
	pci_cfg_put32(dev, m->cap + 8, pba_off | (uint32_t)bar);
	dev->wmask[m->cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FN_MASK) >> 8;
	return 0;
}

void msix_destroy(struct msix *m)
{
	if (m->dev)
		pthread_mutex_destroy(&m->lock);
	m->dev = NULL;
}

static bool vec_deliverable(const struct msix *m, unsigned v)
{
	return m->enabled && !m->fn_masked && !(m->table[v].ctrl & MSIX_VEC_MASKED);
}

static void vec_route(struct msix *m, unsigned v)
{
	const struct msix_entry *e = &m->table[v];

	if (m->host.route)
		m->host.route(m->host.ctx, v, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data,
			      m->enabled && !(e->ctrl & MSIX_VEC_MASKED));
}

/* A vector may have become deliverable: send what is pending. */
static void vec_flush(struct msix *m, unsigned v)
{
	if ((m->pending & (1ULL << v)) && vec_deliverable(m, v)) {
		m->pending &= ~(1ULL << v);
		if (m->host.fire)
			m->host.fire(m->host.ctx, v);
	}
}

void msix_config_write(struct msix *m, uint32_t off, uint32_t len)
{
	uint16_t ctrl;
	bool was_enabled;

	if (off + len <= m->cap + 2u || off >= m->cap + 4u)
		return;
	ctrl = pci_cfg_get16(m->dev, m->cap + 2);
	pthread_mutex_lock(&m->lock);
	was_enabled = m->enabled;
	m->enabled = ctrl & MSIX_CTRL_ENABLE;
	m->fn_masked = ctrl & MSIX_CTRL_FN_MASK;
	for (unsigned v = 0; v < m->nr; v++) {
		if (was_enabled != m->enabled)
			vec_route(m, v);
		vec_flush(m, v);
	}
	pthread_mutex_unlock(&m->lock);
}

void msix_table_io(struct msix *m, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	unsigned v = (unsigned)(offset / MSIX_ENTRY_SIZE), field = (offset % MSIX_ENTRY_SIZE) / 4;
	uint32_t *word;

	/* Dword or qword accesses, naturally aligned (PCI 3.0, 6.8.2). */
	if (v >= m->nr || (len != 4 && len != 8) || (offset & (len - 1))) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&m->lock);
	word = &m->table[v].addr_lo + field;
	if (!is_write) {
		memcpy(data, word, len);
	} else {
		bool was_masked = m->table[v].ctrl & MSIX_VEC_MASKED;

		memcpy(word, data, len);
		m->table[v].ctrl &= MSIX_VEC_MASKED; /* other control bits are reserved */
		/* Route on unmask, or on a message change while unmasked. */
		if (!(m->table[v].ctrl & MSIX_VEC_MASKED) || !was_masked)
			vec_route(m, v);
		vec_flush(m, v);
	}
	pthread_mutex_unlock(&m->lock);
}

void msix_pba_io(struct msix *m, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	uint64_t bits;

	if (is_write)
		return; /* read-only */
	memset(data, 0, len);
	if (offset >= 8 || len > 8 - offset)
		return;
	pthread_mutex_lock(&m->lock);
	bits = m->pending;
	pthread_mutex_unlock(&m->lock);
	memcpy(data, (uint8_t *)&bits + offset, len);
}

bool msix_enabled(struct msix *m)
{
	bool on;

	pthread_mutex_lock(&m->lock);
	on = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return on;
}

bool msix_signal(struct msix *m, uint16_t vector)
{
	pthread_mutex_lock(&m->lock);
	if (!m->enabled || vector >= m->nr) {
		pthread_mutex_unlock(&m->lock);
		return false;
	}
	if (vec_deliverable(m, vector)) {
		if (m->host.fire)
			m->host.fire(m->host.ctx, vector);
	} else {
		m->pending |= 1ULL << vector;
	}
	pthread_mutex_unlock(&m->lock);
	return true;
}

/* ---- snapshot ------------------------------------------------------------- */

void msix_save(struct msix *m, struct snap_writer *w)
{
	pthread_mutex_lock(&m->lock);
	snap_put_u16(w, m->nr);
	for (unsigned v = 0; v < m->nr; v++) {
		snap_put_u32(w, m->table[v].addr_lo);
		snap_put_u32(w, m->table[v].addr_hi);
		snap_put_u32(w, m->table[v].data);
		snap_put_u32(w, m->table[v].ctrl);
	}
	snap_put_u64(w, m->pending);
	pthread_mutex_unlock(&m->lock);
}

int msix_load(struct msix *m, struct snap_reader *r)
{
	struct msix_entry table[MSIX_MAX_VECTORS];
	uint64_t pending, valid;
	uint16_t nr = snap_get_u16(r), ctrl;

	if (!r->failed && nr != m->nr)
		return snap_reader_fail(r, "MSI-X: %u vectors, this device has %u", nr, m->nr);
	for (unsigned v = 0; v < m->nr; v++) {
		table[v].addr_lo = snap_get_u32(r);
		table[v].addr_hi = snap_get_u32(r);
		table[v].data = snap_get_u32(r);
		table[v].ctrl = snap_get_u32(r);
		if (!r->failed && (table[v].ctrl & ~MSIX_VEC_MASKED))
			return snap_reader_fail(r, "MSI-X vector %u: control 0x%x has reserved bits",
						v, table[v].ctrl);
	}
	pending = snap_get_u64(r);
	valid = m->nr == 64 ? UINT64_MAX : (1ULL << m->nr) - 1;
	if (!r->failed && (pending & ~valid))
		return snap_reader_fail(r, "MSI-X: pending bits 0x%llx beyond vector %u",
					(unsigned long long)pending, m->nr - 1);
	if (r->failed)
		return -EINVAL;
	/* The capability's control word came back with the config space. */
	ctrl = pci_cfg_get16(m->dev, m->cap + 2);
	pthread_mutex_lock(&m->lock);
	memcpy(m->table, table, m->nr * sizeof(table[0]));
	m->pending = pending;
	m->enabled = ctrl & MSIX_CTRL_ENABLE;
	m->fn_masked = ctrl & MSIX_CTRL_FN_MASK;
	/* A fresh VM has no routes: make those of the vectors the guest can receive. */
	for (unsigned v = 0; v < m->nr; v++) {
		if (m->enabled && !(m->table[v].ctrl & MSIX_VEC_MASKED))
			vec_route(m, v);
		vec_flush(m, v);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}
