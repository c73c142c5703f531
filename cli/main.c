/* main.c: the junction binary: one table of subcommands.
 *
 * `junction SUBCOMMAND [options]`; each subcommand lives in its own cmd_*.c
 * and prints its own --help.
 */
#include "commands.h"
#include "junction_version.h"
#include "localengine.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"serve", cmd_serve, "run the gateway daemon (HTTP, OpenAI-style API)"},
    {"generate", cmd_generate, "generate text from a prompt with the local engine"},
    {"bench", cmd_bench, "measure the local engine's speed (like llama-bench)"},
    {"mkmodel", cmd_mkmodel, "write a Llama GGUF with deterministic random weights"},
    {"logits", cmd_logits, "print the engine's logits for a token sequence (JSON)"},
    {"inspect", cmd_inspect, "print a GGUF file's metadata and tensors"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"route", cmd_route, "score a prompt (difficulty, sensitivity, findings) without generating"},
    {"calibrate", cmd_calibrate, "fit a difficulty or sensitivity head on labelled lines"},
    {"audit", cmd_audit, "spend, savings and latency per group, from the ledger"},
    {"keys", cmd_keys, "client keys and tenants: add, list, revoke, rotate, budgets"},
    {"pull", cmd_pull, "download a model (alias, hf:OWNER/REPO/FILE.gguf or URL) into the cache"},
    {"models", cmd_models, "list or delete the cached models"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: junction SUBCOMMAND [options]\n\n"
                 "junction routes each LLM request to a local model or a frontier API,\n"
                 "and records every decision and its cost.\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`junction SUBCOMMAND --help` describes one; `junction --version` prints the\n"
                 "version and the CPU kernels in use. Docs: docs/ in the source tree.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("junction %s (kernels: %s)\n", JUNCTION_VERSION, eng_kernels_name());
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "junction: unknown subcommand '%s'; run `junction --help` for the list\n", name);
    return 2;
}
