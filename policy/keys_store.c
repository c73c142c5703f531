/* keys_store.c: the keys and tenants tables of the ledger file, in SQLite.
 *
 * Kept apart from ledger_sqlite.c (the request rows) because it has another
 * job and other users: `junction keys` writes here, the daemon reads a
 * snapshot every time the keys counter moves. The schema itself (version 3)
 * is created and migrated by pol_store_open, which each open calls first.
 * Every change bumps meta.keys_version in its own transaction, so a reader
 * learns of it with one indexed read, and only after SQLite's data_version
 * (free to read) says that someone wrote at all.
 */
#include "ledger_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct pol_keydb {
    sqlite3 *db;
    char path[POL_LEDGER_PATH_MAX];
};

static void fail(const pol_keydb *k, const char *doing, char *err, size_t errlen)
{
    int code = sqlite3_errcode(k->db) & 0xff;
    const char *advice = code == SQLITE_BUSY || code == SQLITE_LOCKED
        ? "another connection holds the write lock; try again"
        : code == SQLITE_READONLY || code == SQLITE_PERM ? "check the file's permissions"
        : "see docs/ledger.md";
    snprintf(err, errlen, "ledger %s: %s: %s; %s", k->path, doing, sqlite3_errmsg(k->db), advice);
}

int pol_keydb_open(pol_keydb **out, const char *path, bool writable, char *err, size_t errlen)
{
    *out = NULL;
    pol_store *schema;
    if (pol_store_open(&schema, path, writable ? POL_STORE_WRITE : POL_STORE_READ, NULL, NULL,
                       err, errlen) != 0)
        return -1;
    pol_store_close(schema);
    pol_keydb *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "ledger %s: out of memory", path);
        return -1;
    }
    snprintf(k->path, sizeof(k->path), "%s", path);
    int flags = writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path, &k->db, flags, NULL) != SQLITE_OK) {
        fail(k, "opening", err, errlen);
        pol_keydb_close(k);
        return -1;
    }
    sqlite3_extended_result_codes(k->db, 1);
    sqlite3_busy_timeout(k->db, 2000);
    *out = k;
    return 0;
}

void pol_keydb_close(pol_keydb *k)
{
    if (!k) return;
    sqlite3_close(k->db);
    free(k);
}

static int prepare(pol_keydb *k, const char *sql, sqlite3_stmt **st, const char *doing,
                   char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(k->db, sql, -1, st, NULL) == SQLITE_OK) return 0;
    fail(k, doing, err, errlen);
    return -1;
}

