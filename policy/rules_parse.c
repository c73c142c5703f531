/* rules_parse.c: loading a routing policy and refusing a bad one.
 *
 * Why all the checking happens here: a policy mistake (a typo in a route
 * name, a condition on a score no head computes, a rule hidden behind a
 * catch-all) would otherwise show up as requests quietly routed somewhere
 * unexpected. So the load resolves every name once and refuses anything it
 * cannot resolve, naming the rule (index and name), where in its condition
 * the problem is, and what would be accepted. Evaluation (rules.c) then
 * works on the resolved tree only.
 */
#include "rules_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 63

const char *const pol_rules_zone_names[RZ_COUNT] = {"in-process", "private", "external"};
const char *const pol_rules_op_names[RO_COUNT] = {"<", "<=", ">", ">="};

int pol_rules_zone_from_name(const char *name)
{
    for (int z = 0; name && z < RZ_COUNT; z++)
        if (!strcmp(pol_rules_zone_names[z], name)) return z;
    return -1;
}

/* ---- the condition table ---- */

typedef enum {
    V_LIST,         /* all/any: a non-empty array of conditions */
    V_COND,         /* not: one condition */
    V_SCORE,        /* a comparison on a score, thresholds 0..1 */
    V_AMOUNT,       /* a comparison on a count, seconds or dollars, thresholds >= 0 */
    V_BOOL,
    V_KINDS,        /* a detector kind or a list of them */
    V_STRINGS,      /* a string or a list of strings */
    V_NEEDS,        /* "tools", "json", "images", "long_context", or a list */
    V_UPSTREAM,     /* an upstream's name or a zone class */
    V_IN_FLIGHT,    /* {"name": upstream, op: n} */
} vtype;

typedef enum { HEAD_NONE, HEAD_DIFFICULTY, HEAD_SENSITIVITY } head;

static const char *const rc_names[RC_COUNT] = {
    [RC_ALL] = "all", [RC_ANY] = "any", [RC_NOT] = "not",
    [RC_SENSITIVITY] = "sensitivity", [RC_DIFFICULTY] = "difficulty",
    [RC_SENSITIVE] = "sensitive", [RC_DIFFICULT] = "difficult", [RC_KINDS] = "kinds",
    [RC_TENANT] = "tenant", [RC_KEY] = "key", [RC_MODEL] = "model", [RC_NEEDS] = "needs",
    [RC_LOCAL_LACKS] = "local_lacks", [RC_PROMPT_TOKENS] = "prompt_tokens",
    [RC_LOCAL_QUEUE] = "local_queue", [RC_LOCAL_WAIT] = "local_wait_s",
    [RC_LOCAL_AVAILABLE] = "local_available", [RC_UPSTREAM_DOWN] = "upstream_down",
    [RC_UPSTREAM_IN_FLIGHT] = "upstream_in_flight", [RC_BUDGET] = "budget_remaining_usd",
};

static const struct {
    vtype v;
    head needs_head;
} conds[RC_COUNT] = {
    [RC_ALL] = {V_LIST, HEAD_NONE}, [RC_ANY] = {V_LIST, HEAD_NONE}, [RC_NOT] = {V_COND, HEAD_NONE},
    [RC_SENSITIVITY] = {V_SCORE, HEAD_SENSITIVITY}, [RC_DIFFICULTY] = {V_SCORE, HEAD_DIFFICULTY},
    [RC_SENSITIVE] = {V_BOOL, HEAD_NONE}, [RC_DIFFICULT] = {V_BOOL, HEAD_DIFFICULTY},
    [RC_KINDS] = {V_KINDS, HEAD_NONE}, [RC_TENANT] = {V_STRINGS, HEAD_NONE},
    [RC_KEY] = {V_STRINGS, HEAD_NONE}, [RC_MODEL] = {V_STRINGS, HEAD_NONE},
    [RC_NEEDS] = {V_NEEDS, HEAD_NONE}, [RC_LOCAL_LACKS] = {V_NEEDS, HEAD_NONE},
    [RC_PROMPT_TOKENS] = {V_AMOUNT, HEAD_NONE}, [RC_LOCAL_QUEUE] = {V_AMOUNT, HEAD_NONE},
    [RC_LOCAL_WAIT] = {V_AMOUNT, HEAD_NONE}, [RC_LOCAL_AVAILABLE] = {V_BOOL, HEAD_NONE},
    [RC_UPSTREAM_DOWN] = {V_UPSTREAM, HEAD_NONE}, [RC_UPSTREAM_IN_FLIGHT] = {V_IN_FLIGHT, HEAD_NONE},
    [RC_BUDGET] = {V_AMOUNT, HEAD_NONE},
};

