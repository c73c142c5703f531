/* gateway.h: junction's front door, the HTTP server and its OpenAI-style API.
 *
 * The one public header of the gateway module: configuration, the server's
 * lifecycle and the worker pool that keeps long work off the event loop.
 * The `junction` binary (main.c) and the tests use the gateway through it.
 *
 * Ownership: every *_new() has a matching *_free(); the caller of *_new()
 * owns the object. Functions that can fail return 0 on success and -1 on
 * failure, with a message for the user in the caller's `err` buffer.
 */
#ifndef JUNCTION_GATEWAY_H
#define JUNCTION_GATEWAY_H

#include <stddef.h>
#include <stdio.h>

#include "upstream.h"

struct event_base;

/* ---- Configuration ------------------------------------------------------ */

#include <stdbool.h>

typedef enum { GW_LOG_ERROR, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG } gw_log_level;

#define GW_PATH_MAX 4096
#define GW_MAX_UPSTREAMS 16
#define GW_DETECTORS_MAX 65536   /* classifier.detectors as compact JSON, NUL included */

/* Every setting, as docs/configuration.md lists them. A plain struct (no
 * pointers): copy it freely. Keys in a nested object of the file
 * ("ledger": {"path": ...}) are named "ledger.path" and live in the nested
 * struct of the same name. */
typedef struct gw_config {
    char listen[256];           /* "host:port", "[v6addr]:port"; port 0 picks a free one */
    gw_log_level log_level;     /* debug adds per-request timings and routing inputs */
    char access_log[GW_PATH_MAX]; /* "-" for stderr, "off", or a file path */
    long long max_body_bytes;   /* largest request body accepted */
    long long max_connections;  /* client connections open at once */
    double request_timeout_s;   /* to receive a request, and idle keep-alive */
    double drain_timeout_s;     /* on SIGTERM: how long in-flight requests may finish */
    long long workers;          /* worker threads; 0 = one per CPU core */
    char model[GW_PATH_MAX];    /* GGUF file for the local engine ("" = none) */
    long long ctx_size;         /* local engine context; 0 = the model's */
    long long threads;          /* local engine compute threads; 0 = one per core */
    long long parallel;         /* local requests generated together (each its own ctx_size of cache) */
    long long queue_size;       /* local requests waiting beyond the running ones */
    char chat_template[16];     /* "auto" (from the model), "llama2" or "plain" */
    up_def upstreams[GW_MAX_UPSTREAMS]; /* remote model APIs, picked by "model" */
    int n_upstreams;
    long long max_output_buffer_bytes; /* a connection's unsent output before its stream is
                                          paused; past twice this the stream is ended */
    bool allow_unauthenticated_remote; /* answer non-loopback clients that bring no key */
    struct {
        char path[GW_PATH_MAX]; /* "" = the default (gw_config_ledger_path resolves it), "off" = none */
        long long flush_ms;     /* longest a finished request's row waits for its commit */
        long long queue_bytes;  /* memory for rows waiting for the writer; past it rows are dropped */
        long long retention_days; /* rows older than this are deleted; 0 = kept forever */
        bool store_prompts;     /* keep the prompt and answer text in the ledger */
        char reference_upstream[64]; /* savings are priced against it; "" = the most
                                        expensive external upstream */
        bool required;          /* a degraded ledger makes /readyz answer not ready */
    } ledger;
    struct {
        char keys_env[128];     /* environment variable holding comma-separated admin keys */
    } admin;
    struct {
        double price_input_per_mtok, price_output_per_mtok; /* USD per million tokens */
        double price_per_engine_second; /* USD per second of engine time */
    } local;
    struct {
        char difficulty_head[GW_PATH_MAX]; /* JSON weights; "" = the head shipped with junction */
        char sensitivity_head[GW_PATH_MAX];
        char model_features[8]; /* "on", "off" or "auto" */
        long long layer;        /* hidden state read for the probes; 0 = the model's n_layer/4 */
        long long max_tokens;   /* prompt tokens the model features look at */
        char detectors[GW_DETECTORS_MAX]; /* operator-defined detectors: a JSON array of
                                             objects (compact text), checked by the classifier */
    } classifier;
    struct {
        double sticky_idle_s;   /* a conversation keeps its route while idle less than this */
        bool annotate_body;     /* add junction's routing details to answers' bodies */
        char rules[GW_DETECTORS_MAX]; /* the policy: a JSON array of rules (compact text);
                                         "" = the default policy (docs/policy.md) */
        char sensitive_zones[256];    /* JSON array of zone names sensitive data may go to */
        char pseudonymize_kinds[1024]; /* JSON array of detector kinds that may be pseudonymized */
        double max_local_wait_s;      /* the default policy's "local overloaded" cut */
    } routing;
    struct {
        double global_daily_usd, global_monthly_usd; /* 0 = no global budget */
        double soft_fraction;   /* share of a budget past which answers warn (X-Junction-Budget-Remaining) */
    } budgets;
} gw_config;

