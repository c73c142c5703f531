/* quant.h: tensor types: block layouts, conversions and dot products.
 * Internal to localengine.
 *
 * One table row per ggml type id says how big a block is and which routines
 * handle it: to_float (dequantize), from_float (quantize), and the dot
 * product of a weight row with an activation row already converted to the
 * type's `vec_dot_type`. Each dot product has a plain-C reference and, where
 * written, an AVX2 version; eng_types_init() picks per CPU. Internal rows
 * describe the 16-row interleaved layouts the fast kernels read and the
 * activation layouts they take (interleave32.c, interleave_k.c). Adding a
 * type is adding a row (see docs/engine.md).
 */
#ifndef JUNCTION_QUANT_H
#define JUNCTION_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    ENG_TYPE_F32 = 0, ENG_TYPE_F16 = 1, ENG_TYPE_Q4_0 = 2, ENG_TYPE_Q4_1 = 3, ENG_TYPE_Q5_0 = 6,
    ENG_TYPE_Q5_1 = 7, ENG_TYPE_Q8_0 = 8, ENG_TYPE_Q8_1 = 9, ENG_TYPE_Q2_K = 10, ENG_TYPE_Q3_K = 11,
    ENG_TYPE_Q4_K = 12, ENG_TYPE_Q5_K = 13, ENG_TYPE_Q6_K = 14, ENG_TYPE_Q8_K = 15, ENG_TYPE_BF16 = 30,
    /* Internal layouts, never in files (repack.c): */
    ENG_TYPE_Q4_0_X16 = 1001,
    ENG_TYPE_Q8_0_NEG8 = 1002,   /* activations for Q4_0_X16 */
    ENG_TYPE_Q4_K_X16 = 1003,
    ENG_TYPE_Q8_K_SUMS = 1004,   /* activations for Q4_K_X16 */
    ENG_TYPE_Q6_K_X16 = 1005,
    ENG_TYPE_Q8_K_NEG32 = 1006,  /* activations for Q6_K_X16 */
    ENG_TYPE_Q5_K_X16 = 1007,    /* activations: Q8_K_SUMS */
    ENG_TYPE_Q3_K_X16 = 1008,
    ENG_TYPE_Q8_K_NEG4 = 1009,   /* activations for Q3_K_X16 */
    ENG_TYPE_Q2_K_X16 = 1010,    /* activations: Q8_K */
    ENG_TYPE_Q4_1_X16 = 1011,
    ENG_TYPE_Q5_0_X16 = 1012,
    ENG_TYPE_Q5_1_X16 = 1013,
    ENG_TYPE_Q8_0_NEG16 = 1014,  /* activations for Q5_0_X16 */
    ENG_TYPE_Q8_1_X = 1015,      /* activations for Q4_1_X16 and Q5_1_X16 */
    ENG_TYPE_Q8_0_X16 = 1016,
    ENG_TYPE_Q8_0_NEG128 = 1017, /* activations for Q8_0_X16 */
};

typedef void (*eng_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*eng_from_float_fn)(const float *src, void *dst, int64_t n);
typedef float (*eng_vec_dot_fn)(int n, const void *w, const void *a);
/* One weight row against four activation rows a + k*stride: out[k]. Lets
 * prompt processing unpack each weight block once for four tokens. */
typedef void (*eng_vec_dot4_fn)(int n, const void *w, const void *a, size_t stride, float out[4]);
/* Four weight rows (w + r*w_stride) against four activation rows
 * (a + t*a_stride): out[t][r]. The tile kernel of prompt processing. */
typedef void (*eng_gemm4x4_fn)(int n, const void *w, size_t w_stride, const void *a, size_t a_stride,
                               float out[4][4]);

/* Sixteen interleaved weight rows (w, see interleave32.c) against T activation
 * rows (a + t*a_stride): out[t*out_stride + r] for r in 0..15. */
typedef void (*eng_gemm16_fn)(int n, const void *w, const void *a, size_t a_stride, int T, float *out,
                              size_t out_stride);

/* A matrix of n_rows x n_in from the file's layout into an internal one,
 * and one row of it back to floats. */
typedef void (*eng_repack_fn)(const void *src, void *dst, int64_t n_rows, int64_t n_in);
typedef void (*eng_get_row_fn)(const void *w, int64_t r, int64_t n_in, float *dst);

