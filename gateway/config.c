/* config.c: junction's settings, from a JSON file and from flags.
 *
 * One table describes every setting: its key, its flag, its type and range.
 * The file loader and the flag parser both go through it, so a key and its
 * flag can never drift apart, and docs/configuration.md mirrors it. Keys of
 * nested objects are named with a dot ("ledger.path"), in the table as in
 * errors. Errors name the key and, for files, the line:column where it
 * stands. What needs the outside world (files, host names, the environment,
 * the ledger's keys) is checked by gw_config_check, in config_check.c.
 */
#include "gateway.h"
#include "internal.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef enum {
    OPT_STRING,    /* char[]; `check` may validate it */
    OPT_CHOICE,    /* char[], one of `choices` */
    OPT_LOG_LEVEL, /* gw_log_level, one of log_level_names */
    OPT_INT,       /* long long in [min, max] */
    OPT_NUMBER,    /* double in [min, max] */
    OPT_BOOL,      /* bool: JSON true/false; flag alone, or =true/=false */
    OPT_OBJECTS,   /* char[]: a JSON array of objects, kept as compact text */
    OPT_STRINGS,   /* char[]: a JSON array of strings, kept as compact text */
    OPT_UPSTREAMS, /* cfg->upstreams, appended to */
} opt_type;

#define OPTF_EMPTY_OK 1u  /* a string that may be "" */

typedef int (*string_check)(const char *v, char *err, size_t errlen);

typedef struct {
    const char *key;      /* JSON key; "a.b" is key b of the nested object a */
    const char *flag;     /* command-line flag */
    opt_type type;
    size_t offset;        /* into gw_config */
    size_t size;          /* of a string field */
    double min, max;      /* for numbers */
    unsigned flags;
    const char *const *choices; /* OPT_CHOICE: NULL-terminated */
    string_check check;   /* OPT_STRING: extra validation, or NULL */
    const char *help;
} config_option;

static int check_listen(const char *v, char *err, size_t errlen);
static int check_env_name(const char *v, char *err, size_t errlen);

static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const template_names[] = {"auto", "llama2", "plain", NULL};
static const char *const feature_modes[] = {"auto", "on", "off", NULL};

#define STR(f) offsetof(gw_config, f), sizeof(((gw_config *)0)->f)
#define NUM(f) offsetof(gw_config, f), 0

