/* api.c: the routes junction serves and their handlers.
 *
 * One table maps each path to the methods it allows and its handler; the
 * dispatcher answers 404 (unknown path) and 405 (with Allow) from the same
 * table, in OpenAI's error format, so adding an endpoint is one table row.
 */
#include "internal.h"
#include "local.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*route_handler)(gw_request *r);

typedef struct {
    const char *path;
    unsigned methods;   /* EVHTTP_REQ_* bits */
    const char *allow;  /* the same, as an Allow header */
    route_handler handle;
} route;

static void handle_healthz(gw_request *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    gw_reply_json(r, 200, ok, sizeof(ok) - 1);
}

/* Ready means: this process will answer API requests now. Later checks (model
 * loaded, ledger open) join the "checks" object. */
static void handle_readyz(gw_request *r)
{
    bool draining = gw_server_draining(r->srv);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", draining ? "draining" : "ready");
    cJSON *checks = cJSON_AddObjectToObject(root, "checks");
    cJSON_AddBoolToObject(checks, "accepting", !draining);
    /* The model loads before the daemon listens, so a configured one is loaded by now. */
    cJSON_AddBoolToObject(checks, "local_model", gw_server_local(r->srv) != NULL);
    gw_reply_cjson(r, draining ? 503 : 200, root);
}

static void handle_models(gw_request *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    gw_local *local = gw_server_local(r->srv);
    if (local) {
        const eng_model_info *mi = eng_model_get_info(gw_local_model(local));
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", gw_local_model_id(local));
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "junction");
        cJSON *j = cJSON_AddObjectToObject(m, "junction");
        cJSON_AddStringToObject(j, "kind", "local");
        cJSON_AddStringToObject(j, "zone", "in-process");
        cJSON_AddStringToObject(j, "name", mi->name);
        cJSON_AddStringToObject(j, "weight_type", mi->weight_type);
        cJSON_AddNumberToObject(j, "n_ctx_train", mi->n_ctx_train);
        cJSON_AddNumberToObject(j, "n_vocab", mi->n_vocab);
        cJSON_AddStringToObject(j, "chat_template", gw_local_llama2_chat(local) ? "llama2" : "plain");
        cJSON_AddItemToArray(data, m);
    }
    up_client *ups = gw_server_upstreams(r->srv);
    for (int i = 0; i < up_client_count(ups); i++) {
        const up_def *d = up_client_def(ups, i);
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", d->name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", d->provider == UP_ANTHROPIC ? "anthropic" : "openai");
        cJSON *j = cJSON_AddObjectToObject(m, "junction");
        cJSON_AddStringToObject(j, "kind", "upstream");
        cJSON_AddStringToObject(j, "zone", d->zone == UP_ZONE_PRIVATE ? "private" : "external");
        cJSON_AddStringToObject(j, "upstream_model", d->model);
        cJSON_AddItemToArray(data, m);
    }
    gw_reply_cjson(r, 200, root);
}

/* ---- forwarding to an upstream ---- */

typedef struct {
    gw_request r;          /* a detached copy: the answer comes later */
    up_request *up;
    bool want_stream, streaming;
    size_t bytes;
} forward;

static void forward_chunk(void *arg, const char *json, size_t len)
{
    forward *f = arg;
    if (!f->streaming) {
        gw_stream_start(&f->r);
        f->streaming = true;
    }
    gw_stream_send(&f->r, json, len);
    f->bytes += len + 8;
}

static void forward_done(void *arg, const up_result *res)
{
    forward *f = arg;
    gw_server_unwatch_close(f->r.srv, f->r.req);
    if (f->want_stream && (f->streaming || res->status == 200)) {
        if (!f->streaming) gw_stream_start(&f->r);
        /* A stream that breaks ends with an error event instead of [DONE]. */
        if (res->status == 200) gw_stream_send(&f->r, "[DONE]", 6);
        else gw_stream_send(&f->r, res->body, res->body_len);
        gw_stream_end(&f->r);
        gw_request_log(&f->r, res->status, f->bytes + res->body_len);
    } else {
        gw_reply_json(&f->r, res->status, res->body, res->body_len);
    }
    free(f);
}

/* The client went away: stop the upstream transfer too. */
static void forward_abandoned(void *arg)
{
    forward *f = arg;
    up_cancel(f->up);
    gw_request_log(&f->r, 499, f->bytes);
    gw_request_release_orphan(f->r.req);
    free(f);
}

/* ---- the local engine ---- */

