/* test_rules.c: the routing rule engine (policy/rules*.c).
 *
 * Tables of requests through the default policy (each rule with signals
 * that trigger it and near misses), through an operator's policy (refuse,
 * pseudonymize, route lists falling through down upstreams and exhausted
 * budgets), the zone gate on its own, a sweep over every combination of
 * health, budget and sensitivity asserting that no decision ever sends
 * sensitive data to a forbidden zone, every load error with the exact
 * reason, and the explanation's content. */
#include "policy.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ---- the world the policies are loaded in ---- */

static const pol_upstream_def upstreams[] = {
    {"gpt4", "external"}, {"claude", "external"}, {"vllm", "private"},
};
static const char *const kinds[] = {"email", "phone", "ssn", "credit_card", "private_key", "aws_secret_key",
                                    "person", "health", "project_codename"};
static const char *const pseudo_kinds[] = {"email", "phone", "person"};

static pol_policy_env env_base(void)
{
    return (pol_policy_env){
        .upstreams = upstreams, .n_upstreams = N(upstreams),
        .difficulty_head = true, .sensitivity_head = true,
        .kinds = kinds, .n_kinds = N(kinds),
        .pseudonymize_kinds = pseudo_kinds, .n_pseudonymize_kinds = N(pseudo_kinds),
        .max_local_wait_s = 10,
    };
}

static pol_policy *load(const char *rules_json, const pol_policy_env *env)
{
    cJSON *rules = rules_json ? cJSON_Parse(rules_json) : NULL;
    if (rules_json) assert_non_null(rules);
    pol_policy *p = NULL;
    char err[512] = "";
    int rc = pol_policy_new(&p, rules, env, err, sizeof(err));
    cJSON_Delete(rules);
    if (rc != 0) fail_msg("policy refused: %s", err);
    return p;
}

/* One request's signals, with storage for its lists. */
typedef struct {
    pol_signals s;
    pol_route_state routes[N(upstreams)];
    const char *kinds[8];
    char kinds_buf[128];
} world;

static void world_init(world *w)
{
    memset(w, 0, sizeof(*w));
    for (int i = 0; i < N(upstreams); i++)
        w->routes[i] = (pol_route_state){.name = upstreams[i].name, .priced = strcmp(upstreams[i].zone, "private") != 0};
    w->s = (pol_signals){
        .has_difficulty = true, .has_sensitivity = true,
        .difficulty = 0.1, .sensitivity = 0.1,
        .difficulty_threshold = 0.5, .sensitivity_threshold = 0.5,
        .local_loaded = true, .routes = w->routes, .n_routes = N(upstreams),
        .prompt_tokens = 100,
    };
}

static void world_kinds(world *w, const char *csv)
{
    snprintf(w->kinds_buf, sizeof(w->kinds_buf), "%s", csv ? csv : "");
    w->s.n_kinds = 0;
    for (char *save = NULL, *k = strtok_r(w->kinds_buf, ",", &save); k && w->s.n_kinds < 8;
         k = strtok_r(NULL, ",", &save))
        w->kinds[w->s.n_kinds++] = k;
    w->s.kinds = w->kinds;
}

static void world_down(world *w, const char *csv)
{
    for (int i = 0; csv && i < N(upstreams); i++) {
        char pat[80];
        snprintf(pat, sizeof(pat), ",%s,", upstreams[i].name);
        char list[128];
        snprintf(list, sizeof(list), ",%s,", csv);
        w->routes[i].breaker_open = strstr(list, pat) != NULL;
    }
}

/* ---- decision tables ---- */

typedef struct {
    const char *what;
    /* the request (zero = the plain base request: scores 0.1, local loaded, all up) */
    double diff, sens;          /* 0 = base 0.1 */
    const char *kinds;
    bool forced;
    unsigned needs, local_can;
    bool no_local, local_priced;
    double wait;
    const char *down;           /* upstreams whose breaker is open */
    const char *full;           /* upstreams at max_in_flight */
    bool broke;                 /* budget exhausted */
    const char *tenant;
    /* expected */
    pol_outcome outcome;
    const char *route, *rule;
    bool pseudo;
    const char *reason_has;
} dcase;

static void apply(world *w, const dcase *c)
{
    world_init(w);
    if (c->diff) w->s.difficulty = c->diff;
    if (c->sens) w->s.sensitivity = c->sens;
    world_kinds(w, c->kinds);
    w->s.forced = c->forced;
    w->s.needs = c->needs;
    w->s.local_can = c->local_can;
    w->s.local_loaded = !c->no_local;
    w->s.local_priced = c->local_priced;
    w->s.local_wait_s = c->wait;
    world_down(w, c->down);
    for (int i = 0; c->full && i < N(upstreams); i++)
        if (strstr(c->full, upstreams[i].name)) w->routes[i].in_flight = w->routes[i].max_in_flight = 4;
    w->s.budget_known = c->broke;
    w->s.tenant = c->tenant;
}

static const char *outcome_name(pol_outcome o)
{
    static const char *const names[] = {"route", "blocked", "unavailable"};
    return names[o];
}