static const config_option options[] = {
    {"listen", "--listen", OPT_STRING, STR(listen), 0, 0, 0, NULL, check_listen,
     "address to listen on, host:port or [ipv6]:port (port 0: any free port)"},
    {"log_level", "--log-level", OPT_LOG_LEVEL, NUM(log_level), 0, 0, 0, NULL, NULL,
     "error, warn, info or debug (debug adds per-request timings and routing inputs)"},
    {"access_log", "--access-log", OPT_STRING, STR(access_log), 0, 0, 0, NULL, NULL,
     "where access-log lines go: - (stderr), off, or a file path"},
    {"max_body_bytes", "--max-body-bytes", OPT_INT, NUM(max_body_bytes), 1, 1LL << 30, 0, NULL, NULL,
     "largest request body accepted, in bytes"},
    {"max_connections", "--max-connections", OPT_INT, NUM(max_connections), 1, 1000000, 0, NULL, NULL,
     "client connections open at once; more wait in the kernel's backlog"},
    {"max_output_buffer_bytes", "--max-output-buffer", OPT_INT, NUM(max_output_buffer_bytes), 4096, 1LL << 30, 0,
     NULL, NULL, "a connection's unsent output before its stream pauses (twice this ends it)"},
    {"request_timeout_s", "--request-timeout", OPT_NUMBER, NUM(request_timeout_s), 0.001, 86400, 0, NULL, NULL,
     "seconds to receive a request, and to keep an idle connection"},
    {"drain_timeout_s", "--drain-timeout", OPT_NUMBER, NUM(drain_timeout_s), 0, 86400, 0, NULL, NULL,
     "seconds in-flight requests may take to finish after SIGTERM"},
    {"workers", "--workers", OPT_INT, NUM(workers), 0, 1024, 0, NULL, NULL,
     "worker threads for long jobs (0: one per CPU core)"},
    {"allow_unauthenticated_remote", "--allow-unauthenticated-remote", OPT_BOOL,
     NUM(allow_unauthenticated_remote), 0, 0, 0, NULL, NULL,
     "answer clients on other hosts that bring no key"},
    {"model", "--model", OPT_STRING, STR(model), 0, 0, OPTF_EMPTY_OK, NULL, NULL,
     "GGUF model file for the local engine (empty: no local model)"},
    {"ctx_size", "--ctx-size", OPT_INT, NUM(ctx_size), 0, 1 << 20, 0, NULL, NULL,
     "local engine context in tokens (0: the model's training context)"},
    {"threads", "--threads", OPT_INT, NUM(threads), 0, 1024, 0, NULL, NULL,
     "local engine compute threads (0: one per CPU core)"},
    {"parallel", "--parallel", OPT_INT, NUM(parallel), 1, 256, 0, NULL, NULL,
     "local requests generated together, each with its own ctx_size of KV cache"},
    {"queue_size", "--queue-size", OPT_INT, NUM(queue_size), 0, 100000, 0, NULL, NULL,
     "local requests that may wait while the parallel ones run; more get 429"},
    {"chat_template", "--chat-template", OPT_CHOICE, STR(chat_template), 0, 0, 0, template_names, NULL,
     "how chat messages become the local model's prompt: auto, llama2 or plain"},
    {"upstreams", "--upstream", OPT_UPSTREAMS, NUM(upstreams), 0, 0, 0, NULL, NULL,
     "add a remote model API: a JSON object as in the file's \"upstreams\" (repeatable)"},
    {"ledger.path", "--ledger", OPT_STRING, STR(ledger.path), 0, 0, OPTF_EMPTY_OK, NULL, NULL,
     "SQLite ledger file; empty: $XDG_STATE_HOME/junction/ledger.db; off: none"},
    {"ledger.flush_ms", "--ledger-flush-ms", OPT_INT, NUM(ledger.flush_ms), 1, 60000, 0, NULL, NULL,
     "longest a finished request's ledger row waits for its commit, in ms"},
    {"ledger.queue_bytes", "--ledger-queue-bytes", OPT_INT, NUM(ledger.queue_bytes), 4096, 1 << 30, 0, NULL,
     NULL, "memory for ledger rows waiting for the writer (packed, about 200 bytes a row); past it rows are dropped"},
    {"ledger.retention_days", "--ledger-retention-days", OPT_INT, NUM(ledger.retention_days), 0, 36500, 0,
     NULL, NULL, "ledger rows older than this many days are deleted (0: kept forever)"},
    {"ledger.store_prompts", "--ledger-store-prompts", OPT_BOOL, NUM(ledger.store_prompts), 0, 0, 0, NULL, NULL,
     "keep prompt and answer text in the ledger"},
    {"ledger.reference_upstream", "--ledger-reference-upstream", OPT_STRING, STR(ledger.reference_upstream), 0,
     0, OPTF_EMPTY_OK, NULL, NULL, "upstream that savings are priced against (empty: the dearest external one)"},
    {"ledger.required", "--ledger-required", OPT_BOOL, NUM(ledger.required), 0, 0, 0, NULL, NULL,
     "a degraded ledger makes /readyz not ready"},
    {"admin.keys_env", "--admin-keys-env", OPT_STRING, STR(admin.keys_env), 0, 0, 0, NULL, check_env_name,
     "environment variable holding the comma-separated admin keys"},
    {"local.price_input_per_mtok", "--local-price-input-per-mtok", OPT_NUMBER,
     NUM(local.price_input_per_mtok), 0, 1e6, 0, NULL, NULL, "local engine: USD per million input tokens"},
    {"local.price_output_per_mtok", "--local-price-output-per-mtok", OPT_NUMBER,
     NUM(local.price_output_per_mtok), 0, 1e6, 0, NULL, NULL, "local engine: USD per million output tokens"},
    {"local.price_per_engine_second", "--local-price-per-engine-second", OPT_NUMBER,
     NUM(local.price_per_engine_second), 0, 1000, 0, NULL, NULL, "local engine: USD per second of engine time"},
    {"classifier.difficulty_head", "--difficulty-head", OPT_STRING, STR(classifier.difficulty_head), 0, 0,
     OPTF_EMPTY_OK, NULL, NULL, "difficulty head weights, JSON (empty: the head shipped with junction)"},
    {"classifier.sensitivity_head", "--sensitivity-head", OPT_STRING, STR(classifier.sensitivity_head), 0, 0,
     OPTF_EMPTY_OK, NULL, NULL, "sensitivity head weights, JSON (empty: the head shipped with junction)"},
    {"classifier.model_features", "--classifier-model-features", OPT_CHOICE, STR(classifier.model_features), 0,
     0, 0, feature_modes, NULL, "score prompts with the local model's forward pass: on, off or auto"},
    {"classifier.layer", "--classifier-layer", OPT_INT, NUM(classifier.layer), 0, 1024, 0, NULL, NULL,
     "layer whose hidden state the heads read (0: the model's n_layer/4)"},
    {"classifier.max_tokens", "--classifier-max-tokens", OPT_INT, NUM(classifier.max_tokens), 1, 1 << 20, 0,
     NULL, NULL, "prompt tokens the model features look at"},
    {"classifier.detectors", "--classifier-detectors", OPT_OBJECTS, STR(classifier.detectors), 0, 0, 0, NULL,
     NULL, "operator-defined detectors: a JSON array of objects"},
    {"routing.sticky_idle_s", "--routing-sticky-idle", OPT_NUMBER, NUM(routing.sticky_idle_s), 0, 2592000, 0,
     NULL, NULL, "seconds a conversation keeps its route while idle (0: no stickiness)"},
    {"routing.annotate_body", "--routing-annotate-body", OPT_BOOL, NUM(routing.annotate_body), 0, 0, 0, NULL,
     NULL, "add junction's routing details to the answer's body"},
    {"routing.rules", "--routing-rules", OPT_OBJECTS, STR(routing.rules), 0, 0, 0, NULL, NULL,
     "the routing policy: a JSON array of rules (absent: the default policy, docs/policy.md)"},
    {"routing.sensitive_zones", "--routing-sensitive-zones", OPT_STRINGS, STR(routing.sensitive_zones), 0, 0, 0,
     NULL, NULL, "zones sensitive data may go to: JSON array of in-process, private, external"},
    {"routing.pseudonymize_kinds", "--routing-pseudonymize-kinds", OPT_STRINGS, STR(routing.pseudonymize_kinds), 0,
     0, 0, NULL, NULL, "detector kinds a rule may pseudonymize instead of keeping local: JSON array"},
    {"routing.max_local_wait_s", "--routing-max-local-wait", OPT_NUMBER, NUM(routing.max_local_wait_s), 0, 86400, 0,
     NULL, NULL, "expected local queue wait past which the default policy goes external"},
    {"budgets.global_daily_usd", "--budget-global-daily", OPT_NUMBER, NUM(budgets.global_daily_usd), 0, 1e9, 0,
     NULL, NULL, "spend per UTC day across all keys, USD (0: none)"},
    {"budgets.global_monthly_usd", "--budget-global-monthly", OPT_NUMBER, NUM(budgets.global_monthly_usd), 0, 1e9,
     0, NULL, NULL, "spend per UTC month across all keys, USD (0: none)"},
    {"budgets.soft_fraction", "--budget-soft-fraction", OPT_NUMBER, NUM(budgets.soft_fraction), 0.01, 1, 0, NULL,
     NULL, "share of a budget past which answers carry a warning"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

void gw_config_defaults(gw_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8080");
    cfg->log_level = GW_LOG_INFO;
    snprintf(cfg->access_log, sizeof(cfg->access_log), "-");
    cfg->max_body_bytes = 1 << 20;
    cfg->max_connections = 256;
    cfg->max_output_buffer_bytes = 4 << 20;
    cfg->request_timeout_s = 60;
    cfg->drain_timeout_s = 30;
    cfg->workers = 0;
    cfg->queue_size = 16;
    cfg->parallel = 1;
    snprintf(cfg->chat_template, sizeof(cfg->chat_template), "auto");
    cfg->ledger.flush_ms = 200;
    cfg->ledger.queue_bytes = 8 << 20;
    cfg->ledger.retention_days = 90;
    snprintf(cfg->admin.keys_env, sizeof(cfg->admin.keys_env), "JUNCTION_ADMIN_KEYS");
    snprintf(cfg->classifier.model_features, sizeof(cfg->classifier.model_features), "auto");
    cfg->classifier.max_tokens = 512;
    snprintf(cfg->classifier.detectors, sizeof(cfg->classifier.detectors), "[]");
    cfg->routing.sticky_idle_s = 3600;
    cfg->routing.annotate_body = true;
    snprintf(cfg->routing.sensitive_zones, sizeof(cfg->routing.sensitive_zones), "[\"in-process\",\"private\"]");
    snprintf(cfg->routing.pseudonymize_kinds, sizeof(cfg->routing.pseudonymize_kinds), "[]");
    cfg->routing.max_local_wait_s = 10;
    cfg->budgets.soft_fraction = 0.8;
}

static const config_option *find_by_key(const char *key)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].key, key) == 0) return &options[i];
    return NULL;
}

