/* local.c: see local.h. The engine thread and the loop share two queues
 * under one mutex: jobs waiting to run, and events (text, done) waiting to
 * be delivered. A cancelled job still gets its "done" event internally, so
 * the loop frees it exactly once. */
#include "local.h"
#include "textstop.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct event_item event_item;

struct gw_local_job {
    gw_local *l;
    event_item *done_event;       /* allocated at submit: posting "done" cannot fail */
    int *prompt;
    int n_prompt;
    gw_local_request req;
    char stop_text[4][256];
    gw_local_callbacks cb;
    void *arg;
    atomic_bool cancelled;
    gw_local_result result;       /* filled by the engine thread */
    char error[256];
    gw_local_job *next;
};

typedef enum { EV_TEXT, EV_LOGPROB, EV_DONE } event_kind;

struct event_item {
    gw_local_job *job;
    event_kind kind;
    size_t len;
    struct event_item *next;
    char text[];
};

struct gw_local {
    eng_model *model;
    eng_ctx *ctx;
    int *cached;                  /* the tokens in ctx's KV cache, in order (engine thread only) */
    int n_cached, cap_cached;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    gw_local_job *queue_head, *queue_tail;
    int queued, queue_size;
    bool stopping;
    event_item *events_head, *events_tail;
    struct event *deliver;
    bool llama2_chat;
    char id[256];
};

static void post(gw_local *l, gw_local_job *job, const char *text, size_t len, event_kind kind)
{
    bool done = kind == EV_DONE;
    event_item *e = done ? job->done_event : malloc(sizeof(*e) + len + 1);
    if (!e) return; /* a piece of text lost to memory pressure; "done" always arrives */
    e->job = job;
    e->kind = kind;
    e->len = len;
    e->next = NULL;
    if (!done) memcpy(e->text, text, len);
    e->text[done ? 0 : len] = '\0';
    pthread_mutex_lock(&l->lock);
    if (l->events_tail) l->events_tail->next = e;
    else l->events_head = e;
    l->events_tail = e;
    pthread_mutex_unlock(&l->lock);
    event_active(l->deliver, EV_READ, 0);
}

/* Record tokens appended to the KV cache (engine thread). */
static int remember(gw_local *l, const int *tokens, int n)
{
    if (l->n_cached + n > l->cap_cached) {
        int cap = (l->n_cached + n) * 2 + 64;
        int *p = realloc(l->cached, sizeof(int) * (size_t)cap);
        if (!p) return -1;
        l->cached = p;
        l->cap_cached = cap;
    }
    memcpy(l->cached + l->n_cached, tokens, sizeof(int) * (size_t)n);
    l->n_cached += n;
    return 0;
}

/* One token's entry: {"token","logprob","bytes"} */
static cJSON *token_entry(const eng_model *m, int tok, float logprob)
{
    char piece[256];
    int n = eng_token_to_piece(m, tok, piece, sizeof(piece));
    if (n > (int)sizeof(piece) - 1) n = (int)sizeof(piece) - 1;
    piece[n] = '\0';
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "token", piece);
    cJSON_AddNumberToObject(e, "logprob", logprob);
    cJSON *bytes = cJSON_AddArrayToObject(e, "bytes");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)piece[i]));
    return e;
}

/* The model's own log-probabilities (log-softmax of the logits, before any
 * sampling adjustment), as OpenAI reports them: the chosen token and the
 * `logprobs` most likely alternatives. Engine thread. */
static void post_logprob(gw_local *l, gw_local_job *job, const float *logits, int n_vocab, int tok)
{
    float max = logits[0];
    for (int i = 1; i < n_vocab; i++) max = logits[i] > max ? logits[i] : max;
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)(logits[i] - max));
    float lse = max + (float)log(sum);
    int k = job->req.logprobs < 20 ? job->req.logprobs : 20, top[20];
    for (int j = 0; j < k; j++) { /* k passes of selection: k is at most 20 */
        int best = -1;
        for (int i = 0; i < n_vocab; i++) {
            bool taken = false;
            for (int q = 0; q < j && !taken; q++) taken = top[q] == i;
            if (!taken && (best < 0 || logits[i] > logits[best])) best = i;
        }
        top[j] = best;
    }
    cJSON *entry = token_entry(l->model, tok, logits[tok] - lse);
    cJSON *alts = cJSON_AddArrayToObject(entry, "top_logprobs");
    for (int j = 0; j < k; j++) cJSON_AddItemToArray(alts, token_entry(l->model, top[j], logits[top[j]] - lse));
    char *json = cJSON_PrintUnformatted(entry);
    cJSON_Delete(entry);
    if (json) post(l, job, json, strlen(json), EV_LOGPROB);
    cJSON_free(json);
}

