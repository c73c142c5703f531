/* admin.c: the operator's endpoints: /admin/spend, /admin/requests, /metrics.
 *
 * The admin reports read the ledger's SQLite file with their own read-only
 * connection, which takes milliseconds to seconds, so they run on a worker
 * thread (the loop never waits on SQL) and share one implementation with
 * `junction audit` (policy/ledger_report.c): the endpoint and the CLI
 * cannot disagree. /metrics is Prometheus text from the loop's counters
 * (accounting.c), the engine, the upstreams and the ledger's writer.
 */
#include "accounting.h"
#include "clients.h"
#include "local.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

/* ---- admin keys ---- */

#define ADMIN_KEYS_MAX 16

struct gw_admin_keys {
    char *keys[ADMIN_KEYS_MAX];
    int n;
};

int gw_admin_keys_new(gw_admin_keys **out, const char *env_name, char *err, size_t errlen)
{
    gw_admin_keys *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *value = env_name[0] ? getenv(env_name) : NULL;
    for (const char *p = value; p && *p && k->n < ADMIN_KEYS_MAX;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (len > 0 && !(k->keys[k->n++] = strndup(p, len))) {
            gw_admin_keys_free(k);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        p = comma ? comma + 1 : p + len;
    }
    *out = k;
    return 0;
}

void gw_admin_keys_free(gw_admin_keys *k)
{
    if (!k) return;
    for (int i = 0; i < k->n; i++) free(k->keys[i]);
    free(k);
}

/* Equal, in time that depends only on the lengths (no early exit on the
 * first wrong byte, which would let a caller guess a key byte by byte). */
static bool equal_constant_time(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < blen; i++) diff |= (unsigned char)(a[alen ? i % alen : 0] ^ b[i]);
    return alen > 0 && diff == 0;
}

/* The request carries one of the admin keys as "Authorization: Bearer KEY";
 * otherwise it is answered 401 here. */
static bool admin_allowed(gw_request *r)
{
    const gw_admin_keys *k = r->site->backends->admin;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    bool ok = false;
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        const char *given = auth + 7;
        size_t glen = strlen(given);
        for (int i = 0; i < k->n; i++) ok |= equal_constant_time(given, glen, k->keys[i], strlen(k->keys[i]));
    }
    bool asked_keys = !ok && auth && gw_clients_auth_on(r->site->backends->clients);
    if (asked_keys) { /* it adds WWW-Authenticate when it refuses */
        pol_key key;
        bool anonymous;
        gw_api_error ignored;
        ok = gw_clients_identify(r->site->backends->clients, r, &key, &anonymous, &ignored) == 0 && key.admin;
    }
    if (ok) return true;
    gw_api_error e;
    if (k->n == 0 && !gw_clients_auth_on(r->site->backends->clients))
        gw_api_error_set(&e, 401, "invalid_request_error", "admin_disabled", NULL,
                         "No admin key is configured: set the environment variable named by admin.keys_env "
                         "(default JUNCTION_ADMIN_KEYS) to one or more comma-separated keys, and restart.");
    else
        gw_api_error_set(&e, 401, "invalid_request_error", "invalid_api_key", NULL,
                         "This endpoint needs an admin key, sent as 'Authorization: Bearer KEY'.");
    if (!asked_keys) gw_request_add_header(r, "WWW-Authenticate", "Bearer");
    gw_reply_error(r, &e);
    return false;
}

/* ---- the reports, on a worker ---- */

typedef struct {
    gw_request r;
    bool spend;                  /* else the requests page */
    pol_spend_query spend_q;
    pol_requests_query rows_q;
    cJSON *result;
    char path[GW_PATH_MAX];
    char err[512];
    bool gone;                   /* the client hung up meanwhile */
} report_job;

static void report_work(void *arg)
{
    report_job *j = arg;
    pol_audit *a = NULL;
    if (pol_audit_open(&a, j->path, j->err, sizeof(j->err)) != 0) return;
    if (j->spend) pol_audit_spend(a, &j->spend_q, &j->result, j->err, sizeof(j->err));
    else pol_audit_requests(a, &j->rows_q, &j->result, j->err, sizeof(j->err));
    pol_audit_close(a);
}

