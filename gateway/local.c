/* local.c: see local.h. The engine thread and the loop share two queues
 * under one mutex: jobs waiting to run, and events (text, features, done)
 * waiting to be delivered. A cancelled job still gets its "done" event
 * internally, so the loop frees it exactly once. A scoring job's decision
 * (continue or release) and a cancel reach the engine as atomics plus a
 * wake-up that is counted (`pokes`), so none is lost while it goes to sleep.
 */
#include "gateway.h"
#include "local.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct event_item event_item;

/* What the loop decided about a parked scoring job. */
enum { VERDICT_NONE, VERDICT_CONTINUE, VERDICT_RELEASE };

struct gw_local_job {
    gw_local *l;
    event_item *done_event;       /* allocated at submit: posting "done" cannot fail */
    event_item *features_event;   /* likewise, for a scoring job's features */
    int *prompt;
    int n_prompt;
    /* scoring (gw_local_score) */
    bool scoring;
    bool features_posted;         /* engine thread */
    eng_feature_params fp;
    gw_local_features_fn on_features;
    eng_features feats;           /* written by the engine thread before the features event */
    atomic_int verdict;
    bool reprompt;                /* continued with another prompt than the scored tokens */
    /* generating */
    gw_local_request req;
    eng_logit_bias *logit_bias;   /* req.sampling's, copied */
    char stop_text[4][256];
    gw_local_callbacks cb;        /* a scoring job's are set by gw_local_continue */
    void *arg;
    atomic_bool cancelled;
    atomic_bool paused;           /* the client reads too slowly: hold its generation */
    gw_local_result result;       /* filled by the engine thread */
    char error[256];
    gw_local_job *next;
};

typedef enum { EV_TEXT, EV_LOGPROB, EV_FEATURES, EV_DONE } event_kind;

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
    bool generating;              /* the sampler and stop strings are set up */
    bool collecting;              /* a scoring pass is under way (eng_seq_features_begin) */
    bool parked;                  /* scored: waiting for the loop's continue or release */
    bool stopped;                 /* the pass stops at a layer: finish the layers before answering */
    float *last_logits;           /* a full pass's last row (n_vocab): the answer's first token */
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
    unsigned pokes;               /* wake-ups asked for (under lock): the engine sleeps only if none came */
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
    bool ready = kind == EV_DONE || kind == EV_FEATURES; /* allocated in advance, text-less */
    event_item *e = kind == EV_DONE ? job->done_event : kind == EV_FEATURES ? job->features_event
                                                                             : malloc(sizeof(*e) + len + 1);
    if (!e) return; /* a piece of text lost to memory pressure; "features" and "done" always arrive */
    e->job = job;
    e->kind = kind;
    e->tokens = job->result.completion_tokens;
    e->len = ready ? 0 : len;
    e->next = NULL;
    if (!ready) memcpy(e->text, text, len);
    e->text[e->len] = '\0';
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

static void fail_job(gw_local_job *job, const char *why)
{
    snprintf(job->error, sizeof(job->error), "%s", why);
    job->result.error = job->error;
}

/* The sampler and stop strings of the job in `sl` (the prompt counts for
 * the penalties). On failure the job carries the error. */
static void start_generating(gw_local *l, slot *sl)
{
    gw_local_job *job = sl->job;
    const char *stops[4];
    for (int i = 0; i < job->req.n_stops; i++) stops[i] = job->stop_text[i];
    sl->utf8 = (gw_utf8){{0}, 0};
    if (eng_sampler_new(&sl->smp, l->model, &job->req.sampling) != 0) {
        fail_job(job, "out of memory");
        return;
    }
    if (eng_textstop_init(&sl->stop, stops, job->req.n_stops) != 0) {
        eng_sampler_free(sl->smp);
        sl->smp = NULL;
        fail_job(job, "out of memory");
        return;
    }
    sl->generating = true;
    for (int i = 0; i < job->n_prompt; i++) eng_sampler_accept(sl->smp, job->prompt[i]);
}

