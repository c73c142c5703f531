/* test_pull.c: `junction pull`, `junction models` and script/server's first
 * run, against the fake hub (tests/fake/fake_hub.c) on loopback.
 *
 * Each test gets an empty cache (XDG_CACHE_HOME in a scratch folder) and a
 * fresh fake hub serving ../shared/models/stories260K.gguf, and checks what a
 * user would: the exit status, the file that lands in the cache (byte for
 * byte), what is left behind, what the hub was asked, and the message.
 */
#include "testlib.h"
#include "gateway.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#ifndef FAKE_HUB_BIN
#error "FAKE_HUB_BIN must name the fake hub binary"
#endif

#define GGUF JUNCTION_SHARED_DIR "/models/stories260K.gguf"

extern char **environ;

typedef struct {
    char dir[64];          /* scratch: the cache and state live here */
    char cache_env[128];   /* XDG_CACHE_HOME=... */
    char state_env[128];   /* XDG_STATE_HOME=... */
    char models[160];      /* the models cache folder */
    char record[128];      /* the hub's request log */
    char endpoint_env[64]; /* HF_ENDPOINT=http://127.0.0.1:PORT */
    char base[48];         /* http://127.0.0.1:PORT */
    pid_t hub;
} fixture;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    if (len) *len = got;
    return buf;
}