/* Engine thread: one whole generation. */
static void run_job(gw_local *l, gw_local_job *job)
{
    gw_local_result *res = &job->result;
    res->prompt_tokens = job->n_prompt;
    const eng_model_info *info = eng_model_get_info(l->model);
    char err[256];
    /* Prefix reuse: what the cache already holds of this prompt (a shared
     * system prompt, the earlier turns of a chat) is not computed again. At
     * least the last prompt token is decoded, for its logits. */
    int keep = 0;
    while (keep < l->n_cached && keep < job->n_prompt - 1 && l->cached[keep] == job->prompt[keep]) keep++;
    eng_ctx_truncate(l->ctx, keep);
    l->n_cached = keep;
    res->cached_tokens = keep;
    if (eng_decode(l->ctx, job->prompt + keep, job->n_prompt - keep, false, err, sizeof(err)) != 0 ||
        remember(l, job->prompt + keep, job->n_prompt - keep) != 0) {
        snprintf(job->error, sizeof(job->error), "%s", err);
        res->error = job->error;
        eng_ctx_truncate(l->ctx, 0);
        l->n_cached = 0;
        return;
    }
    eng_sampler *smp = NULL;
    textstop stop;
    const char *stops[4];
    for (int i = 0; i < job->req.n_stops; i++) stops[i] = job->stop_text[i];
    if (eng_sampler_new(&smp, l->model, &job->req.sampling) != 0 || textstop_init(&stop, stops, job->req.n_stops) != 0) {
        eng_sampler_free(smp);
        snprintf(job->error, sizeof(job->error), "out of memory");
        res->error = job->error;
        return;
    }
    for (int i = 0; i < job->n_prompt; i++) eng_sampler_accept(smp, job->prompt[i]);
    const float *logits = eng_get_logits(l->ctx, job->n_prompt - keep - 1); /* indices count this decode's tokens */
    res->finish_reason = "length";
    for (;;) {
        if (atomic_load(&job->cancelled)) break;
        if (job->req.max_tokens > 0 && res->completion_tokens >= job->req.max_tokens) break;
        int tok = eng_sampler_sample(smp, logits);
        if (job->req.logprobs >= 0) post_logprob(l, job, logits, info->n_vocab, tok);
        if (tok == eng_token_eos(l->model)) {
            res->finish_reason = "stop";
            break;
        }
        res->completion_tokens++;
        char piece[256];
        int n = eng_token_to_piece(l->model, tok, piece, sizeof(piece));
        const char *show;
        size_t show_len;
        bool hit = textstop_add(&stop, piece, (size_t)(n < 256 ? n : 256), &show, &show_len);
        if (show_len) post(l, job, show, show_len, EV_TEXT);
        if (hit) {
            res->finish_reason = "stop";
            break;
        }
        if (eng_ctx_pos(l->ctx) >= info->n_ctx_train || eng_decode(l->ctx, &tok, 1, false, err, sizeof(err)) != 0 ||
            remember(l, &tok, 1) != 0)
            break; /* the context is full: "length" */
        logits = eng_get_logits(l->ctx, 0);
    }
    const char *rest;
    size_t rest_len;
    textstop_flush(&stop, &rest, &rest_len);
    if (rest_len) post(l, job, rest, rest_len, EV_TEXT);
    textstop_free(&stop);
    eng_sampler_free(smp);
}

static void *engine_main(void *arg)
{
    gw_local *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->queue_head && !l->stopping) pthread_cond_wait(&l->wake, &l->lock);
        if (l->stopping) break;
        gw_local_job *job = l->queue_head;
        l->queue_head = job->next;
        if (!l->queue_head) l->queue_tail = NULL;
        pthread_mutex_unlock(&l->lock);
        if (!atomic_load(&job->cancelled)) run_job(l, job);
        post(l, job, "", 0, EV_DONE);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static void job_free(gw_local_job *job)
{
    free(job->prompt);
    if (job->done_event && job->done_event->job != job) free(job->done_event); /* never posted */
    free(job);
}

