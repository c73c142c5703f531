/* test_gguf.c: the GGUF reader on real files, and on every kind of damage:
 * truncation at each point, corrupted bytes, hostile counts and sizes. It
 * must refuse with a message, never crash or read out of bounds (ASan). */
#include "gguf.h"
#include "localengine.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define SHARED JUNCTION_SHARED_DIR

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*len);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static char tmp_path[64];

/* Write `len` bytes to a temp file and try to open it; returns gguf_open's result. */
static int open_bytes(const unsigned char *bytes, size_t len, char *err, size_t errlen)
{
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/junction-gguf-XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    close(fd);
    gguf_file *f = NULL;
    int rc = gguf_open(&f, tmp_path, err, errlen);
    if (rc == 0) {
        /* walk everything the accessors expose */
        for (uint64_t i = 0; i < f->n_kv; i++) {
            if (f->kv[i].type == GGUF_ARRAY && f->kv[i].elem_type == GGUF_STRING) {
                const uint8_t *cur = gguf_arr_begin(&f->kv[i]);
                for (uint64_t j = 0; j < f->kv[i].n_elems; j++) gguf_arr_next_str(&cur);
            }
        }
        gguf_close(f);
    }
    unlink(tmp_path);
    return rc;
}

static void test_real_files_open(void **state)
{
    (void)state;
    const char *files[] = {SHARED "/models/stories260K.gguf", SHARED "/models/TinyLLama-v0-Q4_0.gguf",
                           SHARED "/models/llama-2-tiny-random.gguf", SHARED "/models/ggml-vocab-llama-spm.gguf",
                           SHARED "/vectors/quants/quant-Q4_K_M.gguf"};
    char err[512];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        gguf_file *f;
        if (gguf_open(&f, files[i], err, sizeof(err)) != 0) fprintf(stderr, "%s\n", err);
        assert_non_null(f);
        assert_true(f->version == 3 || f->version == 2);
        gguf_close(f);
    }
    gguf_file *f;
    assert_int_equal(gguf_open(&f, SHARED "/models/stories260K.gguf", err, sizeof(err)), 0);
    assert_int_equal(f->n_tensors, 48);
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->dims[0], 64);
    assert_int_equal(t->dims[1], 512);
    uint64_t v;
    assert_true(gguf_get_u64(f, "llama.attention.head_count_kv", &v));
    assert_int_equal(v, 4);
    gguf_close(f);
}

