/* interleave_k.c: the K types (Q2_K .. Q6_K) interleaved by 16 rows: the
 * layouts (quant.h), their repacking, rows back as floats bit-exact with
 * quant_k.c / quant_more.c, and their reference kernels, which keep the
 * integer scale and min arithmetic exactly as llama.cpp does.
 */
#include "quant.h"

#include <stdbool.h>
#include <string.h>

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
    eng_repack_rows(put_q4_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q4_k), sizeof(block_q4_k_x16));
}

void eng_repack_q5_k_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)
{
    eng_repack_rows(put_q5_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q5_k), sizeof(block_q5_k_x16));
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
    eng_repack_rows(put_q6_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q6_k), sizeof(block_q6_k_x16));
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

static void put_q3_k(void *x, int r, const void *b)
{
    const block_q3_k *blk = b;
    block_q3_k_x16 *g = x;
    int8_t sc[16];
    eng_q3_k_scales(blk->scales, sc);
    g->d[r] = blk->d;
    for (int j = 0; j < 16; j++) g->sc[j][r] = sc[j];
    for (int m = 0; m < 8; m++) {
        for (int h = 0; h < 2; h++) memcpy(g->qs[h][m][r], blk->qs + 32 * h + 4 * m, 4);
        memcpy(g->hm[m][r], blk->hmask + 4 * m, 4);
    }
}

void eng_repack_q3_k_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)
{
    eng_repack_rows(put_q3_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q3_k), sizeof(block_q3_k_x16));
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
    eng_repack_rows(put_q2_k, src, dst, n_rows, n_in, QK_K, sizeof(block_q2_k), sizeof(block_q2_k_x16));
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

