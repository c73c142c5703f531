/* kernels_x16_avx2.c: the 16-row interleaved kernels (gemm16) with AVX2.
 *
 * One 256-bit register holds 8 rows x 4 weights of an interleaved block
 * (interleave32.c, interleave_k.c); maddubs against 4 activation bytes broadcast to every lane
 * and madd to int32 leave 8 rows' sums in one register, so each block's
 * scales cost one convert and one FMA per token, not one per row. Each
 * kernel is inlined with its token count a constant (HALVES_TOKENS_BY_*).
 */
#include "quant.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <string.h>

#define PREFETCH_BLOCKS 16 /* blocks ahead: the hardware prefetcher alone falls behind */

/* The 16 rows of a gemm16 call as two halves of 8 (a 256-bit register's
 * worth), each through `kernel` with the T tokens in groups of at most 4 (or
 * 2, for kernels with more registers live per token), NT a constant in each
 * call: kernel(NT, half, args..., act, a_stride, out, out_stride). */
#define HALVES_TOKENS_BY_4(kernel, ...)                                                                     \
    for (int h_ = 0; h_ < 2; h_++) {                                                                        \
        int t_ = 0;                                                                                         \
        for (; t_ + 4 <= T; t_ += 4) kernel(4, h_, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); \
        switch (T - t_) {                                                                                   \
        case 3: kernel(3, h_, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;            \
        case 2: kernel(2, h_, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;            \
        case 1: kernel(1, h_, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;            \
        default: break;                                                                                     \
        }                                                                                                   \
    }
#define HALVES_TOKENS_BY_2(kernel, ...)                                                                     \
    for (int h_ = 0; h_ < 2; h_++) {                                                                        \
        int t_ = 0;                                                                                         \
        for (; t_ + 2 <= T; t_ += 2) kernel(2, h_, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); \
        if (t_ < T) kernel(1, h_, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride);               \
    }

/* ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (interleave32.c) ---- */

/* Bit `bit` of every byte of v, moved to bit 4 (Q5's fifth bits, as 16). */
AVX2 static inline __m256i bit_to_16(__m256i v, int bit)
{
    v = _mm256_and_si256(v, _mm256_set1_epi8((char)(1 << bit)));
    return bit < 4 ? _mm256_slli_epi16(v, 4 - bit) : bit > 4 ? _mm256_srli_epi16(v, bit - 4) : v;
}

/* NT tokens against 8 of a group's 16 rows (half h) of a 32-weight type:
 * per block, 8 registers of 8 rows x 4 weights; per token, maddubs with
 * the 4 activation bytes broadcast gives pair sums that add up in int16
 * (4-bit codes: 8 x 2 x 15 x 127 < 32768; 5-bit codes in two halves of
 * four), then madd to the rows' int32 sums. */
AVX2 static inline __attribute__((always_inline)) void x16_32_half(
    int NT, int h, bool bits8, bool has_m, bool has_qh, int nb, const uint8_t *w, const uint8_t *a, size_t a_stride,
    float *out, size_t out_stride)
{
    const size_t block_bytes = bits8 ? 544 : 288 + 32 * has_m + 64 * has_qh;
    const __m256i low4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * block_bytes, *qs = blk + block_bytes - (bits8 ? 512 : 256);
        for (size_t l = 0; l < block_bytes; l += 64) _mm_prefetch((const char *)blk + PREFETCH_BLOCKS * block_bytes + l, _MM_HINT_T0);
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16 * h)));
        if (bits8) { /* Q8_0: signed codes, so maddubs takes |w| and a with w's sign (no overflow) */
            for (int t = 0; t < NT; t++) {
                const block_q8_0_x *y = (const block_q8_0_x *)(a + (size_t)t * a_stride) + b;
                const i32_alias *q = (const i32_alias *)y->qs;
                __m256i s = _mm256_setzero_si256();
                for (int m = 0; m < 8; m++) {
                    __m256i wv = _mm256_loadu_si256((const __m256i *)(qs + 64 * m + 32 * h));
                    __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(_mm256_set1_epi32(q[m]), wv));
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
                }
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(y->d)), acc[t]);
            }
            continue;
        }
        __m256 mw = has_m ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 32 + 16 * h))) : _mm256_setzero_ps();
        __m256i hb = has_qh ? _mm256_loadu_si256((const __m256i *)(blk + 32 + 32 * has_m + 32 * h)) : _mm256_setzero_si256();
        __m256i wv[8];
        for (int m = 0; m < 4; m++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 64 * m + 32 * h));
            wv[m] = _mm256_and_si256(raw, low4);
            wv[m + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
            if (has_qh) {
                wv[m] = _mm256_or_si256(wv[m], bit_to_16(hb, 2 * m));
                wv[m + 4] = _mm256_or_si256(wv[m + 4], bit_to_16(hb, 2 * m + 1));
            }
        }
        for (int t = 0; t < NT; t++) {
            const block_q8_0_x *y = (const block_q8_0_x *)(a + (size_t)t * a_stride) + b;
            const i32_alias *q = (const i32_alias *)y->qs; /* broadcast straight from memory */
            __m256i s;
            if (has_qh) {
                __m256i lo = _mm256_maddubs_epi16(wv[0], _mm256_set1_epi32(q[0])), hi = _mm256_maddubs_epi16(wv[4], _mm256_set1_epi32(q[4]));
                for (int k = 1; k < 4; k++) {
                    lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(wv[k], _mm256_set1_epi32(q[k])));
                    hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(wv[k + 4], _mm256_set1_epi32(q[k + 4])));
                }
                s = _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones));
            } else {
                __m256i s16 = _mm256_maddubs_epi16(wv[0], _mm256_set1_epi32(q[0]));
                for (int k = 1; k < 8; k++) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(wv[k], _mm256_set1_epi32(q[k])));
                s = _mm256_madd_epi16(s16, ones);
            }
            s = _mm256_add_epi32(s, _mm256_set1_epi32(y->seed));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(y->d)), acc[t]);
            if (has_m) acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(y->s), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(out + (size_t)t * out_stride + 8 * h, acc[t]);
}