/* Fill `cfg` with the documented defaults (docs/configuration.md). */
void gw_config_defaults(gw_config *cfg);

/* Apply the JSON configuration file at `path` on top of `cfg`. Unknown keys
 * (nested ones named like 'ledger.pth'), wrong types and out-of-range values
 * are errors that name the key and its line:column in the file. */
int gw_config_load_file(gw_config *cfg, const char *path, char *err, size_t errlen);

/* Apply one command-line flag (e.g. "--listen") with its value. A boolean
 * flag takes NULL for true, or "true"/"false" (from --flag=false). Returns 1
 * if `flag` is not a configuration flag (cfg untouched), 0 when applied, -1
 * on a bad value. */
int gw_config_apply_flag(gw_config *cfg, const char *flag, const char *value,
                         char *err, size_t errlen);

/* 1 if `flag` takes the next argument as its value, 0 if it stands alone (a
 * boolean: a value only after '='), -1 if it is not a configuration flag. */
int gw_config_flag_takes_value(const char *flag);

/* Print the configuration flags with their help text, for --help. */
void gw_config_print_flags(FILE *out);

/* Write `cfg` as a JSON configuration file body (the effective settings). */
void gw_config_print_json(const gw_config *cfg, FILE *out);

/* Check what the table alone cannot, as `serve` would before it starts:
 * the listen address resolves; the model file is a GGUF file of a supported
 * architecture (header and metadata only: weights are not read); no upstream
 * is named like the local model; every upstream's key variable is set;
 * ledger.reference_upstream names an upstream; the ledger and access-log
 * files can be created; the classifier's head files can be read. Writes one
 * line per item checked to `report` (may be NULL); upstream keys appear
 * masked. Returns -1 at the first problem. */
int gw_config_check(const gw_config *cfg, FILE *report, char *err, size_t errlen);

/* Split a listen address ("host:port", "[v6]:port") into `host` and `port`;
 * the error says what is wrong (e.g. a port out of 0..65535). Syntax only:
 * names are not looked up. */
int gw_listen_parse(const char *listen, char *host, size_t hostlen, unsigned short *port,
                    char *err, size_t errlen);

/* The local model's id, what clients may put in "model": the file name
 * without its directories and a final ".gguf". */
void gw_model_id(const char *model_path, char *out, size_t outlen);

/* The ledger file: ledger.path, or when empty
 * ${XDG_STATE_HOME:-$HOME/.local/state}/junction/ledger.db; `out` gets ""
 * when the ledger is "off". Fails when neither variable is set. */
int gw_config_ledger_path(const gw_config *cfg, char *out, size_t outlen, char *err, size_t errlen);

/* ---- The prompt as the local model reads it (chat_template.c) -------------
 * The one definition of the tokens the classifier's model features are
 * computed over, shared by the daemon, `junction route` and `junction
 * calibrate`, so that a head fitted by calibrate sees the same numbers in
 * the daemon: the prompt the local model would answer (OpenAI chat
 * messages rendered with the model's chat template; the legacy text API's
 * prompt as the text after BOS), cut to its head and tail when longer than
 * classifier.max_tokens (eng_keep_head_tail). NLL counts from position 1. */
struct eng_model;
struct cJSON;

typedef struct {
    int *prompt;       /* what the local model answers (heap) */
    int n_prompt;
    int *scored;       /* what the features are computed over: `prompt` itself, or a heap copy of its head
                          and tail when it is longer than max_tokens */
    int n_scored;
} gw_prompt;

/* Render `messages` (an OpenAI messages array, or NULL) or else `text` (the
 * legacy text prompt) for model `m`; llama2_chat picks Llama 2's [INST]
 * template over the plain one (gw_chat_template_llama2). max_tokens 0: no
 * cut. -1 when out of memory. */
int gw_prompt_render(gw_prompt *out, const struct eng_model *m, bool llama2_chat, const struct cJSON *messages,
                     const char *text, int max_tokens);
