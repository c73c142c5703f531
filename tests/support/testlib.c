/* testlib.c: the real daemon, HTTP and sockets, scratch folders for junction's tests. */
#include "testlib.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef JUNCTION_BIN
#error "JUNCTION_BIN must name the junction binary under test"
#endif

extern char **environ;

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) { free(buf); buf = NULL; break; }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

char *daemon_log(const test_daemon *d) { return read_file(d->log_path); }

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_all(const char *dir) { return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

void remove_tree(const char *dir) { remove_all(dir); }

char scratch_dir[64];

int scratch_setup(void **state)
{
    (void)state;
    snprintf(scratch_dir, sizeof(scratch_dir), "/tmp/junction-%.40s-XXXXXX", program_invocation_short_name);
    if (mkdtemp(scratch_dir)) return 0;
    fprintf(stderr, "scratch_setup: cannot make %s: %s\n", scratch_dir, strerror(errno));
    scratch_dir[0] = '\0';
    return -1;
}

int scratch_teardown(void **state)
{
    (void)state;
    int rc = scratch_dir[0] ? remove_all(scratch_dir) : 0;
    scratch_dir[0] = '\0';
    return rc;
}

void scratch_path(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", scratch_dir, name); }

char *daemon_log_wait(const test_daemon *d, const char *needle, double timeout_s)
{
    char *log = NULL;
    for (int waited_ms = 0;; waited_ms += 10) {
        free(log);
        log = daemon_log(d);
        if ((log && strstr(log, needle)) || waited_ms >= timeout_s * 1000) return log;
        usleep(10000);
    }
}

/* argv = junction serve --listen 127.0.0.1:0 args... ; env = extra, then
 * the daemon's own state folder (its ledger lives there, never in the
 * user's home), then environ */
static pid_t spawn(const char *const *args, const char *const *env_extra, const char *log_path, const char *state_dir)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)JUNCTION_BIN;
    argv[n++] = (char *)"serve";
    argv[n++] = (char *)"--listen";
    argv[n++] = (char *)"127.0.0.1:0";
    for (int i = 0; args && args[i] && n < 63; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;

    size_t n_env = 0, n_extra = 0;
    while (environ[n_env]) n_env++;
    while (env_extra && env_extra[n_extra]) n_extra++;
    char **envp = calloc(n_env + n_extra + 2, sizeof(char *));
    if (!envp) return -1;
    char state[256];
    snprintf(state, sizeof(state), "XDG_STATE_HOME=%s", state_dir);
    /* The extras come first: getenv() finds the first match. */
    for (size_t i = 0; i < n_extra; i++) envp[i] = (char *)env_extra[i];
    envp[n_extra] = state;
    memcpy(envp + n_extra + 1, environ, n_env * sizeof(char *));

    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) _exit(126);
        dup2(fd, 2);
        dup2(fd, 1);
        close(fd);
        execve(JUNCTION_BIN, argv, envp);
        _exit(127);
    }
    free(envp);
    return pid;
}

int daemon_start(test_daemon *d, const char *const *args, const char *const *env_extra)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/junction-test-XXXXXX");
    if (!mkdtemp(d->dir)) return -1;
    snprintf(d->log_path, sizeof(d->log_path), "%s/daemon.log", d->dir);
    d->pid = spawn(args, env_extra, d->log_path, d->dir);
    if (d->pid < 0) return -1;
    double deadline = now_seconds() + 30;
    while (now_seconds() < deadline) {
        char *log = daemon_log(d);
        const char *at = log ? strstr(log, "listening on http://127.0.0.1:") : NULL;
        if (at) {
            d->port = atoi(at + strlen("listening on http://127.0.0.1:"));
            snprintf(d->url, sizeof(d->url), "http://127.0.0.1:%d", d->port);
            free(log);
            return 0;
        }
        free(log);
        int status;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            break;
        }
        sleep_ms(10);
    }
    char *log = daemon_log(d);
    fprintf(stderr, "daemon did not start; its log:\n%s\n", log ? log : "(none)");
    free(log);
    return -1;
}

int daemon_wait(test_daemon *d, double timeout_s)
{
    double deadline = now_seconds() + timeout_s;
    for (;;) {
        int status;
        pid_t r = waitpid(d->pid, &status, WNOHANG);
        if (r == d->pid) {
            d->pid = 0;
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        if (r < 0 || now_seconds() > deadline) return -1;
        sleep_ms(5);
    }
}

void daemon_cleanup(test_daemon *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    if (d->log_path[0]) unlink(d->log_path);
    if (d->dir[0]) remove_tree(d->dir);
}

long process_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *s = read_file(path);
    const char *at = s ? strstr(s, "VmRSS:") : NULL;
    long kib = at ? atol(at + 6) : -1;
    free(s);
    return kib;
}