static void run_cases(const pol_policy *p, const dcase *cases, int n)
{
    for (int i = 0; i < n; i++) {
        const dcase *c = &cases[i];
        world w;
        apply(&w, c);
        pol_decision d;
        char err[256];
        assert_int_equal(pol_decide(p, &w.s, &d, NULL, err, sizeof(err)), 0);
        if (d.outcome != c->outcome || (c->route && strcmp(d.route, c->route)) ||
            (c->rule && strcmp(d.rule, c->rule)) || d.pseudonymize != c->pseudo ||
            (c->reason_has && !strstr(d.reason, c->reason_has)))
            fail_msg("case \"%s\": got %s route=%s rule=%s pseudo=%d reason=\"%s\"; want %s route=%s rule=%s "
                     "pseudo=%d reason containing \"%s\"",
                     c->what, outcome_name(d.outcome), d.route, d.rule, d.pseudonymize, d.reason,
                     outcome_name(c->outcome), c->route ? c->route : "-", c->rule ? c->rule : "-", c->pseudo,
                     c->reason_has ? c->reason_has : "");
        /* Whatever decided it, the last gate agrees. */
        if (d.outcome == POL_ROUTE && !pol_zone_allows(p, &w.s, d.zone, d.pseudonymize, NULL, 0))
            fail_msg("case \"%s\": the zone gate refuses the decided zone %s", c->what, d.zone);
    }
}

static const dcase default_cases[] = {
    {.what = "plain", .route = "local", .rule = "default", .reason_has = "rule default: always; route local"},
    {.what = "difficult", .diff = 0.8, .route = "gpt4", .rule = "hard-to-frontier",
     .reason_has = "rule hard-to-frontier: difficult (difficulty 0.8 >= 0.5); route gpt4"},
    {.what = "difficult at the threshold", .diff = 0.5, .route = "gpt4", .rule = "hard-to-frontier"},
    {.what = "near miss: difficulty just below", .diff = 0.49, .route = "local", .rule = "default"},
    {.what = "difficult, gpt4 down", .diff = 0.8, .down = "gpt4", .route = "claude", .rule = "hard-to-frontier",
     .reason_has = "(skipped gpt4: circuit breaker open)"},
    {.what = "difficult, gpt4 full", .diff = 0.8, .full = "gpt4", .route = "claude",
     .reason_has = "gpt4: at max_in_flight (4)"},
    {.what = "difficult, external down", .diff = 0.8, .down = "gpt4,claude", .route = "local",
     .rule = "hard-to-frontier"},
    {.what = "difficult, over budget", .diff = 0.8, .broke = true, .route = "local", .rule = "hard-to-frontier",
     .reason_has = "gpt4: budget exhausted"},
    {.what = "sensitive and difficult", .diff = 0.9, .sens = 0.9, .route = "local",
     .rule = "sensitive-stays-inside", .reason_has = "sensitive (sensitivity 0.9 >= 0.5)"},
    {.what = "near miss: sensitivity just below", .diff = 0.9, .sens = 0.49, .route = "gpt4",
     .rule = "hard-to-frontier"},
    {.what = "forcing kind at score 0", .diff = 0.9, .sens = 1e-9, .kinds = "private_key", .forced = true,
     .route = "local", .rule = "sensitive-stays-inside", .reason_has = "a forcing kind was found"},
    {.what = "non-forcing kind, low score", .diff = 0.9, .kinds = "email", .route = "gpt4",
     .rule = "hard-to-frontier"},
    {.what = "sensitive, no local model", .sens = 0.9, .no_local = true, .route = "vllm",
     .rule = "sensitive-stays-inside"},
    {.what = "sensitive, no local, private down", .sens = 0.9, .kinds = "email,person", .no_local = true,
     .down = "vllm", .outcome = POL_BLOCKED, .reason_has = "kinds: email, person"},
    {.what = "sensitive, local overloaded: waits", .sens = 0.9, .wait = 60, .route = "local",
     .rule = "sensitive-stays-inside"},
    {.what = "needs tools", .needs = POL_NEED_TOOLS, .route = "vllm", .rule = "needs-upstream",
     .reason_has = "needs what the local engine lacks: tools"},
    {.what = "needs tools, private down", .needs = POL_NEED_TOOLS, .down = "vllm", .route = "gpt4",
     .rule = "needs-upstream"},
    {.what = "needs long context, private down", .needs = POL_NEED_LONG_CONTEXT, .down = "vllm", .route = "gpt4"},
    {.what = "near miss: needs JSON the local engine serves", .needs = POL_NEED_JSON, .local_can = POL_NEED_JSON,
     .route = "local", .rule = "default"},
    {.what = "needs tools, sensitive, private down", .needs = POL_NEED_TOOLS, .sens = 0.9, .kinds = "ssn",
     .down = "vllm", .outcome = POL_BLOCKED},
    {.what = "needs tools, every upstream down", .needs = POL_NEED_TOOLS, .down = "gpt4,claude,vllm",
     .outcome = POL_UNAVAILABLE, .reason_has = "local: the local engine cannot serve tools"},
    {.what = "local overloaded", .wait = 12, .route = "gpt4", .rule = "local-busy",
     .reason_has = "local not available (wait 12 s > 10)"},
    {.what = "near miss: wait at the limit", .wait = 10, .route = "local", .rule = "default"},
    {.what = "local overloaded, external down", .wait = 12, .down = "gpt4,claude", .route = "local",
     .rule = "local-busy"},
    {.what = "local overloaded, over budget", .wait = 12, .broke = true, .route = "local", .rule = "local-busy"},
    {.what = "no local model", .no_local = true, .route = "gpt4", .rule = "local-busy"},
    {.what = "no local model, external down", .no_local = true, .down = "gpt4,claude", .outcome = POL_UNAVAILABLE,
     .reason_has = "gpt4: circuit breaker open; claude: circuit breaker open; local: no local model is loaded"},
    {.what = "over budget: the free local route still answers", .broke = true, .route = "local", .rule = "default"},
    {.what = "over budget, local priced", .broke = true, .local_priced = true, .outcome = POL_UNAVAILABLE,
     .reason_has = "budget exhausted and the local engine is priced"},
};

