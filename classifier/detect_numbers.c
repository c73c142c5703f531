/* detect_numbers.c: card numbers, SSNs, phone numbers, IPv4 and street
 * numbers, from one number and the way its digit groups are separated.
 *
 * A number is read once as groups of digits with their separators
 * ("4111 1111 1111 1111", "(415) 555-0100", "10.20.30.40"); its shape and
 * checksums decide the kind. Shapes that only resemble PII (versions,
 * decimals, times, UUID pieces, order numbers, Luhn-failing 16-digit ids)
 * are passed over whole, so their parts are not tried again.
 */
#include "detect_internal.h"

#include <string.h>

#define MAX_GROUPS 8

typedef struct {
    size_t start, end;           /* the whole number (a '+' or '(' before it included) */
    int g;                       /* groups */
    size_t a[MAX_GROUPS], b[MAX_GROUPS];
    char sep[MAX_GROUPS];        /* sep[k] between group k and k+1 */
    char digits[40];
    int nd;
    bool plus, paren;
} number;

static size_t glen(const number *x, int k) { return x->b[k] - x->a[k]; }

static bool seps_all(const number *x, char c)
{
    for (int k = 0; k + 1 < x->g; k++)
        if (x->sep[k] != c) return false;
    return true;
}

static bool lens_are(const number *x, const int *lens, int g)
{
    if (x->g != g) return false;
    for (int k = 0; k < g; k++)
        if ((int)glen(x, k) != lens[k]) return false;
    return true;
}

static unsigned group_value(const char *t, const number *x, int k)
{
    unsigned v = 0;
    for (size_t i = x->a[k]; i < x->b[k] && v < 100000; i++) v = v * 10 + (unsigned)(t[i] - '0');
    return v;
}

/* Read the groups from a; false when the number runs into letters (a hash,
 * "2024-01-05T10", "3rd"). */
static bool read_number(const char *t, size_t n, size_t a, number *x)
{
    memset(x, 0, sizeof *x);
    x->plus = a > 0 && t[a - 1] == '+';
    x->paren = a > 0 && t[a - 1] == '(';
    size_t i = a;
    for (;;) {
        size_t ga = i;
        while (i < n && det_is_digit((unsigned char)t[i])) {
            if (x->nd < (int)sizeof x->digits - 1) x->digits[x->nd++] = t[i];
            i++;
        }
        x->a[x->g] = ga;
        x->b[x->g] = i;
        x->g++;
        if (i < n && det_is_word((unsigned char)t[i])) {
            x->end = i;
            return false;
        }
        if (x->g == MAX_GROUPS || i + 1 >= n) break;
        char c = t[i];
        size_t next = 0;
        if ((c == '-' || c == '.' || c == ' ' || c == '/') && det_is_digit((unsigned char)t[i + 1]))
            next = i + 1;
        else if (c == ')' && ((x->paren && x->g == 1) || (x->g >= 2 && x->sep[x->g - 2] == '(')))
            next = det_is_digit((unsigned char)t[i + 1]) ? i + 1
                 : (t[i + 1] == ' ' && i + 2 < n && det_is_digit((unsigned char)t[i + 2])) ? i + 2 : 0;
        else if (c == ' ' && t[i + 1] == '(' && x->plus && i + 2 < n && det_is_digit((unsigned char)t[i + 2])) {
            c = '(';   /* "+1 (415) 555 0100" */
            next = i + 2;
        } else if (c == '(' && x->plus && det_is_digit((unsigned char)t[i + 1])) {
            next = i + 1;
        }
        if (!next) break;
        x->sep[x->g - 1] = c;
        i = next;
    }
    x->digits[x->nd] = '\0';
    x->start = x->plus || x->paren ? a - 1 : a;
    x->end = x->b[x->g - 1];
    return true;
}

/* ---- checksums and prefixes ---- */