/* Start the hub; its first line of stdout names the port. */
static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/junction-pull-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->cache_env, sizeof(fx->cache_env), "XDG_CACHE_HOME=%s/cache", fx->dir);
    snprintf(fx->state_env, sizeof(fx->state_env), "XDG_STATE_HOME=%s/state", fx->dir);
    snprintf(fx->models, sizeof(fx->models), "%s/cache/junction/models", fx->dir);
    snprintf(fx->record, sizeof(fx->record), "%s/hub.jsonl", fx->dir);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fx->hub = fork();
    if (fx->hub == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl(FAKE_HUB_BIN, FAKE_HUB_BIN, "--gguf", GGUF, "--record", fx->record, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char line[128] = "";
    size_t have = 0;
    struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
    while (!strchr(line, '\n') && have < sizeof(line) - 1 && poll(&p, 1, 10000) > 0) {
        ssize_t n = read(pipefd[0], line + have, sizeof(line) - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        line[have] = '\0';
    }
    close(pipefd[0]);
    const char *at = strstr(line, "127.0.0.1:");
    assert_non_null(at);
    snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%d", atoi(at + 10));
    snprintf(fx->endpoint_env, sizeof(fx->endpoint_env), "HF_ENDPOINT=%s", fx->base);
    *state = fx;
    return 0;
}


static int teardown(void **state)
{
    fixture *fx = *state;
    kill(fx->hub, SIGTERM);
    waitpid(fx->hub, NULL, 0);
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* ---- running things ---- */

/* The environment for a child: `mine` ("K=V"; the first of a name wins) on top
 * of ours, with no name twice (bash keeps the last of duplicates, getenv the
 * first). Caller frees the array (not the strings). */
static char **make_env(const char *const *mine, int n)
{
    size_t n_env = 0;
    while (environ[n_env]) n_env++;
    char **envp = calloc(n_env + (size_t)n + 1, sizeof(char *));
    size_t k = 0;
    for (int i = 0; i < n; i++) envp[k++] = (char *)mine[i];
    for (size_t i = 0; i < n_env; i++) envp[k++] = environ[i];
    size_t out = 0;
    for (size_t i = 0; i < k; i++) {
        size_t len = strcspn(envp[i], "=");
        bool seen = false;
        for (size_t j = 0; j < out && !seen; j++)
            seen = strncmp(envp[j], envp[i], len) == 0 && envp[j][len] == '=';
        if (!seen) envp[out++] = envp[i];
    }
    envp[out] = NULL;
    return envp;
}

typedef struct {
    int status;
    char *out;   /* stdout */
    char *err;   /* stderr */
} result;

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

/* Run argv (NULL-terminated) with the fixture's environment plus `extra`
 * ("K=V", NULL-terminated, may be NULL); a file-size limit when fsize > 0. */
static result run_env(const fixture *fx, const char *const *argv, const char *const *extra, long fsize)
{
    char out_path[160], err_path[160];
    snprintf(out_path, sizeof(out_path), "%s/stdout", fx->dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr", fx->dir);
    const char *mine[16];
    int n = 0;
    for (int i = 0; extra && extra[i] && n < 12; i++) mine[n++] = extra[i];
    mine[n++] = fx->cache_env;
    mine[n++] = fx->state_env;
    mine[n++] = fx->endpoint_env;
    char **envp = make_env(mine, n);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        if (fsize > 0) {
            struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    free(envp);
    int st = 0;
    waitpid(pid, &st, 0);
    result r = {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), slurp(out_path, NULL), slurp(err_path, NULL)};
    if (r.status != 0) fprintf(stderr, "[%s %s -> %d]\n%s", argv[1], argv[2] ? argv[2] : "", r.status, r.err);
    return r;
}

static result junction(const fixture *fx, const char *const *extra, long fsize, const char *a1, const char *a2,
                       const char *a3, const char *a4)
{
    const char *argv[] = {JUNCTION_BIN, a1, a2, a3, a4, NULL};
    return run_env(fx, argv, extra, fsize);
}

static bool same_as_gguf(const char *path)
{
    size_t a = 0, b = 0;
    char *x = slurp(path, &a), *y = slurp(GGUF, &b);
    bool same = x && y && a == b && memcmp(x, y, a) == 0;
    free(x);
    free(y);
    return same;
}

static bool exists(const fixture *fx, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->models, name);
    return access(path, F_OK) == 0;
}

static long file_size(const fixture *fx, const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", fx->models, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Lines of the hub's record containing `needle`. */
static int hub_count(const fixture *fx, const char *needle)
{
    char *s = slurp(fx->record, NULL);
    int n = 0;
    for (char *line = s; line && *line;) {
        char *eol = strchr(line, '\n');
        if (eol) *eol = '\0';
        if (strstr(line, needle)) n++;
        if (!eol) break;
        line = eol + 1;
    }
    free(s);
    return n;
}

/* ---- pull ---- */

static void test_pull_hub_file_into_cache(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 0, "pull", "hf:test/tiny/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 0);
    char want[256];
    snprintf(want, sizeof(want), "%s/model.gguf\n", fx->models);
    assert_string_equal(r.out, want); /* the path, and nothing else, on stdout */
    assert_non_null(strstr(r.err, " verified"));
    want[strlen(want) - 1] = '\0';
    assert_true(same_as_gguf(want));
    assert_false(exists(fx, "model.gguf.part"));
    /* The hub's way: resolve answers with a redirect, the storage with the bytes. */
    assert_int_equal(hub_count(fx, "\"path\":\"/test/tiny/resolve/main/model.gguf\""), 1);
    assert_int_equal(hub_count(fx, "\"path\":\"/storage/test/tiny/model.gguf\""), 1);
    result_free(&r);

    /* A second pull finds it and asks nothing. */
    r = junction(fx, NULL, 0, "pull", "hf:test/tiny/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "already here"));
    assert_int_equal(hub_count(fx, "resolve"), 1);
    result_free(&r);
}

static void test_models_list_path_rm(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 0, "models", NULL, NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "no models in"));
    result_free(&r);
    r = junction(fx, NULL, 0, "models", "path", "hf:test/tiny/model.gguf", NULL);
    assert_int_equal(r.status, 1);
    result_free(&r);

    r = junction(fx, NULL, 0, "pull", "hf:test/tiny/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 0);
    result_free(&r);
    r = junction(fx, NULL, 0, "models", NULL, NULL, NULL);
    assert_int_equal(r.status, 0);
    /* stories260K: F32 weights, 2048 positions of training context */
    const char *line = strstr(r.out, "model.gguf");
    assert_non_null(line);
    assert_non_null(strstr(line, "1.1 MiB"));
    assert_non_null(strstr(line, "F32"));
    assert_non_null(strstr(line, "2048"));
    result_free(&r);
    r = junction(fx, NULL, 0, "models", "path", "hf:test/tiny/model.gguf", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "/junction/models/model.gguf"));
    result_free(&r);

    r = junction(fx, NULL, 0, "models", "rm", "model.gguf", NULL);
    assert_int_equal(r.status, 0);
    assert_false(exists(fx, "model.gguf"));
    result_free(&r);
    r = junction(fx, NULL, 0, "models", "rm", "model.gguf", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cannot delete"));
    result_free(&r);
}

static void test_gated_needs_token(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 0, "pull", "hf:test/gated/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "test/gated is gated"));
    assert_non_null(strstr(r.err, "HF_TOKEN"));
    assert_non_null(strstr(r.err, "accept the licence"));
    assert_false(exists(fx, "model.gguf"));
    assert_false(exists(fx, "model.gguf.part"));
    result_free(&r);

    const char *wrong[] = {"HF_TOKEN=hf_wrong", NULL};
    r = junction(fx, wrong, 0, "pull", "hf:test/gated/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "refused HF_TOKEN"));
    assert_null(strstr(r.err, "hf_wrong")); /* a token is never printed */
    result_free(&r);

    const char *token[] = {"HF_TOKEN=hf_test_token", NULL};
    r = junction(fx, token, 0, "pull", "hf:test/gated/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(hub_count(fx, "\"auth\":\"Bearer hf_test_token\""), 2); /* resolve + same-host storage */
    result_free(&r);
    char path[256];
    snprintf(path, sizeof(path), "%s/model.gguf", fx->models);
    assert_true(same_as_gguf(path));
}

static void test_missing_file_lists_repository(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 0, "pull", "hf:test/tiny/model.Q9_K.gguf", NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "model.Q9_K.gguf is not in test/tiny (revision main)"));
    assert_non_null(strstr(r.err, "model.gguf, badsum.gguf, notgguf.gguf"));
    assert_null(strstr(r.err, "README.md"));
    assert_false(exists(fx, "model.Q9_K.gguf.part"));
    result_free(&r);

    r = junction(fx, NULL, 0, "pull", "hf:nobody/nothing/x.gguf", NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "there is no repository nobody/nothing"));
    result_free(&r);
}

static void test_dropped_connection_resumes_next_pull(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 0, "pull", "hf:test/tiny/drop-a.gguf", "--retries", "0");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "is kept: run the same command again to continue"));
    long part = file_size(fx, "drop-a.gguf.part");
    assert_true(part > 0);
    assert_false(exists(fx, "drop-a.gguf"));
    result_free(&r);

    r = junction(fx, NULL, 0, "pull", "hf:test/tiny/drop-a.gguf", NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "resuming drop-a.gguf"));
    char range[64];
    snprintf(range, sizeof(range), "\"range\":\"bytes=%ld-\"", part);
    assert_int_equal(hub_count(fx, range), 2); /* resolve and storage both saw it */
    char path[256];
    snprintf(path, sizeof(path), "%s/drop-a.gguf", fx->models);
    assert_true(same_as_gguf(path));
    assert_false(exists(fx, "drop-a.gguf.part"));
    result_free(&r);
}

