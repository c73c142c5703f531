/* http.c: answering one request: ids, JSON replies, errors, the access log.
 *
 * Every reply goes through gw_reply_json(), so every response carries
 * X-Request-Id and a JSON content type, and every request ends with exactly
 * one access-log line (time, id, method, path, status, bytes, latency), in
 * logfmt so it is easy to grep and to parse. Bodies are never logged.
 */
#include "internal.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "OTHER";
}

bool gw_request_id_is_sane(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > GW_REQUEST_ID_MAX) return false;
    for (const char *p = id; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok) return false;
    }
    return true;
}

/* 32 hex digits in time order (as UUIDv7): 48 bits of Unix milliseconds,
 * then 80 bits of xorshift128+ seeded from the kernel (ids must be unique,
 * not secret). In time order, each new id lands at the end of the ledger's
 * request-id index instead of on a random page of it (docs/ledger.md). */
static void new_request_id(gw_site *site, char out[33])
{
    uint64_t r[2];
    for (int half = 0; half < 2; half++) {
        uint64_t s1 = site->id_state[0];
        const uint64_t s0 = site->id_state[1];
        site->id_state[0] = s0;
        s1 ^= s1 << 23;
        site->id_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        r[half] = site->id_state[1] + s0;
    }
    snprintf(out, 33, "%012llx%04llx%016llx", (unsigned long long)pol_now_ms() & 0xffffffffffffULL,
             (unsigned long long)(r[0] & 0xffff), (unsigned long long)r[1]);
}

void gw_request_begin(gw_request *r, gw_site *site, struct evhttp_request *req)
{
    memset(r, 0, sizeof(*r));
    r->site = site;
    r->req = req;
    r->start_ns = gw_now_ns();
    r->method = method_name(evhttp_request_get_command(req));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    snprintf(r->path, sizeof(r->path), "%s", path && *path ? path : "/");
    const char *client_id = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id");
    if (client_id && gw_request_id_is_sane(client_id))
        snprintf(r->id, sizeof(r->id), "%s", client_id);
    else
        new_request_id(site, r->id);
}

void gw_request_add_header(gw_request *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

/* Paths are printed with anything unusual escaped, so a log line stays one line. */
static size_t put_escaped(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        else out[n++] = (char)c;
    }
    out[n] = '\0';
    return n;
}

/* One logfmt line per request: what was asked, where it went, what it
 * used. Never bodies, queries or keys. */
static void access_log(gw_request *r, int status, size_t bytes)
{
    gw_access_log *log = r->site->access_log;
    if (r->call) r->call->logged = true;
    if (!log) return;
    char line[1024], when[40], path[300];
    gw_format_time(when, sizeof(when));
    put_escaped(path, sizeof(path), r->path);
    double ms = (double)(gw_now_ns() - r->start_ns) / 1e6;
    int n = snprintf(line, sizeof(line), "%s access id=%s method=%s path=%s status=%d bytes=%zu latency_ms=%.3f",
                     when, r->id, r->method, path, status, bytes, ms);
    const gw_call *c = r->call;
    if (c && n > 0 && (size_t)n < sizeof(line)) {
        const gw_decision *d = &c->decision;
        char model[140];
        put_escaped(model, sizeof(model), c->model);
        const char *route = d->route == GW_ROUTE_LOCAL ? "local" : d->route == GW_ROUTE_UPSTREAM ? d->upstream->name : "none";
        n += snprintf(line + n, sizeof(line) - (size_t)n, " route=%s model=%s upstream=%s prompt_tokens=%ld completion_tokens=%ld",
                      route, model, d->route == GW_ROUTE_UPSTREAM ? d->upstream->name : "-", c->prompt_tokens, c->completion_tokens);
        if (c->first_byte_ns && (size_t)n < sizeof(line))
            n += snprintf(line + n, sizeof(line) - (size_t)n, " ttft_ms=%.3f", (double)(c->first_byte_ns - r->start_ns) / 1e6);
        if (c->error_code && (size_t)n < sizeof(line))
            n += snprintf(line + n, sizeof(line) - (size_t)n, " error=%s", c->error_code);
        if (c->server_cut && (size_t)n < sizeof(line))
            n += snprintf(line + n, sizeof(line) - (size_t)n, " cut=drain");
    }
    if (n < 0) return;
    if ((size_t)n >= sizeof(line) - 1) n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    gw_access_log_write(log, line, (size_t)n);
}

void gw_request_log(gw_request *r, int status, size_t bytes) { access_log(r, status, bytes); }

/* Where a model request went and why, on every answer (and its id under
 * junction's own name, for clients that read only X-Junction-*). */
static void add_call_headers(gw_request *r)
{
    if (!r->call) return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    const gw_decision *d = &r->call->decision;
    evhttp_add_header(h, "X-Junction-Request-Id", r->id);
    if (d->route == GW_ROUTE_NONE) return;
    evhttp_add_header(h, "X-Junction-Route", d->route == GW_ROUTE_LOCAL ? "local" : d->upstream->name);
    if (d->rule[0]) evhttp_add_header(h, "X-Junction-Rule", d->rule);
}

void gw_stream_start(gw_request *r)
{
    add_call_headers(r);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (r->site->draining) evhttp_add_header(h, "Connection", "close");
    evhttp_send_reply_start(r->req, 200, "OK");
}

void gw_stream_send(gw_request *r, const char *data, size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf) return;
    evbuffer_add(buf, "data: ", 6);
    evbuffer_add(buf, data, len);
    evbuffer_add(buf, "\n\n", 2);
    evhttp_send_reply_chunk(r->req, buf);
    evbuffer_free(buf);
}

void gw_stream_end(gw_request *r) { evhttp_send_reply_end(r->req); }

void gw_request_release_orphan(struct evhttp_request *req)
{
    if (!evhttp_request_get_connection(req)) evhttp_request_free(req);
}

void gw_reply_json(gw_request *r, int status, const char *body, size_t len)
{
    add_call_headers(r);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (r->site->draining) evhttp_add_header(h, "Connection", "close");
    /* HEAD answers carry the length the GET would have (evhttp sends no body). */
    if (evhttp_request_get_command(r->req) == EVHTTP_REQ_HEAD) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", len);
        evhttp_add_header(h, "Content-Length", n);
    }
    struct evbuffer *buf = evbuffer_new();
    if (buf) evbuffer_add(buf, body, len);
    evhttp_send_reply(r->req, status, NULL, buf);
    if (buf) evbuffer_free(buf);
    access_log(r, status, len);
}

void gw_reply_cjson(gw_request *r, int status, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"message\":\"junction ran out of memory building the response\","
            "\"type\":\"server_error\",\"param\":null,\"code\":null}}";
        gw_reply_json(r, 500, oom, sizeof(oom) - 1);
        return;
    }
    gw_reply_json(r, status, text, strlen(text));
    cJSON_free(text);
}

void gw_api_error_set(gw_api_error *e, int status, const char *type, const char *code,
                      const char *param, const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

cJSON *gw_api_error_json(const gw_api_error *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", e->message);
    cJSON_AddStringToObject(err, "type", e->type);
    if (e->param[0]) cJSON_AddStringToObject(err, "param", e->param);
    else cJSON_AddNullToObject(err, "param");
    if (e->code) cJSON_AddStringToObject(err, "code", e->code);
    else cJSON_AddNullToObject(err, "code");
    return root;
}

void gw_reply_error(gw_request *r, const gw_api_error *e) { gw_reply_cjson(r, e->status, gw_api_error_json(e)); }
