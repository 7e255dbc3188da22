/*
 * snapshot_stream_test.c - the section format saved VM state is written in
 * (src/vmm/snapshot/stream.c): every put comes back from its get, a wrong
 * tag or version is refused naming the section, a payload cut at any byte
 * is an error and never a read past its end (run under ASan in CI), and the
 * state-file container refuses corrupted, truncated, other-version and
 * foreign files, each with its own message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "vmm/snapshot/stream.h"

static char dir[] = "/tmp/yun-stream-test-XXXXXX";

/* Two sections holding one of every kind of field. */
static void write_sample(struct snap_writer *w)
{
	snap_writer_init(w);
	snap_begin(w, "ONE", 1);
	snap_put_u8(w, 0xA5);
	snap_put_u16(w, 0xBEEF);
	snap_put_u32(w, 0xDEADBEEF);
	snap_put_u64(w, 0x0123456789ABCDEFULL);
	snap_put_bool(w, true);
	snap_put_bool(w, false);
	snap_put_bytes(w, "xyz", 3);
	snap_put_str(w, "hello");
	snap_put_str(w, NULL);
	snap_put_str(w, "");
	snap_put_u64s(w, (const uint64_t[]){ 1, 2, UINT64_MAX }, 3);
	snap_end(w);
	snap_begin(w, "TWO2", 3);
	snap_put_u64(w, UINT64_MAX);
	snap_end(w);
}

/* Read write_sample's payload back; 0 when everything matched. */
static int read_sample(const void *p, size_t len, struct yun_err *err)
{
	struct snap_reader r, sub;
	uint32_t version = 0;
	char *s1, *s2, *s3;
	uint64_t v[3];
	uint8_t b[3];
	int rc, ok;

	snap_reader_init(&r, p, len, "payload");
	if (snap_section(&r, "ONE", 1, &version, &sub))
		return snap_reader_done(&sub, err);
	ok = snap_get_u8(&sub) == 0xA5;
	ok &= snap_get_u16(&sub) == 0xBEEF;
	ok &= snap_get_u32(&sub) == 0xDEADBEEF;
	ok &= snap_get_u64(&sub) == 0x0123456789ABCDEFULL;
	ok &= snap_get_bool(&sub) == true;
	ok &= snap_get_bool(&sub) == false;
	snap_get_bytes(&sub, b, 3);
	snap_get_str(&sub, &s1, 16);
	snap_get_str(&sub, &s2, 16);
	snap_get_str(&sub, &s3, 16);
	snap_get_u64s(&sub, v, 3);
	rc = snap_reader_done(&sub, err);
	if (!rc) {
		ok &= version == 1 && !memcmp(b, "xyz", 3) && s1 && !strcmp(s1, "hello") && !s2 &&
		      s3 && !*s3 && v[0] == 1 && v[1] == 2 && v[2] == UINT64_MAX;
		CHECK(ok);
	}
	free(s1);
	free(s2);
	free(s3);
	if (rc)
		return rc;
	if (snap_section(&r, "TWO2", 3, &version, &sub))
		return snap_reader_done(&sub, err);
	CHECK_EQ(snap_get_u64(&sub), UINT64_MAX);
	CHECK_EQ(version, 3);
	rc = snap_reader_done(&sub, err);
	if (!rc)
		rc = snap_reader_done(&r, err);
	return rc;
}

static void test_round_trip(void)
{
	struct snap_writer w;
	struct yun_err err;
	struct snap_reader r;
	char tag[5];

	write_sample(&w);
	CHECK_EQ(snap_writer_error(&w, &err), 0);
	CHECK_EQ(read_sample(w.buf, w.len, &err), 0);
	snap_reader_init(&r, w.buf, w.len, "payload");
	snap_peek_tag(&r, tag);
	CHECK(!strcmp(tag, "ONE "));
	snap_reader_init(&r, w.buf, 0, "payload");
	snap_peek_tag(&r, tag);
	CHECK(!strcmp(tag, ""));
	snap_writer_free(&w);
}

