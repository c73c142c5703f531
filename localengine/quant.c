/* quant.c: the type table and the plain-C reference routines.
 *
 * The reference routines define what each type means; the AVX2 kernels in
 * kernels_avx2.c must agree with them (tests/unit/test_kernels.c checks).
 */
#include "quant.h"
#include "localengine.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

float eng_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t eng_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7fffffff;
    if (abs > 0x7f800000) return (uint16_t)(sign | 0x7e00);      /* NaN */
    if (abs >= 0x477ff000) return (uint16_t)(sign | 0x7c00);     /* overflow to inf */
    if (abs < 0x38800000) {                                       /* subnormal or zero */
        if (abs < 0x33000000) return (uint16_t)sign;
        uint32_t mant = (abs & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(abs >> 23);                       /* 14..24 */
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((abs >> 13) - ((127 - 15) << 10));
    uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)(sign | half);
}

/* ---- F32 ---- */

static void f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void f32_from_float(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

static float f32_vec_dot(int n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    float s = 0;
    for (int i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

/* ---- F16 ---- */

static void f16_to_float(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = eng_fp16_to_fp32(h[i]);
}

static void f16_from_float(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = eng_fp32_to_fp16(src[i]);
}

static float f16_vec_dot(int n, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    float s = 0;
    for (int i = 0; i < n; i++) s += eng_fp16_to_fp32(x[i]) * eng_fp16_to_fp32(y[i]);
    return s;
}

/* ---- BF16 (the rest in quant_more.c) ---- */

static void bf16_to_float(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = eng_bf16_to_fp32(h[i]);
}

/* ---- Q4_0: 32 weights = fp16 scale + 16 bytes of 4-bit codes (offset 8) ---- */

static void q4_0_to_float(const void *src, float *dst, int64_t n)
{
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        float d = eng_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[i * QK4_0 + j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
            dst[i * QK4_0 + j + QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static float q4_0_vec_dot(int n, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    float s = 0;
    for (int i = 0; i < n / QK4_0; i++) {
        int sum = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sum += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            sum += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK4_0 / 2];
        }
        s += (float)sum * eng_fp16_to_fp32(x[i].d) * eng_fp16_to_fp32(y[i].d);
    }
    return s;
}

/* ---- Q8_0: 32 weights = fp16 scale + 32 int8 codes ---- */

static void q8_0_to_float(const void *src, float *dst, int64_t n)
{
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        float d = eng_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; j++) dst[i * QK8_0 + j] = (float)b[i].qs[j] * d;
    }
}

void eng_quantize_q8_0_act(const float *x, void *dst, int64_t n)
{
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *v = x + i * QK8_0;
        float amax = 0;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(v[j]));
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0;
        b[i].d = eng_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)nearbyintf(v[j] * id);
    }
}

static float q8_0_vec_dot(int n, const void *w, const void *a)
{
    const block_q8_0 *x = w, *y = a;
    float s = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int sum = 0;
        for (int j = 0; j < QK8_0; j++) sum += x[i].qs[j] * y[i].qs[j];
        s += (float)sum * eng_fp16_to_fp32(x[i].d) * eng_fp16_to_fp32(y[i].d);
    }
    return s;
}

/* ---- the table ---- */

#define TYPE(id_, name_, bs, ts, vdt, tof, fromf, dot)                                      \
    {.id = id_, .name = name_, .block_size = bs, .type_size = ts, .vec_dot_type = vdt, \
     .to_float = tof, .from_float = fromf, .vec_dot_ref = dot, .vec_dot = dot}

