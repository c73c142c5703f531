/* cmd_mkmodel.c: `junction mkmodel`: a Llama GGUF with deterministic random weights. */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

int cmd_mkmodel(int argc, char **argv)
{
    const char *shape = "tiny", *type = "f32", *out = NULL, *vocab = NULL;
    double seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: junction mkmodel --shape tiny|small|7b|13b --type TYPE [--seed S]\n"
                   "                        [--vocab-from FILE] -o FILE\n\n"
                   "Write a valid Llama GGUF file with deterministic random weights (std about 0.02),\n"
                   "for tests and benchmarks. 7b and 13b have the exact Llama 2 shapes.\n"
                   "TYPE: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k\n"
                   "(the K types need --shape small or larger: their blocks are 256 wide).\n"
                   "--vocab-from copies the tokenizer of another GGUF file.\n");
            return 0;
        }
        if (!strcmp(a, "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(a, "--type") && i + 1 < argc) type = argv[++i];
        else if (!strcmp(a, "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(a, "--vocab-from") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(a, "--seed")) { if (cli_number("mkmodel", argc, argv, &i, 0, 9007199254740991.0, &seed)) return 2; }
        else {
            fprintf(stderr, "junction mkmodel: unknown or incomplete option '%s'; see --help\n", a);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "junction mkmodel: no output file; use -o FILE\n");
        return 2;
    }
    char err[1024];
    if (eng_mkmodel(out, shape, type, (uint64_t)seed, vocab, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction mkmodel: %s\n", err);
        return 1;
    }
    return 0;
}
