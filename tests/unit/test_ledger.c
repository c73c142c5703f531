/* test_ledger.c: the ledger on real SQLite files: rows round-trip exactly,
 * batching, the bounded queue, every fault (full, read-only, locked,
 * corrupt) degrading and recovering, schema versions, retention, concurrent
 * appenders, and spend reports checked against sums and percentiles
 * computed here independently. Plus prices and time windows. */
#include "ledger_store.h"
#include "policy.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define DAY_MS 86400000LL

/* ---- helpers ---- */

static char dir[64];

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/junction-ledger-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void db_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* What the writer logged (it runs on the writer thread: guarded). */
static struct {
    pthread_mutex_t mu;
    int errors, infos;
    char last[512];
} logged = {PTHREAD_MUTEX_INITIALIZER, 0, 0, ""};

static void collect_log(void *ctx, pol_log_level level, const char *msg)
{
    (void)ctx;
    pthread_mutex_lock(&logged.mu);
    if (level == POL_LOG_ERROR) logged.errors++;
    else logged.infos++;
    snprintf(logged.last, sizeof(logged.last), "%s", msg);
    pthread_mutex_unlock(&logged.mu);
}

static void config_for(pol_ledger_config *c, const char *path)
{
    pol_ledger_config_defaults(c);
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->flush_ms = 20;
    c->log = collect_log;
    pthread_mutex_lock(&logged.mu);
    logged.errors = logged.infos = 0;
    logged.last[0] = '\0';
    pthread_mutex_unlock(&logged.mu);
}

static pol_ledger_row make_row(int i, int64_t ts_ms)
{
    static const char *const routes[] = {"local", "openai", "claude"};
    static const char *const zones[] = {"in-process", "external", "external"};
    pol_ledger_row r;
    memset(&r, 0, sizeof(r));
    snprintf(r.request_id, sizeof(r.request_id), "req-%06d", i);
    r.ts_ms = ts_ms;
    if (i % 4) snprintf(r.tenant, sizeof(r.tenant), "tenant-%d", i % 4);
    if (i % 5 == 0) snprintf(r.key_id, sizeof(r.key_id), "key-%d", i % 3);
    snprintf(r.model, sizeof(r.model), i % 2 ? "auto" : "gpt-4o");
    snprintf(r.route, sizeof(r.route), "%s", routes[i % 3]);
    snprintf(r.zone, sizeof(r.zone), "%s", zones[i % 3]);
    snprintf(r.reason, sizeof(r.reason), "explicit model");
    if (i % 7 == 0) snprintf(r.detectors, sizeof(r.detectors), "email,iban");
    if (i % 3) snprintf(r.upstream_model, sizeof(r.upstream_model), "model-%d", i % 3);
    int64_t k = i;
    r.prompt_tokens = 10 + (k * 37) % 1000;
    r.completion_tokens = (k * 53) % 700;
    r.cached_tokens = k % 11;
    r.tokens_estimated = i % 6 == 0;
    r.cost_micro_usd = (k * 7919) % 100000;
    r.counterfactual_micro_usd = r.cost_micro_usd + (k * 104729) % 50000;
    r.latency_us = 1000 + (k * 2654435761LL) % 900000;
    r.ttft_us = i % 3 == 0 ? -1 : 100 + (k * 40503) % 50000;
    r.status = i % 9 == 0 ? 502 : 200;
    if (r.status != 200) snprintf(r.error_code, sizeof(r.error_code), "upstream_error");
    r.streamed = r.ttft_us >= 0;
    r.client_hung_up = i % 13 == 0;
    return r;
}

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void db_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) fail_msg("%s: %s", sql, msg ? msg : "?");
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t count_rows(const char *path)
{
    sqlite3 *db = db_open(path);
    int64_t n = db_int(db, "SELECT COUNT(*) FROM requests");
    sqlite3_close(db);
    return n;
}

/* Poll the stats until `pred` holds or 20 s pass (a liveness bound, not a timing assertion). */
typedef bool (*stats_pred)(const pol_ledger_stats *s, int64_t arg);
static bool wait_stats(pol_ledger *l, stats_pred pred, int64_t arg, pol_ledger_stats *out)
{
    for (int i = 0; i < 4000; i++) {
        pol_ledger_get_stats(l, out);
        if (pred(out, arg)) return true;
        sleep_ms(5);
    }
    return false;
}
static bool is_degraded(const pol_ledger_stats *s, int64_t arg) { (void)arg; return s->degraded; }
static bool written_at_least(const pol_ledger_stats *s, int64_t n) { return (int64_t)s->written >= n; }

static int64_t raw_int(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_non_null(v);
    assert_true(cJSON_IsRaw(v));
    return strtoll(v->valuestring, NULL, 10);
}

static const char *raw_text(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_non_null(v);
    assert_true(cJSON_IsRaw(v));
    return v->valuestring;
}

static const char *str(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return s ? s : "(null)";
}

/* ---- prices and time ---- */

static void test_price_integer_and_rounding(void **state)
{
    (void)state;
    char err[256];
    pol_price p;
    assert_int_equal(pol_price_from_usd(&p, 2.5, 10, 0, err, sizeof(err)), 0);
    assert_int_equal(p.input_per_mtok, 2500000);
    assert_int_equal(p.output_per_mtok, 10000000);
    int64_t c;
    /* 1000 × $2.50/M + 500 × $10/M = $0.0025 + $0.005 */
    assert_int_equal(pol_cost_micro(&p, 1000, 500, 0, &c, err, sizeof(err)), 0);
    assert_int_equal(c, 7500);
    /* 7 tokens at $0.15/M = 1.05 micro -> 1; 10 tokens = 1.5 -> 2 (half up) */
    assert_int_equal(pol_price_from_usd(&p, 0.15, 0.15, 0, err, sizeof(err)), 0);
    assert_int_equal(pol_cost_micro(&p, 7, 0, 0, &c, err, sizeof(err)), 0);
    assert_int_equal(c, 1);
    assert_int_equal(pol_cost_micro(&p, 10, 0, 0, &c, err, sizeof(err)), 0);
    assert_int_equal(c, 2);
    /* one rounding per row: 7 + 7 tokens = 2.1 -> 2, not 1 + 1 */
    assert_int_equal(pol_cost_micro(&p, 7, 7, 0, &c, err, sizeof(err)), 0);
    assert_int_equal(c, 2);
    /* the engine: $0.36 per hour = $0.0001/s; 2.5 s = 250 micro */
    assert_int_equal(pol_price_from_usd(&p, 0, 0, 0.0001, err, sizeof(err)), 0);
    assert_int_equal(p.engine_per_mms, 100000);
    assert_int_equal(pol_cost_micro(&p, 123, 456, 2500, &c, err, sizeof(err)), 0);
    assert_int_equal(c, 250);
    /* the extremes stay exact: 10^12 tokens at $10^6/M = 10^12 USD */
    assert_int_equal(pol_price_from_usd(&p, 1e6, 1e6, 1000, err, sizeof(err)), 0);
    assert_int_equal(pol_cost_micro(&p, 1000000000000LL, 0, 0, &c, err, sizeof(err)), 0);
    assert_int_equal(c, 1000000000000000000LL);
    assert_int_equal(pol_cost_micro(&p, 999999, 999999, 999999, &c, err, sizeof(err)), 0);
    assert_int_equal(c, 3 * 999999LL * 1000000);
    /* bad input: nothing written, a message */
    c = 42;
    assert_int_equal(pol_cost_micro(&p, -1, 0, 0, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "prompt tokens"));
    assert_int_equal(pol_cost_micro(&p, 0, 1000000000001LL, 0, &c, err, sizeof(err)), -1);
    assert_int_equal(c, 42);
    pol_price bad = {-5, 0, 0};
    assert_int_equal(pol_cost_micro(&bad, 1, 1, 1, &c, err, sizeof(err)), -1);
    assert_int_equal(pol_price_from_usd(&p, -1, 0, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "price_input_per_mtok"));
    assert_int_equal(pol_price_from_usd(&p, 0, 0.0 / 0.0, 0, err, sizeof(err)), -1);
    assert_int_equal(pol_price_from_usd(&p, 0, 0, 1001, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "price_per_engine_second"));
}

