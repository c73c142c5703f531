/* answer_upstream.c: answering a call through an upstream (upstream/).
 *
 * The upstream module speaks the provider's wire format and hands back
 * OpenAI chat chunks or a whole answer; this file relays them to the
 * client, pauses the transfer while the client reads too slowly, and ends
 * the call with the usage the upstream reported (or counted).
 */
#include "decide.h"
#include "pseudonymize.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    gw_call *call;
    up_request *up;
    bool streaming;
} forward;

static void forward_chunk(void *arg, const char *json, size_t len)
{
    forward *f = arg;
    gw_call *call = f->call;
    if (!f->streaming) {
        gw_call_first_byte(call);
        gw_stream_start(&call->r);
        f->streaming = true;
    }
    char *restored = call->pseudo ? gw_pseudo_restore_chunk(call->pseudo, json, len) : NULL;
    if (restored) {
        json = restored;
        len = strlen(restored);
    }
    gw_stream_send(&call->r, json, len);
    call->bytes += len + 8;
    cJSON_free(restored);
}

/* The text a pseudonymized stream held back (a placeholder's start), as one
 * last content chunk. */
static void send_held_back(gw_call *call)
{
    const char *rest = call->pseudo ? gw_pseudo_restore_end(call->pseudo) : "";
    if (!rest[0]) return;
    cJSON *c = cJSON_CreateObject();
    char id[160];
    snprintf(id, sizeof(id), "chatcmpl-%s", call->r.id);
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(c, "created", (double)time(NULL));
    cJSON_AddStringToObject(c, "model", call->model);
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(ch, "delta"), "content", rest);
    cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "choices"), ch);
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!text) return;
    gw_stream_send(&call->r, text, strlen(text));
    call->bytes += strlen(text) + 8;
    cJSON_free(text);
}

static void take_usage(gw_call *call, const up_result *res)
{
    call->prompt_tokens = res->usage.prompt_tokens;
    call->completion_tokens = res->usage.completion_tokens;
    call->usage_estimated = res->usage.estimated;
}

/* The stream's last event before [DONE]: the "junction" object, in a
 * chunk with no choices (as the usage chunk is). */
static void send_annotation_chunk(gw_call *call)
{
    cJSON *note = gw_call_annotation(call);
    if (!note) return;
    cJSON *c = cJSON_CreateObject();
    char id[160];
    snprintf(id, sizeof(id), "chatcmpl-%s", call->r.id);
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(c, "created", (double)time(NULL));
    cJSON_AddStringToObject(c, "model", call->model);
    cJSON_AddArrayToObject(c, "choices");
    cJSON_AddItemToObject(c, "junction", note);
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!text) return;
    gw_stream_send(&call->r, text, strlen(text));
    call->bytes += strlen(text) + 8;
    cJSON_free(text);
}

/* A whole answer with the "junction" object added (the upstream's JSON is
 * otherwise passed as it came). */
static void reply_annotated(gw_call *call, const up_result *res)
{
    cJSON *note = res->status == 200 ? gw_call_annotation(call) : NULL;
    bool restore = res->status == 200 && call->pseudo;
    cJSON *body = note || restore ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
    if (restore && body) gw_pseudo_restore_whole(call->pseudo, body);
    if (!note && cJSON_IsObject(body)) {
        gw_reply_cjson(&call->r, res->status, body);
        return;
    }
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(note);
        cJSON_Delete(body);
        gw_reply_json(&call->r, res->status, res->body, res->body_len);
        return;
    }
    cJSON_AddItemToObject(body, "junction", note);
    gw_reply_cjson(&call->r, res->status, body);
}

/* Causes that say the upstream is down, not that the request is wrong. */
static bool upstream_down(up_cause c)
{
    static const up_cause down[] = {UP_E_CONNECT, UP_E_TIMEOUT, UP_E_UPSTREAM, UP_E_CIRCUIT_OPEN, UP_E_BUSY,
                                    UP_E_RATE_LIMITED, UP_E_AUTH};
    for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++)
        if (c == down[i]) return true;
    return false;
}

/* An "auto" request whose upstream failed before any byte reached the
 * client is decided again without that upstream (the policy's "external
 * down: local"); the zone gate applies to the new route as to any. */
static bool fall_back(gw_call *call, const up_result *res)
{
    if (!call->decision.by_policy || call->pseudo || !upstream_down(res->error.cause) ||
        call->n_excluded >= (int)(sizeof(call->excluded) / sizeof(call->excluded[0])))
        return false;
    char failed[64];
    snprintf(failed, sizeof(failed), "%s", call->decision.upstream->name);
    snprintf(call->excluded[call->n_excluded++], sizeof(call->excluded[0]), "%s", failed);
    gw_api_error e;
    if (gw_decide(call, NULL, &e) != 0) return false; /* the first error is the one the client gets */
    size_t n = strlen(call->decision.reason);
    snprintf(call->decision.reason + n, sizeof(call->decision.reason) - n, "; after %s failed (%s)", failed,
             up_cause_name(res->error.cause));
    gw_log(GW_LOG_WARN, "request %s: upstream %s failed (%s); falling back to %s", call->r.id, failed,
           up_cause_name(res->error.cause),
           call->decision.route == GW_ROUTE_LOCAL ? "local" : call->decision.upstream->name);
    if (call->decision.route == GW_ROUTE_LOCAL) gw_answer_local(call);
    else gw_answer_upstream(call);
    return true;
}

