/* test_budget.c: budgets and rate limits against a model computed here.
 *
 * Budgets: a request is refused exactly when its worst case would cross a
 * limit (key, tenant or global, daily or monthly), nothing is reserved then,
 * the soft warning comes at its fraction, free routes always pass, settling
 * replaces the reservation, windows roll over at midnight UTC and on the
 * first of the month, the state rebuilds from a real ledger file, and 64
 * requests reserving and settling in random orders never take spend plus
 * reservations past a limit. Rate limits: token buckets refuse with the
 * right Retry-After, refill, give tokens back, take both or neither. Plus
 * USD text both ways. */
#include "policy.h"
#include "testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define DAY_MS INT64_C(86400000)
#define T0 INT64_C(1773576000000)   /* 2026-03-15T12:00:00Z */
#define MAR1 INT64_C(1772323200000) /* 2026-03-01T00:00:00Z */

static pol_budget *budget(int64_t global_daily, int64_t global_monthly, double soft)
{
    char err[256];
    pol_budget_config c;
    pol_budget_config_defaults(&c);
    assert_true(c.soft_fraction == 0.8);
    c.global_daily_micro = global_daily;
    c.global_monthly_micro = global_monthly;
    c.soft_fraction = soft;
    pol_budget *b;
    if (pol_budget_new(&b, &c, err, sizeof(err)) != 0) fail_msg("%s", err);
    return b;
}

static pol_key key_of(const char *id, const char *tenant, int64_t daily, int64_t monthly)
{
    pol_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    k.budget_daily_micro = daily;
    k.budget_monthly_micro = monthly;
    return k;
}

static pol_budget_status reserve(pol_budget *b, const pol_key *k, const pol_tenant *t, int64_t amount,
                                 int64_t now, pol_budget_reservation *r, pol_budget_verdict *v)
{
    char err[256];
    pol_budget_reservation unused;
    pol_budget_verdict vv;
    if (pol_budget_reserve(b, k, t, amount, now, r ? r : &unused, v ? v : &vv, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return (v ? v : &vv)->status;
}

static pol_budget_usage usage(pol_budget *b, pol_budget_scope scope, const char *name, int64_t now)
{
    pol_budget_usage u;
    pol_budget_usage_of(b, scope, name, now, &u);
    return u;
}

/* ---- money text ---- */

static void test_usd_text(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t micro;                  /* -1: refused */
    } cases[] = {
        {"0", 0}, {"5", 5000000}, {"0.25", 250000}, {"1200.5", 1200500000}, {"0.000001", 1},
        {"1000000000", 1000000000000000}, {"007.1", 7100000},
        {"", -1}, {"-1", -1}, {".5", -1}, {"5.", -1}, {"1.0000001", -1}, {"1e3", -1}, {"1,5", -1},
        {"1000000000.000001", -1}, {"99999999999999999999", -1}, {" 5", -1}, {"5 ", -1}, {"abc", -1},
    };
    char err[256], buf[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = -7;
        int rc = pol_usd_parse(cases[i].text, &v, err, sizeof(err));
        if (cases[i].micro < 0) {
            if (rc != -1) fail_msg("'%s' accepted as %lld", cases[i].text, (long long)v);
            assert_non_null(strstr(err, "USD"));
        } else {
            if (rc != 0) fail_msg("'%s': %s", cases[i].text, err);
            assert_int_equal(v, cases[i].micro);
        }
    }
    static const struct {
        int64_t micro;
        const char *text;
    } out[] = {{0, "0.000000"}, {4250000, "4.250000"}, {-1, "-0.000001"}, {1, "0.000001"},
               {INT64_MIN, "-9223372036854.775808"}};
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        pol_usd_format(out[i].micro, buf, sizeof(buf));
        assert_string_equal(buf, out[i].text);
    }
}

