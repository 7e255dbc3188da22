/* pm_test.c - ACPI power-off and reset through the hardware-reduced PM registers. */
#include "vmm/devices/pm.h"

#include "vmm/layout.h"

#include "check.h"

struct rec {
	int calls;
	enum vm_stop_reason reason;
};

static void rec_stop(void *ctx, enum vm_stop_reason reason, int status)
{
	struct rec *r = ctx;

	r->calls++;
	r->reason = reason;
	CHECK_EQ(status, 0);
}

static void out(struct pm *pm, uint16_t port, uint8_t v)
{
	pm_io(pm, port - PORT_PM_SLEEP_CTL, &v, 1, true);
}

static uint8_t in(struct pm *pm, uint16_t port)
{
	uint8_t v;

	pm_io(pm, port - PORT_PM_SLEEP_CTL, &v, 1, false);
	return v;
}

static void test_s5_powers_off(void)
{
	struct rec r = { 0 };
	struct vm_stopper stop = { rec_stop, &r };
	struct pm pm;

	pm_init(&pm, &stop);
	out(&pm, PORT_PM_SLEEP_CTL, PM_SLP_TYP_S5 << 2); /* no SLP_EN: nothing */
	CHECK_EQ(r.calls, 0);
	out(&pm, PORT_PM_SLEEP_CTL, (PM_SLP_TYP_S5 << 2) | PM_SLP_EN);
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(r.reason, VM_STOP_POWEROFF);
}

static void test_other_sleep_states_ignored(void)
{
	struct rec r = { 0 };
	struct vm_stopper stop = { rec_stop, &r };
	struct pm pm;
	int typ;

	pm_init(&pm, &stop);
	for (typ = 0; typ < 8; typ++)
		if (typ != PM_SLP_TYP_S5)
			out(&pm, PORT_PM_SLEEP_CTL, (typ << 2) | PM_SLP_EN);
	CHECK_EQ(r.calls, 0);
	out(&pm, PORT_PM_SLEEP_STS, 0xFF);
	CHECK_EQ(in(&pm, PORT_PM_SLEEP_STS), 0);
	CHECK_EQ(in(&pm, PORT_PM_SLEEP_CTL), 0);
	CHECK_EQ(r.calls, 0);
}

static void test_reset(void)
{
	struct rec r = { 0 };
	struct vm_stopper stop = { rec_stop, &r };
	struct pm pm;

	pm_init(&pm, &stop);
	out(&pm, PORT_PM_RESET, 0x01);
	CHECK_EQ(r.calls, 0);
	out(&pm, PORT_PM_RESET, PM_RESET_VALUE);
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(r.reason, VM_STOP_RESET);
}

int main(void)
{
	RUN(test_s5_powers_off);
	RUN(test_other_sleep_states_ignored);
	RUN(test_reset);
	return CHECK_DONE();
}
