/* unpseudonymize.c: the values back into the answer, as it streams.
 *
 * An answer arrives in chunks cut anywhere, so "<EMA" may end one chunk and
 * "IL_1>" start the next. The restorer sends at once everything that cannot
 * be part of a placeholder and holds back only a suffix that still may be
 * (at most POL_UNPSEUDO_HOLD_MAX bytes), deciding it when the next chunk or
 * the end comes. What it meets is counted, for the ledger row: placeholders
 * restored, mangled ones (restored when the brackets survive, which makes
 * them unmistakable; left alone when bare, since "EMAIL_1" may as well be a
 * name in code the model wrote), and ones never issued.
 */
#include "pseudo_internal.h"

#include <stdio.h>

struct pol_unpseudo {
    const pol_pseudo *p;
    char held[POL_UNPSEUDO_HOLD_MAX];
    size_t n_held;
    bool prev_word;                    /* the byte before held[0] is a word byte */
    bool finished;
    pseudo_buf work;                   /* held + the new chunk */
    pseudo_buf out;
    pol_unpseudo_counts counts;
};

static int out_of_memory(char *err, size_t errlen)
{
    snprintf(err, errlen, "unpseudonymize: out of memory");
    return -1;
}

int pol_unpseudo_new(pol_unpseudo **out, const pol_pseudo *p, char *err, size_t errlen)
{
    *out = NULL;
    if (!p) {
        snprintf(err, errlen, "unpseudonymize: needs the request's mapping (pol_pseudo)");
        return -1;
    }
    pol_unpseudo *u = calloc(1, sizeof *u);
    if (!u) return out_of_memory(err, errlen);
    u->p = p;
    *out = u;
    return 0;
}

void pol_unpseudo_free(pol_unpseudo *u)
{
    if (!u) return;
    free(u->work.data);
    free(u->out.data);
    free(u);
}

void pol_unpseudo_report(const pol_unpseudo *u, pol_unpseudo_counts *out)
{
    *out = u->counts;
}

/* Add the kind to the report's list, once, when it fits. */
static void note_kind(pol_unpseudo_counts *c, const char *kind)
{
    size_t n = strlen(kind), used = strlen(c->kinds);
    for (const char *s = c->kinds; *s;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == n && memcmp(s, kind, n) == 0) return;
        s += len + (end ? 1 : 0);
    }
    if (used + (used ? 1 : 0) + n + 1 > sizeof c->kinds) return;
    snprintf(c->kinds + used, sizeof c->kinds - used, "%s%s", used ? "," : "", kind);
}

/* What to write for a token (the value, or the token as written) and what to count. */
static int emit(pol_unpseudo *u, const pseudo_shape *t, const char *token)
{
    const pseudo_entry *e = pseudo_find_number(u->p, t->kind, t->number);
    bool issued = e && e->value;
    int64_t *count = NULL;
    if (issued) count = t->form == FORM_EXACT ? &u->counts.restored
                      : t->form == FORM_LOOSE ? &u->counts.mangled_restored : &u->counts.mangled;
    else if (!e && t->form != FORM_BARE) count = &u->counts.unknown;
    if (count) (*count)++;
    if (count && count != &u->counts.restored) note_kind(&u->counts, u->p->kinds[t->kind]);
    if (issued && t->form != FORM_BARE) return pseudo_buf_add(&u->out, e->value, e->len);
    return pseudo_buf_add(&u->out, token, t->len);
}

/* Restore s[0..n) into u->out; keep what is undecided at the end in u->held. */
static int restore(pol_unpseudo *u, const char *s, size_t n, bool final, char *err, size_t errlen)
{
    u->out.len = 0;
    int rc = pseudo_buf_add(&u->out, "", 0);
    bool prev = u->prev_word;
    size_t i = 0, plain = 0;
    while (i < n && rc == 0) {
        unsigned char c = (unsigned char)s[i];
        pseudo_shape t;
        pseudo_shape_result r = pseudo_may_start(c, prev)
            ? pseudo_shape_at(u->p, s + i, n - i, prev, final, &t) : SHAPE_NONE;
        if (r == SHAPE_MORE) break;
        if (r == SHAPE_FOUND) {
            rc = pseudo_buf_add(&u->out, s + plain, i - plain);
            if (rc == 0) rc = emit(u, &t, s + i);
            i += t.len;
            plain = i;
        } else {
            i++;
        }
        prev = pseudo_word_byte((unsigned char)s[i - 1]);
    }
    if (rc == 0) rc = pseudo_buf_add(&u->out, s + plain, i - plain);
    if (rc != 0) return out_of_memory(err, errlen);
    u->n_held = n - i;
    memcpy(u->held, s + i, u->n_held);
    u->prev_word = prev;
    return 0;
}

int pol_unpseudo_feed(pol_unpseudo *u, const char *chunk, size_t len, const char **out, size_t *out_len,
                      char *err, size_t errlen)
{
    *out = "";
    *out_len = 0;
    if (u->finished || (!chunk && len)) {
        snprintf(err, errlen, u->finished ? "unpseudonymize: the answer was already finished"
                                          : "unpseudonymize: a chunk of %zu bytes without data", len);
        return -1;
    }
    u->work.len = 0;
    if (pseudo_buf_add(&u->work, u->held, u->n_held) != 0 || pseudo_buf_add(&u->work, chunk, len) != 0)
        return out_of_memory(err, errlen);
    if (restore(u, u->work.data, u->work.len, false, err, errlen) != 0) return -1;
    *out = u->out.data;
    *out_len = u->out.len;
    return 0;
}

int pol_unpseudo_finish(pol_unpseudo *u, const char **out, size_t *out_len, char *err, size_t errlen)
{
    *out = "";
    *out_len = 0;
    if (u->finished) {
        snprintf(err, errlen, "unpseudonymize: the answer was already finished");
        return -1;
    }
    char held[POL_UNPSEUDO_HOLD_MAX];
    size_t n = u->n_held;
    memcpy(held, u->held, n);
    if (restore(u, held, n, true, err, errlen) != 0) return -1;
    u->finished = true;
    *out = u->out.data;
    *out_len = u->out.len;
    return 0;
}

int pol_unpseudo_text(const pol_pseudo *p, const char *text, size_t len, char **out, size_t *out_len,
                      pol_unpseudo_counts *counts, char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    pol_unpseudo *u;
    if (pol_unpseudo_new(&u, p, err, errlen) != 0) return -1;
    pseudo_buf all = {NULL, 0, 0};
    const char *part;
    size_t n;
    int rc = pol_unpseudo_feed(u, text, len, &part, &n, err, errlen);
    if (rc == 0 && pseudo_buf_add(&all, part, n) != 0) rc = out_of_memory(err, errlen);
    if (rc == 0) rc = pol_unpseudo_finish(u, &part, &n, err, errlen);
    if (rc == 0 && pseudo_buf_add(&all, part, n) != 0) rc = out_of_memory(err, errlen);
    if (rc == 0 && counts) pol_unpseudo_report(u, counts);
    pol_unpseudo_free(u);
    if (rc != 0) {
        free(all.data);
        return -1;
    }
    *out = all.data;
    *out_len = all.len;
    return 0;
}
