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
#define POL_STORE_SCHEMA_VERSION 2

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

#endif
