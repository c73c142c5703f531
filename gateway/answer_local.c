/* answer_local.c: answering a call with the in-process engine (local.c).
 *
 * The prompt is rendered and tokenized on a worker thread (long bodies
 * never stall the loop), then queued for the engine thread; its text comes
 * back on the loop and goes out as OpenAI chat (or text) completion
 * objects, whole or streamed. When the classifier's pass already scored
 * the whole prompt (completions.c), the answer continues from that parked
 * job's cache instead: no second render, no second prefill. A client that
 * stops reading pauses its sequence (the others go on); one that stays
 * stopped past request_timeout_s is cut off.
 */
#include "internal.h"
#include "local.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    gw_call *call;
    gw_local_job *job;
    bool legacy;           /* /v1/completions: text_completion objects, no roles */
    bool stream, include_usage, started;
    bool too_slow;         /* the client left its output unread past the limit */
    bool behind;           /* its unsent output is over the limit now (generation paused) */
    struct event *slow_timer;
    int gone_status;       /* the connection closed while rendering: end with this status */
    char id[64];
    const char *model;     /* the local model's id (lives as long as the server) */
    long created;
    char *text;            /* the whole answer, when not streaming */
    size_t len, cap;
    cJSON *logprobs;       /* the tokens' entries, when asked for and not streaming */
} local_answer;

/* One streamed chunk: with a choice carrying `text` (and, for chat, the
 * assistant role when `role`), or with none (the usage chunk). */
static cJSON *chunk_json(const local_answer *a, bool choice, const char *text, bool role, const char *finish)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", a->id);
    cJSON_AddStringToObject(c, "object", a->legacy ? "text_completion" : "chat.completion.chunk");
    cJSON_AddNumberToObject(c, "created", (double)a->created);
    cJSON_AddStringToObject(c, "model", a->model);
    cJSON *choices = cJSON_AddArrayToObject(c, "choices");
    if (choice) {
        cJSON *ch = cJSON_CreateObject();
        if (a->legacy) {
            cJSON_AddStringToObject(ch, "text", text ? text : "");
        } else {
            cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
            if (role) cJSON_AddStringToObject(delta, "role", "assistant");
            if (text) cJSON_AddStringToObject(delta, "content", text);
        }
        cJSON_AddNumberToObject(ch, "index", 0);
        cJSON_AddNullToObject(ch, "logprobs");
        if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
        else cJSON_AddNullToObject(ch, "finish_reason");
        cJSON_AddItemToArray(choices, ch);
    }
    return c;
}

static void stream_json(local_answer *a, cJSON *json)
{
    char *s = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    if (!s) return;
    gw_stream_send(&a->call->r, s, strlen(s));
    a->call->bytes += strlen(s) + 8;
    cJSON_free(s);
}

/* Streams open with the headers and, for chat, a chunk naming the role. */
static void stream_begin(local_answer *a)
{
    if (a->started) return;
    gw_call_first_byte(a->call);
    gw_stream_start(&a->call->r);
    a->started = true;
    if (!a->legacy) stream_json(a, chunk_json(a, true, "", true, NULL));
}

static void append_text(local_answer *a, const char *text, size_t len)
{
    if (a->len + len + 1 > a->cap) {
        size_t cap = (a->len + len + 1) * 2;
        char *p = realloc(a->text, cap);
        if (!p) return;
        a->text = p;
        a->cap = cap;
    }
    memcpy(a->text + a->len, text, len);
    a->len += len;
    a->text[a->len] = '\0';
}

/* One token's logprobs: collected for a whole answer, or sent in a chunk of
 * its own (with empty content) in a stream. */
