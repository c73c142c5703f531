/* internal.h: declarations shared by the gateway's own files (not public).
 *
 * The files, floor by floor (each uses only those below it):
 *   server.c       lifecycle: event loop, listener, signals, drain
 *   api.c          the routes table and the small endpoints
 *   completions.c  the one path of a model request: read, validate, decide,
 *                  answer (answer_local.c / answer_upstream.c), account
 *   connections.c  client connections: limits, hang-ups, output backpressure
 *   http.c         one request's replies, streams, errors, access-log line
 *   backends.c     what answers: the local engine, the upstream client
 */
#ifndef JUNCTION_GATEWAY_INTERNAL_H
#define JUNCTION_GATEWAY_INTERNAL_H

#include "gateway.h"
#include "policy.h"
#include "upstream.h"

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdint.h>

struct gw_local;

int gw_parse_log_level(const char *s, gw_log_level *out);
void gw_format_time(char *buf, size_t len);
uint64_t gw_now_ns(void);

/* ---- backends.c: what can answer a model request ---- */
typedef struct gw_accounts gw_accounts;
typedef struct gw_admin_keys gw_admin_keys;
typedef struct gw_classifier gw_classifier;
typedef struct gw_classification gw_classification;
typedef struct gw_clients gw_clients;
typedef struct gw_pseudo gw_pseudo;
typedef struct gw_sticky gw_sticky;

struct gw_backends {
    struct gw_local *local;    /* NULL without a local model */
    up_client *upstreams;      /* never NULL (may hold no upstream) */
    gw_accounts *accounts;     /* prices, counters, the ledger (accounting.c) */
    gw_classifier *classifier; /* detectors and heads (classify.c) */
    struct pol_policy *policy; /* routing rules (decide.c) */
    gw_clients *clients;       /* keys, rate limits, budgets (clients.c) */
    gw_sticky *sticky;         /* conversations' tiers (sticky.c); NULL when off */
    gw_admin_keys *admin;      /* who may read the admin endpoints (admin.c) */
    bool ledger_required;      /* a degraded ledger makes /readyz say not ready */
};

/* ---- what every handler may use: the site's shared state (owned by server.c) ---- */
typedef struct gw_access_log gw_access_log;

typedef struct gw_site {
    const gw_config *cfg;
    gw_backends *backends;
    gw_pool *pool;
    struct event_base *base;
    struct gw_conns *conns;
    gw_access_log *access_log; /* NULL when off */
    bool draining;
    bool drain_cut;            /* the drain timeout is ending the answers still running */
    uint64_t id_state[2];      /* request-id generator */
} gw_site;

/* ---- connections.c: client connections ---- */
typedef struct gw_conns gw_conns;
typedef void (*gw_close_fn)(void *arg);
/* over: the connection's unsent output passed the limit (true) or fell back
 * under half of it (false). */
typedef void (*gw_output_fn)(void *arg, bool over);

int gw_conns_new(gw_conns **out, struct evhttp *http, struct event_base *base, long long max_connections,
                 char *err, size_t errlen);
void gw_conns_free(gw_conns *cs);
long long gw_conns_count(const gw_conns *cs);
/* Stop accepting and close idle connections (a drain began); returns how
 * many are busy with a request. */
long long gw_conns_drain(gw_conns *cs);
/* Call fn(arg) whenever a connection closed (the drain may be complete). */
void gw_conns_on_idle_change(gw_conns *cs, void (*fn)(void *arg), void *arg);
void gw_conns_set_listener(gw_conns *cs, struct evhttp_bound_socket *bound);
/* Call every waiting party's close callback now (the drain timeout ended
 * their answers; they see site->drain_cut); returns how many. */
long long gw_conns_cut_answers(gw_conns *cs);
/* Note when a request's answer is complete (the connection may go idle). */
void gw_conns_track_request(gw_conns *cs, struct evhttp_request *req);
/* Before evhttp_free: adopt connections accepted in this loop pass. */
void gw_conns_before_http_free(gw_conns *cs);

/* ---- http.c: one request being answered ---- */
#define GW_REQUEST_ID_MAX 128

struct gw_call;

typedef struct gw_request {
    gw_site *site;
    struct evhttp_request *req;
    const char *method;        /* static string */
    char path[256];            /* URL path, without the query (never logged: queries may hold secrets) */
    char id[GW_REQUEST_ID_MAX + 1];
    uint64_t start_ns;
    struct gw_call *call;      /* a model request's details for the access log, or NULL */
} gw_request;

