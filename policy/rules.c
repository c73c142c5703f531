/* rules.c: deciding a request's route from a loaded policy, and the zone gate.
 *
 * Why it is built this way: a routing decision has to be explainable after
 * the fact (the ledger keeps its one-line reason; `--explain` shows every
 * rule), so evaluating a condition can also write down the facts that
 * decided it: for a true `all` every fact, for a false one only the facts
 * that failed, each stated as something true about the request ("difficulty
 * 0.42 < 0.7"). The text is only produced for the rule that decides, or when
 * an explanation is asked for, so a plain decision formats nothing it does
 * not keep.
 *
 * The zone guarantee is checked twice on purpose: pol_decide never picks a
 * forbidden zone for a sensitive request, and pol_zone_allows, which knows
 * nothing of rules, is the gate the gateway asks right before any byte goes
 * upstream, so a route chosen any other way (explicit model, fallback,
 * retry, stickiness) meets the same check.
 */
#include "rules_internal.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- text that may be absent (no explanation wanted) ---- */

typedef struct {
    char *buf;
    size_t len, at;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    if (!t || t->at >= t->len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->at, t->len - t->at, fmt, ap);
    va_end(ap);
    t->at += n < 0 ? 0 : (size_t)n;
}

static void add_list(text *t, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) add(t, "%s%s", i ? ", " : "", names[i] ? names[i] : "?");
}

/* ---- small facts ---- */

bool pol_sensitive(const pol_signals *s)
{
    return s && (s->forced || (s->has_sensitivity && !(s->sensitivity < s->sensitivity_threshold)));
}

static bool difficult(const pol_signals *s)
{
    return s->has_difficulty && s->difficulty >= s->difficulty_threshold;
}

static bool budget_exhausted(const pol_signals *s)
{
    return s->budget_known && s->budget_remaining_micro_usd <= 0;
}

static const pol_route_state *state_of(const pol_signals *s, const char *name)
{
    for (int i = 0; s->routes && i < s->n_routes; i++)
        if (s->routes[i].name && !strcmp(s->routes[i].name, name)) return &s->routes[i];
    return NULL;
}

static bool in_list(const char *v, const char *const *list, int n)
{
    for (int i = 0; v && list && i < n; i++)
        if (list[i] && !strcmp(list[i], v)) return true;
    return false;
}

/* Every kind found can be pseudonymized (and at least one was found). */
static bool pseudonymizable(const pol_policy *p, const pol_signals *s)
{
    if (s->n_kinds <= 0 || !s->kinds) return false;
    for (int i = 0; i < s->n_kinds; i++)
        if (!in_list(s->kinds[i], (const char *const *)p->pseudo_kinds, p->n_pseudo)) return false;
    return true;
}

static const struct {
    const char *name;
    unsigned bit;
} needs[] = {
    {"tools", POL_NEED_TOOLS}, {"json", POL_NEED_JSON}, {"images", POL_NEED_IMAGES},
    {"long_context", POL_NEED_LONG_CONTEXT},
};

static void add_needs(text *t, unsigned bits)
{
    bool first = true;
    for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++)
        if (bits & needs[i].bit) add(t, "%s%s", first ? "" : ", ", needs[i].name), first = false;
}

/* ---- leaves ---- */

typedef bool (*leaf_fn)(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t);

static bool holds(ro_op op, double x, double v)
{
    switch (op) {
    case RO_LT: return x < v;
    case RO_LE: return x <= v;
    case RO_GT: return x > v;
    default: return x >= v;
    }
}

/* Each comparison must hold; the facts say how each deciding one came out. */
static bool compare(const rc_cond *c, const char *label, double x, text *t)
{
    static const char *const negated[RO_COUNT] = {">=", ">", "<=", "<"};
    bool result = true;
    for (int i = 0; i < c->n_cmp; i++) result &= holds(c->cmp[i].op, x, c->cmp[i].value);
    bool first = true;
    for (int i = 0; i < c->n_cmp; i++) {
        bool h = holds(c->cmp[i].op, x, c->cmp[i].value);
        if (h != result) continue;
        add(t, "%s%s %g %s %g", first ? "" : " and ", label, x,
            h ? pol_rules_op_names[c->cmp[i].op] : negated[c->cmp[i].op], c->cmp[i].value);
        first = false;
    }
    return result;
}