static void test_default_policy(void **state)
{
    (void)state;
    pol_policy_env env = env_base();
    pol_policy *p = load(NULL, &env);
    run_cases(p, default_cases, N(default_cases));
    pol_policy_free(p);
}

/* The design's example, plus a pseudonymizing rule. */
static const char operator_rules[] =
    "[{\"name\": \"secrets-stay-home\", \"when\": {\"kinds\": [\"private_key\", \"aws_secret_key\"]},"
    "  \"route\": \"local\", \"on_sensitive\": \"refuse\"},"
    " {\"name\": \"hard-to-frontier\", \"when\": {\"all\": [{\"difficulty\": {\">=\": 0.7}},"
    "  {\"not\": {\"sensitive\": true}}]}, \"route\": [\"gpt4\", \"external\", \"local\"]},"
    " {\"name\": \"acme-private\", \"when\": {\"tenant\": [\"acme\"]}, \"route\": \"private\"},"
    " {\"name\": \"pii-out\", \"when\": {\"kinds\": [\"email\", \"person\"]}, \"route\": \"external\","
    "  \"on_sensitive\": \"pseudonymize\"},"
    " {\"name\": \"default\", \"route\": \"local\"}]";

static const dcase operator_cases[] = {
    {.what = "private key: refused", .kinds = "private_key", .forced = true, .outcome = POL_BLOCKED,
     .rule = "secrets-stay-home", .reason_has = "rule secrets-stay-home refuses sensitive requests (kinds: private_key)"},
    {.what = "secret kind but not sensitive: routed", .kinds = "aws_secret_key", .route = "local",
     .rule = "secrets-stay-home"},
    {.what = "hard", .diff = 0.81, .route = "gpt4", .rule = "hard-to-frontier",
     .reason_has = "rule hard-to-frontier: difficulty 0.81 >= 0.7 and not sensitive (sensitivity 0.1 < 0.5); route gpt4"},
    {.what = "near miss: hard but sensitive", .diff = 0.81, .sens = 0.7, .route = "local", .rule = "default"},
    {.what = "hard, gpt4 down: the zone class next", .diff = 0.81, .down = "gpt4", .route = "claude"},
    {.what = "hard, external down", .diff = 0.81, .down = "gpt4,claude", .route = "local",
     .rule = "hard-to-frontier", .reason_has = "skipped gpt4: circuit breaker open; claude: circuit breaker open"},
    {.what = "hard, over budget", .diff = 0.81, .broke = true, .route = "local", .rule = "hard-to-frontier"},
    {.what = "acme", .tenant = "acme", .route = "vllm", .rule = "acme-private", .reason_has = "tenant acme"},
    {.what = "acme, private down: next rules", .tenant = "acme", .down = "vllm", .route = "local", .rule = "default"},
    {.what = "near miss: other tenant", .tenant = "beta", .route = "local", .rule = "default"},
    {.what = "sensitive email: pseudonymized", .sens = 0.9, .kinds = "email,person", .route = "gpt4", .pseudo = true,
     .rule = "pii-out", .reason_has = "; pseudonymized"},
    {.what = "email but not sensitive: sent as is", .kinds = "email", .route = "gpt4", .rule = "pii-out"},
    {.what = "sensitive email and ssn: cannot pseudonymize", .sens = 0.9, .kinds = "email,ssn", .route = "local",
     .rule = "default"},
    {.what = "sensitive email and ssn, no local", .sens = 0.9, .kinds = "email,ssn", .no_local = true,
     .outcome = POL_BLOCKED, .reason_has = "may not leave the allowed zones (in-process, private)"},
    {.what = "free local never blocked by budget", .broke = true, .route = "local", .rule = "default"},
};

static void test_operator_policy(void **state)
{
    (void)state;
    pol_policy_env env = env_base();
    pol_policy *p = load(operator_rules, &env);
    run_cases(p, operator_cases, N(operator_cases));
    pol_policy_free(p);
}

/* ---- every leaf condition, true and false ---- */

typedef struct {
    const char *when;           /* a condition object */
    const dcase req;            /* the request (only its signal fields) */
    bool want;
    const char *facts;          /* the explanation's "conditions" */
} lcase;

