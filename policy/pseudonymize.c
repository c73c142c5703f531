/* pseudonymize.c: findings out, placeholders in, one numbering per request.
 *
 * A prompt may leave the trusted zones without the personal data in it: each
 * finding of a kind the operator allows becomes "<KIND_N>", the same value
 * always the same placeholder across every text of the conversation (so the
 * model can still tell two people apart and refer back to them), and the
 * restorer (unpseudonymize.c) puts the values back into the answer. Secrets
 * are never pseudonymized: a key that leaves as a placeholder still tells
 * the provider there was one, and a mistake there costs too much.
 *
 * Text that already looks like a placeholder ("<EMAIL_1>" typed by the user)
 * must come back unchanged. Such tokens are reserved before any placeholder
 * is issued, and numbering skips them, so the restorer can tell them apart.
 */
#include "pseudo_internal.h"

#include <stdio.h>

/* Kinds that configuration can never allow. */
static const char *const never_kinds[] = {
    "private_key", "aws_access_key", "aws_secret_key", "github_token", "gitlab_token",
    "slack_token", "stripe_key", "google_api_key", "openai_key", "anthropic_key", "jwt",
    "bearer_token", "connection_string", "password", "secret",
};

/* Kinds whose values are the same whatever their case. */
static const char *const folded_kinds[] = {"email"};

static bool listed(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0) return true;
    return false;
}

#define LISTED(list, name) listed(list, sizeof(list) / sizeof(list[0]), name)

static bool kind_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PSEUDO_KIND_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

static int kind_index(const pol_pseudo *p, const char *name)
{
    for (int k = 0; k < p->n_kinds; k++)
        if (strcmp(p->kinds[k], name) == 0) return k;
    return -1;
}

int pol_pseudo_new(pol_pseudo **out, const char *const *allowed_kinds, int n, char *err, size_t errlen)
{
    *out = NULL;
    if (n < 0 || n > POL_PSEUDO_MAX_KINDS) {
        snprintf(err, errlen, "pseudonymize: %d kinds given; allow 0 to %d kinds", n, POL_PSEUDO_MAX_KINDS);
        return -1;
    }
    if (n > 0 && !allowed_kinds) {
        snprintf(err, errlen, "pseudonymize: %d kinds announced but no list of names given", n);
        return -1;
    }
    pol_pseudo *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "pseudonymize: out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *name = allowed_kinds[i];
        if (!name || !kind_name_ok(name)) {
            snprintf(err, errlen, "pseudonymize: kind %d (\"%.80s\") is not a kind name: use 1 to %d "
                     "characters of a-z, 0-9 and _ (e.g. \"email\", \"person\")", i, name ? name : "(null)",
                     PSEUDO_KIND_MAX);
            free(p);
            return -1;
        }
        if (LISTED(never_kinds, name)) {
            snprintf(err, errlen, "pseudonymize: kind \"%s\" is a secret and can never be pseudonymized: "
                     "remove it from the allowed kinds (prompts holding one stay in the allowed zones)", name);
            free(p);
            return -1;
        }
        if (kind_index(p, name) >= 0) continue;
        int k = p->n_kinds++;
        memcpy(p->kinds[k], name, strlen(name) + 1);
        p->kind_len[k] = strlen(name);
        p->folded[k] = LISTED(folded_kinds, name);
        p->next[k] = 1;
    }
    *out = p;
    return 0;
}

void pol_pseudo_free(pol_pseudo *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_entries; i++) free(p->entries[i].value);
    free(p->entries);
    free(p->by_value);
    free(p->by_number);
    free(p);
}

bool pol_pseudo_allowed(const pol_pseudo *p, const char *kind)
{
    return p && kind && kind_index(p, kind) >= 0;
}

int pol_pseudo_values(const pol_pseudo *p)
{
    return p ? p->n_values : 0;
}

/* ---- the two indexes ---- */

