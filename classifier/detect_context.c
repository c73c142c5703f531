/* detect_context.c: values that only mean something after their word:
 * dates of birth, passport numbers and driver's licence numbers.
 *
 * A date is a date of birth only next to "born", "DOB" or "date of birth";
 * a nine-digit number is a passport number only after "passport". So these
 * detectors start at the context word and look at the next few words,
 * which keeps every other date and number in the text out of them.
 */
#include "detect_internal.h"

#define LOOKAHEAD 48

static size_t digits_at(const char *t, size_t n, size_t i, unsigned *v)
{
    size_t a = i;
    *v = 0;
    while (i < n && i - a < 4 && det_is_digit((unsigned char)t[i])) *v = *v * 10 + (unsigned)(t[i++] - '0');
    if (i < n && det_is_digit((unsigned char)t[i])) return a;   /* more than four digits */
    return i;
}

static bool plausible(unsigned d, unsigned m, unsigned y, size_t ylen)
{
    if (ylen == 4 && (y < 1900 || y > 2030)) return false;
    if (ylen != 2 && ylen != 4) return false;
    return d >= 1 && d <= 31 && m >= 1 && m <= 12;
}

static size_t skip_ordinal(const char *t, size_t n, size_t i)
{
    if (det_starts_ci(t, n, i, "st") || det_starts_ci(t, n, i, "nd") || det_starts_ci(t, n, i, "rd") ||
        det_starts_ci(t, n, i, "th"))
        return i + 2;
    return i;
}

static size_t skip_spaces(const char *t, size_t n, size_t i, bool comma)
{
    while (i < n && (t[i] == ' ' || (comma && t[i] == ','))) i++;
    return i;
}

/* A month name at i: its end, or 0. */
static size_t month_at(det_scan *s, size_t i)
{
    size_t e = i;
    while (e < s->n && det_is_alpha((unsigned char)s->t[e])) e++;
    if (e == i || !(det_word_flags(s, i, e) & LEX_MONTH)) return 0;
    if (e < s->n && s->t[e] == '.') e++;
    return e;
}

/* A date starting at i: its end, or 0. "12/03/1985", "1985-03-12",
 * "3 March 1985", "March 3rd, 1985", "12.03.85". */
static size_t date_at(det_scan *s, size_t i)
{
    const char *t = s->t;
    size_t n = s->n;
    unsigned v1, v2, v3;
    if (det_is_digit((unsigned char)t[i])) {
        size_t e1 = digits_at(t, n, i, &v1);
        if (e1 == i) return 0;
        char sep = e1 < n ? t[e1] : 0;
        if ((sep == '/' || sep == '-' || sep == '.') && e1 + 1 < n) {
            size_t e2 = digits_at(t, n, e1 + 1, &v2);
            if (e2 == e1 + 1 || e2 - e1 - 1 > 2 || e2 >= n || t[e2] != sep) return 0;
            size_t e3 = digits_at(t, n, e2 + 1, &v3);
            if (e3 == e2 + 1 || (e3 < n && det_is_word((unsigned char)t[e3]))) return 0;
            if (e1 - i == 4) return plausible(v3, v2, v1, 4) ? e3 : 0;   /* year first */
            if (e1 - i > 2) return 0;
            return plausible(v1, v2, v3, e3 - e2 - 1) || plausible(v2, v1, v3, e3 - e2 - 1) ? e3 : 0;
        }
        /* "3 March 1985", "3rd of March, 1985" */
        if (e1 - i > 2 || v1 < 1 || v1 > 31) return 0;
        size_t j = skip_spaces(t, n, skip_ordinal(t, n, e1), false);
        if (det_starts_ci(t, n, j, "of ")) j += 3;
        size_t me = month_at(s, j);
        if (!me) return 0;
        j = skip_spaces(t, n, me, true);
        size_t ye = digits_at(t, n, j, &v3);
        return ye - j == 4 && plausible(v1, 1, v3, 4) && (ye >= n || !det_is_word((unsigned char)t[ye])) ? ye : 0;
    }
    /* "March 3, 1985" */
    size_t me = month_at(s, i);
    if (!me) return 0;
    size_t j = skip_spaces(t, n, me, false);
    size_t de = digits_at(t, n, j, &v1);
    if (de == j || de - j > 2) return 0;
    j = skip_spaces(t, n, skip_ordinal(t, n, de), true);
    size_t ye = digits_at(t, n, j, &v3);
    return ye - j == 4 && plausible(v1, 1, v3, 4) && (ye >= n || !det_is_word((unsigned char)t[ye])) ? ye : 0;
}

/* An identifier of `min`..`max` bytes of capitals, digits (and '-' when
 * allowed) with at least `min_digits` digits, starting at i: its end or 0. */
static size_t id_at(const char *t, size_t n, size_t i, size_t min, size_t max, int min_digits, bool dashes)
{
    size_t e = i;
    int digits = 0;
    while (e < n && (det_is_upper((unsigned char)t[e]) || det_is_digit((unsigned char)t[e]) ||
                     (dashes && t[e] == '-' && e > i && e + 1 < n && det_is_alnum((unsigned char)t[e + 1])))) {
        digits += det_is_digit((unsigned char)t[e]);
        e++;
    }
    if (e < n && det_is_word((unsigned char)t[e])) return 0;
    return e - i >= min && e - i <= max && digits >= min_digits ? e : 0;
}

typedef size_t (*value_fn)(det_scan *s, size_t i);

static size_t passport_at(det_scan *s, size_t i) { return id_at(s->t, s->n, i, 6, 10, 4, false); }
static size_t license_at(det_scan *s, size_t i) { return id_at(s->t, s->n, i, 5, 20, 4, true); }

/* Look for a value among the next words after the context word [a, b). */
static void find_after(det_scan *s, size_t b, value_fn fn, cls_kind k, float conf)
{
    const char *t = s->t;
    size_t stop = b + LOOKAHEAD < s->n ? b + LOOKAHEAD : s->n;
    for (size_t i = b; i < stop; i++) {
        if (t[i] == '\n' && i + 1 < s->n && t[i + 1] == '\n') return;
        if (!det_is_alnum((unsigned char)t[i]) || (i > 0 && det_is_word((unsigned char)t[i - 1]))) continue;
        size_t e = fn(s, i);
        if (e) {
            det_add(s, k, i, e, conf, false);
            return;
        }
    }
}

/* "driver's license", "driving licence", "DL": not "MIT License". */
static bool licence_word(det_scan *s, size_t a, size_t b)
{
    if (b - a == 2) return s->t[a] == 'D' && s->t[a + 1] == 'L';
    size_t from = a >= 14 ? a - 14 : 0;
    for (size_t i = from; i + 4 <= a; i++)
        if (det_starts_ci(s->t, a, i, "driv")) return true;
    return false;
}

void det_after_context(det_scan *s, uint32_t flags, size_t a, size_t b)
{
    if (flags & LEX_CTX_DOB) find_after(s, b, date_at, CLS_DATE_OF_BIRTH, 0.85f);
    if (flags & LEX_CTX_PASSPORT) find_after(s, b, passport_at, CLS_PASSPORT, 0.85f);
    if ((flags & LEX_CTX_LICENSE) && licence_word(s, a, b)) find_after(s, b, license_at, CLS_DRIVERS_LICENSE, 0.85f);
}
