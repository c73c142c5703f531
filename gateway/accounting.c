/* accounting.c: every request that reached a model handler, priced,
 * counted and written to the ledger, once.
 *
 * gw_call_end is the one place a call ends, so the row the ledger gets and
 * the counters /metrics shows are made here from the same numbers: the
 * metrics cannot drift from the rows. Money is integer micro-dollars from
 * the route's prices (policy/price.c); the counterfactual is what the
 * reference upstream would have charged for the same tokens. The counters
 * live on the loop thread; the ledger's writer thread does the SQL.
 */
#include "accounting.h"
#include "classify.h"
#include "pseudonymize.h"
#include "local.h"

#include <stdlib.h>
#include <string.h>

/* Prometheus histogram buckets for latency and time to first token, in seconds. */
static const double buckets_s[GW_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

const double *gw_metric_buckets(void) { return buckets_s; }

static void ledger_log(void *ctx, pol_log_level level, const char *msg)
{
    (void)ctx;
    static const gw_log_level to_gw[] = {[POL_LOG_ERROR] = GW_LOG_ERROR, [POL_LOG_WARN] = GW_LOG_WARN,
                                         [POL_LOG_INFO] = GW_LOG_INFO};
    gw_log(to_gw[level], "ledger: %s", msg);
}

int gw_accounts_new(gw_accounts **out, const gw_config *cfg, const up_client *ups, char *err, size_t errlen)
{
    int n_up = up_client_count(ups);
    gw_accounts *a = calloc(1, sizeof(*a));
    if (!a || !(a->routes = calloc((size_t)n_up + 2, sizeof(*a->routes)))) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* route 0: the local engine; 1..n: the upstreams; n+1: requests refused before any route */
    a->n_routes = n_up + 2;
    snprintf(a->routes[0].name, sizeof(a->routes[0].name), "local");
    snprintf(a->routes[a->n_routes - 1].name, sizeof(a->routes[0].name), "none");
    if (pol_price_from_usd(&a->routes[0].price, cfg->local.price_input_per_mtok, cfg->local.price_output_per_mtok,
                           cfg->local.price_per_engine_second, err, errlen) != 0)
        goto fail;
    const char *names[GW_MAX_UPSTREAMS];
    pol_price prices[GW_MAX_UPSTREAMS];
    bool external[GW_MAX_UPSTREAMS];
    for (int i = 0; i < n_up; i++) {
        const up_def *d = up_client_def(ups, i);
        gw_route_account *r = &a->routes[i + 1];
        snprintf(r->name, sizeof(r->name), "%s", d->name);
        if (pol_price_from_usd(&r->price, d->price_input_per_mtok, d->price_output_per_mtok, 0, err, errlen) != 0) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " (upstream '%s')", d->name);
            goto fail;
        }
        names[i] = d->name;
        prices[i] = r->price;
        external[i] = d->zone == UP_ZONE_EXTERNAL;
    }
    a->reference = -1;
    const char *configured = cfg->ledger.reference_upstream;
    char why[256];
    int ref = pol_price_reference(names, prices, external, n_up, configured, why, sizeof(why));
    if (ref < 0 && configured[0]) {
        snprintf(err, errlen, "ledger.reference_upstream: %s", why);
        goto fail;
    }
    if (ref >= 0) a->reference = ref + 1;

    char path[GW_PATH_MAX];
    if (gw_config_ledger_path(cfg, path, sizeof(path), err, errlen) != 0) goto fail;
    pol_ledger_config lc;
    pol_ledger_config_defaults(&lc);
    snprintf(lc.path, sizeof(lc.path), "%s", path[0] ? path : "off");
    snprintf(a->ledger_path, sizeof(a->ledger_path), "%s", path);
    lc.flush_ms = (int)cfg->ledger.flush_ms;
    lc.queue_bytes = (int)cfg->ledger.queue_bytes;
    lc.retention_days = (int)cfg->ledger.retention_days;
    lc.store_prompts = cfg->ledger.store_prompts;
    snprintf(lc.reference_upstream, sizeof(lc.reference_upstream), "%s", configured);
    lc.log = ledger_log;
    if (pol_ledger_open(&a->ledger, &lc, err, errlen) != 0) goto fail;
    *out = a;
    return 0;
fail:
    gw_accounts_free(a);
    return -1;
}

void gw_accounts_free(gw_accounts *a)
{
    if (!a) return;
    pol_ledger_free(a->ledger); /* commits what is queued: every answered request has its row */
    free(a->routes);
    free(a);
}

static int route_index(const gw_accounts *a, const gw_decision *d)
{
    if (d->route == GW_ROUTE_LOCAL) return 0;
    if (d->route == GW_ROUTE_UPSTREAM)
        for (int i = 1; i < a->n_routes - 1; i++)
            if (!strcmp(a->routes[i].name, d->upstream->name)) return i;
    return a->n_routes - 1;
}

