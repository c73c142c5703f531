/* pseudo_shape.c: recognising placeholder-like tokens.
 *
 * Models copy "<EMAIL_1>" faithfully most of the time, but not always: they
 * lower-case it, put a space for the underscore, swap the angle brackets for
 * square ones, or drop the brackets. One recogniser serves both directions,
 * so that a token the client wrote (reserved when the request is
 * pseudonymized) is exactly a token the restorer will leave alone.
 *
 * A token is an opening "<" or "[" (or none: bare, at the start of a word),
 * a kind name (any case when bracketed, upper case when bare), "_" (or " "
 * when bracketed), a number 1..999999999 without leading zero, and the
 * matching closing bracket (bare: the end of the word). The allowed kinds
 * are followed together, one bit each, so every byte is looked at once.
 */
#include "pseudo_internal.h"

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The kinds still possible after byte j (lower-cased c) of the word: each
 * spells "kind_digits" up to its name's length, then "_", then 1..9 digits. */
static uint64_t step(const pol_pseudo *p, uint64_t alive, size_t j, unsigned char c)
{
    for (uint64_t m = alive; m; m &= m - 1) {
        int k = __builtin_ctzll(m);
        size_t len = p->kind_len[k];
        bool keep = j < len ? c == (unsigned char)p->kinds[k][j]
                  : j == len ? c == '_'
                  : j == len + 1 ? c >= '1' && c <= '9'
                  : digit(c) && j - len <= PSEUDO_DIGITS_MAX;
        if (!keep) alive &= ~(1ULL << k);
    }
    return alive;
}

static uint32_t number_of(const char *s, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (uint32_t)(s[i] - '0');
    return v;
}

/* "<EMAIL 1>" and "[email 7]": the word is a whole kind name, then a space. */
static pseudo_shape_result spaced(const pol_pseudo *p, const char *s, size_t avail, size_t i,
                                  size_t word, uint64_t alive, bool final, pseudo_shape *out)
{
    int kind = -1;
    for (uint64_t m = alive; m; m &= m - 1) {
        int k = __builtin_ctzll(m);
        if (p->kind_len[k] == word) kind = k;
    }
    if (kind < 0) return SHAPE_NONE;
    size_t d = ++i;
    while (i < avail && digit((unsigned char)s[i]) && i - d < PSEUDO_DIGITS_MAX) i++;
    if (i == avail) return final ? SHAPE_NONE : SHAPE_MORE;
    if (i == d || s[d] == '0') return SHAPE_NONE;
    char close = s[0] == '<' ? '>' : ']';
    if (s[i] != close) return SHAPE_NONE;
    *out = (pseudo_shape){kind, number_of(s + d, i - d), FORM_LOOSE, i + 1};
    return SHAPE_FOUND;
}

pseudo_shape_result pseudo_shape_at(const pol_pseudo *p, const char *s, size_t avail, bool prev_word,
                                    bool final, pseudo_shape *out)
{
    if (avail == 0 || p->n_kinds == 0) return SHAPE_NONE;
    unsigned char open = (unsigned char)s[0];
    bool bare = open != '<' && open != '[';
    if (bare && (prev_word || !pseudo_word_byte(open))) return SHAPE_NONE;
    uint64_t alive = p->n_kinds == 64 ? ~0ULL : (1ULL << p->n_kinds) - 1;
    bool has_lower = false;
    size_t start = bare ? 0 : 1, i = start;
    for (; i < avail && pseudo_word_byte((unsigned char)s[i]); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'a' && c <= 'z') {
            if (bare) return SHAPE_NONE;
            has_lower = true;
        }
        alive = step(p, alive, i - start, lower(c));
        if (!alive) return SHAPE_NONE;
    }
    if (i == avail && !final) return SHAPE_MORE;
    size_t word = i - start;
    if (!bare && i < avail && s[i] == ' ') return spaced(p, s, avail, i, word, alive, final, out);
    /* The one kind whose name, "_" and at least one digit make the word. */
    int kind = -1;
    for (uint64_t m = alive; m; m &= m - 1) {
        int k = __builtin_ctzll(m);
        if (word >= p->kind_len[k] + 2) kind = k;
    }
    if (kind < 0) return SHAPE_NONE;
    size_t digits = p->kind_len[kind] + 1;
    uint32_t number = number_of(s + start + digits, word - digits);
    if (bare) {
        *out = (pseudo_shape){kind, number, FORM_BARE, i};
        return SHAPE_FOUND;
    }
    char close = open == '<' ? '>' : ']';
    if (i == avail || s[i] != close) return SHAPE_NONE;
    pseudo_form form = open == '<' && !has_lower ? FORM_EXACT : FORM_LOOSE;
    *out = (pseudo_shape){kind, number, form, i + 1};
    return SHAPE_FOUND;
}
