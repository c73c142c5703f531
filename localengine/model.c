/* model.c: load a Llama GGUF file and check it is one we can run.
 *
 * Hyperparameters come from the llama.* metadata; every tensor the forward
 * pass uses is looked up by name and its shape and type checked against
 * them, so the forward pass never has to. Weights are used in place from
 * the file's mapping, except those the CPU's kernels want interleaved
 * (repack.c, at the first context), whose file pages are given back once
 * they are copied.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int load_weight(eng_model *m, eng_weight *w, const char *name, int64_t n_in, int64_t n_out,
                       char *err, size_t errlen)
{
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    if (!t) {
        snprintf(err, errlen, "tensor %s is missing: not a complete Llama model", name);
        return -1;
    }
    if (t->n_dims > 2 || (int64_t)t->dims[0] != n_in || (int64_t)t->dims[1] != n_out) {
        snprintf(err, errlen, "tensor %s has shape [%llu, %llu], expected [%lld, %lld] for this model's hyperparameters",
                 name, (unsigned long long)t->dims[0], (unsigned long long)t->dims[1], (long long)n_in, (long long)n_out);
        return -1;
    }
    const eng_type_info *ti = eng_type_info_of(t->type);
    if (!ti->vec_dot || !ti->to_float) {
        snprintf(err, errlen, "tensor %s is %s, a type this build of junction cannot run yet "
                              "(supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)", name, ti->name);
        return -1;
    }
    w->data = t->data;
    w->type = ti;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = eng_row_size(t->type, n_in);
    return 0;
}

static int load_norm(eng_model *m, const float **out, const char *name, int64_t n, char *err, size_t errlen)
{
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    if (!t || t->type != ENG_TYPE_F32 || t->n_dims != 1 || (int64_t)t->dims[0] != n) {
        snprintf(err, errlen, "tensor %s must be an F32 vector of %lld values", name, (long long)n);
        return -1;
    }
    *out = t->data;
    return 0;
}

static int need_u32(const gguf_file *f, const char *key, int *out, int min, int max, char *err, size_t errlen)
{
    uint64_t v;
    if (!gguf_get_u64(f, key, &v) || v < (uint64_t)min || v > (uint64_t)max) {
        snprintf(err, errlen, "metadata %s is missing or out of range (%d to %d)", key, min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int load_hparams(eng_model *m, char *err, size_t errlen)
{
    const gguf_file *f = m->file;
    eng_model_info *h = &m->info;
    gguf_str arch;
    if (!gguf_get_str(f, "general.architecture", &arch) || !gguf_str_eq(arch, "llama")) {
        snprintf(err, errlen, "general.architecture is not \"llama\": junction runs Llama models only");
        return -1;
    }
    if (need_u32(f, "llama.embedding_length", &h->n_embd, 1, 65536, err, errlen) ||
        need_u32(f, "llama.block_count", &h->n_layer, 1, 1024, err, errlen) ||
        need_u32(f, "llama.feed_forward_length", &h->n_ff, 1, 1 << 20, err, errlen) ||
        need_u32(f, "llama.attention.head_count", &h->n_head, 1, 1024, err, errlen) ||
        need_u32(f, "llama.context_length", &h->n_ctx_train, 1, 1 << 24, err, errlen))
        return -1;
    uint64_t v;
    h->n_head_kv = gguf_get_u64(f, "llama.attention.head_count_kv", &v) ? (int)v : h->n_head;
    if (h->n_head_kv < 1 || h->n_head % h->n_head_kv != 0 || h->n_embd % h->n_head != 0) {
        snprintf(err, errlen, "head counts do not fit: %d heads, %d KV heads, width %d", h->n_head, h->n_head_kv, h->n_embd);
        return -1;
    }
    int head_dim = h->n_embd / h->n_head;
    if (head_dim > ENG_MAX_HEAD_DIM) {
        snprintf(err, errlen, "attention heads of %d values are wider than the %d this engine supports", head_dim,
                 ENG_MAX_HEAD_DIM);
        return -1;
    }
    h->n_rot = gguf_get_u64(f, "llama.rope.dimension_count", &v) ? (int)v : head_dim;
    if (h->n_rot < 2 || h->n_rot > head_dim || h->n_rot % 2) {
        snprintf(err, errlen, "llama.rope.dimension_count %d must be even and at most the head size %d", h->n_rot, head_dim);
        return -1;
    }
    if (!gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &h->rms_eps)) h->rms_eps = 1e-5f;
    if (!gguf_get_f32(f, "llama.rope.freq_base", &h->rope_base)) h->rope_base = 10000.0f;
    if (!(h->rms_eps > 0) || !(h->rope_base > 0)) {
        snprintf(err, errlen, "rms epsilon and rope frequency base must be positive");
        return -1;
    }
    return 0;
}

eng_weight *eng_model_matmul_weight(eng_model *m, size_t i)
{
    if (i == 0) return &m->output;
    size_t l = (i - 1) / 7;
    if (l >= (size_t)m->info.n_layer) return NULL;
    eng_layer *L = &m->layers[l];
    eng_weight *lw[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return lw[(i - 1) % 7];
}

/* The layers' type, or "mixed" (the output matrix does not count: presets
 * often give it another type). */
static const char *weight_type_summary(eng_model *m)
{
    const eng_type_info *t = m->layers[0].wq.type;
    eng_weight *w;
    for (size_t i = 1; (w = eng_model_matmul_weight(m, i)); i++)
        if (w->type != t) return "mixed";
    return t->name;
}

