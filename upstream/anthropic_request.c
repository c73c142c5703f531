/* anthropic_request.c: an OpenAI chat request as an Anthropic Messages API
 * request.
 *
 * The two APIs say most things differently: system and developer messages
 * become the top-level "system" text; assistant tool_calls become tool_use
 * content blocks and "tool" messages tool_result blocks (consecutive ones in
 * one user turn, as Anthropic wants every result of a turn together); tools
 * carry their JSON schema as input_schema; tool_choice and
 * parallel_tool_calls become one tool_choice object; response_format
 * json_schema becomes output_config.format; image parts become image blocks.
 * Every top-level field of the request has a row in one table saying what
 * happens to it. A request that has no faithful translation (n > 1,
 * logprobs, a JSON mode without schema, a non-function tool, ...) is refused
 * with UP_E_UNTRANSLATABLE naming the field, rather than answered as if it
 * had been honoured.
 */
#include "provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const up_def *def;
    up_error *err;
    bool failed;               /* err is set: untranslatable or out of memory */
} tx;

static void *refuse(tx *t, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Record why the request cannot go to Anthropic (the first reason wins). */
static void *refuse(tx *t, const char *param, const char *fmt, ...)
{
    if (t->failed) return NULL;
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    up_error_set(t->err, UP_E_UNTRANSLATABLE, param, "upstream '%s' speaks Anthropic's Messages API, which cannot take %s",
                 t->def->name, why);
    t->failed = true;
    return NULL;
}

static void *oom(tx *t)
{
    if (!t->failed) up_error_set(t->err, UP_E_NOMEM, NULL, "junction ran out of memory translating the request for upstream '%s'", t->def->name);
    t->failed = true;
    return NULL;
}

/* Add `item` to `obj` under `key` (to the array `obj` when key is NULL). */
static cJSON *put(tx *t, cJSON *obj, const char *key, cJSON *item)
{
    bool ok = item && obj && (key ? cJSON_AddItemToObject(obj, key, item) : cJSON_AddItemToArray(obj, item));
    if (!ok) {
        cJSON_Delete(item);
        return oom(t);
    }
    return item;
}

static cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- content ---- */

/* The text of a content value made only of text: a string, or text parts
 * (refusal parts too, for assistants). NULL after refusing another part. */
static char *plain_text(tx *t, const cJSON *content, int msg_i)
{
    up_text out = {0};
    if (cJSON_IsString(content)) up_text_add(&out, content->valuestring, strlen(content->valuestring));
    int j = 0;
    for (const cJSON *p = cJSON_IsArray(content) ? content->child : NULL; p; p = p->next, j++) {
        const char *type = str(p, "type");
        const char *text = type && !strcmp(type, "refusal") ? str(p, "refusal") : str(p, "text");
        if (!text) {
            char param[64];
            snprintf(param, sizeof(param), "messages[%d].content[%d]", msg_i, j);
            up_text_free(&out);
            return refuse(t, param, "a '%.40s' part in a system, developer, assistant or tool message (only text there)",
                          type ? type : "untyped");
        }
        up_text_add(&out, text, strlen(text));
    }
    if (!out.s && !out.failed) up_text_add(&out, "", 0);
    if (out.failed) {
        up_text_free(&out);
        return oom(t);
    }
    return out.s;
}

/* An image_url part as an image block: data: URLs inline (base64), others by URL. */
static cJSON *image_block(tx *t, const cJSON *part, const char *param)
{
    const char *url = str(get(part, "image_url"), "url");
    if (!url) return refuse(t, param, "an image_url part without image_url.url");
    cJSON *b = cJSON_CreateObject();
    put(t, b, "type", cJSON_CreateString("image"));
    cJSON *src = put(t, b, "source", cJSON_CreateObject());
    if (!strncmp(url, "data:", 5)) {
        const char *semi = strstr(url, ";base64,");
        if (!semi || semi == url + 5) {
            cJSON_Delete(b);
            return refuse(t, param, "an image data: URL that is not data:MEDIA_TYPE;base64,DATA");
        }
        char media[64];
        snprintf(media, sizeof(media), "%.*s", (int)(semi - url - 5) < 63 ? (int)(semi - url - 5) : 63, url + 5);
        put(t, src, "type", cJSON_CreateString("base64"));
        put(t, src, "media_type", cJSON_CreateString(media));
        put(t, src, "data", cJSON_CreateString(semi + 8));
    } else {
        put(t, src, "type", cJSON_CreateString("url"));
        put(t, src, "url", cJSON_CreateString(url));
    }
    return b;
}

/* A user message's content: a string stays one; parts become blocks. */
static cJSON *user_content(tx *t, const cJSON *content, int msg_i)
{
    if (cJSON_IsString(content)) return cJSON_CreateString(content->valuestring);
    cJSON *blocks = cJSON_CreateArray();
    int j = 0;
    for (const cJSON *p = content ? content->child : NULL; p && !t->failed; p = p->next, j++) {
        char param[64];
        snprintf(param, sizeof(param), "messages[%d].content[%d]", msg_i, j);
        const char *type = str(p, "type");
        if (type && !strcmp(type, "text") && str(p, "text")) {
            cJSON *b = put(t, blocks, NULL, cJSON_CreateObject());
            put(t, b, "type", cJSON_CreateString("text"));
            put(t, b, "text", cJSON_CreateString(str(p, "text")));
        } else if (type && !strcmp(type, "image_url")) {
            cJSON *b = image_block(t, p, param);
            if (b) put(t, blocks, NULL, b);
        } else {
            refuse(t, param, "a '%.40s' content part (text and image_url parts translate)", type ? type : "untyped");
        }
    }
    return blocks;
}

/* An assistant turn: its text, then one tool_use block per tool call. */
static cJSON *assistant_message(tx *t, const cJSON *m, int msg_i)
{
    char *text = plain_text(t, get(m, "content"), msg_i);
    if (!text) return NULL;
    cJSON *msg = cJSON_CreateObject();
    put(t, msg, "role", cJSON_CreateString("assistant"));
    const cJSON *calls = get(m, "tool_calls");
    if (!cJSON_IsArray(calls) || !calls->child) {
        put(t, msg, "content", cJSON_CreateString(text));
        free(text);
        return msg;
    }
    cJSON *blocks = put(t, msg, "content", cJSON_CreateArray());
    if (text[0]) {
        cJSON *b = put(t, blocks, NULL, cJSON_CreateObject());
        put(t, b, "type", cJSON_CreateString("text"));
        put(t, b, "text", cJSON_CreateString(text));
    }
    free(text);
    int k = 0;
    for (const cJSON *c = calls->child; c && !t->failed; c = c->next, k++) {
        char param[80];
        snprintf(param, sizeof(param), "messages[%d].tool_calls[%d]", msg_i, k);
        const cJSON *fn = get(c, "function");
        const char *type = str(c, "type"), *id = str(c, "id"), *name = str(fn, "name"), *args = str(fn, "arguments");
        if ((type && strcmp(type, "function")) || !id || !name || !args) {
            refuse(t, param, "a tool call that is not {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}");
            break;
        }
        /* Anthropic wants the arguments as an object; OpenAI sends them as JSON text. */
        cJSON *input = args[strspn(args, " \t\r\n")] ? cJSON_Parse(args) : cJSON_CreateObject();
        if (!cJSON_IsObject(input)) {
            cJSON_Delete(input);
            snprintf(param, sizeof(param), "messages[%d].tool_calls[%d].function.arguments", msg_i, k);
            refuse(t, param, "tool call arguments that are not a JSON object");
            break;
        }
        cJSON *b = put(t, blocks, NULL, cJSON_CreateObject());
        put(t, b, "type", cJSON_CreateString("tool_use"));
        put(t, b, "id", cJSON_CreateString(id));
        put(t, b, "name", cJSON_CreateString(name));
        put(t, b, "input", input);
    }
    return msg;
}

/* A "tool" message: a tool_result block, joining the results before it. */
static void tool_result(tx *t, cJSON *messages, cJSON **results, const cJSON *m, int msg_i)
{
    const char *id = str(m, "tool_call_id");
    char param[64];
    snprintf(param, sizeof(param), "messages[%d].tool_call_id", msg_i);
    if (!id) {
        refuse(t, param, "a tool message without tool_call_id");
        return;
    }
    char *text = plain_text(t, get(m, "content"), msg_i);
    if (!text) return;
    if (!*results) {
        cJSON *msg = put(t, messages, NULL, cJSON_CreateObject());
        put(t, msg, "role", cJSON_CreateString("user"));
        *results = put(t, msg, "content", cJSON_CreateArray());
    }
    cJSON *b = put(t, *results, NULL, cJSON_CreateObject());
    put(t, b, "type", cJSON_CreateString("tool_result"));
    put(t, b, "tool_use_id", cJSON_CreateString(id));
    put(t, b, "content", cJSON_CreateString(text));
    free(text);
}

static void translate_messages(tx *t, cJSON *body, const cJSON *in)
{
    up_text system = {0};
    cJSON *messages = put(t, body, "messages", cJSON_CreateArray());
    cJSON *results = NULL; /* the user turn collecting consecutive tool results */
    int i = 0;
    for (const cJSON *m = in ? in->child : NULL; m && !t->failed; m = m->next, i++) {
        const char *role = str(m, "role");
        role = role ? role : "";
        if (!strcmp(role, "tool")) {
            tool_result(t, messages, &results, m, i);
            continue;
        }
        results = NULL;
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            char *text = plain_text(t, get(m, "content"), i);
            if (!text) break;
            if (system.len) up_text_add(&system, "\n\n", 2);
            up_text_add(&system, text, strlen(text));
            free(text);
        } else if (!strcmp(role, "assistant")) {
            cJSON *msg = assistant_message(t, m, i);
            if (msg) put(t, messages, NULL, msg);
        } else if (!strcmp(role, "user")) {
            cJSON *msg = put(t, messages, NULL, cJSON_CreateObject());
            put(t, msg, "role", cJSON_CreateString("user"));
            put(t, msg, "content", user_content(t, get(m, "content"), i));
        } else {
            char param[32];
            snprintf(param, sizeof(param), "messages[%d].role", i);
            refuse(t, param, "a message with role '%.40s'", role);
        }
    }
    if (system.failed) oom(t);
    else if (system.s && !t->failed) put(t, body, "system", cJSON_CreateString(system.s));
    up_text_free(&system);
}

