/* api.c: the routes junction serves and their handlers.
 *
 * One table maps each path to the methods it allows and its handler; the
 * dispatcher answers 404 (unknown path) and 405 (with Allow) from the same
 * table, in OpenAI's error format, so adding an endpoint is one table row.
 */
#include "internal.h"

#include <event2/buffer.h>
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
    cJSON_AddArrayToObject(root, "data");
    gw_reply_cjson(r, 200, root);
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
    cJSON_Delete(body);
    gw_api_error_set(&e, 503, "server_error", "no_backend", NULL,
                     "No model can answer this request: junction has no local model loaded "
                     "and no upstream configured. See docs/configuration.md.");
    gw_reply_error(r, &e);
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