/* Is `name` the name of a nested object, like "ledger"? */
static bool is_section(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strncmp(options[i].key, name, n) == 0 && options[i].key[n] == '.') return true;
    return false;
}

/* The short forms `junction generate` and `bench` also take. */
static const struct { const char *alias, *flag; } short_flags[] = {
    {"-m", "--model"}, {"-c", "--ctx-size"}, {"-t", "--threads"},
};
#define N_SHORT_FLAGS (sizeof(short_flags) / sizeof(short_flags[0]))

static const char *short_flag_of(const char *flag)
{
    for (size_t i = 0; i < N_SHORT_FLAGS; i++)
        if (strcmp(short_flags[i].flag, flag) == 0) return short_flags[i].alias;
    return NULL;
}

static const config_option *find_by_flag(const char *flag)
{
    for (size_t i = 0; i < N_SHORT_FLAGS; i++)
        if (strcmp(short_flags[i].alias, flag) == 0) flag = short_flags[i].flag;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].flag, flag) == 0) return &options[i];
    return NULL;
}

int gw_config_flag_takes_value(const char *flag)
{
    const config_option *o = find_by_flag(flag);
    return o ? o->type != OPT_BOOL : -1;
}

static int choice_index(const char *const *choices, const char *v)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], v) == 0) return i;
    return -1;
}