/* ---- top-level fields ---- */

static void tools(tx *t, cJSON *body, const cJSON *v)
{
    cJSON *out = put(t, body, "tools", cJSON_CreateArray());
    int i = 0;
    for (const cJSON *tool = cJSON_IsArray(v) ? v->child : NULL; tool && !t->failed; tool = tool->next, i++) {
        const char *type = str(tool, "type");
        const cJSON *fn = get(tool, "function");
        char param[32];
        snprintf(param, sizeof(param), "tools[%d]", i);
        if (!type || strcmp(type, "function") || !str(fn, "name")) {
            refuse(t, param, "a tool of type '%.40s' (function tools with a name translate)", type ? type : "untyped");
            return;
        }
        cJSON *o = put(t, out, NULL, cJSON_CreateObject());
        put(t, o, "name", cJSON_CreateString(str(fn, "name")));
        if (str(fn, "description")) put(t, o, "description", cJSON_CreateString(str(fn, "description")));
        const cJSON *schema = get(fn, "parameters");
        if (cJSON_IsObject(schema)) {
            put(t, o, "input_schema", cJSON_Duplicate(schema, 1));
        } else { /* OpenAI allows leaving them out: a function without arguments */
            cJSON *s = put(t, o, "input_schema", cJSON_CreateObject());
            put(t, s, "type", cJSON_CreateString("object"));
            put(t, s, "properties", cJSON_CreateObject());
        }
        if (cJSON_IsBool(get(fn, "strict"))) put(t, o, "strict", cJSON_CreateBool(cJSON_IsTrue(get(fn, "strict"))));
    }
}

