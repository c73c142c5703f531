/* repack.c: quantized weights re-laid out for the interleaved kernels (by
 * the model's first context), and those layouts' reference kernels.
 *
 * Why: a quantized row dotted with an activation row yields one integer sum
 * per 32 (or 16) weights, and each must be scaled on its own, so the
 * row-at-a-time kernels spend more time on bookkeeping than on products and
 * fall short of memory speed. With 16 rows interleaved block by block (their
 * 16 scales together, then their codes 4 bytes per row at a time), one
 * 512-bit dpbusd (or two 256-bit maddubs) advances 16 rows at once against 4
 * activation bytes broadcast to every lane: the 16 rows' sums come out in
 * one register and are scaled with one convert and one FMA per block, and
 * in a batch each weight block is unpacked once for every token.
 *
 * The K types keep their integer scales and mins exactly as llama.cpp
 * applies them; quant.h describes each layout.
 *
 * The layouts have the file's size or within 3% of it, so the engine
 * repacks into anonymous memory and hands each tensor's file pages back as
 * soon as it is done: resident memory stays about 1x the model, and the
 * reference kernels (JUNCTION_KERNELS=reference) keep the file layout.
 */
#include "model.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Every block of a matrix in the file's layout goes to its 16-row group's
 * interleaved block: put(g, r, blk) writes row r's share of it. */
typedef void (*put_row_fn)(void *g, int r, const void *blk);

static void repack_rows(put_row_fn put, const void *src, void *dst, int64_t n_rows, int64_t n_in, int block_elems,
                        size_t file_block_bytes, size_t x16_block_bytes)
{
    const uint8_t *from = src;
    uint8_t *to = dst;
    int64_t nb = n_in / block_elems;
    for (int64_t r0 = 0; r0 < n_rows; r0 += 16)
        for (int64_t b = 0; b < nb; b++, to += x16_block_bytes)
            for (int r = 0; r < 16; r++) put(to, r, from + (size_t)((r0 + r) * nb + b) * file_block_bytes);
}

/* ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: 32 weights per block ---- */

/* Where the fields sit in a file block and in an interleaved block. */
typedef struct {
    uint32_t file_type;
    bool has_m, has_qh, bits8;
} shape32;

static const shape32 Q4_0 = {ENG_TYPE_Q4_0, false, false, false}, Q4_1 = {ENG_TYPE_Q4_1, true, false, false},
                     Q5_0 = {ENG_TYPE_Q5_0, false, true, false}, Q5_1 = {ENG_TYPE_Q5_1, true, true, false},
                     Q8_0 = {ENG_TYPE_Q8_0, false, false, true};

static int code_words(const shape32 *s) { return s->bits8 ? 8 : 4; } /* 4-byte words of codes per row-block */
static size_t file_block(const shape32 *s) { return 2 + 2 * s->has_m + 4 * s->has_qh + 4 * code_words(s); }
static size_t x16_block(const shape32 *s) { return 16 * file_block(s); }

static void put32(const shape32 *s, uint8_t *g, int r, const uint8_t *blk)
{
    size_t fb = file_block(s), xb = x16_block(s);
    memcpy(g + 2 * r, blk, 2);                                  /* d */
    if (s->has_m) memcpy(g + 32 + 2 * r, blk + 2, 2);          /* m */
    if (s->has_qh) {
        uint32_t qh;
        memcpy(&qh, blk + 2 + 2 * s->has_m, 4);
        uint8_t *hb = g + 32 + 32 * s->has_m + 4 * r;
        for (int k = 0; k < 4; k++) {
            hb[k] = 0;
            for (int m = 0; m < 4; m++)
                for (int p = 0; p < 2; p++) hb[k] |= (uint8_t)(((qh >> (16 * p + 4 * m + k)) & 1) << (2 * m + p));
        }
    }
    int words = code_words(s);
    for (int m = 0; m < words; m++) memcpy(g + xb - 64 * words + 64 * m + 4 * r, blk + fb - 4 * words + 4 * m, 4);
}

