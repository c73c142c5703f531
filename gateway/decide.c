/* decide.c: where a model request goes, and the zone guarantee's last gate.
 *
 * A client that names a model gets it (an upstream, or the local engine);
 * "auto" (or no model) asks the policy (policy/rules.c), fed with what the
 * gateway knows now: the classification, what the request needs, the local
 * queue, each upstream's health. Whatever chose the route, pol_zone_allows
 * runs once more right before any byte goes to an upstream
 * (answer_upstream.c), so sensitive data cannot leave for a forbidden zone
 * by any path: an explicit model, a fallback, a retry.
 */
#include "decide.h"
#include "accounting.h"
#include "local.h"
#include "sticky.h"

#include <stdlib.h>
#include <string.h>

/* ---- the policy, built from the configuration ---- */

/* A JSON array of strings from the config as a NULL-free list (heap; the
 * strings point into *json, which the caller keeps). */
static int string_list(const char *text, cJSON **json, const char ***out, int *n)
{
    *json = cJSON_Parse(text);
    int count = cJSON_GetArraySize(*json);
    *out = calloc((size_t)count + 1, sizeof(char *));
    if (!*out) return -1;
    *n = 0;
    for (const cJSON *e = *json ? (*json)->child : NULL; e; e = e->next)
        if (cJSON_IsString(e)) (*out)[(*n)++] = e->valuestring;
    return 0;
}