#define X16_32_AVX2(t, bits8, has_m, has_qh)                                                               \
    AVX2 void eng_gemm16_##t##_x16_avx2(int n, const void *w, const void *a, size_t a_stride, int T,       \
                                        float *out, size_t out_stride)                                    \
    {                                                                                                      \
        HALVES_TOKENS_BY_4(x16_32_half, bits8, has_m, has_qh, n / 32, w);                                  \
    }
X16_32_AVX2(q4_0, false, false, false)
X16_32_AVX2(q4_1, false, true, false)
X16_32_AVX2(q5_0, false, false, true)
X16_32_AVX2(q5_1, false, true, true)
X16_32_AVX2(q8_0, true, false, false)

/* ---- Q4_K and Q5_K (interleave_k.c) ---- */

/* NT tokens against 8 of a group's 16 Q4_K or Q5_K rows (half h), as the
 * AVX-512 kernel does it: per sub-block 8 maddubs summed in int16 (codes up
 * to 31: 8 x 2 x 31 x 127 would not fit, so Q5_K sums two halves of four),
 * one madd to the rows' int32 sums, times the rows' scales; the mins by
 * madd with the activation's per-32 sums. */
AVX2 static inline __attribute__((always_inline)) void q45_k_x16_half(
    int NT, int h, bool q5, int nb, const uint8_t *w, const uint8_t *a, size_t a_stride, float *out, size_t out_stride)
{
    const size_t block_bytes = q5 ? sizeof(block_q5_k_x16) : sizeof(block_q4_k_x16);
    const __m256i low4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const block_q4_k_x16 *g = (const block_q4_k_x16 *)(w + (size_t)b * block_bytes);
        const uint8_t (*qh)[16][4] = q5 ? ((const block_q5_k_x16 *)g)->qh : NULL;
        __m256i sumi[4];
        for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            for (int l = 0; l < (q5 ? 6 : 5); l++)
                _mm_prefetch((const char *)g + 2 * block_bytes + 64 * ((q5 ? 6 : 5) * j + l), _MM_HINT_T0);
            __m256i sc = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)&g->sc[j][8 * h]));
            __m256i wv[8];
            for (int m = 0; m < 8; m++) {
                __m256i raw = _mm256_loadu_si256((const __m256i *)g->qs[j / 2][m][8 * h]);
                wv[m] = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(raw, 4) : raw, low4);
                if (q5) {
                    __m256i hb = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)qh[m][8 * h]),
                                                  _mm256_set1_epi8((char)(1 << j)));
                    hb = j < 4 ? _mm256_slli_epi16(hb, 4 - j) : _mm256_srli_epi16(hb, j - 4);
                    wv[m] = _mm256_or_si256(wv[m], hb);
                }
            }
            for (int t = 0; t < NT; t++) {
                const block_q8_k_sums *y = (const block_q8_k_sums *)(a + (size_t)t * a_stride) + b;
                const i32_alias *q = (const i32_alias *)(y->qs + 32 * j);
                __m256i s16[2];
                for (int half = 0; half < 2; half++) {
                    s16[half] = _mm256_maddubs_epi16(wv[4 * half], _mm256_set1_epi32(q[4 * half]));
                    for (int m = 4 * half + 1; m < 4 * half + 4; m++)
                        s16[half] = _mm256_add_epi16(s16[half], _mm256_maddubs_epi16(wv[m], _mm256_set1_epi32(q[m])));
                }
                __m256i s = _mm256_add_epi32(_mm256_madd_epi16(s16[0], ones), _mm256_madd_epi16(s16[1], ones));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(s, sc));
            }
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)&g->d[8 * h]));
        __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)&g->dmin[8 * h]));
        for (int t = 0; t < NT; t++) {
            const block_q8_k_sums *y = (const block_q8_k_sums *)(a + (size_t)t * a_stride) + b;
            const i32_alias *bs = (const i32_alias *)y->bsums32;
            __m256i summ = _mm256_setzero_si256();
            for (int p = 0; p < 4; p++) {
                __m256i mn = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)g->mn[p][8 * h]));
                summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mn, _mm256_set1_epi32(bs[p])));
            }
            __m256 da = _mm256_set1_ps(y->d);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, da), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dmw, da), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(out + (size_t)t * out_stride + 8 * h, acc[t]);
}

