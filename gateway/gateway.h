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

typedef enum { GW_LOG_ERROR, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG } gw_log_level;

#define GW_PATH_MAX 4096
#define GW_MAX_UPSTREAMS 16

typedef struct gw_config {
    char listen[256];           /* "host:port", "[v6addr]:port"; port 0 picks a free one */
    gw_log_level log_level;
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
} gw_config;

/* Fill `cfg` with the documented defaults (docs/configuration.md). */
void gw_config_defaults(gw_config *cfg);

/* Apply the JSON configuration file at `path` on top of `cfg`. Unknown keys,
 * wrong types and out-of-range values are errors that name the key and its
 * line:column in the file. */
int gw_config_load_file(gw_config *cfg, const char *path, char *err, size_t errlen);

/* Apply one command-line flag (e.g. "--listen") with its value. Returns 1 if
 * `flag` is not a configuration flag (cfg untouched), 0 when applied, -1 on a
 * bad value. */
int gw_config_apply_flag(gw_config *cfg, const char *flag, const char *value,
                         char *err, size_t errlen);

/* Print the configuration flags with their help text, for --help. */
void gw_config_print_flags(FILE *out);

/* Write `cfg` as a JSON configuration file body (the effective settings). */
void gw_config_print_json(const gw_config *cfg, FILE *out);

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

/* ---- Server --------------------------------------------------------------- */

typedef struct gw_server gw_server;

/* Create the event loop and bind the listening socket. */
int gw_server_new(gw_server **out, const gw_config *cfg, char *err, size_t errlen);

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

#endif
