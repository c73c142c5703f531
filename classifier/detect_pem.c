/* detect_pem.c: private key blocks (PEM, OpenSSH, PGP, PuTTY).
 *
 * A block is a private key when its BEGIN label says so; public keys and
 * certificates are not secrets. A block whose body is a few characters and
 * an ellipsis is documentation of the format, not a key: it is reported
 * with low confidence when it has some key material and not at all when
 * it has none.
 */
#include "detect_internal.h"

#include <string.h>

static bool base64_char(unsigned char c) { return det_is_alnum(c) || c == '+' || c == '/' || c == '='; }

static void pem_block(det_scan *s, size_t begin)
{
    const char *t = s->t;
    size_t lab = begin + strlen("-----BEGIN ");
    const char *close = memmem(t + lab, s->n - lab < 64 ? s->n - lab : 64, "-----", 5);
    if (!close) return;
    size_t lab_end = (size_t)(close - t);
    if (!memmem(t + lab, lab_end - lab, "PRIVATE KEY", 11)) return;
    size_t body = lab_end + 5;
    const char *endm = memmem(t + body, s->n - body, "-----END", 8);
    size_t body_end = endm ? (size_t)(endm - t) : s->n;
    size_t chars = 0;
    for (size_t i = body; i < body_end; i++) chars += base64_char((unsigned char)t[i]);
    size_t end = body_end;
    if (endm) {
        const char *tail = memmem(t + body_end + 8, s->n - body_end - 8 < 80 ? s->n - body_end - 8 : 80, "-----", 5);
        end = tail ? (size_t)(tail - t) + 5 : body_end + 8;
    } else {
        while (end > body && det_is_space((unsigned char)t[end - 1])) end--;
    }
    if (chars < 16) return;
    bool real = chars >= 40 && !memmem(t + body, body_end - body, "...", 3);
    det_add(s, CLS_PRIVATE_KEY, begin, end, real ? 0.99f : 0.6f, real);
}

static void putty_key(det_scan *s, size_t begin)
{
    const char *t = s->t;
    const char *mac = memmem(t + begin, s->n - begin, "Private-MAC:", 12);
    size_t end = mac ? (size_t)(mac - t) : s->n;
    if (mac)
        while (end < s->n && t[end] != '\n' && t[end] != '\r') end++;
    det_add(s, CLS_PRIVATE_KEY, begin, end, 0.95f, mac != NULL);
}

void det_scan_pem(det_scan *s)
{
    static const char begin[] = "-----BEGIN ";
    const char *t = s->t;
    size_t i = 0;
    const char *p;
    while (i < s->n && (p = memmem(t + i, s->n - i, begin, sizeof begin - 1)) != NULL) {
        size_t at = (size_t)(p - t);
        pem_block(s, at);
        i = at + sizeof begin - 1;
    }
    p = memmem(t, s->n, "PuTTY-User-Key-File-", 20);
    if (p) putty_key(s, (size_t)(p - t));
}
