/* fake_hub.c: a stand-in for the Hugging Face hub, on loopback, for tests.
 *
 * `junction pull` must be tested against what the hub really does, without
 * the internet: files are fetched from /{owner}/{repo}/resolve/{rev}/{file},
 * answered by a 302 to a storage path carrying X-Linked-Size and
 * X-Linked-Etag (the SHA-256), as the hub does for LFS files; the storage
 * answers Range requests with 206; a missing file is a 404, and
 * /api/models/{owner}/{repo} lists the repository's files ("siblings").
 *
 * Repositories and files (all served from the --gguf FILE's bytes, except
 * where said):
 *   test/tiny   model.gguf      the GGUF
 *               drop-*.gguf     the GGUF; the first transfer of each is cut
 *                               after half the body (the connection closes)
 *               badsum.gguf     the GGUF, with a wrong X-Linked-Etag
 *               notgguf.gguf    64 KiB of text, with its true size and SHA-256
 *   test/gated  model.gguf      the GGUF; 401 unless "Authorization: Bearer
 *                               hf_test_token"
 * Any other file is a 404 (X-Error-Code: EntryNotFound), another repository
 * a 404 (RepositoryNotFound). Every request is appended to the --record file
 * as a JSON line: {"method", "path", "range", "auth"}.
 *
 * usage: fake_hub --gguf FILE [--record FILE]   (prints "listening on 127.0.0.1:PORT")
 */
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TOKEN "hf_test_token"

typedef struct {
    unsigned char *data;
    size_t len;
    char sha256[65];
} blob;

static struct event_base *base;
static FILE *record;
static int port;
static blob gguf, text;

/* Files whose first transfer was already cut. */
static char dropped[32][128];
static int n_dropped;

static void sha256_hex(blob *b)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(b->data, b->len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < n; i++) snprintf(b->sha256 + 2 * i, 3, "%02x", md[i]);
}

static void record_request(struct evhttp_request *req, const char *path)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *range = evhttp_find_header(in, "Range");
    const char *auth = evhttp_find_header(in, "Authorization");
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "method", evhttp_request_get_command(req) == EVHTTP_REQ_HEAD ? "HEAD" : "GET");
    cJSON_AddStringToObject(j, "path", path);
    cJSON_AddStringToObject(j, "range", range ? range : "");
    cJSON_AddStringToObject(j, "auth", auth ? auth : "");
    char *s = cJSON_PrintUnformatted(j);
    if (record && s) {
        fprintf(record, "%s\n", s);
        fflush(record);
    }
    free(s);
    cJSON_Delete(j);
}

static void reply(struct evhttp_request *req, int status, const char *type, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
}

static void hub_error(struct evhttp_request *req, int status, const char *code, const char *message)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Error-Code", code);
    char body[512];
    snprintf(body, sizeof(body), "{\"error\":\"%s\"}", message);
    reply(req, status, "application/json", body);
}

/* ---- storage: the bytes, with Range ---- */

static void close_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evhttp_connection_free(arg);
}

/* Half the body went out: close the connection, as a dropped link would. */
static void cut(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    event_base_once(base, -1, EV_TIMEOUT, close_later, arg, NULL);
}

static void serve_storage(struct evhttp_request *req, const char *file)
{
    const blob *b = !strcmp(file, "notgguf.gguf") ? &text : &gguf;
    const char *range = evhttp_find_header(evhttp_request_get_input_headers(req), "Range");
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    size_t start = 0;
    if (range) {
        unsigned long long s;
        if (sscanf(range, "bytes=%llu-", &s) != 1) {
            hub_error(req, 400, "BadRange", "bad Range header");
            return;
        }
        if (s >= b->len) {
            char cr[64];
            snprintf(cr, sizeof(cr), "bytes */%zu", b->len);
            evhttp_add_header(out, "Content-Range", cr);
            hub_error(req, 416, "RangeNotSatisfiable", "range not satisfiable");
            return;
        }
        start = (size_t)s;
    }
    evhttp_add_header(out, "Content-Type", "application/octet-stream");
    evhttp_add_header(out, "Accept-Ranges", "bytes");
    if (range) {
        char cr[96];
        snprintf(cr, sizeof(cr), "bytes %zu-%zu/%zu", start, b->len - 1, b->len);
        evhttp_add_header(out, "Content-Range", cr);
    }
    bool drop = !strncmp(file, "drop-", 5);
    for (int i = 0; drop && i < n_dropped; i++) drop = strcmp(dropped[i], file) != 0;
    if (drop && n_dropped < 32) {
        snprintf(dropped[n_dropped++], sizeof(dropped[0]), "%s", file);
        char len[32];
        snprintf(len, sizeof(len), "%zu", b->len - start);
        evhttp_add_header(out, "Content-Length", len);
        evhttp_send_reply_start(req, range ? 206 : 200, NULL);
        struct evbuffer *half = evbuffer_new();
        evbuffer_add(half, b->data + start, (b->len - start) / 2);
        struct evhttp_connection *evcon = evhttp_request_get_connection(req);
        evhttp_send_reply_chunk_with_cb(req, half, cut, evcon);
        evbuffer_free(half);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, b->data + start, b->len - start);
    evhttp_send_reply(req, range ? 206 : 200, NULL, body);
    evbuffer_free(body);
}

