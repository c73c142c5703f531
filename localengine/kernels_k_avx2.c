/* kernels_k_avx2.c: AVX2 dot products for the K-quants against Q8_K.
 *
 * The codes are unsigned (Q2_K 0..3, Q3_K 0..7 before its -4, Q4_K 0..15,
 * Q5_K 0..31, Q6_K 0..63 before its -32), so
 * maddubs takes them as its unsigned side directly; each 16 int16 partial
 * sums are then weighted by their sub-block scale with one madd. Offsets
 * and mins need no per-weight work: the Q8_K block's sums per 16 give them.
 */
#include "quant.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <string.h>

/* Q2_K and Q3_K: per 128 weights 32 bytes hold four 2-bit planes, plane p
 * being weights 32p..32p+31. Each plane is two sub-blocks of 16, so one
 * madd with (scale of the first, scale of the second) weights it. `hmask`
 * (Q3_K) adds the third bit: plane k of the block is bit k of hmask. */
AVX2 static inline int planes_dot(const uint8_t *qs, const uint8_t *hmask, const int8_t *q8, const int16_t scale[16])
{
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256i acc = _mm256_setzero_si256();
    __m256i h = hmask ? _mm256_loadu_si256((const __m256i *)hmask) : _mm256_setzero_si256();
    for (int n = 0; n < 2; n++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * n));
        for (int p = 0; p < 4; p++) {
            int k = 4 * n + p;
            __m256i code = _mm256_and_si256(_mm256_srli_epi16(q, 2 * p), m3);
            if (hmask) code = _mm256_or_si256(code, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, k), one), 2));
            __m256i av = _mm256_loadu_si256((const __m256i *)(q8 + 32 * k));
            __m256i sc = _mm256_set_m128i(_mm_set1_epi16(scale[2 * k + 1]), _mm_set1_epi16(scale[2 * k]));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(code, av), sc));
        }
    }
    return hsum_i32(acc);
}

/* Σ a[j]·b[j] over 16 int16 pairs. */
AVX2 static inline int dot16_i16(__m256i a, const int16_t b[16])
{
    return hsum_i32(_mm256_madd_epi16(a, _mm256_loadu_si256((const __m256i *)b)));
}

AVX2 float eng_vec_dot_q2_k_avx2(int n, const void *w, const void *a)
{
    const block_q2_k *x = w;
    const block_q8_k *y = a;
    const __m128i m4 = _mm_set1_epi8(0x0f);
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) {
        /* per 16 weights a byte: scale in the low nibble, min in the high one */
        __m128i packed = _mm_loadu_si128((const __m128i *)x[i].scales);
        int16_t sc[16];
        _mm256_storeu_si256((__m256i *)sc, _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4)));
        int mins = dot16_i16(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4)), y[i].bsums);
        int sum = planes_dot(x[i].qs, NULL, y[i].qs, sc);
        s += _cvtsh_ss(x[i].d) * y[i].d * (float)sum - _cvtsh_ss(x[i].dmin) * y[i].d * (float)mins;
    }
    return s;
}

/* Q3_K's 16 six-bit scales, as int16 -32..31: the low four bits are the
 * nibbles of bytes 0..7 (low nibbles first), the high two are bit pairs of
 * bytes 8..11 (scale j: byte 8 + j%4, pair j/4). */
AVX2 static inline __m256i q3_k_scales(const uint8_t s12[12])
{
    __m128i raw = _mm_loadl_epi64((const __m128i *)s12), m4 = _mm_set1_epi8(0x0f); /* bytes 0..7 */
    __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(raw, m4), _mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    uint32_t aux;
    memcpy(&aux, s12 + 8, 4);
    __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)aux), _mm_set_epi32(6, 4, 2, 0)), _mm_set1_epi8(3));
    __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
    return _mm256_cvtepi8_epi16(sc);
}

AVX2 float eng_vec_dot_q3_k_avx2(int n, const void *w, const void *a)
{
    const block_q3_k *x = w;
    const block_q8_k *y = a;
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) {
        __m256i sc16 = q3_k_scales(x[i].scales);
        int16_t sc[16];
        _mm256_storeu_si256((__m256i *)sc, sc16);
        /* codes are stored as 0..7, meaning -4..3: the -4 through the sums per 16 */
        int sum = planes_dot(x[i].qs, x[i].hmask, y[i].qs, sc) - 4 * dot16_i16(sc16, y[i].bsums);
        s += _cvtsh_ss(x[i].d) * y[i].d * (float)sum;
    }
    return s;
}

/* One Q4_K or Q5_K block: nibbles in qs (per 64 weights 32 bytes, low
 * nibbles the first 32), Q5_K's fifth bits in qh (bit 2j for the low
 * nibbles of chunk j, bit 2j+1 for the high ones; NULL for Q4_K). Inlined
 * into each caller, so Q4_K's copy has no qh work at all. */
AVX2 static inline float q45_k_block(uint16_t d, uint16_t dmin, const uint8_t *scales, const uint8_t *qs,
                                     const uint8_t *qh, const block_q8_k *y)
{
    const __m256i low4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    int sc[8], mn[8];
    eng_q4_k_scales(scales, sc, mn);
    int mins = 0;
    for (int j = 0; j < 8; j++) mins += mn[j] * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
    __m256i acc = _mm256_setzero_si256();
    __m256i h = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) { /* 64 weights: low nibbles are sub-block 2j, high 2j+1 */
        __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
        __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if (qh) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * j), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * j + 1), one), 4));
        }
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(y->qs + 64 * j));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(y->qs + 64 * j + 32));
        __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), _mm256_set1_epi16((short)sc[2 * j]));
        __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), _mm256_set1_epi16((short)sc[2 * j + 1]));
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
    }
    return _cvtsh_ss(d) * y->d * (float)hsum_i32(acc) - _cvtsh_ss(dmin) * y->d * (float)mins;
}

AVX2 float eng_vec_dot_q4_k_avx2(int n, const void *w, const void *a)
{
    const block_q4_k *x = w;
    const block_q8_k *y = a;
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) s += q45_k_block(x[i].d, x[i].dmin, x[i].scales, x[i].qs, NULL, &y[i]);
    return s;
}

AVX2 float eng_vec_dot_q5_k_avx2(int n, const void *w, const void *a)
{
    const block_q5_k *x = w;
    const block_q8_k *y = a;
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) s += q45_k_block(x[i].d, x[i].dmin, x[i].scales, x[i].qs, x[i].qh, &y[i]);
    return s;
}

AVX2 float eng_vec_dot_q6_k_avx2(int n, const void *w, const void *a)
{
    const block_q6_k *x = w;
    const block_q8_k *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) {
        /* the -32 of every code, through the activation sums per 16 */
        int offset = 0;
        for (int j = 0; j < 16; j++) offset += x[i].scales[j] * y[i].bsums[j];
        __m256i acc = _mm256_setzero_si256();
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs, *sc = x[i].scales;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, q8 += 128, sc += 8) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);        /* codes 0..31 low, 64..95 high */
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32)); /* codes 32..63 low, 96..127 high */
            __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i c[4];
            c[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            c[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
            c[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            c[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            for (int k = 0; k < 4; k++) { /* 32 codes = sub-blocks 2k and 2k+1 of this half */
                __m256i av = _mm256_loadu_si256((const __m256i *)(q8 + 32 * k));
                __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(c[k], av), scale));
            }
        }
        s += _cvtsh_ss(x[i].d) * y[i].d * (float)(hsum_i32(acc) - 32 * offset);
    }
    return s;
}
