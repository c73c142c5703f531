/* test_tenants.c: several tenants' keys, one mixed workload, and the
 * reports checked against what the answers said.
 *
 * Keys for three tenants (two for one of them) are made with the real
 * `junction keys add`; each key sends the same mix (local and external,
 * whole and streamed, "auto", refused by its rate limit or budget, 400 and
 * 404) to the real daemon with the fake frontier as a priced external
 * upstream. The test sums per tenant what each response said it cost (the
 * `junction` object's cost_usd, in the body or the stream's last event;
 * an error costs nothing) and counts the requests, then requires
 * `GET /admin/spend?by=tenant` and `junction audit --by tenant --format
 * json` to give the same counts exactly and the same cost to the
 * micro-dollar.
 */
#include "testlib.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define MODELS JUNCTION_SHARED_DIR "/models/"
#define HARD "Find all zeros in the indicated finite field of the given polynomial with coefficients in that field. x^5 + 3x^3 + x^2 + 2x in Z_5"
#define ADMIN_KEY "adm-tenants-0123456789"

static test_fake fake;
static char dir[64], ledger[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/junction-tenants-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(ledger, sizeof(ledger), "%s/ledger.db", dir);
    return fake_start(&fake, NULL);
}

static int teardown(void **state)
{
    (void)state;
    fake_stop(&fake);
    remove_tree(dir);
    return 0;
}

/* `junction keys ARGS... --db LEDGER`; the key (for `add`) is the last line. */
static void keys(const char *const *args, char *key, size_t len)
{
    const char *argv[24] = {"keys"};
    int n = 1;
    for (int i = 0; args[i] && n < 20; i++) argv[n++] = args[i];
    argv[n++] = "--db";
    argv[n++] = ledger;
    argv[n] = NULL;
    char *out;
    int rc = run_junction(argv, &out);
    if (rc != 0) fprintf(stderr, "junction keys %s: %s\n", args[0], out);
    assert_int_equal(rc, 0);
    if (key) {
        size_t l = strlen(out);
        while (l && out[l - 1] == '\n') out[--l] = '\0';
        const char *last = strrchr(out, '\n');
        snprintf(key, len, "%s", last ? last + 1 : out);
        assert_true(!strncmp(key, "jk-", 3));
    }
    free(out);
}

/* One request of the mix. */
typedef struct {
    const char *model;
    bool stream;
    const char *extra;      /* more fields, each followed by a comma */
    const char *text;
    int max_tokens;
} request;

static const request mix[] = {
    {"local", false, "", "Once upon a time", 4},
    {"local", true, "", "Once upon a time", 4},
    {"frontier", false, "", "count these five words", 10},
    {"frontier", true, "", "count these five words", 10},
    {"auto", false, "", HARD, 8},                               /* difficult: the frontier, or local past a budget */
    {"auto", true, "", "hello there, how are you", 4},          /* easy: local */
    {"local", false, "\"temperature\":5,", "too hot", 4},       /* 400 */
    {"nope", false, "", "which model?", 4},                     /* 404 */
    {"frontier", false, "", "count these five words again", 10},
    {"frontier", true, "", "and once more, five words", 10},
};

/* What the answer said it cost, in micro-dollars: the "junction" object of
 * a whole answer, or of the stream's last event that has one. */
static int64_t cost_of(const http_response *r, bool stream)
{
    double usd = -1;
    if (!stream) {
        cJSON *j = cJSON_Parse(r->body);
        const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "junction"), "cost_usd");
        if (cJSON_IsNumber(c)) usd = c->valuedouble;
        cJSON_Delete(j);
    } else {
        for (const char *p = strstr(r->body, "data: {"); p; p = strstr(p + 1, "data: {")) {
            const char *end = strstr(p, "\n\n");
            cJSON *j = cJSON_ParseWithLength(p + 6, end ? (size_t)(end - p - 6) : strlen(p + 6));
            const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "junction"), "cost_usd");
            if (cJSON_IsNumber(c)) usd = c->valuedouble;
            cJSON_Delete(j);
        }
    }
    if (usd < 0) fprintf(stderr, "no junction.cost_usd in: %.400s\n", r->body);
    assert_true(usd >= 0);
    return (int64_t)llround(usd * 1e6);
}