static void test_price_reference(void **state)
{
    (void)state;
    char err[256];
    const char *names[] = {"vllm", "mini", "big", "big2"};
    pol_price prices[] = {{50000000, 50000000, 0}, {150000, 600000, 0}, {2500000, 10000000, 0},
                          {2500000, 10000000, 0}};
    bool external[] = {false, true, true, true};
    /* the private server is dearer but not external; big and big2 tie: the first */
    assert_int_equal(pol_price_reference(names, prices, external, 4, "", err, sizeof(err)), 2);
    assert_int_equal(pol_price_reference(names, prices, external, 4, NULL, err, sizeof(err)), 2);
    assert_int_equal(pol_price_reference(names, prices, external, 4, "mini", err, sizeof(err)), 1);
    assert_int_equal(pol_price_reference(names, prices, external, 4, "nope", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'nope' is not an upstream"));
    assert_non_null(strstr(err, "vllm mini big big2"));
    assert_int_equal(pol_price_reference(names, prices, external, 1, "", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no external upstream"));
}

static void test_time_parse(void **state)
{
    (void)state;
    char err[256];
    int64_t now = 1764547200000LL + 12345;   /* 2025-12-01T00:00:12.345Z */
    int64_t t;
    const struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"24h", now - 24 * 3600000LL},
        {"7d", now - 7 * DAY_MS},
        {"30m", now - 30 * 60000LL},
        {"90s", now - 90000},
        {"2w", now - 14 * DAY_MS},
        {"0h", now},
        {"2025-12-01", 1764547200000LL},
        {"2025-12-01T10:00", 1764547200000LL + 10 * 3600000LL},
        {"2025-12-01T10:00:05Z", 1764547200000LL + 10 * 3600000LL + 5000},
        {"2025-12-01 23:59:59", 1764547200000LL + DAY_MS - 1000},
        {"2024-02-29", 1709164800000LL},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(pol_time_parse(good[i].text, now, &t, err, sizeof(err)), 0);
        assert_int_equal(t, good[i].want);
    }
    const char *bad[] = {"", "h", "24", "24x", "-1d", "1e3h", "24hh", "99999999999999d",
                         "2025-13-01", "2025-02-30", "2025-1-01", "2025-12-01T25:00", "2025-12-01T10",
                         "2025-12-01Tx", "2025-12-01 10:00:00+01:00", " 24h", "1969-12-31"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = 7;
        assert_int_equal(pol_time_parse(bad[i], now, &t, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "is not a time"));
        assert_int_equal(t, 7);
    }
    assert_int_equal(pol_time_parse(NULL, now, &t, err, sizeof(err)), -1);
}

static void test_config_defaults_and_off(void **state)
{
    (void)state;
    char err[256];
    pol_ledger_config c;
    setenv("XDG_STATE_HOME", "/srv/state", 1);
    pol_ledger_config_defaults(&c);
    assert_string_equal(c.path, "/srv/state/junction/ledger.db");
    assert_int_equal(c.flush_ms, 200);
    assert_false(c.store_prompts);
    assert_int_equal(c.retention_days, 0);
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/op", 1);
    pol_ledger_config_defaults(&c);
    assert_string_equal(c.path, "/home/op/.local/state/junction/ledger.db");
    assert_int_equal(pol_ledger_config_check(&c, err, sizeof(err)), 0);
    c.flush_ms = 0;
    assert_int_equal(pol_ledger_config_check(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ledger.flush_ms"));
    c.flush_ms = 200;
    c.retention_days = -1;
    pol_ledger *l = (pol_ledger *)&c;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), -1);
    assert_null(l);
    assert_non_null(strstr(err, "ledger.retention_days"));
    c.retention_days = 0;
    snprintf(c.path, sizeof(c.path), "off");
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    assert_null(l);
    pol_ledger_row r = make_row(1, 1);
    assert_true(pol_ledger_append(l, &r));
    assert_int_equal(pol_ledger_flush_wait(l, 10, err, sizeof(err)), 0);
    pol_ledger_stats st;
    pol_ledger_get_stats(l, &st);
    assert_int_equal(st.written, 0);
    pol_ledger_free(l);
}

/* ---- writing ---- */

static void page_all(const char *path, cJSON **doc)
{
    char err[512];
    pol_audit *a;
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), 0);
    pol_requests_query q = {.limit = 1000};
    assert_int_equal(pol_audit_requests(a, &q, doc, err, sizeof(err)), 0);
    pol_audit_close(a);
}

