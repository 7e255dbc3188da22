/*
 * serial.c - 16550A UART model. See serial.h for what it does and does not
 * model; register names and bits follow the 16550A data sheet.
 */
#include "serial.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Register offsets (DLAB = LCR bit 7 switches 0 and 1 to the divisor latch). */
#define UART_RBR 0 /* read: receive buffer */
#define UART_THR 0 /* write: transmit holding */
#define UART_DLL 0 /* DLAB: divisor latch low */
#define UART_IER 1
#define UART_DLM 1 /* DLAB: divisor latch high */
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0F

#define IIR_NONE    0x01
#define IIR_MSI     0x00
#define IIR_THRI    0x02
#define IIR_RDI     0x04
#define IIR_RLSI    0x06
#define IIR_TIMEOUT 0x0C
#define IIR_FIFO_ON 0xC0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_TRIGGER  0xC0

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1F

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_PE   0x04
#define LSR_FE   0x08
#define LSR_BI   0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80
#define MSR_DELTA 0x0F
#define MSR_LINES 0xF0

/* Outside loopback there is no modem: report a cable that is always ready. */
#define MSR_HOST_LINES (MSR_DCD | MSR_DSR | MSR_CTS)

static const unsigned int rx_trigger_level[4] = { 1, 4, 8, 14 };

/* ---- helpers (called with s->lock held) ---------------------------------- */

static bool fifo_enabled(const struct serial *s)
{
	return s->fcr & FCR_ENABLE;
}

static unsigned int rx_capacity(const struct serial *s)
{
	return fifo_enabled(s) ? SERIAL_FIFO_SIZE : 1;
}

static unsigned int rx_room(const struct serial *s)
{
	if (s->mcr & MCR_LOOP)
		return 0; /* the input pin is disconnected in loopback */
	return rx_capacity(s) - s->rx_count;
}

/* Wake a writer that found the FIFO full, once there is room again. */
static void rx_space_wake(struct serial *s)
{
	uint64_t one = 1;

	if (!s->rx_waiting || rx_room(s) == 0)
		return;
	s->rx_waiting = false;
	/*
	 * An eventfd write of 8 bytes can only fail with EAGAIN, when the
	 * counter is already near its maximum: the waiter will wake anyway.
	 */
	if (write(s->rx_space_fd, &one, sizeof(one)) != sizeof(one))
		return;
}

static void rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/* Append one received byte; false (and overrun) when there is no room. */
static bool rx_put(struct serial *s, uint8_t byte)
{
	if (s->rx_count == rx_capacity(s)) {
		s->lsr_err |= LSR_OE;
		return false;
	}
	s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = byte;
	s->rx_count++;
	return true;
}

/* The highest-priority pending interrupt, as IIR bits 0-3 report it. */
static uint8_t pending_iir(const struct serial *s)
{
	if ((s->ier & IER_ELSI) && (s->lsr_err & LSR_ERRS))
		return IIR_RLSI;
	if ((s->ier & IER_ERBFI) && s->rx_count) {
		/*
		 * No timer: data below the trigger level is reported as a
		 * character timeout at once instead of four characters later.
		 */
		if (fifo_enabled(s) && s->rx_count < rx_trigger_level[s->fcr >> 6])
			return IIR_TIMEOUT;
		return IIR_RDI;
	}
	if ((s->ier & IER_ETBEI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTA))
		return IIR_MSI;
	return IIR_NONE;
}

