/* serial.c - COM1 set-up and polled transmit (every console line goes here). */
#include "serial.h"

void serial_init(void)
{
	uart_out(UART_IER, 0);
	uart_out(UART_LCR, 0x80); /* DLAB: divisor 1 = 115200 baud */
	uart_out(UART_THR, 1);
	uart_out(UART_IER, 0);
	uart_out(UART_LCR, 0x03); /* 8N1 */
	uart_out(UART_FCR, 0x07); /* FIFOs on and cleared, RX trigger 1 byte */
	uart_out(UART_MCR, MCR_DTR | MCR_RTS);
}

void serial_putc(char c)
{
	/* Bounded: a UART that never says THRE must not hang the guest. */
	for (unsigned i = 0; i < 100000; i++)
		if (uart_in(UART_LSR) & LSR_THRE)
			break;
	uart_out(UART_THR, (u8)c);
}
