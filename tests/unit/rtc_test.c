/* rtc_test.c - the CMOS clock as a guest reads and sets it, and the CMOS memory bytes. */
#include "vmm/devices/rtc.h"

#include <errno.h>
#include <time.h>

#include "check.h"

#define GiB (1ULL << 30)

static void out(struct rtc *r, uint8_t reg, uint8_t v)
{
	rtc_io(r, 0, &reg, 1, true);
	rtc_io(r, 1, &v, 1, true);
}

static uint8_t in(struct rtc *r, uint8_t reg)
{
	uint8_t v = 0;

	rtc_io(r, 0, &reg, 1, true);
	rtc_io(r, 1, &v, 1, false);
	return v;
}

static int dec(uint8_t v, bool binary)
{
	return binary ? v : (v >> 4) * 10 + (v & 0x0F);
}

/* Read the clock as a guest driver would (wait out UIP); return it as time_t. */
static time_t read_clock(struct rtc *r, int *wday)
{
	uint8_t b = in(r, 0x0B);
	bool binary = b & 0x04, h24 = b & 0x02;
	struct tm tm = { 0 };
	uint8_t hour;

	while (in(r, 0x0A) & 0x80)
		;
	tm.tm_sec = dec(in(r, 0x00), binary);
	tm.tm_min = dec(in(r, 0x02), binary);
	hour = in(r, 0x04);
	if (h24)
		tm.tm_hour = dec(hour, binary);
	else
		tm.tm_hour = dec(hour & 0x7F, binary) % 12 + (hour & 0x80 ? 12 : 0);
	*wday = dec(in(r, 0x06), binary) - 1;
	tm.tm_mday = dec(in(r, 0x07), binary);
	tm.tm_mon = dec(in(r, 0x08), binary) - 1;
	tm.tm_year = dec(in(r, 0x32), binary) * 100 + dec(in(r, 0x09), binary) - 1900;
	return timegm(&tm);
}

static void check_matches_host(struct rtc *r)
{
	time_t before = time(NULL), got, after;
	struct tm tm;
	int wday;

	got = read_clock(r, &wday);
	after = time(NULL);
	CHECK(got >= before && got <= after);
	gmtime_r(&got, &tm);
	CHECK_EQ(wday, tm.tm_wday);
}

static void test_time_bcd_and_binary(void)
{
	struct rtc r;
	struct yun_err err;

	CHECK_EQ(rtc_init(&r, 256 << 20, 0, &err), 0);
	CHECK_EQ(in(&r, 0x0B), 0x02);       /* 24 h, BCD */
	check_matches_host(&r);
	out(&r, 0x0B, 0x06);                /* 24 h, binary */
	check_matches_host(&r);
	out(&r, 0x0B, 0x04);                /* 12 h, binary */
	check_matches_host(&r);
	out(&r, 0x0B, 0x00);                /* 12 h, BCD */
	check_matches_host(&r);
	rtc_destroy(&r);
}

static void test_twelve_hour_encoding(void)
{
	struct rtc r;
	struct yun_err err;

	CHECK_EQ(rtc_init(&r, 256 << 20, 0, &err), 0);
	out(&r, 0x0B, 0x82);                /* SET, 24 h, BCD */
	out(&r, 0x04, 0x00);                /* midnight */
	out(&r, 0x0B, 0x80);                /* SET, 12 h, BCD */
	CHECK_EQ(in(&r, 0x04), 0x12);       /* 12 AM */
	out(&r, 0x04, 0x81);                /* 1 PM */
	out(&r, 0x0B, 0x82);
	CHECK_EQ(in(&r, 0x04), 0x13);
	out(&r, 0x0B, 0x80);
	out(&r, 0x04, 0x92);                /* 12 PM */
	out(&r, 0x0B, 0x86);
	CHECK_EQ(in(&r, 0x04), 12);
	rtc_destroy(&r);
}

