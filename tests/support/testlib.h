/* testlib.h: helpers shared by junction's tests.
 *
 * The integration tests drive the real `junction` binary: start it on a free
 * loopback port, speak HTTP to it (libcurl for well-formed requests, raw
 * sockets for the malformed and slow ones), signal it, and read its log.
 */
#ifndef JUNCTION_TESTLIB_H
#define JUNCTION_TESTLIB_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- the daemon ---- */
typedef struct {
    pid_t pid;
    int port;
    char url[64];           /* "http://127.0.0.1:PORT" */
    char log_path[256];     /* its stderr */
    char dir[128];          /* scratch folder, removed by daemon_cleanup */
} test_daemon;

/* Start `junction serve --listen 127.0.0.1:0 ARGS...` (args NULL-terminated)
 * with `env_extra` ("K=V" strings, NULL-terminated, may be NULL) added to the
 * environment; waits until it listens. Returns 0, or -1 if it did not start
 * (its log is printed). */
int daemon_start(test_daemon *d, const char *const *args, const char *const *env_extra);

/* Wait up to `timeout_s` for the daemon to exit. Returns its exit status
 * (128+signal if killed), or -1 on timeout. */
int daemon_wait(test_daemon *d, double timeout_s);

/* The daemon's own state folder is d->dir (XDG_STATE_HOME): its ledger is
 * d->dir/junction/ledger.db. */
/* SIGKILL if still running, reap, remove the scratch folder. */
void daemon_cleanup(test_daemon *d);

/* The daemon's log so far (heap string, caller frees). */
char *daemon_log(const test_daemon *d);
/* The daemon's log once it contains `needle`, polling for up to `timeout_s`
 * (log lines are written just after the reply, so tests must wait for them).
 * After the timeout, the log as it is; NULL if it cannot be read. Caller frees. */
char *daemon_log_wait(const test_daemon *d, const char *needle, double timeout_s);

/* Remove a folder and everything in it. */
void remove_tree(const char *dir);

/* Resident memory of a process, in KiB (from /proc), or -1. */
long process_rss_kib(pid_t pid);

/* Run the junction binary with `args` (NULL-terminated, after "junction"),
 * capturing stdout+stderr into *output (heap, caller frees). Returns the exit
 * status. */
int run_junction(const char *const *args, char **output);
/* run_junction with the arguments listed, NULL-terminated (at most 62):
 * run_junctionl(&out, "keys", "list", "--db", db, NULL). */
int run_junctionl(char **output, const char *arg, ...);

/* ---- a scratch folder for a group of tests ---- */
/* scratch_setup and scratch_teardown are cmocka group fixtures (use them as
 * they are, or call them from the test's own): the first makes a new empty
 * folder, /tmp/junction-PROGRAM-XXXXXX, and names it in scratch_dir; the
 * second removes it with everything in it. */
extern char scratch_dir[64];
int scratch_setup(void **state);
int scratch_teardown(void **state);
/* scratch_dir/NAME into out (len bytes). */
void scratch_path(char *out, size_t len, const char *name);

/* ---- the fake frontier API (tests/fake/fake_frontier.c) ---- */
typedef struct {
    pid_t pid;
    int port;
    char record_path[128];   /* JSON lines: one per request, one per client hang-up */
} test_fake;

/* Start it with `env_extra` (NULL-terminated "K=V", may be NULL). */
int fake_start(test_fake *f, const char *const *env_extra);
void fake_stop(test_fake *f);
/* Its record so far (heap string, caller frees); count of lines containing `needle`. */
char *fake_record(const test_fake *f);
int fake_count(const test_fake *f, const char *needle);

/* Write `text` to a new temporary file; its path goes to `path` (64 bytes). */
void write_temp_file(char *path, const char *text);

/* ---- HTTP ---- */
typedef struct {
    long status;
    char *body;             /* NUL-terminated */
    size_t body_len;
    char *headers;          /* raw header block of the final response */
    double seconds;         /* total time */
} http_response;

/* One request with libcurl on a fresh connection. `headers` is a
 * NULL-terminated list of "Name: value" (may be NULL). Returns 0 if an HTTP
 * response came back. */
int http_request(const char *method, const char *url, const char *body, size_t body_len,
                 const char *const *headers, http_response *out);
/* Value of header `name` (case-insensitive) copied into buf, or NULL. */
const char *http_header(const http_response *r, const char *name, char *buf, size_t len);
void http_response_free(http_response *r);
/* POST the JSON text `body` to base_url + path (e.g. daemon.url, "/v1/completions")
 * on a fresh connection. Returns 0 if an HTTP response came back. */
int http_post(const char *base_url, const char *path, const char *body, http_response *out);
/* http_post, with the reply's body parsed: NULL if it is not JSON. *status
 * gets the HTTP status (0: no response). The response goes to *raw (caller
 * frees it) when raw is not NULL, else it is freed. Caller frees the JSON. */
cJSON *http_post_json(const char *base_url, const char *path, const char *body, long *status, http_response *raw);

/* ---- raw TCP ---- */
int tcp_connect(int port);                               /* -1 on failure */
int tcp_send_all(int fd, const void *buf, size_t len);   /* 0 on success */
/* Read until the peer closes or `timeout_s` passes; returns bytes read into a
 * heap NUL-terminated buffer (*out), or -1. */
long tcp_read_all(int fd, double timeout_s, char **out);

double now_seconds(void);

#endif
