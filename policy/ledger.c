/* ledger.c: the ledger's writer: a bounded queue and one thread that owns
 * the database connection.
 *
 * The event loop must never wait on the disk, so pol_ledger_append only
 * copies the row into a ring under a mutex held for a memcpy; when the ring
 * is full the row is dropped and counted instead of blocking. The writer
 * thread takes up to batch_rows rows at a time and commits them in one
 * transaction, at least every flush_ms. A batch that fails (disk full,
 * read-only or locked file, corruption) is kept and retried once per
 * interval on a fresh connection, so a fault that passes loses nothing but
 * the rows the full queue had to drop; meanwhile the ledger reports itself
 * degraded. Retention deletes old rows in small batches on the same thread,
 * on the interval ticks only, never between a request and its row.
 */
#include "ledger_store.h"
#include "policy.h"

#include <pthread.h>
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
    pol_ledger_row *ring;           /* queue_rows slots; texts owned by the slot */
    size_t head, count;
    pol_ledger_row *batch;          /* batch_rows slots, the writer's batch in hand */
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
    cfg->batch_rows = 256;
    cfg->queue_rows = 4096;
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
        {"ledger.queue_rows", cfg->queue_rows, 1, 1000000},
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
 * and returns with mu held, but copies without it, so that appenders never
 * wait for the copy: they write only at the ring's tail, and the k slots
 * being copied stay counted (not free) until head advances. */
static void take_batch(pol_ledger *l)
{
    size_t cap = (size_t)l->cfg.queue_rows, room = (size_t)l->cfg.batch_rows - l->batch_n;
    size_t k = l->count < room ? l->count : room, head = l->head, at = l->batch_n;
    if (k == 0) return;
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < k; i++) l->batch[at + i] = l->ring[(head + i) % cap];
    pthread_mutex_lock(&l->mu);
    l->head = (head + k) % cap;
    l->count -= k;
    l->batch_n += k;
}

static void abandon_all(pol_ledger *l)
{
    size_t cap = (size_t)l->cfg.queue_rows;
    uint64_t lost = l->batch_n + l->count;
    for (size_t i = 0; i < l->batch_n; i++) free_texts(&l->batch[i]);
    for (; l->count > 0; l->count--, l->head = (l->head + 1) % cap) free_texts(&l->ring[l->head]);
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
        l->ring = calloc((size_t)cfg->queue_rows, sizeof(*l->ring));
        l->batch = calloc((size_t)cfg->batch_rows, sizeof(*l->batch));
    }
    if (!l || !l->ring || !l->batch) {
        if (l) free(l->ring);
        free(l);
        snprintf(err, errlen, "ledger: out of memory for a queue of %d rows; lower ledger.queue_rows",
                 cfg->queue_rows);
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
    pol_ledger_row copy = *row;
    copy.prompt_redacted = l->cfg.store_prompts && row->prompt_redacted ? strdup(row->prompt_redacted) : NULL;
    copy.answer_redacted = l->cfg.store_prompts && row->answer_redacted ? strdup(row->answer_redacted) : NULL;
    pthread_mutex_lock(&l->mu);
    bool queued = !l->stop && l->count < (size_t)l->cfg.queue_rows;
    if (queued) {
        l->ring[(l->head + l->count) % (size_t)l->cfg.queue_rows] = copy;
        l->count++;
        l->st.appended++;
        if (l->count + l->batch_n >= (size_t)l->cfg.batch_rows) pthread_cond_signal(&l->wake);
    } else {
        l->st.dropped++;
    }
    pthread_mutex_unlock(&l->mu);
    if (!queued) free_texts(&copy);
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
