/*
 * cli_sse_test.c - src/cli/sse.c: the framing of `yun events`' stream,
 * fed the way the network delivers it (whole, byte by byte, split across
 * line ends), with keepalive comments, CRLF and CR line ends, multi-line
 * data, ids that persist, and a callback that stops the stream.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "cli/sse.h"

struct seen {
	int count;
	int stop_after;
	char log[4096];
};

static int record(const struct sse_event *ev, void *arg)
{
	struct seen *s = arg;
	size_t len = strlen(s->log);

	snprintf(s->log + len, sizeof(s->log) - len, "[%s|%s|%s]", ev->id, ev->type, ev->data);
	s->count++;
	return s->stop_after && s->count >= s->stop_after;
}

static const char stream[] = ": keepalive\n"
			     "\n"
			     "id: 1\n"
			     "event: instance.state\n"
			     "data: {\"id\":\"i-0123456789ab\",\"state\":\"running\"}\n"
			     "\n"
			     "id: 2\r\n"
			     "event: image.created\r\n"
			     "data:{\"a\":1}\r\n"
			     "\r\n"
			     "data: line one\r"
			     "data: line two\r"
			     "\r"
			     "event: ignored-without-data\n"
			     "\n"
			     "retry: 5000\n"
			     "unknown: field\n"
			     "data\n"
			     "\n";

static const char expected[] =
    "[1|instance.state|{\"id\":\"i-0123456789ab\",\"state\":\"running\"}]"
    "[2|image.created|{\"a\":1}]"
    "[2|message|line one\nline two]"
    "[2|message|]";

static void test_whole(void)
{
	struct sse_parser p;
	struct seen s = {0};

	sse_init(&p, record, &s);
	CHECK_EQ(sse_feed(&p, stream, sizeof(stream) - 1), 0);
	CHECK_EQ(s.count, 4);
	if (strcmp(s.log, expected))
		fprintf(stderr, "got: %s\n", s.log);
	CHECK(!strcmp(s.log, expected));
	sse_free(&p);
}

static void test_byte_by_byte(void)
{
	struct sse_parser p;
	struct seen s = {0};

	sse_init(&p, record, &s);
	for (size_t i = 0; i < sizeof(stream) - 1; i++)
		CHECK_EQ(sse_feed(&p, stream + i, 1), 0);
	CHECK(!strcmp(s.log, expected));
	sse_free(&p);
}

static void test_every_split(void)
{
	/* Two chunks, cut at every position: same events. */
	for (size_t cut = 0; cut < sizeof(stream); cut++) {
		struct sse_parser p;
		struct seen s = {0};

		sse_init(&p, record, &s);
		sse_feed(&p, stream, cut);
		sse_feed(&p, stream + cut, sizeof(stream) - 1 - cut);
		if (strcmp(s.log, expected)) {
			fprintf(stderr, "cut at %zu: %s\n", cut, s.log);
			check_failures++;
		}
		sse_free(&p);
	}
}

static void test_stop(void)
{
	struct sse_parser p;
	struct seen s = {.stop_after = 2};

	sse_init(&p, record, &s);
	CHECK_EQ(sse_feed(&p, stream, sizeof(stream) - 1), 1);
	CHECK_EQ(s.count, 2);
	/* Nothing more after a stop. */
	CHECK_EQ(sse_feed(&p, "data: x\n\n", 9), 1);
	CHECK_EQ(s.count, 2);
	sse_free(&p);
}

static void test_incomplete(void)
{
	struct sse_parser p;
	struct seen s = {0};

	/* No blank line yet: no event. */
	sse_init(&p, record, &s);
	CHECK_EQ(sse_feed(&p, "id: 7\nevent: x\ndata: y\n", 23), 0);
	CHECK_EQ(s.count, 0);
	CHECK_EQ(sse_feed(&p, "\n", 1), 0);
	CHECK_EQ(s.count, 1);
	CHECK(!strcmp(s.log, "[7|x|y]"));
	sse_free(&p);
}

static void test_long_line(void)
{
	struct sse_parser p;
	struct seen s = {0};
	size_t n = SSE_MAX_LINE + 16;
	char *big = malloc(n);
	int rc;

	memset(big, 'a', n);
	sse_init(&p, record, &s);
	rc = sse_feed(&p, big, n);
	CHECK_EQ(rc, -E2BIG);
	CHECK_EQ(s.count, 0);
	sse_free(&p);
	free(big);
}

int main(void)
{
	RUN(test_whole);
	RUN(test_byte_by_byte);
	RUN(test_every_split);
	RUN(test_stop);
	RUN(test_incomplete);
	RUN(test_long_line);
	return CHECK_DONE();
}
