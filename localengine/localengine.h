/* localengine.h: junction's in-process quantized Llama engine.
 *
 * The one public header of the localengine module. A model is loaded from a
 * GGUF file (weights stay in the file's mapping, except the types the CPU's
 * kernels want interleaved, which the first context copies while their
 * file pages are released, so memory stays ~1x the file); a context
 * holds one sequence's KV cache and the compute threads; decoding appends
 * tokens to the sequence and yields logits; a sampler picks the next token.
 *
 * Ownership: eng_*_new/load return objects the caller frees with the
 * matching *_free. A context borrows its model: free contexts first.
 * Functions that can fail return 0 (or a count) on success and -1 on
 * failure, with a message for the user in `err`.
 */
#ifndef JUNCTION_LOCALENGINE_H
#define JUNCTION_LOCALENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- CPU ---- */

typedef enum {
    ENG_CPU_AVX2 = 1 << 0,
    ENG_CPU_FMA  = 1 << 1,
    ENG_CPU_F16C = 1 << 2,
    ENG_CPU_AVX512_VNNI = 1 << 3,   /* with AVX-512 F, BW, VL and DQ */
} eng_cpu_feature;

/* Bit set of eng_cpu_feature that this machine supports. Thread-safe. */
unsigned eng_cpu_features(void);

/* Name of the kernel set the engine runs on this machine, e.g.
 * "avx512vnni+avx2+fma+f16c", "avx2+fma+f16c" or "reference" (plain C).
 * Static storage. JUNCTION_KERNELS=avx2 or =reference in the environment
 * caps the choice (for comparisons and tests). */
const char *eng_kernels_name(void);

/* Best-of-5 read bandwidth in bytes/s over `bytes` of memory with n_threads
 * (0 if it cannot be measured here). */
double eng_measure_read_bandwidth(int n_threads, size_t bytes);

/* ---- Files ---- */

#include <stdio.h>
/* Print a GGUF file's metadata and tensor table to `out` (any GGUF, not only
 * runnable models). */
int eng_inspect(const char *path, FILE *out, char *err, size_t errlen);

/* Write a Llama GGUF file of a named shape ("tiny", "small", "7b", "13b")
 * and weight type ("f32", "f16", "q8_0", "q4_0") with deterministic random
 * weights from `seed`; the tokenizer is copied from `vocab_from` if given,
 * else a synthetic one is written. */
int eng_mkmodel(const char *path, const char *shape, const char *type, uint64_t seed,
                const char *vocab_from, char *err, size_t errlen);

/* ---- Models ---- */

typedef struct eng_model eng_model;

typedef struct {
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_rot, n_ctx_train;
    float rms_eps, rope_base;
    bool tied_output;            /* output.weight absent: token_embd is reused */
    bool llama2_chat;            /* tokenizer.chat_template is Llama 2's [INST] format */
    const char *name;            /* general.name or the file name; owned by the model */
    const char *weight_type;     /* e.g. "Q4_0" or "mixed"; static */
    uint64_t weight_bytes;       /* bytes of all tensors */
} eng_model_info;

/* Load and validate a Llama GGUF file. */
int eng_model_load(eng_model **out, const char *path, char *err, size_t errlen);
/* Load only the tokenizer of a GGUF file (e.g. llama.cpp's vocabulary-only
 * ggml-vocab-*.gguf, which has no tensors): eng_tokenize, eng_token_* and
 * the info's n_vocab, llama2_chat and name work; eng_ctx_new refuses it. */
int eng_model_load_vocab(eng_model **out, const char *path, char *err, size_t errlen);
void eng_model_free(eng_model *m);
const eng_model_info *eng_model_get_info(const eng_model *m);

/* ---- Tokens ---- */

/* Tokenize `text` (no special-token parsing). Returns the number of tokens,
 * which may exceed `max` (then call again with more room); -1 on OOM. */
int eng_tokenize(const eng_model *m, const char *text, size_t len, bool add_bos, int *out, int max);
/* The bytes of token `id` as text (▁ as space, byte tokens as their byte,
 * control tokens as nothing); returns the byte count (may exceed len). */
int eng_token_to_piece(const eng_model *m, int id, char *buf, size_t len);
int eng_token_bos(const eng_model *m);
int eng_token_eos(const eng_model *m);

/* ---- Contexts: one sequence, its KV cache, its threads ---- */

typedef enum { ENG_KV_F16 = 0, ENG_KV_F32 = 1 } eng_kv_type;

typedef struct {
    int n_ctx;            /* positions in the KV cache; 0 = the model's training context */
    int n_batch;          /* tokens per forward pass while prefilling; 0 = 512 */
    int n_threads;        /* 0 = one per CPU core */
    eng_kv_type kv_type;
    int n_seq;            /* sequences, each with its own n_ctx positions of KV cache; 0 = 1 */
} eng_ctx_params;