static const struct {
    const char *name;
    unsigned bit;
} need_names[] = {
    {"tools", POL_NEED_TOOLS}, {"json", POL_NEED_JSON}, {"images", POL_NEED_IMAGES},
    {"long_context", POL_NEED_LONG_CONTEXT},
};

static const char *const on_sensitive_names[] = {[RS_KEEP] = "keep", [RS_PSEUDONYMIZE] = "pseudonymize",
                                                 [RS_REFUSE] = "refuse"};

/* ---- context and messages ---- */

typedef struct {
    pol_policy *p;
    const pol_policy_env *env;
    char *err;
    size_t errlen;
    int index;                  /* the rule being read */
    const char *name;           /* its name, once known */
    char path[256];             /* where in its "when" */
    bool lenient_heads;         /* the default policy: leave out rules needing a missing head */
    bool missing_head;          /* the current rule needs one */
} ctx;

static int fail(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx *c, const char *fmt, ...)
{
    size_t at = 0;
    if (c->index >= 0) {
        int n = c->name ? snprintf(c->err, c->errlen, "routing.rules[%d] \"%s\": ", c->index, c->name)
                        : snprintf(c->err, c->errlen, "routing.rules[%d]: ", c->index);
        at = n < 0 ? 0 : (size_t)n;
        if (at < c->errlen && c->path[0]) {
            n = snprintf(c->err + at, c->errlen - at, "%s: ", c->path);
            at += n < 0 ? 0 : (size_t)n;
        }
    }
    if (at < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + at, c->errlen - at, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Append ".seg" or "[i]" to the path; returns the old length to restore. */
static size_t path_push(ctx *c, const char *seg, int i)
{
    size_t old = strlen(c->path);
    if (seg)
        snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", seg);
    else
        snprintf(c->path + old, sizeof(c->path) - old, "[%d]", i);
    return old;
}

static void path_pop(ctx *c, size_t old)
{
    c->path[old] = 0;
}

/* "a, b, c" of a list of names into buf. */
static const char *join(char *buf, size_t len, const char *const *names, int n)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < n && at < len; i++) {
        int w = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", names[i]);
        at += w < 0 ? 0 : (size_t)w;
    }
    return buf;
}

static bool valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > NAME_MAX_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", s[i]))
            return false;
    return true;
}

static int find_route(const pol_policy *p, const char *name)
{
    for (int i = 0; i < p->n_routes; i++)
        if (!strcmp(p->routes[i].name, name)) return i;
    return -1;
}

static const char *route_list(const pol_policy *p, char *buf, size_t len)
{
    const char *names[RULES_MAX_ROUTES];
    for (int i = 0; i < p->n_routes; i++) names[i] = p->routes[i].name;
    return join(buf, len, names, p->n_routes);
}

/* ---- values ---- */

/* A string or a non-empty array of strings: pointers into the JSON. */
static int parse_strings(ctx *c, const cJSON *v, const char ***out, int *n)
{
    int count = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (count == 0) return fail(c, "expects a string or a non-empty array of strings");
    const char **strs = calloc((size_t)count, sizeof(*strs));
    if (!strs) return fail(c, "out of memory");
    const cJSON *item = cJSON_IsString(v) ? v : v->child;
    for (int i = 0; i < count; i++, item = item->next) {
        if (!cJSON_IsString(item) || !item->valuestring[0]) {
            free(strs);
            return fail(c, "item %d is not a non-empty string", i);
        }
        strs[i] = item->valuestring;
    }
    *out = strs;
    *n = count;
    return 0;
}