static void test_guest_sets_time(void)
{
	struct rtc r;
	struct yun_err err;
	struct tm want = { .tm_year = 130, .tm_mon = 5, .tm_mday = 15, .tm_hour = 13,
			   .tm_min = 45, .tm_sec = 50 };
	time_t set = timegm(&want), got;
	int wday;

	CHECK_EQ(rtc_init(&r, 256 << 20, 0, &err), 0);
	out(&r, 0x0B, 0x82);                /* SET: the clock stops */
	out(&r, 0x00, 0x50);
	out(&r, 0x02, 0x45);
	out(&r, 0x04, 0x13);
	out(&r, 0x07, 0x15);
	out(&r, 0x08, 0x06);
	out(&r, 0x09, 0x30);
	out(&r, 0x32, 0x20);
	CHECK_EQ(in(&r, 0x00), 0x50);       /* frozen while SET */
	CHECK(!(in(&r, 0x0A) & 0x80));      /* no update in progress while SET */
	out(&r, 0x0B, 0x02);                /* running again, from what was set */
	got = read_clock(&r, &wday);
	CHECK(got >= set && got <= set + 1);
	CHECK_EQ(wday, 6);                  /* 2030-06-15 is a Saturday */

	/* A write without SET moves the running clock. */
	out(&r, 0x09, 0x31);
	got = read_clock(&r, &wday);
	CHECK(got >= set + 365 * 86400 && got <= set + 365 * 86400 + 2);
	rtc_destroy(&r);
}

static void test_registers(void)
{
	struct rtc r;
	struct yun_err err;
	uint8_t idx = 0x80 | 0x0D, v;

	CHECK_EQ(rtc_init(&r, 256 << 20, 0, &err), 0);
	CHECK_EQ(in(&r, 0x0D), 0x80);
	CHECK_EQ(in(&r, 0x0C), 0x00);
	CHECK_EQ(in(&r, 0x0A) & 0x7F, 0x26);
	/* Index bit 7 is the NMI mask, not part of the index. */
	rtc_io(&r, 0, &idx, 1, true);
	rtc_io(&r, 1, &v, 1, false);
	CHECK_EQ(v, 0x80);
	out(&r, 0x40, 0x5A);
	CHECK_EQ(in(&r, 0x40), 0x5A);
	out(&r, 0x0D, 0x00);                /* read-only */
	CHECK_EQ(in(&r, 0x0D), 0x80);
	rtc_io(&r, 0, &v, 1, false);        /* the index port is write-only */
	CHECK_EQ(v, 0xff);
	rtc_destroy(&r);
}

static void test_memory_bytes(void)
{
	struct rtc r;
	struct yun_err err;
	unsigned int i, sum = 0;

	/* A 5 GiB guest: 3 GiB below the PCI hole, 2 GiB above 4 GiB. */
	CHECK_EQ(rtc_init(&r, 3 * GiB, 2 * GiB, &err), 0);
	CHECK_EQ(in(&r, 0x15) | in(&r, 0x16) << 8, 640);
	CHECK_EQ(in(&r, 0x17) | in(&r, 0x18) << 8, 0xFFFF);
	CHECK_EQ(in(&r, 0x30) | in(&r, 0x31) << 8, 0xFFFF);
	CHECK_EQ(in(&r, 0x34) | in(&r, 0x35) << 8, (3 * GiB - (16 << 20)) >> 16);
	CHECK_EQ(in(&r, 0x5B) | in(&r, 0x5C) << 8 | in(&r, 0x5D) << 16, (2 * GiB) >> 16);
	for (i = 0x10; i <= 0x2D; i++)
		sum += in(&r, i);
	CHECK_EQ(in(&r, 0x2E) << 8 | in(&r, 0x2F), sum);
	rtc_destroy(&r);

	/* 32 MiB: no cap, nothing above 4 GiB. */
	CHECK_EQ(rtc_init(&r, 32 << 20, 0, &err), 0);
	CHECK_EQ(in(&r, 0x17) | in(&r, 0x18) << 8, 31 * 1024);
	CHECK_EQ(in(&r, 0x34) | in(&r, 0x35) << 8, 16 * 16);
	CHECK_EQ(in(&r, 0x5B) | in(&r, 0x5C) | in(&r, 0x5D), 0);
	rtc_destroy(&r);

	CHECK_EQ(rtc_init(&r, 5 * GiB, 0, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "rtc: low RAM");
}

int main(void)
{
	RUN(test_time_bcd_and_binary);
	RUN(test_twelve_hour_encoding);
	RUN(test_guest_sets_time);
	RUN(test_registers);
	RUN(test_memory_bytes);
	return CHECK_DONE();
}