AVX2 void eng_gemm16_q4_k_x16_avx2(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                   size_t out_stride)
{
    HALVES_TOKENS_BY_4(q45_k_x16_half, false, n / QK_K, w);
}

AVX2 void eng_gemm16_q5_k_x16_avx2(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                   size_t out_stride)
{
    HALVES_TOKENS_BY_4(q45_k_x16_half, true, n / QK_K, w);
}

/* ---- Q6_K and Q3_K (interleave_k.c) ---- */

/* 8 rows (half r8 of 16) x 4 codes of quadrant k of half h; see the AVX-512 q6_codes and q3_codes. */
AVX2 static inline __m256i q6_codes8(const block_q6_k_x16 *g, int r8, int h, int k, int m)
{
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256i l = _mm256_loadu_si256((const __m256i *)g->ql[h][(k % 2) * 8 + m][8 * r8]);
    __m256i hi = _mm256_loadu_si256((const __m256i *)g->qh[h][m][8 * r8]);
    l = k < 2 ? _mm256_and_si256(l, low4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), low4);
    hi = _mm256_and_si256(hi, _mm256_set1_epi8((char)(3 << (2 * k))));
    hi = k == 0 ? _mm256_slli_epi16(hi, 4) : k == 1 ? _mm256_slli_epi16(hi, 2) : k == 2 ? hi : _mm256_srli_epi16(hi, 2);
    return _mm256_or_si256(l, hi);
}

AVX2 static inline __m256i q3_codes8(const block_q3_k_x16 *g, int r8, int h, int k, int m)
{
    __m256i lo = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)g->qs[h][m][8 * r8]), 2 * k);
    lo = _mm256_and_si256(lo, _mm256_set1_epi8(3));
    int bit = 4 * h + k;
    __m256i hi = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)g->hm[m][8 * r8]), _mm256_set1_epi8((char)(1 << bit)));
    hi = bit < 2 ? _mm256_slli_epi16(hi, 2 - bit) : _mm256_srli_epi16(hi, bit - 2);
    return _mm256_or_si256(lo, hi);
}

/* NT tokens against 8 of a group's 16 Q6_K or Q3_K rows. Two maddubs of
 * 6-bit codes fit int16 (2 x 2 x 63 x 127 < 32768), so each 16 weights take
 * two int16 pairs, madd'ed to int32 and seeded with -offset x the
 * activation sum. */
