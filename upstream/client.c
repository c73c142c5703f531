/* client.c: libcurl's multi interface driven by the gateway's libevent loop.
 *
 * curl tells us which sockets to watch (on_socket) and when to wake it
 * (on_timer_change); libevent tells curl when a socket is ready
 * (curl_multi_socket_action). So thousands of upstream transfers share the
 * loop thread with the HTTP server, none blocks, and connections are reused
 * (keep-alive, HTTP/2 multiplexing when the server offers it).
 *
 * Around each transfer: the first-byte and idle timers, retries with
 * jittered exponential backoff (connect errors, 429 with Retry-After, 5xx,
 * a stream cut before its end) as long as nothing reached the client, and a
 * circuit breaker per upstream. Errors reach the client in OpenAI's shape,
 * naming the upstream and never its key.
 */
#include "provider.h"
#include "sse.h"

#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

extern const up_provider_ops up_openai_ops, up_anthropic_ops;

const up_provider_ops *up_provider_for(up_provider p)
{
    return p == UP_ANTHROPIC ? &up_anthropic_ops : &up_openai_ops;
}

#define MAX_BODY (32u << 20)      /* a whole answer larger than this is refused */
#define MAX_ERROR_BODY (64u << 10)
#define MAX_SSE_LINE (4u << 20)

typedef enum { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN } breaker_state;

typedef struct {
    up_def def;
    char *key;                    /* from the environment; never logged */
    int in_flight;
    int failures;                 /* consecutive */
    breaker_state breaker;
    double open_until;
    bool probing;
} upstream;

struct up_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    upstream *ups;
    int n;
    up_request *requests;
};

typedef enum { FAIL_NONE, FAIL_CONNECT, FAIL_TIMEOUT, FAIL_STATUS, FAIL_MALFORMED, FAIL_BROKEN, FAIL_TOO_LARGE } fail_kind;

struct up_request {
    up_client *c;
    upstream *u;
    const up_provider_ops *ops;
    up_callbacks cb;
    void *arg;
    char *body;
    bool stream, include_usage;
    char url[600];
    CURL *easy;
    struct curl_slist *headers;
    int attempt;
    long status;
    bool got_byte, chunk_sent, counted_in_flight, probe;
    char *resp;
    size_t resp_len, resp_cap;
    sse_parser sse;
    up_stream_state st;
    size_t prompt_chars;
    fail_kind fail;
    char fail_detail[300];
    struct event *timer;          /* first byte / idle / backoff / deferred answer */
    enum { T_NONE, T_FIRST_BYTE, T_IDLE, T_BACKOFF, T_DEFERRED } timer_kind;
    double retry_after;
    up_result deferred;           /* an answer decided before any transfer */
    char deferred_body[768];
    up_request *prev, *next;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timeval tv_of(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - floor(s)) * 1e6)};
    return tv;
}

/* ---- error bodies ---- */

/* An OpenAI-style error body. Text from upstreams passes through scrub()
 * first, so a key an upstream echoes never reaches the client. */
static void error_body(char *out, size_t len, const char *message, const char *type, const char *code)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNullToObject(e, "param");
    cJSON_AddStringToObject(e, "code", code);
    char *s = up_print(root);
    snprintf(out, len, "%s", s ? s : "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
    cJSON_free(s);
}

static void scrub(char *text, const char *key)
{
    if (!key || strlen(key) < 4) return;
    size_t kl = strlen(key);
    for (char *p = strstr(text, key); p; p = strstr(p, key)) {
        memset(p, '*', kl);
        p += kl;
    }
}

/* ---- requests: lifecycle ---- */

