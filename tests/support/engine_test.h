/* engine_test.h: what the engine's unit tests share (test_engine, test_features).
 *
 * Loading a model, argmax, and a plain float forward pass: test_engine holds
 * the engine's logits against that pass and test_features its residual
 * stream, layer by layer, so both need the same independent one: token by
 * token, weights read back row by row (eng_weight_row), float activations
 * and double sums, none of the engine's kernels, batching or cache layout.
 * Static functions in a header because they need the engine's internal
 * model.h, which testlib (linked by every test) does not.
 */
#ifndef JUNCTION_ENGINE_TEST_H
#define JUNCTION_ENGINE_TEST_H

#include "localengine.h"
#include "model.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* The model at `path`; the test fails (with the reason) when it does not load. */
static inline eng_model *load(const char *path)
{
    char err[512];
    eng_model *m = NULL;
    if (eng_model_load(&m, path, err, sizeof(err)) != 0) fprintf(stderr, "%s\n", err);
    assert_non_null(m);
    return m;
}

static inline int argmax(const float *l, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

/* ---- a plain float forward pass ---- */

static inline void ref_matvec(const eng_weight *w, const float *x, float *out)
{
    float *row = malloc(sizeof(float) * (size_t)w->n_in);
    for (int64_t r = 0; r < w->n_out; r++) {
        eng_weight_row(w, r, row);
        double s = 0;
        for (int64_t i = 0; i < w->n_in; i++) s += (double)row[i] * x[i];
        out[r] = (float)s;
    }
    free(row);
}

static inline void ref_rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double sc = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) o[i] = (float)(x[i] * sc * w[i]);
}

static inline void ref_rope(float *v, int heads, int hd, int rot, int pos, float base)
{
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < rot; i += 2) {
            double th = pos * pow(base, -(double)i / rot), a = v[h * hd + i], b = v[h * hd + i + 1];
            v[h * hd + i] = (float)(a * cos(th) - b * sin(th));
            v[h * hd + i + 1] = (float)(a * sin(th) + b * cos(th));
        }
}

/* The tokens `ids` through the model: when `logits` is not NULL, token t's
 * logits into logits[t * n_vocab]; when `hidden` is not NULL, token t's
 * residual stream after l layers into hidden[(t * (n_layer + 1) + l) * n_embd]. */
static inline void reference_forward(const eng_model *m, const int *ids, int n, float *logits, float *hidden)
{
    const eng_model_info *h = &m->info;
    int E = h->n_embd, hd = E / h->n_head, KV = hd * h->n_head_kv, F = h->n_ff, V = h->n_vocab, NL = h->n_layer;
    float *kc = calloc((size_t)NL * n * KV, sizeof(float)), *vc = calloc((size_t)NL * n * KV, sizeof(float));
    float *x = malloc(4 * (size_t)E), *xb = malloc(4 * (size_t)E), *q = malloc(4 * (size_t)E), *att = malloc(4 * (size_t)E);
    float *k = malloc(4 * (size_t)KV), *v = malloc(4 * (size_t)KV), *g = malloc(4 * (size_t)F), *u = malloc(4 * (size_t)F);
    double *w = malloc(sizeof(double) * (size_t)n);
    for (int t = 0; t < n; t++) {
        eng_weight_row(&m->token_embd, ids[t], x);
        if (hidden) memcpy(hidden + (size_t)t * (NL + 1) * E, x, 4 * (size_t)E);
        for (int l = 0; l < NL; l++) {
            const eng_layer *L = &m->layers[l];
            ref_rmsnorm(xb, x, L->attn_norm, E, h->rms_eps);
            ref_matvec(&L->wq, xb, q);
            ref_matvec(&L->wk, xb, k);
            ref_matvec(&L->wv, xb, v);
            ref_rope(q, h->n_head, hd, h->n_rot, t, h->rope_base);
            ref_rope(k, h->n_head_kv, hd, h->n_rot, t, h->rope_base);
            memcpy(kc + ((size_t)l * n + t) * KV, k, 4 * (size_t)KV);
            memcpy(vc + ((size_t)l * n + t) * KV, v, 4 * (size_t)KV);
            for (int head = 0; head < h->n_head; head++) {
                int kvh = head / (h->n_head / h->n_head_kv);
                double top = -1e300, sum = 0;
                for (int s = 0; s <= t; s++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += (double)q[head * hd + i] * kc[((size_t)l * n + s) * KV + kvh * hd + i];
                    w[s] = d / sqrt(hd);
                    top = w[s] > top ? w[s] : top;
                }
                for (int s = 0; s <= t; s++) sum += (w[s] = exp(w[s] - top));
                for (int i = 0; i < hd; i++) {
                    double acc = 0;
                    for (int s = 0; s <= t; s++) acc += w[s] / sum * vc[((size_t)l * n + s) * KV + kvh * hd + i];
                    att[head * hd + i] = (float)acc;
                }
            }
            ref_matvec(&L->wo, att, xb);
            for (int i = 0; i < E; i++) x[i] += xb[i];
            ref_rmsnorm(xb, x, L->ffn_norm, E, h->rms_eps);
            ref_matvec(&L->w_gate, xb, g);
            ref_matvec(&L->w_up, xb, u);
            for (int i = 0; i < F; i++) g[i] = (float)(g[i] / (1 + exp(-g[i])) * u[i]);
            ref_matvec(&L->w_down, g, xb);
            for (int i = 0; i < E; i++) x[i] += xb[i];
            if (hidden) memcpy(hidden + ((size_t)t * (NL + 1) + l + 1) * E, x, 4 * (size_t)E);
        }
        if (logits) {
            ref_rmsnorm(xb, x, m->output_norm, E, h->rms_eps);
            ref_matvec(&m->output, xb, logits + (size_t)t * V);
        }
    }
    free(kc); free(vc); free(x); free(xb); free(q); free(att); free(k); free(v); free(g); free(u); free(w);
}

#endif
