/* detect.c: the detector's kinds, its life cycle and the scan of a request.
 *
 * Each message is scanned by every family of detectors (a few memchr-driven
 * passes and one walk over its words); they add candidate findings that may
 * overlap (a JWT inside a Bearer header, a password inside a connection
 * string). Here the candidates are sorted and, where they overlap, the most
 * specific one is kept, so callers get spans that never overlap and can be
 * redacted one after another.
 */
#include "detect_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row per kind: a new kind is a new row (and its detector). `rank`
 * decides overlaps: the more specific finding wins. */
static const struct {
    const char *name;
    const char *label;   /* what cls_redact writes */
    bool forces;         /* a validated finding forces sensitivity to 1 */
    int rank;
} kinds[CLS_KIND_COUNT] = {
    [CLS_EMAIL] = {"email", "<EMAIL>", false, 60},
    [CLS_PHONE] = {"phone", "<PHONE>", false, 40},
    [CLS_SSN] = {"ssn", "<SSN>", true, 75},
    [CLS_CREDIT_CARD] = {"credit_card", "<CREDIT_CARD>", true, 80},
    [CLS_IBAN] = {"iban", "<IBAN>", true, 80},
    [CLS_IP_ADDRESS] = {"ip_address", "<IP_ADDRESS>", false, 45},
    [CLS_DATE_OF_BIRTH] = {"date_of_birth", "<DATE_OF_BIRTH>", false, 55},
    [CLS_PASSPORT] = {"passport", "<PASSPORT>", false, 55},
    [CLS_DRIVERS_LICENSE] = {"drivers_license", "<DRIVERS_LICENSE>", false, 50},
    [CLS_STREET_ADDRESS] = {"street_address", "<STREET_ADDRESS>", false, 35},
    [CLS_PRIVATE_KEY] = {"private_key", "<PRIVATE_KEY>", true, 100},
    [CLS_AWS_ACCESS_KEY] = {"aws_access_key", "<AWS_ACCESS_KEY>", true, 90},
    [CLS_AWS_SECRET_KEY] = {"aws_secret_key", "<AWS_SECRET_KEY>", true, 88},
    [CLS_GITHUB_TOKEN] = {"github_token", "<GITHUB_TOKEN>", true, 90},
    [CLS_GITLAB_TOKEN] = {"gitlab_token", "<GITLAB_TOKEN>", true, 90},
    [CLS_SLACK_TOKEN] = {"slack_token", "<SLACK_TOKEN>", true, 90},
    [CLS_STRIPE_KEY] = {"stripe_key", "<STRIPE_KEY>", true, 90},
    [CLS_GOOGLE_API_KEY] = {"google_api_key", "<GOOGLE_API_KEY>", true, 90},
    [CLS_OPENAI_KEY] = {"openai_key", "<OPENAI_KEY>", true, 90},
    [CLS_ANTHROPIC_KEY] = {"anthropic_key", "<ANTHROPIC_KEY>", true, 91},
    [CLS_JWT] = {"jwt", "<JWT>", true, 85},
    [CLS_BEARER_TOKEN] = {"bearer_token", "<BEARER_TOKEN>", false, 65},
    [CLS_CONNECTION_STRING] = {"connection_string", "<CONNECTION_STRING>", false, 70},
    [CLS_PASSWORD] = {"password", "<PASSWORD>", false, 58},
    [CLS_SECRET] = {"secret", "<SECRET>", false, 57},
    [CLS_PERSON] = {"person", "<PERSON>", false, 30},
    [CLS_HEALTH] = {"health", "<HEALTH>", false, 30},
    [CLS_CUSTOM] = {"custom", "<CUSTOM>", false, 95},
};

const char *cls_kind_name(cls_kind k)
{
    return (unsigned)k < CLS_KIND_COUNT ? kinds[k].name : "unknown";
}

int cls_kind_from_name(const char *name)
{
    for (int k = 0; name && k < CLS_KIND_COUNT; k++)
        if (strcmp(kinds[k].name, name) == 0) return k;
    return -1;
}

bool cls_kind_forces(cls_kind k)
{
    return (unsigned)k < CLS_KIND_COUNT && kinds[k].forces;
}

bool cls_finding_forces(const cls_finding *f)
{
    return f && f->validated && cls_kind_forces(f->kind);
}

/* ---- life cycle ---- */

