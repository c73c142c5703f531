/* rules_internal.h: a loaded policy, shared by rules_parse.c (which builds
 * and checks it) and rules.c (which evaluates it). Not part of the module's
 * interface: callers see only pol_policy in policy.h.
 *
 * Why a parsed tree rather than walking the JSON per request: every name is
 * resolved once at load (routes to indices, zone classes to their
 * upstreams, comparison operators to an enum), so a decision does no string
 * parsing and cannot meet anything the load did not check.
 */
#ifndef JUNCTION_RULES_INTERNAL_H
#define JUNCTION_RULES_INTERNAL_H

#include "policy.h"

#define RULES_MAX_DEPTH 16          /* nesting of all/any/not */
#define RULES_MAX_KIDS 64           /* conditions in one all/any */
#define RULES_MAX_ROUTES 256        /* upstreams + local */
#define RULES_LOCAL 0               /* index of the local engine in pol_policy.routes */

typedef enum { RZ_IN_PROCESS, RZ_PRIVATE, RZ_EXTERNAL, RZ_COUNT } rz_zone;

/* Zone names; -1 for an unknown one. */
extern const char *const pol_rules_zone_names[RZ_COUNT];
int pol_rules_zone_from_name(const char *name);

typedef enum {
    RC_ALL, RC_ANY, RC_NOT,
    RC_SENSITIVITY, RC_DIFFICULTY, RC_SENSITIVE, RC_DIFFICULT, RC_KINDS,
    RC_TENANT, RC_KEY, RC_MODEL, RC_NEEDS, RC_LOCAL_LACKS, RC_PROMPT_TOKENS,
    RC_LOCAL_QUEUE, RC_LOCAL_WAIT, RC_LOCAL_AVAILABLE, RC_UPSTREAM_DOWN,
    RC_UPSTREAM_IN_FLIGHT, RC_BUDGET,
    RC_COUNT
} rc_type;

typedef enum { RO_LT, RO_LE, RO_GT, RO_GE, RO_COUNT } ro_op;
extern const char *const pol_rules_op_names[RO_COUNT];

typedef struct {
    ro_op op;
    double value;
} rc_cmp;

typedef struct rc_cond {
    rc_type type;
    struct rc_cond *kids;           /* all/any: n_kids; not: 1 */
    int n_kids;
    rc_cmp cmp[RO_COUNT];           /* comparisons: every one must hold */
    int n_cmp;
    bool flag;                      /* sensitive, difficult, local_available */
    const char **strs;              /* kinds, tenant, key, model: into pol_policy.json */
    int n_strs;
    unsigned needs;                 /* needs, local_lacks: POL_NEED_* */
    int route;                      /* upstream_*: index into routes, or -1 for a zone class */
    int zone;                       /* upstream_down on a zone class */
} rc_cond;

typedef struct {
    const char *name;               /* into pol_policy.json */
    int on_sensitive;               /* RS_* */
    rc_cond when;                   /* RC_ALL with no kids: always */
    int *targets;                   /* route indices, or -1 - zone for a zone class with no
                                       upstream (kept so that the explanation can say so) */
    int n_targets;
} rr_rule;

enum { RS_KEEP, RS_PSEUDONYMIZE, RS_REFUSE };

typedef struct {
    char *name;
    rz_zone zone;
} rr_route;

struct pol_policy {
    cJSON *json;                    /* our copy of the rules; names point into it */
    rr_route *routes;               /* [RULES_LOCAL] is the local engine */
    int n_routes;
    rr_rule *rules;
    int n_rules;
    bool zone_ok[RZ_COUNT];         /* sensitive_zones */
    char **pseudo_kinds;
    int n_pseudo;
    double max_local_wait_s;
};

#endif