static void observe(gw_histogram *h, double seconds)
{
    for (int i = 0; i < GW_N_BUCKETS; i++)
        if (seconds <= buckets_s[i]) h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

static void count_status(gw_route_account *r, int status)
{
    for (int i = 0; i < r->n_statuses; i++)
        if (r->statuses[i].status == status) {
            r->statuses[i].count++;
            return;
        }
    if (r->n_statuses < GW_MAX_STATUSES) r->statuses[r->n_statuses++] = (gw_status_count){status, 1};
}

static int64_t cost_of(const pol_price *p, const gw_call *call, int64_t engine_ms)
{
    int64_t micro = 0;
    char err[128];
    if (pol_cost_micro(p, call->prompt_tokens, call->completion_tokens, engine_ms, &micro, err, sizeof(err)) != 0)
        gw_log(GW_LOG_WARN, "request %s: cannot price it: %s", call->r.id, err);
    return micro;
}

/* The route's cost and the counterfactual for what the call used so far. */
static void price(const gw_accounts *a, const gw_call *call, int ri, int64_t latency_us, int64_t *cost,
                  int64_t *counterfactual)
{
    /* the local engine's time: the request's whole time in it, queue included */
    int64_t engine_ms = ri == 0 ? latency_us / 1000 : 0;
    *cost = cost_of(&a->routes[ri].price, call, engine_ms);
    *counterfactual = a->reference > 0 ? cost_of(&a->routes[a->reference].price, call, 0) : 0;
}

void gw_account_price(const gw_accounts *a, const gw_call *call, int64_t *cost, int64_t *counterfactual)
{
    price(a, call, route_index(a, &call->decision), (int64_t)(gw_now_ns() - call->r.start_ns) / 1000, cost,
          counterfactual);
}

void gw_account_call(gw_accounts *a, const gw_call *call, int status)
{
    uint64_t now = gw_now_ns();
    int64_t latency_us = (int64_t)(now - call->r.start_ns) / 1000;
    int64_t ttft_us = call->first_byte_ns ? (int64_t)(call->first_byte_ns - call->r.start_ns) / 1000 : -1;
    const gw_decision *d = &call->decision;
    int ri = route_index(a, d);
    gw_route_account *r = &a->routes[ri];
    int64_t cost, counterfactual;
    price(a, call, ri, latency_us, &cost, &counterfactual);

    count_status(r, status);
    if (ri == 0 && status == 200) /* the expected local wait reads this */
        a->local_latency_ewma_s = a->local_latency_ewma_s > 0 ? 0.8 * a->local_latency_ewma_s + 0.2 * (double)latency_us / 1e6
                                                              : (double)latency_us / 1e6;
    r->prompt_tokens += (uint64_t)call->prompt_tokens;
    r->completion_tokens += (uint64_t)call->completion_tokens;
    r->cost_micro += cost;
    r->counterfactual_micro += counterfactual;
    observe(&r->latency, (double)latency_us / 1e6);
    if (ttft_us >= 0) observe(&r->ttft, (double)ttft_us / 1e6);

    pol_ledger_row row;
    memset(&row, 0, sizeof(row));
    snprintf(row.request_id, sizeof(row.request_id), "%s", call->r.id);
    row.ts_ms = pol_now_ms() - latency_us / 1000;
    snprintf(row.model, sizeof(row.model), "%s", call->model);
    snprintf(row.tenant, sizeof(row.tenant), "%s", call->tenant);
    snprintf(row.key_id, sizeof(row.key_id), "%s", call->key_id);
    snprintf(row.route, sizeof(row.route), "%s", r->name);
    snprintf(row.zone, sizeof(row.zone), "%s", d->zone ? d->zone : "");
    snprintf(row.reason, sizeof(row.reason), "%s", d->reason);
    if (call->pseudo) { /* and how the placeholders came back: the model may mangle them */
        size_t n = strlen(row.reason);
        gw_pseudo_report(call->pseudo, row.reason + n, sizeof(row.reason) - n);
    }
    if (call->cls) snprintf(row.detectors, sizeof(row.detectors), "%s", call->cls->kinds);
    if (d->route == GW_ROUTE_UPSTREAM)
        snprintf(row.upstream_model, sizeof(row.upstream_model), "%s", d->upstream->model[0] ? d->upstream->model : call->model);
    row.prompt_tokens = call->prompt_tokens;
    row.completion_tokens = call->completion_tokens;
    row.cached_tokens = call->cached_tokens;
    row.tokens_estimated = call->usage_estimated;
    row.cost_micro_usd = cost;
    row.counterfactual_micro_usd = counterfactual;
    row.latency_us = latency_us;
    row.ttft_us = ttft_us;
    row.status = status;
    snprintf(row.error_code, sizeof(row.error_code), "%s", call->error_code ? call->error_code : "");
    row.streamed = call->stream;
    row.client_hung_up = status == 499;
    if (!pol_ledger_append(a->ledger, &row)) {
        a->rows_dropped_logged++;
        /* once, then every 1000th: a full queue means the disk is behind */
        if (a->rows_dropped_logged == 1 || a->rows_dropped_logged % 1000 == 0)
            gw_log(GW_LOG_WARN, "ledger: queue full, %llu row(s) dropped so far (the request itself was answered)",
                   (unsigned long long)a->rows_dropped_logged);
    }
}
