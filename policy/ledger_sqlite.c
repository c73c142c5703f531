/* ledger_sqlite.c: the ledger's storage in one SQLite file.
 *
 * Why SQLite: one daemon, one file, no server to run; WAL mode lets
 * `junction audit` read while the writer thread appends. The schema is
 * versioned with PRAGMA user_version and migrated forward in code, one step
 * per version, each in its own transaction; a file from a newer build is
 * refused rather than half-understood. Money is INTEGER micro-dollars in
 * STRICT tables, so no floating point ever reaches the file. Everything
 * SQLite-specific about the request rows lives here, behind ledger_store.h;
 * the keys and tenants tables (version 3) are read and written by
 * keys_store.c, which opens the file through pol_store_open first so that
 * the schema is created and migrated in one place.
 */
#include "ledger_store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct pol_store {
    sqlite3 *db;
    sqlite3_stmt *insert;
    char path[POL_LEDGER_PATH_MAX];
};

static int seed_pepper(pol_store *s, char *err, size_t errlen);

/* migrations[i] takes the schema from version i to i + 1: its SQL, then (when
 * not NULL) a step that needs more than SQL, in the same transaction. */
static const struct {
    const char *sql;
    int (*after)(pol_store *s, char *err, size_t errlen);
} migrations[POL_STORE_SCHEMA_VERSION] = {
    /* 1: the request table and the indexes of the audit queries */
    {"CREATE TABLE requests ("
    " id INTEGER PRIMARY KEY,"
    " request_id TEXT NOT NULL,"
    " ts_ms INTEGER NOT NULL,"
    " tenant TEXT, key_id TEXT,"
    " model TEXT NOT NULL, route TEXT NOT NULL, zone TEXT NOT NULL, reason TEXT NOT NULL,"
    " detectors TEXT NOT NULL, upstream_model TEXT,"
    " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL, tokens_estimated INTEGER NOT NULL,"
    " cost_micro_usd INTEGER NOT NULL, counterfactual_micro_usd INTEGER NOT NULL,"
    " latency_us INTEGER NOT NULL, ttft_us INTEGER,"
    " status INTEGER NOT NULL, error_code TEXT,"
    " streamed INTEGER NOT NULL, client_hung_up INTEGER NOT NULL) STRICT;"
    "CREATE INDEX requests_ts ON requests(ts_ms);"
    "CREATE INDEX requests_tenant_ts ON requests(tenant, ts_ms);"
    "CREATE INDEX requests_route_ts ON requests(route, ts_ms);", NULL},
    /* 2: redacted texts (ledger.store_prompts) and lookup by request id */
    {"ALTER TABLE requests ADD COLUMN prompt_redacted TEXT;"
    "ALTER TABLE requests ADD COLUMN answer_redacted TEXT;"
    "CREATE INDEX requests_request_id ON requests(request_id);", NULL},
    /* 3: client keys (hashes only) and tenants with their budgets (money in
     * micro-dollars, 0 = no limit); meta holds the keys' HMAC pepper and a
     * counter every key or tenant change bumps, so the daemon notices; the
     * key-spend index serves the budget rebuild. */
    {"CREATE TABLE tenants ("
    " name TEXT PRIMARY KEY,"
    " budget_daily_micro INTEGER NOT NULL DEFAULT 0 CHECK (budget_daily_micro >= 0),"
    " budget_monthly_micro INTEGER NOT NULL DEFAULT 0 CHECK (budget_monthly_micro >= 0),"
    " created_ms INTEGER NOT NULL) STRICT;"
    "CREATE TABLE keys ("
    " id TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL REFERENCES tenants(name),"
    " name TEXT NOT NULL DEFAULT '',"
    " hash BLOB NOT NULL UNIQUE,"
    " routes TEXT NOT NULL DEFAULT '',"
    " rpm INTEGER NOT NULL DEFAULT 0 CHECK (rpm >= 0),"
    " tpm INTEGER NOT NULL DEFAULT 0 CHECK (tpm >= 0),"
    " budget_daily_micro INTEGER NOT NULL DEFAULT 0 CHECK (budget_daily_micro >= 0),"
    " budget_monthly_micro INTEGER NOT NULL DEFAULT 0 CHECK (budget_monthly_micro >= 0),"
    " admin INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, revoked_ms INTEGER, rotated_ms INTEGER) STRICT;"
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value ANY) STRICT;"
    "INSERT INTO meta (name, value) VALUES ('keys_version', 0);"
    "CREATE INDEX requests_key_ts ON requests(key_id, ts_ms);", seed_pepper},
};