int cls_detector_new(cls_detector **out, const cJSON *custom_rules, char *err, size_t errlen)
{
    *out = NULL;
    cls_detector *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory creating the detector");
        return -1;
    }
    det_prefix_pairs(d->prefix_pairs);
    if (det_lexicon_new(&d->lex, err, errlen) != 0 ||
        det_custom_new(&d->custom, custom_rules, err, errlen) != 0) {
        cls_detector_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void cls_detector_free(cls_detector *d)
{
    if (!d) return;
    det_lexicon_free(d->lex);
    det_custom_free(d->custom);
    free(d);
}

/* ---- candidates ---- */

/* Candidates per message are bounded too: a hostile text full of e-mail
 * addresses must not grow memory without limit. */
#define MAX_CANDIDATES (4 * CLS_MAX_FINDINGS)

static bool cand_room(det_scan *s)
{
    if (s->n_cand < s->cap_cand) return true;
    if (s->cap_cand >= MAX_CANDIDATES) {
        s->full = true;
        return false;
    }
    int cap = s->cap_cand ? 2 * s->cap_cand : 64;
    cls_finding *p = realloc(s->cand, (size_t)cap * sizeof *p);
    if (!p) {
        s->oom = s->full = true;
        return false;
    }
    s->cand = p;
    s->cap_cand = cap;
    return true;
}

static void add(det_scan *s, cls_kind k, const char *custom, size_t start, size_t end,
                float conf, bool validated)
{
    if (start >= end || end > s->n || !cand_room(s)) return;
    if (conf > 1.0f) conf = 1.0f;
    if (conf < 0.0f) conf = 0.0f;
    s->cand[s->n_cand++] = (cls_finding){k, custom, s->msg, start, end, conf, validated};
}

void det_add(det_scan *s, cls_kind k, size_t start, size_t end, float conf, bool validated)
{
    add(s, k, NULL, start, end, conf, validated);
}

void det_add_custom(det_scan *s, const char *kind, size_t start, size_t end, float conf)
{
    add(s, CLS_CUSTOM, kind, start, end, conf, false);
}

void det_event_add(det_scan *s, uint32_t flags, size_t start, size_t end)
{
    if (s->n_ev == s->cap_ev) {
        if (s->cap_ev >= (size_t)64 * MAX_CANDIDATES) return;   /* bounded; later events dropped */
        size_t cap = s->cap_ev ? 2 * s->cap_ev : 64;
        det_event *p = realloc(s->ev, cap * sizeof *p);
        if (!p) {
            s->oom = s->full = true;
            return;
        }
        s->ev = p;
        s->cap_ev = cap;
    }
    s->ev[s->n_ev++] = (det_event){flags, start, end};
}

static int ctx_index(uint32_t ctx)
{
    int i = 0;
    while (ctx > 1) {
        ctx >>= 1;
        i++;
    }
    return i;
}

bool det_context_before(const det_scan *s, uint32_t ctx, size_t start, size_t before)
{
    size_t at = s->last_ctx[ctx_index(ctx)];
    return at != SIZE_MAX && at <= start && start - at <= before;
}

bool det_context(det_scan *s, uint32_t ctx, size_t start, size_t end, size_t before)
{
    if (det_context_before(s, ctx, start, before)) return true;
    /* the next few words after the candidate */
    const char *t = s->t;
    size_t i = end, stop = end + 40 < s->n ? end + 40 : s->n;
    while (i < stop) {
        while (i < stop && !det_is_word((unsigned char)t[i])) i++;
        size_t a = i;
        while (i < s->n && det_is_word((unsigned char)t[i])) i++;
        if (i > a && (det_word_flags(s, a, i) & ctx)) return true;
    }
    return false;
}

/* ---- overlaps ---- */

static int cmp_start(const void *pa, const void *pb)
{
    const cls_finding *a = pa, *b = pb;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return a->end > b->end ? -1 : a->end < b->end;
}

static double strength(const cls_finding *f)
{
    return kinds[f->kind].rank + (f->validated ? 20.0 : 0.0) + 10.0 * f->confidence;
}

/* Sort, then keep the stronger of each overlapping pair; the kept ones are
 * packed at the front. Returns how many. */
static int resolve(cls_finding *c, int n)
{
    if (n < 2) return n;
    qsort(c, (size_t)n, sizeof *c, cmp_start);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (kept > 0 && c[i].start < c[kept - 1].end) {
            if (strength(&c[i]) > strength(&c[kept - 1])) c[kept - 1] = c[i];
            continue;
        }
        c[kept++] = c[i];
    }
    return kept;
}

/* ---- the scan ---- */

static void scan_message(det_scan *s)
{
    det_scan_at_signs(s);
    det_scan_pem(s);
    det_scan_ipv6(s);
    det_scan_words(s);
    det_scan_people(s);
    det_scan_custom(s);
}

