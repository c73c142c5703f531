/* kernels_x16_avx512.c: the 16-row interleaved kernels (gemm16) with
 * AVX-512 VNNI.
 *
 * One 512-bit register holds 16 rows x 4 weights of an interleaved block
 * (interleave32.c, interleave_k.c); one dpbusd against 4 activation bytes broadcast to every lane
 * advances all 16 rows, whose sums come out in one register and are scaled
 * with one convert and one FMA per block and token. Codes stay unsigned and
 * a type's offset comes off through the seed of the sums. Each kernel is
 * inlined with its token count a constant (TOKENS_BY_8), so its token loop
 * unrolls and the accumulators stay in registers.
 */
#include "quant.h"
#include "simd_avx512.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

/* Blocks ahead to prefetch. With several tokens per block the loop does
 * enough work per byte that the hardware prefetcher falls behind; asking 16
 * blocks (4.5 KiB) ahead took 4 streams from 27 to 43 tok/s on 7B Q4_0. */
#define PREFETCH_BLOCKS 16

/* The T tokens of a gemm16 call through `kernel` in groups of at most 8, NT
 * a constant in each call so that the kernel's token loop unrolls and its
 * accumulators stay in registers: kernel(NT, args..., act, a_stride, out, out_stride). */
#define TOKENS_BY_8(kernel, ...)                                                                         \
    do {                                                                                                 \
        int t_ = 0;                                                                                      \
        for (; t_ + 8 <= T; t_ += 8) kernel(8, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); \
        switch (T - t_) {                                                                                \
        case 7: kernel(7, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;             \
        case 6: kernel(6, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;             \
        case 5: kernel(5, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;             \
        case 4: kernel(4, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;             \
        case 3: kernel(3, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;             \
        case 2: kernel(2, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;             \
        case 1: kernel(1, __VA_ARGS__, ACT_AT(t_), a_stride, OUT_AT(t_), out_stride); break;             \
        default: break;                                                                                  \
        }                                                                                                \
    } while (0)

/* ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (interleave32.c) ---- */

/* Bit `bit` of every byte of v, moved to bit 4 (Q5's fifth bits, as 16). */
AVX512 static inline __m512i bit_to_16(__m512i v, int bit)
{
    v = _mm512_and_si512(v, _mm512_set1_epi8((char)(1 << bit)));
    return bit < 4 ? _mm512_slli_epi16(v, 4 - bit) : bit > 4 ? _mm512_srli_epi16(v, bit - 4) : v;
}

/* NT tokens against one group of 16 rows of a 32-weight type (has_m: Q4_1,
 * Q5_1; has_qh: Q5_0, Q5_1; constants in each caller, so the token loop
 * unrolls and the accumulators stay in registers). Each block's codes are
 * unpacked once into 8 registers of 16 rows x 4 weights; per token, 8
 * dpbusd with the matching 4 activation bytes broadcast leave the 16 rows'
 * integer sums in one register, seeded with -offset x the activation sum
 * where the type has an offset; Q4_1 and Q5_1 add m x s instead. */
AVX512 static inline __attribute__((always_inline)) void x16_32_tokens(
    int NT, bool bits8, bool has_m, bool has_qh, int nb, const uint8_t *w, const uint8_t *a, size_t a_stride,
    float *out, size_t out_stride)
{
    const size_t block_bytes = bits8 ? 544 : 288 + 32 * has_m + 64 * has_qh;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * block_bytes, *qs = blk + block_bytes - (bits8 ? 512 : 256);
        for (size_t l = 0; l < block_bytes; l += 64) _mm_prefetch((const char *)blk + PREFETCH_BLOCKS * block_bytes + l, _MM_HINT_T0);
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        __m512 mw = has_m ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32))) : _mm512_setzero_ps();
        __m512i hb = has_qh ? _mm512_loadu_si512(blk + 32 + 32 * has_m) : _mm512_setzero_si512();
        __m512i wv[8];
        for (int m = 0; bits8 && m < 8; m++) /* Q8_0: signed codes made unsigned by their top bit */
            wv[m] = _mm512_xor_si512(_mm512_loadu_si512(qs + 64 * m), _mm512_set1_epi8((char)0x80));
        for (int m = 0; !bits8 && m < 4; m++) {
            __m512i raw = _mm512_loadu_si512(qs + 64 * m);
            wv[m] = _mm512_and_si512(raw, low4);                            /* weights 4m..4m+3 */
            wv[m + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);  /* weights 16+4m.. */
            if (has_qh) {
                wv[m] = _mm512_or_si512(wv[m], bit_to_16(hb, 2 * m));
                wv[m + 4] = _mm512_or_si512(wv[m + 4], bit_to_16(hb, 2 * m + 1));
            }
        }
        for (int t = 0; t < NT; t++) {
            const block_q8_0_x *y = (const block_q8_0_x *)(a + (size_t)t * a_stride) + b;
            const i32_alias *q = (const i32_alias *)y->qs; /* broadcast straight from memory */
            /* two chains of four, so dpbusd's latency overlaps */
            __m512i s0 = _mm512_set1_epi32(y->seed), s1 = _mm512_setzero_si512();
            for (int k = 0; k < 8; k += 2) {
                s0 = _mm512_dpbusd_epi32(s0, wv[k], _mm512_set1_epi32(q[k]));
                s1 = _mm512_dpbusd_epi32(s1, wv[k + 1], _mm512_set1_epi32(q[k + 1]));
            }
            __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
            acc[t] = _mm512_fmadd_ps(sum, _mm512_mul_ps(dw, _mm512_set1_ps(y->d)), acc[t]);
            if (has_m) acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(y->s), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(out + (size_t)t * out_stride, acc[t]);
}

#define X16_32_AVX512(t, bits8, has_m, has_qh)                                                              \
    AVX512 void eng_gemm16_##t##_x16_avx512(int n, const void *w, const void *a, size_t a_stride, int T,    \
                                            float *out, size_t out_stride)                                 \
    {                                                                                                       \
        TOKENS_BY_8(x16_32_tokens, bits8, has_m, has_qh, n / 32, w);                                        \
    }
X16_32_AVX512(q4_0, false, false, false)
X16_32_AVX512(q4_1, false, true, false)
X16_32_AVX512(q5_0, false, false, true)
X16_32_AVX512(q5_1, false, true, true)
X16_32_AVX512(q8_0, true, false, false)

/* ---- Q4_K and Q5_K (interleave_k.c) ---- */

/* NT tokens against one group of 16 Q4_K or Q5_K rows (q5 a constant in
 * each caller). Per 32-weight sub-block the codes of 16 rows unpack into 8
 * registers (Q5_K's fifth bit ORed in as 16), and each token's 8 dpbusd
 * give the rows' sums, multiplied by the rows' 6-bit scales in int32
 * (exact, as llama.cpp); the mins meet the activation's per-32 sums in 4
 * dpwssd per 256 weights, and only then does float arithmetic start. */
AVX512 static inline __attribute__((always_inline)) void q45_k_x16_tokens(
    int NT, bool q5, int nb, const uint8_t *w, const uint8_t *a, size_t a_stride, float *out, size_t out_stride)
{
    const size_t block_bytes = q5 ? sizeof(block_q5_k_x16) : sizeof(block_q4_k_x16);
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const block_q4_k_x16 *g = (const block_q4_k_x16 *)(w + (size_t)b * block_bytes);
        const uint8_t (*qh)[16][4] = q5 ? ((const block_q5_k_x16 *)g)->qh : NULL;
        __m512i sumi[8];
        for (int t = 0; t < NT; t++) sumi[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            for (int l = 0; l < (q5 ? 6 : 5); l++)
                _mm_prefetch((const char *)g + 2 * block_bytes + 64 * ((q5 ? 6 : 5) * j + l), _MM_HINT_T0);
            __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)g->sc[j]));
            __m512i wv[8];
            for (int m = 0; m < 8; m++) {
                __m512i raw = _mm512_loadu_si512(g->qs[j / 2][m]);
                wv[m] = _mm512_and_si512(j % 2 ? _mm512_srli_epi16(raw, 4) : raw, low4);
                if (q5) { /* bit j of each qh byte, moved to bit 4 */
                    __m512i hb = _mm512_and_si512(_mm512_loadu_si512(qh[m]), _mm512_set1_epi8((char)(1 << j)));
                    hb = j < 4 ? _mm512_slli_epi16(hb, 4 - j) : _mm512_srli_epi16(hb, j - 4);
                    wv[m] = _mm512_or_si512(wv[m], hb);
                }
            }
            for (int t = 0; t < NT; t++) {
                const block_q8_k_sums *y = (const block_q8_k_sums *)(a + (size_t)t * a_stride) + b;
                const i32_alias *q = (const i32_alias *)(y->qs + 32 * j);
                __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
                for (int m = 0; m < 8; m += 2) {
                    s0 = _mm512_dpbusd_epi32(s0, wv[m], _mm512_set1_epi32(q[m]));
                    s1 = _mm512_dpbusd_epi32(s1, wv[m + 1], _mm512_set1_epi32(q[m + 1]));
                }
                sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
            }
        }
        __m512i mn[4];
        for (int p = 0; p < 4; p++) mn[p] = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)g->mn[p]));
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g->d));
        __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g->dmin));
        for (int t = 0; t < NT; t++) {
            const block_q8_k_sums *y = (const block_q8_k_sums *)(a + (size_t)t * a_stride) + b;
            const i32_alias *bs = (const i32_alias *)y->bsums32;
            __m512i summ = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) summ = _mm512_dpwssd_epi32(summ, mn[p], _mm512_set1_epi32(bs[p]));
            __m512 da = _mm512_set1_ps(y->d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), _mm512_mul_ps(dw, da), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ), _mm512_mul_ps(dmw, da), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(out + (size_t)t * out_stride, acc[t]);
}