#define ROW_COLUMNS \
    "request_id, ts_ms, tenant, key_id, model, route, zone, reason, detectors, upstream_model," \
    " prompt_tokens, completion_tokens, cached_tokens, tokens_estimated, cost_micro_usd," \
    " counterfactual_micro_usd, latency_us, ttft_us, status, error_code, streamed," \
    " client_hung_up, prompt_redacted, answer_redacted"

/* What to do about each kind of failure, for the message. */
static const struct {
    int code;
    const char *advice;
} advice_table[] = {
    {SQLITE_FULL, "the disk (or the file's page limit) is full: free space"},
    {SQLITE_READONLY, "the file is read-only: check its permissions and the folder's"},
    {SQLITE_BUSY, "another connection holds the write lock: find it (sqlite3 shell, backup job)"},
    {SQLITE_LOCKED, "another connection holds the write lock: find it (sqlite3 shell, backup job)"},
    {SQLITE_CORRUPT, "the file is damaged: move it away (a new one is started) and restore a backup"},
    {SQLITE_NOTADB, "the file is not a database: check ledger.path, or move the file away"},
    {SQLITE_CANTOPEN, "cannot open the file: check that its folder exists and is writable"},
    {SQLITE_IOERR, "the disk reported an I/O error: check the file system"},
    {SQLITE_PERM, "permission denied: check the file's permissions"},
};

static void fail(const pol_store *s, sqlite3 *db, const char *doing, char *err, size_t errlen)
{
    int code = sqlite3_errcode(db) & 0xff;
    const char *advice = "see docs/ledger.md";
    for (size_t i = 0; i < sizeof(advice_table) / sizeof(advice_table[0]); i++)
        if (advice_table[i].code == code) advice = advice_table[i].advice;
    snprintf(err, errlen, "ledger %s: %s: %s; %s", s->path, doing, sqlite3_errmsg(db), advice);
}

static int exec(pol_store *s, const char *sql, const char *doing, char *err, size_t errlen)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK) return 0;
    fail(s, s->db, doing, err, errlen);
    return -1;
}

static int user_version(pol_store *s, int *out, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        fail(s, s->db, "reading the schema version", err, errlen);
        return -1;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int(st, 0);
    else fail(s, s->db, "reading the schema version", err, errlen);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* The keys' HMAC pepper: 32 bytes from the kernel's CSPRNG, made once with
 * the keys table and never changed (changing it would void every key). */
static int seed_pepper(pol_store *s, char *err, size_t errlen)
{
    unsigned char pepper[32];
    if (getrandom(pepper, sizeof(pepper), 0) != (ssize_t)sizeof(pepper)) {
        snprintf(err, errlen, "ledger %s: getrandom failed: %s; the kernel's random source is "
                 "needed to create the keys table", s->path, strerror(errno));
        return -1;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO meta (name, value) VALUES ('pepper', ?1)", -1, &st,
                           NULL) != SQLITE_OK) {
        fail(s, s->db, "creating the keys' pepper", err, errlen);
        return -1;
    }
    sqlite3_bind_blob(st, 1, pepper, sizeof(pepper), SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) fail(s, s->db, "creating the keys' pepper", err, errlen);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int migrate(pol_store *s, int from, char *err, size_t errlen)
{
    if (exec(s, "PRAGMA journal_mode=WAL", "switching to WAL mode", err, errlen) != 0) return -1;
    for (int v = from; v < POL_STORE_SCHEMA_VERSION; v++) {
        char set[64];
        snprintf(set, sizeof(set), "PRAGMA user_version=%d", v + 1);
        if (exec(s, "BEGIN IMMEDIATE", "migrating the schema", err, errlen) != 0) return -1;
        if (exec(s, migrations[v].sql, "migrating the schema", err, errlen) != 0 ||
            (migrations[v].after && migrations[v].after(s, err, errlen) != 0) ||
            exec(s, set, "migrating the schema", err, errlen) != 0 ||
            exec(s, "COMMIT", "migrating the schema", err, errlen) != 0) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    return 0;
}

/* mkdir -p of the file's folder (0700: spend is private). */
static int make_parent(const char *path, char *err, size_t errlen)
{
    char dir[POL_LEDGER_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    for (char *p = dir + 1; ; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "ledger %s: cannot create the folder %s: %s; create it or set "
                         "ledger.path", path, dir, strerror(errno));
                return -1;
            }
            if (end) return 0;
            *p = '/';
        }
    }
}