static const lcase leaf_cases[] = {
    {"{\"sensitivity\": {\">\": 0.3, \"<=\": 0.6}}", {.sens = 0.5}, true, "sensitivity 0.5 > 0.3 and sensitivity 0.5 <= 0.6"},
    {"{\"sensitivity\": {\">\": 0.3, \"<=\": 0.6}}", {.sens = 0.7}, false, "sensitivity 0.7 > 0.6"},
    {"{\"difficulty\": {\"<\": 0.2}}", {.diff = 0.3}, false, "difficulty 0.3 >= 0.2"},
    {"{\"difficult\": false}", {0}, true, "not difficult (difficulty 0.1 < 0.5)"},
    {"{\"sensitive\": false}", {.kinds = "ssn", .forced = true}, false, "sensitive (a forcing kind was found)"},
    {"{\"kinds\": [\"ssn\", \"email\"]}", {.kinds = "phone,email"}, true, "kinds found: email"},
    {"{\"kinds\": \"ssn\"}", {.kinds = "phone"}, false, "none of the kinds ssn found"},
    {"{\"tenant\": [\"acme\", \"globex\"]}", {.tenant = "initech"}, false, "tenant initech not in [acme, globex]"},
    {"{\"tenant\": \"acme\"}", {0}, false, "no tenant"},
    {"{\"needs\": [\"images\", \"json\"]}", {.needs = POL_NEED_JSON, .local_can = POL_NEED_JSON}, true, "needs json"},
    {"{\"needs\": \"tools\"}", {.needs = POL_NEED_JSON}, false, "needs none of tools"},
    {"{\"local_lacks\": \"json\"}", {.needs = POL_NEED_JSON, .local_can = POL_NEED_JSON}, false,
     "needs nothing the local engine lacks of json"},
    {"{\"prompt_tokens\": {\">=\": 100}}", {0}, true, "prompt_tokens 100 >= 100"},
    {"{\"local_queue\": {\">\": 0}}", {0}, false, "local_queue 0 <= 0"},
    {"{\"key\": [\"key_a\"]}", {0}, false, "no key"},
    {"{\"model\": \"auto\"}", {0}, false, "no model"},
    {"{\"local_wait_s\": {\">\": 5}}", {.wait = 7.5}, true, "local_wait_s 7.5 > 5"},
    {"{\"local_available\": true}", {.no_local = true}, false, "local not available (no model loaded)"},
    {"{\"upstream_down\": \"gpt4\"}", {.down = "gpt4"}, true, "gpt4 down (breaker open)"},
    {"{\"upstream_down\": \"external\"}", {.down = "gpt4"}, false, "claude up"},
    {"{\"upstream_down\": \"external\"}", {.down = "gpt4,claude"}, true, "every external upstream down"},
    {"{\"upstream_in_flight\": {\"name\": \"gpt4\", \">=\": 4}}", {.full = "gpt4"}, true, "gpt4 in_flight 4 >= 4"},
    {"{\"budget_remaining_usd\": {\"<\": 5}}", {0}, false, "budget unlimited"},
    {"{\"budget_remaining_usd\": {\">\": 5}}", {0}, true, "budget unlimited"},
    {"{\"budget_remaining_usd\": {\"<=\": 0}}", {.broke = true}, true, "budget_remaining_usd 0 <= 0"},
    {"{\"any\": [{\"tenant\": \"acme\"}, {\"difficulty\": {\">\": 0.05}}, {\"needs\": \"tools\"}]}", {0}, true,
     "difficulty 0.1 > 0.05"},
    {"{\"all\": [{\"tenant\": \"acme\"}, {\"difficulty\": {\">\": 0.05}}, {\"needs\": \"tools\"}]}", {0}, false,
     "no tenant and needs none of tools"},
    {"{\"prompt_tokens\": {\"<\": 1000}, \"not\": {\"kinds\": \"ssn\"}}", {0}, true,
     "prompt_tokens 100 < 1000 and none of the kinds ssn found"},
};

static void test_leaf_conditions(void **state)
{
    (void)state;
    pol_policy_env env = env_base();
    for (int i = 0; i < N(leaf_cases); i++) {
        const lcase *c = &leaf_cases[i];
        char rules[512];
        snprintf(rules, sizeof(rules), "[{\"name\": \"probe\", \"when\": %s, \"route\": \"vllm\"}]", c->when);
        pol_policy *p = load(rules, &env);
        world w;
        apply(&w, &c->req);
        cJSON *explain = cJSON_CreateArray();
        pol_decision d;
        char err[256];
        assert_int_equal(pol_decide(p, &w.s, &d, explain, err, sizeof(err)), 0);
        const cJSON *item = cJSON_GetArrayItem(explain, 0);
        bool matched = cJSON_IsTrue(cJSON_GetObjectItem(item, "matched"));
        const char *facts = cJSON_GetStringValue(cJSON_GetObjectItem(item, "conditions"));
        if (matched != c->want || !facts || strcmp(facts, c->facts))
            fail_msg("%s: matched %d (want %d), facts \"%s\" (want \"%s\")", c->when, matched, c->want,
                     facts ? facts : "(none)", c->facts);
        assert_int_equal(d.outcome, c->want ? POL_ROUTE : POL_UNAVAILABLE);
        cJSON_Delete(explain);
        pol_policy_free(p);
    }
}

/* ---- the zone gate ---- */