int run_junction(const char *const *args, char **output)
{
    char path[] = "/tmp/junction-run-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)JUNCTION_BIN;
    for (int i = 0; args[i] && n < 63; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    /* its own state folder: a daemon it starts keeps its ledger there, not in $HOME */
    char state[] = "/tmp/junction-state-XXXXXX";
    if (!mkdtemp(state)) {
        close(fd);
        unlink(path);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("XDG_STATE_HOME", state, 1);
        execv(JUNCTION_BIN, argv);
        _exit(127);
    }
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    *output = read_file(path);
    unlink(path);
    remove_tree(state);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_junctionl(char **output, const char *arg, ...)
{
    const char *args[63];
    int n = 0;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && n < 62; a = va_arg(ap, const char *)) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return run_junction(args, output);
}

/* ---- the fake frontier ---- */

#ifndef FAKE_FRONTIER_BIN
#error "FAKE_FRONTIER_BIN must name the fake frontier binary"
#endif

int fake_start(test_fake *f, const char *const *env_extra)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->record_path, sizeof(f->record_path), "/tmp/junction-fake-XXXXXX");
    int rfd = mkstemp(f->record_path);
    if (rfd < 0) return -1;
    close(rfd);
    int pipefd[2];
    if (pipe(pipefd) != 0) return -1;
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env]) n_env++;
    while (env_extra && env_extra[n_extra]) n_extra++;
    char **envp = calloc(n_env + n_extra + 1, sizeof(char *));
    for (size_t i = 0; i < n_extra; i++) envp[i] = (char *)env_extra[i];
    memcpy(envp + n_extra, environ, n_env * sizeof(char *));
    f->pid = fork();
    if (f->pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        char *argv[] = {(char *)FAKE_FRONTIER_BIN, (char *)"--record", f->record_path, NULL};
        execve(FAKE_FRONTIER_BIN, argv, envp);
        _exit(127);
    }
    free(envp);
    close(pipefd[1]);
    char line[128] = "";
    size_t have = 0;
    double deadline = now_seconds() + 10;
    while (!strchr(line, '\n') && now_seconds() < deadline && have < sizeof(line) - 1) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(pipefd[0], line + have, sizeof(line) - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        line[have] = '\0';
    }
    close(pipefd[0]);
    const char *at = strstr(line, "127.0.0.1:");
    if (!at) return -1;
    f->port = atoi(at + 10);
    return 0;
}

void fake_stop(test_fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
    unlink(f->record_path);
}

char *fake_record(const test_fake *f) { return read_file(f->record_path); }

int fake_count(const test_fake *f, const char *needle)
{
    char *s = fake_record(f);
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

void write_temp_file(char *path, const char *text)
{
    snprintf(path, 64, "/tmp/junction-cfg-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) perror("write_temp_file");
    close(fd);
}

/* ---- HTTP through libcurl ---- */

typedef struct {
    char *data;
    size_t len;
} growbuf;

static size_t append(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    growbuf *b = userdata;
    size_t n = size * nmemb;
    char *p = realloc(b->data, b->len + n + 1);
    if (!p) return 0;
    memcpy(p + b->len, ptr, n);
    b->data = p;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Keep only the last header block (after a 100 Continue, say). */
static size_t append_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    growbuf *b = userdata;
    if (size * nmemb >= 5 && strncmp(ptr, "HTTP/", 5) == 0) b->len = 0;
    return append(ptr, size, nmemb, userdata);
}

int http_request(const char *method, const char *url, const char *body, size_t body_len,
                 const char *const *headers, http_response *out)
{
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    if (!c) return -1;
    growbuf b = {0}, h = {0};
    struct curl_slist *list = NULL;
    for (int i = 0; headers && headers[i]; i++) list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, append_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->seconds);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    out->body = b.data ? b.data : calloc(1, 1);
    out->body_len = b.len;
    out->headers = h.data ? h.data : calloc(1, 1);
    return rc == CURLE_OK ? 0 : -1;
}

const char *http_header(const http_response *r, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        if (!eol) break;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            snprintf(buf, len, "%.*s", (int)(eol - v), v);
            return buf;
        }
        line = eol + 2;
    }
    return NULL;
}

int http_post(const char *base_url, const char *path, const char *body, http_response *out)
{
    char url[512];
    if (snprintf(url, sizeof(url), "%s%s", base_url, path) >= (int)sizeof(url)) return -1;
    return http_request("POST", url, body, strlen(body), NULL, out);
}

cJSON *http_post_json(const char *base_url, const char *path, const char *body, long *status, http_response *raw)
{
    http_response r;
    if (http_post(base_url, path, body, &r) != 0) {
        *status = 0;
        if (raw) *raw = r;
        else http_response_free(&r);
        return NULL;
    }
    *status = r.status;
    cJSON *j = cJSON_Parse(r.body);
    if (raw) *raw = r;
    else http_response_free(&r);
    return j;
}

void http_response_free(http_response *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

/* ---- raw TCP ---- */

int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tcp_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

long tcp_read_all(int fd, double timeout_s, char **out)
{
    growbuf b = {0};
    double deadline = now_seconds() + timeout_s;
    char chunk[4096];
    for (;;) {
        int ms = (int)((deadline - now_seconds()) * 1000);
        if (ms <= 0) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms) <= 0) break;
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) break;
        if (append(chunk, 1, (size_t)n, &b) != (size_t)n) break;
    }
    *out = b.data ? b.data : calloc(1, 1);
    return (long)b.len;
}
