/* forward.c: the Llama forward pass, one batch of tokens at a time.
 *
 * Readable top to bottom like llama2.c: embed, then per layer RMSNorm ->
 * Q/K/V -> RoPE -> causal attention over the KV cache -> output projection
 * -> residual, RMSNorm -> SwiGLU feed-forward -> residual; finally RMSNorm
 * and the output projection to logits. A prompt goes through in batches of
 * n_batch tokens, so every weight row is read once per batch and used for
 * all its tokens (matrix-matrix work), not once per token.
 *
 * Matrix products convert the activations to the weight type's
 * vec_dot_type first (Q8_0 blocks for Q4_0/Q8_0 weights, fp16 for F16), so
 * the inner loops are integer or fp16 dot products; rows of the output are
 * split across the context's compute threads.
 */
#include "context.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- matrix products ---- */

typedef struct {
    const float *in;
    int n_in, T;
    const eng_type_info *type;   /* the vec_dot_type */
    uint8_t *out;
    size_t out_row;
} convert_job;

static void convert_rows(void *p, int ith, int nth)
{
    convert_job *j = p;
    for (int t = ith; t < j->T; t += nth)
        j->type->from_float(j->in + (size_t)t * j->n_in, j->out + (size_t)t * j->out_row, j->n_in);
}

/* Up to three products sharing one input (Q, K, V; gate, up) run as one
 * job over their combined rows, so the threads meet once, not three times. */
#define MAX_PARTS 3

typedef struct {
    const eng_weight *w[MAX_PARTS];
    float *out[MAX_PARTS];
    int n_parts;
    const uint8_t *act;
    size_t act_row;
    int T;
} matmul_job;

#define ROW_TILE 16 /* also the rows_per_group of every interleaved layout */

/* Rows [r0, r1) of one weight for every token of the batch. */
static void matmul_range(const matmul_job *j, const eng_weight *w, float *out, int64_t r0, int64_t r1)
{
    if (w->type->gemm16) { /* interleaved rows: 16 at a time, every token at once */
        size_t group = 16 * w->row_bytes;
        for (int64_t r = r0; r < r1; r += 16)
            w->type->gemm16((int)w->n_in, (const uint8_t *)w->data + (size_t)(r / 16) * group, j->act, j->act_row,
                            j->T, out + r, (size_t)w->n_out);
        return;
    }
    eng_vec_dot_fn dot = w->type->vec_dot;
    eng_vec_dot4_fn dot4 = w->type->vec_dot4;
    eng_gemm4x4_fn gemm = w->type->gemm4x4;
    /* A tile of weight rows stays in cache while every token of the batch
     * uses it; four-token kernels unpack each weight block once per four
     * tokens, and the 4x4 kernel also loads each activation once per four
     * rows. */
    for (int64_t rt = r0; rt < r1; rt += ROW_TILE) {
        int64_t re = rt + ROW_TILE < r1 ? rt + ROW_TILE : r1;
        int t = 0;
        for (; dot4 && t + 4 <= j->T; t += 4) {
            const uint8_t *a = j->act + (size_t)t * j->act_row;
            float *o = out + (size_t)t * w->n_out;
            int64_t r = rt;
            for (; gemm && r + 4 <= re; r += 4) {
                float v[4][4];
                gemm((int)w->n_in, (const uint8_t *)w->data + (size_t)r * w->row_bytes, w->row_bytes, a, j->act_row, v);
                for (int k = 0; k < 4; k++) memcpy(o + (size_t)k * w->n_out + r, v[k], sizeof(v[k]));
            }
            for (; r < re; r++) {
                float v[4];
                dot4((int)w->n_in, (const uint8_t *)w->data + (size_t)r * w->row_bytes, a, j->act_row, v);
                o[r] = v[0];
                o[w->n_out + r] = v[1];
                o[2 * w->n_out + r] = v[2];
                o[3 * w->n_out + r] = v[3];
            }
        }
        for (; t < j->T; t++) {
            const uint8_t *a = j->act + (size_t)t * j->act_row;
            float *o = out + (size_t)t * w->n_out;
            for (int64_t r = rt; r < re; r++)
                o[r] = dot((int)w->n_in, (const uint8_t *)w->data + (size_t)r * w->row_bytes, a);
        }
    }
}

/* Threads take whole tiles of ROW_TILE rows (an interleaved layout's group
 * is one tile), counted across the job's parts. */
