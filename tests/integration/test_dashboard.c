/* test_dashboard.c: GET /dashboard on the real daemon, whose ledger this
 * test seeds with a known workload through the policy library: tenants with
 * budgets, client keys (so client auth is on) and decisions, some of them a
 * key's, and a global budget in the configuration.
 *
 * Here in C: the page and its files come from the binary with the security
 * headers (CSP without inline code, nosniff, no referrer, no framing), ETag
 * revalidation, HEAD, and nothing else under /dashboard; the data behind it
 * needs the admin key. Then the page itself in headless Chromium
 * (tests/e2e/dashboard.test.mjs, puppeteer-core, node --test): skipped, with
 * the reason, only where /usr/bin/chromium is not installed.
 */
#include "policy.h"
#include "testlib.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#ifndef JUNCTION_SOURCE_DIR
#error "JUNCTION_SOURCE_DIR must name the source tree"
#endif

#define CHROMIUM "/usr/bin/chromium"
#define ADMIN_KEY "dash-admin-key-0123456789"
#define N_RECENT 72          /* rows in the last 18 hours */
#define MIN_MS 60000LL

static test_daemon daemon_;
static char dir[64], db[128], config_path[64];
/* Keys made in the ledger (so client auth is on): "ci" of tenant acme, with a
 * daily budget, spends as key_aa did; "dashboard" of tenant ops is an admin
 * client key, which the browser test signs in with (with client keys on,
 * POST /v1/route, "try a prompt", needs a client key). */
static pol_key ci_key;
static char dash_secret[POL_KEY_SECRET_LEN + 1];

/* The seeded workload: row i is about i*15 minutes old (1 to 13 minutes
 * more, so the hours differ); four kinds of decision in
 * turn; three tenants, one named like an HTML injection; every ninth fails.
 * One more row is three days old (outside "last day", inside "last week"). */
static const struct {
    const char *route, *zone, *reason, *detectors;
} decisions[] = {
    {"local", "in-process", "rule keep-sensitive-local: sensitive (credit_card forces); route local", "email,credit_card"},
    {"local", "in-process", "rule easy-local: easy (difficulty 0.21 < 0.50); route local", ""},
    {"frontier", "external", "rule hard-to-frontier: difficult (difficulty 0.81 >= 0.70); route frontier", ""},
    {"claude", "external", "explicit model", ""},
};
static const char *const tenants[] = {"acme", "globex", "<img src=x onerror=\"window.__xss=1\">"};

static pol_ledger_row seeded_row(int i, int64_t now_ms)
{
    pol_ledger_row r;
    memset(&r, 0, sizeof(r));
    int d = i % 4;
    snprintf(r.request_id, sizeof(r.request_id), "req-%03d", i);
    r.ts_ms = i < N_RECENT ? now_ms - ((int64_t)i * 15 + i * 7919 % 13 + 1) * MIN_MS : now_ms - 3 * 1440 * MIN_MS;
    snprintf(r.tenant, sizeof(r.tenant), "%s", tenants[i % 3]);
    if (i % 6 == 0) /* tenant acme */
        snprintf(r.key_id, sizeof(r.key_id), "%s", ci_key.id);
    else
        snprintf(r.key_id, sizeof(r.key_id), "key_%c%c", 'a' + i % 3, 'a' + i % 2);
    snprintf(r.model, sizeof(r.model), "%s", d == 3 ? "claude" : "auto");
    snprintf(r.route, sizeof(r.route), "%s", decisions[d].route);
    snprintf(r.zone, sizeof(r.zone), "%s", decisions[d].zone);
    snprintf(r.reason, sizeof(r.reason), "%s", decisions[d].reason);
    snprintf(r.detectors, sizeof(r.detectors), "%s", decisions[d].detectors);
    if (d >= 2) snprintf(r.upstream_model, sizeof(r.upstream_model), "%s", d == 2 ? "gpt-4o" : "claude-sonnet");
    r.prompt_tokens = 120 + 7 * i;
    r.completion_tokens = 40 + 3 * i;
    r.cost_micro_usd = d == 2 ? 2000 + 37 * i : d == 3 ? 1500 + 11 * i : 0;
    r.counterfactual_micro_usd = 3000 + 41 * i;
    r.latency_us = 1000 * (50 + 13 * (i % 17)) + (d >= 2 ? 400000 : 0);
    r.ttft_us = 1000 * (20 + 5 * (i % 11));
    r.status = i % 9 == 8 ? 502 : 200;
    if (r.status != 200) snprintf(r.error_code, sizeof(r.error_code), "upstream_error");
    r.streamed = i % 2;
    r.prompt_redacted = "PROMPT-TEXT-MUST-NOT-SHOW <EMAIL>";
    return r;
}

