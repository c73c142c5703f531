/* test_ledger_e2e.c: the ledger proved end to end with the real daemon.
 *
 * The unit tests (tests/unit/test_ledger.c) prove the library; this file
 * proves what an operator relies on: the real `junction serve`, with the
 * small stories260K model and the fake frontier, answering a mixed workload
 * (local, upstream whole and streamed, errors, hang-ups) writes one row per
 * request whose tokens are the `usage` the client saw and whose money is
 * the configured prices to the micro-dollar; `junction audit`,
 * /admin/spend and /metrics all agree with those rows; SIGTERM loses no
 * answered request's row and SIGKILL only the last flush interval; and a
 * ledger that cannot write (a write lock held by another connection, a
 * read-only file, a corrupt file, a full disk) never stops the answers,
 * shows in /readyz, and makes the daemon not ready with --ledger-required.
 * The rows are read with SQLite directly (read-only), not through the
 * policy library under test.
 */
#include "testlib.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#ifndef JUNCTION_SHARED_DIR
#error "JUNCTION_SHARED_DIR must name the shared folder (models)"
#endif

#define MODEL JUNCTION_SHARED_DIR "/models/stories260K.gguf"
#define ADMIN_KEY "ledger-e2e-admin"

/* ---- prices: micro-USD per million tokens (and per million engine-ms) ----
 * The configuration says them in USD; these are the same numbers, written
 * independently, so a wrong conversion in the daemon fails the test. */
typedef struct {
    const char *route;
    int64_t in, out, engine;
} price;

static const price prices[] = {
    {"local", 500000, 1500000, 2000000},   /* 0.5 / 1.5 USD per Mtok, 0.002 USD per engine-second */
    {"openai", 2500000, 10000000, 0},      /* 2.5 / 10 */
    {"claude", 3750000, 15250000, 0},      /* 3.75 / 15.25: the most expensive external one, the reference */
    {"none", 0, 0, 0},                     /* refused before any route */
};
#define REFERENCE (&prices[2])

/* Whether the daemon under test was given the local engine-second price. */
static bool engine_priced;

static const price *price_of(const char *route)
{
    for (size_t i = 0; i < sizeof(prices) / sizeof(prices[0]); i++)
        if (!strcmp(prices[i].route, route)) return &prices[i];
    fail_msg("a row with an unknown route '%s'", route);
    return NULL;
}

/* round_half_up((prompt × in + completion × out + engine_ms × engine) / 10^6) */
static int64_t micro_cost(const price *p, int64_t prompt, int64_t completion, int64_t engine_ms)
{
    int64_t n = prompt * p->in + completion * p->out + engine_ms * p->engine;
    return n / 1000000 + (n % 1000000 >= 500000);
}

/* ---- the daemon and its fake frontier ---- */

typedef struct {
    test_daemon d;
    test_fake fake;
    char dir[64];          /* holds the ledger */
    char db[128];
    char cfg[64];
} junction;

/* The daemons run as this user when it is not 0: the read-only test runs
 * it as nobody when we are root, as root ignores file permissions. */
static uid_t daemon_uid;

/* Real and effective ids become `id`'s, the saved one stays root's, so
 * become(0) returns afterwards (for the daemon's fork and exec). */
static void become(uid_t id)
{
    if (id == 0) {
        assert_int_equal(setresuid(0, 0, 0), 0);
        assert_int_equal(setresgid(0, 0, 0), 0);
    } else {
        assert_int_equal(setresgid(id, id, 0), 0);
        assert_int_equal(setresuid(id, id, 0), 0);
    }
}

/* Start the fake frontier and the daemon with the prices above, the ledger
 * at j->db (made by `prepare` first when not NULL) flushed every `flush_ms`;
 * `engine_price` adds the local engine-second price; `more` are extra
 * arguments (NULL-terminated, may be NULL). */
static void start_with(junction *j, int flush_ms, bool engine_price, const char *const *more,
                       void (*prepare)(const char *db))
{
    memset(j, 0, sizeof(*j));
    snprintf(j->dir, sizeof(j->dir), "/tmp/junction-le-XXXXXX");
    assert_non_null(mkdtemp(j->dir));
    snprintf(j->db, sizeof(j->db), "%s/ledger.db", j->dir);
    if (prepare) prepare(j->db);
    assert_int_equal(fake_start(&j->fake, NULL), 0);
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "{\"upstreams\": ["
             "{\"name\":\"openai\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"max_retries\":0,"
             "\"price_input_per_mtok\":2.5,\"price_output_per_mtok\":10},"
             "{\"name\":\"claude\",\"provider\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"max_retries\":0,"
             "\"price_input_per_mtok\":3.75,\"price_output_per_mtok\":15.25}]}",
             j->fake.port, j->fake.port);
    write_temp_file(j->cfg, cfg);
    char flush[16];
    snprintf(flush, sizeof(flush), "%d", flush_ms);
    const char *args[48] = {"--config", j->cfg, "--model", MODEL, "--threads", "1", "--ledger", j->db,
                            "--ledger-flush-ms", flush, "--local-price-input-per-mtok", "0.5",
                            "--local-price-output-per-mtok", "1.5"};
    int n = 14;
    engine_priced = engine_price;
    if (engine_price) {
        args[n++] = "--local-price-per-engine-second";
        args[n++] = "0.002";
    }
    for (int i = 0; more && more[i] && n < 46; i++) args[n++] = more[i];
    args[n] = NULL;
    const char *env[] = {"JUNCTION_ADMIN_KEYS=" ADMIN_KEY, NULL};
    if (daemon_uid) {
        assert_int_equal(chown(j->dir, daemon_uid, daemon_uid), 0);
        assert_int_equal(chmod(j->cfg, 0644), 0);
        become(daemon_uid);
    }
    int started = daemon_start(&j->d, args, env);
    if (daemon_uid) become(0);
    assert_int_equal(started, 0);
}

static void start(junction *j, int flush_ms, bool engine_price, const char *const *more)
{
    start_with(j, flush_ms, engine_price, more, NULL);
}

