/* quantize.c: weight quantizers for Q4_0, Q4_1, Q5_0, Q5_1 and the K-quants.
 *
 * `junction mkmodel` writes test and benchmark models of every type with
 * these. They follow ggml's plain per-block rules (a block's scale from its
 * extreme values, codes rounded to nearest), not llama.cpp's importance-
 * weighted search: a little more error, no calibration data needed. Each
 * quantizer writes exactly the bit layout the dequantizers in quant_more.c
 * and quant_k.c read, so the round trip through them is what tests check
 * (tests/unit/test_kernels.c).
 *
 * The K-quants share one shape (quant_k.c): per 16 or 32 weights an integer
 * scale and, for the "with min" types, an integer min, both relative to
 * the block's fp16 d and dmin. fit_with_min and fit_symmetric choose those
 * integers and the codes; one packer per type lays them out.
 */
#include "quant.h"

#include <math.h>
#include <string.h>

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- 32-weight blocks ---- */

/* Lowest and highest value of n weights. */
static void min_max(const float *v, int n, float *lo, float *hi)
{
    *lo = *hi = v[0];
    for (int j = 1; j < n; j++) {
        *lo = fminf(*lo, v[j]);
        *hi = fmaxf(*hi, v[j]);
    }
}

/* The signed value of largest magnitude. */
static float signed_max(const float *v, int n)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(v[j]) > amax) {
            amax = fabsf(v[j]);
            max = v[j];
        }
    return max;
}

/* Five-bit codes: low nibbles in qs (elements j and j+16 share a byte), the fifth bits in qh. */
static void pack_q5(const int code[32], uint8_t qs[16], uint8_t qh_bytes[4])
{
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((code[j] & 0xf) | ((code[j + 16] & 0xf) << 4));
        qh |= (uint32_t)(code[j] >> 4) << j;
        qh |= (uint32_t)(code[j + 16] >> 4) << (j + 16);
    }
    memcpy(qh_bytes, &qh, 4);
}

/* Codes 0..levels-1 for weight = code * d + m, with d and m as stored (fp16). */
static void affine_codes(const float *v, int levels, uint16_t *d16, uint16_t *m16, int code[32])
{
    float lo, hi;
    min_max(v, 32, &lo, &hi);
    *d16 = eng_fp32_to_fp16((hi - lo) / (float)(levels - 1));
    *m16 = eng_fp32_to_fp16(lo);
    float d = eng_fp16_to_fp32(*d16), m = eng_fp16_to_fp32(*m16);
    for (int j = 0; j < 32; j++) code[j] = d > 0 ? clampi((int)nearbyintf((v[j] - m) / d), 0, levels - 1) : 0;
}

static void q4_1_from_float(const float *x, void *dst, int64_t n)
{
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int code[32];
        affine_codes(x + i * 32, 16, &b[i].d, &b[i].m, code);
        for (int j = 0; j < 16; j++) b[i].qs[j] = (uint8_t)(code[j] | (code[j + 16] << 4));
    }
}

static void q5_1_from_float(const float *x, void *dst, int64_t n)
{
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int code[32];
        affine_codes(x + i * 32, 32, &b[i].d, &b[i].m, code);
        pack_q5(code, b[i].qs, b[i].qh);
    }
}

/* The element of largest magnitude maps to code -8, as ggml's reference
 * quantizer does (with its truncating +8.5 rounding, which mkmodel's
 * cached benchmark files were written with). */
