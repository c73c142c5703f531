/* lexical.c: features of the prompt's words, without any model.
 *
 * Why: on real traffic the words carry much of the signal (topic words say
 * "law" or "algebra", numerals and math symbols say "calculation"), and they
 * cost microseconds. Words are hashed into n-gram buckets so a head needs no
 * vocabulary; the hash is part of the head format and must never change
 * (docs/classifier.md). Formatting that says nothing about the content is
 * left out: list markers ("A.", "b)", "3." at a line's start) are not words,
 * every number is the same word <num>, and bigrams stay within a line.
 */
#include "scoring.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n-gram occurrences collected per text; past this, the dense statistics
 * still see the whole text but no new n-grams are added. */
#define NGRAM_OCCURRENCES_MAX 16384

typedef struct {
    double bytes, words, numbers, symbols, long_words, word_bytes, capitalized, questions, lines, code;
} lex_stats;

static double per_word(const lex_stats *s, double x) { return s->words > 0 ? x / s->words : 0; }
static double f_log_words(const lex_stats *s) { return log1p(s->words); }
static double f_log_chars(const lex_stats *s) { return log1p(s->bytes); }
static double f_numeral_share(const lex_stats *s) { return per_word(s, s->numbers); }
static double f_math_symbols(const lex_stats *s) { return log1p(s->symbols); }
static double f_long_word_share(const lex_stats *s) { return per_word(s, s->long_words); }
static double f_mean_word_len(const lex_stats *s) { return per_word(s, s->word_bytes); }
static double f_capital_share(const lex_stats *s) { return per_word(s, s->capitalized); }
static double f_questions(const lex_stats *s) { return log1p(s->questions); }
static double f_log_lines(const lex_stats *s) { return log1p(s->lines); }
static double f_code_share(const lex_stats *s) { return s->bytes > 0 ? s->code / s->bytes : 0; }

static const struct {
    const char *name;
    double (*value)(const lex_stats *s);
} lex_table[CLS_LEX_COUNT] = {
    {"log_words", f_log_words},
    {"log_chars", f_log_chars},
    {"numeral_share", f_numeral_share},
    {"math_symbols", f_math_symbols},
    {"long_word_share", f_long_word_share},
    {"mean_word_len", f_mean_word_len},
    {"capital_share", f_capital_share},
    {"questions", f_questions},
    {"log_lines", f_log_lines},
    {"code_share", f_code_share},
};

const char *cls_lex_name(int i)
{
    return i >= 0 && i < CLS_LEX_COUNT ? lex_table[i].name : NULL;
}

/* Math symbols, each a word of its own (UTF-8 ones first: longest match). */
static const char *const math_symbols[] = {
    "\xc3\x97", "\xc3\xb7", "\xe2\x88\x9a", "\xcf\x80", "\xe2\x88\xab", "\xe2\x88\x91",
    "\xe2\x89\xa4", "\xe2\x89\xa5", "\xe2\x89\xa0", "\xc2\xb1", "\xe2\x88\x9e",
    "=", "+", "*", "/", "^", "<", ">", "%", "|",
};

static size_t math_symbol_at(const unsigned char *p, size_t left)
{
    if (*p < 0x80 ? !strchr("=+*/^<>%|", *p) || !*p : *p != 0xc2 && *p != 0xc3 && *p != 0xcf && *p != 0xe2)
        return 0;
    for (size_t i = 0; i < sizeof(math_symbols) / sizeof(math_symbols[0]); i++) {
        size_t n = strlen(math_symbols[i]);
        if (n <= left && memcmp(p, math_symbols[i], n) == 0) return n;
    }
    return 0;
}

static bool is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static bool is_code_byte(unsigned char c)
{
    return c && strchr("{}[]();_`#\\", c) != NULL;
}

static uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 16777619u;
    }
    return h;
}

static uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

typedef struct {
    cls_ngram *v;
    int n, cap;
    bool oom;
} ngram_list;