/* Tenants with budgets and two keys, through the policy library (what
 * `junction keys tenant/add` does). */
static int seed_keys(void)
{
    char err[512], secret[POL_KEY_SECRET_LEN + 1];
    pol_keyadmin *a;
    if (pol_keyadmin_open(&a, db, err, sizeof(err)) != 0) {
        fprintf(stderr, "seed keys: %s\n", err);
        return -1;
    }
    pol_key ci = {.tenant = "acme", .name = "ci", .budget_daily_micro = 20000}; /* $0.02 a day */
    pol_key dash = {.tenant = "ops", .name = "dashboard", .admin = true};
    pol_key made;
    /* acme: $0.05 a day, $3 a month; globex: $0.04 a month; ops: none */
    bool ok = pol_tenant_set(a, "acme", 50000, 3000000, err, sizeof(err)) == 0 &&
              pol_tenant_set(a, "globex", 0, 40000, err, sizeof(err)) == 0 &&
              pol_key_add(a, &ci, &ci_key, secret, err, sizeof(err)) == 0 &&
              pol_key_add(a, &dash, &made, dash_secret, err, sizeof(err)) == 0;
    if (!ok) fprintf(stderr, "seed keys: %s\n", err);
    pol_keyadmin_close(a);
    return ok ? 0 : -1;
}

static int seed_ledger(void)
{
    char err[512];
    if (seed_keys() != 0) return -1;
    pol_ledger_config c;
    pol_ledger_config_defaults(&c);
    snprintf(c.path, sizeof(c.path), "%s", db);
    c.store_prompts = true;
    pol_ledger *l;
    if (pol_ledger_open(&l, &c, err, sizeof(err)) != 0) {
        fprintf(stderr, "seed: %s\n", err);
        return -1;
    }
    int64_t now = pol_now_ms();
    int rc = 0;
    for (int i = 0; i <= N_RECENT && rc == 0; i++) {
        pol_ledger_row r = seeded_row(i, now);
        if (!pol_ledger_append(l, &r)) rc = -1;
    }
    if (rc == 0 && pol_ledger_flush_wait(l, 10000, err, sizeof(err)) != 0) {
        fprintf(stderr, "seed: %s\n", err);
        rc = -1;
    }
    pol_ledger_free(l);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/junction-dash-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(db, sizeof(db), "%s/ledger.db", dir);
    if (seed_ledger() != 0) return -1;
    /* Upstreams that are never called: they give /metrics its health lines. */
    write_temp_file(config_path,
                    "{\"upstreams\": [{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"},"
                    "{\"name\":\"claude\",\"provider\":\"anthropic\",\"base_url\":\"http://127.0.0.1:9/v1\"}],"
                    " \"budgets\": {\"global_daily_usd\": 25, \"global_monthly_usd\": 400}}");
    /* A local model lets "auto" be routed, for POST /v1/route's try-a-prompt. */
    const char *args[] = {"--config", config_path, "--ledger", db, "--model", JUNCTION_SHARED_DIR "/models/stories260K.gguf",
                          "--threads", "1", NULL};
    const char *env[] = {"JUNCTION_ADMIN_KEYS=" ADMIN_KEY, NULL};
    return daemon_start(&daemon_, args, env);
}

static int teardown(void **state)
{
    (void)state;
    kill(daemon_.pid, SIGTERM);
    int rc = daemon_wait(&daemon_, 10);
    daemon_cleanup(&daemon_);
    unlink(config_path);
    remove_tree(dir);
    return rc == 0 ? 0 : -1;
}