typedef struct {
    gw_request r;
    gw_local_job *job;
    bool legacy;           /* /v1/completions: text_completion objects, no roles */
    bool stream, include_usage, started;
    char id[64];
    const char *model;     /* the local model's id (lives as long as the server) */
    long created;
    char *text;            /* the whole answer, when not streaming */
    size_t len, cap;
    cJSON *logprobs;       /* the tokens' entries, when asked for and not streaming */
    size_t bytes;
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
    gw_stream_send(&a->r, s, strlen(s));
    a->bytes += strlen(s) + 8;
    cJSON_free(s);
}

/* Streams open with the headers and, for chat, a chunk naming the role. */
static void stream_begin(local_answer *a)
{
    if (a->started) return;
    gw_stream_start(&a->r);
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

static void local_text(void *arg, const char *text, size_t len)
{
    local_answer *a = arg;
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

static void local_done(void *arg, const gw_local_result *res)
{
    local_answer *a = arg;
    gw_server_unwatch_close(a->r.srv, a->r.req);
    gw_api_error e;
    if (res->error) gw_api_error_set(&e, 500, "server_error", "engine_error", NULL, "The local engine failed: %s", res->error);
    if (a->stream) {
        stream_begin(a);
        if (res->error) {
            cJSON *root = cJSON_CreateObject();
            cJSON *err = cJSON_AddObjectToObject(root, "error");
            cJSON_AddStringToObject(err, "message", e.message);
            cJSON_AddStringToObject(err, "type", e.type);
            cJSON_AddNullToObject(err, "param");
            cJSON_AddStringToObject(err, "code", e.code);
            stream_json(a, root);
        } else {
            stream_json(a, chunk_json(a, true, a->legacy ? "" : NULL, false, res->finish_reason));
            if (a->include_usage) {
                cJSON *c = chunk_json(a, false, NULL, false, NULL);
                cJSON_AddItemToObject(c, "usage", usage_json(res));
                stream_json(a, c);
            }
            gw_stream_send(&a->r, "[DONE]", 6);
        }
        gw_stream_end(&a->r);
        gw_request_log(&a->r, res->error ? 500 : 200, a->bytes);
    } else if (res->error) {
        gw_reply_error(&a->r, &e);
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
        gw_reply_cjson(&a->r, 200, root);
    }
    cJSON_Delete(a->logprobs);
    free(a->text);
    free(a);
}

static void local_abandoned(void *arg)
{
    local_answer *a = arg;
    gw_local_cancel(a->job);
    gw_request_log(&a->r, 499, a->bytes);
    gw_request_release_orphan(a->r.req);
    cJSON_Delete(a->logprobs);
    free(a->text);
    free(a);
}

static double number_or(const cJSON *body, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

/* Generate for `prompt` (n_prompt tokens; freed here) as the request asks. */
static void answer_locally(gw_request *r, gw_local *local, const cJSON *body, int *prompt, int n_prompt, bool legacy)
{
    gw_api_error e;
    const eng_model_info *mi = eng_model_get_info(gw_local_model(local));
    if (number_or(body, "n", 1) != 1) {
        free(prompt);
        gw_api_error_set(&e, 400, "invalid_request_error", "unsupported_value", "n",
                         "The local engine answers with one choice: 'n' must be 1.");
        gw_reply_error(r, &e);
        return;
    }
    gw_local_request req = {.logprobs = -1};
    const cJSON *want_lp = cJSON_GetObjectItemCaseSensitive(body, "logprobs");
    const cJSON *top_lp = cJSON_GetObjectItemCaseSensitive(body, "top_logprobs");
    if (cJSON_IsNumber(top_lp) && !cJSON_IsTrue(want_lp)) {
        free(prompt);
        gw_api_error_set(&e, 400, "invalid_request_error", "invalid_value", "top_logprobs",
                         "'top_logprobs' needs 'logprobs' set to true.");
        gw_reply_error(r, &e);
        return;
    }
    if (cJSON_IsTrue(want_lp)) req.logprobs = cJSON_IsNumber(top_lp) ? (int)top_lp->valuedouble : 0;
    /* the legacy API's max_tokens defaults to 16, as OpenAI's does */
    double max = number_or(body, "max_completion_tokens", number_or(body, "max_tokens", legacy ? 16 : 0));
    req.max_tokens = (int)max;
    eng_sampling_defaults(&req.sampling);
    /* OpenAI's defaults: temperature 1, top_p 1, no top-k or min-p */
    req.sampling.temperature = (float)number_or(body, "temperature", 1.0);
    req.sampling.top_p = (float)number_or(body, "top_p", 1.0);
    req.sampling.top_k = 0;
    req.sampling.min_p = 0;
    req.sampling.presence_penalty = (float)number_or(body, "presence_penalty", 0);
    req.sampling.frequency_penalty = (float)number_or(body, "frequency_penalty", 0);
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(body, "seed");
    if (cJSON_IsNumber(seed)) req.sampling.seed = (uint64_t)(int64_t)seed->valuedouble;
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(body, "stop");
    if (cJSON_IsString(stop)) req.stops[req.n_stops++] = stop->valuestring;
    for (const cJSON *s = cJSON_IsArray(stop) ? stop->child : NULL; s && req.n_stops < 4; s = s->next)
        req.stops[req.n_stops++] = s->valuestring;
    if (n_prompt >= mi->n_ctx_train) {
        free(prompt);
        gw_api_error_set(&e, 400, "invalid_request_error", "context_length_exceeded", "messages",
                         "The prompt is %d tokens; this model's context holds %d.", n_prompt, mi->n_ctx_train);
        gw_reply_error(r, &e);
        return;
    }
    local_answer *a = calloc(1, sizeof(*a));
    if (!a) {
        free(prompt);
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    a->r = *r;
    a->legacy = legacy;
    a->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream"));
    a->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(body, "stream_options"), "include_usage"));
    snprintf(a->id, sizeof(a->id), "%s-%.40s", legacy ? "cmpl" : "chatcmpl", r->id);
    a->model = gw_local_model_id(local);
    a->created = (long)time(NULL);
    static const gw_local_callbacks cb = {local_text, local_logprob, local_done};
    a->job = gw_local_submit(local, prompt, n_prompt, &req, &cb, a);
    free(prompt);
    if (!a->job) {
        free(a);
        gw_request_add_header(r, "Retry-After", "1");
        gw_api_error_set(&e, 429, "rate_limit_error", "engine_busy", NULL,
                         "The local engine's queue is full (queue_size); retry shortly.");
        gw_reply_error(r, &e);
        return;
    }
    /* echo: the prompt comes back before the completion (the engine's text
     * reaches the loop only after this returns) */
    if (legacy && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "echo"))) {
        const char *p = cJSON_GetObjectItemCaseSensitive(body, "prompt")->valuestring;
        if (a->stream) {
            stream_begin(a);
            stream_json(a, chunk_json(a, true, p, false, NULL));
        } else {
            append_text(a, p, strlen(p));
        }
    }
    gw_server_watch_close(r->srv, r->req, local_abandoned, a);
}

