/* detect_custom.c: the operator's own terms and regular expressions.
 *
 * Operators know what is secret in their business (project code names,
 * customer id formats); the configuration lists them. Patterns written by
 * people go through PCRE2, compiled once (JIT when available) with a match
 * limit so that a catastrophic pattern cannot stall a request; terms become
 * one escaped, case-insensitive alternation bounded by non-word
 * characters. Each call makes its own match data, so one detector serves
 * many threads.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "detect_internal.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MATCH_LIMIT 200000   /* backtracking steps per match attempt */
#define DEPTH_LIMIT 1000
#define HEAP_LIMIT_KIB 8192
#define MAX_TERM 256

typedef struct {
    char kind[64];
    float weight;
    pcre2_code *code;
} rule;

struct det_custom {
    rule *rules;
    int n;
    pcre2_match_context *mctx;
};

static const uint32_t utf_options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_UCP;

void det_custom_free(det_custom *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) pcre2_code_free(c->rules[i].code);
    free(c->rules);
    pcre2_match_context_free(c->mctx);
    free(c);
}

static bool valid_kind(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 63) return false;
    for (size_t i = 0; i < n; i++)
        if (!det_is_lower((unsigned char)k[i]) && !det_is_digit((unsigned char)k[i]) && k[i] != '_') return false;
    return true;
}

/* "(?<![\p{L}\p{N}_])(?:t1|t2)(?![\p{L}\p{N}_])" with every other byte escaped. */
static char *terms_pattern(const cJSON *terms, int idx, const char *kind, char *err, size_t errlen)
{
    size_t cap = 64;
    int count = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, terms) {
        if (!cJSON_IsString(x) || !x->valuestring[0] || strlen(x->valuestring) > MAX_TERM) {
            snprintf(err, errlen, "custom_rules[%d] (%s): terms[%d] must be a non-empty string of at most "
                     "%d bytes", idx, kind, count, MAX_TERM);
            return NULL;
        }
        cap += 2 * strlen(x->valuestring) + 1;
        count++;
    }
    if (count == 0) {
        snprintf(err, errlen, "custom_rules[%d] (%s): \"terms\" is empty; list at least one term", idx, kind);
        return NULL;
    }
    char *p = malloc(cap);
    if (!p) {
        snprintf(err, errlen, "custom_rules[%d] (%s): out of memory", idx, kind);
        return NULL;
    }
    size_t o = (size_t)sprintf(p, "(?<![\\p{L}\\p{N}_])(?:");
    int i = 0;
    cJSON_ArrayForEach(x, terms) {
        if (i++) p[o++] = '|';
        for (const char *c = x->valuestring; *c; c++) {
            if (!det_is_alnum((unsigned char)*c) && (unsigned char)*c < 0x80) p[o++] = '\\';
            p[o++] = *c;
        }
    }
    strcpy(p + o, ")(?![\\p{L}\\p{N}_])");
    return p;
}

static int compile_rule(rule *r, const char *pattern, uint32_t options, int idx, const char *what,
                        char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    r->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, options | utf_options, &code, &off, NULL);
    if (!r->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "custom_rules[%d] (%s): %s does not compile at offset %zu: %s; fix the pattern",
                 idx, r->kind, what, (size_t)off, (const char *)msg);
        return -1;
    }
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);   /* without JIT the interpreter runs it */
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = md ? pcre2_match(r->code, (PCRE2_SPTR) "", 0, 0, 0, md, NULL) : PCRE2_ERROR_NOMEMORY;
    pcre2_match_data_free(md);
    if (rc >= 0) {
        snprintf(err, errlen, "custom_rules[%d] (%s): the %s matches the empty string, so it would match "
                 "everywhere; make it require at least one character", idx, r->kind, what);
        return -1;
    }
    return 0;
}

