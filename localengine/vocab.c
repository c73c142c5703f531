/* vocab.c: SentencePiece BPE as Llama 2 uses it.
 *
 * The text gets a leading space, spaces become U+2581 "▁", and the text is
 * cut into UTF-8 characters. Then, repeatedly, the adjacent pair whose
 * concatenation is a token with the highest score is merged (ties: leftmost
 * first). Pieces that are not tokens fall back to <0xXX> byte tokens. This
 * reproduces llama.cpp's tokenizer exactly (tests/unit/test_tokenizer.c).
 */
#include "vocab.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int eng_vocab_find(const eng_vocab *v, const char *text, size_t len)
{
    for (uint32_t i = hash_bytes(text, len) & v->hash_mask;; i = (i + 1) & v->hash_mask) {
        int id = v->hash[i];
        if (id < 0) return -1;
        if (v->length[id] == len && memcmp(v->blob + v->offset[id], text, len) == 0) return id;
    }
}

static int load_fail(eng_vocab *v, char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "tokenizer: %s", msg);
    eng_vocab_free(v);
    return -1;
}

int eng_vocab_load(eng_vocab *v, const gguf_file *f, char *err, size_t errlen)
{
    memset(v, 0, sizeof(*v));
    gguf_str model;
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model))
        return load_fail(v, err, errlen, "the file has no tokenizer.ggml.model");
    if (!gguf_str_eq(model, "llama"))
        return load_fail(v, err, errlen, "only the SentencePiece tokenizer (tokenizer.ggml.model = \"llama\") is supported");
    const gguf_kv *tokens = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_STRING);
    const gguf_kv *scores = gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_F32);
    const gguf_kv *types = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_I32);
    if (!tokens || tokens->n_elems == 0 || tokens->n_elems > 1000000)
        return load_fail(v, err, errlen, "tokenizer.ggml.tokens is missing, empty or not an array of strings");
    v->n = (int)tokens->n_elems;
    if ((scores && scores->n_elems != (uint64_t)v->n) || (types && types->n_elems != (uint64_t)v->n))
        return load_fail(v, err, errlen, "tokenizer scores or token types do not match the token count");

    size_t blob_len = 0;
    const uint8_t *cur = gguf_arr_begin(tokens);
    for (int i = 0; i < v->n; i++) blob_len += gguf_arr_next_str(&cur).len + 1;
    v->blob = malloc(blob_len);
    v->offset = malloc(sizeof(unsigned) * (size_t)v->n);
    v->length = malloc(sizeof(unsigned) * (size_t)v->n);
    v->score = calloc((size_t)v->n, sizeof(float));
    v->type = malloc(sizeof(int) * (size_t)v->n);
    unsigned cap = 1;
    while (cap < (unsigned)v->n * 2) cap <<= 1;
    v->hash = malloc(sizeof(int) * cap);
    v->hash_mask = cap - 1;
    if (!v->blob || !v->offset || !v->length || !v->score || !v->type || !v->hash)
        return load_fail(v, err, errlen, "out of memory");
    memset(v->hash, -1, sizeof(int) * cap);
    for (int b = 0; b < 256; b++) v->byte_token[b] = -1;

    cur = gguf_arr_begin(tokens);
    size_t at = 0;
    for (int i = 0; i < v->n; i++) {
        gguf_str s = gguf_arr_next_str(&cur);
        memcpy(v->blob + at, s.ptr, s.len);
        v->blob[at + s.len] = '\0';
        v->offset[i] = (unsigned)at;
        v->length[i] = (unsigned)s.len;
        at += s.len + 1;
        if (scores) memcpy(&v->score[i], gguf_arr_begin(scores) + 4 * (size_t)i, 4);
        int32_t t = TOKEN_NORMAL;
        if (types) memcpy(&t, gguf_arr_begin(types) + 4 * (size_t)i, 4);
        v->type[i] = t;
        if (eng_vocab_find(v, s.ptr, s.len) < 0) { /* first of duplicates wins */
            uint32_t h = hash_bytes(s.ptr, s.len) & v->hash_mask;
            while (v->hash[h] >= 0) h = (h + 1) & v->hash_mask;
            v->hash[h] = i;
        }
        unsigned byte;
        char tail;
        /* "<0xHH>": sscanf alone would also take a sign ("<0x-1>") */
        const char *b = v->blob + v->offset[i];
        if (t == TOKEN_BYTE && s.len == 6 && isxdigit((unsigned char)b[3]) && isxdigit((unsigned char)b[4]) &&
            sscanf(b, "<0x%2X>%c", &byte, &tail) == 1 && byte < 256)
            v->byte_token[byte] = i;
    }
    uint64_t id;
    v->bos = gguf_get_u64(f, "tokenizer.ggml.bos_token_id", &id) && id < (uint64_t)v->n ? (int)id : 1;
    v->eos = gguf_get_u64(f, "tokenizer.ggml.eos_token_id", &id) && id < (uint64_t)v->n ? (int)id : 2;
    v->unk = gguf_get_u64(f, "tokenizer.ggml.unknown_token_id", &id) && id < (uint64_t)v->n ? (int)id : 0;
    if (v->bos >= v->n || v->eos >= v->n || v->unk >= v->n)
        return load_fail(v, err, errlen, "BOS, EOS or UNK id is outside the vocabulary");
    v->add_bos = true;
    gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos);
    v->add_space_prefix = true;
    gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);
    return 0;
}

