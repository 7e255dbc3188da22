/* devices.c - the ordered list of device sections; see devices.h. */
#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../vm.h"

/* The virtio devices a VM may have, in PCI slot order. */
enum kind { ONE = -1, K_RNG, K_DISK, K_BALLOON, K_NET, K_VSOCK, K_NR };

static const char *const kind_name[K_NR] = { "rng", "disks", "balloon", "network cards",
					      "vsock" };

/* How many of a kind this VM's configuration has. */
static unsigned kind_count(const struct vm *vm, int k)
{
	switch (k) {
	case K_RNG:
		return vm->cfg->rng ? 1 : 0;
	case K_DISK:
		return vm->cfg->nr_disks;
	case K_BALLOON:
		return vm->cfg->balloon ? 1 : 0;
	case K_NET:
		return vm->cfg->nr_nets;
	case K_VSOCK:
		return vm->cfg->vsock ? 1 : 0;
	}
	return 1;
}

static struct virtio_pci *kind_pci(struct vm *vm, int k, unsigned i)
{
	switch (k) {
	case K_RNG:
		return &vm->rng_pci;
	case K_DISK:
		return &vm->disk_pci[i];
	case K_BALLOON:
		return &vm->balloon_pci;
	case K_NET:
		return &vm->net_pci[i];
	default:
		return &vm->vsock_pci;
	}
}

/* ---- the list ------------------------------------------------------------------ */

enum body { SERIAL, RTC, I8042, PM, BUS, TRANSPORT, RNG, BLK, BALLOON, NET, VSOCK };

struct section {
	const char *tag;          /* "%u" is the device's index */
	uint32_t version;
	int kind;                 /* ONE: a single device every VM has */
	enum body body;
};

static const struct section sections[] = {
	{ "SER0", SERIAL_SNAP_VERSION, ONE, SERIAL },
	{ "RTC0", RTC_SNAP_VERSION, ONE, RTC },
	{ "KBC0", I8042_SNAP_VERSION, ONE, I8042 },
	{ "PM0", PM_SNAP_VERSION, ONE, PM },
	{ "PCI0", PCI_SNAP_VERSION, ONE, BUS },
	{ "VPRN", VIRTIO_PCI_SNAP_VERSION, K_RNG, TRANSPORT },
	{ "RNG0", RNG_SNAP_VERSION, K_RNG, RNG },
	{ "VPD%u", VIRTIO_PCI_SNAP_VERSION, K_DISK, TRANSPORT },
	{ "BLK%u", BLK_SNAP_VERSION, K_DISK, BLK },
	{ "VPBL", VIRTIO_PCI_SNAP_VERSION, K_BALLOON, TRANSPORT },
	{ "BAL0", BALLOON_SNAP_VERSION, K_BALLOON, BALLOON },
	{ "VPN%u", VIRTIO_PCI_SNAP_VERSION, K_NET, TRANSPORT },
	{ "NET%u", NET_SNAP_VERSION, K_NET, NET },
	{ "VPVS", VIRTIO_PCI_SNAP_VERSION, K_VSOCK, TRANSPORT },
	{ "VSK0", VSOCK_SNAP_VERSION, K_VSOCK, VSOCK },
};

/* Write the body of section s for device i (0 or -EBUSY). */
static int save_body(struct vm *vm, const struct section *s, unsigned i, struct snap_writer *w)
{
	switch (s->body) {
	case SERIAL:
		serial_save(&vm->serial, w);
		break;
	case RTC:
		rtc_save(&vm->rtc, w);
		break;
	case I8042:
		i8042_save(&vm->i8042, w);
		break;
	case PM:
		pm_save(&vm->pm, w);
		break;
	case BUS:
		pci_bus_save(&vm->pci, w);
		break;
	case TRANSPORT:
		virtio_pci_save(kind_pci(vm, s->kind, i), w);
		break;
	case RNG:
		rng_save(&vm->rng, w);
		break;
	case BLK:
		return blk_save(&vm->disk[i], w);
	case BALLOON:
		balloon_save(&vm->balloon, w);
		break;
	case NET:
		return net_save(&vm->net[i], w);
	case VSOCK:
		vsock_save(&vm->vsock, w);
		break;
	}
	return 0;
}

static int load_net(struct vm *vm, unsigned i, struct snap_reader *r)
{
	const struct vmm_net *c = &vm->cfg->nets[i];

	if (net_load(&vm->net[i], r))
		return -EINVAL;
	/* A configured address is the card's identity: the state must agree with it. */
	if (c->has_mac && memcmp(c->mac, vm->net[i].mac, 6))
		return snap_reader_fail(r, "tap %s: the state's MAC is not the configured one",
					c->tap);
	return 0;
}

