/* sampler.c: choosing the next token from the logits.
 *
 * Order, as llama.cpp applies it: the caller's logit bias (OpenAI's
 * logit_bias), penalties on recent tokens (repetition,
 * frequency, presence), then greedy if temperature is 0, else top-k, top-p,
 * min-p, temperature, and a draw from a seeded PRNG so that a seed makes a
 * run reproducible.
 */
#include "localengine.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_sampler {
    eng_sampling p;
    int n_vocab;
    int *recent;          /* ring of the last penalty_last_n tokens */
    int n_recent, head;
    uint64_t rng;
    float *work;          /* penalized logits */
    int *order;           /* candidate ids, sorted by logit */
    float *prob;
    eng_logit_bias *bias;  /* the caller's logit_bias, copied */
};

void eng_sampling_defaults(eng_sampling *s)
{
    memset(s, 0, sizeof(*s));
    s->temperature = 0.8f;
    s->top_k = 40;
    s->top_p = 0.95f;
    s->min_p = 0.05f;
    s->repeat_penalty = 1.0f;
    s->penalty_last_n = 64;
    s->seed = 0x9e3779b97f4a7c15ULL;
}

int eng_sampling_check(const eng_model *m, const eng_sampling *s, char *err, size_t errlen)
{
    if (s->n_logit_bias < 0 || (s->n_logit_bias > 0 && !s->logit_bias)) {
        snprintf(err, errlen, "logit_bias: %d entries given without a list", s->n_logit_bias);
        return -1;
    }
    for (int i = 0; i < s->n_logit_bias; i++) {
        const eng_logit_bias *b = &s->logit_bias[i];
        if (b->token < 0 || b->token >= m->info.n_vocab) {
            snprintf(err, errlen, "logit_bias: token id %d is outside the model's vocabulary (0..%d)", b->token,
                     m->info.n_vocab - 1);
            return -1;
        }
        if (!(b->bias >= -100.0f && b->bias <= 100.0f)) {
            snprintf(err, errlen, "logit_bias: the bias for token %d must be a number from -100 to 100", b->token);
            return -1;
        }
    }
    return 0;
}

int eng_sampler_new(eng_sampler **out, const eng_model *m, const eng_sampling *p)
{
    char err[128];
    if (eng_sampling_check(m, p, err, sizeof(err)) != 0) return -1;
    eng_sampler *s = calloc(1, sizeof(*s));
    if (!s) return -1;
    s->p = *p;
    if (p->n_logit_bias > 0) {
        s->bias = malloc(sizeof(eng_logit_bias) * (size_t)p->n_logit_bias);
        if (!s->bias) {
            free(s);
            return -1;
        }
        memcpy(s->bias, p->logit_bias, sizeof(eng_logit_bias) * (size_t)p->n_logit_bias);
    }
    s->p.logit_bias = s->bias;
    s->n_vocab = m->info.n_vocab;
    if (s->p.penalty_last_n < 0) s->p.penalty_last_n = 0;
    s->recent = calloc((size_t)s->p.penalty_last_n + 1, sizeof(int));
    s->work = malloc(sizeof(float) * (size_t)s->n_vocab);
    s->order = malloc(sizeof(int) * (size_t)s->n_vocab);
    s->prob = malloc(sizeof(float) * (size_t)s->n_vocab);
    s->rng = p->seed ? p->seed : 1;
    if (!s->recent || !s->work || !s->order || !s->prob) {
        eng_sampler_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void eng_sampler_free(eng_sampler *s)
{
    if (!s) return;
    free(s->recent);
    free(s->work);
    free(s->order);
    free(s->prob);
    free(s->bias);
    free(s);
}

void eng_sampler_accept(eng_sampler *s, int token)
{
    if (s->p.penalty_last_n == 0) return;
    s->recent[s->head] = token;
    s->head = (s->head + 1) % s->p.penalty_last_n;
    if (s->n_recent < s->p.penalty_last_n) s->n_recent++;
}

static uint64_t next_random(uint64_t *x)
{
    /* xorshift64* */
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1DULL;
}

static const float *sort_logits;
static int by_logit_desc(const void *a, const void *b)
{
    float x = sort_logits[*(const int *)a], y = sort_logits[*(const int *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

static void apply_penalties(eng_sampler *s, float *l)
{
    const eng_sampling *p = &s->p;
    if (s->n_recent == 0 || (p->repeat_penalty == 1.0f && p->frequency_penalty == 0 && p->presence_penalty == 0)) return;
    /* count each recent token once per occurrence */
    for (int i = 0; i < s->n_recent; i++) {
        int t = s->recent[i], count = 0, first = 1;
        for (int j = 0; j < s->n_recent; j++) {
            if (s->recent[j] == t) {
                count++;
                if (j < i) first = 0;
            }
        }
        if (!first) continue;
        if (p->repeat_penalty != 1.0f) l[t] = l[t] > 0 ? l[t] / p->repeat_penalty : l[t] * p->repeat_penalty;
        l[t] -= (float)count * p->frequency_penalty + p->presence_penalty;
    }
}

int eng_sampler_sample(eng_sampler *s, const float *logits)
{
    const eng_sampling *p = &s->p;
    int V = s->n_vocab;
    float *l = s->work;
    memcpy(l, logits, sizeof(float) * (size_t)V);
    for (int i = 0; i < p->n_logit_bias; i++) l[p->logit_bias[i].token] += p->logit_bias[i].bias;
    apply_penalties(s, l);

    int best = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[best]) best = i;
    if (p->temperature <= 0) {
        eng_sampler_accept(s, best);
        return best;
    }
    /* Candidates sorted by logit; top-k cuts the list first. */
    for (int i = 0; i < V; i++) s->order[i] = i;
    sort_logits = l;
    qsort(s->order, (size_t)V, sizeof(int), by_logit_desc);
    int n = p->top_k > 0 && p->top_k < V ? p->top_k : V;

    /* min-p: keep tokens whose probability is at least min_p of the best's. */
    if (p->min_p > 0) {
        float cut = l[best] + logf(p->min_p);
        int keep = 1;
        while (keep < n && l[s->order[keep]] >= cut) keep++;
        n = keep;
    }
    /* top-p over the softmax at temperature 1, as llama.cpp's sampler chain does. */
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (s->prob[i] = expf(l[s->order[i]] - l[best]));
    if (p->top_p < 1.0f) {
        double acc = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            acc += s->prob[i] / sum;
            if (acc >= p->top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    /* temperature, then draw */
    sum = 0;
    for (int i = 0; i < n; i++) sum += (s->prob[i] = expf((l[s->order[i]] - l[best]) / p->temperature));
    double r = (double)(next_random(&s->rng) >> 11) / 9007199254740992.0 * sum;
    int pick = s->order[n - 1];
    for (int i = 0; i < n; i++) {
        r -= s->prob[i];
        if (r < 0) { pick = s->order[i]; break; }
    }
    eng_sampler_accept(s, pick);
    return pick;
}
