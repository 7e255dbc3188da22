/*
 * rtc.h - the MC146818 CMOS real-time clock and its 128 bytes of CMOS RAM,
 * at PORT_RTC_INDEX (write the register number; bit 7, the NMI mask, is
 * ignored) and PORT_RTC_DATA (read or write that register).
 *
 * What it may touch: the host's realtime clock (read only) and its own
 * state. No interrupt: periodic, alarm and update-ended interrupts are not
 * modelled, register C always reads 0 and IRQ_RTC stays quiet.
 *
 * The clock:
 *  - Time registers (seconds, minutes, hours, day of week, day, month, year
 *    and the century byte 0x32) are computed from the host clock in UTC at
 *    each read, in BCD or binary per register B bit 2 and in 24-hour or
 *    12-hour form (bit 7 = PM) per register B bit 1.
 *  - Register A bit 7 (UIP) reads 1 during the last 244 us before each
 *    second turns, so a guest that checks UIP before reading sees a
 *    consistent time, as on the real part.
 *  - A guest sets the time by setting register B bit 7 (SET: the clock
 *    stops and the time registers hold what it writes) and clearing it
 *    again; writes to time registers without SET apply at once. The guest
 *    time is kept as an offset from the host clock, so it keeps ticking.
 *    Day-of-week writes are kept only while SET is held; the clock then
 *    derives it from the date.
 *  - Register D reads 0x80 (valid RAM and time).
 *
 * CMOS memory-size bytes are filled as PC firmware does: 0x15/0x16 base
 * memory in KiB (640), 0x17/0x18 and 0x30/0x31 memory above 1 MiB in KiB
 * (capped at 0xFFFF), 0x34/0x35 memory between 16 MiB and 4 GiB in 64 KiB
 * units, 0x5B-0x5D memory above 4 GiB in 64 KiB units; 0x2E/0x2F hold the
 * checksum of 0x10-0x2D.
 *
 * Threads: all entry points lock a mutex inside struct rtc.
 */
#ifndef YUN_VMM_DEVICES_RTC_H
#define YUN_VMM_DEVICES_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../../lib/err.h"
#include "../snapshot/stream.h"

#define RTC_NR_PORTS  2    /* register at PORT_RTC_INDEX with this length */
#define RTC_CMOS_SIZE 128

/* Private state: use the functions below. */
struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[RTC_CMOS_SIZE];  /* time registers here are unused */
	int64_t offset;               /* guest time minus host time, seconds */
	struct tm frozen;             /* the time while register B SET is held */
};

/*
 * low_ram_bytes: guest RAM from address 0 (at most 4 GiB); high_ram_bytes:
 * guest RAM from 4 GiB up.
 */
int rtc_init(struct rtc *r, uint64_t low_ram_bytes, uint64_t high_ram_bytes,
	     struct yun_err *err);

/* The io_bus handler: offset 0 = index port, 1 = data port. */
void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

void rtc_destroy(struct rtc *r);

/*
 * Snapshot (RTC_SNAP_VERSION): the index register, CMOS RAM, the guest's
 * offset from the host clock (so a restored guest's clock has moved on by
 * the time it was stopped, as a real RTC's would) and the frozen time.
 */
#define RTC_SNAP_VERSION 1
void rtc_save(struct rtc *r, struct snap_writer *w);
int rtc_load(struct rtc *r, struct snap_reader *rd);

#endif
