/* i8042_test.c - the PS/2 controller as Linux's i8042 and atkbd drivers probe it. */
#include "vmm/devices/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

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

/* Read what the guest would: status, then data while OBF; returns bytes read. */
static size_t read_all(struct rig *r, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (n < max && (status(r) & STS_OBF))
		out[n++] = data_in(r);
	return n;
}

static const uint8_t cad1[] = { 0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D };
static const uint8_t cad2[] = { 0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14 };
static const uint8_t cad3[] = { 0x11, 0x19, 0x64, 0xF0, 0x64, 0xF0, 0x19, 0xF0, 0x11 };

static void test_ctrl_alt_del(void)
{
	uint8_t got[32];
	struct rig r;
	size_t n;

	/* Firmware's state: translation on, so the guest sees set 1. */
	rig_init(&r);
	CHECK_EQ(i8042_send_ctrl_alt_del(&r.k), 0);
	CHECK_EQ(r.kbd_pulses, 1);           /* the first byte is in the buffer: IRQ1 */
	CHECK_EQ(r.aux_pulses, 0);
	n = read_all(&r, got, sizeof(got));
	CHECK_EQ(n, sizeof(cad1));
	CHECK(!memcmp(got, cad1, sizeof(cad1)));
	CHECK_EQ(r.kbd_pulses, (int)sizeof(cad1)); /* one per byte, as each moves in */
	CHECK_EQ(r.stops, 0);                /* the guest reboots, not the controller */

	/* Translation off (command byte 0x05): the keyboard's set 2 as it is. */
	cmd(&r, 0x60);
	data_out(&r, 0x05);
	r.kbd_pulses = 0;
	CHECK_EQ(i8042_send_ctrl_alt_del(&r.k), 0);
	n = read_all(&r, got, sizeof(got));
	CHECK_EQ(n, sizeof(cad2));
	CHECK(!memcmp(got, cad2, sizeof(cad2)));
	CHECK_EQ(r.kbd_pulses, (int)sizeof(cad2));

	/* Set 3 chosen by the guest (0xF0 0x03), translation still off. */
	data_out(&r, 0xF0);
	data_out(&r, 0x03);
	CHECK_EQ(read_all(&r, got, sizeof(got)), 2); /* two ACKs */
	CHECK_EQ(i8042_send_ctrl_alt_del(&r.k), 0);
	n = read_all(&r, got, sizeof(got));
	CHECK_EQ(n, sizeof(cad3));
	CHECK(!memcmp(got, cad3, sizeof(cad3)));

	/* Keyboard interrupt disabled (command byte 0x04): bytes, no IRQ1. */
	cmd(&r, 0x60);
	data_out(&r, 0x44);
	r.kbd_pulses = 0;
	CHECK_EQ(i8042_send_ctrl_alt_del(&r.k), 0);
	CHECK_EQ(read_all(&r, got, sizeof(got)), sizeof(cad1));
	CHECK_EQ(r.kbd_pulses, 0);

	/* A guest not reading: two sequences fill the 16 bytes, a third is refused whole. */
	CHECK_EQ(i8042_send_ctrl_alt_del(&r.k), 0);
	CHECK_EQ(i8042_send_ctrl_alt_del(&r.k), 0);
	CHECK_EQ(i8042_send_ctrl_alt_del(&r.k), -ENOSPC);
	CHECK_EQ(read_all(&r, got, sizeof(got)), 2 * sizeof(cad1));
	i8042_destroy(&r.k);
}

#define CAD_ROUNDS 200

struct cad_race {
	struct rig *r;
	uint8_t got[CAD_ROUNDS * sizeof(cad1)];
	size_t n;
	int full;               /* -ENOSPC answers (the reader fell behind) */
};

static void *cad_sender(void *arg)
{
	struct cad_race *c = arg;

	for (int i = 0; i < CAD_ROUNDS;) {
		int rc = i8042_send_ctrl_alt_del(&c->r->k);

		if (rc == 0) {
			i++;
		} else {
			c->full++;
			sched_yield();
		}
	}
	return NULL;
}

/* The API thread injects while a vCPU thread polls the ports: whole sequences, in order. */
static void test_ctrl_alt_del_concurrent(void)
{
	struct timespec t0, t;
	struct cad_race c = { 0 };
	pthread_t sender;
	struct rig r;

	rig_init(&r);
	c.r = &r;
	CHECK_EQ(pthread_create(&sender, NULL, cad_sender, &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (c.n < sizeof(c.got)) {
		c.n += read_all(&r, c.got + c.n, sizeof(c.got) - c.n);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 20)
			break;
	}
	pthread_join(sender, NULL);
	CHECK_EQ(c.n, sizeof(c.got));
	for (size_t i = 0; i + sizeof(cad1) <= c.n; i += sizeof(cad1))
		if (memcmp(c.got + i, cad1, sizeof(cad1))) {
			CHECK(!"a sequence was torn");
			break;
		}
	CHECK_EQ(r.kbd_pulses, (int)sizeof(c.got));
	fprintf(stderr, "   %d sequences, %d refused while the queue was full\n", CAD_ROUNDS,
		c.full);
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
	RUN(test_ctrl_alt_del);
	RUN(test_ctrl_alt_del_concurrent);
	return CHECK_DONE();
}
