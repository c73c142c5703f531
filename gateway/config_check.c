/* config_check.c: what the settings name, checked against the outside world.
 *
 * config.c knows a setting's type and range; whether the model file is a
 * Llama GGUF file, the listen host resolves, the key variables are set, the
 * files can be written, the operator's detectors compile, the routing rules
 * name real routes, and protected mode lets the daemon listen with the keys
 * the ledger holds is only known by looking. gw_config_check looks, once,
 * for `serve` (before it starts) and `--check-config` alike, so they refuse
 * exactly the same things with the same messages: the rules and detectors
 * are built by the very functions the daemon starts with.
 */
#include "gateway.h"
#include "internal.h"
#include "classify.h"
#include "clients.h"

#include "gguf.h" /* the model check reads the header only */

#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int gw_config_ledger_path(const gw_config *cfg, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *p = cfg->ledger.path;
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;
    if (!strcmp(p, "off")) n = snprintf(out, outlen, "%s", "");
    else if (*p) n = snprintf(out, outlen, "%s", p);
    else if (state && state[0] == '/') n = snprintf(out, outlen, "%s/junction/ledger.db", state);
    else if (home && *home) n = snprintf(out, outlen, "%s/.local/state/junction/ledger.db", home);
    else {
        snprintf(err, errlen, "ledger.path: the default place is under $XDG_STATE_HOME or $HOME, and neither is "
                              "set; set one, or give --ledger PATH (or --ledger off)");
        return -1;
    }
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "ledger.path: the ledger's path is longer than %zu bytes", outlen - 1);
        return -1;
    }
    return 0;
}

/* Can `path` be opened for appending, or created? It exists as a writable
 * file, or its directory is writable; with `make_dirs`, the directories that
 * are missing will be created, so the nearest existing one must be writable. */
static int check_creatable(const char *what, const char *path, bool make_dirs, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode) || access(path, W_OK) != 0) {
            snprintf(err, errlen, "%s: %s exists but is not a file this process may write", what, path);
            return -1;
        }
        return 0;
    }
    char dir[GW_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    for (;;) {
        if (!slash) snprintf(dir, sizeof(dir), ".");
        else if (slash == dir) dir[1] = '\0';
        else *slash = '\0';
        if (stat(dir, &st) == 0 || !make_dirs || !slash || slash == dir) break;
        slash = strrchr(dir, '/');
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: cannot create %s: directory %s does not exist", what, path, dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "%s: cannot create %s: directory %s is not writable", what, path, dir);
        return -1;
    }
    return 0;
}

static int check_listen_host(const gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    char host[256];
    unsigned short port;
    if (gw_listen_parse(cfg->listen, host, sizeof(host), &port, err, errlen) != 0) return -1;
    unsigned char addr[16];
    bool numeric = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (!numeric) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0) {
            snprintf(err, errlen, "listen address '%s': host '%s' does not resolve (%s)", cfg->listen, host,
                     gai_strerror(rc));
            return -1;
        }
        freeaddrinfo(res);
    }
    if (report) fprintf(report, "listen: %s (host %s, port %u%s)\n", cfg->listen, host, port,
                        port == 0 ? ": any free one" : "");
    return 0;
}

static int check_model(const gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    if (!cfg->model[0]) {
        if (report) fprintf(report, "model: none (no local engine)\n");
        return 0;
    }
    gguf_file *f;
    char detail[768];
    if (gguf_open(&f, cfg->model, detail, sizeof(detail)) != 0) {
        snprintf(err, errlen, "model: %s; give a Llama GGUF file with --model", detail);
        return -1;
    }
    gguf_str arch = {"", 0};
    uint64_t n_layer = 0;
    int rc = -1;
    if (!gguf_get_str(f, "general.architecture", &arch) || !gguf_str_eq(arch, "llama")) {
        snprintf(err, errlen, "model: %s: architecture '%.*s' is not llama; junction runs Llama models only",
                 cfg->model, (int)(arch.len > 40 ? 40 : arch.len), arch.ptr);
    } else if (!gguf_get_u64(f, "llama.block_count", &n_layer) || n_layer < 1 || n_layer > 1024) {
        snprintf(err, errlen, "model: %s: llama.block_count is missing or out of range", cfg->model);
    } else if ((uint64_t)cfg->classifier.layer > n_layer) {
        snprintf(err, errlen, "classifier.layer: %lld is past the model's %llu layers; use 1 to %llu, or 0 for "
                 "n_layer/4", cfg->classifier.layer, (unsigned long long)n_layer, (unsigned long long)n_layer);
    } else {
        char id[256];
        gw_model_id(cfg->model, id, sizeof(id));
        if (report) fprintf(report, "model: %s (id '%s'): GGUF v%u, llama, %llu layers, %llu tensors\n",
                            cfg->model, id, f->version, (unsigned long long)n_layer,
                            (unsigned long long)f->n_tensors);
        rc = 0;
    }
    gguf_close(f);
    return rc;
}

/* Keys are shown by their last four characters at most, and only when long. */
static void mask_key(const char *key, char *out, size_t len)
{
    size_t n = strlen(key);
    if (n >= 16) snprintf(out, len, "****%s (%zu characters)", key + n - 4, n);
    else snprintf(out, len, "**** (%zu characters)", n);
}

