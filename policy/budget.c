/* budget.c: spend limits per key, per tenant and in total, per UTC day and
 * calendar month, that concurrent requests cannot overshoot.
 *
 * The classic gateway bug is check-then-spend: many requests pass the check
 * while none has spent yet, and together they blow through the limit. Here
 * the check and the reservation of the request's worst case are one step,
 * and the real cost replaces the reservation when the request ends; so at
 * every moment spend + outstanding reservations stays within each limit
 * (as long as a real cost does not exceed its worst case). Everything runs
 * on the daemon's loop thread, so there are no locks: the accounts are a
 * sorted array, created as keys and tenants first spend, reset lazily when
 * their window rolls over. The ledger rebuilds the state at start.
 */
#include "ledger_store.h"
#include "policy.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS INT64_C(86400000)
#define USD_MAX_MICRO INT64_C(1000000000000000)   /* 10^9 USD */

typedef struct {
    pol_budget_scope scope;
    char name[64];
    int64_t day, month;             /* the windows the counters below belong to */
    int64_t day_spent, day_reserved, month_spent, month_reserved;
} account;

struct pol_budget {
    pol_budget_config cfg;
    account *accounts;              /* sorted by (scope, name) */
    size_t n, cap;
    uint64_t epoch;                 /* bumped by each rebuild */
};

/* ---- money as text ---- */

int pol_usd_parse(const char *text, int64_t *out_micro, char *err, size_t errlen)
{
    int64_t whole = 0, frac = 0;
    int frac_digits = 0;
    const char *p = text;
    bool any = false;
    for (; *p >= '0' && *p <= '9'; p++, any = true) {
        whole = whole * 10 + (*p - '0');
        if (whole > USD_MAX_MICRO / 1000000) break;
    }
    if (any && *p == '.') {
        for (p++; *p >= '0' && *p <= '9' && frac_digits < 7; p++, frac_digits++) frac = frac * 10 + (*p - '0');
    }
    if (!any || *p != '\0' || frac_digits > 6 || whole > USD_MAX_MICRO / 1000000 ||
        (p[-1] == '.')) {
        snprintf(err, errlen, "'%.40s' is not an amount in USD: write digits with at most 6 decimals "
                 "(5, 0.25, 1200.5), at most 1000000000", text);
        return -1;
    }
    for (int i = frac_digits; i < 6; i++) frac *= 10;
    *out_micro = whole * 1000000 + frac;
    if (*out_micro > USD_MAX_MICRO) {
        snprintf(err, errlen, "'%.40s' USD is too large: at most 1000000000", text);
        return -1;
    }
    return 0;
}

void pol_usd_format(int64_t micro, char *buf, size_t len)
{
    uint64_t mag = micro < 0 ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;
    snprintf(buf, len, "%s%llu.%06llu", micro < 0 ? "-" : "", (unsigned long long)(mag / 1000000),
             (unsigned long long)(mag % 1000000));
}

/* ---- windows ---- */

static int64_t day_of(int64_t ms)
{
    return ms >= 0 ? ms / DAY_MS : -((-ms + DAY_MS - 1) / DAY_MS);
}

/* Months since year 0 (UTC) and the first millisecond of that month. */
static int64_t month_of(int64_t ms, int64_t *start_ms)
{
    time_t secs = (time_t)(day_of(ms) * 86400);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (start_ms) {
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        *start_ms = (int64_t)timegm(&tm) * 1000;
    }
    return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* Move an account into the windows of (day, month); never backwards (a clock
 * stepped back keeps the current window). */
static void roll(account *a, int64_t day, int64_t month)
{
    if (day > a->day) {
        a->day = day;
        a->day_spent = a->day_reserved = 0;
    }
    if (month > a->month) {
        a->month = month;
        a->month_spent = a->month_reserved = 0;
    }
}

/* ---- accounts ---- */

static int compare(pol_budget_scope scope, const char *name, const account *a)
{
    if (scope != a->scope) return scope < a->scope ? -1 : 1;
    return strcmp(name, a->name);
}

/* Index of (scope, name), or where it would go (then *found = false). */
static size_t position(const pol_budget *b, pol_budget_scope scope, const char *name, bool *found)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare(scope, name, &b->accounts[mid]);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    *found = false;
    return lo;
}

static account *find(pol_budget *b, pol_budget_scope scope, const char *name)
{
    bool found;
    size_t i = position(b, scope, name, &found);
    return found ? &b->accounts[i] : NULL;
}

