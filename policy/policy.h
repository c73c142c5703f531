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
    int queue_bytes;                /* memory for the rows that wait, packed (~200 bytes a row;
                                       4096..2^30); a row that finds no room is dropped and counted */
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
 * (XDG_STATE_HOME only when absolute; "off" when neither variable is set), flush_ms 200, batch_rows 1024,
 * queue_bytes 8 MiB, retention_days 0, retention_batch_rows 1000, store_prompts
 * off, reference_upstream "", open_sql "". */
void pol_ledger_config_defaults(pol_ledger_config *cfg);

/* Check the ranges above; -1 with a message naming the field. */
int pol_ledger_config_check(const pol_ledger_config *cfg, char *err, size_t errlen);

/* One request, as handed to the writer. Strings are fixed arrays ("" = not
 * known; tenant, key_id, upstream_model and error_code are stored as NULL
 * then), so a row is copied by value. Money in micro-dollars. */
typedef struct {
    char request_id[136];           /* the gateway takes client ids up to 128 characters */
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

/* ---- Pseudonymization ------------------------------------------------------
 * `on_sensitive: pseudonymize` (docs/policy.md): each finding of an allowed
 * kind is replaced by a placeholder "<KIND_N>" ("<EMAIL_1>", "<PERSON_2>"),
 * the request goes upstream, and the originals are put back into the answer,
 * streamed or whole. One pol_pseudo per request: every text given to it
 * (all the messages of the conversation) shares one numbering, so the same
 * value always gets the same placeholder; e-mails are compared ignoring
 * ASCII case (and restored as first written). N counts per kind from 1,
 * skipping numbers that the client's own text already uses in a
 * placeholder-like token (so such text round-trips unchanged). The policy module knows no detector: the caller
 * hands over findings as plain spans. Not thread-safe while applying;
 * restorers only read it and may run on any one thread each. */

#define POL_PSEUDO_MAX_KINDS 64        /* kinds an operator may allow */
#define POL_PSEUDO_MAX_VALUES 4096     /* distinct values per pol_pseudo */
#define POL_PSEUDO_MAX_RESERVED 4096   /* placeholder-like tokens in the client's texts */
#define POL_UNPSEUDO_HOLD_MAX 75       /* bytes a restorer may hold back: "[" + 63-byte kind + "_" + 9 digits + "]" */

typedef struct pol_pseudo pol_pseudo;

/* A finding: `kind` is the detector's kind name ("email", "person", "phone",
 * or an operator's custom kind), borrowed; bytes [start, end) of the text. */
typedef struct {
    const char *kind;
    size_t start, end;
} pol_span;

/* A new mapping that may pseudonymize the `n` kinds named (1..63 characters
 * of a-z, 0-9, _; at most POL_PSEUDO_MAX_KINDS; NULL with n = 0 allows none;
 * the names are copied). Secret kinds can never be allowed (private_key,
 * aws_access_key, aws_secret_key, github_token, gitlab_token, slack_token,
 * stripe_key, google_api_key, openai_key, anthropic_key, jwt, bearer_token,
 * connection_string, password, secret): naming one is an error, as is a
 * malformed name. Free with pol_pseudo_free. */
int pol_pseudo_new(pol_pseudo **out, const char *const *allowed_kinds, int n, char *err, size_t errlen);
void pol_pseudo_free(pol_pseudo *p);

/* True when findings of `kind` may be pseudonymized (else the request stays
 * in an allowed zone). Always false for the secret kinds and for NULL. */
bool pol_pseudo_allowed(const pol_pseudo *p, const char *kind);

/* Distinct values given placeholders so far. */
int pol_pseudo_values(const pol_pseudo *p);

/* Note the placeholder-like tokens of a text that will be sent (the forms
 * the restorer recognises: "<EMAIL_1>", "<email 1>", "[EMAIL_1]", "EMAIL_1"
 * for any allowed kind) so that no placeholder is issued with their
 * numbers. pol_pseudo_apply does this for its own text; a caller applying
 * several texts one by one reserves all of them first. -1 when a token
 * equals a placeholder already issued (the texts were not all reserved
 * before the first apply) or past POL_PSEUDO_MAX_RESERVED. */
int pol_pseudo_reserve(pol_pseudo *p, const char *text, size_t len, char *err, size_t errlen);

/* `text` (len bytes, any bytes) with each span replaced by its value's
 * placeholder, into *out (NUL-terminated, the caller's to free) and
 * *out_len. Spans are sorted by start, non-empty, non-overlapping, inside
 * the text, on UTF-8 character boundaries, of allowed kinds; anything else
 * is an error naming the span. -1 also past POL_PSEUDO_MAX_VALUES or on a
 * collision (see pol_pseudo_reserve); then *out is NULL and the request must
 * not be sent pseudonymized (p may hold part of the text's values: free it). */
int pol_pseudo_apply(pol_pseudo *p, const char *text, size_t len, const pol_span *spans, int n,
                     char **out, size_t *out_len, char *err, size_t errlen);

/* The spans found in one text of an OpenAI `messages` array. `text` is that
 * string's own pointer inside the cJSON (cls_message.text), which is how the
 * string is found. */
typedef struct {
    const char *text;
    const pol_span *spans;
    int n;
} pol_text_spans;

/* Pseudonymize a request's `messages` in place: every string under it is
 * reserved first, then each of the `n` texts (found by pointer, anywhere
 * under `messages`, each exactly once) is replaced by its pseudonymized
 * copy. All or nothing: on -1 `messages` is unchanged. On success the
 * texts' pointers are no longer valid (the strings were replaced). */
int pol_pseudo_apply_messages(pol_pseudo *p, cJSON *messages, const pol_text_spans *texts, int n,
                              char *err, size_t errlen);

/* ---- Restoring: the answer's placeholders back to the values --------------
 * Forms recognised in the answer, and what happens (docs/policy.md):
 *   "<EMAIL_1>" issued                     restored            (restored)
 *   "<email_1>", "<EMAIL 1>", "[EMAIL_1]"  restored            (mangled_restored)
 *   "EMAIL_1" (upper case, no brackets)    left as written     (mangled)
 *   "<EMAIL_9>", "[EMAIL 9]" never issued  left as written     (unknown)
 *   a token the client's own text held     left as written     (not counted)
 * A restorer borrows `p`, which must outlive it. */

typedef struct {
    int64_t restored;
    int64_t mangled_restored;
    int64_t mangled;
    int64_t unknown;
    char kinds[128];           /* kinds of the mangled_restored, mangled and unknown
                                  ones, comma-separated, first seen first ("" = none;
                                  names that do not fit are left out) */
} pol_unpseudo_counts;

typedef struct pol_unpseudo pol_unpseudo;

int pol_unpseudo_new(pol_unpseudo **out, const pol_pseudo *p, char *err, size_t errlen);
void pol_unpseudo_free(pol_unpseudo *u);

/* Restore a chunk of the answer: *out (owned by u, NUL-terminated, valid
 * until the next call on u) gets the text to send now. A suffix that may be
 * the start of a placeholder ("<", "<EM", "<EMAIL_1") is held back, at most
 * POL_UNPSEUDO_HOLD_MAX bytes, until the next chunk decides it. -1 only out
 * of memory or after finish. */
int pol_unpseudo_feed(pol_unpseudo *u, const char *chunk, size_t len, const char **out,
                      size_t *out_len, char *err, size_t errlen);

/* The end of the answer: whatever was held back, restored. Once. */
int pol_unpseudo_finish(pol_unpseudo *u, const char **out, size_t *out_len, char *err, size_t errlen);

/* What the restorer has seen so far, for the ledger row. */
void pol_unpseudo_report(const pol_unpseudo *u, pol_unpseudo_counts *out);

/* A whole answer at once: *out is NUL-terminated, the caller's to free;
 * *counts (may be NULL) as pol_unpseudo_report gives them. */
int pol_unpseudo_text(const pol_pseudo *p, const char *text, size_t len, char **out, size_t *out_len,
                      pol_unpseudo_counts *counts, char *err, size_t errlen);

/* ---- Routing rules ---------------------------------------------------------
 * docs/policy.md. The policy is an ordered list of named rules, evaluated top
 * to bottom; the first rule that matches AND has a usable target decides.
 * A rule is {"name", "when": condition, "route": target or [targets],
 * "on_sensitive": "keep"|"pseudonymize"|"refuse"}. NULL rules at load give
 * the default policy (pol_policy_default_text), written in the same language.
 *
 * The zone guarantee: a sensitive request only reaches the zones in
 * routing.sensitive_zones (default in-process and private). pol_decide never
 * picks another zone for it, and pol_zone_allows is the last gate the
 * gateway asks right before sending any byte upstream, whatever chose the
 * route (explicit model, fallback, retry, stickiness).
 *
 * A pol_policy is immutable once loaded: any thread may use it. */

typedef struct pol_policy pol_policy;

/* An upstream as the policy sees it. The local engine is always the route
 * "local" in zone "in-process" and is not listed. */
typedef struct {
    const char *name;   /* 1..63 chars; not "local", "private" or "external" */
    const char *zone;   /* "private" or "external" */
} pol_upstream_def;

/* What the rules may refer to. Everything is copied by pol_policy_new. */
typedef struct {
    const pol_upstream_def *upstreams;  /* in config order (the order of a zone class) */
    int n_upstreams;
    bool difficulty_head;               /* a head provides the difficulty score */
    bool sensitivity_head;              /* ... the sensitivity score */
    const char *const *kinds;           /* every detector kind that exists (built-in and operator's) */
    int n_kinds;
    const char *const *sensitive_zones; /* zones a sensitive request may reach; NULL: in-process, private */
    int n_sensitive_zones;
    const char *const *pseudonymize_kinds; /* kinds that pseudonymization can hide (each in `kinds`) */
    int n_pseudonymize_kinds;
    double max_local_wait_s;            /* the local engine is overloaded past this expected wait (>= 0) */
} pol_policy_env;

/* What the request needs (pol_signals.needs) and what the local engine can
 * serve (pol_signals.local_can). */
enum { POL_NEED_TOOLS = 1, POL_NEED_JSON = 2, POL_NEED_IMAGES = 4, POL_NEED_LONG_CONTEXT = 8 };

/* One upstream's state now. An upstream of the env missing from
 * pol_signals.routes counts as down. */
typedef struct {
    const char *name;
    bool breaker_open;
    int in_flight;
    int max_in_flight;                  /* 0 = no limit */
    bool priced;                        /* its price is above 0 */
} pol_route_state;

/* Everything a decision reads, filled by the caller; nothing is kept. */
typedef struct {
    bool has_difficulty, has_sensitivity;   /* the score was computed */
    double difficulty, sensitivity;         /* 0..1 */
    double difficulty_threshold, sensitivity_threshold; /* the heads' thresholds */
    bool forced;                        /* a finding of a forcing kind: sensitive whatever the score */
    const char *const *kinds;           /* detector kinds found, each once */
    int n_kinds;
    const char *tenant, *key_id, *model;    /* NULL or "" = none; model = the one requested */
    unsigned needs;                     /* POL_NEED_* the request needs */
    unsigned local_can;                 /* POL_NEED_* the local engine serves */
    int64_t prompt_tokens;
    bool local_loaded;                  /* a local model is loaded */
    bool local_priced;                  /* the local engine has a price above 0 */
    int local_queue;                    /* requests waiting for the engine */
    double local_wait_s;                /* their expected wait */
    const pol_route_state *routes;      /* the upstreams' states */
    int n_routes;
    bool budget_known;                  /* false: unlimited */
    int64_t budget_remaining_micro_usd; /* <= 0: exhausted (priced routes are skipped) */
} pol_signals;

/* Sensitive: a forcing kind was found, or the sensitivity score is at or
 * above its threshold (a NaN score counts as sensitive). */
bool pol_sensitive(const pol_signals *s);

typedef enum {
    POL_ROUTE,          /* go to `route` */
    POL_BLOCKED,        /* 403 sensitive_data_blocked: refused by a rule, or only
                           forbidden zones could answer */
    POL_UNAVAILABLE,    /* 503 no_route: nothing usable (reason says what was down) */
} pol_outcome;

typedef struct {
    pol_outcome outcome;
    char route[64];         /* POL_ROUTE: "local" or an upstream's name; else "" */
    char zone[16];          /* POL_ROUTE: "in-process", "private" or "external" */
    char rule[64];          /* the rule that routed or refused; "" when none did */
    bool pseudonymize;      /* the caller must pseudonymize before sending (and say so
                               to pol_zone_allows) */
    char kinds[128];        /* kinds found, comma-separated (for the 403 message) */
    char reason[256];       /* one line, e.g. "rule hard-to-frontier: difficult
                               (difficulty 0.81 >= 0.7); route gpt4" */
} pol_decision;

/* Load and check a policy. `rules` is a JSON array of rules (copied), or
 * NULL for the default policy (whose rules needing a head that `env` lacks
 * are left out). Refused, with the rule's index and name and the reason:
 * unknown route or zone class, unknown condition or operator, wrong value
 * type, a score no head provides, a kind that does not exist, a rule after a
 * catch-all, duplicate names, unknown on_sensitive, "pseudonymize" without
 * pseudonymize_kinds, nesting deeper than 16. Free with pol_policy_free. */
int pol_policy_new(pol_policy **out, const cJSON *rules, const pol_policy_env *env,
                   char *err, size_t errlen);
void pol_policy_free(pol_policy *p);

/* A new pseudonymization mapping (pol_pseudo_new) that allows the kinds
 * of routing.pseudonymize_kinds the policy was loaded with, checked then:
 * one per request that a rule lets out pseudonymized. */
int pol_policy_pseudo_new(const pol_policy *p, pol_pseudo **out, char *err, size_t errlen);

/* The default policy's rules, a JSON text (static). */
const char *pol_policy_default_text(void);

/* Decide a route. `explain`, when not NULL, is a cJSON array to which one
 * object per rule evaluated is appended: {"rule", "matched", "conditions",
 * "skipped": [{"route", "why"}], "chosen": name|null, "refused"?: true,
 * "pseudonymize"?: true}. Returns 0 (the outcome is in *out), or -1 on bad
 * arguments or out of memory. */
int pol_decide(const pol_policy *p, const pol_signals *s, pol_decision *out, cJSON *explain,
               char *err, size_t errlen);

/* The zone gate: may this request's data go to `zone` ("in-process",
 * "private", "external") now? True when it is not sensitive, or the zone is
 * in sensitive_zones, or `pseudonymized` and every kind found is in
 * pseudonymize_kinds (at least one found). An unknown zone is refused. When
 * refused and `why` is not NULL, a message naming the kinds (never the
 * text) and the allowed zones. */
bool pol_zone_allows(const pol_policy *p, const pol_signals *s, const char *zone,
                     bool pseudonymized, char *why, size_t whylen);

/* ---- Keys, tenants, budgets, rate limits ----------------------------------
 * Client keys live in the ledger database (schema version 3) as
 * HMAC-SHA256(pepper, key) only, the pepper being 32 random bytes made with
 * the table; a key is "jk-" + 43 base64url characters (256 random bits from
 * getrandom), shown once when made. A tenant carries its own budgets. Money
 * in micro-dollars; a limit of 0 means none. docs/policy.md, section
 * "Keys, tenants, budgets". */

#define POL_KEY_SECRET_LEN 46           /* "jk-" + 43; buffers hold one more for the NUL */
#define POL_KEY_PRESENTED_MAX 256       /* longer presented keys are refused unhashed */

typedef struct {
    char id[24];                    /* "key_" + 12 base32 characters (a-z, 2-7) */
    char tenant[64];                /* 1..63 of [A-Za-z0-9._-] */
    char name[64];                  /* a label, 0..63 of [A-Za-z0-9._ -] */
    char routes[256];               /* routes it may use, comma-separated; "" = all */
    int64_t rpm, tpm;               /* requests / tokens per minute; 0 = no limit */
    int64_t budget_daily_micro, budget_monthly_micro;
    bool admin;                     /* may use the admin endpoints */
    int64_t created_ms, revoked_ms, rotated_ms;    /* Unix ms; 0 = never */
} pol_key;

typedef struct {
    char name[64];
    int64_t budget_daily_micro, budget_monthly_micro;
    int64_t created_ms;
} pol_tenant;

/* USD text ("5", "0.25", "1200.000001": at most 6 decimals, 0 to 10^9)
 * to micro-dollars, exactly (no floating point). */
int pol_usd_parse(const char *text, int64_t *out_micro, char *err, size_t errlen);
/* Micro-dollars as USD text with 6 decimals ("4.250000", "-0.000001"). */
void pol_usd_format(int64_t micro, char *buf, size_t len);

/* Management (`junction keys`): a read-write handle on the ledger file,
 * which is created or migrated as needed. Every change bumps a counter the
 * daemon watches (pol_keys_changed). Not for the event loop. */
typedef struct pol_keyadmin pol_keyadmin;
int pol_keyadmin_open(pol_keyadmin **out, const char *path, char *err, size_t errlen);
void pol_keyadmin_close(pol_keyadmin *a);

/* A new key with the settings of `settings` (tenant required; name, routes,
 * limits, budgets, admin checked and copied; id and times ignored). The
 * tenant is created (without budgets) if new. The stored record goes to
 * *created, the key itself (NUL-terminated) to `secret`: it is stored
 * nowhere, show it once. */
int pol_key_add(pol_keyadmin *a, const pol_key *settings, pol_key *created,
                char secret[POL_KEY_SECRET_LEN + 1], char *err, size_t errlen);
/* Revoke key `id` (it stops working at the daemon's next reload, within a
 * second). Unknown or already revoked: -1. */
int pol_key_revoke(pol_keyadmin *a, const char *id, char *err, size_t errlen);
/* A new secret for key `id`, same id and settings; the old secret stops
 * working. Unknown or revoked: -1. */
int pol_key_rotate(pol_keyadmin *a, const char *id, char secret[POL_KEY_SECRET_LEN + 1],
                   char *err, size_t errlen);
/* Every key, revoked ones too, oldest first. *keys is heap (free()). */
int pol_key_list(pol_keyadmin *a, pol_key **keys, size_t *n, char *err, size_t errlen);
/* Create tenant `name` or update its budgets; a budget < 0 keeps the current
 * value (0 for a new tenant). */
int pol_tenant_set(pol_keyadmin *a, const char *name, int64_t daily_micro, int64_t monthly_micro,
                   char *err, size_t errlen);
/* Every tenant by name. *tenants is heap (free()). */
int pol_tenant_list(pol_keyadmin *a, pol_tenant **tenants, size_t *n, char *err, size_t errlen);

/* A key or tenant as JSON (money as USD text and micro-dollar integers; the
 * hash never appears). NULL when out of memory; caller deletes. */
cJSON *pol_key_json(const pol_key *k);
cJSON *pol_tenant_json(const pol_tenant *t);

/* The daemon's side: a read-only connection (the file must exist with the
 * current schema: open the ledger first, which migrates it). One thread at a
 * time per handle; a snapshot is immutable and may be read from any thread. */
typedef struct pol_keys pol_keys;
typedef struct pol_keys_snapshot pol_keys_snapshot;

int pol_keys_open(pol_keys **out, const char *path, char *err, size_t errlen);
void pol_keys_close(pol_keys *ks);
/* Whether keys or tenants changed since this handle's last snapshot (or
 * since open, when none was loaded). Cheap: a pragma read, and one indexed
 * row when another connection wrote anything; call it every second. */
int pol_keys_changed(pol_keys *ks, bool *changed, char *err, size_t errlen);
/* The keys' version counter (bumped by every change), read through a
 * connection opened and closed for it: a daemon that polls this keeps no
 * second connection on the ledger's file between its reloads. */
int pol_keys_version(const char *path, int64_t *version, char *err, size_t errlen);
/* Load the keys that are not revoked and all tenants. *out is the caller's
 * (pol_keys_snapshot_free). */
int pol_keys_snapshot_load(pol_keys *ks, pol_keys_snapshot **out, char *err, size_t errlen);
void pol_keys_snapshot_free(pol_keys_snapshot *s);
/* Keys that are not revoked (auth is on when > 0). A NULL snapshot: 0. */
size_t pol_keys_count(const pol_keys_snapshot *s);
/* The key whose secret is `presented` (the Bearer token, `len` bytes), or
 * NULL when unknown, revoked or longer than POL_KEY_PRESENTED_MAX. The
 * stored hash is compared in constant time. Valid while the snapshot is. */
const pol_key *pol_keys_lookup(const pol_keys_snapshot *s, const char *presented, size_t len);
/* Tenant `name`, or NULL. Valid while the snapshot is. */
const pol_tenant *pol_keys_tenant(const pol_keys_snapshot *s, const char *name);
/* Whether key k may use `route` (its routes list is empty or names it). */
bool pol_key_allows_route(const pol_key *k, const char *route);

/* Budgets: spend per UTC day and calendar month (UTC), per key, per tenant
 * and global. A request reserves its worst case when routed, in the same
 * step as the check, and settles to its real cost when it ends, so that
 * spend + outstanding reservations never exceed a limit, whatever the order
 * of the calls. Single-threaded: the daemon's loop thread only (no locks). */
typedef struct {
    int64_t global_daily_micro, global_monthly_micro;   /* 0 = no limit */
    double soft_fraction;           /* a warning past this share of a limit, (0, 1]; default 0.8 */
} pol_budget_config;
void pol_budget_config_defaults(pol_budget_config *c);

typedef enum {
    POL_BUDGET_OK,
    POL_BUDGET_SOFT,                /* reserved; a limit is past its soft fraction */
    POL_BUDGET_HARD                 /* it would exceed a limit: nothing reserved */
} pol_budget_status;

typedef struct {
    pol_budget_status status;
    int64_t remaining_micro;        /* the smallest remaining across the applicable limits
                                       (after this reservation); -1 when no limit applies */
    char limit[128];                /* the limit that decided ("tenant acme daily"), "" = none */
} pol_budget_verdict;

/* Held by the request between reserve and settle (plain data, copyable). */
typedef struct {
    char key_id[24], tenant[64];
    int64_t amount_micro;           /* reserved */
    int64_t day, month;             /* the windows it was reserved in */
    uint64_t epoch;                 /* the rebuild it belongs to */
    bool open;                      /* not settled yet */
} pol_budget_reservation;

typedef struct pol_budget pol_budget;
int pol_budget_new(pol_budget **out, const pol_budget_config *cfg, char *err, size_t errlen);
void pol_budget_free(pol_budget *b);
/* Start over from the ledger file: this day's and month's cost per key,
 * tenant and in total. At start, before any reserve (reservations made
 * before it settle to nothing). Milliseconds to seconds: not on the loop. */
int pol_budget_rebuild(pol_budget *b, const char *ledger_path, int64_t now_ms, char *err, size_t errlen);
/* Check and reserve `worst_case_micro` (>= 0) against the limits of key
 * (NULL: no key), its tenant's (NULL: none) and the global ones. A worst
 * case of 0 (a free route) is always OK. -1 only for a negative amount or
 * out of memory. */
int pol_budget_reserve(pol_budget *b, const pol_key *key, const pol_tenant *tenant,
                       int64_t worst_case_micro, int64_t now_ms, pol_budget_reservation *res,
                       pol_budget_verdict *v, char *err, size_t errlen);
/* Replace the reservation with the real cost (in the windows it was made
 * in; a window that has since rolled over is past). Once per reservation;
 * later calls do nothing. */
void pol_budget_settle(pol_budget *b, pol_budget_reservation *res, int64_t actual_micro, int64_t now_ms);

typedef enum { POL_SCOPE_GLOBAL, POL_SCOPE_TENANT, POL_SCOPE_KEY } pol_budget_scope;
typedef struct {
    int64_t day_spent, day_reserved, month_spent, month_reserved;
} pol_budget_usage;
/* Spend and outstanding reservations of one account in the windows of now_ms. */
void pol_budget_usage_of(pol_budget *b, pol_budget_scope scope, const char *name, int64_t now_ms,
                         pol_budget_usage *out);

/* Rate limits per key: token buckets holding a minute's worth (rpm
 * requests, tpm tokens), refilled continuously. Single-threaded: the loop
 * thread only. */
typedef struct {
    bool allowed;
    bool too_large;                 /* tokens > the key's tpm: it can never fit */
    int retry_after_s;              /* when refused and not too large: whole seconds, >= 1 */
    /* For x-ratelimit-{limit,remaining,reset}-{requests,tokens}; limit -1 = no such limit */
    int64_t limit_requests, remaining_requests, reset_requests_ms;
    int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
} pol_rate_verdict;

typedef struct pol_rate pol_rate;
int pol_rate_new(pol_rate **out, char *err, size_t errlen);
void pol_rate_free(pol_rate *r);
/* Take one request and `tokens` (prompt + max tokens, >= 0) from key's
 * buckets, both or neither. -1 only for a negative count or out of memory. */
int pol_rate_take(pol_rate *r, const pol_key *key, int64_t tokens, int64_t now_ms,
                  pol_rate_verdict *v, char *err, size_t errlen);
/* Give back (or take more of) the tokens when the real count is known. */
void pol_rate_settle(pol_rate *r, const char *key_id, int64_t reserved_tokens, int64_t actual_tokens,
                     int64_t now_ms);
/* A duration as OpenAI's reset headers write it: "250ms", "1s", "6m0s", "1h2m3s". */
void pol_rate_duration(int64_t ms, char *buf, size_t len);

#endif
