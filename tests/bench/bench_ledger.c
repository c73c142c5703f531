/* bench_ledger.c: what one ledger row costs the writer thread, and how that
 * cost grows with the database.
 *
 * With the ledger on, every forwarded request costs the writer thread one
 * insert; on a saturated machine that CPU comes out of throughput, and if
 * it grows with the file, a ledger that keeps up today falls behind next
 * month. This program appends rows shaped like the daemon's (a few tenants,
 * keys and routes, one per request) through the real store
 * (ledger_store.h: the same schema, pragmas and prepared insert as the
 * writer) in batches, and prints the CPU and wall time per row spent in
 * the store (making the rows is not counted) over the first 10,000 rows
 * and over the 50,000 rows ending at 100k, 500k and 1M (2M, 5M) rows: long
 * enough to hold several checkpoints, whose cost comes in lumps. It asserts
 * nothing about speed: it measures.
 *
 * Build (release): meson setup build-bench --buildtype=release -Dtests=true &&
 *   ninja -C build-bench tests/bench_ledger   (script/bench does this)
 * Run: build-bench/tests/bench_ledger [-n ROWS] [-b BATCH] [-i time|random] [-s SQL] [FILE]
 *   -n  rows to append (default 1000000)
 *   -b  rows per transaction (default 1024, the writer's batch_rows)
 *   -i  request ids: time-ordered (the daemon's own, default) or random 32-hex
 *       (the daemon's before, and what clients sending their own X-Request-Id may send)
 *   -s  SQL run on the connection after the schema is in place (pragmas, DROP INDEX ...)
 *   FILE  the database (default: a fresh file under $TMPDIR, removed at the end)
 */
#include "ledger_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The measured windows: the rows from `from` to `to`. */
static const struct {
    long from, to;
} windows[] = {
    {0, 10000}, {50000, 100000}, {450000, 500000}, {950000, 1000000}, {1950000, 2000000}, {4950000, 5000000},
};

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng[2] = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL};

/* xorshift128+, as gateway/http.c makes request ids */
static uint64_t next_random(void)
{
    uint64_t s1 = rng[0];
    const uint64_t s0 = rng[1];
    rng[0] = s0;
    s1 ^= s1 << 23;
    rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng[1] + s0;
}

static void make_id(char out[33], bool time_ordered, int64_t ts_ms)
{
    uint64_t hi = next_random(), lo = next_random();
    if (time_ordered) hi = ((uint64_t)ts_ms << 16) | (hi & 0xffff);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
}

static void make_row(pol_ledger_row *r, long i, int64_t ts_ms, bool time_ordered)
{
    static const char *const tenants[] = {"acme", "globex", "initech", "umbrella"};
    static const char *const routes[] = {"openai", "claude", "local"};
    static const char *const zones[] = {"external", "external", "in-process"};
    memset(r, 0, sizeof(*r));
    make_id(r->request_id, time_ordered, ts_ms);
    r->ts_ms = ts_ms;
    snprintf(r->tenant, sizeof(r->tenant), "%s", tenants[i % 4]);
    snprintf(r->key_id, sizeof(r->key_id), "key-%02ld", i % 16);
    snprintf(r->model, sizeof(r->model), "auto");
    snprintf(r->route, sizeof(r->route), "%s", routes[i % 3]);
    snprintf(r->zone, sizeof(r->zone), "%s", zones[i % 3]);
    snprintf(r->reason, sizeof(r->reason), "rule default (hard 0.12, sensitive 0.03)");
    snprintf(r->upstream_model, sizeof(r->upstream_model), "gpt-4.1");
    r->prompt_tokens = 9 + i % 500;
    r->completion_tokens = 3 + i % 200;
    r->cost_micro_usd = r->prompt_tokens * 2 + r->completion_tokens * 8;
    r->counterfactual_micro_usd = r->prompt_tokens * 3 + r->completion_tokens * 15;
    r->latency_us = 800 + i % 5000;
    r->ttft_us = -1;
    r->status = 200;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-n ROWS] [-b BATCH] [-i time|random] [-s SQL] [FILE]\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    long rows = 1000000, batch = 1024;
    bool time_ordered = true;
    const char *sql = "";
    int opt;
    while ((opt = getopt(argc, argv, "n:b:i:s:")) != -1) {
        switch (opt) {
        case 'n': rows = atol(optarg); break;
        case 'b': batch = atol(optarg); break;
        case 'i':
            if (strcmp(optarg, "time") != 0 && strcmp(optarg, "random") != 0) return usage(argv[0]);
            time_ordered = strcmp(optarg, "time") == 0;
            break;
        case 's': sql = optarg; break;
        default: return usage(argv[0]);
        }
    }
    if (rows < 1 || batch < 1 || optind + 1 < argc) return usage(argv[0]);
    char path[4096];
    bool temporary = optind == argc;
    if (temporary) {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/bench_ledger.%d.db", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    } else {
        snprintf(path, sizeof(path), "%s", argv[optind]);
    }

    char err[512];
    pol_store *s;
    if (pol_store_open(&s, path, POL_STORE_WRITE, sql, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_ledger: %s\n", err);
        return 1;
    }
    pol_ledger_row *buf = calloc((size_t)batch, sizeof(*buf));
    if (!buf) {
        fprintf(stderr, "bench_ledger: out of memory for a batch of %ld rows\n", batch);
        pol_store_close(s);
        return 1;
    }
    printf("bench_ledger: %ld rows, %ld per transaction, %s ids, extra SQL \"%s\", %s\n", rows, batch,
           time_ordered ? "time-ordered" : "random", sql, path);
    printf("%-18s %13s %13s\n", "rows", "CPU µs/row", "wall µs/row");
    int64_t t0 = pol_now_ms();
    double cpu = 0, wall = 0;       /* in the store, over the current window */
    long window_from = 0;
    size_t w = 0, n_windows = sizeof(windows) / sizeof(windows[0]);
    int rc = 0;
    for (long done = 0; done < rows && rc == 0;) {
        long n = rows - done < batch ? rows - done : batch;
        for (long i = 0; i < n; i++) make_row(&buf[i], done + i, t0 + (done + i) / 5, time_ordered);
        /* a window starts with the batch that holds its first row */
        if (w < n_windows && done <= windows[w].from && done + n > windows[w].from) {
            window_from = done;
            cpu = wall = 0;
        }
        double cpu0 = now(CLOCK_PROCESS_CPUTIME_ID), wall0 = now(CLOCK_MONOTONIC);
        if (pol_store_append(s, buf, (size_t)n, false, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_ledger: %s\n", err);
            rc = 1;
        }
        cpu += now(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
        wall += now(CLOCK_MONOTONIC) - wall0;
        done += n;
        if (w < n_windows && done >= windows[w].to) {
            double count = (double)(done - window_from);
            char label[48];
            snprintf(label, sizeof(label), "%ldk-%ldk", windows[w].from / 1000, windows[w].to / 1000);
            printf("%-18s %12.2f %12.2f\n", label, cpu * 1e6 / count, wall * 1e6 / count);
            fflush(stdout);
            w++;
        }
    }
    pol_store_close(s);
    free(buf);
    char wal[4200];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    printf("file: %.1f MiB, %.0f bytes/row\n", file_size(path) / 1048576.0, (double)file_size(path) / (double)rows);
    if (temporary) {
        unlink(path);
        unlink(wal);
        snprintf(wal, sizeof(wal), "%s-shm", path);
        unlink(wal);
    }
    return rc;
}
