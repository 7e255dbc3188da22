/* serial_test.c - the 16550A as a guest driver sees it. */
#include "vmm/devices/serial.h"

#include <poll.h>

#include "check.h"

#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

struct rig {
	struct serial s;
	int level;          /* last level put on the line */
	int raises;         /* 0 -> 1 transitions */
	uint8_t tx[64];
	size_t tx_len;
};

static void rig_set_level(void *ctx, uint32_t gsi, int level)
{
	struct rig *r = ctx;

	CHECK_EQ(gsi, 4);
	if (level && !r->level)
		r->raises++;
	r->level = level;
}

static void rig_tx(void *ctx, const uint8_t *buf, size_t n)
{
	struct rig *r = ctx;

	while (n-- && r->tx_len < sizeof(r->tx))
		r->tx[r->tx_len++] = *buf++;
}

static void rig_init(struct rig *r)
{
	struct irq_line irq = { .set_level = rig_set_level, .ctx = r, .gsi = 4 };
	struct yun_err err;

	memset(r, 0, sizeof(*r));
	CHECK_EQ(serial_init(&r->s, &irq, rig_tx, r, &err), 0);
}

static void out(struct rig *r, int reg, uint8_t v)
{
	serial_io(&r->s, reg, &v, 1, true);
}

static uint8_t in(struct rig *r, int reg)
{
	uint8_t v = 0;

	serial_io(&r->s, reg, &v, 1, false);
	return v;
}

