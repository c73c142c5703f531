/* policy.h: what a request may cost and where it is written down.
 *
 * The one public header of the policy module. This part holds the prices
 * (integer micro-dollars, never floating point once configured) and the
 * ledger: one row per request that reached a handler, written by one writer
 * thread in batched transactions so that the event loop never waits on the
 * database, and read back as spend reports and request pages (the same JSON
 * for `junction audit` and the admin endpoints). Routing rules, keys and
 * budgets join this header with their issues.
 *
 * Ownership: whoever calls an _open function frees with the matching
 * _free or _close. Functions that can fail return 0 on success and -1 on
 * failure, with a message for the user in the caller's `err` buffer.
 * Storage details stay inside policy/: callers see no SQLite type.
 */
#ifndef JUNCTION_POLICY_H
#define JUNCTION_POLICY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Prices ---------------------------------------------------------------
 * Every price is an integer number of micro-dollars per million units, the
 * unit being a token or a millisecond of engine time. A row's cost is
 *   round_half_up((prompt × input + completion × output + engine_ms × engine) / 10^6)
 * micro-dollars: one rounding per row, exact integer arithmetic. */

typedef struct {
    int64_t input_per_mtok;      /* micro-USD per million prompt tokens */
    int64_t output_per_mtok;     /* micro-USD per million completion tokens */
    int64_t engine_per_mms;      /* micro-USD per million engine-milliseconds */
} pol_price;

/* The price from the configuration's units: USD per million tokens (as the
 * providers publish them, 0 to 10^6) and USD per engine-second (0 to 1000),
 * finite; rounded to the nearest micro-dollar per million units. */
int pol_price_from_usd(pol_price *p, double usd_per_mtok_in, double usd_per_mtok_out,
                       double usd_per_engine_second, char *err, size_t errlen);

/* Cost of one request in micro-dollars into *out_micro_usd. Counts must be
 * >= 0 and at most 10^12 (a trillion tokens, or 31 years of engine time),
 * each price 0 to 10^12 (what pol_price_from_usd makes); -1 otherwise
 * (nothing written). Never overflows. */
int pol_cost_micro(const pol_price *p, int64_t prompt_tokens, int64_t completion_tokens,
                   int64_t engine_ms, int64_t *out_micro_usd, char *err, size_t errlen);

/* The counterfactual reference among n routes: the one named `configured`
 * (when not NULL or ""), else the most expensive external one (highest
 * input + output price; the first on a tie). Returns its index, or -1 with a
 * message when `configured` names none of them or no route is external. */
int pol_price_reference(const char *const *names, const pol_price *prices, const bool *external,
                        int n, const char *configured, char *err, size_t errlen);

/* ---- Time ------------------------------------------------------------------ */

/* Unix milliseconds now (CLOCK_REALTIME). */
int64_t pol_now_ms(void);

/* A point in time as `--since`/`--until` take it: a duration back from
 * `now_ms` ("30m", "24h", "7d", "90s", "2w"), an ISO date ("2026-12-01",
 * midnight UTC) or an ISO datetime in UTC ("2026-12-01T10:00",
 * "2026-12-01T10:00:00", an optional trailing "Z", or a space for the "T"). */
int pol_time_parse(const char *text, int64_t now_ms, int64_t *out_ms, char *err, size_t errlen);

/* ---- The ledger ------------------------------------------------------------ */

#define POL_LEDGER_PATH_MAX 4096

typedef enum { POL_LOG_ERROR, POL_LOG_WARN, POL_LOG_INFO } pol_log_level;
/* Where the writer thread logs (called on that thread). */
typedef void (*pol_log_fn)(void *ctx, pol_log_level level, const char *msg);