static void forward_done(void *arg, const up_result *res)
{
    forward *f = arg;
    gw_call *call = f->call;
    gw_request_unwatch_close(&call->r);
    gw_request_watch_output(&call->r, 0, NULL, NULL);
    if (res->status != 200 && !f->streaming && fall_back(call, res)) {
        free(f);
        return;
    }
    take_usage(call, res);
    if (res->status != 200) call->error_code = up_cause_name(res->error.cause);
    if (call->stream && (f->streaming || res->status == 200)) {
        if (!f->streaming) {
            gw_call_first_byte(call);
            gw_stream_start(&call->r);
        }
        /* A stream that breaks ends with an error event instead of [DONE]. */
        if (res->status == 200) {
            send_held_back(call);
            send_annotation_chunk(call);
            gw_stream_send(&call->r, "[DONE]", 6);
        } else {
            gw_stream_send(&call->r, res->body, res->body_len);
        }
        call->bytes += res->body_len;
        gw_stream_end(&call->r);
        gw_call_end(call, res->status);
    } else {
        gw_call_first_byte(call);
        reply_annotated(call, res);
        gw_call_end(call, res->status);
    }
    free(f);
}

/* The client went away, or the drain timeout cut the stream: stop the
 * upstream transfer too. */
static void forward_abandoned(void *arg)
{
    forward *f = arg;
    gw_call *call = f->call;
    up_usage u;
    up_usage_so_far(f->up, &u); /* priced as delivered */
    call->prompt_tokens = u.prompt_tokens;
    call->completion_tokens = u.completion_tokens;
    call->usage_estimated = u.estimated;
    up_cancel(f->up);
    int status = 499;
    if (call->r.site->drain_cut) {
        gw_api_error e;
        gw_api_error_set(&e, 503, "server_error", "shutting_down",
                         NULL, "junction is shutting down and its drain timeout ended this answer; retry.");
        call->server_cut = true;
        call->error_code = e.code;
        status = 503;
        if (f->streaming) {
            cJSON *body = gw_api_error_json(&e);
            char *text = cJSON_PrintUnformatted(body);
            cJSON_Delete(body);
            if (text) gw_stream_send(&call->r, text, strlen(text));
            cJSON_free(text);
            gw_stream_end(&call->r);
        } else {
            gw_reply_error(&call->r, &e);
        }
    } else {
        call->error_code = "client_closed";
        gw_request_release_orphan(call->r.req);
    }
    gw_call_end(call, status);
    free(f);
}

/* The client's connection holds too much unsent output: pause the
 * transfer until it drains (curl stops reading the upstream socket). */
static void forward_backpressure(void *arg, bool over)
{
    forward *f = arg;
    gw_log(GW_LOG_DEBUG, "request %s: client %s (%zu bytes unsent): upstream transfer %s", f->call->r.id,
           over ? "behind" : "caught up", gw_request_output_pending(&f->call->r), over ? "paused" : "resumed");
    if (over) up_pause(f->up);
    else up_resume(f->up);
}

void gw_answer_upstream(gw_call *call)
{
    gw_api_error e;
    /* the rule lets the request out pseudonymized: replace its findings first */
    if (call->decision.pseudonymize && call->cls && call->cls->findings.n > 0 && gw_pseudo_apply(call, &e) != 0) {
        call->error_code = e.code;
        gw_reply_error(&call->r, &e);
        gw_call_end(call, e.status);
        return;
    }
    /* the zone guarantee's last gate, whatever chose this route */
    if (!gw_zone_allows(call, call->decision.zone, &e)) {
        call->error_code = e.code;
        gw_reply_error(&call->r, &e);
        gw_call_end(call, e.status);
        return;
    }
    forward *f = calloc(1, sizeof(*f));
    if (!f) {
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        call->error_code = "out_of_memory";
        gw_reply_error(&call->r, &e);
        gw_call_end(call, 500);
        return;
    }
    f->call = call;
    static const up_callbacks cb = {forward_chunk, forward_done};
    f->up = up_start(call->r.site->backends->upstreams, call->decision.upstream->name, call->body, &cb, f);
    if (!f->up) {
        free(f);
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        call->error_code = "out_of_memory";
        gw_reply_error(&call->r, &e);
        gw_call_end(call, 500);
        return;
    }
    gw_request_watch_close(&call->r, forward_abandoned, f);
    if (call->stream)
        gw_request_watch_output(&call->r, (size_t)call->r.site->cfg->max_output_buffer_bytes, forward_backpressure, f);
}
