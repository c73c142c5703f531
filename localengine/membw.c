/* membw.c: measure memory read bandwidth with the engine's own threads.
 *
 * Generation reads every weight once per token, so read bandwidth is its
 * ceiling; `junction bench --membw` reports it next to the engine's speed. */
#include "localengine.h"
#include "threadpool.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const float *data;
    size_t n;
    float sums[64];
} read_job;

__attribute__((target("avx2"))) static void read_part(void *p, int ith, int nth)
{
    read_job *j = p;
    size_t per = j->n / (size_t)nth / 64 * 64, start = per * (size_t)ith;
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    for (size_t i = start; i < start + per; i += 32) {
        a = _mm256_add_ps(a, _mm256_load_ps(j->data + i));
        b = _mm256_add_ps(b, _mm256_load_ps(j->data + i + 8));
        c = _mm256_add_ps(c, _mm256_load_ps(j->data + i + 16));
        d = _mm256_add_ps(d, _mm256_load_ps(j->data + i + 24));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
    j->sums[ith & 63] = out[0];
}

double eng_measure_read_bandwidth(int n_threads, size_t bytes)
{
    if (!(eng_cpu_features() & ENG_CPU_AVX2)) return 0;
    char err[128];
    eng_pool *pool;
    if (eng_pool_new(&pool, n_threads, err, sizeof(err)) != 0) return 0;
    float *data = aligned_alloc(64, bytes);
    if (!data) {
        eng_pool_free(pool);
        return 0;
    }
    memset(data, 1, bytes);
    read_job j = {data, bytes / sizeof(float), {0}};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        eng_pool_run(pool, read_part, &j);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (bytes / s > best) best = (double)bytes / s;
    }
    free(data);
    eng_pool_free(pool);
    return best;
}