/* The name and chat format, from the metadata. */
static void describe(eng_model *m, const char *path)
{
    gguf_str name, tmpl;
    const char *base = strrchr(path, '/');
    if (gguf_get_str(m->file, "general.name", &name) && name.len > 0)
        snprintf(m->name, sizeof(m->name), "%.*s", (int)(name.len > 200 ? 200 : name.len), name.ptr);
    else
        snprintf(m->name, sizeof(m->name), "%s", base ? base + 1 : path);
    m->info.name = m->name;
    m->info.llama2_chat = gguf_get_str(m->file, "tokenizer.chat_template", &tmpl) &&
                          memmem(tmpl.ptr, tmpl.len, "[INST]", 6) != NULL;
}

int eng_model_load_vocab(eng_model **out, const char *path, char *err, size_t errlen)
{
    eng_model *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char detail[512];
    if (gguf_open(&m->file, path, err, errlen) != 0) {
        free(m);
        return -1;
    }
    if (eng_vocab_load(&m->vocab, m->file, detail, sizeof(detail)) != 0) {
        snprintf(err, errlen, "%s: %s", path, detail);
        eng_model_free(m);
        return -1;
    }
    m->vocab_only = true;
    m->info.n_vocab = m->vocab.n;
    m->info.weight_type = "none";
    describe(m, path);
    *out = m;
    return 0;
}

int eng_model_load(eng_model **out, const char *path, char *err, size_t errlen)
{
    eng_types_init();
    eng_model *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char detail[512];
    if (gguf_open(&m->file, path, err, errlen) != 0) {
        free(m);
        return -1;
    }
    if (load_hparams(m, detail, sizeof(detail)) != 0 || eng_vocab_load(&m->vocab, m->file, detail, sizeof(detail)) != 0)
        goto fail;
    eng_model_info *h = &m->info;
    h->n_vocab = m->vocab.n;
    int head_dim = h->n_embd / h->n_head, kv_dim = head_dim * h->n_head_kv;
    m->layers = calloc((size_t)h->n_layer, sizeof(eng_layer));
    if (!m->layers) {
        snprintf(detail, sizeof(detail), "out of memory");
        goto fail;
    }
    if (load_weight(m, &m->token_embd, "token_embd.weight", h->n_embd, h->n_vocab, detail, sizeof(detail)) ||
        load_norm(m, &m->output_norm, "output_norm.weight", h->n_embd, detail, sizeof(detail)))
        goto fail;
    if (gguf_find_tensor(m->file, "output.weight")) {
        if (load_weight(m, &m->output, "output.weight", h->n_embd, h->n_vocab, detail, sizeof(detail))) goto fail;
    } else {
        m->output = m->token_embd;
        h->tied_output = true;
    }
    for (int l = 0; l < h->n_layer; l++) {
        eng_layer *L = &m->layers[l];
        char n[96];
#define W(field, suffix, in, outd) \
        (snprintf(n, sizeof(n), "blk.%d." suffix ".weight", l), load_weight(m, &L->field, n, in, outd, detail, sizeof(detail)))
#define N(field, suffix) \
        (snprintf(n, sizeof(n), "blk.%d." suffix ".weight", l), load_norm(m, &L->field, n, h->n_embd, detail, sizeof(detail)))
        if (N(attn_norm, "attn_norm") || N(ffn_norm, "ffn_norm") || W(wq, "attn_q", h->n_embd, h->n_embd) ||
            W(wk, "attn_k", h->n_embd, kv_dim) || W(wv, "attn_v", h->n_embd, kv_dim) ||
            W(wo, "attn_output", h->n_embd, h->n_embd) || W(w_gate, "ffn_gate", h->n_embd, h->n_ff) ||
            W(w_up, "ffn_up", h->n_embd, h->n_ff) || W(w_down, "ffn_down", h->n_ff, h->n_embd))
            goto fail;
#undef W
#undef N
    }
    describe(m, path);
    h->weight_type = weight_type_summary(m);
    for (uint64_t i = 0; i < m->file->n_tensors; i++) h->weight_bytes += m->file->tensors[i].n_bytes;
    *out = m;
    return 0;
fail:
    snprintf(err, errlen, "%s: %s", path, detail);
    eng_model_free(m);
    return -1;
}

void eng_model_free(eng_model *m)
{
    if (!m) return;
    eng_vocab_free(&m->vocab);
    free(m->layers);
    if (m->repacked) munmap(m->repacked, m->repacked_bytes);
    gguf_close(m->file);
    free(m);
}

const eng_model_info *eng_model_get_info(const eng_model *m) { return &m->info; }

void eng_weight_row(const eng_weight *w, int64_t r, float *dst)
{
    if (w->type->get_row) w->type->get_row(w->data, r, w->n_in, dst);
    else w->type->to_float((const uint8_t *)w->data + (size_t)r * w->row_bytes, dst, w->n_in);
}

int eng_tokenize(const eng_model *m, const char *text, size_t len, bool add_bos, int *out, int max)
{
    return eng_vocab_tokenize(&m->vocab, text, len, add_bos, out, max);
}

int eng_token_to_piece(const eng_model *m, int id, char *buf, size_t len)
{
    return eng_vocab_piece(&m->vocab, id, buf, len);
}

int eng_token_bos(const eng_model *m) { return m->vocab.bos; }
int eng_token_eos(const eng_model *m) { return m->vocab.eos; }
