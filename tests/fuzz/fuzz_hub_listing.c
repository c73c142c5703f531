/* fuzz_hub_listing.c: arbitrary bytes as the hub's repository listing.
 *
 * When a file is not in a repository, `junction pull` lists the .gguf files
 * the repository does have, from {endpoint}/api/models/OWNER/REPO: JSON
 * whose "siblings" array holds {"rfilename": NAME} objects. The bytes come
 * from the network (HF_ENDPOINT may name any server) and the list is
 * printed on the user's terminal. cli_hub_gguf_files gets the input whole,
 * into a buffer the size pull.c uses and into a small one. Promises: a
 * refusal says why and lists nothing; a listing is terminated inside the
 * buffer, is empty exactly when it counts no file, ends in ".gguf" when it
 * does, names at least as many ".gguf" as it counts, and holds nothing
 * but printable ASCII (no control byte, no UTF-8 C1 control).
 */
#include "fuzz.h"
#include "pull.h"

#include <stdlib.h>
#include <string.h>

static void check(const uint8_t *data, size_t size, size_t len)
{
    char *out = malloc(len), err[256] = "";
    if (!out) fuzz_fail("out of memory");
    memset(out, 'x', len);
    int n = cli_hub_gguf_files((const char *)data, size, out, len, err, sizeof(err));
    const char *end = memchr(out, 0, len);
    if (!end) fuzz_fail("the listing is not terminated in its %zu bytes", len);
    size_t ol = (size_t)(end - out);
    if (n < 0) {
        if (!err[0]) fuzz_fail("cli_hub_gguf_files refused the listing without saying why");
        if (ol) fuzz_fail("a refused listing still listed '%s'", out);
    } else {
        if ((n == 0) != (ol == 0)) fuzz_fail("%d files counted, listed '%s'", n, out);
        if (n > 0 && (ol < 5 || memcmp(end - 5, ".gguf", 5) != 0)) fuzz_fail("the listing '%s' does not end in .gguf", out);
        int named = 0;
        for (const char *p = strstr(out, ".gguf"); p; p = strstr(p + 1, ".gguf")) named++;
        if (named < n) fuzz_fail("%d files counted, %d named in '%s'", n, named, out);
        for (const char *p = out; p < end; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                fuzz_fail("the listing holds the byte 0x%02x, not printable ASCII", (unsigned char)*p);
    }
    free(out);
}

FUZZ_TARGET(hub_listing)
{
    check(data, size, 2048); /* what pull.c gives it */
    check(data, size, 24);
    return 0;
}