static int parse_kinds(ctx *c, const cJSON *v, rc_cond *out)
{
    if (parse_strings(c, v, &out->strs, &out->n_strs)) return -1;
    for (int i = 0; i < out->n_strs; i++) {
        bool known = false;
        for (int k = 0; k < c->env->n_kinds && !known; k++) known = !strcmp(c->env->kinds[k], out->strs[i]);
        if (!known) {
            char names[1024];
            return fail(c, "unknown detector kind \"%s\" (kinds: %s)", out->strs[i],
                        join(names, sizeof(names), c->env->kinds, c->env->n_kinds));
        }
    }
    return 0;
}

static int parse_needs(ctx *c, const cJSON *v, rc_cond *out)
{
    const char **strs;
    int n;
    if (parse_strings(c, v, &strs, &n)) return -1;
    for (int i = 0; i < n; i++) {
        unsigned bit = 0;
        for (size_t k = 0; k < sizeof(need_names) / sizeof(need_names[0]); k++)
            if (!strcmp(need_names[k].name, strs[i])) bit = need_names[k].bit;
        if (!bit) {
            fail(c, "unknown need \"%s\" (needs: tools, json, images, long_context)", strs[i]);
            free(strs);
            return -1;
        }
        out->needs |= bit;
    }
    free(strs);
    return 0;
}

/* An upstream's name or a zone class ("private", "external"). */
static int parse_upstream(ctx *c, const cJSON *v, rc_cond *out)
{
    const char *name = cJSON_IsString(v) ? v->valuestring : NULL;
    int z = pol_rules_zone_from_name(name);
    out->route = name ? find_route(c->p, name) : -1;
    out->zone = -1;
    if (name && out->route < 0 && (z == RZ_PRIVATE || z == RZ_EXTERNAL)) {
        out->zone = z;
        return 0;
    }
    if (out->route > RULES_LOCAL) return 0;
    char names[1024];
    return fail(c, "expects an upstream's name or \"private\" or \"external\"%s%s%s (upstreams: %s)",
                name ? "; \"" : "", name ? name : "", name ? "\" is none" : "",
                route_list(c->p, names, sizeof(names)));
}

/* Comparison operators (and, for upstream_in_flight, "name"). */
static int parse_cmp(ctx *c, const cJSON *v, rc_cond *out, vtype t)
{
    if (!cJSON_IsObject(v) || !v->child)
        return fail(c, "expects a comparison such as {\">=\": 0.7} (operators: <, <=, >, >=)");
    bool named = false;
    for (const cJSON *item = v->child; item; item = item->next) {
        if (t == V_IN_FLIGHT && !strcmp(item->string, "name")) {
            if (parse_upstream(c, item, out)) return -1;
            if (out->route < 0) return fail(c, "\"name\" must be one upstream, not a zone class");
            named = true;
            continue;
        }
        int op = -1;
        for (int o = 0; o < RO_COUNT; o++)
            if (!strcmp(pol_rules_op_names[o], item->string)) op = o;
        if (op < 0) return fail(c, "unknown operator \"%s\" (operators: <, <=, >, >=)", item->string);
        if (out->n_cmp == RO_COUNT) return fail(c, "operator \"%s\" given twice", item->string);
        double x = cJSON_IsNumber(item) ? item->valuedouble : NAN;
        if (!isfinite(x) || x < 0 || (t == V_SCORE && x > 1))
            return fail(c, "\"%s\" needs a number %s", item->string,
                        t == V_SCORE ? "between 0 and 1 (scores are probabilities)" : "of at least 0");
        out->cmp[out->n_cmp++] = (rc_cmp){(ro_op)op, x};
    }
    if (t == V_IN_FLIGHT && !named) return fail(c, "needs \"name\": the upstream whose requests are counted");
    if (out->n_cmp == 0) return fail(c, "needs an operator (<, <=, >, >=)");
    return 0;
}

