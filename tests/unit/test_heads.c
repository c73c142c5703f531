/* test_heads.c: the classifier's scoring: lexical features, heads, fitting, metrics.
 *
 * The metrics are checked against values computed by hand; the head file
 * against a save/load round trip and a table of broken files; the fit
 * against a synthetic set with a separable signal.
 */
#include "classifier.h"
#include "scoring.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* ---- metrics ---- */

static void test_auc_by_hand(void **state)
{
    (void)state;
    /* positives at 0.9 and 0.4, negatives at 0.8, 0.4, 0.1: of the 6 pairs,
     * 0.9 beats all 3, 0.4 beats 0.1 and ties 0.4 (half): (3 + 1.5) / 6. */
    const float s[] = {0.9f, 0.8f, 0.4f, 0.4f, 0.1f};
    const int y[] = {1, 0, 1, 0, 0};
    assert_float_equal(cls_roc_auc(s, y, 5), 0.75, 1e-12);
    const int one_class[] = {1, 1, 1, 1, 1};
    assert_true(isnan(cls_roc_auc(s, one_class, 5)));
}

static void test_routing_by_hand(void **state)
{
    (void)state;
    /* local correct on items 1, 2; frontier on 0, 1, 2. Local-only 2/4,
     * frontier-only 3/4. The first item routed recovers the whole gap:
     * PGR 0 at share 0, 1 from share 0.25 on. APGR = 0.25 * 0.5 + 0.75 = 0.875;
     * PGR 0.5 at share 0.125, 0.8 at 0.2. */
    const float s[] = {0.9f, 0.8f, 0.3f, 0.1f};
    const int local[] = {0, 1, 1, 0}, frontier[] = {1, 1, 1, 0};
    cls_routing r;
    char err[256];
    assert_int_equal(cls_routing_metrics(s, local, frontier, 4, &r, err, sizeof(err)), 0);
    assert_float_equal(r.local_only, 0.5, 1e-12);
    assert_float_equal(r.frontier_only, 0.75, 1e-12);
    assert_float_equal(r.apgr, 0.875, 1e-12);
    assert_float_equal(r.cpt50, 0.125, 1e-12);
    assert_float_equal(r.cpt80, 0.2, 1e-12);
    assert_int_equal(r.n_curve, 5);
    assert_float_equal(r.curve[4].pgr, 1, 1e-12);
    cls_routing_free(&r);

    /* Reversed scores route the useful item last: PGR 0 until share 0.75,
     * then 1: APGR = 0.25 * 0.5 = 0.125; PGR 0.5 at 0.875, 0.8 at 0.95. */
    const float rev[] = {0.1f, 0.3f, 0.8f, 0.9f};
    assert_int_equal(cls_routing_metrics(rev, local, frontier, 4, &r, err, sizeof(err)), 0);
    assert_float_equal(r.apgr, 0.125, 1e-12);
    assert_float_equal(r.cpt50, 0.875, 1e-12);
    assert_float_equal(r.cpt80, 0.95, 1e-12);
    cls_routing_free(&r);
}