static void report_gone(void *arg) { ((report_job *)arg)->gone = true; }

static void report_done(void *arg)
{
    report_job *j = arg;
    if (j->gone) {
        gw_request_log(&j->r, 499, 0);
        gw_request_release_orphan(j->r.req);
    } else {
        gw_request_unwatch_close(&j->r);
        if (j->result) {
            gw_reply_cjson(&j->r, 200, j->result);
            j->result = NULL;
        } else {
            gw_api_error e;
            gw_api_error_set(&e, 500, "server_error", "ledger_unavailable", NULL, "Cannot read the ledger: %s", j->err);
            gw_reply_error(&j->r, &e);
        }
    }
    cJSON_Delete(j->result);
    free(j);
}

static int bad_query(gw_request *r, const char *param, const char *why)
{
    gw_api_error e;
    gw_api_error_set(&e, 400, "invalid_request_error", "invalid_value", param, "Invalid '%s': %s", param, why);
    gw_reply_error(r, &e);
    return -1;
}

/* since/until/by and tenant/route/limit/cursor from the query string. */
static int read_query(gw_request *r, report_job *j)
{
    struct evkeyvalq q;
    q.tqh_first = NULL;
    q.tqh_last = &q.tqh_first;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (query && evhttp_parse_query_str(query, &q) != 0) return bad_query(r, "query", "not a URL query string");
    int64_t now = pol_now_ms();
    j->spend_q = (pol_spend_query){0, now, POL_BY_NONE};
    j->rows_q = (pol_requests_query){.since_ms = 0, .limit = 100};
    int rc = 0;
    char why[256];
    for (struct evkeyval *kv = q.tqh_first; kv && rc == 0; kv = kv->next.tqe_next) {
        const char *k = kv->key, *v = kv->value;
        if (!strcmp(k, "since") || !strcmp(k, "until")) {
            int64_t *at = !strcmp(k, "until") ? &j->spend_q.until_ms : &j->spend_q.since_ms;
            if (pol_time_parse(v, now, at, why, sizeof(why)) != 0) rc = bad_query(r, k, why);
            if (!strcmp(k, "since")) j->rows_q.since_ms = *at;
        } else if (!strcmp(k, "by")) {
            if (pol_group_by_parse(v, &j->spend_q.by, why, sizeof(why)) != 0) rc = bad_query(r, k, why);
        } else if (!strcmp(k, "tenant")) {
            snprintf(j->rows_q.tenant, sizeof(j->rows_q.tenant), "%s", v);
        } else if (!strcmp(k, "route")) {
            snprintf(j->rows_q.route, sizeof(j->rows_q.route), "%s", v);
        } else if (!strcmp(k, "cursor")) {
            snprintf(j->rows_q.cursor, sizeof(j->rows_q.cursor), "%s", v);
        } else if (!strcmp(k, "limit")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 1000) rc = bad_query(r, k, "a whole number from 1 to 1000");
            else j->rows_q.limit = (int)n;
        } else {
            rc = bad_query(r, k, "unknown parameter (since, until, by, tenant, route, limit, cursor)");
        }
    }
    evhttp_clear_headers(&q);
    return rc;
}