static void test_zone_gate(void **state)
{
    (void)state;
    pol_policy_env env = env_base();
    pol_policy *p = load(NULL, &env);
    world w;
    char why[256];

    world_init(&w);
    assert_true(pol_zone_allows(p, &w.s, "external", false, why, sizeof(why)));
    assert_false(pol_zone_allows(p, &w.s, "outer-space", false, why, sizeof(why)));
    assert_non_null(strstr(why, "unknown zone"));

    world_kinds(&w, "email");
    w.s.sensitivity = 0.95;
    assert_true(pol_zone_allows(p, &w.s, "in-process", false, NULL, 0));
    assert_true(pol_zone_allows(p, &w.s, "private", false, NULL, 0));
    why[0] = 0;
    assert_false(pol_zone_allows(p, &w.s, "external", false, why, sizeof(why)));
    assert_string_equal(why, "sensitive data (kinds: email) may not go to the external zone; allowed: in-process, private");
    assert_true(pol_zone_allows(p, &w.s, "external", true, NULL, 0));       /* pseudonymized email */

    world_kinds(&w, "email,ssn");
    assert_false(pol_zone_allows(p, &w.s, "external", true, NULL, 0));      /* ssn cannot be */

    world_kinds(&w, NULL);                                                  /* sensitive by score alone */
    assert_false(pol_zone_allows(p, &w.s, "external", true, why, sizeof(why)));
    assert_non_null(strstr(why, "kinds: none; by score"));

    world_init(&w);                                                         /* a forcing kind at score 0 */
    w.s.sensitivity = 0;
    world_kinds(&w, "private_key");
    w.s.forced = true;
    assert_true(pol_sensitive(&w.s));
    assert_false(pol_zone_allows(p, &w.s, "external", false, NULL, 0));

    world_init(&w);                                                         /* a NaN score fails closed */
    w.s.sensitivity = NAN;
    assert_true(pol_sensitive(&w.s));
    assert_false(pol_zone_allows(p, &w.s, "external", false, NULL, 0));
    pol_policy_free(p);

    static const char *const only_local[] = {"in-process"};                 /* operator narrows the zones */
    env.sensitive_zones = only_local;
    env.n_sensitive_zones = 1;
    p = load(NULL, &env);
    world_init(&w);
    w.s.sensitivity = 0.9;
    assert_false(pol_zone_allows(p, &w.s, "private", false, why, sizeof(why)));
    assert_non_null(strstr(why, "allowed: in-process"));
    w.s.local_loaded = false;
    pol_decision d;
    assert_int_equal(pol_decide(p, &w.s, &d, NULL, why, sizeof(why)), 0);
    assert_int_equal(d.outcome, POL_BLOCKED);
    pol_policy_free(p);
}

/* Every combination of health, budget, load and sensitivity: a sensitive
 * request never gets a forbidden zone unless pseudonymized with only
 * pseudonymizable kinds, and the outcome is never "route" to something down. */
static void test_zone_guarantee_sweep(void **state)
{
    (void)state;
    pol_policy_env env = env_base();
    const char *policies[] = {NULL, operator_rules,
                              "[{\"name\": \"all-out\", \"route\": [\"external\", \"private\", \"local\"]}]",
                              "[{\"name\": \"pseudo-all\", \"route\": \"external\", \"on_sensitive\": \"pseudonymize\"}]"};
    const char *kind_sets[] = {NULL, "email", "email,ssn", "private_key"};
    int routed = 0, blocked = 0;
    for (int pi = 0; pi < N(policies); pi++) {
        pol_policy *p = load(policies[pi], &env);
        for (unsigned bits = 0; bits < (1u << 9); bits++) {
            for (int ki = 0; ki < N(kind_sets); ki++) {
                world w;
                world_init(&w);
                w.routes[0].breaker_open = bits & 1;
                w.routes[1].breaker_open = bits & 2;
                w.routes[2].breaker_open = bits & 4;
                w.s.budget_known = bits & 8;
                w.s.local_loaded = !(bits & 16);
                w.s.local_wait_s = bits & 32 ? 30 : 0;
                w.s.difficulty = bits & 64 ? 0.9 : 0.1;
                w.s.sensitivity = bits & 128 ? 0.9 : 0.1;
                w.s.needs = bits & 256 ? POL_NEED_TOOLS : 0;
                world_kinds(&w, kind_sets[ki]);
                w.s.forced = ki == 3;
                pol_decision d;
                char err[256];
                assert_int_equal(pol_decide(p, &w.s, &d, NULL, err, sizeof(err)), 0);
                if (d.outcome != POL_ROUTE) {
                    blocked += d.outcome == POL_BLOCKED;
                    if (d.outcome == POL_BLOCKED) assert_true(pol_sensitive(&w.s));
                    continue;
                }
                routed++;
                bool sensitive = pol_sensitive(&w.s);
                if (sensitive && !strcmp(d.zone, "external")) {
                    assert_true(d.pseudonymize);
                    assert_true(ki == 1);       /* only email is pseudonymizable */
                }
                assert_true(pol_zone_allows(p, &w.s, d.zone, d.pseudonymize, NULL, 0));
                for (int u = 0; u < N(upstreams); u++)
                    if (!strcmp(d.route, upstreams[u].name)) assert_false(w.routes[u].breaker_open);
                if (!strcmp(d.route, "local")) assert_true(w.s.local_loaded);
            }
        }
        pol_policy_free(p);
    }
    assert_true(routed > 0 && blocked > 0);
}

/* ---- load errors ---- */

typedef struct {
    const char *rules;
    const char *reason;     /* a fragment of the message */
} ecase;

