/*
 * i8042.c - PS/2 controller, a keyboard whose only keys are the host's
 * Ctrl+Alt+Del, and the reset line.
 * See i8042.h for the commands answered.
 */
#include "i8042.h"

#include <errno.h>
#include <string.h>

/* Status register (read at the command port). */
#define STS_OBF     0x01 /* output buffer full */
#define STS_SYS     0x04 /* system flag (command byte bit 2) */
#define STS_CMD     0x08 /* last write was to the command port */
#define STS_UNLOCK  0x10 /* keyboard not inhibited */
#define STS_AUX_OBF 0x20 /* output buffer holds aux data */

/* Command byte (controller RAM 0). */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS    0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40

/* Output port. */
#define OUTPORT_RESET 0x01 /* 0 holds the CPU in reset */
#define OUTPORT_A20   0x02

/* Controller commands. */
#define CMD_READ_RAM     0x20 /* ..0x3F */
#define CMD_WRITE_RAM    0x60 /* ..0x7F */
#define CMD_AUX_DISABLE  0xA7
#define CMD_AUX_ENABLE   0xA8
#define CMD_AUX_TEST     0xA9
#define CMD_SELF_TEST    0xAA
#define CMD_KBD_TEST     0xAB
#define CMD_KBD_DISABLE  0xAD
#define CMD_KBD_ENABLE   0xAE
#define CMD_READ_OUTPORT 0xD0
#define CMD_WRITE_OUTPORT 0xD1
#define CMD_WRITE_KBD_OB 0xD2
#define CMD_WRITE_AUX_OB 0xD3
#define CMD_WRITE_AUX    0xD4
#define CMD_PULSE        0xF0 /* ..0xFF: low nibble bits clear = pulse that line */

/* Keyboard commands and answers. */
#define KBD_SET_LEDS     0xED
#define KBD_ECHO         0xEE
#define KBD_SCANCODE_SET 0xF0
#define KBD_IDENTIFY     0xF2
#define KBD_SET_RATE     0xF3
#define KBD_RESET        0xFF
#define KBD_ACK          0xFA
#define KBD_NAK          0xFE
#define KBD_BAT_OK       0xAA

#define SELF_TEST_OK 0x55

/* ---- output buffer (k->lock held) ---------------------------------------- */

static void pulse(const struct irq_line *line)
{
	irq_line_set(line, 1);
	irq_line_set(line, 0);
}

/* Interrupt for the byte now in the output buffer, if its line is enabled. */
static void obf_interrupt(struct i8042 *k)
{
	if (!k->count)
		return;
	if (k->queue[k->head].aux) {
		if (k->ram[0] & CTR_AUXINT)
			pulse(&k->aux_irq);
	} else if (k->ram[0] & CTR_KBDINT) {
		pulse(&k->kbd_irq);
	}
}

static void queue_byte(struct i8042 *k, uint8_t byte, bool aux)
{
	unsigned int tail;

	if (k->count == I8042_QUEUE_SIZE)
		return; /* a real controller would lose it too */
	tail = (k->head + k->count) % I8042_QUEUE_SIZE;
	k->queue[tail].byte = byte;
	k->queue[tail].aux = aux;
	k->count++;
	if (k->count == 1)
		obf_interrupt(k);
}

static uint8_t read_data(struct i8042 *k)
{
	if (k->count) {
		k->last_data = k->queue[k->head].byte;
		k->head = (k->head + 1) % I8042_QUEUE_SIZE;
		k->count--;
		obf_interrupt(k); /* the next byte moves into the buffer */
	}
	return k->last_data;
}

static uint8_t read_status(const struct i8042 *k)
{
	uint8_t sts = STS_UNLOCK;

	if (k->count) {
		sts |= STS_OBF;
		if (k->queue[k->head].aux)
			sts |= STS_AUX_OBF;
	}
	if (k->ram[0] & CTR_SYS)
		sts |= STS_SYS;
	if (k->last_write_cmd)
		sts |= STS_CMD;
	return sts;
}

/* ---- the keyboard -------------------------------------------------------- */

static void kbd_write(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->kbd_cmd;

	if (cmd) {
		/* The parameter byte of a two-byte command. */
		k->kbd_cmd = 0;
		queue_byte(k, KBD_ACK, false);
		if (cmd == KBD_SCANCODE_SET) {
			if (val == 0)
				queue_byte(k, k->scancode_set, false);
			else if (val <= 3)
				k->scancode_set = val;
		}
		return;
	}
	switch (val) {
	case KBD_SET_LEDS:
	case KBD_SET_RATE:
	case KBD_SCANCODE_SET:
		k->kbd_cmd = val;
		queue_byte(k, KBD_ACK, false);
		break;
	case KBD_ECHO:
		queue_byte(k, KBD_ECHO, false);
		break;
	case KBD_IDENTIFY:
		queue_byte(k, KBD_ACK, false);
		queue_byte(k, 0xAB, false);
		queue_byte(k, 0x83, false);
		break;
	case KBD_RESET:
		k->scancode_set = 2;
		queue_byte(k, KBD_ACK, false);
		queue_byte(k, KBD_BAT_OK, false);
		break;
	default:
		/* Enable/disable scanning, defaults, typematic modes...: nothing to do. */
		queue_byte(k, KBD_ACK, false);
		break;
	}
}

