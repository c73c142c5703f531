/* ratelimit.c: requests and tokens per minute per key, as token buckets.
 *
 * A bucket holds a minute's worth (rpm requests, tpm tokens) and refills
 * continuously, so a key may burst up to its limit and then gets its rate.
 * Levels are integers scaled by 60000 (units × ms per minute): refilling by
 * `elapsed_ms × limit` is then exact, with no floating point drifting. A
 * request takes from both buckets or from neither; tokens are taken as
 * prompt + max tokens and the difference to the real count is given back
 * (or taken) when the request ends. The numbers returned are those of
 * OpenAI's x-ratelimit-* headers. Loop thread only: no locks.
 */
#include "policy.h"

#include <stdlib.h>
#include <string.h>

#define SCALE INT64_C(60000)        /* ms per minute */

typedef struct {
    char key_id[24];
    int64_t rpm, tpm;               /* the limits the levels were made for */
    int64_t requests, tokens;       /* levels × SCALE; tokens may go below 0 (debt) */
    int64_t last_ms;
} bucket;

struct pol_rate {
    bucket *buckets;                /* sorted by key_id */
    size_t n, cap;
};

int pol_rate_new(pol_rate **out, char *err, size_t errlen)
{
    *out = calloc(1, sizeof(**out));
    if (*out) return 0;
    snprintf(err, errlen, "rate limits: out of memory");
    return -1;
}

void pol_rate_free(pol_rate *r)
{
    if (!r) return;
    free(r->buckets);
    free(r);
}

static size_t position(const pol_rate *r, const char *key_id, bool *found)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key_id, r->buckets[mid].key_id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    *found = false;
    return lo;
}

/* Refill to now; a new limit (the key was changed) rescales the level. */
static void refill(bucket *b, int64_t rpm, int64_t tpm, int64_t now_ms)
{
    const struct {
        int64_t *level, *limit, new_limit;
    } both[] = {{&b->requests, &b->rpm, rpm}, {&b->tokens, &b->tpm, tpm}};
    int64_t elapsed = now_ms - b->last_ms;
    if (elapsed < 0) elapsed = 0;
    if (elapsed > 2 * SCALE) elapsed = 2 * SCALE;   /* two minutes refill any bucket, from its deepest debt */
    for (size_t i = 0; i < 2; i++) {
        int64_t cap = both[i].new_limit * SCALE;
        if (*both[i].limit != both[i].new_limit) {
            if (*both[i].limit == 0) *both[i].level = cap;   /* a new limit starts full */
            *both[i].limit = both[i].new_limit;
        }
        *both[i].level += elapsed * both[i].new_limit;
        if (*both[i].level > cap) *both[i].level = cap;
    }
    if (now_ms > b->last_ms) b->last_ms = now_ms;
}

static bucket *obtain(pol_rate *r, const pol_key *key, int64_t now_ms)
{
    bool found;
    size_t i = position(r, key->id, &found);
    if (!found) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 64;
            bucket *bigger = realloc(r->buckets, cap * sizeof(*bigger));
            if (!bigger) return NULL;
            r->buckets = bigger;
            r->cap = cap;
        }
        memmove(&r->buckets[i + 1], &r->buckets[i], (r->n - i) * sizeof(*r->buckets));
        r->n++;
        bucket *b = &r->buckets[i];
        memset(b, 0, sizeof(*b));
        snprintf(b->key_id, sizeof(b->key_id), "%s", key->id);
        b->last_ms = now_ms;
    }
    refill(&r->buckets[i], key->rpm, key->tpm, now_ms);
    return &r->buckets[i];
}

/* ms until `level` reaches `need` at `limit` units per minute (0 if it has). */
static int64_t wait_ms(int64_t level, int64_t need, int64_t limit)
{
    return level >= need ? 0 : (need - level + limit - 1) / limit;
}

static void report(const bucket *b, pol_rate_verdict *v)
{
    const struct {
        int64_t limit, level;
        int64_t *out_limit, *out_remaining, *out_reset;
    } both[] = {
        {b->rpm, b->requests, &v->limit_requests, &v->remaining_requests, &v->reset_requests_ms},
        {b->tpm, b->tokens, &v->limit_tokens, &v->remaining_tokens, &v->reset_tokens_ms},
    };
    for (size_t i = 0; i < 2; i++) {
        if (both[i].limit == 0) continue;
        *both[i].out_limit = both[i].limit;
        *both[i].out_remaining = both[i].level > 0 ? both[i].level / SCALE : 0;
        *both[i].out_reset = wait_ms(both[i].level, both[i].limit * SCALE, both[i].limit);
    }
}

int pol_rate_take(pol_rate *r, const pol_key *key, int64_t tokens, int64_t now_ms,
                  pol_rate_verdict *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof(*v));
    v->limit_requests = v->remaining_requests = v->limit_tokens = v->remaining_tokens = -1;
    if (tokens < 0) {
        snprintf(err, errlen, "rate limits: a token count cannot be negative (%lld)", (long long)tokens);
        return -1;
    }
    v->allowed = true;
    if (!key || (key->rpm <= 0 && key->tpm <= 0)) return 0;
    bucket *b = obtain(r, key, now_ms);
    if (!b) {
        snprintf(err, errlen, "rate limits: out of memory");
        return -1;
    }
    if (b->tpm > 0 && tokens > b->tpm) {
        v->allowed = false;
        v->too_large = true;
        report(b, v);
        return 0;
    }
    int64_t need_requests = b->rpm > 0 ? SCALE : 0, need_tokens = b->tpm > 0 ? tokens * SCALE : 0;
    int64_t wait = b->rpm > 0 ? wait_ms(b->requests, need_requests, b->rpm) : 0;
    int64_t wait_tokens = b->tpm > 0 ? wait_ms(b->tokens, need_tokens, b->tpm) : 0;
    if (wait_tokens > wait) wait = wait_tokens;
    if (wait > 0) {
        v->allowed = false;
        v->retry_after_s = (int)((wait + 999) / 1000);
    } else {
        b->requests -= need_requests;
        b->tokens -= need_tokens;
    }
    report(b, v);
    return 0;
}

void pol_rate_settle(pol_rate *r, const char *key_id, int64_t reserved_tokens, int64_t actual_tokens,
                     int64_t now_ms)
{
    bool found;
    size_t i = position(r, key_id, &found);
    if (!found || r->buckets[i].tpm == 0) return;
    bucket *b = &r->buckets[i];
    refill(b, b->rpm, b->tpm, now_ms);
    /* at most a minute's worth either way, and at most a minute of debt: counts
       beyond that are not believable */
    int64_t diff = reserved_tokens - actual_tokens;
    if (diff > b->tpm) diff = b->tpm;
    if (diff < -b->tpm) diff = -b->tpm;
    b->tokens += diff * SCALE;
    if (b->tokens > b->tpm * SCALE) b->tokens = b->tpm * SCALE;
    if (b->tokens < -b->tpm * SCALE) b->tokens = -b->tpm * SCALE;
}

void pol_rate_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 0) ms = 0;
    if (ms < 1000) {
        snprintf(buf, len, "%lldms", (long long)ms);
        return;
    }
    long long s = (long long)((ms + 999) / 1000);
    if (s >= 3600) snprintf(buf, len, "%lldh%lldm%llds", s / 3600, s / 60 % 60, s % 60);
    else if (s >= 60) snprintf(buf, len, "%lldm%llds", s / 60, s % 60);
    else snprintf(buf, len, "%llds", s);
}
