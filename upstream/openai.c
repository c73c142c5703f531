/* openai.c: OpenAI's chat-completions wire format (and every server that
 * copies it: Azure-style, Together, Groq, vLLM, llama.cpp's server).
 *
 * The request goes out as the client sent it, every field included, even
 * ones junction does not know (tools, response_format, metadata, ...): the
 * upstream is the authority on its own API. Only two things change: the
 * upstream's model name replaces the client's, and a stream asks for
 * stream_options.include_usage so the last chunk carries real token counts
 * (junction needs them for accounting; the client gets the usage chunk only
 * if it asked). Answers come back nearly verbatim; we read usage and finish
 * reasons on the way and check that each piece is JSON.
 */
#include "provider.h"

#include <stdlib.h>
#include <string.h>

char *up_print(cJSON *json)
{
    char *s = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    return s;
}

void up_copy_str(char *dst, size_t len, const cJSON *s)
{
    if (cJSON_IsString(s)) snprintf(dst, len, "%s", s->valuestring);
}

size_t up_prompt_chars(const cJSON *request)
{
    size_t n = 0;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(request, "messages");
    for (const cJSON *m = msgs ? msgs->child : NULL; m; m = m->next) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsString(c)) n += strlen(c->valuestring);
        for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (cJSON_IsString(t)) n += strlen(t->valuestring);
        }
    }
    return n;
}

void up_text_add(up_text *t, const char *s, size_t n)
{
    if (t->failed) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->len + n + 1) cap *= 2;
        char *p = realloc(t->s, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void up_text_free(up_text *t)
{
    free(t->s);
    memset(t, 0, sizeof(*t));
}

bool up_json_count(const cJSON *v, double max, long *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= max)) return false;
    *out = (long)v->valuedouble;
    return true;
}

static struct curl_slist *openai_headers(struct curl_slist *h) { return h; }

/* Set `key` of `obj` to `value`, in place when present (the body keeps the
 * client's field order), appended otherwise. */
static bool set_item(cJSON *obj, const char *key, cJSON *value)
{
    if (!value) return false;
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value);
    return cJSON_AddItemToObject(obj, key, value);
}

static char *openai_body(const cJSON *request, const up_def *def, bool stream, up_error *err)
{
    cJSON *body = cJSON_Duplicate(request, 1);
    bool ok = body != NULL;
    if (ok && def->model[0]) ok = set_item(body, "model", cJSON_CreateString(def->model));
    if (ok && stream) {
        cJSON *opts = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
        if (!cJSON_IsObject(opts)) ok = set_item(body, "stream_options", opts = cJSON_CreateObject());
        ok = ok && set_item(opts, "include_usage", cJSON_CreateTrue());
    }
    if (!ok) {
        cJSON_Delete(body);
        body = NULL;
    }
    char *s = body ? up_print(body) : NULL;
    if (!s) up_error_set(err, UP_E_NOMEM, NULL, "junction ran out of memory building the request for upstream '%s'", def->name);
    return s;
}

static void read_usage(const cJSON *u, up_usage *usage)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    up_json_count(p, UP_MAX_TOKENS, &usage->prompt_tokens);
    up_json_count(c, UP_MAX_TOKENS, &usage->completion_tokens);
}

static char *openai_translate(const char *body, size_t len, up_usage *usage, char *finish, size_t finish_len)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    if (!cJSON_IsObject(j) || !cJSON_IsArray(choices)) {
        cJSON_Delete(j);
        return NULL;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) read_usage(u, usage);
    else usage->estimated = true;
    up_copy_str(finish, finish_len, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "finish_reason"));
    return up_print(j);
}

static up_cause openai_event(up_stream_state *st, const char *event, const char *data, size_t len,
                             up_emit_fn emit, void *arg)
{
    (void)event;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        st->done = true;
        return UP_OK;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(st->error, sizeof(st->error), "a stream event is not JSON");
        return UP_E_BAD_REPLY;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err) {
        up_copy_str(st->error, sizeof(st->error), cJSON_GetObjectItemCaseSensitive(err, "message"));
        if (!st->error[0]) snprintf(st->error, sizeof(st->error), "the stream carried an error");
        cJSON_Delete(j);
        return UP_E_UPSTREAM;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) {
        read_usage(u, &st->usage);
        st->have_usage = true;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    if (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) == 0) {
        cJSON_Delete(j); /* the usage-only chunk: the client gets ours, if it asked */
        return UP_OK;
    }
    up_copy_str(st->id, sizeof(st->id), cJSON_GetObjectItemCaseSensitive(j, "id"));
    up_copy_str(st->model, sizeof(st->model), cJSON_GetObjectItemCaseSensitive(j, "model"));
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(j, "created");
    up_json_count(created, 1e11, &st->created);
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    up_copy_str(st->finish_reason, sizeof(st->finish_reason), cJSON_GetObjectItemCaseSensitive(c0, "finish_reason"));
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c0, "delta"), "content");
    if (cJSON_IsString(text)) st->text_bytes += strlen(text->valuestring);
    if (cJSON_IsObject(u)) cJSON_DeleteItemFromObjectCaseSensitive(j, "usage");
    st->role_sent = true;
    emit(arg, j);
    return UP_OK;
}

const up_provider_ops up_openai_ops = {
    "openai", "/chat/completions", "Authorization: Bearer %s", openai_headers, openai_body, openai_translate, openai_event,
};
