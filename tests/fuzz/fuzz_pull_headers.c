/* fuzz_pull_headers.c: arbitrary bytes as a server's answer to `junction
 * pull`: its header lines, what they make of the part file, and the start
 * of an error body.
 *
 * A model download trusts the server's headers for three things: where the
 * bytes go (appended to FILE.part, or the part emptied first), how large
 * the whole file is (the disk-space check, the progress, "the connection
 * closed early") and which checksum to expect. The input's first line is
 * the part file's size in bytes (decimal); the rest is the answer as the
 * server sends it: header blocks, each line fed to cli_pull_header as
 * libcurl hands it (a blank line followed by "HTTP/" starts the next
 * response, as after a redirect), then the body, given to
 * cli_pull_error_text as an error answer's. The promises checked:
 * - the status is an HTTP status code (0 to 999), the etag is terminated,
 *   without quotes at either end;
 * - for a 2xx answer, cli_pull_body_plan appends to a non-empty part only
 *   for a 206 whose Content-Range starts where the part ends; starts over
 *   only a non-empty part; a mismatch implies no size; and a size it
 *   implies is never smaller than what the part will hold before the body;
 * - the quoted error text is terminated, at most 200 bytes, and holds
 *   nothing but printable ASCII (it is printed on the user's terminal).
 */
#include "fuzz.h"
#include "pull.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void check_plan(const cli_pull_headers *h, uint64_t have)
{
    uint64_t total = 1;
    cli_body_plan plan = cli_pull_body_plan(h, have, &total);
    unsigned long long hv = (unsigned long long)have, tv = (unsigned long long)total;
    switch (plan) {
    case CLI_BODY_APPEND:
        if (have > 0 && !(h->status == 206 && h->has_range && h->range_start == have))
            fuzz_fail("status %ld appends to a part of %llu bytes (range %d, start %llu)", h->status, hv, h->has_range,
                      (unsigned long long)h->range_start);
        if (total && total < have)
            fuzz_fail("appending to a part of %llu bytes, the file's size is %llu", hv, tv);
        break;
    case CLI_BODY_START_OVER:
        if (have == 0) fuzz_fail("status %ld starts over an empty part", h->status);
        break;
    case CLI_BODY_MISMATCH:
        if (total) fuzz_fail("a mismatch implies the size %llu", tv);
        break;
    default:
        fuzz_fail("cli_pull_body_plan returned %d", (int)plan);
    }
}

static void check_error_text(const char *body, size_t n)
{
    static const size_t lens[] = {256, 17, 1};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char out[256];
        memset(out, 'x', sizeof(out));
        cli_pull_error_text(body, n, out, lens[i]);
        const char *end = memchr(out, 0, lens[i]);
        if (!end) fuzz_fail("cli_pull_error_text left out[%zu] unterminated", lens[i]);
        if (end - out > 200) fuzz_fail("cli_pull_error_text quoted %zu bytes", (size_t)(end - out));
        for (const char *p = out; p < end; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                fuzz_fail("cli_pull_error_text let the byte 0x%02x through, not printable ASCII", (unsigned char)*p);
    }
}

FUZZ_TARGET(pull_headers)
{
    const char *p = (const char *)data, *end = p + size;
    uint64_t have = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) have = have * 10 + (uint64_t)(*p - '0'); /* wraps: any size */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end;

    cli_pull_headers h;
    memset(&h, 0, sizeof(h));
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        /* libcurl's copy of the line, so that reading past it is caught */
        size_t n = (size_t)(next - p);
        char *line = malloc(n ? n : 1);
        if (!line) fuzz_fail("out of memory");
        memcpy(line, p, n);
        cli_pull_header(&h, line, n);
        free(line);
        p = next;
        bool blank = n == 1 || (n == 2 && p[-2] == '\r');
        if (blank && !(end - p >= 5 && !memcmp(p, "HTTP/", 5))) break; /* the body follows */
    }
    if (h.status < 0 || h.status > 999) fuzz_fail("the status line gave the status %ld", h.status);
    if (!memchr(h.linked_etag, 0, sizeof(h.linked_etag))) fuzz_fail("linked_etag is not terminated");
    size_t el = strlen(h.linked_etag);
    if (el && (h.linked_etag[0] == '"' || h.linked_etag[el - 1] == '"')) fuzz_fail("the etag kept a quote: %s", h.linked_etag);
    if (h.status >= 200 && h.status < 300) check_plan(&h, have);
    check_error_text(p, (size_t)(end - p));
    return 0;
}
