/* sticky.c: conversations stay on the highest tier they reached.
 *
 * Routing each turn alone makes a chat bounce between models: a hard first
 * question goes to the frontier, the easy follow-up comes home and answers
 * without the frontier's context in its style. So a conversation keeps the
 * highest tier it has reached (local < private < external) for
 * routing.sticky_idle_s, unless sensitivity now forbids that tier (the
 * caller checks the zone gate). A conversation is named by the client's
 * X-Junction-Session header, else its `user` field, else by its messages:
 * a turn is stored under a hash of all its messages, and the next turn
 * finds it under a hash of its messages before the newest exchange. The
 * table is bounded (least recently used entries go first) and lives on the
 * loop thread.
 */
#include "sticky.h"

#include <stdlib.h>
#include <string.h>

#define STICKY_CAPACITY 16384

typedef struct entry {
    uint64_t key;
    int tier;
    char route[64];
    uint64_t seen_ns;
    struct entry *prev, *next;   /* LRU order: head is the most recent */
    struct entry *chain;         /* hash bucket */
} entry;

struct gw_sticky {
    entry *buckets[STICKY_CAPACITY];
    entry *head, *tail;
    int n;
    double idle_s;
};

int gw_sticky_new(gw_sticky **out, double idle_s)
{
    *out = idle_s > 0 ? calloc(1, sizeof(**out)) : NULL;
    if (*out) (*out)->idle_s = idle_s;
    return idle_s > 0 && !*out ? -1 : 0;
}

void gw_sticky_free(gw_sticky *s)
{
    if (!s) return;
    for (entry *e = s->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    free(s);
}

/* FNV-1a, continued over several pieces. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static uint64_t hash_messages(const cJSON *messages, int count)
{
    uint64_t h = 1469598103934665603ULL;
    int i = 0;
    for (const cJSON *m = messages ? messages->child : NULL; m && i < count; m = m->next, i++) {
        char *text = cJSON_PrintUnformatted(m);
        if (text) h = fnv(h, text, strlen(text));
        cJSON_free(text);
        h = fnv(h, "\x1e", 1);
    }
    return h;
}

static uint64_t hash_string(const char *kind, const char *s)
{
    uint64_t h = fnv(1469598103934665603ULL, kind, strlen(kind));
    return fnv(h, s, strlen(s));
}

void gw_sticky_keys(const gw_request *r, const cJSON *body, uint64_t *lookup, uint64_t *store)
{
    const char *session = evhttp_find_header(evhttp_request_get_input_headers(r->req), "X-Junction-Session");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(body, "user");
    if (session && session[0]) {
        *lookup = *store = hash_string("session", session);
        return;
    }
    if (cJSON_IsString(user) && user->valuestring[0]) {
        *lookup = *store = hash_string("user", user->valuestring);
        return;
    }
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
    int n = cJSON_GetArraySize(messages);
    /* the newest exchange: the last user message and the assistant answer before it */
    int earlier = n;
    const cJSON *last = cJSON_GetArrayItem(messages, n - 1);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(last, "role");
    if (cJSON_IsString(role) && !strcmp(role->valuestring, "user")) earlier--;
    const cJSON *prev = cJSON_GetArrayItem(messages, earlier - 1);
    role = cJSON_GetObjectItemCaseSensitive(prev, "role");
    if (earlier > 0 && cJSON_IsString(role) && !strcmp(role->valuestring, "assistant")) earlier--;
    *lookup = earlier > 0 ? hash_messages(messages, earlier) : 0; /* a first turn has no past */
    *store = hash_messages(messages, n);
}

static entry **slot_of(gw_sticky *s, uint64_t key)
{
    entry **p = &s->buckets[key % STICKY_CAPACITY];
    while (*p && (*p)->key != key) p = &(*p)->chain;
    return p;
}

static void unlink_lru(gw_sticky *s, entry *e)
{
    if (e->prev) e->prev->next = e->next;
    else s->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(gw_sticky *s, entry *e)
{
    e->next = s->head;
    if (s->head) s->head->prev = e;
    s->head = e;
    if (!s->tail) s->tail = e;
}

static void drop(gw_sticky *s, entry *e)
{
    unlink_lru(s, e);
    *slot_of(s, e->key) = e->chain;
    s->n--;
    free(e);
}

bool gw_sticky_find(gw_sticky *s, uint64_t key, int *tier, char *route, size_t len)
{
    if (!s || !key) return false;
    entry *e = *slot_of(s, key);
    if (!e) return false;
    if ((double)(gw_now_ns() - e->seen_ns) / 1e9 > s->idle_s) { /* idle too long: routed afresh */
        drop(s, e);
        return false;
    }
    *tier = e->tier;
    snprintf(route, len, "%s", e->route);
    return true;
}

void gw_sticky_store(gw_sticky *s, uint64_t lookup, uint64_t key, int tier, const char *route)
{
    if (!s || !key) return;
    /* the conversation's tier so far carries over to its new name */
    int past = -1;
    char past_route[64] = "";
    if (lookup && lookup != key && gw_sticky_find(s, lookup, &past, past_route, sizeof(past_route)) && past > tier) {
        tier = past;
        route = past_route;
    }
    entry **p = slot_of(s, key);
    entry *e = *p;
    if (e) {
        unlink_lru(s, e);
        if (tier < e->tier) { /* never lower a conversation's tier */
            tier = e->tier;
            route = NULL;
        }
    } else {
        if (s->n >= STICKY_CAPACITY) drop(s, s->tail);
        if (!(e = calloc(1, sizeof(*e)))) return; /* stickiness is best effort */
        e->key = key;
        p = slot_of(s, key); /* the drop may have changed the chain */
        e->chain = *p;
        *p = e;
        s->n++;
    }
    e->tier = tier;
    if (route) snprintf(e->route, sizeof(e->route), "%s", route);
    e->seen_ns = gw_now_ns();
    push_front(s, e);
}

int gw_sticky_tier(const char *zone)
{
    static const char *const tiers[] = {"in-process", "private", "external"};
    for (int i = 0; i < 3; i++)
        if (zone && !strcmp(zone, tiers[i])) return i;
    return 0;
}
