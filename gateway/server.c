/* server.c: the event loop, the listening socket, connections and shutdown.
 *
 * Built like Redis's event loop: one thread owns every socket and never
 * blocks; slow work goes to the worker pool (workers.c). This file owns the
 * lifecycle: bind, accept within the connection limit, and on SIGTERM a
 * graceful drain: stop accepting, close idle keep-alive connections at once,
 * let busy ones finish their request (answered with Connection: close) until
 * the drain timeout, then return so main() can exit 0.
 *
 * evhttp (2.1) keeps no count of its connections and has no hook for a new
 * one, so we hand it each connection's bufferevent ourselves (evhttp_set_bevcb):
 * a callback on its input buffer marks the connection busy when bytes
 * arrive, and right after the accept we register for its close.
 */
#include "gateway.h"
#include "internal.h"
#include "local.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    gw_server *srv;
    struct bufferevent *bev;   /* evhttp's */
    bool busy;                 /* bytes of a request arrived and it is not answered yet */
    gw_close_fn on_close;      /* someone waiting on this connection (an async answer) */
    void *on_close_arg;
    struct event *peer_closed; /* watches for the client hanging up meanwhile */
    struct conn *prev, *next;
    struct conn *next_adopting;
} conn;

struct gw_server {
    gw_config cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *on_sigterm, *on_sigint, *on_stop, *drain_timer, *drain_poller, *adopt;
    gw_pool *pool;
    up_client *upstreams;
    gw_local *local;           /* the local engine, when a model is configured */
    FILE *access_log;          /* NULL when off */
    bool access_log_owned;
    conn *conns;
    conn *adopting;            /* accepted, not yet registered for close */
    long long n_conns;
    bool accept_paused;        /* at max_connections */
    bool draining;
    int signals;
    uint64_t id_state[2];      /* request-id generator */
    char address[300];
};

uint64_t gw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool gw_server_draining(const gw_server *srv) { return srv->draining; }
long long gw_server_max_body(const gw_server *srv) { return srv->cfg.max_body_bytes; }
FILE *gw_server_access_log(const gw_server *srv) { return srv->access_log; }
const char *gw_server_address(const gw_server *srv) { return srv->address; }
gw_pool *gw_server_pool(gw_server *srv) { return srv->pool; }
up_client *gw_server_upstreams(gw_server *srv) { return srv->upstreams; }
gw_local *gw_server_local(gw_server *srv) { return srv->local; }

/* xorshift128+ seeded from the kernel: ids must be unique, not secret. */
void gw_server_new_request_id(gw_server *srv, char out[33])
{
    for (int half = 0; half < 2; half++) {
        uint64_t s1 = srv->id_state[0];
        const uint64_t s0 = srv->id_state[1];
        srv->id_state[0] = s0;
        s1 ^= s1 << 23;
        srv->id_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        snprintf(out + half * 16, 17, "%016llx", (unsigned long long)(srv->id_state[1] + s0));
    }
}

static void set_accepting(gw_server *srv, bool on)
{
    if (!srv->bound) return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(srv->bound);
    if (on) evconnlistener_enable(l);
    else evconnlistener_disable(l);
    srv->accept_paused = !on;
}

static void finish_drain_if_idle(gw_server *srv)
{
    if (srv->draining && srv->n_conns == 0 && (!srv->pool || gw_pool_pending(srv->pool) == 0))
        event_base_loopexit(srv->base, NULL);
}

/* ---- connections ---- */

static void note_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    if (info->n_added > 0) ((conn *)arg)->busy = true;
}

static void conn_unlink(gw_server *srv, conn *c)
{
    if (c->prev) c->prev->next = c->next;
    else srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c == srv->adopting) srv->adopting = c->next_adopting;
    if (c->peer_closed) event_free(c->peer_closed);
    srv->n_conns--;
    free(c);
}

/* evhttp is freeing the connection (its bufferevent goes with it). */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn *c = arg;
    gw_server *srv = c->srv;
    if (c->on_close) c->on_close(c->on_close_arg);
    conn_unlink(srv, c);
    if (srv->accept_paused && !srv->draining && srv->n_conns < srv->cfg.max_connections)
        set_accepting(srv, true);
    finish_drain_if_idle(srv);
}

