/*
 * net_fuzz.c - random queue memory against virtio-net's tx and rx paths:
 * nothing may crash, read or write outside guest RAM (ASan), or loop.
 *
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/net.c src/vmm/virtio/iothread.c src/vmm/virtio/throttle.c src/vmm/ratelimit.c src/lib/err.c src/lib/log.c
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c
 * FUZZ_SOURCES: src/vmm/sandbox/seccomp.c
 * FUZZ_LIBS: -ljansson -lz -lseccomp
 *
 * The TAP is replaced by a SOCK_DGRAM socketpair (one datagram = one frame,
 * as a TAP read gives): tx frames are written to it and thrown away, rx
 * reads frames queued on it beforehand. The device struct is filled by hand
 * instead of net_open(), which wants a real TAP.
 *
 * Input: byte 0 queue size (2^(n % 9)), byte 1 flags (EVENT_IDX, INDIRECT,
 * tx or rx, and which offload features the "driver" accepted), byte 2 the
 * rx frame sizes, then bytes copied over the avail ring, the descriptor
 * table and the RAM after it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/virtio/net.h"

#define RAM   (16ULL << 20)
#define AVAIL 0x1000ULL /* first, so short inputs reach the avail index */
#define DESC  0x1400ULL
#define USED  0x6000ULL
#define DATA  0x8000ULL

static struct guest_mem gm;
static struct net net;
static int peer = -1;

static void setup(void)
{
	struct yun_err err;
	int sv[2];

	if (gm_init(&gm, RAM, &err) || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv))
		abort();
	memset(&net, 0, sizeof(net));
	strcpy(net.tap, "fuzz");
	net.tap_fd = sv[0];
	net.throttle[NET_RXQ].timer_fd = net.throttle[NET_TXQ].timer_fd = -1; /* unlimited */
	peer = sv[1];
	net.tx_linear = malloc(NET_HDR_LEN + NET_MAX_FRAME);
	net.rx_spill = malloc(NET_HDR_LEN + NET_MAX_FRAME);
	if (!net.tx_linear || !net.rx_spill)
		abort();
}

static void drain(int fd)
{
	static uint8_t b[NET_HDR_LEN + NET_MAX_FRAME];

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[NET_HDR_LEN + 9000];
	static const uint64_t offload[] = {
		1ULL << VIRTIO_NET_F_CSUM, 1ULL << VIRTIO_NET_F_GUEST_CSUM,
		1ULL << VIRTIO_NET_F_HOST_TSO4, 1ULL << VIRTIO_NET_F_MRG_RXBUF,
	};
	struct vq vq;
	uint16_t qsize;
	bool tx;

	if (!gm.map)
		setup();
	if (size < 3)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
	tx = data[1] & 4;
	net.features = 0;
	for (unsigned i = 0; i < 4; i++)
		if (data[1] & (8 << i))
			net.features |= offload[i];
	/* What net_activate() does, minus TUNSETOFFLOAD on a socket. */
	net.rx_nr_chain = net.rx_nr_iov = 0;
	net.rx_cap = 0;
	net.rx_frame_len = net.rx_spill_len = 0;
	memset(gm.map, 0, DATA + 0x10000);
	memcpy(gm.map + AVAIL, data + 3,
	       size - 3 < DATA + 0x10000 - AVAIL ? size - 3 : DATA + 0x10000 - AVAIL);
	if (vq_init(&vq, &gm, qsize, DESC, AVAIL, USED, data[1] & 1, data[1] & 2))
		abort();
	if (tx) {
		net_ops.queue_notify(&net, NET_TXQ, &vq);
		drain(peer);
		return 0;
	}
	drain(net.tap_fd);
	/* A few frames of sizes from byte 2: up to 9000 bytes, some below the header. */
	for (unsigned i = 0; i < 3; i++) {
		size_t len = (size_t)((data[2] >> (2 * i)) & 3) * 3000 + (data[2] & 7);

		memset(frame, (int)i, len);
		if (send(peer, frame, len, MSG_DONTWAIT) < 0)
			break;
	}
	if (net_tap_ready(&net, NET_RXQ, &vq) == 0)
		net_ops.queue_notify(&net, NET_RXQ, &vq);
	vq_should_notify(&vq);
	return 0;
}
