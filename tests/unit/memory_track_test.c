/*
 * memory_track_test.c - dirty tracking of the VMM's own guest-RAM writes
 * (gm_track_*, memory.h), which live migration ORs with KVM's dirty log.
 */
#include "vmm/layout.h"
#include "vmm/memory.h"
#include "vmm/virtio/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static uint64_t popcount(const uint64_t *bm, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

static bool bit(const uint64_t *bm, uint64_t page)
{
	return bm[page / 64] >> (page % 64) & 1;
}

static void test_writes_are_marked_per_region(void)
{
	struct guest_mem gm;
	struct yun_err err;
	uint64_t w0, w1, *b0, *b1;
	uint32_t v = 1;

	CHECK_EQ(gm_init(&gm, 5ULL << 30, &err), 0);
	w0 = (gm.region[0].size >> 12) / 64;
	w1 = (gm.region[1].size >> 12) / 64;
	b0 = calloc(w0, 8);
	b1 = calloc(w1, 8);

	CHECK(gm_track_fetch(&gm, 0, b0) < 0);          /* never started */
	CHECK_EQ(gm_write(&gm, 0x5000, &v, 4), 0);      /* before start: not marked */
	CHECK_EQ(gm_track_start(&gm, &err), 0);
	CHECK_EQ(gm_write(&gm, 0x1000, &v, 4), 0);
	CHECK_EQ(gm_write(&gm, 0x2ffe, &v, 4), 0);      /* straddles pages 2 and 3 */
	CHECK(gm_ptr(&gm, 0x10000, 1) != NULL);         /* a read is marked too */
	CHECK_EQ(gm_write(&gm, LAYOUT_HIGH_RAM + 0x4000, &v, 4), 0);
	CHECK_EQ(gm_write(&gm, LAYOUT_LOW_RAM_MAX + 8, &v, 4), -EFAULT); /* the hole */
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);
	CHECK_EQ(gm_track_fetch(&gm, 1, b1), 0);
	CHECK(bit(b0, 1) && bit(b0, 2) && bit(b0, 3) && bit(b0, 0x10));
	CHECK_EQ(popcount(b0, w0), 4);
	CHECK(bit(b1, 4));                              /* region-relative */
	CHECK_EQ(popcount(b1, w1), 1);
	CHECK(gm_track_fetch(&gm, 2, b1) < 0);

	/*
	 * Each mark is reported by two fetches (the write it covers may land
	 * after the first), then forgotten.
	 */
	memset(b0, 0, w0 * 8);
	memset(b1, 0, w1 * 8);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);
	CHECK_EQ(gm_track_fetch(&gm, 1, b1), 0);
	CHECK_EQ(popcount(b0, w0), 4);
	CHECK_EQ(popcount(b1, w1), 1);
	memset(b0, 0, w0 * 8);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);
	CHECK_EQ(popcount(b0, w0), 0);
	CHECK_EQ(gm_write(&gm, 0x1000, &v, 4), 0);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);
	CHECK_EQ(popcount(b0, w0), 1);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);     /* OR: the caller's bits stay */
	CHECK_EQ(popcount(b0, w0), 1);
	memset(b0, 0, w0 * 8);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);
	CHECK_EQ(popcount(b0, w0), 0);

	gm_track_mark(&gm, 0x7000, 0x2000);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);
	CHECK(bit(b0, 7) && bit(b0, 8));
	CHECK_EQ(popcount(b0, w0), 2);

	gm_track_stop(&gm);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);      /* drains the second report */
	memset(b0, 0, w0 * 8);
	CHECK_EQ(gm_write(&gm, 0x9000, &v, 4), 0);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);
	CHECK_EQ(popcount(b0, w0), 0);

	/* A restart begins clean. */
	CHECK_EQ(gm_write(&gm, 0x9000, &v, 4), 0);
	CHECK_EQ(gm_track_start(&gm, &err), 0);
	CHECK_EQ(gm_track_fetch(&gm, 0, b0), 0);
	CHECK_EQ(popcount(b0, w0), 0);
	free(b0);
	free(b1);
	gm_free(&gm);
}

struct writer {
	struct guest_mem *gm;
	uint64_t pages;
	volatile bool stop;
};

static void *write_all(void *arg)
{
	struct writer *w = arg;

	for (uint64_t i = 0; i < w->pages; i++) {
		uint8_t b = (uint8_t)i;

		gm_write(w->gm, i << 12, &b, 1);
	}
	return NULL;
}

/* Fetches racing with writers lose no page: the union of fetches is every page written. */
static void test_no_mark_lost_under_concurrent_fetch(void)
{
	struct guest_mem gm;
	struct yun_err err;
	struct writer w;
	pthread_t t[2];
	uint64_t words, *bm;

	CHECK_EQ(gm_init(&gm, 64ULL << 20, &err), 0);
	words = (gm.region[0].size >> 12) / 64;
	bm = calloc(words, 8);
	CHECK_EQ(gm_track_start(&gm, &err), 0);
	w = (struct writer){ .gm = &gm, .pages = gm.region[0].size >> 12 };
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, write_all, &w);
	for (int i = 0; i < 200; i++)
		CHECK_EQ(gm_track_fetch(&gm, 0, bm), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(gm_track_fetch(&gm, 0, bm), 0);
	CHECK_EQ(popcount(bm, words), w.pages);
	free(bm);
	gm_free(&gm);
}

