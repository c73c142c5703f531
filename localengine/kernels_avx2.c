/* kernels_avx2.c: AVX2+FMA+F16C versions of the hot dot products.
 *
 * Compiled into every build with per-function target attributes and chosen
 * at run time (quant.c), so one binary runs everywhere. Quantized dot
 * products stay in integers inside a block: the 4-bit weights are widened
 * to signed bytes, multiplied with the Q8_0 activations by maddubs (after
 * moving the sign onto the activation, since maddubs wants one unsigned
 * side), summed pairwise to int32, and only then scaled by the two fp16
 * block scales.
 */
#include "quant.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Signed bytes a·b summed in groups of four into 8 int32, as floats. */
AVX2 static inline __m256 dot_i8(__m256i a, __m256i b)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i abs_a = _mm256_sign_epi8(a, a);
    __m256i b_signed = _mm256_sign_epi8(b, a);
    __m256i pairs = _mm256_maddubs_epi16(abs_a, b_signed);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
}

AVX2 float eng_vec_dot_f32_avx2(int n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    float s = hsum_ps(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

AVX2 float eng_vec_dot_f16_avx2(int n, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 y0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i)));
        __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8)));
        __m256 y1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i + 8)));
        s0 = _mm256_fmadd_ps(x0, y0, s0);
        s1 = _mm256_fmadd_ps(x1, y1, s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 y0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i)));
        s0 = _mm256_fmadd_ps(x0, y0, s0);
    }
    float s = hsum_ps(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += _cvtsh_ss(x[i]) * _cvtsh_ss(y[i]);
    return s;
}

AVX2 float eng_vec_dot_q4_0_avx2(int n, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int nb = n / QK4_0, i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256i w0 = _mm256_sub_epi8(nibbles(x[i].qs), eight);
        __m256i w1 = _mm256_sub_epi8(nibbles(x[i + 1].qs), eight);
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d));
        __m256 d1 = _mm256_set1_ps(_cvtsh_ss(x[i + 1].d) * _cvtsh_ss(y[i + 1].d));
        acc0 = _mm256_fmadd_ps(d0, dot_i8(w0, _mm256_loadu_si256((const __m256i *)y[i].qs)), acc0);
        acc1 = _mm256_fmadd_ps(d1, dot_i8(w1, _mm256_loadu_si256((const __m256i *)y[i + 1].qs)), acc1);
    }
    for (; i < nb; i++) {
        __m256i w0 = _mm256_sub_epi8(nibbles(x[i].qs), eight);
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d));
        acc0 = _mm256_fmadd_ps(d0, dot_i8(w0, _mm256_loadu_si256((const __m256i *)y[i].qs)), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

AVX2 float eng_vec_dot_q8_0_avx2(int n, const void *w, const void *a)
{
    const block_q8_0 *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int nb = n / QK8_0, i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d));
        __m256 d1 = _mm256_set1_ps(_cvtsh_ss(x[i + 1].d) * _cvtsh_ss(y[i + 1].d));
        acc0 = _mm256_fmadd_ps(d0, dot_i8(_mm256_loadu_si256((const __m256i *)x[i].qs),
                                          _mm256_loadu_si256((const __m256i *)y[i].qs)), acc0);
        acc1 = _mm256_fmadd_ps(d1, dot_i8(_mm256_loadu_si256((const __m256i *)x[i + 1].qs),
                                          _mm256_loadu_si256((const __m256i *)y[i + 1].qs)), acc1);
    }
    for (; i < nb; i++) {
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d));
        acc0 = _mm256_fmadd_ps(d0, dot_i8(_mm256_loadu_si256((const __m256i *)x[i].qs),
                                          _mm256_loadu_si256((const __m256i *)y[i].qs)), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* Four activation rows against one weight row: the weight block is unpacked
 * (and its absolute value taken) once and used four times. */
AVX2 static inline __m256 dot_i8_abs(__m256i abs_w, __m256i w, __m256i a)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i pairs = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(a, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
}

#define DOT4_BODY(UNPACK)                                                                   \
    const block_q8_0 *y0 = a, *y1 = (const block_q8_0 *)((const uint8_t *)a + stride);     \
    const block_q8_0 *y2 = (const block_q8_0 *)((const uint8_t *)a + 2 * stride);          \
    const block_q8_0 *y3 = (const block_q8_0 *)((const uint8_t *)a + 3 * stride);          \
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;              \
    for (int i = 0; i < n / 32; i++) {                                                     \
        __m256i wv = UNPACK;                                                               \
        __m256i aw = _mm256_sign_epi8(wv, wv);                                             \
        float dw = _cvtsh_ss(x[i].d);                                                      \
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw * _cvtsh_ss(y0[i].d)),                    \
                               dot_i8_abs(aw, wv, _mm256_loadu_si256((const __m256i *)y0[i].qs)), acc0); \
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(dw * _cvtsh_ss(y1[i].d)),                    \
                               dot_i8_abs(aw, wv, _mm256_loadu_si256((const __m256i *)y1[i].qs)), acc1); \
        acc2 = _mm256_fmadd_ps(_mm256_set1_ps(dw * _cvtsh_ss(y2[i].d)),                    \
                               dot_i8_abs(aw, wv, _mm256_loadu_si256((const __m256i *)y2[i].qs)), acc2); \
        acc3 = _mm256_fmadd_ps(_mm256_set1_ps(dw * _cvtsh_ss(y3[i].d)),                    \
                               dot_i8_abs(aw, wv, _mm256_loadu_si256((const __m256i *)y3[i].qs)), acc3); \
    }                                                                                      \
    out[0] = hsum_ps(acc0);                                                                   \
    out[1] = hsum_ps(acc1);                                                                   \
    out[2] = hsum_ps(acc2);                                                                   \
    out[3] = hsum_ps(acc3);