/* ---- the controller (k->lock held); true = pulse the reset line ------------ */

static bool write_outport(struct i8042 *k, uint8_t val)
{
	k->outport = val;
	return !(val & OUTPORT_RESET);
}

static bool controller_cmd(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0;
	k->kbd_cmd = 0;
	if (cmd >= CMD_READ_RAM && cmd < CMD_READ_RAM + 0x20) {
		queue_byte(k, k->ram[cmd & 0x1F], false);
		return false;
	}
	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 0x20) {
		k->pending_cmd = cmd;
		return false;
	}
	if (cmd >= CMD_PULSE)
		return !(cmd & OUTPORT_RESET);

	switch (cmd) {
	case CMD_AUX_DISABLE:
		k->ram[0] |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->ram[0] &= ~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		queue_byte(k, 0x00, false); /* no clock or data line stuck */
		break;
	case CMD_SELF_TEST:
		k->ram[0] |= CTR_SYS;
		queue_byte(k, SELF_TEST_OK, false);
		break;
	case CMD_KBD_DISABLE:
		k->ram[0] |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ram[0] &= ~CTR_KBDDIS;
		break;
	case CMD_READ_OUTPORT:
		queue_byte(k, k->outport, false);
		break;
	case CMD_WRITE_OUTPORT:
	case CMD_WRITE_KBD_OB:
	case CMD_WRITE_AUX_OB:
	case CMD_WRITE_AUX:
		k->pending_cmd = cmd;
		break;
	default:
		break; /* unknown commands are ignored, as most controllers do */
	}
	return false;
}

/* The data byte of a controller command; true = pulse reset. */
static bool controller_data(struct i8042 *k, uint8_t cmd, uint8_t val)
{
	uint8_t old_ctr;

	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 0x20) {
		old_ctr = k->ram[0];
		k->ram[cmd & 0x1F] = val;
		/* An interrupt enabled while the buffer is full fires now. */
		if ((k->ram[0] & ~old_ctr) & (CTR_KBDINT | CTR_AUXINT))
			obf_interrupt(k);
		return false;
	}
	switch (cmd) {
	case CMD_WRITE_OUTPORT:
		return write_outport(k, val);
	case CMD_WRITE_KBD_OB:
		queue_byte(k, val, false);
		break;
	case CMD_WRITE_AUX_OB:
		queue_byte(k, val, true);
		break;
	case CMD_WRITE_AUX:
		queue_byte(k, KBD_NAK, true); /* no mouse on the aux port */
		break;
	}
	return false;
}

/* ---- public API ---------------------------------------------------------- */

int i8042_init(struct i8042 *k, const struct irq_line *kbd_irq, const struct irq_line *aux_irq,
	       const struct vm_stopper *stop, struct yun_err *err)
{
	int rc;

	memset(k, 0, sizeof(*k));
	rc = pthread_mutex_init(&k->lock, NULL);
	if (rc)
		return yun_err_errno(err, rc, "i8042: mutex");
	if (kbd_irq)
		k->kbd_irq = *kbd_irq;
	if (aux_irq)
		k->aux_irq = *aux_irq;
	if (stop)
		k->stop = *stop;
	/* What firmware leaves behind: keyboard interrupt, POST passed, translation. */
	k->ram[0] = CTR_KBDINT | CTR_SYS | CTR_XLATE;
	k->outport = OUTPORT_RESET | OUTPORT_A20;
	k->scancode_set = 2;
	return 0;
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;
	uint8_t cmd;

	/* One port: bytes of a wider access beyond it belong to nobody. */
	if (!is_write)
		memset(data, 0xff, len);
	if (offset != 0 || len == 0)
		return;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->last_write_cmd = false;
		cmd = k->pending_cmd;
		k->pending_cmd = 0;
		if (cmd)
			reset = controller_data(k, cmd, data[0]);
		else
			kbd_write(k, data[0]);
	} else {
		data[0] = read_data(k);
	}
	pthread_mutex_unlock(&k->lock);
	if (reset)
		vm_stop_request(&k->stop, VM_STOP_RESET, 0);
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;

	if (!is_write)
		memset(data, 0xff, len);
	if (offset != 0 || len == 0)
		return;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->last_write_cmd = true;
		reset = controller_cmd(k, data[0]);
	} else {
		data[0] = read_status(k);
	}
	pthread_mutex_unlock(&k->lock);
	if (reset)
		vm_stop_request(&k->stop, VM_STOP_RESET, 0);
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