/* Row r's block b back in the file's layout. */
static void unpack32(const shape32 *s, const uint8_t *g, int r, uint8_t *blk)
{
    size_t fb = file_block(s), xb = x16_block(s);
    memcpy(blk, g + 2 * r, 2);
    if (s->has_m) memcpy(blk + 2, g + 32 + 2 * r, 2);
    if (s->has_qh) {
        const uint8_t *hb = g + 32 + 32 * s->has_m + 4 * r;
        uint32_t qh = 0;
        for (int k = 0; k < 4; k++)
            for (int m = 0; m < 4; m++)
                for (int p = 0; p < 2; p++) qh |= (uint32_t)((hb[k] >> (2 * m + p)) & 1) << (16 * p + 4 * m + k);
        memcpy(blk + 2 + 2 * s->has_m, &qh, 4);
    }
    int words = code_words(s);
    for (int m = 0; m < words; m++) memcpy(blk + fb - 4 * words + 4 * m, g + xb - 64 * words + 64 * m + 4 * r, 4);
}

static void get_row32(const shape32 *s, const uint8_t *w, int64_t r, int64_t n_in, float *dst)
{
    const eng_type_info *ft = eng_type_info_of(s->file_type);
    int64_t nb = n_in / 32;
    const uint8_t *g = w + (size_t)(r / 16) * nb * x16_block(s);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t blk[40];
        unpack32(s, g + (size_t)b * x16_block(s), (int)(r % 16), blk);
        ft->to_float(blk, dst + b * 32, 32);
    }
}

/* The file type's own reference dot product, block by block, on rebuilt
 * weight blocks and activations rebuilt as Q8_0 (offset types) or Q8_1. */
static void gemm16_ref32(const shape32 *s, int n, const uint8_t *w, const void *a, size_t a_stride, int T, float *out,
                         size_t out_stride)
{
    const eng_type_info *ft = eng_type_info_of(s->file_type);
    int nb = n / 32;
    for (int t = 0; t < T; t++) {
        const block_q8_0_x *y = (const block_q8_0_x *)((const uint8_t *)a + (size_t)t * a_stride);
        for (int r = 0; r < 16; r++) {
            float sum = 0;
            for (int b = 0; b < nb; b++) {
                uint8_t blk[40];
                unpack32(s, w + (size_t)b * x16_block(s), r, blk);
                block_q8_1 act = {.d = eng_fp32_to_fp16(y[b].d), .s = eng_fp32_to_fp16(y[b].s)};
                memcpy(act.qs, y[b].qs, 32);
                if (s->has_m) {
                    sum += ft->vec_dot_ref(32, blk, &act);
                } else {
                    block_q8_0 a0 = {.d = act.d};
                    memcpy(a0.qs, act.qs, 32);
                    sum += ft->vec_dot_ref(32, blk, &a0);
                }
            }
            out[(size_t)t * out_stride + r] = sum;
        }
    }
}

#define SHAPE32_FUNCS(t, S)                                                                                    \
    static void put_##t(void *g, int r, const void *blk) { put32(&S, g, r, blk); }                            \
    void eng_repack_##t##_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)                      \
    {                                                                                                          \
        repack_rows(put_##t, src, dst, n_rows, n_in, 32, file_block(&S), x16_block(&S));                      \
    }                                                                                                          \
    void eng_##t##_x16_get_row(const void *w, int64_t r, int64_t n_in, float *dst)                           \
    {                                                                                                          \
        get_row32(&S, w, r, n_in, dst);                                                                        \
    }                                                                                                          \
    void eng_gemm16_##t##_x16_ref(int n, const void *w, const void *a, size_t a_stride, int T, float *out,    \
                                  size_t out_stride)                                                           \
    {                                                                                                          \
        gemm16_ref32(&S, n, w, a, a_stride, T, out, out_stride);                                              \
    }
SHAPE32_FUNCS(q4_0, Q4_0)
SHAPE32_FUNCS(q4_1, Q4_1)
SHAPE32_FUNCS(q5_0, Q5_0)
SHAPE32_FUNCS(q5_1, Q5_1)
SHAPE32_FUNCS(q8_0, Q8_0)

static void quantize_q8_0_seed(int offset, const float *x, void *dst, int64_t n)
{
    const eng_type_info *q8 = eng_type_info_of(ENG_TYPE_Q8_0);
    block_q8_0_x *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        block_q8_0 b;
        q8->from_float(x + i * QK8_0, &b, QK8_0);
        int sum = 0;
        for (int j = 0; j < QK8_0; j++) sum += b.qs[j];
        y[i] = (block_q8_0_x){.d = eng_fp16_to_fp32(b.d), .seed = -offset * sum};
        memcpy(y[i].qs, b.qs, QK8_0);
    }
}

