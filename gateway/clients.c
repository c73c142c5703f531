/* clients.c: who is asking: client keys, their rate limits and budgets.
 *
 * Keys live in the ledger database (`junction keys`), hashed; the daemon
 * holds an immutable snapshot and swaps in a new one within a second of a
 * change (a worker checks, the loop swaps), so keys are added and revoked
 * without a restart. Auth is on as soon as one key exists. Rate limits are
 * token buckets per key; budgets reserve a request's worst case when it is
 * routed and settle to the real cost when it ends, in one step with the
 * check, so concurrent requests cannot overshoot (policy/budget.c). All of
 * it lives on the loop thread, except the snapshot loading.
 *
 * Protected mode (as Redis has it) is here too, because it is a rule about
 * keys: a daemon listening beyond loopback without allow_unauthenticated_remote
 * lets no client in without a key, at start (it refuses to listen with none)
 * and while it runs (revoking the last key refuses everyone, it does not turn
 * auth off).
 */
#include "clients.h"
#include "accounting.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct gw_clients {
    char path[GW_PATH_MAX];          /* the ledger file the keys live in ("" = off: no keys, no auth) */
    int64_t version;                 /* the keys' version the snapshot holds (-1: none loaded) */
    int64_t loaded_version;          /* what a load just read (a worker's, taken by the loop) */
    bool unreadable;                 /* the keys could not be read: refuse every client until they can */
    bool check_failing;              /* the change check fails (logged once) */
    bool protect;                    /* protected mode: no key is never "no auth" */
    char listen[256];                /* for the messages */
    pol_keys_snapshot *snapshot;
    pol_keys_snapshot *incoming;     /* loaded by a worker, swapped in on the loop */
    pol_budget *budget;
    pol_rate *rate;
    gw_pool *pool;
    struct event *reload_timer;
    bool reload_running;
};

/* The keys as they are now, through a connection opened for it and closed
 * at once: between reloads the daemon holds no second connection on the
 * ledger's file (the writer's own faults stay visible to it). Any thread. */
static int load_keys(gw_clients *c, pol_keys_snapshot **out, char *err, size_t errlen)
{
    pol_keys *ks;
    int64_t version;
    if (pol_keys_version(c->path, &version, err, errlen) != 0 || pol_keys_open(&ks, c->path, err, errlen) != 0)
        return -1;
    int rc = pol_keys_snapshot_load(ks, out, err, errlen);
    pol_keys_close(ks);
    if (rc == 0) c->loaded_version = version;
    return rc;
}

int gw_clients_new(gw_clients **out, struct event_base *base, const gw_config *cfg, const char *ledger_path, char *err,
                   size_t errlen)
{
    gw_clients *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pol_budget_config bc;
    pol_budget_config_defaults(&bc);
    bc.global_daily_micro = (int64_t)(cfg->budgets.global_daily_usd * 1e6 + 0.5);
    bc.global_monthly_micro = (int64_t)(cfg->budgets.global_monthly_usd * 1e6 + 0.5);
    bc.soft_fraction = cfg->budgets.soft_fraction;
    char inner[512];
    if (pol_budget_new(&c->budget, &bc, inner, sizeof(inner)) != 0 || pol_rate_new(&c->rate, inner, sizeof(inner)) != 0) {
        snprintf(err, errlen, "budgets: %s", inner);
        goto fail;
    }
    snprintf(c->path, sizeof(c->path), "%s", ledger_path);
    snprintf(c->listen, sizeof(c->listen), "%s", cfg->listen);
    c->protect = gw_protected_mode(cfg);
    /* The ledger opened (and migrated) the file already. When it cannot be
     * read (a corrupt or locked file: the ledger runs degraded), a daemon
     * reachable from other machines fails closed (no client is let in until
     * the keys can be read again); on loopback it goes on as without keys,
     * as protected mode allows. */
    bool loopback = gw_listen_is_loopback(cfg->listen);
    c->version = -1;
    if (ledger_path[0] && load_keys(c, &c->snapshot, inner, sizeof(inner)) != 0) {
        c->unreadable = !loopback;
        gw_log(GW_LOG_ERROR, "client keys in %s cannot be read (%s): %s", ledger_path, inner,
               loopback ? "serving loopback clients without keys until they can"
                        : "every API request gets 503 until they can");
    } else {
        c->version = c->loaded_version;
    }
    if (ledger_path[0] && !c->unreadable && pol_budget_rebuild(c->budget, ledger_path, pol_now_ms(), inner, sizeof(inner)) != 0)
        gw_log(GW_LOG_WARN, "budgets: cannot sum today's spend from the ledger (%s): counting from zero", inner);
    (void)base;
    *out = c;
    return 0;
fail:
    gw_clients_free(c);
    return -1;
}

