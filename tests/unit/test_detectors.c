/* test_detectors.c: the classifier's deterministic detectors.
 *
 * The labelled corpus (tests/data/detectors/corpus.jsonl) measures
 * precision and recall per kind on realistic positives and on the tricky
 * negatives that make detectors useless when they fire (Luhn-failing
 * numbers, UUIDs, versions, placeholders). The other tests pin exact spans,
 * message indices, the operator's rules and their errors, the findings cap,
 * redaction, the messages helper, and that hostile input (random bytes,
 * invalid UTF-8, 8 MB) is handled (run under ASan/UBSan).
 */
#include "classifier.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static char err[512];

static cls_detector *detector(const char *rules_json)
{
    cJSON *rules = rules_json ? cJSON_Parse(rules_json) : NULL;
    if (rules_json) assert_non_null(rules);
    cls_detector *d = NULL;
    int rc = cls_detector_new(&d, rules, err, sizeof err);
    if (rc != 0) fprintf(stderr, "cls_detector_new: %s\n", err);
    assert_int_equal(rc, 0);
    cJSON_Delete(rules);
    return d;
}

static cls_message msg(const char *text)
{
    return (cls_message){"user", text, strlen(text), 0};
}

/* The spans of `text`'s findings as "kind:span|kind:span". */
static void describe(const cls_detector *d, const char *text, char *out, size_t cap)
{
    cls_message m = msg(text);
    cls_findings f;
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    out[0] = '\0';
    for (int i = 0; i < f.n; i++) {
        const char *k = f.items[i].custom_kind ? f.items[i].custom_kind : cls_kind_name(f.items[i].kind);
        size_t at = strlen(out);
        snprintf(out + at, cap - at, "%s%s:%.*s", i ? "|" : "", k, (int)(f.items[i].end - f.items[i].start),
                 text + f.items[i].start);
    }
    cls_findings_free(&f);
}

/* ---- the corpus ---- */

#define CORPUS_RULES "[{\"kind\": \"project_codename\", \"terms\": [\"Bluebird\", \"Kestrel\"], \"weight\": 0.9}," \
                     " {\"kind\": \"customer_id\", \"regex\": \"CUST-[0-9]{6}\", \"weight\": 0.95}]"
#define N_LABELS (CLS_KIND_COUNT + 2)   /* the built-in kinds, then the two custom kinds */

static int label_of(const char *name)
{
    if (strcmp(name, "custom:project_codename") == 0) return CLS_KIND_COUNT;
    if (strcmp(name, "custom:customer_id") == 0) return CLS_KIND_COUNT + 1;
    return cls_kind_from_name(name);
}

static const char *label_name(int l)
{
    return l == CLS_KIND_COUNT ? "custom:project_codename"
         : l == CLS_KIND_COUNT + 1 ? "custom:customer_id" : cls_kind_name((cls_kind)l);
}

static int finding_label(const cls_finding *f)
{
    if (f->kind != CLS_CUSTOM) return (int)f->kind;
    return strcmp(f->custom_kind, "project_codename") == 0 ? CLS_KIND_COUNT : CLS_KIND_COUNT + 1;
}

typedef struct {
    int tp, fp, fn, negatives;
} tally;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p) p[n] = '\0';
    fclose(f);
    return p;
}

/* One case: every expected (kind, text) must be overlapped by a finding of
 * that kind (else a miss); every finding must overlap an expected span of
 * its kind (else a false alarm). */