static http_response get(const char *path, const char *const *headers)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", daemon_.url, path);
    http_response res;
    assert_int_equal(http_request("GET", url, NULL, 0, headers, &res), 0);
    return res;
}

static void assert_header(const http_response *r, const char *name, const char *want)
{
    char buf[512];
    const char *v = http_header(r, name, buf, sizeof(buf));
    if (!v) fail_msg("no %s header", name);
    if (!strstr(v, want)) fail_msg("%s: '%s' lacks '%s'", name, v, want);
}

/* An attribute like onclick="..." anywhere in the HTML. */
static bool has_inline_handler(const char *html)
{
    for (const char *p = strstr(html, " on"); p; p = strstr(p + 1, " on")) {
        const char *q = p + 3;
        while (*q >= 'a' && *q <= 'z') q++;
        if (q > p + 3 && *q == '=') return true;
    }
    return false;
}

static void test_page_has_security_headers(void **state)
{
    (void)state;
    http_response r = get("/dashboard", NULL);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "text/html");
    assert_header(&r, "Content-Security-Policy", "script-src 'self'");
    assert_header(&r, "Content-Security-Policy", "default-src 'none'");
    assert_header(&r, "Content-Security-Policy", "frame-ancestors 'none'");
    assert_header(&r, "X-Content-Type-Options", "nosniff");
    assert_header(&r, "Referrer-Policy", "no-referrer");
    char csp[512];
    assert_null(strstr(http_header(&r, "Content-Security-Policy", csp, sizeof(csp)), "unsafe"));
    /* every script is a file: no inline code for the CSP to refuse */
    int scripts = 0;
    for (const char *p = strstr(r.body, "<script"); p; p = strstr(p + 1, "<script"), scripts++) {
        const char *end = strchr(p, '>');
        assert_non_null(end);
        assert_non_null(memmem(p, (size_t)(end - p), " src=\"/dashboard/", 17));
        assert_memory_equal(end + 1, "</script>", 9);
    }
    assert_int_equal(scripts, 2);
    assert_false(has_inline_handler(r.body));
    http_response_free(&r);
}