typedef struct eng_ctx eng_ctx;

/* The first context of a model also re-lays out its weights for this CPU's
 * kernels; create contexts of one model from one thread at a time. */
int eng_ctx_new(eng_ctx **out, eng_model *m, const eng_ctx_params *p, char *err, size_t errlen);
void eng_ctx_free(eng_ctx *c);

/* Several sequences at once: each item appends one token to its sequence;
 * all items go through the model together (one pass over the weights per
 * n_batch items), each attending to its own sequence only. Logits are kept
 * for the items with `logits` set: eng_get_logits(c, k) is the k-th of them.
 * Items of a sequence collecting features stopped at a layer (below) must
 * not ask for logits; a sequence holding a stopped prefill takes no items. */
typedef struct {
    int token, seq;
    bool logits;
} eng_batch_item;
int eng_decode_batch(eng_ctx *c, const eng_batch_item *items, int n, char *err, size_t errlen);
int eng_ctx_n_seq(const eng_ctx *c);
int eng_seq_pos(const eng_ctx *c, int seq);      /* tokens in the sequence's cache, -1 for a bad seq */
void eng_seq_truncate(eng_ctx *c, int seq, int pos);

/* Sequence 0 (the single-sequence interface):
 * append `n` tokens to the sequence and run the model over them, in batches
 * of n_batch. With all_logits, logits are kept for every one of the n
 * tokens, else for the last only. */
int eng_decode(eng_ctx *c, const int *tokens, int n, bool all_logits, char *err, size_t errlen);
/* Logits row i (0-based within the last eng_decode; with !all_logits only
 * the last, i = n-1, exists). Owned by the context, valid until the next call. */
const float *eng_get_logits(const eng_ctx *c, int i);
/* Tokens in the KV cache. */
int eng_ctx_pos(const eng_ctx *c);
/* Forget positions >= pos (e.g. after a probe, or to restart). */
void eng_ctx_truncate(eng_ctx *c, int pos);

/* ---- Features for the classifier ----
 *
 * One forward pass over a (chat-formatted) prompt yields the features the
 * classifier's heads read, at no extra cost to a local answer: the KV cache
 * it fills is the one generation continues from. Collection is per
 * sequence, so a prompt's slices can arrive over several eng_decode_batch
 * calls, mixed with other sequences' items; sums accumulate in the context
 * and are read out at the end.
 *
 *   eng_seq_features_begin(c, seq, &p)   from now on, seq's new tokens are scored
 *   eng_decode_batch(...) ...             items of seq: logits = false while stopped
 *   eng_seq_features_end(c, seq, &f)     the features; collection stops
 *   then, if answered locally:  eng_seq_finish_layers(c, seq) when stopped
 *                               (logits of the last token: eng_get_logits(c, 0)),
 *                               else the last item asked for its logits;
 *                               generation continues from the same cache
 *   or, if answered elsewhere:  eng_seq_truncate(c, seq, 0)
 *
 * Only tokens decoded between begin and end are scored: truncate the
 * sequence (to 0, or to where the scored text starts) before begin when its
 * cache holds a reused prefix. */
typedef struct {
    int stop_layer;   /* new tokens go through layers [0, stop_layer) only (the head reads no deeper);
                         0 or n_layer = all layers. While stopped: no NLL, no entropy, no logits. */
    int pool_layer;   /* mean-pool the residual stream after this many layers (1..n_layer, at most
                         stop_layer when stopped); 0 = no pooling */
    int nll_from;     /* tokens at positions >= nll_from (the user's text) count in the NLL ... */
    int nll_to;       /* ... and < nll_to; 0 = to the end. Ignored when stopped. */
} eng_feature_params;

typedef struct {
    int n_tokens;        /* tokens that went through the pass while collecting (the prompt length) */
    int n_scored;        /* tokens in the NLL; 0 when stopped or no position was in range */
    float nll_mean;      /* mean and max of -log p(token | the tokens before it), in nats; 0 when n_scored is 0 */
    float nll_max;
    float entropy_last;  /* entropy (nats) of the next-token distribution after the last token; 0 when stopped */
    float *pooled;       /* [n_pooled] mean of the residual stream after pool_layer layers; malloc'd, NULL when not pooled */
    int n_pooled;        /* n_embd, or 0 */
    int layers_done;     /* layers the tokens went through: stop_layer, or n_layer */
} eng_features;

/* Start collecting for `seq`. Fails for a bad sequence or parameters, a
 * sequence already collecting, or one holding a stopped prefill that was
 * neither finished nor truncated. */