static void q4_0_from_float(const float *x, void *dst, int64_t n)
{
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const float *v = x + i * QK4_0;
        float d = signed_max(v, QK4_0) / -8, id = d != 0 ? 1.0f / d : 0;
        b[i].d = eng_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int lo = (int)(v[j] * id + 8.5f), hi = (int)(v[j + QK4_0 / 2] * id + 8.5f);
            lo = lo > 15 ? 15 : lo;
            hi = hi > 15 ? 15 : hi;
            b[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

/* Like Q4_0: the element of largest magnitude maps to code -16 exactly. */
static void q5_0_from_float(const float *x, void *dst, int64_t n)
{
    block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        const float *v = x + i * 32;
        b[i].d = eng_fp32_to_fp16(signed_max(v, 32) / -16);
        float d = eng_fp16_to_fp32(b[i].d);
        int code[32];
        for (int j = 0; j < 32; j++) code[j] = d != 0 ? clampi((int)nearbyintf(v[j] / d) + 16, 0, 31) : 16;
        pack_q5(code, b[i].qs, b[i].qh);
    }
}

/* ---- K-quants: 256-weight blocks ---- */

typedef struct {
    int code[QK_K];
    int scale[QK_K / 16], min[QK_K / 16]; /* per 16 weights (a 32-weight group fills two) */
    uint16_t d, dmin;
} k_fit;

/* weight = d*scale*code - dmin*min, codes 0..qmax, scale and min 0..smax,
 * one scale and min per `group` weights. */
static void fit_with_min(const float *v, int group, int qmax, int smax, k_fit *f)
{
    int ng = QK_K / group;
    float sf[16], mf[16], max_s = 0, max_m = 0;
    for (int g = 0; g < ng; g++) {
        float lo, hi;
        min_max(v + g * group, group, &lo, &hi);
        lo = fminf(lo, 0); /* the min is subtracted, so it must be >= 0 */
        sf[g] = (hi - lo) / (float)qmax;
        mf[g] = -lo;
        max_s = fmaxf(max_s, sf[g]);
        max_m = fmaxf(max_m, mf[g]);
    }
    f->d = eng_fp32_to_fp16(max_s / (float)smax);
    f->dmin = eng_fp32_to_fp16(max_m / (float)smax);
    float d = eng_fp16_to_fp32(f->d), dmin = eng_fp16_to_fp32(f->dmin);
    for (int g = 0; g < ng; g++) {
        int sc = d > 0 ? clampi((int)nearbyintf(sf[g] / d), 0, smax) : 0;
        int m = dmin > 0 ? clampi((int)nearbyintf(mf[g] / dmin), 0, smax) : 0;
        float step = d * (float)sc, off = dmin * (float)m;
        for (int j = g * group; j < (g + 1) * group; j++) {
            f->code[j] = step > 0 ? clampi((int)nearbyintf((v[j] + off) / step), 0, qmax) : 0;
            f->scale[j / 16] = sc;
            f->min[j / 16] = m;
        }
    }
}

/* weight = d*scale*code, codes -qneg..qneg-1, scales -sneg..sneg-1, per 16
 * weights; each group's value of largest magnitude maps to code -qneg. */
static void fit_symmetric(const float *v, int qneg, int sneg, k_fit *f)
{
    float sf[16], max_sf = 0;
    for (int g = 0; g < 16; g++) {
        sf[g] = signed_max(v + g * 16, 16) / (float)-qneg;
        if (fabsf(sf[g]) > fabsf(max_sf)) max_sf = sf[g];
    }
    float iscale = max_sf != 0 ? (float)-sneg / max_sf : 0;
    f->d = eng_fp32_to_fp16(iscale != 0 ? 1 / iscale : 0);
    f->dmin = 0;
    float d = eng_fp16_to_fp32(f->d);
    for (int g = 0; g < 16; g++) {
        int sc = clampi((int)nearbyintf(iscale * sf[g]), -sneg, sneg - 1);
        float step = d * (float)sc;
        f->scale[g] = sc;
        f->min[g] = 0;
        for (int j = g * 16; j < (g + 1) * 16; j++)
            f->code[j] = step != 0 ? clampi((int)nearbyintf(v[j] / step), -qneg, qneg - 1) : 0;
    }
}

/* Two-bit codes as quant_k.c's decoders read them: per 128 weights 32 bytes,
 * four 2-bit planes of 32 consecutive weights each. */
static void pack_2bit(const int *code, uint8_t qs[64])
{
    memset(qs, 0, 64);
    for (int j = 0; j < QK_K; j++) {
        int n = j / 128, plane = (j % 128) / 32, l = j % 32;
        qs[n * 32 + l] |= (uint8_t)((code[j] & 3) << (2 * plane));
    }
}

static void q2_k_from_float(const float *x, void *dst, int64_t n)
{
    block_q2_k *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        k_fit f;
        fit_with_min(x + i * QK_K, 16, 3, 15, &f);
        b[i].d = f.d;
        b[i].dmin = f.dmin;
        for (int s = 0; s < 16; s++) b[i].scales[s] = (uint8_t)(f.scale[s] | (f.min[s] << 4));
        pack_2bit(f.code, b[i].qs);
    }
}

static void q3_k_from_float(const float *x, void *dst, int64_t n)
{
    block_q3_k *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        k_fit f;
        fit_symmetric(x + i * QK_K, 4, 32, &f);
        b[i].d = f.d;
        memset(b[i].scales, 0, sizeof(b[i].scales));
        for (int s = 0; s < 16; s++) {
            int u = f.scale[s] + 32; /* six bits: low four two per byte, high two in bytes 8..11 */
            b[i].scales[s % 8] |= (uint8_t)((u & 0xf) << (s < 8 ? 0 : 4));
            b[i].scales[8 + s % 4] |= (uint8_t)((u >> 4) << (2 * (s / 4)));
        }
        int u[QK_K];
        memset(b[i].hmask, 0, sizeof(b[i].hmask));
        for (int j = 0; j < QK_K; j++) {
            u[j] = f.code[j] + 4; /* low two bits in qs, the third in hmask (bit j/32) */
            if (u[j] & 4) b[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
        }
        pack_2bit(u, b[i].qs);
    }
}

