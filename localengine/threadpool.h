/* threadpool.h: the engine's persistent compute threads. Internal.
 *
 * eng_pool_run(pool, fn, ctx) calls fn(ctx, i, n) once for each i in 0..n-1,
 * i = 0 on the calling thread and the others on the pool's threads, and
 * returns when all are done. Threads are created once; between runs they
 * spin briefly (a forward pass issues runs back to back) and then sleep on a
 * condition variable, so an idle engine costs no CPU.
 */
#ifndef JUNCTION_THREADPOOL_H
#define JUNCTION_THREADPOOL_H

typedef struct eng_pool eng_pool;
typedef void (*eng_pool_fn)(void *ctx, int ith, int nth);

/* n_threads includes the caller; 1 means no extra threads. */
int eng_pool_new(eng_pool **out, int n_threads, char *err, unsigned long errlen);
int eng_pool_size(const eng_pool *pool);
void eng_pool_run(eng_pool *pool, eng_pool_fn fn, void *ctx);
void eng_pool_free(eng_pool *pool);

#endif