/* ---- keys from the host ---------------------------------------------------- */

static const uint8_t cad_set1[] = { 0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D };
static const uint8_t cad_set2[] = { 0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71,
				    0xF0, 0x11, 0xF0, 0x14 };
static const uint8_t cad_set3[] = { 0x11, 0x19, 0x64, 0xF0, 0x64, 0xF0, 0x19, 0xF0, 0x11 };

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	const uint8_t *seq = cad_set2;
	size_t n = sizeof(cad_set2);
	int rc = 0;

	pthread_mutex_lock(&k->lock);
	if ((k->ram[0] & CTR_XLATE) || k->scancode_set == 1) {
		seq = cad_set1; /* the controller turns set 2 into set 1 */
		n = sizeof(cad_set1);
	} else if (k->scancode_set == 3) {
		seq = cad_set3;
		n = sizeof(cad_set3);
	}
	if (I8042_QUEUE_SIZE - k->count < n) {
		rc = -ENOSPC;
	} else {
		for (size_t i = 0; i < n; i++)
			queue_byte(k, seq[i], false);
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

/* ---- snapshot ------------------------------------------------------------- */

void i8042_save(struct i8042 *k, struct snap_writer *w)
{
	pthread_mutex_lock(&k->lock);
	snap_put_bytes(w, k->ram, sizeof(k->ram));
	snap_put_u8(w, k->outport);
	snap_put_u8(w, k->pending_cmd);
	snap_put_u8(w, k->kbd_cmd);
	snap_put_u8(w, k->scancode_set);
	snap_put_bool(w, k->last_write_cmd);
	snap_put_u8(w, k->last_data);
	snap_put_u8(w, (uint8_t)k->count);
	for (unsigned int i = 0; i < k->count; i++) {
		snap_put_u8(w, k->queue[(k->head + i) % I8042_QUEUE_SIZE].byte);
		snap_put_bool(w, k->queue[(k->head + i) % I8042_QUEUE_SIZE].aux);
	}
	pthread_mutex_unlock(&k->lock);
}

/* Can a controller command wait for its data byte? (controller_cmd's list) */
static bool takes_data(uint8_t cmd)
{
	return cmd == 0 || (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 0x20) ||
	       cmd == CMD_WRITE_OUTPORT || cmd == CMD_WRITE_KBD_OB || cmd == CMD_WRITE_AUX_OB ||
	       cmd == CMD_WRITE_AUX;
}

int i8042_load(struct i8042 *k, struct snap_reader *r)
{
	struct i8042 n;

	memset(&n, 0, sizeof(n));
	snap_get_bytes(r, n.ram, sizeof(n.ram));
	n.outport = snap_get_u8(r);
	n.pending_cmd = snap_get_u8(r);
	n.kbd_cmd = snap_get_u8(r);
	n.scancode_set = snap_get_u8(r);
	n.last_write_cmd = snap_get_bool(r);
	n.last_data = snap_get_u8(r);
	n.count = snap_get_u8(r);
	if (!r->failed && n.count > I8042_QUEUE_SIZE)
		return snap_reader_fail(r, "output queue holds %u bytes, at most %d", n.count,
					I8042_QUEUE_SIZE);
	for (unsigned int i = 0; i < n.count; i++) {
		n.queue[i].byte = snap_get_u8(r);
		n.queue[i].aux = snap_get_bool(r);
	}
	if (r->failed)
		return -EINVAL;
	if (!takes_data(n.pending_cmd))
		return snap_reader_fail(r, "pending controller command 0x%02x takes no data",
					n.pending_cmd);
	if (n.kbd_cmd && n.kbd_cmd != KBD_SET_LEDS && n.kbd_cmd != KBD_SET_RATE &&
	    n.kbd_cmd != KBD_SCANCODE_SET)
		return snap_reader_fail(r, "pending keyboard command 0x%02x takes no parameter",
					n.kbd_cmd);
	if (n.scancode_set < 1 || n.scancode_set > 3)
		return snap_reader_fail(r, "scancode set %u is not 1, 2 or 3", n.scancode_set);

	/* Interrupts are edges that already happened: nothing to raise again. */
	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, n.ram, sizeof(k->ram));
	k->outport = n.outport;
	k->pending_cmd = n.pending_cmd;
	k->kbd_cmd = n.kbd_cmd;
	k->scancode_set = n.scancode_set;
	k->last_write_cmd = n.last_write_cmd;
	k->last_data = n.last_data;
	memcpy(k->queue, n.queue, sizeof(k->queue));
	k->head = 0;
	k->count = n.count;
	pthread_mutex_unlock(&k->lock);
	return 0;
}
