/* ledger_report.c: the ledger read back, as the documents people look at.
 *
 * `junction audit` and the admin endpoints must never disagree, so both get
 * their JSON here: the spend report (totals, savings, latency percentiles
 * per group) and pages of rows. Money leaves as exact decimal text made from
 * the integer micro-dollars, next to the integers themselves. The table and
 * CSV forms are rendered from that same JSON. Time windows (`--since 7d`,
 * `since=2026-12-01`) are parsed here too, for the same reason.
 */
#include "ledger_store.h"
#include "policy.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pol_audit {
    pol_store *store;
};

int64_t pol_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- time ---- */

static const struct {
    char suffix;
    int64_t ms;
} duration_units[] = {
    {'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000},
};

/* Exactly n decimal digits at p. */
static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

static int parse_duration(const char *text, int64_t now_ms, int64_t *out)
{
    char *end;
    errno = 0;
    if (text[0] < '0' || text[0] > '9') return -1;
    long long n = strtoll(text, &end, 10);
    if (errno || end[0] == '\0' || end[1] != '\0') return -1;
    for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
        if (duration_units[i].suffix != *end) continue;
        if (n > now_ms / duration_units[i].ms) return -1;
        *out = now_ms - n * duration_units[i].ms;
        return 0;
    }
    return -1;
}

static int parse_iso(const char *t, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, s = 0;
    if (!digits(t, 4, &y) || t[4] != '-' || !digits(t + 5, 2, &mo) || t[7] != '-' || !digits(t + 8, 2, &d))
        return -1;
    const char *p = t + 10;
    if (*p == 'T' || *p == ' ') {
        if (!digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &mi)) return -1;
        p += 6;
        if (*p == ':') {
            if (!digits(p + 1, 2, &s)) return -1;
            p += 3;
        }
    }
    if (*p == 'Z') p++;
    if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t when = timegm(&tm);
    if (tm.tm_mday != d || tm.tm_mon != mo - 1) return -1;   /* 2026-02-30 normalised away */
    *out = (int64_t)when * 1000;
    return 0;
}

int pol_time_parse(const char *text, int64_t now_ms, int64_t *out_ms, char *err, size_t errlen)
{
    if (text && (parse_duration(text, now_ms, out_ms) == 0 || parse_iso(text, out_ms) == 0)) return 0;
    snprintf(err, errlen, "'%s' is not a time: give a duration back from now (30m, 24h, 7d, 2w) or a "
             "UTC date or datetime (2026-12-01, 2026-12-01T10:00:00Z)", text ? text : "");
    return -1;
}

/* "2026-12-01T10:00:00Z" */
static cJSON *iso_time(int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&secs, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return cJSON_CreateNull();
    return cJSON_CreateString(buf);
}

/* ---- names ---- */

static const char *const group_names[] = {
    [POL_BY_NONE] = "none", [POL_BY_TENANT] = "tenant", [POL_BY_KEY] = "key",
    [POL_BY_ROUTE] = "route", [POL_BY_MODEL] = "model", [POL_BY_DAY] = "day", [POL_BY_HOUR] = "hour",
};

int pol_group_by_parse(const char *name, pol_group_by *out, char *err, size_t errlen)
{
    if (name && !*name) name = "none";
    for (size_t i = 0; name && i < sizeof(group_names) / sizeof(group_names[0]); i++)
        if (strcmp(group_names[i], name) == 0) {
            *out = (pol_group_by)i;
            return 0;
        }
    snprintf(err, errlen, "by: '%s' is not a grouping; use tenant, key, route, model, day or hour",
             name ? name : "");
    return -1;
}

const char *pol_group_by_name(pol_group_by by)
{
    return (unsigned)by < sizeof(group_names) / sizeof(group_names[0]) ? group_names[by] : "none";
}

static const char *const format_names[] = {
    [POL_FORMAT_TABLE] = "table", [POL_FORMAT_CSV] = "csv", [POL_FORMAT_JSON] = "json",
};

int pol_format_parse(const char *name, pol_format *out, char *err, size_t errlen)
{
    for (size_t i = 0; name && i < sizeof(format_names) / sizeof(format_names[0]); i++)
        if (strcmp(format_names[i], name) == 0) {
            *out = (pol_format)i;
            return 0;
        }
    snprintf(err, errlen, "format: '%s' is not one of table, csv, json", name ? name : "");
    return -1;
}

