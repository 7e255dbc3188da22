/*
 * serial.h - the COM1 16550A: polled output for the console, plus the
 * register names the interrupt-driven serial case uses.
 */
#ifndef YT_SERIAL_H
#define YT_SERIAL_H

#include "io.h"

#define COM1	 0x3f8
#define COM1_IRQ 4

#define UART_RBR 0 /* read: receive buffer */
#define UART_THR 0 /* write: transmit holding */
#define UART_IER 1
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5

#define IER_RDI	       0x01 /* ERBFI: received data available */
#define IER_THRI       0x02 /* ETBEI: transmit holding register empty */
#define IIR_NO_INT     0x01
#define IIR_ID_MASK    0x0e
#define IIR_THRI       0x02
#define IIR_RDI	       0x04
#define IIR_RLSI       0x06
#define IIR_RX_TIMEOUT 0x0c
#define MCR_DTR	       0x01
#define MCR_RTS	       0x02
#define MCR_OUT2       0x08 /* gates the IRQ line on PC serial ports */
#define LSR_DR	       0x01
#define LSR_THRE       0x20

void serial_init(void);
void serial_putc(char c);

static inline u8 uart_in(unsigned reg)
{
	return inb((u16)(COM1 + reg));
}

static inline void uart_out(unsigned reg, u8 v)
{
	outb((u16)(COM1 + reg), v);
}

#endif