static void tool_choice(tx *t, cJSON *body, const cJSON *v)
{
    static const struct { const char *openai, *anthropic; } modes[] = {
        {"auto", "auto"}, {"required", "any"}, {"none", "none"},
    };
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; cJSON_IsString(v) && i < sizeof(modes) / sizeof(modes[0]); i++)
        if (!strcmp(v->valuestring, modes[i].openai)) put(t, o, "type", cJSON_CreateString(modes[i].anthropic));
    const char *type = str(v, "type"), *name = str(get(v, "function"), "name");
    if (type && !strcmp(type, "function") && name) {
        put(t, o, "type", cJSON_CreateString("tool"));
        put(t, o, "name", cJSON_CreateString(name));
    }
    if (!get(o, "type")) {
        cJSON_Delete(o);
        refuse(t, "tool_choice", "this tool_choice (\"auto\", \"required\", \"none\" and {\"type\": \"function\"} translate)");
        return;
    }
    put(t, body, "tool_choice", o);
}

/* parallel_tool_calls: false is Anthropic's tool_choice.disable_parallel_tool_use. */
static void parallel_tool_calls(tx *t, cJSON *body, const cJSON *v)
{
    if (!cJSON_IsFalse(v)) return;
    cJSON *choice = get(body, "tool_choice");
    if (!choice) {
        choice = put(t, body, "tool_choice", cJSON_CreateObject());
        put(t, choice, "type", cJSON_CreateString("auto"));
    }
    const char *type = str(choice, "type");
    if (type && strcmp(type, "none")) put(t, choice, "disable_parallel_tool_use", cJSON_CreateTrue());
}