typedef struct {
    char path[POL_LEDGER_PATH_MAX]; /* database file; "off" disables the ledger */
    int flush_ms;                   /* a batch is committed at least this often (1..60000) */
    int batch_rows;                 /* ... or as soon as this many rows wait (1..100000) */
    int queue_rows;                 /* rows that may wait; more are dropped and counted (1..10^6) */
    int retention_days;             /* rows older are deleted; 0 keeps everything (0..36500) */
    int retention_batch_rows;       /* rows deleted per writer tick (1..10^6) */
    bool store_prompts;             /* keep the rows' redacted prompt/answer texts */
    char reference_upstream[64];    /* counterfactual route; "" = the most expensive external one */
    char open_sql[256];             /* SQL run on the writer's connection after each open
                                       (pragmas, e.g. "PRAGMA max_page_count=..."); "" = none */
    pol_log_fn log;                 /* NULL: lines on stderr */
    void *log_ctx;
} pol_ledger_config;

/* Defaults: path ${XDG_STATE_HOME:-$HOME/.local/state}/junction/ledger.db
 * (XDG_STATE_HOME only when absolute; "off" when neither variable is set), flush_ms 200, batch_rows 256,
 * queue_rows 4096, retention_days 0, retention_batch_rows 1000, store_prompts
 * off, reference_upstream "", open_sql "". */
void pol_ledger_config_defaults(pol_ledger_config *cfg);

/* Check the ranges above; -1 with a message naming the field. */
int pol_ledger_config_check(const pol_ledger_config *cfg, char *err, size_t errlen);

/* One request, as handed to the writer. Strings are fixed arrays ("" = not
 * known; tenant, key_id, upstream_model and error_code are stored as NULL
 * then), so a row is copied by value. Money in micro-dollars. */
typedef struct {
    char request_id[64];
    int64_t ts_ms;                  /* when the request arrived, Unix ms */
    char tenant[64];
    char key_id[64];
    char model[128];                /* the model the client asked for */
    char route[64];                 /* "local" or the upstream's name */
    char zone[16];                  /* "in-process", "private" or "external" */
    char reason[256];               /* the decision: rule and scores, or "explicit model" */
    char detectors[128];            /* kinds found, comma-separated ("" = none) */
    char upstream_model[128];
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    bool tokens_estimated;          /* counted from text: the route reported none */
    int64_t cost_micro_usd;
    int64_t counterfactual_micro_usd;
    int64_t latency_us;             /* arrival to the last byte sent */
    int64_t ttft_us;                /* to the first content byte; -1 = none (not streamed or no byte) */
    int status;                     /* HTTP status sent */
    char error_code[64];
    bool streamed;
    bool client_hung_up;
    /* With store_prompts: the texts with every detector finding replaced by
     * its kind. Borrowed by pol_ledger_append (which copies them); NULL = none. */
    const char *prompt_redacted;
    const char *answer_redacted;
} pol_ledger_row;

typedef struct pol_ledger pol_ledger;

/* Open (creating and migrating as needed) the database at cfg->path and
 * start the writer thread. cfg is copied. A database whose schema is newer
 * than this build knows, or an invalid config, is an error. Faults that may
 * pass (disk full, read-only or locked file, corruption) are not: the ledger
 * starts degraded and the writer retries every flush interval. Path "off":
 * returns 0 with *out = NULL; every function below accepts a NULL ledger. */
int pol_ledger_open(pol_ledger **out, const pol_ledger_config *cfg, char *err, size_t errlen);

/* Queue a copy of `row`; never waits on the database. Returns false when the
 * queue is full: the row is dropped and counted. Any thread. (A NULL ledger,
 * path "off": true, nothing recorded.) */
bool pol_ledger_append(pol_ledger *l, const pol_ledger_row *row);

/* Wait until every row appended before the call is committed, or
 * `timeout_ms` passes (then -1, saying how many rows are still pending and
 * why). For the drain on SIGTERM. Not on the event loop. */
int pol_ledger_flush_wait(pol_ledger *l, int timeout_ms, char *err, size_t errlen);

