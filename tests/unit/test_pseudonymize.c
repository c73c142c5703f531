/* test_pseudonymize.c: placeholders out, values back, whole and streamed.
 *
 * Pseudonymization fails silently when it fails: a value that leaks, or an
 * answer with the wrong name in it. So these tests pin exact placeholders
 * and exact restored texts on realistic conversations, restore answers
 * split at every byte position (and every pair of positions), cover each
 * mangled form a model produces, text that already looks like a
 * placeholder, the secret kinds that can never be allowed, the caps, bad
 * spans, UTF-8 around spans, the JSON helper's all-or-nothing rewrite, a
 * randomized round trip (any text, any spans, restored to exactly itself)
 * and random bytes streamed at random cuts.
 *
 * `test_pseudonymize --bench` prints throughput instead (no assertions).
 */
#include "policy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static char err[512];

static const char *const people_kinds[] = {"email", "person", "phone"};

static pol_pseudo *mapping(void)
{
    pol_pseudo *p = NULL;
    int rc = pol_pseudo_new(&p, people_kinds, 3, err, sizeof err);
    if (rc != 0) fprintf(stderr, "pol_pseudo_new: %s\n", err);
    assert_int_equal(rc, 0);
    return p;
}

/* Spans for "kind:value" pairs, found in `text` in this order. */
static int spans_of(const char *text, const char *const *pairs, int n, pol_span *out, char kinds[][32])
{
    size_t from = 0;
    for (int i = 0; i < n; i++) {
        const char *colon = strchr(pairs[i], ':');
        assert_non_null(colon);
        snprintf(kinds[i], 32, "%.*s", (int)(colon - pairs[i]), pairs[i]);
        const char *at = strstr(text + from, colon + 1);
        assert_non_null(at);
        out[i] = (pol_span){kinds[i], (size_t)(at - text), (size_t)(at - text) + strlen(colon + 1)};
        from = out[i].end;
    }
    return n;
}

