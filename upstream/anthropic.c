/* anthropic.c: Anthropic's Messages API, translated to and from OpenAI's
 * chat format.
 *
 * Out: system and developer messages become the top-level "system" text,
 * the other turns keep their order as user/assistant messages with text
 * content, max_tokens (required there) defaults to 4096, stop becomes
 * stop_sequences. Back: the message's text blocks become the choice's
 * content, stop_reason maps to finish_reason, input/output tokens to usage;
 * stream events (message_start, content_block_delta, message_delta,
 * message_stop) become chat.completion.chunk objects.
 */
#include "provider.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct curl_slist *anthropic_headers(struct curl_slist *h)
{
    return curl_slist_append(h, "anthropic-version: 2023-06-01");
}

/* The text of an OpenAI content value (string or array of text parts). */
static char *content_text(const cJSON *c)
{
    if (cJSON_IsString(c)) return strdup(c->valuestring);
    size_t n = 1;
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (cJSON_IsString(t)) n += strlen(t->valuestring);
    }
    char *s = calloc(1, n);
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; s && p; p = p->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (cJSON_IsString(t)) strcat(s, t->valuestring);
    }
    return s;
}

static void copy_number(cJSON *to, const char *to_key, const cJSON *from, const char *from_key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, from_key);
    if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(to, to_key, v->valuedouble);
}

static char *anthropic_body(const cJSON *request, const up_def *def, bool stream)
{
    cJSON *body = cJSON_CreateObject();
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(request, "model");
    cJSON_AddStringToObject(body, "model", def->model[0] ? def->model : cJSON_IsString(model) ? model->valuestring : "");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(request, "max_tokens");
    if (!cJSON_IsNumber(max)) max = cJSON_GetObjectItemCaseSensitive(request, "max_completion_tokens");
    cJSON_AddNumberToObject(body, "max_tokens", cJSON_IsNumber(max) ? max->valuedouble : 4096);
    size_t sys_len = 0;
    char *system = NULL;
    cJSON *messages = cJSON_AddArrayToObject(body, "messages");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(request, "messages");
    for (const cJSON *m = in ? in->child : NULL; m; m = m->next) {
        const char *role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
        char *text = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"));
        if (!text) text = strdup("");
        if (!text) continue;
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            size_t tl = strlen(text);
            char *grown = realloc(system, sys_len + tl + 3);
            if (grown) {
                system = grown;
                if (sys_len) { memcpy(system + sys_len, "\n\n", 2); sys_len += 2; }
                memcpy(system + sys_len, text, tl + 1);
                sys_len += tl;
            }
        } else {
            cJSON *msg = cJSON_CreateObject();
            cJSON_AddStringToObject(msg, "role", !strcmp(role, "assistant") ? "assistant" : "user");
            cJSON_AddStringToObject(msg, "content", text);
            cJSON_AddItemToArray(messages, msg);
        }
        free(text);
    }
    if (system) cJSON_AddStringToObject(body, "system", system);
    free(system);
    copy_number(body, "temperature", request, "temperature");
    copy_number(body, "top_p", request, "top_p");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(request, "stop");
    if (cJSON_IsString(stop)) {
        cJSON *seqs = cJSON_AddArrayToObject(body, "stop_sequences");
        cJSON_AddItemToArray(seqs, cJSON_CreateString(stop->valuestring));
    } else if (cJSON_IsArray(stop)) {
        cJSON_AddItemToObject(body, "stop_sequences", cJSON_Duplicate(stop, 1));
    }
    if (stream) cJSON_AddBoolToObject(body, "stream", 1);
    return up_print(body);
}

static const char *finish_from_stop(const char *stop_reason)
{
    static const struct { const char *anthropic, *openai; } map[] = {
        {"end_turn", "stop"}, {"stop_sequence", "stop"}, {"max_tokens", "length"}, {"tool_use", "tool_calls"},
        {"refusal", "content_filter"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (stop_reason && !strcmp(stop_reason, map[i].anthropic)) return map[i].openai;
    return "stop";
}

static void read_usage(const cJSON *u, up_usage *usage)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(u, "input_tokens");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(u, "output_tokens");
    if (cJSON_IsNumber(in)) usage->prompt_tokens = (long)in->valuedouble;
    if (cJSON_IsNumber(out)) usage->completion_tokens = (long)out->valuedouble;
}

static cJSON *usage_json(const up_usage *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)u->prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens", (double)u->completion_tokens);
    cJSON_AddNumberToObject(o, "total_tokens", (double)(u->prompt_tokens + u->completion_tokens));
    return o;
}