static void test_config_checked(void **state)
{
    (void)state;
    char err[256];
    pol_budget *b;
    const pol_budget_config bad[] = {{-1, 0, 0.8}, {0, -1, 0.8}, {0, 0, 0}, {0, 0, 1.5}, {0, 0, -0.1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pol_budget_new(&b, &bad[i], err, sizeof(err)), -1);
        assert_non_null(strstr(err, "soft_fraction"));
    }
    b = budget(0, 0, 0.8);
    pol_budget_reservation r;
    pol_budget_verdict v;
    assert_int_equal(pol_budget_reserve(b, NULL, NULL, -1, T0, &r, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "negative"));
    pol_budget_free(b);
}

/* ---- budgets ---- */

static void test_refused_exactly_when_crossed(void **state)
{
    (void)state;
    pol_budget *b = budget(1000, 0, 0.8);
    pol_budget_reservation r1, r2, r3;
    pol_budget_verdict v;
    assert_int_equal(reserve(b, NULL, NULL, 600, T0, &r1, &v), POL_BUDGET_OK);
    assert_int_equal(v.remaining_micro, 400);
    assert_string_equal(v.limit, "global daily");
    assert_int_equal(reserve(b, NULL, NULL, 400, T0, &r2, &v), POL_BUDGET_SOFT);   /* exactly the limit */
    assert_int_equal(v.remaining_micro, 0);
    assert_int_equal(reserve(b, NULL, NULL, 1, T0, &r3, &v), POL_BUDGET_HARD);
    assert_false(r3.open);
    assert_int_equal(v.remaining_micro, 0);
    assert_string_equal(v.limit, "global daily");
    pol_budget_usage u = usage(b, POL_SCOPE_GLOBAL, "", T0);
    assert_int_equal(u.day_reserved, 1000);   /* the refused request reserved nothing */
    assert_int_equal(u.day_spent, 0);
    /* settling to less frees the difference */
    pol_budget_settle(b, &r1, 450, T0);
    u = usage(b, POL_SCOPE_GLOBAL, "", T0);
    assert_int_equal(u.day_reserved, 400);
    assert_int_equal(u.day_spent, 450);
    assert_int_equal(u.month_spent, 450);
    assert_int_equal(reserve(b, NULL, NULL, 151, T0, NULL, &v), POL_BUDGET_HARD);
    assert_int_equal(v.remaining_micro, 150);
    assert_int_equal(reserve(b, NULL, NULL, 150, T0, NULL, &v), POL_BUDGET_SOFT);
    /* settling twice counts once */
    pol_budget_settle(b, &r1, 450, T0);
    assert_int_equal(usage(b, POL_SCOPE_GLOBAL, "", T0).day_spent, 450);
    pol_budget_free(b);
}

