/* completions.c: the one path of a model request.
 *
 * POST /v1/chat/completions, POST /v1/completions and POST /v1/route all
 * come here:
 *   read the body -> validate -> detect + lexical features -> rate limit
 *   -> (when a head reads them) the local model's pass over the prompt:
 *      rendered on a worker, scored by the engine, which keeps the cache
 *   -> the heads' scores -> decide the route -> answer (locally, from the
 *      scored cache, or upstream, after letting it go) -> account (access
 *      log; the ledger row joins here)
 * with one gw_call carrying the request from its first byte to its last,
 * so every request that reached a handler ends exactly once, whatever way
 * it ends, and a parked scoring job is released on every way but the local
 * answer. The decision is one value (gw_decision) that the classifier and
 * the policy fill in.
 */
#include "accounting.h"
#include "classify.h"
#include "clients.h"
#include "decide.h"
#include "pseudonymize.h"
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
    int valid = call->api == GW_API_TEXT ? gw_completion_request_validate(body, e) : gw_chat_request_validate(body, e);
    if (valid != 0) return;
    /* classified here, where the body was read (on a worker when it is large) */
    char why[256] = "out of memory";
    if (!(call->cls = calloc(1, sizeof(*call->cls))) ||
        gw_classify(call->r.site->backends->classifier, body, call->api, call->cls, why, sizeof(why)) != 0) {
        free(call->cls);
        call->cls = NULL;
        gw_api_error_set(e, 500, "server_error", "classifier_error", NULL,
                         "junction could not classify the request: %s", why);
        return;
    }
    call->read_failed = false;
}

void gw_call_first_byte(gw_call *call)
{
    if (!call->first_byte_ns) call->first_byte_ns = gw_now_ns();
}

void gw_call_release_parked(gw_call *call)
{
    if (!call->parked) return;
    gw_local_release(call->parked);
    call->parked = NULL;
}

void gw_call_end(gw_call *call, int status)
{
    gw_backends *b = call->r.site->backends;
    gw_call_release_parked(call);
    gw_prompt_free(&call->prompt);
    if (!call->logged) gw_request_log(&call->r, status, call->bytes);
    if (call->api != GW_API_ROUTE) {
        int64_t cost = 0, counterfactual = 0;
        gw_account_price(b->accounts, call, &cost, &counterfactual);
        gw_clients_settle(b->clients, &call->budget, cost);
        if (call->rate_tokens)
            gw_clients_rate_settle(b->clients, call->key_id, call->rate_tokens, call->prompt_tokens + call->completion_tokens);
        gw_account_call(b->accounts, call, status);
    }
    gw_pseudo_free(call->pseudo);
    if (call->cls) gw_classification_free(call->cls);
    free(call->cls);
    cJSON_Delete(call->body);
    free(call);
}

cJSON *gw_call_annotation(const gw_call *call)
{
    if (!call->r.site->cfg->routing.annotate_body) return NULL;
    const gw_decision *d = &call->decision;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "request_id", call->r.id);
    cJSON_AddStringToObject(j, "route", d->route == GW_ROUTE_LOCAL ? "local" : d->route == GW_ROUTE_UPSTREAM ? d->upstream->name : "none");
    cJSON_AddStringToObject(j, "zone", d->zone ? d->zone : "");
    cJSON_AddStringToObject(j, "rule", d->rule);
    cJSON_AddStringToObject(j, "reason", d->reason);
    if (call->cls) {
        cJSON_AddItemToObject(j, "scores", gw_classification_scores_json(call->cls));
        cJSON *kinds = cJSON_AddArrayToObject(j, "detectors");
        for (int i = 0; i < call->cls->n_kinds; i++) cJSON_AddItemToArray(kinds, cJSON_CreateString(call->cls->kind_list[i]));
    }
    int64_t cost = 0, counterfactual = 0;
    gw_account_price(call->r.site->backends->accounts, call, &cost, &counterfactual);
    cJSON_AddNumberToObject(j, "cost_usd", (double)cost / 1e6);
    cJSON_AddNumberToObject(j, "counterfactual_usd", (double)counterfactual / 1e6);
    return j;
}

static void call_fail(gw_call *call, const gw_api_error *e)
{
    call->error_code = e->code ? e->code : e->type;
    gw_reply_error(&call->r, e);
    gw_call_end(call, e->status);
}

/* What the request may use at most: its prompt (about 4 bytes a token) and
 * the answer it allows (a generous default when it sets no max_tokens). */