/* Pseudonymize `text` with the spans of `pairs`; the result is the caller's. */
static char *apply(pol_pseudo *p, const char *text, const char *const *pairs, int n)
{
    pol_span spans[32];
    char kinds[32][32];
    spans_of(text, pairs, n, spans, kinds);
    char *out = NULL;
    size_t len = 0;
    int rc = pol_pseudo_apply(p, text, strlen(text), spans, n, &out, &len, err, sizeof err);
    if (rc != 0) fprintf(stderr, "pol_pseudo_apply: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(out), len);
    return out;
}

static char *restore(const pol_pseudo *p, const char *text, pol_unpseudo_counts *c)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(pol_unpseudo_text(p, text, strlen(text), &out, &len, c, err, sizeof err), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

/* Restore `text` fed in pieces cut at the sorted positions cuts[0..n). */
static char *restore_cut(const pol_pseudo *p, const char *text, const size_t *cuts, int n,
                         pol_unpseudo_counts *c)
{
    pol_unpseudo *u;
    assert_int_equal(pol_unpseudo_new(&u, p, err, sizeof err), 0);
    size_t total = strlen(text), from = 0, got = 0;
    char *all = malloc(4 * total + 1024);
    assert_non_null(all);
    const char *part;
    size_t len;
    for (int i = 0; i <= n; i++) {
        size_t to = i < n ? cuts[i] : total;
        assert_int_equal(pol_unpseudo_feed(u, text + from, to - from, &part, &len, err, sizeof err), 0);
        memcpy(all + got, part, len);
        got += len;
        from = to;
    }
    assert_int_equal(pol_unpseudo_finish(u, &part, &len, err, sizeof err), 0);
    memcpy(all + got, part, len);
    all[got + len] = '\0';
    if (c) pol_unpseudo_report(u, c);
    pol_unpseudo_free(u);
    return all;
}

static void assert_same_counts(const pol_unpseudo_counts *a, const pol_unpseudo_counts *b)
{
    assert_int_equal(a->restored, b->restored);
    assert_int_equal(a->mangled_restored, b->mangled_restored);
    assert_int_equal(a->mangled, b->mangled);
    assert_int_equal(a->unknown, b->unknown);
    assert_string_equal(a->kinds, b->kinds);
}

/* Every split of `answer` into 2 and into 3 pieces, and byte by byte, gives
 * `expect` and the same counts as restoring it whole. */
static void check_every_split(const pol_pseudo *p, const char *answer, const char *expect)
{
    pol_unpseudo_counts whole, c;
    char *r = restore(p, answer, &whole);
    assert_string_equal(r, expect);
    free(r);
    size_t n = strlen(answer);
    for (size_t i = 0; i <= n; i++) {
        r = restore_cut(p, answer, &i, 1, &c);
        assert_string_equal(r, expect);
        assert_same_counts(&c, &whole);
        free(r);
        for (size_t j = i; j <= n; j++) {
            size_t cuts[2] = {i, j};
            r = restore_cut(p, answer, cuts, 2, &c);
            assert_string_equal(r, expect);
            assert_same_counts(&c, &whole);
            free(r);
        }
    }
    size_t *bytes = malloc((n + 1) * sizeof *bytes);
    for (size_t i = 0; i < n; i++) bytes[i] = i;
    r = restore_cut(p, answer, bytes, (int)n, &c);
    assert_string_equal(r, expect);
    assert_same_counts(&c, &whole);
    free(r);
    free(bytes);
}

/* ---- which kinds ---- */

static void test_never_list_and_kind_names(void **state)
{
    (void)state;
    static const char *const secrets[] = {
        "private_key", "aws_access_key", "aws_secret_key", "github_token", "gitlab_token",
        "slack_token", "stripe_key", "google_api_key", "openai_key", "anthropic_key", "jwt",
        "bearer_token", "connection_string", "password", "secret",
    };
    pol_pseudo *p;
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        const char *kinds[] = {"email", secrets[i]};
        p = (pol_pseudo *)1;
        assert_int_equal(pol_pseudo_new(&p, kinds, 2, err, sizeof err), -1);
        assert_null(p);
        assert_non_null(strstr(err, secrets[i]));
        assert_non_null(strstr(err, "never"));
    }
    static const char *const bad[] = {"E-mail", "", "email address", "EMAIL",
        "a234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pol_pseudo_new(&p, &bad[i], 1, err, sizeof err), -1);
        assert_non_null(strstr(err, "not a kind name"));
    }
    const char *null_kind[] = {NULL};
    assert_int_equal(pol_pseudo_new(&p, null_kind, 1, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_new(&p, people_kinds, -1, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_new(&p, NULL, 2, err, sizeof err), -1);
    const char *many[POL_PSEUDO_MAX_KINDS + 1];
    char names[POL_PSEUDO_MAX_KINDS + 1][16];
    for (int i = 0; i <= POL_PSEUDO_MAX_KINDS; i++) {
        snprintf(names[i], sizeof names[i], "kind_%d", i);
        many[i] = names[i];
    }
    assert_int_equal(pol_pseudo_new(&p, many, POL_PSEUDO_MAX_KINDS + 1, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_new(&p, many, POL_PSEUDO_MAX_KINDS, err, sizeof err), 0);
    assert_true(pol_pseudo_allowed(p, "kind_63"));
    pol_pseudo_free(p);

    /* a 63-byte kind, duplicates, digits and underscores are fine */
    const char *ok[] = {"email", "email", "customer_id", "x9",
                        "a23456789012345678901234567890123456789012345678901234567890123"};
    assert_int_equal(pol_pseudo_new(&p, ok, 5, err, sizeof err), 0);
    assert_true(pol_pseudo_allowed(p, "email"));
    assert_true(pol_pseudo_allowed(p, "customer_id"));
    assert_false(pol_pseudo_allowed(p, "person"));
    assert_false(pol_pseudo_allowed(p, "private_key"));
    assert_false(pol_pseudo_allowed(p, NULL));
    assert_false(pol_pseudo_allowed(NULL, "email"));
    pol_pseudo_free(p);

    /* nothing allowed: every span is refused */
    assert_int_equal(pol_pseudo_new(&p, NULL, 0, err, sizeof err), 0);
    pol_span s = {"email", 0, 3};
    char *out = (char *)1;
    size_t len;
    assert_int_equal(pol_pseudo_apply(p, "a@b", 3, &s, 1, &out, &len, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "may not be pseudonymized"));
    pol_pseudo_free(p);
    pol_pseudo_free(NULL);
}

/* ---- round trips ---- */

static void test_conversation_round_trip(void **state)
{
    (void)state;
    pol_pseudo *p = mapping();
    const char *m0 = "You are the assistant of Priya Raman (priya.raman@northwindtraders.com).";
    const char *m1 = "Please email Tomás Okafor at tomas.okafor@fabrikam.com and copy "
                     "Priya.Raman@NorthwindTraders.com; his cell is +44 20 7946 0958.";
    const char *m2 = "Also call Priya Raman on (415) 555-0132, then Tomás Okafor again on +44 20 7946 0958.";
    const char *p0[] = {"person:Priya Raman", "email:priya.raman@northwindtraders.com"};
    const char *p1[] = {"person:Tomás Okafor", "email:tomas.okafor@fabrikam.com",
                        "email:Priya.Raman@NorthwindTraders.com", "phone:+44 20 7946 0958"};
    const char *p2[] = {"person:Priya Raman", "phone:(415) 555-0132", "person:Tomás Okafor",
                        "phone:+44 20 7946 0958"};
    for (int i = 0; i < 3; i++) {
        const char *t = i == 0 ? m0 : i == 1 ? m1 : m2;
        assert_int_equal(pol_pseudo_reserve(p, t, strlen(t), err, sizeof err), 0);
    }
    char *o0 = apply(p, m0, p0, 2), *o1 = apply(p, m1, p1, 4), *o2 = apply(p, m2, p2, 4);
    assert_string_equal(o0, "You are the assistant of <PERSON_1> (<EMAIL_1>).");
    /* the same e-mail in another case is the same value */
    assert_string_equal(o1, "Please email <PERSON_2> at <EMAIL_2> and copy <EMAIL_1>; his cell is <PHONE_1>.");
    assert_string_equal(o2, "Also call <PERSON_1> on <PHONE_2>, then <PERSON_2> again on <PHONE_1>.");
    assert_int_equal(pol_pseudo_values(p), 6);

    /* each pseudonymized message restores to its original, except that an
     * e-mail comes back as first written */
    char *r = restore(p, o0, NULL);
    assert_string_equal(r, m0);
    free(r);
    r = restore(p, o2, NULL);
    assert_string_equal(r, m2);
    free(r);
    pol_unpseudo_counts c;
    r = restore(p, o1, &c);
    assert_string_equal(r, "Please email Tomás Okafor at tomas.okafor@fabrikam.com and copy "
                           "priya.raman@northwindtraders.com; his cell is +44 20 7946 0958.");
    assert_int_equal(c.restored, 4);
    assert_int_equal(c.mangled_restored + c.mangled + c.unknown, 0);
    assert_string_equal(c.kinds, "");
    free(r);

    /* an answer as a model writes it */
    const char *answer = "Done: I wrote to <PERSON_2> (<EMAIL_2>), cc <EMAIL_1>. <PERSON_1> can be "
                         "reached on <PHONE_2>; <PERSON_2> on <PHONE_1>.";
    const char *expect = "Done: I wrote to Tomás Okafor (tomas.okafor@fabrikam.com), cc "
                         "priya.raman@northwindtraders.com. Priya Raman can be reached on (415) 555-0132; "
                         "Tomás Okafor on +44 20 7946 0958.";
    r = restore(p, answer, &c);
    assert_string_equal(r, expect);
    assert_int_equal(c.restored, 7);
    free(r);
    free(o0);
    free(o1);
    free(o2);
    pol_pseudo_free(p);
}

static void test_streamed_every_split(void **state)
{
    (void)state;
    pol_pseudo *p = mapping();
    const char *text = "Ana Lima <ana@lima.io>, Bo <bo@x.org>, phone 555-0100";
    const char *pairs[] = {"person:Ana Lima", "email:ana@lima.io", "person:Bo", "email:bo@x.org",
                           "phone:555-0100"};
    char *o = apply(p, text, pairs, 5);
    assert_string_equal(o, "<PERSON_1> <<EMAIL_1>>, <PERSON_2> <<EMAIL_2>>, phone <PHONE_1>");
    check_every_split(p, o, text);
    free(o);
    /* placeholders back to back, at both ends, with UTF-8 and mangled forms between */
    check_every_split(p, "<EMAIL_1><PERSON_2>ü<email_2> [PHONE 1]«EMAIL_1»<EMAIL_7><PERSON_1>",
                      "ana@lima.ioBoübo@x.org 555-0100«EMAIL_1»<EMAIL_7>Ana Lima");
    check_every_split(p, "<<<[[EMAIL_1 <EMAIL_1 PERSON_2> <EMAIL_1]<PHONE_1>>",
                      "<<<[[EMAIL_1 <EMAIL_1 PERSON_2> <EMAIL_1]555-0100>");
    pol_pseudo_free(p);
}

static void feed_expect(pol_unpseudo *u, const char *chunk, const char *expect)
{
    const char *out;
    size_t len;
    assert_int_equal(pol_unpseudo_feed(u, chunk, strlen(chunk), &out, &len, err, sizeof err), 0);
    assert_int_equal(strlen(out), len);
    assert_string_equal(out, expect);
}

static void test_streaming_holds_back_only_what_may_be_a_placeholder(void **state)
{
    (void)state;
    pol_pseudo *p = mapping();
    const char *pairs[] = {"email:ana@lima.io"};
    free(apply(p, "ana@lima.io", pairs, 1));
    pol_unpseudo *u;
    assert_int_equal(pol_unpseudo_new(&u, p, err, sizeof err), 0);
    feed_expect(u, "Hello <EMA", "Hello ");
    feed_expect(u, "IL_1", "");
    feed_expect(u, "> and <b>bold</b> ", "ana@lima.io and <b>bold</b> ");
    feed_expect(u, "EMAIL", "");          /* the start of a word: maybe bare EMAIL_1 */
    feed_expect(u, "S ", "EMAILS ");
    feed_expect(u, "<", "");
    feed_expect(u, "<", "<");
    feed_expect(u, "PERSON_12", "");
    feed_expect(u, "3456789", "");
    feed_expect(u, "0", "<PERSON_1234567890");  /* ten digits: not a placeholder */
    feed_expect(u, "XEMAIL_1 ", "XEMAIL_1 ");   /* inside a word: never held */
    feed_expect(u, "[email 1", "");
    const char *out;
    size_t len;
    assert_int_equal(pol_unpseudo_finish(u, &out, &len, err, sizeof err), 0);
    assert_string_equal(out, "[email 1");     /* unclosed at the end: as written */
    assert_int_equal(pol_unpseudo_feed(u, "x", 1, &out, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "finished"));
    assert_int_equal(pol_unpseudo_finish(u, &out, &len, err, sizeof err), -1);
    pol_unpseudo_counts c;
    pol_unpseudo_report(u, &c);
    assert_int_equal(c.restored, 1);
    pol_unpseudo_free(u);

    /* the held-back suffix never exceeds the cap, whatever is fed */
    assert_int_equal(pol_unpseudo_new(&u, p, err, sizeof err), 0);
    static const char alphabet[] = "<[]>EMAILPERSONemailperson_ 0123456789x";
    size_t fed = 0, sent = 0;
    unsigned seed = 7;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        char ch = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        assert_int_equal(pol_unpseudo_feed(u, &ch, 1, &out, &len, err, sizeof err), 0);
        fed++;
        sent += len;
        /* with no issued placeholder among these, what is sent is what was fed */
        assert_true((long long)fed - (long long)sent <= POL_UNPSEUDO_HOLD_MAX);
    }
    pol_unpseudo_free(u);
    pol_pseudo_free(p);
}

/* ---- what models do to placeholders ---- */

static void test_mangled_forms(void **state)
{
    (void)state;
    pol_pseudo *p = mapping();
    const char *text = "mail ana@lima.io or call 555-0100";
    const char *pairs[] = {"email:ana@lima.io", "phone:555-0100"};
    char *o = apply(p, text, pairs, 2);
    assert_string_equal(o, "mail <EMAIL_1> or call <PHONE_1>");
    free(o);
    static const struct {
        const char *answer, *expect;
        int restored, mangled_restored, mangled, unknown;
        const char *kinds;
    } cases[] = {
        {"<EMAIL_1>", "ana@lima.io", 1, 0, 0, 0, ""},
        {"<email_1>", "ana@lima.io", 0, 1, 0, 0, "email"},
        {"<Email_1>", "ana@lima.io", 0, 1, 0, 0, "email"},
        {"<EMAIL 1>", "ana@lima.io", 0, 1, 0, 0, "email"},
        {"[EMAIL_1]", "ana@lima.io", 0, 1, 0, 0, "email"},
        {"[email 1]", "ana@lima.io", 0, 1, 0, 0, "email"},
        {"Write to EMAIL_1.", "Write to EMAIL_1.", 0, 0, 1, 0, "email"},
        {"(EMAIL_1)", "(EMAIL_1)", 0, 0, 1, 0, "email"},
        {"<EMAIL_1", "<EMAIL_1", 0, 0, 1, 0, "email"},      /* unclosed: the bare token inside */
        {"<EMAIL_9> and [PHONE 4]", "<EMAIL_9> and [PHONE 4]", 0, 0, 0, 2, "email,phone"},
        {"<PERSON_1>", "<PERSON_1>", 0, 0, 0, 1, "person"}, /* allowed kind, nothing issued */
        {"EMAIL_9 email_1", "EMAIL_9 email_1", 0, 0, 0, 0, ""}, /* bare and never issued; lower-case bare */
        {"<EMAIL_01> <EMAIL_> <EMAIL> <_1> <EMAIL__1> <EMAIL_1_1>", "<EMAIL_01> <EMAIL_> <EMAIL> <_1> <EMAIL__1> <EMAIL_1_1>",
         0, 0, 0, 0, ""},
        {"<SSN_1> <FOO_1> my_EMAIL_1 EMAIL_1x", "<SSN_1> <FOO_1> my_EMAIL_1 EMAIL_1x", 0, 0, 0, 0, ""},
        {"<EMAIL_1]", "<EMAIL_1]", 0, 0, 1, 0, "email"},
        {"<phone 1>, <EMAIL_1>, EMAIL_1, <EMAIL_2>", "555-0100, ana@lima.io, EMAIL_1, <EMAIL_2>", 1, 1, 1, 1,
         "phone,email"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pol_unpseudo_counts c;
        char *r = restore(p, cases[i].answer, &c);
        if (strcmp(r, cases[i].expect) != 0 || c.restored != cases[i].restored ||
            c.mangled_restored != cases[i].mangled_restored || c.mangled != cases[i].mangled ||
            c.unknown != cases[i].unknown || strcmp(c.kinds, cases[i].kinds) != 0)
            fprintf(stderr, "case %zu: \"%s\" -> \"%s\" %lld/%lld/%lld/%lld \"%s\"\n", i, cases[i].answer, r,
                    (long long)c.restored, (long long)c.mangled_restored, (long long)c.mangled,
                    (long long)c.unknown, c.kinds);
        assert_string_equal(r, cases[i].expect);
        assert_int_equal(c.restored, cases[i].restored);
        assert_int_equal(c.mangled_restored, cases[i].mangled_restored);
        assert_int_equal(c.mangled, cases[i].mangled);
        assert_int_equal(c.unknown, cases[i].unknown);
        assert_string_equal(c.kinds, cases[i].kinds);
        free(r);
    }
    pol_pseudo_free(p);
}

static void test_report_kinds_are_bounded(void **state)
{
    (void)state;
    const char *kinds[6];
    char names[6][64];
    for (int i = 0; i < 6; i++) {
        snprintf(names[i], sizeof names[i], "kind_%d_%s", i,
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        kinds[i] = names[i];
    }
    pol_pseudo *p;
    assert_int_equal(pol_pseudo_new(&p, kinds, 6, err, sizeof err), 0);
    char answer[1024] = "";
    for (int i = 0; i < 6; i++) {
        size_t at = strlen(answer);
        snprintf(answer + at, sizeof answer - at, "<%s_5> <%s_6> ", names[i], names[i]);
    }
    pol_unpseudo_counts c;
    char *r = restore(p, answer, &c);
    assert_string_equal(r, answer);
    assert_int_equal(c.unknown, 12);
    /* two 59-byte names fit in 128 bytes with a comma, a third does not */
    char two[128];
    snprintf(two, sizeof two, "%s,%s", names[0], names[1]);
    assert_string_equal(c.kinds, two);
    free(r);
    pol_pseudo_free(p);
}

/* ---- text that already looks like a placeholder ---- */

static void test_collisions_with_the_clients_text(void **state)
{
    (void)state;
    pol_pseudo *p = mapping();
    const char *text = "The template says <EMAIL_1> and [EMAIL 2], EMAIL_3 and <person_1>; "
                       "the real one is ana@lima.io, and Ana Lima.";
    const char *pairs[] = {"email:ana@lima.io", "person:Ana Lima"};
    char *o = apply(p, text, pairs, 2);
    assert_string_equal(o, "The template says <EMAIL_1> and [EMAIL 2], EMAIL_3 and <person_1>; "
                           "the real one is <EMAIL_4>, and <PERSON_2>.");
    pol_unpseudo_counts c;
    char *r = restore(p, o, &c);
    assert_string_equal(r, text);
    assert_int_equal(c.restored, 2);
    assert_int_equal(c.mangled_restored + c.mangled + c.unknown, 0);
    free(r);
    /* the model quoting the template back is left alone too */
    r = restore(p, "Use <EMAIL_1> (or <email_1>) for <EMAIL_4>.", &c);
    assert_string_equal(r, "Use <EMAIL_1> (or <email_1>) for ana@lima.io.");
    assert_int_equal(c.restored, 1);
    assert_int_equal(c.unknown, 0);
    free(r);
    free(o);

    /* one text at a time without reserving first: a later text quoting an
     * issued placeholder is refused, not silently confused */
    const char *later = "What is <EMAIL_4>?";
    char *out = (char *)1;
    size_t len;
    assert_int_equal(pol_pseudo_apply(p, later, strlen(later), NULL, 0, &out, &len, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "<EMAIL_4>"));
    assert_non_null(strstr(err, "pol_pseudo_reserve"));
    assert_int_equal(pol_pseudo_reserve(p, later, strlen(later), err, sizeof err), -1);
    pol_pseudo_free(p);

    /* reserving every text first avoids it */
    p = mapping();
    const char *first = "ana@lima.io";
    assert_int_equal(pol_pseudo_reserve(p, first, strlen(first), err, sizeof err), 0);
    assert_int_equal(pol_pseudo_reserve(p, later, strlen(later), err, sizeof err), 0);
    const char *e[] = {"email:ana@lima.io"};
    o = apply(p, first, e, 1);
    assert_string_equal(o, "<EMAIL_1>");
    free(o);
    o = apply(p, later, NULL, 0);
    assert_string_equal(o, later);
    r = restore(p, "<EMAIL_1> vs <EMAIL_4>", &c);
    assert_string_equal(r, "ana@lima.io vs <EMAIL_4>");
    assert_int_equal(c.unknown, 0);
    free(r);
    free(o);
    pol_pseudo_free(p);

    /* a token between two spans reads as it will in the output */
    p = mapping();
    const char *joined = "ana@lima.ioEMAIL_1bo@x.org";
    const char *two[] = {"email:ana@lima.io", "email:bo@x.org"};
    o = apply(p, joined, two, 2);
    assert_string_equal(o, "<EMAIL_2>EMAIL_1<EMAIL_3>");
    r = restore(p, o, &c);
    assert_string_equal(r, joined);
    assert_int_equal(c.mangled, 0);
    free(r);
    free(o);
    pol_pseudo_free(p);
}

/* ---- bad spans ---- */

static void test_invalid_spans(void **state)
{
    (void)state;
    pol_pseudo *p = mapping();
    const char *text = "ana@lima.io and Zoë Ångström";   /* ë and Å are two bytes each */
    size_t len = strlen(text);
    static const struct {
        pol_span spans[2];
        int n;
        const char *expect;
    } cases[] = {
        {{{"email", 0, 100}}, 1, "not inside the 31-byte text"},
        {{{"email", 5, 5}}, 1, "[5, 5) is not inside"},
        {{{"email", 6, 2}}, 1, "[6, 2) is not inside"},
        {{{"email", 0, 11}, {"person", 5, 20}}, 2, "span 1 [5, 20) overlaps or precedes span 0 [0, 11)"},
        {{{"person", 16, 20}, {"email", 0, 11}}, 2, "must be sorted by start"},
        {{{"ssn", 0, 11}}, 1, "kind \"ssn\" may not be pseudonymized"},
        {{{"private_key", 0, 11}}, 1, "kind \"private_key\" may not"},
        {{{NULL, 0, 11}}, 1, "kind \"(null)\""},
        {{{"person", 19, 22}}, 1, "cuts a UTF-8 character"},
        {{{"person", 16, 19}}, 1, "cuts a UTF-8 character"},
        {{{"person", 22, 24}}, 1, "cuts a UTF-8 character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = (char *)1;
        size_t out_len = 7;
        err[0] = '\0';
        assert_int_equal(pol_pseudo_apply(p, text, len, cases[i].spans, cases[i].n, &out, &out_len, err,
                                          sizeof err), -1);
        if (!strstr(err, cases[i].expect)) fprintf(stderr, "case %zu: %s\n", i, err);
        assert_non_null(strstr(err, cases[i].expect));
        assert_null(out);
        assert_int_equal(out_len, 0);
    }
    assert_int_equal(pol_pseudo_values(p), 0);
    /* bad arguments */
    char *out;
    size_t out_len;
    pol_span ok = {"email", 0, 11};
    assert_int_equal(pol_pseudo_apply(NULL, text, len, &ok, 1, &out, &out_len, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_apply(p, NULL, len, &ok, 1, &out, &out_len, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_apply(p, text, len, NULL, 1, &out, &out_len, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_apply(p, text, len, &ok, -1, &out, &out_len, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_apply(p, text, len, &ok, 1, NULL, &out_len, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_reserve(NULL, text, len, err, sizeof err), -1);
    /* a tiny error buffer truncates, never overflows */
    char tiny[8];
    assert_int_equal(pol_pseudo_apply(p, text, len, &ok, -1, &out, &out_len, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    /* an empty text, and no spans */
    assert_int_equal(pol_pseudo_apply(p, NULL, 0, NULL, 0, &out, &out_len, err, sizeof err), 0);
    assert_string_equal(out, "");
    assert_int_equal(out_len, 0);
    free(out);
    pol_unpseudo *u;
    assert_int_equal(pol_unpseudo_new(&u, NULL, err, sizeof err), -1);
    assert_null(u);
    pol_pseudo_free(p);
}

/* ---- UTF-8 ---- */

static void test_utf8_around_spans(void **state)
{
    (void)state;
    pol_pseudo *p = mapping();
    const char *text = "«Zoë Ångström»—zoë@exämple.de—☎+33 6 12 34 56 78…日本語の山田太郎さん";
    const char *pairs[] = {"person:Zoë Ångström", "email:zoë@exämple.de", "phone:+33 6 12 34 56 78",
                           "person:山田太郎"};
    char *o = apply(p, text, pairs, 4);
    assert_string_equal(o, "«<PERSON_1>»—<EMAIL_1>—☎<PHONE_1>…日本語の<PERSON_2>さん");
    check_every_split(p, o, text);
    /* case-insensitive e-mails fold ASCII only: the same bytes otherwise */
    const char *upper = "ZOË@EXÄMPLE.DE zoë@EXämple.DE";
    const char *up[] = {"email:ZOË@EXÄMPLE.DE", "email:zoë@EXämple.DE"};
    char *o2 = apply(p, upper, up, 2);
    assert_string_equal(o2, "<EMAIL_2> <EMAIL_1>");
    free(o2);
    free(o);
    pol_pseudo_free(p);
}

/* ---- caps ---- */

static void test_caps(void **state)
{
    (void)state;
    pol_pseudo *p = mapping();
    /* POL_PSEUDO_MAX_VALUES distinct values fit; one more is refused */
    size_t cap = 24 * (POL_PSEUDO_MAX_VALUES + 1);
    char *text = malloc(cap);
    pol_span *spans = malloc((POL_PSEUDO_MAX_VALUES + 1) * sizeof *spans);
    size_t len = 0;
    for (int i = 0; i <= POL_PSEUDO_MAX_VALUES; i++) {
        int n = snprintf(text + len, cap - len, "u%d@corp.io ", i);
        spans[i] = (pol_span){"email", len, len + (size_t)n - 1};
        len += (size_t)n;
    }
    char *out;
    size_t out_len;
    assert_int_equal(pol_pseudo_apply(p, text, len, spans, POL_PSEUDO_MAX_VALUES, &out, &out_len, err,
                                      sizeof err), 0);
    assert_int_equal(pol_pseudo_values(p), POL_PSEUDO_MAX_VALUES);
    assert_non_null(strstr(out, "<EMAIL_4096> "));
    /* the same values again are no new ones */
    char *again;
    assert_int_equal(pol_pseudo_apply(p, text, len, spans, POL_PSEUDO_MAX_VALUES, &again, &out_len, err,
                                      sizeof err), 0);
    assert_string_equal(again, out);
    free(again);
    char *r = NULL;
    size_t r_len;
    assert_int_equal(pol_unpseudo_text(p, out, strlen(out), &r, &r_len, NULL, err, sizeof err), 0);
    assert_string_equal(r, text);
    free(r);
    free(out);
    assert_int_equal(pol_pseudo_apply(p, text, len, spans, POL_PSEUDO_MAX_VALUES + 1, &out, &out_len, err,
                                      sizeof err), -1);
    assert_non_null(strstr(err, "more than 4096 distinct values"));
    pol_pseudo_free(p);

    /* placeholder-like tokens in the client's text: capped too */
    p = mapping();
    len = 0;
    for (int i = 1; i <= POL_PSEUDO_MAX_RESERVED; i++)
        len += (size_t)snprintf(text + len, cap - len, "<PHONE_%d>", i);
    assert_int_equal(pol_pseudo_reserve(p, text, len, err, sizeof err), 0);
    assert_int_equal(pol_pseudo_reserve(p, text, len, err, sizeof err), 0);    /* again: nothing new */
    const char *more = "<PHONE_99999>";
    assert_int_equal(pol_pseudo_reserve(p, more, strlen(more), err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 4096 placeholder-like tokens"));
    /* numbering skips every reserved number */
    const char *ph[] = {"phone:555-0100"};
    char *o = apply(p, "555-0100", ph, 1);
    assert_string_equal(o, "<PHONE_4097>");
    free(o);
    pol_pseudo_free(p);
    free(text);
    free(spans);
}

/* ---- the messages helper ---- */

static void test_apply_messages(void **state)
{
    (void)state;
    const char *json =
        "[{\"role\": \"system\", \"content\": \"Assist Ana Lima.\"},"
        " {\"role\": \"user\", \"name\": \"EMAIL_1\", \"content\": [{\"type\": \"text\", \"text\": \"Mail ana@lima.io\"},"
        "   {\"type\": \"image_url\", \"image_url\": {\"url\": \"https://x/y.png\"}},"
        "   {\"type\": \"text\", \"text\": \"and bo@x.org, quoting <EMAIL_2>.\"}]},"
        " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\","
        "   \"function\": {\"name\": \"send\", \"arguments\": \"{\\\"to\\\": \\\"ana@lima.io\\\"}\"}}]},"
        " {\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"sent to ANA@LIMA.IO\"}]";
    cJSON *m = cJSON_Parse(json);
    assert_non_null(m);
    const char *t0 = cJSON_GetArrayItem(m, 0)->child->next->valuestring;
    cJSON *parts = cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "content");
    const char *t1 = cJSON_GetObjectItem(cJSON_GetArrayItem(parts, 0), "text")->valuestring;
    const char *t2 = cJSON_GetObjectItem(cJSON_GetArrayItem(parts, 2), "text")->valuestring;
    cJSON *call = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 2), "tool_calls"), 0);
    const char *t3 = cJSON_GetObjectItem(cJSON_GetObjectItem(call, "function"), "arguments")->valuestring;
    const char *t4 = cJSON_GetObjectItem(cJSON_GetArrayItem(m, 3), "content")->valuestring;
    pol_span s0[] = {{"person", 7, 15}};
    pol_span s1[] = {{"email", 5, 16}};
    pol_span s2[] = {{"email", 4, 12}};
    pol_span s3[] = {{"email", 8, 19}};
    pol_span s4[] = {{"email", 8, 19}};
    /* listed in any order */
    pol_text_spans texts[] = {{t3, s3, 1}, {t0, s0, 1}, {t1, s1, 1}, {t4, s4, 1}, {t2, s2, 1}};
    char *before = cJSON_PrintUnformatted(m);

    pol_pseudo *p = mapping();
    /* a copy of a text is not found, a text twice is refused, bad spans
     * anywhere refuse the whole: messages unchanged each time */
    char copy[64];
    snprintf(copy, sizeof copy, "%s", t1);
    pol_text_spans wrong[] = {{t0, s0, 1}, {copy, s1, 1}};
    assert_int_equal(pol_pseudo_apply_messages(p, m, wrong, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "texts[1] is not a string under messages"));
    pol_text_spans twice[] = {{t0, s0, 1}, {t0, s0, 1}};
    assert_int_equal(pol_pseudo_apply_messages(p, m, twice, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "texts[0] and texts[1] are the same string"));
    pol_span past[] = {{"email", 4, 99}};
    pol_text_spans bad[] = {{t0, s0, 1}, {t2, past, 1}};
    assert_int_equal(pol_pseudo_apply_messages(p, m, bad, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "(texts[1])"));
    pol_text_spans null_text[] = {{NULL, s0, 1}};
    assert_int_equal(pol_pseudo_apply_messages(p, m, null_text, 1, err, sizeof err), -1);
    assert_int_equal(pol_pseudo_apply_messages(p, cJSON_GetArrayItem(m, 0), texts, 5, err, sizeof err), -1);
    char *still = cJSON_PrintUnformatted(m);
    assert_string_equal(still, before);
    free(still);
    pol_pseudo_free(p);

    p = mapping();
    assert_int_equal(pol_pseudo_apply_messages(p, m, texts, 5, err, sizeof err), 0);
    char *after = cJSON_PrintUnformatted(m);
    /* "EMAIL_1" (a name) and "<EMAIL_2>" (quoted by the user) are the client's:
     * the e-mails get 3 and 4, the same address in any case the same one */
    assert_string_equal(after,
        "[{\"role\":\"system\",\"content\":\"Assist <PERSON_1>.\"},"
        "{\"role\":\"user\",\"name\":\"EMAIL_1\",\"content\":[{\"type\":\"text\",\"text\":\"Mail <EMAIL_3>\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}},"
        "{\"type\":\"text\",\"text\":\"and <EMAIL_4>, quoting <EMAIL_2>.\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"send\",\"arguments\":\"{\\\"to\\\": \\\"<EMAIL_3>\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sent to <EMAIL_3>\"}]");
    pol_unpseudo_counts c;
    char *r = restore(p, "Sent to <EMAIL_3> and <EMAIL_4> for <PERSON_1>, as EMAIL_1 asked (<EMAIL_2>).", &c);
    assert_string_equal(r, "Sent to ana@lima.io and bo@x.org for Ana Lima, as EMAIL_1 asked (<EMAIL_2>).");
    assert_int_equal(c.restored, 3);
    assert_int_equal(c.mangled + c.unknown, 0);
    free(r);
    /* the same messages again: their placeholders now read as the client's
     * own text quoting an issued one, which is refused */
    assert_int_equal(pol_pseudo_apply_messages(p, m, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "the placeholder of another value"));
    pol_pseudo_free(p);
    /* no texts at all: nothing replaced, every string reserved */
    p = mapping();
    assert_int_equal(pol_pseudo_apply_messages(p, m, NULL, 0, err, sizeof err), 0);
    char *same = cJSON_PrintUnformatted(m);
    assert_string_equal(same, after);
    free(same);
    const char *e[] = {"email:x@y.io"};
    char *o = apply(p, "x@y.io", e, 1);
    assert_string_equal(o, "<EMAIL_5>");   /* 1 to 4 are in the messages now */
    free(o);
    free(after);
    free(before);
    pol_pseudo_free(p);
    cJSON_Delete(m);
}

/* ---- any text, any spans: restored to exactly itself ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void test_random_round_trips(void **state)
{
    (void)state;
    /* placeholder-like material everywhere, so the client's text is full of
     * tokens the restorer must leave alone */
    static const char *const pieces[] = {
        "<", ">", "[", "]", " ", "_", "1", "2", "0", "EMAIL", "email", "PHONE", "PERSON", "person",
        "<EMAIL_1>", "[PHONE 2]", "EMAIL_3", "<person_1>", "x", "é", "@", ".", "ana", "<EMAIL 1>",
    };
    const size_t n_pieces = sizeof pieces / sizeof pieces[0];
    static const char *const kinds[] = {"email", "person", "phone"};
    char text[512];
    for (int round = 0; round < 3000; round++) {
        pol_pseudo *p = mapping();
        size_t len = 0;
        int n_items = 1 + (int)(next_rand() % 40);
        /* piece boundaries are character boundaries: spans start and end on them */
        size_t bounds[64];
        int n_bounds = 0;
        bounds[n_bounds++] = 0;
        for (int i = 0; i < n_items; i++) {
            const char *s = pieces[next_rand() % n_pieces];
            memcpy(text + len, s, strlen(s));
            len += strlen(s);
            bounds[n_bounds++] = len;
        }
        text[len] = '\0';
        pol_span spans[32];
        int n = 0;
        for (int b = 0; b + 1 < n_bounds && n < 32; b++) {
            if (next_rand() % 4) continue;
            int e = b + 1 + (int)(next_rand() % 3);
            if (e >= n_bounds) e = n_bounds - 1;
            spans[n++] = (pol_span){kinds[next_rand() % 3], bounds[b], bounds[e]};
            b = e - 1;
        }
        char *out;
        size_t out_len;
        int rc = pol_pseudo_apply(p, text, len, spans, n, &out, &out_len, err, sizeof err);
        if (rc != 0) fprintf(stderr, "round %d: %s\n", round, err);
        assert_int_equal(rc, 0);
        pol_unpseudo_counts c;
        char *r = restore(p, out, &c);
        /* e-mails come back as first written: compare after folding those */
        if (strcmp(r, text) != 0) {
            int folded_same = strlen(r) == len;
            for (size_t i = 0; folded_same && i < len; i++)
                folded_same = (r[i] | 0x20) == (text[i] | 0x20);
            if (!folded_same) fprintf(stderr, "round %d:\n  text %s\n  out  %s\n  back %s\n", round, text, out, r);
            assert_true(folded_same);
        }
        assert_int_equal(c.restored, n);
        assert_int_equal(c.mangled_restored + c.mangled + c.unknown, 0);
        /* streamed at a random cut: the same */
        size_t cut = out_len ? next_rand() % out_len : 0;
        char *s = restore_cut(p, out, &cut, 1, NULL);
        assert_string_equal(s, r);
        free(s);
        free(r);
        free(out);
        pol_pseudo_free(p);
    }
}

/* Random bytes, NULs included: reserved and restored without reading out of
 * bounds (ASan), streamed at random cuts exactly as whole. */
static void test_random_bytes(void **state)
{
    (void)state;
    static const char bias[] = "<[]> _1EMAILPHONEemail";
    char text[300];
    for (int round = 0; round < 2000; round++) {
        pol_pseudo *p = mapping();
        const char *pairs[] = {"email:ana@lima.io", "phone:555-0100"};
        free(apply(p, "ana@lima.io 555-0100", pairs, 2));
        size_t len = next_rand() % sizeof text;
        for (size_t i = 0; i < len; i++)
            text[i] = next_rand() % 2 ? (char)next_rand() : bias[next_rand() % (sizeof bias - 1)];
        char *whole;
        size_t whole_len;
        pol_unpseudo_counts a, b;
        assert_int_equal(pol_unpseudo_text(p, text, len, &whole, &whole_len, &a, err, sizeof err), 0);
        pol_unpseudo *u;
        assert_int_equal(pol_unpseudo_new(&u, p, err, sizeof err), 0);
        char got[4 * sizeof text];
        size_t n = 0, from = 0;
        const char *part;
        size_t part_len;
        while (from < len) {
            size_t step = 1 + next_rand() % 16;
            if (step > len - from) step = len - from;
            assert_int_equal(pol_unpseudo_feed(u, text + from, step, &part, &part_len, err, sizeof err), 0);
            memcpy(got + n, part, part_len);
            n += part_len;
            from += step;
        }
        assert_int_equal(pol_unpseudo_finish(u, &part, &part_len, err, sizeof err), 0);
        memcpy(got + n, part, part_len);
        n += part_len;
        pol_unpseudo_report(u, &b);
        assert_int_equal(n, whole_len);
        assert_memory_equal(got, whole, n);
        assert_same_counts(&a, &b);
        pol_unpseudo_free(u);
        free(whole);
        /* reserving random bytes: fine, or refused as quoting an issued placeholder */
        if (pol_pseudo_reserve(p, text, len, err, sizeof err) != 0)
            assert_non_null(strstr(err, "the placeholder of another value"));
        pol_pseudo_free(p);
    }
}

/* ---- throughput (not a test) ---- */

/* CPU time of this thread: the machine is shared, wall time would measure the neighbours. */
static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int bench(void)
{
    /* 4 MB of chat-like text with an e-mail, a name and a phone every 200 bytes */
    const char *unit = "Please forward the quarterly numbers to ana.lima@northwind.com before Friday; "
                       "Ana Lima said that the board <needs> them [urgently]. Call +1 415 555 0132 if stuck. ";
    size_t unit_len = strlen(unit), n_units = 4 * 1024 * 1024 / unit_len;
    size_t len = unit_len * n_units;
    char *text = malloc(len + 1);
    pol_span *spans = malloc(3 * n_units * sizeof *spans);
    const char *e = strstr(unit, "ana.lima"), *nm = strstr(unit, "Ana Lima"), *ph = strstr(unit, "+1 415");
    for (size_t i = 0; i < n_units; i++) {
        memcpy(text + i * unit_len, unit, unit_len);
        size_t b = i * unit_len;
        spans[3 * i] = (pol_span){"email", b + (size_t)(e - unit), b + (size_t)(e - unit) + strlen("ana.lima@northwind.com")};
        spans[3 * i + 1] = (pol_span){"person", b + (size_t)(nm - unit), b + (size_t)(nm - unit) + 8};
        spans[3 * i + 2] = (pol_span){"phone", b + (size_t)(ph - unit), b + (size_t)(ph - unit) + 15};
    }
    text[len] = '\0';
    pol_pseudo *p;
    if (pol_pseudo_new(&p, people_kinds, 3, err, sizeof err) != 0) return 1;
    char *out, *back;
    size_t out_len, back_len;
    double t0 = seconds();
    if (pol_pseudo_apply(p, text, len, spans, (int)(3 * n_units), &out, &out_len, err, sizeof err) != 0) return 1;
    double t1 = seconds();
    if (pol_unpseudo_text(p, out, out_len, &back, &back_len, NULL, err, sizeof err) != 0) return 1;
    double t2 = seconds();
    /* streamed in 8-byte chunks, as token deltas come */
    pol_unpseudo *u;
    if (pol_unpseudo_new(&u, p, err, sizeof err) != 0) return 1;
    const char *part;
    size_t part_len;
    for (size_t i = 0; i < out_len; i += 8)
        if (pol_unpseudo_feed(u, out + i, out_len - i < 8 ? out_len - i : 8, &part, &part_len, err, sizeof err) != 0)
            return 1;
    double t3 = seconds();
    printf("pseudonymize (CPU time): %zu bytes, %zu spans: apply %.1f MB/s, restore whole %.1f MB/s, "
           "restore in 8-byte chunks %.1f MB/s; round trip %s\n", len, 3 * n_units,
           (double)len / 1e6 / (t1 - t0), (double)out_len / 1e6 / (t2 - t1),
           (double)out_len / 1e6 / (t3 - t2), back_len == len && memcmp(back, text, len) == 0 ? "exact" : "WRONG");
    pol_unpseudo_free(u);
    free(back);
    free(out);
    pol_pseudo_free(p);
    free(spans);
    free(text);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_list_and_kind_names),
        cmocka_unit_test(test_conversation_round_trip),
        cmocka_unit_test(test_streamed_every_split),
        cmocka_unit_test(test_streaming_holds_back_only_what_may_be_a_placeholder),
        cmocka_unit_test(test_mangled_forms),
        cmocka_unit_test(test_report_kinds_are_bounded),
        cmocka_unit_test(test_collisions_with_the_clients_text),
        cmocka_unit_test(test_invalid_spans),
        cmocka_unit_test(test_utf8_around_spans),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_apply_messages),
        cmocka_unit_test(test_random_round_trips),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
