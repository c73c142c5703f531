/* soak_driver.c: the load, the samples and the verdict of script/soak.
 *
 * A soak test finds what a unit test cannot: memory, descriptors or threads
 * that grow a little per request, a ledger that falls behind, an event loop
 * that stalls now and then. So this one program plays every kind of client
 * at once against the real daemon (whole and streamed answers, local and
 * upstream, upstream faults, bad and oversized requests, clients that hang
 * up mid-stream, slow readers), keeps the id of every request it got an
 * answer to, probes /healthz all the time, and samples the daemon from
 * /proc, /metrics and the ledger file every interval. At the end it checks
 * that every answered model request has its ledger row and compares the last
 * third of the run with the second third: what keeps growing fails.
 *
 * Raw non-blocking sockets and poll(), one request per connection
 * ("Connection: close": the answer ends when the daemon closes), so that a
 * slow reader or a hang-up is exactly what it says.
 *
 * usage: soak_driver --port P --pid PID --ledger DB --seconds S --csv FILE
 *                    [--interval S] [--clients N] [--max-body BYTES]
 *                    [--healthz-p99-ms MS] [--flush-ms MS]
 * Exit status: 0 pass, 1 a check failed, 2 bad usage or setup.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define REQUEST_DEADLINE_S 90.0   /* an answer slower than this is a hang: the run fails */
#define SLOW_READ_BYTES 2048      /* a slow reader takes this much ... */
#define SLOW_READ_EVERY_S 0.02    /* ... this often (about 100 KB/s) */

/* ---- options ---- */

typedef struct {
    int port;
    int pid;
    const char *ledger;
    const char *csv;
    double seconds, interval;
    int clients;
    long max_body;
    double healthz_p99_ms;
    int flush_ms;
} options;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- what the clients do ---- */

typedef enum { READ_ALL, READ_SLOW, HANG_UP } read_mode;

typedef struct {
    const char *name;
    int weight;
    const char *path;
    const char *model;         /* NULL: `raw` is the whole request */
    bool stream;
    int max_tokens;
    const char *fault;         /* appended to the prompt ("#fault:500") */
    const char *raw;           /* a request that is not a valid model request */
    bool oversized;            /* body padded past max_body */
    read_mode mode;
    bool ledgered;             /* reaches a model handler: must have a ledger row */
    int allowed[8];            /* statuses that are fine (0 ends); -1: no status expected (hang-up) */
} scenario;

/* "local" is the engine; "frontier" the fake frontier with nothing wrong;
 * "faulty" the same fake with faults asked for, so that its breaker opening
 * never touches the clean traffic. */
