/* local.c: see local.h. The engine thread and the loop share two queues
 * under one mutex: jobs waiting to run, and events (text, done) waiting to
 * be delivered. A cancelled job still gets its "done" event internally, so
 * the loop frees it exactly once. */
#include "gateway.h"
#include "local.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct event_item event_item;

struct gw_local_job {
    gw_local *l;
    event_item *done_event;       /* allocated at submit: posting "done" cannot fail */
    int *prompt;
    int n_prompt;
    gw_local_request req;
    eng_logit_bias *logit_bias;   /* req.sampling's, copied */
    char stop_text[4][256];
    gw_local_callbacks cb;
    void *arg;
    atomic_bool cancelled;
    atomic_bool paused;           /* the client reads too slowly: hold its generation */
    gw_local_result result;       /* filled by the engine thread */
    char error[256];
    gw_local_job *next;
};

typedef enum { EV_TEXT, EV_LOGPROB, EV_DONE } event_kind;

struct event_item {
    gw_local_job *job;
    event_kind kind;
    int tokens;                   /* EV_TEXT: tokens generated so far */
    size_t len;
    struct event_item *next;
    char text[];
};

/* One sequence of the context: the job it runs, and what its cache holds.
 * Engine thread only. */
typedef struct {
    int seq;
    gw_local_job *job;            /* NULL: free */
    int *cached;                  /* the tokens in this sequence's KV cache, in order */
    int n_cached, cap_cached;
    int fed;                      /* prompt tokens in the cache so far */
    int pending;                  /* the sampled token to feed next, -1 while prefilling */
    eng_sampler *smp;
    gw_utf8 utf8;                 /* pieces become whole characters ... */
    eng_textstop stop;            /* ... then stop strings are held back */
} slot;

struct gw_local {
    eng_model *model;
    eng_ctx *ctx;
    slot *slots;
    int n_slots;
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
    int n_ctx, n_threads;
    /* for /metrics: written by the engine thread under `lock` */
    int active;
    unsigned long long generated;
    unsigned long long rate_mark;  /* `generated` at the start of the current second */
    double rate_started, tokens_per_second;
    char id[256];
};