static void push(ngram_list *l, uint32_t hash, size_t start, size_t end)
{
    if (l->oom || l->n >= NGRAM_OCCURRENCES_MAX) return;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 256;
        cls_ngram *v = realloc(l->v, sizeof(*v) * (size_t)cap);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (cls_ngram){hash, (uint32_t)start, (uint32_t)end};
}

static int by_hash_then_start(const void *a, const void *b)
{
    const cls_ngram *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return (x->start > y->start) - (x->start < y->start);
}

/* A list marker: one letter, or a number of up to two digits, followed by
 * '.' or ')' and a space or the line's end, as the first word of a line. */
static bool list_marker(const unsigned char *t, size_t len, size_t s, size_t e, bool line_start)
{
    if (!line_start || e >= len || (t[e] != '.' && t[e] != ')')) return false;
    if (e + 1 < len && t[e + 1] != ' ' && t[e + 1] != '\t' && t[e + 1] != '\n' && t[e + 1] != '\r') return false;
    bool letter = e - s == 1 && ((t[s] | 0x20) >= 'a' && (t[s] | 0x20) <= 'z');
    bool small_number = e - s <= 2 && t[s] >= '0' && t[s] <= '9' && t[e - 1] >= '0' && t[e - 1] <= '9';
    return letter || small_number;
}

int cls_lexical(const char *text, size_t len, cls_features *f, char *err, size_t errlen)
{
    const unsigned char *t = (const unsigned char *)text;
    lex_stats s = {.bytes = (double)len};
    ngram_list l = {0};
    const uint32_t num_hash = fnv1a(2166136261u, (const unsigned char *)"<num>", 5);
    uint32_t prev = 0;
    size_t prev_start = 0;
    bool have_prev = false, line_start = true;
    size_t i = 0;
    while (i < len) {
        unsigned char c = t[i];
        size_t sym = math_symbol_at(t + i, len - i);
        size_t start = i, end;
        uint32_t wh;
        if (sym) {
            end = i + sym;
            wh = fnv1a(2166136261u, t + i, sym);
            s.symbols++;
        } else if (is_word_byte(c)) {
            end = i;
            bool digits = true;
            while (end < len && is_word_byte(t[end]) && (t[end] < 0x80 || !math_symbol_at(t + end, len - end))) {
                digits = digits && t[end] >= '0' && t[end] <= '9';
                end++;
            }
            if (list_marker(t, len, start, end, line_start)) {
                i = end + 1;
                line_start = false;
                continue;
            }
            s.word_bytes += (double)(end - start);
            s.long_words += end - start >= 9;
            s.capitalized += c >= 'A' && c <= 'Z';
            s.numbers += digits;
            wh = digits ? num_hash : fnv1a(2166136261u, t + start, end - start);
        } else {
            if (c == '\n') {
                s.lines++;
                have_prev = false;
                line_start = true;
            }
            s.questions += c == '?';
            s.code += is_code_byte(c);
            i++;
            continue;
        }
        s.words++;
        line_start = false;
        push(&l, fmix32(wh), start, end);
        if (have_prev) push(&l, fmix32(prev ^ rotl32(wh, 16) ^ 0x9e3779b9u), prev_start, end);
        prev = wh;
        prev_start = start;
        have_prev = true;
        i = end;
    }
    if (l.oom) {
        free(l.v);
        snprintf(err, errlen, "out of memory collecting the n-grams of a %zu-byte text", len);
        return -1;
    }
    for (int k = 0; k < CLS_LEX_COUNT; k++) f->lex[k] = (float)lex_table[k].value(&s);
    if (l.n) qsort(l.v, (size_t)l.n, sizeof(*l.v), by_hash_then_start);
    int u = 0;
    for (int k = 0; k < l.n; k++)
        if (u == 0 || l.v[u - 1].hash != l.v[k].hash) l.v[u++] = l.v[k];
    free(f->ngrams);
    f->ngrams = l.v;
    f->n_ngrams = u;
    return 0;
}

void cls_features_free(cls_features *f)
{
    free(f->ngrams);
    f->ngrams = NULL;
    f->n_ngrams = 0;
}