/* Fill `r` for a new request: method, path, and its X-Request-Id (the
 * client's when it is sane, else a fresh one). */
void gw_request_begin(gw_request *r, gw_site *site, struct evhttp_request *req);

/* True if `id` is acceptable as a client-supplied request id. */
bool gw_request_id_is_sane(const char *id);

/* Write the request's access-log line (for answers sent in pieces, or
 * abandoned: status 499). Replies through gw_reply_json write it themselves. */
void gw_request_log(gw_request *r, int status, size_t bytes);
/* Call fn(arg) if the client's connection closes before the answer is
 * complete; gw_request_unwatch_close when done. */
int gw_request_watch_close(gw_request *r, gw_close_fn fn, void *arg);
#define gw_request_unwatch_close(r) gw_request_watch_close(r, NULL, NULL)
/* Call fn(arg, over) as the connection's unsent output crosses `limit`
 * bytes (and falls back under limit/2); fn NULL stops it. */
int gw_request_watch_output(gw_request *r, size_t limit, gw_output_fn fn, void *arg);
/* Unsent bytes waiting on the request's connection. */
size_t gw_request_output_pending(gw_request *r);
/* Close the request's connection at once (a client too slow to read). */
void gw_request_abort(gw_request *r);
/* For a close callback: when evhttp dropped the connection itself in the
 * middle of a streamed answer, it detaches the request and leaves freeing it
 * to us; do so. A request still attached is freed by evhttp with its
 * connection. */
void gw_request_release_orphan(struct evhttp_request *req);

/* Streaming answers (Server-Sent Events). */
void gw_stream_start(gw_request *r);
void gw_stream_send(gw_request *r, const char *data, size_t len); /* one "data: ...\n\n" event */
void gw_stream_end(gw_request *r);

/* Send `body` (JSON) with `status`, then write the access-log line. */
void gw_reply_json(gw_request *r, int status, const char *body, size_t len);
void gw_reply_cjson(gw_request *r, int status, cJSON *body); /* frees body */

/* An OpenAI-style error: {"error":{"message","type","param","code"}}. */
typedef struct gw_api_error {
    int status;                /* HTTP status */
    const char *type;          /* e.g. "invalid_request_error" */
    const char *code;          /* NULL for JSON null */
    char param[128];           /* "" for JSON null */
    char message[512];
} gw_api_error;

