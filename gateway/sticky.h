/* sticky.h: a conversation's highest tier, remembered. Internal; loop thread. */
#ifndef JUNCTION_STICKY_H
#define JUNCTION_STICKY_H

#include "internal.h"

/* idle_s 0: stickiness off (*out NULL; every function accepts NULL). */
int gw_sticky_new(gw_sticky **out, double idle_s);
void gw_sticky_free(gw_sticky *s);
/* The conversation's names: where to look its past up (0: a first turn)
 * and where to store this turn. */
void gw_sticky_keys(const gw_request *r, const cJSON *body, uint64_t *lookup, uint64_t *store);
/* The tier and route a conversation reached, unless it idled too long. */
bool gw_sticky_find(gw_sticky *s, uint64_t key, int *tier, char *route, size_t len);
/* Remember this turn's tier (never lowering the conversation's). */
void gw_sticky_store(gw_sticky *s, uint64_t lookup, uint64_t key, int tier, const char *route);
/* 0 in-process, 1 private, 2 external. */
int gw_sticky_tier(const char *zone);

#endif