typedef struct {
    uint32_t id;
    const char *name;
    uint32_t block_size;         /* elements per block */
    uint32_t type_size;          /* bytes per block */
    uint32_t vec_dot_type;       /* activations of every dot product are converted to this type */
    bool internal;               /* a layout of ours, not a GGUF type */
    eng_to_float_fn to_float;    /* NULL: the engine cannot run this type yet */
    eng_from_float_fn from_float;
    eng_vec_dot_fn vec_dot_ref;  /* plain C */
    eng_vec_dot_fn vec_dot;      /* fastest for this CPU (after eng_types_init) */
    eng_vec_dot4_fn vec_dot4;    /* NULL: use the single-row kernel four times */
    eng_gemm4x4_fn gemm4x4;      /* NULL: use vec_dot4 */
    /* Layouts that interleave 16 rows (rows_per_group 16) have only this
     * kernel; a file type with `repack_to` set is re-laid out at load into
     * that layout when the fast kernels for it run on this CPU. */
    uint32_t rows_per_group;     /* 0 or 1: rows stand alone */
    eng_gemm16_fn gemm16;
    eng_repack_fn repack;        /* file layout -> this one */
    eng_get_row_fn get_row;
    uint32_t repack_to;
} eng_type_info;

/* NULL for an id GGUF does not define. */
const eng_type_info *eng_type_info_of(uint32_t id);
/* Select the fastest kernels for this CPU; idempotent and thread-safe. */
void eng_types_init(void);
/* Bytes of a row of n elements (n a multiple of the block size). */
size_t eng_row_size(uint32_t type, int64_t n);

/* fp16 -> fp32 for every half, filled by eng_types_init(). */
extern float eng_fp16_table[65536];

/* bf16 -> fp32: the top half of an fp32, exactly. */
static inline float eng_bf16_to_fp32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* fp16 <-> fp32, exact conversion and round-to-nearest-even. */
float eng_fp16_to_fp32(uint16_t h);
uint16_t eng_fp32_to_fp16(float f);

#define QK4_0 32
#define QK8_0 32
#define QK_K 256
typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[32]; } block_q8_1;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } block_q2_k;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } block_q3_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_k;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_k;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_k;

/* quant_more.c: Q4_1, Q5_0, Q5_1, Q6_K, BF16 (reference kernels). */
void eng_register_more_types(eng_type_info *(*row)(uint32_t id));
/* kernels_k_avx2.c */
float eng_vec_dot_q4_k_avx2(int n, const void *w, const void *a);
float eng_vec_dot_q2_k_avx2(int n, const void *w, const void *a);
float eng_vec_dot_q3_k_avx2(int n, const void *w, const void *a);
float eng_vec_dot_q5_k_avx2(int n, const void *w, const void *a);
float eng_vec_dot_q6_k_avx2(int n, const void *w, const void *a);
/* kernels_more_avx2.c */
float eng_vec_dot_q4_1_avx2(int n, const void *w, const void *a);
float eng_vec_dot_q5_0_avx2(int n, const void *w, const void *a);
float eng_vec_dot_q5_1_avx2(int n, const void *w, const void *a);
float eng_vec_dot_bf16_avx2(int n, const void *w, const void *a);
/* quant_k.c: Q2_K, Q3_K, Q4_K, Q5_K (reference kernels). */
void eng_register_k_types(eng_type_info *(*row)(uint32_t id));
/* The 8 six-bit scales and 8 six-bit mins Q4_K and Q5_K pack in 12 bytes. */
void eng_q4_k_scales(const uint8_t q[12], int sc[8], int mn[8]);
/* Q3_K's 16 six-bit scales, minus their offset of 32. */
void eng_q3_k_scales(const uint8_t q[12], int8_t sc[16]);
/* quantize.c: weight quantizers (from_float) of Q4_0, Q4_1, Q5_0, Q5_1 and the K types. */
void eng_register_quantizers(eng_type_info *(*row)(uint32_t id));
void eng_quantize_q8_1_act(const float *x, void *dst, int64_t n);
void eng_quantize_q8_k_act(const float *x, void *dst, int64_t n);

/* repack.c: one row's block into its 16-row group's interleaved block, and
 * a whole matrix through such a function. */
typedef void (*eng_put_row_fn)(void *g, int r, const void *blk);
void eng_repack_rows(eng_put_row_fn put, const void *src, void *dst, int64_t n_rows, int64_t n_in, int block_elems,
                     size_t file_block_bytes, size_t x16_block_bytes);