static void test_rows_round_trip(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "sub/folder/roundtrip.db");   /* folders are created */
    pol_ledger_config c;
    config_for(&c, path);
    c.store_prompts = true;
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    pol_ledger_row rows[4];
    for (int i = 0; i < 4; i++) {
        rows[i] = make_row(i, 1700000000000LL + i);
        assert_true(pol_ledger_append(l, &rows[i]));
    }
    char prompt[] = "my mail is [email]";
    rows[0].prompt_redacted = prompt;
    rows[0].answer_redacted = "noted, [email]";
    rows[0].ts_ms = 1700000000100LL;
    snprintf(rows[0].request_id, sizeof(rows[0].request_id), "req-texts");
    assert_true(pol_ledger_append(l, &rows[0]));
    prompt[0] = 'X';   /* append copied it */
    assert_int_equal(pol_ledger_flush_wait(l, 20000, err, sizeof(err)), 0);
    pol_ledger_stats st;
    pol_ledger_get_stats(l, &st);
    assert_int_equal(st.written, 5);
    assert_int_equal(st.pending, 0);
    assert_false(st.degraded);
    pol_ledger_free(l);

    cJSON *doc;
    page_all(path, &doc);
    cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    assert_int_equal(cJSON_GetArraySize(data), 5);
    /* newest first: the texts row, then 3, 2, 1, 0 */
    cJSON *t = cJSON_GetArrayItem(data, 0);
    assert_string_equal(str(t, "request_id"), "req-texts");
    assert_string_equal(str(t, "prompt_redacted"), "my mail is [email]");
    assert_string_equal(str(t, "answer_redacted"), "noted, [email]");
    assert_string_equal(str(t, "time"), "2023-11-14T22:13:20Z");
    for (int i = 0; i < 4; i++) {
        pol_ledger_row want = make_row(i, 1700000000000LL + i);
        const pol_ledger_row *r = &want;
        cJSON *o = cJSON_GetArrayItem(data, 4 - i);
        assert_string_equal(str(o, "request_id"), r->request_id);
        assert_int_equal(raw_int(o, "ts_ms"), r->ts_ms);
        assert_string_equal(str(o, "tenant"), r->tenant[0] ? r->tenant : "(null)");
        assert_true(r->tenant[0] || cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "tenant")));
        assert_string_equal(str(o, "key_id"), r->key_id[0] ? r->key_id : "(null)");
        assert_string_equal(str(o, "model"), r->model);
        assert_string_equal(str(o, "route"), r->route);
        assert_string_equal(str(o, "zone"), r->zone);
        assert_string_equal(str(o, "reason"), r->reason);
        cJSON *kinds = cJSON_GetObjectItemCaseSensitive(o, "detectors");
        assert_int_equal(cJSON_GetArraySize(kinds), r->detectors[0] ? 2 : 0);
        if (r->detectors[0]) assert_string_equal(cJSON_GetArrayItem(kinds, 1)->valuestring, "iban");
        assert_string_equal(str(o, "upstream_model"), r->upstream_model[0] ? r->upstream_model : "(null)");
        assert_int_equal(raw_int(o, "prompt_tokens"), r->prompt_tokens);
        assert_int_equal(raw_int(o, "completion_tokens"), r->completion_tokens);
        assert_int_equal(raw_int(o, "cached_tokens"), r->cached_tokens);
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "tokens_estimated")), r->tokens_estimated);
        assert_int_equal(raw_int(o, "cost_micro_usd"), r->cost_micro_usd);
        assert_int_equal(raw_int(o, "counterfactual_micro_usd"), r->counterfactual_micro_usd);
        assert_true(cJSON_GetObjectItemCaseSensitive(o, "latency_ms")->valuedouble == (double)r->latency_us / 1000.0);
        cJSON *ttft = cJSON_GetObjectItemCaseSensitive(o, "ttft_ms");
        if (r->ttft_us < 0) assert_true(cJSON_IsNull(ttft));
        else assert_true(ttft->valuedouble == (double)r->ttft_us / 1000.0);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "status")->valueint, r->status);
        assert_string_equal(str(o, "error_code"), r->error_code[0] ? r->error_code : "(null)");
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "streamed")), r->streamed);
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "client_hung_up")), r->client_hung_up);
        assert_null(cJSON_GetObjectItemCaseSensitive(o, "prompt_redacted"));
    }
    cJSON_Delete(doc);

    /* money is INTEGER in the file, never REAL */
    sqlite3 *db = db_open(path);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM requests WHERE typeof(cost_micro_usd) != 'integer' "
                                "OR typeof(counterfactual_micro_usd) != 'integer'"), 0);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
    sqlite3_close(db);

    /* with store_prompts off the texts are not kept */
    c.store_prompts = false;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    snprintf(rows[0].request_id, sizeof(rows[0].request_id), "req-no-texts");
    assert_true(pol_ledger_append(l, &rows[0]));
    pol_ledger_free(l);   /* free flushes */
    db = db_open(path);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM requests WHERE request_id = 'req-no-texts' "
                                "AND prompt_redacted IS NULL AND answer_redacted IS NULL"), 1);
    sqlite3_close(db);
}

static void test_batches_of_batch_rows(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "batch.db");
    pol_ledger_config c;
    config_for(&c, path);
    c.flush_ms = 60000;     /* only full batches go before the interval */
    c.batch_rows = 10;
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    for (int i = 0; i < 25; i++) {
        pol_ledger_row r = make_row(i, 1000 + i);
        assert_true(pol_ledger_append(l, &r));
    }
    pol_ledger_stats st;
    assert_true(wait_stats(l, written_at_least, 20, &st));
    assert_int_equal(st.written, 20);
    assert_int_equal(st.pending, 5);
    assert_int_equal(count_rows(path), 20);     /* two whole batches committed, five waiting */
    assert_int_equal(pol_ledger_flush_wait(l, 20000, err, sizeof(err)), 0);
    assert_int_equal(count_rows(path), 25);
    pol_ledger_free(l);
}

/* The queue packs rows into a byte ring: rows of every size, with and
 * without texts, wrap around a small ring hundreds of times and come out
 * exactly as they went in; a row larger than the whole queue is refused and
 * counted, never half-written. */
static void text_of(char *out, size_t len, char tag, int i)
{
    for (size_t k = 0; k + 1 < len; k++) out[k] = (char)('a' + (k * 7 + (size_t)i) % 26);
    out[0] = tag;
    out[len - 1] = '\0';
}

