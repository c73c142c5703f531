/* api.c: the routes junction serves and their handlers.
 *
 * One table maps each path to the methods it allows and its handler; the
 * dispatcher answers 404 (unknown path) and 405 (with Allow) from the same
 * table, in OpenAI's error format, so adding an endpoint is one table row.
 */
#include "accounting.h"
#include "clients.h"
#include "local.h"

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

/* Ready means: this process will answer API requests now. The "checks"
 * object says what is there; "warnings" what an operator should know. */
static void handle_readyz(gw_request *r)
{
    bool draining = r->site->draining;
    const gw_backends *b = r->site->backends;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", draining ? "draining" : "ready");
    cJSON *checks = cJSON_AddObjectToObject(root, "checks");
    cJSON_AddBoolToObject(checks, "accepting", !draining);
    /* The model loads before the daemon listens, so a configured one is loaded by now. */
    cJSON_AddBoolToObject(checks, "local_model", b->local != NULL);
    cJSON_AddNumberToObject(checks, "upstreams", up_client_count(b->upstreams));
    pol_ledger_stats ls;
    pol_ledger_get_stats(b->accounts->ledger, &ls);
    bool ledger_on = b->accounts->ledger != NULL;
    cJSON_AddStringToObject(checks, "ledger", !ledger_on ? "off" : ls.degraded ? "degraded" : "ok");
    cJSON *warnings = cJSON_AddArrayToObject(root, "warnings");
    if (!b->local)
        cJSON_AddItemToArray(warnings, cJSON_CreateString("no local model is loaded: requests for the local "
                                                          "engine get 503 no_backend (start with -m FILE)"));
    if (ledger_on && ls.degraded) {
        char msg[400];
        snprintf(msg, sizeof(msg), "the ledger cannot write (%s); requests are answered and their rows wait or "
                                   "are counted as dropped", ls.last_error);
        cJSON_AddItemToArray(warnings, cJSON_CreateString(msg));
    }
    bool ready = !draining && !(ledger_on && ls.degraded && b->ledger_required);
    if (!draining && !ready) cJSON_ReplaceItemInObject(root, "status", cJSON_CreateString("degraded"));
    gw_reply_cjson(r, ready ? 200 : 503, root);
}

static void handle_models(gw_request *r)
{
    pol_key key;
    bool anonymous;
    gw_api_error e;
    if (gw_clients_identify(r->site->backends->clients, r, &key, &anonymous, &e) != 0) {
        gw_reply_error(r, &e);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    gw_local *local = r->site->backends->local;
    if (local) {
        const eng_model_info *mi = eng_model_get_info(gw_local_model(local));
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", gw_local_model_id(local));
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "junction");
        cJSON *j = cJSON_AddObjectToObject(m, "junction");
        cJSON_AddStringToObject(j, "kind", "local");
        cJSON_AddStringToObject(j, "zone", "in-process");
        cJSON_AddStringToObject(j, "name", mi->name);
        cJSON_AddStringToObject(j, "weight_type", mi->weight_type);
        cJSON_AddNumberToObject(j, "n_ctx_train", mi->n_ctx_train);
        cJSON_AddNumberToObject(j, "n_vocab", mi->n_vocab);
        cJSON_AddStringToObject(j, "chat_template", gw_local_llama2_chat(local) ? "llama2" : "plain");
        cJSON_AddItemToArray(data, m);
    }
    up_client *ups = r->site->backends->upstreams;
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

static void handle_chat_completions(gw_request *r) { gw_handle_model_request(r, GW_API_CHAT); }
static void handle_completions(gw_request *r) { gw_handle_model_request(r, GW_API_TEXT); }
static void handle_route(gw_request *r) { gw_handle_model_request(r, GW_API_ROUTE); }

static const route routes[] = {
    {"/healthz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_healthz},
    {"/readyz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_readyz},
    {"/v1/models", EVHTTP_REQ_GET, "GET", handle_models},
    {"/v1/chat/completions", EVHTTP_REQ_POST, "POST", handle_chat_completions},
    {"/v1/completions", EVHTTP_REQ_POST, "POST", handle_completions},
    {"/v1/route", EVHTTP_REQ_POST, "POST", handle_route},
    {"/admin/spend", EVHTTP_REQ_GET, "GET", gw_handle_admin_spend},
    {"/admin/requests", EVHTTP_REQ_GET, "GET", gw_handle_admin_requests},
    {"/admin/budgets", EVHTTP_REQ_GET, "GET", gw_handle_admin_budgets},
    {"/metrics", EVHTTP_REQ_GET, "GET", gw_handle_metrics},
    {"/dashboard", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/app.css", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/app.js", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/api.js", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/format.js", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/charts.js", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/views.js", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/requests.js", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/trybox.js", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/uPlot.iife.min.js", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
    {"/dashboard/uPlot.min.css", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", gw_handle_dashboard},
};

void gw_dispatch(gw_site *site, struct evhttp_request *req)
{
    gw_request r;
    gw_request_begin(&r, site, req);
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