typedef struct {
    uint64_t appended;              /* rows accepted into the queue */
    uint64_t pending;               /* accepted, not yet committed */
    uint64_t written;               /* rows committed */
    uint64_t dropped;               /* refused (queue full) or abandoned at close */
    uint64_t write_errors;          /* failed commit attempts */
    uint64_t deleted;               /* removed by retention */
    bool degraded;                  /* the last attempt to open or write failed */
    char last_error[256];           /* why ("" when never) */
} pol_ledger_stats;

/* A snapshot, for /readyz and /metrics. Any thread. */
void pol_ledger_get_stats(pol_ledger *l, pol_ledger_stats *out);

/* Commit what is queued (one attempt if the database is failing: rows it
 * cannot write are counted as dropped and logged), stop the writer, close. */
void pol_ledger_free(pol_ledger *l);

/* ---- Reading: spend reports and request pages -----------------------------
 * A reader opens its own read-only connection (it never blocks the writer,
 * and works while the daemon runs). Queries take milliseconds to seconds:
 * run them off the event loop. */

typedef struct pol_audit pol_audit;

/* Refuses a file that does not exist, is not a ledger, or has a newer schema. */
int pol_audit_open(pol_audit **out, const char *path, char *err, size_t errlen);
void pol_audit_close(pol_audit *a);

typedef enum { POL_BY_NONE, POL_BY_TENANT, POL_BY_KEY, POL_BY_ROUTE, POL_BY_MODEL,
               POL_BY_DAY, POL_BY_HOUR } pol_group_by;

/* "tenant", "key", "route", "model", "day", "hour" (or "" / "none"). */
int pol_group_by_parse(const char *name, pol_group_by *out, char *err, size_t errlen);
const char *pol_group_by_name(pol_group_by by);

typedef struct {
    int64_t since_ms;               /* rows with since_ms <= ts_ms < until_ms */
    int64_t until_ms;
    pol_group_by by;
} pol_spend_query;

/* The spend report (docs/ledger.md):
 *   {"since": ISO|null, "until": ISO|null, "by": "route"|null,
 *    "total": {...}, "groups": [{"key": "...", ...}, ...]}
 * each of total and groups holding requests, prompt_tokens,
 * completion_tokens, cached_tokens, cost_usd, cost_micro_usd,
 * counterfactual_usd, counterfactual_micro_usd, savings_usd,
 * savings_micro_usd, errors, share, local_share, p50/p95_latency_ms,
 * p50/p95_ttft_ms. *out is the caller's (cJSON_Delete). */
int pol_audit_spend(pol_audit *a, const pol_spend_query *q, cJSON **out, char *err, size_t errlen);

typedef struct {
    int64_t since_ms;               /* 0 = from the start */
    char tenant[64];                /* "" = any */
    char route[64];                 /* "" = any */
    int limit;                      /* 1..1000 */
    char cursor[64];                /* "" = newest; else a next_cursor from a previous page */
} pol_requests_query;

/* One page of rows, newest first: {"data": [row, ...], "next_cursor": "..."|null}.
 * *out is the caller's (cJSON_Delete). */
int pol_audit_requests(pol_audit *a, const pol_requests_query *q, cJSON **out, char *err, size_t errlen);

typedef enum { POL_FORMAT_TABLE, POL_FORMAT_CSV, POL_FORMAT_JSON } pol_format;
int pol_format_parse(const char *name, pol_format *out, char *err, size_t errlen);

/* Write a spend report (from pol_audit_spend) as an aligned table, CSV, or
 * JSON text. Returns -1 when the stream fails. */
int pol_spend_render(const cJSON *report, pol_format format, FILE *out, char *err, size_t errlen);

/* Maintenance on a ledger file (safe while the daemon runs; the writer waits
 * out the lock): VACUUM, then PRAGMA integrity_check. */
int pol_audit_vacuum(const char *path, char *err, size_t errlen);

#endif
