/* test_clients.c: client keys, rate limits, budgets and protected mode
 * through the real daemon: keys made with the real `junction keys`, the fake
 * frontier as a priced external upstream, the ledger read back with
 * `junction audit`. */
#include "testlib.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define MODELS JUNCTION_SHARED_DIR "/models/"

static test_fake fake;
static char dir[64], ledger[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/junction-clients-XXXXXX");
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

/* `junction keys ARGS...` on ledger `db`; the key is the output's last
 * line, its id (when `id` is not NULL) follows "added ". */
static void make_key_in(const char *db, const char *const *args, char *key, size_t len, char *id, size_t idlen)
{
    const char *argv[24] = {"keys"};
    int n = 1;
    for (int i = 0; args[i] && n < 20; i++) argv[n++] = args[i];
    argv[n++] = "--db";
    argv[n++] = db;
    argv[n] = NULL;
    char *out;
    assert_int_equal(run_junction(argv, &out), 0);
    const char *added = strstr(out, "added ");
    assert_non_null(added);
    if (id) snprintf(id, idlen, "%.*s", (int)strcspn(added + 6, " "), added + 6);
    size_t l = strlen(out);
    while (l && out[l - 1] == '\n') out[--l] = '\0';
    const char *last = strrchr(out, '\n');
    snprintf(key, len, "%s", last ? last + 1 : out);
    assert_true(!strncmp(key, "jk-", 3));
    free(out);
}

/* ... on the test's ledger. */
static void make_key(const char *const *args, char *key, size_t len) { make_key_in(ledger, args, key, len, NULL, 0); }

static int start_env(test_daemon *d, const char *const *env);
static int start(test_daemon *d) { return start_env(d, NULL); }

static int start_env(test_daemon *d, const char *const *env)
{
    char ups[512];
    snprintf(ups, sizeof(ups),
             "{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"model\":\"gpt-fake\","
             "\"zone\":\"external\",\"price_input_per_mtok\":10,\"price_output_per_mtok\":30,\"max_in_flight\":256}",
             fake.port);
    const char *args[] = {"--ledger", ledger, "--ledger-flush-ms", "20", "--upstream", ups, "--model",
                          MODELS "stories260K.gguf", "--threads", "1", NULL};
    return daemon_start(d, args, env);
}

static long chat(const test_daemon *d, const char *key, const char *model, const char *text, int max_tokens,
                 http_response *raw)
{
    char url[128], auth[192], body[1024];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", d->url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : "");
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"max_tokens\":%d,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             model, max_tokens, text);
    const char *headers[] = {"Content-Type: application/json", key ? auth : NULL, NULL};
    http_response r;
    if (http_request("POST", url, body, strlen(body), headers, &r) != 0) return 0;
    long status = r.status;
    if (raw) *raw = r;
    else http_response_free(&r);
    return status;
}

static void stop(test_daemon *d)
{
    kill(d->pid, SIGTERM);
    assert_int_equal(daemon_wait(d, 20), 0);
    daemon_cleanup(d);
}

/* With a key in the database every API request needs one; health stays open. */
static void test_keys_turn_auth_on(void **state)
{
    (void)state;
    char acme[128];
    const char *args[] = {"add", "--tenant", "acme", "--name", "ci", NULL};
    make_key(args, acme, sizeof(acme));
    test_daemon d;
    assert_int_equal(start(&d), 0);
    assert_int_equal(chat(&d, NULL, "local", "hello", 2, NULL), 401);
    assert_int_equal(chat(&d, "jk-not-a-key", "local", "hello", 2, NULL), 401);
    assert_int_equal(chat(&d, acme, "local", "hello", 2, NULL), 200);
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", d.url);
    http_response r;
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_response_free(&r);
    /* a key added while the daemon runs works within a second or so */
    char late[128];
    const char *more[] = {"add", "--tenant", "globex", NULL};
    make_key(more, late, sizeof(late));
    long status = 0;
    for (int i = 0; i < 40 && status != 200; i++) {
        status = chat(&d, late, "local", "hello", 2, NULL);
        if (status != 200) usleep(100000);
    }
    assert_int_equal(status, 200);
    stop(&d);
}

/* requests per minute: the third within the minute gets 429 with the headers */
static void test_rate_limit(void **state)
{
    (void)state;
    char key[128];
    const char *args[] = {"add", "--tenant", "limited", "--rpm", "2", NULL};
    make_key(args, key, sizeof(key));
    test_daemon d;
    assert_int_equal(start(&d), 0);
    http_response r;
    assert_int_equal(chat(&d, key, "local", "one", 2, &r), 200);
    char h[64];
    assert_string_equal(http_header(&r, "x-ratelimit-limit-requests", h, sizeof(h)), "2");
    assert_string_equal(http_header(&r, "x-ratelimit-remaining-requests", h, sizeof(h)), "1");
    http_response_free(&r);
    assert_int_equal(chat(&d, key, "local", "two", 2, NULL), 200);
    assert_int_equal(chat(&d, key, "local", "three", 2, &r), 429);
    assert_non_null(http_header(&r, "Retry-After", h, sizeof(h)));
    assert_true(atoi(h) >= 1);
    assert_string_equal(http_header(&r, "x-ratelimit-remaining-requests", h, sizeof(h)), "0");
    assert_non_null(strstr(r.body, "rate_limit_exceeded"));
    http_response_free(&r);
    stop(&d);
}

/* 64 requests at once against a daily budget that holds only some: no
 * overshoot beyond what was reserved, and the ones refused say why. */
typedef struct {
    const test_daemon *d;
    const char *key;
    long status;
} shot;

static void *fire(void *arg)
{
    shot *s = arg;
    s->status = chat(s->d, s->key, "frontier", "count these five words", 10, NULL);
    return NULL;
}

static void test_budget_holds_under_concurrency(void **state)
{
    (void)state;
    /* each request's worst case: ~6 prompt tokens x $10/M + 10 x $30/M = ~$0.00036 */
    char key[128];
    const char *args[] = {"add", "--tenant", "thrifty", "--budget-daily", "0.005", NULL};
    make_key(args, key, sizeof(key));
    test_daemon d;
    assert_int_equal(start(&d), 0);
    shot shots[64];
    pthread_t th[64];
    for (int i = 0; i < 64; i++) {
        shots[i] = (shot){&d, key, 0};
        pthread_create(&th[i], NULL, fire, &shots[i]);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < 64; i++) {
        pthread_join(th[i], NULL);
        ok += shots[i].status == 200;
        refused += shots[i].status == 429;
    }
    fprintf(stderr, "64 at once on a $0.005 budget: %d answered, %d refused\n", ok, refused);
    assert_int_equal(ok + refused, 64);
    assert_true(ok > 0 && refused > 0);
    stop(&d); /* commits every row */

    /* what the ledger says the key spent stays within its budget */
    const char *audit[] = {"audit", "--db", ledger, "--by", "tenant", "--format", "json", NULL};
    char *out;
    assert_int_equal(run_junction(audit, &out), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    const cJSON *groups = cJSON_GetObjectItem(j, "groups");
    bool found = false;
    for (int i = 0; i < cJSON_GetArraySize(groups); i++) {
        const cJSON *g = cJSON_GetArrayItem(groups, i);
        const cJSON *name = cJSON_GetObjectItem(g, "key"); /* the group's tenant */
        if (!cJSON_IsString(name) || strcmp(name->valuestring, "thrifty") != 0) continue;
        found = true;
        double spent = cJSON_GetObjectItem(g, "cost_usd")->valuedouble;
        fprintf(stderr, "tenant thrifty spent $%.6f of $0.005 in %d requests\n", spent,
                cJSON_GetObjectItem(g, "requests")->valueint);
        assert_true(spent <= 0.005 + 1e-9);
        assert_int_equal(cJSON_GetObjectItem(g, "requests")->valueint, 64); /* refused ones have rows too */
    }
    assert_true(found);
    cJSON_Delete(j);
    free(out);
}

/* Over its budget, an "auto" request goes to the free local engine; a
 * request naming the priced upstream gets 429 budget_exceeded. */
static void test_budget_switches_auto_to_local(void **state)
{
    (void)state;
    char key[128];
    const char *args[] = {"add", "--tenant", "frugal", "--budget-daily", "0.000001", NULL};
    make_key(args, key, sizeof(key));
    test_daemon d;
    assert_int_equal(start(&d), 0);
    http_response r;
    const char *hard = "Find all zeros in the indicated finite field of the given polynomial with coefficients in that "
                       "field. x^5 + 3x^3 + x^2 + 2x in Z_5";
    assert_int_equal(chat(&d, key, "auto", hard, 4, &r), 200);
    char h[64];
    assert_string_equal(http_header(&r, "X-Junction-Route", h, sizeof(h)), "local");
    assert_string_equal(http_header(&r, "X-Junction-Rule", h, sizeof(h)), "budget-exceeded");
    http_response_free(&r);
    assert_int_equal(chat(&d, key, "frontier", "hello", 4, &r), 429);
    assert_non_null(strstr(r.body, "budget_exceeded"));
    http_response_free(&r);
    stop(&d);
}

/* /admin/budgets: every tenant and key with its limits and what it spent,
 * rebuilt from the ledger after a restart. */
static void test_admin_budgets(void **state)
{
    (void)state;
    const char *env[] = {"JUNCTION_ADMIN_KEYS=adm-secret-1", NULL};
    test_daemon d;
    assert_int_equal(start_env(&d, env), 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/admin/budgets", d.url);
    http_response r;
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    http_response_free(&r);
    const char *auth[] = {"Authorization: Bearer adm-secret-1", NULL};
    assert_int_equal(http_request("GET", url, NULL, 0, auth, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    const cJSON *tenants = cJSON_GetObjectItem(j, "tenants");
    bool found = false;
    for (int i = 0; i < cJSON_GetArraySize(tenants); i++) {
        const cJSON *t = cJSON_GetArrayItem(tenants, i);
        if (strcmp(cJSON_GetObjectItem(t, "name")->valuestring, "thrifty") != 0) continue;
        found = true;
        /* the earlier test's spend, summed again from the ledger at start */
        double spent = cJSON_GetObjectItem(t, "day_spent_usd")->valuedouble;
        assert_true(spent > 0 && spent <= 0.005 + 1e-9);
    }
    assert_true(found);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(j, "keys")) >= 4);
    assert_null(strstr(r.body, "jk-")); /* never a key's secret */
    cJSON_Delete(j);
    http_response_free(&r);
    stop(&d);
}

/* The daemon listening on every address (0.0.0.0, port 0) with the keys of
 * `db`: testlib's daemon_start listens on loopback only. It is reached
 * through 127.0.0.1; protected mode looks at the listen address. */
static int start_public(test_daemon *d, const char *db)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/junction-public-XXXXXX");
    if (!mkdtemp(d->dir)) return -1;
    snprintf(d->log_path, sizeof(d->log_path), "%s/daemon.log", d->dir);
    const char *argv[] = {JUNCTION_BIN, "serve", "--listen", "0.0.0.0:0", "--ledger", db, "--ledger-flush-ms", "20",
                          "--model", MODELS "stories260K.gguf", "--threads", "1", NULL};
    d->pid = fork();
    if (d->pid == 0) {
        FILE *log = freopen(d->log_path, "w", stderr);
        if (!log || dup2(fileno(log), 1) < 0) _exit(126);
        execv(JUNCTION_BIN, (char *const *)argv);
        _exit(127);
    }
    if (d->pid < 0) return -1;
    char *log = daemon_log_wait(d, "listening on http://0.0.0.0:", 30.0);
    const char *at = log ? strstr(log, "listening on http://0.0.0.0:") : NULL;
    if (at) {
        d->port = atoi(at + strlen("listening on http://0.0.0.0:"));
        snprintf(d->url, sizeof(d->url), "http://127.0.0.1:%d", d->port);
    } else {
        fprintf(stderr, "the public daemon did not start; its log:\n%s\n", log ? log : "(none)");
    }
    free(log);
    return at ? 0 : -1;
}

static long get(const test_daemon *d, const char *path, const char *key, http_response *raw)
{
    char url[128], auth[192];
    snprintf(url, sizeof(url), "%s%s", d->url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : "");
    const char *headers[] = {key ? auth : NULL, NULL};
    http_response r;
    if (http_request("GET", url, NULL, 0, headers, &r) != 0) return 0;
    long status = r.status;
    if (raw) *raw = r;
    else http_response_free(&r);
    return status;
}

/* Protected mode holds while the daemon runs: on a public address, revoking
 * the last key refuses every model and admin request (it does not turn auth
 * off), health stays open, the log says why; a new key lets clients in. */
static void test_protected_mode_holds_after_last_key_revoked(void **state)
{
    (void)state;
    char db[128], key[128], id[32];
    snprintf(db, sizeof(db), "%s/public.db", dir);
    const char *args[] = {"add", "--tenant", "public", NULL};
    make_key_in(db, args, key, sizeof(key), id, sizeof(id));
    test_daemon d;
    assert_int_equal(start_public(&d, db), 0);
    assert_int_equal(chat(&d, key, "local", "hello", 2, NULL), 200);
    assert_int_equal(chat(&d, NULL, "local", "hello", 2, NULL), 401);

    const char *revoke[] = {"keys", "revoke", "--db", db, id, NULL};
    char *out;
    assert_int_equal(run_junction(revoke, &out), 0);
    free(out);
    long status = 200;
    for (int i = 0; i < 50 && status == 200; i++) { /* the daemon reloads the keys every second */
        status = chat(&d, key, "local", "hello", 2, NULL);
        if (status == 200) usleep(100000);
    }
    assert_int_equal(status, 401);
    /* no key at all is not "no auth" here: anonymous requests are refused too, saying why */
    http_response r;
    assert_int_equal(chat(&d, NULL, "local", "hello", 2, &r), 401);
    assert_non_null(strstr(r.body, "No client key exists"));
    assert_non_null(strstr(r.body, "junction keys add"));
    assert_non_null(strstr(r.body, "invalid_api_key"));
    char h[64];
    assert_string_equal(http_header(&r, "WWW-Authenticate", h, sizeof(h)), "Bearer");
    http_response_free(&r);
    assert_int_equal(chat(&d, NULL, "auto", "hello", 2, NULL), 401);
    assert_int_equal(get(&d, "/v1/models", NULL, NULL), 401);
    assert_int_equal(get(&d, "/admin/spend", NULL, NULL), 401);
    assert_int_equal(get(&d, "/admin/budgets", key, NULL), 401);
    assert_int_equal(get(&d, "/healthz", NULL, NULL), 200);
    assert_int_equal(get(&d, "/readyz", NULL, NULL), 200);
    char *log = daemon_log_wait(&d, "no client key is left", 5.0);
    assert_non_null(strstr(log, "no client key is left, and junction listens on 0.0.0.0:0"));
    free(log);

    /* a new key works within a second or so, and only with it */
    char fresh[128];
    make_key_in(db, args, fresh, sizeof(fresh), NULL, 0);
    status = 0;
    for (int i = 0; i < 50 && status != 200; i++) {
        status = chat(&d, fresh, "local", "hello", 2, NULL);
        if (status != 200) usleep(100000);
    }
    assert_int_equal(status, 200);
    assert_int_equal(chat(&d, NULL, "local", "hello", 2, NULL), 401);
    assert_int_equal(chat(&d, key, "local", "hello", 2, NULL), 401);
    stop(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_turn_auth_on),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_budget_holds_under_concurrency),
        cmocka_unit_test(test_budget_switches_auto_to_local),
        cmocka_unit_test(test_admin_budgets),
        cmocka_unit_test(test_protected_mode_holds_after_last_key_revoked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