static void score_case(const cls_detector *d, const cJSON *c, int line, tally *t)
{
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text");
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(c, "expect");
    const cJSON *neg = cJSON_GetObjectItemCaseSensitive(c, "neg");
    assert_true(cJSON_IsString(text));
    cls_message m = msg(text->valuestring);
    cls_findings f;
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    bool *used = calloc((size_t)f.n + 1, sizeof *used);
    assert_non_null(used);
    const cJSON *kind;
    cJSON_ArrayForEach(kind, expect) {
        int l = label_of(kind->string);
        if (l < 0) fail_msg("corpus line %d: unknown kind %s", line, kind->string);
        const cJSON *span;
        cJSON_ArrayForEach(span, kind) {
            const char *at = strstr(text->valuestring, span->valuestring);
            if (!at) fail_msg("corpus line %d: \"%s\" is not in the text", line, span->valuestring);
            size_t a = (size_t)(at - text->valuestring), b = a + strlen(span->valuestring);
            bool hit = false;
            for (int i = 0; i < f.n; i++)
                if (finding_label(&f.items[i]) == l && f.items[i].start < b && a < f.items[i].end) {
                    hit = true;
                    used[i] = true;
                }
            if (hit)
                t[l].tp++;
            else {
                t[l].fn++;
                printf("  miss  line %3d %-18s %s\n", line, label_name(l), span->valuestring);
            }
        }
    }
    for (int i = 0; i < f.n; i++) {
        if (used[i]) continue;
        int l = finding_label(&f.items[i]);
        t[l].fp++;
        printf("  false line %3d %-18s %.*s\n", line, label_name(l), (int)(f.items[i].end - f.items[i].start),
               text->valuestring + f.items[i].start);
    }
    if (cJSON_IsString(neg)) {
        int l = label_of(neg->valuestring);
        if (l < 0) fail_msg("corpus line %d: unknown neg kind %s", line, neg->valuestring);
        t[l].negatives++;
    }
    free(used);
    cls_findings_free(&f);
}

static void test_corpus_precision_recall(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/detectors/corpus.jsonl", JUNCTION_SOURCE_DIR);
    char *all = read_file(path);
    assert_non_null(all);
    cls_detector *d = detector(CORPUS_RULES);
    tally t[N_LABELS];
    memset(t, 0, sizeof t);
    int cases = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        if (!c) fail_msg("corpus line %d is not JSON: %.80s", cases + 1, line);
        score_case(d, c, ++cases, t);
        cJSON_Delete(c);
    }
    printf("%d cases\n%-24s %5s %5s %5s %5s %9s %7s\n", cases, "kind", "tp", "fp", "fn", "negs", "precision",
           "recall");
    bool ok = true;
    for (int l = 0; l < N_LABELS; l++) {
        if (l == CLS_CUSTOM) continue;   /* counted as its two operator kinds */
        double p = t[l].tp + t[l].fp ? (double)t[l].tp / (t[l].tp + t[l].fp) : 1.0;
        double r = t[l].tp + t[l].fn ? (double)t[l].tp / (t[l].tp + t[l].fn) : 0.0;
        printf("%-24s %5d %5d %5d %5d %9.3f %7.3f\n", label_name(l), t[l].tp, t[l].fp, t[l].fn, t[l].negatives, p, r);
        /* every kind has positives and tricky negatives, and meets the bar */
        if (p < 0.95 || r < 0.95 || t[l].tp + t[l].fn < 5 || t[l].negatives < 3) ok = false;
    }
    cls_detector_free(d);
    free(all);
    assert_true(cases >= 300);
    assert_true(ok);
}

/* ---- exact spans, kinds, messages ---- */