int eng_seq_features_begin(eng_ctx *c, int seq, const eng_feature_params *p, char *err, size_t errlen);
/* Stop collecting and fill *out (out->pooled: the caller frees it with
 * eng_features_free). -1 when seq is not collecting, or when out of memory
 * for `pooled`. The stopped tokens (if any) stay in the sequence, waiting
 * for eng_seq_finish_layers or eng_seq_truncate. */
int eng_seq_features_end(eng_ctx *c, int seq, eng_features *out, char *err, size_t errlen);
void eng_features_free(eng_features *f);
/* Run a layer-stopped prefill of `seq` through its remaining layers (the
 * stored residual stream, n x n_embd floats, then freed), writing their KV,
 * so that the sequence equals one prefilled with all layers and generation
 * can continue; the last token's logits are then eng_get_logits(c, 0). Also
 * ends collection if still active (its features are lost: call
 * eng_seq_features_end first). -1 when seq has no stopped tokens. */
int eng_seq_finish_layers(eng_ctx *c, int seq, char *err, size_t errlen);
/* True while `seq` holds stopped tokens: its further items are refused
 * until eng_seq_finish_layers or eng_seq_truncate. */
bool eng_seq_stopped(const eng_ctx *c, int seq);

/* The single-sequence convenience (CLI: route, calibrate): sequence 0 is
 * truncated to empty, the n tokens are decoded with collection on, and the
 * features returned; the cache keeps the prompt (stopped or not), so a
 * caller may continue as above (not stopped: the last token's logits are
 * eng_get_logits(c, n - 1), as after eng_decode). */
int eng_prompt_features(eng_ctx *c, const int *tokens, int n, const eng_feature_params *p, eng_features *out,
                        char *err, size_t errlen);

/* Shorten a prompt to at most `max` tokens in place, keeping its head
 * (max / 2 tokens) and its tail; *pos (e.g. nll_from), if given, is moved to
 * where the same token now is (to the tail's start if it was cut out).
 * Returns the new count. */
int eng_keep_head_tail(int *tokens, int n, int max, int *pos);

/* ---- Sampling ---- */

typedef struct {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repeat_penalty;     /* 1: off; divides positive logits of recent tokens */
    float frequency_penalty;  /* 0: off */
    float presence_penalty;   /* 0: off */
    int penalty_last_n;       /* recent tokens the penalties look at */
    uint64_t seed;
    const struct eng_logit_bias *logit_bias;  /* added to the logits before anything else (OpenAI's
                                                 logit_bias); borrowed: eng_sampler_new copies it */
    int n_logit_bias;
} eng_sampling;

/* Token `token` gets `bias` added to its logit; -100 effectively bans it,
 * +100 effectively forces it. Entries for one token add up. */
typedef struct eng_logit_bias {
    int token;
    float bias;               /* -100..100 */
} eng_logit_bias;

void eng_sampling_defaults(eng_sampling *s);
/* 0 when the settings are valid for model m; else -1 with what is wrong
 * (e.g. a logit_bias token outside the vocabulary or a bias outside
 * [-100, 100]). eng_sampler_new refuses what this refuses. */
int eng_sampling_check(const eng_model *m, const eng_sampling *s, char *err, size_t errlen);

typedef struct eng_sampler eng_sampler;
/* -1: out of memory, or settings eng_sampling_check refuses. */
int eng_sampler_new(eng_sampler **out, const eng_model *m, const eng_sampling *s);
void eng_sampler_free(eng_sampler *s);
/* Pick the next token from `logits`; remembers it for the penalties. */
int eng_sampler_sample(eng_sampler *s, const float *logits);
/* Tell the sampler about tokens (e.g. the prompt) for the penalties. */
void eng_sampler_accept(eng_sampler *s, int token);

/* ---- Stop strings ----
 * Generated pieces go in; what comes out is the text safe to show now:
 * anything that might be the start of a stop string is held back until the
 * next piece settles it, and a stop string itself never comes out. */
#define ENG_TEXTSTOP_MAX 4

typedef struct {
    char *text;
    size_t len, cap, released;
    char *stops[ENG_TEXTSTOP_MAX];
    int n_stops;
    bool stopped;
} eng_textstop;

/* Copies the stop strings (empty ones ignored). 0, or -1 when out of memory. */
int eng_textstop_init(eng_textstop *t, const char *const *stops, int n);
void eng_textstop_free(eng_textstop *t);

/* Add a piece. *out and *out_len: newly releasable text (inside t, valid until
 * the next call). Returns true once a stop string has appeared. */
bool eng_textstop_add(eng_textstop *t, const char *piece, size_t n, const char **out, size_t *out_len);

/* At the end: release what was held back (no stop string came). */
void eng_textstop_flush(eng_textstop *t, const char **out, size_t *out_len);

#endif
