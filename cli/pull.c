/* pull.c: model references, the models cache, and the download.
 *
 * A model file is gigabytes on a connection that may drop, a disk that may
 * fill and a server that may send something else than expected. So the
 * bytes go to FILE.part, where a later pull continues them with a Range
 * request; they are hashed as they arrive (a resumed part is re-hashed from
 * disk first); the result is checked against the size and SHA-256 the
 * Hugging Face hub sends with an LFS file (X-Linked-Size, X-Linked-Etag on
 * its redirect) or --sha256, and opened with the engine's GGUF reader; only
 * then is it renamed into place, so the cache never holds a half file under
 * a model's name. Every failure says what to do next.
 *
 * What the server sends back (header lines, the hub's JSON file listing, an
 * error body) is read by pure functions of the bytes (cli_pull_header,
 * cli_pull_body_plan, cli_hub_gguf_files, cli_pull_error_text), which the
 * transfer calls and the fuzz targets call without a server.
 */
#include "pull.h"

#include "junction_version.h"
#include "localengine.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_HF_ENDPOINT "https://huggingface.co"

/* ---- formatting ---- */

const char *cli_format_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    else snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

static const char *format_duration(double s, char *buf, size_t len)
{
    long t = s < 0 ? 0 : s > 359999 ? 359999 : (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, len, "%lds", t);
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- references ---- */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* Percent-encode `s` (length n) onto out; '/' kept when keep_slash. */
static int url_escape(char *out, size_t len, const char *s, size_t n, bool keep_slash)
{
    size_t o = strlen(out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = name_char((char)c) || c == '~' || (keep_slash && c == '/');
        if (o + 4 >= len) return -1;
        if (plain) out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
    }
    out[o] = '\0';
    return 0;
}

/* A path segment that is safe as a file name and in a URL path. */
static bool valid_segment(const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\') return false;
    return true;
}

static int parse_hub(const char *spec, cli_model_ref *r, char *err, size_t errlen)
{
    static const char usage[] = "expected hf:OWNER/REPO/FILE.gguf or hf:OWNER/REPO/FILE.gguf@REVISION";
    const char *at = strrchr(spec, '@');
    size_t body_len = at ? (size_t)(at - spec) : strlen(spec);
    const char *s1 = memchr(spec, '/', body_len);
    const char *s2 = s1 ? memchr(s1 + 1, '/', body_len - (size_t)(s1 + 1 - spec)) : NULL;
    if (!s2) {
        snprintf(err, errlen, "'hf:%s': %s", spec, usage);
        return -1;
    }
    size_t repo_len = (size_t)(s2 - spec);
    for (size_t i = 0; i < repo_len; i++)
        if (!(name_char(spec[i]) || (spec + i == s1))) {
            snprintf(err, errlen, "'hf:%s': a repository name has letters, digits, '-', '_' and '.' only; %s",
                     spec, usage);
            return -1;
        }
    const char *file = s2 + 1;
    size_t file_len = body_len - repo_len - 1;
    bool ok = valid_segment(spec, (size_t)(s1 - spec)) && valid_segment(s1 + 1, (size_t)(s2 - s1 - 1)) &&
              file_len > 0 && file[file_len - 1] != '/' && /* a folder is no file (fuzzer find) */
              repo_len < sizeof(r->hf_repo) && file_len < sizeof(r->hf_file);
    for (const char *seg = file; ok && seg < file + file_len;) {
        const char *end = memchr(seg, '/', (size_t)(file + file_len - seg));
        if (!end) end = file + file_len;
        ok = valid_segment(seg, (size_t)(end - seg));
        seg = end + 1;
    }
    if (!ok || (at && !valid_segment(at + 1, strlen(at + 1))) || (at && strlen(at + 1) >= sizeof(r->hf_revision))) {
        snprintf(err, errlen, "'hf:%s': %s", spec, usage);
        return -1;
    }
    r->hub = true;
    memcpy(r->hf_repo, spec, repo_len);
    r->hf_repo[repo_len] = '\0';
    memcpy(r->hf_file, file, file_len);
    r->hf_file[file_len] = '\0';
    snprintf(r->hf_revision, sizeof(r->hf_revision), "%s", at ? at + 1 : "main");
    const char *base = strrchr(r->hf_file, '/');
    if (snprintf(r->file_name, sizeof(r->file_name), "%s", base ? base + 1 : r->hf_file) >= (int)sizeof(r->file_name)) {
        snprintf(err, errlen, "'hf:%s': the file name is longer than %zu bytes", spec, sizeof(r->file_name) - 1);
        return -1;
    }

    const char *ep = getenv("HF_ENDPOINT");
    if (!ep || !*ep) ep = DEFAULT_HF_ENDPOINT;
    size_t ep_len = strlen(ep);
    while (ep_len > 0 && ep[ep_len - 1] == '/') ep_len--;
    size_t scheme = !strncmp(ep, "https://", 8) ? 8 : !strncmp(ep, "http://", 7) ? 7 : 0;
    /* a host after the scheme, and no space or control byte in a URL (fuzzer finds) */
    bool clean = scheme && ep_len > scheme && ep[scheme] != '/';
    for (size_t i = 0; i < ep_len && clean; i++) clean = (unsigned char)ep[i] > 0x20 && (unsigned char)ep[i] != 0x7f;
    if (!clean || ep_len >= sizeof(r->hf_endpoint)) {
        snprintf(err, errlen, "HF_ENDPOINT: expected an http:// or https:// URL without spaces, such as %s",
                 DEFAULT_HF_ENDPOINT);
        return -1;
    }
    memcpy(r->hf_endpoint, ep, ep_len);
    r->hf_endpoint[ep_len] = '\0';
    /* {endpoint}/{repo}/resolve/{revision}/{file}, the revision escaped whole (refs/pr/1). */
    snprintf(r->url, sizeof(r->url), "%s/%s/resolve/", r->hf_endpoint, r->hf_repo);
    if (url_escape(r->url, sizeof(r->url), r->hf_revision, strlen(r->hf_revision), false) != 0 ||
        url_escape(r->url, sizeof(r->url), "/", 1, true) != 0 ||
        url_escape(r->url, sizeof(r->url), r->hf_file, strlen(r->hf_file), true) != 0) {
        snprintf(err, errlen, "'hf:%s': the reference is too long", spec);
        return -1;
    }
    return 0;
}

static int parse_url(const char *url, cli_model_ref *r, char *err, size_t errlen)
{
    if (strlen(url) >= sizeof(r->url)) {
        snprintf(err, errlen, "the URL is too long (%zu characters)", strlen(url));
        return -1;
    }
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            snprintf(err, errlen, "'%s': a URL cannot contain spaces or control characters; escape them as %%20", url);
            return -1;
        }
    snprintf(r->url, sizeof(r->url), "%s", url);
    /* The cache name: the last path segment, when it is a plain file name. */
    const char *path = strchr(strstr(url, "://") + 3, '/');
    r->file_name[0] = '\0';
    if (path) {
        size_t end = strcspn(path, "?#");
        const char *base = path;
        for (size_t i = 0; i < end; i++)
            if (path[i] == '/') base = path + i + 1;
        size_t n = (size_t)(path + end - base);
        bool plain = n > 0 && n < sizeof(r->file_name) && valid_segment(base, n);
        for (size_t i = 0; plain && i < n; i++) plain = name_char(base[i]);
        if (plain) {
            memcpy(r->file_name, base, n);
            r->file_name[n] = '\0';
        }
    }
    return 0;
}