static void test_queue_wraps_packed_rows(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "ring.db");
    pol_ledger_config c;
    config_for(&c, path);
    c.store_prompts = true;
    c.queue_bytes = 4096;
    c.batch_rows = 3;
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    enum { ROWS = 300 };
    static char prompt[2000], answer[600];
    for (int i = 0; i < ROWS; i++) {
        pol_ledger_row r = make_row(i, 1000 + i);
        if (i % 4 == 1) memset(r.reason, 'r', sizeof(r.reason) - 1);          /* a full array */
        if (i % 5) {
            text_of(prompt, 2 + (size_t)(i * 131) % (sizeof(prompt) - 1), 'p', i);
            r.prompt_redacted = prompt;
        }
        if (i % 3 == 0) {
            text_of(answer, 1 + (size_t)(i * 17) % sizeof(answer), 'a', i);
            r.answer_redacted = answer;
        }
        /* full: retry while the writer takes a few rows at a time, so the
         * ring stays nearly full and its free space moves round it */
        for (int tries = 0; !pol_ledger_append(l, &r); tries++) {
            assert_true(tries < 20000);
            sleep_ms(1);
        }
    }
    pol_ledger_row big = make_row(ROWS, 1000 + ROWS);
    static char huge[5000];
    text_of(huge, sizeof(huge), 'h', 0);
    big.prompt_redacted = huge;
    assert_false(pol_ledger_append(l, &big));
    assert_int_equal(pol_ledger_flush_wait(l, 20000, err, sizeof(err)), 0);
    pol_ledger_stats st;
    pol_ledger_get_stats(l, &st);
    assert_int_equal(st.written, ROWS);
    assert_int_equal(st.appended, ROWS);
    assert_true(st.dropped >= 1);
    pol_ledger_free(l);

    sqlite3 *db = db_open(path);
    sqlite3_stmt *st_rows;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT request_id, reason, prompt_redacted, answer_redacted,"
                                            " prompt_tokens, COALESCE(ttft_us, -1), client_hung_up, status"
                                            " FROM requests ORDER BY id", -1, &st_rows, NULL), SQLITE_OK);
    int i = 0;
    for (; sqlite3_step(st_rows) == SQLITE_ROW; i++) {
        pol_ledger_row r = make_row(i, 1000 + i);
        if (i % 4 == 1) memset(r.reason, 'r', sizeof(r.reason) - 1);
        assert_string_equal((const char *)sqlite3_column_text(st_rows, 0), r.request_id);
        assert_string_equal((const char *)sqlite3_column_text(st_rows, 1), r.reason);
        if (i % 5) {
            text_of(prompt, 2 + (size_t)(i * 131) % (sizeof(prompt) - 1), 'p', i);
            assert_string_equal((const char *)sqlite3_column_text(st_rows, 2), prompt);
        } else {
            assert_int_equal(sqlite3_column_type(st_rows, 2), SQLITE_NULL);
        }
        if (i % 3 == 0) {
            text_of(answer, 1 + (size_t)(i * 17) % sizeof(answer), 'a', i);
            assert_string_equal((const char *)sqlite3_column_text(st_rows, 3), answer);
        } else {
            assert_int_equal(sqlite3_column_type(st_rows, 3), SQLITE_NULL);
        }
        assert_int_equal(sqlite3_column_int64(st_rows, 4), r.prompt_tokens);
        assert_int_equal(sqlite3_column_int64(st_rows, 5), r.ttft_us);
        assert_int_equal(sqlite3_column_int(st_rows, 6), r.client_hung_up);
        assert_int_equal(sqlite3_column_int(st_rows, 7), r.status);
    }
    sqlite3_finalize(st_rows);
    sqlite3_close(db);
    assert_int_equal(i, ROWS);
}

/* A second connection holds the write lock: the writer stalls, the queue
 * fills, rows are dropped and counted, the ledger is degraded; when the lock
 * goes, everything queued is written. */
static void test_locked_stalls_drops_and_recovers(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "locked.db");
    pol_ledger_config c;
    config_for(&c, path);
    c.queue_bytes = 4096;
    c.batch_rows = 4;
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    sqlite3 *holder = db_open(path);
    db_exec(holder, "BEGIN IMMEDIATE");
    enum { ROWS = 100 };
    int refused = 0;
    for (int i = 0; i < ROWS; i++) {
        pol_ledger_row r = make_row(i, 1000 + i);
        if (!pol_ledger_append(l, &r)) refused++;
    }
    pol_ledger_stats st;
    assert_true(wait_stats(l, is_degraded, 0, &st));
    assert_non_null(strstr(st.last_error, "locked"));
    /* at most a batch in hand and a full queue: a packed row takes more
     * than 128 bytes, so 4 KiB hold at most 32 */
    assert_true(refused >= ROWS - 4 - 32);
    assert_int_equal(st.dropped, (uint64_t)refused);
    assert_int_equal(st.appended, (uint64_t)(ROWS - refused));
    assert_true(st.write_errors >= 1);
    assert_int_equal(pol_ledger_flush_wait(l, 50, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "still unwritten"));
    db_exec(holder, "ROLLBACK");
    sqlite3_close(holder);
    assert_int_equal(pol_ledger_flush_wait(l, 20000, err, sizeof(err)), 0);
    pol_ledger_get_stats(l, &st);
    assert_false(st.degraded);
    /* one line for the fault however many retries, one for the recovery */
    pthread_mutex_lock(&logged.mu);
    assert_int_equal(logged.errors, 1);
    assert_int_equal(logged.infos, 1);
    assert_non_null(strstr(logged.last, "recovered"));
    pthread_mutex_unlock(&logged.mu);
    assert_int_equal(st.written, (uint64_t)(ROWS - refused));
    pol_ledger_free(l);
    assert_int_equal(count_rows(path), ROWS - refused);
}

/* Disk full, by SQLite's own means: the writer's connection may not grow the
 * file past its current size. Freeing pages (deleting a filler table) is the
 * fault going away. */
static void test_disk_full_degrades_and_recovers(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "full.db");
    pol_ledger_config c;
    config_for(&c, path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    pol_ledger_free(l);
    sqlite3 *db = db_open(path);
    db_exec(db, "CREATE TABLE filler(b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                "FROM n WHERE i < 64) INSERT INTO filler SELECT randomblob(4000) FROM n");
    int64_t pages = db_int(db, "PRAGMA page_count");
    snprintf(c.open_sql, sizeof(c.open_sql), "PRAGMA max_page_count=%" PRId64, pages);
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    for (int i = 0; i < 60; i++) {
        pol_ledger_row r = make_row(i, 1000 + i);
        memset(r.reason, 'r', sizeof(r.reason) - 1);
        assert_true(pol_ledger_append(l, &r));
    }
    pol_ledger_stats st;
    assert_true(wait_stats(l, is_degraded, 0, &st));
    assert_non_null(strstr(st.last_error, "full"));
    assert_int_equal(st.written, 0);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM requests"), 0);
    db_exec(db, "DELETE FROM filler");
    assert_int_equal(pol_ledger_flush_wait(l, 20000, err, sizeof(err)), 0);
    pol_ledger_get_stats(l, &st);
    assert_false(st.degraded);
    assert_int_equal(st.written, 60);
    assert_int_equal(st.dropped, 0);
    assert_true(db_int(db, "PRAGMA page_count") <= pages);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM requests"), 60);
    sqlite3_close(db);
    pol_ledger_free(l);
}

/* A read-only file (as a user the permissions apply to: root ignores them,
 * so as root the scenario runs in a child that drops to nobody). Checks
 * return the failing line, as cmocka cannot assert across fork. */
#define CHECK(x) do { if (!(x)) return __LINE__; } while (0)
static int read_only_scenario(const char *path)
{
    char err[512];
    pol_ledger_config c;
    config_for(&c, path);
    pol_ledger *l;
    CHECK(pol_ledger_open(&l, &c, err, sizeof(err)) == 0);
    pol_ledger_free(l);
    CHECK(chmod(path, 0444) == 0);
    CHECK(pol_ledger_open(&l, &c, err, sizeof(err)) == 0);
    for (int i = 0; i < 5; i++) {
        pol_ledger_row r = make_row(i, 1000 + i);
        CHECK(pol_ledger_append(l, &r));
    }
    pol_ledger_stats st;
    CHECK(wait_stats(l, is_degraded, 0, &st));
    CHECK(strstr(st.last_error, "read") != NULL);
    CHECK(st.written == 0);
    /* SQLite gives -wal and -shm the database file's mode: all three become writable */
    char side[160];
    CHECK(chmod(path, 0644) == 0);
    snprintf(side, sizeof(side), "%s-wal", path);
    CHECK(chmod(side, 0644) == 0 || errno == ENOENT);
    snprintf(side, sizeof(side), "%s-shm", path);
    CHECK(chmod(side, 0644) == 0 || errno == ENOENT);
    CHECK(pol_ledger_flush_wait(l, 20000, err, sizeof(err)) == 0);
    pol_ledger_get_stats(l, &st);
    CHECK(!st.degraded && st.written == 5);
    pol_ledger_free(l);
    return 0;
}

