/* ledger_store.h: the ledger's storage, behind the smallest interface that
 * serves it. Internal to policy/.
 *
 * ledger.c (the writer) and ledger_report.c (the readers) know only these
 * functions, so that a second backend (PostgreSQL, for several daemons
 * sharing one ledger) replaces one file. ledger_sqlite.c implements them.
 * A store is one connection, used by one thread at a time.
 */
#ifndef JUNCTION_LEDGER_STORE_H
#define JUNCTION_LEDGER_STORE_H

#include "policy.h"

typedef struct pol_store pol_store;

typedef enum {
    POL_STORE_WRITE,                /* create the file if needed, migrate the schema */
    POL_STORE_UPDATE,               /* an existing file, read-write, migrated (maintenance) */
    POL_STORE_READ                  /* an existing file, read-only; the schema must be current */
} pol_store_mode;

/* The schema version this build writes. */
#define POL_STORE_SCHEMA_VERSION 3

/* Open the ledger at `path`. In write mode `open_sql` (may be NULL or "")
 * runs after the schema is in place. A schema newer than
 * POL_STORE_SCHEMA_VERSION sets *too_new (when not NULL) and fails. */
int pol_store_open(pol_store **out, const char *path, pol_store_mode mode, const char *open_sql,
                   bool *too_new, char *err, size_t errlen);
void pol_store_close(pol_store *s);

/* Insert the n rows in one transaction: all or none. `with_texts` stores the
 * rows' redacted prompt/answer texts. */
int pol_store_append(pol_store *s, const pol_ledger_row *rows, size_t n, bool with_texts,
                     char *err, size_t errlen);

/* Delete at most `limit` rows with ts_ms < before_ms; the count goes to *deleted. */
int pol_store_delete_before(pol_store *s, int64_t before_ms, int limit, int *deleted,
                            char *err, size_t errlen);

/* One group of the spend report. */
typedef struct {
    char key[128];
    int64_t requests, prompt_tokens, completion_tokens, cached_tokens;
    int64_t cost_micro_usd, counterfactual_micro_usd;
    int64_t errors;                 /* status >= 400 */
    int64_t local_requests;         /* route "local" */
    int64_t ttft_count;             /* rows with a TTFT */
    int64_t p50_latency_us, p95_latency_us, p50_ttft_us, p95_ttft_us; /* -1: no value */
} pol_store_group;

/* The groups of q (sorted by key; *groups is heap, caller frees; none when
 * no row matches) and the total over all of them. Percentiles are nearest
 * rank: the value at 1-based rank ceil(p/100 × n) of the sorted values. */
int pol_store_spend(pol_store *s, const pol_spend_query *q, pol_store_group **groups, size_t *n,
                    pol_store_group *total, char *err, size_t errlen);

/* One stored row with the position a page continues from. */
typedef struct {
    pol_ledger_row row;             /* prompt_redacted/answer_redacted: heap, freed by pol_store_page_free */
    int64_t seq;                    /* storage order (unique) */
} pol_store_row;

/* Up to q->limit rows newest first (ts_ms, then seq, descending), starting
 * strictly after (before_ts, before_seq) when has_cursor. *rows is heap;
 * *more says whether older rows remain. */
int pol_store_page(pol_store *s, const pol_requests_query *q, bool has_cursor, int64_t before_ts,
                   int64_t before_seq, pol_store_row **rows, size_t *n, bool *more,
                   char *err, size_t errlen);
void pol_store_page_free(pol_store_row *rows, size_t n);

/* VACUUM, then the integrity check (its first complaint goes to err). */
int pol_store_vacuum(pol_store *s, char *err, size_t errlen);


/* ---- Keys and tenants (keys_store.c) ---------------------------------------
 * Their own connection on the same file; opening goes through
 * pol_store_open first, so the schema is created and migrated in one place. */

typedef struct pol_keydb pol_keydb;

#define POL_PEPPER_LEN 32
#define POL_KEY_HASH_LEN 32

/* writable: create/migrate the file (management); else read-only, current schema (daemon). */
int pol_keydb_open(pol_keydb **out, const char *path, bool writable, char *err, size_t errlen);
void pol_keydb_close(pol_keydb *db);

int pol_keydb_pepper(pol_keydb *db, unsigned char pepper[POL_PEPPER_LEN], char *err, size_t errlen);
/* SQLite's data_version (changes when another connection commits, no I/O)
 * and the keys counter every change below bumps. */
int pol_keydb_data_version(pol_keydb *db, int64_t *out, char *err, size_t errlen);
int pol_keydb_keys_version(pol_keydb *db, int64_t *out, char *err, size_t errlen);

/* Every key (active_only: those not revoked) oldest first, with its stored
 * hash; both arrays heap (free()). hashes may be NULL when not wanted. */
int pol_keydb_keys(pol_keydb *db, bool active_only, pol_key **keys,
                   unsigned char (**hashes)[POL_KEY_HASH_LEN], size_t *n, char *err, size_t errlen);
int pol_keydb_tenants(pol_keydb *db, pol_tenant **tenants, size_t *n, char *err, size_t errlen);

/* Insert k (its tenant created if new); *duplicate_id is set, nothing
 * written, when the id is taken (the caller draws another). */
int pol_keydb_key_insert(pol_keydb *db, const pol_key *k, const unsigned char hash[POL_KEY_HASH_LEN],
                         bool *duplicate_id, char *err, size_t errlen);
/* Set a key's hash (rotated_ms = now_ms) or revoke it; only a key that is
 * not revoked. *found = false when no such key is active. */
int pol_keydb_key_rehash(pol_keydb *db, const char *id, const unsigned char hash[POL_KEY_HASH_LEN],
                         int64_t now_ms, bool *found, char *err, size_t errlen);
int pol_keydb_key_revoke(pol_keydb *db, const char *id, int64_t now_ms, bool *found,
                         char *err, size_t errlen);
/* Create or update; a budget < 0 keeps the current value (0 when new). */
int pol_keydb_tenant_set(pol_keydb *db, const char *name, int64_t daily_micro, int64_t monthly_micro,
                         int64_t now_ms, char *err, size_t errlen);

/* Cost per (key_id, tenant) of the rows with ts_ms >= since_ms ("" for NULL). */
typedef struct {
    char key_id[64], tenant[64];
    int64_t cost_micro;
} pol_keydb_spend_row;
int pol_keydb_spend(pol_keydb *db, int64_t since_ms, pol_keydb_spend_row **rows, size_t *n,
                    char *err, size_t errlen);

#endif
