/*
 * rtc.c - MC146818 RTC and CMOS RAM. See rtc.h for what is modelled.
 */
#include "rtc.h"

#include <errno.h>
#include <string.h>

/* Register numbers. */
#define RTC_SECONDS       0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES       0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS         0x04
#define RTC_HOURS_ALARM   0x05
#define RTC_DAY_OF_WEEK   0x06
#define RTC_DAY_OF_MONTH  0x07
#define RTC_MONTH         0x08
#define RTC_YEAR          0x09
#define RTC_REG_A         0x0A
#define RTC_REG_B         0x0B
#define RTC_REG_C         0x0C
#define RTC_REG_D         0x0D
#define RTC_CENTURY       0x32

#define REG_A_UIP  0x80
#define REG_B_SET  0x80
#define REG_B_DM   0x04 /* data mode: 1 = binary, 0 = BCD */
#define REG_B_24H  0x02
#define REG_D_VRT  0x80
#define HOUR_PM    0x80

/* UIP rises this long before the time registers change (data sheet). */
#define UIP_LEAD_NS 244000L

#define CMOS_CHECKSUM_FIRST 0x10
#define CMOS_CHECKSUM_LAST  0x2D
#define CMOS_CHECKSUM_HI    0x2E
#define CMOS_CHECKSUM_LO    0x2F

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

/* ---- time helpers (r->lock held) ---------------------------------------- */

static struct timespec host_now(void)
{
	struct timespec ts;

	/* Cannot fail for CLOCK_REALTIME with a valid pointer; be safe anyway. */
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
		ts.tv_sec = 0;
		ts.tv_nsec = 0;
	}
	return ts;
}

/* The running guest time, broken down in UTC; *host_sec gets the host's. */
static void guest_now(const struct rtc *r, struct tm *tm, time_t *host_sec, long *nsec)
{
	struct timespec ts = host_now();
	time_t t = ts.tv_sec + r->offset;

	if (!gmtime_r(&t, tm)) {
		/* An offset gmtime cannot represent: fall back to host time. */
		t = ts.tv_sec;
		if (!gmtime_r(&t, tm))
			memset(tm, 0, sizeof(*tm));
	}
	if (host_sec)
		*host_sec = ts.tv_sec;
	if (nsec)
		*nsec = ts.tv_nsec;
}

static bool is_time_reg(unsigned int reg)
{
	switch (reg) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_DAY_OF_WEEK:
	case RTC_DAY_OF_MONTH:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		return true;
	}
	return false;
}

static uint8_t encode(const struct rtc *r, int v)
{
	if (r->cmos[RTC_REG_B] & REG_B_DM)
		return v;
	return ((v / 10) << 4) | (v % 10);
}

static int decode(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & REG_B_DM)
		return v;
	return (v >> 4) * 10 + (v & 0x0F);
}

static uint8_t encode_hour(const struct rtc *r, int hour)
{
	int h12;

	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return encode(r, hour);
	h12 = hour % 12 ? hour % 12 : 12;
	return encode(r, h12) | (hour >= 12 ? HOUR_PM : 0);
}

static int decode_hour(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return decode(r, v);
	return decode(r, v & ~HOUR_PM) % 12 + (v & HOUR_PM ? 12 : 0);
}

static uint8_t tm_field_read(const struct rtc *r, const struct tm *tm, unsigned int reg)
{
	int year = tm->tm_year + 1900;

	switch (reg) {
	case RTC_SECONDS:
		return encode(r, tm->tm_sec);
	case RTC_MINUTES:
		return encode(r, tm->tm_min);
	case RTC_HOURS:
		return encode_hour(r, tm->tm_hour);
	case RTC_DAY_OF_WEEK:
		return encode(r, tm->tm_wday + 1); /* 1 = Sunday */
	case RTC_DAY_OF_MONTH:
		return encode(r, tm->tm_mday);
	case RTC_MONTH:
		return encode(r, tm->tm_mon + 1);
	case RTC_YEAR:
		return encode(r, year % 100);
	case RTC_CENTURY:
		return encode(r, year / 100);
	}
	return 0;
}

static void tm_field_write(const struct rtc *r, struct tm *tm, unsigned int reg, uint8_t v)
{
	int year = tm->tm_year + 1900;

	switch (reg) {
	case RTC_SECONDS:
		tm->tm_sec = decode(r, v);
		break;
	case RTC_MINUTES:
		tm->tm_min = decode(r, v);
		break;
	case RTC_HOURS:
		tm->tm_hour = decode_hour(r, v);
		break;
	case RTC_DAY_OF_WEEK:
		tm->tm_wday = decode(r, v) - 1;
		break;
	case RTC_DAY_OF_MONTH:
		tm->tm_mday = decode(r, v);
		break;
	case RTC_MONTH:
		tm->tm_mon = decode(r, v) - 1;
		break;
	case RTC_YEAR:
		tm->tm_year = year / 100 * 100 + decode(r, v) - 1900;
		break;
	case RTC_CENTURY:
		tm->tm_year = decode(r, v) * 100 + year % 100 - 1900;
		break;
	}
}

