/* cmd_logits.c: `junction logits`: the logits the engine computes for a
 * token sequence, as JSON, so the engine can be held against another one. */
#include "cli.h"
#include "commands.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_ids(const char *s, int **out, int *n)
{
    int cap = 16;
    *n = 0;
    *out = malloc(sizeof(int) * (size_t)cap);
    while (*out && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 1 << 30) break;
        if (*n == cap) {
            int *bigger = realloc(*out, sizeof(int) * (size_t)(cap *= 2));
            if (!bigger) break;
            *out = bigger;
        }
        (*out)[(*n)++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) break;
    }
    if (!*out || *s || *n == 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int cmd_logits(int argc, char **argv)
{
    cli_engine_opts o;
    cli_engine_defaults(&o);
    const char *ids_arg = NULL, *text = NULL;
    bool all = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = cli_engine_option("logits", argc, argv, &i, &o);
        if (rc < 0) return 2;
        if (rc) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: junction logits -m MODEL (--ids 1,2,3 | --text TEXT) [--all-positions] [-o json]\n\n"
                   "Print the logits after each position (or the last) as JSON:\n"
                   "{\"ids\":[...],\"n_vocab\":N,\"logits\":[[...], ...]}. --text adds BOS.\n" CLI_ENGINE_HELP);
            return 0;
        }
        if (!strcmp(a, "--ids") && i + 1 < argc) ids_arg = argv[++i];
        else if (!strcmp(a, "--text") && i + 1 < argc) text = argv[++i];
        else if (!strcmp(a, "--all-positions")) all = true;
        else if (!strcmp(a, "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json")) i++;
        else {
            fprintf(stderr, "junction logits: unknown or incomplete option '%s'; see --help\n", a);
            return 2;
        }
    }
    if (!ids_arg == !text) {
        fprintf(stderr, "junction logits: give exactly one of --ids or --text\n");
        return 2;
    }
    int *ids = NULL, n = 0;
    if (ids_arg && parse_ids(ids_arg, &ids, &n) != 0) {
        fprintf(stderr, "junction logits: --ids must be comma-separated token ids, got '%s'\n", ids_arg);
        return 2;
    }
    eng_model *m;
    eng_ctx *c;
    int loaded = cli_load("logits", &o, &m, &c);
    if (loaded != 0) {
        free(ids);
        return loaded;
    }
    int rc = 1;
    if (text) {
        n = eng_tokenize(m, text, strlen(text), true, NULL, 0);
        ids = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
        if (!ids) goto done;
        eng_tokenize(m, text, strlen(text), true, ids, n);
    }
    char err[512];
    if (eng_decode(c, ids, n, all, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction logits: %s\n", err);
        goto done;
    }
    int V = eng_model_get_info(m)->n_vocab;
    printf("{\"ids\":[");
    for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
    printf("],\"n_vocab\":%d,\"logits\":[", V);
    for (int i = all ? 0 : n - 1; i < n; i++) {
        const float *l = eng_get_logits(c, i);
        printf("%s[", i > (all ? 0 : n - 1) ? ",\n" : "\n");
        for (int v = 0; v < V; v++) printf("%s%.9g", v ? "," : "", l[v]);
        printf("]");
    }
    printf("]}\n");
    rc = 0;
done:
    free(ids);
    eng_ctx_free(c);
    eng_model_free(m);
    return rc;
}
