/* sse.c: see sse.h. Follows the WHATWG event-stream parsing rules. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

void sse_init(sse_parser *p, size_t max_line, sse_event_fn on_event, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->max_line = max_line;
    p->on_event = on_event;
    p->arg = arg;
}

void sse_free(sse_parser *p)
{
    free(p->line);
    free(p->data);
    memset(p, 0, sizeof(*p));
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *b = realloc(*buf, c);
    if (!b) return -1;
    *buf = b;
    *cap = c;
    return 0;
}

/* One complete line (without its end). */
static int process_line(sse_parser *p, const char *line, size_t len)
{
    if (len == 0) { /* blank line: dispatch */
        int rc = 0;
        if (p->has_data) {
            if (grow(&p->data, &p->data_cap, p->data_len + 1)) return -1;
            p->data[p->data_len] = '\0';
            rc = p->on_event(p->arg, p->event[0] ? p->event : "message", p->data, p->data_len);
        }
        p->data_len = 0;
        p->has_data = 0;
        p->event[0] = '\0';
        return rc;
    }
    if (line[0] == ':') return 0; /* comment */
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t vlen = colon ? len - nlen - 1 : 0;
    if (vlen > 0 && value[0] == ' ') { value++; vlen--; }
    if (nlen == 4 && !memcmp(line, "data", 4)) {
        /* many short data lines join into one: the limit holds for the whole */
        if (p->data_len + vlen + 1 > p->max_line) return -1;
        size_t need = p->data_len + vlen + 2;
        if (grow(&p->data, &p->data_cap, need)) return -1;
        if (p->has_data) p->data[p->data_len++] = '\n';
        memcpy(p->data + p->data_len, value, vlen);
        p->data_len += vlen;
        p->has_data = 1;
    } else if (nlen == 5 && !memcmp(line, "event", 5)) {
        size_t n = vlen < sizeof(p->event) - 1 ? vlen : sizeof(p->event) - 1;
        memcpy(p->event, value, n);
        p->event[n] = '\0';
    } /* id, retry and unknown fields are ignored */
    return 0;
}

int sse_feed(sse_parser *p, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\n' && p->last_was_cr) {
            p->last_was_cr = 0;
            continue;
        }
        p->last_was_cr = c == '\r';
        if (c == '\n' || c == '\r') {
            const char *line = p->line ? p->line : "";
            size_t ll = p->line_len;
            /* a UTF-8 byte order mark may open the stream */
            if (!p->started && ll >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) { line += 3; ll -= 3; }
            p->started = 1;
            int rc = process_line(p, line, ll);
            p->line_len = 0;
            if (rc) {
                p->consumed = i + 1;
                return rc;
            }
            continue;
        }
        if (p->line_len + 1 > p->max_line) return -1;
        if (grow(&p->line, &p->line_cap, p->line_len + 1)) return -1;
        p->line[p->line_len++] = c;
    }
    return 0;
}