/* "a, b or c" */
static void list_choices(const char *const *choices, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; choices[i] && used < len; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        int n = snprintf(out + used, len - used, "%s%s", sep, choices[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
}

int gw_parse_log_level(const char *s, gw_log_level *out)
{
    int i = choice_index(log_level_names, s);
    if (i < 0) return -1;
    *out = (gw_log_level)i;
    return 0;
}

/* ---- values ---- */

/* Store a string value; `where` prefixes error messages ("--listen" or "file:3:5: 'listen'"). */
static int set_string(gw_config *cfg, const config_option *o, const char *v,
                      const char *where, char *err, size_t errlen)
{
    if (o->type == OPT_LOG_LEVEL || o->type == OPT_CHOICE) {
        const char *const *choices = o->type == OPT_LOG_LEVEL ? log_level_names : o->choices;
        int i = choice_index(choices, v);
        if (i < 0) {
            char list[128];
            list_choices(choices, list, sizeof(list));
            snprintf(err, errlen, "%s: unknown %s '%.40s'; use %s", where,
                     o->type == OPT_LOG_LEVEL ? "log level" : "value", v, list);
            return -1;
        }
        if (o->type == OPT_LOG_LEVEL) {
            cfg->log_level = (gw_log_level)i;
            return 0;
        }
    }
    size_t n = strlen(v);
    if ((n == 0 && !(o->flags & OPTF_EMPTY_OK)) || n >= o->size) {
        snprintf(err, errlen, "%s: expected a %sstring of at most %zu bytes", where,
                 o->flags & OPTF_EMPTY_OK ? "" : "non-empty ", o->size - 1);
        return -1;
    }
    char detail[384];
    if (o->check && o->check(v, detail, sizeof(detail)) != 0) {
        snprintf(err, errlen, "%s: %s", where, detail);
        return -1;
    }
    memcpy((char *)cfg + o->offset, v, n + 1);
    return 0;
}

static int set_number(gw_config *cfg, const config_option *o, double v,
                      const char *where, char *err, size_t errlen)
{
    /* %.16g: ranges and values print as plain integers up to 2^53 */
    if (!isfinite(v) || v < o->min || v > o->max) {
        snprintf(err, errlen, "%s: %.16g is out of range; expected %s from %.16g to %.16g", where, v,
                 o->type == OPT_INT ? "an integer" : "a number", o->min, o->max);
        return -1;
    }
    if (o->type == OPT_INT) {
        if (v != floor(v)) {
            snprintf(err, errlen, "%s: expected an integer, got %.16g", where, v);
            return -1;
        }
        *(long long *)((char *)cfg + o->offset) = (long long)v;
    } else {
        *(double *)((char *)cfg + o->offset) = v;
    }
    return 0;
}

static void set_bool(gw_config *cfg, const config_option *o, bool v) { *(bool *)((char *)cfg + o->offset) = v; }

/* An array of objects, stored as compact JSON text. `bad` gets the offending element. */
static int set_objects(gw_config *cfg, const config_option *o, const cJSON *v, const cJSON **bad,
                       const char *where, char *err, size_t errlen)
{
    *bad = NULL;
    bool strings = o->type == OPT_STRINGS;
    if (!cJSON_IsArray(v)) {
        snprintf(err, errlen, "%s: expected an array of %s", where, strings ? "strings" : "objects");
        return -1;
    }
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (strings ? !cJSON_IsString(e) : !cJSON_IsObject(e)) {
            *bad = e;
            snprintf(err, errlen, "%s: element %d is not %s", where, i, strings ? "a string" : "an object");
            return -1;
        }
    }
    char *text = cJSON_PrintUnformatted(v);
    if (!text || strlen(text) >= o->size) {
        snprintf(err, errlen, "%s: %s", where, text ? "longer than its limit" : "out of memory");
        cJSON_free(text);
        return -1;
    }
    memcpy((char *)cfg + o->offset, text, strlen(text) + 1);
    cJSON_free(text);
    return 0;
}

/* Append one upstream definition; names must be unique. */
static int add_upstream(gw_config *cfg, const cJSON *obj, const cJSON **bad, char *err, size_t errlen)
{
    *bad = NULL;
    if (!obj) return -1;
    if (cfg->n_upstreams == GW_MAX_UPSTREAMS) {
        snprintf(err, errlen, "at most %d upstreams", GW_MAX_UPSTREAMS);
        return -1;
    }
    up_def *d = &cfg->upstreams[cfg->n_upstreams];
    if (up_def_from_json(d, obj, bad, err, errlen) != 0) return -1;
    for (int i = 0; i < cfg->n_upstreams; i++) {
        if (!strcmp(cfg->upstreams[i].name, d->name)) {
            *bad = cJSON_GetObjectItemCaseSensitive(obj, "name");
            snprintf(err, errlen, "two upstreams are named '%s'", d->name);
            return -1;
        }
    }
    cfg->n_upstreams++;
    return 0;
}

/* ---- flags ---- */

static int apply_json_flag(gw_config *cfg, const config_option *o, const char *flag, const char *value,
                           char *err, size_t errlen)
{
    cJSON *v = cJSON_Parse(value);
    const cJSON *bad;
    char detail[512];
    int rc;
    if (o->type == OPT_UPSTREAMS) {
        rc = add_upstream(cfg, v, &bad, detail, sizeof(detail));
        if (rc != 0) snprintf(err, errlen, "%s: %s", flag, v ? detail : "expected a JSON object");
    } else {
        rc = v ? set_objects(cfg, o, v, &bad, flag, err, errlen) : -1;
        if (!v) snprintf(err, errlen, "%s: expected a JSON array of %s", flag, o->type == OPT_STRINGS ? "strings" : "objects");
    }
    cJSON_Delete(v);
    return rc;
}

int gw_config_apply_flag(gw_config *cfg, const char *flag, const char *value,
                         char *err, size_t errlen)
{
    const config_option *o = find_by_flag(flag);
    if (!o) return 1;
    if (o->type == OPT_BOOL) {
        if (!value || !strcmp(value, "true")) set_bool(cfg, o, true);
        else if (!strcmp(value, "false")) set_bool(cfg, o, false);
        else {
            snprintf(err, errlen, "%s: expected true or false after '=', got '%.40s'", flag, value);
            return -1;
        }
        return 0;
    }
    if (!value) {
        snprintf(err, errlen, "%s needs a value", flag);
        return -1;
    }
    switch (o->type) {
    case OPT_STRING:
    case OPT_CHOICE:
    case OPT_LOG_LEVEL: return set_string(cfg, o, value, flag, err, errlen);
    case OPT_UPSTREAMS:
    case OPT_OBJECTS:
    case OPT_STRINGS: return apply_json_flag(cfg, o, flag, value, err, errlen);
    case OPT_INT:
    case OPT_NUMBER:
    case OPT_BOOL: break;
    }
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end != '\0' || errno == ERANGE) {
        snprintf(err, errlen, "%s: expected a number, got '%.40s'", flag, value);
        return -1;
    }
    return set_number(cfg, o, v, flag, err, errlen);
}

