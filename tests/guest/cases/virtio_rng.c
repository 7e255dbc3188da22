/*
 * virtio_rng.c - case "virtio-rng": the entropy device over virtio-pci.
 * Reads 64 bytes twice through queue 0: first completed by the queue's
 * MSI-X interrupt (direct descriptor), then by polling with interrupts
 * suppressed (indirect descriptor if INDIRECT_DESC was negotiated). The two
 * blocks must not be all zero and must differ. "yt.virtio=min" on the
 * command line negotiates VERSION_1 only (no EVENT_IDX, no INDIRECT_DESC).
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/lib.h"
#include "../kernel/trap.h"
#include "../kernel/virtio_pci.h"

#define RNG_BYTES 64

static void put_hex(const char *key, const u8 *p, u32 n)
{
	char line[2 * RNG_BYTES + 1];
	static const char hex[] = "0123456789abcdef";

	for (u32 i = 0; i < n; i++) {
		line[2 * i] = hex[p[i] >> 4];
		line[2 * i + 1] = hex[p[i] & 15];
	}
	line[2 * n] = '\0';
	yt_printf("YT %s %s\n", key, line);
}

/* Fill buf (the device may return fewer bytes than asked: ask again). */
static void rng_read(struct virtio_dev *vd, u8 *buf, enum vq_mode mode, bool indirect)
{
	const char *why;
	u32 got = 0;

	for (int tries = 0; got < RNG_BYTES && tries < 8; tries++) {
		struct vq_buf b = {.addr = buf + got, .len = RNG_BYTES - got, .write = true};
		long n = vq_request(vd, 0, &b, 1, indirect, mode, 2000, &why);
		if (n < 0)
			yt_fail("%s read: %s (status 0x%x)",
				mode == VQ_IRQ ? "interrupt" : "polled", why, virtio_status(vd));
		if ((u32)n > RNG_BYTES - got)
			yt_fail("device claims %ld bytes written into a %u-byte buffer", n,
				RNG_BYTES - got);
		got += (u32)n;
	}
	if (got < RNG_BYTES)
		yt_fail("only %u of %u bytes after 8 requests", got, RNG_BYTES);
}

static bool all_zero(const u8 *p, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

void case_virtio_rng(void)
{
	static struct virtio_dev vd;
	const char *why;
	u64 optional = (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC);

	if (cmdline_is("yt.virtio", "min"))
		optional = 0;
	if (!virtio_open(&vd, VIRTIO_ID_RNG, optional, true, &why))
		yt_fail("virtio-rng: %s", why);
	if (!virtio_setup_queue(&vd, 0, &why))
		yt_fail("virtio-rng queue 0: %s", why);
	virtio_driver_ok(&vd);

	u8 *a = virtio_alloc(2 * RNG_BYTES), *b = a + RNG_BYTES;
	struct virtq *q = &vd.vq[0];
	u32 vi = q->vector - VEC_VIRTIO;

	rng_read(&vd, a, VQ_IRQ, false);
	u32 irqs = virtio_irqs[vi];
	rng_read(&vd, b, VQ_POLL, true);
	u32 poll_irqs = virtio_irqs[vi] - irqs;
	put_hex("RNG_IRQ", a, RNG_BYTES);
	put_hex("RNG_POLL", b, RNG_BYTES);
	yt_printf("YT RNG_STATS irqs=%u poll_irqs=%u notifies=%u skipped=%u event_idx=%d "
		  "indirect=%d\n",
		  irqs, poll_irqs, q->notifies, q->notifies_skipped,
		  !!(vd.features & (1ULL << VIRTIO_F_EVENT_IDX)),
		  !!(vd.features & (1ULL << VIRTIO_F_INDIRECT_DESC)));
	if (irqs == 0)
		yt_fail("no MSI-X interrupt for the interrupt-mode read");
	if (all_zero(a, RNG_BYTES) || all_zero(b, RNG_BYTES))
		yt_fail("an all-zero 64-byte block");
	if (!memcmp(a, b, RNG_BYTES))
		yt_fail("the two 64-byte blocks are equal");
	yt_pass();
}