/* The 32-weight types interleaved by 16 rows (interleave32.c): per 32-column
 * block the 16 rows' d (and m, for Q4_1 and Q5_1), for Q5_0 and Q5_1 their
 * fifth bits regrouped (hb[r][k] bit 2m+p = qh bit 16p + 4m + k, so a
 * shift and a mask give a register's 64 of them), then the codes 4 bytes
 * of a row at a time, qs[m][r][k] being byte 4m+k of row r's qs (Q8_0: 8
 * such words). Each has its file type's size. */
typedef struct { uint16_t d[16]; uint8_t qs[4][16][4]; } block_q4_0_x16;
typedef struct { uint16_t d[16], m[16]; uint8_t qs[4][16][4]; } block_q4_1_x16;
typedef struct { uint16_t d[16]; uint8_t hb[16][4]; uint8_t qs[4][16][4]; } block_q5_0_x16;
typedef struct { uint16_t d[16], m[16]; uint8_t hb[16][4]; uint8_t qs[4][16][4]; } block_q5_1_x16;
typedef struct { uint16_t d[16]; int8_t qs[8][16][4]; } block_q8_0_x16;
/* Activations for them: Q8_0 codes rounded exactly as llama.cpp does, the
 * scale as a float, and either a dpbusd seed -offset × Σq that takes the
 * weights' offset off (8 for Q4_0, 16 for Q5_0, 128 for Q8_0 codes made
 * unsigned by flipping their top bit) or, for Q4_1 and Q5_1, Q8_1's
 * s = fp16(d × Σq) as a float, which meets the weights' m. */
typedef struct { float d, s; int32_t seed; int8_t qs[32]; } block_q8_0_x;
void eng_quantize_q8_0_neg8(const float *x, void *dst, int64_t n);
void eng_quantize_q8_0_neg16(const float *x, void *dst, int64_t n);
void eng_quantize_q8_0_neg128(const float *x, void *dst, int64_t n);
void eng_quantize_q8_1_x(const float *x, void *dst, int64_t n);
/* Each interleaved layout's routines (interleave32.c, interleave_k.c,
 * kernels_x16_*.c): repacking from the file's blocks, a row back as floats,
 * and its gemm16 kernels. */
#define X16_DECLS(t)                                                                                      \
    void eng_repack_##t##_x16(const void *src, void *dst, int64_t n_rows, int64_t n_in);                   \
    void eng_##t##_x16_get_row(const void *w, int64_t r, int64_t n_in, float *dst);                        \
    void eng_gemm16_##t##_x16_ref(int n, const void *w, const void *a, size_t a_stride, int T, float *out,  \
                                  size_t out_stride);                                                       \
    void eng_gemm16_##t##_x16_avx2(int n, const void *w, const void *a, size_t a_stride, int T, float *out, \
                                   size_t out_stride);                                                      \
    void eng_gemm16_##t##_x16_avx512(int n, const void *w, const void *a, size_t a_stride, int T, float *out, \
                                     size_t out_stride);
X16_DECLS(q4_0)
X16_DECLS(q4_1)
X16_DECLS(q5_0)
X16_DECLS(q5_1)
X16_DECLS(q8_0)
X16_DECLS(q2_k)
X16_DECLS(q3_k)
X16_DECLS(q4_k)
X16_DECLS(q5_k)
X16_DECLS(q6_k)

/* Q4_K rows interleaved by 16: per 256-column block, the 16 rows' d and
 * dmin, their 8 six-bit scales and mins unpacked to bytes (the mins of
 * sub-blocks 2p and 2p+1 side by side per row, for one 16-bit madd), then
 * per 64 columns (sub-blocks 2c and 2c+1, low and high nibbles) the codes
 * 4 bytes of a row at a time. 148 bytes per row-block, 4 more than Q4_K. */
typedef struct {
    uint16_t d[16], dmin[16];
    uint8_t sc[8][16];
    uint8_t mn[4][16][2];
    uint8_t qs[4][8][16][4];
} block_q4_k_x16;
/* Q5_K the same, then each row's fifth bits 4 bytes at a time (qh[m][r] =
 * qh bytes 4m.. of row r: bit j of byte l is weight 32j + l's). */
typedef struct {
    block_q4_k_x16 q4;
    uint8_t qh[8][16][4];
} block_q5_k_x16;
/* Q8_K activations for them: the per-16 sums added in pairs (one per 32-weight
 * sub-block, the span of a Q4_K min). */
