/* config.c: junction's settings, from a JSON file and from flags.
 *
 * One table describes every setting: its JSON key, its flag, its type and
 * range. The file loader and the flag parser both go through it, so a key
 * and its flag can never drift apart, and docs/configuration.md mirrors it.
 * Errors name the key and, for files, the line:column where it stands.
 */
#include "gateway.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_STRING, OPT_INT, OPT_SECONDS, OPT_LOG_LEVEL, OPT_UPSTREAMS, OPT_TEMPLATE } opt_type;

typedef struct {
    const char *key;      /* JSON key */
    const char *flag;     /* command-line flag */
    opt_type type;
    size_t offset;        /* into gw_config */
    size_t size;          /* of a string field */
    double min, max;      /* for numbers */
    const char *help;
} config_option;

#define STR_FIELD(f) offsetof(gw_config, f), sizeof(((gw_config *)0)->f)
#define NUM_FIELD(f) offsetof(gw_config, f), 0

static const config_option options[] = {
    {"listen", "--listen", OPT_STRING, STR_FIELD(listen), 0, 0,
     "address to listen on, host:port or [ipv6]:port (port 0: any free port)"},
    {"log_level", "--log-level", OPT_LOG_LEVEL, NUM_FIELD(log_level), 0, 0,
     "error, warn, info or debug"},
    {"access_log", "--access-log", OPT_STRING, STR_FIELD(access_log), 0, 0,
     "where access-log lines go: - (stderr), off, or a file path"},
    {"max_body_bytes", "--max-body-bytes", OPT_INT, NUM_FIELD(max_body_bytes), 1, 1LL << 30,
     "largest request body accepted, in bytes"},
    {"max_connections", "--max-connections", OPT_INT, NUM_FIELD(max_connections), 1, 1000000,
     "client connections open at once; more wait in the kernel's backlog"},
    {"request_timeout_s", "--request-timeout", OPT_SECONDS, NUM_FIELD(request_timeout_s), 0.001, 86400,
     "seconds to receive a request, and to keep an idle connection"},
    {"drain_timeout_s", "--drain-timeout", OPT_SECONDS, NUM_FIELD(drain_timeout_s), 0, 86400,
     "seconds in-flight requests may take to finish after SIGTERM"},
    {"workers", "--workers", OPT_INT, NUM_FIELD(workers), 0, 1024,
     "worker threads for long jobs (0: one per CPU core)"},
    {"model", "--model", OPT_STRING, STR_FIELD(model), 0, 0,
     "GGUF model file for the local engine (empty: no local model)"},
    {"ctx_size", "--ctx-size", OPT_INT, NUM_FIELD(ctx_size), 0, 1 << 20,
     "local engine context in tokens (0: the model's training context)"},
    {"threads", "--threads", OPT_INT, NUM_FIELD(threads), 0, 1024,
     "local engine compute threads (0: one per CPU core)"},
    {"parallel", "--parallel", OPT_INT, NUM_FIELD(parallel), 1, 256,
     "local requests generated together, each with its own ctx_size of KV cache"},
    {"queue_size", "--queue-size", OPT_INT, NUM_FIELD(queue_size), 0, 100000,
     "local requests that may wait while the parallel ones run; more get 429"},
    {"chat_template", "--chat-template", OPT_TEMPLATE, STR_FIELD(chat_template), 0, 0,
     "how chat messages become the local model's prompt: auto, llama2 or plain"},
    {"upstreams", "--upstream", OPT_UPSTREAMS, NUM_FIELD(upstreams), 0, 0,
     "add a remote model API: a JSON object as in the file's \"upstreams\" (repeatable)"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

void gw_config_defaults(gw_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8080");
    cfg->log_level = GW_LOG_INFO;
    snprintf(cfg->access_log, sizeof(cfg->access_log), "-");
    cfg->max_body_bytes = 1 << 20;
    cfg->max_connections = 1024;
    cfg->request_timeout_s = 60;
    cfg->drain_timeout_s = 30;
    cfg->workers = 0;
    cfg->queue_size = 16;
    cfg->parallel = 1;
    snprintf(cfg->chat_template, sizeof(cfg->chat_template), "auto");
}

static const config_option *find_by_key(const char *key)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].key, key) == 0) return &options[i];
    return NULL;
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