static const ecase load_errors[] = {
    {"{}", "routing.rules must be a non-empty JSON array"},
    {"[]", "routing.rules must be a non-empty JSON array"},
    {"[1]", "routing.rules[0]: a rule must be a JSON object"},
    {"[{\"route\": \"local\"}]", "routing.rules[0]: \"name\" must be 1 to 63 characters"},
    {"[{\"name\": \"a b\", \"route\": \"local\"}]", "routing.rules[0]: \"name\" must be"},
    {"[{\"name\": \"a\", \"when\": {\"tenant\": \"x\"}, \"route\": \"local\"}, {\"name\": \"a\", \"route\": \"local\"}]",
     "routing.rules[1] \"a\": duplicate name: rule 0 has it too"},
    {"[{\"name\": \"a\", \"wen\": {}, \"route\": \"local\"}]", "routing.rules[0] \"a\": unknown key \"wen\""},
    {"[{\"name\": \"a\"}]", "routing.rules[0] \"a\": route: missing"},
    {"[{\"name\": \"a\", \"route\": \"gtp4\"}]",
     "routing.rules[0] \"a\": route: unknown route \"gtp4\" (routes: local, gpt4, claude, vllm; zone classes: private, external)"},
    {"[{\"name\": \"a\", \"route\": []}]", "route: expects a string or a non-empty array of strings"},
    {"[{\"name\": \"a\", \"route\": [\"local\", 3]}]", "route: item 1 is not a non-empty string"},
    {"[{\"name\": \"a\", \"route\": \"in-process\"}]", "unknown route \"in-process\""},
    {"[{\"name\": \"a\", \"when\": {\"difficulty_score\": {\">\": 1}}, \"route\": \"local\"}]",
     "routing.rules[0] \"a\": when: unknown condition \"difficulty_score\" (conditions: all, any, not, sensitivity"},
    {"[{\"name\": \"a\", \"when\": [], \"route\": \"local\"}]", "when: a condition must be a JSON object"},
    {"[{\"name\": \"a\", \"when\": {\"sensitive\": \"yes\"}, \"route\": \"local\"}]",
     "when.sensitive: expects true or false"},
    {"[{\"name\": \"a\", \"when\": {\"difficulty\": {\">=\": 1.5}}, \"route\": \"local\"}]",
     "when.difficulty: \">=\" needs a number between 0 and 1"},
    {"[{\"name\": \"a\", \"when\": {\"difficulty\": {\"=>\": 0.5}}, \"route\": \"local\"}]",
     "when.difficulty: unknown operator \"=>\""},
    {"[{\"name\": \"a\", \"when\": {\"difficulty\": 0.5}, \"route\": \"local\"}]",
     "when.difficulty: expects a comparison such as {\">=\": 0.7}"},
    {"[{\"name\": \"a\", \"when\": {\"prompt_tokens\": {\">\": -1}}, \"route\": \"local\"}]",
     "when.prompt_tokens: \">\" needs a number of at least 0"},
    {"[{\"name\": \"a\", \"when\": {\"all\": []}, \"route\": \"local\"}]", "when.all: expects an array of 1 to 64 conditions"},
    {"[{\"name\": \"a\", \"when\": {\"all\": [{\"tenant\": \"x\"}, {\"difficulty\": {\">\": 2}}]}, \"route\": \"local\"}]",
     "routing.rules[0] \"a\": when.all[1].difficulty: \">\" needs a number between 0 and 1"},
    {"[{\"name\": \"a\", \"when\": {\"kinds\": [\"emial\"]}, \"route\": \"local\"}]",
     "when.kinds: unknown detector kind \"emial\" (kinds: email, phone"},
    {"[{\"name\": \"a\", \"when\": {\"tenant\": \"\"}, \"route\": \"local\"}]", "when.tenant: item 0 is not a non-empty string"},
    {"[{\"name\": \"a\", \"when\": {\"needs\": \"xml\"}, \"route\": \"local\"}]", "when.needs: unknown need \"xml\""},
    {"[{\"name\": \"a\", \"when\": {\"upstream_down\": \"nope\"}, \"route\": \"local\"}]",
     "when.upstream_down: expects an upstream's name or \"private\" or \"external\"; \"nope\" is none"},
    {"[{\"name\": \"a\", \"when\": {\"upstream_in_flight\": {\">\": 3}}, \"route\": \"local\"}]",
     "when.upstream_in_flight: needs \"name\""},
    {"[{\"name\": \"a\", \"when\": {\"upstream_in_flight\": {\"name\": \"external\", \">\": 3}}, \"route\": \"local\"}]",
     "\"name\" must be one upstream, not a zone class"},
    {"[{\"name\": \"a\", \"route\": \"local\"}, {\"name\": \"b\", \"route\": \"gpt4\"}]",
     "routing.rules[1] \"b\": can never be reached: the rule before it, \"a\", has no \"when\""},
    {"[{\"name\": \"a\", \"when\": {}, \"route\": \"local\"}, {\"name\": \"b\", \"route\": \"gpt4\"}]",
     "routing.rules[1] \"b\": can never be reached"},
    {"[{\"name\": \"a\", \"route\": \"local\", \"on_sensitive\": \"drop\"}]",
     "on_sensitive must be \"keep\", \"pseudonymize\" or \"refuse\""},
};

