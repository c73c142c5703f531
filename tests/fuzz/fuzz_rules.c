/* fuzz_rules.c: arbitrary bytes as the operator's routing rules.
 *
 * routing.rules comes from the configuration file, and `junction route`
 * checks a policy file before it is deployed: the rule parser sees whatever
 * an operator (or a typo) writes. The bytes are parsed as JSON and, whatever
 * they parse to, handed to pol_policy_new as the rules in a fixed world: two
 * upstreams (one external, one private), both heads, every built-in detector
 * kind (cls_kind_name for every kind before CLS_CUSTOM), three kinds that
 * pseudonymization hides, the default sensitive zones. A refusal must say
 * why. A policy that loads decides a few fixed requests (plain; sensitive
 * and difficult with the local engine absent and an upstream's breaker
 * open; needing tools with scores that are NaN and the budget spent;
 * nothing up at all), each with an explain array, and every decision must
 * keep pol_decide's promises: a known outcome; a route is "local" or one of
 * the upstreams, in that route's zone, named by a rule, and passes the zone
 * gate (pol_zone_allows) for the request; blocked and unavailable have no
 * route; the reason says something; explain is an array of objects naming
 * their rule.
 */
#include "classifier.h"
#include "fuzz.h"
#include "policy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

static const pol_upstream_def upstreams[] = {{"frontier", "external"}, {"vllm", "private"}};
static const char *kinds[CLS_CUSTOM];
static const char *const pseudo_kinds[] = {"email", "phone", "person"};

static const pol_policy_env *env(void)
{
    static pol_policy_env e;
    static int ready;
    if (!ready) {
        for (int k = 0; k < CLS_CUSTOM; k++) kinds[k] = cls_kind_name((cls_kind)k);
        e = (pol_policy_env){
            .upstreams = upstreams, .n_upstreams = N(upstreams),
            .difficulty_head = true, .sensitivity_head = true,
            .kinds = kinds, .n_kinds = CLS_CUSTOM,
            .sensitive_zones = NULL, .n_sensitive_zones = 0,
            .pseudonymize_kinds = pseudo_kinds, .n_pseudonymize_kinds = N(pseudo_kinds),
            .max_local_wait_s = 5,
        };
        ready = 1;
    }
    return &e;
}

static const char *zone_of(const char *route)
{
    if (!strcmp(route, "local")) return "in-process";
    for (int i = 0; i < N(upstreams); i++)
        if (!strcmp(route, upstreams[i].name)) return upstreams[i].zone;
    return NULL;
}

static void decide(const pol_policy *p, const pol_signals *s, const char *label)
{
    cJSON *explain = cJSON_CreateArray();
    if (!explain) fuzz_fail("out of memory");
    pol_decision d;
    memset(&d, 0x5a, sizeof(d));
    char err[512] = "";
    if (pol_decide(p, s, &d, explain, err, sizeof(err)) != 0) fuzz_fail("%s: pol_decide failed: %s", label, err);
    if (!memchr(d.route, 0, sizeof(d.route)) || !memchr(d.zone, 0, sizeof(d.zone)) ||
        !memchr(d.rule, 0, sizeof(d.rule)) || !memchr(d.kinds, 0, sizeof(d.kinds)) ||
        !memchr(d.reason, 0, sizeof(d.reason)))
        fuzz_fail("%s: a decision field is not terminated", label);
    switch (d.outcome) {
    case POL_ROUTE: {
        const char *zone = zone_of(d.route);
        if (!zone) fuzz_fail("%s: routed to unknown route '%s'", label, d.route);
        if (strcmp(zone, d.zone) != 0) fuzz_fail("%s: route %s is in zone %s, not %s", label, d.route, zone, d.zone);
        if (!d.rule[0]) fuzz_fail("%s: routed to %s without a rule", label, d.route);
        char why[512] = "";
        if (!pol_zone_allows(p, s, d.zone, d.pseudonymize, why, sizeof(why)))
            fuzz_fail("%s: routed to %s (zone %s%s), which the zone gate refuses: %s", label, d.route, d.zone,
                      d.pseudonymize ? ", pseudonymized" : "", why);
        break;
    }
    case POL_BLOCKED:
    case POL_UNAVAILABLE:
        if (d.route[0] || d.zone[0]) fuzz_fail("%s: outcome %d with route '%s' zone '%s'", label, (int)d.outcome, d.route, d.zone);
        break;
    default:
        fuzz_fail("%s: unknown outcome %d", label, (int)d.outcome);
    }
    if (!d.reason[0]) fuzz_fail("%s: outcome %d without a reason", label, (int)d.outcome);
    if (!cJSON_IsArray(explain)) fuzz_fail("%s: explain is no longer an array", label);
    const cJSON *step;
    cJSON_ArrayForEach(step, explain) {
        if (!cJSON_IsObject(step) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(step, "rule")))
            fuzz_fail("%s: an explain step is not an object naming its rule", label);
    }
    char *printed = cJSON_PrintUnformatted(explain);
    if (!printed) fuzz_fail("%s: explain does not print", label);
    free(printed);
    cJSON_Delete(explain);
}