static int64_t max_answer_tokens(const gw_call *call)
{
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(call->body, "max_completion_tokens");
    if (!cJSON_IsNumber(max)) max = cJSON_GetObjectItemCaseSensitive(call->body, "max_tokens");
    return cJSON_IsNumber(max) ? (int64_t)max->valuedouble : call->api == GW_API_TEXT ? 16 : 4096;
}

static int64_t estimate_tokens(const gw_call *call)
{
    size_t bytes = 0;
    for (int i = 0; i < call->cls->n_msgs; i++) bytes += call->cls->msgs[i].len;
    return (int64_t)(bytes / 4 + 1) + max_answer_tokens(call);
}

/* A key may be limited to some routes (junction keys add --routes). */
static int allow_route(gw_call *call, gw_api_error *e)
{
    const gw_decision *d = &call->decision;
    const char *route = d->route == GW_ROUTE_LOCAL ? "local" : d->upstream->name;
    if (!call->key_id[0] || pol_key_allows_route(&call->key, route)) return 0;
    gw_api_error_set(e, 403, "invalid_request_error", "route_not_allowed", "model",
                     "Key %s may not use route '%s' (its routes: %s).", call->key.id, route, call->key.routes);
    return -1;
}

/* Reserve the request's worst case on its budgets, in one step with the
 * check. Over a hard limit: an "auto" request goes to a free local engine
 * when there is one; otherwise 429 budget_exceeded. */
static int reserve_budget(gw_call *call, gw_api_error *e)
{
    gw_backends *b = call->r.site->backends;
    const pol_key *key = call->key_id[0] ? &call->key : NULL;
    int64_t worst = 0, unused = 0;
    gw_call probe = *call;
    probe.prompt_tokens = estimate_tokens(call) - max_answer_tokens(call);
    probe.completion_tokens = max_answer_tokens(call);
    gw_account_price(b->accounts, &probe, &worst, &unused);
    pol_budget_verdict v;
    pol_budget_status st = gw_clients_reserve(b->clients, key, worst, &call->budget, &v);
    if (st == POL_BUDGET_HARD && call->decision.by_policy && b->local && call->decision.route != GW_ROUTE_LOCAL &&
        b->accounts->routes[0].price.input_per_mtok == 0 && b->accounts->routes[0].price.output_per_mtok == 0 &&
        b->accounts->routes[0].price.engine_per_mms == 0) {
        gw_decision *d = &call->decision;
        d->route = GW_ROUTE_LOCAL;
        d->upstream = NULL;
        d->zone = "in-process";
        snprintf(d->rule, sizeof(d->rule), "budget-exceeded");
        snprintf(d->reason, sizeof(d->reason), "over budget (%s): the free local engine answers", v.limit);
        st = gw_clients_reserve(b->clients, key, 0, &call->budget, &v);
    }
    if (st == POL_BUDGET_HARD) {
        gw_api_error_set(e, 429, "insufficient_quota", "budget_exceeded", NULL,
                         "The %s budget would be exceeded by this request (worst case $%.6f); it resets at the "
                         "start of the next UTC day or month.", v.limit, (double)worst / 1e6);
        return -1;
    }
    if (v.remaining_micro >= 0) {
        char left[32];
        pol_usd_format(v.remaining_micro, left, sizeof(left));
        gw_request_add_header(&call->r, "X-Junction-Budget-Remaining", left);
        call->budget_known = true;
        call->budget_remaining_micro = v.remaining_micro;
    }
    if (st == POL_BUDGET_SOFT)
        gw_log(GW_LOG_WARN, "request %s: the %s budget is past its soft limit (%.6f USD left)", call->r.id, v.limit,
               (double)v.remaining_micro / 1e6);
    return 0;
}

/* POST /v1/route: the classification and the decision, nothing generated. */
static void answer_route(gw_call *call, cJSON *explain)
{
    const gw_decision *d = &call->decision;
    cJSON *root = gw_classification_json(call->cls);
    cJSON_AddItemToObject(root, "explain", explain ? explain : cJSON_CreateArray());
    cJSON_AddStringToObject(root, "route", d->route == GW_ROUTE_LOCAL ? "local" : d->upstream->name);
    cJSON_AddStringToObject(root, "zone", d->zone);
    cJSON_AddStringToObject(root, "rule", d->rule);
    cJSON_AddStringToObject(root, "reason", d->reason);
    gw_reply_cjson(&call->r, 200, root);
    gw_call_end(call, 200);
}

