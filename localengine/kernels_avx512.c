/* kernels_avx512.c: AVX-512 VNNI versions of the quantized dot products.
 *
 * Chosen at run time where the CPU has AVX-512 F/BW/VL/DQ and VNNI (recent
 * AMD EPYC and Intel Xeon); elsewhere the AVX2 or reference kernels run.
 * VNNI's dpbusd multiplies unsigned by signed bytes and sums in fours
 * straight into int32, so codes stay unsigned and a type's offset (8 for
 * Q4_0) comes off as offset * (sum of the activations), computed once per
 * activation block and used to seed the accumulation. The row-at-a-time
 * kernels (two 32-weight blocks per 512-bit register) serve the matrices
 * that are not interleaved; the rest run on the 16-row kernels
 * (kernels_x16_avx512.c). F16 and BF16 prompts run on the 4x4 tiles here.
 */
#include "quant.h"
#include "simd_avx512.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>


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

/* Σ w·a for signed bytes: dpbusd wants one side unsigned, so take |w| and
 * move w's sign onto a. */
AVX512 static inline __m512 q8_dot(__m512i w, __m512i a)
{
    __mmask64 neg = _mm512_movepi8_mask(w);
    __m512i a_signed = _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a);
    return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), a_signed));
}

/* Q4_0 weights against plain Q8_0 activations: the generation kernel. */
AVX512 float eng_vec_dot_q4_0_avx512(int n, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc = _mm512_setzero_ps();
    int nb = n / QK4_0, i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512 d = scales(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d), _cvtsh_ss(x[i + 1].d) * _cvtsh_ss(y[i + 1].d));
        __m512i av = q8_pair(y + i);
        __m512i seed = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, av));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(seed, q4_pair(x + i), av)), acc);
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

/* 16 halves (fp16, or bf16 when `bf16`: the top half of an fp32) to floats. */
AVX512 static inline __m512 half_load16(const uint16_t *p, bool bf16)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)) : _mm512_cvtph_ps(v);
}

static inline float half_to_float(uint16_t h, bool bf16) { return bf16 ? eng_bf16_to_fp32(h) : eng_fp16_table[h]; }

/* Four F16 or BF16 weight rows against four activation rows of the same
 * type, out[t][r]: each 16 weights and 16 activations are converted once
 * for the tile, then 16 FMAs (16 accumulators, 4 weight and 1 activation
 * register). */
AVX512 static inline __attribute__((always_inline)) void gemm4x4_halves(
    bool bf16, int n, const void *w, size_t w_stride, const void *a, size_t a_stride, float out[4][4])
{
    const uint16_t *x[4], *y[4];
    __m512 acc[4][4];
    for (int k = 0; k < 4; k++) {
        x[k] = (const uint16_t *)((const uint8_t *)w + (size_t)k * w_stride);
        y[k] = (const uint16_t *)((const uint8_t *)a + (size_t)k * a_stride);
        for (int t = 0; t < 4; t++) acc[k][t] = _mm512_setzero_ps();
    }
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wv[4];
        for (int r = 0; r < 4; r++) wv[r] = half_load16(x[r] + i, bf16);
        for (int t = 0; t < 4; t++) {
            __m512 av = half_load16(y[t] + i, bf16);
            for (int r = 0; r < 4; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], av, acc[r][t]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) {
            out[t][r] = _mm512_reduce_add_ps(acc[r][t]);
            for (int j = i; j < n; j++) out[t][r] += half_to_float(x[r][j], bf16) * half_to_float(y[t][j], bf16);
        }
}

AVX512 void eng_gemm4x4_f16_avx512(int n, const void *w, size_t w_stride, const void *a, size_t a_stride,
                                   float out[4][4])
{
    gemm4x4_halves(false, n, w, w_stride, a, a_stride, out);
}

AVX512 void eng_gemm4x4_bf16_avx512(int n, const void *w, size_t w_stride, const void *a, size_t a_stride,
                                    float out[4][4])
{
    gemm4x4_halves(true, n, w, w_stride, a, a_stride, out);
}
