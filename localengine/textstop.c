/* textstop.c: stop strings in streamed text (see localengine.h, "Stop strings"). */
#include "localengine.h"

#include <stdlib.h>
#include <string.h>

int eng_textstop_init(eng_textstop *t, const char *const *stops, int n)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < n && t->n_stops < ENG_TEXTSTOP_MAX; i++) {
        if (!stops[i] || !stops[i][0]) continue;
        if (!(t->stops[t->n_stops++] = strdup(stops[i]))) {
            eng_textstop_free(t);
            return -1;
        }
    }
    return 0;
}

void eng_textstop_free(eng_textstop *t)
{
    for (int i = 0; i < t->n_stops; i++) free(t->stops[i]);
    free(t->text);
    memset(t, 0, sizeof(*t));
}

bool eng_textstop_add(eng_textstop *t, const char *piece, size_t n, const char **out, size_t *out_len)
{
    *out = "";
    *out_len = 0;
    if (t->stopped) return true;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *p = realloc(t->text, cap);
        if (!p) return t->stopped = true;
        t->text = p;
        t->cap = cap;
    }
    memcpy(t->text + t->len, piece, n);
    t->len += n;
    t->text[t->len] = '\0';
    size_t hold = 0;
    for (int i = 0; i < t->n_stops; i++) {
        const char *hit = strstr(t->text + t->released, t->stops[i]);
        if (hit) {
            *out = t->text + t->released;
            *out_len = (size_t)(hit - t->text) - t->released;
            t->released = t->len;
            return t->stopped = true;
        }
        /* the longest tail that could still grow into this stop string */
        size_t sl = strlen(t->stops[i]);
        for (size_t k = sl - 1; k > hold; k--)
            if (t->len - t->released >= k && !memcmp(t->text + t->len - k, t->stops[i], k)) { hold = k; break; }
    }
    *out = t->text + t->released;
    *out_len = t->len - hold - t->released;
    t->released = t->len - hold;
    return false;
}

void eng_textstop_flush(eng_textstop *t, const char **out, size_t *out_len)
{
    *out = t->text ? t->text + t->released : "";
    *out_len = t->stopped ? 0 : t->len - t->released;
    t->released = t->len;
}
