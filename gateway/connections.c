/* connections.c: the daemon's client connections.
 *
 * evhttp (2.1) keeps no count of its connections and has no hook for a new
 * one, so we hand it each connection's bufferevent ourselves (evhttp_set_bevcb):
 * a callback on its input buffer marks the connection busy when bytes
 * arrive, and right after the accept we register for its close. That gives
 * us what evhttp lacks: a connection limit, a drain that closes idle
 * keep-alive connections at once, hang-up notices for answers in progress,
 * and a bound on each connection's unsent output (as Redis bounds a
 * client's output buffer), so a client that stops reading cannot make the
 * daemon buffer without end.
 */
#include "internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef struct conn {
    gw_conns *cs;
    struct bufferevent *bev;   /* evhttp's */
    bool busy;                 /* bytes of a request arrived and it is not answered yet */
    gw_close_fn on_close;      /* someone waiting on this connection (an async answer) */
    void *on_close_arg;
    struct event *peer_closed; /* watches for the client hanging up meanwhile */
    gw_output_fn on_output;    /* someone watching the unsent output */
    void *on_output_arg;
    size_t output_limit;
    bool output_over;
    struct evbuffer_cb_entry *output_cb;
    struct conn *prev, *next;
    struct conn *next_adopting;
} conn;

struct gw_conns {
    struct evhttp *http;
    struct event_base *base;
    struct evhttp_bound_socket *bound;
    struct event *adopt;
    conn *all;
    conn *adopting;            /* accepted, not yet registered for close */
    long long n, max;
    bool accept_paused;        /* at max_connections */
    bool draining;
    void (*on_change)(void *arg);
    void *on_change_arg;
};

long long gw_conns_count(const gw_conns *cs) { return cs->n; }
void gw_conns_set_listener(gw_conns *cs, struct evhttp_bound_socket *bound) { cs->bound = bound; }

void gw_conns_on_idle_change(gw_conns *cs, void (*fn)(void *arg), void *arg)
{
    cs->on_change = fn;
    cs->on_change_arg = arg;
}

static void set_accepting(gw_conns *cs, bool on)
{
    if (!cs->bound) return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(cs->bound);
    if (on) evconnlistener_enable(l);
    else evconnlistener_disable(l);
    cs->accept_paused = !on;
}

static void note_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    if (info->n_added > 0) ((conn *)arg)->busy = true;
}

static void conn_unlink(gw_conns *cs, conn *c)
{
    if (c->prev) c->prev->next = c->next;
    else cs->all = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c == cs->adopting) cs->adopting = c->next_adopting;
    if (c->peer_closed) event_free(c->peer_closed);
    cs->n--;
    free(c);
}

/* evhttp is freeing the connection (its bufferevent goes with it). */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn *c = arg;
    gw_conns *cs = c->cs;
    if (c->on_close) c->on_close(c->on_close_arg);
    conn_unlink(cs, c);
    if (cs->accept_paused && !cs->draining && cs->n < cs->max) set_accepting(cs, true);
    if (cs->on_change) cs->on_change(cs->on_change_arg);
}

/* Runs right after the accept callback that made the connections on the
 * adopting list: evhttp has built their evhttp_connection by now, and it is
 * the bufferevent's callback argument, so we can ask to hear of its close. */
static void adopt_new_conns(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_conns *cs = arg;
    while (cs->adopting) {
        conn *c = cs->adopting;
        cs->adopting = c->next_adopting;
        bufferevent_event_cb eventcb;
        void *evcon;
        bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &evcon);
        struct bufferevent *bev = c->bev;
        if (eventcb && evcon) evhttp_connection_set_closecb(evcon, conn_closed, c);
        else conn_unlink(cs, c); /* evhttp failed to set it up and already let go */
        bufferevent_decref(bev);  /* from here on evhttp alone owns it */
    }
}

/* evhttp asks for a bufferevent for each accepted connection. We hold a
 * reference until adopt_new_conns() has registered for its close. */
static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
    gw_conns *cs = arg;
    conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL; /* evhttp then makes its own, untracked */
    c->cs = cs;
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev || !evbuffer_add_cb(bufferevent_get_input(c->bev), note_input, c)) {
        if (c->bev) bufferevent_free(c->bev);
        free(c);
        return NULL;
    }
    bufferevent_incref(c->bev);
    c->next = cs->all;
    if (c->next) c->next->prev = c;
    cs->all = c;
    c->next_adopting = cs->adopting;
    cs->adopting = c;
    event_active(cs->adopt, EV_READ, 0);
    if (++cs->n >= cs->max) set_accepting(cs, false);
    return c->bev;
}