/* A scoring pass starts from an empty cache (every token is scored), with
 * the layer it stops at. On failure the job carries the error. */
static void start_scoring(gw_local *l, slot *sl)
{
    gw_local_job *job = sl->job;
    const eng_model_info *info = eng_model_get_info(l->model);
    char err[256];
    eng_seq_truncate(l->ctx, sl->seq, 0);
    sl->n_cached = sl->fed = 0;
    sl->stopped = job->fp.stop_layer > 0 && job->fp.stop_layer < info->n_layer;
    if (!sl->stopped && !sl->last_logits && !(sl->last_logits = malloc(sizeof(float) * (size_t)info->n_vocab))) {
        fail_job(job, "out of memory for the scored prompt's logits");
        return;
    }
    if (eng_seq_features_begin(l->ctx, sl->seq, &job->fp, err, sizeof(err)) != 0) {
        fail_job(job, err);
        return;
    }
    sl->collecting = true;
}

/* Put a queued job in a free slot: a generation in the one whose cache
 * shares the most of its prompt; a scoring pass (which starts from an empty
 * cache) in the one whose cache is the least worth keeping. */
static void admit(gw_local *l, gw_local_job *job)
{
    slot *best = NULL;
    int best_k = INT_MIN;
    for (int i = 0; i < l->n_slots; i++) {
        slot *sl = &l->slots[i];
        if (sl->job) continue;
        int k = job->scoring ? -sl->n_cached : common_prefix(sl, job);
        if (k > best_k) {
            best = sl;
            best_k = k;
        }
    }
    best->job = job;
    best->pending = -1;
    best->generating = best->collecting = best->parked = best->stopped = false;
    job->result.prompt_tokens = job->n_prompt;
    job->result.finish_reason = "length";
    if (job->scoring) {
        start_scoring(l, best);
        return;
    }
    eng_seq_truncate(l->ctx, best->seq, best_k);
    best->n_cached = best->fed = job->result.cached_tokens = best_k;
    start_generating(l, best);
}

/* The job in `sl` is over: flush its text, report, free the slot. */
static void finish(gw_local *l, slot *sl)
{
    gw_local_job *job = sl->job;
    const char *rest;
    size_t rest_len;
    if (sl->generating && !job->result.error) {
        char tail[12];
        size_t n = gw_utf8_flush(&sl->utf8, tail);
        if (n && !eng_textstop_add(&sl->stop, tail, n, &rest, &rest_len) && rest_len)
            post(l, job, rest, rest_len, EV_TEXT);
        eng_textstop_flush(&sl->stop, &rest, &rest_len);
        if (rest_len) post(l, job, rest, rest_len, EV_TEXT);
    }
    if (sl->generating) {
        eng_textstop_free(&sl->stop);
        eng_sampler_free(sl->smp);
        sl->smp = NULL;
    }
    if (sl->collecting) { /* cut short: its features are lost */
        eng_features lost;
        char ignored[8];
        if (eng_seq_features_end(l->ctx, sl->seq, &lost, ignored, sizeof(ignored)) == 0) eng_features_free(&lost);
    }
    if (eng_seq_stopped(l->ctx, sl->seq)) { /* a stopped prefill's cache is of no use to the next job */
        eng_seq_truncate(l->ctx, sl->seq, 0);
        sl->n_cached = 0;
    }
    if (job->scoring && !job->features_posted) { /* the loop is waiting for the features: say why none came */
        if (!job->result.error) fail_job(job, "the local engine stopped before the prompt was scored");
        job->features_posted = true;
        post(l, job, "", 0, EV_FEATURES);
    }
    sl->generating = sl->collecting = sl->parked = sl->stopped = false;
    sl->job = NULL;
    pthread_mutex_lock(&l->lock);
    l->active--;
    pthread_mutex_unlock(&l->lock);
    post(l, job, "", 0, EV_DONE);
}

/* The scoring pass of `sl` read its last token: the features go to the
 * loop, and the job waits in its slot, holding the cache. */
