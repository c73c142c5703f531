/* test_burst.c: 10,000 mixed bad requests on loopback; the daemon survives
 * them with flat memory and exits cleanly (no leaks under LeakSanitizer). */
#include "testlib.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    const char *method, *path, *body;
    long status;
} shot;

static const shot shots[] = {
    {"POST", "/v1/chat/completions", "{\"messages\": [", 400},
    {"POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400},
    {"POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}", 400},
    {"POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":9}", 400},
    {"POST", "/v1/chat/completions", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", 400},
    {"GET", "/v1/chat/completions", NULL, 405},
    {"GET", "/no/such/path", NULL, 404},
    {"POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 503},
};
#define N_SHOTS (sizeof(shots) / sizeof(shots[0]))

/* Raw abuse on fresh connections: garbage, an oversized body, a hang-up mid-request. */
static void raw_abuse(int port, int kind)
{
    int fd = tcp_connect(port);
    assert_true(fd >= 0);
    static char big[8192];
    const char *msg;
    char hdr[256];
    switch (kind) {
    case 0: msg = "GARBAGE\r\n\r\n"; break;
    case 1: msg = "GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n"; break;
    case 2:
        memset(big, 'x', sizeof(big));
        snprintf(hdr, sizeof(hdr), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", sizeof(big));
        assert_int_equal(tcp_send_all(fd, hdr, strlen(hdr)), 0);
        tcp_send_all(fd, big, sizeof(big));
        msg = "";
        break;
    default: msg = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"mess"; break;
    }
    tcp_send_all(fd, msg, strlen(msg));
    if (kind != 3) {
        char *got = NULL;
        tcp_read_all(fd, 5, &got);
        if (!strstr(got, "HTTP/1.1 4")) fprintf(stderr, "raw abuse %d got: %.80s\n", kind, got);
        assert_non_null(strstr(got, "HTTP/1.1 4"));
        free(got);
    }
    close(fd);
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static void fire(CURL *c, const char *url_base, int i, int port)
{
    if (i % 50 == 49) {
        raw_abuse(port, (i / 50) % 4);
        return;
    }
    const shot *s = &shots[i % N_SHOTS];
    char url[256];
    snprintf(url, sizeof(url), "%s%s", url_base, s->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, s->method);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (s->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, s->method);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, s->status);
}

static void test_burst_of_bad_requests_keeps_memory_flat(void **state)
{
    (void)state;
    char asan[512];
    const char *old = getenv("ASAN_OPTIONS");
    /* A small quarantine, so freed memory does not read as growth. */
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%squarantine_size_mb=1", old ? old : "", old ? ":" : "");
    const char *env[] = {asan, NULL};
    /* the HTTP layer's memory: SQLite's page cache would read as growth here */
    const char *args[] = {"--max-body-bytes", "4096", "--access-log", "off", "--ledger", "off", NULL};
    test_daemon d;
    assert_int_equal(daemon_start(&d, args, env), 0);

    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    for (int i = 0; i < 2000; i++) fire(c, d.url, i, d.port);
    usleep(300000);
    long before = process_rss_kib(d.pid);
    for (int i = 0; i < 10000; i++) fire(c, d.url, i, d.port);
    usleep(300000);
    long after = process_rss_kib(d.pid);
    curl_easy_cleanup(c);
    fprintf(stderr, "rss before %ld KiB, after 10,000 bad requests %ld KiB\n", before, after);
    assert_true(before > 0);
    assert_true(after - before < 4096);

    char url[128];
    http_response r;
    snprintf(url, sizeof(url), "%s/healthz", d.url);
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_response_free(&r);
    /* Every connection is closed, so the drain ends at once (a connection
     * count gone wrong would hold it to the 30 s drain timeout), and
     * LeakSanitizer turns any leak into a non-zero exit. */
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 5), 0);
    daemon_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_of_bad_requests_keeps_memory_flat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
