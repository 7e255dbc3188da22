/*
 * stream.h - the byte format every piece of saved VM state is written in:
 * snapshot state files and the state a live migration sends.
 *
 * A state payload is a sequence of sections. Each section is
 *
 *   tag      4 bytes, e.g. "VCPU", "SER0", "VQ  " (ASCII, space padded)
 *   version  u32: the layout of this section's body; readers accept
 *            versions they know and refuse others, naming the section
 *   length   u64: bytes of body that follow
 *   body     little-endian fixed-width integers and byte strings
 *
 * Writers (struct snap_writer) grow a buffer; out of memory is sticky and
 * reported once by snap_writer_error(). Readers (struct snap_reader) never
 * read past what they were given: a short or malformed input makes every
 * later get return zeroes and the first problem is kept in r->err, naming
 * the section, its offset and what was expected. So device code can read a
 * run of fields and check once at the end (snap_reader_done).
 *
 * The container that wraps a payload in a file (magic, format version,
 * length, CRC-32) is snap_file_write/snap_file_read; a corrupted, truncated
 * or version-mismatched file is refused there with a clear error before any
 * section is parsed.
 */
#ifndef YUN_VMM_SNAPSHOT_STREAM_H
#define YUN_VMM_SNAPSHOT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/err.h"

#define SNAP_FILE_MAGIC   "YUNSNAP\n"   /* 8 bytes */
#define SNAP_FILE_VERSION 1           /* of the container and of the set of sections */
#define SNAP_MAX_PAYLOAD  (256u << 20) /* state (not memory) larger than this is refused */

struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	size_t section;    /* offset of the open section's header; SIZE_MAX: none */
	bool oom;
};

void snap_writer_init(struct snap_writer *w);
void snap_writer_free(struct snap_writer *w);

/* Open a section (tag: up to 4 chars, padded with spaces). Sections do not nest. */
void snap_begin(struct snap_writer *w, const char *tag, uint32_t version);
/* Close the open section: its length is filled in. */
void snap_end(struct snap_writer *w);

void snap_put_u8(struct snap_writer *w, uint8_t v);
void snap_put_u16(struct snap_writer *w, uint16_t v);
void snap_put_u32(struct snap_writer *w, uint32_t v);
void snap_put_u64(struct snap_writer *w, uint64_t v);
void snap_put_bool(struct snap_writer *w, bool v);
void snap_put_bytes(struct snap_writer *w, const void *p, size_t n);
/* A string as u32 length + bytes (NULL is written as length 0xffffffff). */
void snap_put_str(struct snap_writer *w, const char *s);
/* n u64s in a row (a device's counters). */
void snap_put_u64s(struct snap_writer *w, const uint64_t *v, size_t n);

/* 0, or -ENOMEM (with err filled) when any put ran out of memory. */
int snap_writer_error(const struct snap_writer *w, struct yun_err *err);

struct snap_reader {
	const uint8_t *p;
	size_t len, off;
	char name[48];      /* what is being read, for messages: "state file", "section SER0" */
	bool failed;
	struct yun_err err; /* the first problem */
};

/* Read `len` bytes at p; `name` goes into error messages. */
void snap_reader_init(struct snap_reader *r, const void *p, size_t len, const char *name);

/*
 * Open the next section, which must carry `tag`, with a version between 1
 * and max_version (its version goes to *version). sub reads its body; r
 * moves past it. -EINVAL (r->err) for another tag, an unknown version or a
 * length running past the payload.
 */
int snap_section(struct snap_reader *r, const char *tag, uint32_t max_version,
		 uint32_t *version, struct snap_reader *sub);

/* The tag of the next section (5 bytes with NUL), or "" at the end. No error. */
void snap_peek_tag(const struct snap_reader *r, char tag[5]);

uint8_t snap_get_u8(struct snap_reader *r);
uint16_t snap_get_u16(struct snap_reader *r);
uint32_t snap_get_u32(struct snap_reader *r);
uint64_t snap_get_u64(struct snap_reader *r);
bool snap_get_bool(struct snap_reader *r);           /* anything but 0/1 is an error */
void snap_get_bytes(struct snap_reader *r, void *p, size_t n);
void snap_get_u64s(struct snap_reader *r, uint64_t *v, size_t n);
/* A string written by snap_put_str, malloc'd in *out (NULL for NULL); at most max bytes. */
void snap_get_str(struct snap_reader *r, char **out, size_t max);

/*
 * Mark the reader failed with a message about a value it read ("queue 0
 * size 3 is not a power of two"): device code's range checks go through
 * here so the first problem is what gets reported. Returns -EINVAL.
 */
int snap_reader_fail(struct snap_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * End of a section's body: 0 if every get succeeded and nothing is left
 * unread; else -EINVAL with err copied from the first problem (or "N
 * unread bytes").
 */
int snap_reader_done(struct snap_reader *r, struct yun_err *err);

/* ---- the file container --------------------------------------------------- */

/*
 * Write magic, SNAP_FILE_VERSION, payload length, CRC-32 of the payload,
 * then the payload, to path (through a temporary file, fsync'd, renamed).
 */
int snap_file_write(const char *path, const void *payload, size_t len, struct yun_err *err);

/*
 * End writing temporary file tmp (open as fd) that replaces path: unless
 * rc (the writes' result) is already an error, fsync, close and rename it
 * over path; fd is closed either way and tmp removed on failure. 0 or
 * -errno.
 */
int snap_file_commit(int fd, const char *tmp, const char *path, int rc);

/*
 * Read and check a file written by snap_file_write: *payload (malloc'd) and
 * *len. Refuses, naming the file: wrong magic, another version, a length
 * that does not match the file size (truncated), a bad checksum.
 */
int snap_file_read(const char *path, uint8_t **payload, size_t *len, struct yun_err *err);

/* CRC-32 (zlib's) of a buffer, for containers and stream frames. */
uint32_t snap_crc32(const void *p, size_t n);

#endif
