/* test_features.c: the classifier's features from the local model's pass
 * (localengine/features.c) against a separate full pass and a plain float
 * forward pass written here; the layer-stopped pass against the full one at
 * that layer; and the cache a scoring pass leaves (finished or not) against
 * a fresh prefill, on the shared models and on eng_mkmodel files. */
#include "context.h"
#include "engine_test.h"
#include "localengine.h"
#include "model.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define SHARED JUNCTION_SHARED_DIR

/* Models under test; the mkmodel files are written by the group setup.
 * tol: how far the engine's hidden states may be from the float reference,
 * relative to the largest reference value (Q4_0 weights take Q8_0
 * activations). */
static struct {
    char path[128];
    float tol;
} models[] = {
    {SHARED "/models/stories260K.gguf", 1e-4f},
    {SHARED "/models/TinyLLama-v0-Q4_0.gguf", 1e-1f},
    {"", 1e-1f}, /* mkmodel tiny q4_0 */
    {"", 1e-4f}, /* mkmodel small f32 */
};
#define N_MODELS (sizeof(models) / sizeof(models[0]))

static int make_models(void **state)
{
    (void)state;
    static const struct { const char *shape, *type; int idx; } mk[] = {{"tiny", "q4_0", 2}, {"small", "f32", 3}};
    char err[512];
    for (size_t i = 0; i < sizeof(mk) / sizeof(mk[0]); i++) {
        char *p = models[mk[i].idx].path;
        snprintf(p, sizeof(models[0].path), "/tmp/junction-features-XXXXXX");
        int fd = mkstemp(p);
        if (fd < 0) return -1;
        close(fd);
        if (eng_mkmodel(p, mk[i].shape, mk[i].type, 7 + i, NULL, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    }
    return 0;
}

static int remove_models(void **state)
{
    (void)state;
    unlink(models[2].path);
    unlink(models[3].path);
    return 0;
}

/* Token ids below 512: valid in every vocabulary here. */
static const int prompt[] = {1, 403, 407, 261, 378, 383, 286, 261, 376, 400, 428, 300, 290, 311, 450, 266, 305, 333};
#define N_PROMPT ((int)(sizeof(prompt) / sizeof(prompt[0])))

/* One compute thread, except where sequences share batches (the machine
 * running the tests is shared: every thread meeting costs there). */
static eng_ctx *context(eng_model *m, int n_seq, int batch, eng_kv_type kv)
{
    char err[512];
    eng_ctx_params p = {.n_ctx = 128, .n_batch = batch, .n_threads = n_seq > 1 ? 2 : 1, .kv_type = kv, .n_seq = n_seq};
    eng_ctx *c = NULL;
    if (eng_ctx_new(&c, m, &p, err, sizeof(err)) != 0) fprintf(stderr, "%s\n", err);
    assert_non_null(c);
    return c;
}

static void features(eng_ctx *c, const int *ids, int n, eng_feature_params p, eng_features *out)
{
    char err[512];
    int rc = eng_prompt_features(c, ids, n, &p, out, err, sizeof(err));
    if (rc != 0) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

/* Greedy tokens of `seq`, starting from the logits `first` (copied). */
static void greedy(eng_ctx *c, int seq, const float *first, int n, int *out, float *logits_out)
{
    char err[512];
    int V = c->m->info.n_vocab;
    int tok = argmax(first, V);
    for (int i = 0; i < n; i++) {
        out[i] = tok;
        eng_batch_item it = {tok, seq, true};
        assert_int_equal(eng_decode_batch(c, &it, 1, err, sizeof(err)), 0);
        const float *l = eng_get_logits(c, 0);
        if (logits_out) memcpy(logits_out + (size_t)i * V, l, sizeof(float) * (size_t)V);
        tok = argmax(l, V);
    }
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float w = 0;
    for (size_t i = 0; i < n; i++) w = fmaxf(w, fabsf(a[i] - b[i]));
    return w;
}

static float max_abs(const float *a, size_t n)
{
    float w = 0;
    for (size_t i = 0; i < n; i++) w = fmaxf(w, fabsf(a[i]));
    return w;
}

/* The residual stream after every layer, from the plain float forward pass
 * (tests/support/engine_test.h): hidden[(t * (n_layer + 1) + l) * n_embd]. */
static float *reference_hidden(const eng_model *m, const int *ids, int n)
{
    float *hidden = malloc(sizeof(float) * (size_t)n * (m->info.n_layer + 1) * m->info.n_embd);
    assert_non_null(hidden);
    reference_forward(m, ids, n, NULL, hidden);
    return hidden;
}

/* ---- features against a separate full pass ---- */

/* NLL and entropy from all the logits of a plain eng_decode. */
static void expected_nll(eng_ctx *c, const int *ids, int n, int from, int to, eng_features *want)
{
    char err[512];
    int V = c->m->info.n_vocab;
    eng_ctx_truncate(c, 0);
    assert_int_equal(eng_decode(c, ids, n, true, err, sizeof(err)), 0);
    memset(want, 0, sizeof(*want));
    double sum = 0;
    for (int p = 1; p <= n; p++) {
        const float *l = eng_get_logits(c, p - 1);
        double top = l[argmax(l, V)], z = 0;
        for (int i = 0; i < V; i++) z += exp(l[i] - top);
        double lse = top + log(z);
        if (p == n) {
            double ent = 0;
            for (int i = 0; i < V; i++) ent -= exp(l[i] - lse) * (l[i] - lse);
            want->entropy_last = (float)ent;
        } else if (p >= from && (to == 0 || p < to)) {
            float nll = (float)(lse - l[ids[p]]);
            want->nll_max = want->n_scored == 0 || nll > want->nll_max ? nll : want->nll_max;
            want->n_scored++;
            sum += nll;
        }
    }
    want->nll_mean = want->n_scored ? (float)(sum / want->n_scored) : 0;
}

static void test_features_equal_full_pass(void **state)
{
    (void)state;
    static const struct { int from, to; } ranges[] = {{4, 0}, {0, 0}, {3, 9}, {N_PROMPT, 0}, {40, 0}};
    for (size_t mi = 0; mi < N_MODELS; mi++) {
        eng_model *m = load(models[mi].path);
        const eng_model_info *h = eng_model_get_info(m);
        int E = h->n_embd, NL = h->n_layer;
        eng_ctx *c = context(m, 1, 512, ENG_KV_F32), *plain = context(m, 1, 512, ENG_KV_F32);
        float *ref = reference_hidden(m, prompt, N_PROMPT);
        for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
            for (int pool = 1; pool <= NL; pool += NL - 1 > 1 ? NL - 1 : 1) { /* the first and the last */
                eng_features got, want;
                features(c, prompt, N_PROMPT, (eng_feature_params){.pool_layer = pool, .nll_from = ranges[r].from,
                                                                   .nll_to = ranges[r].to}, &got);
                expected_nll(plain, prompt, N_PROMPT, ranges[r].from, ranges[r].to, &want);
                assert_int_equal(got.n_tokens, N_PROMPT);
                assert_int_equal(got.layers_done, NL);
                assert_int_equal(got.n_scored, want.n_scored);
                assert_true(fabsf(got.nll_mean - want.nll_mean) <= 1e-4f * (1 + want.nll_mean));
                assert_true(fabsf(got.nll_max - want.nll_max) <= 1e-4f * (1 + want.nll_max));
                assert_true(fabsf(got.entropy_last - want.entropy_last) <= 1e-4f * (1 + want.entropy_last));
                assert_true(got.entropy_last > 0);
                /* the pooled hidden state: the mean of the reference's residual stream after `pool` layers */
                assert_int_equal(got.n_pooled, E);
                float *mean = calloc((size_t)E, sizeof(float)), scale = 0;
                for (int t = 0; t < N_PROMPT; t++) {
                    const float *x = ref + ((size_t)t * (NL + 1) + pool) * E;
                    for (int i = 0; i < E; i++) mean[i] += x[i] / N_PROMPT;
                    scale = fmaxf(scale, max_abs(x, (size_t)E));
                }
                float diff = max_abs_diff(got.pooled, mean, (size_t)E);
                if (diff > models[mi].tol * scale)
                    fprintf(stderr, "%s: pooled after %d layers off by %.3g (scale %.3g)\n", models[mi].path, pool, diff, scale);
                assert_true(diff <= models[mi].tol * scale);
                free(mean);
                eng_features_free(&got);
                assert_null(got.pooled);
            }
        }
        /* no pooling: nothing allocated */
        eng_features got;
        features(c, prompt, N_PROMPT, (eng_feature_params){.nll_from = 1}, &got);
        assert_null(got.pooled);
        assert_int_equal(got.n_pooled, 0);
        assert_int_equal(got.n_scored, N_PROMPT - 1);
        free(ref);
        eng_ctx_free(c);
        eng_ctx_free(plain);
        eng_model_free(m);
    }
}

/* ---- the pass stopped at layer L ---- */

static void test_stopped_pass_equals_full_pass_at_its_layer(void **state)
{
    (void)state;
    for (size_t mi = 0; mi < N_MODELS; mi++) {
        eng_model *m = load(models[mi].path);
        int E = m->info.n_embd, NL = m->info.n_layer;
        float *ref = reference_hidden(m, prompt, N_PROMPT);
        for (int L = 1; L < NL; L++) {
            eng_ctx *stopped = context(m, 1, 512, ENG_KV_F32), *full = context(m, 1, 512, ENG_KV_F32);
            eng_features s, f;
            features(stopped, prompt, N_PROMPT, (eng_feature_params){.stop_layer = L, .pool_layer = L, .nll_from = 1}, &s);
            features(full, prompt, N_PROMPT, (eng_feature_params){.pool_layer = L, .nll_from = 1}, &f);
            /* the same pooled state, bit for bit: the layers before L are the same computation */
            assert_int_equal(s.n_pooled, E);
            assert_memory_equal(s.pooled, f.pooled, sizeof(float) * (size_t)E);
            assert_int_equal(s.layers_done, L);
            assert_int_equal(s.n_tokens, N_PROMPT);
            assert_int_equal(s.n_scored, 0); /* no NLL and no entropy without the last layers */
            assert_true(s.nll_mean == 0 && s.nll_max == 0 && s.entropy_last == 0);
            /* each token's kept residual stream is the reference's after L layers */
            assert_true(eng_seq_stopped(stopped, 0));
            assert_int_equal(stopped->feat[0].n_resid, N_PROMPT);
            for (int t = 0; t < N_PROMPT; t++) {
                const float *r = ref + ((size_t)t * (NL + 1) + L) * E;
                float scale = max_abs(r, (size_t)E);
                float d = max_abs_diff(stopped->feat[0].resid + (size_t)t * E, r, (size_t)E);
                if (d > models[mi].tol * scale) fprintf(stderr, "%s L%d t%d: %.3g of %.3g\n", models[mi].path, L, t, d, scale);
                assert_true(d <= models[mi].tol * scale);
            }
            /* a stopped token has no logits */
            assert_null(eng_get_logits(stopped, N_PROMPT - 1));
            eng_features_free(&s);
            eng_features_free(&f);
            eng_ctx_free(stopped);
            eng_ctx_free(full);
        }
        free(ref);
        eng_model_free(m);
    }
}

/* ---- the cache a scoring pass leaves ---- */

#define N_GEN 12

/* Greedy generation after a full scoring pass is generation after a plain
 * prefill, logits bit for bit: the KV cache is the same. */
static void test_generation_after_scoring_is_unchanged(void **state)
{
    (void)state;
    char err[512];
    for (size_t mi = 0; mi < N_MODELS; mi++) {
        eng_model *m = load(models[mi].path);
        int V = m->info.n_vocab;
        eng_ctx *a = context(m, 1, 512, ENG_KV_F16), *b = context(m, 1, 512, ENG_KV_F16);
        eng_features f;
        features(a, prompt, N_PROMPT, (eng_feature_params){.pool_layer = 1, .nll_from = 5}, &f);
        eng_features_free(&f);
        assert_int_equal(eng_ctx_pos(a), N_PROMPT);
        assert_int_equal(eng_decode(b, prompt, N_PROMPT, false, err, sizeof(err)), 0);
        assert_memory_equal(eng_get_logits(a, N_PROMPT - 1), eng_get_logits(b, N_PROMPT - 1), sizeof(float) * (size_t)V);
        float *la = malloc(sizeof(float) * (size_t)N_GEN * V), *lb = malloc(sizeof(float) * (size_t)N_GEN * V);
        int ta[N_GEN], tb[N_GEN];
        greedy(a, 0, eng_get_logits(a, N_PROMPT - 1), N_GEN, ta, la);
        greedy(b, 0, eng_get_logits(b, N_PROMPT - 1), N_GEN, tb, lb);
        assert_memory_equal(ta, tb, sizeof(ta));
        assert_memory_equal(la, lb, sizeof(float) * (size_t)N_GEN * V);
        free(la);
        free(lb);
        eng_ctx_free(a);
        eng_ctx_free(b);
        eng_model_free(m);
    }
}

/* Finishing a layer-stopped prefill gives the cache of a fresh full
 * prefill: the last token's logits match and greedy generation is token for
 * token the same; also in batches smaller than the prompt, after a prefix
 * already in the cache, and after the stopped tokens were truncated. */
static void test_finished_stopped_prefill_equals_fresh_prefill(void **state)
{
    (void)state;
    char err[512];
    static const struct { int batch, prefix, keep; } cases[] = {
        {512, 0, N_PROMPT}, {5, 0, N_PROMPT}, {512, 6, N_PROMPT}, {4, 3, N_PROMPT}, {512, 0, 11}, {3, 2, 9},
    };
    for (size_t mi = 0; mi < N_MODELS; mi++) {
        eng_model *m = load(models[mi].path);
        int V = m->info.n_vocab, NL = m->info.n_layer;
        for (int L = 1; L < NL; L += NL - 2 > 1 ? NL - 2 : 1) { /* the first and the last that stop */
            for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                int pre = cases[k].prefix, keep = cases[k].keep;
                eng_ctx *a = context(m, 1, cases[k].batch, ENG_KV_F16), *b = context(m, 1, cases[k].batch, ENG_KV_F16);
                /* a: a plain prefix, the rest scored up to layer L, cut to `keep`, finished */
                if (pre) assert_int_equal(eng_decode(a, prompt, pre, false, err, sizeof(err)), 0);
                eng_feature_params p = {.stop_layer = L, .pool_layer = L};
                assert_int_equal(eng_seq_features_begin(a, 0, &p, err, sizeof(err)), 0);
                eng_batch_item items[N_PROMPT];
                for (int i = pre; i < N_PROMPT; i++) items[i - pre] = (eng_batch_item){prompt[i], 0, false};
                assert_int_equal(eng_decode_batch(a, items, N_PROMPT - pre, err, sizeof(err)), 0);
                eng_features f;
                assert_int_equal(eng_seq_features_end(a, 0, &f, err, sizeof(err)), 0);
                eng_features_free(&f);
                eng_ctx_truncate(a, keep);
                assert_int_equal(eng_seq_finish_layers(a, 0, err, sizeof(err)), 0);
                assert_false(eng_seq_stopped(a, 0));
                assert_int_equal(eng_ctx_pos(a), keep);
                /* b: a fresh prefill of the same tokens */
                assert_int_equal(eng_decode(b, prompt, keep, false, err, sizeof(err)), 0);
                const float *la = eng_get_logits(a, 0), *lb = eng_get_logits(b, keep - 1);
                float d = max_abs_diff(la, lb, (size_t)V), scale = max_abs(lb, (size_t)V);
                assert_true(d <= 1e-5f * (1 + scale));
                int ta[N_GEN], tb[N_GEN];
                greedy(a, 0, la, N_GEN, ta, NULL);
                greedy(b, 0, lb, N_GEN, tb, NULL);
                assert_memory_equal(ta, tb, sizeof(ta));
                eng_ctx_free(a);
                eng_ctx_free(b);
            }
        }
        eng_model_free(m);
    }
}

/* ---- scoring as one more job of a batched engine ---- */

/* The engine thread's loop: sequence 1 generates while sequence 0's prompt
 * arrives in slices of 4 over several calls, in the same batches. Features
 * equal those of one eng_prompt_features call; sequence 1's tokens equal
 * its run alone; sequence 0 then answers as if prefilled plainly. */
static void scored_beside_generation(const char *path, int stop)
{
    char err[512];
    eng_model *m = load(path);
    int V = m->info.n_vocab;
    eng_feature_params p = {.stop_layer = stop, .pool_layer = 1, .nll_from = 3};
    /* alone: the features, sequence 1's generation, sequence 0's answer */
    eng_ctx *alone = context(m, 1, 512, ENG_KV_F32);
    eng_features want, got;
    features(alone, prompt, N_PROMPT, p, &want);
    if (stop) assert_int_equal(eng_seq_finish_layers(alone, 0, err, sizeof(err)), 0);
    int answer_alone[N_GEN], answer[N_GEN], gen_alone[N_GEN], gen[N_GEN];
    greedy(alone, 0, eng_get_logits(alone, stop ? 0 : N_PROMPT - 1), N_GEN, answer_alone, NULL);
    eng_ctx_truncate(alone, 0);
    assert_int_equal(eng_decode(alone, prompt, 4, false, err, sizeof(err)), 0);
    greedy(alone, 0, eng_get_logits(alone, 3), N_GEN, gen_alone, NULL);

    eng_ctx *c = context(m, 2, 512, ENG_KV_F32);
    eng_batch_item first[4];
    for (int i = 0; i < 4; i++) first[i] = (eng_batch_item){prompt[i], 1, i == 3};
    assert_int_equal(eng_decode_batch(c, first, 4, err, sizeof(err)), 0);
    int next = argmax(eng_get_logits(c, 0), V), made = 0;
    assert_int_equal(eng_seq_features_begin(c, 0, &p, err, sizeof(err)), 0);
    for (int fed = 0; fed < N_PROMPT;) {
        eng_batch_item items[5];
        int n = 0;
        items[n++] = (eng_batch_item){next, 1, true}; /* the generating sequence first */
        gen[made++] = next;
        for (int k = 0; k < 4 && fed < N_PROMPT; k++, fed++)
            items[n++] = (eng_batch_item){prompt[fed], 0, !stop && fed == N_PROMPT - 1};
        assert_int_equal(eng_decode_batch(c, items, n, err, sizeof(err)), 0);
        next = argmax(eng_get_logits(c, 0), V);
    }
    assert_int_equal(eng_seq_features_end(c, 0, &got, err, sizeof(err)), 0);
    assert_int_equal(got.n_tokens, want.n_tokens);
    assert_int_equal(got.n_scored, want.n_scored);
    assert_true(fabsf(got.nll_mean - want.nll_mean) <= 1e-4f * (1 + want.nll_mean));
    assert_true(fabsf(got.nll_max - want.nll_max) <= 1e-4f * (1 + want.nll_max));
    assert_true(fabsf(got.entropy_last - want.entropy_last) <= 1e-4f * (1 + want.entropy_last));
    assert_true(max_abs_diff(got.pooled, want.pooled, (size_t)got.n_pooled) <= 1e-4f * (1 + max_abs(want.pooled, (size_t)got.n_pooled)));
    /* the answer continues from the scored cache (finished when stopped) */
    float *last = malloc(sizeof(float) * (size_t)V);
    if (stop) assert_int_equal(eng_seq_finish_layers(c, 0, err, sizeof(err)), 0);
    memcpy(last, eng_get_logits(c, stop ? 0 : 1), sizeof(float) * (size_t)V);
    greedy(c, 0, last, N_GEN, answer, NULL);
    assert_memory_equal(answer, answer_alone, sizeof(answer));
    while (made < N_GEN) {
        eng_batch_item it = {next, 1, true};
        gen[made++] = next;
        assert_int_equal(eng_decode_batch(c, &it, 1, err, sizeof(err)), 0);
        next = argmax(eng_get_logits(c, 0), V);
    }
    assert_memory_equal(gen, gen_alone, sizeof(gen));
    free(last);
    eng_features_free(&want);
    eng_features_free(&got);
    eng_ctx_free(alone);
    eng_ctx_free(c);
    eng_model_free(m);
}

static void test_scoring_beside_generation(void **state)
{
    (void)state;
    for (size_t mi = 0; mi < N_MODELS; mi++) {
        scored_beside_generation(models[mi].path, 0);
        scored_beside_generation(models[mi].path, 1);
    }
}

/* ---- errors ---- */

static void test_feature_errors(void **state)
{
    (void)state;
    char err[512];
    eng_model *m = load(SHARED "/models/stories260K.gguf"); /* 5 layers */
    eng_ctx *c = context(m, 2, 512, ENG_KV_F16);
    static const struct { int seq; eng_feature_params p; const char *says; } bad[] = {
        {2, {0}, "does not exist"},
        {-1, {0}, "does not exist"},
        {0, {.stop_layer = 6}, "stop_layer"},
        {0, {.stop_layer = -1}, "stop_layer"},
        {0, {.pool_layer = 6}, "pool_layer"},
        {0, {.stop_layer = 2, .pool_layer = 3}, "pool_layer"},
        {0, {.nll_from = -1}, "nll_from"},
        {0, {.nll_from = 5, .nll_to = 4}, "nll_from"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(eng_seq_features_begin(c, bad[i].seq, &bad[i].p, err, sizeof(err)), -1);
        assert_non_null(strstr(err, bad[i].says));
    }
    eng_features f;
    assert_int_equal(eng_seq_features_end(c, 0, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not collecting"));
    assert_int_equal(eng_seq_finish_layers(c, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no layer-stopped"));

    /* a stopped sequence: twice begun, logits asked, tokens after the end */
    eng_feature_params p = {.stop_layer = 2};
    assert_int_equal(eng_seq_features_begin(c, 0, &p, err, sizeof(err)), 0);
    assert_int_equal(eng_seq_features_begin(c, 0, &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already collecting"));
    eng_batch_item items[3] = {{1, 0, false}, {400, 0, true}, {300, 1, false}};
    assert_int_equal(eng_decode_batch(c, items, 3, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no logits"));
    assert_int_equal(eng_seq_pos(c, 0), 0); /* refused before anything ran */
    items[1].logits = false;
    assert_int_equal(eng_decode_batch(c, items, 3, err, sizeof(err)), 0);
    assert_int_equal(eng_seq_features_end(c, 0, &f, err, sizeof(err)), 0);
    assert_int_equal(f.n_tokens, 2);
    eng_features_free(&f);
    assert_true(eng_seq_stopped(c, 0));
    assert_false(eng_seq_stopped(c, 1));
    assert_false(eng_seq_stopped(c, 7));
    assert_int_equal(eng_decode_batch(c, items, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "eng_seq_finish_layers"));
    assert_int_equal(eng_seq_features_begin(c, 0, &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "layer-stopped"));
    /* truncating drops the stopped tokens: the sequence takes tokens again */
    eng_seq_truncate(c, 0, 0);
    assert_false(eng_seq_stopped(c, 0));
    assert_int_equal(eng_decode_batch(c, items, 1, err, sizeof(err)), 0);

    /* the convenience call: nothing to score, too long for the context */
    assert_int_equal(eng_prompt_features(c, prompt, 0, &p, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no tokens"));
    int *many = calloc(200, sizeof(int));
    assert_int_equal(eng_prompt_features(c, many, 200, &p, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "do not fit"));
    assert_null(f.pooled);
    assert_false(eng_seq_stopped(c, 0));
    free(many);
    /* and after a failure the sequence can be scored again */
    features(c, prompt, 4, p, &f);
    assert_int_equal(f.n_tokens, 4);
    eng_ctx_free(c); /* frees the stopped tokens still held */
    eng_model_free(m);
}

/* ---- head and tail of long prompts ---- */

static void test_keep_head_tail(void **state)
{
    (void)state;
    static const struct { int n, max, pos, want_n, want_pos; int want[8]; } cases[] = {
        {6, 8, 2, 6, 2, {0, 1, 2, 3, 4, 5}},      /* short enough: unchanged */
        {10, 4, 1, 4, 1, {0, 1, 8, 9}},           /* position in the head stays */
        {10, 4, 5, 4, 2, {0, 1, 8, 9}},           /* cut out: the tail's start */
        {10, 4, 9, 4, 3, {0, 1, 8, 9}},           /* in the tail: moves with it */
        {10, 5, 8, 5, 3, {0, 1, 7, 8, 9}},        /* odd max: the tail gets the extra token */
        {10, 0, 4, 10, 4, {0, 1, 2, 3, 4, 5, 6, 7}}, /* max 0: no limit */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int t[10];
        for (int k = 0; k < 10; k++) t[k] = k;
        int pos = cases[i].pos;
        int n = eng_keep_head_tail(t, cases[i].n, cases[i].max, &pos);
        assert_int_equal(n, cases[i].want_n);
        assert_int_equal(pos, cases[i].want_pos);
        for (int k = 0; k < n && k < 8; k++) assert_int_equal(t[k], cases[i].want[k]);
    }
    int t[4] = {5, 6, 7, 8};
    assert_int_equal(eng_keep_head_tail(t, 4, 2, NULL), 2);
    assert_int_equal(t[1], 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_equal_full_pass),
        cmocka_unit_test(test_stopped_pass_equals_full_pass_at_its_layer),
        cmocka_unit_test(test_generation_after_scoring_is_unchanged),
        cmocka_unit_test(test_finished_stopped_prefill_equals_fresh_prefill),
        cmocka_unit_test(test_scoring_beside_generation),
        cmocka_unit_test(test_feature_errors),
        cmocka_unit_test(test_keep_head_tail),
    };
    return cmocka_run_group_tests(tests, make_models, remove_models);
}