void eng_quantize_q8_0_neg8(const float *x, void *dst, int64_t n) { quantize_q8_0_seed(8, x, dst, n); }
void eng_quantize_q8_0_neg16(const float *x, void *dst, int64_t n) { quantize_q8_0_seed(16, x, dst, n); }
void eng_quantize_q8_0_neg128(const float *x, void *dst, int64_t n) { quantize_q8_0_seed(128, x, dst, n); }

void eng_quantize_q8_1_x(const float *x, void *dst, int64_t n)
{
    block_q8_0_x *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        block_q8_1 b;
        eng_quantize_q8_1_act(x + i * 32, &b, 32);
        y[i] = (block_q8_0_x){.d = eng_fp16_to_fp32(b.d), .s = eng_fp16_to_fp32(b.s)};
        memcpy(y[i].qs, b.qs, 32);
    }
}

/* ---- Q4_K and Q5_K: one layout, Q5_K's with its fifth bits after it ---- */

/* One row's block into the interleaved block `g` (and Q5_K's high bits into qh). */
static void q45_k_put_row(block_q4_k_x16 *g, uint8_t (*qh)[16][4], int r, uint16_t d, uint16_t dmin,
                          const uint8_t scales[12], const uint8_t qs[128], const uint8_t *high)
{
    int sc[8], mn[8];
    eng_q4_k_scales(scales, sc, mn);
    g->d[r] = d;
    g->dmin[r] = dmin;
    for (int j = 0; j < 8; j++) {
        g->sc[j][r] = (uint8_t)sc[j];
        g->mn[j / 2][r][j % 2] = (uint8_t)mn[j];
    }
    for (int c = 0; c < 4; c++)
        for (int m = 0; m < 8; m++) memcpy(g->qs[c][m][r], qs + 32 * c + 4 * m, 4);
    if (high)
        for (int m = 0; m < 8; m++) memcpy(qh[m][r], high + 4 * m, 4);
}

static void put_q4_k(void *g, int r, const void *b)
{
    const block_q4_k *blk = b;
    q45_k_put_row(g, NULL, r, blk->d, blk->dmin, blk->scales, blk->qs, NULL);
}

static void put_q5_k(void *g, int r, const void *b)
{
    const block_q5_k *blk = b;
    block_q5_k_x16 *x = g;
    q45_k_put_row(&x->q4, x->qh, r, blk->d, blk->dmin, blk->scales, blk->qs, blk->qh);
}

void eng_repack_q4_k_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)
{
    repack_rows(put_q4_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q4_k), sizeof(block_q4_k_x16));
}

void eng_repack_q5_k_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)
{
    repack_rows(put_q5_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q5_k), sizeof(block_q5_k_x16));
}

/* Code of weight e (0..255) of row r: its nibble, plus 16 where Q5_K's
 * fifth bit (bit e/32 of qh byte e%32) is set. */
static int q45_k_code(const block_q4_k_x16 *g, const uint8_t (*qh)[16][4], int r, int e)
{
    int j = e / 32, l = e % 32;
    uint8_t q = g->qs[j / 2][l / 4][r][l % 4];
    int code = j % 2 ? q >> 4 : q & 0x0f;
    return code + (qh && (qh[l / 4][r][l % 4] >> j & 1) ? 16 : 0);
}

/* The float operations of the K types' to_float (quant_k.c), so rows match it bit for bit. */
static void q45_k_get_row(const uint8_t *w, size_t block_bytes, bool q5, int64_t r, int64_t n_in, float *dst)
{
    int64_t nb = n_in / QK_K;
    int lane = (int)(r % 16);
    for (int64_t b = 0; b < nb; b++, dst += QK_K) {
        const block_q4_k_x16 *g = (const block_q4_k_x16 *)(w + (size_t)((r / 16) * nb + b) * block_bytes);
        const uint8_t (*qh)[16][4] = q5 ? ((const block_q5_k_x16 *)g)->qh : NULL;
        float d = eng_fp16_to_fp32(g->d[lane]), dmin = eng_fp16_to_fp32(g->dmin[lane]);
        for (int e = 0; e < QK_K; e++) {
            int j = e / 32;
            float dl = d * (float)g->sc[j][lane], ml = dmin * (float)g->mn[j / 2][lane][j % 2];
            dst[e] = dl * (float)q45_k_code(g, qh, lane, e) - ml;
        }
    }
}