/* ---- the file ---- */

/* Where does the `index`-th object key of the document start, counting keys
 * at any depth in the order they are written? cJSON keeps no positions, so
 * walk the (already validated) text: strings are skipped whole, and a string
 * inside an object right after '{' or ',' is a key. */
static const char *nth_key(const char *text, int index)
{
    char stack[64]; /* '{' or '[' per open level */
    int depth = 0, seen = -1;
    char prev = 0; /* last structural character */
    for (const char *p = text; *p; p++) {
        if (*p == '"') {
            const char *start = p;
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            bool in_object = depth > 0 && depth <= 64 && stack[depth - 1] == '{';
            if (in_object && (prev == '{' || prev == ',') && ++seen == index) return start;
            prev = '"';
            if (!*p) break;
        } else if (*p == '{' || *p == '[') {
            if (depth < 64) stack[depth] = *p;
            depth++;
            prev = *p;
        } else if (*p == '}' || *p == ']') {
            depth--;
            prev = *p;
        } else if (*p == ',' || *p == ':') {
            prev = *p;
        }
    }
    return NULL;
}

/* The document-order index of member `target` among all object members
 * (the same order nth_key counts), or -1. */
static int member_index(const cJSON *node, const cJSON *target, int *counter)
{
    for (const cJSON *c = node->child; c; c = c->next) {
        if (cJSON_IsObject(node)) {
            if (c == target) return *counter;
            (*counter)++;
        }
        int found = member_index(c, target, counter);
        if (found >= 0) return found;
    }
    return -1;
}

