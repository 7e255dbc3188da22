/*
 * rtc.c - case "rtc": read the CMOS real-time clock the way firmware and
 * Linux do (wait out update-in-progress, read twice until stable, decode
 * BCD or binary and 12/24-hour per register B) and print it as
 * "YT RTC YYYY-MM-DD HH:MM:SS"; the harness compares it with the host's
 * UTC clock.
 */
#include "cases.h"
#include "../kernel/console.h"
#include "../kernel/io.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71
#define REG_A_UIP  0x80
#define REG_B_24H  0x02
#define REG_B_BIN  0x04

struct rtc_time {
	u8 sec, min, hour, day, mon, year, century;
};

static u8 cmos_read(u8 reg)
{
	outb(CMOS_INDEX, reg);
	return inb(CMOS_DATA);
}

static void read_once(struct rtc_time *t)
{
	/* Bounded: a clock stuck in an update is itself a failure. */
	for (int i = 0; i < 100000 && (cmos_read(0x0A) & REG_A_UIP); i++)
		;
	t->sec = cmos_read(0x00);
	t->min = cmos_read(0x02);
	t->hour = cmos_read(0x04);
	t->day = cmos_read(0x07);
	t->mon = cmos_read(0x08);
	t->year = cmos_read(0x09);
	t->century = cmos_read(0x32);
}

static int same(const struct rtc_time *a, const struct rtc_time *b)
{
	return a->sec == b->sec && a->min == b->min && a->hour == b->hour && a->day == b->day &&
	       a->mon == b->mon && a->year == b->year && a->century == b->century;
}

static u8 bcd(u8 v)
{
	return (v >> 4) * 10 + (v & 0x0F);
}

void case_rtc(void)
{
	struct rtc_time a, b;
	u8 regb, pm;
	int tries = 0;

	read_once(&a);
	do {
		b = a;
		read_once(&a);
	} while (!same(&a, &b) && ++tries < 5);
	if (!same(&a, &b))
		yt_fail("RTC never read the same twice");
	regb = cmos_read(0x0B);
	pm = a.hour & 0x80;
	a.hour &= 0x7F;
	if (!(regb & REG_B_BIN)) {
		a.sec = bcd(a.sec);
		a.min = bcd(a.min);
		a.hour = bcd(a.hour);
		a.day = bcd(a.day);
		a.mon = bcd(a.mon);
		a.year = bcd(a.year);
		a.century = bcd(a.century);
	}
	if (!(regb & REG_B_24H))
		a.hour = (a.hour % 12) + (pm ? 12 : 0);
	if (a.century == 0)
		a.century = 20; /* no century register: assume 20xx */
	yt_printf("YT RTC_REGB 0x%x\n", regb);
	yt_printf("YT RTC %u%02u-%02u-%02u %02u:%02u:%02u\n", a.century, a.year, a.mon, a.day,
		  a.hour, a.min, a.sec);
	yt_pass();
}