static eng_type_info types[] = {
    TYPE(ENG_TYPE_F32, "F32", 1, 4, ENG_TYPE_F32, f32_to_float, f32_from_float, f32_vec_dot),
    TYPE(ENG_TYPE_F16, "F16", 1, 2, ENG_TYPE_F16, f16_to_float, f16_from_float, f16_vec_dot),
    TYPE(ENG_TYPE_Q4_0, "Q4_0", 32, 18, ENG_TYPE_Q8_0, q4_0_to_float, NULL, q4_0_vec_dot),
    TYPE(ENG_TYPE_Q4_1, "Q4_1", 32, 20, ENG_TYPE_Q8_1, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q5_0, "Q5_0", 32, 22, ENG_TYPE_Q8_0, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q5_1, "Q5_1", 32, 24, ENG_TYPE_Q8_1, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q8_0, "Q8_0", 32, 34, ENG_TYPE_Q8_0, q8_0_to_float, eng_quantize_q8_0_act, q8_0_vec_dot),
    TYPE(ENG_TYPE_Q8_1, "Q8_1", 32, 36, ENG_TYPE_Q8_1, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q2_K, "Q2_K", 256, 84, ENG_TYPE_Q8_K, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q3_K, "Q3_K", 256, 110, ENG_TYPE_Q8_K, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q4_K, "Q4_K", 256, 144, ENG_TYPE_Q8_K, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q5_K, "Q5_K", 256, 176, ENG_TYPE_Q8_K, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q6_K, "Q6_K", 256, 210, ENG_TYPE_Q8_K, NULL, NULL, NULL),
    TYPE(ENG_TYPE_Q8_K, "Q8_K", 256, 292, ENG_TYPE_Q8_K, NULL, NULL, NULL),
    TYPE(ENG_TYPE_BF16, "BF16", 1, 2, ENG_TYPE_BF16, bf16_to_float, NULL, NULL),
/* The interleaved layouts (interleave32.c, interleave_k.c) and the
 * activation layouts their kernels read. */
#define X16(id_, name_, t, bs, act)                                                                       \
    {.id = id_, .name = name_, .block_size = bs, .type_size = sizeof(block_##t##_x16) / 16,               \
     .vec_dot_type = act, .internal = true, .rows_per_group = 16, .gemm16 = eng_gemm16_##t##_x16_ref,      \
     .repack = eng_repack_##t##_x16, .get_row = eng_##t##_x16_get_row}
#define ACT(id_, name_, bs, block, quantize)                                                              \
    {.id = id_, .name = name_, .block_size = bs, .type_size = sizeof(block), .vec_dot_type = id_,          \
     .from_float = quantize, .internal = true}
    X16(ENG_TYPE_Q4_0_X16, "Q4_0x16", q4_0, 32, ENG_TYPE_Q8_0_NEG8),
    X16(ENG_TYPE_Q4_1_X16, "Q4_1x16", q4_1, 32, ENG_TYPE_Q8_1_X),
    X16(ENG_TYPE_Q5_0_X16, "Q5_0x16", q5_0, 32, ENG_TYPE_Q8_0_NEG16),
    X16(ENG_TYPE_Q5_1_X16, "Q5_1x16", q5_1, 32, ENG_TYPE_Q8_1_X),
    X16(ENG_TYPE_Q8_0_X16, "Q8_0x16", q8_0, 32, ENG_TYPE_Q8_0_NEG128),
    X16(ENG_TYPE_Q2_K_X16, "Q2_Kx16", q2_k, 256, ENG_TYPE_Q8_K),
    X16(ENG_TYPE_Q3_K_X16, "Q3_Kx16", q3_k, 256, ENG_TYPE_Q8_K_NEG4),
    X16(ENG_TYPE_Q4_K_X16, "Q4_Kx16", q4_k, 256, ENG_TYPE_Q8_K_SUMS),
    X16(ENG_TYPE_Q5_K_X16, "Q5_Kx16", q5_k, 256, ENG_TYPE_Q8_K_SUMS),
    X16(ENG_TYPE_Q6_K_X16, "Q6_Kx16", q6_k, 256, ENG_TYPE_Q8_K_NEG32),
    ACT(ENG_TYPE_Q8_0_NEG8, "Q8_0-neg8", 32, block_q8_0_x, eng_quantize_q8_0_neg8),
    ACT(ENG_TYPE_Q8_0_NEG16, "Q8_0-neg16", 32, block_q8_0_x, eng_quantize_q8_0_neg16),
    ACT(ENG_TYPE_Q8_0_NEG128, "Q8_0-neg128", 32, block_q8_0_x, eng_quantize_q8_0_neg128),
    ACT(ENG_TYPE_Q8_1_X, "Q8_1-x", 32, block_q8_0_x, eng_quantize_q8_1_x),
    ACT(ENG_TYPE_Q8_K_SUMS, "Q8_K-sums", 256, block_q8_k_sums, eng_quantize_q8_k_sums),
    ACT(ENG_TYPE_Q8_K_NEG32, "Q8_K-neg32", 256, block_q8_k_seeds, eng_quantize_q8_k_neg32),
    ACT(ENG_TYPE_Q8_K_NEG4, "Q8_K-neg4", 256, block_q8_k_seeds, eng_quantize_q8_k_neg4),
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

const eng_type_info *eng_type_info_of(uint32_t id)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].id == id) return &types[i];
    return NULL;
}

