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

/* The ledger file: `db` (--db), else `config`'s ledger.path (--config).
 * Prints the error and returns the exit status (2 usage, 1 runtime) when
 * there is none; 0 with the path in `out`. */
int cli_ledger_path(const char *cmd, const char *db, const char *config, char *out, size_t len);

/* Load the model and a context (c NULL: the model only); prints errors.
 * Returns 0, or the exit status to use: 2 when no model was given, 1 when it
 * could not be loaded. */
int cli_load(const char *cmd, const cli_engine_opts *o, eng_model **m, eng_ctx **c);

/* ---- classification (cmd_route.c; used by route and calibrate) ---- */
#include "classifier.h"
#include "scoring.h"
/* One request: msgs (heap) point into the cJSON; text (heap) is the user's
 * text (what the lexical features read); messages is the chat the local
 * model reads (a bare prompt or text becomes one user message, owned). */
typedef struct {
    cls_message *msgs;
    int n_msgs;
    char *text;
    size_t len;
    const cJSON *messages;
    cJSON *owned;
} cli_request;
int cli_request_from_json(const cJSON *obj, cli_request *r, char *err, size_t errlen); /* "messages" | "prompt" | "text" */
/* TEXT as one user message (route's argument). */
int cli_request_from_text(const char *text, cli_request *r, char *err, size_t errlen);
void cli_request_free(cli_request *r);
typedef struct {
    eng_model *model;
    eng_ctx *ctx;
    bool llama2_chat;          /* the chat template the daemon would use (config chat_template, "auto") */
    char chat_template[16];
    int layer;
    int max_tokens;
    cls_detector *detector;
    char *difficulty_head, *sensitivity_head;
} cli_classifier;
int cli_classifier_open(cli_classifier *c, const char *cmd, const char *config, const cli_engine_opts *eo);
void cli_classifier_close(cli_classifier *c);
int cli_default_layer(const cli_classifier *c);
int cli_classify(const cli_classifier *c, const cli_request *r, cls_features *f, cls_findings *findings,
                 double *timing_ms, char *err, size_t errlen);
void cli_features_free(cls_features *f); /* frees the hidden state too */

#endif
