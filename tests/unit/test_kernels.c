/* test_kernels.c: every optimized kernel against its plain-C reference, on
 * random data, and the fp16 conversions against their definition.
 * A kernel this CPU cannot run is a test reported as skipped, never one
 * that passes without having run: each kernel set has its own test cases. */
#include "localengine.h"
#include "quant.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static uint64_t rng = 0x1234567887654321ULL;
static float frand(void) /* roughly N(0,1) */
{
    float s = 0;
    for (int i = 0; i < 4; i++) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        s += (float)(rng >> 40) / (float)(1 << 24) - 0.5f;
    }
    return s * 1.7f;
}

static bool cpu_has(unsigned needs) { return (eng_cpu_features() & needs) == needs; }

typedef struct {
    const char *name;       /* the test case's name */
    uint32_t type;
    unsigned needs;         /* eng_cpu_feature bits */
    eng_vec_dot_fn dot;
    eng_vec_dot4_fn dot4;
    uint32_t act_type;      /* the activation layout it reads */
} impl;

/* Every optimized implementation, whichever the CPU selects. */
static const impl impls[] = {
    {"dot_f32_avx2", ENG_TYPE_F32, ENG_CPU_AVX2 | ENG_CPU_FMA, eng_vec_dot_f32_avx2, NULL, ENG_TYPE_F32},
    {"dot_f16_avx2", ENG_TYPE_F16, ENG_CPU_AVX2 | ENG_CPU_F16C, eng_vec_dot_f16_avx2, eng_vec_dot4_f16_avx2, ENG_TYPE_F16},
    {"dot_q4_0_avx2", ENG_TYPE_Q4_0, ENG_CPU_AVX2 | ENG_CPU_F16C, eng_vec_dot_q4_0_avx2, eng_vec_dot4_q4_0_avx2, ENG_TYPE_Q8_0},
    {"dot_q8_0_avx2", ENG_TYPE_Q8_0, ENG_CPU_AVX2 | ENG_CPU_F16C, eng_vec_dot_q8_0_avx2, eng_vec_dot4_q8_0_avx2, ENG_TYPE_Q8_0},
    {"dot_q4_1_avx2", ENG_TYPE_Q4_1, ENG_CPU_AVX2 | ENG_CPU_F16C, eng_vec_dot_q4_1_avx2, NULL, ENG_TYPE_Q8_1},
    {"dot_q5_0_avx2", ENG_TYPE_Q5_0, ENG_CPU_AVX2 | ENG_CPU_F16C, eng_vec_dot_q5_0_avx2, NULL, ENG_TYPE_Q8_0},
    {"dot_q5_1_avx2", ENG_TYPE_Q5_1, ENG_CPU_AVX2 | ENG_CPU_F16C, eng_vec_dot_q5_1_avx2, NULL, ENG_TYPE_Q8_1},
    {"dot_bf16_avx2", ENG_TYPE_BF16, ENG_CPU_AVX2 | ENG_CPU_FMA, eng_vec_dot_bf16_avx2, eng_vec_dot4_bf16_avx2, ENG_TYPE_BF16},
    {"dot_q4_0_avx512", ENG_TYPE_Q4_0, ENG_CPU_AVX512_VNNI, eng_vec_dot_q4_0_avx512, NULL, ENG_TYPE_Q8_0},
    {"dot_q8_0_avx512", ENG_TYPE_Q8_0, ENG_CPU_AVX512_VNNI, eng_vec_dot_q8_0_avx512, NULL, ENG_TYPE_Q8_0},
};

/* The selected dot product of each type (and `im`, an optimized one, if
 * given) equals its reference on random rows. */
