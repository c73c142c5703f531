/* simd_avx2.h: what every AVX2 kernel file shares.
 *
 * The kernels are compiled into every build with a per-function target
 * attribute (so one binary runs on any x86-64 and picks them at run time);
 * these helpers carry the same attribute so they inline into the kernels.
 */
#ifndef JUNCTION_SIMD_AVX2_H
#define JUNCTION_SIMD_AVX2_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* 4 activation codes read as one lane, for broadcasts. */
typedef int32_t __attribute__((may_alias)) i32_alias;

/* Activation row t and output row t of a gemm16 call (its a, a_stride, out
 * and out_stride in scope). */
#define ACT_AT(t) ((const uint8_t *)a + (size_t)(t) * a_stride)
#define OUT_AT(t) (out + (size_t)(t) * out_stride)

/* Sum of the 8 floats. */
AVX2 static inline float hsum_ps(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* Sum of the 8 int32. */
AVX2 static inline int hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The 32 nibbles of a 32-weight block, byte j = weight j (the low nibbles
 * of the 16 bytes are weights 0..15): the Q4_0/Q4_1/Q5 packing. */
AVX2 static inline __m256i nibbles(const uint8_t qs[16])
{
    __m128i p = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), _mm256_set1_epi8(0x0f));
}

/* bf16 is the top half of an fp32: widening is a shift. */
AVX2 static inline __m256 bf16_load8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* 8 halves (fp16, or bf16 when `bf16`) to floats. */
AVX2 static inline __m256 half_load8(const uint16_t *p, bool bf16)
{
    return bf16 ? bf16_load8(p) : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

#endif
