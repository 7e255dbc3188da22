/* virtq_test.c - split virtqueue parsing: good chains, indirect, EVENT_IDX, and bad chains. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "vmm/layout.h"
#include "vmm/virtio/queue.h"

#define QSZ   8
#define DESC  0x10000ULL
#define AVAIL 0x11000ULL
#define USED  0x12000ULL
#define BUF   0x20000ULL

static struct guest_mem gm;
static struct vq vq;
static struct vq_req req;

static struct vring_desc *desc(void)
{
	return gm_ptr(&gm, DESC, 16 * QSZ);
}

static struct vring_avail *avail(void)
{
	return gm_ptr(&gm, AVAIL, 6 + 2 * QSZ);
}

static struct vring_used *used(void)
{
	return gm_ptr(&gm, USED, 6 + 8 * QSZ);
}

static void setup(bool event_idx)
{
	gm_zero(&gm, DESC, 0x3000);
	CHECK_EQ(vq_init(&vq, &gm, QSZ, DESC, AVAIL, USED, event_idx, true), 0);
}

static void make_avail(uint16_t head)
{
	struct vring_avail *a = avail();

	a->ring[a->idx % QSZ] = head;
	a->idx++;
}

static void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc()[i] = (struct vring_desc){ addr, len, flags, next };
}

static void test_geometry(void)
{
	struct vq q;

	CHECK_EQ(vq_init(&q, &gm, 0, DESC, AVAIL, USED, false, false), -EINVAL);
	CHECK_EQ(vq_init(&q, &gm, 6, DESC, AVAIL, USED, false, false), -EINVAL);
	CHECK_EQ(vq_init(&q, &gm, 2048, DESC, AVAIL, USED, false, false), -EINVAL);
	CHECK_EQ(vq_init(&q, &gm, QSZ, DESC + 8, AVAIL, USED, false, false), -EINVAL);
	CHECK_EQ(vq_init(&q, &gm, QSZ, gm.size - 16, AVAIL, USED, false, false), -EFAULT);
	CHECK_EQ(vq_init(&q, &gm, QSZ, DESC, AVAIL, LAYOUT_PCI_MMIO32, false, false), -EFAULT);
}

static void test_simple_chain(void)
{
	setup(false);
	set_desc(0, BUF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF + 0x100, 64, VRING_DESC_F_WRITE, 0);
	CHECK_EQ(vq_pop(&vq, &req), 0); /* nothing available yet */
	make_avail(0);
	CHECK_EQ(vq_pop(&vq, &req), 1);
	CHECK_EQ(req.head, 0);
	CHECK_EQ(req.nr_read, 1);
	CHECK_EQ(req.nr_write, 1);
	CHECK_EQ(req.read_len, 16);
	CHECK_EQ(req.write_len, 64);
	CHECK(req.iov[1].iov_base == gm_ptr(&gm, BUF + 0x100, 64));
	CHECK_EQ(vq_req_write(&req, "hello", 5), 5);
	vq_push(&vq, req.head, 5);
	CHECK_EQ(used()->idx, 1);
	CHECK_EQ(used()->ring[0].id, 0);
	CHECK_EQ(used()->ring[0].len, 5);
	CHECK(vq_should_notify(&vq));
	CHECK(!memcmp(gm_ptr(&gm, BUF + 0x100, 5), "hello", 5));
	CHECK_EQ(vq_pop(&vq, &req), 0);
}

static void test_no_interrupt_flag(void)
{
	setup(false);
	set_desc(0, BUF, 16, VRING_DESC_F_WRITE, 0);
	avail()->flags = VRING_AVAIL_F_NO_INTERRUPT;
	make_avail(0);
	CHECK_EQ(vq_pop(&vq, &req), 1);
	vq_push(&vq, req.head, 0);
	CHECK(!vq_should_notify(&vq));
}

static void test_event_idx(void)
{
	uint16_t *used_event, *avail_event;

	setup(true);
	used_event = &avail()->ring[QSZ];
	avail_event = (uint16_t *)&used()->ring[QSZ];
	set_desc(0, BUF, 16, VRING_DESC_F_WRITE, 0);
	set_desc(1, BUF + 16, 16, VRING_DESC_F_WRITE, 0);
	set_desc(2, BUF + 32, 16, VRING_DESC_F_WRITE, 0);
	/* Driver: interrupt me only once the used index passes 1 (i.e. after the 2nd). */
	*used_event = 1;
	make_avail(0);
	make_avail(1);
	make_avail(2);
	CHECK_EQ(vq_pop(&vq, &req), 1);
	CHECK_EQ(*avail_event, 1); /* we ask to be kicked past what we consumed */
	vq_push(&vq, req.head, 16);
	CHECK(!vq_should_notify(&vq)); /* used idx 1: not past used_event 1 yet */
	CHECK_EQ(vq_pop(&vq, &req), 1);
	vq_push(&vq, req.head, 16);
	CHECK(vq_should_notify(&vq)); /* used idx 2 passed it */
	CHECK_EQ(vq_pop(&vq, &req), 1);
	vq_push(&vq, req.head, 16);
	CHECK(!vq_should_notify(&vq)); /* used_event still 1: already signalled */
	*used_event = 2;
	CHECK(!vq_should_notify(&vq)); /* nothing new pushed since */
}

