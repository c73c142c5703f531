/* test_limits.c: each of junction's limits, crossed, as a client sees it.
 *
 * docs/reliability.md lists every limit with what a client gets when it
 * crosses it and the test that shows it. The limits other suites already
 * cross (max_connections, the JSON 413, queue_size, stop strings, the
 * upstream answer size, a stalled reader of an upstream stream) are named
 * there; this file crosses the rest on the real daemon: the body past twice
 * its limit, a stalled reader of a local stream, an upstream event longer
 * than the SSE line limit, an upstream's max_in_flight, messages and tools
 * (no count limit of their own: the body limit bounds them) and the ledger's
 * queue.
 */
#include "testlib.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#define MODELS JUNCTION_SHARED_DIR "/models/"

static test_fake fake;

static void upstream_arg(char *buf, size_t len, const char *name, const char *extra)
{
    snprintf(buf, len, "{\"name\":\"%s\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"model\":\"fake\"%s}",
             name, fake.port, extra);
}

/* A client whose receive buffer is tiny: it sends a streamed request and
 * then reads nothing. */
static int stalled_client(int port, const char *body, const char *id)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 2048;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[1024];
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Type: application/json\r\nX-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n%s", id, strlen(body), body);
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    return fd;
}

/* The ledger row of request `id`: its status and error_code (into buf, ""
 * when it has none), waiting up to 30 s for the row; false if none came. */
static bool ledger_row(const char *path, const char *id, int *status, char *buf, size_t len)
{
    for (int i = 0; i < 600; i++) {
        sqlite3 *db = NULL;
        bool found = false;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
            sqlite3_stmt *st = NULL;
            sqlite3_busy_timeout(db, 1000);
            if (sqlite3_prepare_v2(db, "SELECT coalesce(error_code, ''), status FROM requests WHERE request_id = ?1", -1, &st,
                                   NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                if (sqlite3_step(st) == SQLITE_ROW) {
                    snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
                    *status = sqlite3_column_int(st, 1);
                    found = true;
                }
            }
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
        if (found) return true;
        usleep(50000);
    }
    buf[0] = '\0';
    return false;
}

/* A metric's value (summed over its labels) from /metrics; -1 if absent. */
static long long metric(const test_daemon *d, const char *name)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", d->url);
    http_response r;
    if (http_request("GET", url, NULL, 0, NULL, &r) != 0) {
        http_response_free(&r);
        return -1;
    }
    long long sum = -1;
    size_t n = strlen(name);
    for (const char *p = r.body; p && *p;) {
        if (!strncmp(p, name, n) && (p[n] == ' ' || p[n] == '{')) sum = (sum < 0 ? 0 : sum) + atoll(strchr(p, ' ') + 1);
        p = strchr(p, '\n');
        if (p) p++;
    }
    http_response_free(&r);
    return sum;
}

static void assert_healthy(const test_daemon *d)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", d->url);
    http_response r;
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_response_free(&r);
}

/* max_body_bytes: up to 64 KiB past the limit the body is read and answered
 * with junction's JSON 413; beyond that, libevent stops reading, answers a
 * plain 413 and closes; either way the daemon goes on. */
