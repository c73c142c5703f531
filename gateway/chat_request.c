/* chat_request.c: validation of a POST /v1/chat/completions body.
 *
 * Clients are written against OpenAI, so a bad request gets the answer OpenAI
 * would give: status 400, type invalid_request_error, `param` naming the
 * offending field (e.g. "messages[2].role") and the same `code`s. The
 * top-level fields are a table: name, JSON type, range. junction checks the
 * fields it reads itself; any other field passes untouched (an upstream may
 * know it: OpenAI adds parameters faster than any gateway), and whether the
 * local engine can honour a request is its own table, gw_local_unsupported.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

typedef enum { F_STRING, F_BOOL, F_NUMBER, F_INTEGER, F_OBJECT, F_ARRAY, F_MESSAGES, F_STOP, F_PROMPT,
               F_LOGIT_BIAS, F_TOOL_CHOICE } field_kind;

typedef struct {
    const char *name;
    field_kind kind;
    double min, max;   /* F_NUMBER, F_INTEGER */
} field_rule;

static const field_rule chat_fields[] = {
    {"model", F_STRING, 0, 0},
    {"messages", F_MESSAGES, 0, 0},
    {"max_tokens", F_INTEGER, 1, INT32_MAX},
    {"max_completion_tokens", F_INTEGER, 1, INT32_MAX},
    {"temperature", F_NUMBER, 0, 2},
    {"top_p", F_NUMBER, 0, 1},
    {"n", F_INTEGER, 1, 128},
    {"stream", F_BOOL, 0, 0},
    {"stream_options", F_OBJECT, 0, 0},
    {"stop", F_STOP, 0, 0},
    {"presence_penalty", F_NUMBER, -2, 2},
    {"frequency_penalty", F_NUMBER, -2, 2},
    {"seed", F_INTEGER, -9007199254740991.0, 9007199254740991.0},
    {"logprobs", F_BOOL, 0, 0},
    {"top_logprobs", F_INTEGER, 0, 20},
    {"user", F_STRING, 0, 0},
    {"logit_bias", F_LOGIT_BIAS, -100, 100},
    {"tools", F_ARRAY, 0, 0},
    {"tool_choice", F_TOOL_CHOICE, 0, 0},
    {"parallel_tool_calls", F_BOOL, 0, 0},
    {"response_format", F_OBJECT, 0, 0},
    {"metadata", F_OBJECT, 0, 0},
};

/* POST /v1/completions (the legacy text API). */
static const field_rule completion_fields[] = {
    {"model", F_STRING, 0, 0},
    {"prompt", F_PROMPT, 0, 0},
    {"max_tokens", F_INTEGER, 1, INT32_MAX},
    {"temperature", F_NUMBER, 0, 2},
    {"top_p", F_NUMBER, 0, 1},
    {"n", F_INTEGER, 1, 128},
    {"best_of", F_INTEGER, 1, 1},
    {"stream", F_BOOL, 0, 0},
    {"stream_options", F_OBJECT, 0, 0},
    {"stop", F_STOP, 0, 0},
    {"presence_penalty", F_NUMBER, -2, 2},
    {"frequency_penalty", F_NUMBER, -2, 2},
    {"seed", F_INTEGER, -9007199254740991.0, 9007199254740991.0},
    {"echo", F_BOOL, 0, 0},
    {"user", F_STRING, 0, 0},
    {"logit_bias", F_LOGIT_BIAS, -100, 100},
};

static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define INVALID "invalid_request_error"

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsNull(v)) return "null";
    return "an unknown type";
}