static void request_free(up_request *r)
{
    up_client *c = r->c;
    if (r->easy) {
        curl_multi_remove_handle(c->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    if (r->timer) event_free(r->timer);
    if (r->counted_in_flight) r->u->in_flight--;
    if (r->probe) r->u->probing = false;
    sse_free(&r->sse);
    free(r->resp);
    free(r->body);
    if (r->prev) r->prev->next = r->next;
    else if (c->requests == r) c->requests = r->next;
    if (r->next) r->next->prev = r->prev;
    free(r);
}

static void finish(up_request *r, const up_result *res)
{
    up_callbacks cb = r->cb;
    void *arg = r->arg;
    request_free(r);
    cb.on_done(arg, res);
}

/* Breaker bookkeeping after each attempt. A 429 says nothing about health:
 * the upstream is up and asking us to slow down, which Retry-After handles. */
static void note_attempt(up_request *r, bool healthy)
{
    upstream *u = r->u;
    if (r->fail == FAIL_STATUS && r->status == 429) return;
    if (healthy) {
        u->failures = 0;
        u->breaker = BREAKER_CLOSED;
        return;
    }
    u->failures++;
    if (u->breaker == BREAKER_HALF_OPEN || u->failures >= u->def.breaker_failures) {
        u->breaker = BREAKER_OPEN;
        u->open_until = now_s() + u->def.breaker_cooldown_s;
    }
}

/* ---- the stream ---- */

static void emit_chunk(void *arg, cJSON *chunk)
{
    up_request *r = arg;
    char *s = up_print(chunk);
    if (!s) return;
    r->chunk_sent = true;
    r->cb.on_chunk(r->arg, s, strlen(s));
    cJSON_free(s);
}

static int on_sse_event(void *arg, const char *event, const char *data, size_t len)
{
    up_request *r = arg;
    if (r->ops->on_event(&r->st, event, data, len, emit_chunk, r) != 0) {
        r->fail = FAIL_MALFORMED;
        snprintf(r->fail_detail, sizeof(r->fail_detail), "%s", r->st.error);
        return -1;
    }
    return 0;
}

static void arm_timer(up_request *r, int kind, double seconds)
{
    r->timer_kind = kind;
    struct timeval tv = tv_of(seconds);
    evtimer_add(r->timer, &tv);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    up_request *r = arg;
    size_t n = size * nmemb;
    if (!r->got_byte) {
        r->got_byte = true;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    }
    arm_timer(r, T_IDLE, r->u->def.idle_timeout_s);
    if (r->status == 200 && r->stream) {
        if (sse_feed(&r->sse, data, n) != 0) {
            if (r->fail == FAIL_NONE) {
                r->fail = FAIL_MALFORMED;
                snprintf(r->fail_detail, sizeof(r->fail_detail), "the event stream is malformed");
            }
            return 0; /* aborts the transfer */
        }
        return n;
    }
    size_t limit = r->status == 200 ? MAX_BODY : MAX_ERROR_BODY;
    if (r->resp_len + n > limit) {
        if (r->status != 200) return n; /* keep the start of an error body */
        r->fail = FAIL_TOO_LARGE;
        return 0;
    }
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = (r->resp_len + n + 1) * 2;
        char *p = realloc(r->resp, cap);
        if (!p) return 0;
        r->resp = p;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    return n;
}

/* ---- attempts ---- */

static void start_attempt(up_request *r);

static void on_request_timer(evutil_socket_t fd, short what, void *arg);

/* The upstream's own error message, if its body says one. */
static void upstream_message(const up_request *r, char *out, size_t len)
{
    out[0] = '\0';
    cJSON *j = r->resp ? cJSON_ParseWithLength(r->resp, r->resp_len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
    if (cJSON_IsString(m)) snprintf(out, len, "%s", m->valuestring);
    else if (cJSON_IsString(e)) snprintf(out, len, "%s", e->valuestring);
    cJSON_Delete(j);
    scrub(out, r->u->key);
}

static void fail_request(up_request *r, int status, const char *type, const char *code, const char *fmt, const char *detail)
{
    char msg[512], body[1024];
    snprintf(msg, sizeof(msg), fmt, r->u->def.name, detail);
    scrub(msg, r->u->key);
    error_body(body, sizeof(body), msg, type, code);
    up_result res = {.status = status, .body = body, .body_len = strlen(body), .attempts = r->attempt,
                     .stream_broken = r->chunk_sent, .usage = r->st.usage};
    finish(r, &res);
}

static void succeed(up_request *r, const char *body, size_t len, const up_usage *usage, const char *finish_reason)
{
    up_result res = {.status = 200, .body = body, .body_len = len, .usage = *usage,
                     .finish_reason = finish_reason && *finish_reason ? finish_reason : NULL, .attempts = r->attempt};
    finish(r, &res);
}

static bool retryable(const up_request *r)
{
    switch (r->fail) {
    case FAIL_CONNECT:
    case FAIL_TIMEOUT:
    case FAIL_BROKEN: return true;
    case FAIL_STATUS: return r->status == 429 || r->status >= 500;
    default: return false;
    }
}

/* The transfer ended (curl's result, or our timer): decide what follows. */
static void attempt_ended(up_request *r, CURLcode code)
{
    if (r->easy) {
        curl_off_t retry_after = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after);
        r->retry_after = (double)retry_after;
        if (!r->got_byte) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        curl_multi_remove_handle(r->c->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    evtimer_del(r->timer);
    if (r->fail == FAIL_NONE) {
        if (code == CURLE_OPERATION_TIMEDOUT) r->fail = FAIL_TIMEOUT;
        else if (code != CURLE_OK) {
            r->fail = r->got_byte && r->stream && r->status == 200 ? FAIL_BROKEN : FAIL_CONNECT;
            snprintf(r->fail_detail, sizeof(r->fail_detail), "%s", curl_easy_strerror(code));
        } else if (r->status != 200) r->fail = FAIL_STATUS;
        else if (r->stream && !r->st.done) {
            r->fail = FAIL_BROKEN;
            snprintf(r->fail_detail, sizeof(r->fail_detail), "the connection closed before the stream's end");
        }
    }
    /* A whole answer is translated now, so a malformed one counts as a failure. */
    char *answer = NULL;
    up_usage usage = {0};
    char finish_reason[32] = "";
    if (r->fail == FAIL_NONE && !r->stream) {
        answer = r->ops->translate(r->resp ? r->resp : "", r->resp_len, &usage, finish_reason, sizeof(finish_reason));
        if (!answer) {
            r->fail = FAIL_MALFORMED;
            snprintf(r->fail_detail, sizeof(r->fail_detail), "not a valid %s response", r->ops->name);
        }
    }
    bool healthy = r->fail == FAIL_NONE || (r->fail == FAIL_STATUS && r->status < 500);
    note_attempt(r, healthy);

    if (r->fail != FAIL_NONE && retryable(r) && !r->chunk_sent && r->attempt <= r->u->def.max_retries) {
        /* jittered exponential backoff; a Retry-After from the upstream wins if longer */
        unsigned rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) rnd = (unsigned)(now_s() * 1e6);
        double delay = 0.1 * pow(2.0, r->attempt - 1) * (0.5 + (rnd % 1000) / 1000.0);
        if (r->fail == FAIL_STATUS && r->status == 429 && r->retry_after > delay) delay = r->retry_after;
        if (delay <= 30) {
            arm_timer(r, T_BACKOFF, delay);
            return;
        }
    }

    char msg[300];
    switch (r->fail) {
    case FAIL_NONE:
        if (r->stream) {
            up_usage u = r->st.usage;
            if (!r->st.have_usage) {
                u.prompt_tokens = (long)(r->prompt_chars + 3) / 4;
                u.completion_tokens = (long)(r->st.text_bytes + 3) / 4;
                u.estimated = true;
            }
            if (r->include_usage) {
                cJSON *c = cJSON_CreateObject();
                cJSON_AddStringToObject(c, "id", r->st.id);
                cJSON_AddStringToObject(c, "object", "chat.completion.chunk");
                cJSON_AddNumberToObject(c, "created", (double)r->st.created);
                cJSON_AddStringToObject(c, "model", r->st.model);
                cJSON_AddArrayToObject(c, "choices");
                cJSON *uj = cJSON_AddObjectToObject(c, "usage");
                cJSON_AddNumberToObject(uj, "prompt_tokens", (double)u.prompt_tokens);
                cJSON_AddNumberToObject(uj, "completion_tokens", (double)u.completion_tokens);
                cJSON_AddNumberToObject(uj, "total_tokens", (double)(u.prompt_tokens + u.completion_tokens));
                if (u.estimated) cJSON_AddBoolToObject(uj, "estimated", 1); /* the upstream gave no counts */
                emit_chunk(r, c);
            }
            snprintf(finish_reason, sizeof(finish_reason), "%s", r->st.finish_reason);
            succeed(r, "", 0, &u, finish_reason);
        } else {
            if (usage.estimated) {
                usage.prompt_tokens = (long)(r->prompt_chars + 3) / 4;
                usage.completion_tokens = (long)(r->resp_len + 3) / 4;
            }
            succeed(r, answer, strlen(answer), &usage, finish_reason);
            cJSON_free(answer);
        }
        return;
    case FAIL_TIMEOUT:
        fail_request(r, 504, "server_error", "upstream_timeout", "upstream '%s' did not answer in time%s",
                     r->got_byte ? " (the stream went idle)" : "");
        return;
    case FAIL_CONNECT:
        fail_request(r, 502, "server_error", "upstream_unreachable", "upstream '%s' could not be reached: %s", r->fail_detail);
        return;
    case FAIL_BROKEN:
        fail_request(r, 502, "server_error", "upstream_stream_broken", "upstream '%s' broke off: %s", r->fail_detail);
        return;
    case FAIL_MALFORMED:
        fail_request(r, 502, "server_error", "upstream_malformed_response", "upstream '%s' sent a malformed answer: %s", r->fail_detail);
        return;
    case FAIL_TOO_LARGE:
        fail_request(r, 502, "server_error", "upstream_response_too_large", "upstream '%s' sent an answer larger than %s",
                     "32 MiB");
        return;
    case FAIL_STATUS:
        upstream_message(r, msg, sizeof(msg));
        if (r->status == 429) {
            fail_request(r, 429, "rate_limit_error", "upstream_rate_limited", "upstream '%s' is rate limiting: %s", msg);
        } else if (r->status == 401 || r->status == 403) {
            char detail[400];
            snprintf(detail, sizeof(detail), "HTTP %ld (check the key in its api_key_env): %s", r->status, msg);
            fail_request(r, 502, "server_error", "upstream_auth_failed", "upstream '%s' refused junction's credentials: %s", detail);
        } else if (r->status >= 400 && r->status < 500) {
            char detail[400];
            snprintf(detail, sizeof(detail), "HTTP %ld: %s", r->status, msg);
            fail_request(r, 400, "invalid_request_error", "upstream_rejected", "upstream '%s' rejected the request: %s", detail);
        } else {
            char detail[400];
            snprintf(detail, sizeof(detail), "HTTP %ld: %s", r->status, msg[0] ? msg : "no message");
            fail_request(r, 502, "server_error", "upstream_error", "upstream '%s' failed: %s", detail);
        }
        return;
    }
}

static void on_request_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    up_request *r = arg;
    switch (r->timer_kind) {
    case T_FIRST_BYTE:
    case T_IDLE:
        r->fail = FAIL_TIMEOUT;
        attempt_ended(r, CURLE_OPERATION_TIMEDOUT);
        break;
    case T_BACKOFF:
        start_attempt(r);
        break;
    case T_DEFERRED: {
        /* the answer lives in r, which finish() frees before calling back */
        char body[sizeof(r->deferred_body)];
        up_result res = r->deferred;
        memcpy(body, r->deferred_body, sizeof(body));
        res.body = body;
        finish(r, &res);
        break;
    }
    default:
        break;
    }
}

static void start_attempt(up_request *r)
{
    r->attempt++;
    r->status = 0;
    r->got_byte = false;
    r->fail = FAIL_NONE;
    r->fail_detail[0] = '\0';
    r->resp_len = 0;
    sse_free(&r->sse);
    sse_init(&r->sse, MAX_SSE_LINE, on_sse_event, r);
    memset(&r->st, 0, sizeof(r->st));
    const up_def *d = &r->u->def;
    r->easy = curl_easy_init();
    if (!r->easy) {
        r->fail = FAIL_CONNECT;
        snprintf(r->fail_detail, sizeof(r->fail_detail), "out of memory");
        attempt_ended(r, CURLE_OUT_OF_MEMORY);
        return;
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(d->connect_timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(d->total_timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (curl_multi_add_handle(r->c->multi, e) != CURLM_OK) {
        r->fail = FAIL_CONNECT;
        snprintf(r->fail_detail, sizeof(r->fail_detail), "the transfer could not start");
        attempt_ended(r, CURLE_FAILED_INIT);
        return;
    }
    arm_timer(r, T_FIRST_BYTE, d->first_byte_timeout_s);
}

/* ---- curl <-> libevent ---- */

static void check_finished(up_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        up_request *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r) attempt_ended(r, msg->data.result);
    }
}

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    up_client *c = arg;
    int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    check_finished(c);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    up_client *c = userp;
    struct event *ev = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ev) {
            event_free(ev);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, c->base, s, kind, on_socket_ready, c);
    } else {
        ev = event_new(c->base, s, kind, on_socket_ready, c);
        if (!ev) return -1;
        curl_multi_assign(c->multi, s, ev);
    }
    return event_add(ev, NULL);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    up_client *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_finished(c);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    up_client *c = userp;
    if (timeout_ms < 0) return evtimer_del(c->timer);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(c->timer, &tv);
}