static int64_t tiles_of(const eng_weight *w) { return (w->n_out + ROW_TILE - 1) / ROW_TILE; }

static void matmul_rows(void *p, int ith, int nth)
{
    matmul_job *j = p;
    int64_t total = 0;
    for (int k = 0; k < j->n_parts; k++) total += tiles_of(j->w[k]);
    int64_t per = (total + nth - 1) / nth, t0 = per * ith, t1 = t0 + per < total ? t0 + per : total;
    /* this thread's share of the combined tiles, part by part */
    int64_t base = 0;
    for (int k = 0; k < j->n_parts && t0 < t1; k++) {
        int64_t n = tiles_of(j->w[k]);
        int64_t a = t0 > base ? t0 - base : 0, b = t1 - base < n ? t1 - base : n;
        if (a < b) {
            int64_t rows = j->w[k]->n_out;
            matmul_range(j, j->w[k], j->out[k], a * ROW_TILE, b * ROW_TILE < rows ? b * ROW_TILE : rows);
        }
        base += n;
    }
}

/* Convert T rows of `in` (n_in wide) for weights of type `wt`. */
static const uint8_t *convert(eng_ctx *c, const float *in, int n_in, int T, const eng_type_info *wt, size_t *row)
{
    const eng_type_info *vt = eng_type_info_of(wt->vec_dot_type);
    if (vt->id == ENG_TYPE_F32) {
        *row = (size_t)n_in * sizeof(float);
        return (const uint8_t *)in;
    }
    *row = eng_row_size(vt->id, n_in);
    convert_job j = {in, n_in, T, vt, c->act, *row};
    if (T <= 2) convert_rows(&j, 0, 1); /* a microsecond: not worth waking the threads */
    else eng_pool_run(c->pool, convert_rows, &j);
    return c->act;
}

/* out_k[T][n_out_k] = in[T][n_in] · W_kᵀ for weights that share their input.
 * Weights whose activations need another conversion go in separate runs. */
static void matmul_shared(eng_ctx *c, const float *in, int T, int n, const eng_weight *const *w, float *const *out)
{
    int done = 0;
    while (done < n) {
        matmul_job j = {.T = T};
        uint32_t vdt = w[done]->type->vec_dot_type;
        j.act = convert(c, in, (int)w[done]->n_in, T, w[done]->type, &j.act_row);
        while (done < n && w[done]->type->vec_dot_type == vdt) {
            j.w[j.n_parts] = w[done];
            j.out[j.n_parts++] = out[done];
            done++;
        }
        eng_pool_run(c->pool, matmul_rows, &j);
    }
}

/* out[T][n_out] = in[T][n_in] · Wᵀ */
static void matmul(eng_ctx *c, const eng_weight *w, const float *in, float *out, int T)
{
    matmul_shared(c, in, T, 1, &w, &out);
}

/* ---- elementwise pieces ---- */

