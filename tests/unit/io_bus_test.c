/* io_bus_test.c - port dispatch: ranges, overlaps, unclaimed reads. */
#include "vmm/io_bus.h"

#include "check.h"

struct rec {
	uint64_t offset;
	uint32_t len;
	bool is_write;
	int calls;
};

static void rec_handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct rec *r = opaque;

	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	r->calls++;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void test_dispatch(void)
{
	struct io_bus bus;
	struct rec a = { 0 }, b = { 0 };
	struct yun_err err;
	uint8_t data[4];

	io_bus_init(&bus);
	CHECK_EQ(io_bus_add(&bus, "b", 0x3f8, 8, rec_handler, &b, &err), 0);
	CHECK_EQ(io_bus_add(&bus, "a", 0x60, 1, rec_handler, &a, &err), 0);
	CHECK(io_bus_add(&bus, "c", 0x3fc, 8, rec_handler, &a, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "overlaps b");

	CHECK(io_bus_access(&bus, 0x3fd, data, 1, false));
	CHECK_EQ(b.offset, 5);
	CHECK_EQ(data[0], 0x5a);
	CHECK(io_bus_access(&bus, 0x60, data, 1, true));
	CHECK_EQ(a.calls, 1);
	CHECK(a.is_write);
	CHECK(!io_bus_access(&bus, 0x61, data, 2, false));
	CHECK_EQ(data[0], 0xff);
	CHECK_EQ(data[1], 0xff);
	CHECK_EQ(a.calls, 1);
}

int main(void)
{
	RUN(test_dispatch);
	return CHECK_DONE();
}
