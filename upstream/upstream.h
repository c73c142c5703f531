/* upstream.h: forwarding requests to remote model APIs, on the event loop.
 *
 * The one public header of the upstream module. An upstream is a remote
 * chat-completions endpoint (a frontier API, or a private server such as
 * vLLM or llama.cpp's) described in the configuration. up_client drives one
 * libcurl multi handle from the gateway's libevent loop: no thread per
 * request, no blocking call. Requests arrive in OpenAI's chat format and
 * answers leave in it, whatever the provider speaks.
 *
 * Ownership: up_client_new/up_client_free; a request handle from up_start is
 * owned by the client and ends with exactly one on_done callback, or with
 * up_cancel (after which no callback comes).
 */
#ifndef JUNCTION_UPSTREAM_H
#define JUNCTION_UPSTREAM_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* ---- definitions (configuration) ---- */

typedef enum { UP_OPENAI, UP_ANTHROPIC } up_provider;
typedef enum { UP_ZONE_PRIVATE, UP_ZONE_EXTERNAL } up_zone;

#define UP_MAX_HEADERS 8

typedef struct {
    char name[64];                /* what clients put in "model" to pick it */
    up_provider provider;
    char base_url[512];           /* e.g. https://api.openai.com/v1 */
    char model[128];              /* model name sent upstream ("" = the client's) */
    char api_key_env[128];        /* environment variable holding the key ("" = none) */
    char api_key_header[64];      /* header carrying the key raw ("" = the provider's usual) */
    struct { char name[64]; char value[256]; } headers[UP_MAX_HEADERS];
    int n_headers;
    double connect_timeout_s, first_byte_timeout_s, idle_timeout_s, total_timeout_s;
    int max_in_flight;
    int max_retries;              /* extra attempts before any byte reached the client */
    int breaker_failures;         /* consecutive failures that open the circuit */
    double breaker_cooldown_s;    /* open time before a half-open probe */
    up_zone zone;
    double price_input_per_mtok, price_output_per_mtok;  /* USD per million tokens */
} up_def;

void up_def_defaults(up_def *d);

/* Fill `d` from one JSON object of the "upstreams" array. On error, `err`
 * names the offending key, and *bad_key points at that member (or NULL) so
 * the caller can say where it stands in the file. */
int up_def_from_json(up_def *d, const cJSON *obj, const cJSON **bad_key, char *err, size_t errlen);

/* ---- the client ---- */

typedef struct up_client up_client;

/* `defs` are copied. API keys are read from the environment here, once. */
int up_client_new(up_client **out, struct event_base *base, const up_def *defs, int n_defs,
                  char *err, size_t errlen);
void up_client_free(up_client *c);

/* The definition named `name`, or NULL. */
const up_def *up_client_find(const up_client *c, const char *name);
int up_client_count(const up_client *c);
const up_def *up_client_def(const up_client *c, int i);

typedef struct {
    long prompt_tokens, completion_tokens;
    bool estimated;               /* counted from the text: the upstream gave none */
} up_usage;

typedef struct {
    int status;                   /* HTTP status for the client (200 on success) */
    const char *body;             /* non-streaming: the OpenAI-format JSON answer;
                                     on error: an OpenAI-style error body */
    size_t body_len;
    up_usage usage;
    const char *finish_reason;    /* "stop", "length", ... or NULL */
    int attempts;                 /* tries made, retries included */
    bool stream_broken;           /* a stream ended early, after bytes went to the client */
} up_result;

typedef struct {
    /* Streaming only: one OpenAI chat.completion.chunk as JSON (no "data: ").
     * The first call means bytes are on their way to the client: no retry
     * happens after it. */
    void (*on_chunk)(void *arg, const char *json, size_t len);
    /* Always last, exactly once (unless cancelled). The result and the
     * strings in it live until the callback returns. */
    void (*on_done)(void *arg, const up_result *res);
} up_callbacks;

typedef struct up_request up_request;

/* Forward an OpenAI chat request (already validated) to upstream `def_name`.
 * `request` is read during the call only. Every outcome, failures decided at
 * once included (unknown name, circuit open, too many in flight), arrives
 * through on_done from the event loop, never from inside up_start. Returns
 * NULL only when out of memory (then nothing is called). */
up_request *up_start(up_client *c, const char *def_name, const cJSON *request,
                     const up_callbacks *cb, void *arg);

/* Abandon a request (the client went away): its transfer is stopped and no
 * callback follows. */
void up_cancel(up_request *r);

#endif
