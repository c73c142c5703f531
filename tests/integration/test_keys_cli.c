/* test_keys_cli.c: the real `junction keys` binary on ledger files: a new
 * or rotated key is alone on the last line of the output and works (checked
 * through the daemon's own lookup), the old one stops working, lists never
 * show a secret or a hash, tenants keep their budgets, --config finds the
 * ledger, and every bad argument is a usage error (exit 2) with a message. */
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

static char db[128];

static int setup(void **state)
{
    if (scratch_setup(state) != 0) return -1;
    scratch_path(db, sizeof(db), "ledger.db");
    return 0;
}

/* The output's last line (without its newline) into buf. */
static void last_line(const char *out, char *buf, size_t len)
{
    size_t n = strlen(out);
    assert_true(n > 0 && out[n - 1] == '\n');
    size_t start = n - 1;
    while (start > 0 && out[start - 1] != '\n') start--;
    snprintf(buf, len, "%.*s", (int)(n - 1 - start), out + start);
}

static const pol_key *lookup(pol_keys_snapshot **snap, const char *secret)
{
    char err[512];
    pol_keys *ks;
    if (pol_keys_open(&ks, db, err, sizeof(err)) != 0) fail_msg("%s", err);
    if (pol_keys_snapshot_load(ks, snap, err, sizeof(err)) != 0) fail_msg("%s", err);
    pol_keys_close(ks);
    return pol_keys_lookup(*snap, secret, strlen(secret));
}

static cJSON *list_json(const char *what)
{
    char *out;
    assert_int_equal(run_junctionl(&out, "keys", what, "--db", db, "--format", "json", NULL), 0);
    cJSON *doc = cJSON_Parse(out);
    if (!doc) fail_msg("not JSON: %s", out);
    free(out);
    return doc;
}

/* The item of doc's `array` whose `field` is `value`; the test fails without one. */
static const cJSON *listed(const cJSON *doc, const char *array, const char *field, const char *value)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, array)) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, field));
        if (s && !strcmp(s, value)) return item;
    }
    fail_msg("no item of %s has %s '%s'", array, field, value);
    return NULL;
}

static void test_add_prints_key_last_and_it_works(void **state)
{
    (void)state;
    char *out, secret[128];
    assert_int_equal(run_junctionl(&out, "keys", "add", "--db", db, "--tenant", "acme", "--name", "ci bot", "--routes",
                          "local,openai", "--rpm", "60", "--tpm=90000", "--budget-daily", "5.5",
                          "--budget-monthly", "100", "--admin", NULL), 0);
    last_line(out, secret, sizeof(secret));
    assert_int_equal(strlen(secret), POL_KEY_SECRET_LEN);
    assert_memory_equal(secret, "jk-", 3);
    free(out);

    pol_keys_snapshot *snap;
    const pol_key *k = lookup(&snap, secret);
    assert_non_null(k);
    assert_string_equal(k->tenant, "acme");
    assert_string_equal(k->name, "ci bot");
    assert_string_equal(k->routes, "local,openai");
    assert_int_equal(k->rpm, 60);
    assert_int_equal(k->tpm, 90000);
    assert_int_equal(k->budget_daily_micro, 5500000);
    assert_int_equal(k->budget_monthly_micro, 100000000);
    assert_true(k->admin);
    char id[24];
    snprintf(id, sizeof(id), "%s", k->id);
    pol_keys_snapshot_free(snap);

    /* lists show the key, never its secret or hash */
    assert_int_equal(run_junctionl(&out, "keys", "list", "--db", db, NULL), 0);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "5.500000"));
    assert_null(strstr(out, secret));
    free(out);
    cJSON *doc = list_json("list");
    char *text = cJSON_PrintUnformatted(doc);
    assert_null(strstr(text, secret));
    assert_null(strstr(text, "hash"));
    assert_non_null(strstr(text, "\"budget_daily_micro_usd\":5500000"));
    free(text);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "keys"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(first, "id")), id);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(first, "revoked_ms")));
    cJSON_Delete(doc);
}

static void test_rotate_and_revoke(void **state)
{
    (void)state;
    char *out, old[128], fresh[128], id[24];
    assert_int_equal(run_junctionl(&out, "keys", "add", "--db", db, "--tenant", "beta", NULL), 0);
    last_line(out, old, sizeof(old));
    free(out);
    pol_keys_snapshot *snap;
    const pol_key *k = lookup(&snap, old);
    assert_non_null(k);
    snprintf(id, sizeof(id), "%s", k->id);
    pol_keys_snapshot_free(snap);

    assert_int_equal(run_junctionl(&out, "keys", "rotate", "--db", db, id, NULL), 0);
    last_line(out, fresh, sizeof(fresh));
    free(out);
    assert_int_equal(strlen(fresh), POL_KEY_SECRET_LEN);
    assert_string_not_equal(fresh, old);
    assert_null(lookup(&snap, old));
    pol_keys_snapshot_free(snap);
    k = lookup(&snap, fresh);
    assert_non_null(k);
    assert_string_equal(k->id, id);
    assert_string_equal(k->tenant, "beta");
    pol_keys_snapshot_free(snap);

    assert_int_equal(run_junctionl(&out, "keys", "revoke", "--db", db, id, NULL), 0);
    free(out);
    assert_null(lookup(&snap, fresh));
    pol_keys_snapshot_free(snap);
    assert_int_equal(run_junctionl(&out, "keys", "revoke", "--db", db, id, NULL), 1);
    assert_non_null(strstr(out, "no active key"));
    free(out);
    assert_int_equal(run_junctionl(&out, "keys", "rotate", "--db", db, id, NULL), 1);
    assert_non_null(strstr(out, "cannot be rotated"));
    free(out);
    cJSON *doc = list_json("list");
    const cJSON *item = listed(doc, "keys", "id", id);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(item, "revoked_ms")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(item, "rotated_ms")));
    cJSON_Delete(doc);
}