/* Find or create; NULL only when out of memory. Moves other accounts. */
static account *obtain(pol_budget *b, pol_budget_scope scope, const char *name, int64_t day, int64_t month)
{
    bool found;
    size_t i = position(b, scope, name, &found);
    if (!found) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 64;
            account *bigger = realloc(b->accounts, cap * sizeof(*bigger));
            if (!bigger) return NULL;
            b->accounts = bigger;
            b->cap = cap;
        }
        memmove(&b->accounts[i + 1], &b->accounts[i], (b->n - i) * sizeof(*b->accounts));
        b->n++;
        account *a = &b->accounts[i];
        memset(a, 0, sizeof(*a));
        a->scope = scope;
        snprintf(a->name, sizeof(a->name), "%s", name);
        a->day = day;
        a->month = month;
    }
    roll(&b->accounts[i], day, month);
    return &b->accounts[i];
}

void pol_budget_config_defaults(pol_budget_config *c)
{
    memset(c, 0, sizeof(*c));
    c->soft_fraction = 0.8;
}

int pol_budget_new(pol_budget **out, const pol_budget_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->global_daily_micro < 0 || cfg->global_monthly_micro < 0 ||
        !(cfg->soft_fraction > 0 && cfg->soft_fraction <= 1)) {
        snprintf(err, errlen, "budgets: global limits must be >= 0 (0 = none) and soft_fraction "
                 "in (0, 1] (default 0.8)");
        return -1;
    }
    pol_budget *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "budgets: out of memory");
        return -1;
    }
    b->cfg = *cfg;
    *out = b;
    return 0;
}

void pol_budget_free(pol_budget *b)
{
    if (!b) return;
    free(b->accounts);
    free(b);
}

/* Add cost to the global account and the row's tenant and key. */
static int add_spend(pol_budget *b, const pol_keydb_spend_row *r, bool today, int64_t day, int64_t month)
{
    struct {
        pol_budget_scope scope;
        const char *name;
    } who[] = {{POL_SCOPE_GLOBAL, ""}, {POL_SCOPE_TENANT, r->tenant}, {POL_SCOPE_KEY, r->key_id}};
    for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
        if (who[i].scope != POL_SCOPE_GLOBAL && !who[i].name[0]) continue;
        account *a = obtain(b, who[i].scope, who[i].name, day, month);
        if (!a) return -1;
        *(today ? &a->day_spent : &a->month_spent) += r->cost_micro;
    }
    return 0;
}

int pol_budget_rebuild(pol_budget *b, const char *ledger_path, int64_t now_ms, char *err, size_t errlen)
{
    int64_t day = day_of(now_ms), month_start;
    int64_t month = month_of(now_ms, &month_start);
    pol_keydb *db;
    if (pol_keydb_open(&db, ledger_path, false, err, errlen) != 0) return -1;
    b->n = 0;
    b->epoch++;
    int rc = 0;
    const int64_t since[] = {month_start, day * DAY_MS};
    for (int w = 0; w < 2 && rc == 0; w++) {
        pol_keydb_spend_row *rows;
        size_t n;
        if (pol_keydb_spend(db, since[w], &rows, &n, err, errlen) != 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++)
            if (add_spend(b, &rows[i], w == 1, day, month) != 0) {
                snprintf(err, errlen, "budgets: out of memory rebuilding from %s", ledger_path);
                rc = -1;
            }
        free(rows);
    }
    pol_keydb_close(db);
    if (rc != 0) b->n = 0;
    return rc;
}

/* One limit that applies to a request. */
typedef struct {
    size_t account;                 /* index */
    bool monthly;
    int64_t limit;
    char label[128];
} applicable;