static bool leaf_sensitivity(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    if (s->has_sensitivity) return compare(c, "sensitivity", s->sensitivity, t);
    add(t, "sensitivity unknown");
    return false;
}

static bool leaf_difficulty(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    if (s->has_difficulty) return compare(c, "difficulty", s->difficulty, t);
    add(t, "difficulty unknown");
    return false;
}

static bool leaf_sensitive(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    bool v = pol_sensitive(s);
    if (s->forced)
        add(t, "sensitive (a forcing kind was found)");
    else if (s->has_sensitivity)
        add(t, "%s (sensitivity %g %s %g)", v ? "sensitive" : "not sensitive", s->sensitivity, v ? ">=" : "<",
            s->sensitivity_threshold);
    else
        add(t, "not sensitive (no sensitivity score, no forcing kind)");
    return v == c->flag;
}

static bool leaf_difficult(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    bool v = difficult(s);
    if (s->has_difficulty)
        add(t, "%s (difficulty %g %s %g)", v ? "difficult" : "not difficult", s->difficulty, v ? ">=" : "<",
            s->difficulty_threshold);
    else
        add(t, "not difficult (no difficulty score)");
    return v == c->flag;
}

static bool leaf_kinds(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    bool found = false;
    for (int i = 0; i < c->n_strs; i++) {
        if (!in_list(c->strs[i], s->kinds, s->n_kinds)) continue;
        add(t, "%s%s", found ? ", " : "kinds found: ", c->strs[i]);
        found = true;
    }
    if (!found) {
        add(t, "none of the kinds ");
        add_list(t, c->strs, c->n_strs);
        add(t, " found");
    }
    return found;
}

static bool one_of(const rc_cond *c, const char *label, const char *v, text *t)
{
    if (!v || !*v) {
        add(t, "no %s", label);
        return false;
    }
    if (in_list(v, c->strs, c->n_strs)) {
        add(t, "%s %s", label, v);
        return true;
    }
    add(t, "%s %s not in [", label, v);
    add_list(t, c->strs, c->n_strs);
    add(t, "]");
    return false;
}

static bool leaf_tenant(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    return one_of(c, "tenant", s->tenant, t);
}

static bool leaf_key(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    return one_of(c, "key", s->key_id, t);
}

static bool leaf_model(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    return one_of(c, "model", s->model, t);
}

static bool leaf_needs(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    unsigned hit = s->needs & c->needs;
    add(t, hit ? "needs " : "needs none of ");
    add_needs(t, hit ? hit : c->needs);
    return hit != 0;
}

static bool leaf_local_lacks(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    unsigned hit = s->needs & ~s->local_can & c->needs;
    add(t, hit ? "needs what the local engine lacks: " : "needs nothing the local engine lacks of ");
    add_needs(t, hit ? hit : c->needs);
    return hit != 0;
}

static bool leaf_prompt_tokens(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    return compare(c, "prompt_tokens", (double)s->prompt_tokens, t);
}

static bool leaf_local_queue(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    return compare(c, "local_queue", s->local_queue, t);
}

static bool leaf_local_wait(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    return compare(c, "local_wait_s", s->local_wait_s, t);
}

static bool leaf_local_available(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    bool v = s->local_loaded && s->local_wait_s <= p->max_local_wait_s;
    if (!s->local_loaded)
        add(t, "local not available (no model loaded)");
    else
        add(t, "local %savailable (wait %g s %s %g)", v ? "" : "not ", s->local_wait_s, v ? "<=" : ">",
            p->max_local_wait_s);
    return v == c->flag;
}

static bool route_down(const pol_policy *p, const pol_signals *s, int route, text *t)
{
    const pol_route_state *st = state_of(s, p->routes[route].name);
    const char *why = !st ? "no state" : st->breaker_open ? "breaker open" : NULL;
    if (why)
        add(t, "%s down (%s)", p->routes[route].name, why);
    else
        add(t, "%s up", p->routes[route].name);
    return why != NULL;
}

static bool leaf_upstream_down(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    if (c->route >= 0) return route_down(p, s, c->route, t);
    for (int i = RULES_LOCAL + 1; i < p->n_routes; i++)
        if (p->routes[i].zone == (rz_zone)c->zone && !route_down(p, s, i, NULL)) {
            route_down(p, s, i, t);   /* the fact: "gpt4 up" */
            return false;
        }
    add(t, "every %s upstream down", pol_rules_zone_names[c->zone]);
    return true;
}

