/* provider.h: the wire formats upstreams speak. Internal to upstream.
 *
 * One table row per provider: where requests go, which headers carry the
 * key, how an OpenAI-style request becomes the provider's body, and how the
 * provider's answer (whole, or one stream event at a time) becomes OpenAI's.
 */
#ifndef JUNCTION_PROVIDER_H
#define JUNCTION_PROVIDER_H

#include "upstream.h"

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
    char error[256];          /* an error event's message */
} up_stream_state;

/* Emit one OpenAI chunk (the callee takes ownership of `chunk`). */
typedef void (*up_emit_fn)(void *arg, cJSON *chunk);

typedef struct {
    const char *name;
    const char *path;         /* appended to base_url */
    /* The provider's usual key header, e.g. "Authorization: Bearer %s". */
    const char *key_header;
    struct curl_slist *(*add_headers)(struct curl_slist *h);
    /* The provider's request body (heap string), or NULL when out of memory. */
    char *(*build_body)(const cJSON *request, const up_def *def, bool stream);
    /* A whole answer as an OpenAI chat.completion (heap string); NULL when
     * the answer is not what the provider promises (malformed). */
    char *(*translate)(const char *body, size_t len, up_usage *usage, char *finish, size_t finish_len);
    /* One stream event: 0 when fine, -1 when malformed or an error event. */
    int (*on_event)(up_stream_state *st, const char *event, const char *data, size_t len,
                    up_emit_fn emit, void *arg);
} up_provider_ops;

const up_provider_ops *up_provider_for(up_provider p);

/* Shared helpers (openai.c). */
char *up_print(cJSON *json);                 /* prints and deletes; NULL on OOM */
size_t up_prompt_chars(const cJSON *request); /* for usage estimates */
void up_copy_str(char *dst, size_t len, const cJSON *s);

#endif
