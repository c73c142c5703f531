/* test_audit.c: the real `junction audit` binary on ledger files this test
 * fills through the policy library: its JSON equals sums computed here, the
 * table and CSV carry the same numbers, time windows and groupings cut
 * where they should, it reads while a writer holds the lock, and every bad
 * argument is a usage error with a message. */
#include "policy.h"
#include "testlib.h"

#include <inttypes.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define DAY_MS 86400000LL
#define BASE_MS 1764547200000LL   /* 2025-12-01T00:00:00Z */
#define N_ROWS 90

static char db[128];

static const char *const routes[] = {"local", "openai", "claude"};

/* Row i: one every 8 hours from BASE_MS (so 3 per day, 30 days). */
static pol_ledger_row row_of(int i)
{
    pol_ledger_row r;
    memset(&r, 0, sizeof(r));
    snprintf(r.request_id, sizeof(r.request_id), "r%d", i);
    r.ts_ms = BASE_MS + (int64_t)i * (DAY_MS / 3);
    snprintf(r.tenant, sizeof(r.tenant), "t%d", i % 2);
    snprintf(r.model, sizeof(r.model), "auto");
    snprintf(r.route, sizeof(r.route), "%s", routes[i % 3]);
    snprintf(r.zone, sizeof(r.zone), i % 3 ? "external" : "in-process");
    snprintf(r.reason, sizeof(r.reason), "explicit model");
    r.prompt_tokens = 100 + i;
    r.completion_tokens = 10 * i;
    r.cost_micro_usd = i % 3 == 0 ? 0 : 1000 + 17 * i;
    r.counterfactual_micro_usd = 3000 + 17 * i;
    r.latency_us = 1000 * (i + 1);
    r.ttft_us = i % 2 ? 500 * i : -1;
    r.status = i % 10 == 9 ? 500 : 200;
    return r;
}

static void fill(const char *path, int n, int64_t shift_ms)
{
    char err[512];
    pol_ledger_config c;
    pol_ledger_config_defaults(&c);
    snprintf(c.path, sizeof(c.path), "%s", path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    for (int i = 0; i < n; i++) {
        pol_ledger_row r = row_of(i);
        r.ts_ms += shift_ms;
        assert_true(pol_ledger_append(l, &r));
    }
    pol_ledger_free(l);
}

static int setup(void **state)
{
    if (scratch_setup(state) != 0) return -1;
    scratch_path(db, sizeof(db), "ledger.db");
    return 0;
}

static int64_t raw_int(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

static void test_json_equals_independent_sums(void **state)
{
    (void)state;
    fill(db, N_ROWS, 0);
    char *out;
    assert_int_equal(run_junctionl(&out, "audit", "--db", db, "--by", "route", "--format", "json", NULL), 0);
    cJSON *doc = cJSON_Parse(out);
    if (!doc) fail_msg("not JSON: %s", out);
    int64_t req[3] = {0}, prompt[3] = {0}, compl[3] = {0}, cost[3] = {0}, cf[3] = {0}, errs[3] = {0};
    for (int i = 0; i < N_ROWS; i++) {
        pol_ledger_row r = row_of(i);
        req[i % 3]++;
        prompt[i % 3] += r.prompt_tokens;
        compl[i % 3] += r.completion_tokens;
        cost[i % 3] += r.cost_micro_usd;
        cf[i % 3] += r.counterfactual_micro_usd;
        errs[i % 3] += r.status >= 400;
    }
    cJSON *total = cJSON_GetObjectItemCaseSensitive(doc, "total");
    assert_int_equal(raw_int(total, "requests"), N_ROWS);
    assert_int_equal(raw_int(total, "prompt_tokens"), prompt[0] + prompt[1] + prompt[2]);
    assert_int_equal(raw_int(total, "completion_tokens"), compl[0] + compl[1] + compl[2]);
    int64_t all_cost = cost[0] + cost[1] + cost[2], all_cf = cf[0] + cf[1] + cf[2];
    assert_int_equal(raw_int(total, "cost_micro_usd"), all_cost);
    assert_int_equal(raw_int(total, "counterfactual_micro_usd"), all_cf);
    assert_int_equal(raw_int(total, "savings_micro_usd"), all_cf - all_cost);
    /* the decimal dollars are exact: printed from the integers */
    char want[64];
    snprintf(want, sizeof(want), "\"cost_usd\":\t%" PRId64 ".%06" PRId64, all_cost / 1000000, all_cost % 1000000);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "\"savings_usd\":\t%" PRId64 ".%06" PRId64, (all_cf - all_cost) / 1000000,
             (all_cf - all_cost) % 1000000);
    assert_non_null(strstr(out, want));
    assert_int_equal(raw_int(total, "errors"), errs[0] + errs[1] + errs[2]);
    /* latencies 1..90 ms: nearest rank p50 = 45, p95 = 86 */
    assert_true(cJSON_GetObjectItemCaseSensitive(total, "p50_latency_ms")->valuedouble == 45.0);
    assert_true(cJSON_GetObjectItemCaseSensitive(total, "p95_latency_ms")->valuedouble == 86.0);
    cJSON *groups = cJSON_GetObjectItemCaseSensitive(doc, "groups");
    assert_int_equal(cJSON_GetArraySize(groups), 3);
    const int order[3] = {2, 0, 1};   /* claude, local, openai */
    for (int g = 0; g < 3; g++) {
        cJSON *o = cJSON_GetArrayItem(groups, g);
        int k = order[g];
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "key")->valuestring, routes[k]);
        assert_int_equal(raw_int(o, "requests"), req[k]);
        assert_int_equal(raw_int(o, "cost_micro_usd"), cost[k]);
        assert_int_equal(raw_int(o, "counterfactual_micro_usd"), cf[k]);
        assert_true(cJSON_GetObjectItemCaseSensitive(o, "local_share")->valuedouble == (k == 0 ? 1.0 : 0.0));
    }
    cJSON_Delete(doc);
    free(out);
}