static void test_routing_ties_are_random(void **state)
{
    (void)state;
    /* One score for all: one group, a straight line: random routing. */
    const float s[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    const int local[] = {0, 1, 0, 1, 1}, frontier[] = {1, 1, 1, 0, 1};
    cls_routing r;
    char err[256];
    assert_int_equal(cls_routing_metrics(s, local, frontier, 5, &r, err, sizeof(err)), 0);
    assert_float_equal(r.apgr, 0.5, 1e-12);
    assert_float_equal(r.cpt50, 0.5, 1e-12);
    assert_float_equal(r.cpt80, 0.8, 1e-12);
    assert_int_equal(r.n_curve, 2);
    cls_routing_free(&r);
}

static void test_routing_without_gap_is_an_error(void **state)
{
    (void)state;
    const float s[] = {0.2f, 0.7f};
    const int same[] = {1, 0};
    cls_routing r;
    char err[256];
    assert_int_equal(cls_routing_metrics(s, same, same, 2, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "PGR is undefined"));
    assert_int_equal(cls_routing_metrics(s, same, same, 0, &r, err, sizeof(err)), -1);
}

static void test_calibration_and_confusion(void **state)
{
    (void)state;
    const float p[] = {0.05f, 0.15f, 0.95f, 1.0f, 0.55f};
    const int y[] = {0, 1, 1, 1, 0};
    cls_calib_bin bins[10];
    double ece = cls_calibration(p, y, 5, bins, 10);
    assert_int_equal(bins[0].count, 1);
    assert_int_equal(bins[9].count, 2);   /* 1.0 falls in the last bin */
    assert_float_equal(bins[9].mean_pred, 0.975, 1e-6);
    assert_float_equal(bins[9].observed, 1, 1e-12);
    /* |0.05-0| + |0.15-1| + 2|0.975-1| + |0.55-0|, over 5 */
    assert_float_equal(ece, (0.05 + 0.85 + 0.05 + 0.55) / 5, 1e-6);
    cls_confusion c;
    cls_confusion_at(p, y, 5, 0.5f, &c);
    assert_int_equal(c.tp, 2);
    assert_int_equal(c.fp, 1);
    assert_int_equal(c.fn, 1);
    assert_int_equal(c.tn, 1);
    assert_float_equal(c.precision, 2.0 / 3, 1e-12);
    assert_float_equal(c.recall, 2.0 / 3, 1e-12);
}

/* ---- lexical features ---- */

static void lex(const char *text, cls_features *f)
{
    char err[128];
    memset(f, 0, sizeof(*f));
    assert_int_equal(cls_lexical(text, strlen(text), f, err, sizeof(err)), 0);
}

static bool same_ngrams(const cls_features *a, const cls_features *b)
{
    if (a->n_ngrams != b->n_ngrams) return false;
    for (int i = 0; i < a->n_ngrams; i++)
        if (a->ngrams[i].hash != b->ngrams[i].hash) return false;
    return true;
}

static void test_lexical_normalises_format(void **state)
{
    (void)state;
    cls_features a, b;
    /* every number is <num>; case does not matter */
    lex("Solve x^2 = 49 for X", &a);
    lex("solve X^2 = 7 FOR x", &b);
    assert_true(same_ngrams(&a, &b));
    cls_features_free(&a);
    cls_features_free(&b);
    /* list markers are not words: the options' letters add nothing */
    lex("Which organ?\nA. liver\nB. heart", &a);
    lex("Which organ?\nliver\nheart", &b);
    assert_true(same_ngrams(&a, &b));
    cls_features_free(&a);
    cls_features_free(&b);
    /* bigrams stay within a line: "organ liver" is not a bigram of a, but of b */
    lex("which organ liver heart", &b);
    lex("Which organ?\nliver\nheart", &a);
    assert_true(b.n_ngrams > a.n_ngrams);
    cls_features_free(&a);
    cls_features_free(&b);
}

static void test_lexical_statistics_and_spans(void **state)
{
    (void)state;
    cls_features f;
    const char *text = "Compute 12 + 30 = ?\nThen explain";
    lex(text, &f);
    float v;
    assert_int_equal(cls_feature_value(&f, "log_words", &v), 0);
    /* compute, <num>, +, <num>, =, then, explain */
    assert_float_equal(v, log1p(7), 1e-6);
    assert_int_equal(cls_feature_value(&f, "numeral_share", &v), 0);
    assert_float_equal(v, 2.0 / 7, 1e-6);
    assert_int_equal(cls_feature_value(&f, "math_symbols", &v), 0);
    assert_float_equal(v, log1p(2), 1e-6);
    assert_int_equal(cls_feature_value(&f, "questions", &v), 0);
    assert_float_equal(v, log1p(1), 1e-6);
    assert_int_equal(cls_feature_value(&f, "no_such_feature", &v), -1);
    /* spans point at the words' first occurrence */
    for (int i = 0; i < f.n_ngrams; i++) {
        assert_true(f.ngrams[i].start < f.ngrams[i].end);
        assert_true(f.ngrams[i].end <= strlen(text));
    }
    cls_features_free(&f);
}

static void test_lexical_survives_any_bytes(void **state)
{
    (void)state;
    size_t n = 1 << 16;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 24);
    }
    cls_features f = {0};
    char err[128];
    assert_int_equal(cls_lexical((const char *)buf, n, &f, err, sizeof(err)), 0);
    for (int i = 0; i < f.n_ngrams; i++) assert_true(f.ngrams[i].end <= n);
    for (int i = 0; i < CLS_LEX_COUNT; i++) assert_true(isfinite(f.lex[i]));
    assert_int_equal(cls_lexical("", 0, &f, err, sizeof(err)), 0);
    assert_int_equal(f.n_ngrams, 0);
    cls_features_free(&f);
    free(buf);
}