static void rmsnorm(float *out, const float *x, const float *weight, int n, float eps)
{
    double ss = 0; /* in double, as llama.cpp does */
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

/* Rotate adjacent pairs (x[2i], x[2i+1]) of the first n_rot dims of each head. */
static void rope(float *x, int n_heads, int head_dim, int n_rot, int pos, float base)
{
    float theta_scale = powf(base, -2.0f / (float)n_rot);
    for (int h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim, theta = (float)pos;
        for (int i = 0; i < n_rot; i += 2) {
            float cs = cosf(theta), sn = sinf(theta);
            float a = v[i], b = v[i + 1];
            v[i] = a * cs - b * sn;
            v[i + 1] = a * sn + b * cs;
            theta *= theta_scale;
        }
    }
}

static void kv_put(const eng_ctx *c, uint8_t *base, const float *src, int n)
{
    if (c->kv_type == ENG_KV_F32) memcpy(base, src, (size_t)n * sizeof(float));
    else eng_type_info_of(ENG_TYPE_F16)->from_float(src, base, n);
}

/* ---- attention ---- */

typedef struct {
    eng_ctx *c;
    int layer, T;
} attn_job;

/* Where sequence `seq`'s cache of `layer` starts, in bytes. */
static size_t kv_offset(const eng_ctx *c, int layer, int seq, int kv_dim)
{
    return ((size_t)layer * c->n_seq + (size_t)seq) * c->n_ctx * kv_dim * c->kv_elem;
}

/* x[i] = x[i] rounded to the nearest fp16, through the F16 converter this
 * CPU runs (vectorized with F16C), a chunk at a time. */
static void round_to_fp16(float *x, int n)
{
    const eng_type_info *f16 = eng_type_info_of(ENG_TYPE_F16);
    uint16_t h[256];
    for (int i = 0; i < n; i += 256) {
        int k = n - i < 256 ? n - i : 256;
        f16->from_float(x + i, h, k);
        for (int j = 0; j < k; j++) x[i + j] = eng_fp16_table[h[j]];
    }
}

/* With an fp16 cache, attention rounds as llama.cpp does: the query to fp16
 * before its dot products with the keys, and the softmax weights to fp16
 * before they scale the values. Head dims of 4 (TinyLLama) make these
 * roundings visible in the logits, so an engine that skips them follows a
 * different greedy path at the first near-tie. */
static void attention_heads(void *p, int ith, int nth)
{
    attn_job *j = p;
    eng_ctx *c = j->c;
    const eng_model_info *h = &c->m->info;
    int hd = h->n_embd / h->n_head, kv_dim = hd * h->n_head_kv, group = h->n_head / h->n_head_kv;
    bool f16 = c->kv_type == ENG_KV_F16;
    float scale = 1.0f / sqrtf((float)hd);
    float *sc = c->scores + (size_t)ith * c->n_ctx;
    float q_f16[ENG_MAX_HEAD_DIM];
    for (int i = ith; i < j->T * h->n_head; i += nth) {
        int t = i / h->n_head, head = i % h->n_head, kvh = head / group, last = c->b_pos[t];
        size_t layer_off = kv_offset(c, j->layer, c->b_seq[t], kv_dim);
        const float *q = c->q + (size_t)t * h->n_embd + head * hd;
        if (f16) {
            memcpy(q_f16, q, sizeof(float) * (size_t)hd);
            round_to_fp16(q_f16, hd);
            q = q_f16;
        }
        float max = -INFINITY;
        for (int s = 0; s <= last; s++) {
            const uint8_t *k = c->k_cache + layer_off + ((size_t)s * kv_dim + kvh * hd) * c->kv_elem;
            float dot;
            if (f16) {
                dot = eng_dot_f32_f16(q, (const uint16_t *)k, hd);
            } else {
                dot = 0;
                for (int d = 0; d < hd; d++) dot += q[d] * ((const float *)k)[d];
            }
            sc[s] = dot * scale;
            if (sc[s] > max) max = sc[s];
        }
        double sum = 0;
        for (int s = 0; s <= last; s++) {
            sc[s] = expf(sc[s] - max);
            sum += sc[s];
        }
        float inv = (float)(1.0 / sum);
        for (int s = 0; s <= last; s++) sc[s] *= inv;
        if (f16) round_to_fp16(sc, last + 1);
        float *out = c->att + (size_t)t * h->n_embd + head * hd;
        memset(out, 0, sizeof(float) * (size_t)hd);
        for (int s = 0; s <= last; s++) {
            const uint8_t *v = c->v_cache + layer_off + ((size_t)s * kv_dim + kvh * hd) * c->kv_elem;
            if (f16) {
                eng_axpy_f16(sc[s], (const uint16_t *)v, out, hd);
            } else {
                for (int d = 0; d < hd; d++) out[d] += sc[s] * ((const float *)v)[d];
            }
        }
    }
}

/* ---- one batch ---- */

void eng_forward_output(eng_ctx *c, const int *rows, int n, float *out)
{
    const eng_model *m = c->m;
    int E = m->info.n_embd;
    for (int i = 0; i < n; i++) rmsnorm(c->xb + (size_t)i * E, c->x + (size_t)rows[i] * E, m->output_norm, E, m->info.rms_eps);
    if (n) matmul(c, &m->output, c->xb, out, n);
}

/* The T tokens in c->b_tok (sequence b_seq, position b_pos) through the
 * model; logits for those with b_want, in order, into `logits`. Tokens of
 * different sequences share every matrix product; only attention looks at
 * each token's own sequence. A token of a sequence scored only up to layer
 * L (b_depth) leaves the batch after it: such tokens come last, so the
 * tokens of each layer are a prefix of the batch. */
void eng_forward_batch(eng_ctx *c, int n_tok, int first_layer, float *logits)
{
    eng_model *m = c->m;
    const eng_model_info *h = &m->info;
    int E = h->n_embd, hd = E / h->n_head, kv_dim = hd * h->n_head_kv, F = h->n_ff, T = n_tok;

    if (first_layer == 0)
        for (int t = 0; t < T; t++)
            eng_weight_row(&m->token_embd, c->b_tok[t], c->x + (size_t)t * E);

    for (int l = first_layer; l < h->n_layer; l++) {
        while (T > 0 && c->b_depth[T - 1] <= l) T--; /* tokens stopped before this layer */
        if (T == 0) break;
        const eng_layer *L = &m->layers[l];
        for (int t = 0; t < T; t++) rmsnorm(c->xb + (size_t)t * E, c->x + (size_t)t * E, L->attn_norm, E, h->rms_eps);

        const eng_weight *qkv[] = {&L->wq, &L->wk, &L->wv};
        float *qkv_out[] = {c->q, c->k, c->v};
        matmul_shared(c, c->xb, T, 3, qkv, qkv_out);

        for (int t = 0; t < T; t++) {
            rope(c->q + (size_t)t * E, h->n_head, hd, h->n_rot, c->b_pos[t], h->rope_base);
            rope(c->k + (size_t)t * kv_dim, h->n_head_kv, hd, h->n_rot, c->b_pos[t], h->rope_base);
            size_t at = kv_offset(c, l, c->b_seq[t], kv_dim) + (size_t)c->b_pos[t] * kv_dim * c->kv_elem;
            kv_put(c, c->k_cache + at, c->k + (size_t)t * kv_dim, kv_dim);
            kv_put(c, c->v_cache + at, c->v + (size_t)t * kv_dim, kv_dim);
        }
        attn_job aj = {c, l, T};
        eng_pool_run(c->pool, attention_heads, &aj);

        matmul(c, &L->wo, c->att, c->xb, T);
        for (size_t i = 0; i < (size_t)T * E; i++) c->x[i] += c->xb[i];

        for (int t = 0; t < T; t++) rmsnorm(c->xb + (size_t)t * E, c->x + (size_t)t * E, L->ffn_norm, E, h->rms_eps);
        const eng_weight *gate_up[] = {&L->w_gate, &L->w_up};
        float *gate_up_out[] = {c->hb, c->hb2};
        matmul_shared(c, c->xb, T, 2, gate_up, gate_up_out);
        for (size_t i = 0; i < (size_t)T * F; i++) {
            float g = c->hb[i];
            c->hb[i] = g / (1.0f + expf(-g)) * c->hb2[i];
        }
        matmul(c, &L->w_down, c->hb, c->xb, T);
        for (size_t i = 0; i < (size_t)T * E; i++) c->x[i] += c->xb[i];

        if (c->b_features) eng_features_after_layer(c, l + 1, T); /* pooling, stopped tokens' residuals */
    }
    while (T > 0 && c->b_depth[T - 1] < h->n_layer) T--; /* the tokens that reached the end */

    int n_out = 0;
    for (int t = 0; t < T; t++)
        if (c->b_want[t]) c->b_rows[n_out++] = t;
    eng_forward_output(c, c->b_rows, n_out, logits);
    if (c->b_features) eng_features_score(c, T);
}

/* ---- context ---- */

int eng_ctx_new(eng_ctx **out, eng_model *m, const eng_ctx_params *p, char *err, size_t errlen)
{
    const eng_model_info *h = &m->info;
    if (m->vocab_only) {
        snprintf(err, errlen, "%s was loaded for its vocabulary only and cannot run; load it with eng_model_load",
                 h->name);
        return -1;
    }
    /* The first context lays the weights out for the kernels (a no-op after
     * that), so tools that only tokenize never pay for it. */
    if (eng_model_repack(m, err, errlen) != 0) return -1;
    eng_ctx *c = calloc(1, sizeof(*c));
    if (!c) goto nomem;
    c->m = m;
    c->n_ctx = p && p->n_ctx > 0 ? p->n_ctx : h->n_ctx_train;
    c->n_batch = p && p->n_batch > 0 ? p->n_batch : 512;
    if (c->n_batch > c->n_ctx) c->n_batch = c->n_ctx;
    c->kv_type = p ? p->kv_type : ENG_KV_F16;
    c->n_seq = p && p->n_seq > 0 ? p->n_seq : 1;
    c->kv_elem = c->kv_type == ENG_KV_F32 ? 4 : 2;
    int threads = p && p->n_threads > 0 ? p->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (eng_pool_new(&c->pool, threads > 0 ? threads : 1, err, errlen) != 0) {
        free(c);
        return -1;
    }
    int E = h->n_embd, kv_dim = E / h->n_head * h->n_head_kv, F = h->n_ff, B = c->n_batch;
    int widest = F > E ? F : E;
    size_t kv_bytes = (size_t)h->n_layer * c->n_seq * c->n_ctx * kv_dim * c->kv_elem;
    c->seq_pos = calloc((size_t)c->n_seq, sizeof(int));
    c->b_seq = malloc(sizeof(int) * (size_t)B);
    c->b_pos = malloc(sizeof(int) * (size_t)B);
    c->b_tok = malloc(sizeof(int) * (size_t)B);
    c->b_want = malloc(sizeof(bool) * (size_t)B);
    c->b_depth = malloc(sizeof(int) * (size_t)B);
    c->b_rows = malloc(sizeof(int) * (size_t)B);
    c->feat = calloc((size_t)c->n_seq, sizeof(eng_seq_feat));
    c->k_cache = malloc(kv_bytes);
    c->v_cache = malloc(kv_bytes);
    c->x = malloc(sizeof(float) * (size_t)B * E);
    c->xb = malloc(sizeof(float) * (size_t)B * E);
    c->q = malloc(sizeof(float) * (size_t)B * E);
    c->k = malloc(sizeof(float) * (size_t)B * kv_dim);
    c->v = malloc(sizeof(float) * (size_t)B * kv_dim);
    c->att = malloc(sizeof(float) * (size_t)B * E);
    c->hb = malloc(sizeof(float) * (size_t)B * F);
    c->hb2 = malloc(sizeof(float) * (size_t)B * F);
    c->act_row = (size_t)widest * 4; /* no converted row is wider than its floats */
    c->act = malloc(c->act_row * (size_t)B);
    c->scores = malloc(sizeof(float) * (size_t)eng_pool_size(c->pool) * c->n_ctx);
    if (!c->k_cache || !c->v_cache || !c->x || !c->xb || !c->q || !c->k || !c->v || !c->att || !c->hb ||
        !c->hb2 || !c->act || !c->scores || !c->seq_pos || !c->b_seq || !c->b_pos || !c->b_tok || !c->b_want ||
        !c->b_depth || !c->b_rows || !c->feat) {
        eng_ctx_free(c);
        goto nomem;
    }
    *out = c;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory for the context (try a smaller --ctx-size or --batch-size)");
    return -1;
}

void eng_ctx_free(eng_ctx *c)
{
    if (!c) return;
    eng_pool_free(c->pool);
    free(c->k_cache);
    free(c->v_cache);
    free(c->x);
    free(c->xb);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->hb);
    free(c->hb2);
    free(c->act);
    free(c->scores);
    free(c->logits);
    free(c->seq_pos);
    free(c->b_seq);
    free(c->b_pos);
    free(c->b_tok);
    free(c->b_want);
    free(c->b_depth);
    free(c->b_rows);
    eng_features_free_all(c);
    free(c);
}