static void test_unusual_files_refused_clearly(void **state)
{
    (void)state;
    char err[512];
    gguf_file *f;
    assert_int_equal(gguf_open(&f, SHARED "/vectors/unusual/stories260K-gguf-v1.gguf", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "GGUF version 1"));
    assert_int_equal(gguf_open(&f, SHARED "/vectors/unusual/stories260K-gguf-v2-q8_0-unaligned-rows.gguf", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a multiple of the Q8_0 block size"));
    assert_int_equal(gguf_open(&f, "/nonexistent.gguf", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(gguf_open(&f, "/tmp", err, sizeof(err)), -1);
}

/* Every truncation point of a real file is an error, never a crash. */
static void test_every_truncation(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b = slurp(SHARED "/models/stories260K.gguf", &len);
    char err[512];
    /* metadata and tensor infos densely, the data section sparsely */
    for (size_t cut = 0; cut < len; cut += cut < 20000 ? 1 : 4099) {
        assert_int_equal(open_bytes(b, cut, err, sizeof(err)), -1);
        assert_true(strlen(err) > 10);
    }
    assert_int_equal(open_bytes(b, len, err, sizeof(err)), 0);
    free(b);
}

/* Random corruption of the header: open may succeed or fail, but safely. */
static void test_random_corruption(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b = slurp(SHARED "/models/stories260K.gguf", &len);
    unsigned char *c = malloc(len);
    uint64_t rng = 42;
    char err[512];
    int failures = 0;
    for (int trial = 0; trial < 1500; trial++) {
        memcpy(c, b, len);
        for (int k = 0; k < 4; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(rng >> 33) % 12000; /* the header region */
            c[at] = (unsigned char)(rng >> 20);
        }
        failures += open_bytes(c, len, err, sizeof(err)) != 0;
    }
    assert_true(failures > 100); /* most corruptions are caught */
    free(c);
    free(b);
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

static void test_hostile_headers(void **state)
{
    (void)state;
    char err[512];
    unsigned char h[256];
    memset(h, 0, sizeof(h));
    memcpy(h, "GGUF", 4);
    put_u32(h + 4, 3);
    /* absurd counts */
    put_u64(h + 8, UINT64_MAX);
    put_u64(h + 16, 0);
    assert_int_equal(open_bytes(h, 64, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than a"));
    /* a key claiming a huge string */
    put_u64(h + 8, 0);
    put_u64(h + 16, 1);
    put_u64(h + 24, 1ULL << 62);
    assert_int_equal(open_bytes(h, 64, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "claims"));
    /* an array of 2^61 u64 */
    put_u64(h + 24, 1);
    h[32] = 'k';
    put_u32(h + 33, GGUF_ARRAY);
    put_u32(h + 37, GGUF_U64);
    put_u64(h + 41, 1ULL << 61);
    assert_int_equal(open_bytes(h, 64, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not fit"));
    /* deeply nested arrays */
    put_u32(h + 37, GGUF_ARRAY);
    put_u64(h + 41, 1);
    for (int d = 0; d < 10; d++) {
        put_u32(h + 49 + d * 12, GGUF_ARRAY);
        put_u64(h + 53 + d * 12, 1);
    }
    assert_int_equal(open_bytes(h, 200, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nested"));
    /* a tensor whose dimensions overflow */
    memset(h + 8, 0, sizeof(h) - 8);
    put_u64(h + 8, 1);
    put_u64(h + 16, 0);
    put_u64(h + 24, 1);
    h[32] = 't';
    put_u32(h + 33, 2);
    put_u64(h + 37, 1ULL << 40);
    put_u64(h + 45, 1ULL << 40);
    assert_int_equal(open_bytes(h, 128, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "impossible dimension"));
    /* a tensor of an unknown type */
    put_u64(h + 37, 32);
    put_u64(h + 45, 2);
    put_u32(h + 53, 99);
    assert_int_equal(open_bytes(h, 128, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "type id 99"));
    /* a tensor past the end of the file */
    put_u32(h + 53, 0);
    put_u64(h + 57, 0);
    assert_int_equal(open_bytes(h, 128, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "outside the file"));
    /* not GGUF at all */
    assert_int_equal(open_bytes((const unsigned char *)"PK\3\4 zip", 9, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a GGUF file"));
    assert_int_equal(open_bytes(h, 0, err, sizeof(err)), -1);
}

/* The engine refuses files that are valid GGUF but not runnable Llama models. */
static void test_model_refusals(void **state)
{
    (void)state;
    char err[512];
    eng_model *m;
    assert_int_equal(eng_model_load(&m, SHARED "/models/ggml-vocab-llama-spm.gguf", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "token_embd.weight is missing"));
    /* another architecture: the same file with "llama" spelled otherwise */
    size_t len;
    unsigned char *b = slurp(SHARED "/models/stories260K.gguf", &len);
    static const char key[] = "general.architecture\x08\0\0\0\x05\0\0\0\0\0\0\0llama";
    unsigned char *at = memmem(b, len, key, sizeof(key) - 1);
    assert_non_null(at);
    memcpy(at + sizeof(key) - 6, "mamba", 5);
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/junction-gguf-XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
    assert_int_equal(eng_model_load(&m, tmp_path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "junction runs Llama models only"));
    unlink(tmp_path);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_files_open),
        cmocka_unit_test(test_unusual_files_refused_clearly),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_model_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
