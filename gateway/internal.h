/* internal.h: declarations shared by the gateway's own files (not public). */
#ifndef JUNCTION_GATEWAY_INTERNAL_H
#define JUNCTION_GATEWAY_INTERNAL_H

#include "gateway.h"

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdint.h>

int gw_parse_log_level(const char *s, gw_log_level *out);
void gw_format_time(char *buf, size_t len);
uint64_t gw_now_ns(void);

/* ---- server.c: what handlers may ask of the server ---- */
bool gw_server_draining(const gw_server *srv);
long long gw_server_max_body(const gw_server *srv);
FILE *gw_server_access_log(const gw_server *srv);
up_client *gw_server_upstreams(gw_server *srv);
struct gw_local *gw_server_local(gw_server *srv); /* NULL without a local model */
/* Call fn(arg) if the connection carrying `req` closes before the answer is
 * complete (the client went away); gw_server_unwatch_close when done. */
typedef void (*gw_close_fn)(void *arg);
int gw_server_watch_close(gw_server *srv, struct evhttp_request *req, gw_close_fn fn, void *arg);
#define gw_server_unwatch_close(srv, req) gw_server_watch_close(srv, req, NULL, NULL)
/* The next generated request id (32 hex digits); loop thread only. */
void gw_server_new_request_id(gw_server *srv, char out[33]);

/* ---- http.c: one request being answered ---- */
#define GW_REQUEST_ID_MAX 128

typedef struct gw_request {
    gw_server *srv;
    struct evhttp_request *req;
    const char *method;        /* static string */
    char path[256];            /* URL path, without the query (never logged: queries may hold secrets) */
    char id[GW_REQUEST_ID_MAX + 1];
    uint64_t start_ns;
} gw_request;

/* Fill `r` for a new request: method, path, and its X-Request-Id (the
 * client's when it is sane, else a fresh one). */
void gw_request_begin(gw_request *r, gw_server *srv, struct evhttp_request *req);

/* True if `id` is acceptable as a client-supplied request id. */
bool gw_request_id_is_sane(const char *id);

/* Write the access-log line of a request answered in pieces (or abandoned:
 * status 499). */
void gw_request_log(gw_request *r, int status, size_t bytes);
/* For a close callback (gw_server_watch_close): when evhttp dropped the
 * connection itself in the middle of a streamed answer, it detaches the
 * request and leaves freeing it to us; do so. A request still attached is
 * freed by evhttp with its connection. */
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
/* Extra response header for the next reply (e.g. Allow). */
void gw_request_add_header(gw_request *r, const char *name, const char *value);

/* ---- api.c: routes ---- */
void gw_dispatch(gw_server *srv, struct evhttp_request *req);

/* ---- chat_request.c: validation of POST /v1/chat/completions ---- */
int gw_chat_request_validate(const cJSON *body, gw_api_error *err);
/* ... and of a POST /v1/completions body ("prompt" a string). */
int gw_completion_request_validate(const cJSON *body, gw_api_error *err);

#endif
