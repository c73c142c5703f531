/* interleave32.c: the 32-weight types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)
 * interleaved by 16 rows: the layouts (quant.h), their repacking from the
 * file's blocks and back, their reference kernels, and the activation
 * layouts their fast kernels read. One shape table, not five copies: a
 * block is d, then m where the type has one, then Q5's fifth bits
 * regrouped, then the codes, 4 bytes of a row at a time.
 */
#include "quant.h"

#include <stdbool.h>
#include <string.h>

/* ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: 32 weights per block ---- */

/* Where the fields sit in a file block and in an interleaved block. */
typedef struct {
    uint32_t file_type;
    bool has_m, has_qh, bits8;
} shape32;

static const shape32 Q4_0 = {ENG_TYPE_Q4_0, false, false, false}, Q4_1 = {ENG_TYPE_Q4_1, true, false, false},
                     Q5_0 = {ENG_TYPE_Q5_0, false, true, false}, Q5_1 = {ENG_TYPE_Q5_1, true, true, false},
                     Q8_0 = {ENG_TYPE_Q8_0, false, false, true};

static int code_words(const shape32 *s) { return s->bits8 ? 8 : 4; } /* 4-byte words of codes per row-block */
static size_t file_block(const shape32 *s) { return 2 + 2 * s->has_m + 4 * s->has_qh + 4 * code_words(s); }
static size_t x16_block(const shape32 *s) { return 16 * file_block(s); }

static void put32(const shape32 *s, uint8_t *g, int r, const uint8_t *blk)
{
    size_t fb = file_block(s), xb = x16_block(s);
    memcpy(g + 2 * r, blk, 2);                                  /* d */
    if (s->has_m) memcpy(g + 32 + 2 * r, blk + 2, 2);          /* m */
    if (s->has_qh) {
        uint32_t qh;
        memcpy(&qh, blk + 2 + 2 * s->has_m, 4);
        uint8_t *hb = g + 32 + 32 * s->has_m + 4 * r;
        for (int k = 0; k < 4; k++) {
            hb[k] = 0;
            for (int m = 0; m < 4; m++)
                for (int p = 0; p < 2; p++) hb[k] |= (uint8_t)(((qh >> (16 * p + 4 * m + k)) & 1) << (2 * m + p));
        }
    }
    int words = code_words(s);
    for (int m = 0; m < words; m++) memcpy(g + xb - 64 * words + 64 * m + 4 * r, blk + fb - 4 * words + 4 * m, 4);
}

/* Row r's block b back in the file's layout. */
static void unpack32(const shape32 *s, const uint8_t *g, int r, uint8_t *blk)
{
    size_t fb = file_block(s), xb = x16_block(s);
    memcpy(blk, g + 2 * r, 2);
    if (s->has_m) memcpy(blk + 2, g + 32 + 2 * r, 2);
    if (s->has_qh) {
        const uint8_t *hb = g + 32 + 32 * s->has_m + 4 * r;
        uint32_t qh = 0;
        for (int k = 0; k < 4; k++)
            for (int m = 0; m < 4; m++)
                for (int p = 0; p < 2; p++) qh |= (uint32_t)((hb[k] >> (2 * m + p)) & 1) << (16 * p + 4 * m + k);
        memcpy(blk + 2 + 2 * s->has_m, &qh, 4);
    }
    int words = code_words(s);
    for (int m = 0; m < words; m++) memcpy(blk + fb - 4 * words + 4 * m, g + xb - 64 * words + 64 * m + 4 * r, 4);
}

static void get_row32(const shape32 *s, const uint8_t *w, int64_t r, int64_t n_in, float *dst)
{
    const eng_type_info *ft = eng_type_info_of(s->file_type);
    int64_t nb = n_in / 32;
    const uint8_t *g = w + (size_t)(r / 16) * nb * x16_block(s);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t blk[40];
        unpack32(s, g + (size_t)b * x16_block(s), (int)(r % 16), blk);
        ft->to_float(blk, dst + b * 32, 32);
    }
}