/* One integer from a one-row query. */
static int query_int(pol_keydb *k, const char *sql, int64_t *out, const char *doing,
                     char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (prepare(k, sql, &st, doing, err, errlen) != 0) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    else fail(k, doing, err, errlen);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int pol_keydb_data_version(pol_keydb *k, int64_t *out, char *err, size_t errlen)
{
    return query_int(k, "PRAGMA data_version", out, "reading the data version", err, errlen);
}

int pol_keydb_keys_version(pol_keydb *k, int64_t *out, char *err, size_t errlen)
{
    return query_int(k, "SELECT value FROM meta WHERE name = 'keys_version'", out,
                     "reading the keys version", err, errlen);
}

int pol_keydb_pepper(pol_keydb *k, unsigned char pepper[POL_PEPPER_LEN], char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (prepare(k, "SELECT value FROM meta WHERE name = 'pepper'", &st, "reading the pepper",
                err, errlen) != 0)
        return -1;
    int rc = sqlite3_step(st);
    const void *blob = rc == SQLITE_ROW ? sqlite3_column_blob(st, 0) : NULL;
    bool ok = blob && sqlite3_column_bytes(st, 0) == POL_PEPPER_LEN;
    if (ok) memcpy(pepper, blob, POL_PEPPER_LEN);
    else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        snprintf(err, errlen, "ledger %s: the keys' pepper is missing or damaged; restore the file "
                 "from a backup (without it no key can be checked)", k->path);
    else fail(k, "reading the pepper", err, errlen);
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

static void column_str(sqlite3_stmt *st, int c, char *dst, size_t len)
{
    const char *t = (const char *)sqlite3_column_text(st, c);
    snprintf(dst, len, "%s", t ? t : "");
}

/* Grow *arr (of `size`-byte items) to hold n + 1. */
static bool grow(void **arr, size_t size, size_t n, size_t *cap)
{
    if (n < *cap) return true;
    size_t want = *cap ? *cap * 2 : 16;
    void *bigger = realloc(*arr, want * size);
    if (!bigger) return false;
    *arr = bigger;
    *cap = want;
    return true;
}

/* Fills row i (zeroed) from the statement's current row; false: out of memory. */
typedef bool (*row_reader)(sqlite3_stmt *st, void *row, size_t i, void *ctx);

/* Every row of the prepared (and bound) SELECT `st` into a heap array of
 * `size`-byte items, through `read`; finalizes st. On failure *rows is NULL
 * and err says what `doing` met. */
static int read_rows(pol_keydb *k, sqlite3_stmt *st, size_t size, row_reader read, void *ctx,
                     void **rows, size_t *n, const char *doing, char *err, size_t errlen)
{
    void *out = NULL;
    size_t count = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!grow(&out, size, count, &cap)) {
            rc = SQLITE_NOMEM;
            break;
        }
        void *row = (char *)out + count * size;
        memset(row, 0, size);
        if (!read(st, row, count, ctx)) {
            rc = SQLITE_NOMEM;
            break;
        }
        count++;
    }
    if (rc == SQLITE_NOMEM) snprintf(err, errlen, "ledger %s: out of memory %s", k->path, doing);
    else if (rc != SQLITE_DONE) fail(k, doing, err, errlen);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(out);
        out = NULL;
        count = 0;
    }
    *rows = out;
    *n = count;
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The keys' hashes, beside the keys (column 12). */
typedef struct {
    unsigned char (*hashes)[POL_KEY_HASH_LEN];
    size_t cap;
} key_hashes;

static bool read_key(sqlite3_stmt *st, void *row, size_t i, void *ctx)
{
    pol_key *out = row;
    int c = 0;
    column_str(st, c++, out->id, sizeof(out->id));
    column_str(st, c++, out->tenant, sizeof(out->tenant));
    column_str(st, c++, out->name, sizeof(out->name));
    column_str(st, c++, out->routes, sizeof(out->routes));
    int64_t *ints[] = {&out->rpm, &out->tpm, &out->budget_daily_micro, &out->budget_monthly_micro};
    for (size_t j = 0; j < sizeof(ints) / sizeof(ints[0]); j++) *ints[j] = sqlite3_column_int64(st, c++);
    out->admin = sqlite3_column_int(st, c++) != 0;
    out->created_ms = sqlite3_column_int64(st, c++);
    out->revoked_ms = sqlite3_column_int64(st, c++);   /* NULL reads as 0: never */
    out->rotated_ms = sqlite3_column_int64(st, c++);
    key_hashes *h = ctx;
    if (!grow((void **)&h->hashes, sizeof(*h->hashes), i, &h->cap)) return false;
    memset(h->hashes[i], 0, POL_KEY_HASH_LEN);
    if (sqlite3_column_bytes(st, c) == POL_KEY_HASH_LEN)
        memcpy(h->hashes[i], sqlite3_column_blob(st, c), POL_KEY_HASH_LEN);
    return true;
}

int pol_keydb_keys(pol_keydb *k, bool active_only, pol_key **keys,
                   unsigned char (**hashes)[POL_KEY_HASH_LEN], size_t *n, char *err, size_t errlen)
{
    *keys = NULL;
    if (hashes) *hashes = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (prepare(k, "SELECT id, tenant, name, routes, rpm, tpm, budget_daily_micro,"
                " budget_monthly_micro, admin, created_ms, revoked_ms, rotated_ms, hash FROM keys"
                " WHERE ?1 = 0 OR revoked_ms IS NULL ORDER BY created_ms, id", &st, "reading the keys",
                err, errlen) != 0)
        return -1;
    sqlite3_bind_int(st, 1, active_only);
    key_hashes h = {NULL, 0};
    void *rows;
    if (read_rows(k, st, sizeof(pol_key), read_key, &h, &rows, n, "reading the keys", err, errlen) != 0) {
        free(h.hashes);
        return -1;
    }
    *keys = rows;
    if (hashes) *hashes = h.hashes;
    else free(h.hashes);
    return 0;
}

