/* cmd_models.c: `junction models`: what is in the models cache.
 *
 * Pulled files pile up at gigabytes each, so the cache has to be easy to see
 * and to prune: `models` lists each file with what the engine would make of
 * it (weight type, parameters, context), `models rm` deletes, and
 * `models path REF` tells a script where a reference is (or would be)
 * cached, which is how script/server decides whether to pull.
 */
#include "commands.h"
#include "localengine.h"
#include "pull.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cli_format_count(uint64_t n, char *buf, size_t len)
{
    if (n >= 1000000000ull) snprintf(buf, len, "%.1fB", (double)n / 1e9);
    else if (n >= 1000000ull) snprintf(buf, len, "%.1fM", (double)n / 1e6);
    else if (n >= 1000ull) snprintf(buf, len, "%.1fK", (double)n / 1e3);
    else snprintf(buf, len, "%llu", (unsigned long long)n);
    return buf;
}

int cli_model_facts_read(const char *path, cli_model_facts *f, char *err, size_t errlen)
{
    eng_model *m;
    if (eng_model_load(&m, path, err, errlen) != 0) return -1;
    const eng_model_info *h = eng_model_get_info(m);
    uint64_t embd = (uint64_t)h->n_embd, kv = embd / (uint64_t)h->n_head * (uint64_t)h->n_head_kv;
    uint64_t per_layer = 2 * embd * embd + 2 * embd * kv + 3 * embd * (uint64_t)h->n_ff + 2 * embd;
    f->n_params = (uint64_t)h->n_vocab * embd * (h->tied_output ? 1 : 2) + (uint64_t)h->n_layer * per_layer + embd;
    f->n_ctx = h->n_ctx_train;
    snprintf(f->type, sizeof(f->type), "%s", h->weight_type);
    snprintf(f->name, sizeof(f->name), "%s", h->name);
    eng_model_free(m);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d && errno != ENOENT) {
        fprintf(stderr, "junction models: cannot read %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        bool model = len > 5 && !strcmp(e->d_name + len - 5, ".gguf");
        bool part = len > 5 && !strcmp(e->d_name + len - 5, ".part");
        char **more = model || part ? realloc(names, (n + 1) * sizeof(*names)) : NULL;
        if (!more) continue;
        names = more;
        if ((names[n] = strdup(e->d_name))) n++;
    }
    if (d) closedir(d);
    if (n == 0) {
        printf("no models in %s; get one with `junction pull %s`\n", dir, CLI_DEFAULT_MODEL);
        free(names);
        return 0;
    }
    qsort(names, n, sizeof(*names), by_name);
    printf("models in %s:\n%-44s %10s  %-6s %7s %8s\n", dir, "FILE", "SIZE", "TYPE", "PARAMS", "CONTEXT");
    for (size_t i = 0; i < n; i++) {
        char path[4096], size[32], params[32], ctx[16], err[1024];
        int path_len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (path_len < 0 || (size_t)path_len >= sizeof(path)) { /* cannot be opened by name anyway */
            printf("%-44s (its path is longer than %zu bytes)\n", names[i], sizeof(path) - 1);
            free(names[i]);
            continue;
        }
        struct stat st;
        uint64_t bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
        cli_model_facts f;
        size_t len = strlen(names[i]);
        bool part = !strcmp(names[i] + len - 5, ".part");
        printf("%-44s %10s  ", names[i], cli_format_bytes(bytes, size, sizeof(size)));
        if (part)
            printf("(a download in progress or interrupted: `junction pull` it again to continue)\n");
        else if (cli_model_facts_read(path, &f, err, sizeof(err)) == 0)
            printf("%-6s %7s %8s\n", f.type, cli_format_count(f.n_params, params, sizeof(params)),
                   (snprintf(ctx, sizeof(ctx), "%d", f.n_ctx), ctx));
        else
            printf("(junction cannot run it: %s)\n", strchr(err, ':') ? strchr(err, ':') + 2 : err);
        free(names[i]);
    }
    free(names);
    return 0;
}

/* The cache file a NAME stands for: a file name in the cache, or a reference. */
static int cached_path(const char *dir, const char *name, char *out, size_t len)
{
    char err[1024];
    cli_model_ref r;
    const char *file = name;
    if (strchr(name, '/')) {
        if (cli_model_ref_parse(name, &r, err, sizeof(err)) != 0 || !r.file_name[0]) {
            fprintf(stderr, "junction models: '%s': give a file name from `junction models`, an alias or a "
                            "reference naming a file\n", name);
            return -1;
        }
        file = r.file_name;
    } else if (cli_model_alias_find(name) && cli_model_ref_parse(name, &r, err, sizeof(err)) == 0) {
        file = r.file_name;
    }
    if (snprintf(out, len, "%s/%s", dir, file) >= (int)len) {
        fprintf(stderr, "junction models: '%s': the name is too long\n", name);
        return -1;
    }
    return 0;
}

static int rm(const char *dir, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: junction models rm NAME...\n");
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        char path[4096], part[4200];
        if (cached_path(dir, argv[i], path, sizeof(path)) != 0) {
            rc = 1;
            continue;
        }
        snprintf(part, sizeof(part), "%s.part", path);
        bool had_part = unlink(part) == 0;
        if (had_part) printf("deleted %s\n", part);
        if (unlink(path) == 0) {
            printf("deleted %s\n", path);
        } else if (!had_part || errno != ENOENT) {
            fprintf(stderr, "junction models: cannot delete %s: %s; `junction models` lists what is there\n", path,
                    strerror(errno));
            rc = 1;
        }
    }
    return rc;
}

static int path_of(const char *dir, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: junction models path REF\n");
        return 2;
    }
    char err[1024], path[4096];
    cli_model_ref r;
    if (cli_model_ref_parse(argv[1], &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction models: %s\n", err);
        return 2;
    }
    if (!r.file_name[0]) {
        fprintf(stderr, "junction models: cannot tell a file name from '%s'\n", argv[1]);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, r.file_name);
    printf("%s\n", path);
    return access(path, R_OK) == 0 ? 0 : 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: junction models [rm NAME... | path REF]\n\n"
                 "List the models cache (${XDG_CACHE_HOME:-~/.cache}/junction/models): each file\n"
                 "with its size, weight type, parameters and training context.\n\n"
                 "  rm NAME...   delete cached files (a file name, an alias or a reference),\n"
                 "               with any partial download of them\n"
                 "  path REF     print where REF is cached; exit status 0 if it is there, 1 if not\n\n"
                 "`junction pull` fills the cache; docs/models.md describes it.\n");
}

int cmd_models(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    char dir[4096], err[1024];
    if (cli_models_dir(dir, sizeof(dir), false, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction models: %s\n", err);
        return 1;
    }
    static const struct {
        const char *name;
        int (*run)(const char *dir, int argc, char **argv);
    } actions[] = {{"rm", rm}, {"path", path_of}};
    if (argc < 2) return list(dir);
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (!strcmp(argv[1], actions[i].name)) return actions[i].run(dir, argc - 1, argv + 1);
    fprintf(stderr, "junction models: unknown action '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
