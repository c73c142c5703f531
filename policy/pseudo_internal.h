/* pseudo_internal.h: what the pseudonymizer's files share. Internal to policy/.
 *
 * Applying placeholders (pseudonymize.c) and restoring them (unpseudonymize.c)
 * must agree exactly on which tokens look like placeholders: a token the
 * client wrote is reserved by the first so that the second never restores it.
 * So both use one recogniser (pseudo_shape.c) and one mapping, kept here.
 */
#ifndef JUNCTION_PSEUDO_INTERNAL_H
#define JUNCTION_PSEUDO_INTERNAL_H

#include "policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PSEUDO_KIND_MAX 63             /* bytes of a kind name */
#define PSEUDO_DIGITS_MAX 9            /* placeholder numbers are 1..999999999 */

/* One value given a placeholder, or one number reserved by the client's text. */
typedef struct {
    int kind;                          /* index into pol_pseudo.kinds */
    uint32_t number;
    char *value;                       /* NULL: reserved, never issued */
    size_t len;
} pseudo_entry;

struct pol_pseudo {
    char kinds[POL_PSEUDO_MAX_KINDS][PSEUDO_KIND_MAX + 1];
    size_t kind_len[POL_PSEUDO_MAX_KINDS];
    bool folded[POL_PSEUDO_MAX_KINDS];     /* values compared case-insensitively (e-mails) */
    int n_kinds;
    uint32_t next[POL_PSEUDO_MAX_KINDS];   /* the lowest number that may still be free */
    pseudo_entry *entries;
    int n_entries, cap_entries, n_values, n_reserved;
    /* Open addressing on entry indexes, -1 = empty, `slots` a power of two
     * at least twice the entries: by (kind, value) for issued values only,
     * by (kind, number) for all. */
    int *by_value, *by_number;
    size_t slots;
};

/* The issued or reserved entry for (kind, number), or NULL. */
const pseudo_entry *pseudo_find_number(const pol_pseudo *p, int kind, uint32_t number);

typedef enum {
    SHAPE_NONE,                        /* no placeholder starts here */
    SHAPE_MORE,                        /* the text ends inside what may still be one */
    SHAPE_FOUND
} pseudo_shape_result;

typedef enum {
    FORM_EXACT,                        /* <EMAIL_1> */
    FORM_LOOSE,                        /* <email_1>, <EMAIL 1>, [EMAIL_1], [email 1] */
    FORM_BARE                          /* EMAIL_1 between non-word bytes */
} pseudo_form;

typedef struct {
    int kind;
    uint32_t number;
    pseudo_form form;
    size_t len;                        /* bytes of the token */
} pseudo_shape;

/* Is there a placeholder-like token at s[0..avail)? `prev_word` says whether
 * the byte before s is a word byte (A-Z a-z 0-9 _): a bare token must start
 * a word. `final`: nothing follows s[avail-1] (else SHAPE_MORE when the
 * token is undecided at the end). Looks at most POL_UNPSEUDO_HOLD_MAX bytes;
 * SHAPE_MORE only when avail < POL_UNPSEUDO_HOLD_MAX. */
pseudo_shape_result pseudo_shape_at(const pol_pseudo *p, const char *s, size_t avail, bool prev_word,
                                    bool final, pseudo_shape *out);

/* Check the spans of one text and reserve the placeholder-like tokens
 * between them (pseudonymize.c), then replace them (pseudo_replace). */
int pseudo_check_and_reserve(pol_pseudo *p, const char *text, size_t len, const pol_span *spans, int n,
                             char *err, size_t errlen);
int pseudo_replace(pol_pseudo *p, const char *text, size_t len, const pol_span *spans, int n,
                   char **out, size_t *out_len, char *err, size_t errlen);

/* A growing byte buffer, always NUL-terminated once used. */
typedef struct {
    char *data;
    size_t len, cap;
} pseudo_buf;

/* Append n bytes; -1 out of memory (b unchanged). */
static inline int pseudo_buf_add(pseudo_buf *b, const char *s, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Could a token start at byte c (after a word byte or not)? A cheap filter
 * before pseudo_shape_at. */
static inline bool pseudo_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static inline bool pseudo_may_start(unsigned char c, bool prev_word)
{
    return c == '<' || c == '[' || (!prev_word && pseudo_word_byte(c));
}

#endif