/* ---- opening ---- */

int pol_audit_open(pol_audit **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    pol_audit *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "ledger %s: out of memory", path);
        return -1;
    }
    if (pol_store_open(&a->store, path, POL_STORE_READ, NULL, NULL, err, errlen) != 0) {
        free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void pol_audit_close(pol_audit *a)
{
    if (!a) return;
    pol_store_close(a->store);
    free(a);
}

int pol_audit_vacuum(const char *path, char *err, size_t errlen)
{
    pol_store *s;
    if (pol_store_open(&s, path, POL_STORE_UPDATE, NULL, NULL, err, errlen) != 0) return -1;
    int rc = pol_store_vacuum(s, err, errlen);
    pol_store_close(s);
    return rc;
}

/* ---- JSON ---- */

/* An exact integer, as JSON number text (no trip through double). */
static void add_int(cJSON *obj, const char *name, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    cJSON_AddItemToObject(obj, name, cJSON_CreateRaw(buf));
}

/* Micro-dollars as exact dollars with six decimals: -1234567 -> -1.234567. */
static void add_usd(cJSON *obj, const char *name, int64_t micro)
{
    char buf[48];
    uint64_t mag = micro < 0 ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;
    snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%06" PRIu64, micro < 0 ? "-" : "", mag / 1000000, mag % 1000000);
    cJSON_AddItemToObject(obj, name, cJSON_CreateRaw(buf));
}

static void add_ms(cJSON *obj, const char *name, int64_t us)
{
    if (us < 0) cJSON_AddNullToObject(obj, name);
    else cJSON_AddNumberToObject(obj, name, (double)us / 1000.0);
}

static cJSON *group_json(const pol_store_group *g, int64_t all, bool with_key)
{
    cJSON *o = cJSON_CreateObject();
    if (with_key) cJSON_AddStringToObject(o, "key", g->key);
    add_int(o, "requests", g->requests);
    add_int(o, "prompt_tokens", g->prompt_tokens);
    add_int(o, "completion_tokens", g->completion_tokens);
    add_int(o, "cached_tokens", g->cached_tokens);
    add_usd(o, "cost_usd", g->cost_micro_usd);
    add_int(o, "cost_micro_usd", g->cost_micro_usd);
    add_usd(o, "counterfactual_usd", g->counterfactual_micro_usd);
    add_int(o, "counterfactual_micro_usd", g->counterfactual_micro_usd);
    add_usd(o, "savings_usd", g->counterfactual_micro_usd - g->cost_micro_usd);
    add_int(o, "savings_micro_usd", g->counterfactual_micro_usd - g->cost_micro_usd);
    add_int(o, "errors", g->errors);
    cJSON_AddNumberToObject(o, "share", all ? (double)g->requests / (double)all : 0);
    cJSON_AddNumberToObject(o, "local_share", g->requests ? (double)g->local_requests / (double)g->requests : 0);
    add_ms(o, "p50_latency_ms", g->p50_latency_us);
    add_ms(o, "p95_latency_ms", g->p95_latency_us);
    add_ms(o, "p50_ttft_ms", g->p50_ttft_us);
    add_ms(o, "p95_ttft_ms", g->p95_ttft_us);
    return o;
}

int pol_audit_spend(pol_audit *a, const pol_spend_query *q, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    if (q->since_ms > q->until_ms) {
        snprintf(err, errlen, "since is after until: swap them");
        return -1;
    }
    pol_store_group *groups, total;
    size_t n;
    if (pol_store_spend(a->store, q, &groups, &n, &total, err, errlen) != 0) return -1;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "since", q->since_ms > 0 ? iso_time(q->since_ms) : cJSON_CreateNull());
    cJSON_AddItemToObject(doc, "until", q->until_ms < INT64_MAX ? iso_time(q->until_ms) : cJSON_CreateNull());
    if (q->by == POL_BY_NONE) cJSON_AddNullToObject(doc, "by");
    else cJSON_AddStringToObject(doc, "by", pol_group_by_name(q->by));
    cJSON_AddItemToObject(doc, "total", group_json(&total, total.requests, false));
    cJSON *arr = cJSON_AddArrayToObject(doc, "groups");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, group_json(&groups[i], total.requests, true));
    free(groups);
    *out = doc;
    return 0;
}