int gw_policy_from_config(pol_policy **out, const gw_config *cfg, char *err, size_t errlen)
{
    pol_upstream_def defs[GW_MAX_UPSTREAMS];
    int n_up = cfg->n_upstreams;
    for (int i = 0; i < n_up; i++) {
        const up_def *d = &cfg->upstreams[i];
        defs[i] = (pol_upstream_def){d->name, d->zone == UP_ZONE_PRIVATE ? "private" : "external"};
    }
    /* every kind the detectors can report: the built-in ones and the operator's */
    const char *kinds[CLS_KIND_COUNT + 256];
    int n_kinds = 0;
    for (int k = 0; k < CLS_CUSTOM; k++) kinds[n_kinds++] = cls_kind_name((cls_kind)k);
    cJSON *custom = cJSON_Parse(cfg->classifier.detectors);
    for (const cJSON *r = custom ? custom->child : NULL; r && n_kinds < (int)(sizeof(kinds) / sizeof(kinds[0])); r = r->next) {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(r, "kind");
        if (cJSON_IsString(kind)) kinds[n_kinds++] = kind->valuestring;
    }
    cJSON *zones_json = NULL, *pseudo_json = NULL, *rules = NULL;
    const char **zones = NULL, **pseudo = NULL;
    int n_zones = 0, n_pseudo = 0, rc = -1;
    if (string_list(cfg->routing.sensitive_zones, &zones_json, &zones, &n_zones) != 0 ||
        string_list(cfg->routing.pseudonymize_kinds, &pseudo_json, &pseudo, &n_pseudo) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (cfg->routing.rules[0]) rules = cJSON_Parse(cfg->routing.rules);
    pol_policy_env env = {defs, n_up, true, true, kinds, n_kinds, zones, n_zones, pseudo, n_pseudo,
                          cfg->routing.max_local_wait_s};
    char inner[512];
    rc = pol_policy_new(out, rules, &env, inner, sizeof(inner));
    /* the policy names the key itself ("routing.rules[2] \"x\": ...", "routing.sensitive_zones: ...") */
    if (rc != 0) snprintf(err, errlen, "%s%s", strncmp(inner, "routing.", 8) ? "routing: " : "", inner);
done:
    cJSON_Delete(rules);
    cJSON_Delete(custom);
    cJSON_Delete(zones_json);
    cJSON_Delete(pseudo_json);
    free(zones);
    free(pseudo);
    return rc;
}

/* ---- signals: what the policy sees of a request ---- */

/* What the request asks for that only some routes can give. */
static unsigned needs_of(const gw_call *call, const gw_backends *b, int64_t prompt_tokens)
{
    const cJSON *body = call->body;
    const char *why;
    const char *param = gw_local_unsupported(body, &why);
    unsigned needs = 0;
    if (param && (!strcmp(param, "tools") || !strcmp(param, "tool_choice") || !strcmp(param, "functions") ||
                  !strcmp(param, "function_call")))
        needs |= POL_NEED_TOOLS;
    if (param && !strcmp(param, "response_format")) needs |= POL_NEED_JSON;
    if (param && !strcmp(param, "messages")) needs |= POL_NEED_IMAGES;
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(body, "max_tokens");
    if (!cJSON_IsNumber(max)) max = cJSON_GetObjectItemCaseSensitive(body, "max_completion_tokens");
    int64_t want = prompt_tokens + (cJSON_IsNumber(max) ? (int64_t)max->valuedouble : 0);
    if (b->local && want >= gw_local_n_ctx(b->local)) needs |= POL_NEED_LONG_CONTEXT;
    return needs;
}

/* About 4 bytes a token: the prompt is not tokenized before the decision. */
static int64_t estimate_prompt_tokens(const gw_classification *c)
{
    size_t bytes = 0;
    for (int i = 0; i < c->n_msgs; i++) bytes += c->msgs[i].len;
    return (int64_t)(bytes / 4 + 1);
}

void gw_signals_fill(const gw_call *call, gw_signals *sig)
{
    const gw_backends *b = call->r.site->backends;
    const gw_classification *c = call->cls;
    pol_signals *s = &sig->s;
    memset(sig, 0, sizeof(*sig));
    s->has_difficulty = s->has_sensitivity = true;
    s->difficulty = c->difficulty.probability;
    s->sensitivity = c->sensitivity.probability;
    s->difficulty_threshold = gw_classifier_threshold(b->classifier, true);
    s->sensitivity_threshold = gw_classifier_threshold(b->classifier, false);
    s->forced = c->sensitivity.forced;
    for (int i = 0; i < c->findings.n; i++) s->forced |= cls_finding_forces(&c->findings.items[i]);
    s->kinds = c->kind_list;
    s->n_kinds = c->n_kinds;
    s->tenant = call->tenant[0] ? call->tenant : NULL;
    s->key_id = call->key_id[0] ? call->key_id : NULL;
    s->model = call->model;
    s->prompt_tokens = estimate_prompt_tokens(c);
    s->needs = needs_of(call, b, s->prompt_tokens);
    s->local_can = 0; /* the engine has no tools, JSON mode or images */
    s->local_loaded = b->local != NULL;
    s->local_priced = b->accounts->routes[0].price.input_per_mtok > 0 || b->accounts->routes[0].price.output_per_mtok > 0 ||
                      b->accounts->routes[0].price.engine_per_mms > 0;
    if (b->local) {
        gw_local_stats ls;
        gw_local_get_stats(b->local, &ls);
        s->local_queue = ls.queued;
        /* the queue ahead, served `slots` at a time, each about as long as the recent ones */
        s->local_wait_s = ls.slots > 0 ? (double)ls.queued / ls.slots * b->accounts->local_latency_ewma_s : 0;
    }
    int n_up = up_client_count(b->upstreams);
    for (int i = 0; i < n_up && i < GW_MAX_UPSTREAMS; i++) {
        const up_def *d = up_client_def(b->upstreams, i);
        up_health h;
        up_client_health(b->upstreams, i, &h);
        sig->routes[i] = (pol_route_state){d->name, !strcmp(h.breaker, "open"), h.in_flight, d->max_in_flight,
                                           d->price_input_per_mtok > 0 || d->price_output_per_mtok > 0};
        for (int x = 0; x < call->n_excluded; x++)
            if (!strcmp(call->excluded[x], d->name)) sig->routes[i].breaker_open = true; /* failed for this request */
    }
    s->routes = sig->routes;
    s->n_routes = n_up;
    s->budget_known = call->budget_known;
    s->budget_remaining_micro_usd = call->budget_remaining_micro;
}

/* ---- the decision ---- */

static void route_to(gw_call *call, const char *name, const char *rule, const char *reason)
{
    const gw_backends *b = call->r.site->backends;
    gw_decision *d = &call->decision;
    const up_def *up = strcmp(name, "local") ? up_client_find(b->upstreams, name) : NULL;
    d->route = up ? GW_ROUTE_UPSTREAM : GW_ROUTE_LOCAL;
    d->upstream = up;
    d->zone = !up ? "in-process" : up->zone == UP_ZONE_PRIVATE ? "private" : "external";
    snprintf(d->rule, sizeof(d->rule), "%s", rule);
    snprintf(d->reason, sizeof(d->reason), "%.*s", (int)sizeof(d->reason) - 1, reason);
}

/* A conversation that reached a higher tier stays there (sticky.c), unless
 * that route is down now or its zone is forbidden for this turn's data. */
static void stay_in_conversation(gw_call *call, const gw_signals *sig)
{
    const gw_backends *b = call->r.site->backends;
    if (!b->sticky) return;
    uint64_t lookup, store;
    gw_sticky_keys(&call->r, call->body, &lookup, &store);
    int tier;
    char route[64];
    gw_decision *d = &call->decision;
    if (gw_sticky_find(b->sticky, lookup, &tier, route, sizeof(route)) && tier > gw_sticky_tier(d->zone)) {
        const up_def *up = up_client_find(b->upstreams, route);
        bool healthy = false;
        for (int i = 0; up && i < sig->s.n_routes; i++)
            if (!strcmp(sig->routes[i].name, route))
                healthy = !sig->routes[i].breaker_open && sig->routes[i].in_flight < sig->routes[i].max_in_flight;
        gw_api_error ignored;
        const char *zone = up && up->zone == UP_ZONE_PRIVATE ? "private" : "external";
        if (healthy && gw_zone_allows(call, zone, &ignored)) {
            char reason[512];
            snprintf(reason, sizeof(reason), "sticky: the conversation reached %s earlier (the rules chose %s: %s)",
                     route, d->route == GW_ROUTE_LOCAL ? "local" : d->upstream->name, d->reason);
            route_to(call, route, "sticky", reason);
            d->by_policy = true;
        }
    }
    gw_sticky_store(b->sticky, lookup, store, gw_sticky_tier(d->zone),
                    d->route == GW_ROUTE_LOCAL ? "local" : d->upstream->name);
}

int gw_decide(gw_call *call, cJSON *explain, gw_api_error *e)
{
    const gw_backends *b = call->r.site->backends;
    const up_def *up = up_client_find(b->upstreams, call->model);
    bool auto_route = !strcmp(call->model, "auto");
    bool local_name = !strcmp(call->model, "local") || (b->local && !strcmp(call->model, gw_local_model_id(b->local)));
    call->decision.by_policy = false;
    if (up && call->api != GW_API_TEXT) {
        route_to(call, up->name, "explicit-model", "the client named this upstream");
        return 0;
    }
    if (local_name && b->local) {
        route_to(call, "local", "explicit-model", "the client named the local model");
        return 0;
    }
    if (local_name) {
        gw_api_error_set(e, 503, "server_error", "no_backend", NULL,
                         "No local model is loaded here: name an upstream in \"model\" (GET /v1/models lists "
                         "them), send \"auto\", or see docs/models.md.");
        return -1;
    }
    if (auto_route && !b->local && up_client_count(b->upstreams) == 0) {
        gw_api_error_set(e, 503, "server_error", "no_backend", NULL,
                         "No model can answer this request: junction has no local model and no upstream. "
                         "Start it with -m FILE (docs/models.md) or configure an upstream (docs/configuration.md).");
        return -1;
    }
    if (!auto_route) {
        gw_api_error_set(e, 404, "invalid_request_error", "model_not_found", "model",
                         up ? "The model '%.100s' is an upstream; POST /v1/completions is answered by the local "
                              "engine only: use POST /v1/chat/completions."
                            : "The model '%.100s' does not exist here. GET /v1/models lists the models junction "
                              "can route to, and \"auto\" lets junction choose.",
                         call->model);
        return -1;
    }
    gw_signals sig;
    gw_signals_fill(call, &sig);
    if (call->api == GW_API_TEXT) { /* the legacy API: the local engine only */
        for (int i = 0; i < sig.s.n_routes; i++) sig.routes[i].breaker_open = true;
    }
    pol_decision pd;
    char why[256];
    if (pol_decide(b->policy, &sig.s, &pd, explain, why, sizeof(why)) != 0) {
        gw_api_error_set(e, 500, "server_error", "policy_error", NULL, "The routing policy failed: %s", why);
        return -1;
    }
    if (pd.outcome == POL_BLOCKED) {
        gw_api_error_set(e, 403, "invalid_request_error", "sensitive_data_blocked", NULL,
                         "The request holds sensitive data (%s) that the policy keeps in its allowed zones, and "
                         "no route there can answer: %s", pd.kinds[0] ? pd.kinds : "by the sensitivity score",
                         pd.reason);
        snprintf(call->decision.rule, sizeof(call->decision.rule), "%s", pd.rule);
        return -1;
    }
    /* Only the local model is left and it lacks what the request needs (tools,
     * JSON mode, images, a longer context): it answers, and says precisely
     * which parameter it cannot honour, more use to a client than "no route". */
    if (pd.outcome == POL_UNAVAILABLE && b->local && sig.s.needs) {
        route_to(call, "local", pd.rule[0] ? pd.rule : "default", "no upstream can take it; the local engine says why not");
        return 0;
    }
    if (pd.outcome == POL_UNAVAILABLE) {
        gw_api_error_set(e, 503, "server_error", "no_route", NULL, "No route can answer this request now: %s",
                         pd.reason);
        snprintf(call->decision.rule, sizeof(call->decision.rule), "%s", pd.rule);
        return -1;
    }
    route_to(call, pd.route, pd.rule, pd.reason);
    call->decision.by_policy = true;
    call->decision.pseudonymize = pd.pseudonymize;
    stay_in_conversation(call, &sig);
    return 0;
}

bool gw_zone_allows(const gw_call *call, const char *zone, gw_api_error *e)
{
    gw_signals sig;
    gw_signals_fill(call, &sig);
    char why[256];
    if (pol_zone_allows(call->r.site->backends->policy, &sig.s, zone, call->pseudo != NULL, why, sizeof(why)))
        return true;
    gw_api_error_set(e, 403, "invalid_request_error", "sensitive_data_blocked", NULL,
                     "junction does not send this request to the %s zone: %s. Use a local or private route "
                     "(\"model\": \"auto\" chooses one), or remove the data.", zone, why);
    return false;
}