static void line_col(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') { (*line)++; *col = 1; }
        else (*col)++;
    }
}

/* The file being loaded: where things stand in it. */
typedef struct {
    const char *path, *text;
    const cJSON *root;
} source;

/* "path:line:col" of member `item` (or of an element of an array: the
 * nearest member before it counts as its place). */
static void place(const source *src, const cJSON *item, char *out, size_t len)
{
    int counter = 0, line, col;
    int index = item ? member_index(src->root, item, &counter) : -1;
    const char *at = index >= 0 ? nth_key(src->text, index) : NULL;
    line_col(src->text, at ? at : src->text, &line, &col);
    snprintf(out, len, "%s:%d:%d", src->path, line, col);
}

/* Read a whole small file into a NUL-terminated heap buffer. */
static char *read_small_file(const char *path, size_t limit, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(limit + 1);
    size_t n = buf ? fread(buf, 1, limit + 1, f) : 0;
    int failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        snprintf(err, errlen, "cannot read config file %s", path);
        free(buf);
        return NULL;
    }
    if (n > limit) {
        snprintf(err, errlen, "config file %s is larger than %zu bytes", path, limit);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int load_upstreams(gw_config *cfg, const source *src, const cJSON *item, const char *where,
                          char *err, size_t errlen)
{
    if (!cJSON_IsArray(item)) {
        snprintf(err, errlen, "%s: expected an array of upstream objects", where);
        return -1;
    }
    int i = 0;
    for (const cJSON *u = item->child; u; u = u->next, i++) {
        const cJSON *bad;
        char detail[512], at[300];
        if (add_upstream(cfg, u, &bad, detail, sizeof(detail)) != 0) {
            place(src, bad ? bad : item, at, sizeof(at));
            snprintf(err, errlen, "%s: upstreams[%d]: %s", at, i, detail);
            return -1;
        }
    }
    return 0;
}

static int load_value(gw_config *cfg, const source *src, const config_option *o, const cJSON *item,
                      const char *where, char *err, size_t errlen)
{
    switch (o->type) {
    case OPT_STRING:
    case OPT_CHOICE:
    case OPT_LOG_LEVEL:
        if (!cJSON_IsString(item)) break;
        return set_string(cfg, o, item->valuestring, where, err, errlen);
    case OPT_INT:
    case OPT_NUMBER:
        if (!cJSON_IsNumber(item)) break;
        return set_number(cfg, o, item->valuedouble, where, err, errlen);
    case OPT_BOOL:
        if (!cJSON_IsBool(item)) break;
        set_bool(cfg, o, cJSON_IsTrue(item));
        return 0;
    case OPT_OBJECTS:
    case OPT_STRINGS: {
        const cJSON *bad;
        return set_objects(cfg, o, item, &bad, where, err, errlen);
    }
    case OPT_UPSTREAMS: return load_upstreams(cfg, src, item, where, err, errlen);
    }
    static const char *const expected[] = {
        [OPT_STRING] = "a string", [OPT_CHOICE] = "a string", [OPT_LOG_LEVEL] = "a string",
        [OPT_INT] = "a number", [OPT_NUMBER] = "a number", [OPT_BOOL] = "true or false",
    };
    snprintf(err, errlen, "%s: expected %s", where, expected[o->type]);
    return -1;
}

/* Apply the members of `obj`, whose keys are named `prefix`.key ("" at the top). */
static int load_object(gw_config *cfg, const source *src, const cJSON *obj, const char *prefix,
                       char *err, size_t errlen)
{
    for (const cJSON *item = obj->child; item; item = item->next) {
        char key[160], at[300], where[512];
        snprintf(key, sizeof(key), "%s%s%.64s", prefix, *prefix ? "." : "", item->string);
        place(src, item, at, sizeof(at));
        snprintf(where, sizeof(where), "%s: '%s'", at, key);
        for (const cJSON *prev = obj->child; prev != item; prev = prev->next) {
            if (strcmp(prev->string, item->string) == 0) {
                snprintf(err, errlen, "%s: duplicate key", where);
                return -1;
            }
        }
        if (strchr(item->string, '.')) {
            snprintf(err, errlen, "%s: unknown key; a key a.b is written as \"a\": {\"b\": ...}", where);
            return -1;
        }
        const config_option *o = find_by_key(key);
        if (o) {
            if (load_value(cfg, src, o, item, where, err, errlen) != 0) return -1;
        } else if (is_section(key)) {
            if (!cJSON_IsObject(item)) {
                snprintf(err, errlen, "%s: expected an object of %s.* keys", where, key);
                return -1;
            }
            if (load_object(cfg, src, item, key, err, errlen) != 0) return -1;
        } else {
            snprintf(err, errlen, "%s: unknown key; see docs/configuration.md for the keys", where);
            return -1;
        }
    }
    return 0;
}

int gw_config_load_file(gw_config *cfg, const char *path, char *err, size_t errlen)
{
    char *text = read_small_file(path, 1 << 20, err, errlen);
    if (!text) return -1;

    int rc = -1;
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &parse_end, 1);
    if (!root) {
        int line, col;
        const char *at = parse_end ? parse_end : cJSON_GetErrorPtr();
        line_col(text, at ? at : text, &line, &col);
        snprintf(err, errlen, "%s:%d:%d: invalid JSON", path, line, col);
    } else if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s:1:1: the configuration must be a JSON object", path);
    } else {
        source src = {path, text, root};
        rc = load_object(cfg, &src, root, "", err, errlen);
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ---- output ---- */

void gw_config_print_flags(FILE *out)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char both[64];
        const char *alias = short_flag_of(options[i].flag);
        snprintf(both, sizeof(both), "%s%s%s%s", alias ? alias : "", alias ? ", " : "", options[i].flag,
                 options[i].type == OPT_BOOL ? "[=false]" : "");
        fprintf(out, "  %-38s %s\n", both, options[i].help);
    }
}

