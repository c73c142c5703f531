/* api.c: the routes junction serves and their handlers.
 *
 * One table maps each path to the methods it allows and its handler; the
 * dispatcher answers 404 (unknown path) and 405 (with Allow) from the same
 * table, in OpenAI's error format, so adding an endpoint is one table row.
 */
#include "internal.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

typedef void (*route_handler)(gw_request *r);

typedef struct {
    const char *path;
    unsigned methods;   /* EVHTTP_REQ_* bits */
    const char *allow;  /* the same, as an Allow header */
    route_handler handle;
} route;

static void handle_healthz(gw_request *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    gw_reply_json(r, 200, ok, sizeof(ok) - 1);
}

/* Ready means: this process will answer API requests now. Later checks (model
 * loaded, ledger open) join the "checks" object. */
static void handle_readyz(gw_request *r)
{
    bool draining = gw_server_draining(r->srv);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", draining ? "draining" : "ready");
    cJSON *checks = cJSON_AddObjectToObject(root, "checks");
    cJSON_AddBoolToObject(checks, "accepting", !draining);
    gw_reply_cjson(r, draining ? 503 : 200, root);
}

static void handle_models(gw_request *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    up_client *ups = gw_server_upstreams(r->srv);
    for (int i = 0; i < up_client_count(ups); i++) {
        const up_def *d = up_client_def(ups, i);
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", d->name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", d->provider == UP_ANTHROPIC ? "anthropic" : "openai");
        cJSON *j = cJSON_AddObjectToObject(m, "junction");
        cJSON_AddStringToObject(j, "kind", "upstream");
        cJSON_AddStringToObject(j, "zone", d->zone == UP_ZONE_PRIVATE ? "private" : "external");
        cJSON_AddStringToObject(j, "upstream_model", d->model);
        cJSON_AddItemToArray(data, m);
    }
    gw_reply_cjson(r, 200, root);
}

/* ---- forwarding to an upstream ---- */

typedef struct {
    gw_request r;          /* a detached copy: the answer comes later */
    up_request *up;
    bool want_stream, streaming;
    size_t bytes;
} forward;

static void forward_chunk(void *arg, const char *json, size_t len)
{
    forward *f = arg;
    if (!f->streaming) {
        gw_stream_start(&f->r);
        f->streaming = true;
    }
    gw_stream_send(&f->r, json, len);
    f->bytes += len + 8;
}

static void forward_done(void *arg, const up_result *res)
{
    forward *f = arg;
    gw_server_unwatch_close(f->r.srv, f->r.req);
    if (f->want_stream && (f->streaming || res->status == 200)) {
        if (!f->streaming) gw_stream_start(&f->r);
        /* A stream that breaks ends with an error event instead of [DONE]. */
        if (res->status == 200) gw_stream_send(&f->r, "[DONE]", 6);
        else gw_stream_send(&f->r, res->body, res->body_len);
        gw_stream_end(&f->r);
        gw_request_log(&f->r, res->status, f->bytes + res->body_len);
    } else {
        gw_reply_json(&f->r, res->status, res->body, res->body_len);
    }
    free(f);
}

/* The client went away: stop the upstream transfer too. */
static void forward_abandoned(void *arg)
{
    forward *f = arg;
    up_cancel(f->up);
    gw_request_log(&f->r, 499, f->bytes);
    free(f);
}

static void forward_to_upstream(gw_request *r, const char *name, const cJSON *body)
{
    forward *f = calloc(1, sizeof(*f));
    gw_api_error e;
    if (!f) {
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    f->r = *r;
    f->want_stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream"));
    static const up_callbacks cb = {forward_chunk, forward_done};
    f->up = up_start(gw_server_upstreams(r->srv), name, body, &cb, f);
    if (!f->up) {
        free(f);
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    gw_server_watch_close(r->srv, r->req, forward_abandoned, f);
}

/* Parse the request body as JSON, answering the client itself on failure. */
static cJSON *read_json_body(gw_request *r)
{
    gw_api_error e;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    long long max = gw_server_max_body(r->srv);
    if ((long long)len > max) {
        gw_api_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                         "Request body is %zu bytes; this server accepts at most %lld "
                         "(max_body_bytes).", len, max);
        gw_request_add_header(r, "Connection", "close"); /* as libevent does past its own cap */
        gw_reply_error(r, &e);
        return NULL;
    }
    const char *text = len ? (const char *)evbuffer_pullup(in, -1) : "";
    cJSON *body = text ? cJSON_ParseWithLength(text, len) : NULL;
    if (!body) {
        gw_api_error_set(&e, 400, "invalid_request_error", "invalid_json", NULL,
                         "We could not parse the JSON body of your request. The body must "
                         "be a JSON object, sent with Content-Type: application/json.");
        gw_reply_error(r, &e);
        return NULL;
    }
    if (!cJSON_IsObject(body)) {
        gw_api_error_set(&e, 400, "invalid_request_error", "invalid_type", NULL,
                         "The request body must be a JSON object.");
        gw_reply_error(r, &e);
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

static void handle_chat_completions(gw_request *r)
{
    cJSON *body = read_json_body(r);
    if (!body) return;
    gw_api_error e;
    if (gw_chat_request_validate(body, &e) != 0) {
        gw_reply_error(r, &e);
        cJSON_Delete(body);
        return;
    }
    /* "model" picks the backend: an upstream's name, or local/auto/absent for the engine. */
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    const char *name = cJSON_IsString(model) ? model->valuestring : NULL;
    if (name && up_client_find(gw_server_upstreams(r->srv), name)) {
        forward_to_upstream(r, name, body);
    } else if (!name || !strcmp(name, "local") || !strcmp(name, "auto")) {
        gw_api_error_set(&e, 503, "server_error", "no_backend", NULL,
                         "No model can answer this request: junction has no local model loaded. "
                         "Name an upstream in \"model\" (GET /v1/models lists them), or see "
                         "docs/configuration.md.");
        gw_reply_error(r, &e);
    } else {
        gw_api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                         "The model '%.100s' does not exist here. GET /v1/models lists the models "
                         "junction can route to.", name);
        gw_reply_error(r, &e);
    }
    cJSON_Delete(body);
}

static const route routes[] = {
    {"/healthz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_healthz},
    {"/readyz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_readyz},
    {"/v1/models", EVHTTP_REQ_GET, "GET", handle_models},
    {"/v1/chat/completions", EVHTTP_REQ_POST, "POST", handle_chat_completions},
};

void gw_dispatch(gw_server *srv, struct evhttp_request *req)
{
    gw_request r;
    gw_request_begin(&r, srv, req);
    gw_api_error e;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].path, r.path) != 0) continue;
        if (!(routes[i].methods & evhttp_request_get_command(req))) {
            gw_request_add_header(&r, "Allow", routes[i].allow);
            gw_api_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL,
                             "Method %s is not allowed on %s; use %s.", r.method, r.path,
                             routes[i].allow);
            gw_reply_error(&r, &e);
            return;
        }
        routes[i].handle(&r);
        return;
    }
    gw_api_error_set(&e, 404, "invalid_request_error", "unknown_url", NULL,
                     "Unknown request URL: %s %.200s. Please check the URL for typos; "
                     "see docs/api.md for the endpoints junction serves.", r.method, r.path);
    gw_reply_error(&r, &e);
}