/* ---- the client ---- */

int up_client_new(up_client **out, struct event_base *base, const up_def *defs, int n_defs, char *err, size_t errlen)
{
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "libcurl failed to initialise");
            return -1;
        }
        curl_ready = true;
    }
    up_client *c = calloc(1, sizeof(*c));
    if (!c) goto nomem;
    c->base = base;
    c->ups = calloc((size_t)(n_defs > 0 ? n_defs : 1), sizeof(upstream));
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timeout, c);
    if (!c->ups || !c->multi || !c->timer) goto nomem;
    for (int i = 0; i < n_defs; i++) {
        upstream *u = &c->ups[i];
        u->def = defs[i];
        c->n++;
        if (u->def.api_key_env[0]) {
            const char *key = getenv(u->def.api_key_env);
            if (!key || !*key) {
                snprintf(err, errlen, "upstream '%s': environment variable %s is not set; export the API key "
                         "there (keys are never read from the config file)", u->def.name, u->def.api_key_env);
                up_client_free(c);
                return -1;
            }
            u->key = strdup(key);
            if (!u->key) goto nomem;
        }
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    *out = c;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory creating the upstream client");
    up_client_free(c);
    return -1;
}

void up_client_free(up_client *c)
{
    if (!c) return;
    while (c->requests) up_cancel(c->requests);
    if (c->multi) curl_multi_cleanup(c->multi);
    if (c->timer) event_free(c->timer);
    for (int i = 0; i < c->n; i++) {
        if (c->ups[i].key) {
            memset(c->ups[i].key, 0, strlen(c->ups[i].key));
            free(c->ups[i].key);
        }
    }
    free(c->ups);
    free(c);
}