static const scenario scenarios[] = {
    {"local_whole", 10, "/v1/chat/completions", "local", false, 24, "", NULL, false, READ_ALL, true, {200, 429}},
    {"local_stream", 10, "/v1/chat/completions", "local", true, 24, "", NULL, false, READ_ALL, true, {200, 429}},
    {"local_text", 4, "/v1/completions", "local", false, 16, "", NULL, false, READ_ALL, true, {200, 429}},
    {"up_whole", 14, "/v1/chat/completions", "frontier", false, 32, "", NULL, false, READ_ALL, true, {200}},
    {"up_stream", 14, "/v1/chat/completions", "frontier", true, 32, "", NULL, false, READ_ALL, true, {200}},
    {"up_anthropic", 5, "/v1/chat/completions", "claude", true, 32, "", NULL, false, READ_ALL, true, {200}},
    {"up_long_stream", 3, "/v1/chat/completions", "frontier", true, 0, "#fault:long:2000", NULL, false, READ_ALL, true, {200}},
    {"up_drip", 3, "/v1/chat/completions", "frontier", true, 0, "#fault:drip:30", NULL, false, READ_ALL, true, {200}},
    {"slow_reader", 3, "/v1/chat/completions", "frontier", true, 0, "#fault:long:3000", NULL, false, READ_SLOW, true, {200}},
    {"hangup_up", 4, "/v1/chat/completions", "frontier", true, 0, "#fault:long:20000", NULL, false, HANG_UP, true, {-1}},
    {"hangup_local", 3, "/v1/chat/completions", "local", true, 200, "", NULL, false, HANG_UP, true, {-1}},
    {"fault_429", 2, "/v1/chat/completions", "faulty", false, 16, "#fault:429", NULL, false, READ_ALL, true, {429, 503}},
    {"fault_500", 2, "/v1/chat/completions", "faulty", false, 16, "#fault:500", NULL, false, READ_ALL, true, {502, 503}},
    {"fault_drop", 2, "/v1/chat/completions", "faulty", true, 16, "#fault:drop", NULL, false, READ_ALL, true, {200, 502, 503}},
    {"fault_badsse", 2, "/v1/chat/completions", "faulty", true, 16, "#fault:badsse", NULL, false, READ_ALL, true, {200, 502, 503}},
    {"fault_badjson", 2, "/v1/chat/completions", "faulty", false, 16, "#fault:badjson", NULL, false, READ_ALL, true, {502, 503}},
    {"fault_delay", 2, "/v1/chat/completions", "faulty", false, 16, "#fault:delay:1500", NULL, false, READ_ALL, true, {200, 503}},
    {"fault_nousage", 2, "/v1/chat/completions", "faulty", true, 16, "#fault:nousage", NULL, false, READ_ALL, true, {200, 503}},
    {"bad_json", 3, "/v1/chat/completions", NULL, false, 0, NULL, "{\"model\": \"frontier\", \"messages\": [", false, READ_ALL, true, {400}},
    {"bad_field", 3, "/v1/chat/completions", NULL, false, 0, NULL, "{\"model\": \"frontier\", \"messages\": \"hi\"}", false, READ_ALL, true, {400}},
    {"bad_model", 2, "/v1/chat/completions", NULL, false, 0, NULL,
     "{\"model\": \"no-such-model\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", false, READ_ALL, true, {404}},
    {"oversized", 2, "/v1/chat/completions", "frontier", false, 16, "", NULL, true, READ_ALL, true, {413}},
    {"unknown_path", 1, "/v1/nothing", NULL, false, 0, NULL, "{}", false, READ_ALL, false, {404}},
};
#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

typedef struct {
    uint64_t started, answered, hung_up, unexpected, timeouts, conn_errors;
    int last_unexpected;
} scenario_count;
static scenario_count counts[N_SCENARIOS];

/* ids of the answered model requests, to look up in the ledger at the end */
typedef struct {
    char id[48];
    int status;
} answered_id;
static answered_id *ids;
static size_t n_ids, cap_ids, ids_lost;
static uint64_t start_failures;   /* requests the driver could not even start */

static void keep_id(const char *id, int status)
{
    if (n_ids == cap_ids) {
        size_t cap = cap_ids ? cap_ids * 2 : 4096;
        answered_id *bigger = realloc(ids, cap * sizeof(*ids));
        if (!bigger) {
            ids_lost++; /* the verdict fails on it: an id not kept is a row not checked */
            return;
        }
        ids = bigger;
        cap_ids = cap;
    }
    snprintf(ids[n_ids].id, sizeof(ids[n_ids].id), "%s", id);
    ids[n_ids++].status = status;
}

/* ---- one connection ---- */

typedef enum { IDLE, SENDING, READING } conn_state;

typedef struct {
    conn_state state;
    int fd;
    int scenario;              /* index, or -1 for a /healthz probe */
    char *out;
    size_t out_len, out_sent;
    char *in;
    size_t in_len, in_cap;
    double started, next_read;
    char id[48];
} conn;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int pick_scenario(void)
{
    int total = 0;
    for (size_t i = 0; i < N_SCENARIOS; i++) total += scenarios[i].weight;
    int r = (int)(next_random() % (uint64_t)total);
    for (size_t i = 0; i < N_SCENARIOS; i++) {
        r -= scenarios[i].weight;
        if (r < 0) return (int)i;
    }
    return 0;
}