void eng_q4_k_x16_get_row(const void *w, int64_t r, int64_t n_in, float *dst)
{
    q45_k_get_row(w, sizeof(block_q4_k_x16), false, r, n_in, dst);
}

void eng_q5_k_x16_get_row(const void *w, int64_t r, int64_t n_in, float *dst)
{
    q45_k_get_row(w, sizeof(block_q5_k_x16), true, r, n_in, dst);
}

void eng_quantize_q8_k_sums(const float *x, void *dst, int64_t n)
{
    block_q8_k_sums *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        block_q8_k b;
        eng_quantize_q8_k_act(x + i * QK_K, &b, QK_K);
        y[i].d = b.d;
        for (int j = 0; j < 8; j++) y[i].bsums32[j] = (int16_t)(b.bsums[2 * j] + b.bsums[2 * j + 1]);
        memcpy(y[i].qs, b.qs, QK_K);
    }
}

static void q45_k_gemm16_ref(const uint8_t *w, size_t block_bytes, bool q5, int n, const void *a, size_t a_stride,
                             int T, float *out, size_t out_stride)
{
    int nb = n / QK_K;
    for (int t = 0; t < T; t++) {
        const block_q8_k_sums *y = (const block_q8_k_sums *)((const uint8_t *)a + (size_t)t * a_stride);
        for (int r = 0; r < 16; r++) {
            float s = 0;
            for (int b = 0; b < nb; b++) {
                const block_q4_k_x16 *g = (const block_q4_k_x16 *)(w + (size_t)b * block_bytes);
                const uint8_t (*qh)[16][4] = q5 ? ((const block_q5_k_x16 *)g)->qh : NULL;
                int sum = 0, sum_min = 0;
                for (int j = 0; j < 8; j++) {
                    int sub = 0;
                    for (int e = 32 * j; e < 32 * j + 32; e++) sub += q45_k_code(g, qh, r, e) * y[b].qs[e];
                    sum += g->sc[j][r] * sub;
                    sum_min += g->mn[j / 2][r][j % 2] * y[b].bsums32[j];
                }
                s += eng_fp16_to_fp32(g->d[r]) * y[b].d * (float)sum - eng_fp16_to_fp32(g->dmin[r]) * y[b].d * (float)sum_min;
            }
            out[(size_t)t * out_stride + r] = s;
        }
    }
}

void eng_gemm16_q4_k_x16_ref(int n, const void *w, const void *a, size_t a_stride, int T, float *out, size_t out_stride)
{
    q45_k_gemm16_ref(w, sizeof(block_q4_k_x16), false, n, a, a_stride, T, out, out_stride);
}

void eng_gemm16_q5_k_x16_ref(int n, const void *w, const void *a, size_t a_stride, int T, float *out, size_t out_stride)
{
    q45_k_gemm16_ref(w, sizeof(block_q5_k_x16), true, n, a, a_stride, T, out, out_stride);
}

/* ---- Q6_K ---- */

static void put_q6_k(void *x, int r, const void *b)
{
    const block_q6_k *blk = b;
    block_q6_k_x16 *g = x;
    g->d[r] = blk->d;
    for (int j = 0; j < 16; j++) g->sc[j][r] = blk->scales[j];
    for (int h = 0; h < 2; h++) {
        for (int m = 0; m < 16; m++) memcpy(g->ql[h][m][r], blk->ql + 64 * h + 4 * m, 4);
        for (int m = 0; m < 8; m++) memcpy(g->qh[h][m][r], blk->qh + 32 * h + 4 * m, 4);
    }
}

void eng_repack_q6_k_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)
{
    repack_rows(put_q6_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q6_k), sizeof(block_q6_k_x16));
}

/* Row r back to a block_q6_k, for Q6_K's own routines. */
static void q6_k_x16_block(const block_q6_k_x16 *g, int r, block_q6_k *blk)
{
    blk->d = g->d[r];
    for (int j = 0; j < 16; j++) blk->scales[j] = g->sc[j][r];
    for (int h = 0; h < 2; h++) {
        for (int m = 0; m < 16; m++) memcpy(blk->ql + 64 * h + 4 * m, g->ql[h][m][r], 4);
        for (int m = 0; m < 8; m++) memcpy(blk->qh + 32 * h + 4 * m, g->qh[h][m][r], 4);
    }
}