int cli_model_ref_parse(const char *ref, cli_model_ref *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(ref, "hf:", 3) == 0) return parse_hub(ref + 3, out, err, errlen);
    if (strncmp(ref, "https://", 8) == 0 || strncmp(ref, "http://", 7) == 0) return parse_url(ref, out, err, errlen);
    const cli_model_alias *a = cli_model_alias_find(ref);
    if (a) {
        if (parse_hub(a->ref + 3, out, err, errlen) != 0) return -1;
        out->alias = a;
        return 0;
    }
    int n;
    const cli_model_alias *all = cli_model_aliases(&n);
    size_t o = (size_t)snprintf(err, errlen, "unknown model '%s': give an alias (", ref);
    for (int i = 0; i < n && o < errlen; i++)
        o += (size_t)snprintf(err + o, errlen - o, "%s%s", i ? ", " : "", all[i].name);
    if (o < errlen)
        snprintf(err + o, errlen - o, "), hf:OWNER/REPO/FILE.gguf[@REVISION] or an https:// URL");
    return -1;
}

/* mkdir -p */
static int make_dirs(char *path, char *err, size_t errlen)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        int rc = mkdir(path, 0755);
        int e = errno;
        *p = saved;
        if (rc != 0 && e != EEXIST) {
            snprintf(err, errlen, "cannot create the folder %.*s: %s", (int)(p - path), path, strerror(e));
            return -1;
        }
        if (!saved) return 0;
    }
}

