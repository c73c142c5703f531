/* clients.h: client keys, rate limits and budgets for the request path. Internal. */
#ifndef JUNCTION_CLIENTS_H
#define JUNCTION_CLIENTS_H

#include "internal.h"

/* Keys from the ledger database at `ledger_path` ("" = the ledger is off:
 * no keys, no auth); budgets rebuilt from its rows. */
int gw_clients_new(gw_clients **out, struct event_base *base, const gw_config *cfg, const char *ledger_path, char *err,
                   size_t errlen);
/* Start reloading the keys every second (through `pool`); stop before the pool goes. */
int gw_clients_start(gw_clients *c, struct event_base *base, gw_pool *pool);
void gw_clients_stop(gw_clients *c);
void gw_clients_free(gw_clients *c);

/* Whether every API request needs a key: one exists, the keys cannot be
 * read (fail closed), or protected mode holds. */
bool gw_clients_auth_on(const gw_clients *c);

/* Protected mode (docs/operations.md): `listen` is beyond this machine (a
 * host other than localhost, 127.x.x.x or ::1) and allow_unauthenticated_remote
 * is off. Then no client is let in without a key, even while none exists. */
bool gw_listen_is_loopback(const char *listen);
bool gw_protected_mode(const gw_config *cfg);
/* -1 with the reason when protected mode holds and `n_keys` is 0: serve
 * refuses to start so (and --check-config says so). */
int gw_protected_refuse(const gw_config *cfg, size_t n_keys, char *err, size_t errlen);
/* gw_protected_refuse on the keys loaded at start (keys that cannot be
 * read pass: the daemon fails closed). */
int gw_clients_refuse_unprotected(const gw_clients *c, const gw_config *cfg, char *err, size_t errlen);
/* The request's key, copied into *out; *anonymous when auth is off. -1
 * with the 401 for the client when auth is on and the key is missing or
 * unknown, or no key exists in protected mode (503 when the keys cannot be
 * read). */
int gw_clients_identify(gw_clients *c, gw_request *r, pol_key *out, bool *anonymous, gw_api_error *e);
const pol_tenant *gw_clients_tenant(const gw_clients *c, const char *name);

/* Take one request and `tokens` from the key's buckets (the x-ratelimit-*
 * headers go on the reply); -1 with the 429 when over. `key` NULL: none. */
int gw_clients_rate(gw_clients *c, gw_request *r, const pol_key *key, int64_t tokens, gw_api_error *e);
void gw_clients_rate_settle(gw_clients *c, const char *key_id, int64_t reserved, int64_t actual);

/* Reserve the worst case against the key's, its tenant's and the global
 * budgets; the verdict says how much is left. HARD reserves nothing. */
pol_budget_status gw_clients_reserve(gw_clients *c, const pol_key *key, int64_t worst_case_micro,
                                     pol_budget_reservation *res, pol_budget_verdict *v);
/* The real cost replaces the reservation (no-op when none is open). */
void gw_clients_settle(gw_clients *c, pol_budget_reservation *res, int64_t actual_micro);

/* What a key, a tenant or everyone (name "") spent and holds reserved, today and this month. */
void gw_clients_usage(gw_clients *c, pol_budget_scope scope, const char *name, pol_budget_usage *out);

#endif