static void post(gw_local *l, gw_local_job *job, const char *text, size_t len, event_kind kind)
{
    bool done = kind == EV_DONE;
    event_item *e = done ? job->done_event : malloc(sizeof(*e) + len + 1);
    if (!e) return; /* a piece of text lost to memory pressure; "done" always arrives */
    e->job = job;
    e->kind = kind;
    e->tokens = job->result.completion_tokens;
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

/* Record a token appended to a slot's KV cache (engine thread). */
static int remember(slot *sl, int token)
{
    if (sl->n_cached + 1 > sl->cap_cached) {
        int cap = sl->cap_cached * 2 + 64;
        int *p = realloc(sl->cached, sizeof(int) * (size_t)cap);
        if (!p) return -1;
        sl->cached = p;
        sl->cap_cached = cap;
    }
    sl->cached[sl->n_cached++] = token;
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

/* ---- the engine thread: continuous batching ----
 *
 * Every step puts one token of each generating sequence and a slice of each
 * prompt still being read into one batch, so the weights are read once for
 * all of them; sequences join and leave between steps. */

#define PREFILL_PER_STEP 256      /* prompt tokens per step, so long prompts do not stall the others */

static int common_prefix(const slot *sl, const gw_local_job *job)
{
    int k = 0;
    while (k < sl->n_cached && k < job->n_prompt - 1 && sl->cached[k] == job->prompt[k]) k++;
    return k; /* at least the last prompt token is computed again, for its logits */
}

/* Put a queued job in the free slot whose cache shares the most of its prompt. */
static void admit(gw_local *l, gw_local_job *job)
{
    slot *best = NULL;
    int best_k = -1;
    for (int i = 0; i < l->n_slots; i++) {
        slot *sl = &l->slots[i];
        if (sl->job) continue;
        int k = common_prefix(sl, job);
        if (k > best_k) {
            best = sl;
            best_k = k;
        }
    }
    const char *stops[4];
    for (int i = 0; i < job->req.n_stops; i++) stops[i] = job->stop_text[i];
    best->job = job;
    eng_seq_truncate(l->ctx, best->seq, best_k);
    best->n_cached = best->fed = job->result.cached_tokens = best_k;
    best->pending = -1;
    best->utf8 = (gw_utf8){{0}, 0};
    job->result.prompt_tokens = job->n_prompt;
    job->result.finish_reason = "length";
    if (eng_sampler_new(&best->smp, l->model, &job->req.sampling) != 0 ||
        eng_textstop_init(&best->stop, stops, job->req.n_stops) != 0) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        job->result.error = job->error;
        return;
    }
    for (int i = 0; i < job->n_prompt; i++) eng_sampler_accept(best->smp, job->prompt[i]);
}

/* The job in `sl` is over: flush its text, report, free the slot. */
static void finish(gw_local *l, slot *sl)
{
    gw_local_job *job = sl->job;
    const char *rest;
    size_t rest_len;
    if (sl->stop.text && !job->result.error) {
        char tail[12];
        size_t n = gw_utf8_flush(&sl->utf8, tail);
        if (n && !eng_textstop_add(&sl->stop, tail, n, &rest, &rest_len) && rest_len)
            post(l, job, rest, rest_len, EV_TEXT);
        eng_textstop_flush(&sl->stop, &rest, &rest_len);
        if (rest_len) post(l, job, rest, rest_len, EV_TEXT);
    }
    eng_textstop_free(&sl->stop);
    eng_sampler_free(sl->smp);
    sl->smp = NULL;
    sl->job = NULL;
    pthread_mutex_lock(&l->lock);
    l->active--;
    pthread_mutex_unlock(&l->lock);
    post(l, job, "", 0, EV_DONE);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The engine's throughput, for /metrics (engine thread). */
static void count_token(gw_local *l)
{
    double now = now_s();
    pthread_mutex_lock(&l->lock);
    l->generated++;
    if (now - l->rate_started >= 1.0) {
        l->tokens_per_second = l->rate_started > 0 ? (double)(l->generated - l->rate_mark) / (now - l->rate_started) : 0;
        l->rate_mark = l->generated;
        l->rate_started = now;
    }
    pthread_mutex_unlock(&l->lock);
}

/* A token was sampled for `sl`: show it, and say whether the job goes on. */
static bool take_token(gw_local *l, slot *sl, const float *logits)
{
    gw_local_job *job = sl->job;
    gw_local_result *res = &job->result;
    const eng_model_info *info = eng_model_get_info(l->model);
    if (job->req.max_tokens > 0 && res->completion_tokens >= job->req.max_tokens) return false;
    int tok = eng_sampler_sample(sl->smp, logits);
    if (job->req.logprobs >= 0) post_logprob(l, job, logits, info->n_vocab, tok);
    if (tok == eng_token_eos(l->model)) {
        res->finish_reason = "stop";
        return false;
    }
    res->completion_tokens++;
    count_token(l);
    char piece[256], text[3 * (256 + 4)];
    int n = eng_token_to_piece(l->model, tok, piece, sizeof(piece));
    size_t text_len = gw_utf8_feed(&sl->utf8, piece, (size_t)(n < 256 ? n : 256), text);
    const char *show;
    size_t show_len;
    bool hit = eng_textstop_add(&sl->stop, text, text_len, &show, &show_len);
    if (show_len) post(l, job, show, show_len, EV_TEXT);
    if (hit) {
        res->finish_reason = "stop";
        return false;
    }
    if (job->req.max_tokens > 0 && res->completion_tokens >= job->req.max_tokens) return false;
    if (eng_seq_pos(l->ctx, sl->seq) >= l->n_ctx) return false; /* the context is full: "length" */
    sl->pending = tok;
    return true;
}

/* One step over every busy slot. Returns false when there was nothing to do. */
static bool step(gw_local *l, eng_batch_item *items, slot **owner)
{
    int n = 0, budget = PREFILL_PER_STEP;
    for (int i = 0; i < l->n_slots; i++) {
        slot *sl = &l->slots[i];
        if (!sl->job) continue;
        if (atomic_load(&sl->job->cancelled) || sl->job->result.error) {
            finish(l, sl);
            continue;
        }
        if (sl->pending >= 0) {
            if (atomic_load(&sl->job->paused)) continue; /* its client is behind: the others go on */
            owner[n] = sl;
            items[n++] = (eng_batch_item){sl->pending, sl->seq, true};
            continue;
        }
        while (sl->fed < sl->job->n_prompt && budget > 0) {
            bool last = sl->fed == sl->job->n_prompt - 1;
            owner[n] = sl;
            items[n++] = (eng_batch_item){sl->job->prompt[sl->fed++], sl->seq, last};
            budget--;
        }
    }
    if (n == 0) return false;
    char err[256];
    if (eng_decode_batch(l->ctx, items, n, err, sizeof(err)) != 0) {
        for (int i = 0; i < n; i++) {
            slot *sl = owner[i];
            if (!sl->job) continue;
            snprintf(sl->job->error, sizeof(sl->job->error), "%s", err);
            sl->job->result.error = sl->job->error;
            eng_seq_truncate(l->ctx, sl->seq, 0);
            sl->n_cached = 0;
            finish(l, sl);
        }
        return true;
    }
    int row = 0;
    for (int i = 0; i < n; i++) {
        slot *sl = owner[i];
        if (remember(sl, items[i].token) != 0) sl->n_cached = 0; /* out of memory: forget, reuse nothing later */
        if (!items[i].logits) continue;
        const float *logits = eng_get_logits(l->ctx, row++);
        sl->pending = -1;
        if (!take_token(l, sl, logits)) finish(l, sl);
    }
    return true;
}

static void *engine_main(void *arg)
{
    gw_local *l = arg;
    eng_batch_item *items = malloc(sizeof(eng_batch_item) * (size_t)(l->n_slots + PREFILL_PER_STEP));
    slot **owner = malloc(sizeof(slot *) * (size_t)(l->n_slots + PREFILL_PER_STEP));
    pthread_mutex_lock(&l->lock);
    for (;;) {
        bool busy = false;
        for (int i = 0; i < l->n_slots; i++) busy |= l->slots[i].job != NULL;
        while (!busy && !l->queue_head && !l->stopping) pthread_cond_wait(&l->wake, &l->lock);
        if (l->stopping) break;
        /* join: queued jobs into free slots */
        for (int i = 0; i < l->n_slots && l->queue_head; i++) {
            bool free_slot = false;
            for (int j = 0; j < l->n_slots; j++) free_slot |= l->slots[j].job == NULL;
            if (!free_slot) break;
            gw_local_job *job = l->queue_head;
            l->queue_head = job->next;
            if (!l->queue_head) l->queue_tail = NULL;
            admit(l, job);
            l->active++;
        }
        pthread_mutex_unlock(&l->lock);
        bool worked = items && owner && step(l, items, owner);
        pthread_mutex_lock(&l->lock);
        /* every busy sequence is paused: sleep until a resume (or a new job) wakes us */
        if (!worked && !l->queue_head && !l->stopping) pthread_cond_wait(&l->wake, &l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    /* jobs still running: cancelled by the shutdown, reported as done */
    for (int i = 0; i < l->n_slots; i++)
        if (l->slots[i].job) finish(l, &l->slots[i]);
    free(items);
    free(owner);
    return NULL;
}

static void job_free(gw_local_job *job)
{
    free(job->prompt);
    free(job->logit_bias);
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
            job->cb.on_text(job->arg, e->text, e->len, e->tokens);
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
    l->n_slots = p->parallel > 0 ? p->parallel : 1;
    eng_ctx_params cp = {.n_ctx = p->ctx_size, .n_threads = p->threads, .kv_type = p->kv_type, .n_seq = l->n_slots};
    l->slots = calloc((size_t)l->n_slots, sizeof(slot));
    if (!l->slots) {
        snprintf(err, errlen, "out of memory");
        gw_local_free(l);
        return -1;
    }
    for (int i = 0; i < l->n_slots; i++) l->slots[i].seq = i;
    if (eng_model_load(&l->model, p->model_path, err, errlen) != 0 ||
        eng_ctx_new(&l->ctx, l->model, &cp, err, errlen) != 0) {
        gw_local_free(l);
        return -1;
    }
    l->n_ctx = p->ctx_size > 0 ? p->ctx_size : eng_model_get_info(l->model)->n_ctx_train;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    l->n_threads = p->threads > 0 ? p->threads : (int)(cores > 0 ? cores : 1);
    const char *tmpl = p->chat_template ? p->chat_template : "auto";
    l->llama2_chat = !strcmp(tmpl, "llama2") || (!strcmp(tmpl, "auto") && eng_model_get_info(l->model)->llama2_chat);
    gw_model_id(p->model_path, l->id, sizeof(l->id));
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
    for (int i = 0; l->slots && i < l->n_slots; i++) free(l->slots[i].cached);
    free(l->slots);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

const eng_model *gw_local_model(const gw_local *l) { return l->model; }
const char *gw_local_model_id(const gw_local *l) { return l->id; }
bool gw_local_llama2_chat(const gw_local *l) { return l->llama2_chat; }
int gw_local_n_ctx(const gw_local *l) { return l->n_ctx; }
int gw_local_parallel(const gw_local *l) { return l->n_slots; }
int gw_local_threads(const gw_local *l) { return l->n_threads; }

void gw_local_get_stats(gw_local *l, gw_local_stats *out)
{
    pthread_mutex_lock(&l->lock);
    double idle = now_s() - l->rate_started;
    *out = (gw_local_stats){l->queued - l->active, l->active, l->n_slots, l->generated,
                            idle > 2.0 ? 0 : l->tokens_per_second};
    pthread_mutex_unlock(&l->lock);
}

int gw_local_tokenize(const gw_local *l, const char *text, int **out)
{
    /* about one token per byte, plus BOS and the space prefix: one pass, and
     * a second sized by the count should a vocabulary make more */
    size_t len = strlen(text);
    int room = (int)(len < (size_t)INT32_MAX / 4 - 8 ? len + 8 : (size_t)INT32_MAX / 4);
    for (int pass = 0; pass < 2; pass++) {
        int *ids = malloc(sizeof(int) * (size_t)room);
        int n = ids ? eng_tokenize(l->model, text, len, true, ids, room) : -1;
        if (n >= 0 && n <= room) {
            *out = ids;
            return n;
        }
        free(ids);
        if (n < 0) return -1;
        room = n;
    }
    return -1;
}

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
    int n_bias = req->sampling.n_logit_bias;
    if (n_bias > 0) {
        if (!(job->logit_bias = malloc(sizeof(eng_logit_bias) * (size_t)n_bias))) {
            job_free(job);
            return NULL;
        }
        memcpy(job->logit_bias, req->sampling.logit_bias, sizeof(eng_logit_bias) * (size_t)n_bias);
        job->req.sampling.logit_bias = job->logit_bias;
    }
    for (int i = 0; i < req->n_stops && i < 4; i++) snprintf(job->stop_text[i], sizeof(job->stop_text[i]), "%s", req->stops[i]);
    job->cb = *cb;
    job->arg = arg;
    pthread_mutex_lock(&l->lock);
    if (l->queued >= l->queue_size + l->n_slots) { /* n_slots running, queue_size waiting */
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

/* The engine thread may sleep while every sequence is paused: wake it. */
static void wake_engine(gw_local *l)
{
    pthread_mutex_lock(&l->lock);
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
}

void gw_local_cancel(gw_local_job *job)
{
    atomic_store(&job->cancelled, true);
    wake_engine(job->l);
}

void gw_local_pause(gw_local_job *job, bool paused)
{
    atomic_store(&job->paused, paused);
    if (!paused) wake_engine(job->l);
}