static void test_dropped_connection_retried_in_one_pull(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 0, "pull", "hf:test/tiny/drop-b.gguf", NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "retrying in 1 s"));
    char path[256];
    snprintf(path, sizeof(path), "%s/drop-b.gguf", fx->models);
    assert_true(same_as_gguf(path));
    result_free(&r);
}

static void test_wrong_checksum_rejected(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 0, "pull", "hf:test/tiny/badsum.gguf", NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "checksum mismatch"));
    assert_non_null(strstr(r.err, "X-Linked-Etag"));
    assert_false(exists(fx, "badsum.gguf"));
    assert_false(exists(fx, "badsum.gguf.part"));
    result_free(&r);

    /* --sha256 is checked too, and wins over the hub's. */
    r = junction(fx, NULL, 0, "pull", "hf:test/tiny/model.gguf", "--sha256",
                 "1111111111111111111111111111111111111111111111111111111111111111");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "--sha256 says 1111"));
    assert_false(exists(fx, "model.gguf"));
    result_free(&r);
}

static void test_not_gguf_rejected(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 0, "pull", "hf:test/tiny/notgguf.gguf", NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, " verified")); /* the bytes were the hub's... */
    assert_non_null(strstr(r.err, "not a valid GGUF")); /* ...but not a model */
    assert_false(exists(fx, "notgguf.gguf"));
    assert_false(exists(fx, "notgguf.gguf.part"));
    result_free(&r);
}

static void test_disk_full_says_how_much(void **state)
{
    fixture *fx = *state;
    result r = junction(fx, NULL, 256 << 10, "pull", "hf:test/tiny/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cannot write model.gguf: the download needs "));
    assert_non_null(strstr(r.err, " KiB more and ")); /* 1.1 MiB less the 256 KiB written */
    assert_non_null(strstr(r.err, " is free there (File too large"));
    assert_int_equal(file_size(fx, "model.gguf.part"), 256 << 10); /* kept, to continue */
    result_free(&r);
    /* With room again, the same command finishes it. */
    r = junction(fx, NULL, 0, "pull", "hf:test/tiny/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "resuming model.gguf at 256.0 KiB"));
    result_free(&r);
}

