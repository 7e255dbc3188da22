/* lib.h - the few C library routines a freestanding kernel still needs. */
#ifndef YT_LIB_H
#define YT_LIB_H

#include "io.h"

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* Parse an unsigned number (decimal, or hex with 0x). Returns false if junk. */
bool parse_u64(const char *s, size_t len, u64 *out);

/* Sum of bytes, as ACPI and MP table checksums want (0 = valid). */
u8 byte_sum(const void *p, size_t n);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
