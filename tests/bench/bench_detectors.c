/* bench_detectors.c: detector throughput on typical prompt text, one core.
 *
 * The detectors run on every request before routing, so their cost is a
 * latency floor; the goal is >= 200 MB/s of typical prompts (English prose,
 * code, logs, a little PII). This program builds such text by repeating a
 * built-in sample (or reads files given as arguments), cuts it into
 * prompt-sized messages, and reports MB/s over several rounds (best and
 * median). It asserts nothing about speed: it measures.
 *
 * Build (release, as docs/detectors.md says):
 *   meson setup build-det-rel --buildtype=release && ninja -C build-det-rel classifier/libclassifier.a
 *   cc -O2 -Iclassifier -I/usr/include/cjson tests/bench/bench_detectors.c \
 *      build-det-rel/classifier/libclassifier.a -lpcre2-8 -lcjson -lm -o build-det-rel/bench_detectors
 * Run: build-det-rel/bench_detectors [-s MESSAGE_BYTES] [-r ROUNDS] [FILE...]
 */
#include "classifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char sample[] =
    "I'm trying to understand why my React component re-renders every time the parent updates. "
    "I wrapped it in React.memo but the props object is created inline, so the shallow comparison "
    "fails. Should I use useMemo for the object, or move the state down? Here is the code:\n\n"
    "function Parent({ items }) {\n  const [count, setCount] = useState(0);\n"
    "  const options = { sort: 'asc', limit: 10 };\n"
    "  return <List items={items} options={options} onSelect={() => setCount(count + 1)} />;\n}\n\n"
    "Also, what is the difference between version 18.2.0 and 18.3.1 of React regarding batching? "
    "The changelog mentions automatic batching for promises and timeouts.\n"
    "Can you summarize the main causes of the French Revolution in three paragraphs, focusing on "
    "the fiscal crisis, the Estates-General of 1789 and the role of Enlightenment ideas? Please keep "
    "it suitable for a high-school history class and mention two primary sources students could "
    "read.\n"
    "2024-05-14 09:21:07 INFO  server started on port 8080 (pid 41233), build 3f2c9a1\n"
    "2024-05-14 09:21:09 WARN  slow query took 1532 ms: SELECT id, name FROM users WHERE org_id = ?\n"
    "2024-05-14 09:21:10 ERROR request 7d9e2b4c-1a2f-4c3d-9e8f-0a1b2c3d4e5f failed: timeout after 30s\n"
    "def parse_config(path):\n    with open(path) as f:\n        data = yaml.safe_load(f)\n"
    "    return {k: v for k, v in data.items() if not k.startswith('_')}\n\n"
    "Write a SQL query that returns the top five customers by total order value in 2023, "
    "joining orders and order_items, and explain how the GROUP BY interacts with the window "
    "function. Our schema has about 40 tables and the orders table has 12 million rows.\n"
    "Please review this email before I send it: Hi Maria, thanks for the update on the Q3 "
    "roadmap. Could you send me the latest numbers by Friday? You can reach me at "
    "maria.gonzalez@northwind-traders.com or on 415-555-0187. Best, Tom\n"
    "Translate into German: The meeting has been moved to Thursday at 3 pm; bring the signed "
    "contract and the slides from last week's review.\n";

/* CPU time of this thread: on a shared machine wall time counts the other
 * processes too; the goal is per core. Wall time is reported alongside. */
static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0;
    char *p = malloc(cap);
    size_t got;
    while (p && (got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *q = realloc(p, cap *= 2);
            if (!q) {
                free(p);
                p = NULL;
            }
            p = q;
        }
    }
    fclose(f);
    *len = n;
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t msg_bytes = 4096, total = 64u << 20;
    int rounds = 7, first_file = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) msg_bytes = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else {
            first_file = i;
            break;
        }
    }
    if (msg_bytes == 0 || rounds < 1 || rounds > 100) {
        fprintf(stderr, "usage: bench_detectors [-s MESSAGE_BYTES] [-r ROUNDS (1-100)] [FILE...]\n");
        return 2;
    }
    /* the text: files, or the sample repeated */
    char *text = NULL;
    size_t len = 0;
    if (first_file < argc) {
        for (int i = first_file; i < argc; i++) {
            size_t n;
            char *p = read_all(argv[i], &n);
            if (!p) {
                fprintf(stderr, "bench_detectors: cannot read %s\n", argv[i]);
                return 1;
            }
            char *q = realloc(text, len + n);
            if (!q) return 1;
            text = q;
            memcpy(text + len, p, n);
            len += n;
            free(p);
        }
    } else {
        text = malloc(total);
        if (!text) return 1;
        for (len = 0; len + sizeof sample - 1 <= total; len += sizeof sample - 1)
            memcpy(text + len, sample, sizeof sample - 1);
    }
    int n_msgs = (int)((len + msg_bytes - 1) / msg_bytes);
    cls_message *msgs = calloc((size_t)n_msgs, sizeof *msgs);
    if (!msgs) return 1;
    for (int i = 0; i < n_msgs; i++) {
        size_t a = (size_t)i * msg_bytes;
        msgs[i] = (cls_message){"user", text + a, len - a < msg_bytes ? len - a : msg_bytes, i};
    }
    char err[256];
    cls_detector *d;
    if (cls_detector_new(&d, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "bench_detectors: %s\n", err);
        return 1;
    }
    double *mbs = calloc((size_t)rounds, sizeof *mbs), *wall = calloc((size_t)rounds, sizeof *wall);
    if (!mbs || !wall) return 1;
    long findings = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
        for (int i = 0; i < n_msgs; i++) {
            cls_findings f;
            if (cls_detect(d, &msgs[i], 1, &f, err, sizeof err) != 0) {
                fprintf(stderr, "bench_detectors: %s\n", err);
                return 1;
            }
            findings += f.n;
            cls_findings_free(&f);
        }
        mbs[r] = len / 1e6 / (now(CLOCK_THREAD_CPUTIME_ID) - t0);
        wall[r] = len / 1e6 / (now(CLOCK_MONOTONIC) - w0);
    }
    qsort(mbs, (size_t)rounds, sizeof *mbs, cmp_double);
    qsort(wall, (size_t)rounds, sizeof *wall, cmp_double);
    printf("detectors: %.1f MB in %d messages of %zu bytes, %d rounds: CPU time best %.0f MB/s, median "
           "%.0f MB/s; wall time best %.0f MB/s (%ld findings per round)\n",
           len / 1e6, n_msgs, msg_bytes, rounds, mbs[rounds - 1], mbs[rounds / 2], wall[rounds - 1],
           findings / rounds);
    free(mbs);
    free(wall);
    free(msgs);
    free(text);
    cls_detector_free(d);
    return 0;
}
