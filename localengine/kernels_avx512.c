/* kernels_avx512.c: AVX-512 VNNI versions of the quantized dot products.
 *
 * Chosen at run time where the CPU has AVX-512 F/BW/VL/DQ and VNNI (recent
 * AMD EPYC and Intel Xeon); elsewhere the AVX2 or reference kernels run.
 * One 512-bit register holds two 32-weight blocks. VNNI's dpbusd multiplies
 * unsigned by signed bytes and sums in fours straight into int32, so the
 * Q4_0 nibbles stay unsigned (0..15) and the offset of 8 comes off as
 * 8 * (sum of the activations), computed once per activation row
 * (eng_q8_pair) and used to seed the accumulation.
 */
#include "quant.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

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

/* Q4_0 weights against prepared activations (eng_q8_pair): the offset seed
 * and scales come ready, so a weight pair costs one dpbusd, a convert, a
 * multiply and an FMA. */
AVX512 static inline __m512 q4_pair_dot(const block_q4_0 *x, const eng_q8_pair *p)
{
    __m512 dw = scales(_cvtsh_ss(x[0].d), _cvtsh_ss(x[1].d));
    __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(p->neg_off), q4_pair(x), _mm512_loadu_si512(p->q));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_loadu_ps(p->d)));
}

/* The odd last block of a row is stored plain after the pairs. */
static inline const block_q8_0 *pairs_tail(const void *a, int nb)
{
    return (const block_q8_0 *)((const eng_q8_pair *)a + nb / 2);
}

AVX512 float eng_vec_dot_q4_0_pairs_avx512(int n, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const eng_q8_pair *p = a;
    __m512 acc = _mm512_setzero_ps();
    int nb = n / QK4_0, i = 0;
    for (; i + 2 <= nb; i += 2) acc = _mm512_add_ps(acc, q4_pair_dot(x + i, p + i / 2));
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) s += eng_vec_dot_q4_0_avx2(QK4_0, x + i, pairs_tail(a, nb));
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
    const eng_q8_pair *p[4];
    for (int k = 0; k < 4; k++) p[k] = (const eng_q8_pair *)((const uint8_t *)a + (size_t)k * stride);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int nb = n / 32, i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i wv = q4_pair(x + i);
        __m512 dw = scales(_cvtsh_ss(x[i].d), _cvtsh_ss(x[i + 1].d));
        for (int k = 0; k < 4; k++) {
            const eng_q8_pair *pk = p[k] + i / 2;
            __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(pk->neg_off), wv, _mm512_loadu_si512(pk->q));
            acc[k] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(pk->d)), _mm512_cvtepi32_ps(dot), acc[k]);
        }
    }
    for (int k = 0; k < 4; k++) {
        out[k] = _mm512_reduce_add_ps(acc[k]);
        if (i < nb) out[k] += eng_vec_dot_q4_0_avx2(32, x + i, pairs_tail(p[k], nb));
    }
}

AVX512 void eng_vec_dot4_q8_0_avx512(int n, const void *w, const void *a, size_t stride, float out[4])
{
    const block_q8_0 *x = w;
    DOT4_512(q8_pair(x + i), q8_dot, eng_vec_dot_q8_0_avx2)
}

/* ---- Q8_0 weights on prepared pairs: flipping the top bit makes a signed
 * weight w unsigned (w + 128); the -128*sum seed takes the offset back. ---- */

AVX512 static inline __m512i q8_pair_unsigned(const block_q8_0 *x)
{
    return _mm512_xor_si512(q8_pair(x), _mm512_set1_epi8((char)0x80));
}