static void local_logprob(void *arg, const char *json, size_t len)
{
    local_answer *a = arg;
    cJSON *entry = cJSON_ParseWithLength(json, len);
    if (!entry) return;
    if (!a->stream) {
        if (!a->logprobs) a->logprobs = cJSON_CreateArray();
        cJSON_AddItemToArray(a->logprobs, entry);
        return;
    }
    stream_begin(a);
    cJSON *c = chunk_json(a, true, "", false, NULL);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "choices"), 0);
    cJSON *content = cJSON_CreateArray();
    cJSON_AddItemToArray(content, entry);
    cJSON *lp = cJSON_CreateObject();
    cJSON_AddItemToObject(lp, "content", content);
    cJSON_ReplaceItemInObjectCaseSensitive(ch, "logprobs", lp);
    stream_json(a, c);
}

static void local_text(void *arg, const char *text, size_t len, int tokens)
{
    local_answer *a = arg;
    a->call->completion_tokens = tokens; /* what reached the client, should it leave early */
    if (!a->stream) {
        append_text(a, text, len);
        return;
    }
    stream_begin(a);
    stream_json(a, chunk_json(a, true, text, false, NULL)); /* text is NUL-terminated */
}

static cJSON *usage_json(const gw_local_result *res)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", res->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", res->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", res->prompt_tokens + res->completion_tokens);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"), "cached_tokens", res->cached_tokens);
    return u;
}

static void answer_free(local_answer *a)
{
    if (a->slow_timer) event_free(a->slow_timer);
    cJSON_Delete(a->logprobs);
    free(a->text);
    free(a);
}

static void send_stream_error(local_answer *a, const gw_api_error *e)
{
    stream_begin(a);
    stream_json(a, gw_api_error_json(e));
    gw_stream_end(&a->call->r);
}

static void local_done(void *arg, const gw_local_result *res)
{
    local_answer *a = arg;
    gw_call *call = a->call;
    gw_request_unwatch_close(&call->r);
    gw_request_watch_output(&call->r, 0, NULL, NULL);
    call->prompt_tokens = res->prompt_tokens;
    call->completion_tokens = res->completion_tokens;
    call->cached_tokens = res->cached_tokens;
    gw_api_error e;
    if (res->error) {
        gw_api_error_set(&e, 500, "server_error", "engine_error", NULL, "The local engine failed: %s", res->error);
        call->error_code = e.code;
    }
    if (a->stream) {
        if (res->error) {
            send_stream_error(a, &e);
        } else {
            stream_begin(a);
            cJSON *last = chunk_json(a, true, a->legacy ? "" : NULL, false, res->finish_reason);
            if (a->include_usage) {
                stream_json(a, last);
                last = chunk_json(a, false, NULL, false, NULL);
                cJSON_AddItemToObject(last, "usage", usage_json(res));
            }
            cJSON *note = gw_call_annotation(call);
            if (note) cJSON_AddItemToObject(last, "junction", note);
            stream_json(a, last);
            gw_stream_send(&call->r, "[DONE]", 6);
            gw_stream_end(&call->r);
        }
        gw_call_end(call, res->error ? 500 : 200);
    } else if (res->error) {
        gw_call_first_byte(call);
        gw_reply_error(&call->r, &e);
        gw_call_end(call, e.status);
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "id", a->id);
        cJSON_AddStringToObject(root, "object", a->legacy ? "text_completion" : "chat.completion");
        cJSON_AddNumberToObject(root, "created", (double)a->created);
        cJSON_AddStringToObject(root, "model", a->model);
        cJSON *choices = cJSON_AddArrayToObject(root, "choices");
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", 0);
        if (a->legacy) {
            cJSON_AddStringToObject(ch, "text", a->text ? a->text : "");
        } else {
            cJSON *msg = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", a->text ? a->text : "");
            cJSON_AddNullToObject(msg, "refusal");
        }
        if (a->logprobs) {
            cJSON *lp = cJSON_AddObjectToObject(ch, "logprobs");
            cJSON_AddItemToObject(lp, "content", a->logprobs);
            a->logprobs = NULL;
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
        cJSON_AddStringToObject(ch, "finish_reason", res->finish_reason);
        cJSON_AddItemToArray(choices, ch);
        cJSON_AddItemToObject(root, "usage", usage_json(res));
        cJSON *note = gw_call_annotation(call);
        if (note) cJSON_AddItemToObject(root, "junction", note);
        gw_call_first_byte(call);
        gw_reply_cjson(&call->r, 200, root);
        gw_call_end(call, 200);
    }
    answer_free(a);
}