static void test_tenants(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_junctionl(&out, "keys", "tenant", "--db", db, "gamma", "--budget-daily", "2", NULL), 0);
    free(out);
    assert_int_equal(run_junctionl(&out, "keys", "tenant", "--db", db, "gamma", "--budget-monthly", "30.25", NULL), 0);
    free(out);
    assert_int_equal(run_junctionl(&out, "keys", "tenants", "--db", db, NULL), 0);
    assert_non_null(strstr(out, "gamma"));
    assert_non_null(strstr(out, "30.250000"));
    free(out);
    cJSON *doc = list_json("tenants");
    const cJSON *item = listed(doc, "tenants", "name", "gamma");
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item, "budget_daily_micro_usd")), 2000000);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item, "budget_monthly_micro_usd")), 30250000);
    cJSON_Delete(doc);
}

static void test_config_names_the_ledger(void **state)
{
    (void)state;
    char conf[160], other[160], text[400], *out, secret[128];
    scratch_path(other, sizeof(other), "from-config/ledger.db");
    scratch_path(conf, sizeof(conf), "junction.json");
    snprintf(text, sizeof(text), "{\"ledger\": {\"path\": \"%s\"}}", other);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(run_junctionl(&out, "keys", "add", "--config", conf, "--tenant", "delta", NULL), 0);
    last_line(out, secret, sizeof(secret));
    free(out);
    assert_int_equal(access(other, F_OK), 0);
    assert_int_equal(run_junctionl(&out, "keys", "list", "--config", conf, NULL), 0);
    assert_non_null(strstr(out, "delta"));
    free(out);
    snprintf(text, sizeof(text), "{\"ledger\": {\"path\": \"off\"}}");
    f = fopen(conf, "w");
    fputs(text, f);
    fclose(f);
    assert_int_equal(run_junctionl(&out, "keys", "list", "--config", conf, NULL), 2);
    assert_non_null(strstr(out, "off"));
    free(out);
}

static void test_usage_errors(void **state)
{
    (void)state;
    static const struct {
        const char *args[8];
        const char *says;
    } cases[] = {
        {{NULL}, "usage"},
        {{"frobnicate", "--db", "x.db", NULL}, "unknown action"},
        {{"list", NULL}, "--db FILE or as --config FILE"},
        {{"list", "--db", "a.db", "--config", "b.json", NULL}, "one of them"},
        {{"add", "--db", "DB", NULL}, "--tenant NAME is required"},
        {{"add", "--db", "DB", "--tenant", "a", "--rpm", "abc", NULL}, "--rpm 'abc'"},
        {{"add", "--db", "DB", "--tenant", "a", "--tpm", "-3", NULL}, "--tpm '-3'"},
        {{"add", "--db", "DB", "--tenant", "a", "--budget-daily", "1.2345678", NULL}, "at most 6 decimals"},
        {{"list", "--db", "DB", "--format", "xml", NULL}, "table or json"},
        {{"revoke", "--db", "DB", NULL}, "key's ID"},
        {{"tenant", "--db", "DB", NULL}, "tenant's NAME"},
        {{"list", "--db", "DB", "--admin", NULL}, "unknown option '--admin'"},
        {{"list", "--db", "DB", "--tenant", "x", NULL}, "unknown option '--tenant'"},
        {{"revoke", "--db", "DB", "a", "b", NULL}, "unexpected argument 'b'"},
        {{"list", "--db", NULL}, "--db needs a value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[10] = {"keys"};
        for (int j = 0; j < 8 && cases[i].args[j]; j++)
            args[j + 1] = !strcmp(cases[i].args[j], "DB") ? db : cases[i].args[j];
        char *out;
        int rc = run_junction(args, &out);
        if (rc != 2 || !strstr(out, cases[i].says))
            fail_msg("case %zu: exit %d, output '%s' (wanted 2 and '%s')", i, rc, out, cases[i].says);
        free(out);
    }
    char *out;
    assert_int_equal(run_junctionl(&out, "keys", "--help", NULL), 0);
    assert_non_null(strstr(out, "junction keys add"));
    free(out);
    /* settings the library refuses fail with its message */
    assert_int_equal(run_junctionl(&out, "keys", "add", "--db", db, "--tenant", "no spaces please", NULL), 1);
    assert_non_null(strstr(out, "tenant 'no spaces please'"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_prints_key_last_and_it_works),
        cmocka_unit_test(test_rotate_and_revoke),
        cmocka_unit_test(test_tenants),
        cmocka_unit_test(test_config_names_the_ledger),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, setup, scratch_teardown);
}