static void test_read_only_file_degrades_and_recovers(void **state)
{
    (void)state;
    char path[128];
    db_path(path, sizeof(path), "ro/readonly.db");
    char ro_dir[128];
    db_path(ro_dir, sizeof(ro_dir), "ro");
    assert_int_equal(mkdir(ro_dir, 0777), 0);
    if (geteuid() != 0) {
        assert_int_equal(read_only_scenario(path), 0);
    } else {
        assert_int_equal(chmod(dir, 0755), 0);
        assert_int_equal(chown(ro_dir, 65534, 65534), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(1);
            prctl(PR_SET_DUMPABLE, 1);
            int line = read_only_scenario(path);
            if (line) fprintf(stderr, "read-only scenario: check at line %d failed\n", line);
            _exit(line ? 1 : 0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(count_rows(path), 5);
}

static void test_corrupt_file_degrades_and_recovers(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "corrupt.db");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 512; i++) fputs("this is no database, just text\n", f);
    fclose(f);
    pol_ledger_config c;
    config_for(&c, path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);   /* the daemon keeps answering */
    pol_ledger_stats st;
    pol_ledger_get_stats(l, &st);
    assert_true(st.degraded);
    assert_non_null(strstr(st.last_error, "not a database"));
    assert_non_null(strstr(st.last_error, "move the file away"));
    for (int i = 0; i < 7; i++) {
        pol_ledger_row r = make_row(i, 1000 + i);
        assert_true(pol_ledger_append(l, &r));
    }
    assert_int_equal(pol_ledger_flush_wait(l, 100, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "7 rows still unwritten"));
    /* the operator moves the damaged file away: a new ledger starts */
    char moved[160];
    snprintf(moved, sizeof(moved), "%s.damaged", path);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(pol_ledger_flush_wait(l, 20000, err, sizeof(err)), 0);
    pol_ledger_get_stats(l, &st);
    assert_false(st.degraded);
    assert_int_equal(st.written, 7);
    pol_ledger_free(l);
    assert_int_equal(count_rows(path), 7);

    /* the reader says what is wrong, too */
    pol_audit *a;
    assert_int_equal(pol_audit_open(&a, moved, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a database"));
    db_path(path, sizeof(path), "missing.db");
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(pol_audit_vacuum(path, err, sizeof(err)), -1);
    assert_int_equal(access(path, F_OK), -1);   /* maintenance creates nothing */
}

/* Dropped at close: a ledger freed while the database fails counts what it
 * could not write instead of hanging. */
static void test_free_while_failing_counts_and_returns(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "closing.db");
    pol_ledger_config c;
    config_for(&c, path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    sqlite3 *holder = db_open(path);
    db_exec(holder, "BEGIN IMMEDIATE");
    for (int i = 0; i < 3; i++) {
        pol_ledger_row r = make_row(i, 1000 + i);
        assert_true(pol_ledger_append(l, &r));
    }
    pol_ledger_stats st;
    assert_true(wait_stats(l, is_degraded, 0, &st));
    pol_ledger_free(l);
    pthread_mutex_lock(&logged.mu);
    assert_non_null(strstr(logged.last, "closing with 3 rows unwritten"));
    pthread_mutex_unlock(&logged.mu);
    db_exec(holder, "ROLLBACK");
    assert_int_equal(db_int(holder, "SELECT COUNT(*) FROM requests"), 0);
    sqlite3_close(holder);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "future.db");
    sqlite3 *db = db_open(path);
    db_exec(db, "CREATE TABLE requests(x); PRAGMA user_version=99");
    sqlite3_close(db);
    pol_ledger_config c;
    config_for(&c, path);
    pol_ledger *l = (pol_ledger *)&c;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), -1);
    assert_null(l);
    assert_non_null(strstr(err, "schema version 99 is newer than this build knows"));
    pol_audit *a;
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "newer"));
    assert_int_equal(pol_audit_vacuum(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "newer"));
}

/* The schema as version 1 wrote it (a fixture: it must never change). */
static const char v1_schema[] =
    "CREATE TABLE requests ("
    " id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,"
    " tenant TEXT, key_id TEXT, model TEXT NOT NULL, route TEXT NOT NULL, zone TEXT NOT NULL,"
    " reason TEXT NOT NULL, detectors TEXT NOT NULL, upstream_model TEXT,"
    " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL, tokens_estimated INTEGER NOT NULL,"
    " cost_micro_usd INTEGER NOT NULL, counterfactual_micro_usd INTEGER NOT NULL,"
    " latency_us INTEGER NOT NULL, ttft_us INTEGER, status INTEGER NOT NULL, error_code TEXT,"
    " streamed INTEGER NOT NULL, client_hung_up INTEGER NOT NULL) STRICT;"
    "CREATE INDEX requests_ts ON requests(ts_ms);"
    "CREATE INDEX requests_tenant_ts ON requests(tenant, ts_ms);"
    "CREATE INDEX requests_route_ts ON requests(route, ts_ms);"
    "INSERT INTO requests VALUES (1, 'old-1', 1600000000000, 'acme', NULL, 'gpt-4o', 'openai',"
    " 'external', 'explicit model', '', 'gpt-4o-2024', 100, 20, 0, 0, 450, 450, 80000, NULL, 200,"
    " NULL, 0, 0);"
    "PRAGMA user_version=1;";