static void test_tag_and_version(void)
{
	struct snap_writer w;
	struct snap_reader r, sub;
	struct yun_err err;

	write_sample(&w);
	snap_reader_init(&r, w.buf, w.len, "payload");
	CHECK(snap_section(&r, "SER0", 1, NULL, &sub) < 0);
	CHECK(snap_reader_done(&sub, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "expected section SER0, found \"ONE \"");

	/* Version 3 for a reader that knows 1 and 2. */
	snap_reader_init(&r, w.buf, w.len, "payload");
	CHECK_EQ(snap_section(&r, "ONE", 1, NULL, &sub), 0);
	CHECK(snap_section(&r, "TWO2", 2, NULL, &sub) < 0);
	CHECK(snap_reader_done(&sub, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "section TWO2 has version 3; this yun-vmm reads 1 to 2");

	/* Version 0 is never valid. */
	w.buf[4] = 0;
	snap_reader_init(&r, w.buf, w.len, "payload");
	CHECK(snap_section(&r, "ONE", 1, NULL, &sub) < 0);
	CHECK(snap_reader_done(&sub, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "version 0");

	/* A length running past the payload. */
	w.buf[4] = 1;
	w.buf[8] = 0xff;
	w.buf[12] = 0x7f;
	snap_reader_init(&r, w.buf, w.len, "payload");
	CHECK(snap_section(&r, "ONE", 1, NULL, &sub) < 0);
	CHECK(snap_reader_done(&sub, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "claims");
	snap_writer_free(&w);
}

static void test_bad_values(void)
{
	static const uint8_t two = 2, long_str[] = { 9, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 'f', 'g',
						     'h', 'i' };
	static const uint8_t nul_str[] = { 2, 0, 0, 0, 'a', 0 };
	struct snap_reader r;
	struct yun_err err;
	char *s;

	snap_reader_init(&r, &two, 1, "section X");
	CHECK_EQ(snap_get_bool(&r), false);
	CHECK(snap_reader_done(&r, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "section X: byte 0: boolean is 2");

	snap_reader_init(&r, long_str, sizeof(long_str), "section X");
	snap_get_str(&r, &s, 8);
	CHECK(!s);
	CHECK(snap_reader_done(&r, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "string of 9 bytes, at most 8");

	snap_reader_init(&r, nul_str, sizeof(nul_str), "section X");
	snap_get_str(&r, &s, 8);
	CHECK(!s);
	CHECK(snap_reader_done(&r, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "NUL");

	/* Bytes left over are an error too; the first failure is the one reported. */
	snap_reader_init(&r, long_str, sizeof(long_str), "section X");
	snap_get_u8(&r);
	CHECK(snap_reader_done(&r, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "12 unread bytes");
	snap_reader_init(&r, long_str, 2, "section X");
	snap_get_u32(&r);
	snap_reader_fail(&r, "later problem");
	CHECK(snap_reader_done(&r, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "truncated at byte 0: a u32 needs 4 bytes, 2 left");
}

/* Every prefix of a payload is refused, with a message, and read within bounds. */
static void test_truncation(void)
{
	struct snap_writer w;
	struct yun_err err;

	write_sample(&w);
	for (size_t len = 0; len < w.len; len++) {
		/* An exact-size copy, so ASan sees any read past the prefix. */
		uint8_t *p = malloc(len ? len : 1);

		memcpy(p, w.buf, len);
		err.msg[0] = '\0';
		CHECK(read_sample(p, len, &err) < 0);
		CHECK(err.msg[0] != '\0');
		free(p);
	}
	snap_writer_free(&w);
}

/* ---- the file container --------------------------------------------------- */

static void file_path(char *p, size_t n, const char *name)
{
	snprintf(p, n, "%s/%s", dir, name);
}

static void patch_file(const char *path, off_t off, uint8_t v)
{
	int fd = open(path, O_WRONLY);

	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, &v, 1, off), 1);
	close(fd);
}

static void expect_refused(const char *path, const char *msg)
{
	struct yun_err err;
	uint8_t *payload = (uint8_t *)1;
	size_t len = 1;

	CHECK(snap_file_read(path, &payload, &len, &err) < 0);
	CHECK(!payload);
	CHECK_EQ(len, 0);
	CHECK_STR_CONTAINS(err.msg, msg);
	CHECK_STR_CONTAINS(err.msg, path);
}

static void test_file(void)
{
	struct snap_writer w;
	struct yun_err err;
	char path[256];
	uint8_t *payload;
	size_t len;
	struct stat st;

	write_sample(&w);
	file_path(path, sizeof(path), "state");
	CHECK_EQ(snap_file_write(path, w.buf, w.len, &err), 0);
	CHECK_EQ(snap_file_read(path, &payload, &len, &err), 0);
	CHECK_EQ(len, w.len);
	CHECK(!memcmp(payload, w.buf, len));
	CHECK_EQ(read_sample(payload, len, &err), 0);
	free(payload);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);

	/* A flipped payload byte. */
	patch_file(path, 24 + 20, 0x5A);
	expect_refused(path, "checksum mismatch");

	/* Cut short, and grown. */
	CHECK_EQ(snap_file_write(path, w.buf, w.len, &err), 0);
	CHECK_EQ(truncate(path, 24 + (off_t)w.len - 1), 0);
	expect_refused(path, "truncated");
	CHECK_EQ(truncate(path, 24 + (off_t)w.len + 1), 0);
	expect_refused(path, "truncated or padded");
	CHECK_EQ(truncate(path, 10), 0);
	expect_refused(path, "shorter than its header");

	/* Another format version, another magic. */
	CHECK_EQ(snap_file_write(path, w.buf, w.len, &err), 0);
	patch_file(path, 8, 2);
	expect_refused(path, "format version 2, this yun-vmm reads version 1");
	CHECK_EQ(snap_file_write(path, w.buf, w.len, &err), 0);
	patch_file(path, 0, 'X');
	expect_refused(path, "bad magic");

	/* No file; a directory that does not exist for the writer. */
	file_path(path, sizeof(path), "missing");
	CHECK(snap_file_read(path, &payload, &len, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "missing");
	file_path(path, sizeof(path), "no/such/dir");
	CHECK(snap_file_write(path, w.buf, w.len, &err) < 0);
	snap_writer_free(&w);

	file_path(path, sizeof(path), "state");
	unlink(path);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(test_round_trip);
	RUN(test_tag_and_version);
	RUN(test_bad_values);
	RUN(test_truncation);
	RUN(test_file);
	rmdir(dir);
	return CHECK_DONE();
}