/* The daemon of the test running now: its teardown stops it, also after a
 * failed assertion. */
static junction J;
static void forget_rows(void);

/* A clean stop: SIGTERM, and the daemon exits 0. */
static void stop(junction *j)
{
    if (j->d.pid <= 0) return; /* already gone (the test waited for it) */
    kill(j->d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&j->d, 30), 0);
}

static int teardown(void **state)
{
    (void)state;
    if (J.d.pid > 0 || J.d.dir[0]) daemon_cleanup(&J.d);
    if (J.fake.pid > 0) fake_stop(&J.fake);
    if (J.cfg[0]) unlink(J.cfg);
    if (J.dir[0]) remove_tree(J.dir);
    memset(&J, 0, sizeof(J));
    daemon_uid = 0;
    forget_rows();
    return 0;
}

/* ---- the client's side ---- */

typedef struct {
    long status;
    bool has_usage, estimated, done;
    int64_t prompt, completion, cached;
    int content_chunks;       /* streamed pieces with non-empty text */
} seen;

static int64_t json_int(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v)) fail_msg("'%s' is not a number", name);
    return (int64_t)v->valuedouble;
}

static void take_usage(seen *s, const cJSON *doc)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(doc, "usage");
    if (!cJSON_IsObject(u)) return;
    s->has_usage = true;
    s->prompt = json_int(u, "prompt_tokens");
    s->completion = json_int(u, "completion_tokens");
    const cJSON *cached = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"),
                                                           "cached_tokens");
    s->cached = cJSON_IsNumber(cached) ? (int64_t)cached->valuedouble : 0;
    s->estimated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "estimated"));
}

static bool chunk_has_text(const cJSON *chunk)
{
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c0, "delta"), "content");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(c0, "text");
    return cJSON_IsString(t) && t->valuestring[0];
}

/* POST `body` with our own X-Request-Id; what came back goes to *s. */
static void ask(const junction *j, const char *id, const char *path, const char *body, seen *s)
{
    memset(s, 0, sizeof(*s));
    char url[128], idh[160];
    snprintf(url, sizeof(url), "%s%s", j->d.url, path);
    snprintf(idh, sizeof(idh), "X-Request-Id: %s", id);
    const char *headers[] = {"Content-Type: application/json", idh, NULL};
    http_response r;
    assert_int_equal(http_request("POST", url, body, strlen(body), headers, &r), 0);
    s->status = r.status;
    if (!strncmp(r.body, "data: ", 6)) {
        char *save = NULL; /* strtok_r: several threads ask at once */
        for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "data: ", 6)) continue;
            if (!strncmp(line + 6, "[DONE]", 6)) {
                s->done = true;
                continue;
            }
            cJSON *c = cJSON_Parse(line + 6);
            if (!c) fail_msg("request %s: a stream event is not JSON: %s", id, line);
            take_usage(s, c);
            s->content_chunks += chunk_has_text(c);
            cJSON_Delete(c);
        }
    } else {
        cJSON *doc = cJSON_Parse(r.body);
        if (!doc) fail_msg("request %s: the answer is not JSON: %s", id, r.body);
        take_usage(s, doc);
        cJSON_Delete(doc);
    }
    http_response_free(&r);
}

static void chat_body(char *buf, size_t len, const char *model, const char *content, bool stream, int max_tokens)
{
    snprintf(buf, len,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":%d,"
             "\"temperature\":0%s}",
             model, content, max_tokens, stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "");
}

/* Send a streamed request on a raw socket, read until `chunks` pieces of
 * text arrived, and hang up. Returns the pieces read. */
static int hang_up_after(const junction *j, const char *id, const char *body, int chunks)
{
    int fd = tcp_connect(j->d.port);
    assert_true(fd >= 0);
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "X-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n%s",
                     id, strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, (size_t)n), 0);
    static char got[1 << 16];
    size_t have = 0;
    int pieces = 0;
    double deadline = now_seconds() + 30;
    while (pieces < chunks && now_seconds() < deadline && have < sizeof(got) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t k = read(fd, got + have, sizeof(got) - 1 - have);
        if (k <= 0) break;
        have += (size_t)k;
        got[have] = '\0';
        pieces = 0;
        for (const char *at = got; (at = strstr(at, "\"content\":\"")); at++) pieces += at[11] != '"';
    }
    close(fd);
    if (pieces < chunks) fail_msg("request %s: %d of %d pieces before the answer ended: %s", id, pieces, chunks, got);
    return pieces;
}

static long get(const junction *j, const char *path, bool admin, char **body)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", j->d.url, path);
    const char *headers[] = {"Authorization: Bearer " ADMIN_KEY, NULL};
    http_response r;
    assert_int_equal(http_request("GET", url, NULL, 0, admin ? headers : NULL, &r), 0);
    long status = r.status;
    *body = r.body;
    r.body = NULL;
    http_response_free(&r);
    return status;
}

/* ---- the rows, read with SQLite itself ---- */

typedef struct {
    char id[136], route[64], error_code[64];
    int status;
    int64_t prompt, completion, cached, cost, counterfactual, latency_us, ttft_us;
    bool estimated, streamed, hung_up;
} row;

/* The rows read last: read_rows replaces them, the teardown frees them. */
static row *last_rows;

static void forget_rows(void)
{
    free(last_rows);
    last_rows = NULL;
}

static sqlite3 *open_db(const char *db)
{
    sqlite3 *s = NULL;
    if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s, 5000);
    return s;
}

/* Rows in storage order into *out (valid until the next call); their count,
 * or -1 when the file cannot be read yet. */