static void test_body_limit_both_ways(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--max-body-bytes", "4096", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    size_t sizes[] = {6000, 4096 + 64 * 1024 + 4096};
    for (int i = 0; i < 2; i++) {
        int fd = tcp_connect(d.port);
        assert_true(fd >= 0);
        char head[256];
        snprintf(head, sizeof(head), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n", sizes[i]);
        char *body = malloc(sizes[i]);
        memset(body, ' ', sizes[i]);
        assert_int_equal(tcp_send_all(fd, head, strlen(head)), 0);
        tcp_send_all(fd, body, sizes[i]); /* past the slack the daemon may close while we send */
        free(body);
        char *reply = NULL;
        assert_true(tcp_read_all(fd, 10, &reply) > 0);
        assert_non_null(strstr(reply, "HTTP/1.1 413"));
        if (i == 0) assert_non_null(strstr(reply, "request_too_large"));
        else assert_null(strstr(reply, "request_too_large")); /* libevent's own page */
        free(reply);
        close(fd);
    }
    assert_healthy(&d);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
}

/* max_output_buffer_bytes on a local stream: a client that stops reading
 * pauses its generation (others are answered meanwhile); request_timeout_s
 * later the daemon cuts it: its row (499) is written while the client still
 * holds its connection. (Top logprobs make each event about 2 KB, so that
 * the answer outgrows what the kernel's socket buffers absorb.) */
static void test_local_stalled_reader_is_cut(void **state)
{
    (void)state;
    test_daemon d;
    char ledger[160];
    const char *args[] = {"--model", MODELS "stories260K.gguf", "--threads", "1", "--parallel", "2",
                          "--max-output-buffer", "4096", "--request-timeout", "1", "--ledger", ledger,
                          "--log-level", "debug", NULL};
    char dir[] = "/tmp/junction-limits-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(ledger, sizeof(ledger), "%s/ledger.db", dir);
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    int fd = stalled_client(d.port,
                            "{\"model\":\"local\",\"stream\":true,\"max_tokens\":2000,\"logprobs\":true,"
                            "\"top_logprobs\":20,\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}",
                            "limits-stalled-local");
    long status = 0;
    cJSON *j = http_post_json(d.url, "/v1/chat/completions",
                              "{\"model\":\"local\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
                              &status, NULL);
    assert_int_equal(status, 200);
    cJSON_Delete(j);
    char code[64];
    int row_status = 0;
    assert_true(ledger_row(ledger, "limits-stalled-local", &row_status, code, sizeof(code)));
    assert_int_equal(row_status, 499);
    /* evhttp's own write timeout (also request_timeout_s) and the engine's
     * too-slow timer race: either ends it */
    assert_true(!strcmp(code, "client_too_slow") || !strcmp(code, "client_closed"));
    char *log = daemon_log_wait(&d, "generation paused", 5);
    assert_non_null(strstr(log, "limits-stalled-local: client behind"));
    free(log);
    close(fd);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
    remove_tree(dir);
}

/* An upstream stream event longer than the SSE line limit (4 MiB; the fake
 * sends 40 MiB without a line break): the transfer is ended and, nothing
 * having reached the client yet, it gets 502 upstream_malformed_response
 * (after a first event it would get an error event); the daemon's memory
 * is not spent on the rest. */
static void test_upstream_event_past_the_line_limit(void **state)
{
    (void)state;
    test_daemon d;
    char up[256];
    upstream_arg(up, sizeof(up), "frontier", ",\"max_retries\":0");
    const char *args[] = {"--upstream", up, NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    http_response r;
    const char *body = "{\"model\":\"frontier\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x #fault:huge\"}]}";
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", d.url);
    const char *headers[] = {"Content-Type: application/json", NULL};
    assert_int_equal(http_request("POST", url, body, strlen(body), headers, &r), 0);
    assert_int_equal(r.status, 502);
    assert_non_null(strstr(r.body, "\"upstream_malformed_response\""));
    assert_non_null(strstr(r.body, "4 MiB"));
    http_response_free(&r);
    assert_healthy(&d);
    assert_true(process_rss_kib(d.pid) < 512 * 1024);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
}

typedef struct {
    const char *url;
    long status;
    char code[64];
} post_job;

static void *post_thread(void *arg)
{
    post_job *p = arg;
    const char *body = "{\"model\":\"frontier\",\"messages\":[{\"role\":\"user\",\"content\":\"wait #fault:delay:1500\"}]}";
    const char *headers[] = {"Content-Type: application/json", NULL};
    http_response r;
    if (http_request("POST", p->url, body, strlen(body), headers, &r) == 0) {
        p->status = r.status;
        cJSON *j = cJSON_Parse(r.body);
        const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
        snprintf(p->code, sizeof(p->code), "%s", cJSON_IsString(code) ? code->valuestring : "");
        cJSON_Delete(j);
    }
    http_response_free(&r);
    return NULL;
}

/* An upstream's max_in_flight: one more concurrent request gets 503
 * upstream_busy at once, the ones in flight are answered. */
static void test_upstream_max_in_flight(void **state)
{
    (void)state;
    test_daemon d;
    char up[256];
    upstream_arg(up, sizeof(up), "frontier", ",\"max_in_flight\":2");
    const char *args[] = {"--upstream", up, NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", d.url);
    post_job jobs[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (post_job){.url = url};
        assert_int_equal(pthread_create(&t[i], NULL, post_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    int ok = 0, busy = 0;
    for (int i = 0; i < 3; i++) {
        if (jobs[i].status == 200) ok++;
        if (jobs[i].status == 503 && !strcmp(jobs[i].code, "upstream_busy")) busy++;
    }
    assert_int_equal(ok, 2);
    assert_int_equal(busy, 1);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
}

/* A chat body with `n_messages` messages and `n_tools` tools (heap; caller frees). */
static char *many_body(int n_messages, int n_tools)
{
    size_t cap = (size_t)n_messages * 64 + (size_t)n_tools * 160 + 256, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b + len, cap - len, "{\"model\":\"frontier\",\"messages\":[");
    for (int i = 0; i < n_messages; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s{\"role\":\"%s\",\"content\":\"m%d\"}", i ? "," : "",
                                i % 2 ? "assistant" : "user", i);
    len += (size_t)snprintf(b + len, cap - len, "]");
    if (n_tools) {
        len += (size_t)snprintf(b + len, cap - len, ",\"tools\":[");
        for (int i = 0; i < n_tools; i++)
            len += (size_t)snprintf(b + len, cap - len,
                                    "%s{\"type\":\"function\",\"function\":{\"name\":\"tool_%d\",\"parameters\":{\"type\":\"object\"}}}",
                                    i ? "," : "", i);
        len += (size_t)snprintf(b + len, cap - len, "]");
    }
    snprintf(b + len, cap - len, "}");
    return b;
}

/* Messages and tools have no count limit of their own: thousands of each
 * pass within max_body_bytes (the upstream answers), and the same request
 * made larger than the body limit gets 413. */
static void test_messages_and_tools_bounded_by_the_body(void **state)
{
    (void)state;
    test_daemon d;
    char up[256];
    upstream_arg(up, sizeof(up), "frontier", "");
    const char *args[] = {"--upstream", up, "--max-body-bytes", "1048576", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    struct {
        int messages, tools;
        long status;
    } cases[] = {
        {4001, 0, 200},       /* ~150 KB */
        {1, 1000, 200},       /* ~90 KB; the fake calls the first tool */
        {30001, 0, 413},      /* ~1.2 MB */
        {1, 14000, 413},      /* ~1.2 MB */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = many_body(cases[i].messages, cases[i].tools);
        long status = 0;
        cJSON *j = http_post_json(d.url, "/v1/chat/completions", body, &status, NULL);
        print_message("%d messages, %d tools (%zu bytes): %ld\n", cases[i].messages, cases[i].tools, strlen(body), status);
        assert_int_equal(status, cases[i].status);
        if (status == 413 && j) { /* far past the limit, libevent's own plain 413 */
            const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
            assert_string_equal(cJSON_GetStringValue(code), "request_too_large");
        }
        cJSON_Delete(j);
        free(body);
    }
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

/* The ledger's queue (here --ledger-queue-bytes 65536: a few hundred packed
 * rows, where the default 8 MiB holds tens of thousands): while another connection holds the
 * database's write lock the writer cannot commit, the queue fills and rows
 * are dropped and counted, and every request is still answered; when the
 * lock goes, the queued rows are written: written + dropped = requests. */
static void test_ledger_queue_full_drops_and_counts(void **state)
{
    (void)state;
    test_daemon d;
    char dir[] = "/tmp/junction-limits-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ledger[160];
    snprintf(ledger, sizeof(ledger), "%s/ledger.db", dir);
    const char *args[] = {"--ledger", ledger, "--ledger-queue-bytes", "65536", "--access-log", "off", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    assert_healthy(&d);
    long long written_before = metric(&d, "junction_ledger_rows_written_total");

    sqlite3 *holder = NULL;
    assert_int_equal(sqlite3_open(ledger, &holder), SQLITE_OK);
    sqlite3_busy_timeout(holder, 5000);
    assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    /* bad requests are the quickest to make, and each is a row */
    enum { REQUESTS = 5000 };
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/chat/completions", d.url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"messages\": 1}");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    int answered = 0;
    for (int i = 0; i < REQUESTS; i++) {
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 400) answered++;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    assert_int_equal(answered, REQUESTS);
    long long dropped = metric(&d, "junction_ledger_rows_dropped_total");
    print_message("%d requests with the ledger locked: %lld rows dropped\n", REQUESTS, dropped);
    /* kept at most: a full queue (a packed row takes at least 64 bytes) and a batch in hand (1024 rows) */
    assert_true(dropped >= REQUESTS - 65536 / 64 - 1024);
    char *log = daemon_log_wait(&d, "queue full", 5);
    assert_non_null(strstr(log, "queue full"));
    free(log);

    assert_int_equal(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    long long written = 0;
    for (int i = 0; i < 600; i++) {
        written = metric(&d, "junction_ledger_rows_written_total") - written_before;
        if (written + dropped >= REQUESTS) break;
        usleep(50000);
    }
    assert_int_equal(written + dropped, REQUESTS);
    assert_int_equal(metric(&d, "junction_ledger_rows_dropped_total"), dropped); /* nothing more lost after */
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 20), 0);
    daemon_cleanup(&d);
    remove_tree(dir);
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return fake_start(&fake, NULL);
}

static int teardown(void **state)
{
    (void)state;
    fake_stop(&fake);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_limit_both_ways),
        cmocka_unit_test(test_local_stalled_reader_is_cut),
        cmocka_unit_test(test_upstream_event_past_the_line_limit),
        cmocka_unit_test(test_upstream_max_in_flight),
        cmocka_unit_test(test_messages_and_tools_bounded_by_the_body),
        cmocka_unit_test(test_ledger_queue_full_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