AVX512 float eng_vec_dot_q8_0_pairs_avx512(int n, const void *w, const void *a)
{
    const block_q8_0 *x = w;
    const eng_q8_pair *p = a;
    __m512 acc = _mm512_setzero_ps();
    int nb = n / QK8_0, i = 0;
    for (; i + 2 <= nb; i += 2) {
        const eng_q8_pair *pp = p + i / 2;
        __m512 dw = scales(_cvtsh_ss(x[i].d), _cvtsh_ss(x[i + 1].d));
        __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(pp->neg_off128), q8_pair_unsigned(x + i), _mm512_loadu_si512(pp->q));
        acc = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(pp->d)), _mm512_cvtepi32_ps(dot), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) s += eng_vec_dot_q8_0_avx2(QK8_0, x + i, pairs_tail(a, nb));
    return s;
}

AVX512 void eng_vec_dot4_q8_0_pairs_avx512(int n, const void *w, const void *a, size_t stride, float out[4])
{
    for (int k = 0; k < 4; k++) out[k] = eng_vec_dot_q8_0_pairs_avx512(n, w, (const uint8_t *)a + (size_t)k * stride);
}

/* Four weight rows against four activation rows, out[t][r]: the 4x4 tile of
 * prompt processing, for Q4_0 or Q8_0 weights on prepared pairs. Each weight
 * pair is made unsigned once for four tokens and each activation pair loaded
 * once for four rows. Inlined into each caller, so `q8` is a constant. */
AVX512 static inline __attribute__((always_inline)) void gemm4x4_pairs(
    bool q8, int n, const void *w, size_t w_stride, const void *a, size_t a_stride, float out[4][4])
{
    const uint8_t *row[4];
    const eng_q8_pair *p[4];
    for (int k = 0; k < 4; k++) {
        row[k] = (const uint8_t *)w + (size_t)k * w_stride;
        p[k] = (const eng_q8_pair *)((const uint8_t *)a + (size_t)k * a_stride);
    }
    const size_t block = q8 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    int nb = n / 32, i = 0;
    for (; i + 2 <= nb; i += 2) {
        /* weights first (4 rows), then one token at a time: 16 accumulators,
         * 8 weight registers and 3 for the token fit the 32 registers */
        __m512i wv[4];
        __m512 dw[4];
        for (int r = 0; r < 4; r++) {
            const uint8_t *b0 = row[r] + (size_t)i * block, *b1 = b0 + block;
            wv[r] = q8 ? q8_pair_unsigned((const block_q8_0 *)b0) : q4_pair((const block_q4_0 *)b0);
            uint16_t h0, h1; /* both block types start with their fp16 scale */
            memcpy(&h0, b0, 2);
            memcpy(&h1, b1, 2);
            dw[r] = scales(_cvtsh_ss(h0), _cvtsh_ss(h1));
        }
        for (int t = 0; t < 4; t++) {
            const eng_q8_pair *pt = &p[t][i / 2];
            __m512i av = _mm512_loadu_si512(pt->q);
            __m512i seed = _mm512_loadu_si512(q8 ? pt->neg_off128 : pt->neg_off);
            __m512 da = _mm512_loadu_ps(pt->d);
            for (int r = 0; r < 4; r++) {
                __m512 q = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(seed, wv[r], av));
                acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], da), q, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) {
            out[t][r] = _mm512_reduce_add_ps(acc[r][t]);
            if (i < nb) {
                const void *last = row[r] + (size_t)i * block;
                out[t][r] += q8 ? eng_vec_dot_q8_0_avx2(32, last, pairs_tail(p[t], nb))
                                : eng_vec_dot_q4_0_avx2(32, last, pairs_tail(p[t], nb));
            }
        }
}

AVX512 void eng_gemm4x4_q4_0_avx512(int n, const void *w, size_t w_stride, const void *a, size_t a_stride,
                                    float out[4][4])
{
    gemm4x4_pairs(false, n, w, w_stride, a, a_stride, out);
}

AVX512 void eng_gemm4x4_q8_0_avx512(int n, const void *w, size_t w_stride, const void *a, size_t a_stride,
                                    float out[4][4])
{
    gemm4x4_pairs(true, n, w, w_stride, a, a_stride, out);
}