static void test_exact_spans(void **state)
{
    (void)state;
    cls_detector *d = detector(NULL);
    char got[2048];
    static const struct { const char *text, *want; } cases[] = {
        {"Mail jane.roe@contoso.co.uk today.", "email:jane.roe@contoso.co.uk"},
        {"Card: 4539 1488 0343 6467, exp 04/27", "credit_card:4539 1488 0343 6467"},
        {"SSN 536-22-8471.", "ssn:536-22-8471"},
        {"Call +44 20 7946 0958 or (415) 555-0132.", "phone:+44 20 7946 0958|phone:(415) 555-0132"},
        {"IBAN: GB82 WEST 1234 5698 7654 32, thanks", "iban:GB82 WEST 1234 5698 7654 32"},
        {"ssh from 52.14.88.201 failed", "ip_address:52.14.88.201"},
        {"Authorization: Bearer abcDEF123ghiJKL456mno", "bearer_token:abcDEF123ghiJKL456mno"},
        {"DATABASE_URL=postgres://app:Zq8!vR2p@db.internal:5432/prod\n",
         "connection_string:postgres://app:Zq8!vR2p@db.internal:5432/prod"},
        {"export DB_PASSWORD='Tr0ub4dor&3'", "password:Tr0ub4dor&3"},
        {"Date of birth: 14 March 1987", "date_of_birth:14 March 1987"},
        {"He lives at 742 Evergreen Terrace.", "street_address:742 Evergreen Terrace"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        describe(d, cases[i].text, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0) fail_msg("%s\n  got  %s\n  want %s", cases[i].text, got, cases[i].want);
    }
    cls_detector_free(d);
}

static void test_message_indices_and_order(void **state)
{
    (void)state;
    cls_detector *d = detector(NULL);
    cls_message m[3] = {
        {"system", "You are a helpful assistant.", 28, 0},
        {"user", "Email me at pat@fabrikam.com", 28, 1},
        {"tool", "{\"card\": \"4111111111111111\", \"owner\": \"x\"}", 43, 2},
    };
    cls_findings f;
    assert_int_equal(cls_detect(d, m, 3, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 2);
    assert_int_equal(f.items[0].message, 1);
    assert_int_equal(f.items[0].kind, CLS_EMAIL);
    assert_int_equal(f.items[0].start, 12);
    assert_int_equal(f.items[0].end, 28);
    assert_int_equal(f.items[1].message, 2);
    assert_int_equal(f.items[1].kind, CLS_CREDIT_CARD);
    assert_int_equal(f.items[1].start, 10);
    assert_true(cls_finding_forces(&f.items[1]));
    assert_false(cls_finding_forces(&f.items[0]));
    assert_false(f.truncated);
    cls_findings_free(&f);
    cls_detector_free(d);
}

static void test_kind_table(void **state)
{
    (void)state;
    for (int k = 0; k < CLS_KIND_COUNT; k++) assert_int_equal(cls_kind_from_name(cls_kind_name((cls_kind)k)), k);
    assert_int_equal(cls_kind_from_name("nope"), -1);
    assert_int_equal(cls_kind_from_name(NULL), -1);
    assert_string_equal(cls_kind_name(CLS_KIND_COUNT), "unknown");
    assert_true(cls_kind_forces(CLS_PRIVATE_KEY));
    assert_true(cls_kind_forces(CLS_CREDIT_CARD));
    assert_true(cls_kind_forces(CLS_IBAN));
    assert_false(cls_kind_forces(CLS_EMAIL));
    assert_false(cls_kind_forces(CLS_PERSON));
}

static void test_bad_arguments(void **state)
{
    (void)state;
    cls_detector *d = detector(NULL);
    cls_findings f;
    assert_int_equal(cls_detect(NULL, NULL, 0, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "detector"));
    cls_message m = {"user", NULL, 5, 0};
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "message 0"));
    assert_int_equal(f.n, 0);
    assert_int_equal(cls_detect(d, NULL, 0, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 0);
    cls_detector_free(d);
}

/* ---- operator rules ---- */

static void test_custom_terms_and_regex(void **state)
{
    (void)state;
    cls_detector *d = detector("[{\"kind\": \"project_codename\", \"terms\": [\"Bluebird\", \"Kestrel\", "
                               "\"Ölfeld\", \"C++ Next\"], \"weight\": 0.8},"
                               " {\"kind\": \"customer_id\", \"regex\": \"CUST-[0-9]{6}\"}]");
    char got[1024];
    describe(d, "Status of bluebird and KESTREL for CUST-004211?", got, sizeof got);
    assert_string_equal(got, "project_codename:bluebird|project_codename:KESTREL|customer_id:CUST-004211");
    describe(d, "Bluebirds, kestrels, blue-bird and CUST-12345 are not matches", got, sizeof got);
    assert_string_equal(got, "");
    describe(d, "Das ölfeld-Projekt und C++ next.", got, sizeof got);
    assert_string_equal(got, "project_codename:ölfeld|project_codename:C++ next");
    cls_message m = msg("Kestrel");
    cls_findings f;
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.items[0].kind, CLS_CUSTOM);
    assert_string_equal(f.items[0].custom_kind, "project_codename");
    assert_true(f.items[0].confidence > 0.79f && f.items[0].confidence < 0.81f);
    cls_findings_free(&f);
    cls_detector_free(d);
}