static int read_rows(const char *db, row **out)
{
    forget_rows();
    *out = NULL;
    sqlite3 *s = open_db(db);
    if (!s) return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s,
                           "SELECT request_id, route, COALESCE(error_code, ''), status, prompt_tokens, "
                           "completion_tokens, cached_tokens, cost_micro_usd, counterfactual_micro_usd, latency_us, "
                           "COALESCE(ttft_us, -1), tokens_estimated, streamed, client_hung_up FROM requests ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_close(s);
        return -1;
    }
    int n = 0, cap = 0;
    row *rows = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            rows = realloc(rows, (size_t)cap * sizeof(*rows));
            assert_non_null(rows);
        }
        row *r = &rows[n++];
        snprintf(r->id, sizeof(r->id), "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(r->route, sizeof(r->route), "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(r->error_code, sizeof(r->error_code), "%s", (const char *)sqlite3_column_text(st, 2));
        r->status = sqlite3_column_int(st, 3);
        int64_t *ints[] = {&r->prompt, &r->completion, &r->cached, &r->cost, &r->counterfactual, &r->latency_us,
                           &r->ttft_us};
        for (int i = 0; i < 7; i++) *ints[i] = sqlite3_column_int64(st, 4 + i);
        r->estimated = sqlite3_column_int(st, 11);
        r->streamed = sqlite3_column_int(st, 12);
        r->hung_up = sqlite3_column_int(st, 13);
    }
    sqlite3_finalize(st);
    sqlite3_close(s);
    *out = last_rows = rows;
    return n;
}

static int count_rows(const char *db)
{
    row *rows;
    return read_rows(db, &rows);
}

/* Poll until the ledger holds at least `n` rows (the writer commits every
 * flush interval); returns the count it saw last. */
static int wait_rows(const char *db, int n, double timeout_s)
{
    double deadline = now_seconds() + timeout_s;
    int have;
    while ((have = count_rows(db)) < n && now_seconds() < deadline) usleep(20000);
    return have;
}

/* The one row of request `id` (fails when there is none or more than one). */
static const row *row_of(const row *rows, int n, const char *id)
{
    const row *found = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(rows[i].id, id)) continue;
        if (found) fail_msg("request %s has two rows", id);
        found = &rows[i];
    }
    if (!found) fail_msg("request %s has no row", id);
    return found;
}

/* A row's money is its route's price and the reference's for its tokens. */
static void assert_priced(const row *r)
{
    const price *p = price_of(r->route);
    int64_t engine_ms = !strcmp(r->route, "local") && engine_priced ? r->latency_us / 1000 : 0;
    int64_t want = micro_cost(p, r->prompt, r->completion, engine_ms);
    if (r->cost != want)
        fail_msg("request %s (%s, %" PRId64 "+%" PRId64 " tokens, %" PRId64 " ms): cost %" PRId64 " µ$, want %" PRId64,
                 r->id, r->route, r->prompt, r->completion, engine_ms, r->cost, want);
    assert_int_equal(r->counterfactual, micro_cost(REFERENCE, r->prompt, r->completion, 0));
}

/* The row says what the client saw: status, usage, whether it streamed. */
static void assert_row_matches(const row *r, const seen *s, const char *route, bool streamed)
{
    assert_string_equal(r->route, route);
    assert_int_equal(r->status, s->status);
    assert_int_equal(r->streamed, streamed);
    assert_false(r->hung_up);
    if (s->has_usage) {
        if (r->prompt != s->prompt || r->completion != s->completion || r->cached != s->cached)
            fail_msg("request %s: row %" PRId64 "/%" PRId64 "/%" PRId64 " tokens, the client saw %" PRId64 "/%" PRId64
                     "/%" PRId64, r->id, r->prompt, r->completion, r->cached, s->prompt, s->completion, s->cached);
        assert_int_equal(r->estimated, s->estimated);
    } else {
        assert_int_equal(r->prompt + r->completion, 0); /* an error: nothing was generated */
    }
    if (s->status >= 400) assert_true(r->error_code[0] != '\0');
    else assert_string_equal(r->error_code, "");
    assert_priced(r);
}

/* ---- the mixed workload ---- */

typedef struct {
    const char *id, *path, *model, *content;
    bool stream;
    const char *raw;          /* a body sent as is (a bad request) */
    long status;
    const char *route;
} mixed_case;

static const mixed_case mix[] = {
    {"mix-local", "/v1/chat/completions", "local", "Once upon a time there was a cat", false, NULL, 200, "local"},
    {"mix-local-stream", "/v1/chat/completions", "local", "Once upon a time there was a dog", true, NULL, 200, "local"},
    {"mix-legacy", "/v1/completions", "local", NULL, false,
     "{\"model\":\"local\",\"prompt\":\"One day a little girl\",\"max_tokens\":12,\"temperature\":0}", 200, "local"},
    {"mix-openai", "/v1/chat/completions", "openai", "What is the sea made of", false, NULL, 200, "openai"},
    {"mix-openai-stream", "/v1/chat/completions", "openai", "Tell me about the tides please", true, NULL, 200, "openai"},
    {"mix-claude", "/v1/chat/completions", "claude", "Name three colours", false, NULL, 200, "claude"},
    {"mix-claude-stream", "/v1/chat/completions", "claude", "Count to five slowly", true, NULL, 200, "claude"},
    {"mix-nousage", "/v1/chat/completions", "openai", "count these words yourself #fault:nousage", true, NULL, 200,
     "openai"},
    {"mix-500", "/v1/chat/completions", "openai", "this fails #fault:500", false, NULL, 502, "openai"},
    {"mix-reject", "/v1/chat/completions", "claude", "refuse this #fault:reject", false, NULL, 400, "claude"},
    {"mix-unknown", "/v1/chat/completions", "no-such-model", "hello", false, NULL, 404, "none"},
    {"mix-invalid", "/v1/chat/completions", NULL, NULL, false, "{\"model\":\"openai\",\"messages\":[]}", 400, "none"},
    {"mix-not-json", "/v1/chat/completions", NULL, NULL, false, "{\"model\": ", 400, "none"},
};
#define N_MIX (int)(sizeof(mix) / sizeof(mix[0]))
#define DRIP_PROMPT "slowly please one two three four five six seven eight nine ten eleven twelve thirteen " \
                    "fourteen fifteen sixteen seventeen eighteen nineteen twenty #fault:drip:150"