int cli_models_dir(char *out, size_t len, bool create, char *err, size_t errlen)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    /* The XDG spec ignores relative paths. */
    if (xdg && xdg[0] == '/') n = snprintf(out, len, "%s/junction/models", xdg);
    else if (home && home[0] == '/') n = snprintf(out, len, "%s/.cache/junction/models", home);
    else {
        snprintf(err, errlen, "neither XDG_CACHE_HOME nor HOME is set to an absolute path, so there is no "
                              "models cache; set one of them, or pass -o FILE");
        return -1;
    }
    if (n < 0 || (size_t)n >= len) {
        snprintf(err, errlen, "the models cache path is too long; set XDG_CACHE_HOME to a shorter folder");
        return -1;
    }
    return create ? make_dirs(out, err, errlen) : 0;
}

/* ---- the transfer ---- */

typedef struct {
    const cli_pull_opts *o;
    const char *label;
    int fd;
    uint64_t have;            /* bytes in the part file, all of them hashed */
    uint64_t total;           /* the whole file's size, 0 until known */
    EVP_MD_CTX *sha;
    cli_pull_headers h;       /* the response being received (X-Linked-* kept across attempts) */
    bool body_started;
    /* why the transfer was stopped by us */
    bool restart;             /* the server's answer does not continue the part: start over */
    int write_errno;
    uint64_t need, avail;     /* not enough room for the rest */
    char body[1024];          /* an error response's body */
    size_t body_len;
    /* progress */
    double t_start, t_last;
    uint64_t at_start;
    bool bar_drawn;
} xfer;

static bool header_is(const char *line, size_t n, const char *name, const char **value, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':') return false;
    const char *v = line + k + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return true;
}

static uint64_t parse_u64(const char *s, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9' && v < UINT64_MAX / 10; i++) v = v * 10 + (uint64_t)(s[i] - '0');
    return v;
}

void cli_pull_header(cli_pull_headers *h, const char *line, size_t n)
{
    const char *v;
    size_t vn;
    if (memchr(line, '\0', n)) return; /* no header holds a NUL: a value would be cut at it (fuzzer find) */
    if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* "HTTP/1.1 206 Partial Content": three digits, or no status (0; fuzzer find: "404416" was one) */
        const char *sp = memchr(line, ' ', n);
        size_t rest = sp ? n - (size_t)(sp + 1 - line) : 0;
        bool three = rest >= 3 && sp[1] >= '0' && sp[1] <= '9' && sp[2] >= '0' && sp[2] <= '9' && sp[3] >= '0' &&
                     sp[3] <= '9' && (rest == 3 || sp[4] == ' ' || sp[4] == '\r' || sp[4] == '\n');
        h->status = three ? (long)parse_u64(sp + 1, 3) : 0;
        h->has_range = h->has_length = false;
    } else if (header_is(line, n, "X-Linked-Size", &v, &vn)) {
        h->linked_size = parse_u64(v, vn);
    } else if (header_is(line, n, "X-Linked-Etag", &v, &vn)) {
        if (vn >= 2 && v[0] == 'W' && v[1] == '/') v += 2, vn -= 2;
        while (vn > 0 && *v == '"') v++, vn--;
        while (vn > 0 && v[vn - 1] == '"') vn--;
        /* longer than the field is no checksum junction knows: none, rather than its cut start (fuzzer find) */
        snprintf(h->linked_etag, sizeof(h->linked_etag), "%.*s", vn < sizeof(h->linked_etag) ? (int)vn : 0, v);
    } else if (header_is(line, n, "Content-Length", &v, &vn)) {
        h->has_length = true;
        h->content_length = parse_u64(v, vn);
    } else if (header_is(line, n, "Content-Range", &v, &vn) && vn > 6 && strncmp(v, "bytes ", 6) == 0) {
        const char *slash = memchr(v, '/', vn);
        h->has_range = slash != NULL;
        h->range_start = parse_u64(v + 6, vn - 6);
        h->range_total = slash ? parse_u64(slash + 1, vn - (size_t)(slash + 1 - v)) : 0;
    }
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    xfer *x = arg;
    cli_pull_header(&x->h, line, size * nmemb);
    return size * nmemb;
}

