/*
 * lib_test.c - src/lib: number and size parsing (str.h), JSON objects and
 * field readers (json.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "lib/json.h"
#include "lib/str.h"

static void test_numbers(void)
{
	uint64_t u;
	int64_t i;

	CHECK_EQ(yun_parse_u64("0", &u), 0);
	CHECK_EQ(u, 0);
	CHECK_EQ(yun_parse_u64("18446744073709551615", &u), 0);
	CHECK_EQ(u, UINT64_MAX);
	CHECK_EQ(yun_parse_u64("18446744073709551616", &u), -ERANGE);
	CHECK_EQ(yun_parse_u64("-1", &u), -EINVAL);
	CHECK_EQ(yun_parse_u64("+1", &u), -EINVAL);
	CHECK_EQ(yun_parse_u64(" 1", &u), -EINVAL);
	CHECK_EQ(yun_parse_u64("1 ", &u), -EINVAL);
	CHECK_EQ(yun_parse_u64("", &u), -EINVAL);
	CHECK_EQ(yun_parse_u64("12abc", &u), -EINVAL);
	CHECK_EQ(yun_parse_i64("-5", &i), 0);
	CHECK_EQ(i, (uint64_t)-5);
	CHECK_EQ(yun_parse_i64("9223372036854775808", &i), -ERANGE);
	CHECK_EQ(yun_parse_i64("x", &i), -EINVAL);
}

static void test_sizes(void)
{
	int64_t b;

	CHECK_EQ(yun_parse_size_mib("512", &b), 0);
	CHECK_EQ(b, 512ull << 20);
	CHECK_EQ(yun_parse_size_mib("2G", &b), 0);
	CHECK_EQ(b, 2ull << 30);
	CHECK_EQ(yun_parse_size_mib("64k", &b), 0);
	CHECK_EQ(b, 64ull << 10);
	CHECK_EQ(yun_parse_size_mib("-1", &b), 0);
	CHECK_EQ(b, (uint64_t)-(1ll << 20));
	CHECK_EQ(yun_parse_size_mib("9000000000000G", &b), -ERANGE);
	CHECK_EQ(yun_parse_size_mib("G", &b), -EINVAL);
	CHECK_EQ(yun_parse_size_mib("1T", &b), -EINVAL);
	CHECK_EQ(yun_parse_size_mib("", &b), -EINVAL);
}

static void test_json(void)
{
	struct yun_err err = { 0 };
	json_t *o = NULL;
	char *s = NULL;
	uint64_t n;
	bool b;
	char path[] = "/tmp/yun-lib-test.XXXXXX";
	int fd;

	CHECK_EQ(yun_json_parse_object("{\"a\": 1}", 8, "body", &o, &err), 0);
	CHECK(o && json_is_object(o));
	CHECK_EQ(yun_json_get_count(json_object_get(o, "a"), "a", &n, "body", &err), 0);
	CHECK_EQ(n, 1);
	json_decref(o);

	CHECK_EQ(yun_json_parse_object("[1]", 3, "body", &o, &err), -EINVAL);
	CHECK(o == NULL);
	CHECK_STR_CONTAINS(err.msg, "body: must be a JSON object");
	CHECK_EQ(yun_json_parse_object("{\"a\":1,\"a\":2}", 13, "body", &o, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "duplicate");
	CHECK_EQ(yun_json_parse_object("{\"a\": 1,", 8, "body", &o, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "body: line 1 column");
	CHECK_EQ(yun_json_parse_object("{}\0{}", 5, "body", &o, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "NUL byte");

	o = json_pack("{s:s, s:b, s:i, s:i}", "s", "x", "b", 1, "neg", -1, "n", 7);
	CHECK_EQ(yun_json_get_string(json_object_get(o, "s"), "s", &s, "req", &err), 0);
	CHECK(s && !strcmp(s, "x"));
	CHECK_EQ(yun_json_get_string(json_object_get(o, "n"), "n", &s, "req", &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "req: \"n\" must be a string");
	CHECK(s && !strcmp(s, "x")); /* unchanged on error */
	CHECK_EQ(yun_json_get_bool(json_object_get(o, "b"), "b", &b, "req", &err), 0);
	CHECK(b);
	CHECK_EQ(yun_json_get_bool(json_object_get(o, "s"), "s", &b, "req", &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "must be true or false");
	CHECK_EQ(yun_json_get_count(json_object_get(o, "neg"), "neg", &n, "req", &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "req: \"neg\" must be a non-negative integer");
	json_decref(o);
	free(s);

	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "{\"k\": true}", 11), 11);
	close(fd);
	CHECK_EQ(yun_json_load_object("config", path, 1 << 20, &o, &err), 0);
	CHECK(json_is_true(json_object_get(o, "k")));
	json_decref(o);
	CHECK_EQ(yun_json_load_object("config", path, 4, &o, &err) < 0, 1);
	CHECK_STR_CONTAINS(err.msg, path);
	unlink(path);
	CHECK(yun_json_load_object("config", path, 1 << 20, &o, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "config");
}

int main(void)
{
	test_numbers();
	test_sizes();
	test_json();
	return check_failures ? 1 : 0;
}