static void add_opt_string(cJSON *o, const char *name, const char *v)
{
    if (v && *v) cJSON_AddStringToObject(o, name, v);
    else cJSON_AddNullToObject(o, name);
}

static cJSON *row_json(const pol_ledger_row *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "request_id", r->request_id);
    cJSON_AddItemToObject(o, "time", iso_time(r->ts_ms));
    add_int(o, "ts_ms", r->ts_ms);
    add_opt_string(o, "tenant", r->tenant);
    add_opt_string(o, "key_id", r->key_id);
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON_AddStringToObject(o, "route", r->route);
    cJSON_AddStringToObject(o, "zone", r->zone);
    cJSON_AddStringToObject(o, "reason", r->reason);
    cJSON *kinds = cJSON_AddArrayToObject(o, "detectors");
    for (const char *p = r->detectors; *p;) {
        size_t len = strcspn(p, ",");
        char kind[sizeof(r->detectors)];
        snprintf(kind, sizeof(kind), "%.*s", (int)len, p);
        if (len) cJSON_AddItemToArray(kinds, cJSON_CreateString(kind));
        p += len + (p[len] == ',');
    }
    add_opt_string(o, "upstream_model", r->upstream_model);
    add_int(o, "prompt_tokens", r->prompt_tokens);
    add_int(o, "completion_tokens", r->completion_tokens);
    add_int(o, "cached_tokens", r->cached_tokens);
    cJSON_AddBoolToObject(o, "tokens_estimated", r->tokens_estimated);
    add_usd(o, "cost_usd", r->cost_micro_usd);
    add_int(o, "cost_micro_usd", r->cost_micro_usd);
    add_usd(o, "counterfactual_usd", r->counterfactual_micro_usd);
    add_int(o, "counterfactual_micro_usd", r->counterfactual_micro_usd);
    add_ms(o, "latency_ms", r->latency_us);
    add_ms(o, "ttft_ms", r->ttft_us);
    cJSON_AddNumberToObject(o, "status", r->status);
    add_opt_string(o, "error_code", r->error_code);
    cJSON_AddBoolToObject(o, "streamed", r->streamed);
    cJSON_AddBoolToObject(o, "client_hung_up", r->client_hung_up);
    if (r->prompt_redacted) cJSON_AddStringToObject(o, "prompt_redacted", r->prompt_redacted);
    if (r->answer_redacted) cJSON_AddStringToObject(o, "answer_redacted", r->answer_redacted);
    return o;
}

/* Cursor "TS.SEQ": the last row of the previous page. */
static int parse_cursor(const char *c, int64_t *ts, int64_t *seq)
{
    char *end;
    errno = 0;
    if (*c < '0' || *c > '9') return -1;
    long long a = strtoll(c, &end, 10);
    if (errno || *end != '.' || end[1] < '0' || end[1] > '9') return -1;
    long long b = strtoll(end + 1, &end, 10);
    if (errno || *end) return -1;
    *ts = a;
    *seq = b;
    return 0;
}

int pol_audit_requests(pol_audit *a, const pol_requests_query *q, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    if (q->limit < 1 || q->limit > 1000) {
        snprintf(err, errlen, "limit: %d is out of range (1 to 1000)", q->limit);
        return -1;
    }
    int64_t ts = 0, seq = 0;
    bool has_cursor = q->cursor[0] != '\0';
    if (has_cursor && parse_cursor(q->cursor, &ts, &seq) != 0) {
        snprintf(err, errlen, "cursor: '%s' is not a cursor from a previous page; start without one",
                 q->cursor);
        return -1;
    }
    pol_store_row *rows;
    size_t n;
    bool more;
    if (pol_store_page(a->store, q, has_cursor, ts, seq, &rows, &n, &more, err, errlen) != 0) return -1;
    cJSON *doc = cJSON_CreateObject();
    cJSON *data = cJSON_AddArrayToObject(doc, "data");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(data, row_json(&rows[i].row));
    if (more && n > 0) {
        char next[64];
        snprintf(next, sizeof(next), "%" PRId64 ".%" PRId64, rows[n - 1].row.ts_ms, rows[n - 1].seq);
        cJSON_AddStringToObject(doc, "next_cursor", next);
    } else {
        cJSON_AddNullToObject(doc, "next_cursor");
    }
    pol_store_page_free(rows, n);
    *out = doc;
    return 0;
}