static void test_each_limit_decides(void **state)
{
    (void)state;
    /* key daily 100, key monthly 150, tenant daily 300, tenant monthly 390, global daily 500 */
    pol_budget *b = budget(500, 0, 1.0);
    pol_key k = key_of("key_a", "acme", 100, 150), other = key_of("key_b", "acme", 0, 0);
    pol_tenant t;
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "acme");
    t.budget_daily_micro = 300;
    t.budget_monthly_micro = 390;
    pol_budget_verdict v;
    pol_budget_reservation r;
    assert_int_equal(reserve(b, &k, &t, 101, T0, NULL, &v), POL_BUDGET_HARD);
    assert_string_equal(v.limit, "key key_a daily");
    assert_int_equal(reserve(b, &k, &t, 100, T0, &r, &v), POL_BUDGET_SOFT);
    pol_budget_settle(b, &r, 100, T0);
    /* next day: the key's daily budget is fresh, its monthly one is not */
    assert_int_equal(reserve(b, &k, &t, 51, T0 + DAY_MS, NULL, &v), POL_BUDGET_HARD);
    assert_string_equal(v.limit, "key key_a monthly");
    assert_int_equal(reserve(b, &k, &t, 50, T0 + DAY_MS, NULL, &v), POL_BUDGET_SOFT);
    /* the tenant's other key meets the tenant's limits: day 2 has 50 reserved (250 left of
       the daily 300), the month 150 (240 left of 390); over both, the tighter one is named */
    assert_int_equal(reserve(b, &other, &t, 251, T0 + DAY_MS, NULL, &v), POL_BUDGET_HARD);
    assert_string_equal(v.limit, "tenant acme monthly");
    assert_int_equal(v.remaining_micro, 240);
    assert_int_equal(reserve(b, &other, &t, 241, T0 + DAY_MS, NULL, &v), POL_BUDGET_HARD);
    assert_string_equal(v.limit, "tenant acme monthly");
    assert_int_equal(reserve(b, &other, &t, 240, T0 + DAY_MS, NULL, &v), POL_BUDGET_SOFT);
    assert_string_equal(v.limit, "tenant acme monthly");
    assert_int_equal(v.remaining_micro, 0);
    /* a keyless request meets the global limit: 290 of 500 used on day 2 */
    assert_int_equal(reserve(b, NULL, NULL, 211, T0 + DAY_MS, NULL, &v), POL_BUDGET_HARD);
    assert_string_equal(v.limit, "global daily");
    assert_int_equal(reserve(b, NULL, NULL, 210, T0 + DAY_MS, NULL, &v), POL_BUDGET_SOFT);
    /* no limit applies to an unlimited key of an unknown tenant with no global limit */
    pol_budget *free_b = budget(0, 0, 0.8);
    assert_int_equal(reserve(free_b, &other, NULL, 1000000, T0, NULL, &v), POL_BUDGET_OK);
    assert_int_equal(v.remaining_micro, -1);
    assert_string_equal(v.limit, "");
    assert_int_equal(usage(free_b, POL_SCOPE_TENANT, "acme", T0).day_reserved, 1000000);
    pol_budget_free(free_b);
    pol_budget_free(b);
}

static void test_soft_fraction(void **state)
{
    (void)state;
    pol_budget *b = budget(0, 1000, 0.8);
    pol_budget_verdict v;
    assert_int_equal(reserve(b, NULL, NULL, 799, T0, NULL, &v), POL_BUDGET_OK);
    assert_int_equal(reserve(b, NULL, NULL, 1, T0, NULL, &v), POL_BUDGET_SOFT);
    assert_string_equal(v.limit, "global monthly");
    assert_int_equal(v.remaining_micro, 200);
    pol_budget_free(b);
}

static void test_free_route_never_blocked(void **state)
{
    (void)state;
    pol_budget *b = budget(100, 0, 0.8);
    pol_budget_reservation r, free_r;
    pol_budget_verdict v;
    assert_int_equal(reserve(b, NULL, NULL, 100, T0, &r, &v), POL_BUDGET_SOFT);
    pol_budget_settle(b, &r, 130, T0);   /* the real cost came out higher than estimated */
    assert_int_equal(reserve(b, NULL, NULL, 1, T0, NULL, &v), POL_BUDGET_HARD);
    assert_int_equal(v.remaining_micro, 0);
    assert_int_equal(reserve(b, NULL, NULL, 0, T0, &free_r, &v), POL_BUDGET_OK);
    assert_true(free_r.open);
    pol_budget_settle(b, &free_r, 0, T0);
    assert_int_equal(usage(b, POL_SCOPE_GLOBAL, "", T0).day_spent, 130);
    pol_budget_free(b);
}