/* The connection closed under the answer: the client hung up, the drain
 * timeout cut the stream, or the client read too slowly. */
static void local_abandoned(void *arg)
{
    local_answer *a = arg;
    gw_call *call = a->call;
    if (a->job) gw_local_cancel(a->job);
    int status = 499;
    if (call->r.site->drain_cut) {
        gw_api_error e;
        gw_api_error_set(&e, 503, "server_error", "shutting_down", NULL,
                         "junction is shutting down and its drain timeout ended this answer; retry.");
        call->server_cut = true;
        call->error_code = e.code;
        status = 503;
        if (a->stream) send_stream_error(a, &e);
        else gw_reply_error(&call->r, &e);
    } else {
        /* paused for a client that does not read: whichever timer ends it (ours, or evhttp's write timeout,
         * also request_timeout_s), the client was too slow, not gone */
        call->error_code = a->too_slow || a->behind ? "client_too_slow" : "client_closed";
        gw_request_release_orphan(call->r.req);
    }
    if (!a->job) { /* a worker is still rendering from the body: submit() ends the call */
        a->gone_status = status;
        return;
    }
    gw_call_end(call, status);
    answer_free(a);
}

static void slow_client(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    local_answer *a = arg;
    a->too_slow = true;
    gw_request_abort(&a->call->r); /* its close callback, local_abandoned, ends the call */
}

/* The client's unsent output passed the limit: pause the sequence (other
 * requests keep generating); past request_timeout_s of that, cut it off. */
static void local_backpressure(void *arg, bool over)
{
    local_answer *a = arg;
    a->behind = over;
    gw_local_pause(a->job, over);
    gw_log(GW_LOG_DEBUG, "request %s: client %s (%zu bytes unsent): generation %s", a->call->r.id,
           over ? "behind" : "caught up", gw_request_output_pending(&a->call->r), over ? "paused" : "resumed");
    if (over) {
        double s = a->call->r.site->cfg->request_timeout_s;
        struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
        event_add(a->slow_timer, &tv);
    } else {
        event_del(a->slow_timer);
    }
}