static void test_migrates_from_version_1(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "v1.db");
    sqlite3 *db = db_open(path);
    db_exec(db, v1_schema);
    sqlite3_close(db);
    pol_audit *a;
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), -1);   /* readers do not migrate */
    assert_non_null(strstr(err, "older"));
    assert_non_null(strstr(err, "--vacuum"));

    pol_ledger_config c;
    config_for(&c, path);
    c.store_prompts = true;
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    pol_ledger_row r = make_row(1, 1700000000000LL);
    r.prompt_redacted = "call [phone]";
    assert_true(pol_ledger_append(l, &r));
    pol_ledger_free(l);

    db = db_open(path);
    assert_int_equal(db_int(db, "PRAGMA user_version"), POL_STORE_SCHEMA_VERSION);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM pragma_index_list('requests') WHERE name = 'requests_request_id'"), 1);
    sqlite3_close(db);
    cJSON *doc;
    page_all(path, &doc);
    cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    assert_int_equal(cJSON_GetArraySize(data), 2);
    cJSON *old = cJSON_GetArrayItem(data, 1);
    assert_string_equal(str(old, "request_id"), "old-1");
    assert_string_equal(str(old, "tenant"), "acme");
    assert_int_equal(raw_int(old, "cost_micro_usd"), 450);
    assert_null(cJSON_GetObjectItemCaseSensitive(old, "prompt_redacted"));
    assert_string_equal(str(cJSON_GetArrayItem(data, 0), "prompt_redacted"), "call [phone]");
    cJSON_Delete(doc);

    /* maintenance migrates too */
    db_path(path, sizeof(path), "v1-vacuum.db");
    db = db_open(path);
    db_exec(db, v1_schema);
    sqlite3_close(db);
    assert_int_equal(pol_audit_vacuum(path, err, sizeof(err)), 0);
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), 0);
    pol_audit_close(a);
}

static void test_retention_deletes_in_batches(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "retention.db");
    pol_ledger_config c;
    config_for(&c, path);
    c.flush_ms = 500;
    c.retention_days = 1;
    c.retention_batch_rows = 100;
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    int64_t now = pol_now_ms();
    for (int i = 0; i < 250; i++) {
        pol_ledger_row r = make_row(i, now - 3 * DAY_MS + i);
        assert_true(pol_ledger_append(l, &r));
    }
    for (int i = 0; i < 5; i++) {
        pol_ledger_row r = make_row(1000 + i, now + i);
        assert_true(pol_ledger_append(l, &r));
    }
    /* each tick deletes at most one batch: the counter steps 100, 200, 250 */
    bool seen[3] = {false, false, false};
    pol_ledger_stats st;
    for (int i = 0; i < 20000 && !seen[2]; i++) {
        pol_ledger_get_stats(l, &st);
        if (st.deleted == 100) seen[0] = true;
        else if (st.deleted == 200) seen[1] = true;
        else if (st.deleted == 250) seen[2] = true;
        else assert_int_equal(st.deleted, 0);
        sleep_ms(1);
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    pol_ledger_free(l);
    sqlite3 *db = db_open(path);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM requests"), 5);
    assert_int_equal(db_int(db, "SELECT MIN(request_id) = 'req-001000' FROM requests"), 1);
    sqlite3_close(db);
}

typedef struct {
    pol_ledger *l;
    int thread, n, refused;
} appender;

static void *append_many(void *arg)
{
    appender *a = arg;
    for (int i = 0; i < a->n; i++) {
        pol_ledger_row r = make_row(a->thread * 100000 + i, 1000 + i);
        if (!pol_ledger_append(a->l, &r)) a->refused++;
    }
    return NULL;
}

