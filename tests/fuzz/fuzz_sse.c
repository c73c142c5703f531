/* fuzz_sse.c: arbitrary bytes as a Server-Sent Events stream.
 *
 * An upstream's stream arrives in whatever pieces the network makes, so the
 * parser's promise is that the pieces do not matter: the same events, in the
 * same order, and the same outcome (an over-long line is refused at the same
 * point) whether the bytes come whole or cut up. The input is fed whole,
 * then byte by byte, then in pieces whose sizes come from the input itself;
 * the three transcripts must agree. A small line limit puts the limit's
 * path within the fuzzer's reach.
 */
#include "fuzz.h"
#include "sse.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LINE 512

typedef struct {
    char *log;
    size_t len, cap;
    int events;
} transcript;

static void log_bytes(transcript *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        size_t cap = (t->len + n) * 2 + 64;
        char *b = realloc(t->log, cap);
        if (!b) fuzz_fail("out of memory keeping a transcript");
        t->log = b;
        t->cap = cap;
    }
    memcpy(t->log + t->len, p, n);
    t->len += n;
}

static int on_event(void *arg, const char *event, const char *data, size_t len)
{
    transcript *t = arg;
    size_t el = strlen(event);
    if (el == 0 || el >= 64) fuzz_fail("an event name of %zu bytes", el);
    if (data[len] != '\0') fuzz_fail("event data is not NUL-terminated");
    log_bytes(t, &el, sizeof(el));
    log_bytes(t, event, el);
    log_bytes(t, &len, sizeof(len));
    log_bytes(t, data, len);
    t->events++;
    return 0;
}

/* Feed `data` in pieces of the sizes `piece` returns; the transcript ends with the outcome. */
static void run(const uint8_t *data, size_t size, size_t (*piece)(const uint8_t *, size_t, size_t), transcript *t)
{
    sse_parser p;
    sse_init(&p, MAX_LINE, on_event, t);
    int rc = 0;
    for (size_t at = 0; at < size && rc == 0;) {
        size_t n = piece(data, size, at);
        if (n > size - at) n = size - at;
        rc = sse_feed(&p, (const char *)data + at, n);
        at += n;
    }
    sse_free(&p);
    log_bytes(t, &rc, sizeof(rc));
}

static size_t whole(const uint8_t *d, size_t size, size_t at) { (void)d; return size - at; }
static size_t one_byte(const uint8_t *d, size_t size, size_t at) { (void)d; (void)size; (void)at; return 1; }
static size_t from_input(const uint8_t *d, size_t size, size_t at) { (void)size; return 1 + d[at] % 7; }

FUZZ_TARGET(sse)
{
    size_t (*const feeds[])(const uint8_t *, size_t, size_t) = {whole, one_byte, from_input};
    transcript first = {0};
    run(data, size, feeds[0], &first);
    for (size_t i = 1; i < sizeof(feeds) / sizeof(feeds[0]); i++) {
        transcript t = {0};
        run(data, size, feeds[i], &t);
        if (t.len != first.len || memcmp(t.log, first.log, t.len) != 0)
            fuzz_fail("feeding in pieces (way %zu) gave %d events, whole %d, or a different outcome",
                      i, t.events, first.events);
        free(t.log);
    }
    free(first.log);
    return 0;
}