static conn *conn_of_request(gw_conns *cs, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (conn *c = cs->all; bev && c; c = c->next)
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

int gw_request_watch_close(gw_request *r, gw_close_fn fn, void *arg)
{
    gw_conns *cs = r->site->conns;
    conn *c = conn_of_request(cs, r->req);
    if (!c) return -1;
    c->on_close = fn;
    c->on_close_arg = arg;
    if (c->peer_closed) {
        event_free(c->peer_closed);
        c->peer_closed = NULL;
    }
    if (fn && (event_base_get_features(cs->base) & EV_FEATURE_EARLY_CLOSE)) {
        c->peer_closed = event_new(cs->base, bufferevent_getfd(c->bev), EV_CLOSED, on_peer_closed, c);
        if (c->peer_closed) event_add(c->peer_closed, NULL);
    }
    return 0;
}

void gw_request_abort(gw_request *r)
{
    conn *c = conn_of_request(r->site->conns, r->req);
    if (c) on_peer_closed(-1, 0, c);
}

static void output_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)info;
    conn *c = arg;
    size_t pending = evbuffer_get_length(buf);
    if (!c->on_output) return;
    if (!c->output_over && pending > c->output_limit) {
        c->output_over = true;
        c->on_output(c->on_output_arg, true);
    } else if (c->output_over && pending <= c->output_limit / 2) {
        c->output_over = false;
        c->on_output(c->on_output_arg, false);
    }
}

int gw_request_watch_output(gw_request *r, size_t limit, gw_output_fn fn, void *arg)
{
    conn *c = conn_of_request(r->site->conns, r->req);
    if (!c) return -1;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->output_cb) {
        evbuffer_remove_cb_entry(out, c->output_cb);
        c->output_cb = NULL;
    }
    c->on_output = fn;
    c->on_output_arg = arg;
    c->output_limit = limit;
    c->output_over = false;
    if (fn && !(c->output_cb = evbuffer_add_cb(out, output_changed, c))) return -1;
    return 0;
}

size_t gw_request_output_pending(gw_request *r)
{
    conn *c = conn_of_request(r->site->conns, r->req);
    return c ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* The response is written: the connection is idle unless the next request's
 * bytes are already waiting. */
static void request_complete(struct evhttp_request *req, void *arg)
{
    conn *c = conn_of_request(arg, req);
    if (c) c->busy = evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
}

void gw_conns_track_request(gw_conns *cs, struct evhttp_request *req)
{
    evhttp_request_set_on_complete_cb(req, request_complete, cs);
}

long long gw_conns_cut_answers(gw_conns *cs)
{
    long long n = 0;
    for (conn *c = cs->all; c; c = c->next) {
        gw_close_fn fn = c->on_close;
        if (!fn) continue;
        c->on_close = NULL;
        fn(c->on_close_arg); /* writes its last event; the connection closes after it */
        n++;
    }
    return n;
}

long long gw_conns_drain(gw_conns *cs)
{
    cs->draining = true;
    long long busy = 0;
    for (conn *c = cs->all; c; c = c->next) {
        if (c->busy) busy++;
        else shutdown(bufferevent_getfd(c->bev), SHUT_RDWR); /* evhttp sees EOF and closes it */
    }
    return busy;
}

int gw_conns_new(gw_conns **out, struct evhttp *http, struct event_base *base, long long max_connections,
                 char *err, size_t errlen)
{
    gw_conns *cs = calloc(1, sizeof(*cs));
    if (!cs || !(cs->adopt = event_new(base, -1, 0, adopt_new_conns, cs))) {
        free(cs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cs->http = http;
    cs->base = base;
    cs->max = max_connections;
    evhttp_set_bevcb(http, new_conn, cs);
    *out = cs;
    return 0;
}

/* Call after evhttp_free: every connection has closed by then. */
void gw_conns_free(gw_conns *cs)
{
    if (!cs) return;
    event_free(cs->adopt);
    free(cs);
}

/* evhttp_free closes what is still open; connections accepted in this very
 * loop pass must be adopted first so that their close is seen. */
void gw_conns_before_http_free(gw_conns *cs)
{
    cs->draining = true;
    cs->bound = NULL;
    adopt_new_conns(-1, 0, cs);
}