static void park(gw_local *l, slot *sl)
{
    gw_local_job *job = sl->job;
    char err[256];
    sl->collecting = false;
    if (eng_seq_features_end(l->ctx, sl->seq, &job->feats, err, sizeof(err)) != 0) {
        fail_job(job, err); /* the next step finishes it, which reports the error */
        return;
    }
    sl->parked = true;
    job->features_posted = true;
    post(l, job, "", 0, EV_FEATURES);
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

/* The loop said "continue" to the parked job in `sl`: its answer starts
 * from the scored cache, every prompt token reused. The first token comes
 * from the pass's last logits (kept at scoring time, since later batches
 * overwrite the context's), or, after a stopped pass, from finishing its
 * remaining layers. Continued with another prompt (the whole one, whose
 * head and tail alone were scored), the job is as if admitted anew into
 * this slot: a full pass's cache is reused as far as it matches, a stopped
 * one's is dropped, and the rest is prefilled by the next steps. */
static void resume(gw_local *l, slot *sl)
{
    gw_local_job *job = sl->job;
    sl->parked = false;
    job->result.prompt_tokens = job->n_prompt;
    if (job->reprompt) {
        if (sl->stopped) sl->n_cached = 0;
        sl->stopped = false;
        int k = common_prefix(sl, job);
        eng_seq_truncate(l->ctx, sl->seq, k);
        sl->n_cached = sl->fed = job->result.cached_tokens = k;
        start_generating(l, sl);
        return;
    }
    job->result.cached_tokens = job->n_prompt;
    start_generating(l, sl);
    if (job->result.error) return;
    const float *logits = sl->last_logits;
    if (sl->stopped) {
        char err[256];
        if (eng_seq_finish_layers(l->ctx, sl->seq, err, sizeof(err)) != 0) {
            fail_job(job, err);
            return;
        }
        sl->stopped = false;
        logits = eng_get_logits(l->ctx, 0);
    }
    if (!take_token(l, sl, logits)) finish(l, sl);
}

/* What to do with the job in `sl` before this step's batch: true when it
 * takes part in the batch. */
static bool ready(gw_local *l, slot *sl, bool *changed)
{
    gw_local_job *job = sl->job;
    if (atomic_load(&job->cancelled) || job->result.error) {
        finish(l, sl);
        *changed = true;
        return false;
    }
    if (!sl->parked) return true;
    int verdict = atomic_load(&job->verdict);
    if (verdict == VERDICT_NONE) return false; /* the loop has not decided yet */
    *changed = true;
    if (verdict == VERDICT_RELEASE) {
        finish(l, sl);
        return false;
    }
    resume(l, sl);
    if (sl->job && job->result.error) finish(l, sl);
    return sl->job != NULL;
}

/* One step over every busy slot. Returns false when there was nothing to do. */
static bool step(gw_local *l, eng_batch_item *items, slot **owner)
{
    int n = 0, budget = PREFILL_PER_STEP;
    bool changed = false;
    for (int i = 0; i < l->n_slots; i++) {
        slot *sl = &l->slots[i];
        if (!sl->job || !ready(l, sl, &changed)) continue;
        if (sl->pending >= 0) {
            if (atomic_load(&sl->job->paused)) continue; /* its client is behind: the others go on */
            owner[n] = sl;
            items[n++] = (eng_batch_item){sl->pending, sl->seq, true};
            continue;
        }
        while (sl->fed < sl->job->n_prompt && budget > 0) {
            bool last = sl->fed == sl->job->n_prompt - 1;
            owner[n] = sl;
            /* a stopped pass has no logits to give */
            items[n++] = (eng_batch_item){sl->job->prompt[sl->fed++], sl->seq, last && !sl->stopped};
            budget--;
        }
    }
    if (n == 0) return changed;
    char err[256];
    if (eng_decode_batch(l->ctx, items, n, err, sizeof(err)) != 0) {
        for (int i = 0; i < n; i++) {
            slot *sl = owner[i];
            if (!sl->job) continue;
            fail_job(sl->job, err);
            eng_seq_truncate(l->ctx, sl->seq, 0);
            sl->n_cached = 0;
            finish(l, sl);
        }
        return true;
    }
    int row = 0, n_vocab = eng_model_get_info(l->model)->n_vocab;
    for (int i = 0; i < n; i++) {
        slot *sl = owner[i];
        if (remember(sl, items[i].token) != 0) sl->n_cached = 0; /* out of memory: forget, reuse nothing later */
        if (!items[i].logits) continue;
        const float *logits = eng_get_logits(l->ctx, row++);
        if (sl->collecting) { /* the scored prompt's last token: its row is the answer's first token */
            memcpy(sl->last_logits, logits, sizeof(float) * (size_t)n_vocab);
            continue;
        }
        sl->pending = -1;
        if (!take_token(l, sl, logits)) finish(l, sl);
    }
    for (int i = 0; i < l->n_slots; i++) {
        slot *sl = &l->slots[i];
        if (sl->job && sl->collecting && sl->fed == sl->job->n_prompt) park(l, sl);
    }
    return true;
}

static bool free_slot(const gw_local *l)
{
    for (int i = 0; i < l->n_slots; i++)
        if (!l->slots[i].job) return true;
    return false;
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
        while (l->queue_head && free_slot(l)) {
            gw_local_job *job = l->queue_head;
            l->queue_head = job->next;
            if (!l->queue_head) l->queue_tail = NULL;
            l->active++;
            admit(l, job);
        }
        unsigned pokes = l->pokes;
        pthread_mutex_unlock(&l->lock);
        bool worked = items && owner && step(l, items, owner);
        pthread_mutex_lock(&l->lock);
        /* every busy sequence is paused or parked: sleep until a resume, a
         * decision, a cancel or a job that can be admitted wakes us */
        if (!worked && l->pokes == pokes && !(l->queue_head && free_slot(l)) && !l->stopping)
            pthread_cond_wait(&l->wake, &l->lock);
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
    free(job->done_event);     /* NULL once delivered */
    free(job->features_event);
    eng_features_free(&job->feats);
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
        switch (e->kind) {
        case EV_DONE:
            pthread_mutex_lock(&l->lock);
            l->queued--;
            pthread_mutex_unlock(&l->lock);
            if (live && job->cb.on_done) job->cb.on_done(job->arg, &job->result); /* none: released, or the pass failed */
            job->done_event = NULL; /* e itself, freed below */
            job_free(job);
            break;
        case EV_FEATURES:
            job->features_event = NULL;
            if (live) job->on_features(job->arg, job->result.error ? NULL : &job->feats, job->result.error);
            break;
        case EV_TEXT:
            if (live) job->cb.on_text(job->arg, e->text, e->len, e->tokens);
            break;
        case EV_LOGPROB:
            if (live && job->cb.on_logprob) job->cb.on_logprob(job->arg, e->text, e->len);
            break;
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
    l->llama2_chat = gw_chat_template_llama2(l->model, p->chat_template);
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
    for (int i = 0; l->slots && i < l->n_slots; i++) {
        free(l->slots[i].cached);
        free(l->slots[i].last_logits);
    }
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
    *out = (gw_local_stats){l->queued - l->active, l->active, l->n_slots, l->queue_size, l->generated,
                            idle > 2.0 ? 0 : l->tokens_per_second};
    pthread_mutex_unlock(&l->lock);
}

/* The generation's settings into the job (its logit_bias and stop strings
 * copied). -1 when out of memory. */
static int set_request(gw_local_job *job, const gw_local_request *req)
{
    job->req = *req;
    int n_bias = req->sampling.n_logit_bias;
    if (n_bias > 0) {
        if (!(job->logit_bias = malloc(sizeof(eng_logit_bias) * (size_t)n_bias))) return -1;
        memcpy(job->logit_bias, req->sampling.logit_bias, sizeof(eng_logit_bias) * (size_t)n_bias);
        job->req.sampling.logit_bias = job->logit_bias;
    }
    for (int i = 0; i < req->n_stops && i < 4; i++) snprintf(job->stop_text[i], sizeof(job->stop_text[i]), "%s", req->stops[i]);
    return 0;
}

static gw_local_job *job_new(gw_local *l, const int *prompt, int n_prompt, void *arg)
{
    gw_local_job *job = calloc(1, sizeof(*job));
    if (!job) return NULL;
    job->prompt = malloc(sizeof(int) * (size_t)(n_prompt > 0 ? n_prompt : 1));
    job->done_event = calloc(1, sizeof(event_item) + 1);
    if (!job->prompt || !job->done_event) {
        job_free(job);
        return NULL;
    }
    memcpy(job->prompt, prompt, sizeof(int) * (size_t)n_prompt);
    job->n_prompt = n_prompt;
    job->l = l;
    job->arg = arg;
    return job;
}

/* Into the queue, unless it is full (n_slots running, queue_size waiting):
 * then the job is freed and NULL returned. */
static gw_local_job *enqueue(gw_local *l, gw_local_job *job)
{
    pthread_mutex_lock(&l->lock);
    if (l->queued >= l->queue_size + l->n_slots) {
        pthread_mutex_unlock(&l->lock);
        job_free(job);
        return NULL;
    }
    l->queued++;
    if (l->queue_tail) l->queue_tail->next = job;
    else l->queue_head = job;
    l->queue_tail = job;
    l->pokes++;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    return job;
}

gw_local_job *gw_local_submit(gw_local *l, const int *prompt, int n_prompt, const gw_local_request *req,
                              const gw_local_callbacks *cb, void *arg)
{
    gw_local_job *job = job_new(l, prompt, n_prompt, arg);
    if (!job) return NULL;
    if (set_request(job, req) != 0) {
        job_free(job);
        return NULL;
    }
    job->cb = *cb;
    return enqueue(l, job);
}

gw_local_job *gw_local_score(gw_local *l, const int *tokens, int n, const eng_feature_params *p,
                             gw_local_features_fn on_features, void *arg)
{
    gw_local_job *job = job_new(l, tokens, n, arg);
    if (!job) return NULL;
    if (!(job->features_event = calloc(1, sizeof(event_item) + 1))) {
        job_free(job);
        return NULL;
    }
    job->scoring = true;
    job->fp = *p;
    job->on_features = on_features;
    return enqueue(l, job);
}

/* Something the engine thread may be sleeping through happened: wake it,
 * and count it, so that it does not go to sleep after missing the news. */
static void wake_engine(gw_local *l)
{
    pthread_mutex_lock(&l->lock);
    l->pokes++;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
}

int gw_local_continue(gw_local_job *job, const int *prompt, int n_prompt, const gw_local_request *req,
                      const gw_local_callbacks *cb, void *arg)
{
    /* the engine reads neither while the job is parked */
    if (n_prompt != job->n_prompt || memcmp(prompt, job->prompt, sizeof(int) * (size_t)n_prompt)) {
        int *copy = malloc(sizeof(int) * (size_t)n_prompt);
        if (!copy) {
            gw_local_release(job);
            return -1;
        }
        memcpy(copy, prompt, sizeof(int) * (size_t)n_prompt);
        free(job->prompt);
        job->prompt = copy;
        job->n_prompt = n_prompt;
        job->reprompt = true;
    }
    if (set_request(job, req) != 0) {
        gw_local_release(job);
        return -1;
    }
    job->cb = *cb;
    job->arg = arg;
    atomic_store(&job->verdict, VERDICT_CONTINUE); /* after the request: the engine reads it once it sees this */
    wake_engine(job->l);
    return 0;
}

void gw_local_release(gw_local_job *job)
{
    atomic_store(&job->verdict, VERDICT_RELEASE);
    wake_engine(job->l);
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
