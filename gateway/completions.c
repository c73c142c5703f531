/* completions.c: the one path of a model request.
 *
 * POST /v1/chat/completions and POST /v1/completions both come here:
 *   read the body -> validate -> decide the route -> answer (locally or
 *   upstream) -> account (access log; the ledger row joins here)
 * with one gw_call carrying the request from its first byte to its last,
 * so every request that reached a handler ends exactly once, whatever way
 * it ends. The decision is one value (gw_decision) that the classifier and
 * the policy fill in.
 */
#include "accounting.h"
#include "local.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

/* An escaped NUL (\u0000) would cut the text short once parsed into C
 * strings: find one outside an escaped backslash. */
static bool has_escaped_nul(const char *p, size_t n)
{
    for (size_t i = 0; i + 6 <= n; i++) {
        if (p[i] != '\\') continue;
        if (p[i + 1] == '\\') { /* an escaped backslash: skip both */
            i++;
            continue;
        }
        if (p[i + 1] == 'u' && p[i + 2] == '0' && p[i + 3] == '0' && p[i + 4] == '0' && p[i + 5] == '0')
            return true;
    }
    return false;
}

/* Bodies up to this size are read on the loop (a few microseconds); larger
 * ones on a worker, so that the loop's work never grows with the body. */
#define INLINE_BODY_MAX (64 * 1024)