/* ---- head files ---- */

static const char *small_head =
    "{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"lexical\", \"ngrams\"],"
    " \"threshold\": 0.4, \"bias\": -1,"
    " \"dense\": [{\"name\": \"log_words\", \"mean\": 1, \"std\": 2, \"weight\": 0.5}],"
    " \"ngrams\": {\"bits\": 10, \"weights\": [[1, 0.25], [1023, -0.5]]}}";

static void test_head_parse_score_save_load(void **state)
{
    (void)state;
    cls_head *h;
    char err[400];
    assert_int_equal(cls_head_parse(&h, small_head, strlen(small_head), err, sizeof(err)), 0);
    assert_string_equal(cls_head_get_info(h)->target, "difficulty");
    assert_float_equal(cls_head_get_info(h)->threshold, 0.4, 1e-6);
    /* By hand: log_words = log(1 + 3) for three words with no n-gram weight
     * (weights only in buckets 1 and 1023: pick a text whose buckets miss them). */
    cls_features f;
    lex("alpha beta gamma", &f);
    uint32_t mask = 1023;
    float ng = 0;
    for (int i = 0; i < f.n_ngrams; i++) {
        uint32_t b = f.ngrams[i].hash & mask;
        ng += (b == 1 ? 0.25f : b == 1023 ? -0.5f : 0) / sqrtf((float)f.n_ngrams);
    }
    double z = -1 + 0.5 * (log1p(3) - 1) / 2 + ng;
    cls_score s;
    assert_int_equal(cls_head_score(h, &f, &s, err, sizeof(err)), 0);
    assert_float_equal(s.logit, z, 1e-5);
    assert_float_equal(s.probability, 1 / (1 + exp(-z)), 1e-5);
    assert_false(s.forced);
    assert_true(s.n_evidence >= 1);
    assert_string_equal(s.evidence[0].name, "log_words");

    char path[] = "/tmp/junction-head-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cls_head_save(h, path, err, sizeof(err)), 0);
    cls_head *h2;
    assert_int_equal(cls_head_load(&h2, path, err, sizeof(err)), 0);
    cls_score s2;
    assert_int_equal(cls_head_score(h2, &f, &s2, err, sizeof(err)), 0);
    assert_float_equal(s2.logit, s.logit, 1e-6);
    unlink(path);
    cls_head_free(h2);
    cls_head_free(h);
    cls_features_free(&f);
}

typedef struct {
    const char *json, *expect;
} bad_head;

