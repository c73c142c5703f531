/* test_crash.c: SIGKILL under load loses nothing that was promised.
 *
 * The ledger's promise is "a request answered is a row written", within a
 * flush interval: a crash may lose the last batch, never more, and never
 * leave the database damaged. Only a real kill of the real daemon, in the
 * middle of its traffic, shows that: SQLite's WAL has to be recovered by
 * the next open, and the daemon restarted on the same file has to serve at
 * once. So: load through the fake frontier from several client threads, kill
 * -9, check the file with PRAGMA integrity_check, look up every request
 * answered well before the kill, restart on the same file, serve, repeat.
 */
#include "testlib.h"

#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

enum { CLIENTS = 4, MAX_ANSWERS = 20000, ROUNDS = 3 };
#define FLUSH_MS 100
/* A row is promised FLUSH_MS after its answer; the writer thread may wait
 * for a CPU on a loaded machine, so only answers older than this are checked. */
#define MARGIN_S 3.0
#define LOAD_S 4.0

static test_fake fake;
static char dir[64], ledger[128];

typedef struct {
    char id[48];
    double answered_at;
} answer;

typedef struct {
    test_daemon *d;
    int round, client;
    volatile int *stop;
    answer *answers;        /* this client's */
    int n;
} client;

/* Upstream requests (whole and streamed, by turns) until told to stop or
 * the daemon is gone; every 200 kept with the time its last byte came. */
static void *client_main(void *arg)
{
    client *c = arg;
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", c->d->url);
    for (int i = 0; !*c->stop && c->n < MAX_ANSWERS / CLIENTS; i++) {
        char id[48], id_header[80], body[256];
        snprintf(id, sizeof(id), "crash-%d-%d-%d", c->round, c->client, i);
        snprintf(id_header, sizeof(id_header), "X-Request-Id: %s", id);
        snprintf(body, sizeof(body),
                 "{\"model\":\"frontier\",\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"request %s\"}]}",
                 i % 2 ? "true" : "false", id);
        const char *headers[] = {"Content-Type: application/json", id_header, NULL};
        http_response r;
        int rc = http_request("POST", url, body, strlen(body), headers, &r);
        double at = now_seconds();
        bool whole = r.status == 200 && (i % 2 ? strstr(r.body, "data: [DONE]") != NULL : strstr(r.body, "\"choices\"") != NULL);
        http_response_free(&r);
        if (rc != 0) break; /* killed */
        if (whole) {
            snprintf(c->answers[c->n].id, sizeof(c->answers[c->n].id), "%s", id);
            c->answers[c->n++].answered_at = at;
        }
    }
    return NULL;
}

static sqlite3 *open_ledger(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(ledger, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void assert_integrity(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

static bool has_row(sqlite3 *db, const char *id)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM requests WHERE request_id = ?1", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

static long long count_rows(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM requests", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Nothing but the database and its WAL/SHM companions lies beside the
 * ledger after the kills: no temporary file that a crash strands. */
static void assert_only_ledger_files(void)
{
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    for (struct dirent *e; (e = readdir(dp));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        bool known = !strcmp(e->d_name, "ledger.db") || !strcmp(e->d_name, "ledger.db-wal") ||
                     !strcmp(e->d_name, "ledger.db-shm");
        if (!known) print_error("unexpected file beside the ledger: %s\n", e->d_name);
        assert_true(known);
    }
    closedir(dp);
}

static void start_daemon(test_daemon *d)
{
    char upstream[256], flush[16];
    snprintf(upstream, sizeof(upstream), "{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\"}",
             fake.port);
    snprintf(flush, sizeof(flush), "%d", FLUSH_MS);
    const char *args[] = {"--ledger", ledger, "--ledger-flush-ms", flush, "--access-log", "off", "--upstream", upstream, NULL};
    assert_int_equal(daemon_start(d, args, NULL), 0);
}

/* Three rounds on one ledger file: start (recovering what the last kill
 * left), serve at once, load, SIGKILL, check. */
static void test_sigkill_under_load_keeps_the_ledger(void **state)
{
    (void)state;
    long long rows_before = 0;
    for (int round = 0; round < ROUNDS; round++) {
        test_daemon d;
        start_daemon(&d);

        /* it serves at once: the first request after the restart is answered */
        long status = 0;
        cJSON *j = http_post_json(d.url, "/v1/chat/completions",
                                  "{\"model\":\"frontier\",\"messages\":[{\"role\":\"user\",\"content\":\"first\"}]}", &status, NULL);
        assert_int_equal(status, 200);
        cJSON_Delete(j);

        volatile int stop = 0;
        client clients[CLIENTS];
        pthread_t threads[CLIENTS];
        for (int i = 0; i < CLIENTS; i++) {
            clients[i] = (client){.d = &d, .round = round, .client = i, .stop = &stop,
                                  .answers = calloc(MAX_ANSWERS / CLIENTS, sizeof(answer))};
            assert_non_null(clients[i].answers);
            assert_int_equal(pthread_create(&threads[i], NULL, client_main, &clients[i]), 0);
        }
        usleep((useconds_t)(LOAD_S * 1e6));
        double killed_at = now_seconds();
        assert_int_equal(kill(d.pid, SIGKILL), 0); /* in the middle of the traffic */
        assert_int_equal(daemon_wait(&d, 10), 128 + SIGKILL);
        stop = 1;
        for (int i = 0; i < CLIENTS; i++) pthread_join(threads[i], NULL);

        sqlite3 *db = open_ledger();
        assert_integrity(db);
        int checked = 0, missing = 0, answered = 0;
        for (int i = 0; i < CLIENTS; i++) {
            answered += clients[i].n;
            for (int k = 0; k < clients[i].n; k++) {
                const answer *a = &clients[i].answers[k];
                if (a->answered_at > killed_at - MARGIN_S) continue;
                checked++;
                if (!has_row(db, a->id)) {
                    if (missing++ < 5) print_error("round %d: no ledger row for %s\n", round, a->id);
                }
            }
            free(clients[i].answers);
        }
        long long rows = count_rows(db);
        sqlite3_close(db);
        print_message("round %d: %d answered, %d checked, %lld rows in the ledger\n", round, answered, checked, rows);
        assert_true(checked > 0); /* else the round proved nothing */
        assert_int_equal(missing, 0);
        assert_true(rows > rows_before); /* earlier rounds' rows are still there, and this round's joined them */
        rows_before = rows;
        assert_only_ledger_files();
        daemon_cleanup(&d);
    }

    /* After the last kill: a clean start, a request, a clean stop: its row is written. */
    test_daemon d;
    start_daemon(&d);
    const char *id_header = "X-Request-Id: crash-after";
    const char *headers[] = {"Content-Type: application/json", id_header, NULL};
    const char *body = "{\"model\":\"frontier\",\"messages\":[{\"role\":\"user\",\"content\":\"after\"}]}";
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", d.url);
    http_response r;
    assert_int_equal(http_request("POST", url, body, strlen(body), headers, &r), 0);
    assert_int_equal(r.status, 200);
    http_response_free(&r);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 30), 0);
    sqlite3 *db = open_ledger();
    assert_integrity(db);
    assert_true(has_row(db, "crash-after"));
    sqlite3_close(db);
    daemon_cleanup(&d);
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(dir, sizeof(dir), "/tmp/junction-crash-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(ledger, sizeof(ledger), "%s/ledger.db", dir);
    return fake_start(&fake, NULL);
}

static int teardown(void **state)
{
    (void)state;
    fake_stop(&fake);
    remove_tree(dir);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_under_load_keeps_the_ledger),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
