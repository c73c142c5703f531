/* local.h: the local engine as a service of the daemon. Internal.
 *
 * One engine thread owns the model's context, with `parallel` sequences
 * generated together (continuous batching: a request joins or leaves between
 * steps, long prompts are read in slices), fed from a bounded queue; the
 * text it produces is handed to the event loop (event_active), where the
 * callbacks run. Scoring a prompt for the classifier is one more kind of
 * job: its pass is the prefill a local answer needs, so the job then waits
 * in its slot, holding the cache, until the loop says whether to answer
 * from it or let it go.
 */
#ifndef JUNCTION_LOCAL_H
#define JUNCTION_LOCAL_H

#include "localengine.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct gw_local gw_local;
typedef struct gw_local_job gw_local_job;

typedef struct {
    const char *model_path;
    int ctx_size, threads, queue_size;
    int parallel;                 /* sequences generated together (continuous batching) */
    eng_kv_type kv_type;
    const char *chat_template;    /* "auto", "llama2" or "plain" */
} gw_local_params;

int gw_local_new(gw_local **out, struct event_base *base, const gw_local_params *p, char *err, size_t errlen);
void gw_local_free(gw_local *l);
const eng_model *gw_local_model(const gw_local *l);
const char *gw_local_model_id(const gw_local *l);
bool gw_local_llama2_chat(const gw_local *l);   /* the template in use */
int gw_local_n_ctx(const gw_local *l);          /* KV positions per sequence: the longest prompt + answer */
int gw_local_parallel(const gw_local *l);
int gw_local_threads(const gw_local *l);

typedef struct {
    int queued;                   /* waiting for a slot */
    int active;                   /* in a slot: being generated or scored, or holding a scored prompt */
    int slots;
    int queue_size;               /* how many may wait beyond the slots (a submit past it is refused) */
    unsigned long long generated_tokens;
    double tokens_per_second;     /* over the last whole second */
} gw_local_stats;
/* A snapshot, any thread. */
void gw_local_get_stats(gw_local *l, gw_local_stats *out);

typedef struct {
    const char *finish_reason;    /* "stop", "length", or NULL on error */
    int prompt_tokens, completion_tokens;
    int cached_tokens;            /* prompt tokens reused from the cache, not recomputed */
    const char *error;            /* what went wrong, or NULL */
} gw_local_result;

typedef struct {
    /* Text for the client (whole UTF-8 characters), with the count of
     * tokens generated so far. Loop thread. */
    void (*on_text)(void *arg, const char *text, size_t len, int tokens);
    /* With logprobs asked for: one token's OpenAI logprobs entry as JSON
     * ({"token","logprob","bytes","top_logprobs"}), loop thread. */
    void (*on_logprob)(void *arg, const char *json, size_t len);
    void (*on_done)(void *arg, const gw_local_result *res);    /* loop thread, exactly once */
} gw_local_callbacks;

typedef struct {
    int max_tokens;               /* 0: until the context is full */
    int logprobs;                 /* -1: none; else report each token's logprob and this many alternatives */
    eng_sampling sampling;        /* its logit_bias is copied at submit */
    const char *stops[4];
    int n_stops;
} gw_local_request;

/* Queue a generation for the token ids `prompt` (copied). Returns NULL when
 * the queue is full (answer 429) or memory ran out. */
gw_local_job *gw_local_submit(gw_local *l, const int *prompt, int n_prompt, const gw_local_request *req,
                              const gw_local_callbacks *cb, void *arg);
/* The client went away: no further callbacks for this job. */
void gw_local_cancel(gw_local_job *job);
/* Hold the job's generation (its client reads too slowly) or let it go on;
 * the other sequences are not held. Loop thread. */
void gw_local_pause(gw_local_job *job, bool paused);

/* ---- Scoring: the classifier's pass, and the answer from the same cache ----
 *
 * gw_local_score queues a pass over `tokens` (copied) with feature
 * collection (eng_seq_features_begin/end), batched with the generations
 * like any prompt. When it is done, on_features runs on the loop with the
 * features (valid during the call only), or with f NULL and the reason when
 * the pass failed: that job is then over, and is neither continued nor
 * released. After features, the job stays parked in its slot, holding the
 * prompt's KV cache, until the loop calls exactly one of
 *   gw_local_continue: generate the answer from that cache in that slot (it
 *     needs no queue room). For the scored tokens themselves there is no
 *     second prefill (a layer-stopped pass is first finished through its
 *     remaining layers) and usage reports every prompt token as cached; for
 *     another prompt (the whole one, when the pass read only its head and
 *     tail) the cache is reused as far as it matches (a full pass's; a
 *     stopped one's is dropped) and the rest is prefilled;
 *   gw_local_release: the answer comes from elsewhere: the slot is freed (a
 *     full pass's cache stays for prefix reuse, a stopped one is dropped);
 *   gw_local_cancel: the client went away (the slot is freed).
 * Returns NULL when the queue is full (answer 429) or memory ran out. */
typedef void (*gw_local_features_fn)(void *arg, const eng_features *f, const char *error);
gw_local_job *gw_local_score(gw_local *l, const int *tokens, int n, const eng_feature_params *p,
                             gw_local_features_fn on_features, void *arg);
/* Answer `prompt` (copied) from the parked job, as gw_local_submit would
 * (callbacks and arg replace the scoring ones). -1 when out of memory: the
 * job is released. */
int gw_local_continue(gw_local_job *job, const int *prompt, int n_prompt, const gw_local_request *req,
                      const gw_local_callbacks *cb, void *arg);
void gw_local_release(gw_local_job *job);

/* Render OpenAI chat messages (validated) as the model's prompt tokens:
 * Llama 2's [INST] format when the model has that template, else the plain
 * text of the messages one after the other. Heap array in *out (caller
 * frees); returns the count, or -1. (gw_prompt_render, in gateway.h, is
 * the same for any model, with the cut the classifier reads.) */
int gw_local_render_chat(const gw_local *l, const void *messages_cjson, int **out);

/* ---- utf8.c: text that is always valid UTF-8 ----
 * Tokens may end inside a multi-byte character (byte-fallback tokens):
 * bytes are held back until their character is complete, and bytes that
 * can never form one come out as U+FFFD, as llama.cpp's server does. */
typedef struct {
    unsigned char held[4];
    int n_held;
} gw_utf8;
/* Feed `len` bytes; complete characters go to `out`, which must hold
 * 3 * (len + 4) bytes. Returns the bytes written. */
size_t gw_utf8_feed(gw_utf8 *u, const char *in, size_t len, char *out);
/* At the end: what is held comes out as U+FFFD (out: 12 bytes). */
size_t gw_utf8_flush(gw_utf8 *u, char *out);

#endif