int gw_parse_log_level(const char *s, gw_log_level *out)
{
    for (int i = 0; i <= GW_LOG_DEBUG; i++)
        if (strcmp(s, log_level_names[i]) == 0) { *out = (gw_log_level)i; return 0; }
    return -1;
}

/* Store a string value; `where` prefixes error messages ("--listen" or "file:3:5: 'listen'"). */
static int set_string(gw_config *cfg, const config_option *o, const char *v,
                      const char *where, char *err, size_t errlen)
{
    if (o->type == OPT_LOG_LEVEL) {
        gw_log_level lvl;
        if (gw_parse_log_level(v, &lvl) != 0) {
            snprintf(err, errlen, "%s: unknown log level '%.40s'; use error, warn, info or debug", where, v);
            return -1;
        }
        cfg->log_level = lvl;
        return 0;
    }
    if (o->type == OPT_TEMPLATE && strcmp(v, "auto") && strcmp(v, "llama2") && strcmp(v, "plain")) {
        snprintf(err, errlen, "%s: unknown chat template '%.40s'; use auto, llama2 or plain", where, v);
        return -1;
    }
    size_t n = strlen(v);
    if ((n == 0 && o->offset != offsetof(gw_config, model)) || n >= o->size) {
        snprintf(err, errlen, "%s: expected a non-empty string of at most %zu bytes", where, o->size - 1);
        return -1;
    }
    memcpy((char *)cfg + o->offset, v, n + 1);
    return 0;
}