static int wrong_type(gw_api_error *e, const char *param, const char *expected, const cJSON *v)
{
    gw_api_error_set(e, 400, INVALID, "invalid_type", param,
                     "Invalid type for '%s': expected %s, but got %s instead.", param, expected,
                     json_type_name(v));
    return -1;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

static int check_number(const field_rule *f, const cJSON *v, gw_api_error *e)
{
    bool integer = f->kind == F_INTEGER;
    if (!cJSON_IsNumber(v) || (integer && v->valuedouble != floor(v->valuedouble)))
        return wrong_type(e, f->name, integer ? "an integer" : "a decimal", v);
    double x = v->valuedouble;
    if (x < f->min) {
        gw_api_error_set(e, 400, INVALID, integer ? "integer_below_min_value" : "decimal_below_min_value",
                         f->name, "Invalid '%s': %s below minimum value. Expected a value >= %g, but got %g instead.",
                         f->name, integer ? "integer" : "decimal", f->min, x);
        return -1;
    }
    if (x > f->max) {
        gw_api_error_set(e, 400, INVALID, integer ? "integer_above_max_value" : "decimal_above_max_value",
                         f->name, "Invalid '%s': %s above maximum value. Expected a value <= %g, but got %g instead.",
                         f->name, integer ? "integer" : "decimal", f->max, x);
        return -1;
    }
    return 0;
}

static int check_stop(const cJSON *v, gw_api_error *e)
{
    if (cJSON_IsString(v)) return 0;
    if (!cJSON_IsArray(v)) return wrong_type(e, "stop", "a string or an array of strings", v);
    int n = cJSON_GetArraySize(v);
    if (n > 4) {
        gw_api_error_set(e, 400, INVALID, "array_above_max_length", "stop",
                         "Invalid 'stop': array too long. Expected an array with maximum length 4, "
                         "but got an array with length %d instead.", n);
        return -1;
    }
    int i = 0;
    for (const cJSON *s = v->child; s; s = s->next, i++) {
        if (!cJSON_IsString(s) || s->valuestring[0] == '\0') {
            char param[32];
            snprintf(param, sizeof(param), "stop[%d]", i);
            return wrong_type(e, param, "a non-empty string", s);
        }
    }
    return 0;
}

/* content: a non-empty string, or a non-empty array of {"type":"text","text":...} parts. */
static int check_content(const cJSON *content, const char *param, gw_api_error *e)
{
    char p[96];
    if (cJSON_IsString(content)) {
        if (content->valuestring[0] != '\0') return 0;
        gw_api_error_set(e, 400, INVALID, "empty_string", param,
                         "Invalid '%s': string too short. Expected a string with minimum length 1, "
                         "but got an empty string instead.", param);
        return -1;
    }
    if (!cJSON_IsArray(content)) return wrong_type(e, param, "a string or an array of content parts", content);
    if (cJSON_GetArraySize(content) == 0) {
        gw_api_error_set(e, 400, INVALID, "empty_array", param,
                         "Invalid '%s': empty array. Expected an array with minimum length 1, "
                         "but got an empty array instead.", param);
        return -1;
    }
    int j = 0;
    for (const cJSON *part = content->child; part; part = part->next, j++) {
        snprintf(p, sizeof(p), "%s[%d]", param, j);
        if (!cJSON_IsObject(part)) return wrong_type(e, p, "an object", part);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        snprintf(p, sizeof(p), "%s[%d].type", param, j);
        if (!cJSON_IsString(type)) return wrong_type(e, p, "a string", type);
        if (strcmp(type->valuestring, "text") != 0) continue; /* images, audio, files: for upstreams */
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        snprintf(p, sizeof(p), "%s[%d].text", param, j);
        if (!cJSON_IsString(text)) return wrong_type(e, p, "a string", text);
        if (check_content(text, p, e) != 0) return -1;
    }
    return 0;
}

static int check_message(const cJSON *m, int i, gw_api_error *e)
{
    char p[96];
    snprintf(p, sizeof(p), "messages[%d]", i);
    if (!cJSON_IsObject(m)) return wrong_type(e, p, "an object", m);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    snprintf(p, sizeof(p), "messages[%d].role", i);
    if (!role) {
        gw_api_error_set(e, 400, INVALID, "missing_required_parameter", p,
                         "Missing required parameter: '%s'.", p);
        return -1;
    }
    if (!cJSON_IsString(role)) return wrong_type(e, p, "a string", role);
    if (!in_list(role->valuestring, roles, COUNT(roles))) {
        gw_api_error_set(e, 400, INVALID, "invalid_value", p,
                         "Invalid value: '%.40s'. Supported values are: 'system', 'developer', "
                         "'user', 'assistant', 'tool', and 'function'.", role->valuestring);
        return -1;
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    snprintf(p, sizeof(p), "messages[%d].content", i);
    bool is_assistant = strcmp(role->valuestring, "assistant") == 0;
    bool calls_tools = cJSON_GetObjectItemCaseSensitive(m, "tool_calls") ||
                       cJSON_GetObjectItemCaseSensitive(m, "function_call");
    /* An assistant turn that only calls tools carries no content. */
    if (is_assistant && calls_tools && (!content || cJSON_IsNull(content))) return 0;
    if (!content) {
        gw_api_error_set(e, 400, INVALID, "missing_required_parameter", p,
                         "Missing required parameter: '%s'.", p);
        return -1;
    }
    if (check_content(content, p, e) != 0) return -1;
    if (strcmp(role->valuestring, "tool") == 0) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
        snprintf(p, sizeof(p), "messages[%d].tool_call_id", i);
        if (!cJSON_IsString(id)) return wrong_type(e, p, "a string", id);
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    snprintf(p, sizeof(p), "messages[%d].name", i);
    if (name && !cJSON_IsString(name)) return wrong_type(e, p, "a string", name);
    return 0;
}

static int check_messages(const cJSON *v, gw_api_error *e)
{
    if (!cJSON_IsArray(v)) return wrong_type(e, "messages", "an array", v);
    if (!v->child) {
        gw_api_error_set(e, 400, INVALID, "empty_array", "messages",
                         "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                         "but got an empty array instead.");
        return -1;
    }
    int i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++)
        if (check_message(m, i, e) != 0) return -1;
    return 0;
}

/* {"token id": bias}: ids are decimal strings, biases in [-100, 100]. */
static int check_logit_bias(const field_rule *f, const cJSON *v, gw_api_error *e)
{
    if (!cJSON_IsObject(v)) return wrong_type(e, f->name, "an object", v);
    for (const cJSON *b = v->child; b; b = b->next) {
        char p[96];
        snprintf(p, sizeof(p), "logit_bias.%.40s", b->string);
        char *end;
        long id = strtol(b->string, &end, 10);
        if (!b->string[0] || *end || id < 0 || id > INT32_MAX) {
            gw_api_error_set(e, 400, INVALID, "invalid_value", p,
                             "Invalid key in 'logit_bias': '%.40s' is not a token id (a non-negative integer).",
                             b->string);
            return -1;
        }
        field_rule bias = {p, F_NUMBER, f->min, f->max};
        if (check_number(&bias, b, e) != 0) return -1;
    }
    return 0;
}

static int check_field(const field_rule *f, const cJSON *v, gw_api_error *e)
{
    switch (f->kind) {
    case F_STRING: return cJSON_IsString(v) ? 0 : wrong_type(e, f->name, "a string", v);
    case F_BOOL: return cJSON_IsBool(v) ? 0 : wrong_type(e, f->name, "a boolean", v);
    case F_OBJECT: return cJSON_IsObject(v) ? 0 : wrong_type(e, f->name, "an object", v);
    case F_ARRAY: return cJSON_IsArray(v) ? 0 : wrong_type(e, f->name, "an array", v);
    case F_TOOL_CHOICE:
        return cJSON_IsString(v) || cJSON_IsObject(v) ? 0 : wrong_type(e, f->name, "a string or an object", v);
    case F_LOGIT_BIAS: return check_logit_bias(f, v, e);
    case F_NUMBER:
    case F_INTEGER: return check_number(f, v, e);
    case F_MESSAGES: return check_messages(v, e);
    case F_STOP: return check_stop(v, e);
    case F_PROMPT: return cJSON_IsString(v) ? 0 : wrong_type(e, f->name, "a string", v);
    }
    return 0;
}

/* Every field known to `table` typed and in range (others pass); `required` present. */
static int check_fields(const cJSON *body, const field_rule *table, size_t n, const char *required, gw_api_error *e)
{
    for (const cJSON *item = body->child; item; item = item->next) {
        const field_rule *f = NULL;
        for (size_t i = 0; i < n && !f; i++)
            if (strcmp(table[i].name, item->string) == 0) f = &table[i];
        if (!f) continue;
        if (cJSON_IsNull(item) && strcmp(f->name, required) != 0) continue; /* null means "not set" */
        if (check_field(f, item, e) != 0) return -1;
    }
    if (!cJSON_GetObjectItemCaseSensitive(body, required)) {
        gw_api_error_set(e, 400, INVALID, "missing_required_parameter", required,
                         "Missing required parameter: '%s'.", required);
        return -1;
    }
    return 0;
}

static int check_stream_options(const cJSON *body, gw_api_error *e)
{
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(body, "stream");
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (opts && !cJSON_IsNull(opts) && !cJSON_IsTrue(stream)) {
        gw_api_error_set(e, 400, INVALID, "invalid_value", "stream_options",
                         "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
        return -1;
    }
    if (cJSON_IsObject(opts)) {
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(opts, "include_usage");
        if (usage && !cJSON_IsBool(usage))
            return wrong_type(e, "stream_options.include_usage", "a boolean", usage);
    }
    return 0;
}

int gw_chat_request_validate(const cJSON *body, gw_api_error *e)
{
    if (check_fields(body, chat_fields, COUNT(chat_fields), chat_fields[1].name, e) != 0) return -1;
    return check_stream_options(body, e);
}

int gw_completion_request_validate(const cJSON *body, gw_api_error *e)
{
    if (check_fields(body, completion_fields, COUNT(completion_fields), completion_fields[1].name, e) != 0) return -1;
    return check_stream_options(body, e);
}

/* ---- what the local engine cannot honour ----
 * One row per parameter: present with a value that asks for something the
 * engine lacks, the request gets a 400 naming it (the policy will route
 * such requests upstream instead). */

typedef bool (*asks_fn)(const cJSON *v);

static bool non_empty_array(const cJSON *v) { return cJSON_GetArraySize(v) > 0; }
static bool not_none(const cJSON *v) { return !(cJSON_IsString(v) && !strcmp(v->valuestring, "none")); }
static bool not_one(const cJSON *v) { return !(cJSON_IsNumber(v) && v->valuedouble == 1); }
static bool not_text_format(const cJSON *v)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    return !(cJSON_IsString(type) && !strcmp(type->valuestring, "text"));
}
static bool not_text_only(const cJSON *v)
{
    for (const cJSON *m = v ? v->child : NULL; m; m = m->next)
        if (!cJSON_IsString(m) || strcmp(m->valuestring, "text") != 0) return true;
    return false;
}
static bool always(const cJSON *v) { (void)v; return true; }

static const struct {
    const char *param;
    asks_fn asks;
    const char *why;
} local_limits[] = {
    {"tools", non_empty_array, "it has no tool calling"},
    {"tool_choice", not_none, "it has no tool calling"},
    {"functions", non_empty_array, "it has no tool calling"},
    {"function_call", not_none, "it has no tool calling"},
    {"response_format", not_text_format, "it has no JSON mode or structured output"},
    {"n", not_one, "it answers with one choice per request"},
    {"modalities", not_text_only, "it produces text only"},
    {"audio", always, "it produces text only"},
    {"prediction", always, "it has no predicted outputs"},
    {"web_search_options", always, "it cannot search the web"},
};

static bool has_non_text_part(const cJSON *messages)
{
    for (const cJSON *m = messages ? messages->child : NULL; m; m = m->next) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        for (const cJSON *p = cJSON_IsArray(content) ? content->child : NULL; p; p = p->next) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
            if (cJSON_IsString(type) && strcmp(type->valuestring, "text") != 0) return true;
        }
    }
    return false;
}

const char *gw_local_unsupported(const cJSON *body, const char **why)
{
    for (size_t i = 0; i < COUNT(local_limits); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, local_limits[i].param);
        if (v && !cJSON_IsNull(v) && local_limits[i].asks(v)) {
            *why = local_limits[i].why;
            return local_limits[i].param;
        }
    }
    if (has_non_text_part(cJSON_GetObjectItemCaseSensitive(body, "messages"))) {
        *why = "it reads text only (no image, audio or file parts)";
        return "messages";
    }
    return NULL;
}
