/* openai.c: OpenAI's chat-completions wire format (and every server that
 * copies it: Azure-style, Together, Groq, vLLM, llama.cpp's server).
 *
 * The request goes out as the client sent it, with the upstream's model
 * name and, when streaming, stream_options.include_usage so the last chunk
 * carries real token counts. Answers come back nearly verbatim; we read
 * usage and finish reasons on the way and check that each piece is JSON.
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

static struct curl_slist *openai_headers(struct curl_slist *h) { return h; }

static char *openai_body(const cJSON *request, const up_def *def, bool stream)
{
    cJSON *body = cJSON_Duplicate(request, 1);
    if (!body) return NULL;
    if (def->model[0]) {
        cJSON_DeleteItemFromObjectCaseSensitive(body, "model");
        cJSON_AddStringToObject(body, "model", def->model);
    }
    if (stream) {
        cJSON_DeleteItemFromObjectCaseSensitive(body, "stream_options");
        cJSON *opts = cJSON_AddObjectToObject(body, "stream_options");
        cJSON_AddBoolToObject(opts, "include_usage", 1);
    }
    return up_print(body);
}

static void read_usage(const cJSON *u, up_usage *usage)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(p)) usage->prompt_tokens = (long)p->valuedouble;
    if (cJSON_IsNumber(c)) usage->completion_tokens = (long)c->valuedouble;
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

static int openai_event(up_stream_state *st, const char *event, const char *data, size_t len,
                        up_emit_fn emit, void *arg)
{
    (void)event;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        st->done = true;
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(st->error, sizeof(st->error), "a stream event is not JSON");
        return -1;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err) {
        up_copy_str(st->error, sizeof(st->error), cJSON_GetObjectItemCaseSensitive(err, "message"));
        if (!st->error[0]) snprintf(st->error, sizeof(st->error), "the stream carried an error");
        cJSON_Delete(j);
        return -1;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) {
        read_usage(u, &st->usage);
        st->have_usage = true;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    if (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) == 0) {
        cJSON_Delete(j); /* the usage-only chunk: the client gets ours, if it asked */
        return 0;
    }
    up_copy_str(st->id, sizeof(st->id), cJSON_GetObjectItemCaseSensitive(j, "id"));
    up_copy_str(st->model, sizeof(st->model), cJSON_GetObjectItemCaseSensitive(j, "model"));
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(j, "created");
    if (cJSON_IsNumber(created)) st->created = (long)created->valuedouble;
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    up_copy_str(st->finish_reason, sizeof(st->finish_reason), cJSON_GetObjectItemCaseSensitive(c0, "finish_reason"));
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c0, "delta"), "content");
    if (cJSON_IsString(text)) st->text_bytes += strlen(text->valuestring);
    if (cJSON_IsObject(u)) cJSON_DeleteItemFromObjectCaseSensitive(j, "usage");
    st->role_sent = true;
    emit(arg, j);
    return 0;
}

const up_provider_ops up_openai_ops = {
    "openai", "/chat/completions", "Authorization: Bearer %s", openai_headers, openai_body, openai_translate, openai_event,
};