static void update_irq(struct serial *s)
{
	bool level = pending_iir(s) != IIR_NONE;

	/* The PC gates INTR with the OUT2 pin, which loopback forces off. */
	if ((s->mcr & (MCR_OUT2 | MCR_LOOP)) != MCR_OUT2)
		level = false;
	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

/* The modem inputs MCR implies: the host's cable, or MCR's own pins in loopback. */
static uint8_t msr_lines(const struct serial *s)
{
	uint8_t lines = 0;

	if (!(s->mcr & MCR_LOOP))
		return MSR_HOST_LINES;
	if (s->mcr & MCR_RTS)
		lines |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		lines |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		lines |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		lines |= MSR_DCD;
	return lines;
}

/* Recompute the modem inputs after an MCR change; set the delta bits. */
static void update_msr(struct serial *s)
{
	uint8_t old = s->msr & MSR_LINES, new = msr_lines(s);

	if ((old ^ new) & MSR_CTS)
		s->msr |= MSR_DCTS;
	if ((old ^ new) & MSR_DSR)
		s->msr |= MSR_DDSR;
	if ((old & MSR_RI) && !(new & MSR_RI))
		s->msr |= MSR_TERI; /* trailing edge only */
	if ((old ^ new) & MSR_DCD)
		s->msr |= MSR_DDCD;
	s->msr = (s->msr & MSR_DELTA) | new;
}

static void power_on_state(struct serial *s)
{
	rx_clear(s);
	s->rbr = 0;
	s->ier = 0;
	s->fcr = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->lsr_err = 0;
	s->msr = MSR_HOST_LINES;
	s->scr = 0;
	s->dll = 12; /* 9600 baud from the 1.8432 MHz clock */
	s->dlm = 0;
	s->thr_ipending = false;
}

/* ---- register access (s->lock held) -------------------------------------- */

static void transmit(struct serial *s, uint8_t byte)
{
	s->thr_ipending = false;
	if (s->mcr & MCR_LOOP)
		rx_put(s, byte);
	else if (s->tx)
		s->tx(s->tx_ctx, &byte, 1);
	/* The byte left at once: THR is empty again. */
	s->thr_ipending = true;
}

static void write_fcr(struct serial *s, uint8_t val)
{
	bool enable = val & FCR_ENABLE;

	/* Switching the FIFOs on or off empties them. */
	if (enable != fifo_enabled(s))
		rx_clear(s);
	if (!enable) {
		s->fcr &= ~FCR_ENABLE;
	} else {
		if (val & FCR_CLEAR_RX)
			rx_clear(s);
		/* FCR_CLEAR_TX: the transmitter never holds anything. */
		s->fcr = val & (FCR_ENABLE | FCR_TRIGGER);
	}
	rx_space_wake(s);
}

static void reg_write(struct serial *s, unsigned int reg, uint8_t val)
{
	switch (reg) {
	case UART_THR:
		if (s->lcr & LCR_DLAB)
			s->dll = val;
		else
			transmit(s, val);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = val;
			break;
		}
		/* Enabling ETBEI with THR empty raises THRE at once. */
		if ((val & IER_ETBEI) && !(s->ier & IER_ETBEI))
			s->thr_ipending = true;
		s->ier = val & IER_MASK;
		break;
	case UART_FCR:
		write_fcr(s, val);
		break;
	case UART_LCR:
		s->lcr = val;
		break;
	case UART_MCR:
		s->mcr = val & MCR_MASK;
		update_msr(s);
		rx_space_wake(s); /* leaving loopback reconnects the input */
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* factory test writes: ignored */
	case UART_SCR:
		s->scr = val;
		break;
	}
	update_irq(s);
}

static uint8_t reg_read(struct serial *s, unsigned int reg)
{
	uint8_t val = 0, iir;

	switch (reg) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB) {
			val = s->dll;
			break;
		}
		if (s->rx_count) {
			s->rbr = s->rx_fifo[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
			s->rx_count--;
			rx_space_wake(s);
		}
		val = s->rbr;
		break;
	case UART_IER:
		val = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case UART_IIR:
		iir = pending_iir(s);
		/* Reading IIR acknowledges THRE when it is the reported source. */
		if (iir == IIR_THRI)
			s->thr_ipending = false;
		val = iir | (fifo_enabled(s) ? IIR_FIFO_ON : 0);
		break;
	case UART_LCR:
		val = s->lcr;
		break;
	case UART_MCR:
		val = s->mcr;
		break;
	case UART_LSR:
		val = LSR_THRE | LSR_TEMT | s->lsr_err;
		if (s->rx_count)
			val |= LSR_DR;
		s->lsr_err = 0;
		break;
	case UART_MSR:
		val = s->msr;
		s->msr &= ~MSR_DELTA;
		break;
	case UART_SCR:
		val = s->scr;
		break;
	}
	update_irq(s);
	return val;
}

/* ---- public API ---------------------------------------------------------- */

int serial_init(struct serial *s, const struct irq_line *irq, serial_tx_fn tx, void *tx_ctx,
		struct yun_err *err)
{
	int rc;

	memset(s, 0, sizeof(*s));
	if (irq)
		s->irq = *irq;
	s->tx = tx;
	s->tx_ctx = tx_ctx;
	s->rx_space_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->rx_space_fd < 0)
		return yun_err_errno(err, errno, "serial: rx-space eventfd");
	rc = pthread_mutex_init(&s->lock, NULL);
	if (rc) {
		close(s->rx_space_fd);
		s->rx_space_fd = -1;
		return yun_err_errno(err, rc, "serial: mutex");
	}
	power_on_state(s);
	return 0;
}

void serial_reset(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	power_on_state(s);
	rx_space_wake(s);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	uint32_t i;

	/* Registers are 8 bits wide: a wider access touches consecutive ones. */
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < len; i++) {
		uint64_t reg = offset + i;

		if (reg >= SERIAL_NR_PORTS) {
			if (!is_write)
				data[i] = 0xff;
		} else if (is_write) {
			reg_write(s, reg, data[i]);
		} else {
			data[i] = reg_read(s, reg);
		}
	}
	pthread_mutex_unlock(&s->lock);
}