static int check_upstreams(const gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    char id[256] = "";
    if (cfg->model[0]) gw_model_id(cfg->model, id, sizeof(id));
    for (int i = 0; i < cfg->n_upstreams; i++) {
        const up_def *d = &cfg->upstreams[i];
        if (id[0] && !strcmp(d->name, id)) {
            snprintf(err, errlen, "upstream '%s' is named like the local model (from %s), which clients also "
                     "select by that name; rename the upstream", d->name, cfg->model);
            return -1;
        }
        const char *key = d->api_key_env[0] ? getenv(d->api_key_env) : NULL;
        if (d->api_key_env[0] && !(key && *key)) {
            snprintf(err, errlen, "upstream '%s': environment variable %s is not set; export the API key there "
                     "(keys are never read from the config file)", d->name, d->api_key_env);
            return -1;
        }
        char shown[64] = "";
        if (key) mask_key(key, shown, sizeof(shown));
        if (report) fprintf(report, "upstream '%s': %s at %s, zone %s, key %s%s%s%s\n", d->name,
                            d->provider == UP_ANTHROPIC ? "anthropic" : "openai", d->base_url,
                            d->zone == UP_ZONE_PRIVATE ? "private" : "external", key ? "from $" : "none",
                            key ? d->api_key_env : "", key ? ": " : "", shown);
    }
    const char *ref = cfg->ledger.reference_upstream;
    bool found = !ref[0];
    for (int i = 0; i < cfg->n_upstreams && !found; i++) found = !strcmp(cfg->upstreams[i].name, ref);
    if (!found) {
        snprintf(err, errlen, "ledger.reference_upstream: '%s' is not an upstream; name one of the upstreams, "
                 "or leave it empty for the most expensive external one", ref);
        return -1;
    }
    return 0;
}

static int check_files(const gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    char ledger[GW_PATH_MAX];
    if (gw_config_ledger_path(cfg, ledger, sizeof(ledger), err, errlen) != 0) return -1;
    if (ledger[0] && check_creatable("ledger.path", ledger, true, err, errlen) != 0) return -1;
    if (report) fprintf(report, "ledger: %s\n", ledger[0] ? ledger : "off");
    const char *log = cfg->access_log;
    if (strcmp(log, "-") && strcmp(log, "off") && check_creatable("access_log", log, false, err, errlen) != 0)
        return -1;
    const struct { const char *key, *path; } heads[] = {
        {"classifier.difficulty_head", cfg->classifier.difficulty_head},
        {"classifier.sensitivity_head", cfg->classifier.sensitivity_head},
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        struct stat st;
        const char *p = heads[i].path;
        if (p[0] && (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || access(p, R_OK) != 0)) {
            snprintf(err, errlen, "%s: cannot read %s; give a head's JSON file (junction calibrate writes one), "
                     "or leave it empty for the shipped head", heads[i].key, p);
            return -1;
        }
    }
    return 0;
}

/* The operator's detectors and the heads, loaded as the daemon loads them. */
static int check_classifier(const gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    gw_classifier *c;
    if (gw_classifier_new(&c, cfg, err, errlen) != 0) return -1;
    gw_classifier_free(c);
    if (report) fprintf(report, "classifier: detectors and heads load\n");
    return 0;
}

/* The routing policy, built against the configured routes and heads. */
static int check_policy(const gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    struct pol_policy *p;
    if (gw_policy_from_config(&p, cfg, err, errlen) != 0) return -1;
    pol_policy_free(p);
    if (report) fprintf(report, "routing: %s\n", cfg->routing.rules[0] ? "the configured rules load" : "the default policy");
    return 0;
}

/* Active client keys in the ledger's file, read-only: a file that does
 * not exist yet holds none. -1 when they cannot be read. */
static int count_keys(const char *ledger, size_t *n, char *err, size_t errlen)
{
    struct stat st;
    *n = 0;
    if (!ledger[0] || stat(ledger, &st) != 0) return 0;
    pol_keys *ks;
    pol_keys_snapshot *snap;
    if (pol_keys_open(&ks, ledger, err, errlen) != 0) return -1;
    int rc = pol_keys_snapshot_load(ks, &snap, err, errlen);
    pol_keys_close(ks);
    if (rc != 0) return -1;
    *n = pol_keys_count(snap);
    pol_keys_snapshot_free(snap);
    return 0;
}

/* Protected mode: beyond loopback, not without a client key. */
static int check_protected(const gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    if (!gw_protected_mode(cfg)) return 0;
    char ledger[GW_PATH_MAX], why[512];
    size_t n;
    if (gw_config_ledger_path(cfg, ledger, sizeof(ledger), err, errlen) != 0) return -1;
    if (count_keys(ledger, &n, why, sizeof(why)) != 0) {
        /* as the daemon does: it starts and lets no client in until they can be read */
        if (report) fprintf(report, "protected mode: the client keys cannot be read now (%s); serve would let no "
                            "client in until they can\n", why);
        return 0;
    }
    if (gw_protected_refuse(cfg, n, err, errlen) != 0) return -1;
    if (report) fprintf(report, "protected mode: %s is beyond loopback; %zu client key(s) let clients in\n",
                        cfg->listen, n);
    return 0;
}

int gw_config_check(const gw_config *cfg, FILE *report, char *err, size_t errlen)
{
    typedef int (*check_fn)(const gw_config *, FILE *, char *, size_t);
    static const check_fn checks[] = {check_listen_host, check_model,  check_upstreams, check_files,
                                      check_classifier,  check_policy, check_protected};
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
        if (checks[i](cfg, report, err, errlen) != 0) return -1;
    return 0;
}
