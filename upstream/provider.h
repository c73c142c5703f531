/* provider.h: the wire formats upstreams speak. Internal to upstream.
 *
 * One table row per provider: where requests go, which headers carry the
 * key, how an OpenAI-style request becomes the provider's body, and how the
 * provider's answer (whole, or one stream event at a time) becomes OpenAI's.
 * Also the module's shared helpers: the cause table (errors.c), a growing
 * text buffer (openai.c).
 */
#ifndef JUNCTION_PROVIDER_H
#define JUNCTION_PROVIDER_H

#include "upstream.h"

#include <cjson/cJSON.h>

#include <curl/curl.h>

/* What a stream has told us so far. */
typedef struct {
    char id[128], model[128];
    long created;
    bool role_sent;           /* the first chunk carried role: assistant */
    up_usage usage;
    bool have_usage;
    char finish_reason[32];
    bool done;                /* [DONE] or message_stop seen */
    size_t text_bytes;        /* completion text, for estimated usage */
    bool in_tool;             /* Anthropic: a tool_use content block is open ... */
    int tool_block;           /* ... and this is its index */
    int n_tools;              /* tool calls begun: the OpenAI index of the next one */
    char error[256];          /* why on_event failed */
} up_stream_state;

/* Emit one OpenAI chunk (the callee takes ownership of `chunk`). */
typedef void (*up_emit_fn)(void *arg, cJSON *chunk);

typedef struct {
    const char *name;
    const char *path;         /* appended to base_url */
    /* The provider's usual key header, e.g. "Authorization: Bearer %s". */
    const char *key_header;
    struct curl_slist *(*add_headers)(struct curl_slist *h);
    /* The provider's request body (heap string, free with cJSON_free), or
     * NULL with `err` filled: UP_E_UNTRANSLATABLE naming the field, or
     * UP_E_NOMEM. */
    char *(*build_body)(const cJSON *request, const up_def *def, bool stream, up_error *err);
    /* A whole answer as an OpenAI chat.completion (heap string); NULL when
     * the answer is not what the provider promises (malformed). */
    char *(*translate)(const char *body, size_t len, up_usage *usage, char *finish, size_t finish_len);
    /* One stream event: UP_OK when fine; UP_E_BAD_REPLY when malformed or
     * UP_E_UPSTREAM when the upstream reports an error, with st->error saying it. */
    up_cause (*on_event)(up_stream_state *st, const char *event, const char *data, size_t len,
                         up_emit_fn emit, void *arg);
} up_provider_ops;

const up_provider_ops *up_provider_for(up_provider p);

/* anthropic_request.c: an OpenAI request as a Messages API body (the
 * Anthropic row's build_body). */
char *up_anthropic_body(const cJSON *request, const up_def *def, bool stream, up_error *err);

/* errors.c: the cause table. up_error_set fills type and code from the
 * cause's row, param ("" or NULL for none) and the message. */
int up_cause_status(up_cause c);
bool up_cause_retryable(up_cause c);
int up_cause_health(up_cause c);  /* +1 healthy, -1 a failure, 0 neither (for the breaker) */
void up_error_set(up_error *e, up_cause cause, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The error an upstream's HTTP answer `status` (not 200) and its body
 * (`len` bytes, NULL for none) describe, naming `upstream`: the cause by
 * status (429, 401/403, another 4xx, anything else), the upstream's message,
 * and for a refused request (4xx) its own type, code and param. */
void up_error_from_reply(up_error *e, const char *upstream, long status, const char *body, size_t len);
/* The HTTP status a failed request gives the client: a refusal keeps the
 * upstream's own 4xx, every other cause its row's status. */
int up_error_client_status(const up_error *e);

/* Shared helpers (openai.c). */
char *up_print(cJSON *json);                 /* prints and deletes; NULL on OOM */
size_t up_prompt_chars(const cJSON *request); /* for usage estimates */
void up_copy_str(char *dst, size_t len, const cJSON *s);

/* A growing NUL-terminated text: appends are amortised O(1), so assembling
 * a message from many parts stays linear. `failed` sticks after OOM. */
typedef struct {
    char *s;
    size_t len, cap;
    bool failed;
} up_text;
void up_text_add(up_text *t, const char *s, size_t n);
void up_text_free(up_text *t);

/* A count from an upstream's JSON (tokens, timestamps): stored in *out
 * only when it is a number from 0 to `max`; a negative, huge or fractional
 * junk value must not reach the usage and the cost (openai.c). */
bool up_json_count(const cJSON *v, double max, long *out);
#define UP_MAX_TOKENS 1e12

#endif
