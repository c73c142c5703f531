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

void gw_request_begin(gw_request *r, gw_server *srv, struct evhttp_request *req)
{
    r->srv = srv;
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
        gw_server_new_request_id(srv, r->id);
}

void gw_request_add_header(gw_request *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

/* Paths are printed with anything unusual escaped, so a log line stays one line. */
static void print_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
}

static void access_log(gw_request *r, int status, size_t bytes)
{
    FILE *f = gw_server_access_log(r->srv);
    if (!f) return;
    char when[40];
    gw_format_time(when, sizeof(when));
    double ms = (double)(gw_now_ns() - r->start_ns) / 1e6;
    flockfile(f);
    fprintf(f, "%s access id=%s method=%s path=", when, r->id, r->method);
    print_escaped(f, r->path);
    fprintf(f, " status=%d bytes=%zu latency_ms=%.3f\n", status, bytes, ms);
    funlockfile(f);
}

void gw_request_log(gw_request *r, int status, size_t bytes) { access_log(r, status, bytes); }

void gw_stream_start(gw_request *r)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (gw_server_draining(r->srv)) evhttp_add_header(h, "Connection", "close");
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
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (gw_server_draining(r->srv)) evhttp_add_header(h, "Connection", "close");
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

void gw_reply_error(gw_request *r, const gw_api_error *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", e->message);
    cJSON_AddStringToObject(err, "type", e->type);
    if (e->param[0]) cJSON_AddStringToObject(err, "param", e->param);
    else cJSON_AddNullToObject(err, "param");
    if (e->code) cJSON_AddStringToObject(err, "code", e->code);
    else cJSON_AddNullToObject(err, "code");
    gw_reply_cjson(r, e->status, root);
}
