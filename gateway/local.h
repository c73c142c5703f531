/* local.h: the local engine as a service of the daemon. Internal.
 *
 * One engine thread owns the model's context, with `parallel` sequences
 * generated together (continuous batching: a request joins or leaves between
 * steps, long prompts are read in slices), fed from a bounded queue; the
 * text it produces is handed to the event loop (event_active), where the
 * callbacks run.
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
    int active;                   /* being generated */
    int slots;
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

/* Render OpenAI chat messages (validated) as the model's prompt tokens:
 * Llama 2's [INST] format when the model has that template, else the plain
 * text of the messages one after the other. Heap array in *out (caller
 * frees); returns the count, or -1. */
int gw_local_render_chat(const gw_local *l, const void *messages_cjson, int **out);
/* `text` (with BOS) as tokens, tokenized once: heap array in *out, the
 * count, or -1 when out of memory. Any thread. */
int gw_local_tokenize(const gw_local *l, const char *text, int **out);

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