void gw_prompt_free(gw_prompt *p);
/* The configured chat_template ("auto", "llama2" or "plain") for model m:
 * true for Llama 2's [INST] format ("auto": when the model's own template is). */
bool gw_chat_template_llama2(const struct eng_model *m, const char *chat_template);

/* ---- Logging ------------------------------------------------------------ */

/* Process-wide log level and sink (stderr). Never give it request bodies. */
void gw_log_set_level(gw_log_level level);
void gw_log(gw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Worker pool ---------------------------------------------------------
 * Long work (inference, blocking I/O) never runs on the event-loop thread:
 * the loop submits a job, a worker thread runs `work(arg)`, and then `done(arg)`
 * runs back on the loop thread, where it may touch libevent objects. */

typedef struct gw_pool gw_pool;
typedef void (*gw_job_fn)(void *arg);

/* `base` must come from a libevent with pthreads enabled (evthread_use_pthreads
 * before event_base_new). n_threads 0 = one per CPU core. */
int gw_pool_new(gw_pool **out, struct event_base *base, int n_threads, char *err, size_t errlen);

/* Queue a job. Called on the loop thread. Returns -1 when out of memory or the
 * pool is shutting down; the job is then not queued and nothing is called. */
int gw_pool_submit(gw_pool *pool, gw_job_fn work, gw_job_fn done, void *arg);

/* Jobs queued or running right now. */
int gw_pool_pending(const gw_pool *pool);

/* Stop the pool: runs every queued job to the end, joins the threads, then
 * calls the outstanding `done` callbacks on the calling (loop) thread. */
void gw_pool_free(gw_pool *pool);

/* ---- Backends: what answers model requests ----------------------------
 * Built from the configuration before the server, on the event base the
 * server will run: the local engine (the model is loaded and checked here,
 * so a bad file stops the daemon before it listens) and the upstream
 * client. The server borrows them; free the server first. */

typedef struct gw_backends gw_backends;

int gw_backends_new(gw_backends **out, struct event_base *base, const gw_config *cfg, char *err, size_t errlen);
/* One log line per backend: model, type, context, parallel, threads,
 * template; each upstream with its zone and prices. */
void gw_backends_log_summary(const gw_backends *b);
void gw_backends_free(gw_backends *b);

/* ---- The routing policy ----------------------------------------------------
 * From routing.* and the upstreams (the default policy when routing.rules is
 * absent; docs/policy.md). The daemon's, and `junction route`'s. */
struct pol_policy;
int gw_policy_from_config(struct pol_policy **out, const gw_config *cfg, char *err, size_t errlen);

/* ---- Server --------------------------------------------------------------- */

typedef struct gw_server gw_server;

/* The event base for the server and its backends (libevent set up for
 * threads first). Free it with event_base_free after everything on it. */
struct event_base *gw_event_base_new(char *err, size_t errlen);

/* Bind the listening socket on `base`; `backends` are borrowed. */
int gw_server_new(gw_server **out, struct event_base *base, const gw_config *cfg, gw_backends *backends,
                  char *err, size_t errlen);

/* The address actually bound, e.g. "127.0.0.1:8080" (a port 0 resolved). */
const char *gw_server_address(const gw_server *srv);

/* The server's worker pool (owned by the server). */
gw_pool *gw_server_pool(gw_server *srv);

/* Serve until SIGTERM/SIGINT (or gw_server_stop) and the drain completes.
 * Returns 0 after a clean drain. A second signal exits the process at once. */
int gw_server_run(gw_server *srv);

/* Begin a graceful drain from any thread, as SIGTERM does. */
void gw_server_stop(gw_server *srv);

void gw_server_free(gw_server *srv);

/* ---- Defaults from the environment (env_upstreams.c) ---- */

/* For `serve` without a --config file: for each of OPENAI_API_KEY and
 * ANTHROPIC_API_KEY that is set and not empty, add an `external` upstream
 * named "openai" / "anthropic" with the provider's default model and list
 * prices (one dated table in env_upstreams.c); OPENAI_BASE_URL /
 * ANTHROPIC_BASE_URL replace the provider's URL. An upstream already named
 * so is left alone. One line per upstream added goes to `report` (may be
 * NULL). Returns the number added, or -1 (a bad base URL, no room left). */
int gw_config_add_env_upstreams(gw_config *cfg, FILE *report, char *err, size_t errlen);

#endif