/* Load the body of section s into device i (0, or -EINVAL with r failed). */
static int load_body(struct vm *vm, const struct section *s, unsigned i, struct snap_reader *r)
{
	switch (s->body) {
	case SERIAL:
		return serial_load(&vm->serial, r);
	case RTC:
		return rtc_load(&vm->rtc, r);
	case I8042:
		return i8042_load(&vm->i8042, r);
	case PM:
		return pm_load(&vm->pm, r);
	case BUS:
		return pci_bus_load(&vm->pci, r);
	case TRANSPORT:
		return virtio_pci_load(kind_pci(vm, s->kind, i), r);
	case RNG:
		return rng_load(&vm->rng, r);
	case BLK:
		return blk_load(&vm->disk[i], r);
	case BALLOON:
		return balloon_load(&vm->balloon, r);
	case NET:
		return load_net(vm, i, r);
	case VSOCK:
		return vsock_load(&vm->vsock, r);
	}
	return -EINVAL;
}

#define NR_SECTIONS (sizeof(sections) / sizeof(sections[0]))

static void section_tag(const struct section *s, unsigned i, char tag[8])
{
	snprintf(tag, 8, s->tag, i);
}

void vm_devices_quiesce(struct vm *vm)
{
	for (unsigned i = 0; i < kind_count(vm, K_DISK); i++)
		virtio_pci_run(&vm->disk_pci[i], 0, blk_drain);
	for (unsigned i = 0; i < kind_count(vm, K_NET); i++)
		virtio_pci_run(&vm->net_pci[i], NET_RXQ, net_unhold);
	if (kind_count(vm, K_VSOCK))
		virtio_pci_run(&vm->vsock_pci, VSOCK_RXQ, vsock_unhold);
}

int vm_devices_save(struct vm *vm, struct snap_writer *w, struct yun_err *err)
{
	vm_devices_quiesce(vm);
	snap_begin(w, "DEVS", DEVICES_SNAP_VERSION);
	for (int k = 0; k < K_NR; k++)
		snap_put_u8(w, (uint8_t)kind_count(vm, k));
	snap_end(w);
	for (unsigned s = 0; s < NR_SECTIONS; s++) {
		const struct section *sec = &sections[s];

		for (unsigned i = 0; i < kind_count(vm, sec->kind); i++) {
			char tag[8];
			int rc;

			section_tag(sec, i, tag);
			snap_begin(w, tag, sec->version);
			rc = save_body(vm, sec, i, w);
			snap_end(w);
			if (rc)
				return yun_err_set(err, -rc, "saving %s: %s", tag,
						   rc == -EBUSY ? "device still busy after quiescing"
								: strerror(-rc));
		}
	}
	return snap_writer_error(w, err);
}

/* The DEVS section: the state's devices must be this VM's. */
static int load_inventory(struct vm *vm, struct snap_reader *r, struct yun_err *err)
{
	struct snap_reader sub;
	unsigned n[K_NR];

	if (snap_section(r, "DEVS", DEVICES_SNAP_VERSION, NULL, &sub))
		return snap_reader_done(&sub, err);
	for (int k = 0; k < K_NR; k++)
		n[k] = snap_get_u8(&sub);
	for (int k = 0; k < K_NR && !sub.failed; k++)
		if (n[k] != kind_count(vm, k))
			snap_reader_fail(&sub, "the state has %u %s, this VM has %u", n[k],
					 kind_name[k], kind_count(vm, k));
	return snap_reader_done(&sub, err);
}

int vm_devices_load(struct vm *vm, struct snap_reader *r, struct yun_err *err)
{
	int rc = load_inventory(vm, r, err);

	for (unsigned s = 0; !rc && s < NR_SECTIONS; s++) {
		const struct section *sec = &sections[s];

		for (unsigned i = 0; !rc && i < kind_count(vm, sec->kind); i++) {
			struct snap_reader sub;
			char tag[8];

			section_tag(sec, i, tag);
			if (snap_section(r, tag, sec->version, NULL, &sub) == 0)
				load_body(vm, sec, i, &sub);
			rc = snap_reader_done(&sub, err);
		}
	}
	if (rc)
		return rc;
	for (int k = 0; k < K_NR; k++)
		for (unsigned i = 0; i < kind_count(vm, k); i++)
			virtio_pci_resume(kind_pci(vm, k, i));
	return 0;
}
