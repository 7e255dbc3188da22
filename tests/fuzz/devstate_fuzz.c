/*
 * devstate_fuzz.c - random bytes as saved device state: a state file is
 * untrusted, so no body given to a device's load function (or to
 * vm_devices_load as a whole) may crash, trip a sanitizer, or leave a
 * device that then crashes when its queues are kicked.
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/io_bus.c src/vmm/ratelimit.c src/vmm/devices
 * FUZZ_SOURCES: src/vmm/pci src/vmm/virtio src/vmm/snapshot/stream.c src/vmm/snapshot/devices.c
 * FUZZ_SOURCES: src/lib/err.c src/lib/log.c
 * FUZZ_SOURCES: src/vmm/sandbox/seccomp.c
 * FUZZ_LIBS: -luring -lz -ljansson -lseccomp
 *
 * The devices are a harness VM (tests/unit/vm_rig.h: no KVM, host calls
 * recorded) with every driver up. Input: byte 0 picks a section (SER0 ..
 * VSK0, in vm_devices_save's order) or, past the last, the whole device
 * state; the rest is that section's body (or the whole state). After a
 * load that succeeds every queue of the device is kicked; then the
 * device's saved body is loaded back, so each input starts from the same
 * state.
 *
 * Built with -DFUZZ_WRITE_SEEDS this file is instead a program writing the
 * real saved bodies (one seed per section, and the whole state) into the
 * directory it is given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vm_rig.h"
#include "vmm/snapshot/devices.h"

static const char *const tags[] = { "SER0", "RTC0", "KBC0", "PM0 ", "PCI0",
				    "VPRN", "RNG0", "VPD0", "BLK0", "VPBL",
				    "BAL0", "VPN0", "NET0", "VPVS", "VSK0" };
#define NR_TAGS (sizeof(tags) / sizeof(tags[0]))
#define DEV_OF(sel) ((sel) < 5 ? -1 : (int)((sel) - 5) / 2) /* virtio device, -1: legacy */

static struct rig *g;
static uint8_t *state;                 /* the devices' saved state */
static size_t state_len;
static size_t body_at[NR_TAGS], body_len[NR_TAGS];

/* The load function of section sel. */
static int load_section(unsigned sel, struct snap_reader *r)
{
	struct vm *vm = &g->vm;

	switch (sel) {
	case 0: return serial_load(&vm->serial, r);
	case 1: return rtc_load(&vm->rtc, r);
	case 2: return i8042_load(&vm->i8042, r);
	case 3: return pm_load(&vm->pm, r);
	case 4: return pci_bus_load(&vm->pci, r);
	case 6: return rng_load(&vm->rng, r);
	case 8: return blk_load(&vm->disk[0], r);
	case 10: return balloon_load(&vm->balloon, r);
	case 12: return net_load(&vm->net[0], r);
	case 14: return vsock_load(&vm->vsock, r);
	default: return virtio_pci_load(vp_of(g, (unsigned)DEV_OF(sel)), r);
	}
}

static int load_body(unsigned sel, const uint8_t *p, size_t len)
{
	struct snap_reader r;

	snap_reader_init(&r, p, len, tags[sel]);
	if (load_section(sel, &r))
		return -1;
	return snap_reader_done(&r, NULL);
}

static int load_state(const uint8_t *p, size_t len)
{
	struct snap_reader r;
	struct yun_err err;

	snap_reader_init(&r, p, len, "state");
	return vm_devices_load(&g->vm, &r, &err);
}

/* Where each section's body is in the saved state. */
static void index_state(void)
{
	uint64_t len;
	size_t off;

	memcpy(&len, state + 8, 8); /* DEVS comes first */
	off = 16 + len;
	for (unsigned s = 0; s < NR_TAGS; s++) {
		RIG_OK(memcmp(state + off, tags[s], 4));
		memcpy(&len, state + off + 8, 8);
		body_at[s] = off + 16;
		body_len[s] = len;
		off += 16 + len;
	}
}

/* A VM with every driver up and a request done on each device. */
static void setup(void)
{
	static char dir[] = "/tmp/yun-devstate-fuzz-XXXXXX";
	static const unsigned nq[NDEV] = { 1, 1, 3, 2, 3 };
	struct snap_writer w;
	struct yun_err err;

	yun_log_init("devstate_fuzz", YUN_LOG_ERROR);
	setenv("YUN_BLK_NO_URING", "1", 1); /* no ring: loads and kicks stay on this thread */
	if (!mkdtemp(dir))
		abort();
	g = rig_build(dir, "fuzz", NULL, 3);
	for (unsigned n = 0; n < NDEV; n++)
		driver_init(g, n, nq[n], n != DEV_RNG);
	post1(g, DEV_RNG, 0, BUF(DEV_RNG, 0, 0), 64, true);
	kick(g, DEV_RNG, 0);
	for (unsigned i = 0; i < 4; i++)
		post1(g, DEV_NET, NET_RXQ, BUF(DEV_NET, 0, i), 2048, true);
	kick(g, DEV_NET, NET_RXQ);
	snap_writer_init(&w);
	RIG_OK(vm_devices_save(&g->vm, &w, &err));
	state = w.buf;
	state_len = w.len;
	index_state();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sel;

	if (!g)
		setup();
	if (size < 1)
		return 0;
	sel = data[0] % (NR_TAGS + 1);
	if (sel == NR_TAGS) {
		if (load_state(data + 1, size - 1) == 0)
			for (unsigned n = 0; n < NDEV; n++)
				for (unsigned q = 0; q < vp_of(g, n)->ops->num_queues; q++)
					virtio_pci_kick(vp_of(g, n), q);
		load_state(state, state_len);
		return 0;
	}
	if (load_body(sel, data + 1, size - 1) == 0 && DEV_OF(sel) >= 0) {
		struct virtio_pci *vp = vp_of(g, (unsigned)DEV_OF(sel));

		for (unsigned q = 0; q < vp->ops->num_queues; q++)
			virtio_pci_kick(vp, q);
	}
	load_body(sel, state + body_at[sel], body_len[sel]); /* back to the saved state */
	return 0;
}

#ifdef FUZZ_WRITE_SEEDS
static void write_seed(const char *dir, const char *name, unsigned sel, const uint8_t *p,
		       size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc((int)sel, f) == EOF || fwrite(p, 1, len, f) != len || fclose(f))
		abort();
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	setup();
	for (unsigned s = 0; s < NR_TAGS; s++) {
		char name[16];

		snprintf(name, sizeof(name), "%.4s", tags[s]);
		write_seed(argv[1], name, s, state + body_at[s], body_len[s]);
	}
	write_seed(argv[1], "all", NR_TAGS, state, state_len);
	rig_destroy(g);
	return 0;
}
#endif