static double number_or(const cJSON *body, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

/* The request's sampling and limits, as OpenAI defines them. */
static void read_request(const cJSON *body, bool legacy, gw_local_request *req)
{
    *req = (gw_local_request){.logprobs = -1};
    const cJSON *want_lp = cJSON_GetObjectItemCaseSensitive(body, "logprobs");
    const cJSON *top_lp = cJSON_GetObjectItemCaseSensitive(body, "top_logprobs");
    if (cJSON_IsTrue(want_lp)) req->logprobs = cJSON_IsNumber(top_lp) ? (int)top_lp->valuedouble : 0;
    /* the legacy API's max_tokens defaults to 16, as OpenAI's does */
    req->max_tokens = (int)number_or(body, "max_completion_tokens", number_or(body, "max_tokens", legacy ? 16 : 0));
    eng_sampling_defaults(&req->sampling);
    /* OpenAI's defaults: temperature 1, top_p 1, no top-k or min-p */
    req->sampling.temperature = (float)number_or(body, "temperature", 1.0);
    req->sampling.top_p = (float)number_or(body, "top_p", 1.0);
    req->sampling.top_k = 0;
    req->sampling.min_p = 0;
    req->sampling.presence_penalty = (float)number_or(body, "presence_penalty", 0);
    req->sampling.frequency_penalty = (float)number_or(body, "frequency_penalty", 0);
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(body, "seed");
    if (cJSON_IsNumber(seed)) req->sampling.seed = (uint64_t)(int64_t)seed->valuedouble;
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(body, "stop");
    if (cJSON_IsString(stop)) req->stops[req->n_stops++] = stop->valuestring;
    for (const cJSON *s = cJSON_IsArray(stop) ? stop->child : NULL; s && req->n_stops < 4; s = s->next)
        req->stops[req->n_stops++] = s->valuestring;
}

/* OpenAI's {"token id": bias} as the engine's list (heap, caller frees); the
 * count, or -1 when out of memory. Keys were checked by validation. */
static int read_logit_bias(const cJSON *body, eng_logit_bias **out)
{
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(body, "logit_bias");
    int n = cJSON_IsObject(lb) ? cJSON_GetArraySize(lb) : 0;
    *out = NULL;
    if (n == 0) return 0;
    if (!(*out = malloc(sizeof(**out) * (size_t)n))) return -1;
    int i = 0;
    for (const cJSON *b = lb->child; b; b = b->next, i++)
        (*out)[i] = (eng_logit_bias){(int)strtol(b->string, NULL, 10), (float)b->valuedouble};
    return n;
}

static void fail(gw_call *call, int status, const char *type, const char *code, const char *param, const char *msg)
{
    gw_api_error e;
    gw_api_error_set(&e, status, type, code, param, "%s", msg);
    call->error_code = code ? code : type;
    gw_reply_error(&call->r, &e);
    gw_call_end(call, status);
}

/* Worker thread: the prompt as tokens (gateway.h, gw_prompt_render). Writes
 * only the call's prompt, which no one reads meanwhile. */
static void render(void *arg)
{
    local_answer *a = arg;
    gw_call *call = a->call;
    const gw_local *local = call->r.site->backends->local;
    const cJSON *body = call->body;
    const char *text = a->legacy ? cJSON_GetObjectItemCaseSensitive(body, "prompt")->valuestring : NULL;
    call->render_failed = gw_prompt_render(&call->prompt, gw_local_model(local), gw_local_llama2_chat(local),
                                           text ? NULL : cJSON_GetObjectItemCaseSensitive(body, "messages"), text, 0) != 0;
}

/* Ends the call with an error before the engine was given anything. */
static void refuse(local_answer *a, int status, const char *type, const char *code, const char *param, const char *msg)
{
    gw_request_unwatch_close(&a->call->r);
    fail(a->call, status, type, code, param, msg);
    answer_free(a);
}

/* Loop thread: hand the tokens to the engine: continue the parked scoring
 * job when it holds exactly this prompt, else queue it. False when the call
 * ended here. */
static bool submit(local_answer *a)
{
    gw_call *call = a->call;
    if (a->gone_status) {
        gw_call_end(call, a->gone_status);
        answer_free(a);
        return false;
    }
    gw_local *local = call->r.site->backends->local;
    if (call->render_failed) {
        refuse(a, 500, "server_error", "out_of_memory", NULL, "junction ran out of memory rendering the prompt");
        return false;
    }
    const gw_prompt *p = &call->prompt;
    call->prompt_tokens = p->n_prompt;
    gw_log(GW_LOG_DEBUG, "request %s: prompt of %d tokens rendered off the loop (%.3f ms since arrival)", call->r.id,
           p->n_prompt, (double)(gw_now_ns() - call->r.start_ns) / 1e6);
    int n_ctx = gw_local_n_ctx(local);
    if (p->n_prompt >= n_ctx) {
        char msg[256];
        snprintf(msg, sizeof(msg), "The prompt is %d tokens; the local engine's context holds %d (ctx_size).",
                 p->n_prompt, n_ctx);
        refuse(a, 400, "invalid_request_error", "context_length_exceeded", a->legacy ? "prompt" : "messages", msg);
        return false;
    }
    gw_local_request req;
    read_request(call->body, a->legacy, &req);
    eng_logit_bias *bias = NULL;
    req.sampling.n_logit_bias = read_logit_bias(call->body, &bias);
    req.sampling.logit_bias = bias;
    char why[256];
    if (req.sampling.n_logit_bias < 0 || eng_sampling_check(gw_local_model(local), &req.sampling, why, sizeof(why)) != 0) {
        free(bias);
        refuse(a, 400, "invalid_request_error", "invalid_value", "logit_bias",
               req.sampling.n_logit_bias < 0 ? "junction ran out of memory reading 'logit_bias'" : why);
        return false;
    }
    static const gw_local_callbacks cb = {local_text, local_logprob, local_done};
    bool from_pass = call->parked != NULL;
    if (from_pass) {
        /* the classifier's pass holds a slot and this prompt's cache (all of
         * it, or its head when the pass read only head and tail): answer
         * there, without queueing again */
        if (gw_local_continue(call->parked, p->prompt, p->n_prompt, &req, &cb, a) == 0) a->job = call->parked;
        call->parked = NULL; /* continued, or released by the failure */
    } else {
        a->job = gw_local_submit(local, p->prompt, p->n_prompt, &req, &cb, a);
    }
    free(bias);
    if (!a->job && from_pass) {
        refuse(a, 500, "server_error", "out_of_memory", NULL, "junction ran out of memory starting the answer");
        return false;
    }
    if (!a->job) {
        gw_request_add_header(&call->r, "Retry-After", "1");
        refuse(a, 429, "rate_limit_error", "engine_busy", NULL, "The local engine's queue is full (queue_size); retry shortly.");
        return false;
    }
    /* echo: the prompt comes back before the completion (the engine's text
     * reaches the loop only after this returns) */
    if (a->legacy && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call->body, "echo"))) {
        const char *text = cJSON_GetObjectItemCaseSensitive(call->body, "prompt")->valuestring;
        if (a->stream) {
            stream_begin(a);
            stream_json(a, chunk_json(a, true, text, false, NULL));
        } else {
            append_text(a, text, strlen(text));
        }
    }
    if (a->stream)
        gw_request_watch_output(&call->r, (size_t)call->r.site->cfg->max_output_buffer_bytes, local_backpressure, a);
    return true;
}