static bool leaf_upstream_in_flight(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    const pol_route_state *st = state_of(s, p->routes[c->route].name);
    char label[96];
    snprintf(label, sizeof(label), "%s in_flight", p->routes[c->route].name);
    return compare(c, label, st ? st->in_flight : 0, t);
}

static bool leaf_budget(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    (void)p;
    if (s->budget_known) return compare(c, "budget_remaining_usd", (double)s->budget_remaining_micro_usd / 1e6, t);
    add(t, "budget unlimited");
    return compare(c, "", INFINITY, NULL);
}

static const leaf_fn leaves[RC_COUNT] = {
    [RC_SENSITIVITY] = leaf_sensitivity, [RC_DIFFICULTY] = leaf_difficulty,
    [RC_SENSITIVE] = leaf_sensitive, [RC_DIFFICULT] = leaf_difficult, [RC_KINDS] = leaf_kinds,
    [RC_TENANT] = leaf_tenant, [RC_KEY] = leaf_key, [RC_MODEL] = leaf_model, [RC_NEEDS] = leaf_needs,
    [RC_LOCAL_LACKS] = leaf_local_lacks, [RC_PROMPT_TOKENS] = leaf_prompt_tokens,
    [RC_LOCAL_QUEUE] = leaf_local_queue, [RC_LOCAL_WAIT] = leaf_local_wait,
    [RC_LOCAL_AVAILABLE] = leaf_local_available, [RC_UPSTREAM_DOWN] = leaf_upstream_down,
    [RC_UPSTREAM_IN_FLIGHT] = leaf_upstream_in_flight, [RC_BUDGET] = leaf_budget,
};

/* A condition's value; with `t`, the facts that decided it joined by "and"
 * (for all/any: the children whose value equals the result). */
static bool eval(const pol_policy *p, const rc_cond *c, const pol_signals *s, text *t)
{
    if (c->type == RC_NOT) return !eval(p, c->kids, s, t);
    if (c->type != RC_ALL && c->type != RC_ANY) return leaves[c->type](p, c, s, t);
    if (c->n_kids == 0) {
        add(t, "always");
        return true;
    }
    bool vals[RULES_MAX_KIDS];
    bool result = c->type == RC_ALL;
    for (int i = 0; i < c->n_kids; i++) {
        vals[i] = eval(p, &c->kids[i], s, NULL);
        result = c->type == RC_ALL ? result && vals[i] : result || vals[i];
    }
    bool first = true;
    for (int i = 0; t && i < c->n_kids; i++) {
        if (vals[i] != result) continue;
        if (!first) add(t, " and ");
        eval(p, &c->kids[i], s, t);
        first = false;
    }
    return result;
}

/* ---- targets ---- */

typedef enum { USABLE, SKIPPED, SKIPPED_ZONE } usability;

/* Can `target` answer this request now? `why` says why not. */
static usability usable(const pol_policy *p, const pol_signals *s, int target, int on_sensitive,
                        bool *pseudonymize, text *why)
{
    if (target < 0) {
        add(why, "no %s upstream is configured", pol_rules_zone_names[-1 - target]);
        return SKIPPED;
    }
    const rr_route *r = &p->routes[target];
    if (target == RULES_LOCAL) {
        unsigned lacks = s->needs & ~s->local_can;
        if (!s->local_loaded) {
            add(why, "no local model is loaded");
            return SKIPPED;
        }
        if (lacks) {
            add(why, "the local engine cannot serve ");
            add_needs(why, lacks);
            return SKIPPED;
        }
        if (s->local_priced && budget_exhausted(s)) {
            add(why, "budget exhausted and the local engine is priced");
            return SKIPPED;
        }
    } else {
        const pol_route_state *st = state_of(s, r->name);
        if (!st) {
            add(why, "no state given for it (not running)");
            return SKIPPED;
        }
        if (st->breaker_open) {
            add(why, "circuit breaker open");
            return SKIPPED;
        }
        if (st->max_in_flight > 0 && st->in_flight >= st->max_in_flight) {
            add(why, "at max_in_flight (%d)", st->max_in_flight);
            return SKIPPED;
        }
        if (st->priced && budget_exhausted(s)) {
            add(why, "budget exhausted");
            return SKIPPED;
        }
    }
    *pseudonymize = false;
    if (!pol_sensitive(s) || p->zone_ok[r->zone]) return USABLE;
    if (on_sensitive == RS_PSEUDONYMIZE && pseudonymizable(p, s)) {
        *pseudonymize = true;
        return USABLE;
    }
    add(why, "zone %s is not allowed for sensitive data%s", pol_rules_zone_names[r->zone],
        on_sensitive == RS_PSEUDONYMIZE ? " (and not every kind found can be pseudonymized)" : "");
    return SKIPPED_ZONE;
}