static void test_concurrent_appenders_lose_nothing(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "concurrent.db");
    pol_ledger_config c;
    config_for(&c, path);
    c.batch_rows = 64;
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    enum { THREADS = 4, EACH = 1000 };
    pthread_t th[THREADS];
    appender ap[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ap[t] = (appender){l, t, EACH, 0};
        assert_int_equal(pthread_create(&th[t], NULL, append_many, &ap[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(ap[t].refused, 0);
    }
    assert_int_equal(pol_ledger_flush_wait(l, 30000, err, sizeof(err)), 0);
    pol_ledger_stats st;
    pol_ledger_get_stats(l, &st);
    assert_int_equal(st.written, THREADS * EACH);
    assert_int_equal(st.dropped, 0);
    pol_ledger_free(l);
    sqlite3 *db = db_open(path);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM requests"), THREADS * EACH);
    assert_int_equal(db_int(db, "SELECT COUNT(DISTINCT request_id) FROM requests"), THREADS * EACH);
    sqlite3_close(db);
}

/* ---- reading ---- */

typedef struct {
    int64_t requests, prompt, completion, cost, cf, errors, local;
    int64_t lat[512], ttft[512];
    int n_lat, n_ttft;
} expect_group;

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank, the slow way: the smallest k with k/n >= p/100. */
static int64_t percentile(int64_t *v, int n, int p)
{
    if (n == 0) return -1;
    qsort(v, (size_t)n, sizeof(*v), cmp64);
    int k = 1;
    while (k * 100 < p * n) k++;
    return v[k - 1];
}

static void expect_add(expect_group *g, const pol_ledger_row *r)
{
    g->requests++;
    g->prompt += r->prompt_tokens;
    g->completion += r->completion_tokens;
    g->cost += r->cost_micro_usd;
    g->cf += r->counterfactual_micro_usd;
    g->errors += r->status >= 400;
    g->local += strcmp(r->route, "local") == 0;
    g->lat[g->n_lat++] = r->latency_us;
    if (r->ttft_us >= 0) g->ttft[g->n_ttft++] = r->ttft_us;
}

static void check_ms(const cJSON *o, const char *name, int64_t us)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (us < 0) assert_true(cJSON_IsNull(v));
    else assert_true(cJSON_IsNumber(v) && v->valuedouble == (double)us / 1000.0);
}

static void check_group(const cJSON *o, expect_group *g, int64_t all)
{
    char usd[64];
    assert_int_equal(raw_int(o, "requests"), g->requests);
    assert_int_equal(raw_int(o, "prompt_tokens"), g->prompt);
    assert_int_equal(raw_int(o, "completion_tokens"), g->completion);
    assert_int_equal(raw_int(o, "cost_micro_usd"), g->cost);
    assert_int_equal(raw_int(o, "counterfactual_micro_usd"), g->cf);
    assert_int_equal(raw_int(o, "savings_micro_usd"), g->cf - g->cost);
    snprintf(usd, sizeof(usd), "%" PRId64 ".%06" PRId64, g->cost / 1000000, g->cost % 1000000);
    assert_string_equal(raw_text(o, "cost_usd"), usd);
    snprintf(usd, sizeof(usd), "%" PRId64 ".%06" PRId64, (g->cf - g->cost) / 1000000, (g->cf - g->cost) % 1000000);
    assert_string_equal(raw_text(o, "savings_usd"), usd);
    assert_int_equal(raw_int(o, "errors"), g->errors);
    assert_true(cJSON_GetObjectItemCaseSensitive(o, "share")->valuedouble == (double)g->requests / (double)all);
    assert_true(cJSON_GetObjectItemCaseSensitive(o, "local_share")->valuedouble ==
                (double)g->local / (double)g->requests);
    check_ms(o, "p50_latency_ms", percentile(g->lat, g->n_lat, 50));
    check_ms(o, "p95_latency_ms", percentile(g->lat, g->n_lat, 95));
    check_ms(o, "p50_ttft_ms", percentile(g->ttft, g->n_ttft, 50));
    check_ms(o, "p95_ttft_ms", percentile(g->ttft, g->n_ttft, 95));
}

#define BASE_MS 1764547200000LL  /* 2025-12-01T00:00:00Z */

/* 300 rows over three days; the window keeps the middle 200ish. */
static void fill_report_db(const char *path)
{
    char err[512];
    pol_ledger_config c;
    config_for(&c, path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    for (int i = 0; i < 300; i++) {
        pol_ledger_row r = make_row(i, BASE_MS + (int64_t)i * (DAY_MS / 100));
        if (i == 150) snprintf(r.route, sizeof(r.route), "solo");   /* a group of one */
        assert_true(pol_ledger_append(l, &r));
    }
    pol_ledger_free(l);
}

static void test_spend_matches_independent_sums(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "report.db");
    fill_report_db(path);
    pol_spend_query q = {BASE_MS + DAY_MS / 2, BASE_MS + 5 * DAY_MS / 2, POL_BY_ROUTE};
    /* expected, row by row */
    static expect_group total, by_route[4];
    memset(&total, 0, sizeof(total));
    memset(by_route, 0, sizeof(by_route));
    const char *names[4] = {"claude", "local", "openai", "solo"};   /* sorted */
    for (int i = 0; i < 300; i++) {
        pol_ledger_row r = make_row(i, BASE_MS + (int64_t)i * (DAY_MS / 100));
        if (i == 150) snprintf(r.route, sizeof(r.route), "solo");
        if (r.ts_ms < q.since_ms || r.ts_ms >= q.until_ms) continue;
        expect_add(&total, &r);
        for (int g = 0; g < 4; g++)
            if (strcmp(names[g], r.route) == 0) expect_add(&by_route[g], &r);
    }
    assert_int_equal(total.requests, 200);
    pol_audit *a;
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), 0);
    cJSON *doc;
    assert_int_equal(pol_audit_spend(a, &q, &doc, err, sizeof(err)), 0);
    assert_string_equal(str(doc, "since"), "2025-12-01T12:00:00Z");
    assert_string_equal(str(doc, "until"), "2025-12-03T12:00:00Z");
    assert_string_equal(str(doc, "by"), "route");
    check_group(cJSON_GetObjectItemCaseSensitive(doc, "total"), &total, total.requests);
    cJSON *groups = cJSON_GetObjectItemCaseSensitive(doc, "groups");
    assert_int_equal(cJSON_GetArraySize(groups), 4);
    for (int g = 0; g < 4; g++) {
        cJSON *o = cJSON_GetArrayItem(groups, g);
        assert_string_equal(str(o, "key"), names[g]);
        check_group(o, &by_route[g], total.requests);
    }
    cJSON_Delete(doc);

    /* by day: UTC buckets */
    q.by = POL_BY_DAY;
    assert_int_equal(pol_audit_spend(a, &q, &doc, err, sizeof(err)), 0);
    groups = cJSON_GetObjectItemCaseSensitive(doc, "groups");
    assert_int_equal(cJSON_GetArraySize(groups), 3);
    assert_string_equal(str(cJSON_GetArrayItem(groups, 0), "key"), "2025-12-01");
    assert_int_equal(raw_int(cJSON_GetArrayItem(groups, 0), "requests"), 50);
    assert_int_equal(raw_int(cJSON_GetArrayItem(groups, 1), "requests"), 100);
    assert_string_equal(str(cJSON_GetArrayItem(groups, 2), "key"), "2025-12-03");
    cJSON_Delete(doc);

    /* by tenant: the rows without one are "-" */
    q.by = POL_BY_TENANT;
    assert_int_equal(pol_audit_spend(a, &q, &doc, err, sizeof(err)), 0);
    groups = cJSON_GetObjectItemCaseSensitive(doc, "groups");
    assert_int_equal(cJSON_GetArraySize(groups), 4);
    assert_string_equal(str(cJSON_GetArrayItem(groups, 0), "key"), "-");
    cJSON_Delete(doc);

    /* an empty window: zeros and nulls, no groups; no grouping: null by */
    pol_spend_query none = {0, 1000, POL_BY_NONE};
    assert_int_equal(pol_audit_spend(a, &none, &doc, err, sizeof(err)), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "by")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "since")));
    cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "total");
    assert_int_equal(raw_int(t, "requests"), 0);
    assert_string_equal(raw_text(t, "cost_usd"), "0.000000");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(t, "p50_latency_ms")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "groups")), 0);
    cJSON_Delete(doc);

    pol_spend_query backwards = {2000, 1000, POL_BY_NONE};
    assert_int_equal(pol_audit_spend(a, &backwards, &doc, err, sizeof(err)), -1);
    assert_null(doc);
    assert_non_null(strstr(err, "since is after until"));
    pol_audit_close(a);
}

static void test_small_group_percentiles(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "small.db");
    pol_ledger_config c;
    config_for(&c, path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    /* route a: latencies 30, 10, 20 ms (p50 20, p95 30); route b: one row, 7 ms */
    const struct { const char *route; int64_t lat; } rows[] = {{"a", 30000}, {"a", 10000}, {"a", 20000}, {"b", 7000}};
    for (int i = 0; i < 4; i++) {
        pol_ledger_row r = make_row(i, 5000 + i);
        snprintf(r.route, sizeof(r.route), "%s", rows[i].route);
        r.latency_us = rows[i].lat;
        r.ttft_us = i == 1 ? 500 : -1;
        assert_true(pol_ledger_append(l, &r));
    }
    pol_ledger_free(l);
    pol_audit *a;
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), 0);
    pol_spend_query q = {0, INT64_MAX, POL_BY_ROUTE};
    cJSON *doc;
    assert_int_equal(pol_audit_spend(a, &q, &doc, err, sizeof(err)), 0);
    cJSON *ga = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "groups"), 0);
    cJSON *gb = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "groups"), 1);
    check_ms(ga, "p50_latency_ms", 20000);
    check_ms(ga, "p95_latency_ms", 30000);
    check_ms(ga, "p50_ttft_ms", 500);
    check_ms(ga, "p95_ttft_ms", 500);
    check_ms(gb, "p50_latency_ms", 7000);
    check_ms(gb, "p95_latency_ms", 7000);
    check_ms(gb, "p50_ttft_ms", -1);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "total");
    check_ms(t, "p50_latency_ms", 10000);   /* 7, 10, 20, 30: rank 2 */
    check_ms(t, "p95_latency_ms", 30000);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "until")));
    cJSON_Delete(doc);
    pol_audit_close(a);
}

