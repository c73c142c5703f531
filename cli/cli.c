/* cli.c: argument helpers shared by the engine subcommands, so that every
 * command words its errors alike and exits alike: 2 for a usage error (a bad
 * or missing argument), 1 for a runtime error (a file that cannot be loaded). */
#include "cli.h"
#include "gateway.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_engine_defaults(cli_engine_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ctx.kv_type = ENG_KV_F16;
}

int cli_number(const char *cmd, int argc, char **argv, int *i, double min, double max, double *out)
{
    const char *flag = argv[*i];
    if (*i + 1 >= argc) {
        fprintf(stderr, "junction %s: %s needs a value\n", cmd, flag);
        return -1;
    }
    const char *v = argv[++*i];
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || x < min || x > max) {
        /* %.16g: ranges print as plain integers (1073741824, not 1.07374e+09) */
        fprintf(stderr, "junction %s: %s: expected a number from %.16g to %.16g, got '%s'\n", cmd, flag, min, max, v);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_engine_option(const char *cmd, int argc, char **argv, int *i, cli_engine_opts *o)
{
    const char *a = argv[*i];
    double x;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "junction %s: %s needs a file name\n", cmd, a);
            return -1;
        }
        o->model = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (cli_number(cmd, argc, argv, i, 1, 1024, &x)) return -1;
        o->ctx.n_threads = (int)x;
        return 1;
    }
    if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        if (cli_number(cmd, argc, argv, i, 1, 1 << 24, &x)) return -1;
        o->ctx.n_ctx = (int)x;
        return 1;
    }
    if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
        if (cli_number(cmd, argc, argv, i, 1, 1 << 16, &x)) return -1;
        o->ctx.n_batch = (int)x;
        return 1;
    }
    if (!strcmp(a, "--kv-type")) {
        const char *v = *i + 1 < argc ? argv[++*i] : "";
        if (!strcmp(v, "f16")) o->ctx.kv_type = ENG_KV_F16;
        else if (!strcmp(v, "f32")) o->ctx.kv_type = ENG_KV_F32;
        else {
            fprintf(stderr, "junction %s: --kv-type must be f16 or f32, got '%s'\n", cmd, v);
            return -1;
        }
        return 1;
    }
    return 0;
}

int cli_load(const char *cmd, const cli_engine_opts *o, eng_model **m, eng_ctx **c)
{
    char err[1024];
    if (!o->model) {
        fprintf(stderr, "junction %s: no model given; use -m FILE\n", cmd);
        return 2;
    }
    if (eng_model_load(m, o->model, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction %s: %s\n", cmd, err);
        return 1;
    }
    if (c && eng_ctx_new(c, *m, &o->ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction %s: %s\n", cmd, err);
        eng_model_free(*m);
        return 1;
    }
    return 0;
}

int cli_ledger_path(const char *cmd, const char *db, const char *config, char *out, size_t len)
{
    if (db) {
        snprintf(out, len, "%s", db);
        return 0;
    }
    char err[1024];
    gw_config *cfg = malloc(sizeof(*cfg)); /* large: not on the stack */
    if (!cfg) {
        fprintf(stderr, "junction %s: out of memory\n", cmd);
        return 1;
    }
    gw_config_defaults(cfg);
    int rc = gw_config_load_file(cfg, config, err, sizeof(err)) == 0 &&
             gw_config_ledger_path(cfg, out, len, err, sizeof(err)) == 0 ? 0 : 2;
    free(cfg);
    if (rc != 0) fprintf(stderr, "junction %s: %s\n", cmd, err);
    else if (!out[0]) {
        fprintf(stderr, "junction %s: %s sets ledger.path to off: there is no ledger (set a ledger.path)\n", cmd, config);
        rc = 2;
    }
    return rc;
}
