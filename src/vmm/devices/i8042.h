/*
 * i8042.h - the PS/2 keyboard controller at PORT_I8042_DATA and
 * PORT_I8042_CMD, with a keyboard that answers commands and types one thing
 * only: Ctrl+Alt+Del, when the host asks (i8042_send_ctrl_alt_del).
 *
 * Its main job is the reset line (command 0xFE, or output-port bit 0
 * cleared with 0xD1), which ends the VM with VM_STOP_RESET. Beyond that it
 * answers what Linux's i8042 and atkbd drivers ask while probing, so they
 * neither hang nor complain:
 *   0x20-0x3F read controller RAM (0x20: command byte), 0x60-0x7F write it,
 *   0xAA self test -> 0x55, 0xAB / 0xA9 interface tests -> 0x00,
 *   0xAD/0xAE keyboard disable/enable, 0xA7/0xA8 aux disable/enable,
 *   0xD0 read output port, 0xD1 write output port, 0xD2/0xD3 echo a byte as
 *   if from the keyboard / aux device, 0xD4 send to the aux device (no mouse
 *   is attached: answered 0xFE), 0xF0-0xFF pulse output lines (even values
 *   pulse reset).
 * Keyboard commands written to the data port get 0xFA (ACK); 0xFF reset
 * adds 0xAA, 0xF2 identify adds 0xAB 0x83, 0xEE echo answers 0xEE, and
 * 0xED / 0xF3 / 0xF0 take a parameter byte (0xF0 0x00 reports set 2).
 *
 * Interrupts: each byte that reaches the output buffer pulses the keyboard
 * line (IRQ_I8042_KBD) when command-byte bit 0 is set, or the aux line when
 * the byte is from the aux side and bit 1 is set (edge: level 1 then 0).
 * The aux line is optional; without it, Linux's aux IRQ test times out
 * (250 ms) and it carries on without a mouse port (or boot with
 * i8042.noaux).
 *
 * What it may touch: its irq lines and the vm_stopper. Threads: a mutex
 * inside struct i8042; the stopper is called with it released.
 */
#ifndef YUN_VMM_DEVICES_I8042_H
#define YUN_VMM_DEVICES_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../lib/err.h"
#include "../irq.h"
#include "../snapshot/stream.h"
#include "../vm_stop.h"

#define I8042_QUEUE_SIZE 16

/* Private state: use the functions below. */
struct i8042 {
	pthread_mutex_t lock;
	struct irq_line kbd_irq;
	struct irq_line aux_irq;      /* set_level NULL when not wired */
	struct vm_stopper stop;

	uint8_t ram[32];              /* controller RAM; ram[0] is the command byte */
	uint8_t outport;
	uint8_t pending_cmd;          /* controller command waiting for its data byte */
	uint8_t kbd_cmd;              /* keyboard command waiting for its parameter */
	uint8_t scancode_set;
	bool last_write_cmd;          /* status bit 3: last write went to port 0x64 */
	uint8_t last_data;            /* returned again by a read with nothing queued */

	struct {
		uint8_t byte;
		bool aux;
	} queue[I8042_QUEUE_SIZE];    /* head is the output buffer */
	unsigned int head;
	unsigned int count;
};

/* aux_irq may be NULL; both irq_lines and the stopper are copied. */
int i8042_init(struct i8042 *k, const struct irq_line *kbd_irq, const struct irq_line *aux_irq,
	       const struct vm_stopper *stop, struct yun_err *err);

/* io_bus handlers, one port each: register at PORT_I8042_DATA and PORT_I8042_CMD. */
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

void i8042_destroy(struct i8042 *k);

/*
 * Firecracker's SendCtrlAltDel: the keyboard "types" Ctrl, Alt, Del (make
 * codes) and lets go (break codes, Del first), as the guest expects them:
 * scancode set 1 when command-byte translation (bit 6) is on, else the
 * keyboard's set (2, or 1 / 3 if the guest chose it with 0xF0):
 *   set 1: 1D 38 E0 53  E0 D3 B8 9D
 *   set 2: 14 11 E0 71  E0 F0 71 F0 11 F0 14
 *   set 3: 11 19 64  F0 64 F0 19 F0 11
 * Each byte reaches the output buffer in turn and pulses IRQ1 (when
 * command-byte bit 0 enables it), as typed keys would. Linux reboots on it
 * (ctrl_alt_del), and the VM then ends with VM_STOP_RESET.
 *
 * Any thread (the control API's), concurrently with the vCPUs' port
 * accesses: it takes the controller's lock. All or nothing: -ENOSPC when
 * the output queue has no room for the whole sequence (the guest is not
 * reading its keyboard), 0 once queued.
 */
int i8042_send_ctrl_alt_del(struct i8042 *k);

/*
 * Snapshot (I8042_SNAP_VERSION): controller RAM, output port, commands
 * waiting for a byte, the keyboard's scancode set and the output queue.
 * Its interrupts are edges, so loading raises nothing.
 */
#define I8042_SNAP_VERSION 1
void i8042_save(struct i8042 *k, struct snap_writer *w);
int i8042_load(struct i8042 *k, struct snap_reader *r);

#endif
