/* def.c: upstream definitions: defaults and the "upstreams" config entries.
 *
 * One table lists every key of an upstream entry with its type and range,
 * as gateway/config.c does for the top level. Keys are never read from the
 * file: only the name of the environment variable that holds one.
 */
#include "upstream.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

void up_def_defaults(up_def *d)
{
    memset(d, 0, sizeof(*d));
    d->provider = UP_OPENAI;
    d->connect_timeout_s = 5;
    d->first_byte_timeout_s = 60;
    d->idle_timeout_s = 30;
    d->total_timeout_s = 600;
    d->max_in_flight = 256;
    d->max_retries = 2;
    d->breaker_failures = 5;
    d->breaker_cooldown_s = 30;
    d->zone = UP_ZONE_EXTERNAL;
}

typedef enum { K_STRING, K_NUMBER, K_INT, K_PROVIDER, K_ZONE, K_HEADERS } key_type;

typedef struct {
    const char *key;
    key_type type;
    size_t offset, size;
    double min, max;
} def_key;

#define S(f) offsetof(up_def, f), sizeof(((up_def *)0)->f)
#define N(f) offsetof(up_def, f), 0

static const def_key keys[] = {
    {"name", K_STRING, S(name), 0, 0},
    {"provider", K_PROVIDER, N(provider), 0, 0},
    {"base_url", K_STRING, S(base_url), 0, 0},
    {"model", K_STRING, S(model), 0, 0},
    {"api_key_env", K_STRING, S(api_key_env), 0, 0},
    {"api_key_header", K_STRING, S(api_key_header), 0, 0},
    {"headers", K_HEADERS, N(headers), 0, 0},
    {"connect_timeout_s", K_NUMBER, N(connect_timeout_s), 0.001, 3600},
    {"first_byte_timeout_s", K_NUMBER, N(first_byte_timeout_s), 0.001, 3600},
    {"idle_timeout_s", K_NUMBER, N(idle_timeout_s), 0.001, 3600},
    {"total_timeout_s", K_NUMBER, N(total_timeout_s), 0.001, 86400},
    {"max_in_flight", K_INT, N(max_in_flight), 1, 100000},
    {"max_retries", K_INT, N(max_retries), 0, 10},
    {"breaker_failures", K_INT, N(breaker_failures), 1, 1000},
    {"breaker_cooldown_s", K_NUMBER, N(breaker_cooldown_s), 0.001, 86400},
    {"zone", K_ZONE, N(zone), 0, 0},
    {"price_input_per_mtok", K_NUMBER, N(price_input_per_mtok), 0, 1e6},
    {"price_output_per_mtok", K_NUMBER, N(price_output_per_mtok), 0, 1e6},
};

