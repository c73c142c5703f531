/* test_workers.c: the worker pool, and the event loop staying responsive
 * while workers are busy (a real server on loopback, in process). */
#include "gateway.h"
#include "testlib.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    atomic_int worked;
    int done;                 /* only touched on the loop thread */
    pthread_t loop_thread;
    bool done_off_loop;
    int sleep_ms;
} job_state;

static void work(void *arg)
{
    job_state *s = arg;
    if (s->sleep_ms) usleep((useconds_t)s->sleep_ms * 1000);
    atomic_fetch_add(&s->worked, 1);
}

static void done(void *arg)
{
    job_state *s = arg;
    if (!pthread_equal(pthread_self(), s->loop_thread)) s->done_off_loop = true;
    s->done++;
}

static void done_and_exit_when_all(void *arg);
static struct event_base *test_base;
static int expected_jobs;

static void done_and_exit_when_all(void *arg)
{
    done(arg);
    if (((job_state *)arg)->done == expected_jobs) event_base_loopexit(test_base, NULL);
}

static void test_pool_runs_jobs_and_reports_on_loop(void **state)
{
    (void)state;
    evthread_use_pthreads();
    test_base = event_base_new();
    gw_pool *pool;
    char err[128];
    assert_int_equal(gw_pool_new(&pool, test_base, 4, err, sizeof(err)), 0);
    job_state s = {.loop_thread = pthread_self()};
    expected_jobs = 200;
    for (int i = 0; i < expected_jobs; i++)
        assert_int_equal(gw_pool_submit(pool, work, done_and_exit_when_all, &s), 0);
    event_base_loop(test_base, EVLOOP_NO_EXIT_ON_EMPTY);
    assert_int_equal(atomic_load(&s.worked), 200);
    assert_int_equal(s.done, 200);
    assert_false(s.done_off_loop);
    assert_int_equal(gw_pool_pending(pool), 0);
    gw_pool_free(pool);
    event_base_free(test_base);
}

/* Freeing the pool finishes queued jobs and calls their done() callbacks. */
static void test_pool_free_finishes_queued_jobs(void **state)
{
    (void)state;
    evthread_use_pthreads();
    struct event_base *base = event_base_new();
    gw_pool *pool;
    char err[128];
    assert_int_equal(gw_pool_new(&pool, base, 1, err, sizeof(err)), 0);
    job_state s = {.loop_thread = pthread_self(), .sleep_ms = 5};
    for (int i = 0; i < 20; i++) assert_int_equal(gw_pool_submit(pool, work, done, &s), 0);
    assert_true(gw_pool_pending(pool) > 0);
    gw_pool_free(pool);
    assert_int_equal(atomic_load(&s.worked), 20);
    assert_int_equal(s.done, 20);
    assert_false(s.done_off_loop);
    event_base_free(base);
}

typedef struct {
    gw_server *srv;
    int rc;
} server_thread;

static void *run_server(void *arg)
{
    server_thread *t = arg;
    t->rc = gw_server_run(t->srv);
    return NULL;
}

/* While a worker is busy for 2 s, /healthz still answers within milliseconds;
 * a stop then waits for the job before the server returns. */
static void test_loop_answers_while_worker_busy(void **state)
{
    (void)state;
    gw_config cfg;
    gw_config_defaults(&cfg);
    snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:0");
    snprintf(cfg.access_log, sizeof(cfg.access_log), "off");
    cfg.workers = 1;
    gw_log_set_level(GW_LOG_ERROR);
    char err[256];
    server_thread t = {0};
    struct event_base *base = gw_event_base_new(err, sizeof(err));
    assert_non_null(base);
    gw_backends *backends = NULL;
    assert_int_equal(gw_backends_new(&backends, base, &cfg, err, sizeof(err)), 0);
    assert_int_equal(gw_server_new(&t.srv, base, &cfg, backends, err, sizeof(err)), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_server, &t), 0);

    job_state s = {.sleep_ms = 2000};
    s.loop_thread = th;
    assert_int_equal(gw_pool_submit(gw_server_pool(t.srv), work, done, &s), 0);
    char url[128];
    snprintf(url, sizeof(url), "http://%s/healthz", gw_server_address(t.srv));
    double worst = 0;
    for (int i = 0; i < 20; i++) {
        http_response r;
        assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        if (r.seconds > worst) worst = r.seconds;
        http_response_free(&r);
        usleep(20000);
    }
    assert_int_equal(atomic_load(&s.worked), 0); /* the job is still running */
    fprintf(stderr, "slowest /healthz while the worker was busy: %.2f ms\n", worst * 1e3);
    assert_true(worst < 0.1); /* generous for sanitizers; typically well under 1 ms */

    gw_server_stop(t.srv);
    pthread_join(th, NULL);
    assert_int_equal(t.rc, 0);
    assert_int_equal(atomic_load(&s.worked), 1); /* the drain waited for the job */
    assert_int_equal(s.done, 1);
    assert_false(s.done_off_loop);
    gw_server_free(t.srv);
    gw_backends_free(backends);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_runs_jobs_and_reports_on_loop),
        cmocka_unit_test(test_pool_free_finishes_queued_jobs),
        cmocka_unit_test(test_loop_answers_while_worker_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
