/* cmd_pull.c: `junction pull REF`: get a model file into the cache.
 *
 * The first thing a new user needs is a model; this makes it one command,
 * as `ollama pull` does, with the file checked before it is used. The path
 * of the file goes to stdout (and nothing else does), so that scripts can
 * write `model=$(junction pull REF)`; progress and notes go to stderr.
 */
#include "commands.h"
#include "pull.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    int n;
    const cli_model_alias *a = cli_model_aliases(&n);
    char size[32];
    fprintf(out, "usage: junction pull REF [-o FILE] [--sha256 HEX] [--retries N] [--force]\n\n"
                 "Download a GGUF model file into the models cache\n"
                 "(${XDG_CACHE_HOME:-~/.cache}/junction/models) and print its path.\n"
                 "REF is one of:\n"
                 "  an alias                 from the table below\n"
                 "  hf:OWNER/REPO/FILE.gguf[@REVISION]   a file on the Hugging Face hub\n"
                 "                           (HF_ENDPOINT: another hub; HF_TOKEN: gated repositories)\n"
                 "  https://HOST/PATH        any URL\n\n"
                 "  -o, --output FILE        write to FILE instead of the cache\n"
                 "  --sha256 HEX             the file's expected SHA-256 (the hub's is used when it sends one)\n"
                 "  --retries N              attempts after a dropped connection or a server error (default 4)\n"
                 "  --force                  download again even if the file is there\n\n"
                 "An interrupted download continues where it stopped when pulled again.\n\naliases:\n");
    for (int i = 0; i < n; i++)
        fprintf(out, "  %-24s %9s  %s\n", a[i].name, cli_format_bytes(a[i].size, size, sizeof(size)), a[i].about);
    fprintf(out, "\ndocs/models.md describes the cache, gated models and offline use.\n");
}

static bool sha256_hex(const char *s)
{
    if (strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i])) return false;
    return true;
}

/* What the engine makes of the file, or why it cannot run it. */
static void describe(const char *path)
{
    cli_model_facts f;
    char err[1024], params[32];
    if (cli_model_facts_read(path, &f, err, sizeof(err)) == 0)
        fprintf(stderr, "pull: %s: %s, %s parameters, %s weights, context %d\n", path, f.name,
                cli_format_count(f.n_params, params, sizeof(params)), f.type, f.n_ctx);
    else
        fprintf(stderr, "pull: warning: the file is a valid GGUF, but junction's engine cannot run it: %s\n", err);
}

int cmd_pull(int argc, char **argv)
{
    const char *ref_arg = NULL, *output = NULL;
    cli_pull_opts o = {.max_retries = 4, .log = stderr};
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_value) {
            output = argv[++i];
        } else if (!strcmp(a, "--sha256") && has_value) {
            o.sha256 = argv[++i];
            if (!sha256_hex(o.sha256)) {
                fprintf(stderr, "junction pull: --sha256 needs 64 hexadecimal digits, got '%s'\n", o.sha256);
                return 2;
            }
        } else if (!strcmp(a, "--retries") && has_value) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > 100) {
                fprintf(stderr, "junction pull: --retries needs a number from 0 to 100, got '%s'\n", argv[i]);
                return 2;
            }
            o.max_retries = (int)v;
        } else if (!strcmp(a, "--force")) {
            force = true;
        } else if (a[0] == '-') {
            fprintf(stderr, "junction pull: unknown option '%s'%s; see `junction pull --help`\n", a,
                    has_value ? "" : " (or its value is missing)");
            return 2;
        } else if (ref_arg) {
            fprintf(stderr, "junction pull: give one REF, got '%s' and '%s'\n", ref_arg, a);
            return 2;
        } else {
            ref_arg = a;
        }
    }
    if (!ref_arg) {
        usage(stderr);
        return 2;
    }
    char err[4096], dest[4096];
    cli_model_ref ref;
    if (cli_model_ref_parse(ref_arg, &ref, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction pull: %s\n", err);
        return 2;
    }
    if (output) {
        if (snprintf(dest, sizeof(dest), "%s", output) >= (int)sizeof(dest)) {
            fprintf(stderr, "junction pull: -o: the path is too long\n");
            return 2;
        }
    } else {
        char dir[4096];
        if (!ref.file_name[0]) {
            fprintf(stderr, "junction pull: cannot tell a file name from '%s'; pass -o FILE\n", ref_arg);
            return 2;
        }
        if (cli_models_dir(dir, sizeof(dir), true, err, sizeof(err)) != 0) {
            fprintf(stderr, "junction pull: %s\n", err);
            return 1;
        }
        if (snprintf(dest, sizeof(dest), "%s/%s", dir, ref.file_name) >= (int)sizeof(dest)) {
            fprintf(stderr, "junction pull: the path in the models cache is too long; pass -o FILE\n");
            return 2;
        }
    }
    struct stat st;
    if (stat(dest, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "junction pull: %s is not a file; give -o the path of the file to write\n", dest);
        return 2;
    }
    if (!force && stat(dest, &st) == 0) {
        fprintf(stderr, "pull: %s is already here (`--force` downloads it again)\n", dest);
        printf("%s\n", dest);
        return 0;
    }
    char size[32];
    if (ref.alias)
        fprintf(stderr, "pull: %s is %s (%s)\n", ref.alias->name, ref.alias->ref,
                cli_format_bytes(ref.alias->size, size, sizeof(size)));
    fprintf(stderr, "pull: downloading %s\npull: into %s\n", ref.url, dest);
    o.token = ref.hub ? getenv("HF_TOKEN") : NULL;
    o.bar = isatty(2);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "junction pull: cannot initialize libcurl\n");
        return 1;
    }
    int rc = cli_pull(&ref, dest, &o, err, sizeof(err));
    curl_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "junction pull: %s\n", err);
        return 1;
    }
    describe(dest);
    printf("%s\n", dest);
    return 0;
}