/* Runs right after the accept callback that made the connections on the
 * adopting list: evhttp has built their evhttp_connection by now, and it is
 * the bufferevent's callback argument, so we can ask to hear of its close. */
static void adopt_new_conns(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_server *srv = arg;
    while (srv->adopting) {
        conn *c = srv->adopting;
        srv->adopting = c->next_adopting;
        bufferevent_event_cb eventcb;
        void *evcon;
        bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &evcon);
        struct bufferevent *bev = c->bev;
        if (eventcb && evcon) evhttp_connection_set_closecb(evcon, conn_closed, c);
        else conn_unlink(srv, c); /* evhttp failed to set it up and already let go */
        bufferevent_decref(bev);  /* from here on evhttp alone owns it */
    }
}

/* evhttp asks for a bufferevent for each accepted connection. We hold a
 * reference until adopt_new_conns() has registered for its close. */
static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
    gw_server *srv = arg;
    conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL; /* evhttp then makes its own, untracked */
    c->srv = srv;
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev || !evbuffer_add_cb(bufferevent_get_input(c->bev), note_input, c)) {
        if (c->bev) bufferevent_free(c->bev);
        free(c);
        return NULL;
    }
    bufferevent_incref(c->bev);
    c->next = srv->conns;
    if (c->next) c->next->prev = c;
    srv->conns = c;
    c->next_adopting = srv->adopting;
    srv->adopting = c;
    event_active(srv->adopt, EV_READ, 0);
    if (++srv->n_conns >= srv->cfg.max_connections) set_accepting(srv, false);
    return c->bev;
}

/* While a drain waits, look every 100 ms whether it is complete: worker
 * jobs finishing do not tell us otherwise. */
static void drain_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_server *srv = arg;
    struct timeval tv = {0, 100 * 1000};
    evtimer_add(srv->drain_poller, &tv);
    finish_drain_if_idle(srv);
}

static conn *conn_of_request(gw_server *srv, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (conn *c = srv->conns; c; c = c->next)
        if (c->bev == bev) return c;
    return NULL;
}

/* While evhttp waits for our answer it does not read the socket, so it would
 * not notice a client hanging up; an EV_CLOSED event of ours does, and then
 * we close the connection, which tells the waiting party (conn_closed). */
static void on_peer_closed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    void *evcon;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
    if (evcon) evhttp_connection_free(evcon);
}

int gw_server_watch_close(gw_server *srv, struct evhttp_request *req, gw_close_fn fn, void *arg)
{
    conn *c = conn_of_request(srv, req);
    if (!c) return -1;
    c->on_close = fn;
    c->on_close_arg = arg;
    if (c->peer_closed) {
        event_free(c->peer_closed);
        c->peer_closed = NULL;
    }
    if (fn && (event_base_get_features(srv->base) & EV_FEATURE_EARLY_CLOSE)) {
        c->peer_closed = event_new(srv->base, bufferevent_getfd(c->bev), EV_CLOSED, on_peer_closed, c);
        if (c->peer_closed) event_add(c->peer_closed, NULL);
    }
    return 0;
}

/* The response is written: the connection is idle unless the next request's
 * bytes are already waiting. */
static void request_complete(struct evhttp_request *req, void *arg)
{
    gw_server *srv = arg;
    conn *c = conn_of_request(srv, req);
    if (c) c->busy = evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
}

static void handle_request(struct evhttp_request *req, void *arg)
{
    gw_server *srv = arg;
    evhttp_request_set_on_complete_cb(req, request_complete, srv);
    gw_dispatch(srv, req);
}

/* ---- shutdown ---- */

