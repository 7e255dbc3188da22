/*
 * serial.h - a 16550A UART (COM1) as a guest sees it through eight I/O ports.
 *
 * What it may touch: its own registers, the tx callback it was given (the
 * host console), an eventfd it owns (to wake a writer waiting for RX FIFO
 * room) and its interrupt line. No KVM, no fds other than its eventfd.
 *
 * Behaviour worth knowing:
 *  - Transmission is instant: every byte written to THR is handed to tx at
 *    once, so LSR.THRE and LSR.TEMT always read 1 and the THR-empty
 *    interrupt comes straight back after a write.
 *  - The RX FIFO holds 16 bytes (1 with the FIFO disabled). Received data is
 *    reported as soon as it arrives: below the FCR trigger level as a
 *    character timeout (IIR 0x0C), at or above it as data available (0x04).
 *  - Loopback (MCR.LOOP) sends THR bytes back to RBR instead of tx, maps
 *    DTR/RTS/OUT1/OUT2 onto DSR/CTS/RI/DCD and disconnects the input: no
 *    host input is accepted meanwhile. Outside loopback the modem inputs
 *    read as DCD, DSR and CTS asserted.
 *  - The interrupt line is level-triggered. As on PCs, it only reaches the
 *    interrupt controller when MCR.OUT2 is set; in loopback the OUT2 pin is
 *    inactive, so no interrupt is delivered (interrupt identification in
 *    IIR still works).
 *
 * Threads: serial_io (vCPU thread) and serial_rx_* (console thread) may run
 * at the same time; a mutex inside struct serial orders them. tx and the
 * irq_line callback are called with that mutex held: they must not call
 * back into this API.
 */
#ifndef YUN_VMM_DEVICES_SERIAL_H
#define YUN_VMM_DEVICES_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../irq.h"
#include "../snapshot/stream.h"

#define SERIAL_NR_PORTS  8   /* register the device at PORT_COM1 with this length */
#define SERIAL_FIFO_SIZE 16

typedef void (*serial_tx_fn)(void *ctx, const uint8_t *buf, size_t n);

/* Private state: use the functions below. */
struct serial {
	pthread_mutex_t lock;
	struct irq_line irq;
	serial_tx_fn tx;
	void *tx_ctx;
	int rx_space_fd;       /* eventfd: readable once RX room frees up */
	bool rx_waiting;       /* a writer found the FIFO full and waits */

	uint8_t rx_fifo[SERIAL_FIFO_SIZE];
	unsigned int rx_head;
	unsigned int rx_count;
	uint8_t rbr;           /* last byte read, returned again on an empty read */

	uint8_t ier;
	uint8_t fcr;           /* FIFO enable and trigger bits as last written */
	uint8_t lcr;
	uint8_t mcr;
	uint8_t lsr_err;       /* sticky LSR error bits (overrun), cleared on read */
	uint8_t msr;           /* modem lines (bits 4-7) and their deltas (0-3) */
	uint8_t scr;
	uint8_t dll;
	uint8_t dlm;
	bool thr_ipending;     /* THR-empty interrupt latched */
	bool irq_level;        /* what was last put on the line */
};

/*
 * Set up a UART in its power-on state. tx receives every transmitted byte
 * (may be NULL: output dropped). The irq_line is copied.
 */
int serial_init(struct serial *s, const struct irq_line *irq, serial_tx_fn tx, void *tx_ctx,
		struct yun_err *err);

/* Back to the power-on state (a VM reset); RX contents are dropped. */
void serial_reset(struct serial *s);

/* The io_bus handler: offset 0..7 from PORT_COM1, opaque = struct serial. */
void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/*
 * Host input: put up to n bytes in the RX FIFO; returns how many fit.
 * When fewer than n fit, serial_rx_space_fd() becomes readable as soon as
 * the guest makes room (read it to reset it before pushing again).
 */
size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t n);

/* Bytes the RX FIFO can take now (0 also arms the rx-space wake-up). */
size_t serial_rx_space(struct serial *s);

/* An eventfd (non-blocking) for poll(): see serial_rx_push. */
int serial_rx_space_fd(const struct serial *s);

void serial_destroy(struct serial *s);

/*
 * Snapshot (section layout SERIAL_SNAP_VERSION): registers and the RX
 * FIFO's bytes. Loading checks them as register writes would have left
 * them and raises the interrupt line if it was high.
 */
#define SERIAL_SNAP_VERSION 1
void serial_save(struct serial *s, struct snap_writer *w);
int serial_load(struct serial *s, struct snap_reader *r);

#endif
