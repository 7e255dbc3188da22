/*
 * serial.c - case "serial": COM1 receive by interrupt (IER.ERBFI, ISA IRQ4
 * through the IOAPIC to the BSP's LAPIC) and one transmit burst driven by
 * the THRE interrupt.
 *
 * The guest prints "YT READY"; the harness then writes one line to the
 * VMM's stdin; the guest answers "YT ECHO <len> <text>" sent from the THRE
 * interrupt handler.
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/console.h"
#include "../kernel/serial.h"
#include "../kernel/trap.h"

#define RX_MAX	 256
#define TX_BURST 16 /* FIFO depth: at most this many per THRE interrupt */

static volatile char rx_buf[RX_MAX];
static volatile u32 rx_len, rx_irqs;
static volatile bool rx_done;

static char tx_buf[RX_MAX + 32];
static volatile u32 tx_len, tx_pos, tx_irqs;
static volatile bool tx_done;

static void rx_drain(void)
{
	while (uart_in(UART_LSR) & LSR_DR) {
		char c = (char)uart_in(UART_RBR);

		if (rx_done)
			continue;
		if (c == '\r' || c == '\n')
			rx_done = true;
		else if (rx_len < RX_MAX - 1)
			rx_buf[rx_len++] = c;
	}
}

static void tx_fill(void)
{
	for (unsigned n = 0; n < TX_BURST && tx_pos < tx_len; n++) {
		if (!(uart_in(UART_LSR) & LSR_THRE))
			break;
		uart_out(UART_THR, (u8)tx_buf[tx_pos++]);
	}
	if (tx_pos == tx_len) {
		uart_out(UART_IER, IER_RDI);
		tx_done = true;
	}
}

static void com1_irq(struct trap_frame *f)
{
	(void)f;
	for (unsigned guard = 0; guard < 64; guard++) {
		u8 iir = uart_in(UART_IIR);

		if (iir & IIR_NO_INT)
			break;
		switch (iir & IIR_ID_MASK) {
		case IIR_RDI:
		case IIR_RX_TIMEOUT:
			rx_irqs++;
			rx_drain();
			break;
		case IIR_THRI:
			tx_irqs++;
			tx_fill();
			break;
		case IIR_RLSI:
			uart_in(UART_LSR);
			break;
		default:
			uart_in(6); /* MSR: clears modem status interrupts */
			break;
		}
	}
	lapic_eoi();
}

static bool rx_complete(void *arg)
{
	(void)arg;
	return rx_done;
}

static bool tx_complete(void *arg)
{
	(void)arg;
	return tx_done;
}

void case_serial(void)
{
	const char *how;

	interrupts_init();
	trap_set_handler(VEC_COM1, com1_irq);
	int gsi = ioapic_route_isa_irq(COM1_IRQ, VEC_COM1, &how);
	yt_printf("YT COM1_GSI %d %s\n", gsi, how);

	while (uart_in(UART_LSR) & LSR_DR) /* stale input */
		uart_in(UART_RBR);
	uart_out(UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	uart_out(UART_IER, IER_RDI);
	clock_start();
	yt_printf("YT READY\n");

	if (!wait_until(rx_complete, NULL, 30000))
		yt_fail("no complete input line within 30 s (%u bytes, %u RX interrupts)", rx_len,
			rx_irqs);

	/* Build the echo line; only printable ASCII goes out verbatim. */
	u32 n = (u32)yt_snprintf(tx_buf, sizeof(tx_buf), "YT ECHO %u ", rx_len);
	for (u32 i = 0; i < rx_len && n < sizeof(tx_buf) - 2; i++) {
		char c = rx_buf[i];
		tx_buf[n++] = c >= 0x20 && c < 0x7f ? c : '?';
	}
	tx_buf[n++] = '\r';
	tx_buf[n++] = '\n';

	console_lock();
	tx_len = n;
	tx_pos = 0;
	tx_done = false;
	uart_out(UART_IER, IER_RDI | IER_THRI); /* THR is empty: interrupt now */
	bool sent = wait_until(tx_complete, NULL, 5000);
	uart_out(UART_IER, IER_RDI);
	console_unlock();
	if (!sent)
		yt_fail("THRE interrupt did not drain the transmit buffer (%u of %u bytes, %u "
			"THRE interrupts)",
			tx_pos, tx_len, tx_irqs);

	yt_printf("YT SERIAL_IRQS rx=%u tx=%u\n", rx_irqs, tx_irqs);
	if (!rx_irqs)
		yt_fail("input arrived without an RX interrupt");
	yt_pass();
}