cli_body_plan cli_pull_body_plan(const cli_pull_headers *h, uint64_t have, uint64_t *total)
{
    cli_body_plan plan = CLI_BODY_APPEND;
    if (h->status == 206 && (!h->has_range || h->range_start != have)) plan = CLI_BODY_MISMATCH;
    else if (h->status != 206 && have > 0) plan = CLI_BODY_START_OVER; /* any other 2xx is the whole file (fuzzer find) */
    uint64_t kept = plan == CLI_BODY_APPEND ? have : 0;
    *total = plan == CLI_BODY_MISMATCH ? 0
             : h->linked_size           ? h->linked_size
             : h->has_range             ? h->range_total
             : h->has_length            ? kept + h->content_length
                                        : 0;
    /* a file smaller than the part it continues (the sizes contradict each
     * other, or the sum wrapped): the part cannot be right (fuzzer find) */
    if (plan == CLI_BODY_APPEND && *total && *total < kept) {
        *total = 0;
        plan = CLI_BODY_MISMATCH;
    }
    return plan;
}

static int reset_part(xfer *x)
{
    x->have = 0;
    return ftruncate(x->fd, 0) == 0 && lseek(x->fd, 0, SEEK_SET) == 0 &&
                   EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL) == 1
               ? 0
               : -1;
}

/* The first bytes of a body: does it continue the part file, and will it fit? */
static bool body_begins(xfer *x)
{
    cli_body_plan plan = cli_pull_body_plan(&x->h, x->have, &x->total);
    if (plan == CLI_BODY_MISMATCH) {
        x->restart = true;
        return false;
    }
    if (plan == CLI_BODY_START_OVER) {
        fprintf(x->o->log, "pull: the server does not resume downloads; starting %s again\n", x->label);
        if (reset_part(x) != 0) {
            x->write_errno = errno;
            return false;
        }
    }
    struct statvfs fs;
    if (x->total > x->have && fstatvfs(x->fd, &fs) == 0) {
        uint64_t avail = (uint64_t)fs.f_bavail * fs.f_frsize;
        if (avail < x->total - x->have) {
            x->need = x->total - x->have;
            x->avail = avail;
            return false;
        }
    }
    x->t_start = x->t_last = now_s();
    x->at_start = x->have;
    return true;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    xfer *x = arg;
    size_t n = size * nmemb;
    if (x->h.status < 200 || x->h.status >= 300) {
        size_t room = sizeof(x->body) - 1 - x->body_len, k = n < room ? n : room;
        memcpy(x->body + x->body_len, data, k);
        x->body_len += k;
        x->body[x->body_len] = '\0';
        return n;
    }
    if (!x->body_started) {
        x->body_started = true;
        if (!body_begins(x)) return 0;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w = write(x->fd, data + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            x->write_errno = w < 0 ? errno : EIO;
            return 0;
        }
        EVP_DigestUpdate(x->sha, data + done, (size_t)w);
        x->have += (uint64_t)w;
        done += (size_t)w;
    }
    return n;
}

static void draw_progress(xfer *x, bool final)
{
    double t = now_s();
    if (!final && t - x->t_last < (x->o->bar ? 0.2 : 5.0)) return;
    x->t_last = t;
    double elapsed = t - x->t_start;
    double rate = elapsed > 0 ? (double)(x->have - x->at_start) / elapsed : 0;
    char have[32], total[32], speed[32], eta[32];
    cli_format_bytes(x->have, have, sizeof(have));
    cli_format_bytes(x->total, total, sizeof(total));
    cli_format_bytes((uint64_t)rate, speed, sizeof(speed));
    bool known = x->total > 0 && x->have <= x->total;
    double pct = known ? 100.0 * (double)x->have / (double)x->total : 0;
    format_duration(rate > 0 && known ? (double)(x->total - x->have) / rate : 0, eta, sizeof(eta));
    if (x->o->bar) {
        char bar[31];
        int fill = known ? (int)(pct * 30 / 100) : 0;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        if (known)
            fprintf(x->o->log, "\r%s [%s] %5.1f%%  %s / %s  %s/s  ETA %s\033[K", x->label, bar, pct, have, total,
                    speed, eta);
        else
            fprintf(x->o->log, "\r%s  %s  %s/s\033[K", x->label, have, speed);
        x->bar_drawn = !final;
        if (final) fputc('\n', x->o->log);
    } else if (known) {
        fprintf(x->o->log, "pull: %s: %.0f%%, %s of %s, %s/s, %s left\n", x->label, pct, have, total, speed, eta);
    } else {
        fprintf(x->o->log, "pull: %s: %s, %s/s\n", x->label, have, speed);
    }
    fflush(x->o->log);
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    xfer *x = arg;
    if (x->body_started && x->h.status >= 200 && x->h.status < 300) draw_progress(x, false);
    return 0;
}