/* Sums over rows, by route. */
typedef struct {
    char route[64];
    int64_t requests, prompt, completion, cost, counterfactual, errors;
} sums;

static int sum_rows(const row *rows, int n, sums *by, int max)
{
    int groups = 0;
    for (int i = 0; i < n; i++) {
        int g = 0;
        while (g < groups && strcmp(by[g].route, rows[i].route)) g++;
        if (g == groups) {
            assert_true(groups < max);
            memset(&by[groups], 0, sizeof(by[0]));
            snprintf(by[groups++].route, sizeof(by[0].route), "%s", rows[i].route);
        }
        by[g].requests++;
        by[g].prompt += rows[i].prompt;
        by[g].completion += rows[i].completion;
        by[g].cost += rows[i].cost;
        by[g].counterfactual += rows[i].counterfactual;
        by[g].errors += rows[i].status >= 400;
    }
    return groups;
}

static void assert_report_equals_sums(const cJSON *o, const sums *s)
{
    assert_int_equal(json_int(o, "requests"), s->requests);
    assert_int_equal(json_int(o, "prompt_tokens"), s->prompt);
    assert_int_equal(json_int(o, "completion_tokens"), s->completion);
    assert_int_equal(json_int(o, "cost_micro_usd"), s->cost);
    assert_int_equal(json_int(o, "counterfactual_micro_usd"), s->counterfactual);
    assert_int_equal(json_int(o, "savings_micro_usd"), s->counterfactual - s->cost);
    assert_int_equal(json_int(o, "errors"), s->errors);
}

/* The line `name{labels} value` of a Prometheus text, as text. */
static void assert_metric(const char *metrics, const char *series, const char *value)
{
    char want[1100];   /* a series name (up to 1023) and its value */
    snprintf(want, sizeof(want), "\n%s %s\n", series, value);
    if (!strstr(metrics, want)) fail_msg("/metrics lacks '%s %s'", series, value);
}

static void test_mixed_workload_rows_audit_spend_metrics_agree(void **state)
{
    (void)state;
    start(&J, 50, true, NULL);
    seen s[N_MIX];
    for (int i = 0; i < N_MIX; i++) {
        char body[1024];
        if (mix[i].raw) snprintf(body, sizeof(body), "%s", mix[i].raw);
        else chat_body(body, sizeof(body), mix[i].model, mix[i].content, mix[i].stream, 24);
        ask(&J, mix[i].id, mix[i].path, body, &s[i]);
        if (s[i].status != mix[i].status) fail_msg("%s: status %ld, want %ld", mix[i].id, s[i].status, mix[i].status);
        if (mix[i].status == 200 && !s[i].has_usage) fail_msg("%s: no usage in the answer", mix[i].id);
        if (mix[i].stream && mix[i].status == 200) assert_true(s[i].done);
    }
    /* two hang-ups: a local stream and an upstream stream, each after the first pieces */
    char body[1024];
    chat_body(body, sizeof(body), "local", "Once upon a time", true, 2000);
    hang_up_after(&J, "mix-hangup-local", body, 2);
    chat_body(body, sizeof(body), "openai", DRIP_PROMPT, true, 64);
    hang_up_after(&J, "mix-hangup-openai", body, 2);

    const int total = N_MIX + 2;
    assert_int_equal(wait_rows(J.db, total, 30), total);
    row *rows;
    assert_int_equal(read_rows(J.db, &rows), total);
    for (int i = 0; i < N_MIX; i++)
        assert_row_matches(row_of(rows, total, mix[i].id), &s[i], mix[i].route, mix[i].stream);
    assert_true(row_of(rows, total, "mix-nousage")->estimated);
    for (int i = 0; i < total; i++) assert_priced(&rows[i]);
    const char *hung[] = {"mix-hangup-local", "mix-hangup-openai"};
    for (int i = 0; i < 2; i++) {
        const row *r = row_of(rows, total, hung[i]);
        assert_int_equal(r->status, 499);
        assert_true(r->hung_up && r->streamed);
    }

    /* junction audit: totals and groups equal the sums of the rows, and the
     * tokens equal what the clients saw (plus what went to those who hung up) */
    sums by[8], all = {.route = "total"};
    int groups = sum_rows(rows, total, by, 8);
    for (int g = 0; g < groups; g++) {
        all.requests += by[g].requests, all.prompt += by[g].prompt, all.completion += by[g].completion;
        all.cost += by[g].cost, all.counterfactual += by[g].counterfactual, all.errors += by[g].errors;
    }
    int64_t client_prompt = row_of(rows, total, hung[0])->prompt + row_of(rows, total, hung[1])->prompt;
    int64_t client_completion = row_of(rows, total, hung[0])->completion + row_of(rows, total, hung[1])->completion;
    for (int i = 0; i < N_MIX; i++) client_prompt += s[i].prompt, client_completion += s[i].completion;
    assert_int_equal(all.prompt, client_prompt);
    assert_int_equal(all.completion, client_completion);

    char *out;
    const char *args[] = {"audit", "--db", J.db, "--by", "route", "--format", "json", NULL};
    assert_int_equal(run_junction(args, &out), 0);
    cJSON *audit = cJSON_Parse(out);
    if (!audit) fail_msg("junction audit printed no JSON: %s", out);
    free(out);
    assert_report_equals_sums(cJSON_GetObjectItemCaseSensitive(audit, "total"), &all);
    const cJSON *agroups = cJSON_GetObjectItemCaseSensitive(audit, "groups");
    assert_int_equal(cJSON_GetArraySize(agroups), groups);
    for (int g = 0; g < groups; g++) {
        const cJSON *o = NULL;
        for (const cJSON *x = agroups->child; x; x = x->next)
            if (!strcmp(cJSON_GetObjectItemCaseSensitive(x, "key")->valuestring, by[g].route)) o = x;
        if (!o) fail_msg("junction audit has no group '%s'", by[g].route);
        assert_report_equals_sums(o, &by[g]);
    }

    /* /admin/spend is the same document */
    assert_int_equal(get(&J, "/admin/spend?by=route", true, &out), 200);
    cJSON *spend = cJSON_Parse(out);
    if (!spend) fail_msg("/admin/spend is not JSON: %s", out);
    free(out);
    const char *parts[] = {"total", "groups", "by"};
    for (int i = 0; i < 3; i++)
        if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(audit, parts[i]),
                           cJSON_GetObjectItemCaseSensitive(spend, parts[i]), true))
            fail_msg("/admin/spend's '%s' differs from junction audit --format json", parts[i]);
    cJSON_Delete(spend);
    cJSON_Delete(audit);

    /* /metrics: the counters equal the rows */
    assert_int_equal(get(&J, "/metrics", false, &out), 200);
    sqlite3 *db = open_db(J.db);
    assert_non_null(db);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT route, status, COUNT(*) FROM requests GROUP BY route, status", -1,
                                        &st, NULL), SQLITE_OK);
    int series = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char name[160], value[32];
        snprintf(name, sizeof(name), "junction_requests_total{route=\"%s\",status=\"%d\"}", sqlite3_column_text(st, 0),
                 sqlite3_column_int(st, 1));
        snprintf(value, sizeof(value), "%d", sqlite3_column_int(st, 2));
        assert_metric(out, name, value);
        series++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    int lines = 0;
    for (const char *p = out; (p = strstr(p, "\njunction_requests_total{")); p++) lines++;
    assert_int_equal(lines, series);
    for (int g = 0; g < groups; g++) {
        char name[1024], value[48];
        snprintf(name, sizeof(name), "junction_tokens_total{route=\"%s\",direction=\"prompt\"}", by[g].route);
        snprintf(value, sizeof(value), "%" PRId64, by[g].prompt);
        assert_metric(out, name, value);
        snprintf(name, sizeof(name), "junction_tokens_total{route=\"%s\",direction=\"completion\"}", by[g].route);
        snprintf(value, sizeof(value), "%" PRId64, by[g].completion);
        assert_metric(out, name, value);
        snprintf(name, sizeof(name), "junction_cost_usd_total{route=\"%s\"}", by[g].route);
        snprintf(value, sizeof(value), "%" PRId64 ".%06" PRId64, by[g].cost / 1000000, by[g].cost % 1000000);
        assert_metric(out, name, value);
        snprintf(name, sizeof(name), "junction_counterfactual_usd_total{route=\"%s\"}", by[g].route);
        snprintf(value, sizeof(value), "%" PRId64 ".%06" PRId64, by[g].counterfactual / 1000000,
                 by[g].counterfactual % 1000000);
        assert_metric(out, name, value);
        snprintf(name, sizeof(name), "junction_request_duration_seconds_count{route=\"%s\"}", by[g].route);
        snprintf(value, sizeof(value), "%" PRId64, by[g].requests);
        assert_metric(out, name, value);
    }
    char written[32];
    snprintf(written, sizeof(written), "%d", total);
    assert_metric(out, "junction_ledger_rows_written_total", written);
    assert_metric(out, "junction_ledger_rows_dropped_total", "0");
    assert_metric(out, "junction_ledger_degraded", "0");
    free(out);
    stop(&J);
}

