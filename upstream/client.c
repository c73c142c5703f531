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
 * circuit breaker per upstream; retries and breaker transitions go to the
 * caller's logger. Every ending has a cause (errors.c); errors reach the
 * client in OpenAI's shape, naming the upstream and never its key.
 *
 * Backpressure: while the caller has paused a stream, on_body answers
 * CURL_WRITEFUNC_PAUSE, so libcurl keeps the bytes it read and stops reading
 * the socket; resuming runs curl_easy_pause from a timer on the loop, never
 * from inside a libcurl callback, where the caller may well be when its
 * output drains.
 *
 * Fairness: one call into libcurl reads a socket again while it has data
 * (up to a cap of reads), so a fast upstream stream would be translated and
 * relayed in one long stretch while the loop hears nothing else: not a
 * client hanging up, not /healthz (the 30-minute soak saw stretches of
 * seconds). So each transfer parses at most TURN_BYTES of its stream per
 * call into libcurl; past that it pauses the same way and resumes from a
 * zero timer, after the events that were waiting have run.
 */
#include "provider.h"
#include "sse.h"

#include <event2/event.h>
#include <math.h>
#include <stdarg.h>
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
#define MAX_SSE_LINE (4u << 20)   /* and an event's data */
#define READ_CHUNK (16L << 10)    /* what one read hands on_body: the most kept unparsed at a pause */
#define TURN_BYTES (16u << 10)    /* stream bytes one transfer parses per call into libcurl */

typedef enum { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN } breaker_state;
static const char *const breaker_names[] = {"closed", "open", "half-open"};

typedef struct {
    up_def def;
    char *key;                    /* from the environment; never logged */
    int in_flight;
    int failures;                 /* consecutive */
    breaker_state breaker;
    double open_until;
    bool probing;
    unsigned long long errors;    /* failed attempts, since start */
} upstream;

struct up_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    upstream *ups;
    int n;
    up_request *requests;
    up_log_fn log;
    void *log_arg;
    unsigned long turn;           /* calls into libcurl so far: each gives every transfer TURN_BYTES */
};

typedef enum { T_NONE, T_FIRST_BYTE, T_IDLE, T_BACKOFF, T_DEFERRED, T_PAUSED, T_RESUME } timer_kind;

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
    bool paused;                  /* up_pause: no reading, no chunks */
    bool curl_paused;             /* on_body answered CURL_WRITEFUNC_PAUSE: libcurl holds that data */
    char *pending;                /* the unparsed rest of a read that a pause cut short */
    size_t pending_len;
    bool ended;                   /* the transfer completed while `pending` waited */
    bool yielded;                 /* this turn's TURN_BYTES are parsed: go on from a zero timer */
    unsigned long turn;           /* the client's turn that turn_bytes counts in */
    size_t turn_bytes;
    char *resp;
    size_t resp_len, resp_cap;
    sse_parser sse;
    up_stream_state st;
    size_t prompt_chars;
    up_error err;                 /* err.cause != UP_OK: this attempt failed */
    struct event *timer;          /* first byte / idle / backoff / deferred answer / pause limit / resume */
    timer_kind timer_kind;
    double retry_after;
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

