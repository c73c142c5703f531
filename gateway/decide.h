/* decide.h: the route of a call, and the zone gate. Internal. */
#ifndef JUNCTION_DECIDE_H
#define JUNCTION_DECIDE_H

#include "classify.h"
#include "policy.h"

/* The policy's view of one request; the route states live here too. */
typedef struct {
    pol_signals s;
    pol_route_state routes[GW_MAX_UPSTREAMS];
} gw_signals;


void gw_signals_fill(const gw_call *call, gw_signals *sig);

/* Fill call->decision: the model the client named, or the policy's choice
 * for "auto" (with every rule's outcome appended to `explain` when it is
 * not NULL). -1 with the error for the client (404, 503 no_route, 403
 * sensitive_data_blocked). Needs call->cls. */
int gw_decide(gw_call *call, cJSON *explain, gw_api_error *e);

/* The last gate before bytes go to an upstream in `zone`: false (with the
 * 403 for the client) when the request's data may not go there. */
bool gw_zone_allows(const gw_call *call, const char *zone, gw_api_error *e);

#endif
