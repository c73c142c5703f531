/* quant_k.c: the K-quants Q2_K, Q3_K, Q4_K, Q5_K (reference kernels).
 *
 * Every K-quant block of 256 weights decodes to the same shape: integer
 * codes, a signed integer scale and an unsigned integer min per 16 weights,
 * and two float factors d and dmin, so that
 *     weight = (d * scale) * code - (dmin * min).
 * One decoder per type turns ggml's packing (ggml-common.h) into that
 * shape; one dequantizer and one dot product (against Q8_K activations,
 * whose per-16 sums carry the min terms) then serve all four. The float
 * operations are ggml's, in its order, so dequantized rows are bit-exact.
 */
#include "quant.h"

#include <string.h>

typedef struct {
    int8_t q[QK_K];
    int scale[QK_K / 16];
    int min[QK_K / 16];
    float d, dmin;
} k_block;

static void decode_q2_k(const void *blk, k_block *k)
{
    const block_q2_k *b = blk;
    k->d = eng_fp16_to_fp32(b->d);
    k->dmin = eng_fp16_to_fp32(b->dmin);
    for (int s = 0; s < 16; s++) {
        k->scale[s] = b->scales[s] & 0xf;
        k->min[s] = b->scales[s] >> 4;
    }
    const uint8_t *q = b->qs;
    int8_t *out = k->q;
    for (int n = 0; n < QK_K; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int half = 0; half < 2; half++)
                for (int l = 0; l < 16; l++) *out++ = (int8_t)((q[l + 16 * half] >> shift) & 3);
}

/* 16 six-bit scales: low 4 bits in scales[0..7] (two per byte), high 2 bits in scales[8..11] */
void eng_q3_k_scales(const uint8_t q[12], int8_t sc[16])
{
    for (int s = 0; s < 16; s++) {
        int lo = s < 8 ? (q[s] & 0xf) : (q[s - 8] >> 4);
        int hi = (q[8 + s % 4] >> (2 * (s / 4))) & 3;
        sc[s] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

static void decode_q3_k(const void *blk, k_block *k)
{
    const block_q3_k *b = blk;
    k->d = eng_fp16_to_fp32(b->d);
    k->dmin = 0;
    int8_t sc[16];
    eng_q3_k_scales(b->scales, sc);
    for (int s = 0; s < 16; s++) {
        k->scale[s] = sc[s];
        k->min[s] = 0;
    }
    const uint8_t *q = b->qs;
    uint8_t m = 1;
    int8_t *out = k->q;
    for (int n = 0; n < QK_K; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            for (int half = 0; half < 2; half++)
                for (int l = 0; l < 16; l++) {
                    int i = l + 16 * half;
                    *out++ = (int8_t)(((q[i] >> shift) & 3) - ((b->hmask[i] & m) ? 0 : 4));
                }
}

void eng_q4_k_scales(const uint8_t q[12], int sc[8], int mn[8])
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            mn[j] = q[j + 4] & 63;
        } else {
            sc[j] = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
            mn[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
}

static void decode_q45_k(const uint16_t *dd, const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, k_block *k)
{
    k->d = eng_fp16_to_fp32(dd[0]);
    k->dmin = eng_fp16_to_fp32(dd[1]);
    int sc[8], mn[8];
    eng_q4_k_scales(scales, sc, mn);
    for (int j = 0; j < 8; j++) {
        k->scale[2 * j] = k->scale[2 * j + 1] = sc[j]; /* per 32 weights: two per-16 entries */
        k->min[2 * j] = k->min[2 * j + 1] = mn[j];
    }
    int8_t *out = k->q;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K; j += 64, qs += 32, u1 <<= 2, u2 <<= 2) {
        for (int l = 0; l < 32; l++) *out++ = (int8_t)((qs[l] & 0xf) + (qh && (qh[l] & u1) ? 16 : 0));
        for (int l = 0; l < 32; l++) *out++ = (int8_t)((qs[l] >> 4) + (qh && (qh[l] & u2) ? 16 : 0));
    }
}

static void decode_q4_k(const void *blk, k_block *k)
{
    const block_q4_k *b = blk;
    decode_q45_k(&b->d, b->scales, b->qs, NULL, k);
}

static void decode_q5_k(const void *blk, k_block *k)
{
    const block_q5_k *b = blk;
    decode_q45_k(&b->d, b->scales, b->qs, b->qh, k);
}

typedef void (*k_decoder)(const void *blk, k_block *k);

static void k_to_float(k_decoder decode, size_t block_bytes, const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n / QK_K; i++) {
        k_block k;
        decode((const uint8_t *)src + (size_t)i * block_bytes, &k);
        for (int j = 0; j < QK_K; j++) {
            float dl = k.d * (float)k.scale[j / 16], ml = k.dmin * (float)k.min[j / 16];
            dst[i * QK_K + j] = dl * (float)k.q[j] - ml;
        }
    }
}

static float k_vec_dot(k_decoder decode, size_t block_bytes, int n, const void *w, const void *a)
{
    const block_q8_k *y = a;
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) {
        k_block k;
        decode((const uint8_t *)w + (size_t)i * block_bytes, &k);
        int sum = 0, sum_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int sub = 0;
            for (int l = 0; l < 16; l++) sub += k.q[j * 16 + l] * y[i].qs[j * 16 + l];
            sum += k.scale[j] * sub;
            sum_min += k.min[j] * y[i].bsums[j];
        }
        s += k.d * y[i].d * (float)sum - k.dmin * y[i].d * (float)sum_min;
    }
    return s;
}

#define K_TYPE(name, block)                                                                   \
    static void name##_to_float(const void *src, float *dst, int64_t n)                       \
    {                                                                                         \
        k_to_float(decode_##name, sizeof(block), src, dst, n);                                \
    }                                                                                         \
    static float name##_vec_dot(int n, const void *w, const void *a)                          \
    {                                                                                         \
        return k_vec_dot(decode_##name, sizeof(block), n, w, a);                              \
    }

K_TYPE(q2_k, block_q2_k)
K_TYPE(q3_k, block_q3_k)
K_TYPE(q4_k, block_q4_k)
K_TYPE(q5_k, block_q5_k)

void eng_register_k_types(eng_type_info *(*row)(uint32_t id))
{
    static const struct {
        uint32_t id;
        eng_to_float_fn to_float;
        eng_vec_dot_fn dot;
    } k[] = {
        {ENG_TYPE_Q2_K, q2_k_to_float, q2_k_vec_dot},
        {ENG_TYPE_Q3_K, q3_k_to_float, q3_k_vec_dot},
        {ENG_TYPE_Q4_K, q4_k_to_float, q4_k_vec_dot},
        {ENG_TYPE_Q5_K, q5_k_to_float, q5_k_vec_dot},
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        eng_type_info *t = row(k[i].id);
        t->to_float = k[i].to_float;
        t->vec_dot_ref = t->vec_dot = k[i].dot;
    }
}