static int connect_nonblocking(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The request's bytes: headers and body, into c->out. */
static int build_request(conn *c, const options *o, uint64_t serial)
{
    snprintf(c->id, sizeof(c->id), "soak-%d-%llu", (int)getpid(), (unsigned long long)serial);
    if (c->scenario < 0) {
        int n = asprintf(&c->out, "GET /healthz HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n"
                                  "X-Request-Id: %s\r\n\r\n", c->id);
        if (n < 0) return -1;
        c->out_len = (size_t)n;
        return 0;
    }
    const scenario *s = &scenarios[c->scenario];
    char *body = NULL;
    if (s->raw) {
        body = strdup(s->raw);
    } else {
        /* a prompt of its own per request: unique words, the fault last */
        size_t pad = s->oversized ? (size_t)o->max_body + 1024 : 0;
        char *padding = pad ? malloc(pad + 1) : NULL;
        if (pad && !padding) return -1;
        if (padding) {
            memset(padding, 'a', pad);
            padding[pad] = '\0';
        }
        bool text_api = !strcmp(s->path, "/v1/completions");
        char max_tokens[32] = "";
        if (s->max_tokens) snprintf(max_tokens, sizeof(max_tokens), ", \"max_tokens\": %d", s->max_tokens);
        int made;
        if (text_api)
            made = asprintf(&body, "{\"model\": \"%s\", \"prompt\": \"Once upon a time %llu %s%s\", \"stream\": %s%s}", s->model,
                     (unsigned long long)serial, padding ? padding : "", s->fault, s->stream ? "true" : "false", max_tokens);
        else
            made = asprintf(&body,
                     "{\"model\": \"%s\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
                     "{\"role\": \"user\", \"content\": \"Tell me a story about number %llu %s%s\"}], "
                     "\"stream\": %s%s}",
                     s->model, (unsigned long long)serial, padding ? padding : "", s->fault, s->stream ? "true" : "false",
                     max_tokens);
        free(padding);
        if (made < 0) body = NULL;
    }
    if (!body) return -1;
    size_t blen = strlen(body);
    int n = asprintf(&c->out, "POST %s HTTP/1.1\r\nHost: soak\r\nConnection: close\r\nContent-Type: application/json\r\n"
                              "X-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n%s", s->path, c->id, blen, body);
    free(body);
    if (n < 0) return -1;
    c->out_len = (size_t)n;
    return 0;
}

static int conn_start(conn *c, const options *o, int scenario, uint64_t serial)
{
    memset(c, 0, sizeof(*c));
    c->scenario = scenario;
    c->fd = -1;
    if (build_request(c, o, serial) != 0) return -1;
    c->fd = connect_nonblocking(o->port);
    if (c->fd < 0) {
        free(c->out);
        c->out = NULL;
        return -1;
    }
    c->state = SENDING;
    c->started = now_s();
    if (scenario >= 0) counts[scenario].started++;
    return 0;
}

static void conn_reset(conn *c)
{
    if (c->fd >= 0) close(c->fd);
    free(c->out);
    free(c->in);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = IDLE;
}

/* HTTP status of what was read so far, or 0. */
static int status_of(const conn *c)
{
    if (c->in_len < 12 || strncmp(c->in, "HTTP/1.", 7) != 0) return 0;
    return atoi(c->in + 9);
}

/* The X-Request-Id the daemon answered with, into buf (empty if none). */
static void answered_request_id(const conn *c, char *buf, size_t len)
{
    buf[0] = '\0';
    const char *end = c->in_len ? strstr(c->in, "\r\n\r\n") : NULL;
    for (const char *p = c->in; p && end && p < end;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) break;
        if (!strncasecmp(p, "X-Request-Id:", 13)) {
            const char *v = p + 13;
            while (*v == ' ') v++;
            size_t n = (size_t)(eol - v) < len - 1 ? (size_t)(eol - v) : len - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return;
        }
        p = eol + 2;
    }
}

static bool status_allowed(const scenario *s, int status)
{
    for (int i = 0; i < 8 && s->allowed[i]; i++)
        if (s->allowed[i] == status || s->allowed[i] == -1) return true;
    return false;
}

/* ---- /healthz latencies of the current interval ---- */

static double *probe_ms;
static size_t n_probe, cap_probe;
static double *all_probe_ms;   /* the whole run, for the verdict */
static size_t n_all_probe, cap_all_probe;