static void begin_drain(gw_server *srv)
{
    if (srv->draining) return;
    srv->draining = true;
    if (srv->bound) {
        evhttp_del_accept_socket(srv->http, srv->bound);
        srv->bound = NULL;
    }
    long long busy = 0;
    for (conn *c = srv->conns; c; c = c->next) {
        if (c->busy) busy++;
        else shutdown(bufferevent_getfd(c->bev), SHUT_RDWR); /* evhttp sees EOF and closes it */
    }
    gw_log(GW_LOG_INFO, "draining: stopped accepting; %lld request(s) in flight, waiting up to %gs",
           busy, srv->cfg.drain_timeout_s);
    struct timeval tv = {(time_t)srv->cfg.drain_timeout_s,
                         (suseconds_t)(fmod(srv->cfg.drain_timeout_s, 1.0) * 1e6)};
    evtimer_add(srv->drain_timer, &tv);
    drain_poll(-1, 0, srv);
    finish_drain_if_idle(srv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    gw_server *srv = arg;
    if (++srv->signals > 1) {
        gw_log(GW_LOG_WARN, "second signal (%s): exiting now with %lld connection(s) open",
               strsignal((int)sig), srv->n_conns);
        _exit(128 + (int)sig);
    }
    gw_log(GW_LOG_INFO, "%s received", strsignal((int)sig));
    begin_drain(srv);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    begin_drain(arg);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_server *srv = arg;
    gw_log(GW_LOG_WARN, "drain timeout after %gs: closing %lld connection(s) still open",
           srv->cfg.drain_timeout_s, srv->n_conns);
    event_base_loopexit(srv->base, NULL);
}

void gw_server_stop(gw_server *srv) { event_active(srv->on_stop, EV_READ, 0); }

/* ---- setup ---- */

/* Split "host:port" or "[v6]:port". */
static int parse_listen(const char *s, char *host, size_t hostlen, unsigned short *port,
                        char *err, size_t errlen)
{
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hlen = colon ? (size_t)(colon - s) : 0;
    if (colon && s[0] == '[') {
        if (hlen < 2 || colon[-1] != ']') goto bad;
        h = s + 1;
        hlen -= 2;
    }
    if (!colon || hlen == 0 || hlen >= hostlen) goto bad;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || p < 0 || p > 65535) goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned short)p;
    return 0;
bad:
    snprintf(err, errlen, "listen address '%s' is not host:port or [ipv6]:port (e.g. 127.0.0.1:8080)", s);
    return -1;
}

static int bind_listener(gw_server *srv, char *err, size_t errlen)
{
    char host[256];
    unsigned short port;
    if (parse_listen(srv->cfg.listen, host, sizeof(host), &port, err, errlen) != 0) return -1;
    srv->bound = evhttp_bind_socket_with_handle(srv->http, host, port);
    if (!srv->bound) {
        snprintf(err, errlen, "cannot listen on %s: %s (is another process using the port?)",
                 srv->cfg.listen, strerror(errno));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(srv->bound);
    char ip[INET6_ADDRSTRLEN] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
            snprintf(srv->address, sizeof(srv->address), "[%s]:%u", ip, ntohs(a->sin6_port));
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
            snprintf(srv->address, sizeof(srv->address), "%s:%u", ip, ntohs(a->sin_port));
        }
    }
    return 0;
}

static int open_access_log(gw_server *srv, char *err, size_t errlen)
{
    const char *where = srv->cfg.access_log;
    if (strcmp(where, "off") == 0) return 0;
    if (strcmp(where, "-") == 0) {
        srv->access_log = stderr;
        return 0;
    }
    srv->access_log = fopen(where, "a");
    if (!srv->access_log) {
        snprintf(err, errlen, "cannot open access log %s: %s", where, strerror(errno));
        return -1;
    }
    setvbuf(srv->access_log, NULL, _IOLBF, 0);
    srv->access_log_owned = true;
    return 0;
}