AVX2 static inline __attribute__((always_inline)) void k16_x16_half(
    int NT, int r8, bool q3, int nb, const uint8_t *w, const uint8_t *a, size_t a_stride, float *out, size_t out_stride)
{
    const size_t block_bytes = q3 ? sizeof(block_q3_k_x16) : sizeof(block_q6_k_x16);
    const int lines = q3 ? 4 : 7;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * block_bytes;
        const block_q6_k_x16 *g6 = (const block_q6_k_x16 *)blk; /* for d and sc, shared */
        __m256i sumi[2];
        for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < lines; l++)
                    _mm_prefetch((const char *)blk + 2 * block_bytes + 64 * (lines * (4 * h + k) + l), _MM_HINT_T0);
                int g0 = 8 * h + 2 * k;
                __m256i wv[8];
                for (int m = 0; m < 8; m++)
                    wv[m] = q3 ? q3_codes8((const block_q3_k_x16 *)blk, r8, h, k, m) : q6_codes8(g6, r8, h, k, m);
                __m256i sc[2] = {_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)&g6->sc[g0][8 * r8])),
                                 _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)&g6->sc[g0 + 1][8 * r8]))};
                for (int t = 0; t < NT; t++) {
                    const block_q8_k_seeds *y = (const block_q8_k_seeds *)(a + (size_t)t * a_stride) + b;
                    const i32_alias *q = (const i32_alias *)(y->qs + 128 * h + 32 * k);
                    for (int s = 0; s < 2; s++) {
                        const __m256i *ws = wv + 4 * s;
                        const i32_alias *qs = q + 4 * s;
                        __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(ws[0], _mm256_set1_epi32(qs[0])),
                                                      _mm256_maddubs_epi16(ws[1], _mm256_set1_epi32(qs[1])));
                        __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(ws[2], _mm256_set1_epi32(qs[2])),
                                                      _mm256_maddubs_epi16(ws[3], _mm256_set1_epi32(qs[3])));
                        __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones));
                        sum = _mm256_add_epi32(sum, _mm256_set1_epi32(y->seed[g0 + s]));
                        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(sum, sc[s]));
                    }
                }
            }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)&g6->d[8 * r8]));
        for (int t = 0; t < NT; t++) {
            const block_q8_k_seeds *y = (const block_q8_k_seeds *)(a + (size_t)t * a_stride) + b;
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, _mm256_set1_ps(y->d)), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(out + (size_t)t * out_stride + 8 * r8, acc[t]);
}

AVX2 void eng_gemm16_q6_k_x16_avx2(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                   size_t out_stride)
{
    HALVES_TOKENS_BY_2(k16_x16_half, false, n / QK_K, w);
}

AVX2 void eng_gemm16_q3_k_x16_avx2(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                   size_t out_stride)
{
    HALVES_TOKENS_BY_2(k16_x16_half, true, n / QK_K, w);
}

/* ---- Q2_K (interleave_k.c) ---- */

/* NT tokens against 8 of a group's 16 Q2_K rows, as the AVX-512 kernel does
 * it; four maddubs of 2-bit codes sum in int16 without overflow. */
AVX2 static inline __attribute__((always_inline)) void q2_k_x16_half(
    int NT, int r8, int nb, const block_q2_k_x16 *g, const uint8_t *a, size_t a_stride, float *out, size_t out_stride)
{
    const __m256i three = _mm256_set1_epi8(3), low4 = _mm256_set1_epi32(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[2];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i sumi[2], summ[2];
        for (int t = 0; t < NT; t++) sumi[t] = summ[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < 3; l++)
                    _mm_prefetch((const char *)(g + b + 2) + 64 * (3 * (4 * h + k) + l), _MM_HINT_T0);
                int p = 4 * h + k;
                __m256i wv[8];
                for (int m = 0; m < 8; m++)
                    wv[m] = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)g[b].qs[h][m][8 * r8]), 2 * k), three);
                __m256i sm = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)g[b].sm[p][8 * r8]));
                __m256i sc[2] = {_mm256_and_si256(sm, low4), _mm256_and_si256(_mm256_srli_epi32(sm, 16), low4)};
                __m256i mn = _mm256_srli_epi16(sm, 4);
                for (int t = 0; t < NT; t++) {
                    const block_q8_k *y = (const block_q8_k *)(a + (size_t)t * a_stride) + b;
                    const i32_alias *q = (const i32_alias *)(y->qs + 128 * h + 32 * k);
                    for (int s = 0; s < 2; s++) {
                        __m256i s16 = _mm256_maddubs_epi16(wv[4 * s], _mm256_set1_epi32(q[4 * s]));
                        for (int m = 4 * s + 1; m < 4 * s + 4; m++)
                            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(wv[m], _mm256_set1_epi32(q[m])));
                        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(_mm256_madd_epi16(s16, ones), sc[s]));
                    }
                    summ[t] = _mm256_add_epi32(summ[t], _mm256_madd_epi16(mn, _mm256_set1_epi32(((const i32_alias *)y->bsums)[p])));
                }
            }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)&g[b].d[8 * r8]));
        __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)&g[b].dmin[8 * r8]));
        for (int t = 0; t < NT; t++) {
            const block_q8_k *y = (const block_q8_k *)(a + (size_t)t * a_stride) + b;
            __m256 da = _mm256_set1_ps(y->d);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, da), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ[t]), _mm256_mul_ps(dmw, da), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(out + (size_t)t * out_stride + 8 * r8, acc[t]);
}

AVX2 void eng_gemm16_q2_k_x16_avx2(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                   size_t out_stride)
{
    HALVES_TOKENS_BY_2(q2_k_x16_half, n / QK_K, w);
}