static void expect_error(const char *rules_json, const pol_policy_env *env, const char *fragment)
{
    cJSON *rules = rules_json ? cJSON_Parse(rules_json) : NULL;
    if (rules_json && !rules) fail_msg("test JSON does not parse: %s", rules_json);
    pol_policy *p = (pol_policy *)&p;
    char err[512] = "";
    int rc = pol_policy_new(&p, rules, env, err, sizeof(err));
    cJSON_Delete(rules);
    if (rc == 0) {
        pol_policy_free(p);
        fail_msg("accepted: %s", rules_json ? rules_json : "(default)");
    }
    assert_null(p);
    if (!strstr(err, fragment)) fail_msg("%s\n  message: %s\n  wanted:  %s", rules_json, err, fragment);
}

static void test_load_errors(void **state)
{
    (void)state;
    pol_policy_env env = env_base();
    for (int i = 0; i < N(load_errors); i++) expect_error(load_errors[i].rules, &env, load_errors[i].reason);

    /* Nesting: 16 levels load, 17 are refused. */
    for (int depth = 15; depth <= 16; depth++) {
        char deep[512];
        size_t at = (size_t)snprintf(deep, sizeof(deep), "[{\"name\": \"deep\", \"when\": ");
        for (int i = 0; i < depth; i++) at += (size_t)snprintf(deep + at, sizeof(deep) - at, "{\"not\": ");
        at += (size_t)snprintf(deep + at, sizeof(deep) - at, "{}");
        for (int i = 0; i < depth; i++) at += (size_t)snprintf(deep + at, sizeof(deep) - at, "}");
        snprintf(deep + at, sizeof(deep) - at, ", \"route\": \"local\"}]");
        if (depth == 15)
            pol_policy_free(load(deep, &env));
        else
            expect_error(deep, &env, "conditions nest deeper than 16 levels");
    }

    /* Scores no head provides. */
    pol_policy_env no_heads = env_base();
    no_heads.difficulty_head = no_heads.sensitivity_head = false;
    expect_error("[{\"name\": \"h\", \"when\": {\"difficult\": true}, \"route\": \"gpt4\"}]", &no_heads,
                 "routing.rules[0] \"h\": when.difficult: no head provides the difficulty score");
    expect_error("[{\"name\": \"h\", \"when\": {\"any\": [{\"tenant\": \"t\"}, {\"sensitivity\": {\">\": 0.2}}]}, "
                 "\"route\": \"gpt4\"}]", &no_heads,
                 "when.any[1].sensitivity: no head provides the sensitivity score");

    /* pseudonymize with nothing it may hide. */
    pol_policy_env no_pseudo = env_base();
    no_pseudo.n_pseudonymize_kinds = 0;
    expect_error("[{\"name\": \"p\", \"route\": \"gpt4\", \"on_sensitive\": \"pseudonymize\"}]", &no_pseudo,
                 "routing.pseudonymize_kinds is empty");

    /* The environment itself. */
    static const pol_upstream_def bad_name[] = {{"local", "external"}};
    static const pol_upstream_def bad_zone[] = {{"onprem", "internal"}};
    static const pol_upstream_def dup[] = {{"a", "private"}, {"a", "external"}};
    static const char *const bad_zones[] = {"in-process", "public"};
    static const char *const bad_pseudo[] = {"emails"};
    pol_policy_env e = env_base();
    e.upstreams = bad_name, e.n_upstreams = 1;
    expect_error(NULL, &e, "upstream 0: \"local\" cannot be a route name");
    e.upstreams = dup, e.n_upstreams = 2;
    expect_error(NULL, &e, "upstream 1: \"a\" cannot be a route name");
    e.upstreams = bad_zone, e.n_upstreams = 1;
    expect_error(NULL, &e, "upstream \"onprem\": zone must be \"private\" or \"external\"");
    e = env_base();
    e.sensitive_zones = bad_zones, e.n_sensitive_zones = 2;
    expect_error(NULL, &e, "routing.sensitive_zones: unknown zone \"public\"");
    e = env_base();
    e.pseudonymize_kinds = bad_pseudo, e.n_pseudonymize_kinds = 1;
    expect_error(NULL, &e, "routing.pseudonymize_kinds: \"emails\" is not a detector kind");
    e = env_base();
    e.max_local_wait_s = -1;
    expect_error(NULL, &e, "routing.max_local_wait_s must be");
}

static void test_default_text_and_missing_heads(void **state)
{
    (void)state;
    /* The default policy is a plain rules array (docs/policy.md prints it). */
    cJSON *rules = cJSON_Parse(pol_policy_default_text());
    assert_non_null(rules);
    assert_int_equal(cJSON_GetArraySize(rules), 5);
    pol_policy_env env = env_base();
    pol_policy *p = load(pol_policy_default_text(), &env);
    pol_policy_free(p);
    cJSON_Delete(rules);

    /* ... verbatim. */
    FILE *f = fopen(JUNCTION_SOURCE_DIR "/docs/policy.md", "r");
    assert_non_null(f);
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = 0;
    if (!strstr(doc, pol_policy_default_text()))
        fail_msg("docs/policy.md does not print the default policy as policy/rules_default.c has it");

    /* Without a difficulty head and without upstreams, the default still
     * loads: hard-to-frontier is left out, empty zone classes are skipped. */
    env.difficulty_head = false;
    env.n_upstreams = 0;
    p = load(NULL, &env);
    world w;
    world_init(&w);
    w.s.n_routes = 0;
    w.s.has_difficulty = false;
    w.s.local_wait_s = 30;
    cJSON *explain = cJSON_CreateArray();
    pol_decision d;
    char err[256];
    assert_int_equal(pol_decide(p, &w.s, &d, explain, err, sizeof(err)), 0);
    assert_int_equal(d.outcome, POL_ROUTE);
    assert_string_equal(d.route, "local");
    assert_string_equal(d.rule, "local-busy");
    assert_int_equal(cJSON_GetArraySize(explain), 3);
    const cJSON *busy = cJSON_GetArrayItem(explain, 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(busy, "rule")), "local-busy");
    const cJSON *skip = cJSON_GetArrayItem(cJSON_GetObjectItem(busy, "skipped"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(skip, "route")), "external");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(skip, "why")), "no external upstream is configured");
    cJSON_Delete(explain);
    pol_policy_free(p);
}