static void test_table_and_csv(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_junctionl(&out, "audit", "--db", db, "--by", "day", "--format", "csv", NULL), 0);
    assert_true(strncmp(out, "group,requests,share,local,", 27) == 0);
    int lines = 0;
    for (char *p = out; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + 30 + 1);                     /* header, 30 days, total */
    assert_non_null(strstr(out, "\n2025-12-01,3,3.3%,33.3%,"));
    assert_non_null(strstr(out, "\n2025-12-30,3,"));
    assert_non_null(strstr(out, "\ntotal,90,100.0%,33.3%,"));
    free(out);

    assert_int_equal(run_junctionl(&out, "audit", "--db", db, "--by", "tenant", NULL), 0);
    assert_true(strncmp(out, "group ", 6) == 0);            /* the table is the default */
    assert_non_null(strstr(out, "\nt0 "));
    assert_non_null(strstr(out, "\nt1 "));
    assert_non_null(strstr(out, "\ntotal "));
    free(out);
}

static void test_time_windows(void **state)
{
    (void)state;
    char *out;
    /* 2025-12-02 00:00 to 2025-12-04 00:00: rows 3..8 */
    assert_int_equal(run_junctionl(&out, "audit", "--db", db, "--since", "2025-12-02", "--until", "2025-12-04T00:00:00Z",
                           "--format=csv", NULL), 0);
    assert_non_null(strstr(out, "\ntotal,6,"));
    free(out);
    assert_int_equal(run_junctionl(&out, "audit", "--db", db, "--since=2025-12-30T08:00", "--by=hour", "--format", "json",
                           NULL), 0);
    cJSON *doc = cJSON_Parse(out);
    assert_non_null(doc);
    cJSON *groups = cJSON_GetObjectItemCaseSensitive(doc, "groups");
    assert_int_equal(cJSON_GetArraySize(groups), 2);          /* 08:00 and 16:00 of the last day */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(groups, 0), "key")->valuestring,
                        "2025-12-30T08:00Z");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "since")->valuestring, "2025-12-30T08:00:00Z");
    cJSON_Delete(doc);
    free(out);

    /* relative windows count back from now */
    char recent[128];
    scratch_path(recent, sizeof(recent), "recent.db");
    fill(recent, 4, pol_now_ms() - BASE_MS - 3 * (DAY_MS / 3) - 60000);   /* rows 0..3 end a minute ago */
    assert_int_equal(run_junctionl(&out, "audit", "--db", recent, "--since", "9h", "--format", "csv", NULL), 0);
    assert_non_null(strstr(out, "\ntotal,2,"));   /* the last two rows, 8 hours apart */
    free(out);
    assert_int_equal(run_junctionl(&out, "audit", "--db", recent, "--since", "30d", "--format", "csv", NULL), 0);
    assert_non_null(strstr(out, "\ntotal,4,"));
    free(out);
}