int gw_server_new(gw_server **out, const gw_config *cfg, char *err, size_t errlen)
{
    static bool threads_ready;
    if (!threads_ready) {
        if (evthread_use_pthreads() != 0) {
            snprintf(err, errlen, "libevent was built without pthreads support");
            return -1;
        }
        threads_ready = true;
    }
    gw_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->cfg = *cfg;
    if (getrandom(srv->id_state, sizeof(srv->id_state), 0) != (ssize_t)sizeof(srv->id_state))
        srv->id_state[0] = gw_now_ns(), srv->id_state[1] = (uint64_t)getpid() | 1;

    srv->base = event_base_new();
    srv->http = srv->base ? evhttp_new(srv->base) : NULL;
    if (!srv->http) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    if (open_access_log(srv, err, errlen) != 0) goto fail;
    if (gw_pool_new(&srv->pool, srv->base, (int)cfg->workers, err, errlen) != 0) goto fail;
    if (up_client_new(&srv->upstreams, srv->base, cfg->upstreams, cfg->n_upstreams, err, errlen) != 0) goto fail;
    if (cfg->model[0]) {
        gw_local_params lp = {.model_path = cfg->model, .ctx_size = (int)cfg->ctx_size, .threads = (int)cfg->threads,
                              .queue_size = (int)cfg->queue_size, .parallel = (int)cfg->parallel, .kv_type = ENG_KV_F16,
                              .chat_template = cfg->chat_template};
        if (gw_local_new(&srv->local, srv->base, &lp, err, errlen) != 0) goto fail;
        const eng_model_info *mi = eng_model_get_info(gw_local_model(srv->local));
        gw_log(GW_LOG_INFO, "local model %s loaded: %s, %d layers, %s", gw_local_model_id(srv->local), mi->name,
               mi->n_layer, mi->weight_type);
    }

    /* Bodies up to twice the limit are read so the client gets our JSON 413;
     * past that libevent stops reading and answers 413 itself. */
    long long cap = cfg->max_body_bytes > (1LL << 29) ? (1LL << 30) : cfg->max_body_bytes * 2;
    evhttp_set_max_body_size(srv->http, (ev_ssize_t)cap);
    evhttp_set_max_headers_size(srv->http, 64 * 1024);
    struct timeval tv = {(time_t)cfg->request_timeout_s,
                         (suseconds_t)(fmod(cfg->request_timeout_s, 1.0) * 1e6)};
    evhttp_set_timeout_tv(srv->http, &tv);
    /* Every method reaches our router, which answers 405 with Allow itself. */
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                              EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(srv->http, new_conn, srv);
    evhttp_set_gencb(srv->http, handle_request, srv);

    srv->on_sigterm = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->on_sigint = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->on_stop = event_new(srv->base, -1, 0, on_stop, srv);
    srv->drain_timer = evtimer_new(srv->base, on_drain_timeout, srv);
    srv->drain_poller = evtimer_new(srv->base, drain_poll, srv);
    srv->adopt = event_new(srv->base, -1, 0, adopt_new_conns, srv);
    if (!srv->on_sigterm || !srv->on_sigint || !srv->on_stop || !srv->drain_timer ||
        !srv->drain_poller || !srv->adopt ||
        event_add(srv->on_sigterm, NULL) != 0 || event_add(srv->on_sigint, NULL) != 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        goto fail;
    }
    signal(SIGPIPE, SIG_IGN);
    if (bind_listener(srv, err, errlen) != 0) goto fail;
    *out = srv;
    return 0;
fail:
    gw_server_free(srv);
    return -1;
}

int gw_server_run(gw_server *srv)
{
    gw_log(GW_LOG_INFO, "listening on http://%s", srv->address);
    if (event_base_dispatch(srv->base) < 0) {
        gw_log(GW_LOG_ERROR, "event loop failed");
        return -1;
    }
    gw_log(GW_LOG_INFO, "stopped");
    return 0;
}

void gw_server_free(gw_server *srv)
{
    if (!srv) return;
    /* Jobs finish first: their done() callbacks may still answer clients. */
    gw_pool_free(srv->pool);
    srv->draining = true; /* connections closed below must not re-enable accepting */
    srv->bound = NULL;    /* evhttp_free releases it */
    srv->pool = NULL;
    if (srv->adopt) adopt_new_conns(-1, 0, srv);
    if (srv->http) evhttp_free(srv->http); /* closes what is still open, telling conn_closed() */
    up_client_free(srv->upstreams);
    gw_local_free(srv->local); /* its requests were cancelled as their connections closed */
    struct event *evs[] = {srv->on_sigterm, srv->on_sigint, srv->on_stop, srv->drain_timer,
                           srv->drain_poller, srv->adopt};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i]) event_free(evs[i]);
    if (srv->access_log_owned) fclose(srv->access_log);
    if (srv->base) event_base_free(srv->base);
    free(srv);
}