/* ---- table and CSV ---- */

typedef enum { CELL_TEXT, CELL_RAW, CELL_SHARE, CELL_MS } cell_kind;

static const struct {
    const char *header;
    const char *field;
    cell_kind kind;
} columns[] = {
    {"group", "key", CELL_TEXT},
    {"requests", "requests", CELL_RAW},
    {"share", "share", CELL_SHARE},
    {"local", "local_share", CELL_SHARE},
    {"prompt_tok", "prompt_tokens", CELL_RAW},
    {"compl_tok", "completion_tokens", CELL_RAW},
    {"cost_usd", "cost_usd", CELL_RAW},
    {"counterfactual_usd", "counterfactual_usd", CELL_RAW},
    {"savings_usd", "savings_usd", CELL_RAW},
    {"errors", "errors", CELL_RAW},
    {"p50_ms", "p50_latency_ms", CELL_MS},
    {"p95_ms", "p95_latency_ms", CELL_MS},
    {"p50_ttft_ms", "p50_ttft_ms", CELL_MS},
    {"p95_ttft_ms", "p95_ttft_ms", CELL_MS},
};
#define N_COLUMNS (sizeof(columns) / sizeof(columns[0]))

static void cell_text(const cJSON *row, size_t c, bool is_total, char *buf, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, columns[c].field);
    const char *text = cJSON_GetStringValue(v);
    if (columns[c].kind == CELL_TEXT) snprintf(buf, len, "%s", is_total ? "total" : text ? text : "");
    else if (cJSON_IsRaw(v)) snprintf(buf, len, "%s", v->valuestring);
    else if (!cJSON_IsNumber(v)) snprintf(buf, len, "-");
    else if (columns[c].kind == CELL_SHARE) snprintf(buf, len, "%.1f%%", v->valuedouble * 100);
    else snprintf(buf, len, "%.1f", v->valuedouble);
}

static void csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

int pol_spend_render(const cJSON *report, pol_format format, FILE *out, char *err, size_t errlen)
{
    if (format == POL_FORMAT_JSON) {
        char *text = cJSON_Print(report);
        if (text) fprintf(out, "%s\n", text);
        free(text);
    } else {
        const cJSON *groups = cJSON_GetObjectItemCaseSensitive(report, "groups");
        const cJSON *total = cJSON_GetObjectItemCaseSensitive(report, "total");
        size_t n_rows = (size_t)cJSON_GetArraySize(groups) + 1;
        const cJSON **rows = calloc(n_rows, sizeof(*rows));
        if (!rows) {
            snprintf(err, errlen, "out of memory rendering the report");
            return -1;
        }
        size_t r = 0;
        const cJSON *g;
        cJSON_ArrayForEach(g, groups) rows[r++] = g;
        rows[r] = total;
        int width[N_COLUMNS];
        char cell[192];
        for (size_t c = 0; c < N_COLUMNS; c++) {
            width[c] = (int)strlen(columns[c].header);
            for (size_t i = 0; i < n_rows; i++) {
                cell_text(rows[i], c, i == n_rows - 1, cell, sizeof(cell));
                if ((int)strlen(cell) > width[c]) width[c] = (int)strlen(cell);
            }
        }
        for (size_t i = 0; i <= n_rows; i++) {           /* the header, then the rows */
            for (size_t c = 0; c < N_COLUMNS; c++) {
                if (i == 0) snprintf(cell, sizeof(cell), "%s", columns[c].header);
                else cell_text(rows[i - 1], c, i == n_rows, cell, sizeof(cell));
                if (format == POL_FORMAT_CSV) {
                    if (c) fputc(',', out);
                    csv_field(out, cell);
                } else {
                    fprintf(out, c == 0 ? "%-*s" : "  %*s", width[c], cell);
                }
            }
            fputc('\n', out);
        }
        free(rows);
    }
    if (fflush(out) != 0 || ferror(out)) {
        snprintf(err, errlen, "writing the report: %s", strerror(errno));
        return -1;
    }
    return 0;
}