/* Make the running clock show tm from now on. */
static void set_guest_time(struct rtc *r, struct tm *tm, time_t host_sec)
{
	time_t t = timegm(tm);

	if (t == (time_t)-1)
		return; /* not representable: keep the old time */
	r->offset = (int64_t)t - host_sec;
}

/* ---- registers (r->lock held) ---------------------------------------- */

static uint8_t reg_read(struct rtc *r, unsigned int reg)
{
	struct tm tm;
	long nsec;
	uint8_t val;

	if (is_time_reg(reg)) {
		if (r->cmos[RTC_REG_B] & REG_B_SET)
			return tm_field_read(r, &r->frozen, reg);
		guest_now(r, &tm, NULL, NULL);
		return tm_field_read(r, &tm, reg);
	}
	switch (reg) {
	case RTC_REG_A:
		val = r->cmos[RTC_REG_A] & ~REG_A_UIP;
		if (!(r->cmos[RTC_REG_B] & REG_B_SET)) {
			guest_now(r, &tm, NULL, &nsec);
			if (nsec >= 1000000000L - UIP_LEAD_NS)
				val |= REG_A_UIP;
		}
		return val;
	case RTC_REG_C:
		/* Read-to-clear interrupt flags; none are ever raised. */
		r->cmos[RTC_REG_C] = 0;
		return 0;
	case RTC_REG_D:
		return REG_D_VRT;
	}
	return r->cmos[reg];
}

static void reg_write(struct rtc *r, unsigned int reg, uint8_t val)
{
	struct tm tm;
	time_t host_sec;
	uint8_t old_b;

	if (is_time_reg(reg)) {
		if (r->cmos[RTC_REG_B] & REG_B_SET) {
			tm_field_write(r, &r->frozen, reg, val);
		} else if (reg != RTC_DAY_OF_WEEK) {
			guest_now(r, &tm, &host_sec, NULL);
			tm_field_write(r, &tm, reg, val);
			set_guest_time(r, &tm, host_sec);
		}
		return;
	}
	switch (reg) {
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = val & ~REG_A_UIP;
		break;
	case RTC_REG_B:
		old_b = r->cmos[RTC_REG_B];
		if ((val & REG_B_SET) && !(old_b & REG_B_SET))
			guest_now(r, &r->frozen, NULL, NULL);
		r->cmos[RTC_REG_B] = val;
		if (!(val & REG_B_SET) && (old_b & REG_B_SET)) {
			host_sec = host_now().tv_sec;
			set_guest_time(r, &r->frozen, host_sec);
		}
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		r->cmos[reg] = val;
		break;
	}
}

/* ---- CMOS memory-size bytes ---------------------------------------------- */

static void cmos_put16(struct rtc *r, unsigned int reg, uint64_t v)
{
	if (v > 0xFFFF)
		v = 0xFFFF;
	r->cmos[reg] = v & 0xFF;
	r->cmos[reg + 1] = v >> 8;
}

static void cmos_fill_memory(struct rtc *r, uint64_t low, uint64_t high)
{
	uint64_t ext_kib = low > MiB ? (low - MiB) / KiB : 0;
	uint64_t above_16m = low > 16 * MiB ? (low - 16 * MiB) / (64 * KiB) : 0;
	uint64_t above_4g = high / (64 * KiB);
	unsigned int i, sum = 0;

	cmos_put16(r, 0x15, 640);
	cmos_put16(r, 0x17, ext_kib);
	cmos_put16(r, 0x30, ext_kib);
	cmos_put16(r, 0x34, above_16m);
	if (above_4g > 0xFFFFFF)
		above_4g = 0xFFFFFF;
	r->cmos[0x5B] = above_4g & 0xFF;
	r->cmos[0x5C] = (above_4g >> 8) & 0xFF;
	r->cmos[0x5D] = (above_4g >> 16) & 0xFF;

	for (i = CMOS_CHECKSUM_FIRST; i <= CMOS_CHECKSUM_LAST; i++)
		sum += r->cmos[i];
	r->cmos[CMOS_CHECKSUM_HI] = (sum >> 8) & 0xFF;
	r->cmos[CMOS_CHECKSUM_LO] = sum & 0xFF;
}