static void check_dot_with(uint32_t type, int n, const impl *im)
{
    eng_types_init();
    const eng_type_info *t = eng_type_info_of(type), *at = eng_type_info_of(t->vec_dot_type);
    float *w = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)n);
    uint8_t *wq = malloc(eng_row_size(type, n)), *xq = malloc(eng_row_size(at->id, n));
    uint8_t *xf = malloc(eng_row_size(ENG_TYPE_F32, n)); /* big enough for any layout */
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < n; i++) { w[i] = frand() * 0.02f; x[i] = frand(); }
        t->from_float(w, wq, n);
        at->from_float(x, xq, n);
        float ref = t->vec_dot_ref(n, wq, xq);
        /* The selected kernel, on the layout it reads: only the float summation order differs. */
        eng_type_info_of(t->vec_dot_type)->from_float(x, xf, n);
        assert_true(fabsf(ref - t->vec_dot(n, wq, xf)) <= 1e-5f * (1 + fabsf(ref)) + 1e-6f);
        if (im) {
            eng_type_info_of(im->act_type)->from_float(x, xf, n);
            assert_true(fabsf(im->dot(n, wq, xf) - ref) <= 1e-5f * (1 + fabsf(ref)) + 1e-6f);
        }
        if (im && im->dot4) {
            /* four copies of the activation row: four equal answers */
            size_t row = eng_row_size(im->act_type, n);
            uint8_t *four = malloc(row * 4);
            for (int k = 0; k < 4; k++) memcpy(four + k * row, xf, row);
            float out[4];
            im->dot4(n, wq, four, row, out);
            for (int k = 0; k < 4; k++) assert_true(fabsf(out[k] - ref) <= 1e-5f * (1 + fabsf(ref)) + 1e-6f);
            free(four);
        }
        /* And both approximate the float dot product within the type's error. */
        float exact = 0;
        for (int i = 0; i < n; i++) exact += w[i] * x[i];
        float tol = type == ENG_TYPE_F32 ? 1e-4f : type == ENG_TYPE_F16 ? 2e-3f : type == ENG_TYPE_BF16 ? 1e-2f
                  : type == ENG_TYPE_Q8_0 ? 0.02f : 0.12f;
        assert_true(fabsf(ref - exact) <= tol * (1 + sqrtf((float)n) * 0.02f * 1.7f));
    }
    free(w); free(x); free(wq); free(xq); free(xf);
}

static void check_dot(uint32_t type, int n) { check_dot_with(type, n, NULL); }

/* One optimized implementation (a row of impls): on a long row and on a
 * short one with a tail. */
static void test_dot_impl(void **state)
{
    const impl *im = *state;
    if (!cpu_has(im->needs)) skip();
    eng_types_init();
    uint32_t block = eng_type_info_of(im->type)->block_size;
    check_dot_with(im->type, 4096, im);
    check_dot_with(im->type, block == 1 ? 100 : 3 * (int)block, im);
}

static void test_dot_f32(void **s) { (void)s; check_dot(ENG_TYPE_F32, 4096); check_dot(ENG_TYPE_F32, 172); }
static void test_dot_f16(void **s) { (void)s; check_dot(ENG_TYPE_F16, 4096); check_dot(ENG_TYPE_F16, 100); }
static void test_dot_q8_0(void **s) { (void)s; check_dot(ENG_TYPE_Q8_0, 4096); check_dot(ENG_TYPE_Q8_0, 96); }
static void test_dot_q4_1(void **s) { (void)s; check_dot(ENG_TYPE_Q4_1, 4096); check_dot(ENG_TYPE_Q4_1, 32); }
static void test_dot_q5_0(void **s) { (void)s; check_dot(ENG_TYPE_Q5_0, 4096); check_dot(ENG_TYPE_Q5_0, 96); }
static void test_dot_q5_1(void **s) { (void)s; check_dot(ENG_TYPE_Q5_1, 4096); check_dot(ENG_TYPE_Q5_1, 64); }
static void test_dot_bf16(void **s) { (void)s; check_dot(ENG_TYPE_BF16, 4096); check_dot(ENG_TYPE_BF16, 100); }
static void test_dot_q4_0(void **s) { (void)s; check_dot(ENG_TYPE_Q4_0, 4096); check_dot(ENG_TYPE_Q4_0, 32); check_dot(ENG_TYPE_Q4_0, 96); }

