/* dashboard.c: GET /dashboard and its files, from bytes in the binary.
 *
 * The page is static: all its data comes from the admin endpoints, fetched
 * by its scripts with the operator's admin key, so serving it needs no key
 * and no state. What this file adds is the browser-side armour an admin
 * page needs: a strict Content-Security-Policy (scripts and styles only
 * from these files, no inline code, nothing from elsewhere, no framing),
 * nosniff, no referrer, and ETag revalidation so a reload costs a 304.
 */
#include "dashboard/assets.h"
#include "internal.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

static const struct {
    const char *name, *value;
} security_headers[] = {
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cache-Control", "no-cache"},
};

static const gw_dashboard_asset *find_asset(const char *path)
{
    for (size_t i = 0; i < gw_dashboard_n_assets; i++)
        if (!strcmp(gw_dashboard_assets[i].path, path)) return &gw_dashboard_assets[i];
    return NULL;
}

/* If-None-Match holds our ETag (alone, in a list, or weak-prefixed). */
static bool etag_matches(const char *header, const char *etag)
{
    if (!header) return false;
    if (!strcmp(header, "*")) return true;
    size_t n = strlen(etag);
    for (const char *p = strstr(header, etag); p; p = strstr(p + 1, etag)) {
        bool starts = p == header || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/';
        bool ends = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
        if (starts && ends) return true;
    }
    return false;
}

void gw_handle_dashboard(gw_request *r)
{
    const gw_dashboard_asset *a = find_asset(r->path);
    if (!a) {
        gw_api_error e;
        gw_api_error_set(&e, 404, "invalid_request_error", "unknown_url", NULL,
                         "The dashboard has no file %.200s; open /dashboard.", r->path);
        gw_reply_error(r, &e);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
        evhttp_add_header(h, security_headers[i].name, security_headers[i].value);
    evhttp_add_header(h, "ETag", a->etag);
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (r->site->draining) evhttp_add_header(h, "Connection", "close");
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match");
    if (etag_matches(inm, a->etag)) {
        evhttp_send_reply(r->req, 304, "Not Modified", NULL);
        gw_request_log(r, 304, 0);
        return;
    }
    evhttp_add_header(h, "Content-Type", a->content_type);
    /* HEAD answers carry the length the GET would have (evhttp sends no body). */
    if (evhttp_request_get_command(r->req) == EVHTTP_REQ_HEAD) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", a->size);
        evhttp_add_header(h, "Content-Length", n);
    }
    struct evbuffer *body = evbuffer_new();
    if (!body || evbuffer_add_reference(body, a->data, a->size, NULL, NULL) != 0) {
        if (body) evbuffer_free(body);
        gw_api_error e;
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    evhttp_send_reply(r->req, 200, "OK", body);
    evbuffer_free(body);
    gw_request_log(r, 200, a->size);
}
