/* fuzz_pull.c: arbitrary bytes through what `junction pull` parses without
 * a network.
 *
 * The model reference is the user's (the command line, script/server's
 * JUNCTION_MODEL) and HF_ENDPOINT the environment's; cli_model_ref_parse
 * turns them into the URL to GET and, more dangerously, the name of the file
 * in the models cache. The input is split at its first newline: with one,
 * the first line is HF_ENDPOINT (set for this input) and the rest the
 * reference; without, HF_ENDPOINT is unset and the whole input is the
 * reference (both cut at a NUL, as a C string would be). A refusal must say
 * why. A parsed reference must keep the promises pull.c relies on: every
 * field terminated; the URL http(s)://, without spaces or control
 * characters; the cache file name empty (a URL whose last segment is not a
 * plain name) or one path segment that is not "." or ".." and has no '/' or
 * '\\' (so the cache path cannot leave the cache folder); a hub reference
 * has OWNER/REPO, a file, a revision (default "main"), and a URL under its
 * endpoint's /OWNER/REPO/resolve/; an alias resolves to a hub reference.
 * cli_format_bytes also gets the first 8 bytes as a size.
 *
 * What the server answers (header lines, what they make of the part file,
 * an error body, the hub's file listing) has targets of its own:
 * fuzz_pull_headers.c and fuzz_hub_listing.c.
 */
#include "fuzz.h"
#include "pull.h"

#include <stdlib.h>
#include <string.h>

static void check_field(const char *f, size_t cap, const char *what)
{
    if (!memchr(f, 0, cap)) fuzz_fail("%s is not terminated", what);
}

static void check_ref(const cli_model_ref *r, const char *ref)
{
    check_field(r->url, sizeof(r->url), "url");
    check_field(r->file_name, sizeof(r->file_name), "file_name");
    check_field(r->hf_endpoint, sizeof(r->hf_endpoint), "hf_endpoint");
    check_field(r->hf_repo, sizeof(r->hf_repo), "hf_repo");
    check_field(r->hf_file, sizeof(r->hf_file), "hf_file");
    check_field(r->hf_revision, sizeof(r->hf_revision), "hf_revision");
    if (strncmp(r->url, "https://", 8) != 0 && strncmp(r->url, "http://", 7) != 0)
        fuzz_fail("'%s' parsed to a URL that is not http(s): '%s'", ref, r->url);
    for (const char *p = r->url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) fuzz_fail("'%s' parsed to a URL with byte 0x%02x", ref, (unsigned char)*p);
    const char *f = r->file_name;
    if (f[0]) {
        if (!strcmp(f, ".") || !strcmp(f, "..") || strchr(f, '/') || strchr(f, '\\'))
            fuzz_fail("'%s' parsed to the cache file name '%s', which leaves the cache folder", ref, f);
        for (const char *p = f; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) fuzz_fail("'%s' parsed to a file name with a control byte", ref);
    } else if (r->hub) {
        fuzz_fail("'%s' parsed to a hub reference without a file name", ref);
    }
    if (r->hub) {
        const char *slash = strchr(r->hf_repo, '/');
        if (!slash || slash == r->hf_repo || !slash[1] || strchr(slash + 1, '/'))
            fuzz_fail("'%s' parsed to the repository '%s', not OWNER/REPO", ref, r->hf_repo);
        if (!r->hf_file[0] || !r->hf_revision[0]) fuzz_fail("'%s' parsed without a file or a revision", ref);
        if (strncmp(r->hf_endpoint, "https://", 8) != 0 && strncmp(r->hf_endpoint, "http://", 7) != 0)
            fuzz_fail("'%s' parsed with the endpoint '%s'", ref, r->hf_endpoint);
        size_t e = strlen(r->hf_endpoint), n = strlen(r->hf_repo);
        if (strncmp(r->url, r->hf_endpoint, e) != 0 || r->url[e] != '/' || strncmp(r->url + e + 1, r->hf_repo, n) != 0 ||
            strncmp(r->url + e + 1 + n, "/resolve/", 9) != 0)
            fuzz_fail("'%s' parsed to the URL '%s', not under %s/%s/resolve/", ref, r->url, r->hf_endpoint, r->hf_repo);
    } else if (r->alias) {
        fuzz_fail("'%s' names an alias but is not a hub reference", ref);
    }
}

FUZZ_TARGET(pull)
{
    char *text = malloc(size + 1);
    if (!text) fuzz_fail("out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    const char *ref = text;
    char *nl = memchr(text, '\n', size);
    if (nl && nl < text + strlen(text)) {
        *nl = '\0';
        setenv("HF_ENDPOINT", text, 1);
        ref = nl + 1;
    } else {
        unsetenv("HF_ENDPOINT");
    }

    cli_model_ref *r = malloc(sizeof(*r));
    if (!r) fuzz_fail("out of memory");
    char err[1024] = "";
    if (cli_model_ref_parse(ref, r, err, sizeof(err)) != 0) {
        if (!err[0]) fuzz_fail("cli_model_ref_parse refused '%s' without saying why", ref);
    } else {
        check_ref(r, ref);
    }
    free(r);

    uint64_t n = 0;
    memcpy(&n, data, size < sizeof(n) ? size : sizeof(n));
    char buf[32];
    cli_format_bytes(n, buf, sizeof(buf));
    if (!buf[0] || !memchr(buf, 0, sizeof(buf))) fuzz_fail("cli_format_bytes(%llu) gave nothing", (unsigned long long)n);

    free(text);
    return 0;
}