static void push(double **v, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        double *b = realloc(*v, c * sizeof(double));
        if (!b) return;
        *v = b;
        *cap = c;
    }
    (*v)[(*n)++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of v (sorted in place); 0 when empty. */
static double quantile(double *v, size_t n, double q)
{
    if (!n) return 0;
    qsort(v, n, sizeof(double), cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static uint64_t healthz_failures;

/* A connection ended (peer closed, error, or we hung up). */
static void conn_finish(conn *c, bool we_hung_up, bool timed_out)
{
    int status = status_of(c);
    if (c->scenario < 0) {
        if (status == 200) {
            double ms = (now_s() - c->started) * 1000;
            push(&probe_ms, &n_probe, &cap_probe, ms);
            push(&all_probe_ms, &n_all_probe, &cap_all_probe, ms);
        } else {
            healthz_failures++;
        }
        conn_reset(c);
        return;
    }
    const scenario *s = &scenarios[c->scenario];
    scenario_count *k = &counts[c->scenario];
    char id[48];
    answered_request_id(c, id, sizeof(id));
    if (timed_out) {
        k->timeouts++;
    } else if (we_hung_up) {
        k->hung_up++;
        if (s->ledgered && id[0]) keep_id(id, -1);
    } else if (!status) {
        /* closed without an answer: only an oversized body may be cut so (the
         * daemon closes while we still send) */
        if (!s->oversized) k->conn_errors++;
    } else {
        k->answered++;
        if (!status_allowed(s, status)) {
            k->unexpected++;
            k->last_unexpected = status;
        }
        if (s->ledgered && id[0]) keep_id(id, status);
    }
    conn_reset(c);
}

static void conn_read(conn *c)
{
    const scenario *s = c->scenario >= 0 ? &scenarios[c->scenario] : NULL;
    if (s && s->mode == READ_SLOW && now_s() < c->next_read) return;
    size_t want = s && s->mode == READ_SLOW ? SLOW_READ_BYTES : 65536;
    /* a long stream need not be held whole: past 1 MiB keep the head
     * (status and headers) and go on from there */
    if (c->in_len > (1u << 20)) c->in_len = 8192;
    if (c->in_cap - c->in_len < want + 1) {
        size_t cap = c->in_len + want + 1 > 2 * c->in_cap ? c->in_len + want + 1 : 2 * c->in_cap;
        char *b = realloc(c->in, cap);
        if (!b) {
            conn_finish(c, true, false);
            return;
        }
        c->in = b;
        c->in_cap = cap;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, want, 0);
    if (n > 0) {
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        if (s && s->mode == READ_SLOW) c->next_read = now_s() + SLOW_READ_EVERY_S;
        /* a hang-up client leaves once the first event is in */
        if (s && s->mode == HANG_UP && strstr(c->in, "\r\n\r\n") && strstr(c->in, "data:")) conn_finish(c, true, false);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    conn_finish(c, false, false);
}

static void conn_write(conn *c)
{
    ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
    if (n > 0) {
        c->out_sent += (size_t)n;
        /* no shutdown(SHUT_WR) after: the daemon takes a half-close for a hang-up */
        if (c->out_sent == c->out_len) c->state = READING;
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    /* the daemon closed on us (an oversized body): read what it said */
    c->state = READING;
}

/* ---- samples ---- */

typedef struct {
    double t;
    long rss_kib, fds, threads;
    long long ledger_rows, queue_depth, dropped, requests;
    double healthz_p50, healthz_p99, healthz_max;
} sample;

static sample *samples;
static size_t n_samples, cap_samples;

static long proc_status_field(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t flen = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, flen)) {
            v = atol(line + flen);
            break;
        }
    if (f) fclose(f);
    return v;
}

static long count_fds(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* GET path with a blocking socket (2 s limit); the whole reply into a heap string. */
static char *http_get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[256];
    int rl = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && send(fd, req, (size_t)rl, MSG_NOSIGNAL) == rl) {
        for (;;) {
            if (cap - len < 4097) {
                char *b = realloc(buf, cap ? cap * 2 : 65536);
                if (!b) break;
                buf = b;
                cap = cap ? cap * 2 : 65536;
            }
            ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
            if (n <= 0) break;
            len += (size_t)n;
        }
    }
    close(fd);
    if (buf) buf[len] = '\0';
    return buf;
}

/* A metric's value from Prometheus text: the sum over every line of `name`
 * (with any labels); -1 when absent. */
static long long metric(const char *text, const char *name)
{
    long long sum = -1;
    size_t n = strlen(name);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, name, n) && (p[n] == ' ' || p[n] == '{')) {
            const char *v = strchr(p, ' ');
            if (v) sum = (sum < 0 ? 0 : sum) + atoll(v + 1);
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return sum;
}

static long long ledger_rows(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (db && sqlite3_prepare_v2(db, "SELECT count(*) FROM requests", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void take_sample(const options *o, sqlite3 *db, double t, FILE *csv)
{
    sample s = {.t = t};
    s.rss_kib = proc_status_field(o->pid, "VmRSS:");
    s.threads = proc_status_field(o->pid, "Threads:");
    s.fds = count_fds(o->pid);
    s.ledger_rows = ledger_rows(db);
    char *m = http_get(o->port, "/metrics");
    s.queue_depth = m ? metric(m, "junction_ledger_queue_depth") : -1;
    s.dropped = m ? metric(m, "junction_ledger_rows_dropped_total") : -1;
    s.requests = m ? metric(m, "junction_requests_total") : -1;
    free(m);
    /* -1: no probe came back in this interval (or /metrics did not answer) */
    s.healthz_max = n_probe ? quantile(probe_ms, n_probe, 1.0) : -1;
    s.healthz_p50 = n_probe ? quantile(probe_ms, n_probe, 0.5) : -1;
    s.healthz_p99 = n_probe ? quantile(probe_ms, n_probe, 0.99) : -1;
    n_probe = 0;
    if (n_samples == cap_samples) {
        size_t c = cap_samples ? cap_samples * 2 : 256;
        sample *b = realloc(samples, c * sizeof(*b));
        if (!b) return;
        samples = b;
        cap_samples = c;
    }
    samples[n_samples++] = s;
    fprintf(csv, "%.1f,%ld,%ld,%ld,%lld,%lld,%lld,%lld,%.2f,%.2f,%.2f\n", s.t, s.rss_kib, s.fds, s.threads, s.ledger_rows,
            s.queue_depth, s.dropped, s.requests, s.healthz_p50, s.healthz_p99, s.healthz_max);
    fflush(csv);
}

/* ---- the verdict ---- */

typedef struct {
    const char *name;
    double (*get)(const sample *s);
    double rel, abs;       /* the last third may exceed the second by rel × it + abs */
} growth_check;

static double get_rss(const sample *s) { return (double)s->rss_kib / 1024.0; }
static double get_fds(const sample *s) { return (double)s->fds; }
static double get_threads(const sample *s) { return (double)s->threads; }
static double get_queue(const sample *s) { return (double)s->queue_depth; }

/* Medians, not means: one slow interval on a shared machine is not growth. */
static const growth_check growth_checks[] = {
    {"rss_mib", get_rss, 0.10, 8},
    {"open_fds", get_fds, 0.0, 8},
    {"threads", get_threads, 0.0, 2},
    {"ledger_queue", get_queue, 0.0, 256},
};

static double median_of(size_t from, size_t to, double (*get)(const sample *))
{
    size_t n = to - from;
    double *v = malloc((n ? n : 1) * sizeof(double));
    if (!v) return 0;
    for (size_t i = 0; i < n; i++) v[i] = get(&samples[from + i]);
    double m = quantile(v, n, 0.5);
    free(v);
    return m;
}

/* Every answered model request's row, looked up by id. Returns the number missing. */
static size_t missing_rows(sqlite3 *db, size_t *missing_200, FILE *report)
{
    sqlite3_stmt *st = NULL;
    size_t missing = 0;
    *missing_200 = 0;
    if (!db || sqlite3_prepare_v2(db, "SELECT 1 FROM requests WHERE request_id = ?1", -1, &st, NULL) != SQLITE_OK) {
        fprintf(report, "soak: cannot query the ledger: %s\n", db ? sqlite3_errmsg(db) : "not open");
        *missing_200 = n_ids;
        return n_ids;
    }
    for (size_t i = 0; i < n_ids; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, ids[i].id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            if (missing < 5) fprintf(report, "soak: no ledger row for %s (status %d)\n", ids[i].id, ids[i].status);
            missing++;
            if (ids[i].status == 200) (*missing_200)++;
        }
    }
    sqlite3_finalize(st);
    return missing;
}

static int verdict(const options *o, sqlite3 *db, double ran_s)
{
    int failures = 0;
    printf("\n%-16s %8s %8s %6s %6s %6s %6s %s\n", "scenario", "started", "answered", "hungup", "unexp", "tmout", "connerr", "");
    for (size_t i = 0; i < N_SCENARIOS; i++) {
        const scenario_count *k = &counts[i];
        printf("%-16s %8llu %8llu %6llu %6llu %6llu %6llu", scenarios[i].name, (unsigned long long)k->started,
               (unsigned long long)k->answered, (unsigned long long)k->hung_up, (unsigned long long)k->unexpected,
               (unsigned long long)k->timeouts, (unsigned long long)k->conn_errors);
        if (k->unexpected) printf("  (last unexpected status %d)", k->last_unexpected);
        printf("\n");
        if (k->unexpected || k->timeouts || k->conn_errors) failures++;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < N_SCENARIOS; i++) total += counts[i].started;
    printf("\n%llu requests in %.0f s (%.1f/s); %zu answered model requests to find in the ledger\n",
           (unsigned long long)total, ran_s, (double)total / (ran_s > 0 ? ran_s : 1), n_ids);

    size_t missing_200;
    size_t missing = missing_rows(db, &missing_200, stdout);
    printf("ledger: %zu of %zu ids missing (%zu of them answered 200); %zu ids not kept (out of memory); "
           "%llu requests not started\n", missing, n_ids, missing_200, ids_lost, (unsigned long long)start_failures);
    if (missing || ids_lost || start_failures) failures++;

    double p99 = quantile(all_probe_ms, n_all_probe, 0.99);
    double p50 = quantile(all_probe_ms, n_all_probe, 0.5);
    double worst = quantile(all_probe_ms, n_all_probe, 1.0);
    printf("/healthz: %zu probes, p50 %.2f ms, p99 %.2f ms (bound %.0f), max %.2f ms, %llu failed\n", n_all_probe, p50, p99,
           o->healthz_p99_ms, worst, (unsigned long long)healthz_failures);
    if (p99 > o->healthz_p99_ms || healthz_failures || !n_all_probe) failures++;

    if (n_samples < 6) {
        printf("growth: only %zu samples; run longer or sample more often\n", n_samples);
        return 1;
    }
    size_t a = n_samples / 3, b = 2 * n_samples / 3;
    printf("\n%-14s %12s %12s %12s  verdict\n", "growth", "2nd third", "last third", "allowed");
    for (size_t i = 0; i < sizeof(growth_checks) / sizeof(growth_checks[0]); i++) {
        const growth_check *g = &growth_checks[i];
        double second = median_of(a, b, g->get), last = median_of(b, n_samples, g->get);
        double allowed = second + g->rel * second + g->abs;
        bool ok = last <= allowed;
        printf("%-14s %12.1f %12.1f %12.1f  %s\n", g->name, second, last, allowed, ok ? "ok" : "GROWS");
        if (!ok) failures++;
    }
    long long dropped = 0; /* the counter's highest reading (-1 where /metrics did not answer) */
    for (size_t i = 0; i < n_samples; i++)
        if (samples[i].dropped > dropped) dropped = samples[i].dropped;
    printf("ledger rows dropped: %lld\n", dropped);
    if (dropped != 0) failures++;
    printf("\nsoak: %s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}

/* ---- main ---- */

static int usage(void)
{
    fprintf(stderr, "usage: soak_driver --port P --pid PID --ledger DB --seconds S --csv FILE [--interval S] "
                    "[--clients N] [--max-body BYTES] [--healthz-p99-ms MS] [--flush-ms MS]\n");
    return 2;
}

static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.interval = 5, .clients = 12, .max_body = 1 << 20, .healthz_p99_ms = 500, .flush_ms = 200};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) o->port = atoi(v);
        else if (!strcmp(k, "--pid")) o->pid = atoi(v);
        else if (!strcmp(k, "--ledger")) o->ledger = v;
        else if (!strcmp(k, "--csv")) o->csv = v;
        else if (!strcmp(k, "--seconds")) o->seconds = atof(v);
        else if (!strcmp(k, "--interval")) o->interval = atof(v);
        else if (!strcmp(k, "--clients")) o->clients = atoi(v);
        else if (!strcmp(k, "--max-body")) o->max_body = atol(v);
        else if (!strcmp(k, "--healthz-p99-ms")) o->healthz_p99_ms = atof(v);
        else if (!strcmp(k, "--flush-ms")) o->flush_ms = atoi(v);
        else {
            fprintf(stderr, "soak_driver: unknown option %s\n", k);
            return -1;
        }
    }
    if (argc % 2 == 0 || o->port <= 0 || o->pid <= 0 || !o->ledger || !o->csv || o->seconds <= 0 || o->interval <= 0 ||
        o->clients < 1 || o->clients > MAX_CLIENTS || o->max_body < 1) {
        fprintf(stderr, "soak_driver: --port, --pid, --ledger, --seconds and --csv are needed; --clients 1..%d\n",
                MAX_CLIENTS);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0) return usage();
    signal(SIGPIPE, SIG_IGN);
    rng ^= (uint64_t)getpid() << 17;
    FILE *csv = fopen(o.csv, "w");
    if (!csv) {
        fprintf(stderr, "soak_driver: cannot write %s: %s\n", o.csv, strerror(errno));
        return 2;
    }
    fprintf(csv, "t_s,rss_kib,fds,threads,ledger_rows,ledger_queue,ledger_dropped,requests,healthz_p50_ms,"
                 "healthz_p99_ms,healthz_max_ms\n");
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(o.ledger, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "soak_driver: cannot open the ledger %s: %s\n", o.ledger, db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        fclose(csv);
        return 2;
    }
    sqlite3_busy_timeout(db, 2000);

    conn clients[MAX_CLIENTS + 1]; /* the last: the /healthz probe */
    for (int i = 0; i <= MAX_CLIENTS; i++) {
        memset(&clients[i], 0, sizeof(clients[i]));
        clients[i].fd = -1;
    }
    conn *probe = &clients[MAX_CLIENTS];
    double t0 = now_s(), next_sample = t0 + o.interval, next_probe = t0, end = t0 + o.seconds;
    uint64_t serial = 0;
    bool stopping = false;
    printf("soak: %d clients for %.0f s, a sample every %.0f s into %s\n", o.clients, o.seconds, o.interval, o.csv);
    fflush(stdout);
    for (;;) {
        double now = now_s();
        if (now >= end) stopping = true;
        bool busy = false;
        for (int i = 0; i < o.clients; i++) {
            if (clients[i].state == IDLE && !stopping && conn_start(&clients[i], &o, pick_scenario(), ++serial) != 0) {
                if (start_failures++ < 5) fprintf(stderr, "soak_driver: cannot start a request: %s\n", strerror(errno));
                continue;
            }
            if (clients[i].state != IDLE) busy = true;
        }
        if (probe->state == IDLE && !stopping && now >= next_probe) {
            if (conn_start(probe, &o, -1, ++serial) == 0) next_probe = now + 0.1;
        }
        if (stopping && !busy && probe->state == IDLE) break;

        struct pollfd pfd[MAX_CLIENTS + 1];
        conn *who[MAX_CLIENTS + 1];
        int n = 0;
        for (int i = 0; i <= MAX_CLIENTS; i++) {
            conn *c = &clients[i];
            if (c->state == IDLE) continue;
            if (now - c->started > REQUEST_DEADLINE_S) {
                fprintf(stderr, "soak_driver: request %s (%s) got no answer in %.0f s\n", c->id,
                        c->scenario >= 0 ? scenarios[c->scenario].name : "healthz", REQUEST_DEADLINE_S);
                if (c->scenario < 0) healthz_failures++, conn_reset(c);
                else conn_finish(c, false, true);
                continue;
            }
            bool slow_wait = c->scenario >= 0 && scenarios[c->scenario].mode == READ_SLOW && now < c->next_read;
            if (c->state == READING && slow_wait) continue;
            pfd[n] = (struct pollfd){.fd = c->fd, .events = c->state == SENDING ? POLLOUT : POLLIN};
            who[n++] = c;
        }
        int r = poll(pfd, (nfds_t)n, 10);
        for (int i = 0; r > 0 && i < n; i++) {
            if (!pfd[i].revents) continue;
            conn *c = who[i];
            if (c->state == SENDING && (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP))) conn_write(c);
            else if (c->state == READING && (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))) conn_read(c);
        }
        now = now_s();
        if (now >= next_sample && !stopping) {
            take_sample(&o, db, now - t0, csv);
            next_sample += o.interval;
        }
    }
    double ran = now_s() - t0;
    /* every row answered before the end has had flush_ms to be committed: wait for it, and a margin */
    usleep((useconds_t)(o.flush_ms + 1000) * 1000);
    take_sample(&o, db, now_s() - t0, csv);
    fclose(csv);
    int rc = verdict(&o, db, ran);
    sqlite3_close(db);
    free(ids);
    free(samples);
    free(probe_ms);
    free(all_probe_ms);
    return rc;
}
