/* pseudo_messages.c: pseudonymizing a request's `messages` in place.
 *
 * The gateway has the findings per text (the detector's list of a request's
 * texts points into the cJSON), not per JSON node, and the policy module
 * must not know the detector's rules for which strings count as text. So
 * the texts are found by their string pointers, wherever they sit under
 * `messages`; every other string there (names, ids, roles) is only reserved,
 * so that nothing the client wrote can be mistaken for a placeholder. The
 * replacement is all or nothing: new strings are made first, then swapped.
 */
#include "pseudo_internal.h"

#include <stdio.h>

typedef struct {
    uintptr_t text;
    int index;
} text_ref;

typedef struct {
    pol_pseudo *p;
    const pol_text_spans *texts;
    int n;
    text_ref *order;                   /* the texts sorted by pointer */
    cJSON **nodes;                     /* the string holding each text */
    char *err;
    size_t errlen;
} walk;

static int by_pointer(const void *a, const void *b)
{
    uintptr_t x = ((const text_ref *)a)->text, y = ((const text_ref *)b)->text;
    return x < y ? -1 : x > y;
}

static int text_of(const walk *w, const char *s)
{
    text_ref key = {(uintptr_t)s, 0};
    const text_ref *r = bsearch(&key, w->order, (size_t)w->n, sizeof *w->order, by_pointer);
    return r ? r->index : -1;
}

/* Find the texts under `node` and reserve every string's tokens. */
static int visit(walk *w, cJSON *node)
{
    for (cJSON *c = node->child; c; c = c->next) {
        if (cJSON_IsString(c) && c->valuestring) {
            const char *s = c->valuestring;
            int k = text_of(w, s);
            if (k < 0) {
                if (pol_pseudo_reserve(w->p, s, strlen(s), w->err, w->errlen) != 0) return -1;
                continue;
            }
            if (w->nodes[k]) {
                snprintf(w->err, w->errlen, "pseudonymize: texts[%d] is found twice under messages (a "
                         "cJSON reference?): give each text once", k);
                return -1;
            }
            w->nodes[k] = c;
            const pol_text_spans *t = &w->texts[k];
            if (pseudo_check_and_reserve(w->p, s, strlen(s), t->spans, t->n, w->err, w->errlen) != 0) {
                size_t used = w->errlen ? strlen(w->err) : 0;
                if (w->errlen) snprintf(w->err + used, w->errlen - used, " (texts[%d])", k);
                return -1;
            }
        } else if ((cJSON_IsArray(c) || cJSON_IsObject(c)) && visit(w, c) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Pseudonymized copies of every text, as cJSON strings: all of them or none. */
static int make_copies(walk *w, cJSON **copies)
{
    for (int k = 0; k < w->n; k++) {
        const char *s = w->nodes[k]->valuestring;
        char *out;
        size_t len;
        if (pseudo_replace(w->p, s, strlen(s), w->texts[k].spans, w->texts[k].n, &out, &len, w->err,
                           w->errlen) != 0)
            return -1;
        copies[k] = cJSON_CreateString(out);
        free(out);
        if (!copies[k]) {
            snprintf(w->err, w->errlen, "pseudonymize: out of memory");
            return -1;
        }
    }
    return 0;
}

static int check_arguments(pol_pseudo *p, const cJSON *messages, const pol_text_spans *texts, int n,
                           char *err, size_t errlen)
{
    if (!p || !cJSON_IsArray(messages) || n < 0 || (n > 0 && !texts)) {
        snprintf(err, errlen, "pseudonymize: needs a mapping, a messages array and n >= 0 texts");
        return -1;
    }
    for (int k = 0; k < n; k++)
        if (!texts[k].text) {
            snprintf(err, errlen, "pseudonymize: texts[%d] has no text pointer", k);
            return -1;
        }
    return 0;
}

int pol_pseudo_apply_messages(pol_pseudo *p, cJSON *messages, const pol_text_spans *texts, int n,
                              char *err, size_t errlen)
{
    if (check_arguments(p, messages, texts, n, err, errlen) != 0) return -1;
    text_ref *order = malloc(((size_t)n + 1) * sizeof *order);
    cJSON **nodes = calloc((size_t)n + 1, sizeof *nodes);
    cJSON **copies = calloc((size_t)n + 1, sizeof *copies);
    walk w = {p, texts, n, order, nodes, err, errlen};
    int rc = -1;
    if (!order || !nodes || !copies) {
        snprintf(err, errlen, "pseudonymize: out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++) order[k] = (text_ref){(uintptr_t)texts[k].text, k};
    qsort(order, (size_t)n, sizeof *order, by_pointer);
    for (int k = 1; k < n; k++)
        if (order[k].text == order[k - 1].text) {
            snprintf(err, errlen, "pseudonymize: texts[%d] and texts[%d] are the same string: give each "
                     "text once, with all its spans", order[k - 1].index, order[k].index);
            goto done;
        }
    if (visit(&w, messages) != 0) goto done;
    for (int k = 0; k < n; k++)
        if (!nodes[k]) {
            snprintf(err, errlen, "pseudonymize: texts[%d] is not a string under messages: point at the "
                     "string itself (cls_message.text), not a copy", k);
            goto done;
        }
    if (make_copies(&w, copies) != 0) goto done;
    for (int k = 0; k < n; k++) {
        char *old = nodes[k]->valuestring;
        nodes[k]->valuestring = copies[k]->valuestring;
        copies[k]->valuestring = old;
    }
    rc = 0;
done:
    for (int k = 0; copies && k < n; k++) cJSON_Delete(copies[k]);
    free(copies);
    free(nodes);
    free(order);
    return rc;
}
