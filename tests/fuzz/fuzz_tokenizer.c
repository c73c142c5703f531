/* fuzz_tokenizer.c: arbitrary bytes through Llama 2's SentencePiece tokenizer.
 *
 * Every prompt a client sends is tokenized, so the tokenizer sees whatever
 * bytes arrive: invalid UTF-8, NULs, long runs of spaces. The vocabulary is
 * the real Llama 2 one (../shared/models/ggml-vocab-llama-spm.gguf). Beyond
 * not crashing, tokenizing keeps two promises checked here: asking with too
 * little room reports the count that the second call then fills, and the
 * tokens' pieces of well-formed UTF-8 give the text back (after the leading
 * space the tokenizer adds), byte for byte, since unknown characters fall
 * back to byte tokens. Left out of the round trip, by design (llama.cpp does
 * the same): text holding "▁" itself, which SentencePiece reads as a space,
 * and text where a multi-byte lead byte lacks its continuation bytes, since
 * the tokenizer then takes the next bytes (e.g. an escaped space) as the
 * rest of that character.
 */
#include "fuzz.h"
#include "gguf.h"
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

#define VOCAB_FILE "models/ggml-vocab-llama-spm.gguf"

static const eng_vocab *vocab(void)
{
    static gguf_file *file;
    static eng_vocab v;
    if (!file) {
        char err[512];
        const char *path = fuzz_shared_path(VOCAB_FILE);
        if (gguf_open(&file, path, err, sizeof(err)) != 0 || eng_vocab_load(&v, file, err, sizeof(err)) != 0)
            fuzz_fail("cannot load the vocabulary (%s); set JUNCTION_SHARED_DIR to the folder holding "
                      VOCAB_FILE, err);
    }
    return &v;
}

/* Every lead byte of a multi-byte UTF-8 sequence is followed by its continuation bytes. */
static bool sequences_complete(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0xc0 || s[i] >= 0xf8 ? 1 : s[i] < 0xe0 ? 2 : s[i] < 0xf0 ? 3 : 4;
        if (len > n - i) return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return false;
        i += len;
    }
    return true;
}

FUZZ_TARGET(tokenizer)
{
    const eng_vocab *v = vocab();
    const char *text = (const char *)data;
    int need = eng_vocab_tokenize(v, text, size, true, NULL, 0);
    if (need < 1) fuzz_fail("tokenizing %zu bytes with BOS gave %d tokens", size, need);
    int *ids = malloc(sizeof(int) * (size_t)need);
    if (!ids) return 0;
    int got = eng_vocab_tokenize(v, text, size, true, ids, need);
    if (got != need) fuzz_fail("the count call said %d tokens, the filling call %d", need, got);
    if (ids[0] != v->bos) fuzz_fail("the first token is %d, not BOS %d", ids[0], v->bos);
    size_t back_cap = size * 4 + 16, back_len = 0;
    char *back = malloc(back_cap);
    for (int i = 0; back && i < got; i++) {
        if (ids[i] < 0 || ids[i] >= v->n) fuzz_fail("token %d of %d is id %d, outside the vocabulary", i, got, ids[i]);
        int n = eng_vocab_piece(v, ids[i], back + back_len, back_cap - back_len);
        if (n < 0 || (size_t)n > back_cap - back_len) fuzz_fail("token %d's piece is %d bytes", ids[i], n);
        back_len += (size_t)n;
    }
    bool has_marker = size >= 3 && memmem(text, size, "\xe2\x96\x81", 3) != NULL;
    if (back && size > 0 && !has_marker && sequences_complete(data, size)) {
        size_t lead = v->add_space_prefix ? 1 : 0;
        if (back_len != size + lead || memcmp(back + lead, text, size) != 0)
            fuzz_fail("detokenizing %zu bytes gave %zu bytes that differ", size, back_len);
    }
    free(back);
    free(ids);
    return 0;
}
