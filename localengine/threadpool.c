/* threadpool.c: see threadpool.h for why it spins, then sleeps. */
#include "threadpool.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a thread polls for the next run before it sleeps. */
#define SPIN_NS 200000

struct eng_pool {
    int n;                       /* threads including the caller */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint generation;      /* bumped for each run */
    atomic_int remaining;        /* pool threads still working on this run */
    atomic_bool stop;
    eng_pool_fn fn;
    void *ctx;
    int sleepers;                /* under lock */
};

typedef struct {
    eng_pool *pool;
    int index;
} worker_arg;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *worker(void *p)
{
    worker_arg *wa = p;
    eng_pool *pool = wa->pool;
    int index = wa->index;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        long long spin_until = now_ns() + SPIN_NS;
        unsigned gen;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop) && now_ns() < spin_until)
            _mm_pause();
        if (gen == seen && !atomic_load(&pool->stop)) {
            pthread_mutex_lock(&pool->lock);
            pool->sleepers++;
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->lock);
            pool->sleepers--;
            pthread_mutex_unlock(&pool->lock);
            gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (atomic_load(&pool->stop)) break;
        seen = gen;
        pool->fn(pool->ctx, index, pool->n);
        atomic_fetch_sub_explicit(&pool->remaining, 1, memory_order_release);
    }
    return NULL;
}

int eng_pool_new(eng_pool **out, int n_threads, char *err, unsigned long errlen)
{
    if (n_threads < 1) n_threads = 1;
    eng_pool *pool = calloc(1, sizeof(*pool));
    if (!pool) goto nomem;
    pool->n = n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->threads) goto nomem;
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof(*wa));
        if (!wa) goto nomem;
        wa->pool = pool;
        wa->index = i;
        int rc = pthread_create(&pool->threads[i], NULL, worker, wa);
        if (rc != 0) {
            free(wa);
            snprintf(err, errlen, "cannot start compute thread: %s", strerror(rc));
            pool->n = i;
            eng_pool_free(pool);
            return -1;
        }
    }
    *out = pool;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory creating compute threads");
    if (pool) {
        pool->n = 1;
        eng_pool_free(pool);
    }
    return -1;
}

int eng_pool_size(const eng_pool *pool) { return pool->n; }

void eng_pool_run(eng_pool *pool, eng_pool_fn fn, void *ctx)
{
    if (pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->remaining, pool->n - 1);
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    if (pool->sleepers) pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    fn(ctx, 0, pool->n);
    while (atomic_load_explicit(&pool->remaining, memory_order_acquire) > 0) _mm_pause();
}

void eng_pool_free(eng_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    free(pool);
}