void eng_q6_k_x16_get_row(const void *w, int64_t r, int64_t n_in, float *dst)
{
    const eng_type_info *q6 = eng_type_info_of(ENG_TYPE_Q6_K);
    int64_t nb = n_in / QK_K;
    const block_q6_k_x16 *g = (const block_q6_k_x16 *)w + (r / 16) * nb;
    for (int64_t b = 0; b < nb; b++) {
        block_q6_k blk;
        q6_k_x16_block(&g[b], (int)(r % 16), &blk);
        q6->to_float(&blk, dst + b * QK_K, QK_K);
    }
}

static void quantize_q8_k_seeds(int offset, const float *x, void *dst, int64_t n)
{
    block_q8_k_seeds *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        block_q8_k b;
        eng_quantize_q8_k_act(x + i * QK_K, &b, QK_K);
        y[i].d = b.d;
        for (int j = 0; j < 16; j++) y[i].seed[j] = -offset * b.bsums[j];
        memcpy(y[i].qs, b.qs, QK_K);
    }
}

void eng_quantize_q8_k_neg32(const float *x, void *dst, int64_t n) { quantize_q8_k_seeds(32, x, dst, n); }
void eng_quantize_q8_k_neg4(const float *x, void *dst, int64_t n) { quantize_q8_k_seeds(4, x, dst, n); }

/* Unsigned code (0..63) of weight e of a row's block, from the x16 layout. */
static int q6_k_x16_code(const void *blk, int r, int e)
{
    const block_q6_k_x16 *g = blk;
    int h = e / 128, k = (e % 128) / 32, l = e % 32;
    uint8_t ql = g->ql[h][(k % 2) * 8 + l / 4][r][l % 4], qh = g->qh[h][l / 4][r][l % 4];
    return (k < 2 ? ql & 0x0f : ql >> 4) | (((qh >> (2 * k)) & 3) << 4);
}

/* Unsigned code (0..7, the weight's code + 4) of weight e. */
static int q3_k_x16_code(const void *blk, int r, int e)
{
    const block_q3_k_x16 *g = blk;
    int h = e / 128, s = (e % 128) / 32, l = e % 32;
    int low = (g->qs[h][l / 4][r][l % 4] >> (2 * s)) & 3, high = (g->hm[l / 4][r][l % 4] >> (4 * h + s)) & 1;
    return low | high << 2;
}

/* Q6_K and Q3_K: per 16 weights a signed scale, codes stored with an offset. */
static void k16_gemm16_ref(int (*code)(const void *blk, int r, int e), size_t block_bytes, int n, const uint8_t *w,
                           const void *a, size_t a_stride, int T, float *out, size_t out_stride)
{
    int nb = n / QK_K;
    for (int t = 0; t < T; t++) {
        const block_q8_k_seeds *y = (const block_q8_k_seeds *)((const uint8_t *)a + (size_t)t * a_stride);
        for (int r = 0; r < 16; r++) {
            float s = 0;
            for (int b = 0; b < nb; b++) {
                const void *blk = w + (size_t)b * block_bytes;
                const uint16_t *d = blk;                                  /* both layouts start with d[16], */
                const int8_t (*sc)[16] = (const int8_t (*)[16])(d + 16);  /* then sc[16][16] */
                int sum = 0;
                for (int j = 0; j < 16; j++) {
                    int sub = y[b].seed[j];
                    for (int e = 16 * j; e < 16 * j + 16; e++) sub += code(blk, r, e) * y[b].qs[e];
                    sum += sc[j][r] * sub;
                }
                s += eng_fp16_to_fp32(d[r]) * y[b].d * (float)sum;
            }
            out[(size_t)t * out_stride + r] = s;
        }
    }
}

void eng_gemm16_q6_k_x16_ref(int n, const void *w, const void *a, size_t a_stride, int T, float *out, size_t out_stride)
{
    k16_gemm16_ref(q6_k_x16_code, sizeof(block_q6_k_x16), n, w, a, a_stride, T, out, out_stride);
}

/* ---- Q3_K ---- */