/* ---- conditions ---- */

static int parse_cond(ctx *c, const cJSON *obj, rc_cond *out, int depth);

static int parse_leaf(ctx *c, const cJSON *item, rc_cond *out, int depth)
{
    int type = -1;
    for (int t = 0; t < RC_COUNT; t++)
        if (!strcmp(rc_names[t], item->string)) type = t;
    size_t old = path_push(c, item->string, 0);
    if (type < 0) {
        c->path[old] = 0;
        char names[512];
        return fail(c, "unknown condition \"%s\" (conditions: %s)", item->string,
                    join(names, sizeof(names), rc_names, RC_COUNT));
    }
    out->type = (rc_type)type;
    head h = conds[type].needs_head;
    if ((h == HEAD_DIFFICULTY && !c->env->difficulty_head) || (h == HEAD_SENSITIVITY && !c->env->sensitivity_head)) {
        if (!c->lenient_heads)
            return fail(c, "no head provides the %s score (configure classifier.%s_head)",
                        h == HEAD_DIFFICULTY ? "difficulty" : "sensitivity",
                        h == HEAD_DIFFICULTY ? "difficulty" : "sensitivity");
        c->missing_head = true;
    }
    int rc = 0;
    switch (conds[type].v) {
    case V_LIST: {
        int n = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : 0;
        if (n < 1 || n > RULES_MAX_KIDS)
            return fail(c, "expects an array of 1 to %d conditions", RULES_MAX_KIDS);
        out->kids = calloc((size_t)n, sizeof(*out->kids));
        if (!out->kids) return fail(c, "out of memory");
        out->n_kids = n;
        int i = 0;
        for (const cJSON *k = item->child; k && rc == 0; k = k->next, i++) {
            size_t o = path_push(c, NULL, i);
            rc = parse_cond(c, k, &out->kids[i], depth + 1);
            if (rc == 0) path_pop(c, o);
        }
        break;
    }
    case V_COND:
        out->kids = calloc(1, sizeof(*out->kids));
        if (!out->kids) return fail(c, "out of memory");
        out->n_kids = 1;
        rc = parse_cond(c, item, out->kids, depth + 1);
        break;
    case V_SCORE:
    case V_AMOUNT:
    case V_IN_FLIGHT:
        rc = parse_cmp(c, item, out, conds[type].v);
        break;
    case V_BOOL:
        if (!cJSON_IsBool(item)) return fail(c, "expects true or false");
        out->flag = cJSON_IsTrue(item);
        break;
    case V_KINDS:
        rc = parse_kinds(c, item, out);
        break;
    case V_STRINGS:
        rc = parse_strings(c, item, &out->strs, &out->n_strs);
        break;
    case V_NEEDS:
        rc = parse_needs(c, item, out);
        break;
    case V_UPSTREAM:
        rc = parse_upstream(c, item, out);
        break;
    }
    if (rc == 0) path_pop(c, old);
    return rc;
}

/* An object of conditions: none = always, one = itself, more = all of them. */
static int parse_cond(ctx *c, const cJSON *obj, rc_cond *out, int depth)
{
    memset(out, 0, sizeof(*out));
    out->type = RC_ALL;
    if (depth > RULES_MAX_DEPTH) return fail(c, "conditions nest deeper than %d levels", RULES_MAX_DEPTH);
    if (!cJSON_IsObject(obj)) return fail(c, "a condition must be a JSON object such as {\"sensitive\": true}");
    int n = cJSON_GetArraySize(obj);
    if (n == 1) return parse_leaf(c, obj->child, out, depth);
    if (n > RULES_MAX_KIDS) return fail(c, "more than %d conditions in one object", RULES_MAX_KIDS);
    if (n == 0) return 0;
    out->kids = calloc((size_t)n, sizeof(*out->kids));
    if (!out->kids) return fail(c, "out of memory");
    out->n_kids = n;
    int i = 0;
    for (const cJSON *k = obj->child; k; k = k->next, i++)
        if (parse_leaf(c, k, &out->kids[i], depth)) return -1;
    return 0;
}

