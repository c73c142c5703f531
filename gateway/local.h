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

typedef struct {
    const char *finish_reason;    /* "stop", "length", or NULL on error */
    int prompt_tokens, completion_tokens;
    int cached_tokens;            /* prompt tokens reused from the cache, not recomputed */
    const char *error;            /* what went wrong, or NULL */
} gw_local_result;

typedef struct {
    void (*on_text)(void *arg, const char *text, size_t len);  /* loop thread */
    /* With logprobs asked for: one token's OpenAI logprobs entry as JSON
     * ({"token","logprob","bytes","top_logprobs"}), loop thread. */
    void (*on_logprob)(void *arg, const char *json, size_t len);
    void (*on_done)(void *arg, const gw_local_result *res);    /* loop thread, exactly once */
} gw_local_callbacks;

typedef struct {
    int max_tokens;               /* 0: until the context is full */
    int logprobs;                 /* -1: none; else report each token's logprob and this many alternatives */
    eng_sampling sampling;
    const char *stops[4];
    int n_stops;
} gw_local_request;

/* Queue a generation for the token ids `prompt` (copied). Returns NULL when
 * the queue is full (answer 429) or memory ran out. */
gw_local_job *gw_local_submit(gw_local *l, const int *prompt, int n_prompt, const gw_local_request *req,
                              const gw_local_callbacks *cb, void *arg);
/* The client went away: no further callbacks for this job. */
void gw_local_cancel(gw_local_job *job);

/* Render OpenAI chat messages (validated) as the model's prompt tokens:
 * Llama 2's [INST] format when the model has that template, else the plain
 * text of the messages one after the other. Heap array in *out (caller
 * frees); returns the count, or -1. */
int gw_local_render_chat(const gw_local *l, const void *messages_cjson, int **out);

#endif