/* ---- what the hub says when the file is not there ---- */

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
    char **buf = arg;
    size_t n = size * nmemb, have = *buf ? strlen(*buf) : 0;
    if (have + n > (4u << 20)) return 0; /* a listing, not a download */
    char *p = realloc(*buf, have + n + 1);
    if (!p) return 0;
    memcpy(p + have, data, n);
    p[have + n] = '\0';
    *buf = p;
    return n;
}

/* What may reach the user's terminal from a server: printable ASCII (no
 * control bytes, no UTF-8 forms of the C1 controls). */
static bool printable(unsigned char c) { return c >= 0x20 && c < 0x7f; }

static bool printable_name(const char *s)
{
    for (; *s; s++)
        if (!printable((unsigned char)*s)) return false;
    return true;
}

int cli_hub_gguf_files(const char *json, size_t n, char *out, size_t len, char *err, size_t errlen)
{
    out[0] = '\0';
    cJSON *j = cJSON_ParseWithLength(json, n);
    const cJSON *s, *siblings = cJSON_GetObjectItemCaseSensitive(j, "siblings");
    if (!cJSON_IsArray(siblings)) {
        snprintf(err, errlen, "the hub's answer is not a repository listing (no \"siblings\" array)");
        cJSON_Delete(j);
        return -1;
    }
    size_t o = 0;
    int count = 0;
    cJSON_ArrayForEach(s, siblings) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(s, "rfilename");
        size_t k = cJSON_IsString(name) ? strlen(name->valuestring) : 0;
        if (k < 5 || strcmp(name->valuestring + k - 5, ".gguf") != 0 || o + k + 8 >= len) continue;
        if (!printable_name(name->valuestring)) continue; /* it would reach the terminal (fuzzer find) */
        o += (size_t)snprintf(out + o, len - o, "%s%s", o ? ", " : "", name->valuestring);
        count++;
    }
    cJSON_Delete(j);
    return count;
}

void cli_pull_error_text(const char *body, size_t n, char *out, size_t len)
{
    /* One line of at most 200 bytes: line ends and tabs become single
     * spaces, every other byte but printable ASCII '?', so that a server
     * cannot move the cursor or retitle the user's terminal (fuzzer find). */
    size_t o = 0, cap = len - 1 < 200 ? len - 1 : 200;
    for (size_t i = 0; i < n && body[i] && o < cap; i++) {
        unsigned char c = (unsigned char)body[i];
        if (!printable(c)) c = c == '\r' || c == '\n' || c == '\t' ? ' ' : '?';
        if (c == ' ' && (o == 0 || out[o - 1] == ' ')) continue;
        out[o++] = (char)c;
    }
    while (o > 0 && out[o - 1] == ' ') o--;
    out[o] = '\0';
}

/* The .gguf files the repository has, from {endpoint}/api/models/{repo},
 * into `out` ("a.gguf, b.gguf"). Returns the HTTP status (0: no answer). */
