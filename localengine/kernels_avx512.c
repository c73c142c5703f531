/* kernels_avx512.c: AVX-512 VNNI versions of the quantized dot products.
 *
 * Chosen at run time where the CPU has AVX-512 F/BW/VL/DQ and VNNI (recent
 * AMD EPYC and Intel Xeon); elsewhere the AVX2 or reference kernels run.
 * One 512-bit register holds two 32-weight blocks. VNNI's dpbusd multiplies
 * unsigned by signed bytes and sums in fours straight into int32, so the
 * Q4_0 nibbles stay unsigned (0..15) and the offset of 8 comes off as
 * 8 * (sum of the activations), itself one more dpbusd.
 */
#include "quant.h"

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))

/* Two Q4_0 blocks' weights as unsigned bytes 0..15, in element order. */
AVX512 static inline __m512i q4_pair(const block_q4_0 *x)
{
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    __m128i a = _mm_loadu_si128((const __m128i *)x[0].qs), b = _mm_loadu_si128((const __m128i *)x[1].qs);
    __m256i wa = _mm256_set_m128i(_mm_srli_epi16(a, 4), a), wb = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(wa), wb, 1), low4);
}

AVX512 static inline __m512i q8_pair(const block_q8_0 *y)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)y[0].qs)),
                              _mm256_loadu_si256((const __m256i *)y[1].qs), 1);
}

/* Per-lane scales: block 0's product in the low 8 lanes, block 1's in the high. */
AVX512 static inline __m512 scales(float d0, float d1)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(d0)), _mm256_set1_ps(d1), 1);
}

/* Σ (w - 8)·a for unsigned nibbles w, per group of four, as floats. */
AVX512 static inline __m512 q4_dot(__m512i w, __m512i a)
{
    const __m512i eight = _mm512_set1_epi8(8);
    __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, a);
    __m512i off = _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, a);
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(dot, off));
}

/* Σ w·a for signed bytes: dpbusd wants one side unsigned, so take |w| and
 * move w's sign onto a. */
AVX512 static inline __m512 q8_dot(__m512i w, __m512i a)
{
    __mmask64 neg = _mm512_movepi8_mask(w);
    __m512i a_signed = _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a);
    return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), a_signed));
}

AVX512 float eng_vec_dot_q4_0_avx512(int n, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    __m512 acc = _mm512_setzero_ps();
    int nb = n / QK4_0, i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512 d = scales(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d), _cvtsh_ss(x[i + 1].d) * _cvtsh_ss(y[i + 1].d));
        acc = _mm512_fmadd_ps(d, q4_dot(q4_pair(x + i), q8_pair(y + i)), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) s += eng_vec_dot_q4_0_avx2(QK4_0, x + i, y + i);
    return s;
}

AVX512 float eng_vec_dot_q8_0_avx512(int n, const void *w, const void *a)
{
    const block_q8_0 *x = w, *y = a;
    __m512 acc = _mm512_setzero_ps();
    int nb = n / QK8_0, i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512 d = scales(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d), _cvtsh_ss(x[i + 1].d) * _cvtsh_ss(y[i + 1].d));
        acc = _mm512_fmadd_ps(d, q8_dot(q8_pair(x + i), q8_pair(y + i)), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) s += eng_vec_dot_q8_0_avx2(QK8_0, x + i, y + i);
    return s;
}

/* Four activation rows against one weight row: each weight pair is loaded
 * and expanded once for the four. */
#define DOT4_512(LOAD_W, DOT, DOT1)                                                           \
    const block_q8_0 *y[4];                                                                    \
    for (int k = 0; k < 4; k++) y[k] = (const block_q8_0 *)((const uint8_t *)a + (size_t)k * stride); \
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()}; \
    int nb = n / 32, i = 0;                                                                    \
    for (; i + 2 <= nb; i += 2) {                                                              \
        __m512i wv = LOAD_W;                                                                   \
        float d0 = _cvtsh_ss(x[i].d), d1 = _cvtsh_ss(x[i + 1].d);                              \
        for (int k = 0; k < 4; k++) {                                                          \
            __m512 d = scales(d0 * _cvtsh_ss(y[k][i].d), d1 * _cvtsh_ss(y[k][i + 1].d));        \
            acc[k] = _mm512_fmadd_ps(d, DOT(wv, q8_pair(y[k] + i)), acc[k]);                   \
        }                                                                                      \
    }                                                                                          \
    for (int k = 0; k < 4; k++) {                                                              \
        out[k] = _mm512_reduce_add_ps(acc[k]);                                                 \
        if (i < nb) out[k] += DOT1(32, x + i, y[k] + i);                                       \
    }

AVX512 void eng_vec_dot4_q4_0_avx512(int n, const void *w, const void *a, size_t stride, float out[4])
{
    const block_q4_0 *x = w;
    DOT4_512(q4_pair(x + i), q4_dot, eng_vec_dot_q4_0_avx2)
}

AVX512 void eng_vec_dot4_q8_0_avx512(int n, const void *w, const void *a, size_t stride, float out[4])
{
    const block_q8_0 *x = w;
    DOT4_512(q8_pair(x + i), q8_dot, eng_vec_dot_q8_0_avx2)
}

/* Four weight rows against four activation rows, out[t][r]: the 4x4 tile of
 * prompt processing. Each weight pair is expanded once for four tokens and
 * each activation pair loaded once for four rows; the Q4_0 offset term
 * (8 * sum of activations) is computed once per token and seeds the
 * accumulation, so the inner step is one dpbusd, a convert and an FMA. */
AVX512 void eng_gemm4x4_q4_0_avx512(int n, const void *w, size_t w_stride, const void *a, size_t a_stride,
                                    float out[4][4])
{
    const block_q4_0 *x[4];
    const block_q8_0 *y[4];
    for (int k = 0; k < 4; k++) {
        x[k] = (const block_q4_0 *)((const uint8_t *)w + (size_t)k * w_stride);
        y[k] = (const block_q8_0 *)((const uint8_t *)a + (size_t)k * a_stride);
    }
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    int nb = n / 32, i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i av[4], neg_off[4];
        __m512 da[4];
        for (int t = 0; t < 4; t++) {
            av[t] = q8_pair(y[t] + i);
            neg_off[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                          _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, av[t]));
            da[t] = scales(_cvtsh_ss(y[t][i].d), _cvtsh_ss(y[t][i + 1].d));
        }
        for (int r = 0; r < 4; r++) {
            __m512i wv = q4_pair(x[r] + i);
            __m512 dw = scales(_cvtsh_ss(x[r][i].d), _cvtsh_ss(x[r][i + 1].d));
            for (int t = 0; t < 4; t++) {
                __m512 q = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(neg_off[t], wv, av[t]));
                acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da[t]), q, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) {
            out[t][r] = _mm512_reduce_add_ps(acc[r][t]);
            if (i < nb) out[t][r] += eng_vec_dot_q4_0_avx2(32, x[r] + i, y[t] + i);
        }
}
