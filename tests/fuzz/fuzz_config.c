/* fuzz_config.c: arbitrary bytes as the configuration file.
 *
 * The loader reads an operator's hand-edited JSON, and its promise is a
 * precise refusal (key and line:column) for anything wrong. Checked here:
 * a refused file says why, and a file that loads can be printed as the
 * effective settings (what gw_config_print_json promises: a configuration
 * file body) and that print loads back to the same settings.
 */
#include "fuzz.h"
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Load `text` on top of the defaults; 0 or -1, the message in err. */
static int load(const uint8_t *text, size_t len, gw_config *cfg, char *err, size_t errlen)
{
    char path[64];
    int fd = fuzz_memfile(text, len, path, sizeof(path));
    gw_config_defaults(cfg);
    err[0] = '\0';
    int rc = gw_config_load_file(cfg, path, err, errlen);
    close(fd);
    return rc;
}

/* The effective settings as JSON (heap string, *len bytes). */
static char *print(const gw_config *cfg, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) fuzz_fail("open_memstream failed");
    gw_config_print_json(cfg, f);
    fclose(f);
    return buf;
}

FUZZ_TARGET(config)
{
    static gw_config cfg, again; /* large: kept off the stack */
    char err[1024];
    if (load(data, size, &cfg, err, sizeof(err)) != 0) {
        if (!err[0]) fuzz_fail("the configuration was refused without a message");
        return 0;
    }
    size_t len1, len2;
    char *first = print(&cfg, &len1);
    if (load((const uint8_t *)first, len1, &again, err, sizeof(err)) != 0)
        fuzz_fail("the printed effective settings do not load back: %s\n%s", err, first);
    char *second = print(&again, &len2);
    if (len1 != len2 || memcmp(first, second, len1) != 0)
        fuzz_fail("the settings changed on the way through print and load:\n%s\n%s", first, second);
    free(first);
    free(second);
    return 0;
}