AVX2 void eng_vec_dot4_q4_0_avx2(int n, const void *w, const void *a, size_t stride, float out[4])
{
    const block_q4_0 *x = w;
    const __m256i eight = _mm256_set1_epi8(8);
    DOT4_BODY(_mm256_sub_epi8(nibbles(x[i].qs), eight))
}

AVX2 void eng_vec_dot4_q8_0_avx2(int n, const void *w, const void *a, size_t stride, float out[4])
{
    const block_q8_0 *x = w;
    DOT4_BODY(_mm256_loadu_si256((const __m256i *)x[i].qs))
}

/* Same rounding as eng_quantize_q8_0_act: the products x*id are the same
 * float operations, and _mm256_round_ps rounds half to even like nearbyintf. */
/* One F16 or BF16 weight row against four activation rows of the same
 * type: each 8 weights are converted once for the four tokens. */
AVX2 static inline __attribute__((always_inline)) void dot4_halves(bool bf16, int n, const void *w, const void *a,
                                                                   size_t stride, float out[4])
{
    const uint16_t *x = w, *y[4];
    __m256 acc[4];
    for (int k = 0; k < 4; k++) {
        y[k] = (const uint16_t *)((const uint8_t *)a + (size_t)k * stride);
        acc[k] = _mm256_setzero_ps();
    }
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv = half_load8(x + i, bf16);
        for (int k = 0; k < 4; k++) acc[k] = _mm256_fmadd_ps(wv, half_load8(y[k] + i, bf16), acc[k]);
    }
    for (int k = 0; k < 4; k++) {
        out[k] = hsum_ps(acc[k]);
        for (int j = i; j < n; j++)
            out[k] += bf16 ? eng_bf16_to_fp32(x[j]) * eng_bf16_to_fp32(y[k][j]) : _cvtsh_ss(x[j]) * _cvtsh_ss(y[k][j]);
    }
}

AVX2 void eng_vec_dot4_f16_avx2(int n, const void *w, const void *a, size_t stride, float out[4])
{
    dot4_halves(false, n, w, a, stride, out);
}

AVX2 void eng_vec_dot4_bf16_avx2(int n, const void *w, const void *a, size_t stride, float out[4])
{
    dot4_halves(true, n, w, a, stride, out);
}

AVX2 void eng_quantize_q8_0_act_avx2(const float *x, void *dst, int64_t n)
{
    block_q8_0 *b = dst;
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *v = x + i * QK8_0;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
        __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign_bit, v0), _mm256_andnot_ps(sign_bit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign_bit, v2), _mm256_andnot_ps(sign_bit, v3)));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        b[i].d = eng_fp32_to_fp16(amax / 127.0f);
        __m256 id = _mm256_set1_ps(amax != 0 ? 127.0f / amax : 0.0f);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* packs work within 128-bit lanes; the permute restores element order */
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)b[i].qs, p);
    }
}

AVX2 void eng_fp32_to_fp16_row_avx2(const float *x, void *dst, int64_t n)
{
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = eng_fp32_to_fp16(x[i]);
}

/* Attention over an fp16 KV cache: q·k and out += a·v, converting 8 cached
 * halves at a time with F16C. */
AVX2 float eng_dot_f32_f16_avx2(const float *q, const uint16_t *k, int n)
{
    __m256 s = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        s = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), s);
    float r = hsum_ps(s);
    for (; i < n; i++) r += q[i] * _cvtsh_ss(k[i]);
    return r;
}

AVX2 void eng_axpy_f16_avx2(float a, const uint16_t *v, float *out, int n)
{
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))),
                                                  _mm256_loadu_ps(out + i)));
    for (; i < n; i++) out[i] += a * _cvtsh_ss(v[i]);
}