static void warn(const up_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(const up_client *c, const char *fmt, ...)
{
    if (!c->log) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->log(c->log_arg, UP_LOG_WARN, msg);
}

/* Text from upstreams passes through scrub() before it reaches a client, so
 * a key an upstream echoes never does. */
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
    free(r->pending);
    cJSON_free(r->body);
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

static void set_breaker(up_client *c, upstream *u, breaker_state to)
{
    if (u->breaker == to) return;
    warn(c, "upstream '%s': circuit breaker %s -> %s (%d failures in a row%s)", u->def.name, breaker_names[u->breaker],
         breaker_names[to], u->failures, to == BREAKER_OPEN ? "; requests fail fast during the cool-down" : "");
    u->breaker = to;
}

void up_client_health(const up_client *c, int i, up_health *out)
{
    const upstream *u = &c->ups[i];
    *out = (up_health){breaker_names[u->breaker], u->in_flight, u->failures, u->errors};
}

/* Breaker bookkeeping after each attempt, by what its cause says about the
 * upstream's health (a 429 says nothing: the upstream is up and asking us
 * to slow down, which Retry-After handles). */
static void note_attempt(up_request *r)
{
    upstream *u = r->u;
    int health = up_cause_health(r->err.cause);
    if (health > 0) {
        u->failures = 0;
        set_breaker(r->c, u, BREAKER_CLOSED);
    } else if (health < 0) {
        u->failures++;
        u->errors++;
        if (u->breaker == BREAKER_HALF_OPEN || u->failures >= u->def.breaker_failures) {
            u->open_until = now_s() + u->def.breaker_cooldown_s;
            set_breaker(r->c, u, BREAKER_OPEN);
        }
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

#define SSE_PAUSED 1 /* on_sse_event stopped the parser: the caller paused */

static int on_sse_event(void *arg, const char *event, const char *data, size_t len)
{
    up_request *r = arg;
    up_cause cause = r->ops->on_event(&r->st, event, data, len, emit_chunk, r);
    if (cause == UP_OK) return r->paused ? SSE_PAUSED : 0; /* no chunk after a pause */
    up_error_set(&r->err, cause, NULL, cause == UP_E_UPSTREAM ? "upstream '%s' failed mid-stream: %s" : "upstream '%s' sent a malformed answer: %s",
                 r->u->def.name, r->st.error);
    return -1;
}

static void arm_timer(up_request *r, timer_kind kind, double seconds)
{
    r->timer_kind = kind;
    struct timeval tv = tv_of(seconds);
    evtimer_add(r->timer, &tv);
}

static size_t keep_body(up_request *r, const char *data, size_t n)
{
    size_t limit = r->status == 200 ? MAX_BODY : MAX_ERROR_BODY;
    if (r->resp_len + n > limit) {
        if (r->status != 200) return n; /* keep the start of an error body */
        up_error_set(&r->err, UP_E_BAD_REPLY, NULL, "upstream '%s' sent an answer larger than 32 MiB", r->u->def.name);
        snprintf(r->err.code, sizeof(r->err.code), "upstream_response_too_large");
        return 0;
    }
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = (r->resp_len + n + 1) * 2;
        char *p = realloc(r->resp, cap);
        if (!p) {
            up_error_set(&r->err, UP_E_NOMEM, NULL, "junction ran out of memory reading upstream '%s'", r->u->def.name);
            return 0;
        }
        r->resp = p;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    return n;
}

/* Parse stream bytes; a pause stops after the current event and keeps the
 * rest for up_resume. False (r->err set) when the stream is malformed. */
static bool feed_stream(up_request *r, const char *data, size_t n)
{
    int rc = sse_feed(&r->sse, data, n);
    if (rc == SSE_PAUSED && r->sse.consumed < n) {
        r->pending_len = n - r->sse.consumed;
        r->pending = malloc(r->pending_len);
        if (r->pending) memcpy(r->pending, data + r->sse.consumed, r->pending_len);
        else up_error_set(&r->err, UP_E_NOMEM, NULL, "junction ran out of memory pausing upstream '%s'", r->u->def.name);
        return r->pending != NULL;
    }
    if (rc == 0 || rc == SSE_PAUSED) return true;
    if (r->err.cause == UP_OK)
        up_error_set(&r->err, UP_E_BAD_REPLY, NULL, "upstream '%s' sent a malformed answer: the event stream is "
                     "malformed, or a line or event passed 4 MiB", r->u->def.name);
    return false;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    up_request *r = arg;
    size_t n = size * nmemb;
    if (!r->got_byte) {
        r->got_byte = true;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    }
    if (r->status != 200 || !r->stream) {
        arm_timer(r, T_IDLE, r->u->def.idle_timeout_s);
        return keep_body(r, data, n);
    }
    if (r->turn != r->c->turn) {
        r->turn = r->c->turn;
        r->turn_bytes = 0;
    }
    if (!r->paused && !r->pending && !r->yielded && r->turn_bytes >= TURN_BYTES) {
        r->yielded = true; /* the loop runs what waits (a hang-up, /healthz), then T_RESUME goes on */
        arm_timer(r, T_RESUME, 0);
    }
    if (r->paused || r->pending || r->yielded) { /* libcurl keeps these bytes and stops reading until resumed */
        r->curl_paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    r->turn_bytes += n;
    arm_timer(r, T_IDLE, r->u->def.idle_timeout_s);
    return feed_stream(r, data, n) ? n : 0; /* 0 aborts the transfer */
}

/* ---- attempts ---- */

static void start_attempt(up_request *r);

/* What a stream delivered: the upstream's counts when it sent them, else
 * counted from the text (about 4 bytes a token), marked estimated. */
static up_usage delivered_usage(const up_request *r, bool complete)
{
    up_usage u = r->st.usage;
    long counted = (long)(r->st.text_bytes + 3) / 4;
    if (!r->st.have_usage) {
        u.prompt_tokens = (long)(r->prompt_chars + 3) / 4;
        u.completion_tokens = counted;
        u.estimated = true;
    } else if (!complete && counted > u.completion_tokens) {
        /* a stream cut short: the counts it sent at its start (Anthropic's
         * message_start) are behind what it delivered since */
        u.completion_tokens = counted;
        u.estimated = true;
    }
    return u;
}

void up_usage_so_far(const up_request *r, up_usage *out) { *out = delivered_usage(r, false); }

/* Answer with r->err. A stream that broke after bytes reached the client
 * reports what it delivered, so the ledger prices what was sent. */
static void fail_request(up_request *r)
{
    up_result res = {.status = up_error_client_status(&r->err), .error = r->err, .attempts = r->attempt,
                     .stream_broken = r->chunk_sent, .usage = r->chunk_sent ? delivered_usage(r, false) : r->st.usage};
    scrub(res.error.message, r->u->key);
    scrub(res.error.param, r->u->key);
    char *body = up_print(up_error_json(&res.error));
    static const char fallback[] = "{\"error\":{\"message\":\"junction ran out of memory\",\"type\":\"server_error\","
                                   "\"param\":null,\"code\":\"out_of_memory\"}}";
    res.body = body ? body : fallback;
    res.body_len = strlen(res.body);
    finish(r, &res);
    cJSON_free(body);
}

static void succeed(up_request *r, const char *body, size_t len, const up_usage *usage, const char *finish_reason)
{
    up_result res = {.status = 200, .body = body, .body_len = len, .usage = *usage,
                     .finish_reason = finish_reason && *finish_reason ? finish_reason : NULL, .attempts = r->attempt};
    finish(r, &res);
}

/* A stream ended well: the usage chunk if the client asked, then done. */
static void stream_succeeded(up_request *r)
{
    up_usage u = delivered_usage(r, true);
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
    char finish_reason[32];
    snprintf(finish_reason, sizeof(finish_reason), "%s", r->st.finish_reason);
    succeed(r, "", 0, &u, finish_reason);
}

/* What curl's end of a transfer means, when nothing decided it before. */
static void classify_end(up_request *r, CURLcode code)
{
    const char *name = r->u->def.name;
    if (code == CURLE_OPERATION_TIMEDOUT)
        up_error_set(&r->err, UP_E_TIMEOUT, NULL, "upstream '%s' did not answer in time%s", name,
                     r->got_byte ? " (the total_timeout_s passed)" : "");
    else if (code != CURLE_OK && r->got_byte && r->stream && r->status == 200)
        up_error_set(&r->err, UP_E_STREAM_BROKEN, NULL, "upstream '%s' broke off: %s", name, curl_easy_strerror(code));
    else if (code != CURLE_OK)
        up_error_set(&r->err, UP_E_CONNECT, NULL, "upstream '%s' could not be reached: %s", name, curl_easy_strerror(code));
    else if (r->status != 200)
        up_error_from_reply(&r->err, name, r->status, r->resp, r->resp_len);
    else if (r->stream && !r->st.done)
        up_error_set(&r->err, UP_E_STREAM_BROKEN, NULL, "upstream '%s' broke off: the connection closed before the stream's end", name);
}

/* Another try, after a jittered exponential backoff (a longer Retry-After
 * from the upstream wins)? Only while nothing reached the client. */
static bool retry_later(up_request *r)
{
    if (!up_cause_retryable(r->err.cause) || r->chunk_sent || r->attempt > r->u->def.max_retries) return false;
    unsigned rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) rnd = (unsigned)(now_s() * 1e6);
    double delay = 0.1 * pow(2.0, r->attempt - 1) * (0.5 + (rnd % 1000) / 1000.0);
    if (r->err.cause == UP_E_RATE_LIMITED && r->retry_after > delay) delay = r->retry_after;
    if (delay > 30) return false;
    char http[24] = "";
    if (r->err.upstream_status) snprintf(http, sizeof(http), ", HTTP %d", r->err.upstream_status);
    warn(r->c, "upstream '%s': attempt %d of %d failed (%s%s); retrying in %.2f s", r->u->def.name, r->attempt,
         r->u->def.max_retries + 1, up_cause_name(r->err.cause), http, delay);
    arm_timer(r, T_BACKOFF, delay);
    return true;
}

/* The transfer ended (curl's result, or our timer): decide what follows. */
static void attempt_ended(up_request *r, CURLcode code)
{
    /* the whole answer is here, but a pause left part of it unparsed: end at up_resume */
    bool wait_for_resume = r->pending && r->err.cause == UP_OK && code == CURLE_OK;
    if (r->easy) {
        curl_off_t retry_after = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after);
        r->retry_after = (double)retry_after;
        if (!r->got_byte) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        curl_multi_remove_handle(r->c->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    r->curl_paused = false;
    if (wait_for_resume) {
        r->ended = true;
        return; /* the pause timer still runs */
    }
    evtimer_del(r->timer);
    if (r->err.cause == UP_OK) classify_end(r, code);
    /* A whole answer is translated now, so a malformed one counts as a failure. */
    char *answer = NULL;
    up_usage usage = {0};
    char finish_reason[32] = "";
    if (r->err.cause == UP_OK && !r->stream) {
        answer = r->ops->translate(r->resp ? r->resp : "", r->resp_len, &usage, finish_reason, sizeof(finish_reason));
        if (!answer)
            up_error_set(&r->err, UP_E_BAD_REPLY, NULL, "upstream '%s' sent a malformed answer: not a valid %s response",
                         r->u->def.name, r->ops->name);
    }
    note_attempt(r);
    if (r->err.cause != UP_OK) {
        if (!retry_later(r)) fail_request(r);
        return;
    }
    if (r->stream) {
        stream_succeeded(r);
        return;
    }
    if (usage.estimated) {
        usage.prompt_tokens = (long)(r->prompt_chars + 3) / 4;
        usage.completion_tokens = (long)(r->resp_len + 3) / 4;
    }
    succeed(r, answer, strlen(answer), &usage, finish_reason);
    cJSON_free(answer);
}

static void check_finished(up_client *c);

/* After up_resume or a yield, from the loop (never inside a libcurl
 * callback): first the bytes a pause left unparsed, then what libcurl kept.
 * Either may pause the stream again, or end it. */
static void resume_transfer(up_request *r)
{
    r->yielded = false;
    r->c->turn++; /* what libcurl hands over from its pause is a new turn's share */
    if (r->pending) {
        char *rest = r->pending;
        size_t n = r->pending_len;
        r->pending = NULL;
        r->pending_len = 0;
        bool ok = feed_stream(r, rest, n);
        free(rest);
        if (!ok) {
            attempt_ended(r, CURLE_WRITE_ERROR);
            return;
        }
        if (r->paused) return; /* paused again: up_pause armed its timer */
    }
    if (r->ended) {
        attempt_ended(r, CURLE_OK);
        return;
    }
    arm_timer(r, T_IDLE, r->u->def.idle_timeout_s);
    if (r->curl_paused) { /* libcurl may hand over the bytes it kept right here, or finish the transfer */
        up_client *c = r->c;
        r->curl_paused = false;
        curl_easy_pause(r->easy, CURLPAUSE_CONT);
        check_finished(c);
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
        up_error_set(&r->err, UP_E_TIMEOUT, NULL, "upstream '%s' did not answer in time%s", r->u->def.name,
                     r->got_byte ? " (the stream went idle)" : "");
        attempt_ended(r, CURLE_OPERATION_TIMEDOUT);
        break;
    case T_PAUSED:
        up_error_set(&r->err, UP_E_TOO_SLOW, NULL, "the client read the stream from upstream '%s' too slowly: it "
                     "stayed paused for idle_timeout_s (%.0f s)", r->u->def.name, r->u->def.idle_timeout_s);
        attempt_ended(r, CURLE_OK);
        break;
    case T_RESUME:
        resume_transfer(r);
        break;
    case T_BACKOFF:
        start_attempt(r);
        break;
    case T_DEFERRED:
        fail_request(r);
        break;
    case T_NONE:
        break;
    }
}

static void start_attempt(up_request *r)
{
    r->attempt++;
    r->status = 0;
    r->got_byte = false;
    r->yielded = false;
    memset(&r->err, 0, sizeof(r->err));
    r->resp_len = 0;
    sse_free(&r->sse);
    sse_init(&r->sse, MAX_SSE_LINE, on_sse_event, r);
    memset(&r->st, 0, sizeof(r->st));
    const up_def *d = &r->u->def;
    r->easy = curl_easy_init();
    if (!r->easy) {
        up_error_set(&r->err, UP_E_NOMEM, NULL, "junction ran out of memory starting a transfer to upstream '%s'", d->name);
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
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, READ_CHUNK);
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
        up_error_set(&r->err, UP_E_CONNECT, NULL, "upstream '%s' could not be reached: the transfer could not start", d->name);
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
    c->turn++;
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
    c->turn++;
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

void up_client_set_logger(up_client *c, up_log_fn fn, void *arg)
{
    c->log = fn;
    c->log_arg = arg;
}

/* Answer r->err without a transfer, from the loop, after up_start has returned. */
static up_request *defer_answer(up_request *r)
{
    arm_timer(r, T_DEFERRED, 0);
    return r;
}

static struct curl_slist *request_headers(const up_request *r)
{
    const upstream *u = r->u;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h) h = curl_slist_append(h, r->stream ? "Accept: text/event-stream" : "Accept: application/json");
    if (h) h = r->ops->add_headers(h);
    if (h && u->key) {
        char line[1024];
        if (u->def.api_key_header[0]) snprintf(line, sizeof(line), "%s: %s", u->def.api_key_header, u->key);
        else snprintf(line, sizeof(line), r->ops->key_header, u->key);
        struct curl_slist *with = curl_slist_append(h, line);
        memset(line, 0, sizeof(line));
        if (!with) curl_slist_free_all(h);
        h = with;
    }
    for (int i = 0; h && i < u->def.n_headers; i++) {
        char line[400];
        snprintf(line, sizeof(line), "%s: %s", u->def.headers[i].name, u->def.headers[i].value);
        struct curl_slist *with = curl_slist_append(h, line);
        if (!with) curl_slist_free_all(h);
        h = with;
    }
    return h;
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
    if (!u) {
        static upstream none; /* so request_free has something to read */
        r->u = &none;
        up_error_set(&r->err, UP_E_NO_SUCH_UPSTREAM, "model", "no upstream is named '%.64s'", def_name);
        return defer_answer(r);
    }
    r->u = u;
    r->ops = up_provider_for(u->def.provider);
    r->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(request, "stream"));
    r->include_usage = r->stream && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                                        cJSON_GetObjectItemCaseSensitive(request, "stream_options"), "include_usage"));
    r->prompt_chars = up_prompt_chars(request);
    r->body = r->ops->build_body(request, &u->def, r->stream, &r->err);
    if (!r->body) return defer_answer(r);
    if (u->breaker == BREAKER_OPEN && now_s() >= u->open_until) set_breaker(c, u, BREAKER_HALF_OPEN);
    if (u->breaker == BREAKER_OPEN || (u->breaker == BREAKER_HALF_OPEN && u->probing)) {
        up_error_set(&r->err, UP_E_CIRCUIT_OPEN, NULL, "upstream '%s' is failing (%d errors in a row); junction stopped "
                     "sending it requests for %.0f s", u->def.name, u->failures, u->def.breaker_cooldown_s);
        return defer_answer(r);
    }
    if (u->in_flight >= u->def.max_in_flight) {
        up_error_set(&r->err, UP_E_BUSY, NULL, "upstream '%s' already has %d requests in flight (max_in_flight)",
                     u->def.name, u->in_flight);
        return defer_answer(r);
    }
    snprintf(r->url, sizeof(r->url), "%s%s", u->def.base_url, r->ops->path);
    r->headers = request_headers(r);
    if (!r->headers) {
        up_error_set(&r->err, UP_E_NOMEM, NULL, "junction ran out of memory preparing the request to upstream '%s'", u->def.name);
        return defer_answer(r);
    }
    if (u->breaker == BREAKER_HALF_OPEN) r->probe = u->probing = true;
    u->in_flight++;
    r->counted_in_flight = true;
    start_attempt(r);
    return r;
}

void up_cancel(up_request *r) { request_free(r); }

/* Only a stream on its way (a transfer running) is paused. */
void up_pause(up_request *r)
{
    if (!r->stream || r->paused || (!r->easy && !r->ended)) return;
    r->paused = true;
    arm_timer(r, T_PAUSED, r->u->def.idle_timeout_s);
}

void up_resume(up_request *r)
{
    if (!r->paused) return;
    r->paused = false;
    /* data waits (a yield's included: up_pause took its timer): go on from the loop */
    if (r->curl_paused || r->pending || r->ended || r->yielded) arm_timer(r, T_RESUME, 0);
    else arm_timer(r, T_IDLE, r->u->def.idle_timeout_s);
}