static void test_bad_heads_are_refused(void **state)
{
    (void)state;
    static const bad_head cases[] = {
        {"[]", "not a JSON object"},
        {"{\"format\": \"other\"}", "\"format\" must be"},
        {"{\"format\": \"junction-head-1\", \"target\": \"speed\", \"features\": [\"lexical\"], \"bias\": 0}",
         "target must be difficulty or sensitivity"},
        {"{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"lexical\"]}",
         "\"bias\" must be a number"},
        {"{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"colour\"], \"bias\": 0}",
         "\"features\" must list groups"},
        {"{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"lexical\"], \"bias\": 0,"
         " \"dense\": [{\"name\": \"shoe_size\", \"weight\": 1}]}",
         "'shoe_size' is not a feature"},
        {"{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"lexical\"], \"bias\": 0,"
         " \"dense\": [{\"name\": \"log_words\", \"std\": 0, \"weight\": 1}]}",
         "std must be > 0"},
        {"{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"ngrams\"], \"bias\": 0,"
         " \"ngrams\": {\"bits\": 10, \"weights\": [[1024, 1]]}}",
         "bucket below 1024"},
        {"{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"hidden\"], \"bias\": 0}",
         "needs \"hidden\""},
        {"{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"lexical\"], \"bias\": 0,"
         " \"threshold\": 1.5}",
         "threshold must be strictly between 0 and 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cls_head *h = (cls_head *)&cases;   /* must be reset to NULL */
        char err[400] = "";
        assert_int_equal(cls_head_parse(&h, cases[i].json, strlen(cases[i].json), err, sizeof(err)), -1);
        assert_null(h);
        if (!strstr(err, cases[i].expect)) fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
    }
    cls_head *h;
    char err[400];
    assert_int_equal(cls_head_load(&h, "/nonexistent/head.json", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/head.json"));
}

static void test_model_features_are_checked(void **state)
{
    (void)state;
    const char *json =
        "{\"format\": \"junction-head-1\", \"target\": \"difficulty\", \"features\": [\"model\", \"hidden\"],"
        " \"hidden\": {\"layer\": 2, \"n_embd\": 4}, \"bias\": 0,"
        " \"dense\": [{\"name\": \"nll_mean\", \"mean\": 3, \"std\": 1, \"weight\": 1},"
        "            {\"name\": \"h3\", \"mean\": 0, \"std\": 1, \"weight\": 2}]}";
    cls_head *h;
    char err[400];
    assert_int_equal(cls_head_parse(&h, json, strlen(json), err, sizeof(err)), 0);
    cls_features f = {0};
    cls_score s;
    /* not computed for this request: the model's terms count as at their
     * mean (they add nothing); the check the CLI makes still says why */
    assert_int_equal(cls_head_score(h, &f, &s, err, sizeof(err)), 0);
    assert_float_equal(s.logit, 0, 1e-6);
    assert_int_equal(s.n_evidence, 0);
    assert_int_equal(cls_head_check_model(h, &f.model, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "give a model"));
    float hidden[8] = {0, 0, 0, 0.5f, 0, 0, 0, 0};
    f.model = (cls_model_features){.present = true, .nll_mean = 4, .hidden = hidden, .n_hidden = 8, .layer = 2};
    assert_int_equal(cls_head_score(h, &f, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "4-wide hidden state at layer 2"));
    f.model.n_hidden = 4;
    assert_int_equal(cls_head_score(h, &f, &s, err, sizeof(err)), 0);
    assert_float_equal(s.logit, (4 - 3) * 1 + 0.5 * 2, 1e-6);
    cls_head_free(h);
}

static void test_forcing_findings(void **state)
{
    (void)state;
    const char *json = "{\"format\": \"junction-head-1\", \"target\": \"sensitivity\", \"features\": [\"detectors\"],"
                       " \"force_from_detectors\": true, \"bias\": -5}";
    cls_head *h;
    char err[400];
    assert_int_equal(cls_head_parse(&h, json, strlen(json), err, sizeof(err)), 0);
    cls_finding items[2] = {
        {.kind = CLS_EMAIL, .start = 0, .end = 5, .confidence = 0.6f},
        {.kind = CLS_PRIVATE_KEY, .start = 10, .end = 90, .confidence = 0.99f, .validated = true},
    };
    cls_findings fs = {items, 1, false};
    cls_features f = {0};
    cls_features_add_findings(&f, &fs);
    float v;
    assert_int_equal(cls_feature_value(&f, "det:email", &v), 0);
    assert_float_equal(v, 0.6, 1e-6);
    assert_int_equal(cls_feature_value(&f, "det:any", &v), 0);
    assert_float_equal(v, 0.6, 1e-6);
    assert_int_equal(cls_feature_value(&f, "det:iban", &v), 0);
    assert_float_equal(v, 0, 1e-6);
    cls_score s;
    assert_int_equal(cls_head_score(h, &f, &s, err, sizeof(err)), 0);
    assert_false(s.forced);
    assert_true(s.probability < 0.5f);
    /* a validated private key forces sensitivity to 1, whatever the head says */
    assert_true(cls_finding_forces(&items[1]));
    fs.n = 2;
    memset(&f, 0, sizeof(f));
    cls_features_add_findings(&f, &fs);
    assert_int_equal(cls_head_score(h, &f, &s, err, sizeof(err)), 0);
    assert_true(s.forced);
    assert_float_equal(s.probability, 1, 0);
    assert_string_equal(s.forced_by, "private_key");
    cls_head_free(h);
}

/* ---- fitting ---- */

/* A synthetic set: texts about "integrals" and "eigenvalues" are difficult,
 * texts about "weather" and "recipes" are not, with shared filler words;
 * labels agree with the topic 95% of the time. */
static const char *const hard_words[] = {"integral", "eigenvalue", "theorem", "derivative", "manifold"};
static const char *const easy_words[] = {"weather", "recipe", "garden", "holiday", "picnic"};
static const char *const filler[] = {"the", "what", "is", "about", "please", "explain", "this", "question", "my"};

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static int make_set(cls_example *ex, int n)
{
    uint32_t seed = 7;
    for (int i = 0; i < n; i++) {
        char text[256] = "";
        int hard = rng(&seed) % 2;
        for (int w = 0; w < 8; w++) {
            const char *word = w % 3 == 1 ? (hard ? hard_words : easy_words)[rng(&seed) % 5] : filler[rng(&seed) % 9];
            strcat(text, word);
            strcat(text, " ");
        }
        char id[32];
        snprintf(id, sizeof(id), "%d", i);
        strcat(text, id);
        char err[128];
        memset(&ex[i], 0, sizeof(ex[i]));
        assert_int_equal(cls_lexical(text, strlen(text), &ex[i].features, err, sizeof(err)), 0);
        ex[i].label = rng(&seed) % 100 < 95 ? hard : !hard;
        ex[i].local_correct = !ex[i].label;
        ex[i].frontier_correct = 1;
        ex[i].key = (uint64_t)i * 0x9e3779b97f4a7c15ULL + 1;
    }
    return n;
}

static void test_fit_learns_a_separable_signal(void **state)
{
    (void)state;
    enum { N = 600 };
    cls_example *ex = calloc(N, sizeof(*ex));
    assert_non_null(ex);
    make_set(ex, N);
    cls_fit_params p;
    cls_fit_defaults(&p);
    p.ngram_bits = 12;
    cls_head *h;
    cls_fit_report rep;
    char err[400];
    assert_int_equal(cls_fit(ex, N, &p, &h, &rep, err, sizeof(err)), 0);
    assert_true(rep.n_test > N / 10 && rep.n_test < N / 3);
    assert_int_equal(rep.n_train + rep.n_val + rep.n_test, N);
    int *lab = malloc(sizeof(int) * (size_t)rep.n_test);
    for (int i = 0; i < rep.n_test; i++) lab[i] = ex[rep.test_index[i]].label;
    double auc = cls_roc_auc(rep.test_prob, lab, rep.n_test);
    assert_true(auc > 0.9);
    /* The same data gives the same head, byte for byte. */
    cls_head *h2;
    cls_fit_report rep2;
    assert_int_equal(cls_fit(ex, N, &p, &h2, &rep2, err, sizeof(err)), 0);
    char a[] = "/tmp/junction-fit-a-XXXXXX", b[] = "/tmp/junction-fit-b-XXXXXX";
    close(mkstemp(a));
    close(mkstemp(b));
    assert_int_equal(cls_head_save(h, a, err, sizeof(err)), 0);
    assert_int_equal(cls_head_save(h2, b, err, sizeof(err)), 0);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        assert_int_equal(ca, cb);
    } while (ca != EOF);
    fclose(fa);
    fclose(fb);
    unlink(a);
    unlink(b);
    /* a difficult text scores above an easy one, and the evidence points at the word */
    cls_features hard = {0}, easy = {0};
    /* shaped like the training texts: eight words and a number */
    const char *ht = "the eigenvalue is about integral explain my theorem 601";
    const char *et = "the picnic is about garden explain my recipe 601";
    assert_int_equal(cls_lexical(ht, strlen(ht), &hard, err, sizeof(err)), 0);
    assert_int_equal(cls_lexical(et, strlen(et), &easy, err, sizeof(err)), 0);
    cls_score sh, se;
    assert_int_equal(cls_head_score(h, &hard, &sh, err, sizeof(err)), 0);
    assert_int_equal(cls_head_score(h, &easy, &se, err, sizeof(err)), 0);
    assert_true(sh.probability > 0.7f);
    assert_true(se.probability < 0.3f);
    /* the strongest evidence is a topic word, and its span says where */
    assert_true(sh.evidence[0].has_span);
    bool topic = false;
    for (int w = 0; w < 5; w++)
        topic |= sh.evidence[0].end - sh.evidence[0].start == strlen(hard_words[w]) &&
                 !strncmp(ht + sh.evidence[0].start, hard_words[w], strlen(hard_words[w]));
    assert_true(topic);
    cls_features_free(&hard);
    cls_features_free(&easy);
    free(lab);
    cls_fit_report_free(&rep);
    cls_fit_report_free(&rep2);
    cls_head_free(h);
    cls_head_free(h2);
    for (int i = 0; i < N; i++) cls_features_free(&ex[i].features);
    free(ex);
}

static void test_fit_needs_both_labels(void **state)
{
    (void)state;
    enum { N = 50 };
    cls_example ex[N];
    make_set(ex, N);
    for (int i = 0; i < N; i++) ex[i].label = 1;
    cls_fit_params p;
    cls_fit_defaults(&p);
    cls_head *h;
    cls_fit_report rep;
    char err[400];
    assert_int_equal(cls_fit(ex, N, &p, &h, &rep, err, sizeof(err)), -1);
    assert_null(h);
    assert_non_null(strstr(err, "too few examples"));
    p.ngram_bits = 40;
    assert_int_equal(cls_fit(ex, N, &p, &h, &rep, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ngram bits 10..22"));
    for (int i = 0; i < N; i++) cls_features_free(&ex[i].features);
}

static void test_split_is_deterministic_and_sized(void **state)
{
    (void)state;
    int counts[3] = {0};
    for (uint64_t k = 0; k < 20000; k++) counts[cls_split_of(k * 2654435761u, 0.2, 0.25)]++;
    assert_true(abs(counts[CLS_SPLIT_TEST] - 4000) < 300);
    assert_true(abs(counts[CLS_SPLIT_VAL] - 4000) < 300);
    assert_int_equal(cls_split_of(42, 0.2, 0.25), cls_split_of(42, 0.2, 0.25));
    unsigned g;
    char err[200];
    assert_int_equal(cls_feature_groups_parse("lexical,hidden", &g, err, sizeof(err)), 0);
    assert_int_equal(g, CLS_USE_LEXICAL | CLS_USE_HIDDEN);
    assert_int_equal(cls_feature_groups_parse("lexical,words", &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'words'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_by_hand),
        cmocka_unit_test(test_routing_by_hand),
        cmocka_unit_test(test_routing_ties_are_random),
        cmocka_unit_test(test_routing_without_gap_is_an_error),
        cmocka_unit_test(test_calibration_and_confusion),
        cmocka_unit_test(test_lexical_normalises_format),
        cmocka_unit_test(test_lexical_statistics_and_spans),
        cmocka_unit_test(test_lexical_survives_any_bytes),
        cmocka_unit_test(test_head_parse_score_save_load),
        cmocka_unit_test(test_bad_heads_are_refused),
        cmocka_unit_test(test_model_features_are_checked),
        cmocka_unit_test(test_forcing_findings),
        cmocka_unit_test(test_fit_learns_a_separable_signal),
        cmocka_unit_test(test_fit_needs_both_labels),
        cmocka_unit_test(test_split_is_deterministic_and_sized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
