/* answer.c: an upstream's answer, whole and streamed, through a provider's
 * translator (see answer.h).
 *
 * What comes back from a remote API is untrusted: a proxy, a broken server
 * or an attacker on the path may send anything. The promises checked: a
 * whole answer is either refused (NULL) or becomes an OpenAI
 * chat.completion object with a choices array; every chunk a stream emits
 * is an OpenAI chat.completion.chunk object with a choices array (from
 * OpenAI-compatible upstreams, which pass through nearly verbatim, only
 * the shape is promised); a stream event that is refused
 * says why; token counts, whole or streamed, are never negative (they
 * become money). The bytes are also an error answer's body
 * (up_error_from_reply, for a 400, 401, 429 and 503): the error names the
 * upstream, has a type, gives the client the status its cause promises (a
 * refusal the upstream's own 4xx) and renders as {"error": {...}}.
 */
#include "answer.h"
#include "fuzz.h"
#include "provider.h"
#include "sse.h"

#include <cjson/cJSON.h>
#include <string.h>

#define MAX_LINE (1u << 20)

static void check_object(const char *json, const char *object, const char *what)
{
    cJSON *j = cJSON_Parse(json);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "object");
    if (!cJSON_IsObject(j) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "choices")) ||
        (object && !(cJSON_IsString(o) && !strcmp(o->valuestring, object))))
        fuzz_fail("%s is not an OpenAI %s: %.200s", what, object ? object : "answer", json);
    cJSON_Delete(j);
}

/* Token counts become money in the ledger: never negative, whatever the upstream says. */
static void check_usage(const up_usage *u, const char *what)
{
    if (u->prompt_tokens < 0 || u->completion_tokens < 0)
        fuzz_fail("%s reports usage of %ld prompt and %ld completion tokens", what, u->prompt_tokens,
                  u->completion_tokens);
}

/* arg: the provider; OpenAI's chunks pass through nearly verbatim, so only their shape is promised. */
static void on_chunk(void *arg, cJSON *chunk)
{
    const up_provider *provider = arg;
    char *s = up_print(chunk);
    if (!s) return; /* out of memory */
    check_object(s, *provider == UP_ANTHROPIC ? "chat.completion.chunk" : NULL, "a streamed chunk");
    cJSON_free(s);
}

typedef struct {
    up_provider provider;
    const up_provider_ops *ops;
    up_stream_state st;
} stream;

static int on_event(void *arg, const char *event, const char *data, size_t len)
{
    stream *s = arg;
    up_cause rc = s->ops->on_event(&s->st, event, data, len, on_chunk, &s->provider);
    if (rc != UP_OK && ((rc != UP_E_BAD_REPLY && rc != UP_E_UPSTREAM) || !s->st.error[0]))
        fuzz_fail("%s refused a stream event with cause %d and message '%s'", s->ops->name, (int)rc, s->st.error);
    return rc != UP_OK;
}

static void check_error_reply(const uint8_t *data, size_t size)
{
    static const struct { long status; int client; } cases[] = {{400, 400}, {401, 502}, {429, 429}, {503, 502}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        up_error e;
        up_error_from_reply(&e, "fuzzed", cases[i].status, (const char *)data, size);
        if (!strstr(e.message, "'fuzzed'") || !e.type[0])
            fuzz_fail("HTTP %ld: the error '%s' (type '%s') does not name the upstream or lacks a type", cases[i].status,
                      e.message, e.type);
        if (up_error_client_status(&e) != cases[i].client)
            fuzz_fail("HTTP %ld gives the client %d, not %d", cases[i].status, up_error_client_status(&e), cases[i].client);
        cJSON *j = up_error_json(&e);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
        if (!cJSON_IsString(m)) fuzz_fail("HTTP %ld: the error does not render as {\"error\": {\"message\"}}", cases[i].status);
        cJSON_Delete(j);
    }
}

void fuzz_answer(up_provider provider, const uint8_t *data, size_t size)
{
    check_error_reply(data, size);
    const up_provider_ops *ops = up_provider_for(provider);
    up_usage usage = {0};
    char finish[32] = "";
    char *whole = ops->translate((const char *)data, size, &usage, finish, sizeof(finish));
    if (whole) {
        check_object(whole, provider == UP_ANTHROPIC ? "chat.completion" : NULL, "a translated answer");
        check_usage(&usage, "a translated answer");
        cJSON_free(whole);
    }
    stream s = {.provider = provider, .ops = ops};
    sse_parser p;
    sse_init(&p, MAX_LINE, on_event, &s);
    sse_feed(&p, (const char *)data, size);
    sse_free(&p);
    check_usage(&s.st.usage, "a stream");
}