/* Loop thread: hand the engine's output to the callbacks. */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_local *l = arg;
    pthread_mutex_lock(&l->lock);
    event_item *e = l->events_head;
    l->events_head = l->events_tail = NULL;
    pthread_mutex_unlock(&l->lock);
    while (e) {
        event_item *next = e->next;
        gw_local_job *job = e->job;
        bool live = !atomic_load(&job->cancelled);
        if (e->kind == EV_DONE) {
            pthread_mutex_lock(&l->lock);
            l->queued--;
            pthread_mutex_unlock(&l->lock);
            if (live) job->cb.on_done(job->arg, &job->result);
            job->done_event = NULL; /* e itself, freed below */
            job_free(job);
        } else if (live && e->kind == EV_TEXT) {
            job->cb.on_text(job->arg, e->text, e->len);
        } else if (live && job->cb.on_logprob) {
            job->cb.on_logprob(job->arg, e->text, e->len);
        }
        free(e);
        e = next;
    }
}

int gw_local_new(gw_local **out, struct event_base *base, const gw_local_params *p, char *err, size_t errlen)
{
    gw_local *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    l->queue_size = p->queue_size > 0 ? p->queue_size : 0; /* 0: only the running request */
    eng_ctx_params cp = {.n_ctx = p->ctx_size, .n_threads = p->threads, .kv_type = p->kv_type};
    if (eng_model_load(&l->model, p->model_path, err, errlen) != 0 ||
        eng_ctx_new(&l->ctx, l->model, &cp, err, errlen) != 0) {
        gw_local_free(l);
        return -1;
    }
    const char *tmpl = p->chat_template ? p->chat_template : "auto";
    l->llama2_chat = !strcmp(tmpl, "llama2") || (!strcmp(tmpl, "auto") && eng_model_get_info(l->model)->llama2_chat);
    const char *slash = strrchr(p->model_path, '/');
    snprintf(l->id, sizeof(l->id), "%s", slash ? slash + 1 : p->model_path);
    char *dot = strstr(l->id, ".gguf");
    if (dot && dot[5] == '\0') *dot = '\0';
    l->deliver = event_new(base, -1, 0, deliver, l);
    if (!l->deliver || pthread_create(&l->thread, NULL, engine_main, l) != 0) {
        snprintf(err, errlen, "cannot start the engine thread");
        gw_local_free(l);
        return -1;
    }
    l->thread_started = true;
    *out = l;
    return 0;
}