static int parse_rule(rule *r, const cJSON *e, int idx, char *err, size_t errlen)
{
    if (!cJSON_IsObject(e)) {
        snprintf(err, errlen, "custom_rules[%d]: must be an object like {\"kind\": \"customer_id\", "
                 "\"regex\": \"CUST-[0-9]{6}\"}", idx);
        return -1;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
    if (!cJSON_IsString(kind) || !valid_kind(kind->valuestring)) {
        snprintf(err, errlen, "custom_rules[%d]: \"kind\" must be 1 to 63 characters of a-z, 0-9 and _ "
                 "(e.g. \"project_codename\")", idx);
        return -1;
    }
    snprintf(r->kind, sizeof r->kind, "%s", kind->valuestring);
    const cJSON *terms = cJSON_GetObjectItemCaseSensitive(e, "terms");
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(e, "regex");
    const cJSON *weight = cJSON_GetObjectItemCaseSensitive(e, "weight");
    for (const cJSON *m = e->child; m; m = m->next)
        if (strcmp(m->string, "kind") && strcmp(m->string, "terms") && strcmp(m->string, "regex") &&
            strcmp(m->string, "weight")) {
            snprintf(err, errlen, "custom_rules[%d] (%s): unknown key \"%s\"; the keys are kind, terms, "
                     "regex and weight", idx, r->kind, m->string);
            return -1;
        }
    if (!terms == !regex) {
        snprintf(err, errlen, "custom_rules[%d] (%s): give exactly one of \"terms\" (an array of strings) "
                 "or \"regex\" (a string)", idx, r->kind);
        return -1;
    }
    r->weight = 0.9f;
    if (weight) {
        if (!cJSON_IsNumber(weight) || !(weight->valuedouble > 0.0 && weight->valuedouble <= 1.0)) {
            snprintf(err, errlen, "custom_rules[%d] (%s): \"weight\" must be a number in (0, 1]", idx, r->kind);
            return -1;
        }
        r->weight = (float)weight->valuedouble;
    }
    if (regex) {
        if (!cJSON_IsString(regex) || !regex->valuestring[0]) {
            snprintf(err, errlen, "custom_rules[%d] (%s): \"regex\" must be a non-empty string", idx, r->kind);
            return -1;
        }
        return compile_rule(r, regex->valuestring, 0, idx, "regex", err, errlen);
    }
    if (!cJSON_IsArray(terms)) {
        snprintf(err, errlen, "custom_rules[%d] (%s): \"terms\" must be an array of strings", idx, r->kind);
        return -1;
    }
    char *pattern = terms_pattern(terms, idx, r->kind, err, errlen);
    if (!pattern) return -1;
    int rc = compile_rule(r, pattern, PCRE2_CASELESS, idx, "terms", err, errlen);
    free(pattern);
    return rc;
}

int det_custom_new(det_custom **out, const cJSON *rules, char *err, size_t errlen)
{
    *out = NULL;
    if (rules && !cJSON_IsArray(rules) && !cJSON_IsNull(rules)) {
        snprintf(err, errlen, "custom_rules must be an array of rules, e.g. [{\"kind\": \"customer_id\", "
                 "\"regex\": \"CUST-[0-9]{6}\"}]");
        return -1;
    }
    det_custom *c = calloc(1, sizeof *c);
    int count = cJSON_IsArray(rules) ? cJSON_GetArraySize(rules) : 0;
    if (c && count > 0) c->rules = calloc((size_t)count, sizeof *c->rules);
    if (c) c->mctx = pcre2_match_context_create(NULL);
    if (!c || (count > 0 && !c->rules) || !c->mctx) {
        det_custom_free(c);
        snprintf(err, errlen, "out of memory loading %d custom rules", count);
        return -1;
    }
    pcre2_set_match_limit(c->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(c->mctx, DEPTH_LIMIT);
    pcre2_set_heap_limit(c->mctx, HEAP_LIMIT_KIB);
    const cJSON *list = count > 0 ? rules : NULL, *e;
    cJSON_ArrayForEach(e, list) {
        if (parse_rule(&c->rules[c->n], e, c->n, err, errlen) != 0) {
            pcre2_code_free(c->rules[c->n].code);
            det_custom_free(c);
            return -1;
        }
        c->n++;
    }
    *out = c;
    return 0;
}

void det_scan_custom(det_scan *s)
{
    const det_custom *c = s->d->custom;
    if (c->n == 0 || s->n == 0) return;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) {
        s->oom = s->full = true;
        return;
    }
    for (int r = 0; r < c->n && !s->full; r++) {
        PCRE2_SIZE at = 0;
        while (at < s->n && !s->full) {
            int rc = pcre2_match(c->rules[r].code, (PCRE2_SPTR)s->t, s->n, at, 0, md, c->mctx);
            if (rc < 0) break;   /* no (more) matches, or a limit hit: this rule stops here */
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] <= ov[0]) {
                at = ov[0] + 1;
                continue;
            }
            det_add_custom(s, c->rules[r].kind, ov[0], ov[1], c->rules[r].weight);
            at = ov[1];
        }
    }
    pcre2_match_data_free(md);
}