static void test_custom_rule_errors(void **state)
{
    (void)state;
    static const struct { const char *json, *needle1, *needle2; } cases[] = {
        {"{\"kind\": \"x\"}", "must be an array", ""},
        {"[42]", "custom_rules[0]", "object"},
        {"[{\"terms\": [\"a\"]}]", "custom_rules[0]", "\"kind\""},
        {"[{\"kind\": \"Bad Kind\", \"terms\": [\"a\"]}]", "custom_rules[0]", "a-z"},
        {"[{\"kind\": \"ok\", \"terms\": [\"a\"]}, {\"kind\": \"id\", \"regex\": \"CUST-([0-9]{6}\"}]",
         "custom_rules[1] (id)", "missing closing parenthesis"},
        {"[{\"kind\": \"id\", \"regex\": \"a|\"}]", "custom_rules[0] (id)", "empty string"},
        {"[{\"kind\": \"id\", \"regex\": \"x\", \"terms\": [\"y\"]}]", "custom_rules[0] (id)", "exactly one"},
        {"[{\"kind\": \"id\"}]", "custom_rules[0] (id)", "exactly one"},
        {"[{\"kind\": \"id\", \"terms\": []}]", "custom_rules[0] (id)", "empty"},
        {"[{\"kind\": \"id\", \"terms\": [\"\"]}]", "terms[0]", "non-empty"},
        {"[{\"kind\": \"id\", \"terms\": [\"a\"], \"weight\": 1.5}]", "custom_rules[0] (id)", "weight"},
        {"[{\"kind\": \"id\", \"terms\": [\"a\"], \"colour\": 1}]", "unknown key \"colour\"", ""},
        {"[{\"kind\": \"id\", \"regex\": \"\\\\xff(\"}]", "offset", "fix the pattern"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *rules = cJSON_Parse(cases[i].json);
        assert_non_null(rules);
        cls_detector *d = (cls_detector *)1;
        err[0] = '\0';
        assert_int_equal(cls_detector_new(&d, rules, err, sizeof err), -1);
        assert_null(d);
        if (!strstr(err, cases[i].needle1) || !strstr(err, cases[i].needle2))
            fail_msg("%s\n  error: %s\n  wanted: %s ... %s", cases[i].json, err, cases[i].needle1, cases[i].needle2);
        cJSON_Delete(rules);
    }
}

/* A catastrophic pattern stops at the match limit instead of hanging. */
static void test_custom_regex_match_limit(void **state)
{
    (void)state;
    cls_detector *d = detector("[{\"kind\": \"evil\", \"regex\": \"(a+)+$\"}]");
    size_t n = 100000;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memset(text, 'a', n);
    text[n - 1] = 'b';
    text[n] = '\0';
    cls_message m = {"user", text, n, 0};
    cls_findings f;
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 0);
    cls_findings_free(&f);
    free(text);
    cls_detector_free(d);
}

/* ---- limits and hostile input ---- */