static char *anthropic_translate(const char *body, size_t len, up_usage *usage, char *finish, size_t finish_len)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(j, "content");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsObject(j) || !cJSON_IsArray(content) || !cJSON_IsString(type) || strcmp(type->valuestring, "message")) {
        cJSON_Delete(j);
        return NULL;
    }
    size_t n = 1;
    for (const cJSON *b = content->child; b; b = b->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
        if (cJSON_IsString(t)) n += strlen(t->valuestring);
    }
    char *text = calloc(1, n);
    for (const cJSON *b = content->child; text && b; b = b->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
        if (cJSON_IsString(t)) strcat(text, t->valuestring);
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) read_usage(u, usage);
    else usage->estimated = true;
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(j, "stop_reason");
    snprintf(finish, finish_len, "%s", finish_from_stop(cJSON_IsString(stop) ? stop->valuestring : NULL));

    char id[160];
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(j, "id");
    snprintf(id, sizeof(id), "chatcmpl-%s", cJSON_IsString(mid) ? mid->valuestring : "anthropic");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "id", id);
    cJSON_AddStringToObject(out, "object", "chat.completion");
    cJSON_AddNumberToObject(out, "created", (double)time(NULL));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON_AddStringToObject(out, "model", cJSON_IsString(model) ? model->valuestring : "");
    cJSON *choices = cJSON_AddArrayToObject(out, "choices");
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", text ? text : "");
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", finish);
    cJSON_AddItemToArray(choices, choice);
    cJSON_AddItemToObject(out, "usage", usage_json(usage));
    free(text);
    cJSON_Delete(j);
    return up_print(out);
}

/* A chat.completion.chunk with one choice whose delta is `delta`. */
static cJSON *chunk(const up_stream_state *st, cJSON *delta, const char *finish)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", st->id);
    cJSON_AddStringToObject(c, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(c, "created", (double)st->created);
    cJSON_AddStringToObject(c, "model", st->model);
    cJSON *choices = cJSON_AddArrayToObject(c, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON_AddItemToObject(ch, "delta", delta);
    cJSON_AddNullToObject(ch, "logprobs");
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(choices, ch);
    return c;
}

static int anthropic_event(up_stream_state *st, const char *event, const char *data, size_t len,
                           up_emit_fn emit, void *arg)
{
    cJSON *j = cJSON_ParseWithLength(data, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        cJSON_Delete(j);
        snprintf(st->error, sizeof(st->error), "a stream event ('%.40s') is not a JSON object with a type", event);
        return -1;
    }
    const char *t = type->valuestring;
    int rc = 0;
    if (!strcmp(t, "message_start")) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        snprintf(st->id, sizeof(st->id), "chatcmpl-%.100s", cJSON_IsString(id) ? id->valuestring : "anthropic");
        up_copy_str(st->model, sizeof(st->model), cJSON_GetObjectItemCaseSensitive(m, "model"));
        st->created = (long)time(NULL);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(m, "usage");
        if (cJSON_IsObject(u)) {
            read_usage(u, &st->usage);
            st->have_usage = true;
        }
        cJSON *delta = cJSON_CreateObject();
        cJSON_AddStringToObject(delta, "role", "assistant");
        cJSON_AddStringToObject(delta, "content", "");
        st->role_sent = true;
        emit(arg, chunk(st, delta, NULL));
    } else if (!strcmp(t, "content_block_delta")) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "delta"), "text");
        if (cJSON_IsString(text)) {
            st->text_bytes += strlen(text->valuestring);
            cJSON *delta = cJSON_CreateObject();
            cJSON_AddStringToObject(delta, "content", text->valuestring);
            emit(arg, chunk(st, delta, NULL));
        }
    } else if (!strcmp(t, "message_delta")) {
        const cJSON *stop = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "delta"), "stop_reason");
        snprintf(st->finish_reason, sizeof(st->finish_reason), "%s",
                 finish_from_stop(cJSON_IsString(stop) ? stop->valuestring : NULL));
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "usage"), "output_tokens");
        if (cJSON_IsNumber(out)) {
            st->usage.completion_tokens = (long)out->valuedouble;
            st->have_usage = true;
        }
        emit(arg, chunk(st, cJSON_CreateObject(), st->finish_reason));
    } else if (!strcmp(t, "message_stop")) {
        st->done = true;
    } else if (!strcmp(t, "error")) {
        up_copy_str(st->error, sizeof(st->error), cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message"));
        if (!st->error[0]) snprintf(st->error, sizeof(st->error), "the stream carried an error event");
        rc = -1;
    } /* ping, content_block_start, content_block_stop: nothing to say */
    cJSON_Delete(j);
    return rc;
}

const up_provider_ops up_anthropic_ops = {
    "anthropic", "/messages", "x-api-key: %s", anthropic_headers, anthropic_body, anthropic_translate, anthropic_event,
};