typedef struct {
    const char *tenant;
    int64_t requests, cost_micro;
} tally;

static int rate_refusals, budget_refusals, answered_local, answered_frontier;

/* Send one request with `key` (NULL: none); count it on `t` (NULL: no tenant). */
static void send_one(const char *url, const char *key, const request *q, tally *t, tally *total)
{
    char body[1024], auth[128];
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\":%s,%s\"max_tokens\":%d,\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]}", q->model, q->stream ? "true" : "false", q->extra, q->max_tokens, q->text);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : "");
    const char *headers[] = {"Content-Type: application/json", key ? auth : NULL, NULL};
    http_response r;
    assert_int_equal(http_request("POST", url, body, strlen(body), headers, &r), 0);
    int64_t cost = 0;
    if (r.status == 200) {
        cost = cost_of(&r, q->stream);
        char route[64];
        assert_non_null(http_header(&r, "X-Junction-Route", route, sizeof(route)));
        answered_local += !strcmp(route, "local");
        answered_frontier += !strcmp(route, "frontier");
    } else {
        assert_true(r.status >= 400 && r.status < 500); /* the mix's failures are all the client's */
        assert_null(strstr(r.body, "\"junction\"")); /* an error costs nothing and says so by carrying no cost */
        rate_refusals += r.status == 429 && strstr(r.body, "rate_limit_exceeded") != NULL;
        budget_refusals += r.status == 429 && strstr(r.body, "budget_exceeded") != NULL;
    }
    if (t) t->requests++, t->cost_micro += cost;
    total->requests++;
    total->cost_micro += cost;
    http_response_free(&r);
}

static int64_t int_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

/* A spend report grouped by tenant agrees with the tallies exactly. */
static void assert_report_matches(const char *source, const cJSON *report, const tally *tallies, int n,
                                  const tally *total)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(report, "total");
    fprintf(stderr, "%s: %lld requests, %lld micro-USD (the answers said %lld, %lld)\n", source,
            (long long)int_of(t, "requests"), (long long)int_of(t, "cost_micro_usd"), (long long)total->requests,
            (long long)total->cost_micro);
    assert_int_equal(int_of(t, "requests"), total->requests);
    assert_int_equal(int_of(t, "cost_micro_usd"), total->cost_micro);
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(report, "groups");
    for (int i = 0; i < n; i++) {
        const cJSON *g = NULL;
        for (int k = 0; k < cJSON_GetArraySize(groups) && !g; k++) {
            const cJSON *c = cJSON_GetArrayItem(groups, k);
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "key"));
            if (name && !strcmp(name, tallies[i].tenant)) g = c;
        }
        if (!g) fail_msg("%s: no group for tenant %s", source, tallies[i].tenant);
        fprintf(stderr, "  %-8s %3lld requests %8lld micro-USD (the answers: %lld, %lld)\n", tallies[i].tenant,
                (long long)int_of(g, "requests"), (long long)int_of(g, "cost_micro_usd"),
                (long long)tallies[i].requests, (long long)tallies[i].cost_micro);
        assert_int_equal(int_of(g, "requests"), tallies[i].requests);
        assert_int_equal(int_of(g, "cost_micro_usd"), tallies[i].cost_micro);
    }
}

