/*
 * cli_kind_test.c - src/cli/kind.c: what each column formatter makes of
 * an object's fields (the cells of every `yun ... ls` table): strings and
 * states as they are, counts, sizes in bytes/MiB/GiB, ages, ids shown as
 * the names they refer to, custom cells, nested fields, and "-" (NULL) for
 * whatever is missing or of another type.
 */
#include <string.h>

#include "check.h"
#include "cli/kind.h"
#include "cli/table.h"

/* NULL-safe string check: a NULL cell is printed as "-" by the table. */
#define CHECK_CELL(got, want)                                                                      \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if ((g_ == NULL) != (w_ == NULL) || (g_ && strcmp(g_, w_))) {                      \
			fprintf(stderr, "%s:%d: CHECK_CELL failed: %s: \"%s\" != \"%s\"\n",        \
				__FILE__, __LINE__, #got, g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

static const char *cell(const char *field, enum kind_fmt fmt, const struct kind_row *row, char *buf,
			size_t n)
{
	struct kind_col c = {.header = "X", .field = field, .fmt = fmt, .ref = "images"};

	return kind_cell(&c, row, buf, n);
}

static void test_plain_fields(void)
{
	json_t *o = json_pack("{ss ss si s{si} sn si}", "name", "web", "state", "running", "vcpus",
			      2, "allocated", "vcpus", 3, "ip", "count", -1);
	struct kind_row row = {.obj = o};
	char b[64];

	CHECK_CELL(cell("name", KF_STRING, &row, b, sizeof(b)), "web");
	CHECK_CELL(cell("state", KF_STATE, &row, b, sizeof(b)), "running");
	CHECK_CELL(cell("ip", KF_STRING, &row, b, sizeof(b)), NULL); /* null */
	CHECK_CELL(cell("missing", KF_STRING, &row, b, sizeof(b)), NULL);
	CHECK_CELL(cell("vcpus", KF_STRING, &row, b, sizeof(b)), NULL); /* not a string */
	CHECK_CELL(cell("vcpus", KF_INT, &row, b, sizeof(b)), "2");
	CHECK_CELL(cell("count", KF_INT, &row, b, sizeof(b)), "-1");
	CHECK_CELL(cell("name", KF_INT, &row, b, sizeof(b)), NULL);
	CHECK_CELL(cell("allocated.vcpus", KF_INT, &row, b, sizeof(b)), "3");
	CHECK_CELL(cell("allocated.memory", KF_INT, &row, b, sizeof(b)), NULL);
	CHECK_CELL(cell("name.sub", KF_INT, &row, b, sizeof(b)), NULL);
	CHECK(kind_field(o, "allocated.vcpus") ==
	      json_object_get(json_object_get(o, "allocated"), "vcpus"));
	json_decref(o);
}

static void test_sizes(void)
{
	json_t *o = json_pack("{sI si si si si}", "size", (json_int_t)1536 << 20, "memory_mib", 512,
			      "disk_gib", 20, "zero", 0, "neg", -5);
	struct kind_row row = {.obj = o};
	char b[64];

	CHECK_CELL(cell("size", KF_BYTES, &row, b, sizeof(b)), "1.5G");
	CHECK_CELL(cell("zero", KF_BYTES, &row, b, sizeof(b)), "0");
	CHECK_CELL(cell("neg", KF_BYTES, &row, b, sizeof(b)), NULL);
	CHECK_CELL(cell("memory_mib", KF_MIB, &row, b, sizeof(b)), "512M");
	CHECK_CELL(cell("disk_gib", KF_GIB, &row, b, sizeof(b)), "20G");
	/* A flavor without a disk: no size, not "0". */
	CHECK_CELL(cell("zero", KF_GIB, &row, b, sizeof(b)), NULL);
	CHECK_CELL(cell("missing", KF_MIB, &row, b, sizeof(b)), NULL);
	json_decref(o);
}

static void test_ages(void)
{
	json_t *o = json_pack("{ss ss}", "created_at", "2026-11-22T07:00:00Z", "bad", "yesterday");
	struct kind_row row = {.obj = o};
	char b[64];

	CHECK(tbl_parse_time("2026-11-22T07:05:00Z", &row.now) == 0);
	CHECK_CELL(cell("created_at", KF_AGE, &row, b, sizeof(b)), "5m");
	CHECK_CELL(cell("bad", KF_AGE, &row, b, sizeof(b)), "-");
	json_decref(o);
}

static void test_refs(void)
{
	json_t *o = json_pack("{ss ss}", "image", "img-000000000001", "other", "img-00000000000f");
	json_t *refs =
	    json_pack("{s[{ssss}]}", "images", "id", "img-000000000001", "name", "busybox");
	struct kind_row row = {.obj = o, .refs = refs};
	char b[64];

	CHECK_CELL(cell("image", KF_REF, &row, b, sizeof(b)), "busybox");
	/* Not in the list (or no list at all): the id itself. */
	CHECK_CELL(cell("other", KF_REF, &row, b, sizeof(b)), "img-00000000000f");
	row.refs = NULL;
	CHECK_CELL(cell("image", KF_REF, &row, b, sizeof(b)), "img-000000000001");
	CHECK_CELL(cell("missing", KF_REF, &row, b, sizeof(b)), NULL);
	json_decref(refs);
	json_decref(o);
}

static const char *double_name(const struct kind_row *row, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", jstr(row->obj, "name"), jstr(row->obj, "name"));
	return buf;
}

static void test_custom(void)
{
	json_t *o = json_pack("{ss}", "name", "a");
	struct kind_row row = {.obj = o};
	struct kind_col c = {.header = "X", .fmt = KF_CUSTOM, .cell = double_name};
	char b[64];

	CHECK_CELL(kind_cell(&c, &row, b, sizeof(b)), "a/a");
	json_decref(o);
}

int main(void)
{
	RUN(test_plain_fields);
	RUN(test_sizes);
	RUN(test_ages);
	RUN(test_refs);
	RUN(test_custom);
	return CHECK_DONE();
}