/* The same request whole and streamed: the same tokens, the same money. */
static void test_whole_and_streamed_cost_the_same(void **state)
{
    (void)state;
    start(&J, 50, false, NULL);
    const char *models[] = {"local", "openai", "claude"};
    for (int m = 0; m < 3; m++) {
        char body[1024], id[2][64];
        seen s[2];
        for (int stream = 0; stream < 2; stream++) {
            snprintf(id[stream], sizeof(id[stream]), "same-%s-%s", models[m], stream ? "stream" : "whole");
            chat_body(body, sizeof(body), models[m], "The little bird sang a song", stream, 20);
            ask(&J, id[stream], "/v1/chat/completions", body, &s[stream]);
            assert_int_equal(s[stream].status, 200);
            assert_true(s[stream].has_usage);
        }
        assert_int_equal(s[0].prompt, s[1].prompt);
        assert_int_equal(s[0].completion, s[1].completion);
        assert_true(s[0].completion > 0);
        assert_int_equal(wait_rows(J.db, 2 * (m + 1), 30), 2 * (m + 1));
        row *rows;
        int n = read_rows(J.db, &rows);
        const row *whole = row_of(rows, n, id[0]), *streamed = row_of(rows, n, id[1]);
        assert_row_matches(whole, &s[0], models[m], false);
        assert_row_matches(streamed, &s[1], models[m], true);
        assert_int_equal(whole->cost, streamed->cost);
        assert_int_equal(whole->counterfactual, streamed->counterfactual);
        assert_true(whole->cost > 0);
        assert_true(streamed->ttft_us >= 0 && streamed->ttft_us <= streamed->latency_us);
    }
    stop(&J);
}

/* A stream the client leaves records the tokens that were sent, priced. */
static void test_hang_up_records_what_was_sent(void **state)
{
    (void)state;
    start(&J, 50, false, NULL);
    const struct {
        const char *id, *model, *content;
        int max_tokens;
    } cases[] = {
        {"hangup-local", "local", "Once upon a time", 2000},
        {"hangup-openai", "openai", DRIP_PROMPT, 64},
        {"hangup-claude", "claude", DRIP_PROMPT, 64},
    };
    for (int i = 0; i < 3; i++) {
        char body[1024];
        chat_body(body, sizeof(body), cases[i].model, cases[i].content, true, cases[i].max_tokens);
        int pieces = hang_up_after(&J, cases[i].id, body, 3);
        assert_int_equal(wait_rows(J.db, i + 1, 30), i + 1);
        row *rows;
        int n = read_rows(J.db, &rows);
        const row *r = row_of(rows, n, cases[i].id);
        assert_int_equal(r->status, 499);
        assert_true(r->hung_up && r->streamed);
        assert_string_equal(r->error_code, "client_closed");
        if (r->prompt <= 0 || r->completion < pieces)
            fail_msg("%s: the client read %d pieces before hanging up, the row says %" PRId64 " prompt and %" PRId64
                     " completion tokens (estimated %d)", cases[i].id, pieces, r->prompt, r->completion, r->estimated);
        if (strcmp(cases[i].model, "local")) assert_true(r->estimated); /* the upstream sent no usage yet */
        assert_priced(r);
    }
    stop(&J);
}