static bool read_tenant(sqlite3_stmt *st, void *row, size_t i, void *ctx)
{
    (void)i, (void)ctx;
    pol_tenant *t = row;
    column_str(st, 0, t->name, sizeof(t->name));
    t->budget_daily_micro = sqlite3_column_int64(st, 1);
    t->budget_monthly_micro = sqlite3_column_int64(st, 2);
    t->created_ms = sqlite3_column_int64(st, 3);
    return true;
}

int pol_keydb_tenants(pol_keydb *k, pol_tenant **tenants, size_t *n, char *err, size_t errlen)
{
    *tenants = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (prepare(k, "SELECT name, budget_daily_micro, budget_monthly_micro, created_ms FROM tenants"
                " ORDER BY name", &st, "reading the tenants", err, errlen) != 0)
        return -1;
    void *rows;
    int rc = read_rows(k, st, sizeof(pol_tenant), read_tenant, NULL, &rows, n, "reading the tenants",
                       err, errlen);
    *tenants = rows;
    return rc;
}

/* ---- changes: each one transaction that also bumps keys_version ---- */

static int begin(pol_keydb *k, char *err, size_t errlen)
{
    if (sqlite3_exec(k->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) return 0;
    fail(k, "starting a change", err, errlen);
    return -1;
}

/* Bump the counter and commit, or roll back (ok false, or a failure). */
static int finish(pol_keydb *k, bool ok, char *err, size_t errlen)
{
    if (ok && sqlite3_exec(k->db, "UPDATE meta SET value = value + 1 WHERE name = 'keys_version';"
                           "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    if (ok) fail(k, "committing the change", err, errlen);
    sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Run one prepared change; the number of rows it changed into *changes. */
static bool step_change(pol_keydb *k, sqlite3_stmt *st, int *changes, const char *doing,
                        char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        fail(k, doing, err, errlen);
        return false;
    }
    if (changes) *changes = sqlite3_changes(k->db);
    return true;
}

static bool tenant_upsert(pol_keydb *k, const char *name, int64_t daily, int64_t monthly, int64_t now_ms,
                          char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (prepare(k, "INSERT INTO tenants (name, budget_daily_micro, budget_monthly_micro, created_ms)"
                " VALUES (?1, max(?2, 0), max(?3, 0), ?4) ON CONFLICT (name) DO UPDATE SET"
                " budget_daily_micro = CASE WHEN ?2 < 0 THEN budget_daily_micro ELSE ?2 END,"
                " budget_monthly_micro = CASE WHEN ?3 < 0 THEN budget_monthly_micro ELSE ?3 END",
                &st, "writing the tenant", err, errlen) != 0)
        return false;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, daily);
    sqlite3_bind_int64(st, 3, monthly);
    sqlite3_bind_int64(st, 4, now_ms);
    bool ok = step_change(k, st, NULL, "writing the tenant", err, errlen);
    sqlite3_finalize(st);
    return ok;
}

int pol_keydb_tenant_set(pol_keydb *k, const char *name, int64_t daily_micro, int64_t monthly_micro,
                         int64_t now_ms, char *err, size_t errlen)
{
    if (begin(k, err, errlen) != 0) return -1;
    return finish(k, tenant_upsert(k, name, daily_micro, monthly_micro, now_ms, err, errlen), err, errlen);
}

int pol_keydb_key_insert(pol_keydb *k, const pol_key *key, const unsigned char hash[POL_KEY_HASH_LEN],
                         bool *duplicate_id, char *err, size_t errlen)
{
    *duplicate_id = false;
    if (begin(k, err, errlen) != 0) return -1;
    bool ok = tenant_upsert(k, key->tenant, -1, -1, key->created_ms, err, errlen);
    sqlite3_stmt *st = NULL;
    if (ok && prepare(k, "INSERT INTO keys (id, tenant, name, hash, routes, rpm, tpm,"
                      " budget_daily_micro, budget_monthly_micro, admin, created_ms)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                      " ON CONFLICT (id) DO NOTHING", &st, "writing the key", err, errlen) != 0)
        ok = false;
    if (ok) {
        int i = 1;
        sqlite3_bind_text(st, i++, key->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, key->tenant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, key->name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, i++, hash, POL_KEY_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, key->routes, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, i++, key->rpm);
        sqlite3_bind_int64(st, i++, key->tpm);
        sqlite3_bind_int64(st, i++, key->budget_daily_micro);
        sqlite3_bind_int64(st, i++, key->budget_monthly_micro);
        sqlite3_bind_int(st, i++, key->admin);
        sqlite3_bind_int64(st, i++, key->created_ms);
        int changes = 0;
        ok = step_change(k, st, &changes, "writing the key", err, errlen);
        if (ok && changes == 0) {
            *duplicate_id = true;
            ok = false;
            snprintf(err, errlen, "ledger %s: key id %s is taken", k->path, key->id);
        }
    }
    sqlite3_finalize(st);
    return finish(k, ok, err, errlen);
}

/* UPDATE keys SET <set> WHERE id = ?1 AND revoked_ms IS NULL, with ?2 = now, ?3 = hash. */
static int key_update(pol_keydb *k, const char *sql, const char *id, int64_t now_ms,
                      const unsigned char *hash, bool *found, char *err, size_t errlen)
{
    *found = false;
    if (begin(k, err, errlen) != 0) return -1;
    sqlite3_stmt *st;
    bool ok = prepare(k, sql, &st, "changing the key", err, errlen) == 0;
    if (ok) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        if (hash) sqlite3_bind_blob(st, 3, hash, POL_KEY_HASH_LEN, SQLITE_STATIC);
        int changes = 0;
        ok = step_change(k, st, &changes, "changing the key", err, errlen);
        *found = changes == 1;
        sqlite3_finalize(st);
    }
    if (ok && !*found) {
        sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
        return 0;
    }
    return finish(k, ok, err, errlen);
}

int pol_keydb_key_rehash(pol_keydb *k, const char *id, const unsigned char hash[POL_KEY_HASH_LEN],
                         int64_t now_ms, bool *found, char *err, size_t errlen)
{
    return key_update(k, "UPDATE keys SET hash = ?3, rotated_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                      id, now_ms, hash, found, err, errlen);
}

int pol_keydb_key_revoke(pol_keydb *k, const char *id, int64_t now_ms, bool *found, char *err, size_t errlen)
{
    return key_update(k, "UPDATE keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                      id, now_ms, NULL, found, err, errlen);
}

static bool read_spend(sqlite3_stmt *st, void *row, size_t i, void *ctx)
{
    (void)i, (void)ctx;
    pol_keydb_spend_row *r = row;
    column_str(st, 0, r->key_id, sizeof(r->key_id));
    column_str(st, 1, r->tenant, sizeof(r->tenant));
    r->cost_micro = sqlite3_column_int64(st, 2);
    return true;
}

int pol_keydb_spend(pol_keydb *k, int64_t since_ms, pol_keydb_spend_row **rows, size_t *n,
                    char *err, size_t errlen)
{
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (prepare(k, "SELECT COALESCE(key_id, ''), COALESCE(tenant, ''), SUM(cost_micro_usd)"
                " FROM requests WHERE ts_ms >= ?1 GROUP BY 1, 2", &st, "summing spend", err, errlen) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, since_ms);
    void *out;
    int rc = read_rows(k, st, sizeof(pol_keydb_spend_row), read_spend, NULL, &out, n, "summing spend",
                       err, errlen);
    *rows = out;
    return rc;
}
