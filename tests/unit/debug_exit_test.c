/* debug_exit_test.c - the isa-debug-exit port's exit statuses. */
#include "vmm/devices/debug_exit.h"

#include "check.h"

struct rec {
	int calls;
	enum vm_stop_reason reason;
	int status;
};

static void rec_stop(void *ctx, enum vm_stop_reason reason, int status)
{
	struct rec *r = ctx;

	r->calls++;
	r->reason = reason;
	r->status = status;
}

static void test_exit_status(void)
{
	struct rec r = { 0 };
	struct vm_stopper stop = { rec_stop, &r };
	struct debug_exit d;
	uint8_t one = 0x10, two[2] = { 0x02, 0x01 }, four[4] = { 0x03, 0x00, 0x7f, 0x7f };

	debug_exit_init(&d, &stop);
	debug_exit_io(&d, 0, &one, 1, true);
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(r.reason, VM_STOP_DEBUG_EXIT);
	CHECK_EQ(r.status, 0x21);
	debug_exit_io(&d, 0, two, 2, true);
	CHECK_EQ(r.status, 0x205);
	debug_exit_io(&d, 1, &one, 1, true); /* the second port works too */
	CHECK_EQ(r.status, 0x21);
	debug_exit_io(&d, 0, four, 4, true); /* bytes past the 2-port window are not ours */
	CHECK_EQ(r.status, 0x07);
	CHECK_EQ(r.calls, 4);
}

static void test_read(void)
{
	struct rec r = { 0 };
	struct vm_stopper stop = { rec_stop, &r };
	struct debug_exit d;
	uint8_t v[2] = { 0, 0 };

	debug_exit_init(&d, &stop);
	debug_exit_io(&d, 0, v, 2, false);
	CHECK_EQ(v[0], 0xff);
	CHECK_EQ(v[1], 0xff);
	CHECK_EQ(r.calls, 0);
}

int main(void)
{
	RUN(test_exit_status);
	RUN(test_read);
	return CHECK_DONE();
}
