/* model.h: the loaded Llama model, shared by the engine's files. Internal. */
#ifndef JUNCTION_MODEL_H
#define JUNCTION_MODEL_H

#include "gguf.h"
#include "localengine.h"
#include "quant.h"
#include "vocab.h"

/* Llama heads are 64 or 128 wide; wider ones are refused at load. */
#define ENG_MAX_HEAD_DIM 256

/* A weight matrix: n_out rows of n_in elements, in the file's mapping or,
 * re-laid out by the first context (repack.c), in the model's own memory. */
typedef struct {
    const void *data;
    const eng_type_info *type;
    int64_t n_in, n_out;
    size_t row_bytes;
} eng_weight;

typedef struct {
    const float *attn_norm, *ffn_norm;
    eng_weight wq, wk, wv, wo, w_gate, w_up, w_down;
} eng_layer;

struct eng_model {
    gguf_file *file;
    eng_model_info info;
    char name[256];
    eng_vocab vocab;
    eng_weight token_embd, output;
    const float *output_norm;
    eng_layer *layers;
    void *repacked;              /* anonymous mapping behind repacked weights */
    size_t repacked_bytes;
    bool vocab_only;             /* eng_model_load_vocab: no weights, no layers */
};

/* The i-th matrix the forward pass multiplies by (NULL past the last): the
 * output, then each layer's seven. */
eng_weight *eng_model_matmul_weight(eng_model *m, size_t i);
/* Row r of a weight as floats (any layout). */
void eng_weight_row(const eng_weight *w, int64_t r, float *dst);
/* Re-lay out the matrices whose type has a faster interleaved layout on
 * this CPU (repack.c); the model owns the memory. Idempotent: a matrix
 * already in its layout has nothing left to repack. */
int eng_model_repack(eng_model *m, char *err, size_t errlen);

#endif