static void test_indirect(void)
{
	struct vring_desc *ind = gm_ptr(&gm, 0x30000, 3 * 16);

	setup(false);
	ind[0] = (struct vring_desc){ BUF, 8, VRING_DESC_F_NEXT, 1 };
	ind[1] = (struct vring_desc){ BUF + 8, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
	ind[2] = (struct vring_desc){ BUF + 16, 8, VRING_DESC_F_WRITE, 0 };
	set_desc(3, 0x30000, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(3);
	CHECK_EQ(vq_pop(&vq, &req), 1);
	CHECK_EQ(req.head, 3);
	CHECK_EQ(req.nr_read, 1);
	CHECK_EQ(req.nr_write, 2);
	CHECK_EQ(req.write_len, 16);
}

/* One bad chain: vq_pop must refuse it with `want`. */
static void expect_bad(int want, const char *what)
{
	make_avail(0);
	int rc = vq_pop(&vq, &req);

	if (rc != want)
		fprintf(stderr, "bad chain '%s': got %d, want %d\n", what, rc, want);
	CHECK_EQ(rc, want);
}

static void test_bad_chains(void)
{
	struct vring_desc *ind = gm_ptr(&gm, 0x30000, 4 * 16);

	setup(false);
	set_desc(0, gm.size - 8, 16, 0, 0);
	expect_bad(-EFAULT, "buffer runs off the end of RAM");

	setup(false);
	set_desc(0, 0xFFFFFFFFFFFFFFF0ULL, 0x20, 0, 0);
	expect_bad(-EFAULT, "address wraps");

	setup(false);
	set_desc(0, LAYOUT_PCI_MMIO32 + 0x1000, 16, 0, 0);
	expect_bad(-EFAULT, "buffer in the PCI hole");

	setup(false);
	set_desc(0, BUF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF, 16, VRING_DESC_F_NEXT, 0);
	expect_bad(-EINVAL, "loop");

	setup(false);
	for (uint16_t i = 0; i < QSZ; i++)
		set_desc(i, BUF, 16, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % QSZ));
	expect_bad(-EINVAL, "chain longer than the queue");

	setup(false);
	set_desc(0, BUF, 16, VRING_DESC_F_NEXT, QSZ + 3);
	expect_bad(-EINVAL, "next out of range");

	setup(false);
	set_desc(0, BUF, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(1, BUF, 16, 0, 0);
	expect_bad(-EINVAL, "readable after writable");

	setup(false);
	ind[0] = (struct vring_desc){ 0x30000, 16, VRING_DESC_F_INDIRECT, 0 };
	set_desc(0, 0x30000, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(-EINVAL, "indirect inside indirect");

	setup(false);
	set_desc(0, 0x30000, 24, VRING_DESC_F_INDIRECT, 0);
	expect_bad(-EINVAL, "indirect table not a multiple of 16");

	setup(false);
	set_desc(0, 0x30000, 16 * 4096, VRING_DESC_F_INDIRECT, 0);
	expect_bad(-EINVAL, "indirect table too big");

	setup(false);
	ind[0] = (struct vring_desc){ BUF, 8, VRING_DESC_F_NEXT, 0 };
	set_desc(0, 0x30000, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(-EINVAL, "loop inside an indirect table");

	setup(false);
	set_desc(0, BUF, 0xFFFFFFFF, VRING_DESC_F_NEXT, 1);
	set_desc(1, BUF, 0xFFFFFFFF, VRING_DESC_F_NEXT, 2);
	set_desc(2, BUF, 0xFFFFFFFF, 0, 0);
	expect_bad(-EFAULT, "huge lengths");

	setup(false);
	set_desc(0, BUF, 16, 0, 0);
	avail()->idx = QSZ + 1; /* more outstanding than the ring holds */
	CHECK_EQ(vq_pop(&vq, &req), -EINVAL);

	/* No indirect feature: an indirect descriptor is a protocol error. */
	CHECK_EQ(vq_init(&vq, &gm, QSZ, DESC, AVAIL, USED, false, false), 0);
	avail()->idx = 0;
	set_desc(0, 0x30000, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(-EINVAL, "indirect without the feature");
}

int main(void)
{
	struct yun_err err;

	if (gm_init(&gm, 64ULL << 20, &err))
		return 1;
	RUN(test_geometry);
	RUN(test_simple_chain);
	RUN(test_no_interrupt_flag);
	RUN(test_event_idx);
	RUN(test_indirect);
	RUN(test_bad_chains);
	gm_free(&gm);
	return CHECK_DONE();
}
