/* sse.h: an incremental Server-Sent Events parser. Internal to upstream.
 *
 * Feed it bytes as they arrive, split anywhere; it calls back once per
 * complete event with the event name and its data (multi-line data joined
 * with '\n'). Handles LF, CRLF and CR line ends, comments, and a leading
 * BOM; refuses a line, or an event's data (its data lines joined), longer
 * than the limit instead of growing without end.
 */
#ifndef JUNCTION_SSE_H
#define JUNCTION_SSE_H

#include <stddef.h>

/* Return non-zero to stop parsing (sse_feed then returns that value). */
typedef int (*sse_event_fn)(void *arg, const char *event, const char *data, size_t data_len);

typedef struct {
    char *line;              /* the line being assembled */
    size_t line_len, line_cap;
    char *data;              /* data lines of the event being assembled */
    size_t data_len, data_cap;
    char event[64];
    int has_data;
    int last_was_cr;         /* a CR ended the previous line: skip a following LF */
    int started;             /* past a possible BOM */
    size_t max_line;
    size_t consumed;         /* after a callback stopped sse_feed: the bytes of
                                its buffer used, up to the event's end */
    sse_event_fn on_event;
    void *arg;
} sse_parser;

void sse_init(sse_parser *p, size_t max_line, sse_event_fn on_event, void *arg);
/* 0 on success, -1 on a line or event data over the limit or out of memory, or the
 * callback's non-zero value: then p->consumed says where the rest of `buf`
 * begins, to be fed later (a reader that must pause after an event). */
int sse_feed(sse_parser *p, const char *buf, size_t len);
void sse_free(sse_parser *p);

#endif
