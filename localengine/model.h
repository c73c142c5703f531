/* model.h: the loaded Llama model, shared by the engine's files. Internal. */
#ifndef JUNCTION_MODEL_H
#define JUNCTION_MODEL_H

#include "gguf.h"
#include "localengine.h"
#include "quant.h"
#include "vocab.h"

/* A weight matrix in the file's mapping: n_out rows of n_in elements. */
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
};

#endif
