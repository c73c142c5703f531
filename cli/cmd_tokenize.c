/* cmd_tokenize.c: `junction tokenize -m MODEL TEXT`: token ids, one line.
 * Only the vocabulary is loaded, so vocabulary-only GGUF files (llama.cpp's
 * ggml-vocab-*.gguf) work too, and a large model tokenizes without its
 * weights being touched. */
#include "cli.h"
#include "commands.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_tokenize(int argc, char **argv)
{
    cli_engine_opts o;
    cli_engine_defaults(&o);
    const char *text = NULL;
    bool bos = false, pieces = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: junction tokenize -m MODEL [--bos] [--pieces] TEXT\n\n"
                   "Print the token ids of TEXT (no special-token parsing).\n"
                   "  --bos     prepend the BOS token\n"
                   "  --pieces  print id:'piece' pairs\n");
            return 0;
        }
        int rc = cli_engine_option("tokenize", argc, argv, &i, &o);
        if (rc < 0) return 2;
        if (rc) continue;
        if (!strcmp(argv[i], "--bos")) bos = true;
        else if (!strcmp(argv[i], "--pieces")) pieces = true;
        else if (!text) text = argv[i];
        else {
            fprintf(stderr, "junction tokenize: unexpected argument '%s' (quote the text)\n", argv[i]);
            return 2;
        }
    }
    if (!text) {
        fprintf(stderr, "junction tokenize: no text given\n");
        return 2;
    }
    if (!o.model) {
        fprintf(stderr, "junction tokenize: no model given; use -m FILE\n");
        return 2;
    }
    eng_model *m;
    char err[1024];
    if (eng_model_load_vocab(&m, o.model, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction tokenize: %s\n", err);
        return 1;
    }
    int n = eng_tokenize(m, text, strlen(text), bos, NULL, 0);
    int *ids = n >= 0 ? malloc(sizeof(int) * (size_t)(n + 1)) : NULL;
    if (!ids) {
        fprintf(stderr, "junction tokenize: out of memory\n");
        eng_model_free(m);
        return 1;
    }
    eng_tokenize(m, text, strlen(text), bos, ids, n);
    for (int i = 0; i < n; i++) {
        if (pieces) {
            char piece[256];
            int len = eng_token_to_piece(m, ids[i], piece, sizeof(piece));
            printf("%s%d:'%.*s'", i ? " " : "", ids[i], len < 256 ? len : 256, piece);
        } else {
            printf("%s%d", i ? " " : "", ids[i]);
        }
    }
    printf("\n");
    free(ids);
    eng_model_free(m);
    return 0;
}
