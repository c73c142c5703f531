/* cmd_bench.c: `junction bench`: prompt-processing and generation speed of
 * the local engine, like llama-bench: pp = one batch of -p tokens, tg = -n
 * tokens decoded one at a time, each repeated -r times. With --features L:
 * what classifying a prompt on the local model adds to a request (the
 * scoring pass stopped at layer L for one routed upstream; the finished or
 * full pass against a plain prefill for one routed locally). */
#include "cli.h"
#include "commands.h"
#include "junction_version.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mean_sd(const double *x, int n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

/* -p 64,256,1024: up to `max` sizes; their count, or -1 after the error. */
static int prompt_sizes(int argc, char **argv, int *i, int *out, int max)
{
    const char *v = *i + 1 < argc ? argv[++*i] : "";
    int n = 0;
    for (char *end; *v && n < max; v = *end == ',' ? end + 1 : end) {
        long x = strtol(v, &end, 10);
        if (end == v || (*end && *end != ',') || x < 0 || x > 1 << 16) break;
        out[n++] = (int)x;
        if (!*end) return n;
    }
    fprintf(stderr, "junction bench: -p: expected up to %d prompt sizes from 0 to 65536, like 64,256,1024\n", max);
    return -1;
}

static double elapsed_ms(double t0) { return (now_s() - t0) * 1e3; }

/* Per prompt size, the best milliseconds of `reps` runs (the least disturbed
 * by other work on the machine) of: a plain prefill; the full pass with
 * features (NLL over all tokens, pooled at L); the pass stopped at layer L
 * (pooled at L); finishing that pass's layers. */