void gw_clients_free(gw_clients *c)
{
    if (!c) return;
    if (c->reload_timer) event_free(c->reload_timer);
    pol_keys_snapshot_free(c->snapshot);
    pol_keys_snapshot_free(c->incoming);
    pol_budget_free(c->budget);
    pol_rate_free(c->rate);
    free(c);
}

bool gw_clients_auth_on(const gw_clients *c)
{
    return c->protect || c->unreadable || (c->snapshot && pol_keys_count(c->snapshot) > 0);
}

/* ---- protected mode ---- */

bool gw_listen_is_loopback(const char *listen)
{
    char host[256], err[256];
    unsigned short port;
    if (gw_listen_parse(listen, host, sizeof(host), &port, err, sizeof(err)) != 0) return false;
    return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

bool gw_protected_mode(const gw_config *cfg)
{
    return !cfg->allow_unauthenticated_remote && !gw_listen_is_loopback(cfg->listen);
}

int gw_protected_refuse(const gw_config *cfg, size_t n_keys, char *err, size_t errlen)
{
    if (!gw_protected_mode(cfg) || n_keys > 0) return 0;
    snprintf(err, errlen, "refusing to listen on %s without client keys: anyone who can reach it could spend "
             "your upstream budget. Add a key (junction keys add --tenant NAME), listen on 127.0.0.1, or set "
             "allow_unauthenticated_remote", cfg->listen);
    return -1;
}

int gw_clients_refuse_unprotected(const gw_clients *c, const gw_config *cfg, char *err, size_t errlen)
{
    /* keys that cannot be read may exist: the daemon starts and fails closed */
    return c->unreadable ? 0 : gw_protected_refuse(cfg, c->snapshot ? pol_keys_count(c->snapshot) : 0, err, errlen);
}

/* ---- reloading: a worker checks the database, the loop swaps ---- */

static void reload_work(void *arg)
{
    gw_clients *c = arg;
    char err[256];
    int64_t version;
    if (pol_keys_version(c->path, &version, err, sizeof(err)) != 0) {
        if (!c->check_failing) gw_log(GW_LOG_WARN, "client keys: cannot check for changes: %s", err);
        c->check_failing = true; /* once per failing spell, not every second */
        return;
    }
    c->check_failing = false;
    if (version == c->version && !c->unreadable) return;
    if (load_keys(c, &c->incoming, err, sizeof(err)) != 0)
        gw_log(GW_LOG_WARN, "client keys: cannot reload: %s (the previous keys stay in force)", err);
}

static void reload_done(void *arg)
{
    gw_clients *c = arg;
    c->reload_running = false;
    if (!c->incoming) return;
    size_t before = c->snapshot ? pol_keys_count(c->snapshot) : 0;
    pol_keys_snapshot_free(c->snapshot); /* requests copied what they need from it */
    c->snapshot = c->incoming;
    c->incoming = NULL;
    c->version = c->loaded_version;
    c->unreadable = false;
    size_t now = pol_keys_count(c->snapshot);
    gw_log(GW_LOG_INFO, "client keys reloaded: %zu active (were %zu)", now, before);
    if (c->protect && now == 0)
        gw_log(GW_LOG_WARN, "no client key is left, and junction listens on %s, beyond this machine (protected "
               "mode): every model and admin request gets 401 until a key is added (junction keys add --tenant "
               "NAME)", c->listen);
}

static void reload_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_clients *c = arg;
    if (c->reload_running || !c->pool) return;
    c->reload_running = gw_pool_submit(c->pool, reload_work, reload_done, c) == 0;
}

int gw_clients_start(gw_clients *c, struct event_base *base, gw_pool *pool)
{
    if (!c->path[0]) return 0;
    c->pool = pool;
    struct timeval second = {1, 0};
    c->reload_timer = event_new(base, -1, EV_PERSIST, reload_tick, c);
    return c->reload_timer && event_add(c->reload_timer, &second) == 0 ? 0 : -1;
}

void gw_clients_stop(gw_clients *c)
{
    if (c->reload_timer) event_del(c->reload_timer);
    c->pool = NULL;
}

/* ---- per request ---- */