/* An upstream stream that breaks midway (the fake drops the connection
 * after two words) records the words that went out, counted. */
static void test_broken_stream_records_what_was_sent(void **state)
{
    (void)state;
    start(&J, 50, false, NULL);
    char body[1024];
    chat_body(body, sizeof(body), "openai", "break this stream #fault:drop", true, 64);
    seen s;
    ask(&J, "broken-stream", "/v1/chat/completions", body, &s);
    assert_int_equal(s.status, 200);     /* the headers went out before it broke */
    assert_true(s.content_chunks >= 2);
    assert_false(s.done);
    assert_int_equal(wait_rows(J.db, 1, 30), 1);
    row *rows;
    read_rows(J.db, &rows);
    const row *r = row_of(rows, 1, "broken-stream");
    assert_true(r->status >= 500);
    assert_true(r->streamed);
    if (r->completion < s.content_chunks || !r->estimated)
        fail_msg("the client got %d pieces before the stream broke; the row says %" PRId64
                 " completion tokens, estimated %d", s.content_chunks, r->completion, r->estimated);
    assert_priced(r);
    stop(&J);
}

/* ---- shutdown ---- */

typedef struct {
    const junction *j;
    char id[64];
    seen s;
} stream_job;

static void *run_stream(void *arg)
{
    stream_job *job = arg;
    char body[1024];
    chat_body(body, sizeof(body), "openai", "one two three four five six #fault:drip:40", true, 64);
    ask(job->j, job->id, "/v1/chat/completions", body, &job->s);
    return NULL;
}

/* With a flush interval far longer than the test, only the drain can write
 * the rows: every request answered before exit has its row, the streams
 * answered during the drain included. */
static void test_sigterm_keeps_every_answered_row(void **state)
{
    (void)state;
    start(&J, 60000, false, NULL);
    enum { WHOLE = 12, STREAMS = 4 };
    char ids[WHOLE][32];
    for (int i = 0; i < WHOLE; i++) {
        char body[512];
        snprintf(ids[i], sizeof(ids[i]), "term-%d", i);
        chat_body(body, sizeof(body), i % 3 == 0 ? "local" : i % 3 == 1 ? "openai" : "claude", "Hello there", false, 8);
        seen s;
        ask(&J, ids[i], "/v1/chat/completions", body, &s);
        assert_int_equal(s.status, 200);
    }
    stream_job jobs[STREAMS];
    pthread_t th[STREAMS];
    int before = fake_count(&J.fake, "\"request\"");
    for (int i = 0; i < STREAMS; i++) {
        jobs[i].j = &J;
        snprintf(jobs[i].id, sizeof(jobs[i].id), "term-stream-%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, run_stream, &jobs[i]), 0);
    }
    double deadline = now_seconds() + 30;
    while (fake_count(&J.fake, "\"request\"") < before + STREAMS && now_seconds() < deadline) usleep(10000);
    assert_int_equal(count_rows(J.db), 0);   /* nothing committed yet: the interval is a minute */
    kill(J.d.pid, SIGTERM);
    for (int i = 0; i < STREAMS; i++) pthread_join(th[i], NULL);
    assert_int_equal(daemon_wait(&J.d, 30), 0);
    row *rows;
    int n = read_rows(J.db, &rows);
    assert_int_equal(n, WHOLE + STREAMS);
    for (int i = 0; i < WHOLE; i++) assert_int_equal(row_of(rows, n, ids[i])->status, 200);
    for (int i = 0; i < STREAMS; i++) {
        assert_int_equal(jobs[i].s.status, 200);
        assert_true(jobs[i].s.done);
        assert_row_matches(row_of(rows, n, jobs[i].id), &jobs[i].s, "openai", true);
    }
    stop(&J);
}

/* ---- SIGKILL under load ---- */

#define KILL_FLUSH_MS 100
#define LOAD_THREADS 4
#define LOAD_MAX 4000

typedef struct {
    const junction *j;
    int thread;
    int n;                         /* requests answered */
    double answered_at[LOAD_MAX];  /* when each was answered (now_seconds) */
} load_job;

static volatile int load_stop;

static void *run_load(void *arg)
{
    load_job *job = arg;
    char body[512];
    chat_body(body, sizeof(body), "openai", "load", false, 8);
    for (int i = 0; i < LOAD_MAX && !load_stop; i++) {
        char url[128], idh[96];
        snprintf(url, sizeof(url), "%s/v1/chat/completions", job->j->d.url);
        snprintf(idh, sizeof(idh), "X-Request-Id: load-%d-%d", job->thread, i);
        const char *headers[] = {"Content-Type: application/json", idh, NULL};
        http_response r;
        bool ok = http_request("POST", url, body, strlen(body), headers, &r) == 0 && r.status == 200;
        http_response_free(&r);
        if (!ok) break;
        job->answered_at[job->n++] = now_seconds();
    }
    return NULL;
}

/* Killed under load, the daemon loses at most the rows of its last flush
 * interval: every request answered before that has its row. (The margin
 * adds a second for the writer thread's scheduling on a loaded machine.) */
static void test_sigkill_loses_at_most_the_last_flush(void **state)
{
    (void)state;
    start(&J, KILL_FLUSH_MS, false, (const char *const[]){"--access-log", "off", NULL});
    static load_job jobs[LOAD_THREADS];
    pthread_t th[LOAD_THREADS];
    load_stop = 0;
    for (int i = 0; i < LOAD_THREADS; i++) {
        jobs[i] = (load_job){.j = &J, .thread = i};
        assert_int_equal(pthread_create(&th[i], NULL, run_load, &jobs[i]), 0);
    }
    /* under load until a few hundred rows are committed, and two seconds
     * more, so that many answers are older than the interval checked */
    assert_true(wait_rows(J.db, 300, 60) >= 300);
    usleep(2000000);
    double killed_at = now_seconds();
    kill(J.d.pid, SIGKILL);
    load_stop = 1;
    for (int i = 0; i < LOAD_THREADS; i++) pthread_join(th[i], NULL);
    assert_int_equal(daemon_wait(&J.d, 10), 128 + SIGKILL);
    row *rows;
    int n = read_rows(J.db, &rows);
    int answered = 0, old = 0, old_missing = 0;
    double cutoff = killed_at - KILL_FLUSH_MS / 1000.0 - 1.0;
    for (int t = 0; t < LOAD_THREADS; t++)
        for (int i = 0; i < jobs[t].n; i++) {
            answered++;
            if (jobs[t].answered_at[i] >= cutoff) continue;
            old++;
            char id[64];
            snprintf(id, sizeof(id), "load-%d-%d", t, i);
            bool found = false;
            for (int k = 0; k < n && !found; k++) found = !strcmp(rows[k].id, id);
            old_missing += !found;
        }
    print_message("SIGKILL: %d answered, %d rows, %d answered before the last interval, %d of them without a row\n",
                  answered, n, old, old_missing);
    assert_true(old > 0);
    assert_int_equal(old_missing, 0);
    assert_true(n <= answered + LOAD_THREADS); /* no row for a request never sent */
    for (int k = 0; k < n; k++) assert_int_equal(strncmp(rows[k].id, "load-", 5), 0);
    stop(&J);
}

/* ---- faults ---- */

static cJSON *readyz(const junction *j, long *status)
{
    char *out;
    *status = get(j, "/readyz", false, &out);
    cJSON *doc = cJSON_Parse(out);
    if (!doc) fail_msg("/readyz is not JSON: %s", out);
    free(out);
    return doc;
}

static const char *ledger_check(const cJSON *doc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "checks"), "ledger");
    return cJSON_IsString(v) ? v->valuestring : "(none)";
}