static int bench_features(eng_ctx *c, const eng_model_info *info, int L, const int *ids, const int *sizes, int n_sizes,
                          int reps, int threads, char *err, size_t errlen)
{
    printf("Classification overhead: %s (%s), %d thread(s), head at layer %d of %d, best of %d run(s), ms\n\n", info->name,
           info->weight_type, threads, L, info->n_layer, reps);
    printf("| prompt tokens | plain prefill | full pass + features | added, routed local (full pass) "
           "| stopped at layer %d = added, routed upstream | finish the rest | added, routed local (stopped + finish) |\n"
           "|---:|---:|---:|---:|---:|---:|---:|\n", L);
    for (int k = 0; k < n_sizes; k++) {
        double plain = INFINITY, full = INFINITY, stopped = INFINITY, finish = INFINITY, t0;
        for (int r = 0; r < reps; r++) {
            eng_features f;
            eng_ctx_truncate(c, 0);
            t0 = now_s();
            if (eng_decode(c, ids, sizes[k], false, err, errlen)) return -1;
            plain = fmin(plain, elapsed_ms(t0));
            t0 = now_s();
            if (eng_prompt_features(c, ids, sizes[k], &(eng_feature_params){.pool_layer = L, .nll_from = 1}, &f, err, errlen))
                return -1;
            full = fmin(full, elapsed_ms(t0));
            eng_features_free(&f);
            t0 = now_s();
            if (eng_prompt_features(c, ids, sizes[k], &(eng_feature_params){.stop_layer = L, .pool_layer = L}, &f, err, errlen))
                return -1;
            stopped = fmin(stopped, elapsed_ms(t0));
            eng_features_free(&f);
            t0 = now_s();
            if (eng_seq_finish_layers(c, 0, err, errlen)) return -1;
            finish = fmin(finish, elapsed_ms(t0));
        }
        printf("| %d | %.0f | %.0f | %+.0f | %.0f | %.0f | %+.0f |\n", sizes[k], plain, full, full - plain, stopped, finish,
               stopped + finish - plain);
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    cli_engine_opts o;
    cli_engine_defaults(&o);
    int n_prompt = 128, n_gen = 64, reps = 3, parallel = 1, features = 0, sizes[8] = {128}, n_sizes = 1;
    bool json = false, membw = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double x;
        int rc = cli_engine_option("bench", argc, argv, &i, &o);
        if (rc < 0) return 2;
        if (rc) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: junction bench -m MODEL [-p 128] [-n 64] [-t THREADS] [-r 3] [--parallel N] [-o json]\n\n"
                   "Measure prompt processing (-p tokens in one batch) and generation (-n tokens\n"
                   "one at a time) in tokens per second, mean ± stddev over -r repetitions, and\n"
                   "the peak resident memory. With --parallel N, generation runs N sequences\n"
                   "together (one token of each per step) and reports their aggregate rate. `junction bench --membw -t N` measures memory read\n"
                   "bandwidth instead (the ceiling for generation).\n"
                   "`junction bench --features L -p 64,256,1024` measures what classifying each prompt adds:\n"
                   "the scoring pass stopped at layer L (a request routed upstream), and the full pass\n"
                   "with features or the stopped pass finished, against a plain prefill (routed locally).\n" CLI_ENGINE_HELP);
            return 0;
        }
        if (!strcmp(a, "-p")) { if ((n_sizes = prompt_sizes(argc, argv, &i, sizes, 8)) < 0) return 2; n_prompt = sizes[0]; }
        else if (!strcmp(a, "--features")) { if (cli_number("bench", argc, argv, &i, 1, 1024, &x)) return 2; features = (int)x; }
        else if (!strcmp(a, "-n")) { if (cli_number("bench", argc, argv, &i, 0, 1 << 16, &x)) return 2; n_gen = (int)x; }
        else if (!strcmp(a, "-r")) { if (cli_number("bench", argc, argv, &i, 1, 1000, &x)) return 2; reps = (int)x; }
        else if (!strcmp(a, "--parallel")) { if (cli_number("bench", argc, argv, &i, 1, 256, &x)) return 2; parallel = (int)x; }
        else if (!strcmp(a, "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json")) { json = true; i++; }
        else if (!strcmp(a, "--membw")) membw = true; /* measured after all options: -t may follow */
        else {
            fprintf(stderr, "junction bench: unknown or incomplete option '%s'; see --help\n", a);
            return 2;
        }
    }
    if (membw) {
        int t = o.ctx.n_threads ? o.ctx.n_threads : 1;
        double bw = eng_measure_read_bandwidth(t, (size_t)512 << 20);
        if (bw <= 0) {
            fprintf(stderr, "junction bench: memory bandwidth cannot be measured here (out of memory?)\n");
            return 1;
        }
        printf("memory read bandwidth, %d thread(s), 512 MiB: %.1f GB/s\n", t, bw / 1e9);
        return 0;
    }
    if (n_sizes > 1 && !features) {
        fprintf(stderr, "junction bench: several prompt sizes are for --features; give one -p\n");
        return 2;
    }
    for (int k = 0; features && k < n_sizes; k++) n_prompt = sizes[k] > n_prompt ? sizes[k] : n_prompt;
    if (o.ctx.n_ctx == 0) o.ctx.n_ctx = (n_prompt > n_gen ? n_prompt : n_gen) + 1;
    o.ctx.n_seq = parallel;
    if (o.ctx.n_batch == 0 && !features) o.ctx.n_batch = n_prompt > parallel ? n_prompt : parallel;
    eng_model *m;
    eng_ctx *c;
    int loaded = cli_load("bench", &o, &m, &c);
    if (loaded != 0) return loaded;
    const eng_model_info *info = eng_model_get_info(m);
    int *ids = malloc(sizeof(int) * (size_t)(n_prompt > 0 ? n_prompt : 1));
    double *pp = calloc((size_t)reps, sizeof(double)), *tg = calloc((size_t)reps, sizeof(double));
    char err[512];
    int rc = 1;
    if (!ids || !pp || !tg) goto done;
    uint64_t s = 12345;
    ids[0] = eng_token_bos(m); /* the warm-up's token when there is no prompt test */
    for (int i = 0; i < n_prompt; i++) {
        s = s * 6364136223846793005ULL + 1;
        ids[i] = (int)((s >> 33) % (uint64_t)info->n_vocab);
    }
    /* one warm-up pass touches every weight page */
    eng_ctx_truncate(c, 0);
    if (eng_decode(c, ids, n_prompt > 0 ? (n_prompt < 8 ? n_prompt : 8) : 1, false, err, sizeof(err))) goto fail;
    if (features) {
        if (features >= info->n_layer) {
            snprintf(err, sizeof(err), "--features %d: the head's layer must be below the model's %d layers", features,
                     info->n_layer);
            goto fail;
        }
        if (bench_features(c, info, features, ids, sizes, n_sizes, reps, o.ctx.n_threads, err, sizeof(err))) goto fail;
        rc = 0;
        goto done;
    }
    for (int r = 0; r < reps; r++) {
        if (n_prompt > 0) {
            eng_ctx_truncate(c, 0);
            double t0 = now_s();
            if (eng_decode(c, ids, n_prompt, false, err, sizeof(err))) goto fail;
            pp[r] = n_prompt / (now_s() - t0);
        }
        if (n_gen > 0) {
            eng_batch_item items[256];
            for (int q = 0; q < parallel; q++) {
                eng_seq_truncate(c, q, 0);
                items[q] = (eng_batch_item){eng_token_bos(m), q, true};
            }
            double t0 = now_s();
            for (int i = 0; i < n_gen; i++) {
                if (eng_decode_batch(c, items, parallel, err, sizeof(err))) goto fail;
                for (int q = 0; q < parallel; q++) items[q].token = (items[q].token * 31 + 7 + q) % info->n_vocab;
            }
            tg[r] = (double)n_gen * parallel / (now_s() - t0);
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long peak = (long long)ru.ru_maxrss * 1024;
    double ppm, pps, tgm, tgs;
    mean_sd(pp, reps, &ppm, &pps);
    mean_sd(tg, reps, &tgm, &tgs);
    int threads = o.ctx.n_threads ? o.ctx.n_threads : 0;
    if (json) {
        printf("{\"model\":\"%s\",\"type\":\"%s\",\"size_bytes\":%llu,\"threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,"
               "\"reps\":%d,\"pp_tps\":%.3f,\"pp_tps_sd\":%.3f,\"tg_tps\":%.3f,\"tg_tps_sd\":%.3f,"
               "\"peak_rss_bytes\":%lld,\"kernels\":\"%s\",\"version\":\"%s\",\"parallel\":%d}\n",
               info->name, info->weight_type, (unsigned long long)info->weight_bytes, threads, n_prompt, n_gen,
               reps, ppm, pps, tgm, tgs, peak, eng_kernels_name(), JUNCTION_VERSION, parallel);
    } else {
        printf("| model | type | size | threads | test | t/s |\n|---|---|---:|---:|---|---:|\n");
        if (n_prompt > 0)
            printf("| %s | %s | %.2f GiB | %d | pp%d | %.2f ± %.2f |\n", info->name, info->weight_type,
                   info->weight_bytes / 1073741824.0, threads, n_prompt, ppm, pps);
        if (n_gen > 0)
            printf("| %s | %s | %.2f GiB | %d | tg%d%s%.0d | %.2f ± %.2f |\n", info->name, info->weight_type,
                   info->weight_bytes / 1073741824.0, threads, n_gen, parallel > 1 ? " x" : "",
                   parallel > 1 ? parallel : 0, tgm, tgs);
        printf("\npeak RSS %.2f GiB; kernels %s\n", peak / 1073741824.0, eng_kernels_name());
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "junction bench: %s\n", err);
done:
    free(ids);
    free(pp);
    free(tg);
    eng_ctx_free(c);
    eng_model_free(m);
    return rc;
}