void eng_vocab_free(eng_vocab *v)
{
    free(v->blob);
    free(v->offset);
    free(v->length);
    free(v->score);
    free(v->type);
    free(v->hash);
    memset(v, 0, sizeof(*v));
}

/* ---- BPE merge ---- */

typedef struct {
    int start, len;      /* bytes in the escaped text; len 0 once merged away */
    int prev, next;
} symbol;

typedef struct {
    int left, right;
    float score;
    int len;             /* combined length when queued, to spot stale pairs */
} bigram;

typedef struct {
    bigram *items;
    int n, cap;
} heap;

static bool bigram_before(const bigram *a, const bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(heap *h, bigram b)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        bigram *items = realloc(h->items, sizeof(bigram) * (size_t)cap);
        if (!items) return -1;
        h->items = items;
        h->cap = cap;
    }
    int i = h->n++;
    while (i > 0 && bigram_before(&b, &h->items[(i - 1) / 2])) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = b;
    return 0;
}

static bigram heap_pop(heap *h)
{
    bigram top = h->items[0], last = h->items[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->items[c + 1], &h->items[c])) c++;
        if (!bigram_before(&h->items[c], &last)) break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (h->n > 0) h->items[i] = last;
    return top;
}

static int try_pair(const eng_vocab *v, const char *text, const symbol *s, int left, int right, heap *h)
{
    if (left < 0 || right < 0) return 0;
    int len = s[left].len + s[right].len;
    int id = eng_vocab_find(v, text + s[left].start, (size_t)len);
    if (id < 0) return 0;
    return heap_push(h, (bigram){left, right, v->score[id], len});
}

static int utf8_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) return 2;
    if ((c & 0xf0) == 0xe0) return 3;
    if ((c & 0xf8) == 0xf0) return 4;
    return 1;
}

static void emit(int *out, int max, int *n, int id)
{
    if (*n < max) out[*n] = id;
    (*n)++;
}

int eng_vocab_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_bos, int *out, int max)
{
    int n = 0;
    if (add_bos) emit(out, max, &n, v->bos);
    if (len == 0) return n;

    /* Escape: optional leading space, then ' ' -> U+2581 (3 bytes). */
    size_t spaces = (v->add_space_prefix ? 1 : 0);
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t elen = len + (v->add_space_prefix ? 1 : 0) + spaces * 2;
    char *esc = malloc(elen + 1);
    symbol *sym = malloc(sizeof(symbol) * (elen + 1));
    heap h = {0};
    if (!esc || !sym) {
        free(esc);
        free(sym);
        return -1;
    }
    size_t e = 0;
    if (v->add_space_prefix) { memcpy(esc, "\xe2\x96\x81", 3); e = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(esc + e, "\xe2\x96\x81", 3); e += 3; }
        else esc[e++] = text[i];
    }

    int ns = 0;
    for (size_t off = 0; off < e;) {
        int l = utf8_len((unsigned char)esc[off]);
        if ((size_t)l > e - off) l = (int)(e - off);
        sym[ns] = (symbol){(int)off, l, ns - 1, ns + 1};
        off += (size_t)l;
        ns++;
    }
    sym[ns - 1].next = -1;

    int rc = 0;
    for (int i = 1; i < ns && rc == 0; i++) rc = try_pair(v, esc, sym, i - 1, i, &h);
    while (h.n > 0 && rc == 0) {
        bigram b = heap_pop(&h);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.len) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        rc = try_pair(v, esc, sym, l->prev, b.left, &h);
        if (rc == 0) rc = try_pair(v, esc, sym, b.left, l->next, &h);
    }
    if (rc == 0) {
        for (int i = 0; i >= 0; i = sym[i].next) {
            int id = eng_vocab_find(v, esc + sym[i].start, (size_t)sym[i].len);
            if (id >= 0) {
                emit(out, max, &n, id);
                continue;
            }
            for (int j = 0; j < sym[i].len; j++) {
                int bt = v->byte_token[(unsigned char)esc[sym[i].start + j]];
                emit(out, max, &n, bt >= 0 ? bt : v->unk);
            }
        }
    }
    free(h.items);
    free(esc);
    free(sym);
    return rc == 0 ? n : -1;
}

int eng_vocab_piece(const eng_vocab *v, int id, char *buf, size_t len)
{
    if (id < 0 || id >= v->n) return 0;
    const char *t = v->blob + v->offset[id];
    size_t tl = v->length[id];
    switch (v->type[id]) {
    case TOKEN_CONTROL:
    case TOKEN_UNUSED:
        return 0;
    case TOKEN_BYTE:
        if (tl == 6 && len >= 1) buf[0] = (char)strtol(t + 3, NULL, 16); /* "<0xAB>" */
        return tl == 6 ? 1 : 0;
    default: break;
    }
    size_t n = 0;
    for (size_t i = 0; i < tl; i++) {
        if (i + 2 < tl && memcmp(t + i, "\xe2\x96\x81", 3) == 0) {
            if (n < len) buf[n] = ' ';
            n++;
            i += 2;
        } else {
            if (n < len) buf[n] = t[i];
            n++;
        }
    }
    return (int)n;
}
