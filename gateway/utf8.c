/* utf8.c: see local.h, "text that is always valid UTF-8".
 *
 * A small decoder of the WHATWG kind: a character is held while it is a
 * valid prefix, and each maximal invalid part becomes one U+FFFD, so the
 * JSON we stream is always valid UTF-8 whatever the model emits.
 */
#include "local.h"

#include <string.h>

static const char replacement[] = "\xef\xbf\xbd";

/* Bytes a character starting with `b` has (0: never a first byte). */
static int char_length(unsigned char b)
{
    if (b < 0x80) return 1;
    if (b >= 0xc2 && b <= 0xdf) return 2;
    if (b >= 0xe0 && b <= 0xef) return 3;
    if (b >= 0xf0 && b <= 0xf4) return 4;
    return 0;
}

/* Whether `b` may follow the held prefix (first byte `lead`, `n` held). */
static bool continues(unsigned char lead, int n, unsigned char b)
{
    unsigned char lo = 0x80, hi = 0xbf;
    if (n == 1) { /* the second byte rules out overlongs, surrogates and > U+10FFFF */
        if (lead == 0xe0) lo = 0xa0;
        else if (lead == 0xed) hi = 0x9f;
        else if (lead == 0xf0) lo = 0x90;
        else if (lead == 0xf4) hi = 0x8f;
    }
    return b >= lo && b <= hi;
}

size_t gw_utf8_feed(gw_utf8 *u, const char *in, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char b = (unsigned char)in[i];
        if (u->n_held > 0) {
            if (!continues(u->held[0], u->n_held, b)) { /* the held part is invalid: one U+FFFD, then b again */
                memcpy(out + n, replacement, 3);
                n += 3;
                u->n_held = 0;
                continue;
            }
            u->held[u->n_held++] = b;
            i++;
            if (u->n_held == char_length(u->held[0])) {
                memcpy(out + n, u->held, (size_t)u->n_held);
                n += (size_t)u->n_held;
                u->n_held = 0;
            }
            continue;
        }
        int need = char_length(b);
        i++;
        if (need == 1) {
            out[n++] = (char)b;
        } else if (need == 0) {
            memcpy(out + n, replacement, 3);
            n += 3;
        } else {
            u->held[0] = b;
            u->n_held = 1;
        }
    }
    return n;
}

size_t gw_utf8_flush(gw_utf8 *u, char *out)
{
    if (u->n_held == 0) return 0;
    u->n_held = 0;
    memcpy(out, replacement, 3);
    return 3;
}
