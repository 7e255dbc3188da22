/* i8042_test.c - the PS/2 controller as Linux's i8042 and atkbd drivers probe it. */
#include "vmm/devices/i8042.h"

#include "check.h"

#define STS_OBF     0x01
#define STS_SYS     0x04
#define STS_AUX_OBF 0x20

struct rig {
	struct i8042 k;
	int kbd_pulses, aux_pulses;
	int kbd_level;
	int stops;
	enum vm_stop_reason reason;
};

static void rig_level(void *ctx, uint32_t gsi, int level)
{
	struct rig *r = ctx;

	if (gsi == 1) {
		if (level)
			r->kbd_pulses++;
		r->kbd_level = level;
	} else if (gsi == 12 && level) {
		r->aux_pulses++;
	}
}

static void rig_stop(void *ctx, enum vm_stop_reason reason, int status)
{
	struct rig *r = ctx;

	r->stops++;
	r->reason = reason;
	CHECK_EQ(status, 0);
}

static void rig_init(struct rig *r)
{
	struct irq_line kbd = { rig_level, r, 1 }, aux = { rig_level, r, 12 };
	struct vm_stopper stop = { rig_stop, r };
	struct yun_err err;

	memset(r, 0, sizeof(*r));
	CHECK_EQ(i8042_init(&r->k, &kbd, &aux, &stop, &err), 0);
}

static void cmd(struct rig *r, uint8_t v)
{
	i8042_cmd_io(&r->k, 0, &v, 1, true);
}

static void data_out(struct rig *r, uint8_t v)
{
	i8042_data_io(&r->k, 0, &v, 1, true);
}

static uint8_t status(struct rig *r)
{
	uint8_t v;

	i8042_cmd_io(&r->k, 0, &v, 1, false);
	return v;
}

static uint8_t data_in(struct rig *r)
{
	uint8_t v;

	i8042_data_io(&r->k, 0, &v, 1, false);
	return v;
}

static void test_reset_pulse(void)
{
	struct rig r;

	rig_init(&r);
	cmd(&r, 0xFE);
	CHECK_EQ(r.stops, 1);
	CHECK_EQ(r.reason, VM_STOP_RESET);
	cmd(&r, 0xFF);                      /* pulses nothing */
	CHECK_EQ(r.stops, 1);
	i8042_destroy(&r.k);
}

static void test_reset_via_output_port(void)
{
	struct rig r;

	rig_init(&r);
	cmd(&r, 0xD0);
	CHECK_EQ(data_in(&r) & 0x03, 0x03); /* reset line high, A20 on */
	cmd(&r, 0xD1);
	data_out(&r, 0x03);
	CHECK_EQ(r.stops, 0);
	cmd(&r, 0xD1);
	data_out(&r, 0x02);
	CHECK_EQ(r.stops, 1);
	CHECK_EQ(r.reason, VM_STOP_RESET);
	i8042_destroy(&r.k);
}

static void test_self_test(void)
{
	struct rig r;

	rig_init(&r);
	CHECK_EQ(status(&r) & STS_OBF, 0);
	cmd(&r, 0xAA);
	CHECK_EQ(status(&r) & (STS_OBF | STS_SYS), STS_OBF | STS_SYS);
	CHECK_EQ(data_in(&r), 0x55);
	CHECK_EQ(status(&r) & STS_OBF, 0);
	cmd(&r, 0xAB);
	CHECK_EQ(data_in(&r), 0x00);
	cmd(&r, 0xA9);
	CHECK_EQ(data_in(&r), 0x00);
	i8042_destroy(&r.k);
}

static void test_command_byte(void)
{
	struct rig r;

	rig_init(&r);
	cmd(&r, 0x60);
	data_out(&r, 0x00);                 /* interrupts off */
	cmd(&r, 0x20);
	CHECK_EQ(data_in(&r), 0x00);
	cmd(&r, 0xAD);
	cmd(&r, 0xA7);
	cmd(&r, 0x20);
	CHECK_EQ(data_in(&r), 0x30);        /* both ports disabled */
	cmd(&r, 0xAE);
	cmd(&r, 0xA8);
	cmd(&r, 0x20);
	CHECK_EQ(data_in(&r), 0x00);
	CHECK_EQ(r.kbd_pulses, 0);

	/* Keyboard interrupt on: each byte reaching the buffer pulses IRQ 1. */
	cmd(&r, 0x60);
	data_out(&r, 0x01);
	cmd(&r, 0x20);
	CHECK_EQ(r.kbd_pulses, 1);
	CHECK_EQ(r.kbd_level, 0);           /* edge: back down */
	CHECK_EQ(data_in(&r), 0x01);
	i8042_destroy(&r.k);
}

static void test_keyboard(void)
{
	struct rig r;

	rig_init(&r);                       /* firmware state: keyboard IRQ on */
	data_out(&r, 0xFF);                 /* reset */
	CHECK_EQ(r.kbd_pulses, 1);
	CHECK_EQ(data_in(&r), 0xFA);
	CHECK_EQ(r.kbd_pulses, 2);          /* the next byte moved in */
	CHECK_EQ(data_in(&r), 0xAA);
	CHECK_EQ(r.kbd_pulses, 2);
	data_out(&r, 0xF2);                 /* identify */
	CHECK_EQ(data_in(&r), 0xFA);
	CHECK_EQ(data_in(&r), 0xAB);
	CHECK_EQ(data_in(&r), 0x83);
	data_out(&r, 0xED);                 /* LEDs + parameter */
	CHECK_EQ(data_in(&r), 0xFA);
	data_out(&r, 0x07);
	CHECK_EQ(data_in(&r), 0xFA);
	data_out(&r, 0xF0);                 /* get scan code set */
	data_out(&r, 0x00);
	CHECK_EQ(data_in(&r), 0xFA);
	CHECK_EQ(data_in(&r), 0xFA);
	CHECK_EQ(data_in(&r), 0x02);
	data_out(&r, 0xF4);
	CHECK_EQ(data_in(&r), 0xFA);
	CHECK_EQ(status(&r) & STS_OBF, 0);
	i8042_destroy(&r.k);
}

static void test_aux_loop(void)
{
	struct rig r;

	rig_init(&r);
	cmd(&r, 0x60);
	data_out(&r, 0x03);                 /* kbd and aux interrupts */
	cmd(&r, 0xD3);
	data_out(&r, 0x5A);
	CHECK_EQ(status(&r) & (STS_OBF | STS_AUX_OBF), STS_OBF | STS_AUX_OBF);
	CHECK_EQ(r.aux_pulses, 1);
	CHECK_EQ(r.kbd_pulses, 0);
	CHECK_EQ(data_in(&r), 0x5A);
	cmd(&r, 0xD4);                      /* to the mouse: there is none */
	data_out(&r, 0xFF);
	CHECK_EQ(data_in(&r), 0xFE);
	CHECK_EQ(status(&r) & STS_OBF, 0);
	i8042_destroy(&r.k);
}

int main(void)
{
	RUN(test_reset_pulse);
	RUN(test_reset_via_output_port);
	RUN(test_self_test);
	RUN(test_command_byte);
	RUN(test_keyboard);
	RUN(test_aux_loop);
	return CHECK_DONE();
}
