/* features.c: what the classifier reads from the local model's pass over a
 * prompt, and the layer-stopped prefill.
 *
 * Why it works this way: the forward pass that scores a prompt is the
 * prefill a local answer needs anyway, so features are collected beside
 * ordinary eng_decode_batch calls (per sequence, summed across calls, as a
 * prompt arrives in slices mixed with other sequences' tokens), never in a
 * pass of their own. The NLL needs the output matrix for every scored
 * position, so only the positions that predict a scored token (and each
 * call's last one, whose row gives the final entropy) get logits, a few
 * rows at a time. When the heads read only layer L, the tokens leave the
 * batch after layer L and their residual stream is kept, so that a local
 * route finishes them through the remaining layers instead of prefilling
 * again.
 */
#include "context.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static eng_seq_feat *feat_of(const eng_ctx *c, int seq)
{
    return seq >= 0 && seq < c->n_seq ? &c->feat[seq] : NULL;
}

static int feature_rows(const eng_ctx *c)
{
    return c->n_batch < ENG_FEATURE_ROWS ? c->n_batch : ENG_FEATURE_ROWS;
}

static void end_collection(eng_seq_feat *f)
{
    free(f->pool_sum);
    free(f->last_row);
    f->pool_sum = NULL;
    f->last_row = NULL;
    f->collecting = false;
}

static void drop_stopped(eng_seq_feat *f)
{
    free(f->resid);
    f->resid = NULL;
    f->n_resid = f->cap_resid = 0;
}

int eng_features_depth(const eng_ctx *c, int seq)
{
    return c->feat[seq].collecting ? c->feat[seq].p.stop_layer : c->m->info.n_layer;
}

int eng_seq_features_begin(eng_ctx *c, int seq, const eng_feature_params *p, char *err, size_t errlen)
{
    const eng_model_info *h = &c->m->info;
    eng_seq_feat *f = feat_of(c, seq);
    if (!f) {
        snprintf(err, errlen, "sequence %d does not exist (the context has %d)", seq, c->n_seq);
        return -1;
    }
    int stop = p->stop_layer > 0 ? p->stop_layer : h->n_layer;
    const struct {
        bool bad;
        const char *why;
    } checks[] = {
        {f->collecting, "it is already collecting features; call eng_seq_features_end first"},
        {f->n_resid > 0, "it holds a layer-stopped prefill; finish it (eng_seq_finish_layers) or truncate it first"},
        {p->stop_layer < 0 || p->stop_layer > h->n_layer, "stop_layer must be 0 (all layers) or 1 to the layer count"},
        {p->pool_layer < 0 || p->pool_layer > stop,
         "pool_layer must be 0 (no pooling) or 1 to the layer count, and not above stop_layer"},
        {p->nll_from < 0 || p->nll_to < 0 || (p->nll_to > 0 && p->nll_to < p->nll_from),
         "nll_from and nll_to must be positions with nll_from <= nll_to (nll_to 0: to the end)"},
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (checks[i].bad) {
            snprintf(err, errlen, "cannot collect features for sequence %d of a %d-layer model: %s", seq, h->n_layer,
                     checks[i].why);
            return -1;
        }
    }
    bool stopped = stop < h->n_layer;
    if (p->pool_layer) f->pool_sum = calloc((size_t)h->n_embd, sizeof(double));
    if (!stopped) f->last_row = malloc(sizeof(float) * (size_t)h->n_vocab);
    if (!stopped && !c->feat_logits) c->feat_logits = malloc(sizeof(float) * (size_t)feature_rows(c) * h->n_vocab);
    if ((p->pool_layer && !f->pool_sum) || (!stopped && (!f->last_row || !c->feat_logits))) {
        end_collection(f);
        snprintf(err, errlen, "out of memory for the features of sequence %d", seq);
        return -1;
    }
    f->p = *p;
    f->p.stop_layer = stop;
    f->n_tokens = f->n_scored = f->n_pooled_tokens = 0;
    f->nll_sum = 0;
    f->nll_max = 0;
    f->last_pos = -1;
    f->stop_from = c->seq_pos[seq];
    f->collecting = true;
    return 0;
}

