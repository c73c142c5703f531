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

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct cJSON; /* cjson/cJSON.h: only callers that build requests need it */

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
 * the caller can say where it stands in the file. A missing base_url is
 * "base_url is required"; a present one must start with http:// or https://. */
int up_def_from_json(up_def *d, const struct cJSON *obj, const struct cJSON **bad_key, char *err, size_t errlen);

/* A valid definition that is probably not what the operator meant: true,
 * with the sentence in `msg`, for the caller to log as a warning at startup.
 * Today: an empty "model", so requests go out with the client's "model",
 * which is this upstream's junction name, rarely a model the upstream serves. */
bool up_def_warning(const up_def *d, char *msg, size_t len);

/* ---- outcomes ---- */

/* Why a request ended, for callers that decide on causes (the policy's
 * fallbacks) rather than on text. The HTTP status each gives the client is
 * in brackets. */
typedef enum {
    UP_OK = 0,
    UP_E_NO_SUCH_UPSTREAM, /* no upstream has that name [404] */
    UP_E_CONNECT,          /* no connection, or it failed before an answer [502] */
    UP_E_TIMEOUT,          /* connect, first-byte, idle or total time ran out [504] */
    UP_E_RATE_LIMITED,     /* 429, still after the retries [429] */
    UP_E_AUTH,             /* 401/403: the upstream refused junction's key [502] */
    UP_E_REJECTED,         /* another 4xx: the upstream refused the request; its
                              status, type, code and param reach the client [4xx] */
    UP_E_UPSTREAM,         /* 5xx, or an error event inside a stream [502] */
    UP_E_BAD_REPLY,        /* an answer that is not the provider's format, or too large [502] */
    UP_E_STREAM_BROKEN,    /* the stream ended before its end [502] */
    UP_E_CIRCUIT_OPEN,     /* the breaker is open: nothing was sent [503] */
    UP_E_BUSY,             /* max_in_flight requests already: nothing was sent [503] */
    UP_E_UNTRANSLATABLE,   /* the provider cannot express the request; param names
                              the field [400] */
    UP_E_TOO_SLOW,         /* the stream stayed paused (up_pause) past its limit:
                              the client reads too slowly [503] */
    UP_E_NOMEM,            /* out of memory [500] */
} up_cause;

/* A short stable name ("timeout", "rate_limited", ...) for logs and the ledger. */
const char *up_cause_name(up_cause c);

/* An error in OpenAI's terms, never carrying a key. */
typedef struct {
    up_cause cause;
    int upstream_status;          /* the upstream's HTTP status (0: none came) */
    char type[64];                /* e.g. "invalid_request_error" */
    char code[64];                /* "" for JSON null */
    char param[128];              /* "" for JSON null */
    char message[512];            /* says what happened and names the upstream */
} up_error;

/* {"error":{"message","type","param","code"}} for `e`: a new object the
 * caller owns (cJSON_Delete), or NULL when out of memory. */
struct cJSON *up_error_json(const up_error *e);

/* ---- the client ---- */

typedef struct up_client up_client;

/* `defs` are copied. API keys are read from the environment here, once. */
int up_client_new(up_client **out, struct event_base *base, const up_def *defs, int n_defs,
                  char *err, size_t errlen);
void up_client_free(up_client *c);

/* Where the client's warnings go: retries (attempt n of m, cause, delay) and
 * circuit-breaker transitions (closed -> open -> half-open -> closed). `msg`
 * is one line without its end, naming the upstream, never a key or a body;
 * it lives during the call. Without a logger nothing is logged. */
typedef enum { UP_LOG_WARN } up_log_level;
typedef void (*up_log_fn)(void *arg, up_log_level level, const char *msg);
void up_client_set_logger(up_client *c, up_log_fn fn, void *arg);

/* An upstream's health now, for /metrics, /readyz and the policy. */
typedef struct {
    const char *breaker;          /* "closed", "open" or "half-open" (static) */
    int in_flight;
    int failures;                 /* consecutive failures */
    unsigned long long errors;    /* attempts that failed for the upstream's health, since start */
} up_health;
void up_client_health(const up_client *c, int i, up_health *out);

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
    up_error error;               /* error.cause is UP_OK on success */
    const char *body;             /* non-streaming success: the OpenAI-format JSON
                                     answer; on error: `error` rendered by
                                     up_error_json, for callers that relay it as is */
    size_t body_len;
    up_usage usage;
    const char *finish_reason;    /* "stop", "length", "tool_calls", ... or NULL */
    int attempts;                 /* tries made, retries included */
    bool stream_broken;           /* the request failed after bytes went to the client */
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
 * `request` is read during the call only. For an OpenAI upstream every
 * field goes out as the client sent it, except "model" (the upstream's, when
 * its definition names one) and, when streaming,
 * stream_options.include_usage (set: junction needs the counts). An
 * Anthropic upstream gets the request translated, tools included; what has
 * no translation ends with UP_E_UNTRANSLATABLE naming the field. Every
 * outcome, failures decided at once included (unknown name, circuit open,
 * too many in flight, untranslatable), arrives through on_done from the
 * event loop, never from inside up_start. Returns NULL only when out of
 * memory (then nothing is called). */
up_request *up_start(up_client *c, const char *def_name, const struct cJSON *request,
                     const up_callbacks *cb, void *arg);

/* What the request has delivered so far (for a client that leaves mid-
 * stream): the upstream's counts, or counted from the text, estimated. */
void up_usage_so_far(const up_request *r, up_usage *out);

/* Abandon a request (the client went away): its transfer is stopped and no
 * callback follows. */
void up_cancel(up_request *r);

/* Backpressure for streams: call up_pause when the client's connection has
 * too much unsent output, up_resume when it drained. After up_pause no
 * on_chunk comes (called from inside on_chunk, it takes effect after that
 * chunk) until up_resume; junction stops reading the upstream: its data
 * waits in the kernel and in libcurl, and this module keeps at most the
 * unparsed rest of one read (16 KiB) per request. Both are safe from any
 * callback (on_chunk included) and from the loop; the transfer restarts
 * from the loop, never inside a libcurl callback.
 * A stream paused longer than the upstream's idle_timeout_s ends with
 * UP_E_TOO_SLOW. Pausing a request that is not streaming, or pausing twice,
 * changes nothing. */
void up_pause(up_request *r);
void up_resume(up_request *r);

#endif