/* Activation quantization must be bit-identical between the two paths:
 * llama.cpp's reference vectors depend on every rounding. */
static void test_q8_0_activation_quantizer_bit_exact(void **state)
{
    (void)state;
    if (!cpu_has(ENG_CPU_AVX2 | ENG_CPU_F16C)) skip();
    eng_types_init();
    enum { N = 8192 };
    float x[N];
    block_q8_0 a[N / 32], b[N / 32];
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < N; i++) x[i] = frand() * (trial + 1);
        /* exact halves land on rounding ties */
        for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) + 0.5f;
        memset(x + 64, 0, 32 * sizeof(float)); /* an all-zero block */
        eng_quantize_q8_0_act(x, a, N);
        eng_quantize_q8_0_act_avx2(x, b, N);
        assert_memory_equal(a, b, sizeof(a));
    }
}

/* Round half to even: 127/amax*x = 2.5 exactly rounds to 2. */
static void test_q8_0_activation_quantizer_rounding(void **state)
{
    (void)state;
    eng_types_init();
    block_q8_0 a[1];
    float t[32] = {0};
    t[0] = 127.0f;
    t[1] = 2.5f;
    t[2] = 3.5f;
    eng_quantize_q8_0_act(t, a, 32);
    assert_int_equal(a[0].qs[0], 127);
    assert_int_equal(a[0].qs[1], 2);
    assert_int_equal(a[0].qs[2], 4);
}

/* The 4x4 tiles of prompt processing (F16, BF16) equal sixteen reference
 * dot products. */
static void check_gemm4x4(uint32_t type, uint32_t act_type, eng_gemm4x4_fn gemm, int n)
{
    const eng_type_info *wt = eng_type_info_of(type), *plain = eng_type_info_of(wt->vec_dot_type);
    const eng_type_info *at = eng_type_info_of(act_type);
    size_t row = eng_row_size(type, n), arow = eng_row_size(plain->id, n), prow = eng_row_size(act_type, n);
    uint8_t *w = malloc(row * 4), *a = malloc(arow * 4), *ap = malloc(prow * 4);
    float *f = malloc(sizeof(float) * n);
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < n; i++) f[i] = frand() * 0.02f;
        wt->from_float(f, w + k * row, n);
        for (int i = 0; i < n; i++) f[i] = frand();
        plain->from_float(f, a + k * arow, n);
        at->from_float(f, ap + k * prow, n);
    }
    float out[4][4];
    gemm(n, w, row, ap, prow, out);
    for (int t = 0; t < 4; t++)
        for (int r = 0; r < 4; r++) {
            float ref = wt->vec_dot_ref(n, w + r * row, a + t * arow);
            assert_true(fabsf(out[t][r] - ref) <= 1e-5f * (1 + fabsf(ref)) + 1e-6f);
        }
    free(w);
    free(a);
    free(ap);
    free(f);
}

static void test_gemm4x4(void **state)
{
    (void)state;
    eng_types_init();
    if (!cpu_has(ENG_CPU_AVX512_VNNI)) skip();
    check_gemm4x4(ENG_TYPE_F16, ENG_TYPE_F16, eng_gemm4x4_f16_avx512, 4096 + 7); /* with a scalar tail */
    check_gemm4x4(ENG_TYPE_BF16, ENG_TYPE_BF16, eng_gemm4x4_bf16_avx512, 4096 + 7);
}

/* Interleaved-by-16 layouts: the layout round-trips to the file's rows bit
 * for bit, and every 16-row kernel (reference, AVX2, AVX-512) gives each
 * token and row the file type's reference dot product, for every token
 * count up to 13 (full and partial token groups of each kernel). */