/* The request is classified: decide where it goes, and answer. Loop thread. */
static void decide_and_answer(gw_call *call)
{
    gw_api_error e;
    cJSON *explain = call->api == GW_API_ROUTE ? cJSON_CreateArray() : NULL;
    if (gw_decide(call, explain, &e) != 0 || allow_route(call, &e) != 0 ||
        (call->api != GW_API_ROUTE && reserve_budget(call, &e) != 0)) {
        cJSON_Delete(explain);
        call_fail(call, &e);
        return;
    }
    const gw_decision *d = &call->decision;
    const gw_classification *c = call->cls;
    size_t n = strlen(call->decision.reason);
    if (!d->by_policy) /* the policy's reason states the scores it used */
        snprintf(call->decision.reason + n, sizeof(call->decision.reason) - n, "; difficulty %.2f, sensitivity %.2f%s%s%s",
             c->difficulty.probability, c->sensitivity.probability, c->kinds[0] ? " (" : "", c->kinds,
             c->kinds[0] ? ")" : "");
    gw_log(GW_LOG_DEBUG, "request %s: model=%s stream=%d route=%s zone=%s rule=%s reason=\"%s\" difficulty=%.3f "
           "sensitivity=%.3f detectors=%s model_features=%s%s%s (read, checked and classified in %.3f ms)",
           call->r.id, call->model, call->stream, d->route == GW_ROUTE_LOCAL ? "local" : d->upstream->name, d->zone,
           d->rule, d->reason, call->cls->difficulty.probability, call->cls->sensitivity.probability,
           call->cls->kinds[0] ? call->cls->kinds : "-", c->model_off[0] ? "off (" : "on",
           c->model_off[0] ? c->model_off : "", c->model_off[0] ? ")" : "",
           (double)(gw_now_ns() - call->r.start_ns) / 1e6);
    if (call->api == GW_API_ROUTE) {
        gw_call_release_parked(call);
        answer_route(call, explain);
        return;
    }
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
        gw_call_release_parked(call); /* the pass was only for the decision: its slot goes back now */
        gw_answer_upstream(call);
    }
}

/* ---- the local model's pass for the classifier ---- */

/* Why the heads score this request without the local model's features, or
 * NULL when the pass runs: only for what the policy routes ("auto") and
 * POST /v1/route, when a head reads them and an engine computes them, and
 * (classifier.model_features auto) when the engine has room now. */
static const char *model_features_off(const gw_call *call)
{
    const gw_backends *b = call->r.site->backends;
    const gw_classifier *c = b->classifier;
    if (!(c->uses & (CLS_USE_MODEL | CLS_USE_HIDDEN))) return "no head reads them";
    if (!b->local || !c->model_wanted) return "no local model is loaded";
    if (call->api != GW_API_ROUTE && strcmp(call->model, "auto")) return "the client named the model";
    if (!strcmp(c->mode, "off")) return "classifier.model_features is off";
    if (!strcmp(c->mode, "on")) return NULL;
    gw_local_stats ls;
    gw_local_get_stats(b->local, &ls);
    return ls.active < ls.slots || ls.queued < ls.queue_size ? NULL
                                                            : "the local engine had no room (classifier.model_features auto)";
}

/* Scored without the model's features: say why, and go on. */
static void without_model(gw_call *call, const char *why)
{
    snprintf(call->cls->model_off, sizeof(call->cls->model_off), "%s", why);
    decide_and_answer(call);
}

/* Loop thread: the engine's pass is done; the job is parked, holding the
 * prompt's cache (f NULL: it failed, and the job is over). */
static void features_ready(void *arg, const eng_features *f, const char *error)
{
    gw_call *call = arg;
    gw_api_error e;
    char why[256];
    gw_request_unwatch_close(&call->r);
    call->cls->model_ms = (double)(gw_now_ns() - call->model_start_ns) / 1e6;
    if (!f) {
        call->parked = NULL;
        gw_api_error_set(&e, 500, "server_error", "engine_error", NULL,
                         "The local engine failed scoring the prompt for the classifier: %s", error);
        call_fail(call, &e);
        return;
    }
    if (gw_classification_add_model(call->cls, call->r.site->backends->classifier, f, why, sizeof(why)) != 0) {
        gw_api_error_set(&e, 500, "server_error", "classifier_error", NULL,
                         "junction could not classify the request: %s", why);
        call_fail(call, &e);
        return;
    }
    gw_log(GW_LOG_DEBUG, "request %s: the local model scored %d prompt tokens (%s pass) in %.3f ms, queue wait included",
           call->r.id, f->n_tokens, f->layers_done < eng_model_get_info(gw_local_model(call->r.site->backends->local))->n_layer
           ? "layer-stopped" : "full", call->cls->model_ms);
    decide_and_answer(call);
}

/* The client left (or the drain timeout came) while the prompt was being
 * rendered or scored: end the call, and the pass with it. */