/* Q4_K and Q5_K: eight six-bit scales and mins in 12 bytes (quant_k.c's scale_min_k4, inverted). */
static void pack_scales_k4(const k_fit *f, uint8_t q[12])
{
    memset(q, 0, 12);
    for (int j = 0; j < 8; j++) {
        int sc = f->scale[2 * j], m = f->min[2 * j];
        if (j < 4) {
            q[j] |= (uint8_t)sc;
            q[j + 4] |= (uint8_t)m;
        } else {
            q[j + 4] = (uint8_t)((sc & 0xf) | ((m & 0xf) << 4));
            q[j - 4] |= (uint8_t)((sc >> 4) << 6);
            q[j] |= (uint8_t)((m >> 4) << 6);
        }
    }
}

/* Low nibbles: per 64 weights 32 bytes, the first 32 weights low, the next high. */
static void pack_nibbles_k(const int *code, uint8_t qs[128], uint8_t *qh)
{
    memset(qs, 0, 128);
    if (qh) memset(qh, 0, 32);
    for (int j = 0; j < QK_K; j++) {
        int chunk = j / 64, hi = (j % 64) / 32, l = j % 32;
        qs[chunk * 32 + l] |= (uint8_t)((code[j] & 0xf) << (4 * hi));
        if (qh && code[j] >= 16) qh[l] |= (uint8_t)(1u << (2 * chunk + hi));
    }
}

/* One Q4_K (qh NULL, codes 0..15) or Q5_K (codes 0..31) block. */
static void quantize_q45_k(const float *v, uint16_t *d, uint16_t *dmin, uint8_t scales[12], uint8_t qs[128],
                           uint8_t *qh)
{
    k_fit f;
    fit_with_min(v, 32, qh ? 31 : 15, 63, &f);
    *d = f.d;
    *dmin = f.dmin;
    pack_scales_k4(&f, scales);
    pack_nibbles_k(f.code, qs, qh);
}

static void q4_k_from_float(const float *x, void *dst, int64_t n)
{
    block_q4_k *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++) quantize_q45_k(x + i * QK_K, &b[i].d, &b[i].dmin, b[i].scales, b[i].qs, NULL);
}

static void q5_k_from_float(const float *x, void *dst, int64_t n)
{
    block_q5_k *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++)
        quantize_q45_k(x + i * QK_K, &b[i].d, &b[i].dmin, b[i].scales, b[i].qs, b[i].qh);
}

static void q6_k_from_float(const float *x, void *dst, int64_t n)
{
    block_q6_k *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        k_fit f;
        fit_symmetric(x + i * QK_K, 32, 128, &f);
        b[i].d = f.d;
        for (int s = 0; s < 16; s++) b[i].scales[s] = (int8_t)f.scale[s];
        memset(b[i].ql, 0, sizeof(b[i].ql));
        memset(b[i].qh, 0, sizeof(b[i].qh));
        /* per 128 weights: 64 bytes of nibbles (weights l and l+64 share a
         * byte) and 32 bytes holding the top two bits of four weights */
        for (int j = 0; j < QK_K; j++) {
            int u = f.code[j] + 32, half = j / 128, r = j % 128, quarter = r / 32, l = r % 32;
            int byte = half * 64 + l + (quarter & 1) * 32;
            b[i].ql[byte] |= (uint8_t)((u & 0xf) << (quarter >= 2 ? 4 : 0));
            b[i].qh[half * 32 + l] |= (uint8_t)((u >> 4) << (2 * quarter));
        }
    }
}

void eng_register_quantizers(eng_type_info *(*row)(uint32_t id))
{
    static const struct {
        uint32_t id;
        eng_from_float_fn quantize;
    } q[] = {
        {ENG_TYPE_Q4_0, q4_0_from_float}, {ENG_TYPE_Q4_1, q4_1_from_float},
        {ENG_TYPE_Q5_0, q5_0_from_float}, {ENG_TYPE_Q5_1, q5_1_from_float},
        {ENG_TYPE_Q2_K, q2_k_from_float}, {ENG_TYPE_Q3_K, q3_k_from_float}, {ENG_TYPE_Q4_K, q4_k_from_float},
        {ENG_TYPE_Q5_K, q5_k_from_float}, {ENG_TYPE_Q6_K, q6_k_from_float},
    };
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) row(q[i].id)->from_float = q[i].quantize;
}