void gw_api_error_set(gw_api_error *e, int status, const char *type, const char *code,
                      const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void gw_reply_error(gw_request *r, const gw_api_error *e);
/* The error as its JSON body (for a stream's last event). */
cJSON *gw_api_error_json(const gw_api_error *e);
/* Extra response header for the next reply (e.g. Allow). */
void gw_request_add_header(gw_request *r, const char *name, const char *value);

/* ---- access log (log.c) ---- */
int gw_access_log_open(gw_access_log **out, struct event_base *base, const char *where, char *err, size_t errlen);
void gw_access_log_write(gw_access_log *log, const char *line, size_t len);
void gw_access_log_close(gw_access_log *log); /* flushes */

/* ---- admin.c: the operator's endpoints ---- */
int gw_admin_keys_new(gw_admin_keys **out, const char *env_name, char *err, size_t errlen);
void gw_admin_keys_free(gw_admin_keys *k);
void gw_handle_admin_spend(gw_request *r);
void gw_handle_admin_requests(gw_request *r);
void gw_handle_admin_budgets(gw_request *r);
void gw_handle_metrics(gw_request *r);

/* ---- dashboard.c: GET /dashboard and its files (compiled in; docs/dashboard.md) ---- */
void gw_handle_dashboard(gw_request *r);

/* ---- api.c: routes ---- */
void gw_dispatch(gw_site *site, struct evhttp_request *req);

/* ---- chat_request.c: validation of POST /v1/chat/completions ---- */
int gw_chat_request_validate(const cJSON *body, gw_api_error *err);
/* ... and of a POST /v1/completions body ("prompt" a string). */
int gw_completion_request_validate(const cJSON *body, gw_api_error *err);
/* The first field of `body` that the local engine cannot honour (NULL when
 * it can answer the request), with the reason in `why`. */
const char *gw_local_unsupported(const cJSON *body, const char **why);

/* ---- completions.c: the one path of a model request ---- */
typedef enum { GW_API_CHAT, GW_API_TEXT, GW_API_ROUTE } gw_api_kind;
typedef enum { GW_ROUTE_NONE, GW_ROUTE_LOCAL, GW_ROUTE_UPSTREAM } gw_route_kind;

/* Where a request goes, and why: filled by the decision step. */
typedef struct {
    gw_route_kind route;
    const up_def *upstream;    /* for GW_ROUTE_UPSTREAM (lives as long as the server) */
    const char *zone;          /* "in-process", "private" or "external" */
    char rule[64];             /* the rule that chose it ("explicit-model" when the client named it) */
    char reason[256];          /* one line: why, with the scores */
    bool by_policy;            /* "auto": the policy chose (a failed upstream may then fall back) */
    bool pseudonymize;         /* the rule lets pseudonymized data out to this route's zone */
} gw_decision;

/* A model request from validation to its last byte. */
typedef struct gw_call {
    gw_request r;              /* a detached copy: answers come later */
    gw_api_kind api;
    cJSON *body;               /* owned */
    gw_classification *cls;    /* owned; NULL until the body is read and classified */
    char tenant[64], key_id[64]; /* the client's key ("" without auth) */
    pol_key key;               /* a copy of it (valid when key_id is set) */
    bool budget_known;         /* a budget applies: ... */
    int64_t budget_remaining_micro; /* ... and this much of it is left */
    pol_budget_reservation budget; /* this request's worst case, held until it ends */
    int64_t rate_tokens;       /* tokens taken from the key's bucket (settled at the end) */
    gw_pseudo *pseudo;         /* owned: the request went out pseudonymized (pseudonymize.c) */
    char excluded[4][64];      /* upstreams that failed this request already */
    int n_excluded;
    char model[128];           /* as requested ("auto" when absent) */
    bool stream;
    gw_decision decision;
    /* the outcome, for the access log (and the ledger) */
    long prompt_tokens, completion_tokens, cached_tokens;
    bool usage_estimated;
    uint64_t first_byte_ns;    /* 0 until the first byte of the answer went out */
    const char *error_code;    /* NULL on success */
    bool server_cut;           /* ended by the drain timeout, not by the client */
    bool logged;               /* its access-log line is written */
    size_t bytes;
    /* reading the body (off the loop when it is large) */
    const char *raw;           /* the request's body bytes (evhttp's buffer) */
    size_t raw_len;
    gw_api_error read_error;   /* why the body was refused ... */
    bool read_failed;          /* ... when this is set */
    bool gone;                 /* the client left while the body was being read (or the prompt rendered) */
    /* the local model's pass for the classifier (completions.c) */
    gw_prompt prompt;          /* the rendered prompt (n_prompt 0 until then), for the pass and a local answer */
    bool render_failed;
    struct gw_local_job *parked; /* the scoring job holding the prompt's cache, until continued or released */
    uint64_t model_start_ns;   /* when the pass was queued */
} gw_call;

/* POST /v1/chat/completions, /v1/completions, and /v1/route (classify and
 * decide, answer nothing: GW_API_ROUTE). */
void gw_handle_model_request(gw_request *r, gw_api_kind api);
/* The answer ended (any way): log it, account it, free the call. `status` is
 * what the client got (499: it hung up). */
void gw_call_end(gw_call *call, int status);
/* The call's parked scoring job (if any) is let go: its slot is free for
 * others. gw_call_end does it too. */
void gw_call_release_parked(gw_call *call);
/* The first byte of the answer is going out now. */
void gw_call_first_byte(gw_call *call);
/* X-Junction-Route, X-Junction-Rule (and X-Junction-Request-Id) on the reply. */
void gw_call_add_headers(gw_call *call);
/* The "junction" object answers carry (routing.annotate_body): route,
 * rule, zone, scores, cost so far. NULL when annotation is off. */
cJSON *gw_call_annotation(const gw_call *call);

/* answer_local.c / answer_upstream.c: the two ways to answer. Each ends the
 * call with gw_call_end exactly once. gw_answer_local answers from the
 * call's parked scoring job when it holds the whole prompt (else it
 * releases it and queues the prompt anew); the upstream path runs after
 * the parked job was released (gw_call_release_parked). */
void gw_answer_local(gw_call *call);
void gw_answer_upstream(gw_call *call);

#endif