static unsigned char fold(bool folded, unsigned char c)
{
    return folded && c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static uint64_t hash_value(const pol_pseudo *p, int kind, const char *v, size_t len)
{
    uint64_t h = 14695981039346656037ULL ^ (uint64_t)kind;
    for (size_t i = 0; i < len; i++) h = (h ^ fold(p->folded[kind], (unsigned char)v[i])) * 1099511628211ULL;
    return h;
}

static uint64_t hash_number(int kind, uint32_t number)
{
    uint64_t h = ((uint64_t)kind << 32 | number) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

static bool same_value(const pol_pseudo *p, const pseudo_entry *e, int kind, const char *v, size_t len)
{
    if (e->kind != kind || !e->value || e->len != len) return false;
    for (size_t i = 0; i < len; i++)
        if (fold(p->folded[kind], (unsigned char)e->value[i]) != fold(p->folded[kind], (unsigned char)v[i]))
            return false;
    return true;
}

static const pseudo_entry *find_value(const pol_pseudo *p, int kind, const char *v, size_t len)
{
    if (!p->slots) return NULL;
    for (size_t s = hash_value(p, kind, v, len) & (p->slots - 1);; s = (s + 1) & (p->slots - 1)) {
        int i = p->by_value[s];
        if (i < 0) return NULL;
        if (same_value(p, &p->entries[i], kind, v, len)) return &p->entries[i];
    }
}

const pseudo_entry *pseudo_find_number(const pol_pseudo *p, int kind, uint32_t number)
{
    if (!p->slots) return NULL;
    for (size_t s = hash_number(kind, number) & (p->slots - 1);; s = (s + 1) & (p->slots - 1)) {
        int i = p->by_number[s];
        if (i < 0) return NULL;
        if (p->entries[i].kind == kind && p->entries[i].number == number) return &p->entries[i];
    }
}

static void index_entry(pol_pseudo *p, int i)
{
    const pseudo_entry *e = &p->entries[i];
    size_t mask = p->slots - 1, s = hash_number(e->kind, e->number) & mask;
    while (p->by_number[s] >= 0) s = (s + 1) & mask;
    p->by_number[s] = i;
    if (!e->value) return;
    for (s = hash_value(p, e->kind, e->value, e->len) & mask; p->by_value[s] >= 0; s = (s + 1) & mask) {}
    p->by_value[s] = i;
}

/* Room for one more entry: the array and, at half load, both indexes doubled. */
static int make_room(pol_pseudo *p)
{
    if (p->n_entries == p->cap_entries) {
        int cap = p->cap_entries ? 2 * p->cap_entries : 16;
        pseudo_entry *e = realloc(p->entries, (size_t)cap * sizeof *e);
        if (!e) return -1;
        p->entries = e;
        p->cap_entries = cap;
    }
    if ((size_t)(p->n_entries + 1) * 2 <= p->slots) return 0;
    size_t slots = p->slots ? 2 * p->slots : 64;
    int *v = malloc(slots * sizeof *v), *n = malloc(slots * sizeof *n);
    if (!v || !n) {
        free(v);
        free(n);
        return -1;
    }
    memset(v, 0xff, slots * sizeof *v);
    memset(n, 0xff, slots * sizeof *n);
    free(p->by_value);
    free(p->by_number);
    p->by_value = v;
    p->by_number = n;
    p->slots = slots;
    for (int i = 0; i < p->n_entries; i++) index_entry(p, i);
    return 0;
}

static int add_entry(pol_pseudo *p, pseudo_entry e, char *err, size_t errlen)
{
    if (make_room(p) != 0) {
        free(e.value);
        snprintf(err, errlen, "pseudonymize: out of memory");
        return -1;
    }
    p->entries[p->n_entries] = e;
    index_entry(p, p->n_entries++);
    if (e.value) p->n_values++;
    else p->n_reserved++;
    return 0;
}

/* ---- reserving the client's own placeholder-like tokens ---- */

static int reserve_token(pol_pseudo *p, const pseudo_shape *t, const char *text, char *err, size_t errlen)
{
    const pseudo_entry *e = pseudo_find_number(p, t->kind, t->number);
    if (e && e->value) {
        snprintf(err, errlen, "pseudonymize: the text holds \"%.*s\", the placeholder of another value: "
                 "reserve every text of the conversation (pol_pseudo_reserve) before the first "
                 "pol_pseudo_apply", (int)t->len, text);
        return -1;
    }
    if (e) return 0;
    if (p->n_reserved >= POL_PSEUDO_MAX_RESERVED) {
        snprintf(err, errlen, "pseudonymize: the texts hold more than %d placeholder-like tokens "
                 "(such as \"%.*s\"): keep this request in the allowed zones",
                 POL_PSEUDO_MAX_RESERVED, (int)t->len, text);
        return -1;
    }
    return add_entry(p, (pseudo_entry){t->kind, t->number, NULL, 0}, err, errlen);
}

/* Reserve the tokens of text[0..len), read as if a non-word byte came before
 * and after it (a placeholder's brackets do, between spans). */
static int reserve_range(pol_pseudo *p, const char *text, size_t len, char *err, size_t errlen)
{
    bool prev = false;
    for (size_t i = 0; i < len;) {
        pseudo_shape t;
        if (pseudo_may_start((unsigned char)text[i], prev) &&
            pseudo_shape_at(p, text + i, len - i, prev, true, &t) == SHAPE_FOUND) {
            if (reserve_token(p, &t, text + i, err, errlen) != 0) return -1;
            i += t.len;
        } else {
            i++;
        }
        prev = pseudo_word_byte((unsigned char)text[i - 1]);
    }
    return 0;
}

int pol_pseudo_reserve(pol_pseudo *p, const char *text, size_t len, char *err, size_t errlen)
{
    if (!p || (!text && len)) {
        snprintf(err, errlen, "pseudonymize: reserve needs a mapping and a text");
        return -1;
    }
    return reserve_range(p, text, len, err, errlen);
}

/* ---- spans ---- */

static bool inside_character(const char *text, size_t len, size_t at)
{
    return at < len && ((unsigned char)text[at] & 0xC0) == 0x80;
}

static int check_span(const pol_pseudo *p, const char *text, size_t len, const pol_span *spans, int i,
                      char *err, size_t errlen)
{
    const pol_span *s = &spans[i];
    if (!s->kind || !pol_pseudo_allowed(p, s->kind)) {
        snprintf(err, errlen, "pseudonymize: span %d: kind \"%.80s\" may not be pseudonymized: keep this "
                 "request in the allowed zones, or allow the kind", i, s->kind ? s->kind : "(null)");
        return -1;
    }
    if (s->start >= s->end || s->end > len) {
        snprintf(err, errlen, "pseudonymize: span %d [%zu, %zu) is not inside the %zu-byte text: spans are "
                 "non-empty byte ranges [start, end) of the text they were found in", i, s->start, s->end, len);
        return -1;
    }
    if (i > 0 && s->start < spans[i - 1].end) {
        snprintf(err, errlen, "pseudonymize: span %d [%zu, %zu) overlaps or precedes span %d [%zu, %zu): "
                 "spans must be sorted by start and must not overlap", i, s->start, s->end, i - 1,
                 spans[i - 1].start, spans[i - 1].end);
        return -1;
    }
    if (inside_character(text, len, s->start) || inside_character(text, len, s->end)) {
        snprintf(err, errlen, "pseudonymize: span %d [%zu, %zu) cuts a UTF-8 character: spans must start "
                 "and end on character boundaries", i, s->start, s->end);
        return -1;
    }
    return 0;
}

int pseudo_check_and_reserve(pol_pseudo *p, const char *text, size_t len, const pol_span *spans, int n,
                             char *err, size_t errlen)
{
    if (!p || (!text && len) || n < 0 || (n > 0 && !spans)) {
        snprintf(err, errlen, "pseudonymize: needs a mapping, a text and n >= 0 spans");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (check_span(p, text, len, spans, i, err, errlen) != 0) return -1;
    size_t from = 0;
    for (int i = 0; i <= n; i++) {
        size_t to = i < n ? spans[i].start : len;
        if (reserve_range(p, text + from, to - from, err, errlen) != 0) return -1;
        if (i < n) from = spans[i].end;
    }
    return 0;
}

/* The entry of this value, issuing the kind's next free number if it is new. */
static const pseudo_entry *issue(pol_pseudo *p, int kind, const char *v, size_t len, char *err, size_t errlen)
{
    const pseudo_entry *e = find_value(p, kind, v, len);
    if (e) return e;
    if (p->n_values >= POL_PSEUDO_MAX_VALUES) {
        snprintf(err, errlen, "pseudonymize: more than %d distinct values in one conversation: keep this "
                 "request in the allowed zones", POL_PSEUDO_MAX_VALUES);
        return NULL;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        snprintf(err, errlen, "pseudonymize: out of memory");
        return NULL;
    }
    memcpy(copy, v, len);
    copy[len] = '\0';
    /* Numbers stay below MAX_VALUES + MAX_RESERVED + 1: far from 9 digits. */
    uint32_t number = p->next[kind];
    while (pseudo_find_number(p, kind, number)) number++;
    p->next[kind] = number + 1;
    if (add_entry(p, (pseudo_entry){kind, number, copy, len}, err, errlen) != 0) return NULL;
    return &p->entries[p->n_entries - 1];
}

static int add_placeholder(pseudo_buf *b, const pol_pseudo *p, const pseudo_entry *e)
{
    char ph[PSEUDO_KIND_MAX + PSEUDO_DIGITS_MAX + 4];
    int n = snprintf(ph, sizeof ph, "<%s_%u>", p->kinds[e->kind], (unsigned)e->number);
    for (int i = 1; i < n; i++)
        if (ph[i] >= 'a' && ph[i] <= 'z') ph[i] = (char)(ph[i] - 'a' + 'A');
    return pseudo_buf_add(b, ph, (size_t)n);
}

int pseudo_replace(pol_pseudo *p, const char *text, size_t len, const pol_span *spans, int n,
                   char **out, size_t *out_len, char *err, size_t errlen)
{
    pseudo_buf b = {NULL, 0, 0};
    size_t from = 0;
    int rc = pseudo_buf_add(&b, "", 0);
    for (int i = 0; i < n && rc == 0; i++) {
        int kind = kind_index(p, spans[i].kind);
        const pseudo_entry *e = issue(p, kind, text + spans[i].start, spans[i].end - spans[i].start, err, errlen);
        if (!e) {
            free(b.data);
            return -1;
        }
        rc = pseudo_buf_add(&b, text + from, spans[i].start - from);
        if (rc == 0) rc = add_placeholder(&b, p, e);
        from = spans[i].end;
    }
    if (rc == 0) rc = pseudo_buf_add(&b, text + from, len - from);
    if (rc != 0) {
        free(b.data);
        snprintf(err, errlen, "pseudonymize: out of memory");
        return -1;
    }
    *out = b.data;
    *out_len = b.len;
    return 0;
}

int pol_pseudo_apply(pol_pseudo *p, const char *text, size_t len, const pol_span *spans, int n,
                     char **out, size_t *out_len, char *err, size_t errlen)
{
    if (!out || !out_len) {
        snprintf(err, errlen, "pseudonymize: apply needs out and out_len");
        return -1;
    }
    *out = NULL;
    *out_len = 0;
    if (pseudo_check_and_reserve(p, text, len, spans, n, err, errlen) != 0) return -1;
    return pseudo_replace(p, text, len, spans, n, out, out_len, err, errlen);
}