static void rendered(void *arg) { submit(arg); }

void gw_answer_local(gw_call *call)
{
    const cJSON *top_lp = cJSON_GetObjectItemCaseSensitive(call->body, "top_logprobs");
    if (cJSON_IsNumber(top_lp) && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(call->body, "logprobs"))) {
        fail(call, 400, "invalid_request_error", "invalid_value", "top_logprobs",
             "'top_logprobs' needs 'logprobs' set to true.");
        return;
    }
    local_answer *a = calloc(1, sizeof(*a));
    if (a) a->slow_timer = evtimer_new(call->r.site->base, slow_client, a);
    if (!a || !a->slow_timer) {
        free(a);
        fail(call, 500, "server_error", "out_of_memory", NULL, "junction ran out of memory");
        return;
    }
    gw_local *local = call->r.site->backends->local;
    a->call = call;
    a->legacy = call->api == GW_API_TEXT;
    a->stream = call->stream;
    a->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(call->body, "stream_options"), "include_usage"));
    snprintf(a->id, sizeof(a->id), "%s-%.40s", a->legacy ? "cmpl" : "chatcmpl", call->r.id);
    a->model = gw_local_model_id(local);
    a->created = (long)time(NULL);
    if (call->prompt.n_prompt > 0) { /* rendered already, for the classifier's pass */
        if (submit(a)) gw_request_watch_close(&call->r, local_abandoned, a);
        return;
    }
    if (gw_pool_submit(call->r.site->pool, render, rendered, a) != 0) {
        answer_free(a);
        fail(call, 503, "server_error", "shutting_down", NULL, "junction is shutting down; retry elsewhere.");
        return;
    }
    gw_request_watch_close(&call->r, local_abandoned, a);
}
