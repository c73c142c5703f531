/* workers.c: the worker pool that keeps long work off the event loop.
 *
 * The event-loop thread must answer /healthz in microseconds even while a
 * model generates for seconds, so anything slow is a job: the loop queues it,
 * a worker thread runs it, and the finished job is handed back to the loop
 * through a libevent event made active from the worker (libevent is built
 * with pthreads, so event_active is safe from any thread). The `done`
 * callback then runs on the loop thread, where it may reply to the client.
 */
#include "gateway.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct job {
    gw_job_fn work, done;
    void *arg;
    struct job *next;
} job;

typedef struct {
    job *head, *tail;
} job_queue;

struct gw_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* a job was queued, or the pool is stopping */
    job_queue todo;          /* waiting for a worker */
    job_queue finished;      /* waiting for the loop to call done() */
    int pending;             /* queued + running + finished-not-delivered */
    bool stopping;
    struct event *delivered; /* activated by workers; runs on the loop */
    pthread_t *threads;
    int n_threads;
};

static void queue_push(job_queue *q, job *j)
{
    j->next = NULL;
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
}

static job *queue_take_all(job_queue *q)
{
    job *all = q->head;
    q->head = q->tail = NULL;
    return all;
}

static void *worker_main(void *arg)
{
    gw_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->todo.head && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        job *j = pool->todo.head;
        if (!j) break; /* stopping and nothing left to run */
        pool->todo.head = j->next;
        if (!pool->todo.head) pool->todo.tail = NULL;
        pthread_mutex_unlock(&pool->lock);

        j->work(j->arg);

        pthread_mutex_lock(&pool->lock);
        queue_push(&pool->finished, j);
        event_active(pool->delivered, EV_READ, 0);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Loop thread: call done() for every finished job. */
static void deliver_finished(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    job *j = queue_take_all(&pool->finished);
    pthread_mutex_unlock(&pool->lock);
    while (j) {
        job *next = j->next;
        if (j->done) j->done(j->arg);
        free(j);
        pthread_mutex_lock(&pool->lock);
        pool->pending--;
        pthread_mutex_unlock(&pool->lock);
        j = next;
    }
}

int gw_pool_new(gw_pool **out, struct event_base *base, int n_threads, char *err, size_t errlen)
{
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    gw_pool *pool = calloc(1, sizeof(*pool));
    if (!pool) goto nomem;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->delivered = event_new(base, -1, 0, deliver_finished, pool);
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->delivered || !pool->threads) goto nomem;
    for (int i = 0; i < n_threads; i++) {
        int rc = pthread_create(&pool->threads[i], NULL, worker_main, pool);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker thread %d: %s", i, strerror(rc));
            gw_pool_free(pool);
            return -1;
        }
        pool->n_threads++;
    }
    *out = pool;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory creating the worker pool");
    gw_pool_free(pool);
    return -1;
}

int gw_pool_submit(gw_pool *pool, gw_job_fn work, gw_job_fn done, void *arg)
{
    job *j = malloc(sizeof(*j));
    if (!j) return -1;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        free(j);
        return -1;
    }
    queue_push(&pool->todo, j);
    pool->pending++;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int gw_pool_pending(const gw_pool *pool)
{
    gw_pool *p = (gw_pool *)pool; /* the lock is not part of the pool's value */
    pthread_mutex_lock(&p->lock);
    int n = p->pending;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void gw_pool_free(gw_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->n_threads; i++) pthread_join(pool->threads[i], NULL);
    if (pool->delivered) {
        deliver_finished(-1, 0, pool);
        event_free(pool->delivered);
    }
    free(pool->threads);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
