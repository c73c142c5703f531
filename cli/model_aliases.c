/* model_aliases.c: short names for known-good model files.
 *
 * Users should not need to know a repository's file naming to get a model
 * that runs: `junction pull llama-2-7b-chat` names a Llama 2 chat file of a
 * weight type the engine has kernels for. One table; to add a model, add a
 * row (the file must load with `junction generate`, and its chat template
 * should be Llama 2's). Sizes are the hub's listing; the download itself is
 * checked against the size and SHA-256 the hub sends with the file.
 */
#include "pull.h"

#include <string.h>

#define BLOKE_7B_CHAT "hf:TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat."

static const cli_model_alias aliases[] = {
    {CLI_DEFAULT_MODEL, BLOKE_7B_CHAT "Q4_K_M.gguf", 4081004224ull,
     "Llama 2 7B chat, Q4_K_M (Q4_K with Q6_K): the default, best quality per byte"},
    {"llama-2-7b-chat:q4_k_m", BLOKE_7B_CHAT "Q4_K_M.gguf", 4081004224ull,
     "the same file as llama-2-7b-chat"},
    {"llama-2-7b-chat:q4_0", BLOKE_7B_CHAT "Q4_0.gguf", 3825806784ull,
     "Llama 2 7B chat, Q4_0: the smallest file"},
    {"llama-2-7b-chat:q8_0", BLOKE_7B_CHAT "Q8_0.gguf", 7161089728ull,
     "Llama 2 7B chat, Q8_0: nearly the original's quality, twice the memory"},
};

const cli_model_alias *cli_model_aliases(int *n)
{
    *n = (int)(sizeof(aliases) / sizeof(aliases[0]));
    return aliases;
}

const cli_model_alias *cli_model_alias_find(const char *name)
{
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcmp(aliases[i].name, name) == 0) return &aliases[i];
    return NULL;
}