int pol_budget_reserve(pol_budget *b, const pol_key *key, const pol_tenant *tenant,
                       int64_t worst_case_micro, int64_t now_ms, pol_budget_reservation *res,
                       pol_budget_verdict *v, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    memset(v, 0, sizeof(*v));
    v->remaining_micro = -1;
    if (worst_case_micro < 0) {
        snprintf(err, errlen, "budgets: a worst-case cost cannot be negative (%lld)", (long long)worst_case_micro);
        return -1;
    }
    int64_t day = day_of(now_ms), month = month_of(now_ms, NULL);
    const char *tenant_name = key ? key->tenant : tenant ? tenant->name : "";
    const char *key_id = key ? key->id : "";
    const struct {
        pol_budget_scope scope;
        const char *name;
        int64_t daily, monthly;
        const char *what;
    } who[] = {
        {POL_SCOPE_GLOBAL, "", b->cfg.global_daily_micro, b->cfg.global_monthly_micro, "global"},
        {POL_SCOPE_TENANT, tenant_name, tenant ? tenant->budget_daily_micro : 0,
         tenant ? tenant->budget_monthly_micro : 0, "tenant"},
        {POL_SCOPE_KEY, key_id, key ? key->budget_daily_micro : 0, key ? key->budget_monthly_micro : 0, "key"},
    };
    /* create every account first: creating moves the others */
    for (size_t i = 0; i < 3; i++)
        if ((i == 0 || who[i].name[0]) && !obtain(b, who[i].scope, who[i].name, day, month)) {
            snprintf(err, errlen, "budgets: out of memory");
            return -1;
        }
    applicable limits[6];
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) {
        if (i > 0 && !who[i].name[0]) continue;
        bool found;
        size_t at = position(b, who[i].scope, who[i].name, &found);
        for (int m = 0; m < 2; m++) {
            int64_t limit = m ? who[i].monthly : who[i].daily;
            if (limit <= 0) continue;
            applicable *l = &limits[n++];
            l->account = at;
            l->monthly = m;
            l->limit = limit;
            snprintf(l->label, sizeof(l->label), "%s%s%s %s", who[i].what, i ? " " : "", who[i].name,
                     m ? "monthly" : "daily");
        }
    }
    /* check all, then reserve in all: nothing is reserved unless every limit holds */
    const applicable *tightest = NULL, *exceeded = NULL;
    int64_t tightest_left = INT64_MAX, exceeded_left = INT64_MAX;
    bool soft = false;
    for (size_t i = 0; i < n; i++) {
        const account *a = &b->accounts[limits[i].account];
        int64_t used = limits[i].monthly ? a->month_spent + a->month_reserved : a->day_spent + a->day_reserved;
        int64_t left = limits[i].limit - used;
        if (worst_case_micro > 0 && worst_case_micro > left && left < exceeded_left) {
            exceeded = &limits[i];
            exceeded_left = left;
        }
        int64_t after = left - worst_case_micro;
        if (after < tightest_left) {
            tightest_left = after;
            tightest = &limits[i];
        }
        if ((double)(used + worst_case_micro) >= b->cfg.soft_fraction * (double)limits[i].limit) soft = true;
    }
    if (exceeded) {
        v->status = POL_BUDGET_HARD;
        v->remaining_micro = exceeded_left < 0 ? 0 : exceeded_left;
        snprintf(v->limit, sizeof(v->limit), "%s", exceeded->label);
        return 0;
    }
    for (size_t i = 0; i < 3; i++) {
        if (i > 0 && !who[i].name[0]) continue;
        account *a = find(b, who[i].scope, who[i].name);
        a->day_reserved += worst_case_micro;
        a->month_reserved += worst_case_micro;
    }
    snprintf(res->key_id, sizeof(res->key_id), "%s", key_id);
    snprintf(res->tenant, sizeof(res->tenant), "%s", tenant_name);
    res->amount_micro = worst_case_micro;
    res->day = day;
    res->month = month;
    res->epoch = b->epoch;
    res->open = true;
    v->status = soft && worst_case_micro > 0 ? POL_BUDGET_SOFT : POL_BUDGET_OK;
    if (tightest) {
        v->remaining_micro = tightest_left < 0 ? 0 : tightest_left;
        snprintf(v->limit, sizeof(v->limit), "%s", tightest->label);
    }
    return 0;
}

void pol_budget_settle(pol_budget *b, pol_budget_reservation *res, int64_t actual_micro, int64_t now_ms)
{
    if (!res->open) return;
    res->open = false;
    if (res->epoch != b->epoch) return;
    if (actual_micro < 0) actual_micro = 0;
    int64_t day = day_of(now_ms), month = month_of(now_ms, NULL);
    const struct {
        pol_budget_scope scope;
        const char *name;
    } who[] = {{POL_SCOPE_GLOBAL, ""}, {POL_SCOPE_TENANT, res->tenant}, {POL_SCOPE_KEY, res->key_id}};
    for (size_t i = 0; i < 3; i++) {
        if (i > 0 && !who[i].name[0]) continue;
        account *a = find(b, who[i].scope, who[i].name);
        if (!a) continue;
        roll(a, day, month);
        if (a->day == res->day) {
            a->day_reserved -= res->amount_micro;
            a->day_spent += actual_micro;
        }
        if (a->month == res->month) {
            a->month_reserved -= res->amount_micro;
            a->month_spent += actual_micro;
        }
    }
}

void pol_budget_usage_of(pol_budget *b, pol_budget_scope scope, const char *name, int64_t now_ms,
                         pol_budget_usage *out)
{
    memset(out, 0, sizeof(*out));
    const account *a = find(b, scope, scope == POL_SCOPE_GLOBAL ? "" : name);
    if (!a) return;
    if (a->day == day_of(now_ms)) {
        out->day_spent = a->day_spent;
        out->day_reserved = a->day_reserved;
    }
    if (a->month == month_of(now_ms, NULL)) {
        out->month_spent = a->month_spent;
        out->month_reserved = a->month_reserved;
    }
}