static void free_cond(rc_cond *c)
{
    for (int i = 0; i < c->n_kids; i++) free_cond(&c->kids[i]);
    free(c->kids);
    free(c->strs);
}

/* ---- rules ---- */

/* Append a route index unless the list has it already. */
static void add_target(rr_rule *r, int t)
{
    for (int i = 0; i < r->n_targets; i++)
        if (r->targets[i] == t) return;
    r->targets[r->n_targets++] = t;
}

static int parse_route(ctx *c, const cJSON *v, rr_rule *r)
{
    const char **names;
    int n;
    size_t old = path_push(c, "route", 0);
    if (!v) return fail(c, "missing: give a route (\"local\", an upstream's name, \"private\" or "
                           "\"external\") or an ordered list of them");
    if (parse_strings(c, v, &names, &n)) return -1;
    /* At most every route once, plus the empty zone classes. */
    r->targets = calloc((size_t)c->p->n_routes + RZ_COUNT, sizeof(*r->targets));
    if (!r->targets) {
        free(names);
        return fail(c, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        int route = find_route(c->p, names[i]);
        int z = pol_rules_zone_from_name(names[i]);
        if (route >= 0) {
            add_target(r, route);
        } else if (z == RZ_PRIVATE || z == RZ_EXTERNAL) {
            bool any = false;
            for (int k = RULES_LOCAL + 1; k < c->p->n_routes; k++)
                if (c->p->routes[k].zone == (rz_zone)z) add_target(r, k), any = true;
            if (!any) add_target(r, -1 - z);
        } else {
            char list[1024];
            fail(c, "unknown route \"%s\" (routes: %s; zone classes: private, external)", names[i],
                 route_list(c->p, list, sizeof(list)));
            free(names);
            return -1;
        }
    }
    free(names);
    path_pop(c, old);
    return 0;
}

static int parse_on_sensitive(ctx *c, const cJSON *v, rr_rule *r)
{
    r->on_sensitive = RS_KEEP;
    if (!v) return 0;
    int mode = -1;
    for (int m = 0; cJSON_IsString(v) && m <= RS_REFUSE; m++)
        if (!strcmp(on_sensitive_names[m], v->valuestring)) mode = m;
    if (mode < 0) return fail(c, "on_sensitive must be \"keep\", \"pseudonymize\" or \"refuse\"");
    if (mode == RS_PSEUDONYMIZE && c->p->n_pseudo == 0)
        return fail(c, "on_sensitive \"pseudonymize\" but routing.pseudonymize_kinds is empty: no "
                       "finding could be pseudonymized; list the kinds that may be");
    r->on_sensitive = mode;
    return 0;
}

static const char *const rule_keys[] = {"name", "when", "route", "on_sensitive"};

static bool is_catch_all(const rr_rule *r)
{
    return r->when.type == RC_ALL && r->when.n_kids == 0;
}

static void free_rule(rr_rule *r)
{
    free_cond(&r->when);
    free(r->targets);
}

static int parse_rule(ctx *c, const cJSON *obj, rr_rule *r)
{
    memset(r, 0, sizeof(*r));
    c->name = NULL;
    c->path[0] = 0;
    c->missing_head = false;
    if (!cJSON_IsObject(obj)) return fail(c, "a rule must be a JSON object with \"name\" and \"route\"");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    bool named = cJSON_IsString(name) && valid_name(name->valuestring);
    if (named) c->name = r->name = name->valuestring;
    for (const cJSON *k = obj->child; k; k = k->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof(rule_keys) / sizeof(rule_keys[0]); i++) known |= !strcmp(rule_keys[i], k->string);
        if (!known) return fail(c, "unknown key \"%s\" (a rule has name, when, route, on_sensitive)", k->string);
    }
    if (!named)
        return fail(c, "\"name\" must be 1 to %d characters of letters, digits, '_', '.', ':' or '-'", NAME_MAX_LEN);
    for (int i = 0; i < c->p->n_rules; i++)
        if (!strcmp(c->p->rules[i].name, r->name))
            return fail(c, "duplicate name: rule %d has it too", i);
    if (c->p->n_rules > 0 && is_catch_all(&c->p->rules[c->p->n_rules - 1]))
        return fail(c, "can never be reached: the rule before it, \"%s\", has no \"when\" and catches every "
                       "request; put fallbacks in that rule's route list instead",
                    c->p->rules[c->p->n_rules - 1].name);
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(obj, "when");
    if (when) {
        size_t old = path_push(c, "when", 0);
        if (parse_cond(c, when, &r->when, 1)) return -1;
        path_pop(c, old);
    } else {
        r->when.type = RC_ALL;
    }
    if (parse_route(c, cJSON_GetObjectItemCaseSensitive(obj, "route"), r)) return -1;
    return parse_on_sensitive(c, cJSON_GetObjectItemCaseSensitive(obj, "on_sensitive"), r);
}

