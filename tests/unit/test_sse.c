/* test_sse.c: the incremental SSE parser, fed in every possible split. */
#include "sse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

typedef struct {
    char log[4096];
    int n;
} events;

static int collect(void *arg, const char *event, const char *data, size_t len)
{
    events *e = arg;
    size_t at = strlen(e->log);
    snprintf(e->log + at, sizeof(e->log) - at, "[%s|%.*s]", event, (int)len, data);
    e->n++;
    return 0;
}

/* The same events whether the stream arrives whole, byte by byte, or cut in two anywhere. */
static void check_all_splits(const char *stream, const char *expect)
{
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) {
        events e = {{0}, 0};
        sse_parser p;
        sse_init(&p, 1024, collect, &e);
        assert_int_equal(sse_feed(&p, stream, cut), 0);
        assert_int_equal(sse_feed(&p, stream + cut, n - cut), 0);
        sse_free(&p);
        assert_string_equal(e.log, expect);
    }
    events e = {{0}, 0};
    sse_parser p;
    sse_init(&p, 1024, collect, &e);
    for (size_t i = 0; i < n; i++) assert_int_equal(sse_feed(&p, stream + i, 1), 0);
    sse_free(&p);
    assert_string_equal(e.log, expect);
}

static void test_openai_style(void **s)
{
    (void)s;
    check_all_splits("data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
                     "[message|{\"a\":1}][message|{\"b\":2}][message|[DONE]]");
}

static void test_line_endings(void **s)
{
    (void)s;
    check_all_splits("data: x\r\n\r\ndata: y\r\rdata: z\n\n", "[message|x][message|y][message|z]");
}

static void test_named_events_comments_multiline(void **s)
{
    (void)s;
    check_all_splits(": keep-alive\nevent: message_start\ndata: one\ndata: two\n\n"
                     "event: ping\ndata:{}\n\nid: 7\nretry: 100\ndata:  lead\n\n",
                     "[message_start|one\ntwo][ping|{}][message| lead]");
}

static void test_bom_and_incomplete_tail(void **s)
{
    (void)s;
    /* a BOM opens the stream; an event without its blank line is not dispatched */
    check_all_splits("\xef\xbb\xbf" "data: a\n\ndata: b\n", "[message|a]");
}

static void test_line_limit(void **s)
{
    (void)s;
    events e = {{0}, 0};
    sse_parser p;
    sse_init(&p, 16, collect, &e);
    assert_int_equal(sse_feed(&p, "data: short\n\n", 13), 0);
    assert_int_equal(sse_feed(&p, "data: this line is far too long\n\n", 33), -1);
    sse_free(&p);
    assert_int_equal(e.n, 1);
}

/* Many short data lines join into one event: the limit holds for the
 * joined data too, so a stream of them cannot grow it without end. */
static void test_event_data_limit(void **s)
{
    (void)s;
    events e = {{0}, 0};
    sse_parser p;
    sse_init(&p, 16, collect, &e);
    assert_int_equal(sse_feed(&p, "data: 12345\ndata: 1234\n\n", 25), 0); /* 5 + '\n' + 4 = 10 */
    assert_int_equal(e.n, 1);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) rc = sse_feed(&p, "data: 12345\n", 12);
    assert_int_equal(rc, -1);
    assert_true(p.data_len <= 16);
    sse_free(&p);
    assert_int_equal(e.n, 1);
}

static int stop_at_second(void *arg, const char *event, const char *data, size_t len)
{
    (void)event;
    (void)data;
    (void)len;
    return ++*(int *)arg == 2 ? 7 : 0;
}

static void test_callback_can_stop(void **s)
{
    (void)s;
    int count = 0;
    sse_parser p;
    sse_init(&p, 64, stop_at_second, &count);
    const char *stream = "data: 1\n\ndata: 2\r\n\r\ndata: 3\n\n";
    assert_int_equal(sse_feed(&p, stream, strlen(stream)), 7);
    assert_int_equal(count, 2);
    /* the rest, fed later, continues where the stop was (the CR's LF skipped) */
    assert_int_equal(p.consumed, strlen("data: 1\n\ndata: 2\r\n\r"));
    assert_int_equal(sse_feed(&p, stream + p.consumed, strlen(stream) - p.consumed), 0);
    sse_free(&p);
    assert_int_equal(count, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_style),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_named_events_comments_multiline),
        cmocka_unit_test(test_bom_and_incomplete_tail),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_event_data_limit),
        cmocka_unit_test(test_callback_can_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