static void check_well_formed(const cls_findings *f, const cls_message *m, int n)
{
    for (int i = 0; i < f->n; i++) {
        const cls_finding *x = &f->items[i];
        assert_true(x->message >= 0 && x->message < n);
        assert_true(x->start < x->end && x->end <= m[x->message].len);
        assert_true((unsigned)x->kind < CLS_KIND_COUNT);
        assert_true(x->confidence >= 0.0f && x->confidence <= 1.0f);
        if (i > 0 && f->items[i - 1].message == x->message) assert_true(f->items[i - 1].end <= x->start);
    }
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static unsigned next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

static void test_random_bytes_and_invalid_utf8(void **state)
{
    (void)state;
    cls_detector *d = detector(CORPUS_RULES);
    /* bytes drawn from an alphabet that reaches every detector's triggers */
    static const char alphabet[] = "0123456789 -.:/@+()=_'\"\nAKIAghp_sk-eyJ\xc3\xa9\xff\xfe\x80\xc0 passwordBearer";
    char buf[4096];
    for (int round = 0; round < 3000; round++) {
        size_t n = next_rand() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = round % 2 ? (char)next_rand() : alphabet[next_rand() % (sizeof alphabet - 1)];
        cls_message m = {"user", buf, n, 0};
        cls_findings f;
        assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
        check_well_formed(&f, &m, 1);
        cls_findings_free(&f);
    }
    /* truncated in the middle of everything */
    static const char *const tails[] = {"-----BEGIN RSA PRIVATE KEY-----\nMIIE", "eyJhbGciOiJIUzI1NiJ9.", "postgres://u:p",
                                        "fe80::", "+1 (415", "4111 1111 1111 111", "Bearer ", "password=\"", "Dr.",
                                        "DOB: 12/", "GB82 WEST", "ghp_", "\xe2\x82"};
    for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
        char *copy = malloc(strlen(tails[i]));   /* exactly the bytes, no terminator, for ASan */
        memcpy(copy, tails[i], strlen(tails[i]));
        for (size_t cut = 0; cut <= strlen(tails[i]); cut++) {
            cls_message m = {"user", copy, cut, 0};
            cls_findings f;
            assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
            check_well_formed(&f, &m, 1);
            cls_findings_free(&f);
        }
        free(copy);
    }
    cls_detector_free(d);
}

static void test_8mb_inputs_and_findings_cap(void **state)
{
    (void)state;
    cls_detector *d = detector(CORPUS_RULES);
    size_t n = 8u << 20;
    char *text = malloc(n);
    assert_non_null(text);
    /* prose and code without sensitive data: nothing found */
    static const char prose[] = "The quick brown fox jumps over the lazy dog; int main(void) { return 0; } v1.2.3 ";
    for (size_t i = 0; i < n; i++) text[i] = prose[i % (sizeof prose - 1)];
    cls_message m = {"user", text, n, 0};
    cls_findings f;
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 0);
    assert_false(f.truncated);
    cls_findings_free(&f);
    /* e-mail addresses everywhere: capped, flagged */
    static const char mails[] = "write to someone.else@fabrikam.com now ";
    for (size_t i = 0; i < n; i++) text[i] = mails[i % (sizeof mails - 1)];
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    assert_int_equal(f.n, CLS_MAX_FINDINGS);
    assert_true(f.truncated);
    check_well_formed(&f, &m, 1);
    cls_findings_free(&f);
    /* random bytes, 8 MB */
    for (size_t i = 0; i < n; i++) text[i] = (char)next_rand();
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    check_well_formed(&f, &m, 1);
    cls_findings_free(&f);
    free(text);
    cls_detector_free(d);
}

/* ---- redaction ---- */

static void test_redact(void **state)
{
    (void)state;
    cls_detector *d = detector(CORPUS_RULES);
    const char *text = "Kestrel: mail ann.lee@fabrikam.com, card 4111-1111-1111-1111, ok";
    cls_message m = msg(text);
    cls_findings f;
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    char *out;
    size_t len;
    assert_int_equal(cls_redact(&m, 0, &f, &out, &len, err, sizeof err), 0);
    assert_string_equal(out, "<PROJECT_CODENAME>: mail <EMAIL>, card <CREDIT_CARD>, ok");
    assert_int_equal(len, strlen(out));
    free(out);
    /* another message's findings leave this one as it is */
    assert_int_equal(cls_redact(&m, 1, &f, &out, &len, err, sizeof err), 0);
    assert_string_equal(out, text);
    free(out);
    /* findings that do not belong to this text are refused */
    f.items[0].end = strlen(text) + 5;
    assert_int_equal(cls_redact(&m, 0, &f, &out, &len, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "out of range"));
    cls_findings_free(&f);
    cls_detector_free(d);
}

/* ---- the messages helper ---- */