/* ---- the environment ---- */

static int copy_env(ctx *c)
{
    const pol_policy_env *env = c->env;
    pol_policy *p = c->p;
    if (env->n_upstreams < 0 || env->n_upstreams >= RULES_MAX_ROUTES || (env->n_upstreams && !env->upstreams))
        return fail(c, "the policy takes 0 to %d upstreams", RULES_MAX_ROUTES - 1);
    if (env->n_kinds < 0 || (env->n_kinds && !env->kinds) || env->n_sensitive_zones < 0 ||
        env->n_pseudonymize_kinds < 0 || (env->n_pseudonymize_kinds && !env->pseudonymize_kinds))
        return fail(c, "policy environment: a list has a negative count or no items");
    for (int k = 0; k < env->n_kinds; k++)
        if (!env->kinds[k]) return fail(c, "policy environment: detector kind %d is NULL", k);
    if (!isfinite(env->max_local_wait_s) || env->max_local_wait_s < 0)
        return fail(c, "routing.max_local_wait_s must be a number of seconds, at least 0");
    p->max_local_wait_s = env->max_local_wait_s;
    p->routes = calloc((size_t)env->n_upstreams + 1, sizeof(*p->routes));
    if (!p->routes) return fail(c, "out of memory");
    p->routes[RULES_LOCAL] = (rr_route){strdup("local"), RZ_IN_PROCESS};
    p->n_routes = 1;
    if (!p->routes[RULES_LOCAL].name) return fail(c, "out of memory");
    for (int i = 0; i < env->n_upstreams; i++) {
        const pol_upstream_def *u = &env->upstreams[i];
        int z = pol_rules_zone_from_name(u->zone);
        if (!valid_name(u->name) || pol_rules_zone_from_name(u->name) >= 0 || find_route(p, u->name) >= 0)
            return fail(c, "upstream %d: \"%s\" cannot be a route name (1 to %d characters of letters, digits, "
                           "'_', '.', ':' or '-'; unique; not local, private, external or in-process)",
                        i, u->name ? u->name : "(null)", NAME_MAX_LEN);
        if (z != RZ_PRIVATE && z != RZ_EXTERNAL)
            return fail(c, "upstream \"%s\": zone must be \"private\" or \"external\"", u->name);
        p->routes[p->n_routes] = (rr_route){strdup(u->name), (rz_zone)z};
        if (!p->routes[p->n_routes++].name) return fail(c, "out of memory");
    }
    static const char *const default_zones[] = {"in-process", "private"};
    const char *const *zones = env->sensitive_zones ? env->sensitive_zones : default_zones;
    int n_zones = env->sensitive_zones ? env->n_sensitive_zones : 2;
    for (int i = 0; i < n_zones; i++) {
        int z = pol_rules_zone_from_name(zones[i]);
        if (z < 0)
            return fail(c, "routing.sensitive_zones: unknown zone \"%s\" (zones: in-process, private, external)",
                        zones[i] ? zones[i] : "(null)");
        p->zone_ok[z] = true;
    }
    if (env->n_pseudonymize_kinds) {
        p->pseudo_kinds = calloc((size_t)env->n_pseudonymize_kinds, sizeof(*p->pseudo_kinds));
        if (!p->pseudo_kinds) return fail(c, "out of memory");
    }
    for (int i = 0; i < env->n_pseudonymize_kinds; i++) {
        const char *kind = env->pseudonymize_kinds[i];
        bool known = false;
        for (int k = 0; kind && k < env->n_kinds && !known; k++) known = !strcmp(env->kinds[k], kind);
        if (!known)
            return fail(c, "routing.pseudonymize_kinds: \"%s\" is not a detector kind", kind ? kind : "(null)");
        if (!(p->pseudo_kinds[p->n_pseudo++] = strdup(kind))) return fail(c, "out of memory");
    }
    /* secrets are never pseudonymized out: the pseudonymizer's own list decides */
    pol_pseudo *probe;
    char why[256];
    if (pol_pseudo_new(&probe, env->pseudonymize_kinds, env->n_pseudonymize_kinds, why, sizeof(why)) != 0)
        return fail(c, "routing.pseudonymize_kinds: %s", why);
    pol_pseudo_free(probe);
    return 0;
}

