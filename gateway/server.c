/* server.c: the event loop's lifecycle: bind, serve, drain, stop.
 *
 * Built like Redis's event loop: one thread owns every socket and never
 * blocks; slow work goes to the worker pool (workers.c) or the engine
 * thread. The server is handed its backends (the local engine, upstreams)
 * ready-made, and owns only what every request shares (gw_site). On SIGTERM
 * a graceful drain: stop accepting, close idle keep-alive connections at
 * once, let busy ones finish their request (answered with Connection:
 * close) until the drain timeout, then return so main() can exit 0.
 */
#include "gateway.h"
#include "clients.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
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

struct gw_server {
    gw_config cfg;
    gw_site site;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *on_sigterm, *on_sigint, *on_stop, *drain_timer, *drain_poller;
    int signals;
    char address[300];
};

uint64_t gw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *gw_server_address(const gw_server *srv) { return srv->address; }
gw_pool *gw_server_pool(gw_server *srv) { return srv->site.pool; }

struct event_base *gw_event_base_new(char *err, size_t errlen)
{
    static bool threads_ready;
    if (!threads_ready) {
        if (evthread_use_pthreads() != 0) {
            snprintf(err, errlen, "libevent was built without pthreads support");
            return NULL;
        }
        threads_ready = true;
    }
    struct event_base *base = event_base_new();
    if (!base) snprintf(err, errlen, "cannot create the event loop");
    return base;
}

static void finish_drain_if_idle(void *arg)
{
    gw_server *srv = arg;
    if (srv->site.draining && gw_conns_count(srv->site.conns) == 0 &&
        (!srv->site.pool || gw_pool_pending(srv->site.pool) == 0))
        event_base_loopexit(srv->base, NULL);
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

static void handle_request(struct evhttp_request *req, void *arg)
{
    gw_server *srv = arg;
    gw_conns_track_request(srv->site.conns, req);
    gw_dispatch(&srv->site, req);
}

/* ---- shutdown ---- */

static void begin_drain(gw_server *srv)
{
    if (srv->site.draining) return;
    srv->site.draining = true;
    if (srv->bound) {
        evhttp_del_accept_socket(srv->http, srv->bound);
        srv->bound = NULL;
        gw_conns_set_listener(srv->site.conns, NULL);
    }
    long long busy = gw_conns_drain(srv->site.conns);
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
               strsignal((int)sig), gw_conns_count(srv->site.conns));
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

static void exit_loop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(arg, NULL);
}

/* The drain timeout: answers still running get a last error event (a cut
 * by the server, logged as such, not as a client leaving), then a moment
 * for those bytes to go out before the loop ends. */
static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_server *srv = arg;
    gw_log(GW_LOG_WARN, "drain timeout after %gs: ending %lld connection(s) still open",
           srv->cfg.drain_timeout_s, gw_conns_count(srv->site.conns));
    srv->site.drain_cut = true;
    gw_conns_cut_answers(srv->site.conns);
    struct timeval grace = {0, 200 * 1000};
    event_base_once(srv->base, -1, EV_TIMEOUT, exit_loop, srv->base, &grace);
}

void gw_server_stop(gw_server *srv) { event_active(srv->on_stop, EV_READ, 0); }

/* ---- setup ---- */

static int bind_listener(gw_server *srv, char *err, size_t errlen)
{
    char host[256];
    unsigned short port;
    if (gw_listen_parse(srv->cfg.listen, host, sizeof(host), &port, err, errlen) != 0) return -1;
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

#define GW_BODY_SLACK (64 * 1024)

int gw_server_new(gw_server **out, struct event_base *base, const gw_config *cfg, gw_backends *backends,
                  char *err, size_t errlen)
{
    gw_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->cfg = *cfg;
    srv->base = base;
    gw_site *site = &srv->site;
    site->cfg = &srv->cfg;
    site->base = base;
    site->backends = backends;
    if (getrandom(site->id_state, sizeof(site->id_state), 0) != (ssize_t)sizeof(site->id_state))
        site->id_state[0] = gw_now_ns(), site->id_state[1] = (uint64_t)getpid() | 1;

    srv->http = evhttp_new(base);
    if (!srv->http) {
        snprintf(err, errlen, "cannot create the HTTP server");
        goto fail;
    }
    if (strcmp(cfg->access_log, "off") != 0 &&
        gw_access_log_open(&site->access_log, base, cfg->access_log, err, errlen) != 0)
        goto fail;
    if (gw_pool_new(&site->pool, base, (int)cfg->workers, err, errlen) != 0) goto fail;
    if (gw_clients_start(backends->clients, base, site->pool) != 0) {
        snprintf(err, errlen, "cannot start reloading the client keys");
        goto fail;
    }
    if (gw_conns_new(&site->conns, srv->http, base, cfg->max_connections, err, errlen) != 0) goto fail;
    gw_conns_on_idle_change(site->conns, finish_drain_if_idle, srv);

    /* Bodies a little over the limit are read so the client gets our JSON
     * 413; past that libevent stops reading and answers 413 itself. So the
     * request bytes held at once are at most max_connections x
     * (max_body_bytes + 64 KiB): 256 x 1.06 MiB = 272 MiB by default. */
    long long cap = cfg->max_body_bytes + GW_BODY_SLACK;
    evhttp_set_max_body_size(srv->http, (ev_ssize_t)cap);
    evhttp_set_max_headers_size(srv->http, 64 * 1024);
    struct timeval tv = {(time_t)cfg->request_timeout_s,
                         (suseconds_t)(fmod(cfg->request_timeout_s, 1.0) * 1e6)};
    evhttp_set_timeout_tv(srv->http, &tv);
    /* Every method reaches our router, which answers 405 with Allow itself. */
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                              EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(srv->http, handle_request, srv);

    srv->on_sigterm = evsignal_new(base, SIGTERM, on_signal, srv);
    srv->on_sigint = evsignal_new(base, SIGINT, on_signal, srv);
    srv->on_stop = event_new(base, -1, 0, on_stop, srv);
    srv->drain_timer = evtimer_new(base, on_drain_timeout, srv);
    srv->drain_poller = evtimer_new(base, drain_poll, srv);
    if (!srv->on_sigterm || !srv->on_sigint || !srv->on_stop || !srv->drain_timer || !srv->drain_poller ||
        event_add(srv->on_sigterm, NULL) != 0 || event_add(srv->on_sigint, NULL) != 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        goto fail;
    }
    signal(SIGPIPE, SIG_IGN);
    /* protected mode (clients.c): gw_config_check said so first; the keys may have gone since */
    if (gw_clients_refuse_unprotected(backends->clients, cfg, err, errlen) != 0) goto fail;
    if (bind_listener(srv, err, errlen) != 0) goto fail;
    gw_conns_set_listener(site->conns, srv->bound);
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
    gw_site *site = &srv->site;
    if (site->backends) gw_clients_stop(site->backends->clients);
    /* Jobs finish first: their done() callbacks may still answer clients. */
    gw_pool_free(site->pool);
    site->pool = NULL;
    site->draining = true; /* connections closed below must not re-enable accepting */
    srv->bound = NULL;     /* evhttp_free releases it */
    if (site->conns) gw_conns_before_http_free(site->conns);
    if (srv->http) evhttp_free(srv->http); /* closes what is still open, telling the watchers */
    gw_conns_free(site->conns);
    struct event *evs[] = {srv->on_sigterm, srv->on_sigint, srv->on_stop, srv->drain_timer, srv->drain_poller};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i]) event_free(evs[i]);
    gw_access_log_close(site->access_log);
    free(srv);
}
