/*
 * console.c - formatted output for the test protocol, and the exits.
 * The formatter knows what the guest prints: %d %u %x %s %c %p with the
 * l/ll length modifiers, zero padding and a width.
 */
#include "console.h"
#include "exit.h"
#include "serial.h"
#include "lib.h"

const char *yt_case = "none";

static volatile u32 console_lock_word;

void console_lock(void)
{
	while (__atomic_exchange_n(&console_lock_word, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

void console_unlock(void)
{
	__atomic_store_n(&console_lock_word, 0, __ATOMIC_RELEASE);
}

void console_putc(char c)
{
	if (c == '\n')
		serial_putc('\r');
	serial_putc(c);
}

void console_puts(const char *s)
{
	while (*s)
		console_putc(*s++);
}

void console_put_escaped(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		u8 c = (u8)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			serial_putc((char)c);
		} else {
			serial_putc('\\');
			serial_putc('x');
			serial_putc(hex[c >> 4]);
			serial_putc(hex[c & 15]);
		}
	}
}

struct out {
	char *buf;
	size_t size, len;
};

static void out_c(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void out_num(struct out *o, u64 v, unsigned base, bool neg, unsigned width, char pad)
{
	char tmp[24];
	unsigned n = 0;

	do {
		unsigned d = (unsigned)(v % base);
		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width > n) {
		out_c(o, pad);
		width--;
	}
	while (n)
		out_c(o, tmp[--n]);
}

int yt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			out_c(&o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		unsigned width = 0, lng = 0;

		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
			bool neg = v < 0;
			out_num(&o, neg ? (u64)-v : (u64)v, 10, neg, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			u64 v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			out_num(&o, v, *fmt == 'u' ? 10 : 16, false, width, pad);
			break;
		}
		case 'p':
			out_c(&o, '0');
			out_c(&o, 'x');
			out_num(&o, (u64)(uintptr_t)va_arg(ap, void *), 16, false, width, pad);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			while (*s)
				out_c(&o, *s++);
			break;
		}
		case 'c':
			out_c(&o, (char)va_arg(ap, int));
			break;
		case '%':
			out_c(&o, '%');
			break;
		default:
			out_c(&o, '?');
			if (!*fmt)
				fmt--;
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int yt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = yt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void yt_printf(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	yt_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	console_lock();
	console_puts(line);
	console_unlock();
}

_Noreturn void yt_pass(void)
{
	yt_printf("YT PASS %s\n", yt_case);
	debug_exit(EXIT_PASS);
}

_Noreturn void yt_fail(const char *fmt, ...)
{
	char reason[400];
	va_list ap;

	va_start(ap, fmt);
	yt_vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	yt_printf("YT FAIL %s %s\n", yt_case, reason);
	debug_exit(EXIT_FAIL);
}