static bool luhn(const char *d, int n)
{
    int sum = 0;
    for (int i = n - 1, dbl = 0; i >= 0; i--, dbl ^= 1) {
        int v = d[i] - '0';
        if (dbl) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    return sum % 10 == 0;
}

/* Issuer prefixes (IIN ranges) and their lengths. */
static const struct { unsigned lo, hi; int digits, min_len, max_len; } issuers[] = {
    {4, 4, 1, 13, 19},          /* Visa */
    {51, 55, 2, 16, 16},        /* Mastercard */
    {2221, 2720, 4, 16, 16},    /* Mastercard 2-series */
    {34, 34, 2, 15, 15},        /* American Express */
    {37, 37, 2, 15, 15},
    {6011, 6011, 4, 16, 19},    /* Discover */
    {644, 649, 3, 16, 19},
    {65, 65, 2, 16, 19},
    {300, 305, 3, 14, 19},      /* Diners Club */
    {36, 36, 2, 14, 19},
    {38, 39, 2, 16, 19},
    {3528, 3589, 4, 16, 19},    /* JCB */
    {62, 62, 2, 16, 19},        /* UnionPay */
    {50, 50, 2, 12, 19},        /* Maestro */
    {56, 58, 2, 12, 19},
    {67, 67, 2, 12, 19},
};

static bool known_issuer(const char *d, int n)
{
    for (size_t i = 0; i < sizeof issuers / sizeof *issuers; i++) {
        unsigned v = 0;
        for (int k = 0; k < issuers[i].digits; k++) v = v * 10 + (unsigned)(d[k] - '0');
        if (v >= issuers[i].lo && v <= issuers[i].hi && n >= issuers[i].min_len && n <= issuers[i].max_len)
            return true;
    }
    return false;
}

/* ---- the kinds ---- */

static bool card_grouping(const number *x)
{
    static const int g4[] = {4, 4, 4, 4}, g5[] = {4, 4, 4, 4, 3}, amex[] = {4, 6, 5}, diners[] = {4, 6, 4};
    if (x->g == 1) return true;
    if (!(seps_all(x, ' ') || seps_all(x, '-'))) return false;
    return lens_are(x, g4, 4) || lens_are(x, g5, 5) || lens_are(x, amex, 3) || lens_are(x, diners, 3);
}

static bool try_card(det_scan *s, const number *x)
{
    if (x->nd < 13 || x->nd > 19 || x->plus || x->paren || !card_grouping(x)) return false;
    if (!luhn(x->digits, x->nd) || !known_issuer(x->digits, x->nd)) return false;
    bool ctx = det_context(s, LEX_CTX_CARD, x->start, x->end, 64);
    if (x->g == 1 && !ctx && det_context(s, LEX_NEG_NUMBER, x->start, x->end, 24)) return false;
    det_add(s, CLS_CREDIT_CARD, x->start, x->end, x->g > 1 || ctx ? 0.95f : 0.85f, true);
    return true;
}

/* Numbers the SSA never issues, and the two that were printed as examples. */
static bool ssn_valid(const char *d)
{
    unsigned area = (unsigned)((d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0'));
    unsigned group = (unsigned)((d[3] - '0') * 10 + (d[4] - '0'));
    unsigned serial = (unsigned)((d[5] - '0') * 1000 + (d[6] - '0') * 100 + (d[7] - '0') * 10 + (d[8] - '0'));
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) return false;
    return strcmp(d, "078051120") != 0 && strcmp(d, "219099999") != 0;
}

/* 1: an SSN, 0: not SSN-shaped, -1: SSN-shaped but invalid (nothing else either). */
static int try_ssn(det_scan *s, const number *x)
{
    static const int shape[] = {3, 2, 4};
    bool dashed = lens_are(x, shape, 3) && (seps_all(x, '-') || seps_all(x, ' '));
    bool bare = x->g == 1 && x->nd == 9;
    if ((!dashed && !bare) || x->plus || x->paren) return 0;
    bool ctx = det_context(s, LEX_CTX_SSN, x->start, x->end, 48);
    if ((bare || x->sep[0] == ' ') && !ctx) return 0;
    if (!ssn_valid(x->digits)) return -1;
    if (!ctx && det_context(s, LEX_NEG_NUMBER, x->start, x->end, 16)) return -1;
    det_add(s, CLS_SSN, x->start, x->end, ctx ? 0.95f : 0.85f, true);
    return 1;
}

static bool try_phone(det_scan *s, const number *x)
{
    static const int nanp[] = {3, 3, 4}, nanp1[] = {1, 3, 3, 4}, local[] = {3, 4};
    bool ctx = det_context(s, LEX_CTX_PHONE, x->start, x->end, 48);
    if (!ctx && det_context(s, LEX_NEG_NUMBER, x->start, x->end, 24)) return false;
    bool uniform = seps_all(x, '-') || seps_all(x, '.') || seps_all(x, ' ');
    float conf = 0.0f;
    if (x->plus) {
        bool ok = x->nd >= 8 && x->nd <= 15 && (x->g == 1 || glen(x, 0) <= 4);
        for (int k = 0; ok && k + 1 < x->g; k++) ok = x->sep[k] != '/';
        if (ok) conf = 0.9f;
    } else if (x->paren) {
        if (x->sep[0] == ')' && lens_are(x, nanp, 3) && x->sep[1] != '/' && x->sep[1] != '.') conf = 0.9f;
    } else if ((lens_are(x, nanp, 3) || (lens_are(x, nanp1, 4) && x->digits[0] == '1')) && uniform &&
               x->sep[0] != '/') {
        conf = x->sep[0] == ' ' ? (ctx ? 0.8f : 0.0f) : 0.85f;
        if (x->digits[x->g == 4 ? 1 : 0] < '2') conf = ctx ? conf : 0.0f;   /* no NANP area code starts 0/1 */
    } else if (x->digits[0] == '0' && x->nd >= 9 && x->nd <= 12 && x->g >= 2 && x->g <= 5 &&
               (seps_all(x, ' ') || seps_all(x, '-'))) {
        bool ok = true;
        for (int k = 0; k < x->g; k++) ok = ok && glen(x, k) >= 2;
        if (ok) conf = 0.75f;
    } else if (ctx && ((x->g == 1 && x->nd >= 10 && x->nd <= 12) || (lens_are(x, local, 2) && x->sep[0] == '-'))) {
        conf = 0.7f;
    }
    if (conf <= 0.0f) return false;
    if (ctx && conf < 0.95f) conf += 0.05f;
    det_add(s, CLS_PHONE, x->start, x->end, conf, false);
    return true;
}

static bool try_ipv4(det_scan *s, const number *x)
{
    if (x->g != 4 || !seps_all(x, '.') || x->plus || x->paren) return false;
    unsigned o[4];
    bool small = true;
    for (int k = 0; k < 4; k++) {
        if (glen(x, k) > 3 || (glen(x, k) > 1 && s->t[x->a[k]] == '0')) return false;
        o[k] = group_value(s->t, x, k);
        if (o[k] > 255) return false;
        small = small && o[k] < 10;
    }
    /* loopback, unspecified, multicast/reserved, netmasks, documentation ranges */
    if (o[0] == 0 || o[0] == 127 || o[0] >= 224) return true;
    if ((o[0] == 192 && o[1] == 0 && o[2] == 2) || (o[0] == 198 && o[1] == 51 && o[2] == 100) ||
        (o[0] == 203 && o[1] == 0 && o[2] == 113))
        return true;
    size_t e = x->end;
    if (e < s->n && s->t[e] == '/' && o[3] == 0) return true;   /* a network, 10.0.0.0/8 */
    /* public resolvers every tutorial pings: 8.8.8.8, 8.8.4.4, 1.1.1.1, 1.0.0.1, 9.9.9.9 */
    if ((o[0] == 8 && o[1] == 8 && (o[2] == 8 || o[2] == 4) && o[3] == o[2]) ||
        (o[0] == 1 && o[3] == 1 && ((o[1] == 1 && o[2] == 1) || (o[1] == 0 && o[2] == 0))) ||
        (o[0] == 9 && o[1] == 9 && o[2] == 9 && o[3] == 9))
        return true;
    if (det_context_before(s, LEX_NEG_NUMBER, x->start, 12))
        return true;                                             /* "version 10.2.0.1" */
    bool ctx = det_context(s, LEX_CTX_IP, x->start, x->end, 48);
    if (!ctx && det_context(s, LEX_NEG_NUMBER, x->start, x->end, 24)) return true;
    if (small && !ctx) return true;                              /* 1.2.3.4 reads as a version */
    bool priv = o[0] == 10 || (o[0] == 172 && o[1] >= 16 && o[1] < 32) || (o[0] == 192 && o[1] == 168) ||
                (o[0] == 169 && o[1] == 254) || (o[0] == 100 && o[1] >= 64 && o[1] < 128);
    if (priv && !ctx) return true;                               /* 10.96.0.10 in a Kubernetes tutorial */
    float conf = priv ? 0.75f : 0.85f;
    det_add(s, CLS_IP_ADDRESS, x->start, x->end, ctx ? conf + 0.1f : conf, false);
    return true;
}

/* ---- street addresses: "221B Baker Street", "1600 Pennsylvania Avenue NW" ---- */

static bool titlecase_word(const char *t, size_t a, size_t b)
{
    if (!det_is_upper((unsigned char)t[a])) return false;
    for (size_t i = a + 1; i < b; i++)
        if (!det_is_lower((unsigned char)t[i])) return false;
    return true;
}

static bool ordinal_word(const char *t, size_t a, size_t b)
{
    size_t i = a;
    while (i < b && det_is_digit((unsigned char)t[i])) i++;
    return i > a && b - i == 2 &&
           (det_starts_ci(t, b, i, "st") || det_starts_ci(t, b, i, "nd") ||
            det_starts_ci(t, b, i, "rd") || det_starts_ci(t, b, i, "th"));
}

static size_t street_after(det_scan *s, size_t i)
{
    const char *t = s->t;
    int names = 0;
    for (int w = 0; w < 5; w++) {
        if (i + 1 >= s->n || t[i] != ' ') return 0;
        size_t a = ++i;
        while (i < s->n && det_is_alnum((unsigned char)t[i])) i++;
        if (i == a) return 0;
        uint32_t f = det_word_flags(s, a, i);
        bool title = titlecase_word(t, a, i);
        if ((f & LEX_STREET) && names > 0 && (title || i - a <= 4)) {
            if (i < s->n && t[i] == '.' && i - a <= 4) i++;
            return i;
        }
        if (!(title || ordinal_word(t, a, i)) || (f & LEX_NOT_NAME)) return 0;
        names++;
    }
    return 0;
}

static bool try_street(det_scan *s, size_t a, size_t b)
{
    if (b - a > 5 || s->t[a] == '0' || (a > 0 && s->t[a - 1] == '+')) return false;
    size_t i = b;
    if (i < s->n && det_is_upper((unsigned char)s->t[i]) && (i + 1 >= s->n || s->t[i + 1] == ' ')) i++;
    size_t end = street_after(s, i);
    if (!end) return false;
    det_add(s, CLS_STREET_ADDRESS, a, end, 0.8f, false);
    return true;
}

/* ---- entry ---- */

static bool inside_token(const char *t, size_t a)
{
    if (a < 2) return false;
    char p = t[a - 1];
    return (p == '.' || p == '-' || p == ':' || p == '/' || p == ',' || p == '#' || p == '$' || p == '@') &&
           (det_is_alnum((unsigned char)t[a - 2]) || p == '#' || p == '$');
}

size_t det_number(det_scan *s, size_t a, size_t b)
{
    const char *t = s->t;
    if (inside_token(t, a)) {
        /* the rest of a version, decimal, UUID, time or path: skip all of it */
        size_t i = b;
        while (i + 1 < s->n && (t[i] == '.' || t[i] == '-' || t[i] == ':') && det_is_word((unsigned char)t[i + 1]))
            for (i++; i < s->n && det_is_word((unsigned char)t[i]); i++) {}
        return i;
    }
    number x;
    if (!read_number(t, s->n, a, &x)) {
        size_t d = a;
        while (d < b && det_is_digit((unsigned char)t[d])) d++;
        if (d - a <= 5 && try_street(s, a, d)) return b;
        return b;
    }
    if (x.g == 1 && try_street(s, a, b)) return b;
    if (try_ipv4(s, &x)) return x.end;
    int ssn = try_ssn(s, &x);
    if (ssn != 0) return x.end;
    if (x.plus && try_phone(s, &x)) return x.end;
    if (try_card(s, &x)) return x.end;
    try_phone(s, &x);
    return x.end;
}