typedef struct {
    eng_gemm16_fn fn;
    unsigned needs;   /* eng_cpu_feature bits */
} x16_kernel;

static void check_x16(uint32_t file_type, uint32_t x16_type, int n, const x16_kernel *kernel)
{
    eng_types_init();
    enum { R = 32, T = 13 };
    const eng_type_info *ft = eng_type_info_of(file_type), *x16 = eng_type_info_of(x16_type);
    const eng_type_info *plain = eng_type_info_of(ft->vec_dot_type), *act = eng_type_info_of(x16->vec_dot_type);
    size_t row = eng_row_size(file_type, n), arow = eng_row_size(plain->id, n), srow = eng_row_size(act->id, n);
    size_t grow = eng_row_size(x16_type, n);
    uint8_t *w = malloc(row * R), *g = malloc(grow * R), *a = malloc(arow * T), *as = malloc(srow * T);
    float *f = malloc(sizeof(float) * n), *back = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * T * R);
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < n; i++) f[i] = frand() * 0.02f;
        ft->from_float(f, w + r * row, n);
    }
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < n; i++) f[i] = frand();
        plain->from_float(f, a + t * arow, n);
        act->from_float(f, as + t * srow, n);
    }
    x16->repack(w, g, R, n);
    for (int r = 0; r < R; r++) {
        ft->to_float(w + r * row, f, n);
        x16->get_row(g, r, n, back);
        assert_memory_equal(f, back, sizeof(float) * n);
    }
    {
        for (int nt = 1; nt <= T; nt++) {
            memset(out, 0, sizeof(float) * T * R);
            for (int r0 = 0; r0 < R; r0 += 16) kernel->fn(n, g + r0 * grow, as, srow, nt, out + r0, R);
            for (int t = 0; t < T; t++)
                for (int r = 0; r < R; r++) {
                    if (t >= nt) { assert_true(out[t * R + r] == 0); continue; }
                    float ref = ft->vec_dot_ref(n, w + r * row, a + t * arow);
                    assert_true(fabsf(out[t * R + r] - ref) <= 1e-5f * (1 + fabsf(ref)) + 1e-6f);
                }
        }
    }
    free(w); free(g); free(a); free(as); free(f); free(back); free(out);
}

#define AVX2_SET (ENG_CPU_AVX2 | ENG_CPU_F16C | ENG_CPU_FMA)

typedef struct {
    const char *name;        /* the test case's name */
    uint32_t file_type, x16_type;
    int n;
    x16_kernel kernel;
} x16_case;