static void forward_to_upstream(gw_request *r, const char *name, const cJSON *body)
{
    forward *f = calloc(1, sizeof(*f));
    gw_api_error e;
    if (!f) {
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    f->r = *r;
    f->want_stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream"));
    static const up_callbacks cb = {forward_chunk, forward_done};
    f->up = up_start(gw_server_upstreams(r->srv), name, body, &cb, f);
    if (!f->up) {
        free(f);
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory");
        gw_reply_error(r, &e);
        return;
    }
    gw_server_watch_close(r->srv, r->req, forward_abandoned, f);
}

/* Parse the request body as JSON, answering the client itself on failure. */
static cJSON *read_json_body(gw_request *r)
{
    gw_api_error e;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    long long max = gw_server_max_body(r->srv);
    if ((long long)len > max) {
        gw_api_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                         "Request body is %zu bytes; this server accepts at most %lld "
                         "(max_body_bytes).", len, max);
        gw_request_add_header(r, "Connection", "close"); /* as libevent does past its own cap */
        gw_reply_error(r, &e);
        return NULL;
    }
    const char *text = len ? (const char *)evbuffer_pullup(in, -1) : "";
    cJSON *body = text ? cJSON_ParseWithLength(text, len) : NULL;
    if (!body) {
        gw_api_error_set(&e, 400, "invalid_request_error", "invalid_json", NULL,
                         "We could not parse the JSON body of your request. The body must "
                         "be a JSON object, sent with Content-Type: application/json.");
        gw_reply_error(r, &e);
        return NULL;
    }
    if (!cJSON_IsObject(body)) {
        gw_api_error_set(&e, 400, "invalid_request_error", "invalid_type", NULL,
                         "The request body must be a JSON object.");
        gw_reply_error(r, &e);
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

/* The body parsed and validated, or NULL after answering the client. */
static cJSON *read_valid_body(gw_request *r, int (*validate)(const cJSON *, gw_api_error *))
{
    cJSON *body = read_json_body(r);
    gw_api_error e;
    if (body && validate(body, &e) != 0) {
        gw_reply_error(r, &e);
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

/* The request's "model" (NULL when absent), and whether it names the local engine. */
static const char *model_name(gw_request *r, const cJSON *body, bool *local_name)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    const char *name = cJSON_IsString(model) ? model->valuestring : NULL;
    gw_local *local = gw_server_local(r->srv);
    *local_name = !name || !strcmp(name, "local") || !strcmp(name, "auto") ||
                  (local && !strcmp(name, gw_local_model_id(local)));
    return name;
}

static void handle_chat_completions(gw_request *r)
{
    cJSON *body = read_valid_body(r, gw_chat_request_validate);
    if (!body) return;
    gw_api_error e;
    /* "model" picks the backend: an upstream's name, or local/auto/absent for the engine. */
    bool local_name;
    const char *name = model_name(r, body, &local_name);
    gw_local *local = gw_server_local(r->srv);
    if (name && up_client_find(gw_server_upstreams(r->srv), name)) {
        forward_to_upstream(r, name, body);
    } else if (local && local_name) {
        int *prompt = NULL;
        int n_prompt = gw_local_render_chat(local, cJSON_GetObjectItemCaseSensitive(body, "messages"), &prompt);
        if (n_prompt < 0) {
            gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory rendering the prompt");
            gw_reply_error(r, &e);
        } else {
            answer_locally(r, local, body, prompt, n_prompt, false);
        }
    } else if (local_name) {
        gw_api_error_set(&e, 503, "server_error", "no_backend", NULL,
                         "No model can answer this request: junction has no local model loaded. "
                         "Name an upstream in \"model\" (GET /v1/models lists them), or see "
                         "docs/configuration.md.");
        gw_reply_error(r, &e);
    } else {
        gw_api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                         "The model '%.100s' does not exist here. GET /v1/models lists the models "
                         "junction can route to.", name);
        gw_reply_error(r, &e);
    }
    cJSON_Delete(body);
}

/* POST /v1/completions: the legacy text API, answered by the local engine. */
static void handle_completions(gw_request *r)
{
    cJSON *body = read_valid_body(r, gw_completion_request_validate);
    if (!body) return;
    gw_api_error e;
    bool local_name;
    model_name(r, body, &local_name);
    gw_local *local = gw_server_local(r->srv);
    if (!local || !local_name) {
        gw_api_error_set(&e, local ? 404 : 503, local ? "invalid_request_error" : "server_error",
                         local ? "model_not_found" : "no_backend", local ? "model" : NULL,
                         "POST /v1/completions is answered by the local engine only%s.",
                         local ? "; upstreams take POST /v1/chat/completions" : ", and no model is loaded");
        gw_reply_error(r, &e);
        cJSON_Delete(body);
        return;
    }
    const char *text = cJSON_GetObjectItemCaseSensitive(body, "prompt")->valuestring;
    const eng_model *m = gw_local_model(local);
    int n = eng_tokenize(m, text, strlen(text), true, NULL, 0);
    int *prompt = n > 0 ? malloc(sizeof(int) * (size_t)n) : NULL;
    if (!prompt) {
        gw_api_error_set(&e, 500, "server_error", NULL, NULL, "junction ran out of memory tokenizing the prompt");
        gw_reply_error(r, &e);
    } else {
        eng_tokenize(m, text, strlen(text), true, prompt, n);
        answer_locally(r, local, body, prompt, n, true);
    }
    cJSON_Delete(body);
}

static const route routes[] = {
    {"/healthz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_healthz},
    {"/readyz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", handle_readyz},
    {"/v1/models", EVHTTP_REQ_GET, "GET", handle_models},
    {"/v1/chat/completions", EVHTTP_REQ_POST, "POST", handle_chat_completions},
    {"/v1/completions", EVHTTP_REQ_POST, "POST", handle_completions},
};

void gw_dispatch(gw_server *srv, struct evhttp_request *req)
{
    gw_request r;
    gw_request_begin(&r, srv, req);
    gw_api_error e;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].path, r.path) != 0) continue;
        if (!(routes[i].methods & evhttp_request_get_command(req))) {
            gw_request_add_header(&r, "Allow", routes[i].allow);
            gw_api_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL,
                             "Method %s is not allowed on %s; use %s.", r.method, r.path,
                             routes[i].allow);
            gw_reply_error(&r, &e);
            return;
        }
        routes[i].handle(&r);
        return;
    }
    gw_api_error_set(&e, 404, "invalid_request_error", "unknown_url", NULL,
                     "Unknown request URL: %s %.200s. Please check the URL for typos; "
                     "see docs/api.md for the endpoints junction serves.", r.method, r.path);
    gw_reply_error(&r, &e);
}
