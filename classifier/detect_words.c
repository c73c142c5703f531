/* detect_words.c: the one walk over a message's words.
 *
 * Most detectors start at a word: a number (cards, SSNs, phones, IPv4,
 * street numbers), a known prefix (AKIA, ghp_, sk-, eyJ), an IBAN's country
 * code, a lexicon word (context words, triggers such as "passport" or
 * "Bearer", names, medical terms) or a secret-like identifier followed by an
 * assignment. Walking the words once and dispatching on the first byte keeps
 * the cost at a few nanoseconds per byte of ordinary text; a detector that
 * consumes more than its word returns where the walk resumes.
 */
#include "detect_internal.h"

#include <stdint.h>

/* The LEX_CTX_* bits, in the order of det_scan.last_ctx. */
static const uint32_t ctx_bits[10] = {
    LEX_CTX_EMAIL, LEX_CTX_PHONE, LEX_CTX_SSN, LEX_CTX_CARD, LEX_CTX_IBAN,
    LEX_CTX_IP, LEX_CTX_DOB, LEX_CTX_PASSPORT, LEX_CTX_LICENSE, LEX_NEG_NUMBER,
};

#define LEX_ALL_CTX (LEX_CTX_EMAIL | LEX_CTX_PHONE | LEX_CTX_SSN | LEX_CTX_CARD | LEX_CTX_IBAN | \
                     LEX_CTX_IP | LEX_CTX_DOB | LEX_CTX_PASSPORT | LEX_CTX_LICENSE | LEX_NEG_NUMBER)

static size_t letter_word(det_scan *s, size_t a, size_t b)
{
    const char *t = s->t;
    size_t next = det_prefixed_secret(s, a, b);
    if (next > b) return next;
    if (b - a >= 4 && det_is_upper((unsigned char)t[a]) && det_is_upper((unsigned char)t[a + 1]) &&
        det_is_digit((unsigned char)t[a + 2]) && det_is_digit((unsigned char)t[a + 3])) {
        next = det_iban(s, a, b);
        if (next > b) return next;
    }
    uint32_t flags = det_word_flags(s, a, b);
    if (flags & LEX_ALL_CTX) {
        for (int i = 0; i < 10; i++)
            if (flags & ctx_bits[i]) s->last_ctx[i] = b;
        det_after_context(s, flags, a, b);
    }
    if (flags & LEX_BEARER) det_bearer(s, b);
    int secret = det_secret_name(t, a, b);
    if (secret) det_assignment(s, a, b, secret == 1);
    if (b - a == 1 && a >= 4 && det_starts_ci(t, b, a - 4, "d.o.b")) det_after_context(s, LEX_CTX_DOB, a, b);
    return det_people_word(s, flags, a, b);
}

void det_scan_words(det_scan *s)
{
    const unsigned char *t = (const unsigned char *)s->t;
    size_t n = s->n, i = 0;
    while (i < n && !s->full) {
        while (i < n && !det_is_word(t[i])) i++;
        if (i >= n) break;
        size_t a = i;
        while (i < n && det_is_word(t[i])) i++;
        size_t next;
        if (det_is_digit(t[a]))
            next = det_number(s, a, i);
        else if (det_is_alpha(t[a]))
            next = letter_word(s, a, i);
        else
            next = i;
        i = next > i ? next : i;
    }
}
