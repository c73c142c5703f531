/* ledger.c: the ledger's writer: a bounded queue and one thread that owns
 * the database connection.
 *
 * The event loop must never wait on the disk, so pol_ledger_append only
 * packs the row into a byte ring under a mutex held for a memcpy; when the
 * ring is full the row is dropped and counted instead of blocking. Rows are
 * packed (a pol_ledger_row is 1,144 bytes of mostly empty arrays; packed, a
 * typical one takes about 200), so the same memory absorbs five times more
 * seconds of a writer that fell behind, and the loop never allocates.
 * The writer thread takes up to batch_rows rows at a time and commits them
 * in one transaction, at least every flush_ms. A batch that fails (disk full,
 * read-only or locked file, corruption) is kept and retried once per
 * interval on a fresh connection, so a fault that passes loses nothing but
 * the rows the full queue had to drop; meanwhile the ledger reports itself
 * degraded. Retention deletes old rows in small batches on the same thread,
 * on the interval ticks only, never between a request and its row.
 */
#include "ledger_store.h"
#include "policy.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETENTION_PERIOD_MS 60000   /* between retention passes once caught up */
#define LOG_REPEAT_MS 30000         /* a persisting failure is logged this often */

struct pol_ledger {
    pol_ledger_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;            /* the writer waits on it (monotonic clock) */
    pthread_cond_t progress;        /* flush_wait waits on it */
    uint8_t *ring;                  /* packed rows (below), cap bytes */
    size_t cap, head, tail, used;   /* used: bytes from head to tail, end padding included */
    size_t count;                   /* rows in the ring */
    pol_ledger_row *batch;          /* batch_rows slots, the writer's batch in hand; texts heap */
    size_t batch_n;                 /* changed under mu */
    int flush_waiters;
    bool stop;
    pol_ledger_stats st;
    pol_store *store;               /* the writer's connection; NULL while it cannot open */
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void say(const pol_ledger *l, pol_log_level level, const char *msg)
{
    if (l->cfg.log) l->cfg.log(l->cfg.log_ctx, level, msg);
    else fprintf(stderr, "junction: ledger: %s\n", msg);
}

void pol_ledger_config_defaults(pol_ledger_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (state && state[0] == '/') snprintf(cfg->path, sizeof(cfg->path), "%s/junction/ledger.db", state);
    else if (home && *home) snprintf(cfg->path, sizeof(cfg->path), "%s/.local/state/junction/ledger.db", home);
    else snprintf(cfg->path, sizeof(cfg->path), "off");
    cfg->flush_ms = 200;
    cfg->batch_rows = 1024;
    cfg->queue_bytes = 8 << 20;
    cfg->retention_batch_rows = 1000;
}

int pol_ledger_config_check(const pol_ledger_config *cfg, char *err, size_t errlen)
{
    const struct {
        const char *name;
        int value, min, max;
    } ranges[] = {
        {"ledger.flush_ms", cfg->flush_ms, 1, 60000},
        {"ledger.batch_rows", cfg->batch_rows, 1, 100000},
        {"ledger.queue_bytes", cfg->queue_bytes, 4096, 1 << 30},
        {"ledger.retention_days", cfg->retention_days, 0, 36500},
        {"ledger.retention_batch_rows", cfg->retention_batch_rows, 1, 1000000},
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (ranges[i].value < ranges[i].min || ranges[i].value > ranges[i].max) {
            snprintf(err, errlen, "%s: %d is out of range (%d to %d)", ranges[i].name,
                     ranges[i].value, ranges[i].min, ranges[i].max);
            return -1;
        }
    if (!cfg->path[0]) {
        snprintf(err, errlen, "ledger.path is empty: give a file, or \"off\" to disable the ledger");
        return -1;
    }
    return 0;
}

static void free_texts(pol_ledger_row *r)
{
    free((char *)r->prompt_redacted);
    free((char *)r->answer_redacted);
    r->prompt_redacted = r->answer_redacted = NULL;
}

/* ---- the queue: rows packed in a byte ring ----
 * An entry is an 8-byte header (the entry's length in bytes, a multiple of
 * 8), every field of the row below in this order (numbers as their bytes,
 * texts up to and with their NUL), then the two redacted texts, each a
 * presence byte and the text with its NUL. An entry never wraps: a header
 * of 0 marks the unused end of the ring, and the next entry is at offset 0.
 * Every field of pol_ledger_row but the two text pointers is listed here
 * (test_ledger's round trip checks each one). */
#define ENTRY_HEAD 8

#define FIELD(f, is_text) {offsetof(pol_ledger_row, f), sizeof(((pol_ledger_row *)0)->f), is_text}
static const struct {
    size_t offset, size;
    bool text;
} packed_fields[] = {
    FIELD(request_id, true), FIELD(ts_ms, false), FIELD(tenant, true), FIELD(key_id, true),
    FIELD(model, true), FIELD(route, true), FIELD(zone, true), FIELD(reason, true),
    FIELD(detectors, true), FIELD(upstream_model, true), FIELD(prompt_tokens, false),
    FIELD(completion_tokens, false), FIELD(cached_tokens, false), FIELD(tokens_estimated, false),
    FIELD(cost_micro_usd, false), FIELD(counterfactual_micro_usd, false), FIELD(latency_us, false),
    FIELD(ttft_us, false), FIELD(status, false), FIELD(error_code, true), FIELD(streamed, false),
    FIELD(client_hung_up, false),
};
#undef FIELD
#define N_PACKED (sizeof(packed_fields) / sizeof(packed_fields[0]))

/* Pack r (its texts when `texts`) at dst and return the entry's length; with
 * dst NULL, only the length. */
static size_t pack_row(const pol_ledger_row *r, bool texts, uint8_t *dst)
{
    size_t n = ENTRY_HEAD;
    for (size_t i = 0; i < N_PACKED; i++) {
        const char *src = (const char *)r + packed_fields[i].offset;
        size_t len = packed_fields[i].text ? strnlen(src, packed_fields[i].size - 1) + 1 : packed_fields[i].size;
        if (dst) {
            memcpy(dst + n, src, len);
            if (packed_fields[i].text) dst[n + len - 1] = '\0';
        }
        n += len;
    }
    const char *extra[2] = {texts ? r->prompt_redacted : NULL, texts ? r->answer_redacted : NULL};
    for (int i = 0; i < 2; i++) {
        size_t len = extra[i] ? strlen(extra[i]) + 1 : 0;
        if (dst) {
            dst[n] = extra[i] != NULL;
            if (len) memcpy(dst + n + 1, extra[i], len);
        }
        n += 1 + len;
    }
    n = (n + 7) & ~(size_t)7;
    if (dst) {
        uint64_t head = n;
        memcpy(dst, &head, sizeof(head));
    }
    return n;
}

/* The row packed at src (texts copied to the heap: NULL when out of memory,
 * the row is still written); returns the entry's length. */
static size_t unpack_row(const uint8_t *src, pol_ledger_row *r)
{
    uint64_t length;
    memcpy(&length, src, sizeof(length));
    memset(r, 0, sizeof(*r));
    size_t n = ENTRY_HEAD;
    for (size_t i = 0; i < N_PACKED; i++) {
        size_t len = packed_fields[i].text ? strlen((const char *)src + n) + 1 : packed_fields[i].size;
        memcpy((char *)r + packed_fields[i].offset, src + n, len);
        n += len;
    }
    const char **extra[2] = {&r->prompt_redacted, &r->answer_redacted};
    for (int i = 0; i < 2; i++) {
        bool present = src[n++];
        if (!present) continue;
        *extra[i] = strdup((const char *)src + n);
        n += strlen((const char *)src + n) + 1;
    }
    return (size_t)length;
}

/* Where an entry of `need` bytes goes at the ring's tail, or NULL when the
 * ring has no room for it. Called with mu held. */
static uint8_t *reserve(pol_ledger *l, size_t need)
{
    if (l->used == 0) l->head = l->tail = 0;
    size_t to_end = l->cap - l->tail;
    size_t skip = to_end < need ? to_end : 0;
    if (l->used + skip + need > l->cap) return NULL;
    if (skip) {
        memset(l->ring + l->tail, 0, ENTRY_HEAD);   /* the end mark */
        l->used += skip;
        l->tail = 0;
    }
    uint8_t *at = l->ring + l->tail;
    l->tail = (l->tail + need) % l->cap;
    l->used += need;
    return at;
}

/* Called with mu held. */
static void record_failure(pol_ledger *l, const char *msg, int64_t *last_log)
{
    l->st.write_errors++;
    bool news = !l->st.degraded || strcmp(l->st.last_error, msg) != 0;
    l->st.degraded = true;
    snprintf(l->st.last_error, sizeof(l->st.last_error), "%s", msg);
    int64_t now = mono_ms();
    if (news || now - *last_log >= LOG_REPEAT_MS) {
        char line[512];
        snprintf(line, sizeof(line), "%s (%llu rows waiting, %llu dropped so far)", msg,
                 (unsigned long long)(l->count + l->batch_n), (unsigned long long)l->st.dropped);
        say(l, POL_LOG_ERROR, line);
        *last_log = now;
    }
}

/* The work of one turn, without the lock: (re)open, write the batch, and on
 * a tick, retention. Returns 0, or -1 with the reason in msg. */
static int write_turn(pol_ledger *l, size_t n, bool tick, int64_t *next_retention,
                      int *deleted, char *msg, size_t msglen)
{
    *deleted = 0;
    if (!l->store && pol_store_open(&l->store, l->cfg.path, POL_STORE_WRITE, l->cfg.open_sql, NULL,
                                    msg, msglen) != 0)
        return -1;
    if (n > 0 && pol_store_append(l->store, l->batch, n, l->cfg.store_prompts, msg, msglen) != 0) {
        /* a fresh connection next time: a replaced, repaired or re-permitted file is seen anew */
        pol_store_close(l->store);
        l->store = NULL;
        return -1;
    }
    int64_t now = mono_ms();
    if (!tick || l->cfg.retention_days == 0 || now < *next_retention) return 0;
    int64_t cutoff = pol_now_ms() - (int64_t)l->cfg.retention_days * 86400000;
    if (pol_store_delete_before(l->store, cutoff, l->cfg.retention_batch_rows, deleted, msg, msglen) != 0) {
        *next_retention = now + RETENTION_PERIOD_MS;
        return -1;
    }
    /* a full batch means more may wait: continue on the next tick */
    *next_retention = *deleted == l->cfg.retention_batch_rows ? now : now + RETENTION_PERIOD_MS;
    return 0;
}

/* Move up to a batch of rows from the ring into the writer's batch. Called
 * and returns with mu held, but unpacks without it, so that appenders never
 * wait for the copy: they write only into the free part of the ring, and the
 * k entries being read stay counted (not free) until head advances. */
static void take_batch(pol_ledger *l)
{
    size_t room = (size_t)l->cfg.batch_rows - l->batch_n;
    size_t k = l->count < room ? l->count : room, pos = l->head, at = l->batch_n, taken = 0;
    if (k == 0) return;
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < k; i++) {
        uint64_t length;
        memcpy(&length, l->ring + pos, sizeof(length));
        if (length == 0) {          /* the end mark: the entry is at the start */
            taken += l->cap - pos;
            pos = 0;
        }
        size_t n = unpack_row(l->ring + pos, &l->batch[at + i]);
        taken += n;
        pos = (pos + n) % l->cap;
    }
    pthread_mutex_lock(&l->mu);
    l->head = pos;
    l->used -= taken;
    l->count -= k;
    l->batch_n += k;
}

static void abandon_all(pol_ledger *l)
{
    uint64_t lost = l->batch_n + l->count;
    for (size_t i = 0; i < l->batch_n; i++) free_texts(&l->batch[i]);
    l->count = l->used = l->head = l->tail = 0;
    l->batch_n = 0;
    l->st.dropped += lost;
    if (lost) {
        char line[384];
        snprintf(line, sizeof(line), "closing with %llu rows unwritten: %s", (unsigned long long)lost,
                 l->st.last_error);
        say(l, POL_LOG_ERROR, line);
    }
}

static void *writer_main(void *arg)
{
    pol_ledger *l = arg;
    int64_t next_tick = mono_ms() + l->cfg.flush_ms, next_retention = 0, last_log = 0;
    bool failing = l->st.degraded;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        take_batch(l);
        int64_t now = mono_ms();
        bool tick = now >= next_tick;
        bool early = !failing && l->batch_n > 0 &&
                     (l->batch_n == (size_t)l->cfg.batch_rows || l->flush_waiters > 0);
        if (!l->stop && !tick && !early) {
            struct timespec until = {next_tick / 1000, (next_tick % 1000) * 1000000};
            pthread_cond_timedwait(&l->wake, &l->mu, &until);
            continue;
        }
        if (l->stop && !failing && l->batch_n == 0) break;
        size_t n = l->batch_n;
        pthread_mutex_unlock(&l->mu);
        char msg[256] = "";
        int deleted;
        int rc = write_turn(l, n, tick, &next_retention, &deleted, msg, sizeof(msg));
        if (rc == 0)
            for (size_t i = 0; i < n; i++) free_texts(&l->batch[i]);
        pthread_mutex_lock(&l->mu);
        l->st.deleted += (uint64_t)deleted;
        if (rc == 0) {
            l->batch_n = 0;
            l->st.written += n;
            if (l->st.degraded) say(l, POL_LOG_INFO, "recovered: writing rows again");
            l->st.degraded = false;
            pthread_cond_broadcast(&l->progress);
        } else {
            record_failure(l, msg, &last_log);
        }
        failing = rc != 0;
        if (tick) next_tick = mono_ms() + l->cfg.flush_ms;
        if (l->stop && failing) break;
    }
    abandon_all(l);
    pthread_cond_broadcast(&l->progress);
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int pol_ledger_open(pol_ledger **out, const pol_ledger_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    if (pol_ledger_config_check(cfg, err, errlen) != 0) return -1;
    if (strcmp(cfg->path, "off") == 0) return 0;
    pol_ledger *l = calloc(1, sizeof(*l));
    if (l) {
        l->cap = (size_t)cfg->queue_bytes & ~(size_t)7;
        l->ring = malloc(l->cap);
        l->batch = calloc((size_t)cfg->batch_rows, sizeof(*l->batch));
    }
    if (!l || !l->ring || !l->batch) {
        if (l) {
            free(l->ring);
            free(l->batch);
        }
        free(l);
        snprintf(err, errlen, "ledger: out of memory for a queue of %d bytes and a batch of %d rows; "
                 "lower ledger.queue_bytes or ledger.batch_rows", cfg->queue_bytes, cfg->batch_rows);
        return -1;
    }
    l->cfg = *cfg;
    bool too_new = false;
    char msg[256];
    if (pol_store_open(&l->store, cfg->path, POL_STORE_WRITE, cfg->open_sql, &too_new, msg, sizeof(msg)) != 0) {
        if (too_new) {
            snprintf(err, errlen, "%s", msg);
            free(l->batch);
            free(l->ring);
            free(l);
            return -1;
        }
        l->st.degraded = true;
        l->st.write_errors = 1;
        snprintf(l->st.last_error, sizeof(l->st.last_error), "%s", msg);
        say(l, POL_LOG_ERROR, msg);
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->wake, &ca);
    pthread_cond_init(&l->progress, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&l->thread, NULL, writer_main, l);
    if (rc != 0) {
        snprintf(err, errlen, "ledger: cannot start the writer thread: %s", strerror(rc));
        pol_store_close(l->store);
        pthread_cond_destroy(&l->progress);
        pthread_cond_destroy(&l->wake);
        pthread_mutex_destroy(&l->mu);
        free(l->batch);
        free(l->ring);
        free(l);
        return -1;
    }
    *out = l;
    return 0;
}

bool pol_ledger_append(pol_ledger *l, const pol_ledger_row *row)
{
    if (!l) return true;
    size_t need = pack_row(row, l->cfg.store_prompts, NULL);
    pthread_mutex_lock(&l->mu);
    uint8_t *at = l->stop ? NULL : reserve(l, need);
    bool queued = at != NULL;
    if (queued) {
        pack_row(row, l->cfg.store_prompts, at);
        l->count++;
        l->st.appended++;
        /* a batch's worth to write, or a ring half full (long texts) for
         * the writer to empty into its batch */
        if (l->count + l->batch_n >= (size_t)l->cfg.batch_rows || l->used * 2 >= l->cap)
            pthread_cond_signal(&l->wake);
    } else {
        l->st.dropped++;
    }
    pthread_mutex_unlock(&l->mu);
    return queued;
}

int pol_ledger_flush_wait(pol_ledger *l, int timeout_ms, char *err, size_t errlen)
{
    if (!l) return 0;
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    struct timespec until = {deadline / 1000, (deadline % 1000) * 1000000};
    pthread_mutex_lock(&l->mu);
    uint64_t target = l->st.appended;
    l->flush_waiters++;
    pthread_cond_signal(&l->wake);
    int rc = 0;
    while (l->st.written < target) {
        if (pthread_cond_timedwait(&l->progress, &l->mu, &until) != 0) {
            rc = -1;
            break;
        }
    }
    l->flush_waiters--;
    if (rc != 0 && l->st.written < target)
        snprintf(err, errlen, "ledger: %llu rows still unwritten after %d ms%s%s",
                 (unsigned long long)(target - l->st.written), timeout_ms,
                 l->st.degraded ? ": " : "", l->st.degraded ? l->st.last_error : "");
    else rc = 0;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void pol_ledger_get_stats(pol_ledger *l, pol_ledger_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    *out = l->st;
    out->pending = l->count + l->batch_n;
    pthread_mutex_unlock(&l->mu);
}

void pol_ledger_free(pol_ledger *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pol_store_close(l->store);
    pthread_cond_destroy(&l->progress);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l->batch);
    free(l->ring);
    free(l);
}