static void test_windows_roll_over(void **state)
{
    (void)state;
    pol_budget *b = budget(1000, 1500, 1.0);
    const int64_t last_ms_of_march = INT64_C(1775001599999);   /* 2026-03-31T23:59:59.999Z */
    pol_budget_reservation r;
    pol_budget_verdict v;
    assert_int_equal(reserve(b, NULL, NULL, 1000, last_ms_of_march - DAY_MS, &r, &v), POL_BUDGET_SOFT);
    pol_budget_settle(b, &r, 1000, last_ms_of_march - DAY_MS);
    /* the 31st: a fresh day, but 500 left in March */
    assert_int_equal(reserve(b, NULL, NULL, 501, last_ms_of_march, NULL, &v), POL_BUDGET_HARD);
    assert_string_equal(v.limit, "global monthly");
    assert_int_equal(reserve(b, NULL, NULL, 500, last_ms_of_march, &r, &v), POL_BUDGET_SOFT);
    /* settled one millisecond later, in April: March's windows are past */
    pol_budget_settle(b, &r, 400, last_ms_of_march + 1);
    pol_budget_usage u = usage(b, POL_SCOPE_GLOBAL, "", last_ms_of_march + 1);
    assert_int_equal(u.day_spent + u.day_reserved + u.month_spent + u.month_reserved, 0);
    assert_int_equal(reserve(b, NULL, NULL, 1000, last_ms_of_march + 1, NULL, &v), POL_BUDGET_SOFT);
    /* reserved before midnight, settled after, within the month: the day's share is past */
    pol_budget *c = budget(0, 0, 0.8);
    pol_key k = key_of("key_a", "acme", 0, 0);
    assert_int_equal(reserve(c, &k, NULL, 70, T0 + DAY_MS / 2 - 1, &r, &v), POL_BUDGET_OK);
    pol_budget_settle(c, &r, 60, T0 + DAY_MS / 2);
    u = usage(c, POL_SCOPE_KEY, "key_a", T0 + DAY_MS / 2);
    assert_int_equal(u.day_spent, 0);
    assert_int_equal(u.day_reserved, 0);
    assert_int_equal(u.month_spent, 60);
    assert_int_equal(u.month_reserved, 0);
    pol_budget_free(c);
    pol_budget_free(b);
}

static void append(pol_ledger *l, int64_t ts, const char *key_id, const char *tenant, int64_t cost)
{
    pol_ledger_row r;
    memset(&r, 0, sizeof(r));
    snprintf(r.request_id, sizeof(r.request_id), "r%lld", (long long)ts);
    r.ts_ms = ts;
    snprintf(r.key_id, sizeof(r.key_id), "%s", key_id);
    snprintf(r.tenant, sizeof(r.tenant), "%s", tenant);
    snprintf(r.model, sizeof(r.model), "auto");
    snprintf(r.route, sizeof(r.route), "openai");
    snprintf(r.zone, sizeof(r.zone), "external");
    r.cost_micro_usd = cost;
    r.ttft_us = -1;
    r.status = 200;
    assert_true(pol_ledger_append(l, &r));
}