int eng_ctx_pos(const eng_ctx *c) { return c->seq_pos[0]; }
void eng_ctx_truncate(eng_ctx *c, int pos) { eng_seq_truncate(c, 0, pos); }
int eng_ctx_n_seq(const eng_ctx *c) { return c->n_seq; }
int eng_seq_pos(const eng_ctx *c, int seq) { return seq >= 0 && seq < c->n_seq ? c->seq_pos[seq] : -1; }

void eng_seq_truncate(eng_ctx *c, int seq, int pos)
{
    if (seq >= 0 && seq < c->n_seq && pos >= 0 && pos < c->seq_pos[seq]) {
        c->seq_pos[seq] = pos;
        eng_features_truncate(c, seq, pos);
    }
}

/* Stable sort of batch entries [0, T) by depth, deepest first, so that the
 * tokens of each layer are a prefix (the deepest keep their order, and with
 * it the order of their logits). */
static void sort_by_depth(eng_ctx *c, int T)
{
    for (int i = 1; i < T; i++) {
        int tok = c->b_tok[i], seq = c->b_seq[i], pos = c->b_pos[i], depth = c->b_depth[i];
        bool want = c->b_want[i];
        int j = i;
        for (; j > 0 && c->b_depth[j - 1] < depth; j--) {
            c->b_tok[j] = c->b_tok[j - 1];
            c->b_seq[j] = c->b_seq[j - 1];
            c->b_pos[j] = c->b_pos[j - 1];
            c->b_depth[j] = c->b_depth[j - 1];
            c->b_want[j] = c->b_want[j - 1];
        }
        c->b_tok[j] = tok;
        c->b_seq[j] = seq;
        c->b_pos[j] = pos;
        c->b_depth[j] = depth;
        c->b_want[j] = want;
    }
}