/* Poll /readyz until its ledger check says `want`; returns its status. */
static long wait_ledger_check(const junction *j, const char *want)
{
    double deadline = now_seconds() + 30;
    for (;;) {
        long status;
        cJSON *doc = readyz(j, &status);
        bool ok = !strcmp(ledger_check(doc), want);
        if (!ok && now_seconds() > deadline) fail_msg("/readyz never said the ledger is %s", want);
        cJSON_Delete(doc);
        if (ok) return status;
        usleep(20000);
    }
}

/* While degraded: answers keep coming, /readyz says so (503 when the
 * ledger is required), /metrics too, and the error is logged once. */
static void assert_degraded_but_answering(junction *j, bool required, const char *prefix, int n, int errors_logged)
{
    long status = wait_ledger_check(j, "degraded");
    assert_int_equal(status, required ? 503 : 200);
    for (int i = 0; i < n; i++) {
        char id[64], body[512];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        chat_body(body, sizeof(body), i % 2 ? "openai" : "local", "Still there", i % 3 == 0, 8);
        seen s;
        ask(j, id, "/v1/chat/completions", body, &s);
        assert_int_equal(s.status, 200);
    }
    long st;
    cJSON *doc = readyz(j, &st);
    assert_int_equal(st, required ? 503 : 200);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "status")->valuestring, required ? "degraded" : "ready");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(doc, "warnings");
    bool warned = false;
    for (const cJSON *x = w ? w->child : NULL; x; x = x->next) warned |= strstr(x->valuestring, "the ledger cannot write") != NULL;
    assert_true(warned);
    cJSON_Delete(doc);
    char *metrics;
    assert_int_equal(get(j, "/metrics", false, &metrics), 200);
    assert_metric(metrics, "junction_ledger_degraded", "1");
    free(metrics);
    /* many retries happened (every 50 ms), but one line says each error */
    usleep(300000);
    char *log = daemon_log(&j->d);
    int lines = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "rows waiting,")) print_message("%s\n", line), lines++;
    free(log);
    /* each distinct error once (a retry repeating it adds no line) */
    assert_true(lines >= 1 && lines <= errors_logged);
}

static void assert_recovered(junction *j, int rows_want)
{
    assert_int_equal(wait_ledger_check(j, "ok"), 200);
    assert_int_equal(wait_rows(j->db, rows_want, 30), rows_want);
    char *log = daemon_log_wait(&j->d, "recovered: writing rows again", 10);
    assert_non_null(strstr(log, "recovered: writing rows again"));
    free(log);
    char *metrics;
    assert_int_equal(get(j, "/metrics", false, &metrics), 200);
    assert_metric(metrics, "junction_ledger_degraded", "0");
    assert_metric(metrics, "junction_ledger_rows_dropped_total", "0");
    free(metrics);
}

/* A second connection holds the write lock: degraded, then every held
 * row is written once it lets go. Ready or not by --ledger-required. */
