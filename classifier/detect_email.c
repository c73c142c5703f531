/* detect_email.c: everything found around an '@': e-mail addresses, and
 * URLs that carry a password (postgres://app:s3cret@db:5432/prod).
 *
 * memchr finds the '@'s; most text has few. Reserved documentation domains
 * (example.com, *.test, RFC 2606) are placeholders, not anyone's address,
 * and "@2x.png", "@decorator", "lodash@4.17.21" and "git@github.com:" are
 * not addresses at all.
 */
#include "detect_internal.h"

#include <string.h>

static bool local_char(unsigned char c)
{
    return det_is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\'';
}

static bool domain_char(unsigned char c) { return det_is_alnum(c) || c == '-' || c == '.'; }

/* Top-level "domains" that are file extensions: icon@2x.png, app@main.js. */
static const char *const not_tlds[] = {
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "css", "js", "ts", "tsx", "jsx", "py", "rb",
    "go", "rs", "java", "json", "yaml", "yml", "md", "txt", "html", "lock", "tgz", "zip", "min",
};

/* Domains that stand for any domain in documentation. */
static const char *const placeholder_domains[] = {
    "example.com", "example.org", "example.net", "example.edu", "domain.com", "yourdomain.com",
    "your-domain.com", "yourcompany.com", "mydomain.com", "email.example", "host.com",
};
static const char *const placeholder_suffixes[] = {".example", ".test", ".invalid", ".localhost", ".local"};

static bool ends_with_ci(const char *t, size_t a, size_t b, const char *lit)
{
    size_t m = strlen(lit);
    return b - a >= m && det_starts_ci(t, b, b - m, lit) && (b - a == m || lit[0] == '.' || t[b - m - 1] == '.');
}

static bool placeholder_domain(const char *t, size_t a, size_t b)
{
    for (size_t i = a; i + 7 <= b; i++)   /* a label "example": user@example.org.com in a regex lesson */
        if ((i == a || t[i - 1] == '.') && det_starts_ci(t, b, i, "example") && (i + 7 == b || t[i + 7] == '.'))
            return true;
    for (size_t i = 0; i < sizeof placeholder_domains / sizeof *placeholder_domains; i++)
        if (ends_with_ci(t, a, b, placeholder_domains[i])) return true;
    for (size_t i = 0; i < sizeof placeholder_suffixes / sizeof *placeholder_suffixes; i++)
        if (ends_with_ci(t, a, b, placeholder_suffixes[i])) return true;
    return false;
}

/* scheme://user:password@host... with a real password: the URL's end, or 0. */
static size_t connection_string(det_scan *s, size_t at, size_t *start)
{
    const char *t = s->t;
    size_t from = at > 256 ? at - 256 : 0, i = at;
    while (i > from && !det_is_space((unsigned char)t[i - 1])) i--;
    const char *sep = NULL;
    for (size_t k = i; k + 3 <= at; k++)
        if (t[k] == ':' && t[k + 1] == '/' && t[k + 2] == '/') {
            sep = t + k;
            break;
        }
    if (!sep) return 0;
    size_t user = (size_t)(sep - t) + 3;
    size_t scheme = (size_t)(sep - t);
    while (scheme > i && (det_is_alnum((unsigned char)t[scheme - 1]) || t[scheme - 1] == '+' ||
                          t[scheme - 1] == '.' || t[scheme - 1] == '-' || t[scheme - 1] == ':'))
        scheme--;
    const char *colon = memchr(t + user, ':', at - user);
    if (!colon || scheme == (size_t)(sep - t)) return 0;
    size_t pw = (size_t)(colon - t) + 1;
    if (det_is_placeholder(t, pw, at) || at - pw < 3) return 0;
    size_t e = at + 1;
    while (e < s->n && !det_is_space((unsigned char)t[e]) && t[e] != '"' && t[e] != '\'' && t[e] != '`' && t[e] != '>' &&
           t[e] != ')')
        e++;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == ',' || t[e - 1] == ';')) e--;
    *start = scheme;
    return e;
}

static void email(det_scan *s, size_t at)
{
    const char *t = s->t;
    size_t a = at;
    while (a > 0 && at - a < 64 && local_char((unsigned char)t[a - 1])) a--;
    while (a < at && (t[a] == '.' || t[a] == '\'')) a++;
    if (a == at || t[at - 1] == '.') return;
    if (a > 0 && (t[a - 1] == '/' || t[a - 1] == '@')) return;
    if (a > 0 && t[a - 1] == ':' && !(a >= 7 && det_starts_ci(t, a, a - 7, "mailto:"))) return;
    size_t e = at + 1;
    while (e < s->n && e - at < 255 && domain_char((unsigned char)t[e])) e++;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) e--;
    /* the top-level domain: letters, two or more, after a dot */
    size_t dot = e;
    while (dot > at + 1 && t[dot - 1] != '.') dot--;
    if (dot <= at + 2 || e - dot < 2) return;
    for (size_t i = dot; i < e; i++)
        if (!det_is_alpha((unsigned char)t[i])) return;
    for (size_t i = 0; i < sizeof not_tlds / sizeof *not_tlds; i++)
        if (strlen(not_tlds[i]) == e - dot && det_starts_ci(t, e, dot, not_tlds[i])) return;
    if (placeholder_domain(t, at + 1, e)) return;
    if (e < s->n && t[e] == ':' && at - a == 3 && det_starts_ci(t, at, a, "git")) return;   /* git@host:repo */
    bool ctx = det_context(s, LEX_CTX_EMAIL, a, e, 48);
    det_add(s, CLS_EMAIL, a, e, ctx ? 0.95f : 0.9f, false);
}

void det_scan_at_signs(det_scan *s)
{
    const char *t = s->t;
    size_t done = 0;   /* end of the last connection string */
    for (const char *p = memchr(t, '@', s->n); p && !s->full;
         p = memchr(p + 1, '@', s->n - (size_t)(p + 1 - t))) {
        size_t at = (size_t)(p - t);
        if (at < done || at == 0) continue;
        size_t start, end = connection_string(s, at, &start);
        if (end) {
            det_add(s, CLS_CONNECTION_STRING, start, end, 0.9f, false);
            done = end;
            continue;
        }
        email(s, at);
    }
}
