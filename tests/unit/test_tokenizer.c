/* test_tokenizer.c: the tokenizer against llama.cpp's reference tokenizations
 * (../shared/vectors/tokenizer/), and detokenization round trips. */
#include "gguf.h"
#include "localengine.h"
#include "vocab.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define VECTORS JUNCTION_SHARED_DIR "/vectors/tokenizer/"
#define MODELS JUNCTION_SHARED_DIR "/models/"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

static void check_vocab_file(const char *model)
{
    char path[512], inp_path[512], out_path[512], err[512];
    snprintf(path, sizeof(path), MODELS "%s", model);
    snprintf(inp_path, sizeof(inp_path), VECTORS "%s.inp", model);
    snprintf(out_path, sizeof(out_path), VECTORS "%s.out", model);
    gguf_file *f;
    assert_int_equal(gguf_open(&f, path, err, sizeof(err)), 0);
    eng_vocab v;
    assert_int_equal(eng_vocab_load(&v, f, err, sizeof(err)), 0);
    char *inp = slurp(inp_path, NULL), *outs = slurp(out_path, NULL);
    assert_non_null(inp);
    assert_non_null(outs);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *text = inp, *line = outs;
    int cases = 0, ids[4096];
    for (;;) {
        char *end = strstr(text, sep);
        size_t tlen = end ? (size_t)(end - text) : strlen(text);
        if (!end && tlen > 0 && text[tlen - 1] == '\n') tlen--; /* the file's last newline */
        char *eol = strchr(line, '\n');
        if (!eol) break;
        *eol = '\0';
        int expect[4096], ne = 0;
        for (char *p = line; *p;) {
            char *q;
            long id = strtol(p, &q, 10);
            if (q == p) break;
            expect[ne++] = (int)id;
            p = q;
        }
        int n = eng_vocab_tokenize(&v, text, tlen, false, ids, 4096);
        if (n != ne || memcmp(ids, expect, sizeof(int) * (size_t)ne) != 0) {
            fprintf(stderr, "%s case %d: '%.*s'\n expected:", model, cases, (int)tlen, text);
            for (int i = 0; i < ne; i++) fprintf(stderr, " %d", expect[i]);
            fprintf(stderr, "\n got:     ");
            for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n");
        }
        assert_int_equal(n, ne);
        assert_memory_equal(ids, expect, sizeof(int) * (size_t)ne);
        /* Detokenizing gives the text back, less the leading space the tokenizer adds. */
        char back[8192];
        size_t bl = 0;
        for (int i = 0; i < n; i++) bl += (size_t)eng_vocab_piece(&v, ids[i], back + bl, sizeof(back) - bl);
        if (tlen > 0) {
            assert_true(bl == tlen + 1);
            assert_memory_equal(back + 1, text, tlen);
        }
        cases++;
        line = eol + 1;
        if (!end) break;
        text = end + strlen(sep);
    }
    assert_true(cases >= 40);
    free(inp);
    free(outs);
    eng_vocab_free(&v);
    gguf_close(f);
}

static void test_llama2_vocab(void **s) { (void)s; check_vocab_file("ggml-vocab-llama-spm.gguf"); }
static void test_stories260k_vocab(void **s) { (void)s; check_vocab_file("stories260K.gguf"); }
static void test_tinyllama_vocab(void **s) { (void)s; check_vocab_file("TinyLLama-v0-Q4_0.gguf"); }

static void test_bos_and_specials(void **state)
{
    (void)state;
    char err[512];
    gguf_file *f;
    assert_int_equal(gguf_open(&f, MODELS "ggml-vocab-llama-spm.gguf", err, sizeof(err)), 0);
    eng_vocab v;
    assert_int_equal(eng_vocab_load(&v, f, err, sizeof(err)), 0);
    assert_int_equal(v.bos, 1);
    assert_int_equal(v.eos, 2);
    int ids[16];
    assert_int_equal(eng_vocab_tokenize(&v, "Hello", 5, true, ids, 16), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(eng_vocab_tokenize(&v, "", 0, true, ids, 16), 1);
    /* Control tokens are not text, and "<s>" in the input is not parsed as one. */
    char piece[16];
    assert_int_equal(eng_vocab_piece(&v, 1, piece, sizeof(piece)), 0);
    int n = eng_vocab_tokenize(&v, "<s>", 3, false, ids, 16);
    assert_true(n > 1);
    /* Asking with too little room reports the size needed. */
    assert_int_equal(eng_vocab_tokenize(&v, "Hello world", 11, false, ids, 1), 2);
    eng_vocab_free(&v);
    gguf_close(f);
}

/* A vocabulary-only file (no tensors) loads for tokenizing, as llama.cpp's
 * tokenizer tool reads it, but not as a model to run. */
static void test_vocab_only_model(void **state)
{
    (void)state;
    char err[512];
    eng_model *m = NULL;
    assert_int_equal(eng_model_load(&m, MODELS "ggml-vocab-llama-spm.gguf", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "token_embd.weight is missing"));
    assert_int_equal(eng_model_load_vocab(&m, MODELS "ggml-vocab-llama-spm.gguf", err, sizeof(err)), 0);
    const eng_model_info *info = eng_model_get_info(m);
    assert_int_equal(info->n_vocab, 32000);
    assert_string_equal(info->name, "llama-spm");
    int ids[8], want[] = {1, 15043, 3186};
    assert_int_equal(eng_tokenize(m, "Hello world", 11, true, ids, 8), 3);
    assert_memory_equal(ids, want, sizeof(want));
    char piece[16];
    assert_int_equal(eng_token_to_piece(m, 3186, piece, sizeof(piece)), 6);
    assert_memory_equal(piece, " world", 6);
    assert_int_equal(eng_token_bos(m), 1);
    eng_ctx *c = NULL;
    assert_int_equal(eng_ctx_new(&c, m, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "vocabulary only"));
    assert_null(c);
    eng_model_free(m);

    /* a complete model's vocabulary alone tokenizes as the model does */
    eng_model *full, *vocab;
    assert_int_equal(eng_model_load(&full, MODELS "stories260K.gguf", err, sizeof(err)), 0);
    assert_int_equal(eng_model_load_vocab(&vocab, MODELS "stories260K.gguf", err, sizeof(err)), 0);
    int a[64], b[64];
    const char *text = "Once upon a time, there was a little dog.";
    int na = eng_tokenize(full, text, strlen(text), true, a, 64), nb = eng_tokenize(vocab, text, strlen(text), true, b, 64);
    assert_true(na > 3);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, sizeof(int) * (size_t)na);
    eng_model_free(full);
    eng_model_free(vocab);

    /* a file that is not there, or not GGUF, is refused with a message */
    const char *bad[] = {MODELS "no-such-file.gguf", VECTORS "stories260K.gguf.inp"};
    for (int i = 0; i < 2; i++) {
        err[0] = '\0';
        assert_int_equal(eng_model_load_vocab(&m, bad[i], err, sizeof(err)), -1);
        assert_true(strlen(err) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2_vocab),
        cmocka_unit_test(test_stories260k_vocab),
        cmocka_unit_test(test_tinyllama_vocab),
        cmocka_unit_test(test_bos_and_specials),
        cmocka_unit_test(test_vocab_only_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