/* The file type's own reference dot product, block by block, on rebuilt
 * weight blocks and activations rebuilt as Q8_0 (offset types) or Q8_1. */
static void gemm16_ref32(const shape32 *s, int n, const uint8_t *w, const void *a, size_t a_stride, int T, float *out,
                         size_t out_stride)
{
    const eng_type_info *ft = eng_type_info_of(s->file_type);
    int nb = n / 32;
    for (int t = 0; t < T; t++) {
        const block_q8_0_x *y = (const block_q8_0_x *)((const uint8_t *)a + (size_t)t * a_stride);
        for (int r = 0; r < 16; r++) {
            float sum = 0;
            for (int b = 0; b < nb; b++) {
                uint8_t blk[40];
                unpack32(s, w + (size_t)b * x16_block(s), r, blk);
                block_q8_1 act = {.d = eng_fp32_to_fp16(y[b].d), .s = eng_fp32_to_fp16(y[b].s)};
                memcpy(act.qs, y[b].qs, 32);
                if (s->has_m) {
                    sum += ft->vec_dot_ref(32, blk, &act);
                } else {
                    block_q8_0 a0 = {.d = act.d};
                    memcpy(a0.qs, act.qs, 32);
                    sum += ft->vec_dot_ref(32, blk, &a0);
                }
            }
            out[(size_t)t * out_stride + r] = sum;
        }
    }
}

#define SHAPE32_FUNCS(t, S)                                                                                    \
    static void put_##t(void *g, int r, const void *blk) { put32(&S, g, r, blk); }                            \
    void eng_repack_##t##_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in)                      \
    {                                                                                                          \
        eng_repack_rows(put_##t, src, dst, n_rows, n_in, 32, file_block(&S), x16_block(&S));                      \
    }                                                                                                          \
    void eng_##t##_x16_get_row(const void *w, int64_t r, int64_t n_in, float *dst)                           \
    {                                                                                                          \
        get_row32(&S, w, r, n_in, dst);                                                                        \
    }                                                                                                          \
    void eng_gemm16_##t##_x16_ref(int n, const void *w, const void *a, size_t a_stride, int T, float *out,    \
                                  size_t out_stride)                                                           \
    {                                                                                                          \
        gemm16_ref32(&S, n, w, a, a_stride, T, out, out_stride);                                              \
    }
SHAPE32_FUNCS(q4_0, Q4_0)
SHAPE32_FUNCS(q4_1, Q4_1)
SHAPE32_FUNCS(q5_0, Q5_0)
SHAPE32_FUNCS(q5_1, Q5_1)
SHAPE32_FUNCS(q8_0, Q8_0)

static void quantize_q8_0_seed(int offset, const float *x, void *dst, int64_t n)
{
    const eng_type_info *q8 = eng_type_info_of(ENG_TYPE_Q8_0);
    block_q8_0_x *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        block_q8_0 b;
        q8->from_float(x + i * QK8_0, &b, QK8_0);
        int sum = 0;
        for (int j = 0; j < QK8_0; j++) sum += b.qs[j];
        y[i] = (block_q8_0_x){.d = eng_fp16_to_fp32(b.d), .seed = -offset * sum};
        memcpy(y[i].qs, b.qs, QK8_0);
    }
}

void eng_quantize_q8_0_neg8(const float *x, void *dst, int64_t n) { quantize_q8_0_seed(8, x, dst, n); }
void eng_quantize_q8_0_neg16(const float *x, void *dst, int64_t n) { quantize_q8_0_seed(16, x, dst, n); }
void eng_quantize_q8_0_neg128(const float *x, void *dst, int64_t n) { quantize_q8_0_seed(128, x, dst, n); }

void eng_quantize_q8_1_x(const float *x, void *dst, int64_t n)
{
    block_q8_0_x *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        block_q8_1 b;
        eng_quantize_q8_1_act(x + i * 32, &b, 32);
        y[i] = (block_q8_0_x){.d = eng_fp16_to_fp32(b.d), .s = eng_fp16_to_fp32(b.s)};
        memcpy(y[i].qs, b.qs, 32);
    }
}