static const char *target_name(const pol_policy *p, int target)
{
    return target < 0 ? pol_rules_zone_names[-1 - target] : p->routes[target].name;
}

/* ---- explanation ---- */

/* cJSON helpers that remember a failed allocation instead of crashing. */
static void put_string(cJSON *o, const char *k, const char *v, bool *oom)
{
    if (o && !cJSON_AddStringToObject(o, k, v)) *oom = true;
}

static void put_bool(cJSON *o, const char *k, bool v, bool *oom)
{
    if (o && !cJSON_AddBoolToObject(o, k, v)) *oom = true;
}

static cJSON *rule_item(cJSON *explain, const rr_rule *r, bool matched, const char *facts, bool *oom)
{
    if (!explain) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(explain, o)) {
        cJSON_Delete(o);
        *oom = true;
        return NULL;
    }
    put_string(o, "rule", r->name, oom);
    put_bool(o, "matched", matched, oom);
    put_string(o, "conditions", facts, oom);
    if (!cJSON_AddArrayToObject(o, "skipped") || !cJSON_AddNullToObject(o, "chosen")) *oom = true;
    return o;
}

static void item_skip(cJSON *o, const char *route, const char *why, bool *oom)
{
    cJSON *arr = o ? cJSON_GetObjectItemCaseSensitive(o, "skipped") : NULL;
    if (!arr) return;
    cJSON *s = cJSON_CreateObject();
    if (!s || !cJSON_AddItemToArray(arr, s)) {
        cJSON_Delete(s);
        *oom = true;
        return;
    }
    put_string(s, "route", route, oom);
    put_string(s, "why", why, oom);
}

static void item_chosen(cJSON *o, const char *route, bool *oom)
{
    cJSON *v = o ? cJSON_CreateString(route) : NULL;
    if (o && (!v || !cJSON_ReplaceItemInObjectCaseSensitive(o, "chosen", v))) {
        cJSON_Delete(v);
        *oom = true;
    }
}

/* ---- the decision ---- */

static void set_route(pol_decision *out, const pol_policy *p, const rr_rule *r, int target, bool pseudo)
{
    out->outcome = POL_ROUTE;
    snprintf(out->route, sizeof(out->route), "%s", p->routes[target].name);
    snprintf(out->zone, sizeof(out->zone), "%s", pol_rules_zone_names[p->routes[target].zone]);
    snprintf(out->rule, sizeof(out->rule), "%s", r->name);
    out->pseudonymize = pseudo;
}

