/*
 * probe.c - case "probe": what a yund microVM instance shows about itself
 * (tests/e2e/yund_vm.py). The guest lists its virtio disks and network
 * cards, reads the first disk's capacity and its ext4 superblock (magic
 * and volume label, one polled read of sector 2) and the first card's MAC,
 * prints them and then stays up, halted, until its VMM is stopped: an
 * instance that runs, not a case that ends. Kept tiny: on PVM hosts every
 * guest instruction here is emulated.
 *
 *   YT PROBE disks=N nets=N
 *   YT PROBE disk capacity=<sectors> ext4=yes|no label=<volume label>
 *   YT PROBE net mac=<mac>
 *   YT PROBE ready
 */
#include "cases.h"
#include "../kernel/console.h"
#include "../kernel/lib.h"
#include "../kernel/virtio_pci.h"

#define VIRTIO_NET_F_MAC 5
#define BLK_T_IN	 0
#define EXT4_MAGIC	 0xef53

struct probe_blk_hdr {
	u32 type, reserved;
	u64 sector;
};

static bool is_virtio(const struct pci_dev *d, u16 type)
{
	return d->vendor == VIRTIO_VENDOR &&
	       (d->device == 0x1040 + type || (type == VIRTIO_ID_NET && d->device == 0x1000) ||
		(type == VIRTIO_ID_BLOCK && d->device == 0x1001));
}

static void probe_disk(void)
{
	static struct virtio_dev vd;
	const char *why;
	char label[17];

	if (!virtio_open(&vd, VIRTIO_ID_BLOCK, 0, false, &why) || !virtio_setup_queue(&vd, 0, &why))
		yt_fail("virtio-blk: %s", why);
	virtio_driver_ok(&vd);

	struct probe_blk_hdr *hdr = virtio_alloc(4096);
	u8 *status = (u8 *)hdr + 64, *sb = virtio_alloc(512);
	struct vq_buf b[3] = {
	    {.addr = hdr, .len = sizeof(*hdr), .write = false},
	    {.addr = sb, .len = 512, .write = true},
	    {.addr = status, .len = 1, .write = true},
	};

	hdr->type = BLK_T_IN;
	hdr->sector = 2; /* the superblock: bytes 1024..2047 */
	*status = 0xff;
	if (vq_request(&vd, 0, b, 3, false, VQ_POLL, 5000, &why) < 0 || *status != 0)
		yt_fail("virtio-blk: read of sector 2: %s (status %u)",
			*status ? "device error" : why, *status);
	u16 magic = (u16)(sb[56] | sb[57] << 8);
	memcpy(label, sb + 120, 16);
	label[16] = '\0';
	for (int i = 0; i < 16 && label[i]; i++)
		if (label[i] < 0x21 || label[i] > 0x7e)
			label[i] = '?';
	yt_printf("YT PROBE disk capacity=%lu ext4=%s label=%s\n",
		  (unsigned long)virtio_cfg64(&vd, 0), magic == EXT4_MAGIC ? "yes" : "no",
		  label[0] ? label : "-");
}

static void probe_net(void)
{
	static struct virtio_dev vd;
	const char *why;
	u8 m[6];

	if (!virtio_open(&vd, VIRTIO_ID_NET, 1ULL << VIRTIO_NET_F_MAC, false, &why))
		yt_fail("virtio-net: %s", why);
	if (!(vd.features & (1ULL << VIRTIO_NET_F_MAC)))
		yt_fail("virtio-net: the device offers no MAC");
	for (u32 i = 0; i < 6; i++)
		m[i] = virtio_cfg8(&vd, i);
	yt_printf("YT PROBE net mac=%02x:%02x:%02x:%02x:%02x:%02x\n", m[0], m[1], m[2], m[3], m[4],
		  m[5]);
}

void case_probe(void)
{
	const char *why;
	u32 disks = 0, nets = 0;

	if (!pci_init(&why))
		yt_fail("%s", why);
	for (u32 i = 0; i < pci.ndevs; i++) {
		disks += is_virtio(&pci.devs[i], VIRTIO_ID_BLOCK);
		nets += is_virtio(&pci.devs[i], VIRTIO_ID_NET);
	}
	yt_printf("YT PROBE disks=%u nets=%u\n", disks, nets);
	if (disks)
		probe_disk();
	if (nets)
		probe_net();
	yt_printf("YT PROBE ready\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}