/* Q3_K's 16 six-bit scales, as quant_k.c decodes them, minus 32. */
static void q3_k_scales(const uint8_t s[12], int8_t out[16])
{
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

static void put_q3_k(void *x, int r, const void *b)
{
    const block_q3_k *blk = b;
    block_q3_k_x16 *g = x;
    int8_t sc[16];
    q3_k_scales(blk->scales, sc);
    g->d[r] = blk->d;
    for (int j = 0; j < 16; j++) g->sc[j][r] = sc[j];
    for (int m = 0; m < 8; m++) {
        for (int h = 0; h < 2; h++) memcpy(g->qs[h][m][r], blk->qs + 32 * h + 4 * m, 4);
        memcpy(g->hm[m][r], blk->hmask + 4 * m, 4);
    }
}

void eng_repack_q3_k_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)
{
    repack_rows(put_q3_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q3_k), sizeof(block_q3_k_x16));
}

/* The float operations of Q3_K's to_float (quant_k.c; its min term is 0). */
void eng_q3_k_x16_get_row(const void *w, int64_t r, int64_t n_in, float *dst)
{
    int64_t nb = n_in / QK_K;
    const block_q3_k_x16 *g = (const block_q3_k_x16 *)w + (r / 16) * nb;
    int lane = (int)(r % 16);
    for (int64_t b = 0; b < nb; b++, dst += QK_K) {
        float d = eng_fp16_to_fp32(g[b].d[lane]);
        for (int e = 0; e < QK_K; e++) {
            float dl = d * (float)g[b].sc[e / 16][lane];
            dst[e] = dl * (float)(q3_k_x16_code(&g[b], lane, e) - 4);
        }
    }
}

void eng_gemm16_q3_k_x16_ref(int n, const void *w, const void *a, size_t a_stride, int T, float *out, size_t out_stride)
{
    k16_gemm16_ref(q3_k_x16_code, sizeof(block_q3_k_x16), n, w, a, a_stride, T, out, out_stride);
}

/* ---- Q2_K ---- */

static void put_q2_k(void *x, int r, const void *b)
{
    const block_q2_k *blk = b;
    block_q2_k_x16 *g = x;
    g->d[r] = blk->d;
    g->dmin[r] = blk->dmin;
    for (int j = 0; j < 16; j++) g->sm[j / 2][r][j % 2] = blk->scales[j];
    for (int h = 0; h < 2; h++)
        for (int m = 0; m < 8; m++) memcpy(g->qs[h][m][r], blk->qs + 32 * h + 4 * m, 4);
}

void eng_repack_q2_k_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)
{
    repack_rows(put_q2_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q2_k), sizeof(block_q2_k_x16));
}

/* Code (0..3) of weight e of row r. */
static int q2_k_x16_code(const block_q2_k_x16 *g, int r, int e)
{
    int h = e / 128, s = (e % 128) / 32, l = e % 32;
    return (g->qs[h][l / 4][r][l % 4] >> (2 * s)) & 3;
}

/* The float operations of Q2_K's to_float (quant_k.c), so rows match it bit for bit. */
void eng_q2_k_x16_get_row(const void *w, int64_t r, int64_t n_in, float *dst)
{
    int64_t nb = n_in / QK_K;
    const block_q2_k_x16 *g = (const block_q2_k_x16 *)w + (r / 16) * nb;
    int lane = (int)(r % 16);
    for (int64_t b = 0; b < nb; b++, dst += QK_K) {
        float d = eng_fp16_to_fp32(g[b].d[lane]), dmin = eng_fp16_to_fp32(g[b].dmin[lane]);
        for (int e = 0; e < QK_K; e++) {
            uint8_t sm = g[b].sm[e / 32][lane][(e / 16) % 2];
            float dl = d * (float)(sm & 0xf), ml = dmin * (float)(sm >> 4);
            dst[e] = dl * (float)q2_k_x16_code(&g[b], lane, e) - ml;
        }
    }
}

void eng_gemm16_q2_k_x16_ref(int n, const void *w, const void *a, size_t a_stride, int T, float *out, size_t out_stride)
{
    const block_q2_k_x16 *g = w;
    int nb = n / QK_K;
    for (int t = 0; t < T; t++) {
        const block_q8_k *y = (const block_q8_k *)((const uint8_t *)a + (size_t)t * a_stride);
        for (int r = 0; r < 16; r++) {
            float s = 0;
            for (int b = 0; b < nb; b++) {
                int sum = 0, sum_min = 0;
                for (int j = 0; j < 16; j++) {
                    uint8_t sm = g[b].sm[j / 2][r][j % 2];
                    int sub = 0;
                    for (int e = 16 * j; e < 16 * j + 16; e++) sub += q2_k_x16_code(&g[b], r, e) * y[b].qs[e];
                    sum += (sm & 0xf) * sub;
                    sum_min += (sm >> 4) * y[b].bsums[j];
                }
                s += eng_fp16_to_fp32(g[b].d[r]) * y[b].d * (float)sum - eng_fp16_to_fp32(g[b].dmin[r]) * y[b].d * (float)sum_min;
            }
            out[(size_t)t * out_stride + r] = s;
        }
    }
}