int cls_detect(const cls_detector *d, const cls_message *msgs, int n, cls_findings *out,
               char *err, size_t errlen)
{
    if (!out) {
        snprintf(err, errlen, "cls_detect: no place for the findings (out is NULL)");
        return -1;
    }
    *out = (cls_findings){NULL, 0, false};
    if (!d || n < 0 || (n > 0 && !msgs)) {
        snprintf(err, errlen, "cls_detect: needs a detector and %d messages (got %s)", n,
                 d ? "no messages" : "no detector");
        return -1;
    }
    det_scan s;
    memset(&s, 0, sizeof s);
    s.d = d;
    int rc = 0;
    for (int m = 0; m < n && !out->truncated; m++) {
        if (!msgs[m].text && msgs[m].len > 0) {
            snprintf(err, errlen, "cls_detect: message %d has a length but no text", m);
            rc = -1;
            break;
        }
        s.t = msgs[m].text ? msgs[m].text : "";
        s.n = msgs[m].len;
        s.msg = m;
        s.n_cand = 0;
        s.n_ev = 0;
        s.full = false;
        for (size_t i = 0; i < sizeof s.last_ctx / sizeof s.last_ctx[0]; i++) s.last_ctx[i] = SIZE_MAX;
        scan_message(&s);
        if (s.oom) {
            snprintf(err, errlen, "cls_detect: out of memory scanning message %d", m);
            rc = -1;
            break;
        }
        int k = resolve(s.cand, s.n_cand);
        if (s.full) out->truncated = true;
        if (out->n + k > CLS_MAX_FINDINGS) {
            k = CLS_MAX_FINDINGS - out->n;
            out->truncated = true;
        }
        if (k == 0) continue;
        cls_finding *p = realloc(out->items, (size_t)(out->n + k) * sizeof *p);
        if (!p) {
            snprintf(err, errlen, "cls_detect: out of memory keeping %d findings", out->n + k);
            rc = -1;
            break;
        }
        out->items = p;
        memcpy(out->items + out->n, s.cand, (size_t)k * sizeof *p);
        out->n += k;
    }
    free(s.cand);
    free(s.ev);
    if (rc != 0) cls_findings_free(out);
    return rc;
}

void cls_findings_free(cls_findings *f)
{
    if (!f) return;
    free(f->items);
    *f = (cls_findings){NULL, 0, false};
}

/* ---- redaction ---- */

static size_t label_of(const cls_finding *f, char *buf, size_t cap)
{
    if (f->kind != CLS_CUSTOM || !f->custom_kind)
        return (size_t)snprintf(buf, cap, "%s", kinds[f->kind].label);
    size_t n = 0;
    buf[n++] = '<';
    for (const char *p = f->custom_kind; *p && n + 2 < cap; p++)
        buf[n++] = (char)(det_is_lower((unsigned char)*p) ? *p - 32 : *p);
    buf[n++] = '>';
    buf[n] = '\0';
    return n;
}

int cls_redact(const cls_message *msg, int message, const cls_findings *f,
               char **out, size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    if (!msg || !f || (!msg->text && msg->len)) {
        snprintf(err, errlen, "cls_redact: needs a message and its findings");
        return -1;
    }
    /* a label is at most 66 bytes; the redacted text is at most that much longer per finding */
    size_t cap = msg->len + 1;
    size_t prev = 0;
    for (int i = 0; i < f->n; i++) {
        const cls_finding *x = &f->items[i];
        if (x->message != message) continue;
        if ((unsigned)x->kind >= CLS_KIND_COUNT || x->start >= x->end || x->end > msg->len || x->start < prev) {
            snprintf(err, errlen, "cls_redact: finding %d [%zu, %zu) is out of range or overlaps the one "
                     "before; pass the findings cls_detect gave for this message", i, x->start, x->end);
            return -1;
        }
        prev = x->end;
        cap += 68;
    }
    char *buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "cls_redact: out of memory (%zu bytes)", cap);
        return -1;
    }
    size_t o = 0, at = 0;
    for (int i = 0; i < f->n; i++) {
        const cls_finding *x = &f->items[i];
        if (x->message != message) continue;
        memcpy(buf + o, msg->text + at, x->start - at);
        o += x->start - at;
        o += label_of(x, buf + o, cap - o);
        at = x->end;
    }
    if (msg->len > at) memcpy(buf + o, msg->text + at, msg->len - at);
    o += msg->len - at;
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}
