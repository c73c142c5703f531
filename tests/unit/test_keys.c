/* test_keys.c: client keys on real SQLite files: the version-1 fixture
 * migrates with its rows intact, keys are stored only as
 * HMAC-SHA256(pepper, key) (checked here with OpenSSL independently), look
 * up exactly (a changed, shortened or revoked key is unknown), rotate and
 * revoke, tenants keep the budgets not given, bad settings are refused with
 * nothing written, and the daemon's change check fires on key changes but
 * not on ledger rows. */
#include "policy.h"
#include "testlib.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* One blob from a one-row query into out (exactly len bytes). */
static void db_blob(const char *path, const char *sql, unsigned char *out, int len)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(st, 0), len);
    memcpy(out, sqlite3_column_blob(st, 0), (size_t)len);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static pol_key settings(const char *tenant)
{
    pol_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    return k;
}

static pol_keyadmin *admin_open(const char *path)
{
    char err[512];
    pol_keyadmin *a;
    if (pol_keyadmin_open(&a, path, err, sizeof(err)) != 0) fail_msg("%s", err);
    return a;
}

static void add_key(pol_keyadmin *a, const pol_key *s, pol_key *made, char *secret)
{
    char err[512];
    if (pol_key_add(a, s, made, secret, err, sizeof(err)) != 0) fail_msg("%s", err);
}