int eng_reserve_logits(eng_ctx *c, int rows, char *err, size_t errlen)
{
    if (rows <= c->logits_cap) return 0;
    float *l = realloc(c->logits, sizeof(float) * (size_t)rows * c->m->info.n_vocab);
    if (!l) {
        snprintf(err, errlen, "out of memory for %d rows of logits", rows);
        return -1;
    }
    c->logits = l;
    c->logits_cap = rows;
    return 0;
}

int eng_decode_batch(eng_ctx *c, const eng_batch_item *items, int n, char *err, size_t errlen)
{
    int V = c->m->info.n_vocab, wanted = 0;
    if (n <= 0) {
        snprintf(err, errlen, "nothing to decode");
        return -1;
    }
    int *added = calloc((size_t)c->n_seq, sizeof(int));
    if (!added) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const eng_batch_item *it = &items[i];
        if (it->token < 0 || it->token >= V) {
            snprintf(err, errlen, "token id %d is outside the vocabulary (0..%d)", it->token, V - 1);
            rc = -1;
        } else if (it->seq < 0 || it->seq >= c->n_seq) {
            snprintf(err, errlen, "sequence %d does not exist (the context has %d)", it->seq, c->n_seq);
            rc = -1;
        } else if (c->seq_pos[it->seq] + ++added[it->seq] > c->n_ctx) {
            int more = 0;
            for (int j = i; j < n; j++) more += items[j].seq == it->seq;
            snprintf(err, errlen, "%d tokens do not fit: %d of the context's %d positions are used",
                     added[it->seq] - 1 + more, c->seq_pos[it->seq], c->n_ctx);
            rc = -1;
        }
        wanted += it->logits;
    }
    free(added);
    if (rc != 0) return -1;
    if (eng_reserve_logits(c, wanted, err, errlen) != 0 || eng_features_admit(c, items, n, err, errlen) != 0) return -1;
    c->n_logit_rows = wanted;
    c->logits_first = 0;
    int row = 0;
    for (int done = 0; done < n;) {
        int T = n - done < c->n_batch ? n - done : c->n_batch, rows = 0;
        bool stopped = false;
        c->b_features = false;
        for (int t = 0; t < T; t++) {
            const eng_batch_item *it = &items[done + t];
            eng_seq_feat *f = &c->feat[it->seq];
            c->b_tok[t] = it->token;
            c->b_seq[t] = it->seq;
            c->b_pos[t] = c->seq_pos[it->seq]++;
            c->b_want[t] = it->logits;
            c->b_depth[t] = eng_features_depth(c, it->seq);
            stopped |= c->b_depth[t] < c->m->info.n_layer;
            c->b_features |= f->collecting;
            f->n_tokens += f->collecting;
            rows += it->logits;
        }
        if (stopped) sort_by_depth(c, T);
        eng_forward_batch(c, T, 0, c->logits + (size_t)row * V);
        row += rows;
        done += T;
    }
    return 0;
}

int eng_decode(eng_ctx *c, const int *tokens, int n, bool all_logits, char *err, size_t errlen)
{
    eng_batch_item *items = malloc(sizeof(eng_batch_item) * (size_t)(n > 0 ? n : 1));
    if (!items) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) items[i] = (eng_batch_item){tokens[i], 0, all_logits || i == n - 1};
    int rc = eng_decode_batch(c, items, n, err, errlen);
    free(items);
    if (rc == 0 && !all_logits) c->logits_first = n - 1; /* its one row is token n-1's */
    return rc;
}

const float *eng_get_logits(const eng_ctx *c, int i)
{
    int r = i - c->logits_first;
    if (r < 0 || r >= c->n_logit_rows) return NULL;
    return c->logits + (size_t)r * c->m->info.n_vocab;
}