static cJSON *upstream_json(const up_def *d)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", d->name);
    cJSON_AddStringToObject(j, "provider", d->provider == UP_ANTHROPIC ? "anthropic" : "openai");
    cJSON_AddStringToObject(j, "base_url", d->base_url);
    cJSON_AddStringToObject(j, "model", d->model);
    cJSON_AddStringToObject(j, "api_key_env", d->api_key_env); /* the variable's name, not the key */
    cJSON_AddStringToObject(j, "api_key_header", d->api_key_header);
    cJSON *h = cJSON_AddObjectToObject(j, "headers");
    for (int i = 0; i < d->n_headers; i++) cJSON_AddStringToObject(h, d->headers[i].name, d->headers[i].value);
    cJSON_AddNumberToObject(j, "connect_timeout_s", d->connect_timeout_s);
    cJSON_AddNumberToObject(j, "first_byte_timeout_s", d->first_byte_timeout_s);
    cJSON_AddNumberToObject(j, "idle_timeout_s", d->idle_timeout_s);
    cJSON_AddNumberToObject(j, "total_timeout_s", d->total_timeout_s);
    cJSON_AddNumberToObject(j, "max_in_flight", d->max_in_flight);
    cJSON_AddNumberToObject(j, "max_retries", d->max_retries);
    cJSON_AddNumberToObject(j, "breaker_failures", d->breaker_failures);
    cJSON_AddNumberToObject(j, "breaker_cooldown_s", d->breaker_cooldown_s);
    cJSON_AddStringToObject(j, "zone", d->zone == UP_ZONE_PRIVATE ? "private" : "external");
    cJSON_AddNumberToObject(j, "price_input_per_mtok", d->price_input_per_mtok);
    cJSON_AddNumberToObject(j, "price_output_per_mtok", d->price_output_per_mtok);
    return j;
}

/* The object that holds `key` ("ledger.path" -> root's "ledger"), created
 * when missing; *leaf gets the last part of the key. */
static cJSON *parent_of(cJSON *root, const char *key, const char **leaf)
{
    const char *dot = strchr(key, '.');
    if (!dot) {
        *leaf = key;
        return root;
    }
    char section[64];
    snprintf(section, sizeof(section), "%.*s", (int)(dot - key), key);
    cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, section);
    if (!obj) obj = cJSON_AddObjectToObject(root, section);
    return parent_of(obj, dot + 1, leaf);
}