static long hub_list_gguf(const cli_model_ref *r, const char *token, char *out, size_t len)
{
    out[0] = '\0';
    char url[CLI_URL_MAX], auth[1024];
    snprintf(url, sizeof(url), "%s/api/models/%s", r->hf_endpoint, r->hf_repo);
    CURL *c = curl_easy_init();
    if (!c) return 0;
    char *body = NULL;
    struct curl_slist *headers = NULL;
    if (token && *token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "junction/" JUNCTION_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    char why[128];
    if (status == 200 && cli_hub_gguf_files(body ? body : "", body ? strlen(body) : 0, out, len, why, sizeof(why)) < 0)
        status = 0; /* not a listing: as if there were no answer */
    free(body);
    return status;
}

static void not_found(const cli_model_ref *r, const char *token, char *err, size_t errlen)
{
    if (!r->hub) {
        snprintf(err, errlen, "%s: 404 Not Found; check the URL", r->url);
        return;
    }
    char files[2048];
    long st = hub_list_gguf(r, token, files, sizeof(files));
    if (st == 200 && files[0])
        snprintf(err, errlen, "%s is not in %s (revision %s); the repository's .gguf files are: %s", r->hf_file,
                 r->hf_repo, r->hf_revision, files);
    else if (st == 200)
        snprintf(err, errlen, "%s is not in %s (revision %s), and the repository has no .gguf files; look for a "
                              "GGUF conversion of the model (often a repository whose name ends in -GGUF)",
                 r->hf_file, r->hf_repo, r->hf_revision);
    else if (st == 401 || st == 404)
        snprintf(err, errlen, "there is no repository %s on %s (or it is private: set HF_TOKEN); check the "
                              "owner and name on %s/%s",
                 r->hf_repo, r->hf_endpoint, r->hf_endpoint, r->hf_repo);
    else
        snprintf(err, errlen, "%s is not in %s (revision %s): 404 from %s", r->hf_file, r->hf_repo, r->hf_revision,
                 r->hf_endpoint);
}

static void refused(const cli_model_ref *r, long status, const char *token, char *err, size_t errlen)
{
    if (!r->hub)
        snprintf(err, errlen, "%s answered %ld: it wants credentials junction cannot send there; download the "
                              "file elsewhere and pass -m FILE",
                 r->url, status);
    else if (!token || !*token)
        snprintf(err, errlen, "%s is gated or private (%ld): create a token at %s/settings/tokens, export "
                              "HF_TOKEN=<token>, and accept the licence on %s/%s",
                 r->hf_repo, status, r->hf_endpoint, r->hf_endpoint, r->hf_repo);
    else if (status == 401)
        snprintf(err, errlen, "the hub refused HF_TOKEN for %s (401): the token is invalid or expired; make a new "
                              "one at %s/settings/tokens",
                 r->hf_repo, r->hf_endpoint);
    else
        snprintf(err, errlen, "%s is gated and HF_TOKEN's account has no access yet (403): accept the licence "
                              "on %s/%s, wait for the approval, and pull again",
                 r->hf_repo, r->hf_endpoint, r->hf_repo);
}

/* ---- one attempt, and what to make of it ---- */

typedef enum { ATTEMPT_DONE, ATTEMPT_RETRY, ATTEMPT_FAIL } attempt_result;

static attempt_result attempt(xfer *x, const cli_model_ref *r, bool first, char *reason, size_t rlen, char *err,
                              size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "cannot start libcurl (out of memory)");
        return ATTEMPT_FAIL;
    }
    x->h.status = 0;
    x->h.has_range = x->h.has_length = false;
    x->body_started = false;
    x->restart = false;
    x->body_len = 0;
    x->body[0] = '\0';
    char range[32], auth[1024], curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    if (r->hub && x->o->token && *x->o->token) {
        /* libcurl drops a custom Authorization header when a redirect leaves the host. */
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", x->o->token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "junction/" JUNCTION_VERSION);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* stalled: under 1 KiB/s for a minute */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (x->have > 0) {
        snprintf(range, sizeof(range), "%llu-", (unsigned long long)x->have);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    CURLcode rc = curl_easy_perform(c);
    char host[256] = "";
    char *eff = NULL;
    curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
    const char *h = eff && strstr(eff, "://") ? strstr(eff, "://") + 3 : r->url;
    snprintf(host, sizeof(host), "%.*s", (int)strcspn(h, "/?#"), h);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);

    const char *why = curl_err[0] ? curl_err : curl_easy_strerror(rc);
    if (x->restart) {
        snprintf(reason, rlen, "the server answered a range that does not continue the part file");
        return reset_part(x) == 0 ? ATTEMPT_RETRY : ATTEMPT_FAIL;
    }
    if (x->need || x->write_errno) {
        char need[32], avail[32], cause[160] = "";
        struct statvfs fs;
        uint64_t rest = x->need ? x->need : x->total > x->have ? x->total - x->have : 0;
        uint64_t free_b = x->need ? x->avail : fstatvfs(x->fd, &fs) == 0 ? (uint64_t)fs.f_bavail * fs.f_frsize : 0;
        if (x->write_errno == EFBIG) snprintf(cause, sizeof(cause), " (File too large: a file-size limit, see `ulimit -f`)");
        else if (x->write_errno) snprintf(cause, sizeof(cause), " (%s)", strerror(x->write_errno));
        snprintf(err, errlen, "%s%s: the download needs %s more and %s is free there%s; make room (or pull to "
                              "another disk with -o FILE) and run the same command again to continue",
                 x->need ? "not enough disk space for " : "cannot write ", x->label, cli_format_bytes(rest, need, 32),
                 cli_format_bytes(free_b, avail, 32), cause);
        return ATTEMPT_FAIL;
    }
    if (rc == CURLE_OK) {
        if (x->h.status >= 200 && x->h.status < 300) { /* every 2xx carried the file (cli_pull_body_plan) */
            if (x->total && x->have < x->total) {
                snprintf(reason, rlen, "the connection closed early");
                return ATTEMPT_RETRY;
            }
            return ATTEMPT_DONE;
        }
        if (x->h.status == 416) {
            if (x->h.linked_size && x->have == x->h.linked_size) return ATTEMPT_DONE;
            snprintf(reason, rlen, "the part file does not match the file on the server");
            fprintf(x->o->log, "pull: the part file is longer than the file on the server; starting over\n");
            return reset_part(x) == 0 ? ATTEMPT_RETRY : ATTEMPT_FAIL;
        }
        if (x->h.status == 404 || x->h.status == 410) {
            not_found(r, x->o->token, err, errlen);
            return ATTEMPT_FAIL;
        }
        if (x->h.status == 401 || x->h.status == 403) {
            refused(r, x->h.status, x->o->token, err, errlen);
            return ATTEMPT_FAIL;
        }
        if (x->h.status == 429 || x->h.status >= 500) {
            snprintf(reason, rlen, "%s answered %ld", host, x->h.status);
            return ATTEMPT_RETRY;
        }
        char text[256];
        cli_pull_error_text(x->body, x->body_len, text, sizeof(text));
        snprintf(err, errlen, "%s answered %ld%s%s; check the reference", host, x->h.status, text[0] ? ": " : "", text);
        return ATTEMPT_FAIL;
    }
    static const CURLcode unreachable[] = {CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY,
                                           CURLE_COULDNT_CONNECT};
    static const CURLcode transient[] = {CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                                         CURLE_OPERATION_TIMEDOUT, CURLE_GOT_NOTHING, CURLE_HTTP2,
                                         CURLE_HTTP2_STREAM, CURLE_SSL_CONNECT_ERROR, CURLE_COULDNT_CONNECT};
    for (size_t i = 0; first && i < sizeof(unreachable) / sizeof(unreachable[0]); i++)
        if (rc == unreachable[i]) {
            snprintf(err, errlen, "cannot reach %s (%s); check the network%s, or download the file elsewhere and "
                                  "pass -m FILE",
                     host, why, r->hub ? " and HF_ENDPOINT" : "");
            return ATTEMPT_FAIL;
        }
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        if (rc == transient[i]) {
            snprintf(reason, rlen, "%s", why);
            return ATTEMPT_RETRY;
        }
    snprintf(err, errlen, "downloading from %s failed: %s", host, why);
    return ATTEMPT_FAIL;
}

