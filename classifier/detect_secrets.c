/* detect_secrets.c: credentials recognisable by their form: provider
 * tokens with a known prefix (AKIA, ghp_, glpat-, xoxb-, sk_live_, AIza,
 * sk-, sk-ant-), JWTs and Authorization: Bearer values.
 *
 * The prefixes are a table; a new provider is a new row. A token must have
 * its full length of the right characters and end at a boundary, and its
 * body must not be a placeholder ("sk-your-key-here", "ghp_xxxx...").
 */
#include "detect_internal.h"

#include <string.h>

enum { CH_UPPER_DIGIT, CH_ALNUM, CH_ALNUM_US, CH_ALNUM_DASH, CH_B64URL_DOT };

static bool in_charset(int cs, unsigned char c)
{
    switch (cs) {
    case CH_UPPER_DIGIT: return det_is_upper(c) || det_is_digit(c);
    case CH_ALNUM: return det_is_alnum(c);
    case CH_ALNUM_US: return det_is_alnum(c) || c == '_';
    case CH_ALNUM_DASH: return det_is_alnum(c) || c == '_' || c == '-';
    default: return det_is_alnum(c) || c == '_' || c == '-' || c == '.';
    }
}

#define P(lit) lit, sizeof lit - 1

static const struct {
    const char *prefix;   /* case-sensitive; longer ones before their own prefixes */
    size_t len;
    cls_kind kind;
    int charset;
    int min_body, max_body;
    float conf;
} prefixes[] = {
    {P("AKIA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.95f},
    {P("ASIA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.95f},
    {P("AGPA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.9f},
    {P("AIDA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.9f},
    {P("AROA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.9f},
    {P("AIPA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.9f},
    {P("ANPA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.9f},
    {P("ANVA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.9f},
    {P("ABIA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.9f},
    {P("ACCA"), CLS_AWS_ACCESS_KEY, CH_UPPER_DIGIT, 16, 16, 0.9f},
    {P("AIza"), CLS_GOOGLE_API_KEY, CH_ALNUM_DASH, 35, 35, 0.95f},
    {P("github_pat_"), CLS_GITHUB_TOKEN, CH_ALNUM_US, 40, 255, 0.95f},
    {P("ghp_"), CLS_GITHUB_TOKEN, CH_ALNUM, 30, 255, 0.95f},
    {P("gho_"), CLS_GITHUB_TOKEN, CH_ALNUM, 30, 255, 0.95f},
    {P("ghu_"), CLS_GITHUB_TOKEN, CH_ALNUM, 30, 255, 0.95f},
    {P("ghs_"), CLS_GITHUB_TOKEN, CH_ALNUM, 30, 255, 0.95f},
    {P("ghr_"), CLS_GITHUB_TOKEN, CH_ALNUM, 30, 255, 0.95f},
    {P("glpat-"), CLS_GITLAB_TOKEN, CH_ALNUM_DASH, 20, 255, 0.95f},
    {P("gldt-"), CLS_GITLAB_TOKEN, CH_ALNUM_DASH, 20, 255, 0.95f},
    {P("glrt-"), CLS_GITLAB_TOKEN, CH_ALNUM_DASH, 20, 255, 0.95f},
    {P("glptt-"), CLS_GITLAB_TOKEN, CH_ALNUM_DASH, 20, 255, 0.95f},
    {P("xoxb-"), CLS_SLACK_TOKEN, CH_ALNUM_DASH, 10, 255, 0.95f},
    {P("xoxp-"), CLS_SLACK_TOKEN, CH_ALNUM_DASH, 10, 255, 0.95f},
    {P("xoxa-"), CLS_SLACK_TOKEN, CH_ALNUM_DASH, 10, 255, 0.95f},
    {P("xoxr-"), CLS_SLACK_TOKEN, CH_ALNUM_DASH, 10, 255, 0.95f},
    {P("xoxs-"), CLS_SLACK_TOKEN, CH_ALNUM_DASH, 10, 255, 0.95f},
    {P("xoxe-"), CLS_SLACK_TOKEN, CH_ALNUM_DASH, 10, 255, 0.95f},
    {P("xapp-"), CLS_SLACK_TOKEN, CH_ALNUM_DASH, 10, 255, 0.95f},
    {P("sk_live_"), CLS_STRIPE_KEY, CH_ALNUM, 16, 255, 0.95f},
    {P("rk_live_"), CLS_STRIPE_KEY, CH_ALNUM, 16, 255, 0.95f},
    {P("sk_test_"), CLS_STRIPE_KEY, CH_ALNUM, 16, 255, 0.85f},
    {P("rk_test_"), CLS_STRIPE_KEY, CH_ALNUM, 16, 255, 0.85f},
    {P("whsec_"), CLS_STRIPE_KEY, CH_ALNUM, 24, 255, 0.9f},
    {P("sk-ant-"), CLS_ANTHROPIC_KEY, CH_ALNUM_DASH, 20, 255, 0.95f},
    {P("sk-proj-"), CLS_OPENAI_KEY, CH_ALNUM_DASH, 20, 255, 0.95f},
    {P("sk-svcacct-"), CLS_OPENAI_KEY, CH_ALNUM_DASH, 20, 255, 0.95f},
    {P("sk-admin-"), CLS_OPENAI_KEY, CH_ALNUM_DASH, 20, 255, 0.95f},
    {P("sk-"), CLS_OPENAI_KEY, CH_ALNUM_DASH, 20, 255, 0.9f},
    {P("hf_"), CLS_SECRET, CH_ALNUM, 30, 255, 0.9f},
    {P("npm_"), CLS_SECRET, CH_ALNUM, 36, 36, 0.9f},
    {P("pypi-"), CLS_SECRET, CH_ALNUM_DASH, 50, 255, 0.9f},
    {P("shpat_"), CLS_SECRET, CH_ALNUM, 32, 32, 0.9f},
    {P("shpss_"), CLS_SECRET, CH_ALNUM, 32, 32, 0.9f},
    {P("dop_v1_"), CLS_SECRET, CH_ALNUM, 64, 64, 0.9f},
    {P("SG."), CLS_SECRET, CH_B64URL_DOT, 60, 80, 0.9f},
};

static size_t distinct(const char *t, size_t a, size_t b)
{
    bool seen[256] = {false};
    size_t k = 0;
    for (size_t i = a; i < b; i++)
        if (!seen[(unsigned char)t[i]]) {
            seen[(unsigned char)t[i]] = true;
            k++;
        }
    return k;
}

/* A 40-character AWS secret access key within a line or two after an
 * access key id ("AKIA..., wJalr..." in a CSV or a credentials file). */
static void aws_secret_after(det_scan *s, size_t from)
{
    const char *t = s->t;
    size_t stop = from + 160 < s->n ? from + 160 : s->n;
    for (size_t i = from; i + 40 <= stop; i++) {
        if (i > 0 && (det_is_alnum((unsigned char)t[i - 1]) || t[i - 1] == '/' || t[i - 1] == '+')) continue;
        size_t e = i;
        bool up = false, lo = false, dig = false;
        while (e < s->n && (det_is_alnum((unsigned char)t[e]) || t[e] == '/' || t[e] == '+')) {
            up |= det_is_upper((unsigned char)t[e]);
            lo |= det_is_lower((unsigned char)t[e]);
            dig |= det_is_digit((unsigned char)t[e]);
            e++;
        }
        if (e - i == 40 && up && lo && (dig || memchr(t + i, '/', 40)) && (e >= s->n || !det_is_word((unsigned char)t[e]))) {
            bool example = det_starts_ci(t, e, e - 10, "examplekey");
            det_add(s, CLS_AWS_SECRET_KEY, i, e, example ? 0.7f : 0.9f, !example);
            return;
        }
        i = e > i ? e - 1 : i;
    }
}

/* base64url-decode t[a..b) into out (cap bytes); returns the length or -1. */
static int b64url_decode(const char *t, size_t a, size_t b, char *out, size_t cap)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)t[i];
        int v = det_is_upper(c) ? c - 'A' : det_is_lower(c) ? c - 'a' + 26 : det_is_digit(c) ? c - '0' + 52
              : c == '-' || c == '+' ? 62 : c == '_' || c == '/' ? 63 : -1;
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap) return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return (int)o;
}

static size_t b64url_run(const char *t, size_t n, size_t i)
{
    while (i < n && (det_is_alnum((unsigned char)t[i]) || t[i] == '-' || t[i] == '_')) i++;
    return i;
}

/* header.payload.signature, the header JSON with an "alg". */
static size_t jwt(det_scan *s, size_t a)
{
    const char *t = s->t;
    size_t e1 = b64url_run(t, s->n, a);
    if (e1 - a < 10 || e1 >= s->n || t[e1] != '.') return 0;
    size_t e2 = b64url_run(t, s->n, e1 + 1);
    if (e2 - e1 < 4 || e2 >= s->n || t[e2] != '.') return 0;
    size_t e3 = b64url_run(t, s->n, e2 + 1);
    char header[512];
    if (e1 - a > 600) return 0;
    int len = b64url_decode(t, a, e1, header, sizeof header);
    if (len <= 0) return 0;
    cJSON *h = cJSON_ParseWithLength(header, (size_t)len);
    bool ok = h && cJSON_IsObject(h) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(h, "alg"));
    cJSON_Delete(h);
    if (!ok) return 0;
    det_add(s, CLS_JWT, a, e3, 0.95f, true);
    return e3;
}

size_t det_prefixed_secret(det_scan *s, size_t a, size_t b)
{
    const char *t = s->t;
    unsigned char c = (unsigned char)t[a];
    /* every token is longer than an ordinary word, unless it continues past '-' or '.' (sk-, SG.) */
    if (b - a < 8 && (b >= s->n || (t[b] != '-' && t[b] != '.'))) return b;
    unsigned pair = (unsigned)c << 8 | (unsigned char)t[a + 1];
    if (!(s->d->prefix_pairs[pair >> 6] & (1ull << (pair & 63)))) return b;
    if (c == 'e') {
        size_t e = b - a >= 3 && t[a + 1] == 'y' && t[a + 2] == 'J' ? jwt(s, a) : 0;
        return e > b ? e : b;
    }
    if (c == 'h' && det_starts_ci(t, s->n, a, "hooks.slack.com/services/")) {
        size_t e = a + 25;
        while (e < s->n && (det_is_alnum((unsigned char)t[e]) || t[e] == '/')) e++;
        if (e - a >= 45) det_add(s, CLS_SLACK_TOKEN, a, e, 0.95f, true);
        return e;
    }
    for (size_t r = 0; r < sizeof prefixes / sizeof *prefixes; r++) {
        const char *p = prefixes[r].prefix;
        size_t pl = prefixes[r].len;
        if ((unsigned char)p[0] != c || a + pl > s->n || t[a + 1] != p[1] || memcmp(t + a, p, pl) != 0) continue;
        size_t e = a + pl;
        while (e < s->n && in_charset(prefixes[r].charset, (unsigned char)t[e])) e++;
        size_t body = e - a - pl;
        if (e < s->n && det_is_word((unsigned char)t[e])) return b;
        if ((int)body < prefixes[r].min_body || (int)body > prefixes[r].max_body) return b;
        if (distinct(t, a + pl, e) < 6) return e;
        bool example = prefixes[r].kind == CLS_AWS_ACCESS_KEY && det_starts_ci(t, e, e - 7, "example");
        if (!example && det_is_placeholder(t, a + pl, e)) return e;
        det_add(s, prefixes[r].kind, a, e, example ? 0.7f : prefixes[r].conf, !example);
        if (prefixes[r].kind == CLS_AWS_ACCESS_KEY) aws_secret_after(s, e);
        return e;
    }
    return b;
}

void det_prefix_pairs(uint64_t bits[1024])
{
    for (size_t r = 0; r < sizeof prefixes / sizeof *prefixes; r++) {
        unsigned pair = (unsigned)(unsigned char)prefixes[r].prefix[0] << 8 | (unsigned char)prefixes[r].prefix[1];
        bits[pair >> 6] |= 1ull << (pair & 63);
    }
    unsigned jwt_pair = 'e' << 8 | 'y', hooks = 'h' << 8 | 'o';
    bits[jwt_pair >> 6] |= 1ull << (jwt_pair & 63);
    bits[hooks >> 6] |= 1ull << (hooks & 63);
}

/* RFC 6750's b64token characters. */
static bool b64token_char(unsigned char c)
{
    return det_is_alnum(c) || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=' || c == '-';
}

/* "Bearer <token>" (also "Bearer token for staging: <token>"): the token,
 * unless it is a placeholder or a variable. */
void det_bearer(det_scan *s, size_t b)
{
    const char *t = s->t;
    size_t i = b;
    while (i < s->n && t[i] == ' ') i++;
    if (i == b) return;
    if (det_starts_ci(t, s->n, i, "token")) {
        /* prose: the value follows the next ':' or '=' on the line */
        size_t k = i, stop = i + 40 < s->n ? i + 40 : s->n;
        while (k < stop && t[k] != ':' && t[k] != '=' && t[k] != '\n') k++;
        if (k == stop || t[k] == '\n') return;
        for (i = k + 1; i < s->n && t[i] == ' '; i++) {}
    }
    size_t e = i;
    while (e < s->n && b64token_char((unsigned char)t[e])) e++;
    if (e - i < 16 || det_is_placeholder(t, i, e)) return;
    bool lower = false, digit = false, upper = false;
    for (size_t k = i; k < e; k++) {
        lower |= det_is_lower((unsigned char)t[k]);
        upper |= det_is_upper((unsigned char)t[k]);
        digit |= det_is_digit((unsigned char)t[k]);
    }
    if (!digit && !(lower && upper)) return;        /* ACCESS_TOKEN, sometokenvalue */
    if (distinct(t, i, e) < 8) return;
    det_add(s, CLS_BEARER_TOKEN, i, e, 0.9f, false);
}