AVX512 void eng_gemm16_q4_k_x16_avx512(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                       size_t out_stride)
{
    TOKENS_BY_8(q45_k_x16_tokens, false, n / QK_K, w);
}

AVX512 void eng_gemm16_q5_k_x16_avx512(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                       size_t out_stride)
{
    TOKENS_BY_8(q45_k_x16_tokens, true, n / QK_K, w);
}

/* ---- Q6_K and Q3_K (interleave_k.c) ---- */

/* The 6-bit codes (0..63) of 16 rows x 4 weights in quadrant k of a half:
 * the low 4 bits from a ql word (its low nibbles for quadrants 0 and 1, its
 * high ones for 2 and 3), bits 4-5 from bits 2k, 2k+1 of the qh word. */
AVX512 static inline __m512i q6_codes(const block_q6_k_x16 *g, int h, int k, int m)
{
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    __m512i l = _mm512_loadu_si512(g->ql[h][(k % 2) * 8 + m]), hi = _mm512_loadu_si512(g->qh[h][m]);
    l = k < 2 ? _mm512_and_si512(l, low4) : _mm512_and_si512(_mm512_srli_epi16(l, 4), low4);
    hi = _mm512_and_si512(hi, _mm512_set1_epi8((char)(3 << (2 * k))));
    hi = k == 0 ? _mm512_slli_epi16(hi, 4) : k == 1 ? _mm512_slli_epi16(hi, 2) : k == 2 ? hi : _mm512_srli_epi16(hi, 2);
    return _mm512_or_si512(l, hi);
}