static void test_audit_by_tenant_matches_what_answers_said(void **state)
{
    (void)state;
    /* three tenants, two keys for acme; limits that refuse part of the mix */
    char a1[128], a2[128], g[128], in[128];
    const char *add_a1[] = {"add", "--tenant", "acme", "--name", "ci", "--rpm", "4", NULL};
    const char *add_a2[] = {"add", "--tenant", "acme", "--name", "batch", "--budget-daily", "0.0006", NULL};
    const char *add_g[] = {"add", "--tenant", "globex", NULL};
    const char *add_i[] = {"add", "--tenant", "initech", "--name", "ops", NULL};
    const char *budget_i[] = {"tenant", "initech", "--budget-daily", "0.001", NULL};
    keys(add_a1, a1, sizeof(a1));
    keys(add_a2, a2, sizeof(a2));
    keys(add_g, g, sizeof(g));
    keys(add_i, in, sizeof(in));
    keys(budget_i, NULL, 0);

    char ups[512];
    snprintf(ups, sizeof(ups),
             "{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"model\":\"gpt-fake\","
             "\"zone\":\"external\",\"price_input_per_mtok\":10,\"price_output_per_mtok\":30}", fake.port);
    const char *args[] = {"--ledger", ledger, "--ledger-flush-ms", "20", "--upstream", ups, "--model",
                          MODELS "stories260K.gguf", "--threads", "1", NULL};
    const char *env[] = {"JUNCTION_ADMIN_KEYS=" ADMIN_KEY, NULL};
    test_daemon d;
    assert_int_equal(daemon_start(&d, args, env), 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", d.url);

    tally tallies[] = {{"acme", 0, 0}, {"globex", 0, 0}, {"initech", 0, 0}};
    tally total = {"", 0, 0};
    const struct { const char *key; tally *t; } clients[] = {{a1, &tallies[0]}, {a2, &tallies[0]}, {g, &tallies[1]},
                                                              {in, &tallies[2]}};
    for (size_t q = 0; q < sizeof(mix) / sizeof(mix[0]); q++)       /* interleaved, as real traffic is */
        for (size_t c = 0; c < sizeof(clients) / sizeof(clients[0]); c++) send_one(url, clients[c].key, &mix[q], clients[c].t, &total);
    send_one(url, NULL, &mix[0], NULL, &total);                          /* no key: 401, no tenant */
    send_one(url, "jk-not-a-key", &mix[2], NULL, &total);                /* an unknown key: 401, no tenant */
    fprintf(stderr, "answered: %d local, %d frontier; refused: %d by rate limit, %d by budget\n", answered_local,
            answered_frontier, rate_refusals, budget_refusals);
    assert_true(answered_local > 0 && answered_frontier > 0);
    assert_true(rate_refusals > 0 && budget_refusals > 0);
    assert_true(total.cost_micro > 0);

    /* /admin/spend, once the ledger committed every row */
    snprintf(url, sizeof(url), "%s/admin/spend?by=tenant", d.url);
    const char *admin[] = {"Authorization: Bearer " ADMIN_KEY, NULL};
    cJSON *report = NULL;
    for (int i = 0; i < 100; i++) {
        http_response r;
        assert_int_equal(http_request("GET", url, NULL, 0, admin, &r), 0);
        assert_int_equal(r.status, 200);
        cJSON_Delete(report);
        report = cJSON_Parse(r.body);
        http_response_free(&r);
        if (int_of(cJSON_GetObjectItem(report, "total"), "requests") >= total.requests) break;
        usleep(100000);
    }
    assert_report_matches("/admin/spend?by=tenant", report, tallies, 3, &total);
    cJSON_Delete(report);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 30), 0);
    daemon_cleanup(&d);

    /* junction audit on the file, after the daemon is gone */
    const char *audit[] = {"audit", "--db", ledger, "--by", "tenant", "--format", "json", NULL};
    char *out;
    assert_int_equal(run_junction(audit, &out), 0);
    report = cJSON_Parse(out);
    if (!report) fail_msg("audit printed no JSON: %s", out);
    assert_report_matches("junction audit --by tenant", report, tallies, 3, &total);
    cJSON_Delete(report);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_by_tenant_matches_what_answers_said),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