static void response_format(tx *t, cJSON *body, const cJSON *v)
{
    const char *type = str(v, "type");
    if (type && !strcmp(type, "text")) return;
    if (type && !strcmp(type, "json_schema")) {
        const cJSON *schema = get(get(v, "json_schema"), "schema");
        if (!cJSON_IsObject(schema)) {
            refuse(t, "response_format.json_schema.schema", "a json_schema response_format without a schema object");
            return;
        }
        cJSON *fmt = put(t, put(t, body, "output_config", cJSON_CreateObject()), "format", cJSON_CreateObject());
        put(t, fmt, "type", cJSON_CreateString("json_schema"));
        put(t, fmt, "schema", cJSON_Duplicate(schema, 1));
        return;
    }
    refuse(t, "response_format",
           "response_format '%.40s': it has JSON output only with a schema; send {\"type\": \"json_schema\", "
           "\"json_schema\": {\"name\", \"schema\"}} instead", type ? type : "untyped");
}

static void max_tokens(tx *t, cJSON *body, const cJSON *v)
{
    if (!get(body, "max_tokens")) put(t, body, "max_tokens", cJSON_CreateNumber(v->valuedouble));
}

static void number(tx *t, cJSON *body, const char *key, const cJSON *v)
{
    if (cJSON_IsNumber(v)) put(t, body, key, cJSON_CreateNumber(v->valuedouble));
}

static void temperature(tx *t, cJSON *body, const cJSON *v) { number(t, body, "temperature", v); }
static void top_p(tx *t, cJSON *body, const cJSON *v) { number(t, body, "top_p", v); }

static void stop(tx *t, cJSON *body, const cJSON *v)
{
    if (cJSON_IsString(v)) put(t, put(t, body, "stop_sequences", cJSON_CreateArray()), NULL, cJSON_CreateString(v->valuestring));
    else if (cJSON_IsArray(v)) put(t, body, "stop_sequences", cJSON_Duplicate(v, 1));
}

static void user(tx *t, cJSON *body, const cJSON *v)
{
    if (cJSON_IsString(v)) put(t, put(t, body, "metadata", cJSON_CreateObject()), "user_id", cJSON_CreateString(v->valuestring));
}

/* Defaults: a field left at its default value asks for nothing. */
static bool is_null(const cJSON *v) { return cJSON_IsNull(v); }
static bool is_one(const cJSON *v) { return cJSON_IsNumber(v) && v->valuedouble == 1; }
static bool is_false(const cJSON *v) { return cJSON_IsFalse(v) || cJSON_IsNull(v); }
static bool is_zero(const cJSON *v) { return cJSON_IsNull(v) || (cJSON_IsNumber(v) && v->valuedouble == 0); }
static bool is_empty(const cJSON *v) { return cJSON_IsNull(v) || ((cJSON_IsObject(v) || cJSON_IsArray(v)) && !v->child); }
static bool is_text_only(const cJSON *v)
{
    return cJSON_IsNull(v) || (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsString(v->child) &&
                               !strcmp(v->child->valuestring, "text"));
}