int eng_features_admit(eng_ctx *c, const eng_batch_item *items, int n, char *err, size_t errlen)
{
    int L = c->m->info.n_layer, E = c->m->info.n_embd;
    for (int i = 0; i < n; i++) {
        const eng_seq_feat *f = &c->feat[items[i].seq];
        if (!f->collecting && f->n_resid > 0) {
            snprintf(err, errlen, "sequence %d holds a layer-stopped prefill: call eng_seq_finish_layers (to answer "
                                  "from it) or eng_seq_truncate (to drop it) before adding tokens", items[i].seq);
            return -1;
        }
        if (f->collecting && f->p.stop_layer < L && items[i].logits) {
            snprintf(err, errlen, "sequence %d is scored only up to layer %d, so its tokens have no logits; "
                                  "ask for none (or finish the layers first)", items[i].seq, f->p.stop_layer);
            return -1;
        }
    }
    /* room for the residual stream of every stopped token of this call */
    for (int s = 0; s < c->n_seq; s++) {
        eng_seq_feat *f = &c->feat[s];
        if (!f->collecting || f->p.stop_layer == L) continue;
        int more = 0;
        for (int i = 0; i < n; i++) more += items[i].seq == s;
        if (f->n_resid + more <= f->cap_resid) continue;
        float *r = realloc(f->resid, sizeof(float) * (size_t)(f->n_resid + more) * E);
        if (!r) {
            snprintf(err, errlen, "out of memory for the hidden states of sequence %d's stopped prefill", s);
            return -1;
        }
        f->resid = r;
        f->cap_resid = f->n_resid + more;
    }
    return 0;
}

void eng_features_after_layer(eng_ctx *c, int done, int T)
{
    int E = c->m->info.n_embd;
    for (int t = 0; t < T; t++) {
        eng_seq_feat *f = &c->feat[c->b_seq[t]];
        if (!f->collecting) continue;
        const float *x = c->x + (size_t)t * E;
        if (f->p.pool_layer == done) {
            for (int i = 0; i < E; i++) f->pool_sum[i] += x[i];
            f->n_pooled_tokens++;
        }
        if (c->b_depth[t] == done && done < c->m->info.n_layer) { /* the token stops here: keep it to finish later */
            int at = c->b_pos[t] - f->stop_from;
            memcpy(f->resid + (size_t)at * E, x, sizeof(float) * (size_t)E);
            if (at + 1 > f->n_resid) f->n_resid = at + 1;
        }
    }
}

/* Does the token at position `pos` count in the NLL? */
static bool scored(const eng_seq_feat *f, int pos)
{
    return pos >= 1 && pos >= f->p.nll_from && (f->p.nll_to == 0 || pos < f->p.nll_to);
}

/* Batch token t needs its logits: it predicts a scored token, or it is its
 * sequence's last so far (the entropy at the end). */
static bool needs_row(const eng_ctx *c, int t)
{
    const eng_seq_feat *f = &c->feat[c->b_seq[t]];
    return f->collecting && (scored(f, c->b_pos[t] + 1) || c->b_pos[t] + 1 == c->seq_pos[c->b_seq[t]]);
}

static float log_sum_exp(const float *l, int n)
{
    float max = l[0];
    for (int i = 1; i < n; i++) max = l[i] > max ? l[i] : max;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)(l[i] - max));
    return max + (float)log(sum);
}

void eng_features_score(eng_ctx *c, int T)
{
    int V = c->m->info.n_vocab, rows[ENG_FEATURE_ROWS], n_rows = 0, next = 0;
    for (int t = 0; t < T; t++) {
        eng_seq_feat *f = &c->feat[c->b_seq[t]];
        int pos = c->b_pos[t];
        if (!f->collecting) continue;
        if (scored(f, pos) && f->last_pos == pos - 1) { /* -log p(this token | the ones before) */
            float nll = f->last_lse - f->last_row[c->b_tok[t]];
            if (f->n_scored == 0 || nll > f->nll_max) f->nll_max = nll;
            f->nll_sum += nll;
            f->n_scored++;
        }
        if (!needs_row(c, t)) continue;
        if (next == n_rows) { /* logits of the next few tokens that need them */
            n_rows = next = 0;
            for (int u = t; u < T && n_rows < feature_rows(c); u++)
                if (needs_row(c, u)) rows[n_rows++] = u;
            eng_forward_output(c, rows, n_rows, c->feat_logits);
        }
        const float *row = c->feat_logits + (size_t)next++ * V;
        memcpy(f->last_row, row, sizeof(float) * (size_t)V);
        f->last_lse = log_sum_exp(row, V);
        f->last_pos = pos;
    }
}

/* Entropy in nats of softmax(l), given its log-sum-exp. */
static float entropy(const float *l, float lse, int n)
{
    double h = 0;
    for (int i = 0; i < n; i++) {
        double p = exp((double)(l[i] - lse));
        h -= p * (double)(l[i] - lse);
    }
    return (float)h;
}