/* Parse and validate the body (any thread: touches only the call). */
static void read_body(gw_call *call)
{
    gw_api_error *e = &call->read_error;
    call->read_failed = true;
    cJSON *body = cJSON_ParseWithLength(call->raw, call->raw_len);
    if (!body) {
        gw_api_error_set(e, 400, INVALID, "invalid_json", NULL,
                         "We could not parse the JSON body of your request. The body must "
                         "be a JSON object, sent with Content-Type: application/json.");
        return;
    }
    call->body = body;
    if (!cJSON_IsObject(body)) {
        gw_api_error_set(e, 400, INVALID, "invalid_type", NULL, "The request body must be a JSON object.");
        return;
    }
    if (has_escaped_nul(call->raw, call->raw_len)) {
        gw_api_error_set(e, 400, INVALID, "invalid_value", NULL,
                         "The request contains a NUL character (\\u0000), which junction cannot pass to "
                         "a model without cutting the text short; remove it.");
        return;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    snprintf(call->model, sizeof(call->model), "%s", cJSON_IsString(model) ? model->valuestring : "auto");
    call->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream"));
    int valid = call->api == GW_API_CHAT ? gw_chat_request_validate(body, e) : gw_completion_request_validate(body, e);
    call->read_failed = valid != 0;
}

void gw_call_first_byte(gw_call *call)
{
    if (!call->first_byte_ns) call->first_byte_ns = gw_now_ns();
}

void gw_call_end(gw_call *call, int status)
{
    if (!call->logged) gw_request_log(&call->r, status, call->bytes);
    gw_account_call(call->r.site->backends->accounts, call, status);
    cJSON_Delete(call->body);
    free(call);
}

static void call_fail(gw_call *call, const gw_api_error *e)
{
    call->error_code = e->code ? e->code : e->type;
    gw_reply_error(&call->r, e);
    gw_call_end(call, e->status);
}

/* "model" picks the backend until the policy decides "auto": an upstream's
 * name, or local / auto / absent / the local model's id for the engine. */
static int decide(gw_call *call, gw_api_error *e)
{
    const gw_backends *b = call->r.site->backends;
    gw_decision *d = &call->decision;
    const up_def *up = up_client_find(b->upstreams, call->model);
    bool local_name = !strcmp(call->model, "local") || !strcmp(call->model, "auto") ||
                      (b->local && !strcmp(call->model, gw_local_model_id(b->local)));
    snprintf(d->reason, sizeof(d->reason), "explicit model");
    if (up && call->api == GW_API_CHAT) {
        d->route = GW_ROUTE_UPSTREAM;
        d->upstream = up;
        d->zone = up->zone == UP_ZONE_PRIVATE ? "private" : "external";
        return 0;
    }
    if (local_name && b->local) {
        d->route = GW_ROUTE_LOCAL;
        d->zone = "in-process";
        if (!strcmp(call->model, "auto")) snprintf(d->reason, sizeof(d->reason), "auto: the local engine (no policy yet)");
        return 0;
    }
    if (local_name) {
        gw_api_error_set(e, 503, "server_error", "no_backend", NULL,
                         "No model can answer this request: junction has no local model loaded. "
                         "Name an upstream in \"model\" (GET /v1/models lists them), or see "
                         "docs/configuration.md.");
        return -1;
    }
    if (up) {
        gw_api_error_set(e, 404, INVALID, "model_not_found", "model",
                         "POST /v1/completions is answered by the local engine only; upstreams such as "
                         "'%.100s' take POST /v1/chat/completions.", call->model);
        return -1;
    }
    gw_api_error_set(e, 404, INVALID, "model_not_found", "model",
                     "The model '%.100s' does not exist here. GET /v1/models lists the models "
                     "junction can route to.", call->model);
    return -1;
}

/* The body is read: decide where the request goes, and answer. Loop thread. */
static void proceed(gw_call *call)
{
    gw_api_error e;
    if (call->read_failed) {
        call_fail(call, &call->read_error);
        return;
    }
    if (decide(call, &e) != 0) {
        call_fail(call, &e);
        return;
    }
    const gw_decision *d = &call->decision;
    gw_log(GW_LOG_DEBUG, "request %s: model=%s stream=%d route=%s zone=%s reason=\"%s\" (read and checked in %.3f ms)",
           call->r.id, call->model, call->stream, d->route == GW_ROUTE_LOCAL ? "local" : d->upstream->name, d->zone,
           d->reason, (double)(gw_now_ns() - call->r.start_ns) / 1e6);
    if (d->route == GW_ROUTE_LOCAL) {
        const char *why;
        const char *param = gw_local_unsupported(call->body, &why);
        if (param) {
            gw_api_error_set(&e, 400, INVALID, "unsupported_parameter", param,
                             "The local model does not support '%s': %s. Send the request to an upstream "
                             "that does (set \"model\"; GET /v1/models lists them).", param, why);
            call_fail(call, &e);
            return;
        }
        gw_answer_local(call);
    } else {
        gw_answer_upstream(call);
    }
}

static void read_body_job(void *arg) { read_body(arg); }
static void read_body_gone(void *arg) { ((gw_call *)arg)->gone = true; }

static void read_body_done(void *arg)
{
    gw_call *call = arg;
    if (call->gone) {
        call->error_code = "client_closed";
        gw_request_release_orphan(call->r.req);
        gw_call_end(call, 499);
        return;
    }
    gw_request_unwatch_close(&call->r);
    proceed(call);
}

void gw_handle_model_request(gw_request *r, gw_api_kind api)
{
    gw_call *call = calloc(1, sizeof(*call));
    if (!call) {
        gw_api_error e;
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    call->r = *r;
    call->r.call = call;
    call->api = api;
    snprintf(call->model, sizeof(call->model), "auto");
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    call->raw_len = evbuffer_get_length(in);
    long long max = r->site->cfg->max_body_bytes;
    if ((long long)call->raw_len > max) {
        gw_api_error e;
        gw_api_error_set(&e, 413, INVALID, "request_too_large", NULL,
                         "Request body is %zu bytes; this server accepts at most %lld "
                         "(max_body_bytes).", call->raw_len, max);
        gw_request_add_header(&call->r, "Connection", "close"); /* as libevent does past its own cap */
        call_fail(call, &e);
        return;
    }
    call->raw = call->raw_len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (!call->raw) call->raw = "", call->raw_len = 0;
    if (call->raw_len <= INLINE_BODY_MAX || gw_pool_submit(r->site->pool, read_body_job, read_body_done, call) != 0) {
        read_body(call);
        proceed(call);
        return;
    }
    gw_request_watch_close(&call->r, read_body_gone, call);
}