static void test_requests_pages(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "pages.db");
    pol_ledger_config c;
    config_for(&c, path);
    pol_ledger *l;
    assert_int_equal(pol_ledger_open(&l, &c, err, sizeof(err)), 0);
    for (int i = 0; i < 25; i++) {
        pol_ledger_row r = make_row(i, 10000 + (i / 2) * 10);   /* pairs share a time */
        assert_true(pol_ledger_append(l, &r));
    }
    pol_ledger_free(l);
    pol_audit *a;
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), 0);
    pol_requests_query q = {.limit = 10};
    bool seen[25] = {false};
    int pages = 0, total = 0;
    int64_t last_ts = INT64_MAX;
    for (;;) {
        cJSON *doc;
        assert_int_equal(pol_audit_requests(a, &q, &doc, err, sizeof(err)), 0);
        cJSON *row;
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(doc, "data")) {
            int id = atoi(str(row, "request_id") + 4);
            assert_false(seen[id]);
            seen[id] = true;
            assert_true(raw_int(row, "ts_ms") <= last_ts);   /* newest first */
            last_ts = raw_int(row, "ts_ms");
            total++;
        }
        pages++;
        const char *next = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "next_cursor"));
        if (next) snprintf(q.cursor, sizeof(q.cursor), "%s", next);
        cJSON_Delete(doc);
        if (!next) break;
        assert_true(pages < 10);
    }
    assert_int_equal(pages, 3);
    assert_int_equal(total, 25);

    /* filters */
    pol_requests_query f = {.limit = 1000, .tenant = "tenant-1", .route = "openai", .since_ms = 10050};
    cJSON *doc;
    assert_int_equal(pol_audit_requests(a, &f, &doc, err, sizeof(err)), 0);
    int want = 0;
    for (int i = 0; i < 25; i++) {
        pol_ledger_row r = make_row(i, 10000 + (i / 2) * 10);
        want += strcmp(r.tenant, "tenant-1") == 0 && strcmp(r.route, "openai") == 0 && r.ts_ms >= 10050;
    }
    assert_true(want > 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "data")), want);
    cJSON_Delete(doc);

    /* bad input: an error that says what to do, never a crash */
    const char *bad_cursors[] = {"x", "12", "12.", ".5", "1.2.3", "99999999999999999999.1", "-1.2"};
    for (size_t i = 0; i < sizeof(bad_cursors) / sizeof(bad_cursors[0]); i++) {
        pol_requests_query b = {.limit = 10};
        snprintf(b.cursor, sizeof(b.cursor), "%s", bad_cursors[i]);
        assert_int_equal(pol_audit_requests(a, &b, &doc, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "not a cursor"));
    }
    pol_requests_query b = {.limit = 0};
    assert_int_equal(pol_audit_requests(a, &b, &doc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "limit"));
    b.limit = 1001;
    assert_int_equal(pol_audit_requests(a, &b, &doc, err, sizeof(err)), -1);
    pol_audit_close(a);
}

static char *render(const cJSON *doc, pol_format f)
{
    char *text = NULL, err[256];
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(pol_spend_render(doc, f, out, err, sizeof(err)), 0);
    fclose(out);
    /* a copy: gcc -O3 otherwise takes pointers into it for pointers to the
     * local `text` whose address open_memstream kept (-Wdangling-pointer) */
    char *copy = strdup(text);
    free(text);
    assert_non_null(copy);
    return copy;
}

static void test_render_table_csv_json(void **state)
{
    (void)state;
    char path[128], err[512];
    db_path(path, sizeof(path), "render.db");
    fill_report_db(path);
    pol_audit *a;
    assert_int_equal(pol_audit_open(&a, path, err, sizeof(err)), 0);
    pol_spend_query q = {0, INT64_MAX, POL_BY_ROUTE};
    cJSON *doc;
    assert_int_equal(pol_audit_spend(a, &q, &doc, err, sizeof(err)), 0);
    pol_audit_close(a);
    const char *total_cost = raw_text(cJSON_GetObjectItemCaseSensitive(doc, "total"), "cost_usd");

    char *csv = render(doc, POL_FORMAT_CSV);
    const char header[] = "group,requests,share,local,prompt_tok,compl_tok,cost_usd,counterfactual_usd,"
                          "savings_usd,errors,p50_ms,p95_ms,p50_ttft_ms,p95_ttft_ms\n";
    assert_true(strncmp(csv, header, strlen(header)) == 0);
    int lines = 0;
    for (char *p = csv; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + 4 + 1);   /* header, four routes, total */
    char *total_line = strstr(csv, "\ntotal,300,100.0%,");
    assert_non_null(total_line);
    assert_non_null(strstr(total_line, total_cost));
    assert_non_null(strstr(csv, "\nsolo,1,0.3%,0.0%,"));
    free(csv);

    char *table = render(doc, POL_FORMAT_TABLE);
    assert_true(strncmp(table, "group ", 6) == 0);
    assert_non_null(strstr(table, "\ntotal "));
    assert_non_null(strstr(table, total_cost));
    /* aligned: every line as long as the header */
    size_t width = strcspn(table, "\n");
    for (char *p = table; *p; p += strcspn(p, "\n") + 1) assert_int_equal(strcspn(p, "\n"), width);
    free(table);

    char *json = render(doc, POL_FORMAT_JSON);
    cJSON *back = cJSON_Parse(json);
    assert_non_null(back);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(back, "total"),
                                                      "requests")->valueint, 300);
    cJSON_Delete(back);
    free(json);
    cJSON_Delete(doc);

    pol_format f;
    pol_group_by by;
    assert_int_equal(pol_format_parse("csv", &f, err, sizeof(err)), 0);
    assert_int_equal(f, POL_FORMAT_CSV);
    assert_int_equal(pol_format_parse("xml", &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "table, csv, json"));
    assert_int_equal(pol_format_parse(NULL, &f, err, sizeof(err)), -1);
    assert_int_equal(pol_group_by_parse("hour", &by, err, sizeof(err)), 0);
    assert_string_equal(pol_group_by_name(by), "hour");
    assert_int_equal(pol_group_by_parse("", &by, err, sizeof(err)), 0);
    assert_int_equal(by, POL_BY_NONE);
    assert_int_equal(pol_group_by_parse("tenants", &by, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tenant, key, route, model, day or hour"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_price_integer_and_rounding),
        cmocka_unit_test(test_price_reference),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_config_defaults_and_off),
        cmocka_unit_test(test_rows_round_trip),
        cmocka_unit_test(test_batches_of_batch_rows),
        cmocka_unit_test(test_queue_wraps_packed_rows),
        cmocka_unit_test(test_locked_stalls_drops_and_recovers),
        cmocka_unit_test(test_disk_full_degrades_and_recovers),
        cmocka_unit_test(test_read_only_file_degrades_and_recovers),
        cmocka_unit_test(test_corrupt_file_degrades_and_recovers),
        cmocka_unit_test(test_free_while_failing_counts_and_returns),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_migrates_from_version_1),
        cmocka_unit_test(test_retention_deletes_in_batches),
        cmocka_unit_test(test_concurrent_appenders_lose_nothing),
        cmocka_unit_test(test_spend_matches_independent_sums),
        cmocka_unit_test(test_small_group_percentiles),
        cmocka_unit_test(test_requests_pages),
        cmocka_unit_test(test_render_table_csv_json),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