/* The file's pages of [p, p+n) that lie wholly inside it go back to the
 * kernel (they are clean: it rereads them from the file if ever touched). */
static void release_file_pages(const void *p, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
    if (a < b) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* The i-th matrix the forward pass multiplies by (NULL past the last): the
 * output, then each layer's seven. */
static eng_weight *matmul_weight(eng_model *m, size_t i)
{
    if (i == 0) return &m->output;
    size_t l = (i - 1) / 7;
    if (l >= (size_t)m->info.n_layer) return NULL;
    eng_layer *L = &m->layers[l];
    eng_weight *lw[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return lw[(i - 1) % 7];
}

static bool repackable(const eng_model *m, const eng_weight *w)
{
    if (w == &m->output && m->info.tied_output) return false; /* it is token_embd, kept for lookups */
    uint32_t to = w->type->repack_to;
    return to && w->n_out % eng_type_info_of(to)->rows_per_group == 0;
}

/* Bytes of w in the layout it is repacked into, rounded up for alignment. */
static size_t repacked_size(const eng_weight *w)
{
    return ((size_t)w->n_out * eng_row_size(w->type->repack_to, w->n_in) + 63) & ~(size_t)63;
}

typedef struct {
    eng_weight *w;
    uint8_t *dst;
} repack_item;

typedef struct {
    repack_item *items;
    size_t n, share, n_shares;
} repack_job;

/* Items share, share + n_shares, ...: the first touch of fresh memory costs
 * more than the copy (the kernel zeroes every page), so the shares run on
 * all cores. */
static void *repack_share(void *p)
{
    repack_job *j = p;
    for (size_t i = j->share; i < j->n; i += j->n_shares) {
        const eng_weight *w = j->items[i].w;
        eng_type_info_of(w->type->repack_to)->repack(w->data, j->items[i].dst, w->n_out, w->n_in);
        release_file_pages(w->data, (size_t)w->n_out * w->row_bytes);
    }
    return NULL;
}

int eng_model_repack(eng_model *m, char *err, size_t errlen)
{
    size_t bytes = 0, n = 0;
    eng_weight *w;
    for (size_t i = 0; (w = matmul_weight(m, i)); i++)
        if (repackable(m, w)) bytes += repacked_size(w), n++;
    if (!bytes) return 0;
    repack_item *items = malloc(n * sizeof(*items));
    void *mem = items ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (mem == MAP_FAILED) {
        snprintf(err, errlen, "cannot allocate %zu bytes for the interleaved weights: %s "
                 "(JUNCTION_KERNELS=reference runs from the file's pages instead)", bytes, strerror(errno));
        free(items);
        return -1;
    }
    madvise(mem, bytes, MADV_HUGEPAGE); /* fewer TLB misses when streaming GBs; a hint only */
    m->repacked = mem;
    m->repacked_bytes = bytes;
    uint8_t *at = mem;
    n = 0;
    for (size_t i = 0; (w = matmul_weight(m, i)); i++)
        if (repackable(m, w)) {
            items[n++] = (repack_item){w, at};
            at += repacked_size(w);
        }
    enum { MAX_THREADS = 16 };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n_shares = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (size_t)cpus;
    repack_job jobs[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    for (size_t k = 0; k < n_shares; k++) {
        jobs[k] = (repack_job){items, n, k, n_shares};
        if (k > 0) started[k] = pthread_create(&threads[k], NULL, repack_share, &jobs[k]) == 0;
    }
    repack_share(&jobs[0]);
    for (size_t k = 1; k < n_shares; k++) {
        if (started[k]) pthread_join(threads[k], NULL);
        else repack_share(&jobs[k]); /* no thread: do its share here */
    }
    for (size_t i = 0; i < n; i++) {
        eng_weight *iw = items[i].w;
        iw->type = eng_type_info_of(iw->type->repack_to);
        iw->data = items[i].dst;
        iw->row_bytes = eng_row_size(iw->type->id, iw->n_in);
    }
    free(items);
    return 0;
}
