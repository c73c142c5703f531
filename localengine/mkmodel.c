/* mkmodel.c: write a valid Llama GGUF file with deterministic random weights.
 *
 * Tests and benchmarks need models of exact shapes (up to Llama-2-7B and
 * 13B) that nothing can download here. Weights are N(0, 0.02)-like draws
 * from a seeded PRNG, quantized row by row with our own quantizer and
 * streamed to the file, so a 7B file needs no more memory than one row.
 * The file is written as PATH.tmp, synced, then renamed: an interrupted or
 * failed run never leaves a half-written model under the final name.
 */
#include "gguf.h"
#include "localengine.h"
#include "quant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
} shape;

static const shape shapes[] = {
    {"tiny", 64, 2, 4, 2, 192, 512, 512},
    {"small", 256, 4, 8, 4, 768, 4096, 1024},
    {"7b", 4096, 32, 32, 32, 11008, 32000, 4096},
    {"13b", 5120, 40, 40, 40, 13824, 32000, 4096},
};

#define ALIGN 32

typedef struct {
    FILE *f;
    int error;               /* errno of the first failed write */
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (!w->error && n && fwrite(p, 1, n, w->f) != n) w->error = errno ? errno : EIO;
}
static void put_u32(writer *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(writer *w, uint64_t v) { put(w, &v, 8); }
static void put_str(writer *w, const char *s, size_t n) { put_u64(w, n); put(w, s, n); }
static void kv_head(writer *w, const char *key, size_t len, gguf_type t) { put_str(w, key, len); put_u32(w, t); }
static void kv_u32(writer *w, const char *key, uint32_t v) { kv_head(w, key, strlen(key), GGUF_U32); put_u32(w, v); }
static void kv_f32(writer *w, const char *key, float v) { kv_head(w, key, strlen(key), GGUF_F32); put(w, &v, 4); }
static void kv_str(writer *w, const char *key, const char *v) { kv_head(w, key, strlen(key), GGUF_STRING); put_str(w, v, strlen(v)); }

typedef struct {
    char name[64];
    int64_t n_in, n_out;     /* a vector has n_out 1 and is written as 1-D */
    uint32_t type;
    uint64_t offset, bytes;
} tensor_plan;

static uint64_t round_up(uint64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

/* xorshift64 + Irwin-Hall sum of four uniforms: close to N(0, 0.02), cheap. */
static float next_weight(uint64_t *s)
{
    float sum = 0;
    for (int i = 0; i < 4; i++) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        sum += (float)(*s >> 40) * (1.0f / 16777216.0f);
    }
    return (sum - 2.0f) * 0.02f * 1.7320508f; /* the sum's variance is 1/3 */
}

/* The synthetic vocabulary: <unk>, <s>, </s>, 256 byte tokens, then "▁t<i>". */
static void write_synthetic_vocab(writer *w, int n_vocab)
{
    kv_str(w, "tokenizer.ggml.model", "llama");
    kv_head(w, "tokenizer.ggml.tokens", strlen("tokenizer.ggml.tokens"), GGUF_ARRAY);
    put_u32(w, GGUF_STRING);
    put_u64(w, (uint64_t)n_vocab);
    for (int i = 0; i < n_vocab; i++) {
        char t[32];
        if (i < 3) snprintf(t, sizeof(t), "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259) snprintf(t, sizeof(t), "<0x%02X>", i - 3);
        else snprintf(t, sizeof(t), "\xe2\x96\x81t%d", i);
        put_str(w, t, strlen(t));
    }
    kv_head(w, "tokenizer.ggml.scores", strlen("tokenizer.ggml.scores"), GGUF_ARRAY);
    put_u32(w, GGUF_F32);
    put_u64(w, (uint64_t)n_vocab);
    for (int i = 0; i < n_vocab; i++) {
        float sc = i < 259 ? 0.0f : -(float)i;
        put(w, &sc, 4);
    }
    kv_head(w, "tokenizer.ggml.token_type", strlen("tokenizer.ggml.token_type"), GGUF_ARRAY);
    put_u32(w, GGUF_I32);
    put_u64(w, (uint64_t)n_vocab);
    for (int i = 0; i < n_vocab; i++) {
        int32_t t = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        put(w, &t, 4);
    }
    kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
}

static int vocab_kv_count(const gguf_file *src)
{
    int n = 0;
    for (uint64_t i = 0; i < src->n_kv; i++)
        if (src->kv[i].key.len > 10 && !memcmp(src->kv[i].key.ptr, "tokenizer.", 10)) n++;
    return n;
}

static void copy_vocab(writer *w, const gguf_file *src)
{
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const gguf_kv *kv = &src->kv[i];
        if (kv->key.len <= 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0) continue;
        kv_head(w, kv->key.ptr, kv->key.len, kv->type);
        put(w, kv->value, kv->value_len);
    }
}

int eng_mkmodel(const char *path, const char *shape_name, const char *type_name, uint64_t seed,
                const char *vocab_from, char *err, size_t errlen)
{
    eng_types_init();
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        if (!strcmp(shapes[i].name, shape_name)) sh = &shapes[i];
    if (!sh) {
        snprintf(err, errlen, "unknown shape '%s'; use tiny, small, 7b or 13b", shape_name);
        return -1;
    }
    /* The types mkmodel writes, with the general.file_type llama.cpp gives a
     * file that holds only that type (the K ones as their _S presets). */
    static const struct { uint32_t id, file_type; } writable[] = {
        {ENG_TYPE_F32, 0},   {ENG_TYPE_F16, 1},   {ENG_TYPE_Q4_0, 2},  {ENG_TYPE_Q4_1, 3},  {ENG_TYPE_Q8_0, 7},
        {ENG_TYPE_Q5_0, 8},  {ENG_TYPE_Q5_1, 9},  {ENG_TYPE_Q2_K, 10}, {ENG_TYPE_Q3_K, 11}, {ENG_TYPE_Q4_K, 14},
        {ENG_TYPE_Q5_K, 16}, {ENG_TYPE_Q6_K, 18}, {ENG_TYPE_BF16, 32},
    };
    const eng_type_info *type = NULL;
    uint32_t file_type = 0;
    for (size_t i = 0; i < sizeof(writable) / sizeof(writable[0]); i++)
        if (!strcasecmp(eng_type_info_of(writable[i].id)->name, type_name)) {
            type = eng_type_info_of(writable[i].id);
            file_type = writable[i].file_type;
        }
    if (!type) {
        snprintf(err, errlen, "unknown type '%s'; use f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
                 "q2_k, q3_k, q4_k, q5_k or q6_k", type_name);
        return -1;
    }
    if (sh->n_embd % (int)type->block_size || sh->n_ff % (int)type->block_size) {
        snprintf(err, errlen, "type %s packs rows in blocks of %u weights, and shape %s has rows of %d and %d; "
                 "use --shape small or larger", type->name, type->block_size, sh->name, sh->n_embd, sh->n_ff);
        return -1;
    }
    gguf_file *vocab = NULL;
    int n_vocab = sh->n_vocab;
    if (vocab_from) {
        if (gguf_open(&vocab, vocab_from, err, errlen) != 0) return -1;
        const gguf_kv *tokens = gguf_get_arr(vocab, "tokenizer.ggml.tokens", GGUF_STRING);
        if (!tokens) {
            snprintf(err, errlen, "%s has no tokenizer.ggml.tokens to copy", vocab_from);
            gguf_close(vocab);
            return -1;
        }
        n_vocab = (int)tokens->n_elems;
    }

    /* Plan the tensors and their offsets. */
    int E = sh->n_embd, F = sh->n_ff, KV = E / sh->n_head * sh->n_head_kv;
    int n_t = 3 + 9 * sh->n_layer;
    tensor_plan *t = calloc((size_t)n_t, sizeof(*t));
    if (!t) {
        gguf_close(vocab);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int k = 0;
#define PLAN(nm, in, out, ty) (snprintf(t[k].name, sizeof(t[k].name), "%s", nm), t[k].n_in = (in), t[k].n_out = (out), t[k].type = (ty), k++)
    PLAN("token_embd.weight", E, n_vocab, type->id);
    for (int l = 0; l < sh->n_layer; l++) {
        char n[64];
        const struct { const char *suffix; int in, out; bool vec; } parts[] = {
            {"attn_norm", E, 1, true}, {"attn_q", E, E, false}, {"attn_k", E, KV, false}, {"attn_v", E, KV, false},
            {"attn_output", E, E, false}, {"ffn_norm", E, 1, true}, {"ffn_gate", E, F, false},
            {"ffn_up", E, F, false}, {"ffn_down", F, E, false}};
        for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
            snprintf(n, sizeof(n), "blk.%d.%s.weight", l, parts[p].suffix);
            PLAN(n, parts[p].in, parts[p].out, parts[p].vec ? ENG_TYPE_F32 : type->id);
        }
    }
    PLAN("output_norm.weight", E, 1, ENG_TYPE_F32);
    PLAN("output.weight", E, n_vocab, type->id);
#undef PLAN
    uint64_t off = 0;
    for (int i = 0; i < n_t; i++) {
        t[i].offset = off;
        t[i].bytes = eng_row_size(t[i].type, t[i].n_in) * (uint64_t)t[i].n_out;
        off = round_up(off + t[i].bytes);
    }

    char tmp[4096];
    writer w = {NULL, 0};
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        snprintf(err, errlen, "cannot create %s: the path is too long", path);
    else if (!(w.f = fopen(tmp, "wb")))
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    if (!w.f) {
        free(t);
        gguf_close(vocab);
        return -1;
    }
    char name[96];
    snprintf(name, sizeof(name), "junction-mkmodel-%s-%s", sh->name, type->name);
    int n_kv = 13 + (vocab ? vocab_kv_count(vocab) : 7); /* 7: write_synthetic_vocab */
    put(&w, "GGUF", 4);
    put_u32(&w, 3);
    put_u64(&w, (uint64_t)n_t);
    put_u64(&w, (uint64_t)n_kv);
    kv_str(&w, "general.architecture", "llama");
    kv_str(&w, "general.name", name);
    kv_u32(&w, "general.alignment", ALIGN);
    kv_u32(&w, "llama.context_length", (uint32_t)sh->n_ctx);
    kv_u32(&w, "llama.embedding_length", (uint32_t)E);
    kv_u32(&w, "llama.block_count", (uint32_t)sh->n_layer);
    kv_u32(&w, "llama.feed_forward_length", (uint32_t)F);
    kv_u32(&w, "llama.attention.head_count", (uint32_t)sh->n_head);
    kv_u32(&w, "llama.attention.head_count_kv", (uint32_t)sh->n_head_kv);
    kv_u32(&w, "llama.rope.dimension_count", (uint32_t)(E / sh->n_head));
    kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_f32(&w, "llama.rope.freq_base", 10000.0f);
    kv_u32(&w, "general.file_type", file_type);
    if (vocab) copy_vocab(&w, vocab);
    else write_synthetic_vocab(&w, n_vocab);
    for (int i = 0; i < n_t; i++) {
        put_str(&w, t[i].name, strlen(t[i].name));
        bool vec = t[i].n_out == 1;
        put_u32(&w, vec ? 1 : 2);
        put_u64(&w, (uint64_t)t[i].n_in);
        if (!vec) put_u64(&w, (uint64_t)t[i].n_out);
        put_u32(&w, t[i].type);
        put_u64(&w, t[i].offset);
    }
    static const uint8_t zeros[ALIGN];
    long pos = ftell(w.f);
    put(&w, zeros, round_up((uint64_t)pos) - (uint64_t)pos);

    float *row = malloc(sizeof(float) * (size_t)(F > E ? F : E));
    uint8_t *q = malloc(eng_row_size(ENG_TYPE_F32, F > E ? F : E));
    uint64_t written = 0;
    for (int i = 0; i < n_t && row && q && !w.error; i++) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)(i + 1) * 0xD1B54A32D192ED03ULL;
        s = s ? s : 1;
        const eng_type_info *tt = eng_type_info_of(t[i].type);
        for (int64_t r = 0; r < t[i].n_out; r++) {
            for (int64_t j = 0; j < t[i].n_in; j++) row[j] = t[i].n_out == 1 ? 1.0f + next_weight(&s) : next_weight(&s);
            tt->from_float(row, q, t[i].n_in);
            put(&w, q, eng_row_size(t[i].type, t[i].n_in));
        }
        written = t[i].offset + t[i].bytes;
        uint64_t next = i + 1 < n_t ? t[i + 1].offset : round_up(written);
        put(&w, zeros, next - written);
    }
    int rc = 0;
    if (!row || !q) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (!w.error && (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)) w.error = errno;
    if (fclose(w.f) != 0 && !w.error) w.error = errno;
    if (w.error) {
        snprintf(err, errlen, "writing %s failed: %s", tmp, strerror(w.error));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) remove(tmp);
    free(row);
    free(q);
    free(t);
    gguf_close(vocab);
    return rc;
}