static void test_every_file_is_served_with_its_type(void **state)
{
    (void)state;
    static const struct {
        const char *path, *type, *contains;
    } files[] = {
        {"/dashboard/app.js", "text/javascript", "import"},
        {"/dashboard/api.js", "text/javascript", "Authorization"},
        {"/dashboard/format.js", "text/javascript", "textContent"},
        {"/dashboard/charts.js", "text/javascript", "uPlot"},
        {"/dashboard/views.js", "text/javascript", "export function"},
        {"/dashboard/requests.js", "text/javascript", "export function"},
        {"/dashboard/trybox.js", "text/javascript", "/v1/route"},
        {"/dashboard/app.css", "text/css", "@media"},
        {"/dashboard/uPlot.iife.min.js", "text/javascript", "uPlot"},
        {"/dashboard/uPlot.min.css", "text/css", ".uplot"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        http_response r = get(files[i].path, NULL);
        if (r.status != 200) fail_msg("%s: status %ld", files[i].path, r.status);
        assert_header(&r, "Content-Type", files[i].type);
        assert_header(&r, "X-Content-Type-Options", "nosniff");
        assert_header(&r, "Content-Security-Policy", "frame-ancestors 'none'");
        if (!strstr(r.body, files[i].contains)) fail_msg("%s lacks '%s'", files[i].path, files[i].contains);
        http_response_free(&r);
    }
}

static void test_etag_revalidation_and_head(void **state)
{
    (void)state;
    http_response r = get("/dashboard/app.js", NULL);
    char etag[128], cond[160], len[32];
    assert_non_null(http_header(&r, "ETag", etag, sizeof(etag)));
    assert_int_equal(etag[0], '"');
    size_t body_len = r.body_len;
    http_response_free(&r);

    snprintf(cond, sizeof(cond), "If-None-Match: W/\"other\", %s", etag);
    const char *h[] = {cond, NULL};
    r = get("/dashboard/app.js", h);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.body_len, 0);
    http_response_free(&r);

    const char *stale[] = {"If-None-Match: \"not-this-one\"", NULL};
    r = get("/dashboard/app.js", stale);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, body_len);
    http_response_free(&r);

    char url[128];
    snprintf(url, sizeof(url), "%s/dashboard/app.js", daemon_.url);
    assert_int_equal(http_request("HEAD", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(http_header(&r, "Content-Length", len, sizeof(len)));
    assert_int_equal(strtoul(len, NULL, 10), body_len);
    http_response_free(&r);
}

static void test_nothing_else_under_dashboard(void **state)
{
    (void)state;
    http_response r = get("/dashboard/../admin/spend", NULL);
    assert_int_not_equal(r.status, 200);
    http_response_free(&r);
    r = get("/dashboard/secret.js", NULL);
    assert_int_equal(r.status, 404);
    http_response_free(&r);
    r = get("/dashboard/assets.h", NULL);
    assert_int_equal(r.status, 404);
    http_response_free(&r);
    char url[128];
    snprintf(url, sizeof(url), "%s/dashboard", daemon_.url);
    assert_int_equal(http_request("POST", url, "{}", 2, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "GET, HEAD");
    http_response_free(&r);
}

/* The page is public; its data is not. */
static void test_data_needs_the_admin_key(void **state)
{
    (void)state;
    static const char *const paths[] = {"/admin/spend?by=route", "/admin/requests?limit=5", "/admin/budgets"};
    const char *wrong[] = {"Authorization: Bearer not-the-key", NULL};
    const char *right[] = {"Authorization: Bearer " ADMIN_KEY, NULL};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        http_response r = get(paths[i], NULL);
        assert_int_equal(r.status, 401);
        http_response_free(&r);
        r = get(paths[i], wrong);
        assert_int_equal(r.status, 401);
        http_response_free(&r);
        r = get(paths[i], right);
        assert_int_equal(r.status, 200);
        http_response_free(&r);
    }
}

/* The page in headless Chromium: tests/e2e/dashboard.test.mjs. Screenshots
 * go to JUNCTION_DASHBOARD_SHOTS when set (docs/dashboard.md says how the
 * docs' pictures are made), else to this test's scratch folder. */
static void test_in_a_real_browser(void **state)
{
    (void)state;
    if (access(CHROMIUM, X_OK) != 0) {
        print_message("SKIPPED: " CHROMIUM " is not installed (Debian's chromium package; script/bootstrap "
                      "installs it): the dashboard's browser tests did not run\n");
        skip();
    }
    char shots[256], url[96], n[16];
    const char *from_env = getenv("JUNCTION_DASHBOARD_SHOTS");
    snprintf(shots, sizeof(shots), "%s", from_env && *from_env ? from_env : dir);
    snprintf(url, sizeof(url), "%s", daemon_.url);
    snprintf(n, sizeof(n), "%d", N_RECENT);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(JUNCTION_SOURCE_DIR "/tests/e2e") != 0) _exit(126);
        setenv("JUNCTION_URL", url, 1);
        setenv("JUNCTION_ADMIN_KEY", dash_secret, 1);
        setenv("JUNCTION_ENV_ADMIN_KEY", ADMIN_KEY, 1);
        setenv("JUNCTION_SEEDED_REQUESTS", n, 1);
        setenv("DASHBOARD_SHOTS", shots, 1);
        setenv("CHROMIUM", CHROMIUM, 1);
        execlp("node", "node", "--test", "--test-reporter=spec", "dashboard.test.mjs", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 127) fail_msg("node is not installed (script/bootstrap installs it)");
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_has_security_headers),
        cmocka_unit_test(test_every_file_is_served_with_its_type),
        cmocka_unit_test(test_etag_revalidation_and_head),
        cmocka_unit_test(test_nothing_else_under_dashboard),
        cmocka_unit_test(test_data_needs_the_admin_key),
        cmocka_unit_test(test_in_a_real_browser),
    };
    return cmocka_run_group_tests_name("dashboard", tests, setup, teardown);
}