void gw_local_free(gw_local *l)
{
    if (!l) return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->lock);
        l->stopping = true;
        for (gw_local_job *j = l->queue_head; j; j = j->next) atomic_store(&j->cancelled, true);
        pthread_cond_signal(&l->wake);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
    }
    if (l->deliver) {
        deliver(-1, 0, l); /* finishes what the engine posted */
        event_free(l->deliver);
    }
    for (gw_local_job *j = l->queue_head, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    eng_ctx_free(l->ctx);
    eng_model_free(l->model);
    free(l->cached);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

const eng_model *gw_local_model(const gw_local *l) { return l->model; }
const char *gw_local_model_id(const gw_local *l) { return l->id; }
bool gw_local_llama2_chat(const gw_local *l) { return l->llama2_chat; }

gw_local_job *gw_local_submit(gw_local *l, const int *prompt, int n_prompt, const gw_local_request *req,
                              const gw_local_callbacks *cb, void *arg)
{
    gw_local_job *job = calloc(1, sizeof(*job));
    if (!job) return NULL;
    job->prompt = malloc(sizeof(int) * (size_t)n_prompt);
    job->done_event = calloc(1, sizeof(event_item) + 1);
    if (!job->prompt || !job->done_event) {
        job_free(job);
        return NULL;
    }
    memcpy(job->prompt, prompt, sizeof(int) * (size_t)n_prompt);
    job->n_prompt = n_prompt;
    job->l = l;
    job->req = *req;
    for (int i = 0; i < req->n_stops && i < 4; i++) snprintf(job->stop_text[i], sizeof(job->stop_text[i]), "%s", req->stops[i]);
    job->cb = *cb;
    job->arg = arg;
    pthread_mutex_lock(&l->lock);
    if (l->queued >= l->queue_size + 1) { /* one running, queue_size waiting */
        pthread_mutex_unlock(&l->lock);
        job_free(job);
        return NULL;
    }
    l->queued++;
    if (l->queue_tail) l->queue_tail->next = job;
    else l->queue_head = job;
    l->queue_tail = job;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    return job;
}

void gw_local_cancel(gw_local_job *job) { atomic_store(&job->cancelled, true); }

/* ---- chat templates ---- */

static int append_tokens(const eng_model *m, const char *text, bool bos, int **ids, int *n, int *cap)
{
    int need = eng_tokenize(m, text, strlen(text), bos, NULL, 0);
    if (need < 0) return -1;
    if (*n + need > *cap) {
        int c = (*n + need) * 2 + 16;
        int *p = realloc(*ids, sizeof(int) * (size_t)c);
        if (!p) return -1;
        *ids = p;
        *cap = c;
    }
    eng_tokenize(m, text, strlen(text), bos, *ids + *n, need);
    *n += need;
    return 0;
}

static int append_id(int id, int **ids, int *n, int *cap)
{
    if (*n + 1 > *cap) {
        int c = *cap * 2 + 16;
        int *p = realloc(*ids, sizeof(int) * (size_t)c);
        if (!p) return -1;
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

/* A message's text: a string, or its text parts joined. Heap string. */
static char *message_text(const cJSON *msg)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(c)) return strdup(c->valuestring);
    size_t n = 1;
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next)
        n += strlen(cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
    char *s = calloc(1, n);
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; s && p; p = p->next)
        strcat(s, cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
    return s;
}

int gw_local_render_chat(const gw_local *l, const void *messages_cjson, int **out)
{
    const cJSON *messages = messages_cjson;
    const eng_model *m = l->model;
    int *ids = NULL, n = 0, cap = 0, rc = 0;
    if (!l->llama2_chat) {
        /* Base models: the messages' text, one after the other, after BOS. */
        size_t total = 1;
        for (const cJSON *msg = messages->child; msg; msg = msg->next) {
            char *t = message_text(msg);
            total += t ? strlen(t) + 2 : 0;
            free(t);
        }
        char *all = calloc(1, total);
        for (const cJSON *msg = messages->child; all && msg; msg = msg->next) {
            char *t = message_text(msg);
            if (!t) continue;
            if (all[0]) strcat(all, "\n\n");
            strcat(all, t);
            free(t);
        }
        rc = all ? append_tokens(m, all, true, &ids, &n, &cap) : -1;
        free(all);
    } else {
        /* Llama 2 chat, as Meta trained it: every exchange is
         *   <s>[INST] {user} [/INST] {assistant} </s>
         * with the system prompt wrapped into the first user turn as
         *   <<SYS>>\n{system}\n<</SYS>>\n\n
         * and the last user turn left open for the model to answer. An
         * assistant message after the last user turn is a prefill. */
        char *system = NULL, *turn = NULL;
        for (const cJSON *msg = messages->child; msg && rc == 0; msg = msg->next) {
            const char *role = cJSON_GetObjectItemCaseSensitive(msg, "role")->valuestring;
            char *t = message_text(msg);
            if (!t) { rc = -1; break; }
            if (!strcmp(role, "system") || !strcmp(role, "developer")) {
                free(system);
                system = t;
                continue;
            }
            if (!strcmp(role, "assistant")) {
                if (turn) {
                    bool last = msg->next == NULL;
                    size_t len = strlen(turn) + strlen(t) + 3;
                    char *both = malloc(len);
                    if (both) snprintf(both, len, "%s %s%s", turn, t, last ? "" : " ");
                    rc = both ? append_tokens(m, both, true, &ids, &n, &cap) : -1;
                    if (rc == 0 && !last) rc = append_id(eng_token_eos(m), &ids, &n, &cap);
                    free(both);
                    free(turn);
                    turn = NULL;
                }
                free(t);
                continue;
            }
            if (turn) { /* a user turn no assistant answered */
                rc = append_tokens(m, turn, true, &ids, &n, &cap);
                free(turn);
                turn = NULL;
            }
            size_t len = strlen(t) + (system ? strlen(system) : 0) + 64;
            turn = malloc(len);
            if (turn && system) snprintf(turn, len, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", system, t);
            else if (turn) snprintf(turn, len, "[INST] %s [/INST]", t);
            else rc = -1;
            free(system);
            system = NULL;
            free(t);
        }
        if (rc == 0 && turn) rc = append_tokens(m, turn, true, &ids, &n, &cap);
        free(turn);
        free(system);
    }
    if (rc != 0 || n == 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}