/* ---- the explanation ---- */

static void test_explain(void **state)
{
    (void)state;
    pol_policy_env env = env_base();
    pol_policy *p = load(NULL, &env);
    world w;
    world_init(&w);
    w.s.difficulty = 0.81;
    w.routes[0].breaker_open = true;
    cJSON *explain = cJSON_CreateArray();
    pol_decision d;
    char err[256];
    assert_int_equal(pol_decide(p, &w.s, &d, explain, err, sizeof(err)), 0);
    char *text = cJSON_PrintUnformatted(explain);
    assert_string_equal(text,
        "[{\"rule\":\"needs-upstream\",\"matched\":false,"
        "\"conditions\":\"needs nothing the local engine lacks of tools, json, images, long_context\","
        "\"skipped\":[],\"chosen\":null},"
        "{\"rule\":\"sensitive-stays-inside\",\"matched\":false,"
        "\"conditions\":\"not sensitive (sensitivity 0.1 < 0.5)\",\"skipped\":[],\"chosen\":null},"
        "{\"rule\":\"hard-to-frontier\",\"matched\":true,\"conditions\":\"difficult (difficulty 0.81 >= 0.5)\","
        "\"skipped\":[{\"route\":\"gpt4\",\"why\":\"circuit breaker open\"}],\"chosen\":\"claude\"}]");
    assert_string_equal(d.reason, "rule hard-to-frontier: difficult (difficulty 0.81 >= 0.5); route claude "
                                  "(skipped gpt4: circuit breaker open)");
    assert_string_equal(d.zone, "external");
    free(text);
    cJSON_Delete(explain);

    /* Blocked: every rule evaluated, the zone skips named, the kinds but no text. */
    world_init(&w);
    w.s.sensitivity = 0.97;
    world_kinds(&w, "health,person");
    w.s.local_loaded = false;
    w.routes[2].breaker_open = true;
    explain = cJSON_CreateArray();
    assert_int_equal(pol_decide(p, &w.s, &d, explain, err, sizeof(err)), 0);
    assert_int_equal(d.outcome, POL_BLOCKED);
    assert_string_equal(d.kinds, "health, person");
    assert_string_equal(d.rule, "");
    assert_int_equal(cJSON_GetArraySize(explain), 5);   /* every rule, matched or not */
    const cJSON *busy = cJSON_GetArrayItem(explain, 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(busy, "matched")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(busy, "chosen")));
    const cJSON *skip = cJSON_GetArrayItem(cJSON_GetObjectItem(busy, "skipped"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(skip, "why")),
                        "zone external is not allowed for sensitive data");
    assert_string_equal(d.reason, "sensitive data (kinds: health, person) may not leave the allowed zones "
                                  "(in-process, private) and no route there can answer: local: no local model "
                                  "is loaded; vllm: circuit breaker open");
    cJSON_Delete(explain);

    /* Refused by the rule: "refused" in the explanation. */
    pol_policy_free(p);
    p = load(operator_rules, &env);
    world_init(&w);
    world_kinds(&w, "aws_secret_key");
    w.s.forced = true;
    explain = cJSON_CreateArray();
    assert_int_equal(pol_decide(p, &w.s, &d, explain, err, sizeof(err)), 0);
    assert_int_equal(d.outcome, POL_BLOCKED);
    assert_string_equal(d.rule, "secrets-stay-home");
    const cJSON *first = cJSON_GetArrayItem(explain, 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(first, "refused")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "conditions")), "kinds found: aws_secret_key");
    cJSON_Delete(explain);

    /* Bad arguments are refused, not crashed on. */
    cJSON *not_array = cJSON_CreateObject();
    assert_int_equal(pol_decide(p, &w.s, &d, not_array, err, sizeof(err)), -1);
    assert_int_equal(pol_decide(NULL, &w.s, &d, NULL, err, sizeof(err)), -1);
    assert_int_equal(pol_decide(p, NULL, &d, NULL, err, sizeof(err)), -1);
    cJSON_Delete(not_array);
    assert_false(pol_zone_allows(NULL, &w.s, "private", false, NULL, 0));
    pol_policy_free(p);
    pol_policy_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy),
        cmocka_unit_test(test_operator_policy),
        cmocka_unit_test(test_leaf_conditions),
        cmocka_unit_test(test_zone_gate),
        cmocka_unit_test(test_zone_guarantee_sweep),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_default_text_and_missing_heads),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