/* ---- public API ---------------------------------------------------------- */

int rtc_init(struct rtc *r, uint64_t low_ram_bytes, uint64_t high_ram_bytes,
	     struct yun_err *err)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (low_ram_bytes > 4 * GiB)
		return yun_err_set(err, EINVAL, "rtc: low RAM size 0x%llx is above 4 GiB",
				   (unsigned long long)low_ram_bytes);
	rc = pthread_mutex_init(&r->lock, NULL);
	if (rc)
		return yun_err_errno(err, rc, "rtc: mutex");
	r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	r->cmos[RTC_REG_B] = REG_B_24H;
	r->cmos[RTC_REG_D] = REG_D_VRT;
	cmos_fill_memory(r, low_ram_bytes, high_ram_bytes);
	return 0;
}

void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;
	uint32_t i;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < len; i++) {
		uint64_t port = offset + i;

		if (port == 0 && is_write)
			r->index = data[i] & 0x7F; /* bit 7 masks NMI: not ours */
		else if (port == 1 && is_write)
			reg_write(r, r->index, data[i]);
		else if (port == 1)
			data[i] = reg_read(r, r->index);
		else if (!is_write)
			data[i] = 0xff; /* the index port is write-only */
	}
	pthread_mutex_unlock(&r->lock);
}

void rtc_destroy(struct rtc *r)
{
	pthread_mutex_destroy(&r->lock);
}

/* ---- snapshot ------------------------------------------------------------- */

/* The guest-set clock stays within what timegm() makes of register values (years < 25600). */
#define OFFSET_MAX (1LL << 40)

/* struct tm fields the frozen time keeps, and the range register writes can give them. */
static int *frozen_field(struct tm *tm, unsigned int i, int *lo, int *hi)
{
	int *f[] = { &tm->tm_sec, &tm->tm_min, &tm->tm_hour, &tm->tm_mday,
		     &tm->tm_mon, &tm->tm_year, &tm->tm_wday };

	*lo = i == 4 || i == 6 ? -1 : 0;
	*hi = i == 4 || i == 6 ? 254 : 255;
	if (i == 5) {
		*lo = -1900;
		*hi = 255 * 100 + 99 - 1900;
	}
	return i < sizeof(f) / sizeof(f[0]) ? f[i] : NULL;
}

void rtc_save(struct rtc *r, struct snap_writer *w)
{
	int lo, hi, *f;

	pthread_mutex_lock(&r->lock);
	snap_put_u8(w, r->index);
	snap_put_bytes(w, r->cmos, RTC_CMOS_SIZE);
	snap_put_u64(w, (uint64_t)r->offset);
	for (unsigned int i = 0; (f = frozen_field(&r->frozen, i, &lo, &hi)); i++)
		snap_put_u32(w, (uint32_t)*f);
	pthread_mutex_unlock(&r->lock);
}

int rtc_load(struct rtc *r, struct snap_reader *rd)
{
	uint8_t index = snap_get_u8(rd), cmos[RTC_CMOS_SIZE];
	struct tm frozen = { 0 };
	int64_t offset;
	int lo, hi, *f;

	snap_get_bytes(rd, cmos, sizeof(cmos));
	offset = (int64_t)snap_get_u64(rd);
	for (unsigned int i = 0; (f = frozen_field(&frozen, i, &lo, &hi)); i++) {
		*f = (int32_t)snap_get_u32(rd);
		if (!rd->failed && (*f < lo || *f > hi))
			return snap_reader_fail(rd, "frozen time field %u is %d, not %d..%d", i, *f,
						lo, hi);
	}
	if (rd->failed)
		return -EINVAL;
	if (index >= RTC_CMOS_SIZE)
		return snap_reader_fail(rd, "index register 0x%02x is past the CMOS", index);
	if (offset > OFFSET_MAX || offset < -OFFSET_MAX)
		return snap_reader_fail(rd, "clock offset %lld s is out of range",
					(long long)offset);
	if ((cmos[RTC_REG_A] & REG_A_UIP) || cmos[RTC_REG_C] || cmos[RTC_REG_D] != REG_D_VRT)
		return snap_reader_fail(rd, "registers A/C/D 0x%02x/0x%02x/0x%02x hold bits the "
					"guest cannot set", cmos[RTC_REG_A], cmos[RTC_REG_C],
					cmos[RTC_REG_D]);
	pthread_mutex_lock(&r->lock);
	r->index = index;
	memcpy(r->cmos, cmos, sizeof(cmos));
	r->offset = offset; /* guest time keeps its distance from the host's clock */
	r->frozen = frozen;
	pthread_mutex_unlock(&r->lock);
	return 0;
}
