/* accounting.h: prices, counters and the ledger for each call. Internal.
 * Loop thread only, except the ledger itself (its own writer thread). */
#ifndef JUNCTION_ACCOUNTING_H
#define JUNCTION_ACCOUNTING_H

#include "internal.h"
#include "policy.h"

#define GW_N_BUCKETS 14
#define GW_MAX_STATUSES 16

typedef struct {
    uint64_t counts[GW_N_BUCKETS]; /* cumulative: observations <= each bucket's bound */
    uint64_t count;
    double sum;
} gw_histogram;

typedef struct {
    int status;
    uint64_t count;
} gw_status_count;

/* One route's price and what went through it since start. */
typedef struct {
    char name[64];
    pol_price price;
    gw_status_count statuses[GW_MAX_STATUSES];
    int n_statuses;
    uint64_t prompt_tokens, completion_tokens;
    int64_t cost_micro, counterfactual_micro;
    gw_histogram latency, ttft;
} gw_route_account;

struct gw_accounts {
    gw_route_account *routes;     /* [0] local, [1..n] upstreams in config order, [n+1] "none" */
    int n_routes;
    int reference;                /* the counterfactual's route index, -1 = none */
    pol_ledger *ledger;           /* NULL with ledger.path "off" */
    char ledger_path[GW_PATH_MAX];
    uint64_t rows_dropped_logged;
    double local_latency_ewma_s;  /* recent local answers' time, for the expected queue wait */
};

int gw_accounts_new(gw_accounts **out, const gw_config *cfg, const up_client *ups, char *err, size_t errlen);
void gw_accounts_free(gw_accounts *a);   /* commits the ledger's queue */
/* What the call has cost so far, and what the reference upstream would have
 * charged for the same tokens (micro-dollars). */
void gw_account_price(const gw_accounts *a, const gw_call *call, int64_t *cost, int64_t *counterfactual);
/* Price and record a call that ended with `status`. */
void gw_account_call(gw_accounts *a, const gw_call *call, int status);
/* The histograms' upper bounds, in seconds (GW_N_BUCKETS of them). */
const double *gw_metric_buckets(void);

#endif