static void test_offline_says_what_to_do(void **state)
{
    fixture *fx = *state;
    const char *closed[] = {"HF_ENDPOINT=http://127.0.0.1:1", NULL};
    result r = junction(fx, closed, 0, "pull", "hf:test/tiny/model.gguf", NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cannot reach 127.0.0.1:1"));
    assert_non_null(strstr(r.err, "download the file elsewhere and pass -m FILE"));
    assert_false(exists(fx, "model.gguf.part"));
    result_free(&r);
}

static void test_plain_url_and_output(void **state)
{
    fixture *fx = *state;
    char url[160], out[160];
    snprintf(url, sizeof(url), "%s/storage/test/tiny/model.gguf", fx->base);
    snprintf(out, sizeof(out), "%s/elsewhere.gguf", fx->dir);
    result r = junction(fx, NULL, 0, "pull", url, "-o", out);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "the server sent no checksum"));
    assert_true(same_as_gguf(out));
    assert_false(exists(fx, "model.gguf")); /* -o: not the cache */
    result_free(&r);
}

static void test_bad_references(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *ref, *says;
    } cases[] = {
        {"llama-9-chat", "unknown model 'llama-9-chat': give an alias (llama-2-7b-chat, "},
        {"hf:onlyowner", "expected hf:OWNER/REPO/FILE.gguf"},
        {"hf:a/b/../x.gguf", "expected hf:OWNER/REPO/FILE.gguf"},
        {"hf:a b/c/x.gguf", "letters, digits"},
        {"https://example.com/", "cannot tell a file name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result r = junction(fx, NULL, 0, "pull", cases[i].ref, NULL, NULL);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, cases[i].says));
        result_free(&r);
    }
    assert_int_equal(hub_count(fx, "GET"), 0);
}

static void test_aliases_resolve_to_hub_files(void **state)
{
    fixture *fx = *state;
    /* Where an alias would land, without fetching it. */
    result r = junction(fx, NULL, 0, "models", "path", "llama-2-7b-chat:q8_0", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "/junction/models/llama-2-7b-chat.Q8_0.gguf"));
    result_free(&r);
    r = junction(fx, NULL, 0, "pull", "--help", NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "llama-2-7b-chat:q4_0"));
    result_free(&r);
}

/* ---- the frontier from a key ---- */

static void test_env_upstreams(void **state)
{
    (void)state;
    static gw_config cfg;
    char err[512];
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("OPENAI_API_KEY");
    gw_config_defaults(&cfg);
    assert_int_equal(gw_config_add_env_upstreams(&cfg, NULL, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_upstreams, 0);

    setenv("OPENAI_API_KEY", "sk-test", 1);
    setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1", 1);
    assert_int_equal(gw_config_add_env_upstreams(&cfg, NULL, err, sizeof(err)), 1);
    assert_int_equal(cfg.n_upstreams, 1);
    const up_def *d = &cfg.upstreams[0];
    assert_string_equal(d->name, "openai");
    assert_int_equal(d->provider, UP_OPENAI);
    assert_int_equal(d->zone, UP_ZONE_EXTERNAL);
    assert_string_equal(d->base_url, "http://127.0.0.1:9/v1");
    assert_string_equal(d->api_key_env, "OPENAI_API_KEY");
    assert_true(d->model[0] != '\0');
    assert_true(d->price_input_per_mtok > 0 && d->price_output_per_mtok > d->price_input_per_mtok);
    /* Called again: an upstream of that name is there already. */
    assert_int_equal(gw_config_add_env_upstreams(&cfg, NULL, err, sizeof(err)), 0);

    setenv("ANTHROPIC_API_KEY", "sk-ant-test", 1);
    unsetenv("ANTHROPIC_BASE_URL");
    assert_int_equal(gw_config_add_env_upstreams(&cfg, NULL, err, sizeof(err)), 1);
    assert_string_equal(cfg.upstreams[1].name, "anthropic");
    assert_int_equal(cfg.upstreams[1].provider, UP_ANTHROPIC);
    assert_string_equal(cfg.upstreams[1].base_url, "https://api.anthropic.com/v1");

    gw_config_defaults(&cfg);
    setenv("OPENAI_BASE_URL", "api.openai.com", 1);
    assert_int_equal(gw_config_add_env_upstreams(&cfg, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "OPENAI_BASE_URL='api.openai.com': expected an http:// or https:// URL"));
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    unsetenv("ANTHROPIC_API_KEY");
}

/* ---- script/server's first run ---- */

typedef struct {
    pid_t pid;       /* its process group too */
    char log[160];
    char url[64];
} server;

static int server_start(const fixture *fx, server *s, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->log, sizeof(s->log), "%s/server.log", fx->dir);
    const char *env[16];
    int n = 0;
    for (int i = 0; extra && extra[i] && n < 8; i++) env[n++] = extra[i];
    env[n++] = "JUNCTION_BIN=" JUNCTION_BIN;
    env[n++] = "JUNCTION_DEFAULT_MODEL=hf:test/tiny/model.gguf";
    env[n++] = fx->cache_env;
    env[n++] = fx->state_env;
    env[n++] = fx->endpoint_env;
    char **envp = make_env(env, n);
    unlink(s->log); /* else the wait below may read the previous run's log */
    s->pid = fork();
    if (s->pid == 0) {
        setpgid(0, 0);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        char *argv[] = {(char *)JUNCTION_SOURCE_DIR "/script/server", (char *)"--listen", (char *)"127.0.0.1:0",
                        (char *)"--threads", (char *)"1", NULL};
        execve(argv[0], argv, envp);
        _exit(127);
    }
    free(envp);
    static const char listening[] = "listening on http://127.0.0.1:";
    double deadline = now_seconds() + 60;
    while (now_seconds() < deadline) {
        char *log = slurp(s->log, NULL);
        const char *at = log ? strstr(log, listening) : NULL;
        if (at) snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", atoi(at + strlen(listening)));
        free(log);
        if (at) return 0;
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) break;
        usleep(20000);
    }
    char *log = slurp(s->log, NULL);
    fprintf(stderr, "script/server did not start; its output:\n%s\n", log ? log : "(none)");
    free(log);
    return -1;
}

