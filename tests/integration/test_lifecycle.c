/* test_lifecycle.c: the daemon's connections, limits and shutdown, end to end. */
#include "testlib.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static const char partial_request[] =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Content-Length: 45\r\n\r\n{\"messages\":[{\"role\":\"user\",";
static const char rest_of_body[] = "\"content\":\"hi\"}]}";

/* SIGTERM with a request half uploaded: the daemon waits for it, answers it
 * (with Connection: close), and only then exits 0. */
static void test_drain_finishes_in_flight_request(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--drain-timeout", "20", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    int fd = tcp_connect(d.port);
    assert_true(fd >= 0);
    assert_int_equal(tcp_send_all(fd, partial_request, strlen(partial_request)), 0);
    usleep(300000); /* let the daemon read what we sent */
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 0.5), -1); /* still draining: our request is in flight */
    assert_int_equal(tcp_connect(d.port), -1); /* no longer accepting */
    assert_int_equal(tcp_send_all(fd, rest_of_body, strlen(rest_of_body)), 0);
    char *reply = NULL;
    tcp_read_all(fd, 10, &reply);
    assert_non_null(strstr(reply, "HTTP/1.1 503"));
    assert_non_null(strstr(reply, "Connection: close"));
    assert_non_null(strstr(reply, "no_backend"));
    free(reply);
    close(fd);
    assert_int_equal(daemon_wait(&d, 10), 0);
    char *log = daemon_log(&d);
    assert_non_null(strstr(log, "1 request(s) in flight"));
    free(log);
    daemon_cleanup(&d);
}

/* An idle keep-alive connection does not hold the drain up. */
static void test_drain_closes_idle_connections(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--drain-timeout", "20", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    int fd = tcp_connect(d.port);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tcp_send_all(fd, req, strlen(req)), 0);
    char buf[512];
    assert_true(read(fd, buf, sizeof(buf)) > 0);
    double t0 = now_seconds();
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 5), 0);
    assert_true(now_seconds() - t0 < 5);
    char *rest = NULL;
    assert_int_equal(tcp_read_all(fd, 2, &rest), 0); /* closed by the server */
    free(rest);
    close(fd);
    daemon_cleanup(&d);
}

static void test_sigint_drains_too(void **state)
{
    (void)state;
    test_daemon d;
    assert_int_equal(daemon_start(&d, NULL, NULL), 0);
    kill(d.pid, SIGINT);
    assert_int_equal(daemon_wait(&d, 5), 0);
    daemon_cleanup(&d);
}

/* A request that never finishes is cut at the drain timeout; exit is still 0. */
static void test_drain_timeout(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--drain-timeout", "0.5", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    int fd = tcp_connect(d.port);
    assert_int_equal(tcp_send_all(fd, partial_request, strlen(partial_request)), 0);
    usleep(200000);
    double t0 = now_seconds();
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 10), 0);
    double took = now_seconds() - t0;
    assert_true(took >= 0.45);
    assert_true(took < 5);
    char *log = daemon_log(&d);
    assert_non_null(strstr(log, "drain timeout"));
    free(log);
    close(fd);
    daemon_cleanup(&d);
}

/* A second signal exits at once, whatever is in flight. */
static void test_second_signal_exits_at_once(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--drain-timeout", "60", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    int fd = tcp_connect(d.port);
    assert_int_equal(tcp_send_all(fd, partial_request, strlen(partial_request)), 0);
    usleep(200000);
    kill(d.pid, SIGTERM);
    usleep(200000);
    assert_int_equal(daemon_wait(&d, 0.1), -1);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 5), 128 + SIGTERM);
    close(fd);
    daemon_cleanup(&d);
}

/* At max_connections the daemon stops accepting until a connection closes. */
static void test_connection_limit(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--max-connections", "2", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int a = tcp_connect(d.port), b = tcp_connect(d.port);
    char buf[512];
    assert_int_equal(tcp_send_all(a, req, strlen(req)), 0);
    assert_true(read(a, buf, sizeof(buf)) > 0);
    assert_int_equal(tcp_send_all(b, req, strlen(req)), 0);
    assert_true(read(b, buf, sizeof(buf)) > 0);
    int c = tcp_connect(d.port); /* the kernel's backlog takes it; junction does not */
    assert_true(c >= 0);
    assert_int_equal(tcp_send_all(c, req, strlen(req)), 0);
    char *got = NULL;
    assert_int_equal(tcp_read_all(c, 0.5, &got), 0);
    free(got);
    close(a);
    /* Now the third is accepted and answered. */
    ssize_t n = 0;
    double deadline = now_seconds() + 5;
    while (n <= 0 && now_seconds() < deadline) n = read(c, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "200 OK"));
    close(b);
    close(c);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 10), 0);
    daemon_cleanup(&d);
}

/* A connection that sends nothing is closed after request_timeout_s. */
static void test_request_timeout_closes_silent_connection(void **state)
{
    (void)state;
    test_daemon d;
    const char *args[] = {"--request-timeout", "0.3", NULL};
    assert_int_equal(daemon_start(&d, args, NULL), 0);
    int fd = tcp_connect(d.port);
    double t0 = now_seconds();
    char *got = NULL;
    tcp_read_all(fd, 5, &got);
    double took = now_seconds() - t0;
    free(got);
    assert_true(took >= 0.25);
    assert_true(took < 4);
    close(fd);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 10), 0);
    daemon_cleanup(&d);
}

/* A port already in use stops the daemon with a message that says so. */
static void test_port_in_use(void **state)
{
    (void)state;
    test_daemon d;
    assert_int_equal(daemon_start(&d, NULL, NULL), 0);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", d.port);
    const char *args[] = {"serve", "--listen", listen, NULL};
    char *out = NULL;
    assert_int_equal(run_junction(args, &out), 1);
    assert_non_null(strstr(out, "cannot listen on"));
    free(out);
    kill(d.pid, SIGTERM);
    assert_int_equal(daemon_wait(&d, 10), 0);
    daemon_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_finishes_in_flight_request),
        cmocka_unit_test(test_drain_closes_idle_connections),
        cmocka_unit_test(test_sigint_drains_too),
        cmocka_unit_test(test_drain_timeout),
        cmocka_unit_test(test_second_signal_exits_at_once),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_request_timeout_closes_silent_connection),
        cmocka_unit_test(test_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