/* ---- life cycle ---- */

void pol_policy_free(pol_policy *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_rules; i++) free_rule(&p->rules[i]);
    free(p->rules);
    for (int i = 0; i < p->n_routes; i++) free(p->routes[i].name);
    free(p->routes);
    for (int i = 0; i < p->n_pseudo; i++) free(p->pseudo_kinds[i]);
    free(p->pseudo_kinds);
    cJSON_Delete(p->json);
    free(p);
}

int pol_policy_pseudo_new(const pol_policy *p, pol_pseudo **out, char *err, size_t errlen)
{
    return pol_pseudo_new(out, (const char *const *)p->pseudo_kinds, p->n_pseudo, err, errlen);
}

int pol_policy_new(pol_policy **out, const cJSON *rules, const pol_policy_env *env, char *err, size_t errlen)
{
    ctx c = {.env = env, .err = err, .errlen = errlen, .index = -1, .lenient_heads = rules == NULL};
    if (!out || !env) return fail(&c, "pol_policy_new: out and env are required");
    *out = NULL;
    if (rules && (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) == 0))
        return fail(&c, "routing.rules must be a non-empty JSON array of rules (leave it out for the "
                        "default policy, docs/policy.md)");
    c.p = calloc(1, sizeof(*c.p));
    if (!c.p) return fail(&c, "out of memory");
    c.p->json = rules ? cJSON_Duplicate(rules, 1) : cJSON_Parse(pol_policy_default_text());
    int n = cJSON_GetArraySize(c.p->json);
    if (!c.p->json || !(c.p->rules = calloc((size_t)n, sizeof(*c.p->rules)))) {
        fail(&c, "out of memory reading routing.rules");
        goto bad;
    }
    if (copy_env(&c)) goto bad;
    c.index = 0;
    for (const cJSON *item = c.p->json->child; item; item = item->next, c.index++) {
        rr_rule *r = &c.p->rules[c.p->n_rules];
        if (parse_rule(&c, item, r)) {
            free_rule(r);
            goto bad;
        }
        if (c.missing_head)
            free_rule(r);
        else
            c.p->n_rules++;
    }
    *out = c.p;
    return 0;
bad:
    pol_policy_free(c.p);
    return -1;
}