static void server_stop(server *s)
{
    if (s->pid > 0) {
        kill(-s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
}

static void test_server_first_run_pulls_and_answers(void **state)
{
    fixture *fx = *state;
    server s;
    assert_int_equal(server_start(fx, &s, NULL), 0);
    char *log = slurp(s.log, NULL);
    assert_non_null(strstr(log, "no local model yet: pulling the default, hf:test/tiny/model.gguf"));
    assert_non_null(strstr(log, "script/server --no-model"));
    free(log);
    assert_true(exists(fx, "model.gguf"));

    long status;
    cJSON *j = http_post_json(s.url, "/v1/chat/completions",
                              "{\"model\":\"local\",\"max_tokens\":8,\"temperature\":0,"
                              "\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}",
                              &status, NULL);
    assert_int_equal(status, 200);
    const cJSON *content = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message"), "content");
    assert_true(cJSON_IsString(content) && content->valuestring[0] != '\0');
    assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "model");
    cJSON_Delete(j);
    server_stop(&s);

    /* The second start serves the cached file without asking the hub. */
    assert_int_equal(server_start(fx, &s, NULL), 0);
    log = slurp(s.log, NULL);
    assert_null(strstr(log, "pulling"));
    free(log);
    assert_int_equal(hub_count(fx, "resolve"), 1);
    server_stop(&s);
}

static void test_server_offline_starts_without_model(void **state)
{
    fixture *fx = *state;
    server s;
    const char *offline[] = {"HF_ENDPOINT=http://127.0.0.1:1", NULL};
    assert_int_equal(server_start(fx, &s, offline), 0);
    char *log = slurp(s.log, NULL);
    assert_non_null(strstr(log, "cannot reach 127.0.0.1:1"));
    assert_non_null(strstr(log, "starting WITHOUT a local model"));
    free(log);
    http_response r;
    char url[128];
    snprintf(url, sizeof(url), "%s/readyz", s.url);
    assert_int_equal(http_request("GET", url, NULL, 0, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"local_model\":false"));
    http_response_free(&r);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pull_hub_file_into_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_models_list_path_rm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gated_needs_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_lists_repository, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_connection_resumes_next_pull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_connection_retried_in_one_pull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_checksum_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_gguf_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_says_how_much, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_says_what_to_do, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_url_and_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases_resolve_to_hub_files, setup, teardown),
        cmocka_unit_test(test_env_upstreams),
        cmocka_unit_test_setup_teardown(test_server_first_run_pulls_and_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_offline_starts_without_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