void gw_config_print_json(const gw_config *cfg, FILE *out)
{
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option *o = &options[i];
        const char *p = (const char *)cfg + o->offset, *leaf;
        cJSON *parent = parent_of(root, o->key, &leaf);
        switch (o->type) {
        case OPT_STRING:
        case OPT_CHOICE: cJSON_AddStringToObject(parent, leaf, p); break;
        case OPT_LOG_LEVEL: cJSON_AddStringToObject(parent, leaf, log_level_names[cfg->log_level]); break;
        case OPT_INT: cJSON_AddNumberToObject(parent, leaf, (double)*(const long long *)p); break;
        case OPT_NUMBER: cJSON_AddNumberToObject(parent, leaf, *(const double *)p); break;
        case OPT_BOOL: cJSON_AddBoolToObject(parent, leaf, *(const bool *)p); break;
        case OPT_OBJECTS:
        case OPT_STRINGS: {
            cJSON *v = cJSON_Parse(p);
            if (v || o->type == OPT_STRINGS) cJSON_AddItemToObject(parent, leaf, v ? v : cJSON_CreateArray());
            break;
        }
        case OPT_UPSTREAMS: {
            cJSON *arr = cJSON_AddArrayToObject(parent, leaf);
            for (int u = 0; u < cfg->n_upstreams; u++) cJSON_AddItemToArray(arr, upstream_json(&cfg->upstreams[u]));
            break;
        }
        }
    }
    char *s = cJSON_Print(root);
    if (s) fprintf(out, "%s\n", s);
    free(s);
    cJSON_Delete(root);
}

/* ---- value checks (the table's `check`) ---- */

static bool is_ipv4_text(const char *h)
{
    return strspn(h, "0123456789.") == strlen(h);
}

int gw_listen_parse(const char *listen, char *host, size_t hostlen, unsigned short *port,
                    char *err, size_t errlen)
{
    static const char example[] = "(e.g. 127.0.0.1:8080 or [::1]:8080)";
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen) {
        snprintf(err, errlen, "listen address '%.200s' is not host:port or [ipv6]:port %s", listen, example);
        return -1;
    }
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    bool bracketed = listen[0] == '[';
    if (bracketed) {
        if (hlen < 3 || colon[-1] != ']') {
            snprintf(err, errlen, "listen address '%.200s': an IPv6 address goes in brackets before the port %s",
                     listen, example);
            return -1;
        }
        h++;
        hlen -= 2;
    }
    if (hlen >= hostlen) {
        snprintf(err, errlen, "listen address '%.200s': the host is too long", listen);
        return -1;
    }
    const char *p = colon + 1;
    char *end;
    errno = 0;
    long n = strtol(p, &end, 10);
    if (!*p || *end || *p == '-' || *p == '+' || *p == ' ') {
        snprintf(err, errlen, "listen address '%.200s': the port '%.20s' is not a number %s", listen, p, example);
        return -1;
    }
    if (errno || n > 65535) {
        snprintf(err, errlen, "listen address '%.200s': port %.20s is out of range; use 0 to 65535 "
                 "(0 picks a free port)", listen, p);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    unsigned char addr[16];
    const char *problem = NULL;
    if (bracketed) {
        if (inet_pton(AF_INET6, host, addr) != 1) problem = "is not an IPv6 address";
    } else if (strchr(host, ':')) {
        problem = "looks like an IPv6 address: put it in brackets, as [::1]:8080";
    } else if (is_ipv4_text(host)) {
        if (inet_pton(AF_INET, host, addr) != 1) problem = "is not an IPv4 address";
    } else if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != hlen) {
        problem = "is not a host name (letters, digits, '-' and '.')";
    }
    if (problem) {
        snprintf(err, errlen, "listen address '%.200s': host '%s' %s", listen, host, problem);
        return -1;
    }
    *port = (unsigned short)n;
    return 0;
}

static int check_listen(const char *v, char *err, size_t errlen)
{
    char host[256];
    unsigned short port;
    return gw_listen_parse(v, host, sizeof(host), &port, err, errlen);
}

static int check_env_name(const char *v, char *err, size_t errlen)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    if (!strchr(alpha, v[0]) || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789") !=
                                     strlen(v)) {
        snprintf(err, errlen, "'%.60s' is not an environment variable name (letters, digits and _)", v);
        return -1;
    }
    return 0;
}

void gw_model_id(const char *model_path, char *out, size_t outlen)
{
    const char *slash = strrchr(model_path, '/');
    const char *name = slash ? slash + 1 : model_path;
    size_t n = strlen(name);
    if (n > 5 && strcmp(name + n - 5, ".gguf") == 0) n -= 5;
    snprintf(out, outlen, "%.*s", (int)n, name);
}