static void test_rebuild_from_ledger(void **state)
{
    (void)state;
    char path[128], err[512];
    scratch_path(path, sizeof(path), "rebuild.db");
    pol_ledger_config c;
    pol_ledger_config_defaults(&c);
    snprintf(c.path, sizeof(c.path), "%s", path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    const int64_t today = T0 - T0 % DAY_MS;
    append(l, today + 1, "key_a", "acme", 100);
    append(l, today + 5000, "key_a", "acme", 20);
    append(l, today + 6000, "key_b", "acme", 3);
    append(l, today + 7000, "", "", 4000);               /* no key (auth off) */
    append(l, today - 1, "key_a", "acme", 500);          /* yesterday, this month */
    append(l, MAR1, "key_b", "beta", 7);                 /* the month's first millisecond */
    append(l, MAR1 - 1, "key_a", "acme", 100000);        /* last month */
    append(l, T0 + 3600000, "key_a", "acme", 9);         /* an hour ahead: still today */
    assert_int_equal(pol_ledger_flush_wait(l, 10000, err, sizeof(err)), 0);
    pol_ledger_free(l);

    pol_budget *b = budget(0, 0, 0.8);
    pol_budget_reservation before;
    pol_budget_verdict v;
    pol_key a = key_of("key_a", "acme", 0, 0);
    assert_int_equal(reserve(b, &a, NULL, 1000, T0, &before, &v), POL_BUDGET_OK);
    if (pol_budget_rebuild(b, path, T0, err, sizeof(err)) != 0) fail_msg("%s", err);
    static const struct {
        pol_budget_scope scope;
        const char *name;
        int64_t day, month;
    } expect[] = {
        {POL_SCOPE_GLOBAL, "", 100 + 20 + 3 + 4000 + 9, 100 + 20 + 3 + 4000 + 500 + 7 + 9},
        {POL_SCOPE_TENANT, "acme", 100 + 20 + 3 + 9, 100 + 20 + 3 + 500 + 9},
        {POL_SCOPE_TENANT, "beta", 0, 7},
        {POL_SCOPE_KEY, "key_a", 100 + 20 + 9, 100 + 20 + 500 + 9},
        {POL_SCOPE_KEY, "key_b", 3, 3 + 7},
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        pol_budget_usage u = usage(b, expect[i].scope, expect[i].name, T0);
        assert_int_equal(u.day_spent, expect[i].day);
        assert_int_equal(u.month_spent, expect[i].month);
        assert_int_equal(u.day_reserved + u.month_reserved, 0);
    }
    /* a reservation from before the rebuild settles to nothing */
    pol_budget_settle(b, &before, 1000, T0);
    assert_int_equal(usage(b, POL_SCOPE_KEY, "key_a", T0).day_spent, 129);
    /* and the limits see the rebuilt spend */
    pol_key limited = key_of("key_a", "acme", 130, 0);
    assert_int_equal(reserve(b, &limited, NULL, 2, T0, NULL, &v), POL_BUDGET_HARD);
    assert_int_equal(reserve(b, &limited, NULL, 1, T0, NULL, &v), POL_BUDGET_SOFT);
    assert_int_equal(pol_budget_rebuild(b, "/nonexistent/ledger.db", T0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/ledger.db"));
    pol_budget_free(b);
}

/* 64 requests in flight, reserving and settling in random interleavings
 * against a key, a tenant and a global limit: after every step spend +
 * reservations stay within each limit, the verdict is what the model here
 * predicts, and the final spend is the sum of what was settled. */
static void test_concurrent_never_overshoot(void **state)
{
    (void)state;
    enum { INFLIGHT = 64, ROUNDS = 200 };
    const int64_t key_daily = 50000, tenant_daily = 80000, global_daily = 120000;
    srand(12345);
    for (int round = 0; round < ROUNDS; round++) {
        pol_budget *b = budget(global_daily, 0, 0.8);
        pol_key keys[2] = {key_of("key_a", "acme", key_daily, 0), key_of("key_b", "acme", 0, 0)};
        pol_tenant t;
        memset(&t, 0, sizeof(t));
        snprintf(t.name, sizeof(t.name), "acme");
        t.budget_daily_micro = tenant_daily;
        struct {
            pol_budget_reservation r;
            int key;                /* 0, 1, or 2 = none */
            int64_t worst;
        } req[INFLIGHT];
        int64_t used[3] = {0};      /* model: key_a, tenant, global (spent + reserved) */
        int64_t spent_global = 0;
        int pending[INFLIGHT], n_pending = 0;
        for (int i = 0; i < INFLIGHT; i++) {
            req[i].key = rand() % 3;
            req[i].worst = rand() % 5 == 0 ? 0 : 1 + rand() % 9000;
            const pol_key *k = req[i].key < 2 ? &keys[req[i].key] : NULL;
            bool model_ok = req[i].worst == 0 ||
                ((req[i].key != 0 || used[0] + req[i].worst <= key_daily) &&
                 (req[i].key == 2 || used[1] + req[i].worst <= tenant_daily) &&
                 used[2] + req[i].worst <= global_daily);
            pol_budget_verdict v;
            pol_budget_status st = reserve(b, k, req[i].key < 2 ? &t : NULL, req[i].worst, T0, &req[i].r, &v);
            assert_int_equal(st != POL_BUDGET_HARD, model_ok);
            if (model_ok) {
                if (req[i].key == 0) used[0] += req[i].worst;
                if (req[i].key < 2) used[1] += req[i].worst;
                used[2] += req[i].worst;
                pending[n_pending++] = i;
            }
            /* settle some in-flight request at random, for at most its worst case */
            while (n_pending > 0 && rand() % 3 == 0) {
                int at = rand() % n_pending, j = pending[at];
                pending[at] = pending[--n_pending];
                int64_t actual = req[j].worst ? rand() % (req[j].worst + 1) : 0;
                pol_budget_settle(b, &req[j].r, actual, T0);
                int64_t freed = req[j].worst - actual;
                if (req[j].key == 0) used[0] -= freed;
                if (req[j].key < 2) used[1] -= freed;
                used[2] -= freed;
                spent_global += actual;
            }
            pol_budget_usage ku = usage(b, POL_SCOPE_KEY, "key_a", T0);
            pol_budget_usage tu = usage(b, POL_SCOPE_TENANT, "acme", T0);
            pol_budget_usage gu = usage(b, POL_SCOPE_GLOBAL, "", T0);
            assert_true(ku.day_spent + ku.day_reserved <= key_daily);
            assert_true(tu.day_spent + tu.day_reserved <= tenant_daily);
            assert_true(gu.day_spent + gu.day_reserved <= global_daily);
            assert_int_equal(gu.day_spent + gu.day_reserved, used[2]);
            assert_int_equal(ku.day_spent + ku.day_reserved, used[0]);
        }
        while (n_pending > 0) {
            int j = pending[--n_pending];
            pol_budget_settle(b, &req[j].r, req[j].worst, T0);
            spent_global += req[j].worst;
        }
        pol_budget_usage gu = usage(b, POL_SCOPE_GLOBAL, "", T0);
        assert_int_equal(gu.day_reserved, 0);
        assert_int_equal(gu.day_spent, spent_global);
        pol_budget_free(b);
    }
}

/* ---- rate limits ---- */

static pol_rate *rate(void)
{
    char err[256];
    pol_rate *r;
    assert_int_equal(pol_rate_new(&r, err, sizeof(err)), 0);
    return r;
}

static pol_rate_verdict take(pol_rate *r, const pol_key *k, int64_t tokens, int64_t now)
{
    char err[256];
    pol_rate_verdict v;
    if (pol_rate_take(r, k, tokens, now, &v, err, sizeof(err)) != 0) fail_msg("%s", err);
    return v;
}

static void test_requests_per_minute(void **state)
{
    (void)state;
    pol_rate *r = rate();
    pol_key k = key_of("key_a", "acme", 0, 0);
    k.rpm = 3;
    for (int i = 0; i < 3; i++) {
        pol_rate_verdict v = take(r, &k, 10, T0);
        assert_true(v.allowed);
        assert_int_equal(v.limit_requests, 3);
        assert_int_equal(v.remaining_requests, 2 - i);
        assert_int_equal(v.reset_requests_ms, 20000 * (i + 1));
        assert_int_equal(v.limit_tokens, -1);
    }
    pol_rate_verdict v = take(r, &k, 10, T0);
    assert_false(v.allowed);
    assert_false(v.too_large);
    assert_int_equal(v.retry_after_s, 20);   /* one request refills in 60/3 s */
    assert_int_equal(v.remaining_requests, 0);
    v = take(r, &k, 10, T0 + 19999);
    assert_false(v.allowed);
    assert_int_equal(v.retry_after_s, 1);
    v = take(r, &k, 10, T0 + 20000);
    assert_true(v.allowed);
    assert_int_equal(v.remaining_requests, 0);
    /* a minute idle fills the bucket, no further */
    v = take(r, &k, 10, T0 + 10 * 60000);
    assert_true(v.allowed);
    assert_int_equal(v.remaining_requests, 2);
    /* a key without limits always passes and reports none */
    pol_key open = key_of("key_b", "acme", 0, 0);
    for (int i = 0; i < 100; i++) assert_true(take(r, &open, 1000000, T0).allowed);
    v = take(r, NULL, 5, T0);
    assert_true(v.allowed);
    assert_int_equal(v.limit_requests, -1);
    pol_rate_free(r);
}

static void test_tokens_per_minute(void **state)
{
    (void)state;
    pol_rate *r = rate();
    pol_key k = key_of("key_a", "acme", 0, 0);
    k.rpm = 10;
    k.tpm = 1000;
    pol_rate_verdict v = take(r, &k, 600, T0);
    assert_true(v.allowed);
    assert_int_equal(v.remaining_tokens, 400);
    assert_int_equal(v.reset_tokens_ms, 36000);
    v = take(r, &k, 500, T0);
    assert_false(v.allowed);
    assert_int_equal(v.retry_after_s, 6);    /* 100 tokens at 1000/min */
    assert_int_equal(v.remaining_requests, 9);   /* refused: no request taken either */
    /* 600 reserved, 100 used: 500 come back */
    pol_rate_settle(r, "key_a", 600, 100, T0);
    v = take(r, &k, 500, T0);
    assert_true(v.allowed);
    assert_int_equal(v.remaining_tokens, 400);
    /* used more than reserved: the bucket goes into debt */
    pol_rate_settle(r, "key_a", 500, 1300, T0);
    v = take(r, &k, 1, T0);
    assert_false(v.allowed);
    assert_int_equal(v.remaining_tokens, 0);
    assert_int_equal(v.retry_after_s, 25);   /* from -400 to 1: 401 tokens, 24.06 s */
    /* more than the bucket holds never fits */
    v = take(r, &k, 1001, T0 + 3600000);
    assert_false(v.allowed);
    assert_true(v.too_large);
    assert_true(take(r, &k, 1000, T0 + 3600000).allowed);
    /* settling for an unknown key does nothing */
    pol_rate_settle(r, "key_zz", 10, 0, T0);
    char err[256];
    assert_int_equal(pol_rate_take(r, &k, -1, T0, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "negative"));
    pol_rate_free(r);
}

static void test_limit_changes(void **state)
{
    (void)state;
    pol_rate *r = rate();
    pol_key k = key_of("key_a", "acme", 0, 0);
    k.rpm = 2;
    assert_true(take(r, &k, 0, T0).allowed);
    assert_true(take(r, &k, 0, T0).allowed);
    assert_false(take(r, &k, 0, T0).allowed);
    k.rpm = 1;               /* lowered: the level is capped, nothing added */
    assert_false(take(r, &k, 0, T0).allowed);
    k.rpm = 0;               /* removed */
    assert_true(take(r, &k, 0, T0).allowed);
    k.tpm = 50;              /* a new limit starts full */
    pol_rate_verdict v = take(r, &k, 50, T0);
    assert_true(v.allowed);
    assert_int_equal(v.remaining_tokens, 0);
    assert_int_equal(v.limit_requests, -1);
    pol_rate_free(r);
}

static void test_duration_text(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {{0, "0ms"}, {-5, "0ms"}, {250, "250ms"}, {999, "999ms"}, {1000, "1s"}, {1001, "2s"},
                 {59000, "59s"}, {60000, "1m0s"}, {360000, "6m0s"}, {3723000, "1h2m3s"}};
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pol_rate_duration(cases[i].ms, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usd_text),
        cmocka_unit_test(test_config_checked),
        cmocka_unit_test(test_refused_exactly_when_crossed),
        cmocka_unit_test(test_each_limit_decides),
        cmocka_unit_test(test_soft_fraction),
        cmocka_unit_test(test_free_route_never_blocked),
        cmocka_unit_test(test_windows_roll_over),
        cmocka_unit_test(test_rebuild_from_ledger),
        cmocka_unit_test(test_concurrent_never_overshoot),
        cmocka_unit_test(test_requests_per_minute),
        cmocka_unit_test(test_tokens_per_minute),
        cmocka_unit_test(test_limit_changes),
        cmocka_unit_test(test_duration_text),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