/* The 3-bit codes (0..7, code + 4) of quadrant k of half h: bits 2k, 2k+1
 * of a qs word, and bit 4h+k of the hmask word as 4. */
AVX512 static inline __m512i q3_codes(const block_q3_k_x16 *g, int h, int k, int m)
{
    __m512i lo = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(g->qs[h][m]), 2 * k), _mm512_set1_epi8(3));
    int bit = 4 * h + k;
    __m512i hi = _mm512_and_si512(_mm512_loadu_si512(g->hm[m]), _mm512_set1_epi8((char)(1 << bit)));
    hi = bit < 2 ? _mm512_slli_epi16(hi, 2 - bit) : _mm512_srli_epi16(hi, bit - 2);
    return _mm512_or_si512(lo, hi);
}

/* NT tokens against one group of 16 Q6_K or Q3_K rows (q3 a constant in
 * each caller): per 32 weights (a quadrant of a half) the codes unpack into
 * 8 registers; per 16 weights, a dpbusd chain seeded with -offset x the
 * activation sum gives the rows' sums of (code - offset) x a, multiplied by
 * the rows' signed scales in int32. Both layouts start with d[16], sc[16][16]. */
AVX512 static inline __attribute__((always_inline)) void k16_x16_tokens(
    int NT, bool q3, int nb, const uint8_t *w, const uint8_t *a, size_t a_stride, float *out, size_t out_stride)
{
    const size_t block_bytes = q3 ? sizeof(block_q3_k_x16) : sizeof(block_q6_k_x16);
    const int lines = q3 ? 4 : 7; /* cache lines to prefetch per quadrant */
    __m512 acc[8];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * block_bytes;
        const block_q6_k_x16 *g6 = (const block_q6_k_x16 *)blk; /* for d and sc, shared */
        __m512i sumi[8];
        for (int t = 0; t < NT; t++) sumi[t] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < lines; l++)
                    _mm_prefetch((const char *)blk + 2 * block_bytes + 64 * (lines * (4 * h + k) + l), _MM_HINT_T0);
                int g0 = 8 * h + 2 * k; /* the quadrant's two groups of 16: g0, g0 + 1 */
                __m512i wv[8];
                for (int m = 0; m < 8; m++)
                    wv[m] = q3 ? q3_codes((const block_q3_k_x16 *)blk, h, k, m) : q6_codes(g6, h, k, m);
                __m512i sc0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)g6->sc[g0]));
                __m512i sc1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)g6->sc[g0 + 1]));
                for (int t = 0; t < NT; t++) {
                    const block_q8_k_seeds *y = (const block_q8_k_seeds *)(a + (size_t)t * a_stride) + b;
                    const i32_alias *q = (const i32_alias *)(y->qs + 128 * h + 32 * k);
                    __m512i s0 = _mm512_set1_epi32(y->seed[g0]), s1 = _mm512_set1_epi32(y->seed[g0 + 1]);
                    for (int m = 0; m < 4; m++) {
                        s0 = _mm512_dpbusd_epi32(s0, wv[m], _mm512_set1_epi32(q[m]));
                        s1 = _mm512_dpbusd_epi32(s1, wv[m + 4], _mm512_set1_epi32(q[m + 4]));
                    }
                    sumi[t] = _mm512_add_epi32(sumi[t], _mm512_add_epi32(_mm512_mullo_epi32(s0, sc0), _mm512_mullo_epi32(s1, sc1)));
                }
            }
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g6->d));
        for (int t = 0; t < NT; t++) {
            const block_q8_k_seeds *y = (const block_q8_k_seeds *)(a + (size_t)t * a_stride) + b;
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), _mm512_mul_ps(dw, _mm512_set1_ps(y->d)), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(out + (size_t)t * out_stride, acc[t]);
}