static int set_number(gw_config *cfg, const config_option *o, double v,
                      const char *where, char *err, size_t errlen)
{
    if (!isfinite(v) || v < o->min || v > o->max) {
        snprintf(err, errlen, "%s: %g is out of range; expected %s from %g to %g", where, v,
                 o->type == OPT_INT ? "an integer" : "a number", o->min, o->max);
        return -1;
    }
    if (o->type == OPT_INT) {
        if (v != floor(v)) {
            snprintf(err, errlen, "%s: expected an integer, got %g", where, v);
            return -1;
        }
        *(long long *)((char *)cfg + o->offset) = (long long)v;
    } else {
        *(double *)((char *)cfg + o->offset) = v;
    }
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

int gw_config_apply_flag(gw_config *cfg, const char *flag, const char *value,
                         char *err, size_t errlen)
{
    const config_option *o = find_by_flag(flag);
    if (!o) return 1;
    if (!value) {
        snprintf(err, errlen, "%s needs a value", flag);
        return -1;
    }
    if (o->type == OPT_STRING || o->type == OPT_LOG_LEVEL || o->type == OPT_TEMPLATE)
        return set_string(cfg, o, value, flag, err, errlen);
    if (o->type == OPT_UPSTREAMS) {
        cJSON *obj = cJSON_Parse(value);
        const cJSON *bad;
        char detail[512];
        int rc = add_upstream(cfg, obj, &bad, detail, sizeof(detail));
        if (rc != 0) snprintf(err, errlen, "%s: %s", flag, obj ? detail : "expected a JSON object");
        cJSON_Delete(obj);
        return rc;
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

static int upstream_index(const cJSON *array, const cJSON *item)
{
    int i = 0;
    for (const cJSON *c = array->child; c && c != item; c = c->next) i++;
    return i;
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

static int apply_member(gw_config *cfg, const cJSON *item, const char *where,
                        char *err, size_t errlen)
{
    const config_option *o = find_by_key(item->string);
    if (!o) {
        snprintf(err, errlen, "%s: unknown key; see docs/configuration.md for the keys", where);
        return -1;
    }
    if (o->type == OPT_STRING || o->type == OPT_LOG_LEVEL || o->type == OPT_TEMPLATE) {
        if (!cJSON_IsString(item)) {
            snprintf(err, errlen, "%s: expected a string", where);
            return -1;
        }
        return set_string(cfg, o, item->valuestring, where, err, errlen);
    }
    if (!cJSON_IsNumber(item)) {
        snprintf(err, errlen, "%s: expected a number", where);
        return -1;
    }
    return set_number(cfg, o, item->valuedouble, where, err, errlen);
}

int gw_config_load_file(gw_config *cfg, const char *path, char *err, size_t errlen)
{
    char *text = read_small_file(path, 1 << 20, err, errlen);
    if (!text) return -1;

    int rc = -1, line, col;
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &parse_end, 1);
    if (!root) {
        const char *at = parse_end ? parse_end : cJSON_GetErrorPtr();
        line_col(text, at ? at : text, &line, &col);
        snprintf(err, errlen, "%s:%d:%d: invalid JSON", path, line, col);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s:1:1: the configuration must be a JSON object", path);
        goto out;
    }
    for (const cJSON *item = root->child; item; item = item->next) {
        int counter = 0, index = member_index(root, item, &counter);
        const char *at = nth_key(text, index);
        line_col(text, at ? at : text, &line, &col);
        char where[512];
        snprintf(where, sizeof(where), "%s:%d:%d: '%.64s'", path, line, col, item->string);
        for (const cJSON *prev = root->child; prev != item; prev = prev->next) {
            if (strcmp(prev->string, item->string) == 0) {
                snprintf(err, errlen, "%s: duplicate key", where);
                goto out;
            }
        }
        const config_option *o = find_by_key(item->string);
        if (o && o->type == OPT_UPSTREAMS) {
            if (!cJSON_IsArray(item)) {
                snprintf(err, errlen, "%s: expected an array of upstream objects", where);
                goto out;
            }
            for (const cJSON *u = item->child; u; u = u->next) {
                const cJSON *bad;
                char detail[512];
                if (add_upstream(cfg, u, &bad, detail, sizeof(detail)) != 0) {
                    counter = 0;
                    const char *bat = bad ? nth_key(text, member_index(root, bad, &counter)) : NULL;
                    line_col(text, bat ? bat : at ? at : text, &line, &col);
                    snprintf(err, errlen, "%s:%d:%d: upstreams[%d]: %s", path, line, col,
                             upstream_index(item, u), detail);
                    goto out;
                }
            }
            continue;
        }
        if (apply_member(cfg, item, where, err, errlen) != 0) goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

void gw_config_print_flags(FILE *out)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char both[48];
        const char *alias = short_flag_of(options[i].flag);
        snprintf(both, sizeof(both), "%s%s%s", alias ? alias : "", alias ? ", " : "", options[i].flag);
        fprintf(out, "  %-22s %s\n", both, options[i].help);
    }
}

void gw_config_print_json(const gw_config *cfg, FILE *out)
{
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option *o = &options[i];
        const char *p = (const char *)cfg + o->offset;
        switch (o->type) {
        case OPT_STRING:
        case OPT_TEMPLATE: cJSON_AddStringToObject(root, o->key, p); break;
        case OPT_LOG_LEVEL: cJSON_AddStringToObject(root, o->key, log_level_names[cfg->log_level]); break;
        case OPT_INT: cJSON_AddNumberToObject(root, o->key, (double)*(const long long *)p); break;
        case OPT_SECONDS: cJSON_AddNumberToObject(root, o->key, *(const double *)p); break;
        case OPT_UPSTREAMS: {
            cJSON *arr = cJSON_AddArrayToObject(root, o->key);
            for (int u = 0; u < cfg->n_upstreams; u++) {
                const up_def *d = &cfg->upstreams[u];
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "name", d->name);
                cJSON_AddStringToObject(j, "provider", d->provider == UP_ANTHROPIC ? "anthropic" : "openai");
                cJSON_AddStringToObject(j, "base_url", d->base_url);
                cJSON_AddStringToObject(j, "model", d->model);
                cJSON_AddStringToObject(j, "api_key_env", d->api_key_env); /* the variable's name, not the key */
                cJSON_AddStringToObject(j, "zone", d->zone == UP_ZONE_PRIVATE ? "private" : "external");
                cJSON_AddNumberToObject(j, "max_retries", d->max_retries);
                cJSON_AddNumberToObject(j, "price_input_per_mtok", d->price_input_per_mtok);
                cJSON_AddNumberToObject(j, "price_output_per_mtok", d->price_output_per_mtok);
                cJSON_AddItemToArray(arr, j);
            }
            break;
        }
        }
    }
    char *s = cJSON_Print(root);
    if (s) fprintf(out, "%s\n", s);
    free(s);
    cJSON_Delete(root);
}