typedef struct { float d; int16_t bsums32[8]; int8_t qs[QK_K]; } block_q8_k_sums;
void eng_quantize_q8_k_sums(const float *x, void *dst, int64_t n);
/* Q6_K rows interleaved by 16: per 256-column block the 16 rows' d, their
 * 16 scales (one per 16 weights), then ql and qh 4 bytes of a row at a
 * time, per 128-weight half as Q6_K stores them. Same size as Q6_K. */
typedef struct {
    uint16_t d[16];
    int8_t sc[16][16];
    uint8_t ql[2][16][16][4];
    uint8_t qh[2][8][16][4];
} block_q6_k_x16;
/* Q3_K the same way: d, the 16 six-bit scales decoded (signed), the 2-bit
 * codes (qs) and the high bits (hmask) 4 bytes of a row at a time. 114
 * bytes per row-block, 4 more than Q3_K. */
typedef struct {
    uint16_t d[16];
    int8_t sc[16][16];
    uint8_t qs[2][8][16][4];
    uint8_t hm[8][16][4];
} block_q3_k_x16;
/* Q2_K: d, dmin, the file's scale|min<<4 bytes of groups 2p and 2p+1 side
 * by side per row, and the 2-bit codes 4 bytes of a row at a time. Same
 * size as Q2_K. */
typedef struct {
    uint16_t d[16], dmin[16];
    uint8_t sm[8][16][2];
    uint8_t qs[2][8][16][4];
} block_q2_k_x16;
/* Q8_K activations for Q6_K and Q3_K: -offset × each per-16 sum (offset 32 for Q6_K,
 * 4 for Q3_K), the dpbusd seeds that take the offset off unsigned codes. */
typedef struct { float d; int32_t seed[16]; int8_t qs[QK_K]; } block_q8_k_seeds;
void eng_quantize_q8_k_neg32(const float *x, void *dst, int64_t n);
void eng_quantize_q8_k_neg4(const float *x, void *dst, int64_t n);

/* Activation quantization exactly as llama.cpp does on x86 (see
 * ../shared/vectors/quants/README.md): d = amax/127, id = 127/amax,
 * q = round-half-even(x*id), d stored as fp16. */
void eng_quantize_q8_0_act(const float *x, void *dst, int64_t n);

/* AVX2 versions, defined in kernels_avx2.c (only called when the CPU has
 * AVX2, FMA and F16C). */
float eng_vec_dot_f32_avx2(int n, const void *w, const void *a);
float eng_vec_dot_f16_avx2(int n, const void *w, const void *a);
float eng_vec_dot_q4_0_avx2(int n, const void *w, const void *a);
float eng_vec_dot_q8_0_avx2(int n, const void *w, const void *a);
void eng_vec_dot4_q4_0_avx2(int n, const void *w, const void *a, size_t stride, float out[4]);
void eng_vec_dot4_q8_0_avx2(int n, const void *w, const void *a, size_t stride, float out[4]);
void eng_vec_dot4_f16_avx2(int n, const void *w, const void *a, size_t stride, float out[4]);
void eng_vec_dot4_bf16_avx2(int n, const void *w, const void *a, size_t stride, float out[4]);
void eng_quantize_q8_0_act_avx2(const float *x, void *dst, int64_t n);

/* AVX-512 VNNI versions, in kernels_avx512.c (CPUs with ENG_CPU_AVX512_VNNI). */
float eng_vec_dot_q4_0_avx512(int n, const void *w, const void *a);
float eng_vec_dot_q8_0_avx512(int n, const void *w, const void *a);
void eng_gemm4x4_f16_avx512(int n, const void *w, size_t w_stride, const void *a, size_t a_stride, float out[4][4]);
void eng_gemm4x4_bf16_avx512(int n, const void *w, size_t w_stride, const void *a, size_t a_stride, float out[4][4]);
void eng_fp32_to_fp16_row_avx2(const float *x, void *dst, int64_t n);

/* Attention against an fp16 KV cache: q·k over n, and out += a·v. The
 * fastest for this CPU after eng_types_init(). */
typedef float (*eng_dot_f16_fn)(const float *q, const uint16_t *k, int n);
typedef void (*eng_axpy_f16_fn)(float a, const uint16_t *v, float *out, int n);
extern eng_dot_f16_fn eng_dot_f32_f16;
extern eng_axpy_f16_fn eng_axpy_f16;
float eng_dot_f32_f16_avx2(const float *q, const uint16_t *k, int n);
void eng_axpy_f16_avx2(float a, const uint16_t *v, float *out, int n);

#endif