/* ---- checks after the last byte ---- */

static int hash_existing(xfer *x, char *err, size_t errlen)
{
    static char buf[1 << 20];
    ssize_t n;
    while ((n = read(x->fd, buf, sizeof(buf))) > 0) {
        EVP_DigestUpdate(x->sha, buf, (size_t)n);
        x->have += (uint64_t)n;
    }
    if (n < 0) {
        snprintf(err, errlen, "cannot read the part file %s: %s", x->label, strerror(errno));
        return -1;
    }
    return 0;
}

static bool is_sha256_hex(const char *s)
{
    if (!s || strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static int verify(xfer *x, const char *part, char *err, size_t errlen)
{
    char a[32], b[32];
    if (x->h.linked_size && x->have != x->h.linked_size) {
        snprintf(err, errlen, "the download has %s but the hub lists %s; the part file was deleted, run the command "
                              "again to download afresh",
                 cli_format_bytes(x->have, a, 32), cli_format_bytes(x->h.linked_size, b, 32));
        return -1;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (EVP_DigestFinal_ex(x->sha, md, &md_len) != 1) {
        snprintf(err, errlen, "cannot compute the SHA-256 (libcrypto failed)");
        return -1;
    }
    for (unsigned i = 0; i < md_len; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    const char *want = x->o->sha256 ? x->o->sha256 : is_sha256_hex(x->h.linked_etag) ? x->h.linked_etag : NULL;
    if (want && strcasecmp(want, hex) != 0) {
        snprintf(err, errlen, "checksum mismatch: the download's SHA-256 is %s, %s says %s; the part file was "
                              "deleted, run the command again to download afresh",
                 hex, x->o->sha256 ? "--sha256" : "the hub (X-Linked-Etag)", want);
        return -1;
    }
    if (want) fprintf(x->o->log, "pull: SHA-256 %s verified\n", hex);
    else fprintf(x->o->log, "pull: SHA-256 %s (the server sent no checksum; pass --sha256 to check one)\n", hex);
    FILE *devnull = fopen("/dev/null", "w");
    char gerr[768];
    int rc = devnull ? eng_inspect(part, devnull, gerr, sizeof(gerr)) : -1;
    if (devnull) fclose(devnull);
    if (rc != 0) {
        snprintf(err, errlen, "the download is not a valid GGUF model file (%.600s); the part file was deleted",
                 devnull ? gerr : "cannot open /dev/null");
        return -1;
    }
    return 0;
}

int cli_pull(const cli_model_ref *r, const char *dest, const cli_pull_opts *o, char *err, size_t errlen)
{
    char part[CLI_URL_MAX + 8];
    if (snprintf(part, sizeof(part), "%s.part", dest) >= (int)sizeof(part)) {
        snprintf(err, errlen, "the destination path is too long");
        return -1;
    }
    /* A write past a file-size limit must fail with EFBIG, not kill us. */
    signal(SIGXFSZ, SIG_IGN);
    const char *label = strrchr(dest, '/') ? strrchr(dest, '/') + 1 : dest;
    xfer x = {.o = o, .label = label};
    x.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (x.fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", part, strerror(errno));
        return -1;
    }
    if (flock(x.fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "another junction pull is downloading %s right now; wait for it", dest);
        close(x.fd);
        return -1;
    }
    x.sha = EVP_MD_CTX_new();
    int rc = -1;
    if (!x.sha || EVP_DigestInit_ex(x.sha, EVP_sha256(), NULL) != 1) {
        snprintf(err, errlen, "cannot start SHA-256 (libcrypto failed)");
        goto out;
    }
    if (hash_existing(&x, err, errlen) != 0) goto out;
    if (x.have > 0) {
        char b[32];
        fprintf(o->log, "pull: resuming %s at %s\n", label, cli_format_bytes(x.have, b, sizeof(b)));
    }
    attempt_result res = ATTEMPT_RETRY;
    char reason[512] = "";
    for (int tries = 0, failures = 0; res == ATTEMPT_RETRY; tries++) {
        uint64_t before = x.have;
        res = attempt(&x, r, tries == 0, reason, sizeof(reason), err, errlen);
        if (x.bar_drawn && res != ATTEMPT_DONE) { /* the next message starts on its own line */
            fputc('\n', o->log);
            x.bar_drawn = false;
        }
        if (res != ATTEMPT_RETRY) break;
        /* An attempt that moved the download forward does not use up a retry. */
        failures = x.have > before ? 1 : failures + 1;
        if (failures > o->max_retries) {
            char a[32], b[32];
            snprintf(err, errlen, "download interrupted at %s of %s: %s; the part file %s is kept: run the same "
                                  "command again to continue",
                     cli_format_bytes(x.have, a, 32), x.total ? cli_format_bytes(x.total, b, 32) : "?", reason, part);
            res = ATTEMPT_FAIL;
            break;
        }
        unsigned delay = 1u << (failures - 1 < 5 ? failures - 1 : 5);
        char a[32], b[32];
        fprintf(o->log, "pull: %s, at %s of %s; retrying in %u s (retry %d of %d)\n", reason,
                cli_format_bytes(x.have, a, 32), x.total ? cli_format_bytes(x.total, b, 32) : "?", delay, failures,
                o->max_retries);
        sleep(delay);
    }
    if (res != ATTEMPT_DONE) goto out;
    if (x.total) draw_progress(&x, true);
    if (fsync(x.fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", part, strerror(errno));
        goto out;
    }
    if (verify(&x, part, err, errlen) != 0) {
        unlink(part);
        goto out;
    }
    if (rename(part, dest) != 0) {
        snprintf(err, errlen, "cannot move %s to %s: %s", part, dest, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 && x.have == 0) unlink(part); /* nothing to resume */
    EVP_MD_CTX_free(x.sha);
    close(x.fd);
    return rc;
}