/* Each 16-row kernel set of one type: reference, AVX2, AVX-512. */
#define X16_CASES(t, T, n)                                                                                        \
    {"x16_" #t "_ref", ENG_TYPE_##T, ENG_TYPE_##T##_X16, n, {eng_gemm16_##t##_x16_ref, 0}},                         \
    {"x16_" #t "_avx2", ENG_TYPE_##T, ENG_TYPE_##T##_X16, n, {eng_gemm16_##t##_x16_avx2, AVX2_SET}},                 \
    {"x16_" #t "_avx512", ENG_TYPE_##T, ENG_TYPE_##T##_X16, n, {eng_gemm16_##t##_x16_avx512, ENG_CPU_AVX512_VNNI}}

static const x16_case x16_cases[] = {
    X16_CASES(q4_0, Q4_0, 4096 + 32), X16_CASES(q4_1, Q4_1, 4096 + 32), X16_CASES(q5_0, Q5_0, 4096 + 32),
    X16_CASES(q5_1, Q5_1, 4096 + 32), X16_CASES(q8_0, Q8_0, 4096 + 32), X16_CASES(q2_k, Q2_K, 4096 + 256),
    X16_CASES(q3_k, Q3_K, 4096 + 256), X16_CASES(q4_k, Q4_K, 4096 + 256), X16_CASES(q5_k, Q5_K, 4096 + 256),
    X16_CASES(q6_k, Q6_K, 4096 + 256),
};

static void test_x16(void **state)
{
    const x16_case *c = *state;
    if (!cpu_has(c->kernel.needs)) skip();
    check_x16(c->file_type, c->x16_type, c->n, &c->kernel);
}

/* Q8_K: the scale comes from the element of largest magnitude (sign
 * included), codes are clamped to 127, and the sums per 16 are exact. */
static void test_q8_k_activation_quantizer(void **state)
{
    (void)state;
    eng_types_init();
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = (float)((i * 37) % 101 - 50) / 10.0f;
    x[7] = -6.35f; /* the largest magnitude, negative: iscale = 127/6.35 = 20 */
    block_q8_k b;
    eng_type_info_of(ENG_TYPE_Q8_K)->from_float(x, &b, 256);
    assert_true(fabsf(b.d - 0.05f) < 1e-7f); /* d = 1/iscale = -max/127 */
    assert_int_equal(b.qs[7], -127);
    for (int j = 0; j < 16; j++) {
        int sum = 0;
        for (int k = 0; k < 16; k++) sum += b.qs[j * 16 + k];
        assert_int_equal(b.bsums[j], sum);
    }
    float zero[256] = {0};
    eng_type_info_of(ENG_TYPE_Q8_K)->from_float(zero, &b, 256);
    assert_true(b.d == 0 && b.qs[0] == 0 && b.bsums[15] == 0);
}

/* K-quant kernels: random blocks (any bit pattern is a valid block once its
 * fp16 factors are sane) against random Q8_K activations. */
static void check_k_dot(uint32_t type, eng_vec_dot_fn fast, size_t d_offset, bool has_dmin)
{
    eng_types_init();
    const eng_type_info *t = eng_type_info_of(type);
    enum { N = 1024 };
    size_t wb = eng_row_size(type, N);
    uint8_t *w = malloc(wb);
    block_q8_k act[N / QK_K];
    float x[N];
    for (int trial = 0; trial < 50; trial++) {
        for (size_t i = 0; i < wb; i++) w[i] = (uint8_t)(frand() * 1000);
        for (int b = 0; b < N / QK_K; b++) {
            uint16_t d = eng_fp32_to_fp16(0.01f * (1 + fabsf(frand()))), dmin = eng_fp32_to_fp16(0.002f);
            memcpy(w + b * t->type_size + d_offset, &d, 2);
            if (has_dmin) memcpy(w + b * t->type_size + d_offset + 2, &dmin, 2);
        }
        for (int i = 0; i < N; i++) x[i] = frand();
        eng_type_info_of(ENG_TYPE_Q8_K)->from_float(x, act, N);
        float ref = t->vec_dot_ref(N, w, act), got = fast(N, w, act);
        assert_true(fabsf(ref - got) <= 1e-5f * (1 + fabsf(ref)));
    }
    free(w);
}

static void test_dot_k_quants(void **state)
{
    (void)state;
    if (!cpu_has(ENG_CPU_AVX2 | ENG_CPU_F16C)) skip();
    check_k_dot(ENG_TYPE_Q4_K, eng_vec_dot_q4_k_avx2, 0, true);       /* d, dmin lead the block */
    check_k_dot(ENG_TYPE_Q5_K, eng_vec_dot_q5_k_avx2, 0, true);
    check_k_dot(ENG_TYPE_Q2_K, eng_vec_dot_q2_k_avx2, 80, true);      /* d, dmin close it */
    check_k_dot(ENG_TYPE_Q3_K, eng_vec_dot_q3_k_avx2, 108, false);
    check_k_dot(ENG_TYPE_Q6_K, eng_vec_dot_q6_k_avx2, 208, false);    /* d closes it */
}

/* The attention helpers against an fp16 cache equal their plain versions. */
static void test_attention_f16_helpers(void **state)
{
    (void)state;
    eng_types_init();
    enum { N = 131 }; /* a tail past the vector width too */
    float q[N], out[N], expect[N];
    uint16_t k[N];
    for (int i = 0; i < N; i++) {
        q[i] = frand();
        k[i] = eng_fp32_to_fp16(frand());
        out[i] = expect[i] = frand();
    }
    float dot = 0;
    for (int i = 0; i < N; i++) dot += q[i] * eng_fp16_to_fp32(k[i]);
    assert_true(fabsf(eng_dot_f32_f16(q, k, N) - dot) <= 1e-5f * (1 + fabsf(dot)));
    eng_axpy_f16(0.37f, k, out, N);
    for (int i = 0; i < N; i++) {
        expect[i] += 0.37f * eng_fp16_to_fp32(k[i]);
        assert_true(fabsf(out[i] - expect[i]) <= 1e-6f * (1 + fabsf(expect[i])));
    }
}

static void test_fp16_round_trip_and_rounding(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = eng_fp16_to_fp32((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(eng_fp32_to_fp16(f), h);
    }
    /* halfway between 1 and the next half (1 + 2^-10) rounds to even */
    assert_int_equal(eng_fp32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);
    assert_int_equal(eng_fp32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);
    assert_int_equal(eng_fp32_to_fp16(70000.0f), 0x7c00);
    assert_int_equal(eng_fp32_to_fp16(-0.0f), 0x8000);
    assert_int_equal(eng_fp32_to_fp16(5.96046448e-08f), 0x0001); /* smallest subnormal */
}

static void test_dequantize_matches_dot(void **state)
{
    (void)state;
    eng_types_init();
    /* Q4_0: dequantized weights dotted in float equal the integer dot product
     * with an activation that quantizes exactly (all ±1). */
    enum { N = 256 };
    float w[N], x[N], wd[N];
    uint8_t wq[N], xq[N * 4];
    for (int i = 0; i < N; i++) { w[i] = frand(); x[i] = (i % 3) ? 1.0f : -1.0f; }
    const eng_type_info *q4 = eng_type_info_of(ENG_TYPE_Q4_0);
    q4->from_float(w, wq, N);
    q4->to_float(wq, wd, N);
    eng_type_info_of(q4->vec_dot_type)->from_float(x, xq, N); /* the layout the selected kernel reads */
    float expect = 0;
    for (int i = 0; i < N; i++) expect += wd[i] * x[i];
    assert_true(fabsf(q4->vec_dot(N, wq, xq) - expect) < 1e-4f * (1 + fabsf(expect)));
    /* and the dequantized values stay within one quantization step (half a
     * step, except at the clipped end of the 16 levels) */
    for (int b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(w[b * 32 + j]));
        for (int j = 0; j < 32; j++) assert_true(fabsf(wd[b * 32 + j] - w[b * 32 + j]) <= amax / 8 * 1.001f);
    }
}

/* Every weight quantizer (mkmodel's) round-trips through its type's
 * dequantizer within that type's expected error. For a uniform quantizer of
 * step D the RMS error is D/sqrt(12); on N(0,1) weights a block's step is
 * its range over the code count, which gives the bounds below (measured
 * values in the comments, bounds about 1.25x them, so a packing bug, which
 * scrambles codes, fails by far). */
static void test_weight_quantizers_round_trip(void **state)
{
    (void)state;
    eng_types_init();
    static const struct { uint32_t type; float max_rel_rms; } cases[] = { /* measured */
        {ENG_TYPE_F16, 0.0004f},  /* 0.0002 */ {ENG_TYPE_BF16, 0.0025f}, /* 0.0017 */
        {ENG_TYPE_Q8_0, 0.0065f}, /* 0.0051 */ {ENG_TYPE_Q4_0, 0.10f},   /* 0.081 */
        {ENG_TYPE_Q4_1, 0.095f},  /* 0.076 */  {ENG_TYPE_Q5_0, 0.051f},  /* 0.041 */
        {ENG_TYPE_Q5_1, 0.046f},  /* 0.037 */  {ENG_TYPE_Q2_K, 0.40f},   /* 0.323 */
        {ENG_TYPE_Q3_K, 0.19f},   /* 0.152 */  {ENG_TYPE_Q4_K, 0.095f},  /* 0.076 */
        {ENG_TYPE_Q5_K, 0.047f},  /* 0.037 */  {ENG_TYPE_Q6_K, 0.023f},  /* 0.018 */
    };
    enum { N = 4096 };
    static float w[N], back[N];
    static uint8_t q[N * 4];
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const eng_type_info *t = eng_type_info_of(cases[c].type);
        assert_non_null(t->from_float);
        double err = 0, ref = 0;
        for (int i = 0; i < N; i++) w[i] = frand();
        t->from_float(w, q, N);
        t->to_float(q, back, N);
        for (int i = 0; i < N; i++) {
            err += (double)(back[i] - w[i]) * (back[i] - w[i]);
            ref += (double)w[i] * w[i];
        }
        double rel = sqrt(err / ref);
        fprintf(stderr, "%-5s round trip: relative RMS error %.4f (bound %.4f)\n", t->name, rel, cases[c].max_rel_rms);
        assert_true(rel <= cases[c].max_rel_rms);
        /* zeros stay zeros, and a block with one huge outlier stays finite */
        memset(w, 0, sizeof(w));
        t->from_float(w, q, N);
        t->to_float(q, back, N);
        for (int i = 0; i < N; i++) assert_true(back[i] == 0);
        w[7] = 1000;
        w[300] = -3;
        t->from_float(w, q, N);
        t->to_float(q, back, N);
        for (int i = 0; i < N; i++) assert_true(isfinite(back[i]));
        assert_true(fabsf(back[7] - 1000) <= 1000 * 0.02f);
    }
}

int main(void)
{
    enum { N_IMPLS = sizeof(impls) / sizeof(impls[0]), N_X16 = sizeof(x16_cases) / sizeof(x16_cases[0]) };
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_dot_f32),
        cmocka_unit_test(test_dot_f16),
        cmocka_unit_test(test_dot_q8_0),
        cmocka_unit_test(test_dot_q4_0),
        cmocka_unit_test(test_dot_q4_1),
        cmocka_unit_test(test_dot_q5_0),
        cmocka_unit_test(test_dot_q5_1),
        cmocka_unit_test(test_dot_bf16),
        cmocka_unit_test(test_q8_0_activation_quantizer_bit_exact),
        cmocka_unit_test(test_q8_0_activation_quantizer_rounding),
        cmocka_unit_test(test_gemm4x4),
        cmocka_unit_test(test_q8_k_activation_quantizer),
        cmocka_unit_test(test_dot_k_quants),
        cmocka_unit_test(test_attention_f16_helpers),
        cmocka_unit_test(test_fp16_round_trip_and_rounding),
        cmocka_unit_test(test_dequantize_matches_dot),
        cmocka_unit_test(test_weight_quantizers_round_trip),
    };
    enum { N_FIXED = sizeof(fixed) / sizeof(fixed[0]) };
    struct CMUnitTest tests[N_FIXED + N_IMPLS + N_X16];
    size_t n = 0;
    for (size_t i = 0; i < N_FIXED; i++) tests[n++] = fixed[i];
    for (size_t i = 0; i < N_IMPLS; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(test_dot_impl, (void *)&impls[i]);
        t.name = impls[i].name;
        tests[n++] = t;
    }
    for (size_t i = 0; i < N_X16; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(test_x16, (void *)&x16_cases[i]);
        t.name = x16_cases[i].name;
        tests[n++] = t;
    }
    return _cmocka_run_group_tests("kernels", tests, n, NULL, NULL);
}
