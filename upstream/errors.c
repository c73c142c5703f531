/* errors.c: the causes a request can end with, how each reads to an
 * OpenAI client, and what an upstream's own error answer says.
 *
 * One table row per cause: its stable name (logs, the ledger, the policy's
 * fallback rules), the HTTP status and OpenAI error type and code the client
 * gets, whether another attempt may help, and what it says about the
 * upstream's health (a refused request shows it is up; a 429 or a slow
 * client says nothing). Everything that turns a cause
 * into words or JSON reads this table, so a new cause is one row.
 *
 * An upstream that answers with an HTTP error describes it in a JSON body
 * (OpenAI: {"error": {"message", "type", "param", "code"}}; Anthropic:
 * {"type": "error", "error": {"type", "message"}}); up_error_from_reply
 * reads it here, apart from the transfer, so that it is a pure function of
 * the status and the bytes.
 */
#include "provider.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    up_cause cause;
    const char *name;
    int status;
    const char *type, *code;
    bool retryable;
    int health;            /* for the breaker: +1 the upstream works, -1 it failed, 0 says nothing */
} cause_row;

static const cause_row rows[] = {
    {UP_OK, "ok", 200, "", "", false, 1},
    {UP_E_NO_SUCH_UPSTREAM, "no_such_upstream", 404, "invalid_request_error", "model_not_found", false, 0},
    {UP_E_CONNECT, "connect", 502, "server_error", "upstream_unreachable", true, -1},
    {UP_E_TIMEOUT, "timeout", 504, "server_error", "upstream_timeout", true, -1},
    {UP_E_RATE_LIMITED, "rate_limited", 429, "rate_limit_error", "upstream_rate_limited", true, 0},
    {UP_E_AUTH, "auth", 502, "server_error", "upstream_auth_failed", false, 1},
    {UP_E_REJECTED, "rejected", 400, "invalid_request_error", "upstream_rejected", false, 1},
    {UP_E_UPSTREAM, "upstream", 502, "server_error", "upstream_error", true, -1},
    {UP_E_BAD_REPLY, "bad_reply", 502, "server_error", "upstream_malformed_response", false, -1},
    {UP_E_STREAM_BROKEN, "stream_broken", 502, "server_error", "upstream_stream_broken", true, -1},
    {UP_E_CIRCUIT_OPEN, "circuit_open", 503, "server_error", "upstream_circuit_open", false, 0},
    {UP_E_BUSY, "busy", 503, "server_error", "upstream_busy", false, 0},
    {UP_E_UNTRANSLATABLE, "untranslatable", 400, "invalid_request_error", "unsupported_parameter", false, 0},
    {UP_E_TOO_SLOW, "too_slow", 503, "server_error", "client_too_slow", false, 0},
    {UP_E_NOMEM, "nomem", 500, "server_error", "out_of_memory", false, 0},
};

static const cause_row *row(up_cause c)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].cause == c) return &rows[i];
    return &rows[UP_E_NOMEM]; /* unreachable for a valid enum value */
}

const char *up_cause_name(up_cause c) { return row(c)->name; }
int up_cause_status(up_cause c) { return row(c)->status; }
bool up_cause_retryable(up_cause c) { return row(c)->retryable; }
int up_cause_health(up_cause c) { return row(c)->health; }

void up_error_set(up_error *e, up_cause cause, const char *param, const char *fmt, ...)
{
    const cause_row *r = row(cause);
    memset(e, 0, sizeof(*e));
    e->cause = cause;
    snprintf(e->type, sizeof(e->type), "%s", r->type);
    snprintf(e->code, sizeof(e->code), "%s", r->code);
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

cJSON *up_error_json(const up_error *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *o = cJSON_AddObjectToObject(root, "error");
    bool ok = o && cJSON_AddStringToObject(o, "message", e->message) && cJSON_AddStringToObject(o, "type", e->type) &&
              (e->param[0] ? cJSON_AddStringToObject(o, "param", e->param) : cJSON_AddNullToObject(o, "param")) &&
              (e->code[0] ? cJSON_AddStringToObject(o, "code", e->code) : cJSON_AddNullToObject(o, "code"));
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int up_error_client_status(const up_error *e)
{
    return e->cause == UP_E_REJECTED && e->upstream_status ? e->upstream_status : up_cause_status(e->cause);
}

void up_error_from_reply(up_error *e, const char *upstream, long status, const char *body, size_t len)
{
    static const struct { long from, to; up_cause cause; const char *what; } by_status[] = {
        {429, 429, UP_E_RATE_LIMITED, "is rate limiting"},
        {401, 401, UP_E_AUTH, "refused junction's credentials (check the key in its api_key_env)"},
        {403, 403, UP_E_AUTH, "refused junction's credentials (check the key in its api_key_env)"},
        {400, 499, UP_E_REJECTED, "rejected the request"},
        {LONG_MIN, LONG_MAX, UP_E_UPSTREAM, "failed"},
    };
    size_t i = 0;
    while (status < by_status[i].from || status > by_status[i].to) i++;
    cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    const char *text = cJSON_IsString(msg) ? msg->valuestring : cJSON_IsString(err) ? err->valuestring : "no message";
    up_error_set(e, by_status[i].cause, NULL, "upstream '%s' %s (HTTP %ld): %s", upstream, by_status[i].what, status,
                 text);
    e->upstream_status = status >= 100 && status <= 999 ? (int)status : 0;
    if (by_status[i].cause == UP_E_REJECTED) { /* the upstream's own words reach the client */
        static const struct { const char *key; size_t off, size; } keep[] = {
            {"type", offsetof(up_error, type), sizeof(e->type)},
            {"code", offsetof(up_error, code), sizeof(e->code)},
            {"param", offsetof(up_error, param), sizeof(e->param)},
        };
        for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(err, keep[k].key);
            char *field = (char *)e + keep[k].off;
            if (cJSON_IsString(v)) snprintf(field, keep[k].size, "%s", v->valuestring);
            else if (k > 0) field[0] = '\0'; /* code and param: null upstream, null here */
        }
    }
    cJSON_Delete(j);
}