const up_def *up_client_find(const up_client *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->ups[i].def.name, name)) return &c->ups[i].def;
    return NULL;
}

int up_client_count(const up_client *c) { return c->n; }
const up_def *up_client_def(const up_client *c, int i) { return i >= 0 && i < c->n ? &c->ups[i].def : NULL; }

/* Answer without a transfer, from the loop, after up_start has returned. */
static up_request *defer_answer(up_request *r, int status, const char *type, const char *code, const char *msg)
{
    error_body(r->deferred_body, sizeof(r->deferred_body), msg, type, code);
    r->deferred = (up_result){.status = status, .body = r->deferred_body, .body_len = strlen(r->deferred_body)};
    arm_timer(r, T_DEFERRED, 0);
    return r;
}

up_request *up_start(up_client *c, const char *def_name, const cJSON *request, const up_callbacks *cb, void *arg)
{
    upstream *u = NULL;
    for (int i = 0; i < c->n && !u; i++)
        if (!strcmp(c->ups[i].def.name, def_name)) u = &c->ups[i];
    up_request *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->c = c;
    r->cb = *cb;
    r->arg = arg;
    r->timer = evtimer_new(c->base, on_request_timer, r);
    if (!r->timer) {
        free(r);
        return NULL;
    }
    r->next = c->requests;
    if (r->next) r->next->prev = r;
    c->requests = r;
    char msg[300];
    if (!u) {
        static upstream none; /* so request_free has something to read */
        r->u = &none;
        snprintf(msg, sizeof(msg), "no upstream is named '%.64s'", def_name);
        return defer_answer(r, 404, "invalid_request_error", "model_not_found", msg);
    }
    r->u = u;
    r->ops = up_provider_for(u->def.provider);
    double now = now_s();
    if (u->breaker == BREAKER_OPEN && now >= u->open_until) u->breaker = BREAKER_HALF_OPEN;
    if (u->breaker == BREAKER_OPEN || (u->breaker == BREAKER_HALF_OPEN && u->probing)) {
        snprintf(msg, sizeof(msg), "upstream '%s' is failing (%d errors in a row); junction stopped sending it "
                 "requests for %.0f s", u->def.name, u->failures, u->def.breaker_cooldown_s);
        return defer_answer(r, 503, "server_error", "upstream_circuit_open", msg);
    }
    if (u->in_flight >= u->def.max_in_flight) {
        snprintf(msg, sizeof(msg), "upstream '%s' already has %d requests in flight (max_in_flight)", u->def.name, u->in_flight);
        return defer_answer(r, 503, "server_error", "upstream_busy", msg);
    }
    if (u->breaker == BREAKER_HALF_OPEN) r->probe = u->probing = true;
    u->in_flight++;
    r->counted_in_flight = true;
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(request, "stream");
    r->stream = cJSON_IsTrue(stream);
    r->include_usage = r->stream && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                                        cJSON_GetObjectItemCaseSensitive(request, "stream_options"), "include_usage"));
    r->prompt_chars = up_prompt_chars(request);
    r->body = r->ops->build_body(request, &u->def, r->stream);
    snprintf(r->url, sizeof(r->url), "%s%s", u->def.base_url, r->ops->path);
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    r->headers = curl_slist_append(r->headers, r->stream ? "Accept: text/event-stream" : "Accept: application/json");
    r->headers = r->ops->add_headers(r->headers);
    if (u->key) {
        char line[1024];
        if (u->def.api_key_header[0]) snprintf(line, sizeof(line), "%s: %s", u->def.api_key_header, u->key);
        else snprintf(line, sizeof(line), r->ops->key_header, u->key);
        r->headers = curl_slist_append(r->headers, line);
        memset(line, 0, sizeof(line));
    }
    for (int i = 0; i < u->def.n_headers; i++) {
        char line[400];
        snprintf(line, sizeof(line), "%s: %s", u->def.headers[i].name, u->def.headers[i].value);
        r->headers = curl_slist_append(r->headers, line);
    }
    if (!r->body || !r->headers) return defer_answer(r, 500, "server_error", "out_of_memory", "out of memory");
    start_attempt(r);
    return r;
}

void up_cancel(up_request *r) { request_free(r); }