static void handle_report(gw_request *r, bool spend)
{
    if (!admin_allowed(r)) return;
    gw_accounts *a = r->site->backends->accounts;
    gw_api_error e;
    if (!a->ledger_path[0]) {
        gw_api_error_set(&e, 404, "invalid_request_error", "ledger_off", NULL,
                         "The ledger is off (ledger.path \"off\"): there is nothing to report.");
        gw_reply_error(r, &e);
        return;
    }
    report_job *j = calloc(1, sizeof(*j));
    if (!j) {
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    j->r = *r;
    j->spend = spend;
    snprintf(j->path, sizeof(j->path), "%s", a->ledger_path);
    if (read_query(r, j) != 0) {
        free(j);
        return;
    }
    if (gw_pool_submit(r->site->pool, report_work, report_done, j) != 0) {
        free(j);
        gw_api_error_set(&e, 503, "server_error", "shutting_down", NULL, "junction is shutting down.");
        gw_reply_error(r, &e);
        return;
    }
    gw_request_watch_close(&j->r, report_gone, j);
}

void gw_handle_admin_spend(gw_request *r) { handle_report(r, true); }
void gw_handle_admin_requests(gw_request *r) { handle_report(r, false); }

/* ---- /admin/budgets: keys and tenants with what they spent ---- */

typedef struct {
    gw_request r;
    char path[GW_PATH_MAX];
    pol_key *keys;
    pol_tenant *tenants;
    size_t n_keys, n_tenants;
    char err[512];
    bool failed, gone;
} budgets_job;

static void budgets_work(void *arg)
{
    budgets_job *j = arg;
    pol_keyadmin *a = NULL;
    j->failed = pol_keyadmin_open(&a, j->path, j->err, sizeof(j->err)) != 0 ||
                pol_key_list(a, &j->keys, &j->n_keys, j->err, sizeof(j->err)) != 0 ||
                pol_tenant_list(a, &j->tenants, &j->n_tenants, j->err, sizeof(j->err)) != 0;
    pol_keyadmin_close(a);
}

static void budgets_gone(void *arg) { ((budgets_job *)arg)->gone = true; }

/* usage in USD beside a budget's limits */
static void add_usage(cJSON *o, gw_clients *c, pol_budget_scope scope, const char *name)
{
    pol_budget_usage u;
    gw_clients_usage(c, scope, name, &u);
    cJSON_AddNumberToObject(o, "day_spent_usd", (double)u.day_spent / 1e6);
    cJSON_AddNumberToObject(o, "day_reserved_usd", (double)u.day_reserved / 1e6);
    cJSON_AddNumberToObject(o, "month_spent_usd", (double)u.month_spent / 1e6);
    cJSON_AddNumberToObject(o, "month_reserved_usd", (double)u.month_reserved / 1e6);
}

static void budgets_done(void *arg)
{
    budgets_job *j = arg;
    if (j->gone) {
        gw_request_log(&j->r, 499, 0);
        gw_request_release_orphan(j->r.req);
    } else if (j->failed) {
        gw_request_unwatch_close(&j->r);
        gw_api_error e;
        gw_api_error_set(&e, 500, "server_error", "ledger_unavailable", NULL, "Cannot read the keys: %s", j->err);
        gw_reply_error(&j->r, &e);
    } else {
        gw_request_unwatch_close(&j->r);
        gw_clients *c = j->r.site->backends->clients;
        const gw_config *cfg = j->r.site->cfg;
        cJSON *root = cJSON_CreateObject();
        cJSON *global = cJSON_AddObjectToObject(root, "global");
        cJSON_AddNumberToObject(global, "budget_daily_usd", cfg->budgets.global_daily_usd);
        cJSON_AddNumberToObject(global, "budget_monthly_usd", cfg->budgets.global_monthly_usd);
        add_usage(global, c, POL_SCOPE_GLOBAL, "");
        cJSON *tenants = cJSON_AddArrayToObject(root, "tenants");
        for (size_t i = 0; i < j->n_tenants; i++) {
            cJSON *t = pol_tenant_json(&j->tenants[i]);
            add_usage(t, c, POL_SCOPE_TENANT, j->tenants[i].name);
            cJSON_AddItemToArray(tenants, t);
        }
        cJSON *keys = cJSON_AddArrayToObject(root, "keys");
        for (size_t i = 0; i < j->n_keys; i++) {
            cJSON *k = pol_key_json(&j->keys[i]);
            add_usage(k, c, POL_SCOPE_KEY, j->keys[i].id);
            cJSON_AddItemToArray(keys, k);
        }
        gw_reply_cjson(&j->r, 200, root);
    }
    free(j->keys);
    free(j->tenants);
    free(j);
}

void gw_handle_admin_budgets(gw_request *r)
{
    if (!admin_allowed(r)) return;
    gw_accounts *a = r->site->backends->accounts;
    gw_api_error e;
    if (!a->ledger_path[0]) {
        gw_api_error_set(&e, 404, "invalid_request_error", "ledger_off", NULL,
                         "The ledger is off (ledger.path \"off\"): there are no keys or budgets.");
        gw_reply_error(r, &e);
        return;
    }
    budgets_job *j = calloc(1, sizeof(*j));
    if (!j) {
        gw_api_error_set(&e, 500, "server_error", "out_of_memory", NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    j->r = *r;
    snprintf(j->path, sizeof(j->path), "%s", a->ledger_path);
    if (gw_pool_submit(r->site->pool, budgets_work, budgets_done, j) != 0) {
        free(j);
        gw_api_error_set(&e, 503, "server_error", "shutting_down", NULL, "junction is shutting down.");
        gw_reply_error(r, &e);
        return;
    }
    gw_request_watch_close(&j->r, budgets_gone, j);
}

/* ---- /metrics: Prometheus text format ---- */

static void metric_head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct evbuffer *b, const char *name, const char *route, const gw_histogram *h)
{
    const double *le = gw_metric_buckets();
    for (int i = 0; i < GW_N_BUCKETS; i++)
        evbuffer_add_printf(b, "%s_bucket{route=\"%s\",le=\"%g\"} %llu\n", name, route, le[i],
                            (unsigned long long)h->counts[i]);
    evbuffer_add_printf(b, "%s_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name, route, (unsigned long long)h->count);
    evbuffer_add_printf(b, "%s_sum{route=\"%s\"} %.6f\n%s_count{route=\"%s\"} %llu\n", name, route, h->sum, name, route,
                        (unsigned long long)h->count);
}

void gw_handle_metrics(gw_request *r)
{
    const gw_backends *be = r->site->backends;
    const gw_accounts *a = be->accounts;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        gw_api_error e;
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    metric_head(b, "junction_requests_total", "counter", "Model requests that ended, by route and HTTP status.");
    for (int i = 0; i < a->n_routes; i++)
        for (int s = 0; s < a->routes[i].n_statuses; s++)
            evbuffer_add_printf(b, "junction_requests_total{route=\"%s\",status=\"%d\"} %llu\n", a->routes[i].name,
                                a->routes[i].statuses[s].status, (unsigned long long)a->routes[i].statuses[s].count);
    metric_head(b, "junction_tokens_total", "counter", "Tokens by route and direction (prompt or completion).");
    for (int i = 0; i < a->n_routes; i++)
        evbuffer_add_printf(b, "junction_tokens_total{route=\"%s\",direction=\"prompt\"} %llu\n"
                               "junction_tokens_total{route=\"%s\",direction=\"completion\"} %llu\n",
                            a->routes[i].name, (unsigned long long)a->routes[i].prompt_tokens, a->routes[i].name,
                            (unsigned long long)a->routes[i].completion_tokens);
    metric_head(b, "junction_cost_usd_total", "counter", "What the requests cost, from the routes' prices.");
    for (int i = 0; i < a->n_routes; i++)
        evbuffer_add_printf(b, "junction_cost_usd_total{route=\"%s\"} %.6f\n", a->routes[i].name,
                            (double)a->routes[i].cost_micro / 1e6);
    metric_head(b, "junction_counterfactual_usd_total", "counter",
                "What the reference upstream would have charged for the same tokens.");
    for (int i = 0; i < a->n_routes; i++)
        evbuffer_add_printf(b, "junction_counterfactual_usd_total{route=\"%s\"} %.6f\n", a->routes[i].name,
                            (double)a->routes[i].counterfactual_micro / 1e6);
    metric_head(b, "junction_request_duration_seconds", "histogram", "Arrival to last byte, by route.");
    for (int i = 0; i < a->n_routes; i++) histogram(b, "junction_request_duration_seconds", a->routes[i].name, &a->routes[i].latency);
    metric_head(b, "junction_time_to_first_token_seconds", "histogram", "Arrival to the answer's first byte, by route.");
    for (int i = 0; i < a->n_routes; i++) histogram(b, "junction_time_to_first_token_seconds", a->routes[i].name, &a->routes[i].ttft);
    if (be->local) {
        gw_local_stats ls;
        gw_local_get_stats(be->local, &ls);
        metric_head(b, "junction_local_queue_depth", "gauge", "Local requests waiting for a slot.");
        evbuffer_add_printf(b, "junction_local_queue_depth %d\n", ls.queued);
        metric_head(b, "junction_local_active_slots", "gauge", "Local requests being generated now.");
        evbuffer_add_printf(b, "junction_local_active_slots %d\n", ls.active);
        metric_head(b, "junction_local_slots", "gauge", "Local requests that can be generated together (parallel).");
        evbuffer_add_printf(b, "junction_local_slots %d\n", ls.slots);
        metric_head(b, "junction_engine_generated_tokens_total", "counter", "Tokens the local engine generated.");
        evbuffer_add_printf(b, "junction_engine_generated_tokens_total %llu\n", (unsigned long long)ls.generated_tokens);
        metric_head(b, "junction_engine_tokens_per_second", "gauge", "Tokens generated per second, over the last second.");
        evbuffer_add_printf(b, "junction_engine_tokens_per_second %.1f\n", ls.tokens_per_second);
    }
    int n_up = up_client_count(be->upstreams);
    if (n_up > 0) {
        metric_head(b, "junction_upstream_breaker_open", "gauge",
                    "1 while the upstream's circuit breaker is open, 0.5 half-open, 0 closed.");
        for (int i = 0; i < n_up; i++) {
            up_health h;
            up_client_health(be->upstreams, i, &h);
            double v = !strcmp(h.breaker, "open") ? 1 : !strcmp(h.breaker, "half-open") ? 0.5 : 0;
            evbuffer_add_printf(b, "junction_upstream_breaker_open{upstream=\"%s\"} %g\n", up_client_def(be->upstreams, i)->name, v);
        }
        metric_head(b, "junction_upstream_in_flight", "gauge", "Requests in flight to each upstream.");
        for (int i = 0; i < n_up; i++) {
            up_health h;
            up_client_health(be->upstreams, i, &h);
            evbuffer_add_printf(b, "junction_upstream_in_flight{upstream=\"%s\"} %d\n", up_client_def(be->upstreams, i)->name,
                                h.in_flight);
        }
        metric_head(b, "junction_upstream_errors_total", "counter", "Failed attempts per upstream (retries included).");
        for (int i = 0; i < n_up; i++) {
            up_health h;
            up_client_health(be->upstreams, i, &h);
            evbuffer_add_printf(b, "junction_upstream_errors_total{upstream=\"%s\"} %llu\n",
                                up_client_def(be->upstreams, i)->name, h.errors);
        }
    }
    pol_ledger_stats st;
    pol_ledger_get_stats(a->ledger, &st);
    metric_head(b, "junction_ledger_queue_depth", "gauge", "Ledger rows waiting for their commit.");
    evbuffer_add_printf(b, "junction_ledger_queue_depth %llu\n", (unsigned long long)st.pending);
    metric_head(b, "junction_ledger_rows_written_total", "counter", "Ledger rows committed.");
    evbuffer_add_printf(b, "junction_ledger_rows_written_total %llu\n", (unsigned long long)st.written);
    metric_head(b, "junction_ledger_rows_dropped_total", "counter", "Ledger rows lost: queue full, or unwritable at exit.");
    evbuffer_add_printf(b, "junction_ledger_rows_dropped_total %llu\n", (unsigned long long)st.dropped);
    metric_head(b, "junction_ledger_degraded", "gauge", "1 while the ledger cannot write.");
    evbuffer_add_printf(b, "junction_ledger_degraded %d\n", st.degraded ? 1 : 0);

    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_add_header(h, "X-Request-Id", r->id);
    size_t len = evbuffer_get_length(b);
    evhttp_send_reply(r->req, 200, "OK", b);
    evbuffer_free(b);
    gw_request_log(r, 200, len);
}