int eng_seq_features_end(eng_ctx *c, int seq, eng_features *out, char *err, size_t errlen)
{
    const eng_model_info *h = &c->m->info;
    memset(out, 0, sizeof(*out));
    eng_seq_feat *f = feat_of(c, seq);
    if (!f || !f->collecting) {
        snprintf(err, errlen, "sequence %d is not collecting features (call eng_seq_features_begin first)", seq);
        return -1;
    }
    out->n_tokens = f->n_tokens;
    out->n_scored = f->n_scored;
    out->layers_done = f->p.stop_layer;
    if (f->n_scored) {
        out->nll_mean = (float)(f->nll_sum / f->n_scored);
        out->nll_max = f->nll_max;
    }
    if (f->last_row && f->last_pos >= 0 && f->last_pos == c->seq_pos[seq] - 1)
        out->entropy_last = entropy(f->last_row, f->last_lse, h->n_vocab);
    int rc = 0;
    if (f->pool_sum && f->n_pooled_tokens > 0) {
        out->pooled = malloc(sizeof(float) * (size_t)h->n_embd);
        if (out->pooled) {
            for (int i = 0; i < h->n_embd; i++) out->pooled[i] = (float)(f->pool_sum[i] / f->n_pooled_tokens);
            out->n_pooled = h->n_embd;
        } else {
            snprintf(err, errlen, "out of memory for the pooled hidden state of sequence %d", seq);
            rc = -1;
        }
    }
    end_collection(f);
    if (f->n_resid == 0) drop_stopped(f);
    return rc;
}

void eng_features_free(eng_features *f)
{
    if (!f) return;
    free(f->pooled);
    f->pooled = NULL;
    f->n_pooled = 0;
}

bool eng_seq_stopped(const eng_ctx *c, int seq)
{
    const eng_seq_feat *f = feat_of(c, seq);
    return f && f->n_resid > 0;
}

int eng_seq_finish_layers(eng_ctx *c, int seq, char *err, size_t errlen)
{
    const eng_model_info *h = &c->m->info;
    eng_seq_feat *f = feat_of(c, seq);
    if (!f || f->n_resid == 0) {
        snprintf(err, errlen, "sequence %d holds no layer-stopped tokens to finish", seq);
        return -1;
    }
    if (eng_reserve_logits(c, 1, err, errlen) != 0) return -1;
    end_collection(f);
    int E = h->n_embd, n = f->n_resid;
    c->b_features = false;
    for (int done = 0; done < n;) {
        int T = n - done < c->n_batch ? n - done : c->n_batch;
        for (int t = 0; t < T; t++) {
            c->b_tok[t] = 0; /* not read: the pass starts from the kept residual stream */
            c->b_seq[t] = seq;
            c->b_pos[t] = f->stop_from + done + t;
            c->b_depth[t] = h->n_layer;
            c->b_want[t] = done + t == n - 1;
        }
        memcpy(c->x, f->resid + (size_t)done * E, sizeof(float) * (size_t)T * E);
        eng_forward_batch(c, T, f->p.stop_layer, c->logits);
        done += T;
    }
    c->n_logit_rows = 1;
    c->logits_first = 0;
    drop_stopped(f);
    return 0;
}

void eng_features_truncate(eng_ctx *c, int seq, int pos)
{
    eng_seq_feat *f = &c->feat[seq];
    if (f->last_pos >= pos) f->last_pos = -1;
    if (pos <= f->stop_from) {
        f->n_resid = 0;
        f->stop_from = pos;
    } else if (pos - f->stop_from < f->n_resid) {
        f->n_resid = pos - f->stop_from;
    }
    if (f->n_resid == 0 && !f->collecting) drop_stopped(f);
}

void eng_features_free_all(eng_ctx *c)
{
    for (int s = 0; c->feat && s < c->n_seq; s++) {
        end_collection(&c->feat[s]);
        drop_stopped(&c->feat[s]);
    }
    free(c->feat);
    free(c->feat_logits);
}

int eng_prompt_features(eng_ctx *c, const int *tokens, int n, const eng_feature_params *p, eng_features *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (n <= 0) {
        snprintf(err, errlen, "no tokens to score");
        return -1;
    }
    eng_seq_truncate(c, 0, 0);
    if (eng_seq_features_begin(c, 0, p, err, errlen) != 0) return -1;
    eng_batch_item *items = malloc(sizeof(eng_batch_item) * (size_t)n);
    bool stopped = c->feat[0].p.stop_layer < c->m->info.n_layer;
    for (int i = 0; items && i < n; i++) items[i] = (eng_batch_item){tokens[i], 0, !stopped && i == n - 1};
    int rc = items ? eng_decode_batch(c, items, n, err, errlen) : -1;
    if (!items) snprintf(err, errlen, "out of memory");
    free(items);
    if (rc != 0) {
        eng_features lost;
        char ignored[8];
        eng_seq_features_end(c, 0, &lost, ignored, sizeof(ignored));
        eng_features_free(&lost);
        eng_seq_truncate(c, 0, 0);
        return -1;
    }
    c->logits_first = stopped ? 0 : n - 1; /* as after eng_decode: the row is token n-1's */
    return eng_seq_features_end(c, 0, out, err, errlen);
}

int eng_keep_head_tail(int *tokens, int n, int max, int *pos)
{
    if (max <= 0 || n <= max) return n;
    int head = max / 2, tail = max - head, cut = n - head - tail;
    memmove(tokens + head, tokens + n - tail, sizeof(int) * (size_t)tail);
    if (pos && *pos >= head) *pos = *pos >= head + cut ? *pos - cut : head;
    return max;
}