size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t n)
{
	size_t done = 0;

	pthread_mutex_lock(&s->lock);
	while (done < n && rx_room(s) > 0)
		rx_put(s, buf[done++]);
	if (done < n)
		s->rx_waiting = true;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return done;
}

size_t serial_rx_space(struct serial *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	room = rx_room(s);
	if (room == 0)
		s->rx_waiting = true;
	pthread_mutex_unlock(&s->lock);
	return room;
}

int serial_rx_space_fd(const struct serial *s)
{
	return s->rx_space_fd;
}

void serial_destroy(struct serial *s)
{
	if (s->rx_space_fd >= 0) {
		close(s->rx_space_fd);
		s->rx_space_fd = -1;
	}
	pthread_mutex_destroy(&s->lock);
}

/* ---- snapshot ------------------------------------------------------------- */

void serial_save(struct serial *s, struct snap_writer *w)
{
	pthread_mutex_lock(&s->lock);
	snap_put_u8(w, (uint8_t)s->rx_count);
	for (unsigned int i = 0; i < s->rx_count; i++)
		snap_put_u8(w, s->rx_fifo[(s->rx_head + i) % SERIAL_FIFO_SIZE]);
	snap_put_u8(w, s->rbr);
	snap_put_u8(w, s->ier);
	snap_put_u8(w, s->fcr);
	snap_put_u8(w, s->lcr);
	snap_put_u8(w, s->mcr);
	snap_put_u8(w, s->lsr_err);
	snap_put_u8(w, s->msr);
	snap_put_u8(w, s->scr);
	snap_put_u8(w, s->dll);
	snap_put_u8(w, s->dlm);
	snap_put_bool(w, s->thr_ipending);
	pthread_mutex_unlock(&s->lock);
}

int serial_load(struct serial *s, struct snap_reader *r)
{
	struct serial n = { .rx_count = snap_get_u8(r) };

	if (n.rx_count > SERIAL_FIFO_SIZE)
		return snap_reader_fail(r, "RX FIFO holds %u bytes, at most %d", n.rx_count,
					SERIAL_FIFO_SIZE);
	snap_get_bytes(r, n.rx_fifo, n.rx_count);
	n.rbr = snap_get_u8(r);
	n.ier = snap_get_u8(r);
	n.fcr = snap_get_u8(r);
	n.lcr = snap_get_u8(r);
	n.mcr = snap_get_u8(r);
	n.lsr_err = snap_get_u8(r);
	n.msr = snap_get_u8(r);
	n.scr = snap_get_u8(r);
	n.dll = snap_get_u8(r);
	n.dlm = snap_get_u8(r);
	n.thr_ipending = snap_get_bool(r);
	if (r->failed)
		return -EINVAL;
	if (n.ier & ~IER_MASK)
		return snap_reader_fail(r, "IER 0x%02x has reserved bits", n.ier);
	if (n.fcr & ~(FCR_ENABLE | FCR_TRIGGER))
		return snap_reader_fail(r, "FCR 0x%02x has bits that do not stay set", n.fcr);
	if (n.rx_count > rx_capacity(&n))
		return snap_reader_fail(r, "RX FIFO holds %u bytes with the FIFO off", n.rx_count);
	if (n.mcr & ~MCR_MASK)
		return snap_reader_fail(r, "MCR 0x%02x has reserved bits", n.mcr);
	if (n.lsr_err & ~LSR_ERRS)
		return snap_reader_fail(r, "LSR error bits 0x%02x are not errors", n.lsr_err);
	if ((n.msr & MSR_LINES) != msr_lines(&n))
		return snap_reader_fail(r, "MSR 0x%02x: modem lines do not match MCR 0x%02x",
					n.msr, n.mcr);

	pthread_mutex_lock(&s->lock);
	memcpy(s->rx_fifo, n.rx_fifo, sizeof(s->rx_fifo));
	s->rx_head = 0;
	s->rx_count = n.rx_count;
	s->rbr = n.rbr;
	s->ier = n.ier;
	s->fcr = n.fcr;
	s->lcr = n.lcr;
	s->mcr = n.mcr;
	s->lsr_err = n.lsr_err;
	s->msr = n.msr;
	s->scr = n.scr;
	s->dll = n.dll;
	s->dlm = n.dlm;
	s->thr_ipending = n.thr_ipending;
	update_irq(s); /* a line that was high is raised again */
	pthread_mutex_unlock(&s->lock);
	return 0;
}