AVX512 void eng_gemm16_q6_k_x16_avx512(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                       size_t out_stride)
{
    TOKENS_BY_8(k16_x16_tokens, false, n / QK_K, w);
}

AVX512 void eng_gemm16_q3_k_x16_avx512(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                       size_t out_stride)
{
    TOKENS_BY_8(k16_x16_tokens, true, n / QK_K, w);
}

/* ---- Q2_K (interleave_k.c) ---- */

/* NT tokens against one group of 16 Q2_K rows: per quadrant the 2-bit codes
 * of 16 rows x 4 weights in 8 registers, dpbusd per 16 weights times the
 * rows' 4-bit scales (taken from the paired scale|min bytes); the mins meet
 * the activation's per-16 sums in one dpwssd per pair of groups. */
AVX512 static inline __attribute__((always_inline)) void q2_k_x16_tokens(
    int NT, int nb, const block_q2_k_x16 *g, const uint8_t *a, size_t a_stride, float *out, size_t out_stride)
{
    const __m512i three = _mm512_set1_epi8(3), low4 = _mm512_set1_epi32(0x0f);
    __m512 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i sumi[4], summ[4];
        for (int t = 0; t < NT; t++) sumi[t] = summ[t] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < 3; l++)
                    _mm_prefetch((const char *)(g + b + 2) + 64 * (3 * (4 * h + k) + l), _MM_HINT_T0);
                int p = 4 * h + k; /* the quadrant's groups of 16: 2p and 2p + 1 */
                __m512i wv[8];
                for (int m = 0; m < 8; m++)
                    wv[m] = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(g[b].qs[h][m]), 2 * k), three);
                __m512i sm = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)g[b].sm[p])); /* row r: 2 int16 */
                __m512i sc0 = _mm512_and_si512(sm, low4), sc1 = _mm512_and_si512(_mm512_srli_epi32(sm, 16), low4);
                __m512i mn = _mm512_srli_epi16(sm, 4);
                for (int t = 0; t < NT; t++) {
                    const block_q8_k *y = (const block_q8_k *)(a + (size_t)t * a_stride) + b;
                    const i32_alias *q = (const i32_alias *)(y->qs + 128 * h + 32 * k);
                    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
                    for (int m = 0; m < 4; m++) {
                        s0 = _mm512_dpbusd_epi32(s0, wv[m], _mm512_set1_epi32(q[m]));
                        s1 = _mm512_dpbusd_epi32(s1, wv[m + 4], _mm512_set1_epi32(q[m + 4]));
                    }
                    sumi[t] = _mm512_add_epi32(sumi[t], _mm512_add_epi32(_mm512_mullo_epi32(s0, sc0), _mm512_mullo_epi32(s1, sc1)));
                    summ[t] = _mm512_dpwssd_epi32(summ[t], mn, _mm512_set1_epi32(((const i32_alias *)y->bsums)[p]));
                }
            }
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
        __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].dmin));
        for (int t = 0; t < NT; t++) {
            const block_q8_k *y = (const block_q8_k *)(a + (size_t)t * a_stride) + b;
            __m512 da = _mm512_set1_ps(y->d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), _mm512_mul_ps(dw, da), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ[t]), _mm512_mul_ps(dmw, da), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(out + (size_t)t * out_stride, acc[t]);
}

AVX512 void eng_gemm16_q2_k_x16_avx512(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                                       size_t out_stride)
{
    /* groups of at most 4 tokens: its mins need a second accumulator per token */
    int nb = n / QK_K, t = 0;
    for (; t + 4 <= T; t += 4) q2_k_x16_tokens(4, nb, w, ACT_AT(t), a_stride, OUT_AT(t), out_stride);
    switch (T - t) {
    case 3: q2_k_x16_tokens(3, nb, w, ACT_AT(t), a_stride, OUT_AT(t), out_stride); break;
    case 2: q2_k_x16_tokens(2, nb, w, ACT_AT(t), a_stride, OUT_AT(t), out_stride); break;
    case 1: q2_k_x16_tokens(1, nb, w, ACT_AT(t), a_stride, OUT_AT(t), out_stride); break;
    default: break;
    }
}
