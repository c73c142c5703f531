/* anthropic.c: Anthropic's Messages API answers, translated to OpenAI's chat
 * format (the request side is anthropic_request.c).
 *
 * A whole message: text blocks become the choice's content, tool_use blocks
 * its tool_calls (the input object printed as the arguments string),
 * stop_reason maps to finish_reason, input/output tokens to usage. A
 * stream: message_start opens with the assistant role; text deltas become
 * content deltas; a tool_use block's start becomes a tool_calls delta with
 * its id and name, and its input_json_delta pieces argument deltas under
 * the same OpenAI index; message_delta carries the finish reason and
 * message_stop ends it. Thinking blocks have no OpenAI form and are skipped.
 */
#include "provider.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct curl_slist *anthropic_headers(struct curl_slist *h)
{
    return curl_slist_append(h, "anthropic-version: 2023-06-01");
}

static const char *finish_from_stop(const char *stop_reason)
{
    static const struct { const char *anthropic, *openai; } map[] = {
        {"end_turn", "stop"}, {"stop_sequence", "stop"}, {"max_tokens", "length"}, {"tool_use", "tool_calls"},
        {"refusal", "content_filter"}, {"pause_turn", "stop"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (stop_reason && !strcmp(stop_reason, map[i].anthropic)) return map[i].openai;
    return "stop";
}

static void read_usage(const cJSON *u, up_usage *usage)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(u, "input_tokens");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(u, "output_tokens");
    up_json_count(in, UP_MAX_TOKENS, &usage->prompt_tokens);
    up_json_count(out, UP_MAX_TOKENS, &usage->completion_tokens);
}

static cJSON *usage_json(const up_usage *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)u->prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens", (double)u->completion_tokens);
    cJSON_AddNumberToObject(o, "total_tokens", (double)(u->prompt_tokens + u->completion_tokens));
    return o;
}

static const char *type_of(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

/* One OpenAI tool call: {"id", "type": "function", "function": {"name", "arguments"}}
 * (in a stream, "index" first, and id/type/name only when it begins). */
static cJSON *tool_call(int index, const char *id, const char *name, const char *arguments)
{
    cJSON *c = cJSON_CreateObject();
    if (index >= 0) cJSON_AddNumberToObject(c, "index", index);
    if (id) cJSON_AddStringToObject(c, "id", id);
    if (id) cJSON_AddStringToObject(c, "type", "function");
    cJSON *fn = cJSON_AddObjectToObject(c, "function");
    if (name) cJSON_AddStringToObject(fn, "name", name);
    cJSON_AddStringToObject(fn, "arguments", arguments);
    return c;
}

/* The content blocks of a whole message into `msg` (content, tool_calls);
 * false when a tool_use block is malformed. */
static bool message_content(const cJSON *content, cJSON *msg)
{
    up_text text = {0};
    cJSON *calls = NULL;
    bool ok = true;
    for (const cJSON *b = content->child; b && ok; b = b->next) {
        const char *type = type_of(b);
        if (!strcmp(type, "text")) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
            if (cJSON_IsString(t)) up_text_add(&text, t->valuestring, strlen(t->valuestring));
        } else if (!strcmp(type, "tool_use")) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "id");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
            const cJSON *input = cJSON_GetObjectItemCaseSensitive(b, "input");
            char *args = cJSON_IsObject(input) ? cJSON_PrintUnformatted(input) : NULL;
            ok = cJSON_IsString(id) && cJSON_IsString(name) && args;
            if (ok) {
                if (!calls) calls = cJSON_CreateArray();
                cJSON_AddItemToArray(calls, tool_call(-1, id->valuestring, name->valuestring, args));
            }
            cJSON_free(args);
        } /* thinking, redacted_thinking, server tool blocks: no OpenAI form */
    }
    ok = ok && !text.failed;
    if (ok && text.len == 0 && calls) cJSON_AddNullToObject(msg, "content"); /* as OpenAI says "only tool calls" */
    else if (ok) cJSON_AddStringToObject(msg, "content", text.s ? text.s : "");
    if (ok && calls) cJSON_AddItemToObject(msg, "tool_calls", calls);
    else cJSON_Delete(calls);
    up_text_free(&text);
    return ok;
}

static char *anthropic_translate(const char *body, size_t len, up_usage *usage, char *finish, size_t finish_len)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(j, "content");
    if (!cJSON_IsObject(j) || !cJSON_IsArray(content) || strcmp(type_of(j), "message")) {
        cJSON_Delete(j);
        return NULL;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) read_usage(u, usage);
    else usage->estimated = true;
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(j, "stop_reason");
    snprintf(finish, finish_len, "%s", finish_from_stop(cJSON_IsString(stop) ? stop->valuestring : NULL));

    char id[160];
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(j, "id");
    snprintf(id, sizeof(id), "chatcmpl-%.140s", cJSON_IsString(mid) ? mid->valuestring : "anthropic");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "id", id);
    cJSON_AddStringToObject(out, "object", "chat.completion");
    cJSON_AddNumberToObject(out, "created", (double)time(NULL));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON_AddStringToObject(out, "model", cJSON_IsString(model) ? model->valuestring : "");
    cJSON *choices = cJSON_AddArrayToObject(out, "choices");
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, choice);
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    bool ok = message_content(content, msg);
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", finish);
    cJSON_AddItemToObject(out, "usage", usage_json(usage));
    cJSON_Delete(j);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return up_print(out);
}