static void decide_all(const pol_policy *p)
{
    /* 1. plain: nothing found, easy, everything up and idle */
    pol_route_state up[] = {{"frontier", false, 0, 0, true}, {"vllm", false, 1, 4, false}};
    pol_signals plain = {
        .has_difficulty = true, .has_sensitivity = true, .difficulty = 0.1, .sensitivity = 0.05,
        .difficulty_threshold = 0.7, .sensitivity_threshold = 0.5,
        .local_can = POL_NEED_TOOLS | POL_NEED_JSON | POL_NEED_IMAGES | POL_NEED_LONG_CONTEXT,
        .prompt_tokens = 12, .local_loaded = true, .routes = up, .n_routes = N(up),
    };
    decide(p, &plain, "plain");

    /* 2. sensitive (a forcing kind and a pseudonymizable one) and difficult; no local
     * model; the private upstream's breaker open */
    static const char *const found[] = {"email", "ssn"};
    pol_route_state half[] = {{"frontier", false, 3, 0, true}, {"vllm", true, 0, 0, false}};
    pol_signals sens = {
        .has_difficulty = true, .has_sensitivity = true, .difficulty = 0.95, .sensitivity = 0.99,
        .difficulty_threshold = 0.7, .sensitivity_threshold = 0.5, .forced = true,
        .kinds = found, .n_kinds = N(found), .tenant = "acme", .key_id = "key_abcdefghijkl", .model = "gpt-4o",
        .prompt_tokens = 9000, .local_loaded = false, .routes = half, .n_routes = N(half),
        .budget_known = true, .budget_remaining_micro_usd = 1000000,
    };
    decide(p, &sens, "sensitive");

    /* 2b. sensitive only by pseudonymizable kinds */
    static const char *const hideable[] = {"email", "person"};
    pol_signals pseudo = sens;
    pseudo.forced = false;
    pseudo.kinds = hideable;
    pseudo.n_kinds = N(hideable);
    pseudo.local_loaded = true;
    pseudo.routes = up;
    decide(p, &pseudo, "pseudonymizable");

    /* 3. needs what the local engine lacks; NaN scores; the budget spent; the local
     * engine overloaded */
    pol_signals needy = {
        .has_difficulty = true, .has_sensitivity = true, .difficulty = NAN, .sensitivity = NAN,
        .difficulty_threshold = 0.7, .sensitivity_threshold = 0.5,
        .needs = POL_NEED_TOOLS | POL_NEED_LONG_CONTEXT, .local_can = POL_NEED_JSON,
        .tenant = "", .model = "local", .prompt_tokens = 200000, .local_loaded = true, .local_priced = true,
        .local_queue = 40, .local_wait_s = 60, .routes = up, .n_routes = N(up),
        .budget_known = true, .budget_remaining_micro_usd = 0,
    };
    decide(p, &needy, "needy");

    /* 4. nothing up: no routes listed (down), no local model, no scores */
    pol_signals none = {.local_loaded = false, .routes = NULL, .n_routes = 0};
    decide(p, &none, "nothing-up");
}

FUZZ_TARGET(rules)
{
    cJSON *rules = cJSON_ParseWithLength((const char *)data, size);
    if (!rules) return 0;
    pol_policy *p = NULL;
    char err[1024] = "";
    if (pol_policy_new(&p, rules, env(), err, sizeof(err)) != 0) {
        if (!err[0]) fuzz_fail("pol_policy_new refused the rules without saying why");
        if (p) fuzz_fail("pol_policy_new refused the rules but returned a policy");
    } else {
        if (!p) fuzz_fail("pol_policy_new succeeded without a policy");
        /* A policy is immutable once loaded: the caller's JSON may go. */
        cJSON_Delete(rules);
        rules = NULL;
        decide_all(p);
        pol_policy_free(p);
    }
    cJSON_Delete(rules);
    return 0;
}