static bool space_fd_readable(struct rig *r)
{
	struct pollfd p = { .fd = serial_rx_space_fd(&r->s), .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_transmit(void)
{
	struct rig r;

	rig_init(&r);
	out(&r, THR, 'h');
	out(&r, THR, 'i');
	CHECK_EQ(r.tx_len, 2);
	CHECK(!memcmp(r.tx, "hi", 2));
	CHECK_EQ(in(&r, LSR) & 0x60, 0x60); /* THRE and TEMT */
	CHECK_EQ(in(&r, IIR), 0x01);        /* FIFO off, nothing pending */
	serial_destroy(&r.s);
}

static void test_thre_interrupt(void)
{
	struct rig r;

	rig_init(&r);
	out(&r, FCR, 0x01);
	out(&r, MCR, MCR_OUT2);
	CHECK_EQ(r.level, 0);
	out(&r, IER, 0x02);                 /* ETBEI with THR empty: at once */
	CHECK_EQ(r.level, 1);
	CHECK_EQ(in(&r, IIR), 0xC2);        /* THRE, FIFO enabled bits */
	CHECK_EQ(r.level, 0);               /* reading IIR acknowledged it */
	CHECK_EQ(in(&r, IIR), 0xC1);
	out(&r, THR, 'a');                  /* sent at once: THR empty again */
	CHECK_EQ(r.level, 1);
	CHECK_EQ(in(&r, IIR), 0xC2);
	/* Linux's THRE test: re-enabling ETBEI must re-assert THRE. */
	out(&r, IER, 0x00);
	out(&r, IER, 0x02);
	CHECK_EQ(in(&r, IIR), 0xC2);
	out(&r, IER, 0x00);
	CHECK_EQ(r.level, 0);
	serial_destroy(&r.s);
}

static void test_rx_fifo(void)
{
	struct rig r;
	uint8_t buf[20];
	int i;

	rig_init(&r);
	for (i = 0; i < 20; i++)
		buf[i] = 'A' + i;
	out(&r, FCR, 0x01);
	out(&r, MCR, MCR_OUT2);
	out(&r, IER, 0x01);
	CHECK_EQ(serial_rx_space(&r.s), SERIAL_FIFO_SIZE);
	CHECK_EQ(serial_rx_push(&r.s, buf, 20), 16);
	CHECK_EQ(serial_rx_space(&r.s), 0);
	CHECK_EQ(in(&r, LSR) & 0x01, 0x01);
	CHECK_EQ(r.level, 1);
	CHECK_EQ(in(&r, IIR), 0xC4);
	CHECK(!space_fd_readable(&r));
	for (i = 0; i < 16; i++)
		CHECK_EQ(in(&r, RBR), 'A' + i);
	CHECK_EQ(in(&r, LSR) & 0x01, 0);
	CHECK_EQ(r.level, 0);
	CHECK_EQ(in(&r, IIR), 0xC1);
	CHECK(space_fd_readable(&r));
	CHECK_EQ(serial_rx_push(&r.s, buf + 16, 4), 4);
	CHECK_EQ(in(&r, RBR), 'A' + 16);
	serial_destroy(&r.s);
}

static void test_rx_trigger_and_timeout(void)
{
	struct rig r;
	uint8_t buf[16] = "0123456789abcdef";

	rig_init(&r);
	out(&r, FCR, 0x81);                 /* trigger at 8 */
	out(&r, MCR, MCR_OUT2);
	out(&r, IER, 0x01);
	CHECK_EQ(serial_rx_push(&r.s, buf, 3), 3);
	CHECK_EQ(in(&r, IIR), 0xCC);        /* below trigger: character timeout */
	CHECK_EQ(serial_rx_push(&r.s, buf, 5), 5);
	CHECK_EQ(in(&r, IIR), 0xC4);        /* at trigger: data available */
	out(&r, FCR, 0x83);                 /* clear the RX FIFO */
	CHECK_EQ(in(&r, LSR) & 0x01, 0);
	CHECK_EQ(r.level, 0);
	/* FIFO off: one byte of buffer. */
	out(&r, FCR, 0x00);
	CHECK_EQ(serial_rx_push(&r.s, buf, 3), 1);
	CHECK_EQ(in(&r, IIR), 0x04);
	CHECK_EQ(in(&r, RBR), '0');
	serial_destroy(&r.s);
}

static void test_divisor_latch(void)
{
	struct rig r;

	rig_init(&r);
	out(&r, IER, 0x05);
	out(&r, LCR, 0x83);
	out(&r, DLL, 0x01);
	out(&r, DLM, 0x02);
	CHECK_EQ(in(&r, DLL), 0x01);
	CHECK_EQ(in(&r, DLM), 0x02);
	CHECK_EQ(r.tx_len, 0);              /* DLL write is not a transmit */
	out(&r, LCR, 0x03);
	CHECK_EQ(in(&r, LCR), 0x03);
	CHECK_EQ(in(&r, IER), 0x05);
	out(&r, LCR, 0x80);
	CHECK_EQ(in(&r, DLL), 0x01);
	CHECK_EQ(in(&r, DLM), 0x02);
	out(&r, SCR, 0x5a);
	CHECK_EQ(in(&r, SCR), 0x5a);
	serial_destroy(&r.s);
}

static void test_linux_probe(void)
{
	struct rig r;

	rig_init(&r);
	/* IER keeps its four bits and no others. */
	out(&r, IER, 0x00);
	CHECK_EQ(in(&r, IER), 0x00);
	out(&r, IER, 0xFF);
	CHECK_EQ(in(&r, IER), 0x0F);
	out(&r, IER, 0x00);
	/* FIFO probe: 16550A. */
	out(&r, FCR, 0x01);
	CHECK_EQ(in(&r, IIR) >> 6, 3);
	/* No EFR behind LCR 0xBF / DLAB: offset 2 is still IIR. */
	out(&r, LCR, 0xBF);
	CHECK(in(&r, IIR) != 0);
	out(&r, LCR, 0x00);
	/* Loopback MSR test: RTS -> CTS, OUT2 -> DCD. */
	out(&r, MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
	CHECK_EQ(in(&r, MSR) & 0xF0, 0x90);
	out(&r, MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
	CHECK_EQ(in(&r, MSR), 0x60 | 0x0B); /* DSR|RI, deltas CTS, DSR, DCD */
	out(&r, MCR, MCR_LOOP);
	CHECK_EQ(in(&r, MSR), 0x06);        /* DDSR, TERI on RI falling */
	out(&r, MCR, 0x00);
	CHECK_EQ(in(&r, MSR) & 0xF0, 0xB0); /* back to the host's lines */
	serial_destroy(&r.s);
}

static void test_loopback(void)
{
	struct rig r;
	uint8_t b = 'q';

	rig_init(&r);
	out(&r, FCR, 0x01);
	out(&r, IER, 0x01);
	out(&r, MCR, MCR_LOOP | MCR_OUT2);
	out(&r, THR, 'z');
	CHECK_EQ(r.tx_len, 0);              /* looped, not sent */
	CHECK_EQ(in(&r, LSR) & 0x01, 0x01);
	CHECK_EQ(in(&r, IIR), 0xC4);        /* identified... */
	CHECK_EQ(r.level, 0);               /* ...but OUT2 is off the pin */
	CHECK_EQ(in(&r, RBR), 'z');
	/* Host input is disconnected meanwhile, and reconnected after. */
	CHECK_EQ(serial_rx_push(&r.s, &b, 1), 0);
	CHECK(!space_fd_readable(&r));
	out(&r, MCR, MCR_OUT2);
	CHECK(space_fd_readable(&r));
	CHECK_EQ(serial_rx_push(&r.s, &b, 1), 1);
	CHECK_EQ(r.level, 1);
	CHECK_EQ(in(&r, RBR), 'q');
	serial_destroy(&r.s);
}

static void test_overrun(void)
{
	struct rig r;

	rig_init(&r);
	out(&r, IER, 0x04);                 /* line status interrupts only */
	out(&r, MCR, MCR_LOOP);
	out(&r, THR, '1');
	out(&r, THR, '2');                  /* FIFO off: one-byte buffer full */
	CHECK_EQ(in(&r, IIR), 0x06);
	CHECK_EQ(in(&r, LSR) & 0x03, 0x03); /* DR and OE */
	CHECK_EQ(in(&r, LSR) & 0x02, 0);    /* OE cleared by the read */
	CHECK_EQ(in(&r, IIR), 0x01);
	CHECK_EQ(in(&r, RBR), '1');
	serial_destroy(&r.s);
}

static void test_out2_gates_irq(void)
{
	struct rig r;
	uint8_t b = 'x';

	rig_init(&r);
	out(&r, IER, 0x03);
	CHECK_EQ(serial_rx_push(&r.s, &b, 1), 1);
	CHECK_EQ(in(&r, IIR), 0x04);
	CHECK_EQ(r.raises, 0);
	out(&r, MCR, MCR_OUT2);
	CHECK_EQ(r.level, 1);
	out(&r, MCR, 0);
	CHECK_EQ(r.level, 0);
	serial_destroy(&r.s);
}

static void test_modem_status_irq(void)
{
	struct rig r;

	rig_init(&r);
	out(&r, MCR, MCR_OUT2);
	out(&r, IER, 0x08);
	CHECK_EQ(in(&r, IIR), 0x01);
	out(&r, MCR, MCR_OUT2 | MCR_LOOP | MCR_RTS); /* DSR drops */
	CHECK_EQ(in(&r, IIR), 0x00);
	CHECK_EQ(in(&r, MSR) & 0x0F, 0x02);
	CHECK_EQ(in(&r, IIR), 0x01);
	serial_destroy(&r.s);
}

static void test_wide_access(void)
{
	struct rig r;
	uint8_t d[2] = { 'w', 0x02 };

	rig_init(&r);
	serial_io(&r.s, 0, d, 2, true);     /* THR then IER */
	CHECK_EQ(r.tx_len, 1);
	CHECK_EQ(in(&r, IER), 0x02);
	serial_io(&r.s, 7, d, 2, false);    /* SCR, then past the device */
	CHECK_EQ(d[0], 0);
	CHECK_EQ(d[1], 0xff);
	serial_destroy(&r.s);
}

int main(void)
{
	RUN(test_transmit);
	RUN(test_thre_interrupt);
	RUN(test_rx_fifo);
	RUN(test_rx_trigger_and_timeout);
	RUN(test_divisor_latch);
	RUN(test_linux_probe);
	RUN(test_loopback);
	RUN(test_overrun);
	RUN(test_out2_gates_irq);
	RUN(test_modem_status_irq);
	RUN(test_wide_access);
	return CHECK_DONE();
}
