/*
 * devices_fuzz.c - libFuzzer target for the legacy device models: the guest
 * controls every port access, so random access sequences (any port of any
 * device, any width, reads and writes, interleaved with host input into
 * the UART and Ctrl+Alt+Del typed by the host) must never crash, trip a
 * sanitizer, or break an invariant a guest would see (the IRQ line only
 * toggles between 0 and 1; the UART never accepts more input than its FIFO
 * holds).
 *
 * FUZZ_SOURCES: src/vmm/devices src/vmm/io_bus.c src/lib/err.c src/lib/log.c
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c
 * FUZZ_LIBS: -lz
 */
#include "vmm/devices/debug_exit.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pm.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/io_bus.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define INVARIANT(cond)                                                               \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "devices_fuzz: invariant broken: %s\n", #cond); \
			abort();                                                      \
		}                                                                     \
	} while (0)

static int irq_level[32];
static int stop_requests;

static void fake_irq(void *ctx, uint32_t gsi, int level)
{
	(void)ctx;
	INVARIANT(gsi < 32);
	INVARIANT(level == 0 || level == 1);
	irq_level[gsi] = level;
}

static void fake_stop(void *ctx, enum vm_stop_reason reason, int status)
{
	(void)ctx;
	(void)status;
	INVARIANT(reason == VM_STOP_POWEROFF || reason == VM_STOP_RESET ||
		  reason == VM_STOP_DEBUG_EXIT);
	stop_requests++;
}

static size_t tx_bytes;

static void fake_tx(void *ctx, const uint8_t *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	tx_bytes += n;
}

/* Ports worth hitting: each device's range plus one port either side. */
static const uint16_t ports[] = {
	PORT_COM1 - 1, PORT_COM1, PORT_COM1 + 1, PORT_COM1 + 2, PORT_COM1 + 3, PORT_COM1 + 4,
	PORT_COM1 + 5, PORT_COM1 + 6, PORT_COM1 + 7, PORT_COM1 + 8, PORT_RTC_INDEX,
	PORT_RTC_DATA, PORT_I8042_DATA, PORT_I8042_CMD, PORT_PM_SLEEP_CTL, PORT_PM_SLEEP_STS,
	PORT_PM_RESET, PORT_DEBUG_EXIT, PORT_DEBUG_EXIT + 1,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t widths[] = { 1, 2, 4, 1 };
	struct irq_line com1 = { fake_irq, NULL, IRQ_COM1 };
	struct irq_line kbd = { fake_irq, NULL, IRQ_I8042_KBD };
	struct irq_line aux = { fake_irq, NULL, IRQ_I8042_AUX };
	struct vm_stopper stopper = { fake_stop, NULL };
	struct serial uart;
	struct rtc rtc;
	struct i8042 kbc;
	struct pm pm;
	struct debug_exit dbg;
	struct io_bus bus;
	struct yun_err err;

	if (serial_init(&uart, &com1, fake_tx, NULL, &err) < 0)
		abort();
	if (rtc_init(&rtc, 3ULL << 30, 2ULL << 30, &err) < 0)
		abort();
	if (i8042_init(&kbc, &kbd, &aux, &stopper, &err) < 0)
		abort();
	pm_init(&pm, &stopper);
	debug_exit_init(&dbg, &stopper);
	io_bus_init(&bus);
	if (io_bus_add(&bus, "com1", PORT_COM1, SERIAL_NR_PORTS, serial_io, &uart, &err) ||
	    io_bus_add(&bus, "rtc", PORT_RTC_INDEX, RTC_NR_PORTS, rtc_io, &rtc, &err) ||
	    io_bus_add(&bus, "kbd-data", PORT_I8042_DATA, 1, i8042_data_io, &kbc, &err) ||
	    io_bus_add(&bus, "kbd-cmd", PORT_I8042_CMD, 1, i8042_cmd_io, &kbc, &err) ||
	    io_bus_add(&bus, "pm", PORT_PM_SLEEP_CTL, PM_NR_PORTS, pm_io, &pm, &err) ||
	    io_bus_add(&bus, "dbg", PORT_DEBUG_EXIT, DEBUG_EXIT_NR_PORTS, debug_exit_io, &dbg,
			&err))
		abort();

	/* Records of 4 bytes: op, port index / length, value low, value high. */
	for (size_t i = 0; i + 4 <= size; i += 4) {
		uint8_t op = data[i], sel = data[i + 1];
		uint8_t buf[8] = { data[i + 2], data[i + 3] };

		if ((op & 0xC0) == 0xC0) {
			/* Host input into the UART: never more than the room it has. */
			size_t room = serial_rx_space(&uart);
			size_t n = sel % 24;
			uint8_t in[24];

			for (size_t k = 0; k < n; k++)
				in[k] = data[i + 2 + (k & 1)] + k;
			size_t took = serial_rx_push(&uart, in, n);

			INVARIANT(took <= n && took <= room && room <= SERIAL_FIFO_SIZE);
			continue;
		}
		if ((op & 0xC0) == 0x80 && sel == 0xCA) {
			/* The host types Ctrl+Alt+Del (the control API) in whatever state. */
			int rc = i8042_send_ctrl_alt_del(&kbc);

			INVARIANT(rc == 0 || rc == -ENOSPC);
			continue;
		}
		io_bus_access(&bus, ports[sel % (sizeof(ports) / sizeof(ports[0]))], buf,
			      widths[op & 3], op & 4);
	}

	i8042_destroy(&kbc);
	rtc_destroy(&rtc);
	serial_destroy(&uart);
	return 0;
}
