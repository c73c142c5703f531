/* kernels_more_avx2.c: AVX2 dot products for Q4_1, Q5_0, Q5_1 and BF16.
 *
 * The 32-weight types work like Q4_0 in kernels_avx2.c: a block's codes are
 * widened to 32 bytes, multiplied with the activation bytes in integers,
 * and scaled once per block. Q5's fifth bits (32 of them in qh) are spread
 * to one byte each with a shuffle and a compare. Q4_1 and Q5_1 codes are
 * unsigned, so maddubs takes them directly, and their min term comes from
 * the Q8_1 block's precomputed d·Σq, as in the reference.
 */
#include "quant.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <string.h>

/* Bit j of qh as 0x10 in byte j. */
AVX2 static inline __m256i fifth_bits(const uint8_t qh_bytes[4])
{
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    /* byte j takes qh's byte j/8, then keeps bit j%8 */
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                             0x0101010101010101, 0x0000000000000000);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/* Unsigned codes (0..31) times signed activation bytes, summed to 8 int32, as floats. */
AVX2 static inline __m256 dot_u8_i8(__m256i codes, __m256i act)
{
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(codes, act), _mm256_set1_epi16(1)));
}

AVX2 float eng_vec_dot_q4_1_avx2(int n, const void *w, const void *a)
{
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    for (int i = 0; i < n / 32; i++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d));
        acc = _mm256_fmadd_ps(d, dot_u8_i8(nibbles(x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs)), acc);
        mins += _cvtsh_ss(x[i].m) * _cvtsh_ss(y[i].s);
    }
    return hsum_ps(acc) + mins;
}

AVX2 float eng_vec_dot_q5_0_avx2(int n, const void *w, const void *a)
{
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / 32; i++) {
        __m256i codes = _mm256_or_si256(nibbles(x[i].qs), fifth_bits(x[i].qh)); /* 0..31 */
        __m256i act = _mm256_loadu_si256((const __m256i *)y[i].qs);
        /* Σ(code-16)·q = Σcode·q - 16·Σq, both in integers */
        __m256i prod = _mm256_madd_epi16(_mm256_maddubs_epi16(codes, act), _mm256_set1_epi16(1));
        __m256i sum_q = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(16), act), _mm256_set1_epi16(1));
        __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(prod, sum_q)), acc);
    }
    return hsum_ps(acc);
}

AVX2 float eng_vec_dot_q5_1_avx2(int n, const void *w, const void *a)
{
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    for (int i = 0; i < n / 32; i++) {
        __m256i codes = _mm256_or_si256(nibbles(x[i].qs), fifth_bits(x[i].qh));
        __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d));
        acc = _mm256_fmadd_ps(d, dot_u8_i8(codes, _mm256_loadu_si256((const __m256i *)y[i].qs)), acc);
        mins += _cvtsh_ss(x[i].m) * _cvtsh_ss(y[i].s);
    }
    return hsum_ps(acc) + mins;
}

AVX2 float eng_vec_dot_bf16_avx2(int n, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(bf16_load8(x + i), bf16_load8(y + i), acc0);
        acc1 = _mm256_fmadd_ps(bf16_load8(x + i + 8), bf16_load8(y + i + 8), acc1);
    }
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += eng_bf16_to_fp32(x[i]) * eng_bf16_to_fp32(y[i]);
    return s;
}