static void test_messages_from_json(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse(
        "[{\"role\": \"system\", \"content\": \"Be brief.\"},"
        " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Part one\"},"
        "   {\"type\": \"image_url\", \"image_url\": {\"url\": \"https://x/y.png\"}}, {\"type\": \"text\", \"text\": \"two\"}]},"
        " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\","
        "   \"function\": {\"name\": \"lookup\", \"arguments\": \"{\\\"ssn\\\": \\\"536-22-8471\\\"}\"}}]},"
        " {\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"found\"}]");
    assert_non_null(j);
    cls_message *m;
    int n;
    assert_int_equal(cls_messages_from_json(j, &m, &n, err, sizeof err), 0);
    assert_int_equal(n, 5);
    assert_string_equal(m[0].text, "Be brief.");
    assert_int_equal(m[1].source, 1);
    assert_string_equal(m[2].text, "two");
    assert_int_equal(m[2].source, 1);
    assert_string_equal(m[3].role, "assistant");
    assert_string_equal(m[3].text, "{\"ssn\": \"536-22-8471\"}");
    assert_int_equal(m[4].source, 3);
    assert_string_equal(m[4].role, "tool");
    cls_detector *d = detector(NULL);
    cls_findings f;
    assert_int_equal(cls_detect(d, m, n, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.items[0].kind, CLS_SSN);
    assert_int_equal(f.items[0].message, 3);
    cls_findings_free(&f);
    cls_detector_free(d);
    free(m);
    cJSON_Delete(j);

    static const struct { const char *json, *needle; } bad[] = {
        {"{}", "messages must be an array"},
        {"[{\"role\": \"user\", \"content\": \"a\"}, 7]", "messages[1] must be an object"},
        {"[{\"role\": \"user\", \"content\": 5}]", "messages[0].content must be"},
        {"[{\"role\": \"user\", \"content\": [\"x\"]}]", "messages[0].content[0] must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = cJSON_Parse(bad[i].json);
        assert_int_equal(cls_messages_from_json(j, &m, &n, err, sizeof err), -1);
        assert_null(m);
        assert_int_equal(n, 0);
        if (!strstr(err, bad[i].needle)) fail_msg("%s: %s", bad[i].json, err);
        cJSON_Delete(j);
    }
}

/* ---- threads ---- */

typedef struct {
    const cls_detector *d;
    const char *text;
    int n;
    bool same;
} thread_job;

static void *scan_many(void *arg)
{
    thread_job *job = arg;
    job->same = true;
    char e[256];
    for (int i = 0; i < 200; i++) {
        cls_message m = {"user", job->text, strlen(job->text), 0};
        cls_findings f;
        if (cls_detect(job->d, &m, 1, &f, e, sizeof e) != 0 || f.n != job->n) job->same = false;
        cls_findings_free(&f);
    }
    return NULL;
}

static void test_shared_detector_threads(void **state)
{
    (void)state;
    cls_detector *d = detector(CORPUS_RULES);
    const char *text = "Kestrel ticket for CUST-123456: ann@fabrikam.com, 4111 1111 1111 1111, "
                       "my sister Anna has diabetes, token ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    cls_message m = msg(text);
    cls_findings f;
    assert_int_equal(cls_detect(d, &m, 1, &f, err, sizeof err), 0);
    assert_true(f.n >= 7);
    thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){d, text, f.n, false};
        assert_int_equal(pthread_create(&th[i], NULL, scan_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(jobs[i].same);
    }
    cls_findings_free(&f);
    cls_detector_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_precision_recall),
        cmocka_unit_test(test_exact_spans),
        cmocka_unit_test(test_message_indices_and_order),
        cmocka_unit_test(test_kind_table),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_custom_terms_and_regex),
        cmocka_unit_test(test_custom_rule_errors),
        cmocka_unit_test(test_custom_regex_match_limit),
        cmocka_unit_test(test_random_bytes_and_invalid_utf8),
        cmocka_unit_test(test_8mb_inputs_and_findings_cap),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_messages_from_json),
        cmocka_unit_test(test_shared_detector_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