static pol_keys_snapshot *snapshot_of(const char *path)
{
    char err[512];
    pol_keys *ks;
    pol_keys_snapshot *s;
    if (pol_keys_open(&ks, path, err, sizeof(err)) != 0) fail_msg("%s", err);
    if (pol_keys_snapshot_load(ks, &s, err, sizeof(err)) != 0) fail_msg("%s", err);
    pol_keys_close(ks);
    return s;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Whether `needle` occurs anywhere in the file's bytes. */
static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    bool found = memmem(buf, n, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

/* ---- tests ---- */

static void test_migrates_version_1_fixture(void **state)
{
    (void)state;
    char path[128], err[512];
    scratch_path(path, sizeof(path), "v1.db");
    copy_file(JUNCTION_SOURCE_DIR "/tests/data/ledger-v1.db", path);
    assert_int_equal(db_int(path, "PRAGMA user_version"), 1);
    pol_keys *ks = (pol_keys *)path;
    assert_int_equal(pol_keys_open(&ks, path, err, sizeof(err)), -1);   /* the daemon's reader does not migrate */
    assert_null(ks);
    assert_non_null(strstr(err, "older"));

    pol_keyadmin *a = admin_open(path);
    pol_keyadmin_close(a);
    assert_int_equal(db_int(path, "PRAGMA user_version"), 3);
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM requests"), 3);
    assert_int_equal(db_int(path, "SELECT SUM(cost_micro_usd) FROM requests WHERE tenant = 'acme'"), 450);
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM requests WHERE prompt_redacted IS NULL"), 3);
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM keys"), 0);
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM tenants"), 0);
    assert_int_equal(db_int(path, "SELECT length(value) FROM meta WHERE name = 'pepper'"), 32);
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM pragma_index_list('requests') WHERE name = 'requests_key_ts'"), 1);
    /* the migrated file serves readers: audit and the daemon's keys */
    pol_audit *au;
    assert_int_equal(pol_audit_open(&au, path, err, sizeof(err)), 0);
    pol_audit_close(au);
    pol_keys_snapshot *s = snapshot_of(path);
    assert_int_equal(pol_keys_count(s), 0);
    pol_keys_snapshot_free(s);
}

static void test_key_stored_as_hmac_only(void **state)
{
    (void)state;
    char path[128], secret[POL_KEY_SECRET_LEN + 1];
    scratch_path(path, sizeof(path), "hmac.db");
    pol_keyadmin *a = admin_open(path);
    pol_key s = settings("acme"), made;
    add_key(a, &s, &made, secret);
    pol_keyadmin_close(a);

    assert_int_equal(strlen(secret), POL_KEY_SECRET_LEN);
    assert_memory_equal(secret, "jk-", 3);
    for (const char *p = secret + 3; *p; p++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    assert_int_equal(strlen(made.id), 16);
    assert_memory_equal(made.id, "key_", 4);
    for (const char *p = made.id + 4; *p; p++) assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", *p));

    unsigned char pepper[32], stored[32], expect[32];
    unsigned int len = 0;
    db_blob(path, "SELECT value FROM meta WHERE name = 'pepper'", pepper, 32);
    db_blob(path, "SELECT hash FROM keys", stored, 32);
    assert_non_null(HMAC(EVP_sha256(), pepper, 32, (const unsigned char *)secret, strlen(secret), expect, &len));
    assert_int_equal(len, 32);
    assert_memory_equal(stored, expect, 32);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    assert_false(file_contains(path, secret));
    assert_false(file_contains(wal, secret));
    assert_false(file_contains(path, secret + 3));

    /* another file, another pepper */
    char other[128];
    unsigned char pepper2[32];
    scratch_path(other, sizeof(other), "hmac2.db");
    pol_keyadmin_close(admin_open(other));
    db_blob(other, "SELECT value FROM meta WHERE name = 'pepper'", pepper2, 32);
    assert_memory_not_equal(pepper, pepper2, 32);
}

static void test_lookup_exact(void **state)
{
    (void)state;
    char path[128], secret[POL_KEY_SECRET_LEN + 1];
    scratch_path(path, sizeof(path), "lookup.db");
    pol_keyadmin *a = admin_open(path);
    pol_key s = settings("acme"), made;
    snprintf(s.name, sizeof(s.name), "ci bot");
    snprintf(s.routes, sizeof(s.routes), "local,openai");
    s.rpm = 60;
    s.tpm = 90000;
    s.budget_daily_micro = 5000000;
    s.budget_monthly_micro = 100000000;
    s.admin = true;
    add_key(a, &s, &made, secret);
    pol_keyadmin_close(a);

    assert_int_equal(pol_keys_count(NULL), 0);
    assert_null(pol_keys_lookup(NULL, secret, strlen(secret)));
    pol_keys_snapshot *snap = snapshot_of(path);
    assert_int_equal(pol_keys_count(snap), 1);
    const pol_key *k = pol_keys_lookup(snap, secret, strlen(secret));
    assert_non_null(k);
    assert_string_equal(k->id, made.id);
    assert_string_equal(k->tenant, "acme");
    assert_string_equal(k->name, "ci bot");
    assert_string_equal(k->routes, "local,openai");
    assert_int_equal(k->rpm, 60);
    assert_int_equal(k->tpm, 90000);
    assert_int_equal(k->budget_daily_micro, 5000000);
    assert_int_equal(k->budget_monthly_micro, 100000000);
    assert_true(k->admin);
    assert_true(k->created_ms > 0);
    assert_int_equal(k->revoked_ms, 0);

    char wrong[POL_KEY_SECRET_LEN + 2];
    memcpy(wrong, secret, sizeof(wrong) - 1);
    wrong[POL_KEY_SECRET_LEN - 1] = secret[POL_KEY_SECRET_LEN - 1] == 'A' ? 'B' : 'A';
    assert_null(pol_keys_lookup(snap, wrong, strlen(wrong)));
    assert_null(pol_keys_lookup(snap, secret, strlen(secret) - 1));
    snprintf(wrong, sizeof(wrong), "%sx", secret);
    assert_null(pol_keys_lookup(snap, wrong, strlen(wrong)));
    assert_null(pol_keys_lookup(snap, "", 0));
    assert_null(pol_keys_lookup(snap, NULL, 0));
    char big[POL_KEY_PRESENTED_MAX + 8];
    memset(big, 'a', sizeof(big));
    assert_null(pol_keys_lookup(snap, big, sizeof(big)));
    /* the tenant was created with the key */
    const pol_tenant *t = pol_keys_tenant(snap, "acme");
    assert_non_null(t);
    assert_int_equal(t->budget_daily_micro, 0);
    assert_null(pol_keys_tenant(snap, "acm"));
    pol_keys_snapshot_free(snap);
}

static void test_many_keys_each_its_own(void **state)
{
    (void)state;
    enum { N = 200 };
    char path[128];
    scratch_path(path, sizeof(path), "many.db");
    pol_keyadmin *a = admin_open(path);
    static char secrets[N][POL_KEY_SECRET_LEN + 1];
    static pol_key made[N];
    for (int i = 0; i < N; i++) {
        pol_key s = settings(i % 2 ? "odd" : "even");
        s.rpm = i;
        add_key(a, &s, &made[i], secrets[i]);
    }
    pol_keyadmin_close(a);
    pol_keys_snapshot *snap = snapshot_of(path);
    assert_int_equal(pol_keys_count(snap), N);
    for (int i = 0; i < N; i++) {
        const pol_key *k = pol_keys_lookup(snap, secrets[i], strlen(secrets[i]));
        assert_non_null(k);
        assert_string_equal(k->id, made[i].id);
        assert_int_equal(k->rpm, i);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(made[i].id, made[j].id);
            assert_string_not_equal(secrets[i], secrets[j]);
        }
    }
    pol_keys_snapshot_free(snap);
}

static void test_revoke_and_rotate(void **state)
{
    (void)state;
    char path[128], err[512], s1[POL_KEY_SECRET_LEN + 1], s2[POL_KEY_SECRET_LEN + 1], fresh[POL_KEY_SECRET_LEN + 1];
    scratch_path(path, sizeof(path), "revoke.db");
    pol_keyadmin *a = admin_open(path);
    pol_key s = settings("acme"), k1, k2;
    s.tpm = 777;
    add_key(a, &s, &k1, s1);
    add_key(a, &s, &k2, s2);

    assert_int_equal(pol_key_revoke(a, k1.id, err, sizeof(err)), 0);
    assert_int_equal(pol_key_revoke(a, k1.id, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no active key"));
    assert_int_equal(pol_key_revoke(a, "key_nosuchkey00", err, sizeof(err)), -1);
    assert_int_equal(pol_key_rotate(a, k1.id, fresh, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "revoked key cannot be rotated"));
    assert_int_equal(pol_key_rotate(a, k2.id, fresh, err, sizeof(err)), 0);
    assert_string_not_equal(fresh, s2);

    pol_key *list;
    size_t n;
    assert_int_equal(pol_key_list(a, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);   /* revoked keys stay listed */
    for (size_t i = 0; i < n; i++) {
        bool first = !strcmp(list[i].id, k1.id);
        assert_true(first || !strcmp(list[i].id, k2.id));
        assert_int_equal(list[i].revoked_ms != 0, first);
        assert_int_equal(list[i].rotated_ms != 0, !first);
        assert_int_equal(list[i].tpm, 777);
    }
    free(list);
    pol_keyadmin_close(a);

    pol_keys_snapshot *snap = snapshot_of(path);
    assert_int_equal(pol_keys_count(snap), 1);
    assert_null(pol_keys_lookup(snap, s1, strlen(s1)));
    assert_null(pol_keys_lookup(snap, s2, strlen(s2)));
    const pol_key *k = pol_keys_lookup(snap, fresh, strlen(fresh));
    assert_non_null(k);
    assert_string_equal(k->id, k2.id);
    assert_int_equal(k->tpm, 777);
    pol_keys_snapshot_free(snap);
}

static void test_bad_settings_refused(void **state)
{
    (void)state;
    char path[128], err[512], secret[POL_KEY_SECRET_LEN + 1];
    scratch_path(path, sizeof(path), "bad.db");
    pol_keyadmin *a = admin_open(path);
    static const struct {
        const char *tenant, *name, *routes;
        int64_t rpm, budget;
        const char *says;
    } cases[] = {
        {"", "", "", 0, 0, "tenant ''"},
        {"has space", "", "", 0, 0, "tenant 'has space'"},
        {"acme!", "", "", 0, 0, "tenant 'acme!'"},
        {"acme", "tab\there", "", 0, 0, "name"},
        {"acme", "", ",local", 0, 0, "routes"},
        {"acme", "", "local,,openai", 0, 0, "routes"},
        {"acme", "", "local,", 0, 0, "routes"},
        {"acme", "", "local openai", 0, 0, "routes"},
        {"acme", "", "", -1, 0, "rpm -1"},
        {"acme", "", "", 1000000000001LL, 0, "rpm"},
        {"acme", "", "", 0, -5, "daily budget"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pol_key s = settings(""), made;
        snprintf(s.tenant, sizeof(s.tenant), "%s", cases[i].tenant);
        snprintf(s.name, sizeof(s.name), "%s", cases[i].name);
        snprintf(s.routes, sizeof(s.routes), "%s", cases[i].routes);
        s.rpm = cases[i].rpm;
        s.budget_daily_micro = cases[i].budget;
        err[0] = '\0';
        assert_int_equal(pol_key_add(a, &s, &made, secret, err, sizeof(err)), -1);
        if (!strstr(err, cases[i].says)) fail_msg("case %zu: '%s' does not mention '%s'", i, err, cases[i].says);
    }
    assert_int_equal(pol_tenant_set(a, "no/slash", 1, 1, err, sizeof(err)), -1);
    assert_int_equal(pol_tenant_set(a, "", 1, 1, err, sizeof(err)), -1);
    pol_keyadmin_close(a);
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM keys"), 0);
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM tenants"), 0);
    assert_int_equal(db_int(path, "SELECT value FROM meta WHERE name = 'keys_version'"), 0);
}

static void test_tenants_keep_budgets_not_given(void **state)
{
    (void)state;
    char path[128], err[512];
    scratch_path(path, sizeof(path), "tenants.db");
    pol_keyadmin *a = admin_open(path);
    assert_int_equal(pol_tenant_set(a, "acme", 5000000, -1, err, sizeof(err)), 0);
    assert_int_equal(pol_tenant_set(a, "acme", -1, 70000000, err, sizeof(err)), 0);
    assert_int_equal(pol_tenant_set(a, "beta", -1, -1, err, sizeof(err)), 0);
    pol_tenant *t;
    size_t n;
    assert_int_equal(pol_tenant_list(a, &t, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].name, "acme");
    assert_int_equal(t[0].budget_daily_micro, 5000000);
    assert_int_equal(t[0].budget_monthly_micro, 70000000);
    assert_string_equal(t[1].name, "beta");
    assert_int_equal(t[1].budget_daily_micro, 0);
    assert_int_equal(t[1].budget_monthly_micro, 0);
    cJSON *j = pol_tenant_json(&t[0]);
    char *text = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(text, "\"budget_daily_usd\":5.000000"));
    assert_non_null(strstr(text, "\"budget_monthly_micro_usd\":70000000"));
    free(text);
    cJSON_Delete(j);
    free(t);
    /* adding a key for an existing tenant leaves its budgets alone */
    pol_key s = settings("acme"), made;
    char secret[POL_KEY_SECRET_LEN + 1];
    add_key(a, &s, &made, secret);
    pol_keyadmin_close(a);
    pol_keys_snapshot *snap = snapshot_of(path);
    assert_int_equal(pol_keys_tenant(snap, "acme")->budget_daily_micro, 5000000);
    assert_non_null(pol_keys_tenant(snap, "beta"));
    pol_keys_snapshot_free(snap);
}

static void test_changes_seen_ledger_rows_not(void **state)
{
    (void)state;
    char path[128], err[512], secret[POL_KEY_SECRET_LEN + 1];
    scratch_path(path, sizeof(path), "changes.db");
    pol_ledger_config c;
    pol_ledger_config_defaults(&c);
    snprintf(c.path, sizeof(c.path), "%s", path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);   /* the daemon opens its ledger first */
    pol_keys *ks;
    assert_int_equal(pol_keys_open(&ks, path, err, sizeof(err)), 0);
    bool changed = true;
    assert_int_equal(pol_keys_changed(ks, &changed, err, sizeof(err)), 0);
    assert_false(changed);

    pol_ledger_row r;
    memset(&r, 0, sizeof(r));
    snprintf(r.request_id, sizeof(r.request_id), "r1");
    snprintf(r.model, sizeof(r.model), "auto");
    snprintf(r.route, sizeof(r.route), "local");
    snprintf(r.zone, sizeof(r.zone), "in-process");
    r.ts_ms = pol_now_ms();
    r.ttft_us = -1;
    assert_true(pol_ledger_append(l, &r));
    assert_int_equal(pol_ledger_flush_wait(l, 10000, err, sizeof(err)), 0);
    assert_int_equal(pol_keys_changed(ks, &changed, err, sizeof(err)), 0);
    assert_false(changed);   /* request rows are not key changes */

    pol_keyadmin *a = admin_open(path);
    pol_key s = settings("acme"), made;
    add_key(a, &s, &made, secret);
    assert_int_equal(pol_keys_changed(ks, &changed, err, sizeof(err)), 0);
    assert_true(changed);
    assert_int_equal(pol_keys_changed(ks, &changed, err, sizeof(err)), 0);
    assert_true(changed);   /* said again until a snapshot is loaded */
    pol_keys_snapshot *snap;
    assert_int_equal(pol_keys_snapshot_load(ks, &snap, err, sizeof(err)), 0);
    assert_non_null(pol_keys_lookup(snap, secret, strlen(secret)));
    assert_int_equal(pol_keys_changed(ks, &changed, err, sizeof(err)), 0);
    assert_false(changed);
    assert_int_equal(pol_tenant_set(a, "acme", 1, -1, err, sizeof(err)), 0);
    assert_int_equal(pol_keys_changed(ks, &changed, err, sizeof(err)), 0);
    assert_true(changed);
    assert_int_equal(pol_key_revoke(a, made.id, err, sizeof(err)), 0);
    pol_keys_snapshot *after;
    assert_int_equal(pol_keys_snapshot_load(ks, &after, err, sizeof(err)), 0);
    assert_int_equal(pol_keys_count(after), 0);   /* auth off again */
    assert_int_equal(pol_keys_count(snap), 1);     /* the old snapshot is unchanged */
    pol_keys_snapshot_free(snap);
    pol_keys_snapshot_free(after);
    pol_keyadmin_close(a);
    pol_keys_close(ks);
    pol_ledger_free(l);
}

static void test_open_errors(void **state)
{
    (void)state;
    char path[128], err[512];
    scratch_path(path, sizeof(path), "missing.db");
    pol_keys *ks;
    assert_int_equal(pol_keys_open(&ks, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing.db"));
    scratch_path(path, sizeof(path), "foreign.db");
    FILE *f = fopen(path, "w");
    fputs("not a database at all, just text that is long enough to be a header......\n", f);
    fclose(f);
    pol_keyadmin *a;
    assert_int_equal(pol_keyadmin_open(&a, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a database"));
}

static void test_routes_allowed(void **state)
{
    (void)state;
    pol_key k = settings("acme");
    assert_true(pol_key_allows_route(&k, "local"));
    snprintf(k.routes, sizeof(k.routes), "local,openai");
    static const struct {
        const char *route;
        bool allowed;
    } cases[] = {{"local", true}, {"openai", true}, {"open", false}, {"openai2", false},
                 {"loca", false}, {"", false}, {"local,openai", false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(pol_key_allows_route(&k, cases[i].route), cases[i].allowed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrates_version_1_fixture),
        cmocka_unit_test(test_key_stored_as_hmac_only),
        cmocka_unit_test(test_lookup_exact),
        cmocka_unit_test(test_many_keys_each_its_own),
        cmocka_unit_test(test_revoke_and_rotate),
        cmocka_unit_test(test_bad_settings_refused),
        cmocka_unit_test(test_tenants_keep_budgets_not_given),
        cmocka_unit_test(test_changes_seen_ledger_rows_not),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_routes_allowed),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