int pol_decide(const pol_policy *p, const pol_signals *s, pol_decision *out, cJSON *explain, char *err,
               size_t errlen)
{
    if (!p || !s || !out || (explain && !cJSON_IsArray(explain)) || (s->n_kinds > 0 && !s->kinds)) {
        snprintf(err, errlen, "pol_decide: a policy, signals and a decision are required (explain: an array or NULL)");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    text kinds = {out->kinds, sizeof(out->kinds), 0};
    add_list(&kinds, s->kinds, s->n_kinds);
    bool sensitive = pol_sensitive(s), zone_blocked = false, oom = false;
    char down_buf[256] = "";
    text down = {down_buf, sizeof(down_buf), 0};    /* why nothing could answer */
    bool noted[RULES_MAX_ROUTES + RZ_COUNT] = {false};
    text reason = {out->reason, sizeof(out->reason), 0};

    for (int i = 0; i < p->n_rules; i++) {
        const rr_rule *r = &p->rules[i];
        bool matched = eval(p, &r->when, s, NULL);
        char facts_buf[512];
        facts_buf[0] = 0;
        text facts = {facts_buf, sizeof(facts_buf), 0};
        if (explain || matched) eval(p, &r->when, s, &facts);
        cJSON *item = rule_item(explain, r, matched, facts_buf, &oom);
        if (!matched) continue;
        if (sensitive && r->on_sensitive == RS_REFUSE) {
            out->outcome = POL_BLOCKED;
            snprintf(out->rule, sizeof(out->rule), "%s", r->name);
            add(&reason, "rule %s refuses sensitive requests (kinds: %s): %s", r->name,
                out->kinds[0] ? out->kinds : "none; by score", facts_buf);
            put_bool(item, "refused", true, &oom);
            goto done;
        }
        char skipped_buf[192];
        skipped_buf[0] = 0;
        text skipped = {skipped_buf, sizeof(skipped_buf), 0};
        for (int k = 0; k < r->n_targets; k++) {
            int target = r->targets[k];
            char why_buf[160];
            why_buf[0] = 0;
            text why = {why_buf, sizeof(why_buf), 0};
            bool pseudo = false;
            usability u = usable(p, s, target, r->on_sensitive, &pseudo, &why);
            if (u == USABLE) {
                set_route(out, p, r, target, pseudo);
                add(&reason, "rule %s: %s; route %s", r->name, facts_buf, out->route);
                if (skipped.at) add(&reason, " (skipped %s)", skipped_buf);
                if (pseudo) add(&reason, "; pseudonymized");
                item_chosen(item, out->route, &oom);
                if (pseudo) put_bool(item, "pseudonymize", true, &oom);
                goto done;
            }
            item_skip(item, target_name(p, target), why_buf, &oom);
            add(&skipped, "%s%s: %s", skipped.at ? "; " : "", target_name(p, target), why_buf);
            zone_blocked |= u == SKIPPED_ZONE;
            size_t slot = target < 0 ? (size_t)(RULES_MAX_ROUTES - 1 - target) : (size_t)target;
            if (u == SKIPPED && !noted[slot]) {
                add(&down, "%s%s: %s", down.at ? "; " : "", target_name(p, target), why_buf);
                noted[slot] = true;
            }
        }
    }
    if (zone_blocked) {
        out->outcome = POL_BLOCKED;
        add(&reason, "sensitive data (kinds: %s) may not leave the allowed zones (", out->kinds[0] ? out->kinds : "none; by score");
        bool first = true;
        for (int z = 0; z < RZ_COUNT; z++)
            if (p->zone_ok[z]) add(&reason, "%s%s", first ? "" : ", ", pol_rules_zone_names[z]), first = false;
        add(&reason, "%s) and no route there can answer%s%s", first ? "none" : "", down.at ? ": " : "", down_buf);
    } else {
        out->outcome = POL_UNAVAILABLE;
        add(&reason, "no route can answer: %s", down.at ? down_buf : "no rule matched");
    }
done:
    if (oom) {
        snprintf(err, errlen, "pol_decide: out of memory writing the explanation");
        return -1;
    }
    return 0;
}

/* ---- the gate ---- */

bool pol_zone_allows(const pol_policy *p, const pol_signals *s, const char *zone, bool pseudonymized, char *why,
                     size_t whylen)
{
    text t = {why, why ? whylen : 0, 0};
    int z = pol_rules_zone_from_name(zone);
    if (!p || !s || z < 0) {
        add(&t, "the zone gate refuses: %s", !p || !s ? "no policy or signals" : "unknown zone");
        return false;
    }
    if (!pol_sensitive(s) || p->zone_ok[z]) return true;
    if (pseudonymized && pseudonymizable(p, s)) return true;
    add(&t, "sensitive data (kinds: ");
    if (s->n_kinds > 0 && s->kinds)
        add_list(&t, s->kinds, s->n_kinds);
    else
        add(&t, "none; by score");
    add(&t, ") may not go to the %s zone; allowed: ", pol_rules_zone_names[z]);
    bool first = true;
    for (int k = 0; k < RZ_COUNT; k++)
        if (p->zone_ok[k]) add(&t, "%s%s", first ? "" : ", ", pol_rules_zone_names[k]), first = false;
    if (first) add(&t, "none");
    return false;
}