static void test_config_names_the_ledger(void **state)
{
    (void)state;
    char cfg[64], text[512], *a, *b;
    snprintf(text, sizeof(text), "{\"ledger\": {\"path\": \"%s\"}}", db);
    write_temp_file(cfg, text);
    assert_int_equal(run_junctionl(&a, "audit", "--config", cfg, "--by", "route", "--format", "json", NULL), 0);
    assert_int_equal(run_junctionl(&b, "audit", "--db", db, "--by", "route", "--format", "json", NULL), 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
    write_temp_file(cfg, "{\"ledger\": {\"path\": \"off\"}}");
    assert_int_equal(run_junctionl(&a, "audit", "--config", cfg, NULL), 2);
    assert_non_null(strstr(a, "off"));
    free(a);
    unlink(cfg);
}

/* A writer in the middle of a transaction (the daemon committing a batch)
 * does not stop the audit, which sees only committed rows. */
static void test_reads_while_writer_holds_the_lock(void **state)
{
    (void)state;
    sqlite3 *w;
    assert_int_equal(sqlite3_open(db, &w), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w, "BEGIN IMMEDIATE; DELETE FROM requests;", NULL, NULL, NULL), SQLITE_OK);
    char *out;
    assert_int_equal(run_junctionl(&out, "audit", "--db", db, "--format", "csv", NULL), 0);
    assert_non_null(strstr(out, "\ntotal,90,"));
    free(out);
    assert_int_equal(sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(w);
    assert_int_equal(run_junctionl(&out, "audit", "--db", db, "--vacuum", NULL), 0);
    assert_non_null(strstr(out, "integrity ok"));
    free(out);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char missing[160];
    scratch_path(missing, sizeof(missing), "none.db");
    const struct {
        const char *args[8];
        int status;
        const char *says;
    } cases[] = {
        {{"audit", NULL}, 2, "--db FILE or as --config FILE"},
        {{"audit", "--db", db, "--config", "x.json", NULL}, 2, "one of them"},
        {{"audit", "--db", NULL}, 2, "--db needs a value"},
        {{"audit", "--db=", NULL}, 2, "--db needs a value"},
        {{"audit", "--db", db, "--by", "tenants", NULL}, 2, "tenant, key, route, model, day or hour"},
        {{"audit", "--db", db, "--format", "xml", NULL}, 2, "table, csv, json"},
        {{"audit", "--db", db, "--since", "yesterday", NULL}, 2, "is not a time"},
        {{"audit", "--db", db, "--since", "2025-12-05", "--until", "2025-12-01", NULL}, 2, "swap them"},
        {{"audit", "--db", db, "--frobnicate", NULL}, 2, "unknown option"},
        {{"audit", "--dbx", db, NULL}, 2, "unknown option"},
        {{"audit", "--db", missing, NULL}, 1, "No such file"},
        {{"audit", "--db", missing, "--vacuum", NULL}, 1, "No such file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out;
        assert_int_equal(run_junction(cases[i].args, &out), cases[i].status);
        if (!strstr(out, cases[i].says)) fail_msg("case %zu: '%s' not in: %s", i, cases[i].says, out);
        free(out);
    }
    assert_int_equal(access(missing, F_OK), -1);   /* reading creates nothing */
    char *out;
    assert_int_equal(run_junctionl(&out, "audit", "--help", NULL), 0);
    assert_non_null(strstr(out, "usage: junction audit"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_equals_independent_sums),
        cmocka_unit_test(test_table_and_csv),
        cmocka_unit_test(test_time_windows),
        cmocka_unit_test(test_config_names_the_ledger),
        cmocka_unit_test(test_reads_while_writer_holds_the_lock),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, scratch_teardown);
}