/* Fetch region 0 twice (a mark is reported by two fetches): what is pending now. */
static uint64_t fetch_now(struct guest_mem *gm, uint64_t *bm, uint64_t words)
{
	memset(bm, 0, words * 8);
	CHECK_EQ(gm_track_fetch(gm, 0, bm), 0);
	CHECK_EQ(gm_track_fetch(gm, 0, bm), 0);
	return popcount(bm, words);
}

enum { DESC = 0x10000, AVAIL = 0x11000, USED = 0x12000, QS = 16 };

/*
 * 64 MiB of RAM, a queue at DESC/AVAIL/USED with one chain offered (one
 * device-writable buffer of len bytes at buf), then tracking started: the
 * guest set the queue up long before a migration.
 */
static void queue_with_one_chain(struct guest_mem *gm, struct vq *vq, uint64_t buf, uint32_t len,
				 bool event_idx)
{
	struct vring_desc d = { .addr = buf, .len = len, .flags = VRING_DESC_F_WRITE };
	struct yun_err err;
	uint16_t v;

	CHECK_EQ(gm_init(gm, 64ULL << 20, &err), 0);
	CHECK_EQ(vq_init(vq, gm, QS, DESC, AVAIL, USED, event_idx, false), 0);
	CHECK_EQ(gm_write(gm, DESC, &d, sizeof(d)), 0);
	v = 0;
	CHECK_EQ(gm_write(gm, AVAIL + 4, &v, 2), 0);    /* ring[0] = chain 0 */
	v = 1;
	CHECK_EQ(gm_write(gm, AVAIL + 2, &v, 2), 0);    /* idx = 1 */
	CHECK_EQ(gm_track_start(gm, &err), 0);
}

/*
 * A virtqueue mapped before tracking starts (the guest set it up long
 * before a migration): its device-side writes to the used ring (a request
 * completed, e.g. by the pause's blk_drain) are marked; they go through
 * vq->used, not through a fresh gm_ptr().
 */
static void test_used_ring_writes_are_marked(void)
{
	struct vring_used_elem e[2] = { { 0, 1 }, { 0, 1 } };
	struct guest_mem gm;
	struct vq vq;
	struct vq_req req;
	uint64_t words, *bm;

	queue_with_one_chain(&gm, &vq, 0x13000, 1, true);
	words = (gm.region[0].size >> 12) / 64;
	bm = calloc(words, 8);
	CHECK_EQ(vq_pop(&vq, &req), 1);                  /* writes avail_event */
	CHECK(fetch_now(&gm, bm, words) >= 1);
	CHECK(bit(bm, USED >> 12));
	CHECK_EQ(fetch_now(&gm, bm, words), 0);
	vq_push(&vq, req.head, 1);
	CHECK_EQ(fetch_now(&gm, bm, words), 1);
	CHECK(bit(bm, USED >> 12));
	CHECK_EQ(fetch_now(&gm, bm, words), 0);
	vq_push_n(&vq, e, 2);
	CHECK_EQ(fetch_now(&gm, bm, words), 1);
	CHECK(bit(bm, USED >> 12));
	free(bm);
	gm_free(&gm);
}

/* A receive chain held since vq_pop() and filled later (net rx, vsock rx) is marked then. */
static void test_held_chain_filled_later_is_marked(void)
{
	enum { BUF = 0x20000 };
	struct guest_mem gm;
	struct vq vq;
	struct vq_req req;
	uint64_t words, *bm;

	queue_with_one_chain(&gm, &vq, BUF, 8192, false);
	words = (gm.region[0].size >> 12) / 64;
	bm = calloc(words, 8);
	CHECK_EQ(vq_pop(&vq, &req), 1);
	while (fetch_now(&gm, bm, words))
		; /* the marks of the pop are reported and gone: the chain is "held" */
	memset(req.iov[req.nr_read].iov_base, 0xab, 100);
	vq_iov_written(&vq, &req.iov[req.nr_read], req.nr_write, 100);
	CHECK_EQ(fetch_now(&gm, bm, words), 1);
	CHECK(bit(bm, BUF >> 12));
	vq_iov_written(&vq, &req.iov[req.nr_read], req.nr_write, 5000); /* into the 2nd page */
	CHECK_EQ(fetch_now(&gm, bm, words), 2);
	CHECK(bit(bm, BUF >> 12) && bit(bm, (BUF >> 12) + 1));
	free(bm);
	gm_free(&gm);
}

int main(void)
{
	RUN(test_writes_are_marked_per_region);
	RUN(test_no_mark_lost_under_concurrent_fetch);
	RUN(test_used_ring_writes_are_marked);
	RUN(test_held_chain_filled_later_is_marked);
	return CHECK_DONE();
}