static int fail(const cJSON **bad, const cJSON *at, char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    *bad = at;
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

static int set_headers(up_def *d, const cJSON *v, const cJSON **bad, char *err, size_t errlen)
{
    if (!cJSON_IsObject(v)) return fail(bad, v, err, errlen, "'%s': expected an object of header names to values%s", "headers", "");
    for (const cJSON *h = v->child; h; h = h->next) {
        if (d->n_headers == UP_MAX_HEADERS) return fail(bad, h, err, errlen, "'%s': at most 8 extra headers%s", "headers", "");
        if (!cJSON_IsString(h) || strlen(h->string) >= sizeof(d->headers[0].name) ||
            strlen(h->valuestring) >= sizeof(d->headers[0].value) || strpbrk(h->string, ":\r\n ") ||
            strpbrk(h->valuestring, "\r\n"))
            return fail(bad, h, err, errlen, "header '%.60s': expected a string value, a name without ':' or spaces, and no line breaks%s", h->string, "");
        snprintf(d->headers[d->n_headers].name, sizeof(d->headers[0].name), "%s", h->string);
        snprintf(d->headers[d->n_headers].value, sizeof(d->headers[0].value), "%s", h->valuestring);
        d->n_headers++;
    }
    return 0;
}

int up_def_from_json(up_def *d, const cJSON *obj, const cJSON **bad, char *err, size_t errlen)
{
    up_def_defaults(d);
    *bad = NULL;
    if (!cJSON_IsObject(obj)) return fail(bad, NULL, err, errlen, "each upstream must be a JSON object%s%s", "", "");
    for (const cJSON *v = obj->child; v; v = v->next) {
        const def_key *k = NULL;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (!strcmp(keys[i].key, v->string)) k = &keys[i];
        if (!k) return fail(bad, v, err, errlen, "'%.60s': unknown upstream key%s", v->string, "");
        char *field = (char *)d + k->offset;
        switch (k->type) {
        case K_STRING:
            if (!cJSON_IsString(v) || strlen(v->valuestring) >= k->size)
                return fail(bad, v, err, errlen, "'%s': expected a string%s", k->key, " (shorter than its limit)");
            snprintf(field, k->size, "%s", v->valuestring);
            break;
        case K_NUMBER:
        case K_INT:
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < k->min || v->valuedouble > k->max ||
                (k->type == K_INT && v->valuedouble != floor(v->valuedouble)))
                return fail(bad, v, err, errlen, "'%s': expected %s in its range (see docs/configuration.md)", k->key,
                            k->type == K_INT ? "an integer" : "a number");
            if (k->type == K_INT) *(int *)field = (int)v->valuedouble;
            else *(double *)field = v->valuedouble;
            break;
        case K_PROVIDER:
            if (cJSON_IsString(v) && !strcmp(v->valuestring, "openai")) d->provider = UP_OPENAI;
            else if (cJSON_IsString(v) && !strcmp(v->valuestring, "anthropic")) d->provider = UP_ANTHROPIC;
            else return fail(bad, v, err, errlen, "'%s': expected \"openai\" or \"anthropic\"%s", k->key, "");
            break;
        case K_ZONE:
            if (cJSON_IsString(v) && !strcmp(v->valuestring, "private")) d->zone = UP_ZONE_PRIVATE;
            else if (cJSON_IsString(v) && !strcmp(v->valuestring, "external")) d->zone = UP_ZONE_EXTERNAL;
            else return fail(bad, v, err, errlen, "'%s': expected \"private\" or \"external\"%s", k->key, "");
            break;
        case K_HEADERS:
            if (set_headers(d, v, bad, err, errlen)) return -1;
            break;
        }
    }
    if (!d->name[0]) return fail(bad, NULL, err, errlen, "an upstream needs a \"name\"%s%s", "", "");
    if (!strcmp(d->name, "local") || !strcmp(d->name, "auto"))
        return fail(bad, cJSON_GetObjectItemCaseSensitive(obj, "name"), err, errlen,
                    "upstream name '%s' is reserved%s", d->name, " (local and auto select the engine)");
    if (!d->base_url[0])
        return fail(bad, cJSON_GetObjectItemCaseSensitive(obj, "name"), err, errlen, "upstream '%s': base_url is required (e.g. \"https://api.openai.com/v1\")%s",
                    d->name, "");
    if (strncmp(d->base_url, "http://", 7) && strncmp(d->base_url, "https://", 8))
        return fail(bad, cJSON_GetObjectItemCaseSensitive(obj, "base_url"), err, errlen,
                    "upstream '%s': base_url must start with http:// or https://%s", d->name, "");
    size_t n = strlen(d->base_url);
    while (n > 0 && d->base_url[n - 1] == '/') d->base_url[--n] = '\0'; /* paths are appended */
    return 0;
}

bool up_def_warning(const up_def *d, char *msg, size_t len)
{
    if (d->model[0]) return false;
    snprintf(msg, len, "upstream '%s' has no \"model\": requests go out with the client's \"model\", which is "
             "'%s' when clients pick this upstream by name; set \"model\" to the model the upstream serves",
             d->name, d->name);
    return true;
}