typedef enum {
    F_TRANSLATE,   /* `apply` writes its Anthropic form */
    F_DROP,        /* a hint with no Anthropic form that does not change the answer's shape */
    F_DEFAULT,     /* honoured only at its default value (`is_default`); refused otherwise */
} field_rule;

typedef struct {
    const char *key;
    field_rule rule;
    void (*apply)(tx *t, cJSON *body, const cJSON *v);
    bool (*is_default)(const cJSON *v);
} field;

/* Every field of an OpenAI chat request. Fields not listed (ones junction
 * does not know) are left out: Anthropic refuses unknown fields. model,
 * messages, max_tokens and stream are written before the table runs. */
static const field fields[] = {
    {"model", F_DROP, NULL, NULL},
    {"messages", F_DROP, NULL, NULL},
    {"stream", F_DROP, NULL, NULL},
    {"stream_options", F_DROP, NULL, NULL},            /* Anthropic streams always count tokens */
    {"max_tokens", F_TRANSLATE, max_tokens, NULL},
    {"max_completion_tokens", F_TRANSLATE, max_tokens, NULL},
    {"temperature", F_TRANSLATE, temperature, NULL},
    {"top_p", F_TRANSLATE, top_p, NULL},
    {"stop", F_TRANSLATE, stop, NULL},
    {"tools", F_TRANSLATE, tools, NULL},
    {"tool_choice", F_TRANSLATE, tool_choice, NULL},
    {"parallel_tool_calls", F_TRANSLATE, parallel_tool_calls, NULL}, /* after tool_choice */
    {"response_format", F_TRANSLATE, response_format, NULL},
    {"user", F_TRANSLATE, user, NULL},
    {"metadata", F_DROP, NULL, NULL},                  /* OpenAI's, for stored completions */
    {"store", F_DROP, NULL, NULL},
    {"service_tier", F_DROP, NULL, NULL},
    {"seed", F_DROP, NULL, NULL},
    {"presence_penalty", F_DROP, NULL, NULL},
    {"frequency_penalty", F_DROP, NULL, NULL},
    {"reasoning_effort", F_DROP, NULL, NULL},
    {"prediction", F_DROP, NULL, NULL},                /* a speed hint: the answer is the same */
    {"n", F_DEFAULT, NULL, is_one},
    {"logprobs", F_DEFAULT, NULL, is_false},
    {"top_logprobs", F_DEFAULT, NULL, is_zero},
    {"logit_bias", F_DEFAULT, NULL, is_empty},
    {"modalities", F_DEFAULT, NULL, is_text_only},
    {"audio", F_DEFAULT, NULL, is_null},
    {"web_search_options", F_DEFAULT, NULL, is_null},
    {"functions", F_DEFAULT, NULL, is_null},      /* the deprecated form of tools */
    {"function_call", F_DEFAULT, NULL, is_null},
};

/* The fields in table order (parallel_tool_calls needs tool_choice first). */
static void apply_fields(tx *t, cJSON *body, const cJSON *request)
{
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]) && !t->failed; i++) {
        const field *f = &fields[i];
        const cJSON *v = get(request, f->key);
        if (!v) continue;
        if (f->rule == F_TRANSLATE) f->apply(t, body, v);
        else if (f->rule == F_DEFAULT && !f->is_default(v))
            refuse(t, f->key, "'%s' other than its default (it has no equivalent there)", f->key);
    }
}

char *up_anthropic_body(const cJSON *request, const up_def *def, bool stream, up_error *err)
{
    tx t = {def, err, false};
    cJSON *body = cJSON_CreateObject();
    if (!body) return oom(&t);
    const char *model = str(request, "model");
    put(&t, body, "model", cJSON_CreateString(def->model[0] ? def->model : model ? model : ""));
    apply_fields(&t, body, request);
    if (!get(body, "max_tokens")) put(&t, body, "max_tokens", cJSON_CreateNumber(4096)); /* required there */
    translate_messages(&t, body, get(request, "messages"));
    if (stream) put(&t, body, "stream", cJSON_CreateTrue());
    if (t.failed) {
        cJSON_Delete(body);
        return NULL;
    }
    char *s = up_print(body);
    return s ? s : oom(&t);
}
