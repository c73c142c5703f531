/* vocab.h: the SentencePiece (Llama) tokenizer. Internal to localengine. */
#ifndef JUNCTION_VOCAB_H
#define JUNCTION_VOCAB_H

#include "gguf.h"

#include <stdbool.h>
#include <stddef.h>

enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4,
       TOKEN_UNUSED = 5, TOKEN_BYTE = 6 };

typedef struct eng_vocab {
    int n;
    char *blob;          /* all token texts, NUL-separated */
    unsigned *offset;    /* text of token i at blob + offset[i] */
    unsigned *length;
    float *score;
    int *type;
    int *hash;           /* open addressing: token ids, -1 empty */
    unsigned hash_mask;
    int byte_token[256]; /* id of <0xXX>, or -1 */
    int bos, eos, unk;
    bool add_bos, add_space_prefix;
} eng_vocab;

/* Build from tokenizer.ggml.* metadata (model "llama" only). */
int eng_vocab_load(eng_vocab *v, const gguf_file *f, char *err, size_t errlen);
void eng_vocab_free(eng_vocab *v);

/* Token id of exactly these bytes, or -1. */
int eng_vocab_find(const eng_vocab *v, const char *text, size_t len);

/* Tokenize; returns the token count (which may exceed max: call again with
 * more room), or -1 when out of memory. */
int eng_vocab_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_bos, int *out, int max);

/* The bytes token `id` stands for; returns their count (may exceed len). */
int eng_vocab_piece(const eng_vocab *v, int id, char *buf, size_t len);

#endif
