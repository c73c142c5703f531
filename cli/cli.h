/* cli.h: argument helpers shared by the engine subcommands. Internal. */
#ifndef JUNCTION_CLI_H
#define JUNCTION_CLI_H

#include "localengine.h"

typedef struct {
    const char *model;
    eng_ctx_params ctx;
} cli_engine_opts;

/* Defaults: no model, the engine's context defaults. */
void cli_engine_defaults(cli_engine_opts *o);

/* If argv[*i] is an engine option (-m, -t, --ctx-size, --batch-size,
 * --kv-type), consume it and its value: returns 1. Returns 0 when it is not
 * one, -1 after printing an error for a bad value. */
int cli_engine_option(const char *cmd, int argc, char **argv, int *i, cli_engine_opts *o);

/* The value after argv[*i] as a number in [min, max]; prints the error and
 * returns -1 otherwise. */
int cli_number(const char *cmd, int argc, char **argv, int *i, double min, double max, double *out);

/* Help text for the engine options. */
#define CLI_ENGINE_HELP \
    "  -m, --model FILE       GGUF model file (required)\n" \
    "  -t, --threads N        compute threads (default: one per core)\n" \
    "  -c, --ctx-size N       KV cache positions (default: the model's training context)\n" \
    "  -b, --batch-size N     tokens per prompt-processing batch (default 512)\n" \
    "  --kv-type f16|f32      KV cache element type (default f16; f32 for exact comparisons)\n"

/* Load the model and a context (c NULL: the model only); prints errors.
 * Returns 0, or the exit status to use: 2 when no model was given, 1 when it
 * could not be loaded. */
int cli_load(const char *cmd, const cli_engine_opts *o, eng_model **m, eng_ctx **c);

#endif
