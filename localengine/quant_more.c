/* quant_more.c: reference kernels for Q4_1, Q5_0, Q5_1, Q6_K and BF16.
 *
 * The bit layouts are ggml's (ggml-common.h); the activation formats and
 * their rounding are llama.cpp's x86 ones, as ../shared/vectors/quants/
 * README.md spells out: Q8_1 for Q4_1/Q5_1 (Q8_0 plus s = fp16(d·Σq) with
 * the unrounded d), Q8_K for the K-quants (a float scale from the element of
 * largest magnitude, codes clamped to 127, sums per 16), bf16 for BF16.
 * Plain C only so far: the AVX2 kernels come next (docs/engine.md).
 */
#include "quant.h"

#include <math.h>
#include <string.h>

/* ---- Q4_1: 32 weights = fp16 scale, fp16 min, 16 bytes of nibbles ---- */

static void q4_1_to_float(const void *src, float *dst, int64_t n)
{
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = eng_fp16_to_fp32(b[i].d), m = eng_fp16_to_fp32(b[i].m);
        for (int j = 0; j < 16; j++) {
            dst[i * 32 + j] = (float)(b[i].qs[j] & 0x0f) * d + m;
            dst[i * 32 + j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void eng_quantize_q8_1_act(const float *x, void *dst, int64_t n)
{
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        const float *v = x + i * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            b[i].qs[j] = (int8_t)nearbyintf(v[j] * id);
            sum += b[i].qs[j];
        }
        b[i].d = eng_fp32_to_fp16(d);
        b[i].s = eng_fp32_to_fp16(d * (float)sum);
    }
}

static float q4_1_vec_dot(int n, const void *w, const void *a)
{
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    float s = 0;
    for (int i = 0; i < n / 32; i++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += (x[i].qs[j] & 0x0f) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        s += eng_fp16_to_fp32(x[i].d) * eng_fp16_to_fp32(y[i].d) * (float)sum +
             eng_fp16_to_fp32(x[i].m) * eng_fp16_to_fp32(y[i].s);
    }
    return s;
}

/* ---- Q5_0 / Q5_1: a fifth bit per weight in qh ---- */

static inline int q5_code(const uint8_t *qs, uint32_t qh, int j)
{
    /* j < 16: low nibble of qs[j] and bit j of qh; else high nibble of qs[j-16] and bit j of qh */
    int lo = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    return lo | (int)(((qh >> j) & 1u) << 4);
}

static void q5_0_to_float(const void *src, float *dst, int64_t n)
{
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = eng_fp16_to_fp32(b[i].d);
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < 32; j++) dst[i * 32 + j] = (float)(q5_code(b[i].qs, qh, j) - 16) * d;
    }
}

static float q5_0_vec_dot(int n, const void *w, const void *a)
{
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    float s = 0;
    for (int i = 0; i < n / 32; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += (q5_code(x[i].qs, qh, j) - 16) * y[i].qs[j];
        s += (float)sum * eng_fp16_to_fp32(x[i].d) * eng_fp16_to_fp32(y[i].d);
    }
    return s;
}

static void q5_1_to_float(const void *src, float *dst, int64_t n)
{
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = eng_fp16_to_fp32(b[i].d), m = eng_fp16_to_fp32(b[i].m);
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < 32; j++) dst[i * 32 + j] = (float)q5_code(b[i].qs, qh, j) * d + m;
    }
}

static float q5_1_vec_dot(int n, const void *w, const void *a)
{
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    float s = 0;
    for (int i = 0; i < n / 32; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += q5_code(x[i].qs, qh, j) * y[i].qs[j];
        s += eng_fp16_to_fp32(x[i].d) * eng_fp16_to_fp32(y[i].d) * (float)sum +
             eng_fp16_to_fp32(x[i].m) * eng_fp16_to_fp32(y[i].s);
    }
    return s;
}

/* ---- Q8_K: the activations of the K-quants ---- */

void eng_quantize_q8_k_act(const float *x, void *dst, int64_t n)
{
    block_q8_k *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *v = x + i * QK_K;
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(v[j]) > amax) { amax = fabsf(v[j]); max = v[j]; }
        if (amax == 0) {
            memset(&b[i], 0, sizeof(b[i]));
            continue;
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            int q = (int)nearbyintf(iscale * v[j]);
            b[i].qs[j] = (int8_t)(q > 127 ? 127 : q);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += b[i].qs[j * 16 + k];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1 / iscale;
    }
}

/* ---- Q6_K: 256 weights = 4+2 bit codes, 16 int8 sub-block scales, fp16 d ---- */

/* The 256 signed codes (-32..31) of a block, in element order. */
static void q6_k_codes(const block_q6_k *b, int8_t out[QK_K])
{
    const uint8_t *ql = b->ql, *qh = b->qh;
    for (int half = 0; half < 2; half++, ql += 64, qh += 32, out += 128) {
        for (int l = 0; l < 32; l++) {
            out[l] = (int8_t)(((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32);
            out[l + 32] = (int8_t)(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
            out[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            out[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

static void q6_k_to_float(const void *src, float *dst, int64_t n)
{
    const block_q6_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        q6_k_codes(&b[i], q);
        float d = eng_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK_K; j++) dst[i * QK_K + j] = d * (float)b[i].scales[j / 16] * (float)q[j];
    }
}

static float q6_k_vec_dot(int n, const void *w, const void *a)
{
    const block_q6_k *x = w;
    const block_q8_k *y = a;
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        q6_k_codes(&x[i], q);
        int sum = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int sub = 0;
            for (int k = 0; k < 16; k++) sub += q[j * 16 + k] * y[i].qs[j * 16 + k];
            sum += x[i].scales[j] * sub;
        }
        s += eng_fp16_to_fp32(x[i].d) * y[i].d * (float)sum;
    }
    return s;
}

/* ---- BF16 ---- */

static void bf16_from_float(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        if ((u & 0x7fffffff) > 0x7f800000) h[i] = (uint16_t)((u >> 16) | 64); /* quiet NaN */
        else h[i] = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
    }
}

static float bf16_vec_dot(int n, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    float s = 0;
    for (int i = 0; i < n; i++) s += eng_bf16_to_fp32(x[i]) * eng_bf16_to_fp32(y[i]);
    return s;
}

/* Fill in the table rows of these types (called once, by quant.c). */
void eng_register_more_types(eng_type_info *(*row)(uint32_t id))
{
    eng_type_info *t;
    t = row(ENG_TYPE_Q4_1);
    t->to_float = q4_1_to_float;
    t->vec_dot_ref = t->vec_dot = q4_1_vec_dot;
    t = row(ENG_TYPE_Q5_0);
    t->to_float = q5_0_to_float;
    t->vec_dot_ref = t->vec_dot = q5_0_vec_dot;
    t = row(ENG_TYPE_Q5_1);
    t->to_float = q5_1_to_float;
    t->vec_dot_ref = t->vec_dot = q5_1_vec_dot;
    t = row(ENG_TYPE_Q8_1);
    t->from_float = eng_quantize_q8_1_act;
    t = row(ENG_TYPE_Q6_K);
    t->to_float = q6_k_to_float;
    t->vec_dot_ref = t->vec_dot = q6_k_vec_dot;
    t = row(ENG_TYPE_Q8_K);
    t->from_float = eng_quantize_q8_k_act;
    t = row(ENG_TYPE_BF16);
    t->from_float = bf16_from_float;
    t->vec_dot_ref = t->vec_dot = bf16_vec_dot;
}