int gw_clients_identify(gw_clients *c, gw_request *r, pol_key *out, bool *anonymous, gw_api_error *e)
{
    *anonymous = !gw_clients_auth_on(c);
    if (*anonymous) return 0;
    if (c->unreadable) {
        gw_api_error_set(e, 503, "server_error", "keys_unavailable", NULL,
                         "junction cannot read its client keys (the ledger database is failing; see /readyz), so "
                         "it lets no client in; retry shortly.");
        gw_request_add_header(r, "Retry-After", "5");
        return -1;
    }
    if (!c->snapshot || pol_keys_count(c->snapshot) == 0) { /* protected mode with no key left */
        gw_api_error_set(e, 401, "invalid_request_error", "invalid_api_key", NULL,
                         "No client key exists, and junction listens on %.200s, beyond its own machine, so it lets "
                         "no client in without one (protected mode). The operator adds a key with `junction keys "
                         "add --tenant NAME` (it works within a second), or listens on 127.0.0.1.", c->listen);
        gw_request_add_header(r, "WWW-Authenticate", "Bearer");
        return -1;
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    const pol_key *k = NULL;
    if (auth && !strncasecmp(auth, "Bearer ", 7)) k = pol_keys_lookup(c->snapshot, auth + 7, strlen(auth + 7));
    if (k) {
        *out = *k; /* a copy: the snapshot may be swapped while the request runs */
        return 0;
    }
    gw_api_error_set(e, 401, "invalid_request_error", "invalid_api_key", NULL,
                     auth ? "Incorrect API key provided. Keys are made with `junction keys add` and sent as "
                            "'Authorization: Bearer KEY'."
                          : "You didn't provide an API key: send it as 'Authorization: Bearer KEY' (keys are "
                            "made with `junction keys add`).");
    gw_request_add_header(r, "WWW-Authenticate", "Bearer");
    return -1;
}

const pol_tenant *gw_clients_tenant(const gw_clients *c, const char *name)
{
    return c->snapshot ? pol_keys_tenant(c->snapshot, name) : NULL;
}

static void add_rate_headers(gw_request *r, const pol_rate_verdict *v)
{
    char n[32], t[32];
    if (v->limit_requests >= 0) {
        snprintf(n, sizeof(n), "%lld", (long long)v->limit_requests);
        gw_request_add_header(r, "x-ratelimit-limit-requests", n);
        snprintf(n, sizeof(n), "%lld", (long long)v->remaining_requests);
        gw_request_add_header(r, "x-ratelimit-remaining-requests", n);
        pol_rate_duration(v->reset_requests_ms, t, sizeof(t));
        gw_request_add_header(r, "x-ratelimit-reset-requests", t);
    }
    if (v->limit_tokens >= 0) {
        snprintf(n, sizeof(n), "%lld", (long long)v->limit_tokens);
        gw_request_add_header(r, "x-ratelimit-limit-tokens", n);
        snprintf(n, sizeof(n), "%lld", (long long)v->remaining_tokens);
        gw_request_add_header(r, "x-ratelimit-remaining-tokens", n);
        pol_rate_duration(v->reset_tokens_ms, t, sizeof(t));
        gw_request_add_header(r, "x-ratelimit-reset-tokens", t);
    }
}

int gw_clients_rate(gw_clients *c, gw_request *r, const pol_key *key, int64_t tokens, gw_api_error *e)
{
    pol_rate_verdict v;
    char why[256];
    if (pol_rate_take(c->rate, key, tokens, pol_now_ms(), &v, why, sizeof(why)) != 0) {
        gw_api_error_set(e, 500, "server_error", NULL, NULL, "rate limits: %s", why);
        return -1;
    }
    add_rate_headers(r, &v);
    if (v.allowed) return 0;
    char after[16];
    snprintf(after, sizeof(after), "%d", v.retry_after_s > 0 ? v.retry_after_s : 1);
    gw_request_add_header(r, "Retry-After", after);
    gw_api_error_set(e, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                     v.too_large ? "This request needs more tokens than key %s may use in a minute (tpm %lld): "
                                   "send a shorter prompt or a smaller max_tokens."
                                 : "Rate limit reached for key %s: at most %lld requests and %lld tokens a minute; "
                                   "retry after %s s.",
                     key->id, v.too_large ? (long long)key->tpm : (long long)key->rpm, (long long)key->tpm, after);
    return -1;
}

void gw_clients_rate_settle(gw_clients *c, const char *key_id, int64_t reserved, int64_t actual)
{
    pol_rate_settle(c->rate, key_id, reserved, actual, pol_now_ms());
}

pol_budget_status gw_clients_reserve(gw_clients *c, const pol_key *key, int64_t worst_case_micro,
                                     pol_budget_reservation *res, pol_budget_verdict *v)
{
    char why[256];
    const pol_tenant *tenant = key ? gw_clients_tenant(c, key->tenant) : NULL;
    if (pol_budget_reserve(c->budget, key, tenant, worst_case_micro, pol_now_ms(), res, v, why, sizeof(why)) != 0) {
        gw_log(GW_LOG_WARN, "budgets: %s", why);
        v->status = POL_BUDGET_OK; /* an internal fault must not refuse paying clients */
        res->open = false;
    }
    return v->status;
}

void gw_clients_settle(gw_clients *c, pol_budget_reservation *res, int64_t actual_micro)
{
    if (res->open) pol_budget_settle(c->budget, res, actual_micro, pol_now_ms());
}

void gw_clients_usage(gw_clients *c, pol_budget_scope scope, const char *name, pol_budget_usage *out)
{
    pol_budget_usage_of(c->budget, scope, name, pol_now_ms(), out);
}