size_t eng_row_size(uint32_t type, int64_t n)
{
    const eng_type_info *t = eng_type_info_of(type);
    return (size_t)(n / t->block_size) * t->type_size;
}

float eng_fp16_table[65536];

static float dot_f32_f16_ref(const float *q, const uint16_t *k, int n)
{
    float s = 0;
    for (int i = 0; i < n; i++) s += q[i] * eng_fp16_table[k[i]];
    return s;
}

static void axpy_f16_ref(float a, const uint16_t *v, float *out, int n)
{
    for (int i = 0; i < n; i++) out[i] += a * eng_fp16_table[v[i]];
}

eng_dot_f16_fn eng_dot_f32_f16 = dot_f32_f16_ref;
eng_axpy_f16_fn eng_axpy_f16 = axpy_f16_ref;

static eng_type_info *table_row(uint32_t id) { return (eng_type_info *)eng_type_info_of(id); }

static void select_kernels(void)
{
    for (uint32_t h = 0; h < 65536; h++) eng_fp16_table[h] = eng_fp16_to_fp32((uint16_t)h);
    eng_register_more_types(table_row);
    eng_register_k_types(table_row);
    eng_register_quantizers(table_row);
    unsigned f = eng_cpu_features();
    if ((f & (ENG_CPU_AVX2 | ENG_CPU_FMA | ENG_CPU_F16C)) != (ENG_CPU_AVX2 | ENG_CPU_FMA | ENG_CPU_F16C)) return;
    static const struct { uint32_t id; eng_vec_dot_fn dot; } fast[] = {
        {ENG_TYPE_F32, eng_vec_dot_f32_avx2},
        {ENG_TYPE_F16, eng_vec_dot_f16_avx2},
        {ENG_TYPE_Q4_0, eng_vec_dot_q4_0_avx2},
        {ENG_TYPE_Q8_0, eng_vec_dot_q8_0_avx2},
        {ENG_TYPE_Q4_1, eng_vec_dot_q4_1_avx2},
        {ENG_TYPE_Q5_0, eng_vec_dot_q5_0_avx2},
        {ENG_TYPE_Q5_1, eng_vec_dot_q5_1_avx2},
        {ENG_TYPE_BF16, eng_vec_dot_bf16_avx2},
        {ENG_TYPE_Q2_K, eng_vec_dot_q2_k_avx2},
        {ENG_TYPE_Q3_K, eng_vec_dot_q3_k_avx2},
        {ENG_TYPE_Q4_K, eng_vec_dot_q4_k_avx2},
        {ENG_TYPE_Q5_K, eng_vec_dot_q5_k_avx2},
        {ENG_TYPE_Q6_K, eng_vec_dot_q6_k_avx2},
    };
    for (size_t i = 0; i < sizeof(fast) / sizeof(fast[0]); i++)
        ((eng_type_info *)eng_type_info_of(fast[i].id))->vec_dot = fast[i].dot;
    table_row(ENG_TYPE_Q4_0)->vec_dot4 = eng_vec_dot4_q4_0_avx2;
    table_row(ENG_TYPE_Q8_0)->vec_dot4 = eng_vec_dot4_q8_0_avx2;
    table_row(ENG_TYPE_F16)->vec_dot4 = eng_vec_dot4_f16_avx2;
    table_row(ENG_TYPE_BF16)->vec_dot4 = eng_vec_dot4_bf16_avx2;
    table_row(ENG_TYPE_Q8_0)->from_float = eng_quantize_q8_0_act_avx2;
    /* Matrices of these types are interleaved by 16 rows (repack.c) for the 16-row kernels. */
    static const struct { uint32_t file, layout; eng_gemm16_fn avx2, avx512; } interleaved[] = {
        {ENG_TYPE_Q4_0, ENG_TYPE_Q4_0_X16, eng_gemm16_q4_0_x16_avx2, eng_gemm16_q4_0_x16_avx512},
        {ENG_TYPE_Q4_1, ENG_TYPE_Q4_1_X16, eng_gemm16_q4_1_x16_avx2, eng_gemm16_q4_1_x16_avx512},
        {ENG_TYPE_Q5_0, ENG_TYPE_Q5_0_X16, eng_gemm16_q5_0_x16_avx2, eng_gemm16_q5_0_x16_avx512},
        {ENG_TYPE_Q5_1, ENG_TYPE_Q5_1_X16, eng_gemm16_q5_1_x16_avx2, eng_gemm16_q5_1_x16_avx512},
        {ENG_TYPE_Q8_0, ENG_TYPE_Q8_0_X16, eng_gemm16_q8_0_x16_avx2, eng_gemm16_q8_0_x16_avx512},
        {ENG_TYPE_Q2_K, ENG_TYPE_Q2_K_X16, eng_gemm16_q2_k_x16_avx2, eng_gemm16_q2_k_x16_avx512},
        {ENG_TYPE_Q3_K, ENG_TYPE_Q3_K_X16, eng_gemm16_q3_k_x16_avx2, eng_gemm16_q3_k_x16_avx512},
        {ENG_TYPE_Q4_K, ENG_TYPE_Q4_K_X16, eng_gemm16_q4_k_x16_avx2, eng_gemm16_q4_k_x16_avx512},
        {ENG_TYPE_Q5_K, ENG_TYPE_Q5_K_X16, eng_gemm16_q5_k_x16_avx2, eng_gemm16_q5_k_x16_avx512},
        {ENG_TYPE_Q6_K, ENG_TYPE_Q6_K_X16, eng_gemm16_q6_k_x16_avx2, eng_gemm16_q6_k_x16_avx512},
    };
    for (size_t i = 0; i < sizeof(interleaved) / sizeof(interleaved[0]); i++) {
        table_row(interleaved[i].file)->repack_to = interleaved[i].layout;
        table_row(interleaved[i].layout)->gemm16 = f & ENG_CPU_AVX512_VNNI ? interleaved[i].avx512 : interleaved[i].avx2;
    }
    eng_dot_f32_f16 = eng_dot_f32_f16_avx2;
    eng_axpy_f16 = eng_axpy_f16_avx2;
    if (f & ENG_CPU_AVX512_VNNI) {
        /* the row kernels, for matrices that are not interleaved */
        table_row(ENG_TYPE_Q4_0)->vec_dot = eng_vec_dot_q4_0_avx512;
        table_row(ENG_TYPE_Q8_0)->vec_dot = eng_vec_dot_q8_0_avx512;
        table_row(ENG_TYPE_F16)->gemm4x4 = eng_gemm4x4_f16_avx512;
        table_row(ENG_TYPE_BF16)->gemm4x4 = eng_gemm4x4_bf16_avx512;
    }
    table_row(ENG_TYPE_F16)->from_float = eng_fp32_to_fp16_row_avx2;
}

void eng_types_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, select_kernels);
}