/* ---- the hub ---- */

static const char *const tiny_files[] = {"README.md", "model.gguf", "badsum.gguf", "notgguf.gguf"};

static bool known_file(const char *repo, const char *file)
{
    if (!strcmp(repo, "test/gated")) return !strcmp(file, "model.gguf");
    if (!strncmp(file, "drop-", 5)) return strlen(file) < 100 && strchr(file, '/') == NULL;
    for (size_t i = 0; i < sizeof(tiny_files) / sizeof(tiny_files[0]); i++)
        if (!strcmp(file, tiny_files[i])) return true;
    return false;
}

static bool authorized(struct evhttp_request *req)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    return auth && !strcmp(auth, "Bearer " TOKEN);
}

/* /{owner}/{repo}/resolve/{rev}/{file} */
static void resolve(struct evhttp_request *req, const char *repo, const char *file)
{
    if (strcmp(repo, "test/tiny") != 0 && strcmp(repo, "test/gated") != 0) {
        hub_error(req, 404, "RepoNotFound", "Repository not found");
        return;
    }
    if (!strcmp(repo, "test/gated") && !authorized(req)) {
        hub_error(req, 401, "GatedRepo", "Access to model test/gated is restricted. You must have access to it "
                                        "and be authenticated to access it. Please log in.");
        return;
    }
    if (!known_file(repo, file)) {
        hub_error(req, 404, "EntryNotFound", "Entry not found");
        return;
    }
    const blob *b = !strcmp(file, "notgguf.gguf") ? &text : &gguf;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    char v[128];
    snprintf(v, sizeof(v), "%zu", b->len);
    evhttp_add_header(out, "X-Linked-Size", v);
    snprintf(v, sizeof(v), "\"%s\"",
             !strcmp(file, "badsum.gguf") ? "0000000000000000000000000000000000000000000000000000000000000000"
                                          : b->sha256);
    evhttp_add_header(out, "X-Linked-Etag", v);
    evhttp_add_header(out, "X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567");
    char loc[512];
    snprintf(loc, sizeof(loc), "http://127.0.0.1:%d/storage/%s/%s", port, repo, file);
    evhttp_add_header(out, "Location", loc);
    reply(req, 302, "text/plain", "Found. Redirecting");
}

static void api_model(struct evhttp_request *req, const char *repo)
{
    if (strcmp(repo, "test/tiny") != 0) {
        hub_error(req, strcmp(repo, "test/gated") ? 404 : 401, "RepoNotFound", "Repository not found");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", repo);
    cJSON *s = cJSON_AddArrayToObject(j, "siblings");
    for (size_t i = 0; i < sizeof(tiny_files) / sizeof(tiny_files[0]); i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "rfilename", tiny_files[i]);
        cJSON_AddItemToArray(s, f);
    }
    char *body = cJSON_PrintUnformatted(j);
    reply(req, 200, "application/json", body);
    free(body);
    cJSON_Delete(j);
}

static void handle(struct evhttp_request *req, void *arg)
{
    (void)arg;
    char path[1024];
    const char *uri = evhttp_request_get_uri(req);
    snprintf(path, sizeof(path), "%.*s", (int)strcspn(uri, "?"), uri);
    record_request(req, path);
    char owner[128], name[128], rev[128], file[512];
    if (sscanf(path, "/storage/%127[^/]/%127[^/]/%511s", owner, name, file) == 3) {
        serve_storage(req, file);
    } else if (sscanf(path, "/api/models/%127[^/]/%127[^/?]", owner, name) == 2) {
        char repo[300];
        snprintf(repo, sizeof(repo), "%s/%s", owner, name);
        api_model(req, repo);
    } else if (sscanf(path, "/%127[^/]/%127[^/]/resolve/%127[^/]/%511s", owner, name, rev, file) == 4) {
        char repo[300];
        snprintf(repo, sizeof(repo), "%s/%s", owner, name);
        resolve(req, repo, file);
    } else {
        hub_error(req, 404, "NotFound", "Not found");
    }
}

static int load(blob *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b->data = malloc(n > 0 ? (size_t)n : 1);
    b->len = b->data && n > 0 && fread(b->data, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    fclose(f);
    return b->len ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *gguf_path = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--record")) record = fopen(argv[++i], "a");
        else if (!strcmp(argv[i], "--gguf")) gguf_path = argv[++i];
    }
    if (!gguf_path || load(&gguf, gguf_path) != 0) {
        fprintf(stderr, "fake_hub: --gguf FILE must name a readable file\n");
        return 2;
    }
    text.len = 64 << 10;
    text.data = malloc(text.len);
    for (size_t i = 0; i < text.len; i++) text.data[i] = (unsigned char)"this is not a model\n"[i % 20];
    sha256_hex(&gguf);
    sha256_hex(&text);
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    evhttp_set_gencb(http, handle, NULL);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (!bound) {
        fprintf(stderr, "fake_hub: cannot listen\n");
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sa, &sl);
    port = ntohs(sa.sin_port);
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    event_base_dispatch(base);
    evhttp_free(http);
    event_base_free(base);
    free(gguf.data);
    free(text.data);
    if (record) fclose(record);
    return 0;
}