static int check_version(pol_store *s, pol_store_mode mode, int *version, bool *too_new,
                         char *err, size_t errlen)
{
    if (user_version(s, version, err, errlen) != 0) return -1;
    if (*version > POL_STORE_SCHEMA_VERSION) {
        if (too_new) *too_new = true;
        snprintf(err, errlen, "ledger %s: schema version %d is newer than this build knows (%d): "
                 "use the junction that wrote it, or point ledger.path elsewhere",
                 s->path, *version, POL_STORE_SCHEMA_VERSION);
        return -1;
    }
    if (mode == POL_STORE_READ && *version == 0) {
        snprintf(err, errlen, "ledger %s: not a junction ledger (no schema); check the path", s->path);
        return -1;
    }
    if (mode == POL_STORE_READ && *version < POL_STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "ledger %s: schema version %d is older than this build reads (%d): "
                 "run `junction audit --vacuum --db %s` (or start the daemon) once to migrate it",
                 s->path, *version, POL_STORE_SCHEMA_VERSION, s->path);
        return -1;
    }
    return 0;
}

int pol_store_open(pol_store **out, const char *path, pol_store_mode mode, const char *open_sql,
                   bool *too_new, char *err, size_t errlen)
{
    *out = NULL;
    if (too_new) *too_new = false;
    pol_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "ledger %s: out of memory", path);
        return -1;
    }
    snprintf(s->path, sizeof(s->path), "%s", path);
    if (mode == POL_STORE_WRITE && make_parent(path, err, errlen) != 0) {
        free(s);
        return -1;
    }
    if (mode != POL_STORE_WRITE && access(path, F_OK) != 0) {
        snprintf(err, errlen, "ledger %s: %s; check the path (the daemon creates the file when it "
                 "starts with this ledger.path)", path, strerror(errno));
        free(s);
        return -1;
    }
    int flags = mode == POL_STORE_READ ? SQLITE_OPEN_READONLY
              : mode == POL_STORE_UPDATE ? SQLITE_OPEN_READWRITE
              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    int version = 0;
    if (rc != SQLITE_OK) {
        fail(s, s->db, "opening", err, errlen);
    } else {
        sqlite3_extended_result_codes(s->db, 1);
        sqlite3_busy_timeout(s->db, mode == POL_STORE_WRITE ? 250 : 2000);
        rc = check_version(s, mode, &version, too_new, err, errlen);
    }
    if (rc == 0 && mode != POL_STORE_READ) {
        rc = migrate(s, version, err, errlen);
        if (rc == 0) rc = exec(s, "PRAGMA synchronous=NORMAL", "setting synchronous", err, errlen);
        if (rc == 0 && open_sql && *open_sql) rc = exec(s, open_sql, "running ledger.open_sql", err, errlen);
        if (rc == 0 && sqlite3_prepare_v3(s->db, "INSERT INTO requests (" ROW_COLUMNS ") VALUES "
                                          "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                          -1, SQLITE_PREPARE_PERSISTENT, &s->insert, NULL) != SQLITE_OK) {
            fail(s, s->db, "preparing the insert", err, errlen);
            rc = -1;
        }
    }
    if (rc != 0) {
        pol_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void pol_store_close(pol_store *s)
{
    if (!s) return;
    sqlite3_finalize(s->insert);
    sqlite3_close(s->db);
    free(s);
}

/* "" is stored as NULL. */
static void bind_text(sqlite3_stmt *st, int i, const char *text, bool empty_is_null)
{
    if (!text || (empty_is_null && !*text)) sqlite3_bind_null(st, i);
    else sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

static void bind_row(sqlite3_stmt *st, const pol_ledger_row *r, bool with_texts)
{
    int i = 1;
    bind_text(st, i++, r->request_id, false);
    sqlite3_bind_int64(st, i++, r->ts_ms);
    bind_text(st, i++, r->tenant, true);
    bind_text(st, i++, r->key_id, true);
    bind_text(st, i++, r->model, false);
    bind_text(st, i++, r->route, false);
    bind_text(st, i++, r->zone, false);
    bind_text(st, i++, r->reason, false);
    bind_text(st, i++, r->detectors, false);
    bind_text(st, i++, r->upstream_model, true);
    sqlite3_bind_int64(st, i++, r->prompt_tokens);
    sqlite3_bind_int64(st, i++, r->completion_tokens);
    sqlite3_bind_int64(st, i++, r->cached_tokens);
    sqlite3_bind_int(st, i++, r->tokens_estimated);
    sqlite3_bind_int64(st, i++, r->cost_micro_usd);
    sqlite3_bind_int64(st, i++, r->counterfactual_micro_usd);
    sqlite3_bind_int64(st, i++, r->latency_us);
    if (r->ttft_us >= 0) sqlite3_bind_int64(st, i++, r->ttft_us);
    else sqlite3_bind_null(st, i++);
    sqlite3_bind_int(st, i++, r->status);
    bind_text(st, i++, r->error_code, true);
    sqlite3_bind_int(st, i++, r->streamed);
    sqlite3_bind_int(st, i++, r->client_hung_up);
    bind_text(st, i++, with_texts ? r->prompt_redacted : NULL, false);
    bind_text(st, i++, with_texts ? r->answer_redacted : NULL, false);
}

int pol_store_append(pol_store *s, const pol_ledger_row *rows, size_t n, bool with_texts,
                     char *err, size_t errlen)
{
    if (exec(s, "BEGIN IMMEDIATE", "starting a batch", err, errlen) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        bind_row(s->insert, &rows[i], with_texts);
        int rc = sqlite3_step(s->insert);
        sqlite3_reset(s->insert);
        sqlite3_clear_bindings(s->insert);
        if (rc != SQLITE_DONE) {
            fail(s, s->db, "writing a batch", err, errlen);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    if (exec(s, "COMMIT", "committing a batch", err, errlen) == 0) return 0;
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int pol_store_delete_before(pol_store *s, int64_t before_ms, int limit, int *deleted,
                            char *err, size_t errlen)
{
    *deleted = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM requests WHERE id IN (SELECT id FROM requests "
                           "WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)", -1, &st, NULL) != SQLITE_OK) {
        fail(s, s->db, "preparing the retention delete", err, errlen);
        return -1;
    }
    sqlite3_bind_int64(st, 1, before_ms);
    sqlite3_bind_int(st, 2, limit);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) *deleted = sqlite3_changes(s->db);
    else fail(s, s->db, "deleting old rows", err, errlen);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- spend ---- */

/* The group key of each grouping, as an SQL expression over a row. */
static const char *const group_keys[] = {
    [POL_BY_NONE] = "''",
    [POL_BY_TENANT] = "COALESCE(tenant, '-')",
    [POL_BY_KEY] = "COALESCE(key_id, '-')",
    [POL_BY_ROUTE] = "route",
    [POL_BY_MODEL] = "model",
    [POL_BY_DAY] = "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')",
    [POL_BY_HOUR] = "strftime('%Y-%m-%dT%H:00Z', ts_ms / 1000, 'unixepoch')",
};

static int prepare_range(pol_store *s, const char *fmt, const pol_spend_query *q, pol_group_by by,
                         sqlite3_stmt **st, char *err, size_t errlen)
{
    char sql[768];
    snprintf(sql, sizeof(sql), fmt, group_keys[by]);
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        fail(s, s->db, "preparing the spend query", err, errlen);
        return -1;
    }
    sqlite3_bind_int64(*st, 1, q->since_ms);
    sqlite3_bind_int64(*st, 2, q->until_ms);
    return 0;
}

/* 1-based nearest rank of percentile p among n values. */
static int64_t rank_of(int p, int64_t n)
{
    return (p * n + 99) / 100;
}

/* Walk one value sorted within each group (the groups in the same key
 * order) and pick each group's p50 and p95. */
static int percentiles(pol_store *s, const char *fmt, const pol_spend_query *q, pol_group_by by,
                       pol_store_group *g, size_t n, bool ttft, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (prepare_range(s, fmt, q, by, &st, err, errlen) != 0) return -1;
    size_t gi = 0;
    int64_t pos = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        if (!key) key = "";
        if (strcmp(key, g[gi].key) != 0) {
            while (gi + 1 < n && strcmp(key, g[gi].key) != 0) gi++;
            pos = 0;
        }
        int64_t count = ttft ? g[gi].ttft_count : g[gi].requests;
        int64_t value = sqlite3_column_int64(st, 1);
        pos++;
        if (pos == rank_of(50, count)) *(ttft ? &g[gi].p50_ttft_us : &g[gi].p50_latency_us) = value;
        if (pos == rank_of(95, count)) *(ttft ? &g[gi].p95_ttft_us : &g[gi].p95_latency_us) = value;
    }
    if (rc != SQLITE_DONE) fail(s, s->db, "reading latencies", err, errlen);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int groups_of(pol_store *s, const pol_spend_query *q, pol_group_by by, pol_store_group **out,
                     size_t *n_out, char *err, size_t errlen)
{
    static const char sums[] =
        "SELECT k, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens),"
        " SUM(cost_micro_usd), SUM(counterfactual_micro_usd), SUM(status >= 400),"
        " SUM(route = 'local'), COUNT(ttft_us)"
        " FROM (SELECT %s AS k, * FROM requests WHERE ts_ms >= ?1 AND ts_ms < ?2)"
        " GROUP BY k ORDER BY k";
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *st;
    if (prepare_range(s, sums, q, by, &st, err, errlen) != 0) return -1;
    pol_store_group *g = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            pol_store_group *bigger = realloc(g, cap * sizeof(*g));
            if (!bigger) {
                rc = SQLITE_NOMEM;
                break;
            }
            g = bigger;
        }
        pol_store_group *x = &g[n++];
        memset(x, 0, sizeof(*x));
        const char *key = (const char *)sqlite3_column_text(st, 0);
        snprintf(x->key, sizeof(x->key), "%s", key ? key : "");
        int64_t *fields[] = {&x->requests, &x->prompt_tokens, &x->completion_tokens, &x->cached_tokens,
                             &x->cost_micro_usd, &x->counterfactual_micro_usd, &x->errors,
                             &x->local_requests, &x->ttft_count};
        for (int c = 0; c < 9; c++) *fields[c] = sqlite3_column_int64(st, c + 1);
        x->p50_latency_us = x->p95_latency_us = x->p50_ttft_us = x->p95_ttft_us = -1;
    }
    if (rc == SQLITE_NOMEM) snprintf(err, errlen, "ledger %s: out of memory for the report's groups", s->path);
    else if (rc != SQLITE_DONE) fail(s, s->db, "summing spend", err, errlen);
    sqlite3_finalize(st);
    bool ok = rc == SQLITE_DONE;
    if (ok && n > 0)
        ok = percentiles(s, "SELECT %s AS k, latency_us FROM requests WHERE ts_ms >= ?1 AND ts_ms < ?2"
                         " ORDER BY k, latency_us", q, by, g, n, false, err, errlen) == 0 &&
             percentiles(s, "SELECT %s AS k, ttft_us FROM requests WHERE ts_ms >= ?1 AND ts_ms < ?2"
                         " AND ttft_us IS NOT NULL ORDER BY k, ttft_us", q, by, g, n, true, err, errlen) == 0;
    if (!ok) {
        free(g);
        return -1;
    }
    *out = g;
    *n_out = n;
    return 0;
}

int pol_store_spend(pol_store *s, const pol_spend_query *q, pol_store_group **groups, size_t *n,
                    pol_store_group *total, char *err, size_t errlen)
{
    *groups = NULL;
    *n = 0;
    pol_store_group *all;
    size_t n_all;
    if (groups_of(s, q, POL_BY_NONE, &all, &n_all, err, errlen) != 0) return -1;
    memset(total, 0, sizeof(*total));
    total->p50_latency_us = total->p95_latency_us = total->p50_ttft_us = total->p95_ttft_us = -1;
    if (n_all == 1) *total = all[0];
    free(all);
    snprintf(total->key, sizeof(total->key), "total");
    if (q->by == POL_BY_NONE) return 0;
    return groups_of(s, q, q->by, groups, n, err, errlen);
}

/* ---- pages ---- */

static void column_str(sqlite3_stmt *st, int c, char *dst, size_t len)
{
    const char *t = (const char *)sqlite3_column_text(st, c);
    snprintf(dst, len, "%s", t ? t : "");
}

static char *column_dup(sqlite3_stmt *st, int c)
{
    const char *t = (const char *)sqlite3_column_text(st, c);
    return t ? strdup(t) : NULL;
}

static void read_row(sqlite3_stmt *st, pol_store_row *out)
{
    pol_ledger_row *r = &out->row;
    memset(out, 0, sizeof(*out));
    int c = 0;
    out->seq = sqlite3_column_int64(st, c++);
    column_str(st, c++, r->request_id, sizeof(r->request_id));
    r->ts_ms = sqlite3_column_int64(st, c++);
    column_str(st, c++, r->tenant, sizeof(r->tenant));
    column_str(st, c++, r->key_id, sizeof(r->key_id));
    column_str(st, c++, r->model, sizeof(r->model));
    column_str(st, c++, r->route, sizeof(r->route));
    column_str(st, c++, r->zone, sizeof(r->zone));
    column_str(st, c++, r->reason, sizeof(r->reason));
    column_str(st, c++, r->detectors, sizeof(r->detectors));
    column_str(st, c++, r->upstream_model, sizeof(r->upstream_model));
    r->prompt_tokens = sqlite3_column_int64(st, c++);
    r->completion_tokens = sqlite3_column_int64(st, c++);
    r->cached_tokens = sqlite3_column_int64(st, c++);
    r->tokens_estimated = sqlite3_column_int(st, c++) != 0;
    r->cost_micro_usd = sqlite3_column_int64(st, c++);
    r->counterfactual_micro_usd = sqlite3_column_int64(st, c++);
    r->latency_us = sqlite3_column_int64(st, c++);
    r->ttft_us = sqlite3_column_type(st, c) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, c);
    c++;
    r->status = sqlite3_column_int(st, c++);
    column_str(st, c++, r->error_code, sizeof(r->error_code));
    r->streamed = sqlite3_column_int(st, c++) != 0;
    r->client_hung_up = sqlite3_column_int(st, c++) != 0;
    r->prompt_redacted = column_dup(st, c++);
    r->answer_redacted = column_dup(st, c++);
}

int pol_store_page(pol_store *s, const pol_requests_query *q, bool has_cursor, int64_t before_ts,
                   int64_t before_seq, pol_store_row **rows, size_t *n, bool *more,
                   char *err, size_t errlen)
{
    *rows = NULL;
    *n = 0;
    *more = false;
    /* Only the filters given, so that SQLite walks the index that serves
     * them, (tenant, ts_ms) or (route, ts_ms), else (ts_ms), from the newest
     * entry down: each index ends with the rowid, so rows come in page order
     * and a page reads about `limit` rows however large the ledger. */
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT id, " ROW_COLUMNS " FROM requests WHERE ts_ms >= ?1%s%s%s"
             " ORDER BY ts_ms DESC, id DESC LIMIT ?7", q->tenant[0] ? " AND tenant = ?2" : "",
             q->route[0] ? " AND route = ?3" : "", has_cursor ? " AND (ts_ms, id) < (?5, ?6)" : "");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail(s, s->db, "preparing the requests query", err, errlen);
        return -1;
    }
    sqlite3_bind_int64(st, 1, q->since_ms);
    sqlite3_bind_text(st, 2, q->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, q->route, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, before_ts);
    sqlite3_bind_int64(st, 6, before_seq);
    sqlite3_bind_int(st, 7, q->limit + 1);
    pol_store_row *out = calloc((size_t)q->limit, sizeof(*out));
    if (!out) {
        sqlite3_finalize(st);
        snprintf(err, errlen, "ledger %s: out of memory for %d rows", s->path, q->limit);
        return -1;
    }
    size_t got = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (got == (size_t)q->limit) {
            *more = true;
            rc = SQLITE_DONE;
            break;
        }
        read_row(st, &out[got++]);
    }
    if (rc != SQLITE_DONE) fail(s, s->db, "reading requests", err, errlen);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        pol_store_page_free(out, got);
        return -1;
    }
    *rows = out;
    *n = got;
    return 0;
}

void pol_store_page_free(pol_store_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)rows[i].row.prompt_redacted);
        free((char *)rows[i].row.answer_redacted);
    }
    free(rows);
}

int pol_store_vacuum(pol_store *s, char *err, size_t errlen)
{
    if (exec(s, "VACUUM", "vacuuming", err, errlen) != 0) return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        fail(s, s->db, "checking integrity", err, errlen);
        return -1;
    }
    int rc = sqlite3_step(st);
    const char *verdict = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ok = verdict && strcmp(verdict, "ok") == 0;
    if (rc != SQLITE_ROW) fail(s, s->db, "checking integrity", err, errlen);
    else if (!ok)
        snprintf(err, errlen, "ledger %s: integrity check: %s; restore a backup (docs/ledger.md)",
                 s->path, verdict ? verdict : "?");
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}