static void locked_scenario(bool required)
{
    start(&J, 50, false, required ? (const char *const[]){"--ledger-required", NULL} : NULL);
    seen s;
    char body[512];
    chat_body(body, sizeof(body), "openai", "first", false, 8);
    ask(&J, "lock-first", "/v1/chat/completions", body, &s);
    assert_int_equal(wait_rows(J.db, 1, 30), 1);
    sqlite3 *holder;
    assert_int_equal(sqlite3_open(J.db, &holder), SQLITE_OK);
    assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    ask(&J, "lock-wakes-the-writer", "/v1/chat/completions", body, &s);
    assert_degraded_but_answering(&J, required, "locked", 6, 1);
    assert_int_equal(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    assert_recovered(&J, 8);
    stop(&J);
}

static void test_write_lock_degrades_and_recovers(void **state)
{
    (void)state;
    locked_scenario(false);
}

static void test_ledger_required_makes_it_not_ready(void **state)
{
    (void)state;
    locked_scenario(true);
}

static void write_garbage(const char *db)
{
    FILE *f = fopen(db, "w");
    assert_non_null(f);
    for (int i = 0; i < 512; i++) fputs("this is no database, just text\n", f);
    fclose(f);
}

/* A corrupt file: the daemon starts, answers, says degraded; once the
 * operator moves the file away a new ledger gets every held row. */
static void test_corrupt_file_degrades_and_recovers(void **state)
{
    (void)state;
    start_with(&J, 50, false, NULL, write_garbage);
    assert_degraded_but_answering(&J, false, "corrupt", 5, 1);
    char *log = daemon_log(&J.d);
    assert_non_null(strstr(log, "not a database"));
    free(log);
    char moved[160];
    snprintf(moved, sizeof(moved), "%s.damaged", J.db);
    assert_int_equal(rename(J.db, moved), 0);
    assert_recovered(&J, 5);
    stop(&J);
}

/* A disk that fills: the daemon's files may not grow past their size now
 * (RLIMIT_FSIZE, set on the running daemon; SIGXFSZ ignored, as the
 * daemon inherits it from here), so SQLite's next write fails as on a full
 * disk. Lifting the limit (space freed) writes the held rows. */
static void test_full_disk_degrades_and_recovers(void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGXFSZ, &ign, &old);
    start(&J, 50, false, NULL);
    sigaction(SIGXFSZ, &old, NULL);
    seen s;
    char body[512];
    chat_body(body, sizeof(body), "openai", "first", false, 8);
    ask(&J, "full-first", "/v1/chat/completions", body, &s);
    assert_int_equal(wait_rows(J.db, 1, 30), 1);
    /* the limit: the log's size plus a little for its lines; the WAL (a few
     * pages by now) is larger than the log, so its next frame fails */
    struct stat lst;
    assert_int_equal(stat(J.d.log_path, &lst), 0);
    struct rlimit full = {(rlim_t)lst.st_size + 4096, RLIM_INFINITY}, open_ended = {RLIM_INFINITY, RLIM_INFINITY};
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", J.db);
    struct stat wst;
    assert_int_equal(stat(wal, &wst), 0);
    assert_true(wst.st_size >= (off_t)full.rlim_cur);
    assert_int_equal(prlimit(J.d.pid, RLIMIT_FSIZE, &full, NULL), 0);
    ask(&J, "full-wakes-the-writer", "/v1/chat/completions", body, &s);
    /* two lines: the commit that failed, then each reopen's read (the same error after that) */
    assert_degraded_but_answering(&J, false, "full", 6, 2);
    assert_int_equal(prlimit(J.d.pid, RLIMIT_FSIZE, &open_ended, NULL), 0);
    assert_recovered(&J, 8);
    stop(&J);
}

/* A read-only file (chmod under the running daemon; it sees it when its
 * writer next opens the file, which a write lock held a moment forces):
 * answers keep coming, degraded and, with --ledger-required, not ready;
 * made writable again, every held row is written. (At start a read-only
 * ledger is refused by the configuration check instead.) */
static void test_read_only_file_degrades_and_recovers(void **state)
{
    (void)state;
    if (geteuid() == 0) daemon_uid = 65534;
    start(&J, 50, false, (const char *const[]){"--ledger-required", NULL});
    seen s;
    char body[512];
    chat_body(body, sizeof(body), "openai", "first", false, 8);
    ask(&J, "ro-first", "/v1/chat/completions", body, &s);
    assert_int_equal(wait_rows(J.db, 1, 30), 1);
    assert_int_equal(chmod(J.db, 0444), 0);
    sqlite3 *holder;
    assert_int_equal(sqlite3_open(J.db, &holder), SQLITE_OK);
    assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    ask(&J, "ro-wakes-the-writer", "/v1/chat/completions", body, &s);
    wait_ledger_check(&J, "degraded");
    assert_int_equal(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    /* the lock is gone; the file is still read-only */
    double deadline = now_seconds() + 30;
    char *log = NULL;
    do {
        free(log);
        usleep(20000);
        log = daemon_log(&J.d);
    } while (!strstr(log, "readonly") && !strstr(log, "read-only") && now_seconds() < deadline);
    if (!strstr(log, "readonly") && !strstr(log, "read-only")) fail_msg("no read-only error logged:\n%s", log);
    free(log);
    assert_degraded_but_answering(&J, true, "read-only", 4, 2);
    /* SQLite gives -wal and -shm the file's mode: all three become writable */
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char side[160];
        snprintf(side, sizeof(side), "%s%s", J.db, suffix[i]);
        assert_true(chmod(side, 0644) == 0 || errno == ENOENT);
    }
    assert_recovered(&J, 6);
    stop(&J);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_mixed_workload_rows_audit_spend_metrics_agree, teardown),
        cmocka_unit_test_teardown(test_whole_and_streamed_cost_the_same, teardown),
        cmocka_unit_test_teardown(test_hang_up_records_what_was_sent, teardown),
        cmocka_unit_test_teardown(test_broken_stream_records_what_was_sent, teardown),
        cmocka_unit_test_teardown(test_sigterm_keeps_every_answered_row, teardown),
        cmocka_unit_test_teardown(test_sigkill_loses_at_most_the_last_flush, teardown),
        cmocka_unit_test_teardown(test_write_lock_degrades_and_recovers, teardown),
        cmocka_unit_test_teardown(test_ledger_required_makes_it_not_ready, teardown),
        cmocka_unit_test_teardown(test_corrupt_file_degrades_and_recovers, teardown),
        cmocka_unit_test_teardown(test_full_disk_degrades_and_recovers, teardown),
        cmocka_unit_test_teardown(test_read_only_file_degrades_and_recovers, teardown),
    };
    const char *only = getenv("LEDGER_E2E_ONLY"); /* a test's name (wildcards *, ?), to run it alone */
    if (only) cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