/* ---- the stream ---- */

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

/* A delta carrying one tool call piece. */
static cJSON *tool_delta(cJSON *call)
{
    cJSON *delta = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(delta, "tool_calls"), call);
    return delta;
}

typedef up_cause (*event_fn)(up_stream_state *st, const cJSON *j, up_emit_fn emit, void *arg);

static up_cause bad(up_stream_state *st, const char *why)
{
    snprintf(st->error, sizeof(st->error), "%s", why);
    return UP_E_BAD_REPLY;
}

static up_cause on_message_start(up_stream_state *st, const cJSON *j, up_emit_fn emit, void *arg)
{
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
    return UP_OK;
}

static up_cause on_block_start(up_stream_state *st, const cJSON *j, up_emit_fn emit, void *arg)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "content_block");
    if (strcmp(type_of(b), "tool_use")) return UP_OK; /* text opens empty; thinking is skipped */
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(j, "index");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
    if (!cJSON_IsNumber(index) || !cJSON_IsString(id) || !cJSON_IsString(name))
        return bad(st, "a tool_use content_block_start without index, id or name");
    st->in_tool = true;
    st->tool_block = index->valueint;
    emit(arg, chunk(st, tool_delta(tool_call(st->n_tools++, id->valuestring, name->valuestring, "")), NULL));
    return UP_OK;
}

static up_cause on_block_delta(up_stream_state *st, const cJSON *j, up_emit_fn emit, void *arg)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "delta");
    const char *type = type_of(d);
    if (!strcmp(type, "text_delta")) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(d, "text");
        if (!cJSON_IsString(text)) return bad(st, "a text_delta without text");
        st->text_bytes += strlen(text->valuestring);
        cJSON *delta = cJSON_CreateObject();
        cJSON_AddStringToObject(delta, "content", text->valuestring);
        emit(arg, chunk(st, delta, NULL));
    } else if (!strcmp(type, "input_json_delta")) {
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(j, "index");
        const cJSON *part = cJSON_GetObjectItemCaseSensitive(d, "partial_json");
        if (!st->in_tool || !cJSON_IsNumber(index) || index->valueint != st->tool_block || !cJSON_IsString(part))
            return bad(st, "an input_json_delta outside a tool_use block, or without partial_json");
        st->text_bytes += strlen(part->valuestring);
        emit(arg, chunk(st, tool_delta(tool_call(st->n_tools - 1, NULL, NULL, part->valuestring)), NULL));
    } /* thinking_delta, signature_delta, citations_delta: no OpenAI form */
    return UP_OK;
}

static up_cause on_block_stop(up_stream_state *st, const cJSON *j, up_emit_fn emit, void *arg)
{
    (void)emit;
    (void)arg;
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(j, "index");
    if (st->in_tool && cJSON_IsNumber(index) && index->valueint == st->tool_block) st->in_tool = false;
    return UP_OK;
}

static up_cause on_message_delta(up_stream_state *st, const cJSON *j, up_emit_fn emit, void *arg)
{
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "delta"), "stop_reason");
    snprintf(st->finish_reason, sizeof(st->finish_reason), "%s", finish_from_stop(cJSON_IsString(stop) ? stop->valuestring : NULL));
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "usage"), "output_tokens");
    if (up_json_count(out, UP_MAX_TOKENS, &st->usage.completion_tokens)) st->have_usage = true;
    emit(arg, chunk(st, cJSON_CreateObject(), st->finish_reason));
    return UP_OK;
}

static up_cause on_message_stop(up_stream_state *st, const cJSON *j, up_emit_fn emit, void *arg)
{
    (void)j;
    (void)emit;
    (void)arg;
    st->done = true;
    return UP_OK;
}

/* An error event (e.g. overloaded_error mid-stream): the upstream failed. */
static up_cause on_error(up_stream_state *st, const cJSON *j, up_emit_fn emit, void *arg)
{
    (void)emit;
    (void)arg;
    up_copy_str(st->error, sizeof(st->error), cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message"));
    if (!st->error[0]) snprintf(st->error, sizeof(st->error), "the stream carried an error event");
    return UP_E_UPSTREAM;
}

static up_cause anthropic_event(up_stream_state *st, const char *event, const char *data, size_t len,
                                up_emit_fn emit, void *arg)
{
    static const struct { const char *type; event_fn fn; } events[] = {
        {"message_start", on_message_start}, {"content_block_start", on_block_start},
        {"content_block_delta", on_block_delta}, {"content_block_stop", on_block_stop},
        {"message_delta", on_message_delta}, {"message_stop", on_message_stop}, {"error", on_error},
    }; /* ping and unknown (future) events: nothing to say */
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(j) || !type_of(j)[0]) {
        cJSON_Delete(j);
        snprintf(st->error, sizeof(st->error), "a stream event ('%.40s') is not a JSON object with a type", event);
        return UP_E_BAD_REPLY;
    }
    up_cause rc = UP_OK;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (!strcmp(type_of(j), events[i].type)) rc = events[i].fn(st, j, emit, arg);
    cJSON_Delete(j);
    return rc;
}

const up_provider_ops up_anthropic_ops = {
    "anthropic", "/messages", "x-api-key: %s", anthropic_headers, up_anthropic_body, anthropic_translate, anthropic_event,
};
