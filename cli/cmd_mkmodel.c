/* cmd_mkmodel.c: `junction mkmodel`: a Llama GGUF with deterministic random weights.
 *
 * The shapes and types are listed here too, so that a misspelt one is a
 * usage error (exit 2) found before anything is written, and so that the
 * help text is made from the same list the check uses. */
#include "cli.h"
#include "commands.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const shapes[] = {"tiny", "small", "7b", "13b", NULL};
/* K types pack rows in blocks of 256 weights: tiny's rows are narrower. */
static const struct { const char *name; bool needs_wide_rows; } types[] = {
    {"f32", false}, {"f16", false}, {"bf16", false}, {"q8_0", false}, {"q4_0", false},
    {"q4_1", false}, {"q5_0", false}, {"q5_1", false}, {"q2_k", true}, {"q3_k", true},
    {"q4_k", true}, {"q5_k", true}, {"q6_k", true},
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

static void print_list(FILE *out, bool shape_list)
{
    size_t n = shape_list ? 4 : N_TYPES;
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", shape_list ? shapes[i] : types[i].name);
}

static void usage(void)
{
    printf("usage: junction mkmodel --shape SHAPE --type TYPE [--seed S] [--vocab-from FILE] -o FILE\n\n"
           "Write a valid Llama GGUF file with deterministic random weights (std about 0.02),\n"
           "for tests and benchmarks. 7b and 13b have the exact Llama 2 shapes.\nSHAPE: ");
    print_list(stdout, true);
    printf(" (default tiny)\nTYPE: ");
    print_list(stdout, false);
    printf(" (default f32;\nthe K types need --shape small or larger: their blocks are 256 wide).\n"
           "--vocab-from copies the tokenizer of another GGUF file.\n");
}

/* 0 if the shape and type exist and fit together; else prints why. */
static int check_shape_type(const char *shape, const char *type)
{
    int s = 0;
    while (shapes[s] && strcmp(shapes[s], shape)) s++;
    size_t t = 0;
    while (t < N_TYPES && strcasecmp(types[t].name, type)) t++; /* as the engine does */
    if (!shapes[s] || t == N_TYPES) {
        fprintf(stderr, "junction mkmodel: unknown %s '%s'; use ", shapes[s] ? "type" : "shape", shapes[s] ? type : shape);
        print_list(stderr, !shapes[s]);
        fprintf(stderr, "\n");
        return -1;
    }
    if (types[t].needs_wide_rows && s == 0) {
        fprintf(stderr, "junction mkmodel: type %s needs --shape small or larger (its blocks are 256 wide)\n", type);
        return -1;
    }
    return 0;
}

int cmd_mkmodel(int argc, char **argv)
{
    const char *shape = "tiny", *type = "f32", *out = NULL, *vocab = NULL;
    double seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
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
    if (check_shape_type(shape, type) != 0) return 2;
    char err[1024];
    if (eng_mkmodel(out, shape, type, (uint64_t)seed, vocab, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction mkmodel: %s\n", err);
        return 1;
    }
    return 0;
}