static void scoring_gone(void *arg)
{
    gw_call *call = arg;
    int status = 499;
    if (call->r.site->drain_cut) {
        gw_api_error e;
        gw_api_error_set(&e, 503, "server_error", "shutting_down", NULL,
                         "junction is shutting down and its drain timeout ended this request; retry.");
        call->server_cut = true;
        call->error_code = e.code;
        status = 503;
        gw_reply_error(&call->r, &e);
    } else {
        call->error_code = "client_closed";
        gw_request_release_orphan(call->r.req);
    }
    if (!call->parked) { /* a worker is still rendering: render_done ends the call */
        call->gone = true;
        return;
    }
    gw_local_cancel(call->parked);
    call->parked = NULL;
    gw_call_end(call, status);
}

/* Worker thread: the prompt as the local model reads it (gateway.h,
 * gw_prompt_render: the same tokens `junction calibrate` fits on). */
static void render_job(void *arg)
{
    gw_call *call = arg;
    const gw_backends *b = call->r.site->backends;
    const gw_local *l = b->local;
    const cJSON *messages = call->api == GW_API_TEXT ? NULL : cJSON_GetObjectItemCaseSensitive(call->body, "messages");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(call->body, "prompt");
    call->render_failed = gw_prompt_render(&call->prompt, gw_local_model(l), gw_local_llama2_chat(l), messages,
                                           messages ? NULL : prompt->valuestring, b->classifier->max_tokens) != 0;
}

/* Loop thread: queue the pass. */
static void render_done(void *arg)
{
    gw_call *call = arg;
    if (call->gone) {
        gw_call_end(call, call->server_cut ? 503 : 499);
        return;
    }
    gw_backends *b = call->r.site->backends;
    gw_api_error e;
    if (call->render_failed) {
        gw_request_unwatch_close(&call->r);
        gw_api_error_set(&e, 500, "server_error", "out_of_memory", NULL, "junction ran out of memory rendering the prompt");
        call_fail(call, &e);
        return;
    }
    if (call->prompt.n_scored > gw_local_n_ctx(b->local)) {
        gw_request_unwatch_close(&call->r);
        without_model(call, "the prompt is longer than the local context");
        return;
    }
    call->model_start_ns = gw_now_ns();
    call->parked = gw_local_score(b->local, call->prompt.scored, call->prompt.n_scored, &b->classifier->pass,
                                  features_ready, call);
    if (call->parked) return;
    gw_request_unwatch_close(&call->r);
    if (strcmp(b->classifier->mode, "on")) { /* auto: the room it saw is gone; score without */
        without_model(call, "the local engine had no room (classifier.model_features auto)");
        return;
    }
    gw_request_add_header(&call->r, "Retry-After", "1");
    gw_api_error_set(&e, 429, "rate_limit_error", "engine_busy", NULL,
                     "The local engine's queue is full (queue_size), and classifier.model_features is on: every "
                     "routed request is scored by it; retry shortly.");
    call_fail(call, &e);
}

/* The body is read and classified (detectors, words): rate-limit it, add
 * the local model's features when they apply, then decide. Loop thread. */
static void proceed(gw_call *call)
{
    gw_api_error e;
    if (call->read_failed) {
        call_fail(call, &call->read_error);
        return;
    }
    gw_clients *clients = call->r.site->backends->clients;
    const pol_key *key = call->key_id[0] ? &call->key : NULL;
    if (call->api != GW_API_ROUTE) {
        call->rate_tokens = estimate_tokens(call);
        if (gw_clients_rate(clients, &call->r, key, call->rate_tokens, &e) != 0) {
            call->rate_tokens = 0;
            call_fail(call, &e);
            return;
        }
    }
    const char *off = model_features_off(call);
    if (off) {
        without_model(call, off);
        return;
    }
    if (gw_pool_submit(call->r.site->pool, render_job, render_done, call) != 0) {
        gw_api_error_set(&e, 503, "server_error", "shutting_down", NULL, "junction is shutting down; retry elsewhere.");
        call_fail(call, &e);
        return;
    }
    gw_request_watch_close(&call->r, scoring_gone, call);
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
    gw_api_error e;
    bool anonymous;
    if (gw_clients_identify(r->site->backends->clients, &call->r, &call->key, &anonymous, &e) != 0) {
        call_fail(call, &e);
        return;
    }
    if (!anonymous) {
        snprintf(call->key_id, sizeof(call->key_id), "%s", call->key.id);
        snprintf(call->tenant, sizeof(call->tenant), "%s", call->key.tenant);
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    call->raw_len = evbuffer_get_length(in);
    long long max = r->site->cfg->max_body_bytes;
    if ((long long)call->raw_len > max) {
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
